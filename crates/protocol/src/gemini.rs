//! The Google Gemini API (Generative Language API): `generateContent`, `streamGenerateContent`,
//! `countTokens`, `embedContent` and `batchEmbedContents`.
//!
//! Owns: reading those requests and responses, and the stream chunks of both framings (SSE with
//! `?alt=sse`, a streamed JSON array without) into the exchange model. Must not: route paths (see
//! [`crate::route`]; the model comes from the path) or split the JSON array (see
//! [`crate::framing`]).
//!
//! The REST API accepts protobuf JSON, so every field may be camelCase (what the SDKs send) or
//! snake_case; both are read and paths name the key actually used. Usage is normalized as billed:
//! thinking tokens are output tokens, tool-use prompt tokens are input tokens.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::ProtocolError;
use crate::exchange::{
    Content, ExchangeRequest, ExchangeResponse, Message, Role, ToolCall, ToolDefinition, Usage,
};
use crate::json::{
    self, Map, arguments_text, bool_of, error_message, field, field_any, object, opt_text, part,
    shape_err, str_of, string_of, u64_of,
};
use crate::protocol::{Outcome, Protocol, StreamDecoder};
use crate::route::{Operation, Route};

/// The Gemini API.
pub(crate) struct Gemini;

impl Protocol for Gemini {
    fn parse_request(&self, route: &Route, body: &Value) -> Result<ExchangeRequest, ProtocolError> {
        let root = json::root(body)?;
        let mut req = ExchangeRequest {
            model: route.path_model.clone(),
            stream: route.operation == Operation::StreamGenerateContent,
            ..ExchangeRequest::default()
        };
        match route.operation {
            Operation::EmbedContent => {
                if let Some((key, content)) = field_any(root, &["content"]) {
                    req.messages
                        .push(content_message(content, &format!("$.{key}"))?);
                }
                if let Some(requests) = field(root, "requests") {
                    let requests = requests
                        .as_array()
                        .ok_or_else(|| shape_err("$.requests", "an array"))?;
                    for (i, r) in requests.iter().enumerate() {
                        let path = format!("$.requests[{i}]");
                        if let Some(content) = field(object(r, &path)?, "content") {
                            req.messages
                                .push(content_message(content, &format!("{path}.content"))?);
                        }
                    }
                }
            }
            Operation::CountTokens => {
                match field_any(
                    root,
                    &["generateContentRequest", "generate_content_request"],
                ) {
                    Some((key, inner)) => {
                        let base = format!("$.{key}");
                        generate_request(object(inner, &base)?, &base, false, &mut req)?;
                    }
                    None => generate_request(root, "$", false, &mut req)?,
                }
            }
            _ => generate_request(root, "$", true, &mut req)?,
        }
        Ok(req)
    }

    fn parse_response(&self, _route: &Route, body: &Value) -> ExchangeResponse {
        let mut acc = Accumulator::default();
        match body {
            // A buffered `streamGenerateContent` body: the whole array.
            Value::Array(chunks) => chunks.iter().for_each(|c| {
                acc.chunk(c);
            }),
            other => {
                acc.chunk(other);
            }
        }
        acc.finish()
    }

    fn stream_decoder(&self, _route: &Route) -> Box<dyn StreamDecoder> {
        Box::new(GeminiStream::default())
    }
}

/// Joins `base` and `key` into a path (`$` + `contents` → `$.contents`).
fn join(base: &str, key: &str) -> String {
    format!("{base}.{key}")
}

/// A `GenerateContentRequest` at `base`.
fn generate_request(
    m: &Map,
    base: &str,
    contents_required: bool,
    req: &mut ExchangeRequest,
) -> Result<(), ProtocolError> {
    if let Some((key, system)) = field_any(m, &["systemInstruction", "system_instruction"]) {
        let path = join(base, key);
        match system {
            Value::String(s) => req.system.push(part(s, path)),
            other => {
                let message = content_message(other, &path)?;
                req.system
                    .extend(message.content.into_iter().filter_map(|c| match c {
                        Content::Text(t) => Some(t),
                        _ => None,
                    }));
            }
        }
    }
    match field(m, "contents") {
        Some(Value::Array(contents)) => {
            let path = join(base, "contents");
            for (i, content) in contents.iter().enumerate() {
                req.messages
                    .push(content_message(content, &format!("{path}[{i}]"))?);
            }
        }
        None if !contents_required => {}
        _ => return Err(shape_err(&join(base, "contents"), "an array")),
    }
    if let Some(tools) = field(m, "tools") {
        let tools = tools
            .as_array()
            .ok_or_else(|| shape_err(&join(base, "tools"), "an array"))?;
        for tool in tools {
            tool_definitions(tool, &mut req.tools);
        }
    }
    if let Some((_, config)) = field_any(m, &["generationConfig", "generation_config"]) {
        req.max_tokens = ["maxOutputTokens", "max_output_tokens"]
            .iter()
            .find_map(|k| u64_of(config, k));
    }
    Ok(())
}

/// One `Tool`: `functionDeclarations` become definitions; built-in tools (`googleSearch`,
/// `codeExecution`, `urlContext`, …) are named by their key.
fn tool_definitions(tool: &Value, out: &mut Vec<ToolDefinition>) {
    let Some(map) = tool.as_object() else { return };
    for (key, value) in map {
        if key == "functionDeclarations" || key == "function_declarations" {
            for f in value.as_array().into_iter().flatten() {
                let parameters = [
                    "parameters",
                    "parametersJsonSchema",
                    "parameters_json_schema",
                ]
                .iter()
                .find_map(|k| f.get(*k).filter(|p| !p.is_null()))
                .cloned();
                out.push(ToolDefinition {
                    name: string_of(f, "name").unwrap_or_default(),
                    description: string_of(f, "description"),
                    parameters,
                });
            }
        } else {
            out.push(ToolDefinition {
                name: key.clone(),
                description: None,
                parameters: None,
            });
        }
    }
}

/// A `Content` (`{role, parts}`) at `path`.
fn content_message(content: &Value, path: &str) -> Result<Message, ProtocolError> {
    let m = object(content, path)?;
    let role = match opt_text(m, "role", &join(path, "role"))? {
        None | Some("user") => Role::User,
        Some("model") => Role::Assistant,
        Some("function" | "tool") => Role::Tool,
        Some(other) => Role::Other(other.to_owned()),
    };
    let mut out = Vec::new();
    let ppath = join(path, "parts");
    let parts = match field(m, "parts") {
        None => &[][..],
        Some(Value::Array(p)) => p.as_slice(),
        Some(_) => return Err(shape_err(&ppath, "an array")),
    };
    for (j, p) in parts.iter().enumerate() {
        let path = format!("{ppath}[{j}]");
        let pm = object(p, &path)?;
        if let Some(text) = opt_text(pm, "text", &join(&path, "text"))? {
            let text = part(text, join(&path, "text"));
            out.push(if bool_of(p, "thought") == Some(true) {
                Content::Reasoning(text)
            } else {
                Content::Text(text)
            });
        } else if let Some((_, data)) =
            field_any(pm, &["inlineData", "inline_data", "fileData", "file_data"])
        {
            out.push(Content::Media {
                mime_type: string_of(data, "mimeType").or_else(|| string_of(data, "mime_type")),
            });
        } else if let Some((_, call)) = field_any(pm, &["functionCall", "function_call"]) {
            out.push(Content::ToolCall(ToolCall {
                id: string_of(call, "id"),
                name: string_of(call, "name").unwrap_or_default(),
                arguments: arguments_text(call.get("args")),
            }));
        } else if let Some((key, response)) =
            field_any(pm, &["functionResponse", "function_response"])
        {
            out.push(Content::ToolResult {
                call_id: string_of(response, "id"),
                name: string_of(response, "name"),
                content: part(
                    &arguments_text(response.get("response")),
                    format!("{path}.{key}.response"),
                ),
            });
        }
    }
    Ok(Message { role, content: out })
}

/// `usageMetadata`, normalized as billed.
fn usage(u: &Value) -> Usage {
    let prompt = u64_of(u, "promptTokenCount");
    let tool_prompt = u64_of(u, "toolUsePromptTokenCount");
    let candidates = u64_of(u, "candidatesTokenCount");
    let thoughts = u64_of(u, "thoughtsTokenCount");
    let sum = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (None, None) => None,
        _ => Some(a.unwrap_or(0) + b.unwrap_or(0)),
    };
    Usage {
        input_tokens: sum(prompt, tool_prompt),
        output_tokens: sum(candidates, thoughts),
        cached_input_tokens: u64_of(u, "cachedContentTokenCount"),
        reasoning_tokens: thoughts,
    }
}

/// One candidate being assembled.
#[derive(Debug, Default)]
struct Candidate {
    text: String,
    reasoning: String,
    tool_calls: Vec<ToolCall>,
    finish_reason: Option<String>,
}

/// A response assembled from one `GenerateContentResponse` or a stream of them.
#[derive(Debug, Default)]
struct Accumulator {
    id: Option<String>,
    model: Option<String>,
    /// By candidate `index`.
    candidates: BTreeMap<u64, Candidate>,
    usage: Usage,
    block_reason: Option<String>,
    error: Option<String>,
}

impl Accumulator {
    /// Reads one response chunk; returns whether it carried a finish reason.
    fn chunk(&mut self, v: &Value) -> bool {
        if let Some(message) = error_message(v) {
            self.error = Some(message);
        }
        if let Some(id) = string_of(v, "responseId") {
            self.id = Some(id);
        }
        if let Some(model) = string_of(v, "modelVersion") {
            self.model = Some(model);
        }
        if let Some(u) = v.get("usageMetadata").filter(|u| u.is_object()) {
            // Every chunk carries the running totals; the last one wins.
            self.usage = usage(u);
        } else if let Some(total) = u64_of(v, "totalTokens") {
            // A `countTokens` answer.
            self.usage.input_tokens = Some(total);
            self.usage.cached_input_tokens = u64_of(v, "cachedContentTokenCount");
        }
        if let Some(reason) = v
            .get("promptFeedback")
            .and_then(|f| str_of(f, "blockReason"))
        {
            self.block_reason = Some(reason.to_owned());
        }
        let mut finished = false;
        let candidates = v.get("candidates").and_then(Value::as_array);
        for (position, c) in candidates.into_iter().flatten().enumerate() {
            let index = u64_of(c, "index").unwrap_or(position as u64);
            let slot = self.candidates.entry(index).or_default();
            let parts = c.get("content").and_then(|content| content.get("parts"));
            for p in parts.and_then(Value::as_array).into_iter().flatten() {
                if let Some(text) = str_of(p, "text") {
                    if bool_of(p, "thought") == Some(true) {
                        slot.reasoning.push_str(text);
                    } else {
                        slot.text.push_str(text);
                    }
                } else if let Some(call) = p.get("functionCall") {
                    slot.tool_calls.push(ToolCall {
                        id: string_of(call, "id"),
                        name: string_of(call, "name").unwrap_or_default(),
                        arguments: arguments_text(call.get("args")),
                    });
                }
            }
            if let Some(reason) = str_of(c, "finishReason") {
                slot.finish_reason = Some(reason.to_owned());
                finished = true;
            }
        }
        finished
    }

    fn finish(self) -> ExchangeResponse {
        let mut out = ExchangeResponse {
            id: self.id,
            model: self.model,
            usage: self.usage,
            error: self.error,
            ..ExchangeResponse::default()
        };
        for c in self.candidates.into_values() {
            out.output_text.push_str(&c.text);
            out.reasoning.push_str(&c.reasoning);
            out.tool_calls.extend(c.tool_calls);
            if out.finish_reason.is_none() {
                out.finish_reason = c.finish_reason;
            }
        }
        if out.finish_reason.is_none() {
            out.finish_reason = self.block_reason;
        }
        out
    }
}

/// Stream chunks, each a whole `GenerateContentResponse` (SSE `data:` or a JSON-array element).
#[derive(Debug, Default)]
struct GeminiStream {
    acc: Accumulator,
}

impl StreamDecoder for GeminiStream {
    fn event(&mut self, _name: Option<&str>, data: &[u8]) -> Outcome {
        let data = json::trim(data);
        if data.is_empty() {
            return Outcome::Event;
        }
        let Some(chunk) = json::parse_event(data) else {
            return Outcome::Malformed;
        };
        if self.acc.chunk(&chunk) {
            Outcome::Terminal
        } else {
            Outcome::Event
        }
    }

    fn finish(self: Box<Self>) -> ExchangeResponse {
        self.acc.finish()
    }

    fn output_len(&self) -> usize {
        self.acc
            .candidates
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
