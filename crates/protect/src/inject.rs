//! (being written)
use crate::Detection;

/// (being written)
pub const MAX_MATCH_LEN: usize = 0;

/// (being written)
pub fn scan(_text: &str, _out: &mut Vec<Detection>) {}
