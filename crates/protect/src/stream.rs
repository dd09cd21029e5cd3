//! Scanning text that arrives in pieces: one [`TextStream`] per output channel of a streamed
//! response (a choice's content, a tool call's arguments, a content block's text).
//!
//! A value can be split across stream frames (`jane.d` + `oe@example.org`), so a piece is not
//! released until the text after it shows that nothing detected could still change:
//! [`Scanner::stable_prefix`] says how much of the pending text is final, and everything after
//! it is held back (the bounded window: never more than the longest pattern, usually only a
//! trailing word or digit group). Released pieces come back rewritten by the policy's actions;
//! a detection spanning two pieces is replaced in the piece where it starts and removed from
//! the next, so the concatenated output is exactly the transformed text.
//!
//! Placeholders issued by the [`Vault`](crate::vault::Vault) are restored the same way, also
//! when a placeholder arrives split across pieces. This module keeps only the pending window
//! (plus a short committed context); it never logs and never keeps a value after release.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::detect::Scanner;
use crate::policy::ProtectPolicy;
use crate::transform::{self, Context, Finding};
use crate::{Category, Detection};

/// Committed text kept before the pending window so keyword-led detectors (`password=…`) and
/// word boundaries still see what came before.
const CONTEXT_BYTES: usize = 96;

/// Placeholder brackets (see [`crate::vault`]).
const OPEN: char = '\u{27E6}';
const CLOSE: char = '\u{27E7}';

/// Turns a placeholder back into its value when it was issued to this caller.
pub type Restore<'a> = &'a dyn Fn(&str) -> Option<String>;

/// One channel of streamed text.
#[derive(Debug, Default)]
pub struct TextStream {
    /// Committed context (`..ctx`) followed by pending text.
    buf: String,
    /// Bytes at the start of `buf` already released.
    ctx: usize,
    /// Channel offset of `buf[0]`.
    base: usize,
    /// Pending pieces in order: id and channel offset of their end.
    pieces: VecDeque<(u64, usize)>,
    /// Most pending bytes held back; 0 = no bound beyond the scanner's own.
    window: usize,
    /// Hold back for injection phrases too (when an injection action rewrites or blocks).
    hold_injection: bool,
}

/// What one [`TextStream::step`] released.
#[derive(Debug, Default)]
pub struct Step {
    /// Pieces now final, in order, with their rewritten text.
    pub released: Vec<(u64, String)>,
    /// Findings in the released text; offsets are channel offsets of the original text.
    pub findings: Vec<Finding>,
    /// A detection's action is `block`.
    pub blocked: bool,
    /// Placeholders restored to their values.
    pub restored: usize,
}

impl TextStream {
    /// An empty channel.
    pub fn new() -> TextStream {
        TextStream::default()
    }

    /// An empty channel that never holds back more than `window` bytes of pending text (a
    /// value longer than that may then be released in part before it is recognised).
    ///
    /// `hold_injection` also holds back text that may still become an injection phrase; only
    /// needed when an injection finding changes or blocks the text (by default it is recorded
    /// only).
    pub fn with_window(window: usize, hold_injection: bool) -> TextStream {
        TextStream {
            window,
            hold_injection,
            ..TextStream::default()
        }
    }

    /// Appends a piece of text; it is released by a later [`TextStream::step`].
    pub fn push(&mut self, id: u64, piece: &str) {
        self.buf.push_str(piece);
        self.pieces.push_back((id, self.base + self.buf.len()));
    }

    /// Whether the pending text is exactly `s`: the same whole string arriving again in the
    /// next event is a field repeated per event (a label, a status), not a delta.
    pub fn pending_is(&self, s: &str) -> bool {
        &self.buf[self.ctx..] == s
    }

    /// Whether pieces are waiting.
    pub fn is_pending(&self) -> bool {
        !self.pieces.is_empty()
    }

    /// Releases every piece that is final; with `last`, everything (the stream ended).
    ///
    /// `restore` turns a placeholder (`⟦EMAIL_1⟧`) back into its value when it was issued for
    /// this caller, else returns `None` and the placeholder stays.
    pub fn step(
        &mut self,
        scanner: &Scanner,
        policy: &ProtectPolicy,
        ctx: &Context<'_>,
        restore: Option<Restore<'_>>,
        last: bool,
    ) -> Step {
        let mut step = Step::default();
        if self.pieces.is_empty() {
            return step;
        }
        let mut detections = scanner.scan(&self.buf);
        // What started in the released context was handled when it was released.
        detections.retain(|d| d.start >= self.ctx);
        if restore.is_some() {
            merge_placeholders(&self.buf, self.ctx, &mut detections);
        }
        let stable = if last {
            self.buf.len()
        } else {
            let mut p = scanner
                .stable_prefix_with(&self.buf, self.hold_injection)
                .max(self.ctx);
            if restore.is_some() {
                p = p.min(open_placeholder(&self.buf, self.ctx));
            }
            if self.window > 0 && self.buf.len() - p > self.window {
                p = self.buf.len() - self.window;
                while !self.buf.is_char_boundary(p) {
                    p += 1;
                }
            }
            p
        };
        // The last piece end at or before `stable` that no detection straddles.
        let mut upto = None;
        for (i, &(_, end)) in self.pieces.iter().enumerate() {
            let end_rel = end - self.base;
            if end_rel > stable {
                break;
            }
            if !detections
                .iter()
                .any(|d| d.start < end_rel && d.end > end_rel)
            {
                upto = Some(i);
            }
        }
        let Some(last_piece) = upto else {
            return step;
        };
        // `at` runs across pieces: a value that starts in one piece is replaced there and its
        // remainder is dropped from the next.
        let mut at = self.ctx;
        let mut dets = detections.iter().peekable();
        let mut from = self.ctx;
        for _ in 0..=last_piece {
            let (id, end) = self.pieces.pop_front().expect("counted above");
            let end = end - self.base;
            let mut out = String::new();
            while let Some(d) = dets.peek() {
                if d.start >= end {
                    break;
                }
                let d = dets.next().expect("peeked");
                if d.start < at {
                    // Overlaps what was already written (a placeholder and a detection): the
                    // earlier one won.
                    continue;
                }
                out.push_str(&self.buf[at..d.start]);
                let value = &self.buf[d.start..d.end];
                if d.kind.as_ref() == PLACEHOLDER {
                    match restore.and_then(|r| r(value)) {
                        Some(v) => {
                            out.push_str(&v);
                            step.restored += 1;
                        }
                        None => out.push_str(value),
                    }
                } else {
                    let one = [Detection {
                        start: 0,
                        end: value.len(),
                        ..d.clone()
                    }];
                    let o = transform::apply(value, &one, policy, ctx);
                    step.blocked |= o.blocked;
                    for mut f in o.findings {
                        f.start = self.base + d.start;
                        f.end = self.base + d.end;
                        step.findings.push(f);
                    }
                    out.push_str(o.text.as_deref().unwrap_or(value));
                }
                at = d.end;
            }
            if at < end {
                out.push_str(&self.buf[at..end]);
                at = end;
            }
            step.released.push((id, out));
            from = end;
        }
        self.ctx = from;
        self.trim();
        step
    }

    /// Drops released text beyond the context window.
    fn trim(&mut self) {
        if self.ctx <= CONTEXT_BYTES * 2 {
            return;
        }
        let mut cut = self.ctx - CONTEXT_BYTES;
        while !self.buf.is_char_boundary(cut) {
            cut -= 1;
        }
        self.buf.drain(..cut);
        self.ctx -= cut;
        self.base += cut;
    }
}

/// The pseudo-type of a placeholder span inside a [`TextStream`].
const PLACEHOLDER: &str = "\u{27E6}placeholder";

/// Adds placeholder spans (`⟦LABEL_N⟧`) found after `from` to `detections`, dropping any
/// detection they overlap (a placeholder is never itself sensitive).
fn merge_placeholders(text: &str, from: usize, detections: &mut Vec<Detection>) {
    let kind: Arc<str> = Arc::from(PLACEHOLDER);
    let mut spans = Vec::new();
    let mut at = from;
    while let Some(off) = text[at..].find(OPEN) {
        let start = at + off;
        let body_start = start + OPEN.len_utf8();
        let Some(close) = text[body_start..].find(CLOSE) else {
            break;
        };
        let body = &text[body_start..body_start + close];
        let end = body_start + close + CLOSE.len_utf8();
        if is_placeholder_body(body) {
            spans.push(Detection {
                kind: kind.clone(),
                category: Category::Custom,
                start,
                end,
            });
            at = end;
        } else {
            at = body_start;
        }
    }
    if spans.is_empty() {
        return;
    }
    detections.retain(|d| !spans.iter().any(|s| d.start < s.end && s.start < d.end));
    detections.extend(spans);
    detections.sort_by_key(|d| d.start);
}

/// `LABEL_N`: upper-case letters, digits and underscores ending in `_` and a number.
fn is_placeholder_body(body: &str) -> bool {
    let Some((label, n)) = body.rsplit_once('_') else {
        return false;
    };
    !label.is_empty()
        && label.len() <= 64
        && label
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        && !n.is_empty()
        && n.len() <= 10
        && n.bytes().all(|b| b.is_ascii_digit())
}

/// Where a trailing placeholder that is not closed yet starts (or `text.len()`): it must be
/// held until its closing bracket shows whether it is one of ours.
fn open_placeholder(text: &str, from: usize) -> usize {
    let tail_from = text.len().saturating_sub(80).max(from);
    let mut tail_from = tail_from;
    while !text.is_char_boundary(tail_from) {
        tail_from -= 1;
    }
    match text[tail_from..].rfind(OPEN) {
        Some(off) if !text[tail_from + off..].contains(CLOSE) => tail_from + off,
        _ => text.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Direction, PolicySpec};

    fn setup() -> (Scanner, ProtectPolicy) {
        let scanner = Scanner::builtin();
        let policy = ProtectPolicy::compile(
            PolicySpec {
                presets: Some(vec!["secrets-block".into(), "pii-redact".into()]),
                ..PolicySpec::default()
            },
            &scanner.kinds(),
        )
        .expect("policy compiles");
        (scanner, policy)
    }

    /// Feeds `text` cut at `cuts`, stepping after each piece; returns the concatenated output,
    /// the findings and how many pieces were released before the end.
    fn run(text: &str, cuts: &[usize], restore: Option<Restore<'_>>) -> (String, Vec<Finding>) {
        let (scanner, policy) = setup();
        let ctx = Context {
            direction: Direction::Response,
            tenant: None,
            session: None,
            vault: None,
        };
        let mut s = TextStream::with_window(4096, false);
        let mut out = std::collections::BTreeMap::new();
        let mut findings = Vec::new();
        let mut prev = 0;
        let mut bounds: Vec<usize> = cuts.to_vec();
        bounds.push(text.len());
        for (id, &b) in bounds.iter().enumerate() {
            s.push(id as u64, &text[prev..b]);
            prev = b;
            let step = s.step(&scanner, &policy, &ctx, restore, false);
            findings.extend(step.findings);
            out.extend(step.released);
        }
        let step = s.step(&scanner, &policy, &ctx, restore, true);
        findings.extend(step.findings);
        out.extend(step.released);
        assert!(!s.is_pending());
        (out.into_values().collect(), findings)
    }

    #[test]
    fn a_value_split_anywhere_is_redacted_whole() {
        let text = "Write to jane.doe@example.org or call later. Token ghp_R4nd0mT0k3nV4lu3F0rT3st1ngOnlyAbC9xy end.";
        let whole = run(text, &[], None).0;
        assert_eq!(
            whole,
            "Write to [EMAIL] or call later. Token [GITHUB_TOKEN] end."
        );
        for cut in 1..text.len() {
            if !text.is_char_boundary(cut) {
                continue;
            }
            let (out, findings) = run(text, &[cut], None);
            assert_eq!(out, whole, "cut at {cut}");
            assert_eq!(findings.len(), 2, "cut at {cut}");
        }
        // Many small pieces.
        let cuts: Vec<usize> = (3..text.len()).step_by(3).collect();
        assert_eq!(run(text, &cuts, None).0, whole);
    }

    #[test]
    fn clean_prose_is_not_held_back() {
        let (scanner, policy) = setup();
        let ctx = Context {
            direction: Direction::Response,
            tenant: None,
            session: None,
            vault: None,
        };
        let mut s = TextStream::with_window(4096, false);
        s.push(1, "The quick brown fox ");
        let step = s.step(&scanner, &policy, &ctx, None, false);
        assert_eq!(step.released, vec![(1, "The quick brown fox ".to_string())]);
    }

    #[test]
    fn placeholders_split_across_pieces_are_restored() {
        let text = "Sure, mail \u{27E6}EMAIL_1\u{27E7} and \u{27E6}EMAIL_9\u{27E7} today.";
        let restore =
            |p: &str| (p == "\u{27E6}EMAIL_1\u{27E7}").then(|| "jane@example.org".to_string());
        for cut in 1..text.len() {
            if !text.is_char_boundary(cut) {
                continue;
            }
            let (out, _) = run(text, &[cut], Some(&restore));
            assert_eq!(
                out, "Sure, mail jane@example.org and \u{27E6}EMAIL_9\u{27E7} today.",
                "cut at {cut}"
            );
        }
    }
}
