//! The received request as every handler sees it: head, raw body and parsed JSON, plus the
//! helpers that read provider-neutral facts from it (model, flags, text size, echo).

use std::borrow::Cow;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, Method, Uri};
use serde_json::{Map, Value};

/// Keys whose string values (or arrays of strings) are conversation text in some provider's
/// request shape; used to estimate input tokens without knowing the shape.
const TEXT_KEYS: &[&str] = &[
    "content",
    "text",
    "prompt",
    "input",
    "system",
    "instructions",
];

pub(crate) struct MockRequest {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    /// The body as JSON; `Null` when the body is empty or is not JSON.
    pub(crate) json: Value,
    /// Set when a non-empty body failed to parse as JSON.
    pub(crate) json_error: Option<String>,
}

impl MockRequest {
    pub(crate) fn new(parts: Parts, body: Bytes) -> Self {
        let (json, json_error) = if body.iter().all(u8::is_ascii_whitespace) {
            (Value::Null, None)
        } else {
            match serde_json::from_slice(&body) {
                Ok(json) => (json, None),
                Err(e) => (Value::Null, Some(e.to_string())),
            }
        };
        MockRequest {
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            body,
            json,
            json_error,
        }
    }

    /// The request's `model`, or `default` when it names none.
    pub(crate) fn model<'a>(&'a self, default: &'a str) -> &'a str {
        self.json
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or(default)
    }

    /// A top-level boolean field.
    pub(crate) fn flag(&self, key: &str) -> Option<bool> {
        self.json.get(key).and_then(Value::as_bool)
    }

    /// A query parameter's raw value.
    pub(crate) fn query_param(&self, key: &str) -> Option<&str> {
        self.uri.query()?.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == key).then_some(v)
        })
    }

    /// Input tokens as the mock reports them: text characters / 4, rounded up, at least 1.
    pub(crate) fn input_tokens(&self) -> u64 {
        tokens_for_chars(text_chars(&self.json, false))
    }

    /// What the mock received, as the compact JSON string `"echo": true` replies with.
    pub(crate) fn echo_json(&self) -> String {
        let mut headers = Map::new();
        for (name, value) in &self.headers {
            let value = String::from_utf8_lossy(value.as_bytes());
            match headers.get_mut(name.as_str()) {
                Some(Value::String(existing)) => {
                    existing.push_str(", ");
                    existing.push_str(&value);
                }
                _ => {
                    headers.insert(name.as_str().to_owned(), Value::String(value.into_owned()));
                }
            }
        }
        let body = if self.json_error.is_some() {
            Value::String(String::from_utf8_lossy(&self.body).into_owned())
        } else {
            self.json.clone()
        };
        let echo = serde_json::json!({
            "method": self.method.as_str(),
            "path": self.uri.path(),
            "query": self.uri.query(),
            "headers": headers,
            "body": body,
        });
        echo.to_string()
    }
}

/// Tokens for `chars` characters of text, the way the mock estimates them.
pub(crate) fn tokens_for_chars(chars: usize) -> u64 {
    (chars.div_ceil(4) as u64).max(1)
}

/// Characters of conversation text anywhere in `value`.
pub(crate) fn text_chars(value: &Value, under_text_key: bool) -> usize {
    match value {
        Value::String(s) if under_text_key => s.chars().count(),
        Value::Array(items) => items.iter().map(|v| text_chars(v, under_text_key)).sum(),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| text_chars(v, TEXT_KEYS.contains(&k.as_str())))
            .sum(),
        _ => 0,
    }
}

/// The text of a message `content`: a string, or the `text` of each part of an array of parts.
pub(crate) fn content_text(content: &Value) -> Option<Cow<'_, str>> {
    match content {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Array(parts) => join_texts(parts.iter().filter_map(|p| p.get("text")?.as_str())),
        _ => None,
    }
}

/// The strings joined by newlines, borrowed when there is only one; `None` when there are none.
pub(crate) fn join_texts<'a>(mut texts: impl Iterator<Item = &'a str>) -> Option<Cow<'a, str>> {
    let first = texts.next()?;
    match texts.next() {
        None => Some(Cow::Borrowed(first)),
        Some(second) => {
            let mut joined = format!("{first}\n{second}");
            for t in texts {
                joined.push('\n');
                joined.push_str(t);
            }
            Some(Cow::Owned(joined))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_chars_counts_only_conversation_text() {
        let body = json!({
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "abcd"},
                {"role": "user", "content": [{"type": "text", "text": "éé"}]},
                {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]}
            ],
            "input": ["xy", "z"],
            "tool_use": {"input": {"city": "Paris"}}
        });
        assert_eq!(text_chars(&body, false), 4 + 2 + 3);
        assert_eq!(tokens_for_chars(0), 1);
        assert_eq!(tokens_for_chars(9), 3);
    }

    #[test]
    fn content_text_joins_parts() {
        let parts = json!([{"type": "text", "text": "a"}, {"type": "image_url"}, {"text": "b"}]);
        assert_eq!(content_text(&parts).as_deref(), Some("a\nb"));
        assert_eq!(content_text(&json!("x")).as_deref(), Some("x"));
        assert_eq!(content_text(&json!([{"type": "image"}])), None);
    }
}
