//! (being written)
use crate::Detection;

/// (being written)
#[derive(Debug, Default)]
pub struct Scanner;

impl Scanner {
    /// (being written)
    pub fn builtin() -> Scanner {
        Scanner
    }
    /// (being written)
    pub fn scan(&self, _text: &str) -> Vec<Detection> {
        Vec::new()
    }
}
