//! Ollama's native API: `/api/chat`, `/api/generate`, `/api/embed` (and legacy `/api/embeddings`).
//!
//! Owns: reading those requests, their buffered responses and their NDJSON streams into the
//! exchange model. Must not: handle Ollama's OpenAI-compatible `/v1/...` endpoints (those are
//! [`crate::openai`]'s) or its model-management calls (`/api/tags`, `/api/show`), which carry no
//! exchange.
//!
//! Ollama streams unless the request says `"stream": false`, and has no response ids.

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

/// Ollama's native API.
pub(crate) struct Ollama;

impl Protocol for Ollama {
    fn parse_request(&self, route: &Route, body: &Value) -> Result<ExchangeRequest, ProtocolError> {
        let body = json::root(body)?;
        let streams_by_default = matches!(
            route.operation,
            Operation::OllamaChat | Operation::OllamaGenerate
        );
        let mut req = ExchangeRequest {
            model: field(body, "model")
                .and_then(Value::as_str)
                .map(str::to_owned),
            stream: field(body, "stream")
                .and_then(Value::as_bool)
                .unwrap_or(streams_by_default),
            // `num_predict: -1` means "no limit" and reads as `None`.
            max_tokens: field(body, "options").and_then(|o| u64_of(o, "num_predict")),
            ..ExchangeRequest::default()
        };
        match route.operation {
            Operation::OllamaChat => chat_request(body, &mut req)?,
            Operation::OllamaGenerate => {
                if let Some(system) = opt_text(body, "system", "$.system")? {
                    req.system.push(part(system, "$.system".to_owned()));
                }
                let mut content = Vec::new();
                for key in ["prompt", "suffix"] {
                    let path = format!("$.{key}");
                    if let Some(text) = opt_text(body, key, &path)? {
                        content.push(Content::Text(part(text, path)));
                    }
                }
                images(body, &mut content)?;
                if !content.is_empty() {
                    req.messages.push(Message {
                        role: Role::User,
                        content,
                    });
                }
            }
            Operation::EmbedContent => {
                for key in ["input", "prompt"] {
                    let path = format!("$.{key}");
                    match field(body, key) {
                        None => {}
                        Some(Value::String(s)) => req.messages.push(user(s, path)),
                        Some(Value::Array(items)) => {
                            for (i, item) in items.iter().enumerate() {
                                let ipath = format!("{path}[{i}]");
                                let text =
                                    item.as_str().ok_or_else(|| shape_err(&ipath, "a string"))?;
                                req.messages.push(user(text, ipath));
                            }
                        }
                        Some(_) => return Err(shape_err(&path, "a string or an array")),
                    }
                }
            }
            _ => {}
        }
        Ok(req)
    }

    fn parse_response(&self, _route: &Route, body: &Value) -> ExchangeResponse {
        let mut acc = Accumulator::default();
        acc.line(body);
        acc.finish()
    }

    fn stream_decoder(&self, _route: &Route) -> Box<dyn StreamDecoder> {
        Box::new(OllamaStream::default())
    }
}

fn user(text: &str, path: String) -> Message {
    Message {
        role: Role::User,
        content: vec![Content::Text(part(text, path))],
    }
}

/// `images`: base64 strings without a media type.
fn images(m: &Map, out: &mut Vec<Content>) -> Result<(), ProtocolError> {
    if let Some(images) = opt_array(m, "images", "images")? {
        out.extend(images.iter().map(|_| Content::Media { mime_type: None }));
    }
    Ok(())
}

fn chat_request(body: &Map, req: &mut ExchangeRequest) -> Result<(), ProtocolError> {
    let messages = opt_array(body, "messages", "$.messages")?;
    for (i, message) in messages.into_iter().flatten().enumerate() {
        let path = format!("$.messages[{i}]");
        let m = object(message, &path)?;
        let role_path = format!("{path}.role");
        let role =
            opt_text(m, "role", &role_path)?.ok_or_else(|| shape_err(&role_path, "a string"))?;
        let cpath = format!("{path}.content");
        let text = opt_text(m, "content", &cpath)?;
        let mut content = Vec::new();
        match role {
            "system" => {
                if let Some(text) = text {
                    req.system.push(part(text, cpath));
                }
                continue;
            }
            "tool" => {
                content.push(Content::ToolResult {
                    call_id: string_of(message, "tool_call_id"),
                    name: string_of(message, "tool_name").or_else(|| string_of(message, "name")),
                    content: part(text.unwrap_or_default(), cpath),
                });
                req.messages.push(Message {
                    role: Role::Tool,
                    content,
                });
                continue;
            }
            _ => {}
        }
        let thinking_path = format!("{path}.thinking");
        if let Some(thinking) = opt_text(m, "thinking", &thinking_path)? {
            content.push(Content::Reasoning(part(thinking, thinking_path)));
        }
        if let Some(text) = text {
            content.push(Content::Text(part(text, cpath)));
        }
        images(m, &mut content)?;
        let calls_path = format!("{path}.tool_calls");
        for call in opt_array(m, "tool_calls", &calls_path)?
            .into_iter()
            .flatten()
        {
            content.push(Content::ToolCall(tool_call(call)));
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
            let f = t.get("function").unwrap_or(t);
            ToolDefinition {
                name: string_of(f, "name").unwrap_or_default(),
                description: string_of(f, "description"),
                parameters: f.get("parameters").filter(|p| !p.is_null()).cloned(),
            }
        }));
    }
    Ok(())
}

/// `{"function":{"name","arguments":{..}}}`; arguments are an object on the wire.
fn tool_call(call: &Value) -> ToolCall {
    let f = call.get("function").unwrap_or(&Value::Null);
    ToolCall {
        id: string_of(call, "id"),
        name: string_of(f, "name").unwrap_or_default(),
        arguments: arguments_text(f.get("arguments")),
    }
}

/// A response assembled from one object or a stream of lines.
#[derive(Debug, Default)]
struct Accumulator {
    model: Option<String>,
    text: String,
    reasoning: String,
    tool_calls: Vec<ToolCall>,
    usage: Usage,
    done_reason: Option<String>,
    error: Option<String>,
}

impl Accumulator {
    /// Reads one line (or a buffered body); returns whether it is the `"done": true` line.
    fn line(&mut self, v: &Value) -> bool {
        if let Some(message) = error_message(v) {
            self.error = Some(message);
        }
        if self.model.is_none() {
            self.model = string_of(v, "model");
        }
        // `/api/generate` puts text at the top level, `/api/chat` inside `message`.
        let message = v.get("message").unwrap_or(v);
        if let Some(text) = str_of(message, "content").or_else(|| str_of(v, "response")) {
            self.text.push_str(text);
        }
        if let Some(thinking) = str_of(message, "thinking") {
            self.reasoning.push_str(thinking);
        }
        let calls = message.get("tool_calls").and_then(Value::as_array);
        self.tool_calls
            .extend(calls.into_iter().flatten().map(tool_call));
        if let Some(n) = u64_of(v, "prompt_eval_count") {
            self.usage.input_tokens = Some(n);
        }
        if let Some(n) = u64_of(v, "eval_count") {
            self.usage.output_tokens = Some(n);
        }
        if let Some(reason) = str_of(v, "done_reason") {
            self.done_reason = Some(reason.to_owned());
        }
        v.get("done").and_then(Value::as_bool) == Some(true)
    }

    fn finish(self) -> ExchangeResponse {
        ExchangeResponse {
            id: None,
            model: self.model,
            output_text: self.text,
            reasoning: self.reasoning,
            tool_calls: self.tool_calls,
            usage: self.usage,
            finish_reason: self.done_reason,
            error: self.error,
        }
    }
}

/// NDJSON: one object per line, the last with `"done": true` and the counts.
#[derive(Debug, Default)]
struct OllamaStream {
    acc: Accumulator,
}

impl StreamDecoder for OllamaStream {
    fn event(&mut self, _name: Option<&str>, data: &[u8]) -> Outcome {
        let data = json::trim(data);
        if data.is_empty() {
            return Outcome::Event;
        }
        let Some(line) = json::parse_event(data) else {
            return Outcome::Malformed;
        };
        if self.acc.line(&line) {
            Outcome::Terminal
        } else {
            Outcome::Event
        }
    }

    fn finish(self: Box<Self>) -> ExchangeResponse {
        self.acc.finish()
    }

    fn output_len(&self) -> usize {
        let a = &self.acc;
        a.text.len()
            + a.reasoning.len()
            + a.tool_calls
                .iter()
                .map(|t| t.name.len() + t.arguments.len())
                .sum::<usize>()
    }
}
