//! RFC 8785 JSON Canonicalization Scheme (JCS) for `serde_json` values.
//!
//! This module owns the exact bytes an entry is hashed as. It turns a [`serde_json::Value`] into
//! its canonical UTF-8 form: no insignificant whitespace, object members sorted by the UTF-16 code
//! units of their keys, strings escaped as ECMAScript's `JSON.stringify` does, and numbers
//! written as ECMAScript's `Number.prototype.toString` does. It does not parse JSON (that is
//! `serde_json`'s job) and knows nothing about entries or the ledger.
//!
//! # Numbers
//!
//! JCS treats every number as an IEEE 754 double. Floating-point values are formatted exactly as
//! ECMAScript does (shortest round-trip digits, exponent form outside `[1e-6, 1e21)`); they are
//! verified against the RFC 8785 Appendix B samples. Integers are written exactly when their
//! magnitude is at most [`MAX_SAFE_INTEGER`] (2^53 − 1). A larger integer MUST NOT be silently
//! rounded to the nearest double, as a plain JCS implementation would: the canonical bytes would
//! then record a different number than the caller meant. [`canonicalize`] refuses it with
//! [`JcsError::UnsafeInteger`]; callers should record such values as strings. (A *float* of that
//! size is fine, and is written in integer form when ECMAScript would: `1e17` is
//! `100000000000000000`.)
//!
//! # Checking canonical bytes
//!
//! The verifier does not re-serialize entries: `check_entry` walks the bytes once, without
//! allocating, and accepts exactly those that are the canonical form of the JSON object they
//! denote (numbers read as doubles). A differential test holds it to the `canonicalize`
//! definition on thousands of random and mutated entries.
//!
//! # Why not `serde_jcs`
//!
//! `serde_jcs` 0.2 was evaluated first. It converts every integer to `f64`, silently rounding
//! integers above 2^53 (nanosecond timestamps, for example) instead of refusing them, and it
//! re-parses every object key and boxes a writer per scalar, which is slow on the ledger's hot
//! path. It also cannot split an object into members, which the ledger uses to insert `index`
//! and `prev` on its writer thread without canonicalizing the whole entry there (see
//! `SplitObject`). Writing the ~150 lines here was simpler than working around those limits.

use std::cmp::Ordering;
use std::ops::Range;

use serde_json::{Map, Number, Value};

/// The largest integer magnitude JCS can represent exactly: 2^53 − 1.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Why a value has no canonical form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JcsError {
    /// An integer outside ±(2^53 − 1), which an IEEE 754 double cannot hold exactly.
    #[error("integer {0} is outside ±(2^53-1); record it as a string")]
    UnsafeInteger(String),
    /// A NaN or infinite number (JSON cannot carry them; kept for completeness).
    #[error("number {0} is not finite")]
    NonFinite(String),
}

/// The RFC 8785 canonical form of `value`.
///
/// ```
/// let v = serde_json::json!({"b": [1, 2.5, "x"], "a": null});
/// assert_eq!(warden_ledger::jcs::canonicalize(&v).unwrap(), br#"{"a":null,"b":[1,2.5,"x"]}"#);
/// ```
pub fn canonicalize(value: &Value) -> Result<Vec<u8>, JcsError> {
    let mut out = Vec::with_capacity(256);
    canonicalize_into(value, &mut out)?;
    Ok(out)
}

/// Appends the RFC 8785 canonical form of `value` to `out`. On error, `out` may hold a partial
/// value and should be discarded.
pub fn canonicalize_into(value: &Value, out: &mut Vec<u8>) -> Result<(), JcsError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(n, out)?,
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonicalize_into(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            for (i, (key, item)) in sorted_members(map).into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                canonicalize_into(item, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// Orders object keys by their UTF-16 code units, as RFC 8785 §3.2.3 requires. (UTF-8 byte order
/// differs for characters above U+FFFF versus U+E000–U+FFFF.)
pub(crate) fn cmp_keys(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        return a.as_bytes().cmp(b.as_bytes());
    }
    a.encode_utf16().cmp(b.encode_utf16())
}

fn sorted_members(map: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut members: Vec<_> = map.iter().collect();
    members.sort_by(|a, b| cmp_keys(a.0, b.0));
    members
}

/// Writes a JSON string as RFC 8785 §3.2.2.2 requires: `"` and `\` escaped, the five short
/// escapes for control characters, `\u00xx` (lowercase hex) for the other controls, and every
/// other character as itself.
pub(crate) fn write_string(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x09 => b"\\t",
            0x0a => b"\\n",
            0x0c => b"\\f",
            0x0d => b"\\r",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

fn write_number(n: &Number, out: &mut Vec<u8>) -> Result<(), JcsError> {
    if let Some(u) = n.as_u64() {
        if u > MAX_SAFE_INTEGER {
            return Err(JcsError::UnsafeInteger(u.to_string()));
        }
        out.extend_from_slice(u.to_string().as_bytes());
    } else if let Some(i) = n.as_i64() {
        if i.unsigned_abs() > MAX_SAFE_INTEGER {
            return Err(JcsError::UnsafeInteger(i.to_string()));
        }
        out.extend_from_slice(i.to_string().as_bytes());
    } else {
        let f = n
            .as_f64()
            .ok_or_else(|| JcsError::NonFinite(n.to_string()))?;
        write_f64(f, out)?;
    }
    Ok(())
}

/// Writes `f` as ECMAScript's `Number.prototype.toString()` (ECMA-262 Number::toString, radix 10).
pub(crate) fn write_f64(f: f64, out: &mut Vec<u8>) -> Result<(), JcsError> {
    if !f.is_finite() {
        return Err(JcsError::NonFinite(f.to_string()));
    }
    if f == 0.0 {
        out.push(b'0'); // both +0 and -0
        return Ok(());
    }
    if f < 0.0 {
        out.push(b'-');
    }
    // ECMAScript wants the fewest digits k that round-trip and, among k-digit candidates, the one
    // closest to the exact value (ties to even). Rust's shortest `{:e}` finds k but may pick the
    // other candidate of a tie (0x43143ff3c1cb0959 is ...206.25: ES says .2, shortest mode says
    // .3), so the digits come from exact formatting to k significant digits, which rounds the
    // exact binary value half-to-even.
    let shortest = format!("{:e}", f.abs());
    let k = shortest
        .split_once('e')
        .map_or(1, |(m, _)| m.bytes().filter(u8::is_ascii_digit).count());
    let sci = format!("{:.*e}", k - 1, f.abs());
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` always has an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` exponent is an integer");
    let mut digits: Vec<u8> = mantissa.bytes().filter(|b| *b != b'.').collect();
    while digits.len() > 1 && digits.last() == Some(&b'0') {
        digits.pop();
    }
    let k = digits.len() as i32;
    let n = exp + 1; // the value is 0.d1d2..dk × 10^n
    if k <= n && n <= 21 {
        out.extend_from_slice(&digits);
        out.extend(std::iter::repeat_n(b'0', (n - k) as usize));
    } else if 0 < n && n <= 21 {
        out.extend_from_slice(&digits[..n as usize]);
        out.push(b'.');
        out.extend_from_slice(&digits[n as usize..]);
    } else if -6 < n && n <= 0 {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', (-n) as usize));
        out.extend_from_slice(&digits);
    } else {
        out.push(digits[0]);
        if k > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        out.push(if n > 0 { b'+' } else { b'-' });
        out.extend_from_slice((n - 1).unsigned_abs().to_string().as_bytes());
    }
    Ok(())
}

/// A canonical JSON object cut into its members, so that members with known keys can be spliced
/// in later without re-canonicalizing the rest.
///
/// The ledger prepares an entry on the caller's thread (the expensive part) and its writer thread
/// splices in `index` and `prev`, which only it can assign. [`SplitObject::assemble`] output is
/// byte-for-byte what [`canonicalize`] produces for the object with those members added.
#[derive(Debug, Clone)]
pub(crate) struct SplitObject {
    /// The canonical members (`"key":value`), concatenated without separators.
    bytes: Vec<u8>,
    /// Each member's range in `bytes`, in canonical order.
    spans: Vec<Range<usize>>,
    /// For each reserved key, the member position it sorts before.
    slots: Vec<usize>,
}

impl SplitObject {
    /// Splits `map` into canonical members and finds where each of `reserved` (which MUST NOT be
    /// keys of `map`) sorts among them.
    pub(crate) fn new(
        map: &Map<String, Value>,
        reserved: &[&str],
    ) -> Result<SplitObject, JcsError> {
        let members = sorted_members(map);
        let mut bytes = Vec::with_capacity(256);
        let mut spans = Vec::with_capacity(members.len());
        for (key, value) in &members {
            debug_assert!(!reserved.contains(&key.as_str()));
            let start = bytes.len();
            write_string(key, &mut bytes);
            bytes.push(b':');
            canonicalize_into(value, &mut bytes)?;
            spans.push(start..bytes.len());
        }
        let slots = reserved
            .iter()
            .map(|r| members.partition_point(|(key, _)| cmp_keys(key, r) == Ordering::Less))
            .collect();
        Ok(SplitObject {
            bytes,
            spans,
            slots,
        })
    }

    /// The size of the members, for buffer sizing.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Appends the whole canonical object to `out`, with `inserts[i]` (a complete canonical member
    /// such as `"index":7`) placed at the slot of `reserved[i]`. `reserved` MUST have been given
    /// in canonical order, so inserts sharing a slot come out sorted.
    pub(crate) fn assemble(&self, inserts: &[&[u8]], out: &mut Vec<u8>) {
        debug_assert_eq!(inserts.len(), self.slots.len());
        out.push(b'{');
        let mut first = true;
        let mut sep = |out: &mut Vec<u8>| {
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
        };
        for pos in 0..=self.spans.len() {
            for (slot, insert) in self.slots.iter().zip(inserts) {
                if *slot == pos {
                    sep(out);
                    out.extend_from_slice(insert);
                }
            }
            if let Some(span) = self.spans.get(pos) {
                sep(out);
                out.extend_from_slice(&self.bytes[span.clone()]);
            }
        }
        out.push(b'}');
    }
}

mod check;

pub(crate) use check::{Slot, check_entry};

#[cfg(test)]
mod tests;
