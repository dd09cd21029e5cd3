//! The content strings of a JSON text found in its bytes, with where each one is, so a stream
//! event can be scanned and rewritten without building a tree.
//!
//! Content protection looks at every streamed event. Parsing each into a `serde_json::Value`,
//! walking it, and walking it again to put released text back cost more than everything else the
//! gateway does per event (a B-tree per object, a heap string per key and value, all dropped a
//! moment later). [`content_spans`] reads the same strings straight from the bytes, validating
//! the JSON as it goes, and [`splice_strings`] writes replacements into the original bytes: an
//! event that changes keeps its members' order and formatting, and one that does not is never
//! re-serialized.
//!
//! Which strings are content is the rule of [`crate::visit_content_strings`], which the tests
//! hold this module to on random documents. One deliberate difference: a key repeated in an
//! object is visited every time it appears (a tree keeps only the last one, so a rewrite of the
//! tree would have let an earlier duplicate out unscanned).
//!
//! This module knows JSON only; it never decides what is sensitive.

use std::borrow::Cow;
use std::ops::Range;

use crate::content::{media, push_index, push_key, structural};

/// Deepest nesting read. Deeper documents are refused like invalid ones: `serde_json` refuses
/// them at 128, and the recursion below must stay far from the end of a worker thread's stack.
const MAX_DEPTH: usize = 512;

/// One content string of a JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentSpan<'a> {
    /// Its JSON path, as [`crate::visit_content_strings`] names it (`$.choices[0].delta.content`).
    pub path: String,
    /// The string literal's bytes in the document, quotes included.
    pub span: Range<usize>,
    /// The decoded string.
    pub text: Cow<'a, str>,
}

/// The content strings of the JSON text `json`, in document order, or `None` when `json` is
/// not one valid JSON value (surrounding whitespace allowed).
///
/// ```
/// use warden_protocol::content_spans;
/// let event = br#"{"id":"c1","choices":[{"index":0,"delta":{"content":"Hi \"you\""}}]}"#;
/// let spans = content_spans(event).unwrap();
/// assert_eq!(spans.len(), 1);
/// assert_eq!(spans[0].path, "$.choices[0].delta.content");
/// assert_eq!(spans[0].text, "Hi \"you\"");
/// assert_eq!(&event[spans[0].span.clone()], br#""Hi \"you\"""#);
/// assert!(content_spans(b"{\"a\":").is_none());
/// ```
pub fn content_spans(json: &[u8]) -> Option<Vec<ContentSpan<'_>>> {
    let mut reader = Reader {
        bytes: json,
        at: 0,
        out: Vec::new(),
        path: String::from("$"),
    };
    reader.whitespace();
    reader.value(true, 0)?;
    reader.whitespace();
    (reader.at == json.len()).then_some(reader.out)
}

/// `json` with each string literal at `edits[i].0` (a [`ContentSpan::span`]) replaced by the
/// JSON string for `edits[i].1`. Edits must be sorted and not overlap.
///
/// ```
/// use warden_protocol::{content_spans, splice_strings};
/// let event = br#"{"delta": {"content": "mail bob@example.com"}, "n": 1}"#;
/// let span = content_spans(event).unwrap().remove(0).span;
/// let out = splice_strings(event, &[(span, "mail [EMAIL]\n")]);
/// assert_eq!(out, br#"{"delta": {"content": "mail [EMAIL]\n"}, "n": 1}"#);
/// ```
pub fn splice_strings<T: AsRef<str>>(json: &[u8], edits: &[(Range<usize>, T)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len() + 16);
    let mut from = 0;
    for (span, text) in edits {
        out.extend_from_slice(&json[from..span.start]);
        serde_json::to_writer(&mut out, text.as_ref())
            .expect("writing a string to a Vec cannot fail");
        from = span.end;
    }
    out.extend_from_slice(&json[from..]);
    out
}

/// The text of one JSON string literal (a [`ContentSpan::span`] of a document), or `None` when
/// `literal` is not exactly one valid string literal. Borrowed unless it has escapes.
///
/// ```
/// use warden_protocol::string_literal;
/// assert_eq!(string_literal(br#""a\u00e9""#).as_deref(), Some("aé"));
/// assert_eq!(string_literal(br#""a" "#), None);
/// ```
pub fn string_literal(literal: &[u8]) -> Option<Cow<'_, str>> {
    let mut reader = Reader {
        bytes: literal,
        at: 0,
        out: Vec::new(),
        path: String::new(),
    };
    if reader.peek()? != b'"' {
        return None;
    }
    let (_, text) = reader.string()?;
    (reader.at == literal.len()).then_some(text)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    out: Vec<ContentSpan<'a>>,
    /// The path of the value being read.
    path: String,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// Reads one value at `self.at`; its strings are content when `collect` is set.
    fn value(&mut self, collect: bool, depth: usize) -> Option<()> {
        match self.peek()? {
            b'{' => self.object(collect, depth + 1),
            b'[' => self.array(collect, depth + 1),
            b'"' => {
                let (span, text) = self.string()?;
                // A data URL is an inline file, never text someone typed.
                if collect && !text.starts_with("data:") {
                    self.out.push(ContentSpan {
                        path: self.path.clone(),
                        span,
                        text,
                    });
                }
                Some(())
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number(),
        }
    }

    fn object(&mut self, collect: bool, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.at += 1;
        self.whitespace();
        if self.eat(b'}').is_some() {
            return Some(());
        }
        // Strings under `data` are dropped again at the end if a sibling names a media type
        // (the key may come after `data`).
        let mut has_media_type = false;
        let mut data_ranges: Vec<Range<usize>> = Vec::new();
        loop {
            if self.peek()? != b'"' {
                return None;
            }
            let (_, key) = self.string()?;
            self.whitespace();
            self.eat(b':')?;
            self.whitespace();
            has_media_type |= matches!(&*key, "mime_type" | "mimeType" | "media_type");
            let keep = collect && !structural(&key) && !media(&key);
            let len = self.path.len();
            if keep {
                push_key(&mut self.path, &key);
            }
            let first = self.out.len();
            self.value(keep, depth)?;
            self.path.truncate(len);
            if keep && key == "data" {
                data_ranges.push(first..self.out.len());
            }
            self.whitespace();
            match self.peek()? {
                b',' => {
                    self.at += 1;
                    self.whitespace();
                }
                b'}' => {
                    self.at += 1;
                    break;
                }
                _ => return None,
            }
        }
        if has_media_type {
            for range in data_ranges.into_iter().rev() {
                self.out.drain(range);
            }
        }
        Some(())
    }

    fn array(&mut self, collect: bool, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.at += 1;
        self.whitespace();
        if self.eat(b']').is_some() {
            return Some(());
        }
        let mut index = 0;
        loop {
            let len = self.path.len();
            if collect {
                push_index(&mut self.path, index);
            }
            self.value(collect, depth)?;
            self.path.truncate(len);
            index += 1;
            self.whitespace();
            match self.peek()? {
                b',' => {
                    self.at += 1;
                    self.whitespace();
                }
                b']' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at + word.len();
        (self.bytes.get(self.at..end)? == word).then(|| self.at = end)
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> Option<()> {
        let digits = |r: &mut Self| {
            let start = r.at;
            while r.peek().is_some_and(|b| b.is_ascii_digit()) {
                r.at += 1;
            }
            (r.at > start).then_some(())
        };
        let _ = self.eat(b'-');
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => digits(self)?,
            _ => return None,
        }
        if self.eat(b'.').is_some() {
            digits(self)?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            digits(self)?;
        }
        Some(())
    }

    /// Reads the string literal at `self.at` (on its opening quote): its span and its text,
    /// borrowed unless it has escapes.
    fn string(&mut self) -> Option<(Range<usize>, Cow<'a, str>)> {
        let start = self.at;
        let body = start + 1;
        let bytes = self.bytes;
        // Fast path: no escape before the closing quote. One pass over the bytes: most strings
        // of an event are short keys and ids, where setting up a `memchr` costs more.
        let mut stop = body;
        loop {
            match *bytes.get(stop)? {
                b'"' => {
                    self.at = stop + 1;
                    let text = std::str::from_utf8(&bytes[body..stop]).ok()?;
                    return Some((start..self.at, Cow::Borrowed(text)));
                }
                b'\\' => break,
                0..0x20 => return None,
                _ => stop += 1,
            }
        }
        let mut text = Vec::with_capacity(stop - body + 16);
        let mut at = body;
        loop {
            let next = at + memchr::memchr2(b'"', b'\\', &bytes[at..])?;
            let raw = &bytes[at..next];
            if raw.iter().any(|&b| b < 0x20) {
                return None;
            }
            text.extend_from_slice(raw);
            if bytes[next] == b'"' {
                self.at = next + 1;
                let text = String::from_utf8(text).ok()?;
                return Some((start..self.at, Cow::Owned(text)));
            }
            at = next + 1;
            let escape = *bytes.get(at)?;
            at += 1;
            let byte = match escape {
                b'"' => b'"',
                b'\\' => b'\\',
                b'/' => b'/',
                b'b' => 0x08,
                b'f' => 0x0c,
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                b'u' => {
                    let c = self.unicode_escape(&mut at)?;
                    let mut buf = [0; 4];
                    text.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    continue;
                }
                _ => return None,
            };
            text.push(byte);
        }
    }

    /// The character of a `\u` escape and its four hex digits (`at` is just past the `u`),
    /// joining a surrogate pair; a lone surrogate is invalid, as `serde_json` has it.
    fn unicode_escape(&self, at: &mut usize) -> Option<char> {
        let hex = |at: &mut usize| -> Option<u32> {
            let digits = std::str::from_utf8(self.bytes.get(*at..*at + 4)?).ok()?;
            if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            *at += 4;
            u32::from_str_radix(digits, 16).ok()
        };
        let first = hex(at)?;
        match first {
            0xD800..=0xDBFF => {
                if self.bytes.get(*at..*at + 2)? != b"\\u" {
                    return None;
                }
                *at += 2;
                let second = hex(at)?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return None;
                }
                char::from_u32(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00))
            }
            0xDC00..=0xDFFF => None,
            c => char::from_u32(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::visit_content_strings;

    fn tree_strings(json: &[u8]) -> Option<Vec<(String, String)>> {
        let mut v: Value = serde_json::from_slice(json).ok()?;
        let mut seen = Vec::new();
        visit_content_strings(&mut v, &mut |p, s| seen.push((p.to_string(), s.clone())));
        seen.sort();
        Some(seen)
    }

    fn span_strings(json: &[u8]) -> Option<Vec<(String, String)>> {
        let spans = content_spans(json)?;
        for s in &spans {
            // Every span is the literal of its text.
            let literal: String = serde_json::from_slice(&json[s.span.clone()]).expect("literal");
            assert_eq!(
                literal,
                s.text,
                "span {:?} of {}",
                s.span,
                String::from_utf8_lossy(json)
            );
            assert_eq!(string_literal(&json[s.span.clone()]), Some(s.text.clone()));
        }
        let mut seen: Vec<_> = spans
            .into_iter()
            .map(|s| (s.path, s.text.into_owned()))
            .collect();
        seen.sort();
        Some(seen)
    }

    /// A small deterministic generator (xorshift), so failures reproduce.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    const KEYS: &[&str] = &[
        "content",
        "text",
        "model",
        "role",
        "type",
        "id",
        "name",
        "data",
        "mime_type",
        "mimeType",
        "media_type",
        "audio",
        "image",
        "b64_json",
        "arguments",
        "delta",
        "choices",
        "parts",
        "finish_reason",
        "url",
        "weird key",
        "k\"q",
        "ünï",
        "",
    ];
    const STRINGS: &[&str] = &[
        "hello",
        "",
        "data:image/png;base64,AAAA",
        "line\nbreak \"quoted\" back\\slash",
        "tab\tand\u{1}control",
        "ünïcødé ✓ 😀",
        "call me at 415-555-2671",
        "/slash/",
    ];

    fn gen_value(r: &mut Rng, depth: usize) -> Value {
        let pick = if depth > 4 { r.below(4) } else { r.below(7) };
        match pick {
            0 => Value::String(STRINGS[r.below(STRINGS.len())].to_string()),
            1 => json!(r.below(1000) as i64 - 500),
            2 => [json!(true), json!(false), Value::Null, json!(1.5e3)][r.below(4)].clone(),
            3 => Value::String(format!("s{}", r.next() % 97)),
            4 | 5 => {
                let mut m = serde_json::Map::new();
                for _ in 0..r.below(5) {
                    let k = KEYS[r.below(KEYS.len())];
                    m.insert(k.to_string(), gen_value(r, depth + 1));
                }
                Value::Object(m)
            }
            _ => Value::Array((0..r.below(4)).map(|_| gen_value(r, depth + 1)).collect()),
        }
    }

    /// Writes `v` with random whitespace and random (valid) escapes, so the scanner sees more
    /// spellings than `serde_json` itself produces.
    fn write_varied(r: &mut Rng, v: &Value, out: &mut String) {
        let ws = |r: &mut Rng, out: &mut String| {
            for _ in 0..r.below(3).saturating_sub(1) {
                out.push([' ', '\n', '\t', '\r'][r.below(4)]);
            }
        };
        match v {
            Value::Object(m) => {
                out.push('{');
                for (i, (k, item)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    ws(r, out);
                    write_string(r, k, out);
                    ws(r, out);
                    out.push(':');
                    ws(r, out);
                    write_varied(r, item, out);
                    ws(r, out);
                }
                out.push('}');
            }
            Value::Array(a) => {
                out.push('[');
                for (i, item) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    ws(r, out);
                    write_varied(r, item, out);
                    ws(r, out);
                }
                out.push(']');
            }
            Value::String(s) => write_string(r, s, out),
            other => out.push_str(&other.to_string()),
        }
    }

    fn write_string(r: &mut Rng, s: &str, out: &mut String) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c if r.below(4) == 0 => {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        out.push_str(&format!("\\u{u:04X}"));
                    }
                }
                '/' if r.below(2) == 0 => out.push_str("\\/"),
                c => out.push(c),
            }
        }
        out.push('"');
    }

    #[test]
    fn spans_find_what_the_tree_walk_finds() {
        let mut r = Rng(0x9E37_79B9_7F4A_7C15);
        let mut strings = 0;
        for _ in 0..4000 {
            let v = gen_value(&mut r, 0);
            let mut text = String::new();
            write_varied(&mut r, &v, &mut text);
            let expected = tree_strings(text.as_bytes()).expect("generated JSON parses");
            let got = span_strings(text.as_bytes()).expect("generated JSON scans");
            assert_eq!(got, expected, "{text}");
            strings += got.len();
        }
        // The generator must reach content strings, skipped keys and media siblings.
        assert!(strings > 1500, "only {strings} content strings generated");
    }

    #[test]
    fn broken_json_is_refused_where_serde_json_refuses_it() {
        let mut r = Rng(0xD1B5_4A32_D192_ED03);
        let mut refused = 0;
        for _ in 0..4000 {
            let v = gen_value(&mut r, 0);
            let mut text = String::new();
            write_varied(&mut r, &v, &mut text);
            let mut bytes = text.into_bytes();
            // One random byte replaced, removed or inserted.
            let at = r.below(bytes.len() + 1);
            let junk = b"\"\\{}[],:0-.eE tnfu\x01\xff"[r.below(20)];
            match r.below(3) {
                0 if at < bytes.len() => bytes[at] = junk,
                1 if at < bytes.len() => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, junk),
            }
            let tree = serde_json::from_slice::<Value>(&bytes);
            let spans = content_spans(&bytes);
            assert_eq!(
                spans.is_some(),
                tree.is_ok(),
                "{:?}: {tree:?}",
                String::from_utf8_lossy(&bytes)
            );
            refused += usize::from(spans.is_none());
            if tree.is_ok() {
                assert_eq!(span_strings(&bytes), tree_strings(&bytes));
            }
        }
        assert!(refused > 1000, "only {refused} mutations were invalid");
    }

    #[test]
    fn edge_cases() {
        // A duplicate key is visited both times; the tree keeps only the last.
        let dup = br#"{"content":"first","content":"second"}"#;
        let texts: Vec<_> = content_spans(dup)
            .unwrap()
            .into_iter()
            .map(|s| s.text)
            .collect();
        assert_eq!(texts, ["first", "second"]);
        // `data` is media when a media type follows it, too.
        let media = br#"{"data":"QUJD","media_type":"image/png","caption":"cat"}"#;
        let texts: Vec<_> = content_spans(media)
            .unwrap()
            .into_iter()
            .map(|s| s.text)
            .collect();
        assert_eq!(texts, ["cat"]);
        // Surrogate pairs join; lone surrogates are refused.
        let pair = br#"["\ud83d\ude00"]"#;
        assert_eq!(content_spans(pair).unwrap()[0].text, "😀");
        assert!(content_spans(br#"["\ud83d"]"#).is_none());
        assert!(content_spans(br#"["\ude00x"]"#).is_none());
        // Too deep for the reader: refused, as serde_json refuses far shallower ones.
        let deep = format!(
            "{}\"x\"{}",
            "[".repeat(MAX_DEPTH + 1),
            "]".repeat(MAX_DEPTH + 1)
        );
        assert!(content_spans(deep.as_bytes()).is_none());
        let ok = format!("{}\"x\"{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(content_spans(ok.as_bytes()).unwrap().len(), 1);
        // Scalars and whitespace around the value.
        assert_eq!(content_spans(b"  \"top\"\n").unwrap()[0].path, "$");
        assert!(content_spans(b"12 13").is_none());
        assert!(content_spans(b"").is_none());
        assert!(content_spans(b"01").is_none());
        assert!(content_spans(b"-").is_none());
        assert!(content_spans(b"1.").is_none());
        assert!(content_spans(b"1e").is_none());
        assert!(content_spans(b"{\"a\":1,}").is_none());
        assert!(content_spans(b"[1,]").is_none());
    }

    #[test]
    fn splicing_rewrites_only_the_edited_literals() {
        let event =
            b"{\"choices\":[{\"delta\":{\"content\":\"a\\u0041\"},\"index\":0}],\"x\":\"keep\\n\"}";
        let spans = content_spans(event).unwrap();
        let edits: Vec<(Range<usize>, &str)> = spans
            .iter()
            .map(|s| (s.span.clone(), "new \"text\""))
            .collect();
        let out = splice_strings(event, &edits);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["choices"][0]["delta"]["content"], "new \"text\"");
        assert_eq!(v["x"], "new \"text\"");
        assert_eq!(splice_strings::<&str>(event, &[]), event);
    }
}
