//! Which strings of a provider body are content, and how to rewrite streamed events in place.
//!
//! Content protection must see every string a person or a model wrote — prompts, system text,
//! tool definitions, tool arguments and results, output deltas — and none of the structural
//! strings that SDKs match on (`model`, `role`, `type`, ids, finish reasons, tool names) or that
//! carry media (base64 images, audio). [`visit_content_strings`] walks any provider JSON body or
//! stream event with that one rule, so a new provider field is scanned by default rather than
//! missed. [`EventSplitter`] and [`replace_event_data`] let the gateway hold, rewrite and release
//! whole stream events while keeping each provider's framing byte for byte where nothing changed.
//!
//! This module knows JSON and framing only; it never decides what is sensitive.

use serde_json::Value;

use crate::framing::{Frame, Framing, Splitter};

/// Keys whose string values are structure, not content: rewriting them would break SDKs or
/// agents (a redacted tool name is a tool that does not exist), and they never hold what a
/// person wrote.
///
/// A `match`, not a list: every key of every streamed event is checked, and comparing it with
/// forty strings one by one was a visible share of the gateway's CPU per event.
pub(crate) fn structural(key: &str) -> bool {
    matches!(
        key,
        "model"
        | "role"
        | "type"
        | "id"
        | "object"
        | "name"
        | "tool_call_id"
        | "tool_use_id"
        | "call_id"
        | "item_id"
        | "response_id"
        | "finish_reason"
        | "finishReason"
        | "stop_reason"
        | "system_fingerprint"
        | "service_tier"
        | "status"
        | "mime_type"
        | "mimeType"
        | "media_type"
        | "format"
        | "encoding_format"
        | "signature"
        | "thoughtSignature"
        | "thought_signature"
        | "responseId"
        | "modelVersion"
        | "created_at"
        | "done_reason"
        | "voice"
        | "detail"
        | "b64_json"
        | "encrypted_content"
        | "tool_choice"
        // Per-chunk metadata that repeats in every stream event (Gemini's usage modality, OpenAI's
        // random `obfuscation` padding): never content, and treating it as a stream of text would
        // hold events back for nothing.
        | "modality"
        | "obfuscation"
    )
}

/// Keys whose values are media payloads (base64), skipped wherever they appear next to a media
/// type, and always for these names.
pub(crate) fn media(key: &str) -> bool {
    matches!(key, "b64_json" | "audio" | "image")
}

/// Calls `visit(path, string)` for every content string in `value`, depth first, in document
/// order. `path` is a JSON path in the style of [`crate::TextPart::path`]
/// (`$.messages[1].content[0].text`). The visitor may change the string in place.
///
/// Skipped: values of structural keys (`model`, `role`, `type`, ids, `name`, finish reasons,
/// media types, signatures), base64 media (`data` next to a media type, `data:` URLs), and
/// object keys. Numbers and booleans are not strings and are not visited.
///
/// ```
/// use serde_json::json;
/// use warden_protocol::visit_content_strings;
/// let mut body = json!({"model": "gpt-4o", "messages": [
///     {"role": "user", "content": "mail jane@example.org"},
///     {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]});
/// let mut seen = Vec::new();
/// visit_content_strings(&mut body, &mut |path, s| seen.push((path.to_string(), s.clone())));
/// assert_eq!(seen, [("$.messages[0].content".to_string(), "mail jane@example.org".to_string())]);
/// ```
pub fn visit_content_strings(value: &mut Value, visit: &mut dyn FnMut(&str, &mut String)) {
    let mut path = String::from("$");
    walk(value, &mut path, visit);
}

fn walk(value: &mut Value, path: &mut String, visit: &mut dyn FnMut(&str, &mut String)) {
    match value {
        // A data URL is an inline file, never text someone typed.
        Value::String(s) if !s.starts_with("data:") => visit(path, s),
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let len = path.len();
                push_index(path, i);
                walk(item, path, visit);
                path.truncate(len);
            }
        }
        Value::Object(map) => {
            let has_media_type = ["mime_type", "mimeType", "media_type"]
                .iter()
                .any(|k| map.contains_key(*k));
            for (key, item) in map.iter_mut() {
                if structural(key) || media(key) {
                    continue;
                }
                if key == "data" && has_media_type {
                    continue;
                }
                let len = path.len();
                push_key(path, key);
                walk(item, path, visit);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

pub(crate) fn push_index(path: &mut String, i: usize) {
    use std::fmt::Write;
    let _ = write!(path, "[{i}]");
}

pub(crate) fn push_key(path: &mut String, key: &str) {
    let plain = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if plain {
        path.push('.');
        path.push_str(key);
    } else {
        path.push_str("[\"");
        for c in key.chars() {
            if c == '"' || c == '\\' {
                path.push('\\');
            }
            path.push(c);
        }
        path.push_str("\"]");
    }
}

/// One complete stream event found by an [`EventSplitter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEvent {
    /// Absolute stream offset where the event starts (its first line, or an array element's
    /// opening brace).
    pub start: u64,
    /// SSE `event:` name, when set.
    pub name: Option<String>,
    /// The event's payload: SSE `data:` lines joined, the NDJSON line, or the array element.
    pub data: Vec<u8>,
}

/// Cuts bytes already known to hold whole events (what [`crate::StreamInspector::release`]
/// allows out) into events again, so a stage that rewrites events can hold and edit them one
/// by one. Fed the released bytes in order; offsets are absolute stream offsets.
#[derive(Debug)]
pub struct EventSplitter {
    splitter: Splitter,
}

impl EventSplitter {
    /// A splitter for a stream framing; `None` for [`Framing::Json`], which has no events.
    pub fn new(framing: Framing) -> Option<EventSplitter> {
        Some(EventSplitter {
            splitter: Splitter::new(framing)?,
        })
    }

    /// Splits the next released bytes into the events they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<StreamEvent> {
        let mut events = Vec::new();
        self.splitter
            .push(bytes, &mut |frame| keep_event(frame, &mut events));
        events
    }

    /// Flushes an event the stream did not terminate (a truncated stream).
    pub fn finish(&mut self) -> Vec<StreamEvent> {
        let mut events = Vec::new();
        self.splitter
            .finish(&mut |frame| keep_event(frame, &mut events));
        events
    }
}

/// Keeps a frame that is an event (malformed frames and a JSON array's end carry no payload).
fn keep_event(frame: Frame<'_>, events: &mut Vec<StreamEvent>) {
    if let Frame::Event { start, name, data } = frame {
        events.push(StreamEvent {
            start,
            name: name.map(str::to_owned),
            data: data.to_vec(),
        });
    }
}

/// Rewrites one event's payload inside its raw bytes.
///
/// `raw` runs from the event's start up to the next event's start (so it may end with
/// separators: blank lines, a comma); everything in it but the payload is kept: SSE `event:`,
/// `id:` and comment lines and line endings, NDJSON line endings, array separators. For SSE the
/// `data:` lines are replaced by one `data:` line (JSON payloads need no line breaks).
///
/// ```
/// use warden_protocol::{replace_event_data, Framing};
/// let raw = b"event: content_block_delta\ndata: {\"text\":\"a\"}\n\n";
/// let out = replace_event_data(Framing::Sse, raw, br#"{"text":"b"}"#);
/// assert_eq!(out, b"event: content_block_delta\ndata: {\"text\":\"b\"}\n\n");
/// ```
pub fn replace_event_data(framing: Framing, raw: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + data.len());
    match framing {
        Framing::Sse => {
            let mut replaced = false;
            let mut rest = raw;
            while !rest.is_empty() {
                let end = rest
                    .iter()
                    .position(|&b| b == b'\n' || b == b'\r')
                    .unwrap_or(rest.len());
                let mut next = end;
                if rest.get(next) == Some(&b'\r') {
                    next += 1;
                }
                if rest.get(next) == Some(&b'\n') {
                    next += 1;
                }
                let (line, ending) = (&rest[..end], &rest[end..next]);
                if line.starts_with(b"data:") {
                    if !replaced {
                        out.extend_from_slice(b"data: ");
                        out.extend_from_slice(data);
                        out.extend_from_slice(if ending.is_empty() { b"\n" } else { ending });
                        replaced = true;
                    }
                } else {
                    out.extend_from_slice(line);
                    out.extend_from_slice(ending);
                }
                rest = &rest[next..];
            }
        }
        Framing::Ndjson | Framing::JsonArrayStream => {
            // The payload is the first JSON value in `raw` (leading whitespace kept).
            let lead = raw.len() - raw.trim_ascii_start().len();
            let body = &raw[lead..];
            let len = json_value_len(body).unwrap_or(body.len());
            out.extend_from_slice(&raw[..lead]);
            out.extend_from_slice(data);
            out.extend_from_slice(&body[len..]);
        }
        Framing::Json => out.extend_from_slice(data),
    }
    out
}

/// Length of the JSON object or array at the start of `bytes`.
fn json_value_len(bytes: &[u8]) -> Option<usize> {
    let mut de = serde_json::Deserializer::from_slice(bytes).into_iter::<serde::de::IgnoredAny>();
    de.next()?.ok()?;
    Some(de.byte_offset())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn paths(mut v: Value) -> Vec<String> {
        let mut out = Vec::new();
        visit_content_strings(&mut v, &mut |p, _| out.push(p.to_string()));
        out
    }

    #[test]
    fn openai_request_strings_and_skips() {
        let body = json!({
            "model": "gpt-4o",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "name": "jane", "content": [
                    {"type": "text", "text": "hi"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}}]},
                {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function",
                    "function": {"name": "lookup", "arguments": "{\"q\":\"x\"}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "result"}],
            "tools": [{"type": "function", "function": {"name": "lookup", "description": "Look up",
                "parameters": {"type": "object", "properties": {"q": {"type": "string", "description": "query"}}}}}]
        });
        assert_eq!(
            paths(body),
            [
                "$.messages[0].content",
                "$.messages[1].content[0].text",
                "$.messages[2].tool_calls[0].function.arguments",
                "$.messages[3].content",
                "$.tools[0].function.description",
                "$.tools[0].function.parameters.properties.q.description",
            ]
        );
    }

    #[test]
    fn media_payloads_are_skipped() {
        let body = json!({"contents": [{"parts": [
            {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo"}},
            {"text": "what is this?"}]}],
            "messages": [{"content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}]}]});
        assert_eq!(paths(body), ["$.contents[0].parts[1].text"]);
    }

    #[test]
    fn odd_keys_are_quoted() {
        assert_eq!(
            paths(json!({"a b": "x", "ok": "y"})),
            ["$[\"a b\"]", "$.ok"]
        );
    }

    #[test]
    fn replaces_sse_data_keeping_other_lines() {
        let raw = b": ping\r\nid: 7\r\ndata: {\"a\":1}\r\n\r\n";
        let out = replace_event_data(Framing::Sse, raw, b"{\"a\":2}");
        assert_eq!(out, b": ping\r\nid: 7\r\ndata: {\"a\":2}\r\n\r\n");
        // Multi-line data collapses into one line.
        let raw = b"data: {\"a\":\ndata: 1}\n\n";
        assert_eq!(
            replace_event_data(Framing::Sse, raw, b"{\"a\":3}"),
            b"data: {\"a\":3}\n\n"
        );
    }

    #[test]
    fn replaces_ndjson_and_array_elements() {
        let out = replace_event_data(Framing::Ndjson, b"{\"a\":1}\r\n", b"{\"a\":22}");
        assert_eq!(out, b"{\"a\":22}\r\n");
        let out = replace_event_data(
            Framing::JsonArrayStream,
            b"{\"a\":\"}\"}\n,\r\n",
            b"{\"a\":\"x\"}",
        );
        assert_eq!(out, b"{\"a\":\"x\"}\n,\r\n");
    }

    #[test]
    fn splitter_reports_absolute_starts() {
        let mut s = EventSplitter::new(Framing::Sse).unwrap();
        let a = s.push(b"data: {\"x\":1}\n\n");
        let b = s.push(b"event: e\ndata: {\"x\":2}\n\n");
        assert_eq!(a[0].start, 0);
        assert_eq!(b[0].start, 15);
        assert_eq!(b[0].name.as_deref(), Some("e"));
        assert_eq!(b[0].data, b"{\"x\":2}");
        let mut s = EventSplitter::new(Framing::JsonArrayStream).unwrap();
        let events = s.push(b"[{\"x\":1}\n,{\"x\":2}");
        assert_eq!(
            events.iter().map(|e| e.start).collect::<Vec<_>>(),
            vec![1, 10]
        );
    }
}
