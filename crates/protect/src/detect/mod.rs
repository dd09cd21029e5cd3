//! Finds sensitive values in a string: the built-in PII and secret types, custom rules, and
//! (through [`crate::inject`]) prompt-injection phrasing.
//!
//! One pass per string decides where anything could be: the text (NFKC-normalized, see
//! [`crate::normalize`]) is split into whitespace-separated chunks, and only runs of chunks with
//! a digit, an `@`, a long token, a `%` escape or an assignment keyword become *windows*. Each
//! built-in pattern runs only inside windows having the feature it needs, and checksum
//! validators run only on pattern matches. Clean prose therefore costs one byte-classification
//! loop and one keyword search.
//!
//! This module reports offsets only. It must not log, and it keeps no value it has seen.

mod builtin;
pub mod validate;

use std::sync::{Arc, LazyLock};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use base64::Engine;
use regex::Regex;
use regex_syntax::ast::ErrorKind as AstErrorKind;

pub use builtin::BUILTIN_TYPES;
use builtin::{
    BUILTINS, F_AT, F_DIGIT, F_KEY, F_LONG, F_PCT, FAMILIES, K, KEYWORDS, PEM_CAP, TOKEN_CAP,
};

use crate::normalize::Normalized;
use crate::{Category, Detection};

/// Validators a custom rule may name. Each runs on the match stripped of separators: `luhn`,
/// `verhoeff`, `mod11_10`, `elfproef` and `us_ssn` see its ASCII digits only, the others its ASCII
/// letters and digits.
pub const VALIDATORS: &[&str] = &[
    "luhn",
    "iban",
    "mod97",
    "verhoeff",
    "mod11_10",
    "elfproef",
    "es_dni",
    "it_codice_fiscale",
    "sg_nric",
    "uk_nino",
    "us_ssn",
];

/// Validators over digits only: the match is stripped to its ASCII digits (the others keep
/// ASCII letters and digits).
const DIGIT_VALIDATORS: &[&str] = &["luhn", "verhoeff", "mod11_10", "elfproef", "us_ssn"];

/// Longest value a custom rule may report; also the cap when its pattern is unbounded.
pub const CUSTOM_MAX_LEN: usize = 4096;

/// What a [`Scanner`] does besides the built-in PII and secret detectors.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Also decode base64 runs (24+ characters, valid padding, printable UTF-8 inside) and
    /// percent-encoded runs, and rescan the decoded text; a finding inside is reported over the
    /// whole encoded run with the inner type.
    pub decode: bool,
    /// Also run the prompt-injection detectors ([`crate::inject::scan`]).
    pub injection: bool,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            decode: false,
            injection: true,
        }
    }
}

/// A user-defined detector (`[[protect.rules]]`).
#[derive(Debug, Clone)]
pub struct CustomRule {
    /// Type name reported for matches: `[a-z0-9_]+`, not a built-in or injection type.
    pub name: String,
    /// A `regex` crate pattern (linear time: no look-around, no backreferences).
    pub pattern: String,
    /// One of [`VALIDATORS`], run on the match with separators stripped.
    pub validator: Option<String>,
}

/// Why a custom rule was rejected. Messages name the rule and say what to change.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// The name is not `[a-z0-9_]+`.
    #[error("rule `{0}`: the name must be lower-case letters, digits and `_` only")]
    BadName(String),
    /// The name is a built-in or injection type, or another rule's.
    #[error(
        "rule `{0}`: the name is already taken by a built-in type or another rule; choose another name"
    )]
    NameTaken(String),
    /// The pattern uses look-around.
    #[error(
        "rule `{rule}`: look-around `{syntax}` is not supported (the regex engine runs in linear time; rewrite without look-around)"
    )]
    LookAround { rule: String, syntax: String },
    /// The pattern uses a backreference.
    #[error(
        "rule `{rule}`: backreference `{syntax}` is not supported (the regex engine runs in linear time; match the repeated part explicitly)"
    )]
    Backreference { rule: String, syntax: String },
    /// The pattern does not parse or compile.
    #[error("rule `{rule}`: invalid pattern: {message}")]
    Pattern { rule: String, message: String },
    /// The pattern can match the empty string.
    #[error(
        "rule `{0}`: the pattern can match an empty string; require at least one character (e.g. `+` instead of `*`)"
    )]
    EmptyMatch(String),
    /// The validator name is unknown.
    #[error("rule `{rule}`: unknown validator `{validator}`; valid validators are: {}", VALIDATORS.join(", "))]
    UnknownValidator { rule: String, validator: String },
}

type Validator = fn(&str) -> bool;

struct Custom {
    kind: Arc<str>,
    re: Regex,
    /// The validator and whether it reads digits only.
    validator: Option<(Validator, bool)>,
    max_len: usize,
}

/// The detection engine. Build once (compiling custom rules), share behind an `Arc`, scan many
/// strings concurrently.
pub struct Scanner {
    options: ScanOptions,
    custom: Vec<Custom>,
    builtin_kinds: Vec<Arc<str>>,
}

impl std::fmt::Debug for Scanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scanner")
            .field("options", &self.options)
            .field(
                "custom",
                &self.custom.iter().map(|c| &*c.kind).collect::<Vec<_>>(),
            )
            .finish()
    }
}

static KEYWORD_AC: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::LeftmostFirst)
        .build(KEYWORDS)
        .expect("keyword automaton")
});

/// A finding before overlap resolution, on normalized offsets.
struct Raw {
    start: usize,
    end: usize,
    kind: Arc<str>,
    category: Category,
    priority: u8,
}

fn validator_fn(name: &str) -> Option<Validator> {
    Some(match name {
        "luhn" => validate::luhn,
        "iban" => validate::iban,
        "mod97" => validate::mod97,
        "verhoeff" => validate::verhoeff,
        "mod11_10" => validate::mod11_10,
        "elfproef" => validate::elfproef,
        "es_dni" => validate::es_dni,
        "it_codice_fiscale" => validate::it_codice_fiscale,
        "sg_nric" => validate::sg_nric,
        "uk_nino" => validate::uk_nino,
        "us_ssn" => validate::us_ssn,
        _ => return None,
    })
}

fn compile_rule(rule: &CustomRule, taken: &[&str]) -> Result<Custom, RuleError> {
    let name = &rule.name;
    if name.is_empty()
        || !name
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
    {
        return Err(RuleError::BadName(name.clone()));
    }
    if taken.contains(&name.as_str()) {
        return Err(RuleError::NameTaken(name.clone()));
    }
    let ast = regex_syntax::ast::parse::Parser::new()
        .parse(&rule.pattern)
        .map_err(|e| {
            let syntax = rule
                .pattern
                .get(e.span().start.offset..e.span().end.offset)
                .unwrap_or("")
                .to_string();
            match e.kind() {
                AstErrorKind::UnsupportedLookAround => RuleError::LookAround {
                    rule: name.clone(),
                    syntax,
                },
                AstErrorKind::UnsupportedBackreference => RuleError::Backreference {
                    rule: name.clone(),
                    syntax,
                },
                _ => RuleError::Pattern {
                    rule: name.clone(),
                    message: e.kind().to_string(),
                },
            }
        })?;
    let hir = regex_syntax::hir::translate::Translator::new()
        .translate(&rule.pattern, &ast)
        .map_err(|e| RuleError::Pattern {
            rule: name.clone(),
            message: e.kind().to_string(),
        })?;
    if hir.properties().minimum_len().is_none_or(|n| n == 0) {
        return Err(RuleError::EmptyMatch(name.clone()));
    }
    let max_len = hir
        .properties()
        .maximum_len()
        .unwrap_or(CUSTOM_MAX_LEN)
        .min(CUSTOM_MAX_LEN);
    let validator = match &rule.validator {
        None => None,
        Some(v) => Some((
            validator_fn(v).ok_or_else(|| RuleError::UnknownValidator {
                rule: name.clone(),
                validator: v.clone(),
            })?,
            DIGIT_VALIDATORS.contains(&v.as_str()),
        )),
    };
    let re = Regex::new(&rule.pattern).map_err(|e| RuleError::Pattern {
        rule: name.clone(),
        message: e.to_string(),
    })?;
    Ok(Custom {
        kind: Arc::from(name.as_str()),
        re,
        validator,
        max_len,
    })
}

impl Scanner {
    /// A scanner with the given options and custom rules; fails on the first invalid rule.
    pub fn new(options: ScanOptions, custom: Vec<CustomRule>) -> Result<Scanner, RuleError> {
        let mut taken: Vec<&str> = BUILTIN_TYPES.iter().map(|t| t.0).collect();
        taken.extend(crate::inject::TYPES.iter().map(|t| t.0));
        let mut compiled = Vec::with_capacity(custom.len());
        for rule in &custom {
            let c = compile_rule(rule, &taken)?;
            taken.push(rule.name.as_str());
            compiled.push(c);
        }
        Ok(Scanner {
            options,
            custom: compiled,
            builtin_kinds: BUILTIN_TYPES.iter().map(|t| Arc::from(t.0)).collect(),
        })
    }

    /// The built-in detectors with default options and no custom rules.
    pub fn builtin() -> Scanner {
        Scanner::new(ScanOptions::default(), Vec::new()).expect("no custom rules")
    }

    /// The options this scanner was built with.
    pub fn options(&self) -> &ScanOptions {
        &self.options
    }

    /// Every value found in `text`: sorted by start, non-overlapping (on overlap the longer, then
    /// the more specific, finding wins), byte offsets into `text` on character boundaries.
    pub fn scan(&self, text: &str) -> Vec<Detection> {
        if text.is_empty() {
            return Vec::new();
        }
        let norm = Normalized::new(text);
        let s = norm.as_str();
        // Text dense with values yields a reading every ~40 bytes; growing the vector from
        // empty copied it a dozen times.
        let mut raw = Vec::with_capacity((s.len() / 32).min(8192));
        self.scan_normalized(s, self.options.decode, &mut raw);
        let resolved = resolve(raw);
        let mut out: Vec<Detection> = Vec::with_capacity(resolved.len());
        for r in resolved {
            let range = norm.to_original(r.start..r.end);
            // Two findings inside one multi-character normalization segment map to the same
            // original range; keep the first.
            if out.last().is_some_and(|d| d.end > range.start) {
                continue;
            }
            out.push(Detection {
                kind: r.kind,
                category: r.category,
                start: range.start,
                end: range.end,
            });
        }
        out
    }

    fn scan_normalized(&self, s: &str, decode: bool, raw: &mut Vec<Raw>) {
        let bytes = s.as_bytes();
        if memchr::memmem::find(bytes, b"-----BEGIN ").is_some() {
            let mut keys = Vec::new();
            builtin::private_keys(s, &mut keys);
            for (a, e) in keys {
                raw.push(self.raw_builtin(K::PRIVATE_KEY as usize, a, e));
            }
        }
        let wins = windows(s, decode);
        for group in groups(&wins) {
            let (gs, ge) = (group[0].start, group[group.len() - 1].end);
            let gflags = group.iter().fold(0, |f, w| f | w.flags);
            let hay = &s[..ge];
            for fam in FAMILIES.iter() {
                if gflags & fam.need != 0 {
                    run_family(fam, s, hay, group, ge, &mut |k, a, e| {
                        raw.push(self.raw_builtin(k, a, e))
                    });
                }
            }
            for det in BUILTINS.iter() {
                let in_family = det.group == 0 && FAMILIES.iter().any(|f| f.need == det.need);
                if gflags & det.need == 0 || in_family {
                    continue;
                }
                // Assignment windows are rare and short: search each on its own rather than the
                // whole group.
                if det.need == F_KEY {
                    for w in group.iter().filter(|w| w.flags & F_KEY != 0) {
                        self.run_builtin(s, det, w.start, w.end, &|_, _| true, raw);
                    }
                    continue;
                }
                let at = WindowCursor::new(group);
                self.run_builtin(s, det, gs, ge, &|a, e| at.holds(a, e, det.need), raw);
            }
            if decode {
                for w in group.iter().filter(|w| w.flags & (F_LONG | F_PCT) != 0) {
                    self.decode_window(s, w.start, w.end, raw);
                }
            }
        }
        for c in &self.custom {
            for m in c.re.find_iter(s) {
                if m.len() > c.max_len {
                    continue;
                }
                if let Some((v, digits_only)) = c.validator {
                    let keep = |ch: &char| {
                        if digits_only {
                            ch.is_ascii_digit()
                        } else {
                            ch.is_ascii_alphanumeric()
                        }
                    };
                    let stripped: String = m.as_str().chars().filter(keep).collect();
                    if !v(&stripped) {
                        continue;
                    }
                }
                raw.push(Raw {
                    start: m.start(),
                    end: m.end(),
                    kind: c.kind.clone(),
                    category: Category::Custom,
                    priority: 3,
                });
            }
        }
        if self.options.injection {
            let mut found = Vec::new();
            crate::inject::scan(s, &mut found);
            raw.extend(found.into_iter().map(|d| Raw {
                start: d.start,
                end: d.end,
                kind: d.kind,
                category: d.category,
                priority: 2,
            }));
        }
    }

    /// Runs one built-in over `[from, to)`, keeping matches `inside` accepts.
    fn run_builtin(
        &self,
        s: &str,
        det: &builtin::Builtin,
        from: usize,
        to: usize,
        inside: &dyn Fn(usize, usize) -> bool,
        raw: &mut Vec<Raw>,
    ) {
        let hay = &s[..to];
        let mut pos = from;
        while pos < to {
            let (a, e, next) = if let Some(find) = det.find {
                match find(hay, pos) {
                    Some((a, e)) => (a, e, e.max(a + 1)),
                    None => break,
                }
            } else if det.group == 0 {
                match det.re.find_at(hay, pos) {
                    Some(m) => (m.start(), m.end(), m.end().max(m.start() + 1)),
                    None => break,
                }
            } else {
                let Some(m) = det.re.find_at(hay, pos) else {
                    break;
                };
                let next = m.end().max(m.start() + 1);
                let value = match det.value_at.and_then(|f| f(s, m.start(), m.end())) {
                    Some(v) => Some((v, m.end())),
                    None => det
                        .re
                        .captures_at(hay, m.start())
                        .and_then(|c| c.get(det.group))
                        .map(|g| (g.start(), g.end())),
                };
                let Some((ga, ge)) = value else {
                    pos = next;
                    continue;
                };
                match cap_chars(s, ga, ge, det.value_cap) {
                    // The capped value ends the match: resume after it, as a bounded
                    // repetition would have.
                    Some(e) => (ga, e, e.max(m.start() + 1)),
                    None => (ga, ge, next),
                }
            };
            if inside(a, e)
                && let Some((k, a, e)) = (det.check)(s, a, e)
            {
                raw.push(self.raw_builtin(k, a, e));
            }
            pos = next;
            while !s.is_char_boundary(pos) {
                pos += 1;
            }
        }
    }

    fn raw_builtin(&self, k: usize, start: usize, end: usize) -> Raw {
        let (_, category, _) = BUILTIN_TYPES[k];
        // Phone numbers and IPv4 addresses are the loosest shapes: a number that is also a
        // valid SSN, IBAN or national id is that instead.
        let priority =
            if k == K::GENERIC as usize || k == K::PHONE as usize || k == K::IPV4 as usize {
                1
            } else if category == Category::Secret {
                3
            } else {
                2
            };
        Raw {
            start,
            end,
            kind: self.builtin_kinds[k].clone(),
            category,
            priority,
        }
    }

    /// Decodes base64 and percent-encoded runs inside a window and reports what the decoded text
    /// holds over the whole encoded run.
    fn decode_window(&self, s: &str, a: usize, e: usize, raw: &mut Vec<Raw>) {
        let w = &s[a..e];
        for (i, chunk) in chunk_spans(w) {
            let run_is = |c: u8| c.is_ascii_alphanumeric() || c == b'+' || c == b'/' || c == b'=';
            // Base64: maximal runs of the alphabet inside the chunk.
            let cb = chunk.as_bytes();
            let mut j = 0;
            while j < cb.len() {
                if !run_is(cb[j]) {
                    j += 1;
                    continue;
                }
                let st = j;
                while j < cb.len() && run_is(cb[j]) {
                    j += 1;
                }
                let run = &chunk[st..j];
                if run.len() >= 24
                    && run.len() <= TOKEN_CAP
                    && run.len() % 4 == 0
                    && !run.trim_end_matches('=').contains('=')
                    && let Some(text) = decode_base64(run)
                {
                    self.rescan_decoded(&text, a + i + st, a + i + j, raw);
                }
            }
            if chunk.contains('%') && chunk.len() <= TOKEN_CAP {
                let t = chunk.trim_matches(|c: char| {
                    matches!(c, '"' | '\'' | '<' | '>' | '(' | ')' | ',' | ';')
                });
                let off = chunk.find(t).unwrap_or(0);
                if has_percent_escape(t)
                    && let Ok(dec) = percent_encoding::percent_decode_str(t).decode_utf8()
                {
                    self.rescan_decoded(&dec, a + i + off, a + i + off + t.len(), raw);
                }
            }
        }
    }

    fn rescan_decoded(&self, text: &str, a: usize, e: usize, raw: &mut Vec<Raw>) {
        let norm = Normalized::new(text);
        let mut inner = Vec::new();
        self.scan_normalized(norm.as_str(), false, &mut inner);
        for r in inner {
            raw.push(Raw {
                start: a,
                end: e,
                ..r
            });
        }
    }

    /// Longest value, in bytes, that any enabled detector can report.
    pub fn max_match_len(&self) -> usize {
        let mut lens = vec![PEM_CAP, TOKEN_CAP];
        if self.options.injection {
            lens.push(crate::inject::MAX_MATCH_LEN);
        }
        lens.extend(self.custom.iter().map(|c| c.max_len));
        lens.into_iter().max().unwrap_or(TOKEN_CAP)
    }

    /// Every type this scanner can report, with its category.
    pub fn kinds(&self) -> Vec<(Arc<str>, Category)> {
        let mut v: Vec<(Arc<str>, Category)> = BUILTIN_TYPES
            .iter()
            .zip(&self.builtin_kinds)
            .map(|(t, k)| (k.clone(), t.1))
            .collect();
        if self.options.injection {
            v.extend(
                crate::inject::TYPES
                    .iter()
                    .map(|t| (Arc::from(t.0), Category::Injection)),
            );
        }
        v.extend(
            self.custom
                .iter()
                .map(|c| (c.kind.clone(), Category::Custom)),
        );
        v
    }

    /// How much of `text` (a prefix of a stream) is final: the largest char boundary `p` such
    /// that whatever follows, findings overlapping `..p` are the findings of `scan(text)` inside
    /// `..p`, and `text[p..]` can be scanned on its own afterwards.
    ///
    /// Held back (`p` moves to the earliest of):
    /// - the trailing chunk (no whitespace after it yet): it may grow into an email, key …;
    /// - a trailing run of digit groups (`[0-9A-Z +()./-]` with a digit, or ending in a
    ///   two-letter word: phones, cards, IBANs, NINOs, Steuer-IDs written with spaces), back to
    ///   the start of its first chunk;
    /// - an assignment keyword (`password`, `token`, …) among the last three chunks, since its
    ///   value may still be arriving;
    /// - an open `-----BEGIN … PRIVATE KEY-----` block, until its END line or 4096 bytes (and
    ///   a closed block that ends in the held tail, whole);
    /// - with injection detection on, the last [`crate::inject::MAX_MATCH_LEN`] bytes;
    /// - with custom rules, the longest custom match (rules may span whitespace).
    ///
    /// Then, until nothing moves, `p` goes further back while a multi-chunk value could straddle
    /// it (digit groups continuing across it, a keyword in the three chunks before it, a key
    /// block across it). Only the last `max_match_len() + 256` bytes are examined.
    ///
    /// Never more than `max_match_len()` plus one chunk is held back; a single run of digit
    /// groups or a token longer than that is cut there (so exactness is only guaranteed for
    /// values up to `max_match_len()`).
    pub fn stable_prefix(&self, text: &str) -> usize {
        self.stable_prefix_with(text, self.options.injection)
    }

    /// [`Scanner::stable_prefix`], holding back for injection phrases only when `injection`:
    /// a stream whose policy only records injection findings need not delay its text for them
    /// (the whole text is scanned again when the stream ends).
    pub fn stable_prefix_with(&self, text: &str, injection: bool) -> usize {
        // Only the tail can be held back, so only the tail is looked at (a stream calls this on
        // every frame).
        let mut base = text.len().saturating_sub(self.max_match_len() + 256);
        while !text.is_char_boundary(base) {
            base -= 1;
        }
        base + self.stable_prefix_of_tail(&text[base..], injection && self.options.injection)
    }

    fn stable_prefix_of_tail(&self, text: &str, injection: bool) -> usize {
        let norm = Normalized::new(text);
        let s = norm.as_str();
        let b = s.as_bytes();
        let len = b.len();
        let mut p = chunk_start(b, len);
        // Digit-group runs that may continue past the end.
        let mut i = len;
        let mut has_digit = false;
        while i > 0 {
            let c = b[i - 1];
            if c.is_ascii_digit() {
                has_digit = true;
            } else if !(c.is_ascii_uppercase()
                || matches!(c, b' ' | b'+' | b'(' | b')' | b'.' | b'/' | b'-'))
            {
                break;
            }
            i -= 1;
        }
        // Without a digit yet, only a two-letter chunk can open a value (a NINO's `AB 12 …`).
        let last = s[..len].trim_end_matches(' ').as_bytes();
        let n = last.len();
        let nino_prefix = n >= 2
            && last[n - 2..].iter().all(u8::is_ascii_uppercase)
            && (n == 2 || !last[n - 3].is_ascii_alphanumeric());
        if has_digit || nino_prefix {
            while i < len && b[i] == b' ' {
                i += 1;
            }
            p = p.min(chunk_start(b, i));
        }
        // Assignment keyword among the last three chunks.
        let mut chunks_seen = 0;
        let mut j = len;
        let mut tail_from = len;
        while j > 0 && chunks_seen < 3 {
            while j > 0 && is_ws(b[j - 1]) {
                j -= 1;
            }
            if j == 0 {
                break;
            }
            j = chunk_start(b, j);
            tail_from = j;
            chunks_seen += 1;
        }
        if let Some(m) = KEYWORD_AC.find(&s[tail_from..]) {
            p = p.min(chunk_start(b, tail_from + m.start()));
        }
        // Open private key block.
        if let Some(k) = memchr::memmem::rfind(b, b"-----BEGIN ") {
            // An open block may still grow; a closed one that ends in the held-back tail must be
            // held whole so it is never cut in two.
            let open = len - k < PEM_CAP && !pem_closed(s, k);
            let ends_late = builtin::private_key_at(s, k).is_some_and(|e| e > p);
            if open || ends_late {
                p = p.min(chunk_start(b, k));
            }
        }
        let mut tail_hold = 0;
        if injection {
            tail_hold = crate::inject::MAX_MATCH_LEN;
        }
        for c in &self.custom {
            tail_hold = tail_hold.max(c.max_len);
        }
        if tail_hold > 0 {
            p = p.min(chunk_start(b, len.saturating_sub(tail_hold)));
        }
        // Moving `p` back may put it inside a multi-chunk value that ends later (a keyword's
        // value, digit groups, a key block): repeat until nothing straddles it.
        let floor = len.saturating_sub(self.max_match_len() + 64);
        while p > floor {
            let q = straddle_start(s, p);
            if q >= p {
                break;
            }
            p = q;
        }
        let floor = len.saturating_sub(self.max_match_len() + 64);
        if p < floor {
            p = floor;
            while !s.is_char_boundary(p) {
                p += 1;
            }
        }
        norm.to_original(p..p).start
    }
}

fn is_group_char(c: u8) -> bool {
    c.is_ascii_digit()
        || c.is_ascii_uppercase()
        || matches!(c, b' ' | b'+' | b'(' | b')' | b'.' | b'/' | b'-')
}

/// For `p` at a chunk start: the start of the earliest chunk whose value could straddle `p`
/// (`p` itself when none can).
fn straddle_start(s: &str, p: usize) -> usize {
    let b = s.as_bytes();
    let mut q = p;
    // Digit groups: the chunk at `p` continues a run of group characters before it.
    if p < b.len() && is_group_char(b[p]) && b[p] != b' ' {
        let mut i = p;
        while i > 0 && is_group_char(b[i - 1]) {
            i -= 1;
        }
        while i < p && b[i] == b' ' {
            i += 1;
        }
        if i < p {
            q = q.min(chunk_start(b, i));
        }
    }
    // An assignment keyword in the three chunks before `p`: its value may be at `p`.
    let mut j = p;
    let mut from = p;
    for _ in 0..3 {
        while j > 0 && is_ws(b[j - 1]) {
            j -= 1;
        }
        if j == 0 {
            break;
        }
        j = chunk_start(b, j);
        from = j;
    }
    if let Some(m) = KEYWORD_AC.find(&s[from..p]) {
        q = q.min(chunk_start(b, from + m.start()));
    }
    // A key block running across `p`.
    if let Some(k) = memchr::memmem::rfind(&b[..p], b"-----BEGIN ")
        && builtin::private_key_at(s, k).is_some_and(|e| e > p)
    {
        q = q.min(chunk_start(b, k));
    }
    q
}

fn pem_closed(s: &str, k: usize) -> bool {
    match builtin::private_key_at(s, k) {
        // Closed only if the block ends with its END line (not the truncated-body fallback).
        Some(e) => s[..e].ends_with("-----") && e > k + 11 && s[k..e].contains("-----END "),
        None => {
            // Not a private key label (or the label is incomplete): hold while the BEGIN line
            // itself is still open.
            s[k + 11..].contains("-----")
        }
    }
}

fn is_ws(c: u8) -> bool {
    c.is_ascii_whitespace()
}

/// Start of the chunk containing or ending at `pos`.
fn chunk_start(b: &[u8], mut pos: usize) -> usize {
    while pos > 0 && !is_ws(b[pos - 1]) {
        pos -= 1;
    }
    pos
}

fn chunk_spans(s: &str) -> impl Iterator<Item = (usize, &str)> {
    s.split(|c: char| c.is_ascii_whitespace())
        .scan(0usize, |off, part| {
            let at = *off;
            *off += part.len() + 1;
            Some((at, part))
        })
        .filter(|(_, p)| !p.is_empty())
}

fn has_percent_escape(t: &str) -> bool {
    t.as_bytes()
        .windows(3)
        .any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit())
}

fn decode_base64(run: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(run).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let total = text.chars().count();
    let printable = text
        .chars()
        .filter(|c| !c.is_control() || c.is_whitespace())
        .count();
    (total > 0 && printable * 10 >= total * 9).then_some(text)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    start: usize,
    end: usize,
    flags: u8,
}

const C_DIGIT: u8 = 1;
const C_AT: u8 = 2;
const C_PCT: u8 = 4;
const C_LOWER: u8 = 8;
const C_WS: u8 = 16;
const C_ASSIGN: u8 = 32;

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = if c.is_ascii_digit() {
            C_DIGIT
        } else if c == b'@' {
            C_AT
        } else if c == b'%' {
            C_PCT
        } else if c.is_ascii_lowercase() {
            C_LOWER
        } else if c.is_ascii_whitespace() {
            C_WS
        } else if c == b':' || c == b'=' {
            C_ASSIGN
        } else {
            0
        };
        i += 1;
    }
    t
};

/// Chunks at least this long may be tokens/keys.
const LONG_CHUNK: usize = 20;
/// Chunks separated by at most this much whitespace join one window.
const MAX_GAP: usize = 3;

/// The regions of `s` worth running patterns on, each a run of whole chunks.
fn windows(s: &str, decode: bool) -> Vec<Window> {
    windows_with(s, decode, true)
}

/// [`windows`], with the jump to the next candidate byte switchable so a test can prove the jump
/// changes nothing.
fn windows_with(s: &str, decode: bool, skip: bool) -> Vec<Window> {
    let b = s.as_bytes();
    let n = b.len();
    let mut out = Vec::with_capacity((s.len() / 64).min(4096));
    let mut cur: Option<Window> = None;
    let mut pending: Option<(usize, usize, u8)> = None;
    let mut force = 0u8;
    let mut i = 0;
    let mut prev_end = 0;
    let mut candidates = Candidates::default();
    while i < n {
        if skip && cur.is_none() && pending.is_none() && force == 0 {
            // Nothing open: jump to the chunk holding the next byte that can start a window,
            // then back over the short glue chunks just before it ("+1" of "+1 415-555-…")
            // that the chunk loop would have kept pending, never before `i`.
            let Some(next) = candidates.next(b, i) else {
                break;
            };
            let mut j = next;
            while j > i && CLASS[b[j - 1] as usize] != C_WS {
                j -= 1;
            }
            // `password = …`: the keyword chunk is a key because of the `=` after it.
            if matches!(b[j], b':' | b'=') {
                let mut ws = j;
                while ws > i && matches!(b[ws - 1], b' ' | b'\t') {
                    ws -= 1;
                }
                if ws < j && ws > i && CLASS[b[ws - 1] as usize] != C_WS {
                    j = ws;
                    while j > i && CLASS[b[j - 1] as usize] != C_WS {
                        j -= 1;
                    }
                }
            }
            loop {
                let mut ws = j;
                while ws > i && CLASS[b[ws - 1] as usize] == C_WS {
                    ws -= 1;
                }
                if ws == j || j - ws > MAX_GAP || ws == i {
                    break;
                }
                let mut cs = ws;
                while cs > i && CLASS[b[cs - 1] as usize] != C_WS {
                    cs -= 1;
                }
                let glue = ws - cs <= 5
                    && b[cs..ws].iter().all(|&c| {
                        CLASS[c as usize] & (C_LOWER | C_DIGIT | C_AT | C_ASSIGN | C_PCT) == 0
                    });
                if !glue || cs == i && i > 0 && CLASS[b[i - 1] as usize] != C_WS {
                    break;
                }
                j = cs;
            }
            if j > i {
                // Whitespace before `j` belongs to the gap the chunk loop measures.
                i = j;
                while i > 0 && CLASS[b[i - 1] as usize] == C_WS {
                    i -= 1;
                }
            }
        }
        let ws_start = i;
        while i < n && CLASS[b[i] as usize] == C_WS {
            i += 1;
        }
        if i >= n {
            break;
        }
        let gap = if prev_end == 0 && ws_start == 0 {
            0
        } else {
            i - ws_start
        };
        let cs = i;
        let mut cls = 0u8;
        while i < n {
            let c = CLASS[b[i] as usize];
            if c == C_WS {
                break;
            }
            cls |= c;
            i += 1;
        }
        let ce = i;
        prev_end = ce;
        // Keywords matter only in an assignment: `:`/`=` in the chunk or right after it.
        let assign_next = {
            let mut j = ce;
            while j < n && matches!(b[j], b' ' | b'\t') {
                j += 1;
            }
            j < n && matches!(b[j], b':' | b'=')
        };
        let key = (cls & C_ASSIGN != 0 || assign_next) && KEYWORD_AC.is_match(&s[cs..ce]);
        let long = ce - cs >= LONG_CHUNK;
        let mut flags = 0u8;
        if cls & C_DIGIT != 0 {
            flags |= F_DIGIT;
        }
        if cls & C_AT != 0 {
            flags |= F_AT;
        }
        if long {
            flags |= F_LONG;
        }
        if key {
            flags |= F_KEY;
        }
        if decode && cls & C_PCT != 0 {
            flags |= F_PCT;
        }
        let interesting = flags != 0;
        let glue = !interesting && ce - cs <= 5 && cls & C_LOWER == 0;
        if interesting || force > 0 {
            if !key && force > 0 {
                force -= 1;
                // A value after a keyword belongs to the keyword's window.
                flags |= F_KEY;
            }
            if key {
                force = 2;
            }
            match cur.as_mut() {
                Some(w) if gap <= MAX_GAP || flags & F_KEY != 0 && w.flags & F_KEY != 0 => {
                    w.end = ce;
                    w.flags |= flags;
                }
                _ => {
                    out.extend(cur.take());
                    let (start, pflags) = match pending {
                        Some((ps, _, pf)) if gap <= MAX_GAP => (ps, pf),
                        _ => (cs, 0),
                    };
                    cur = Some(Window {
                        start,
                        end: ce,
                        flags: flags | pflags,
                    });
                }
            }
            pending = None;
        } else if glue {
            match cur.as_mut() {
                Some(w) if gap <= MAX_GAP => w.end = ce,
                _ => {
                    out.extend(cur.take());
                    pending = match pending {
                        Some((ps, _, pf)) if gap <= MAX_GAP => Some((ps, ce, pf)),
                        _ => Some((cs, ce, 0)),
                    };
                }
            }
        } else {
            out.extend(cur.take());
            pending = None;
        }
    }
    out.extend(cur);
    out
}

/// Finds the next byte that can start a window, keeping the masks of the last 64-byte block it
/// classified: on text dense with candidates the next jump often lands in the same block, which
/// was classified again from each jump's own offset (a sixteenth of all instructions).
#[derive(Default)]
struct Candidates {
    /// (block index, candidate bytes, non-whitespace bytes, ends of [`LONG_CHUNK`] runs).
    last: Option<(usize, u64, u64, u64)>,
}

impl Candidates {
    /// The first position at or after `from` holding a byte that makes a chunk interesting
    /// (digit, `@`, `%`, `:` or `=`) or ending the 20th byte of a run without whitespace
    /// ([`LONG_CHUNK`]). `from` is 0 or holds whitespace, so no run from before it counts.
    ///
    /// Aligned blocks of 64 bytes become bit masks in a branch-free pass, so prose without such
    /// bytes costs a few instructions per byte instead of the chunk loop's branch per word;
    /// the last block's masks are kept for the next jump, which on dense text often lands in
    /// the same block.
    fn next(&mut self, b: &[u8], from: usize) -> Option<usize> {
        const _: () = assert!(LONG_CHUNK <= 64);
        let mut k = from / 64;
        while k * 64 < b.len() {
            let (hot, long) = match self.last {
                Some((ck, hot, _, long)) if ck == k => (hot, long),
                prev => {
                    let (hot, solid) =
                        crate::swar::candidates_and_solid(&b[k * 64..(k * 64 + 64).min(b.len())]);
                    // A run crossing into this block counts only when the previous block was
                    // classified on the way here; otherwise `from` is in this block and no
                    // run before it matters.
                    let prev_solid = match prev {
                        Some((pk, _, ps, _)) if pk + 1 == k => ps,
                        _ => 0,
                    };
                    // Bit 64 + j of `r` is set when the LONG_CHUNK bytes ending at j are all
                    // non-space (the previous block's bits sit below).
                    let mut r = (u128::from(solid) << 64) | u128::from(prev_solid);
                    let mut width = 1;
                    while width * 2 <= LONG_CHUNK {
                        r &= r << width;
                        width *= 2;
                    }
                    r &= r << (LONG_CHUNK - width);
                    let long = (r >> 64) as u64 & solid;
                    self.last = Some((k, hot, solid, long));
                    (hot, long)
                }
            };
            let off = from.saturating_sub(k * 64);
            let found = (hot | long) >> off << off;
            if off < 64 && found != 0 {
                return Some(k * 64 + found.trailing_zeros() as usize);
            }
            k += 1;
        }
        None
    }
}

/// Runs a family over a group of windows. Every member matching at a candidate's start is
/// checked (leftmost-first alone would hide e.g. a card behind a phone-shaped prefix); when none
/// passes, the search resumes just after the start so candidates inside are not skipped.
///
/// Only a match starting and ending inside one window having the family's feature is kept, so
/// only starts inside such windows are tried, and only where [`builtin::StartTable`] says a
/// match can begin; at each, the family's DFA runs anchored. Trying every possible start in
/// order and taking the leftmost-first match at the first that has one is what the
/// unanchored leftmost-first search does ([`run_family_unanchored`], which a test compares
/// this with), without its reverse search for the start or its pass over the prose between.
fn run_family(
    fam: &builtin::Family,
    s: &str,
    hay: &str,
    group: &[Window],
    ge: usize,
    push: &mut dyn FnMut(usize, usize, usize),
) {
    use regex_automata::{Anchored, Input};
    let b = s.as_bytes();
    let mut cache = fam.caches.get();
    let mut candidate = Candidate::new(fam, group);
    let mut pos = 0;
    for w in group.iter().filter(|w| w.flags & fam.need != 0) {
        let mut a = pos.max(w.start);
        while let Some(at_start) = fam.starts.next(b, a, w.end) {
            a = at_start;
            let found = fam
                .match_at(&mut cache, hay.as_bytes(), a)
                .unwrap_or_else(|()| {
                    // Not expected (the patterns have no quit bytes and the cache never gives up),
                    // but the meta regex answers the same question whatever happens.
                    let input = Input::new(hay).range(a..ge).anchored(Anchored::Yes);
                    fam.first.search(&input).map(|m| (m.end(), m.pattern()))
                });
            a = match found {
                Some((end, pid)) => candidate.check(s, hay, ge, a, end, pid, push),
                None => a + 1,
            };
        }
        pos = a;
    }
}

/// [`run_family`] as one unanchored leftmost-first search after another from the group's
/// start: the plain reading of the family's patterns, kept as the reference the anchored search
/// is tested against.
#[cfg(test)]
fn run_family_unanchored(
    fam: &builtin::Family,
    s: &str,
    hay: &str,
    group: &[Window],
    gs: usize,
    ge: usize,
    push: &mut dyn FnMut(usize, usize, usize),
) {
    use regex_automata::Input;
    let mut candidate = Candidate::new(fam, group);
    let mut pos = gs;
    while pos < ge {
        let Some(m) = fam.first.search(&Input::new(hay).range(pos..ge)) else {
            break;
        };
        pos = candidate.check(s, hay, ge, m.start(), m.end(), m.pattern(), push);
    }
}

/// What a family does with a candidate: the member that matched first at its start, then
/// (when that reading fails or is only a phone number) every other member matching there.
struct Candidate<'f, 'g> {
    fam: &'f builtin::Family,
    at: WindowCursor<'g>,
    set: regex_automata::PatternSet,
}

impl<'f, 'g> Candidate<'f, 'g> {
    fn new(fam: &'f builtin::Family, group: &'g [Window]) -> Self {
        Candidate {
            fam,
            at: WindowCursor::new(group),
            set: regex_automata::PatternSet::new(fam.members.len()),
        }
    }

    /// Checks the match `[a, end)` of member `pid` and the other members at `a`, pushing what
    /// passes; returns where the search goes on: after the longest finding, or else at the
    /// next character after `a`, so candidates inside are not skipped.
    #[allow(clippy::too_many_arguments)]
    fn check(
        &mut self,
        s: &str,
        hay: &str,
        ge: usize,
        a: usize,
        end: usize,
        pid: regex_automata::PatternID,
        push: &mut dyn FnMut(usize, usize, usize),
    ) -> usize {
        use regex_automata::{Anchored, Input};
        let fam = self.fam;
        let need = fam.need;
        let mut resume = None;
        let primary = &BUILTINS[fam.members[pid.as_usize()]];
        let mut loose = false;
        if self.at.holds(a, end, need)
            && let Some((k, fa, fe)) = (primary.check)(s, a, end)
        {
            push(k, fa, fe);
            resume = Some(fe);
            // A phone reading is the loosest: the same digits may be an SSN or an id, which
            // then wins the overlap.
            loose = k == builtin::K::PHONE as usize;
        }
        // Only when the first reading fails (or is a phone number) are the other members tried
        // at the same start (token prefixes are distinct, so only the digit family has other
        // readings).
        if (resume.is_none() || loose) && need == F_DIGIT {
            self.set.clear();
            fam.all.which_overlapping_matches(
                &Input::new(hay).range(a..ge).anchored(Anchored::Yes),
                &mut self.set,
            );
            // A match of at most `max_len` bytes from `a` ends before `bound`, so the byte after
            // it is still in the slice and `\b` sees it; the search never runs past `bound`.
            let mut bound = a.saturating_add(fam.max_len).saturating_add(1).min(ge);
            while !hay.is_char_boundary(bound) {
                bound += 1;
            }
            for other in self.set.iter().filter(|&p| p != pid) {
                let det = &BUILTINS[fam.members[other.as_usize()]];
                let e = match det.re.find_at(&hay[..bound], a) {
                    Some(x) if x.start() == a => x.end(),
                    _ => continue,
                };
                if self.at.holds(a, e, need)
                    && let Some((k, fa, fe)) = (det.check)(s, a, e)
                {
                    push(k, fa, fe);
                    resume = Some(resume.unwrap_or(0).max(fe));
                }
            }
        }
        match resume {
            Some(r) if r > a => r,
            _ => {
                let mut p = a + 1;
                while !s.is_char_boundary(p) {
                    p += 1;
                }
                p
            }
        }
    }
}

/// Answers "is `[a, e)` inside one window having feature `need`" for a group of windows, for
/// spans whose starts mostly increase (each detector reports in order): a cursor walks forward
/// instead of a binary search per candidate.
struct WindowCursor<'g> {
    group: &'g [Window],
    k: std::cell::Cell<usize>,
}

impl<'g> WindowCursor<'g> {
    fn new(group: &'g [Window]) -> Self {
        WindowCursor {
            group,
            k: std::cell::Cell::new(0),
        }
    }

    fn holds(&self, a: usize, e: usize, need: u8) -> bool {
        let g = self.group;
        let mut k = self.k.get();
        if g.get(k).is_some_and(|w| w.start > a) {
            // A span before the cursor: back to the binary search, so out-of-order spans never
            // walk the group from its first window again.
            k = g.partition_point(|w| w.start <= a).saturating_sub(1);
        }
        // The last window starting at or before `a`.
        while k + 1 < g.len() && g[k + 1].start <= a {
            k += 1;
        }
        self.k.set(k);
        g.get(k)
            .is_some_and(|w| w.start <= a && e <= w.end && w.flags & need != 0)
    }
}

/// The end of `s[a..e]` cut to `cap` characters, when `cap` is set and the span is longer.
fn cap_chars(s: &str, a: usize, e: usize, cap: usize) -> Option<usize> {
    if cap == 0 || e - a <= cap {
        return None;
    }
    s[a..e].char_indices().nth(cap).map(|(i, _)| a + i)
}

/// Windows closer than this are searched with one regex call per detector (per-call overhead
/// dominates on text dense with candidates); matches are still kept only inside a window.
const GROUP_GAP: usize = 256;

fn groups(wins: &[Window]) -> impl Iterator<Item = &[Window]> {
    wins.chunk_by(|a, b| b.start - a.end <= GROUP_GAP)
}

/// Non-overlapping selection: within each cluster of overlapping findings, secrets win over
/// other values, and values (PII, secrets, custom) win over injection phrases — a phrase quoting an address must not stop the
/// address from being redacted; the phrase is kept up to where the value starts — then longer
/// findings win, then higher priority, then earlier ones.
fn resolve(mut raw: Vec<Raw>) -> Vec<Raw> {
    raw.retain(|r| r.start < r.end);
    // Each detector reports in order of start, so `raw` is a few sorted runs: the stable sort
    // merges runs, where the unstable one partitioned everything again.
    raw.sort_by_key(|r| r.start);
    let mut out = Vec::with_capacity(raw.len());
    let mut cluster: Vec<Raw> = Vec::new();
    let mut cluster_end = 0;
    for r in raw {
        if !cluster.is_empty() && r.start >= cluster_end {
            flush_cluster(&mut cluster, &mut out);
        }
        cluster_end = if cluster.is_empty() {
            r.end
        } else {
            cluster_end.max(r.end)
        };
        cluster.push(r);
    }
    flush_cluster(&mut cluster, &mut out);
    out
}

fn flush_cluster(cluster: &mut Vec<Raw>, out: &mut Vec<Raw>) {
    if cluster.len() <= 1 {
        out.append(cluster);
        return;
    }
    let phrase = |r: &Raw| r.category == Category::Injection;
    // Secrets first (a token in `https://ghp_…@github.com` is not an email address), phrases
    // last.
    let rank = |r: &Raw| match r.category {
        Category::Secret => 0,
        Category::Pii | Category::Custom => 1,
        Category::Injection => 2,
    };
    cluster.sort_by(|x, y| {
        rank(x)
            .cmp(&rank(y))
            .then((y.end - y.start).cmp(&(x.end - x.start)))
            .then(y.priority.cmp(&x.priority))
            .then(x.start.cmp(&y.start))
    });
    let first = out.len();
    for mut r in cluster.drain(..) {
        if phrase(&r)
            && let Some(cut) = out[first..]
                .iter()
                .filter(|t| t.start > r.start && t.start < r.end)
                .map(|t| t.start)
                .min()
        {
            r.end = cut;
        }
        if out[first..]
            .iter()
            .all(|t| t.end <= r.start || r.end <= t.start)
        {
            out.push(r);
        }
    }
    out[first..].sort_unstable_by_key(|r| r.start);
}

#[cfg(test)]
mod tests;
