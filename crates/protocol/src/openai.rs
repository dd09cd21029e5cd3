//! OpenAI Chat Completions, legacy Completions, Embeddings and Models, as spoken by OpenAI and
//! every OpenAI-compatible server (vLLM, llama.cpp, LM Studio, OpenRouter, DeepSeek, …).
//!
//! Owns: reading those requests, their buffered responses and their SSE chunk streams into the
//! exchange model. Must not: know about the Responses API (see [`crate::openai_responses`]),
//! render errors (see [`crate::error`]) or decide anything about the exchange.
//!
//! Compatible servers add fields OpenAI does not have; the ones worth reading are reasoning text
//! (`reasoning_content` from DeepSeek and vLLM, `reasoning` from OpenRouter and newer vLLM).

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::Value;

use crate::ProtocolError;
use crate::exchange::{
    Content, ExchangeRequest, ExchangeResponse, Message, Role, ToolCall, ToolDefinition, Usage,
};
use crate::json::{
    self, Map, data_url_mime, error_message, field, object, opt_array, opt_text, part, shape_err,
    str_of, string_of, u64_of,
};
use crate::protocol::{Outcome, Protocol, StreamDecoder};
use crate::route::{Operation, Route};

/// OpenAI Chat Completions, Completions, Embeddings and Models.
pub(crate) struct OpenAi;

impl Protocol for OpenAi {
    fn parse_request(&self, route: &Route, body: &Value) -> Result<ExchangeRequest, ProtocolError> {
        let body = json::root(body)?;
        let mut req = ExchangeRequest {
            model: string_field(body, "model"),
            stream: field(body, "stream")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            max_tokens: field(body, "max_completion_tokens")
                .or_else(|| field(body, "max_tokens"))
                .and_then(Value::as_u64),
            ..ExchangeRequest::default()
        };
        match route.operation {
            Operation::Completions => {
                inputs(body, "prompt", &mut req.messages)?;
                if let Some(suffix) = opt_text(body, "suffix", "$.suffix")? {
                    req.messages.push(user_text(suffix, "$.suffix".to_owned()));
                }
            }
            Operation::Embeddings => inputs(body, "input", &mut req.messages)?,
            _ => chat_request(body, &mut req)?,
        }
        Ok(req)
    }

    fn parse_response(&self, _route: &Route, body: &Value) -> ExchangeResponse {
        let mut acc = ChatAccumulator::default();
        acc.meta(body);
        if let Some(choices) = body.get("choices").and_then(Value::as_array) {
            for (position, choice) in choices.iter().enumerate() {
                let index = u64_of(choice, "index").unwrap_or(position as u64);
                let slot = acc.choices.entry(index).or_default();
                if let Some(message) = choice.get("message") {
                    slot.message(message, false);
                }
                slot.common(choice);
            }
        }
        acc.finish()
    }

    fn stream_decoder(&self, _route: &Route) -> Box<dyn StreamDecoder> {
        Box::new(ChatStream::default())
    }
}

fn string_field(body: &Map, key: &str) -> Option<String> {
    field(body, key).and_then(Value::as_str).map(str::to_owned)
}

fn user_text(text: &str, path: String) -> Message {
    Message {
        role: Role::User,
        content: vec![Content::Text(part(text, path))],
    }
}

/// A Completions `prompt` or Embeddings `input`: a string, an array of strings, or token arrays
/// (which carry no text the gateway can read). Each input is its own user turn: the provider
/// treats them as independent prompts.
fn inputs(body: &Map, key: &str, out: &mut Vec<Message>) -> Result<(), ProtocolError> {
    let path = format!("$.{key}");
    match field(body, key) {
        None => Ok(()),
        Some(Value::String(s)) => {
            out.push(user_text(s, path));
            Ok(())
        }
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) => out.push(user_text(s, format!("{path}[{i}]"))),
                    Value::Number(_) | Value::Array(_) => {}
                    _ => return Err(shape_err(&format!("{path}[{i}]"), "a string or tokens")),
                }
            }
            Ok(())
        }
        Some(_) => Err(shape_err(&path, "a string or an array")),
    }
}

fn chat_request(body: &Map, req: &mut ExchangeRequest) -> Result<(), ProtocolError> {
    let messages = match field(body, "messages") {
        Some(Value::Array(m)) => m,
        _ => return Err(shape_err("$.messages", "an array")),
    };
    for (i, message) in messages.iter().enumerate() {
        let path = format!("$.messages[{i}]");
        let m = object(message, &path)?;
        let role = opt_text(m, "role", &format!("{path}.role"))?
            .ok_or_else(|| shape_err(&format!("{path}.role"), "a string"))?;
        let mut content = Vec::new();
        match role {
            "system" | "developer" => {
                // The system prompt is one field of the model; keeping it also as a turn would
                // make every stage see it twice.
                content_parts(m, &path, &mut content)?;
                for c in content {
                    if let Content::Text(t) = c {
                        req.system.push(t);
                    }
                }
                continue;
            }
            "tool" | "function" => {
                let call_id = string_field(m, "tool_call_id");
                let name = (role == "function")
                    .then(|| string_field(m, "name"))
                    .flatten();
                content_parts(m, &path, &mut content)?;
                let mut results: Vec<Content> = content
                    .into_iter()
                    .map(|c| match c {
                        Content::Text(t) => Content::ToolResult {
                            call_id: call_id.clone(),
                            name: name.clone(),
                            content: t,
                        },
                        other => other,
                    })
                    .collect();
                if results.is_empty() {
                    results.push(Content::ToolResult {
                        call_id,
                        name,
                        content: part("", format!("{path}.content")),
                    });
                }
                req.messages.push(Message {
                    role: Role::Tool,
                    content: results,
                });
                continue;
            }
            _ => {}
        }
        if role == "assistant" {
            for key in ["reasoning_content", "reasoning"] {
                if let Some(text) = opt_text(m, key, &format!("{path}.{key}"))? {
                    content.push(Content::Reasoning(part(text, format!("{path}.{key}"))));
                    break;
                }
            }
        }
        content_parts(m, &path, &mut content)?;
        if role == "assistant" {
            if let Some(text) = opt_text(m, "refusal", &format!("{path}.refusal"))? {
                content.push(Content::Text(part(text, format!("{path}.refusal"))));
            }
            if let Some(calls) = opt_array(m, "tool_calls", &format!("{path}.tool_calls"))? {
                for call in calls {
                    content.push(Content::ToolCall(request_tool_call(call)));
                }
            }
            if let Some(call) = field(m, "function_call") {
                content.push(Content::ToolCall(ToolCall {
                    id: None,
                    name: string_of(call, "name").unwrap_or_default(),
                    arguments: string_of(call, "arguments").unwrap_or_default(),
                }));
            }
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
        req.tools.extend(tools.iter().map(tool_definition));
    }
    if let Some(functions) = opt_array(body, "functions", "$.functions")? {
        req.tools.extend(functions.iter().map(function_definition));
    }
    Ok(())
}

/// A tool call in an assistant turn: `{"id","type":"function","function":{"name","arguments"}}`
/// or a custom tool's `{"id","type":"custom","custom":{"name","input"}}`.
fn request_tool_call(call: &Value) -> ToolCall {
    let (inner, args_key) = match call.get("custom") {
        Some(custom) => (custom, "input"),
        None => (call.get("function").unwrap_or(&Value::Null), "arguments"),
    };
    ToolCall {
        id: string_of(call, "id"),
        name: string_of(inner, "name").unwrap_or_default(),
        arguments: string_of(inner, args_key).unwrap_or_default(),
    }
}

fn function_definition(f: &Value) -> ToolDefinition {
    ToolDefinition {
        name: string_of(f, "name").unwrap_or_default(),
        description: string_of(f, "description"),
        parameters: f.get("parameters").filter(|p| !p.is_null()).cloned(),
    }
}

/// `{"type":"function","function":{..}}`, `{"type":"custom","custom":{..}}`; any other tool type
/// is named by its type.
fn tool_definition(tool: &Value) -> ToolDefinition {
    let ty = str_of(tool, "type").unwrap_or("function");
    match tool.get(ty).filter(|v| v.is_object()) {
        Some(inner) if ty == "custom" => ToolDefinition {
            parameters: inner.get("format").filter(|p| !p.is_null()).cloned(),
            ..function_definition(inner)
        },
        Some(inner) => function_definition(inner),
        None => ToolDefinition {
            name: ty.to_owned(),
            description: None,
            parameters: None,
        },
    }
}

/// A message's `content`: absent/null, a string, or an array of typed parts.
fn content_parts(m: &Map, path: &str, out: &mut Vec<Content>) -> Result<(), ProtocolError> {
    let path = format!("{path}.content");
    match field(m, "content") {
        None => Ok(()),
        Some(Value::String(s)) => {
            out.push(Content::Text(part(s, path)));
            Ok(())
        }
        Some(Value::Array(parts)) => {
            for (j, p) in parts.iter().enumerate() {
                let ppath = format!("{path}[{j}]");
                let pm = object(p, &ppath)?;
                let ty = str_of(p, "type").unwrap_or("text");
                out.push(match ty {
                    "text" | "input_text" | "output_text" | "refusal" => {
                        let key = if ty == "refusal" { "refusal" } else { "text" };
                        let tpath = format!("{ppath}.{key}");
                        let text = opt_text(pm, key, &tpath)?
                            .ok_or_else(|| shape_err(&tpath, "a string"))?;
                        Content::Text(part(text, tpath))
                    }
                    "image_url" => Content::Media {
                        mime_type: p
                            .get("image_url")
                            .and_then(|u| u.as_str().or_else(|| str_of(u, "url")))
                            .and_then(data_url_mime),
                    },
                    "input_audio" => Content::Media {
                        mime_type: p
                            .get("input_audio")
                            .and_then(|a| str_of(a, "format"))
                            .map(audio_mime),
                    },
                    "file" => Content::Media {
                        mime_type: p
                            .get("file")
                            .and_then(|f| str_of(f, "file_data"))
                            .and_then(data_url_mime),
                    },
                    _ => Content::Media { mime_type: None },
                });
            }
            Ok(())
        }
        Some(_) => Err(shape_err(&path, "a string or an array")),
    }
}

/// `input_audio.format` (`wav`, `mp3`) as a media type.
fn audio_mime(format: &str) -> String {
    match format {
        "mp3" => "audio/mpeg".to_owned(),
        other => format!("audio/{other}"),
    }
}

/// OpenAI `usage` in either vocabulary (`prompt_tokens`/`completion_tokens`, or the Responses
/// API's `input_tokens`/`output_tokens`, which some compatible servers return on chat too).
pub(crate) fn usage(u: &Value) -> Usage {
    let pick = |a: &str, b: &str| u64_of(u, a).or_else(|| u64_of(u, b));
    let details =
        |a: &str, b: &str, key: &str| u.get(a).or_else(|| u.get(b)).and_then(|d| u64_of(d, key));
    Usage {
        input_tokens: pick("prompt_tokens", "input_tokens"),
        output_tokens: pick("completion_tokens", "output_tokens"),
        cached_input_tokens: details(
            "prompt_tokens_details",
            "input_tokens_details",
            "cached_tokens",
        ),
        reasoning_tokens: details(
            "completion_tokens_details",
            "output_tokens_details",
            "reasoning_tokens",
        ),
    }
}

/// One choice being assembled, from a buffered `message` or from stream `delta`s.
#[derive(Debug, Default)]
struct Choice {
    text: String,
    reasoning: String,
    tool_calls: Vec<ToolCall>,
    /// Stream tool-call `index` → position in `tool_calls`.
    tool_slots: BTreeMap<u64, usize>,
    finish_reason: Option<String>,
}

/// Key of the legacy `function_call`, which has no index and is at most one per choice.
const FUNCTION_CALL_SLOT: u64 = u64::MAX;

impl Choice {
    /// Reads a `message` (buffered) or a `delta` (`streamed`); deltas append to what came before.
    fn message(&mut self, m: &Value, streamed: bool) {
        if let Some(text) = str_of(m, "content") {
            self.text.push_str(text);
        }
        if let Some(text) = str_of(m, "refusal") {
            self.text.push_str(text);
        }
        // DeepSeek and vLLM say `reasoning_content`; OpenRouter says `reasoning`, and some
        // servers send both with the same text.
        if let Some(text) = str_of(m, "reasoning_content").or_else(|| str_of(m, "reasoning")) {
            self.reasoning.push_str(text);
        }
        if let Some(calls) = m.get("tool_calls").and_then(Value::as_array) {
            for call in calls {
                if streamed {
                    self.tool_delta(call);
                } else {
                    self.tool_calls.push(request_tool_call(call));
                }
            }
        }
        if let Some(call) = m.get("function_call").filter(|c| c.is_object()) {
            let pos = *self
                .tool_slots
                .entry(FUNCTION_CALL_SLOT)
                .or_insert_with(|| {
                    self.tool_calls.push(ToolCall::default());
                    self.tool_calls.len() - 1
                });
            merge_call(&mut self.tool_calls[pos], call);
        }
    }

    /// A streamed tool-call delta: `id` and `name` arrive in the first delta of a call, argument
    /// text in many later ones, and calls of one choice interleave, keyed by `index`.
    fn tool_delta(&mut self, call: &Value) {
        let id = str_of(call, "id").filter(|id| !id.is_empty());
        let pos = match u64_of(call, "index") {
            Some(index) => *self.tool_slots.entry(index).or_insert_with(|| {
                self.tool_calls.push(ToolCall::default());
                self.tool_calls.len() - 1
            }),
            // Servers that omit `index` send one call at a time: a new id starts a new call.
            None => match self.tool_calls.last() {
                Some(last) if id.is_none() || last.id.as_deref() == id => self.tool_calls.len() - 1,
                _ => {
                    self.tool_calls.push(ToolCall::default());
                    self.tool_calls.len() - 1
                }
            },
        };
        let slot = &mut self.tool_calls[pos];
        if slot.id.is_none() {
            slot.id = id.map(str::to_owned);
        }
        let inner = call
            .get("function")
            .or_else(|| call.get("custom"))
            .unwrap_or(&Value::Null);
        merge_call(slot, inner);
        if let Some(input) = str_of(inner, "input") {
            slot.arguments.push_str(input);
        }
    }

    /// Fields beside the message: `finish_reason`, and legacy Completions' `text`.
    fn common(&mut self, choice: &Value) {
        if let Some(text) = str_of(choice, "text") {
            self.text.push_str(text);
        }
        if let Some(reason) = str_of(choice, "finish_reason") {
            self.finish_reason = Some(reason.to_owned());
        }
    }
}

/// Merges `{"name","arguments"}`: the name is set once, argument text accumulates.
fn merge_call(slot: &mut ToolCall, f: &Value) {
    if slot.name.is_empty()
        && let Some(name) = str_of(f, "name")
    {
        slot.name = name.to_owned();
    }
    if let Some(args) = str_of(f, "arguments") {
        slot.arguments.push_str(args);
    }
}

/// A chat (or completions) response being assembled.
#[derive(Debug, Default)]
struct ChatAccumulator {
    id: Option<String>,
    model: Option<String>,
    /// By choice `index`: streamed choices interleave, and the result lists them in index order
    /// whichever order their deltas came in.
    choices: BTreeMap<u64, Choice>,
    usage: Usage,
    error: Option<String>,
}

impl ChatAccumulator {
    fn meta(&mut self, v: &Value) {
        if self.id.is_none() {
            self.id = string_of(v, "id");
        }
        if self.model.is_none() {
            self.model = string_of(v, "model");
        }
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            self.usage = usage(u);
        }
        if let Some(message) = error_message(v) {
            self.error = Some(message);
        }
    }

    fn finish(self) -> ExchangeResponse {
        let mut out = ExchangeResponse {
            id: self.id,
            model: self.model,
            usage: self.usage,
            error: self.error,
            ..ExchangeResponse::default()
        };
        for choice in self.choices.into_values() {
            out.output_text.push_str(&choice.text);
            out.reasoning.push_str(&choice.reasoning);
            out.tool_calls.extend(choice.tool_calls);
            if out.finish_reason.is_none() {
                out.finish_reason = choice.finish_reason;
            }
        }
        out
    }
}

/// Asks an OpenAI Chat Completions or Completions stream for usage
/// (`stream_options.include_usage = true`) when the client did not: returns the body to send
/// instead, or `None` when it already asks (or is not such a stream). The gateway needs usage to
/// price the stream; [`crate::StreamInspector::hide_usage_chunk`] keeps the extra chunk from the
/// client. Other members keep their order and bytes.
pub fn request_stream_usage(body: &[u8]) -> Option<Vec<u8>> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let obj = v.as_object()?;
    if obj.get("stream") != Some(&Value::Bool(true)) {
        return None;
    }
    match obj.get("stream_options") {
        None => {
            // Insert right after the opening brace so the client's bytes stay as they were.
            let open = body.iter().position(|&b| b == b'{')?;
            let mut out = Vec::with_capacity(body.len() + 40);
            out.extend_from_slice(&body[..=open]);
            out.extend_from_slice(br#""stream_options":{"include_usage":true}"#);
            if !obj.is_empty() {
                out.push(b',');
            }
            out.extend_from_slice(&body[open + 1..]);
            Some(out)
        }
        Some(Value::Object(o)) if o.get("include_usage") == Some(&Value::Bool(true)) => None,
        Some(Value::Object(_)) => {
            let mut v = v;
            v["stream_options"]["include_usage"] = Value::Bool(true);
            serde_json::to_vec(&v).ok()
        }
        // `stream_options: null` or another shape: leave it to the provider to judge.
        Some(_) => None,
    }
}

/// Chat Completions (and Completions) SSE: `data: {chunk}` events, then `data: [DONE]`.
#[derive(Debug, Default)]
struct ChatStream {
    acc: ChatAccumulator,
}

impl ChatStream {
    /// Applies a chunk read as a [`PlainChunk`]; `false` (and nothing applied) when it is not
    /// one after all, for the general reading to take it.
    fn plain(&mut self, chunk: &PlainChunk<'_>) -> bool {
        if chunk.usage.is_some() || chunk.object.as_deref() == Some("error") {
            return false;
        }
        if self.acc.id.is_none() {
            self.acc.id = chunk.id.as_deref().map(str::to_owned);
        }
        if self.acc.model.is_none() {
            self.acc.model = chunk.model.as_deref().map(str::to_owned);
        }
        for (position, choice) in chunk.choices.iter().flatten().enumerate() {
            let index = choice.index.unwrap_or(position as u64);
            let slot = self.acc.choices.entry(index).or_default();
            if let Some(delta) = &choice.delta {
                for text in [&delta.content, &delta.refusal].into_iter().flatten() {
                    slot.text.push_str(text);
                }
                if let Some(text) = delta
                    .reasoning_content
                    .as_ref()
                    .or(delta.reasoning.as_ref())
                {
                    slot.reasoning.push_str(text);
                }
            }
            if let Some(text) = &choice.text {
                slot.text.push_str(text);
            }
            if let Some(reason) = &choice.finish_reason {
                slot.finish_reason = Some(reason.to_string());
            }
        }
        true
    }
}

/// The chunk nearly every event of a Chat Completions stream is (text deltas, the role chunk,
/// the finish chunk), read without building a tree: that tree was the largest cost of decoding
/// a stream. Only what [`ChatStream::event`]'s general reading would take from it is kept, with
/// the same types; any other member (tool calls, usage, an error, a `message`), a duplicate, or
/// a value of another type fails the read, and the general reading takes the chunk.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainChunk<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow)]
    object: Option<Cow<'a, str>>,
    #[serde(borrow)]
    choices: Option<Vec<PlainChoice<'a>>>,
    /// Only `null` or absent keeps the chunk plain.
    usage: Option<Skipped>,
    #[allow(dead_code)]
    created: Option<Skipped>,
    #[allow(dead_code)]
    system_fingerprint: Option<Skipped>,
    #[allow(dead_code)]
    service_tier: Option<Skipped>,
    #[allow(dead_code)]
    obfuscation: Option<Skipped>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainChoice<'a> {
    index: Option<u64>,
    #[serde(borrow)]
    delta: Option<PlainDelta<'a>>,
    #[serde(borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow)]
    finish_reason: Option<Cow<'a, str>>,
    #[allow(dead_code)]
    logprobs: Option<Skipped>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainDelta<'a> {
    #[serde(borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow)]
    refusal: Option<Cow<'a, str>>,
    #[serde(borrow)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(borrow)]
    reasoning: Option<Cow<'a, str>>,
    #[allow(dead_code)]
    role: Option<Skipped>,
}

/// A member the plain reading skips, read as strictly as the tree would read it: strings are
/// decoded (a lone surrogate fails), which `serde::de::IgnoredAny` does not do, so a chunk the
/// general reading calls malformed is never taken as plain.
struct Skipped;

impl<'de> serde::Deserialize<'de> for Skipped {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Skipped, D::Error> {
        d.deserialize_any(Skipped)
    }
}

impl<'de> serde::de::Visitor<'de> for Skipped {
    type Value = Skipped;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Skipped, E> {
        Ok(Skipped)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Skipped, E> {
        Ok(Skipped)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Skipped, E> {
        Ok(Skipped)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Skipped, E> {
        Ok(Skipped)
    }

    fn visit_str<E>(self, _: &str) -> Result<Skipped, E> {
        Ok(Skipped)
    }

    fn visit_unit<E>(self) -> Result<Skipped, E> {
        Ok(Skipped)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Skipped, A::Error> {
        while seq.next_element::<Skipped>()?.is_some() {}
        Ok(Skipped)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Skipped, A::Error> {
        while map.next_entry::<Skipped, Skipped>()?.is_some() {}
        Ok(Skipped)
    }
}

impl StreamDecoder for ChatStream {
    fn event(&mut self, name: Option<&str>, data: &[u8]) -> Outcome {
        let data = json::trim(data);
        if data == b"[DONE]" {
            return Outcome::Terminal;
        }
        if data.is_empty() {
            return Outcome::Event;
        }
        if name.is_none()
            && let Ok(chunk) = serde_json::from_slice::<PlainChunk<'_>>(data)
            && self.plain(&chunk)
        {
            return Outcome::Event;
        }
        self.general(name, data)
    }

    fn finish(self: Box<Self>) -> ExchangeResponse {
        self.acc.finish()
    }

    fn output_len(&self) -> usize {
        self.acc
            .choices
            .values()
            .map(|c| {
                c.text.len()
                    + c.reasoning.len()
                    + c.tool_calls
                        .iter()
                        .map(|t| t.name.len() + t.arguments.len())
                        .sum::<usize>()
            })
            .sum()
    }
}

impl ChatStream {
    /// Any chunk, read as a tree.
    fn general(&mut self, name: Option<&str>, data: &[u8]) -> Outcome {
        let Some(chunk) = json::parse_event(data) else {
            return Outcome::Malformed;
        };
        self.acc.meta(&chunk);
        if name == Some("error") && self.acc.error.is_none() {
            self.acc.error =
                Some(string_of(&chunk, "message").unwrap_or_else(|| "unknown error".into()));
        }
        if let Some(choices) = chunk.get("choices").and_then(Value::as_array) {
            if choices.is_empty() && chunk.get("usage").is_some_and(Value::is_object) {
                return Outcome::UsageOnly;
            }
            for (position, choice) in choices.iter().enumerate() {
                let index = u64_of(choice, "index").unwrap_or(position as u64);
                let slot = self.acc.choices.entry(index).or_default();
                if let Some(delta) = choice.get("delta").or_else(|| choice.get("message")) {
                    slot.message(delta, true);
                }
                slot.common(choice);
            }
        }
        Outcome::Event
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::agreement::{self, sse_events};

    fn agree(events: &[(Option<String>, Vec<u8>)]) -> usize {
        agreement::agree::<ChatStream>(
            events,
            |name, data| {
                name.is_none()
                    && serde_json::from_slice::<PlainChunk<'_>>(data)
                        .is_ok_and(|c| c.usage.is_none() && c.object.as_deref() != Some("error"))
            },
            |d, name, data| {
                if data == b"[DONE]" {
                    Outcome::Terminal
                } else {
                    d.general(name, data)
                }
            },
        )
    }

    #[test]
    fn plain_chunks_decode_as_the_general_reading_does() {
        let mut plain = 0;
        for fixture in [
            &include_bytes!("../tests/fixtures/openai/chat_stream_text.sse")[..],
            include_bytes!("../tests/fixtures/openai/chat_stream_reasoning.sse"),
            include_bytes!("../tests/fixtures/openai/chat_stream_text_tool.sse"),
            include_bytes!("../tests/fixtures/openai/chat_stream_tools.sse"),
            include_bytes!("../tests/fixtures/openai/completions_stream.sse"),
        ] {
            plain += agree(&sse_events(fixture));
        }
        assert!(
            plain > 10,
            "the fixtures took the plain reading {plain} times"
        );

        // Chunks at the edge of plain: each is decoded by one reading or the other, and the
        // two must agree either way.
        let edge: &[&str] = &[
            r#"{"id":"a","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
            r#"{"id":"b","choices":[{"index":1,"delta":{"content":"second"}},{"index":0,"delta":{"content":"first"}}]}"#,
            r#"{"choices":[{"delta":{"content":"no index"}},{"delta":{"content":" at 1"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"refusal":"I can't"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"reasoning_content":"think","reasoning":"think"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"reasoning":"only reasoning"}}]}"#,
            r#"{"choices":[{"index":0,"delta":null,"finish_reason":"stop"}]}"#,
            r#"{"choices":[{"index":0,"text":"completion text","finish_reason":"length"}]}"#,
            r#"{"choices":[{"index":0.0,"delta":{"content":"float index"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":["not","text"]}}]}"#,
            r#"{"choices":[{"index":0,"message":{"content":"a message"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"dup"},"delta":{"content":"licate"}}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}}"#,
            r#"{"choices":[],"usage":null}"#,
            r#"{"object":"error","message":"overloaded"}"#,
            r#"{"error":{"message":"rate limited","type":"rate_limit"}}"#,
            r#"{"detail":"bad gateway"}"#,
            r#"{"id":7,"model":"m2","choices":[{"index":0,"delta":{"content":"typed id"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c","function":{"name":"f","arguments":"{}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"escaped \"quote\" \u00e9"}}]}"#,
            "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}],\"system_fingerprint\":\"\\ud800\"}",
            r#"not json"#,
            r#"[1,2]"#,
        ];
        let events: Vec<(Option<String>, Vec<u8>)> =
            edge.iter().map(|e| (None, e.as_bytes().to_vec())).collect();
        assert!(agree(&events) >= 10);
        // A named event is never plain (an `error` event is read as an error).
        let named = [(Some("error".to_string()), edge[1].as_bytes().to_vec())];
        assert_eq!(agree(&named), 0);
        // Invalid UTF-8 in a member the plain reading would skip is malformed either way.
        let mut bad = br#"{"choices":[],"system_fingerprint":"fp_"#.to_vec();
        bad.extend_from_slice(b"\xff\"}");
        assert_eq!(agree(&[(None, bad)]), 0);
    }
}
