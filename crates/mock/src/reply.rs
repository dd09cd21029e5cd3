//! What the scripted model "generates", independent of provider: text, reasoning, tool calls,
//! token counts, and how text is cut into stream deltas.

use serde_json::Value;

use crate::directive::Directive;
use crate::request::{MockRequest, tokens_for_chars};

const LOREM: &[&str] = &[
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "et",
    "dolore",
    "magna",
    "aliqua",
];

/// Tool-call arguments are streamed in this many pieces so clients must reassemble them.
const ARGUMENT_PIECES: usize = 3;

pub(crate) struct Reply {
    pub(crate) text: String,
    pub(crate) reasoning: Option<String>,
    pub(crate) tool_calls: Vec<ToolCall>,
    chunks: Option<usize>,
    pub(crate) input_tokens: u64,
    /// All generated tokens, reasoning included.
    pub(crate) output_tokens: u64,
    /// The part of `output_tokens` spent on reasoning.
    pub(crate) reasoning_tokens: u64,
}

pub(crate) struct ToolCall {
    pub(crate) name: String,
    pub(crate) arguments: Value,
    /// `arguments` encoded once, for APIs that carry arguments as a JSON string.
    pub(crate) arguments_json: String,
}

impl Reply {
    pub(crate) fn build(req: &MockRequest, d: &Directive, default_text: &str) -> Self {
        let text = if d.echo {
            req.echo_json()
        } else if let Some(text) = &d.text {
            text.clone()
        } else if let Some(n) = d.words {
            lorem(n)
        } else if !d.tool_calls.is_empty() {
            String::new()
        } else {
            default_text.to_owned()
        };
        let tool_calls: Vec<ToolCall> = d
            .tool_calls
            .iter()
            .map(|spec| ToolCall {
                name: spec.name.clone(),
                arguments_json: spec.arguments.to_string(),
                arguments: spec.arguments.clone(),
            })
            .collect();
        let reasoning_words = d.reasoning.as_deref().map_or(0, word_count);
        let generated = word_count(&text)
            + reasoning_words
            + tool_calls
                .iter()
                .map(|c| tokens_for_chars(c.arguments_json.chars().count()) as usize)
                .sum::<usize>();
        let usage = d.usage.as_ref();
        let output_tokens = usage
            .and_then(|u| u.output)
            .unwrap_or((generated as u64).max(1));
        Reply {
            input_tokens: usage
                .and_then(|u| u.input)
                .unwrap_or_else(|| req.input_tokens()),
            output_tokens,
            reasoning_tokens: (reasoning_words as u64).min(output_tokens),
            text,
            reasoning: d.reasoning.clone(),
            tool_calls,
            chunks: d.chunks,
        }
    }

    pub(crate) fn total_tokens(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }

    /// The text as stream deltas.
    pub(crate) fn text_pieces(&self) -> Vec<&str> {
        pieces(&self.text, self.chunks)
    }

    /// The reasoning as stream deltas (none without reasoning).
    pub(crate) fn reasoning_pieces(&self) -> Vec<&str> {
        self.reasoning
            .as_deref()
            .map(|r| pieces(r, self.chunks))
            .unwrap_or_default()
    }

    /// Whether the reply carries a text part: it does unless it is tool calls alone.
    pub(crate) fn has_text(&self) -> bool {
        !self.text.is_empty() || self.tool_calls.is_empty()
    }
}

impl ToolCall {
    /// The encoded arguments as stream deltas.
    pub(crate) fn argument_pieces(&self) -> Vec<&str> {
        split_even(&self.arguments_json, ARGUMENT_PIECES)
    }
}

fn lorem(n: usize) -> String {
    let mut out = String::with_capacity(n * 7);
    for (i, word) in LOREM.iter().cycle().take(n).enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

fn word_count(s: &str) -> usize {
    s.split_whitespace().count()
}

fn pieces(s: &str, chunks: Option<usize>) -> Vec<&str> {
    match chunks {
        Some(n) => split_even(s, n),
        None => split_words(s),
    }
}

/// One piece per word, each carrying the whitespace before it (as tokenizers emit " word"),
/// so the pieces concatenate back to `s` exactly.
pub(crate) fn split_words(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut ws_start = 0;
    let mut seen_word = false;
    let mut prev_ws = false;
    for (i, c) in s.char_indices() {
        let ws = c.is_whitespace();
        if ws && !prev_ws {
            ws_start = i;
        }
        if !ws && prev_ws && seen_word {
            out.push(&s[start..ws_start]);
            start = ws_start;
        }
        seen_word |= !ws;
        prev_ws = ws;
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

/// `s` cut into `n` pieces of nearly equal character counts (fewer when `s` is shorter).
pub(crate) fn split_even(s: &str, n: usize) -> Vec<&str> {
    let chars = s.chars().count();
    if chars == 0 {
        return Vec::new();
    }
    let n = n.clamp(1, chars);
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    let mut next = 1;
    for (count, (i, _)) in s.char_indices().enumerate() {
        if next < n && count == next * chars / n {
            out.push(&s[start..i]);
            start = i;
            next += 1;
        }
    }
    out.push(&s[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_leading_whitespace_and_rejoin() {
        let text = "  Hello from\tthe  mock. ";
        let p = split_words(text);
        assert_eq!(p, ["  Hello", " from", "\tthe", "  mock. "]);
        assert_eq!(p.concat(), text);
        assert!(split_words("").is_empty());
        assert_eq!(split_words("one"), ["one"]);
    }

    #[test]
    fn even_split_gives_exactly_n_pieces() {
        let text = "Hello from the mock upstream";
        for n in 1..=10 {
            let p = split_even(text, n);
            assert_eq!(p.len(), n);
            assert_eq!(p.concat(), text);
        }
        assert_eq!(split_even("héé", 10), ["h", "é", "é"]);
        assert!(split_even("", 3).is_empty());
    }

    #[test]
    fn lorem_cycles() {
        assert_eq!(lorem(0), "");
        assert_eq!(lorem(3), "lorem ipsum dolor");
        assert_eq!(word_count(&lorem(40)), 40);
    }
}
