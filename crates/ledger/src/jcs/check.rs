//! Checking that bytes already are RFC 8785 canonical JSON, in one pass and without building a
//! value — the verifier's and recovery's hot path.
//!
//! [`check_entry`] accepts exactly the byte strings `b` for which `canonicalize(parse(b)) == b`
//! (with `parse` = `serde_json`), and extracts the members the ledger owns. The differential
//! tests in `jcs/tests.rs` hold it to that definition.

use std::cmp::Ordering;

use super::{MAX_SAFE_INTEGER, cmp_keys, write_f64};

/// Deeper nesting is refused (as `serde_json` refuses it).
const MAX_DEPTH: usize = 128;

/// A top-level member the ledger owns, as found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum Slot {
    /// Not present.
    #[default]
    Absent,
    /// `null`.
    Null,
    /// A string (decoded).
    Text(String),
    /// Any other value.
    Other,
}

/// The ledger-owned members of a canonical entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntryMembers {
    /// `index`, if present as a non-negative integer.
    pub(crate) index: Option<u64>,
    /// `session`.
    pub(crate) session: Slot,
    /// `prev`.
    pub(crate) prev: Slot,
}

/// Checks that `bytes` is a canonical JSON object and returns its ledger-owned members.
pub(crate) fn check_entry(bytes: &[u8]) -> Result<EntryMembers, &'static str> {
    std::str::from_utf8(bytes).map_err(|_| "not UTF-8")?;
    let mut c = Checker { b: bytes, i: 0 };
    let mut members = EntryMembers {
        index: None,
        session: Slot::Absent,
        prev: Slot::Absent,
    };
    if c.peek() != Some(b'{') {
        return Err("not a JSON object");
    }
    c.object(1, Some(&mut members))?;
    if c.i != bytes.len() {
        return Err("trailing bytes after the object");
    }
    Ok(members)
}

struct Checker<'a> {
    b: &'a [u8],
    i: usize,
}

const NOT_CANONICAL: &str = "not in RFC 8785 canonical form";

impl Checker<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn expect(&mut self, byte: u8) -> Result<(), &'static str> {
        if self.peek() == Some(byte) {
            self.i += 1;
            Ok(())
        } else {
            Err(NOT_CANONICAL)
        }
    }

    fn value(&mut self, depth: usize) -> Result<(), &'static str> {
        match self.peek().ok_or(NOT_CANONICAL)? {
            b'{' => self.object(depth + 1, None),
            b'[' => self.array(depth + 1),
            b'"' => self.string().map(|_| ()),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number().map(|_| ()),
            _ => Err(NOT_CANONICAL),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), &'static str> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(NOT_CANONICAL)
        }
    }

    fn array(&mut self, depth: usize) -> Result<(), &'static str> {
        if depth > MAX_DEPTH {
            return Err("nested too deeply");
        }
        self.expect(b'[')?;
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.value(depth)?;
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(NOT_CANONICAL),
            }
        }
    }

    fn object(
        &mut self,
        depth: usize,
        mut top: Option<&mut EntryMembers>,
    ) -> Result<(), &'static str> {
        if depth > MAX_DEPTH {
            return Err("nested too deeply");
        }
        self.expect(b'{')?;
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        let mut previous: Option<Key> = None;
        loop {
            let key = self.string()?;
            if let Some(prev) = &previous
                && prev.cmp_to(&key, self.b) != Ordering::Less
            {
                return Err("object members are not in canonical order (or repeat)");
            }
            self.expect(b':')?;
            match top.as_deref_mut() {
                Some(top) => self.top_member(&key, top, depth)?,
                None => self.value(depth)?,
            }
            previous = Some(key);
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(NOT_CANONICAL),
            }
        }
    }

    /// A member of the entry object: captures the ledger's own members.
    fn top_member(
        &mut self,
        key: &Key,
        top: &mut EntryMembers,
        depth: usize,
    ) -> Result<(), &'static str> {
        let name = key.raw(self.b);
        match name {
            b"index" => top.index = self.number_or_value(depth)?,
            b"session" | b"prev" => {
                let slot = match self.peek() {
                    Some(b'"') => Slot::Text(self.string()?.decode(self.b)),
                    Some(b'n') => {
                        self.literal(b"null")?;
                        Slot::Null
                    }
                    _ => {
                        self.value(depth)?;
                        Slot::Other
                    }
                };
                if name == b"session" {
                    top.session = slot;
                } else {
                    top.prev = slot;
                }
            }
            _ => self.value(depth)?,
        }
        Ok(())
    }

    /// A value that may be a number; returns the integer if it is a canonical non-negative one.
    fn number_or_value(&mut self, depth: usize) -> Result<Option<u64>, &'static str> {
        match self.peek() {
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => self.value(depth).map(|()| None),
        }
    }

    /// Checks a canonical string; returns where its contents are and whether it has escapes.
    fn string(&mut self) -> Result<Key, &'static str> {
        self.expect(b'"')?;
        let start = self.i;
        let mut escaped = false;
        loop {
            let b = self.peek().ok_or(NOT_CANONICAL)?;
            match b {
                b'"' => break,
                0x00..=0x1f => return Err("raw control character in a string"),
                b'\\' => {
                    escaped = true;
                    let e = *self.b.get(self.i + 1).ok_or(NOT_CANONICAL)?;
                    match e {
                        b'"' | b'\\' | b'b' | b't' | b'n' | b'f' | b'r' => self.i += 2,
                        b'u' => {
                            // Only `\u00xx` (lowercase) for controls without a short escape.
                            let hex = self.b.get(self.i + 2..self.i + 6).ok_or(NOT_CANONICAL)?;
                            let ok = hex[0] == b'0'
                                && hex[1] == b'0'
                                && matches!(hex[2], b'0' | b'1')
                                && matches!(hex[3], b'0'..=b'9' | b'a'..=b'f');
                            if !ok {
                                return Err("non-canonical escape in a string");
                            }
                            let low = match hex[3] {
                                d @ b'0'..=b'9' => d - b'0',
                                d => d - b'a' + 10,
                            };
                            let value = (hex[2] - b'0') * 16 + low;
                            if matches!(value, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d) {
                                return Err("non-canonical escape in a string");
                            }
                            self.i += 6;
                        }
                        _ => return Err("non-canonical escape in a string"),
                    }
                }
                _ => self.i += 1,
            }
        }
        let end = self.i;
        self.i += 1;
        Ok(Key {
            start,
            end,
            escaped,
        })
    }

    /// Checks a canonical number; returns it if it is a non-negative integer.
    fn number(&mut self) -> Result<Option<u64>, &'static str> {
        let start = self.i;
        let b = self.b;
        let digits = |i: &mut usize| {
            let s = *i;
            while *i < b.len() && b[*i].is_ascii_digit() {
                *i += 1;
            }
            *i - s
        };
        let mut i = self.i;
        let negative = b.get(i) == Some(&b'-');
        if negative {
            i += 1;
        }
        let int_start = i;
        let int_len = digits(&mut i);
        if int_len == 0 || (int_len > 1 && b[int_start] == b'0') {
            return Err(NOT_CANONICAL);
        }
        let mut float = false;
        if b.get(i) == Some(&b'.') {
            i += 1;
            if digits(&mut i) == 0 {
                return Err(NOT_CANONICAL);
            }
            float = true;
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if digits(&mut i) == 0 {
                return Err(NOT_CANONICAL);
            }
            float = true;
        }
        self.i = i;
        let text = std::str::from_utf8(&b[start..i]).expect("ASCII");
        if !float {
            // Within ±(2^53 − 1) an integer is exact. Outside, the text can only have come from
            // a double (the writer refuses larger integers), so it is judged as one below:
            // `-10350730343821558` is the canonical form of the double -1.0350730343821558e16.
            let exact = if negative {
                text.parse::<i64>()
                    .ok()
                    .filter(|v| *v != 0 && v.unsigned_abs() <= MAX_SAFE_INTEGER)
                    .map(|_| None)
            } else {
                text.parse::<u64>()
                    .ok()
                    .filter(|v| *v <= MAX_SAFE_INTEGER)
                    .map(Some)
            };
            if let Some(integer) = exact {
                return Ok(integer);
            }
        }
        let f: f64 = text.parse().map_err(|_| NOT_CANONICAL)?;
        let mut canonical = Vec::with_capacity(text.len());
        write_f64(f, &mut canonical).map_err(|_| NOT_CANONICAL)?;
        if canonical != text.as_bytes() {
            return Err(NOT_CANONICAL);
        }
        Ok(None)
    }
}

/// A string's position in the input.
struct Key {
    start: usize,
    end: usize,
    escaped: bool,
}

impl Key {
    fn raw<'a>(&self, b: &'a [u8]) -> &'a [u8] {
        &b[self.start..self.end]
    }

    /// The string's value (canonical escapes only, as checked).
    fn decode(&self, b: &[u8]) -> String {
        let raw = std::str::from_utf8(self.raw(b)).expect("checked UTF-8");
        if !self.escaped {
            return raw.to_owned();
        }
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(ch) = chars.next() {
            if ch != '\\' {
                out.push(ch);
                continue;
            }
            match chars.next() {
                Some('b') => out.push('\u{8}'),
                Some('t') => out.push('\t'),
                Some('n') => out.push('\n'),
                Some('f') => out.push('\u{c}'),
                Some('r') => out.push('\r'),
                Some('u') => {
                    let hex: String = chars.by_ref().take(4).collect();
                    let code = u32::from_str_radix(&hex, 16).expect("checked escape");
                    out.push(char::from_u32(code).expect("a control character"));
                }
                Some(other) => out.push(other), // `"` and `\`
                None => {}
            }
        }
        out
    }

    fn cmp_to(&self, other: &Key, b: &[u8]) -> Ordering {
        if !self.escaped && !other.escaped {
            let a = std::str::from_utf8(self.raw(b)).expect("checked UTF-8");
            let c = std::str::from_utf8(other.raw(b)).expect("checked UTF-8");
            return cmp_keys(a, c);
        }
        cmp_keys(&self.decode(b), &other.decode(b))
    }
}
