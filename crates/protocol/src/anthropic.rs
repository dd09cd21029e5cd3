//! The Anthropic Messages API (`POST /v1/messages`, `POST /v1/messages/count_tokens`).
//!
//! Owns: reading Messages requests, buffered responses, `count_tokens` answers, error bodies and
//! the SSE event stream into the exchange model. Must not: render the gateway's own errors (see
//! [`crate::error`]) or treat server tools Anthropic runs itself (`server_tool_use`) as tool calls
//! for the agent.
//!
//! Usage is normalized as billed: Anthropic's `input_tokens` excludes cache reads and cache
//! writes, so the normalized input adds both back.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::Value;

use crate::ProtocolError;
use crate::exchange::{
    Content, ExchangeRequest, ExchangeResponse, Message, Role, ToolCall, ToolDefinition, Usage,
};
use crate::json::{
    self, Map, arguments_text, error_message, field, object, opt_array, opt_text, part, shape_err,
    str_of, string_of, u64_of,
};
use crate::protocol::{Outcome, Protocol, StreamDecoder};
use crate::route::{Operation, Route};

/// The Anthropic Messages API.
pub(crate) struct Anthropic;

impl Protocol for Anthropic {
    fn parse_request(
        &self,
        _route: &Route,
        body: &Value,
    ) -> Result<ExchangeRequest, ProtocolError> {
        let body = json::root(body)?;
        let mut req = ExchangeRequest {
            model: field(body, "model")
                .and_then(Value::as_str)
                .map(str::to_owned),
            stream: field(body, "stream")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            max_tokens: field(body, "max_tokens").and_then(Value::as_u64),
            ..ExchangeRequest::default()
        };
        match field(body, "system") {
            None => {}
            Some(Value::String(s)) => req.system.push(part(s, "$.system".to_owned())),
            Some(Value::Array(blocks)) => {
                for (i, block) in blocks.iter().enumerate() {
                    let path = format!("$.system[{i}].text");
                    let text = opt_text(object(block, &format!("$.system[{i}]"))?, "text", &path)?
                        .ok_or_else(|| shape_err(&path, "a string"))?;
                    req.system.push(part(text, path));
                }
            }
            Some(_) => return Err(shape_err("$.system", "a string or an array")),
        }
        let messages = match field(body, "messages") {
            Some(Value::Array(m)) => m,
            _ => return Err(shape_err("$.messages", "an array")),
        };
        for (i, message) in messages.iter().enumerate() {
            let path = format!("$.messages[{i}]");
            let m = object(message, &path)?;
            let role_path = format!("{path}.role");
            let role = opt_text(m, "role", &role_path)?
                .ok_or_else(|| shape_err(&role_path, "a string"))?;
            let mut content = Vec::new();
            let cpath = format!("{path}.content");
            match field(m, "content") {
                None => {}
                Some(Value::String(s)) => content.push(Content::Text(part(s, cpath))),
                Some(Value::Array(blocks)) => blocks_content(blocks, &cpath, &mut content)?,
                Some(_) => return Err(shape_err(&cpath, "a string or an array")),
            }
            req.messages.push(Message {
                role: match role {
                    "user" => Role::User,
                    "assistant" => Role::Assistant,
                    other => Role::Other(other.to_owned()),
                },
                content,
            });
        }
        if let Some(tools) = opt_array(body, "tools", "$.tools")? {
            req.tools.extend(tools.iter().map(|t| {
                ToolDefinition {
                    // Server tools (`web_search_20250305`, `bash_20250124`, …) have a `name` too.
                    name: string_of(t, "name")
                        .or_else(|| string_of(t, "type"))
                        .unwrap_or_default(),
                    description: string_of(t, "description"),
                    parameters: t.get("input_schema").filter(|s| !s.is_null()).cloned(),
                }
            }));
        }
        Ok(req)
    }

    fn parse_response(&self, route: &Route, body: &Value) -> ExchangeResponse {
        let mut out = ExchangeResponse {
            id: string_of(body, "id"),
            model: string_of(body, "model"),
            finish_reason: string_of(body, "stop_reason"),
            error: error_message(body),
            ..ExchangeResponse::default()
        };
        if let Some(u) = body.get("usage").filter(|u| u.is_object()) {
            let mut raw = RawUsage::default();
            raw.merge(u);
            out.usage = raw.normalize();
        } else if route.operation == Operation::CountTokens {
            out.usage.input_tokens = u64_of(body, "input_tokens");
        }
        for block in body
            .get("content")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let mut b = Block::start(block);
            b.fill_from(block);
            b.append_to(&mut out);
        }
        out
    }

    fn stream_decoder(&self, _route: &Route) -> Box<dyn StreamDecoder> {
        Box::new(MessagesStream::default())
    }
}

/// Content blocks of a message (or of a `tool_result`).
fn blocks_content(
    blocks: &[Value],
    path: &str,
    out: &mut Vec<Content>,
) -> Result<(), ProtocolError> {
    for (j, block) in blocks.iter().enumerate() {
        let bpath = format!("{path}[{j}]");
        let b = object(block, &bpath)?;
        let text_at = |key: &str| -> Result<crate::exchange::TextPart, ProtocolError> {
            let tpath = format!("{bpath}.{key}");
            let text = opt_text(b, key, &tpath)?.ok_or_else(|| shape_err(&tpath, "a string"))?;
            Ok(part(text, tpath))
        };
        match str_of(block, "type").unwrap_or_default() {
            "text" => out.push(Content::Text(text_at("text")?)),
            "thinking" => out.push(Content::Reasoning(text_at("thinking")?)),
            // Encrypted by Anthropic: nothing readable to inspect.
            "redacted_thinking" => {}
            "image" | "document" => {
                let source = block.get("source").unwrap_or(&Value::Null);
                match str_of(source, "type") {
                    // A plain-text document is client text like any other.
                    Some("text") => {
                        let spath = format!("{bpath}.source");
                        let data_path = format!("{spath}.data");
                        let text = opt_text(object(source, &spath)?, "data", &data_path)?
                            .ok_or_else(|| shape_err(&data_path, "a string"))?;
                        out.push(Content::Text(part(text, data_path)));
                    }
                    Some("content") => {
                        let spath = format!("{bpath}.source.content");
                        match source.get("content") {
                            Some(Value::String(s)) => out.push(Content::Text(part(s, spath))),
                            Some(Value::Array(inner)) => blocks_content(inner, &spath, out)?,
                            _ => return Err(shape_err(&spath, "a string or an array")),
                        }
                    }
                    _ => out.push(Content::Media {
                        mime_type: string_of(source, "media_type"),
                    }),
                }
            }
            "tool_use" => out.push(Content::ToolCall(ToolCall {
                id: string_of(block, "id"),
                name: string_of(block, "name").unwrap_or_default(),
                arguments: arguments_text(block.get("input")),
            })),
            "tool_result" => tool_result(b, block, &bpath, out)?,
            _ => {}
        }
    }
    Ok(())
}

/// A `tool_result` block: `content` is a string or text/image blocks; each text becomes one
/// result so its path points at that string.
fn tool_result(
    b: &Map,
    block: &Value,
    path: &str,
    out: &mut Vec<Content>,
) -> Result<(), ProtocolError> {
    let call_id = string_of(block, "tool_use_id");
    let cpath = format!("{path}.content");
    let mut inner = Vec::new();
    match field(b, "content") {
        None => inner.push(Content::Text(part("", cpath))),
        Some(Value::String(s)) => inner.push(Content::Text(part(s, cpath))),
        Some(Value::Array(blocks)) => blocks_content(blocks, &cpath, &mut inner)?,
        Some(_) => return Err(shape_err(&cpath, "a string or an array")),
    }
    out.extend(inner.into_iter().map(|c| match c {
        Content::Text(t) => Content::ToolResult {
            call_id: call_id.clone(),
            name: None,
            content: t,
        },
        other => other,
    }));
    Ok(())
}

/// Anthropic's raw counters. A stream's `message_start` carries the input counts and its
/// `message_delta` the final output count (newer API versions repeat the input counts there), so
/// each counter is replaced only when present and the sum is taken at the end.
#[derive(Debug, Default, Clone, Copy)]
struct RawUsage {
    fresh: Option<u64>,
    cache_read: Option<u64>,
    cache_write: Option<u64>,
    output: Option<u64>,
}

impl RawUsage {
    fn merge(&mut self, u: &Value) {
        let set = |slot: &mut Option<u64>, key: &str| {
            if let Some(n) = u64_of(u, key) {
                *slot = Some(n);
            }
        };
        set(&mut self.fresh, "input_tokens");
        set(&mut self.cache_read, "cache_read_input_tokens");
        set(&mut self.cache_write, "cache_creation_input_tokens");
        set(&mut self.output, "output_tokens");
    }

    /// Normalized as billed: input counts fresh tokens, cache reads and cache writes.
    fn normalize(self) -> Usage {
        let input = match (self.fresh, self.cache_read, self.cache_write) {
            (None, None, None) => None,
            (a, b, c) => Some(a.unwrap_or(0) + b.unwrap_or(0) + c.unwrap_or(0)),
        };
        Usage {
            input_tokens: input,
            output_tokens: self.output,
            cached_input_tokens: self.cache_read,
            reasoning_tokens: None,
        }
    }
}

/// One content block being assembled.
#[derive(Debug, Default)]
enum Block {
    Text(String),
    Thinking(String),
    ToolUse {
        id: Option<String>,
        name: String,
        /// The `input` given at block start, used when no `input_json_delta` follows.
        initial: String,
        /// Concatenated `partial_json` deltas.
        json: String,
        saw_delta: bool,
    },
    /// Blocks that carry nothing for the model (`redacted_thinking`, server tool blocks).
    #[default]
    Other,
}

impl Block {
    /// The block as announced by `content_block_start` (or a whole buffered block).
    fn start(b: &Value) -> Block {
        match str_of(b, "type") {
            Some("text") => Block::Text(String::new()),
            Some("thinking") => Block::Thinking(String::new()),
            Some("tool_use") => Block::ToolUse {
                id: string_of(b, "id"),
                name: string_of(b, "name").unwrap_or_default(),
                initial: arguments_text(b.get("input")),
                json: String::new(),
                saw_delta: false,
            },
            _ => Block::Other,
        }
    }

    /// A block whose `content_block_start` never came (a stream joined late or mangled): its
    /// kind is inferred from the delta's `type` so the text is not lost.
    fn for_delta(kind: Option<&str>) -> Block {
        match kind {
            Some("text_delta") => Block::Text(String::new()),
            Some("thinking_delta") => Block::Thinking(String::new()),
            Some("input_json_delta") => Block::ToolUse {
                id: None,
                name: String::new(),
                initial: String::new(),
                json: String::new(),
                saw_delta: false,
            },
            _ => Block::Other,
        }
    }

    /// Text present on a start or whole block (a start usually carries `""`).
    fn fill_from(&mut self, b: &Value) {
        match self {
            Block::Text(t) => t.push_str(str_of(b, "text").unwrap_or_default()),
            Block::Thinking(t) => t.push_str(str_of(b, "thinking").unwrap_or_default()),
            _ => {}
        }
    }

    /// A `content_block_delta`'s `delta`.
    fn delta(&mut self, d: &Value) {
        self.delta_parts(&DeltaParts {
            kind: str_of(d, "type"),
            text: str_of(d, "text"),
            thinking: str_of(d, "thinking"),
            partial_json: str_of(d, "partial_json"),
        });
    }

    fn delta_parts(&mut self, d: &DeltaParts<'_>) {
        match (self, d.kind) {
            (Block::Text(t), Some("text_delta")) => t.push_str(d.text.unwrap_or_default()),
            (Block::Thinking(t), Some("thinking_delta")) => {
                t.push_str(d.thinking.unwrap_or_default())
            }
            (
                Block::ToolUse {
                    json, saw_delta, ..
                },
                Some("input_json_delta"),
            ) => {
                // A call without arguments streams only `""`; its arguments are then the
                // start's `{}`, as in a buffered response.
                let piece = d.partial_json.unwrap_or_default();
                *saw_delta |= !piece.is_empty();
                json.push_str(piece);
            }
            // `signature_delta` and `citations_delta` carry nothing the exchange keeps.
            _ => {}
        }
    }

    fn append_to(self, out: &mut ExchangeResponse) {
        match self {
            Block::Text(t) => out.output_text.push_str(&t),
            Block::Thinking(t) => out.reasoning.push_str(&t),
            Block::ToolUse {
                id,
                name,
                initial,
                json,
                saw_delta,
            } => out.tool_calls.push(ToolCall {
                id,
                name,
                arguments: if saw_delta { json } else { initial },
            }),
            Block::Other => {}
        }
    }
}

/// The Messages SSE stream: `message_start`, `content_block_start`/`_delta`/`_stop` per block,
/// `message_delta`, `message_stop`, with `ping` and `error` events anywhere.
#[derive(Debug, Default)]
struct MessagesStream {
    id: Option<String>,
    model: Option<String>,
    /// By block `index`.
    blocks: BTreeMap<u64, Block>,
    usage: RawUsage,
    stop_reason: Option<String>,
    error: Option<String>,
}

/// What a delta carries, whichever way the event was read.
struct DeltaParts<'a> {
    kind: Option<&'a str>,
    text: Option<&'a str>,
    thinking: Option<&'a str>,
    partial_json: Option<&'a str>,
}

/// A `content_block_delta` event, the one most events of a stream are, read without building a
/// tree (that tree was the largest cost of decoding a stream). Any other member, a duplicate, or
/// a value of another type fails the read, and the general reading takes the event.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainDeltaEvent<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    index: Option<u64>,
    #[serde(borrow)]
    delta: PlainDelta<'a>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainDelta<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow)]
    thinking: Option<Cow<'a, str>>,
    #[serde(borrow)]
    partial_json: Option<Cow<'a, str>>,
}

impl MessagesStream {
    /// Any event, read as a tree.
    fn general(&mut self, name: Option<&str>, data: &[u8]) -> Outcome {
        let Some(event) = json::parse_event(data) else {
            return Outcome::Malformed;
        };
        let index = u64_of(&event, "index").unwrap_or(0);
        match json::event_type(&event, name) {
            "message_start" => {
                let m = event.get("message").unwrap_or(&Value::Null);
                self.id = string_of(m, "id").or(self.id.take());
                self.model = string_of(m, "model").or(self.model.take());
                if let Some(u) = m.get("usage").filter(|u| u.is_object()) {
                    self.usage.merge(u);
                }
            }
            "content_block_start" => {
                let b = event.get("content_block").unwrap_or(&Value::Null);
                let mut block = Block::start(b);
                block.fill_from(b);
                self.blocks.insert(index, block);
            }
            "content_block_delta" => {
                if let Some(d) = event.get("delta") {
                    self.blocks
                        .entry(index)
                        .or_insert_with(|| Block::for_delta(str_of(d, "type")))
                        .delta(d);
                }
            }
            "message_delta" => {
                if let Some(reason) = event.get("delta").and_then(|d| str_of(d, "stop_reason")) {
                    self.stop_reason = Some(reason.to_owned());
                }
                if let Some(u) = event.get("usage").filter(|u| u.is_object()) {
                    self.usage.merge(u);
                }
            }
            "message_stop" => return Outcome::Terminal,
            "error" => self.error = error_message(&event),
            // `ping`, `content_block_stop` and unknown future events change nothing.
            _ => {}
        }
        Outcome::Event
    }

    /// Applies a plain `content_block_delta`; `false` (nothing applied) for any other event.
    fn plain_delta(&mut self, event: &PlainDeltaEvent<'_>) -> bool {
        if event.kind != "content_block_delta" {
            return false;
        }
        let d = &event.delta;
        let parts = DeltaParts {
            kind: d.kind.as_deref(),
            text: d.text.as_deref(),
            thinking: d.thinking.as_deref(),
            partial_json: d.partial_json.as_deref(),
        };
        self.blocks
            .entry(event.index.unwrap_or(0))
            .or_insert_with(|| Block::for_delta(parts.kind))
            .delta_parts(&parts);
        true
    }
}

impl StreamDecoder for MessagesStream {
    fn event(&mut self, name: Option<&str>, data: &[u8]) -> Outcome {
        let data = json::trim(data);
        if data.is_empty() {
            return Outcome::Event;
        }
        if let Ok(event) = serde_json::from_slice::<PlainDeltaEvent<'_>>(data)
            && self.plain_delta(&event)
        {
            return Outcome::Event;
        }
        self.general(name, data)
    }

    fn output_len(&self) -> usize {
        self.blocks
            .values()
            .map(|b| match b {
                Block::Text(t) | Block::Thinking(t) => t.len(),
                Block::ToolUse {
                    name,
                    initial,
                    json,
                    ..
                } => name.len() + initial.len() + json.len(),
                Block::Other => 0,
            })
            .sum()
    }

    fn finish(self: Box<Self>) -> ExchangeResponse {
        let mut out = ExchangeResponse {
            id: self.id,
            model: self.model,
            usage: self.usage.normalize(),
            finish_reason: self.stop_reason,
            error: self.error,
            ..ExchangeResponse::default()
        };
        for block in self.blocks.into_values() {
            block.append_to(&mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::agreement::{self, sse_events};

    fn agree(events: &[(Option<String>, Vec<u8>)]) -> usize {
        agreement::agree::<MessagesStream>(
            events,
            |_, data| {
                serde_json::from_slice::<PlainDeltaEvent<'_>>(data)
                    .is_ok_and(|e| e.kind == "content_block_delta")
            },
            |d, name, data| d.general(name, data),
        )
    }

    #[test]
    fn plain_deltas_decode_as_the_general_reading_does() {
        let mut plain = 0;
        for fixture in [
            &include_bytes!("../tests/fixtures/anthropic/stream_text.sse")[..],
            include_bytes!("../tests/fixtures/anthropic/stream_multi.sse"),
            include_bytes!("../tests/fixtures/anthropic/stream_tool_use.sse"),
            include_bytes!("../tests/fixtures/anthropic/stream_error.sse"),
        ] {
            plain += agree(&sse_events(fixture));
        }
        assert!(
            plain > 5,
            "the fixtures took the plain reading {plain} times"
        );

        let start = |index: u32, block: &str| {
            (
                Some("content_block_start".to_string()),
                format!(
                    r#"{{"type":"content_block_start","index":{index},"content_block":{block}}}"#
                )
                .into_bytes(),
            )
        };
        let delta =
            |name: Option<&str>, data: &str| (name.map(str::to_owned), data.as_bytes().to_vec());
        let events = vec![
            start(0, r#"{"type":"text","text":"Hi"}"#),
            delta(
                None,
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" there"}}"#,
            ),
            delta(
                None,
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":null}}"#,
            ),
            delta(
                None,
                r#"{"type":"content_block_delta","delta":{"type":"text_delta","text":" no index"}}"#,
            ),
            delta(
                None,
                r#"{"type":"content_block_delta","index":1,"delta":{"type":"thinking_delta","thinking":"hmm"}}"#,
            ),
            delta(
                None,
                r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"a\":"}}"#,
            ),
            delta(
                None,
                r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"1}"}}"#,
            ),
            delta(
                None,
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"wrong block"}}"#,
            ),
            delta(
                None,
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"abc"}}"#,
            ),
            delta(
                None,
                r#"{"type":"content_block_delta","index":0.0,"delta":{"type":"text_delta","text":"float index"}}"#,
            ),
            delta(
                None,
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":["not text"]}}"#,
            ),
            delta(
                None,
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a"},"delta":{"type":"text_delta","text":"b"}}"#,
            ),
            delta(
                None,
                r#"{"type":"content_block_delta","index":3,"delta":{"type":"citations_delta","citation":{"x":1}}}"#,
            ),
            delta(
                Some("content_block_delta"),
                r#"{"index":0,"delta":{"type":"text_delta","text":" by name"}}"#,
            ),
            delta(
                Some("ping"),
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" typed wins"}}"#,
            ),
            delta(
                None,
                r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":9}}"#,
            ),
            delta(
                None,
                "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"\\ud800\"}}",
            ),
            delta(
                None,
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"escaped \"q\" \u00e9"}}"#,
            ),
            delta(None, "not json"),
            delta(Some("message_stop"), r#"{"type":"message_stop"}"#),
        ];
        assert_eq!(agree(&events), 9);
    }
}
