//! Realistic-looking identifiers (`chatcmpl-…`, `msg_01…`, `call_…`) and timestamps.
//!
//! Ids only need to look like the real ones and differ between responses, so they come from a
//! process-wide counter scrambled by splitmix64 rather than from a random number generator.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const HEX: &[u8] = b"0123456789abcdef";

static COUNTER: AtomicU64 = AtomicU64::new(0);
static SALT: OnceLock<u64> = OnceLock::new();

fn splitmix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Differs per process so two mock instances do not hand out the same ids.
fn salt() -> u64 {
    *SALT.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0x5eed, |d| d.as_nanos() as u64)
    })
}

/// `prefix` followed by `len` characters drawn from `alphabet`.
fn make(prefix: &str, len: usize, alphabet: &[u8]) -> String {
    let radix = alphabet.len() as u64;
    // 62^10 < 2^64, so ten digits of any alphabet up to base 62 fit in one 64-bit draw.
    const DIGITS_PER_DRAW: usize = 10;
    let mut state =
        salt().wrapping_add(COUNTER.fetch_add(1, Ordering::Relaxed).wrapping_mul(GOLDEN));
    let mut out = String::with_capacity(prefix.len() + len);
    out.push_str(prefix);
    let mut bits = 0;
    for i in 0..len {
        if i % DIGITS_PER_DRAW == 0 {
            state = state.wrapping_add(GOLDEN);
            bits = splitmix64(state);
        }
        out.push(char::from(alphabet[(bits % radix) as usize]));
        bits /= radix;
    }
    out
}

pub(crate) fn chat_completion() -> String {
    make("chatcmpl-", 29, BASE62)
}

pub(crate) fn text_completion() -> String {
    make("cmpl-", 29, BASE62)
}

pub(crate) fn openai_call() -> String {
    make("call_", 24, BASE62)
}

pub(crate) fn openai_request() -> String {
    make("req_", 32, HEX)
}

pub(crate) fn response() -> String {
    make("resp_", 48, HEX)
}

pub(crate) fn response_message() -> String {
    make("msg_", 48, HEX)
}

pub(crate) fn response_function_call() -> String {
    make("fc_", 48, HEX)
}

pub(crate) fn response_reasoning() -> String {
    make("rs_", 48, HEX)
}

pub(crate) fn anthropic_message() -> String {
    make("msg_01", 22, BASE62)
}

pub(crate) fn anthropic_tool_use() -> String {
    make("toolu_01", 22, BASE62)
}

pub(crate) fn anthropic_request() -> String {
    make("req_011C", 20, BASE62)
}

pub(crate) fn thinking_signature() -> String {
    make("Eq", 94, BASE62)
}

pub(crate) fn gemini_response() -> String {
    make("", 23, BASE62)
}

/// Seconds since the Unix epoch (`created` fields).
pub(crate) fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Now as RFC 3339 UTC with nanoseconds, the way Ollama writes `created_at`.
pub(crate) fn rfc3339_now() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now.as_secs(), now.subsec_nanos())
}

fn rfc3339(secs: u64, nanos: u32) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_real_shapes() {
        let a = chat_completion();
        let b = chat_completion();
        assert_ne!(a, b);
        assert!(a.starts_with("chatcmpl-") && a.len() == 9 + 29);
        assert!(a[9..].bytes().all(|c| c.is_ascii_alphanumeric()));
        let r = response();
        assert!(r.starts_with("resp_") && r.len() == 5 + 48);
        assert!(r[5..].bytes().all(|c| c.is_ascii_hexdigit()));
        assert!(anthropic_tool_use().starts_with("toolu_01"));
    }

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339(951_782_400 + 3661, 5),
            "2000-02-29T01:01:01.000000005Z"
        );
        assert_eq!(rfc3339(1_735_689_599, 0), "2024-12-31T23:59:59.000000000Z");
    }
}
