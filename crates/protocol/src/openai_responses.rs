//! The OpenAI Responses API (`POST /v1/responses`): input items in, output items out.
//!
//! Owns: reading Responses requests, buffered responses and the typed SSE event stream into the
//! exchange model. Must not: touch Chat Completions (see [`crate::openai`], whose `usage` reader it
//! shares) or keep any state between exchanges (`previous_response_id` chains live upstream).
//!
//! A buffered response and a stream are assembled by the same [`Output`] so both give the same
//! result: a stream's `response.output_item.done` and its final `response.completed` carry whole
//! items and replace what the deltas built, which only matter when a stream is cut short.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::ProtocolError;
use crate::exchange::{
    Content, ExchangeRequest, ExchangeResponse, Message, Role, TextPart, ToolCall, ToolDefinition,
    Usage,
};
use crate::json::{
    self, Map, data_url_mime, error_message, field, object, opt_array, opt_text, part, shape_err,
    str_of, string_of, u64_of,
};
use crate::openai;
use crate::protocol::{Outcome, Protocol, StreamDecoder};
use crate::route::Route;

/// The OpenAI Responses API.
pub(crate) struct Responses;

impl Protocol for Responses {
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
            max_tokens: field(body, "max_output_tokens").and_then(Value::as_u64),
            ..ExchangeRequest::default()
        };
        match field(body, "instructions") {
            None => {}
            Some(Value::String(s)) => req.system.push(part(s, "$.instructions".to_owned())),
            // Instructions given as input items (as echoed for prompt templates): only their
            // text matters here, and all of it is system text.
            Some(Value::Array(items)) => {
                let mut scratch = ExchangeRequest::default();
                input_items(items, "$.instructions", &mut scratch)?;
                req.system.extend(scratch.system);
                for m in scratch.messages {
                    req.system
                        .extend(m.content.into_iter().filter_map(|c| match c {
                            Content::Text(t) => Some(t),
                            _ => None,
                        }));
                }
            }
            Some(_) => return Err(shape_err("$.instructions", "a string or an array")),
        }
        match field(body, "input") {
            None => {}
            Some(Value::String(s)) => req.messages.push(Message {
                role: Role::User,
                content: vec![Content::Text(part(s, "$.input".to_owned()))],
            }),
            Some(Value::Array(items)) => input_items(items, "$.input", &mut req)?,
            Some(_) => return Err(shape_err("$.input", "a string or an array")),
        }
        if let Some(tools) = opt_array(body, "tools", "$.tools")? {
            req.tools.extend(tools.iter().map(tool_definition));
        }
        Ok(req)
    }

    fn parse_response(&self, _route: &Route, body: &Value) -> ExchangeResponse {
        let mut out = Output::default();
        out.response(body);
        if let Some(message) = error_message(body) {
            out.error = Some(message);
        }
        out.finish()
    }

    fn stream_decoder(&self, _route: &Route) -> Box<dyn StreamDecoder> {
        Box::new(ResponsesStream::default())
    }
}

/// Function and custom tools have a top-level `name`; built-in tools (`web_search`,
/// `file_search`, `code_interpreter`, `mcp`, …) are named by their `type`.
fn tool_definition(tool: &Value) -> ToolDefinition {
    let ty = str_of(tool, "type").unwrap_or("function");
    match ty {
        "function" | "custom" => ToolDefinition {
            name: string_of(tool, "name").unwrap_or_default(),
            description: string_of(tool, "description"),
            parameters: tool
                .get(if ty == "function" {
                    "parameters"
                } else {
                    "format"
                })
                .filter(|p| !p.is_null())
                .cloned(),
        },
        other => ToolDefinition {
            name: other.to_owned(),
            description: None,
            parameters: None,
        },
    }
}

/// Input items: messages (with or without `"type":"message"`), tool calls and their outputs,
/// reasoning items. Item types that carry no client text (`item_reference`, built-in tool calls)
/// are skipped.
fn input_items(
    items: &[Value],
    base: &str,
    req: &mut ExchangeRequest,
) -> Result<(), ProtocolError> {
    for (i, item) in items.iter().enumerate() {
        let path = format!("{base}[{i}]");
        let m = object(item, &path)?;
        let ty = match str_of(item, "type") {
            Some(t) => t,
            None if m.contains_key("role") => "message",
            None => return Err(shape_err(&format!("{path}.type"), "a string")),
        };
        match ty {
            "message" => {
                let role_path = format!("{path}.role");
                let role = opt_text(m, "role", &role_path)?
                    .ok_or_else(|| shape_err(&role_path, "a string"))?;
                let mut content = Vec::new();
                message_content(m, &path, &mut content)?;
                match role {
                    "system" | "developer" => {
                        req.system
                            .extend(content.into_iter().filter_map(|c| match c {
                                Content::Text(t) => Some(t),
                                _ => None,
                            }))
                    }
                    _ => req.messages.push(Message {
                        role: match role {
                            "user" => Role::User,
                            "assistant" => Role::Assistant,
                            other => Role::Other(other.to_owned()),
                        },
                        content,
                    }),
                }
            }
            "function_call" | "custom_tool_call" => {
                let args_key = if ty == "function_call" {
                    "arguments"
                } else {
                    "input"
                };
                req.messages.push(Message {
                    role: Role::Assistant,
                    content: vec![Content::ToolCall(ToolCall {
                        id: string_of(item, "call_id"),
                        name: string_of(item, "name").unwrap_or_default(),
                        arguments: string_of(item, args_key).unwrap_or_default(),
                    })],
                });
            }
            "function_call_output" | "custom_tool_call_output" => {
                let call_id = string_of(item, "call_id");
                let opath = format!("{path}.output");
                let mut texts: Vec<TextPart> = Vec::new();
                let mut content = Vec::new();
                match field(m, "output") {
                    None => texts.push(part("", opath)),
                    Some(Value::String(s)) => texts.push(part(s, opath)),
                    Some(Value::Array(parts)) => {
                        let mut parsed = Vec::new();
                        parts_content(parts, &opath, &mut parsed)?;
                        for c in parsed {
                            match c {
                                Content::Text(t) => texts.push(t),
                                other => content.push(other),
                            }
                        }
                    }
                    Some(_) => return Err(shape_err(&opath, "a string or an array")),
                }
                let results = texts.into_iter().map(|t| Content::ToolResult {
                    call_id: call_id.clone(),
                    name: None,
                    content: t,
                });
                content.splice(0..0, results);
                req.messages.push(Message {
                    role: Role::Tool,
                    content,
                });
            }
            "reasoning" => {
                let mut content = Vec::new();
                for key in ["summary", "content"] {
                    let kpath = format!("{path}.{key}");
                    for (k, p) in opt_array(m, key, &kpath)?.into_iter().flatten().enumerate() {
                        let tpath = format!("{kpath}[{k}].text");
                        if let Some(text) = opt_text(object(p, &tpath)?, "text", &tpath)? {
                            content.push(Content::Reasoning(part(text, tpath)));
                        }
                    }
                }
                req.messages.push(Message {
                    role: Role::Assistant,
                    content,
                });
            }
            _ => {}
        }
    }
    Ok(())
}

/// A message item's `content`: a string or an array of parts.
fn message_content(m: &Map, path: &str, out: &mut Vec<Content>) -> Result<(), ProtocolError> {
    let cpath = format!("{path}.content");
    match field(m, "content") {
        None => Ok(()),
        Some(Value::String(s)) => {
            out.push(Content::Text(part(s, cpath)));
            Ok(())
        }
        Some(Value::Array(parts)) => parts_content(parts, &cpath, out),
        Some(_) => Err(shape_err(&cpath, "a string or an array")),
    }
}

/// Content parts: `input_text`/`output_text` (`text`), `refusal`, `input_image`, `input_file`,
/// `input_audio`.
fn parts_content(parts: &[Value], path: &str, out: &mut Vec<Content>) -> Result<(), ProtocolError> {
    for (j, p) in parts.iter().enumerate() {
        let ppath = format!("{path}[{j}]");
        let pm = object(p, &ppath)?;
        let ty = str_of(p, "type").unwrap_or("input_text");
        out.push(match ty {
            "input_text" | "output_text" | "text" | "summary_text" | "reasoning_text"
            | "refusal" => {
                let key = if ty == "refusal" { "refusal" } else { "text" };
                let tpath = format!("{ppath}.{key}");
                let text =
                    opt_text(pm, key, &tpath)?.ok_or_else(|| shape_err(&tpath, "a string"))?;
                Content::Text(part(text, tpath))
            }
            "input_image" => Content::Media {
                mime_type: str_of(p, "image_url").and_then(data_url_mime),
            },
            "input_file" => Content::Media {
                mime_type: str_of(p, "file_data")
                    .and_then(data_url_mime)
                    .or_else(|| str_of(p, "filename").and_then(mime_from_filename)),
            },
            "input_audio" => Content::Media {
                mime_type: p
                    .get("input_audio")
                    .and_then(|a| str_of(a, "format"))
                    .map(|f| {
                        if f == "mp3" {
                            "audio/mpeg".to_owned()
                        } else {
                            format!("audio/{f}")
                        }
                    }),
            },
            _ => Content::Media { mime_type: None },
        });
    }
    Ok(())
}

/// The few file types the Responses API accepts by name without a data URL.
fn mime_from_filename(name: &str) -> Option<String> {
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(
        match ext.as_str() {
            "pdf" => "application/pdf",
            "txt" => "text/plain",
            "md" => "text/markdown",
            "json" => "application/json",
            "csv" => "text/csv",
            _ => return None,
        }
        .to_owned(),
    )
}

/// One output item being assembled.
#[derive(Debug, Default)]
struct Item {
    text: String,
    reasoning: String,
    call: Option<ToolCall>,
}

impl Item {
    /// A whole output item: `message`, `reasoning`, `function_call` or `custom_tool_call`; other
    /// types (built-in tool calls the provider runs itself) contribute nothing.
    fn from_value(item: &Value) -> Item {
        let mut out = Item::default();
        let list = |key: &str| {
            item.get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        };
        match str_of(item, "type") {
            Some("message") => {
                for c in list("content") {
                    if let Some(t) = str_of(c, "text").or_else(|| str_of(c, "refusal")) {
                        out.text.push_str(t);
                    }
                }
            }
            Some("reasoning") => {
                for c in list("summary").chain(list("content")) {
                    if let Some(t) = str_of(c, "text") {
                        out.reasoning.push_str(t);
                    }
                }
            }
            Some(ty @ ("function_call" | "custom_tool_call")) => {
                out.call = Some(ToolCall {
                    id: string_of(item, "call_id"),
                    name: string_of(item, "name").unwrap_or_default(),
                    arguments: string_of(
                        item,
                        if ty == "function_call" {
                            "arguments"
                        } else {
                            "input"
                        },
                    )
                    .unwrap_or_default(),
                });
            }
            _ => {}
        }
        out
    }
}

/// A Responses response being assembled, buffered or streamed.
#[derive(Debug, Default)]
struct Output {
    id: Option<String>,
    model: Option<String>,
    /// By `output_index`.
    items: BTreeMap<u64, Item>,
    usage: Usage,
    finish_reason: Option<String>,
    error: Option<String>,
}

impl Output {
    /// Reads a whole response object; a non-empty `output` replaces the items assembled so far.
    fn response(&mut self, r: &Value) {
        if let Some(id) = string_of(r, "id") {
            self.id = Some(id);
        }
        if let Some(model) = string_of(r, "model") {
            self.model = Some(model);
        }
        if let Some(u) = r.get("usage").filter(|u| u.is_object()) {
            self.usage = openai::usage(u);
        }
        let incomplete = r
            .get("incomplete_details")
            .and_then(|d| str_of(d, "reason"));
        // `incomplete_details.reason` says why (`max_output_tokens`, `content_filter`); otherwise
        // the final status is the reason. `queued` and `in_progress` are no end of any kind.
        let status = str_of(r, "status").filter(|s| !matches!(*s, "queued" | "in_progress"));
        if let Some(reason) = incomplete.or(status) {
            self.finish_reason = Some(reason.to_owned());
        }
        if let Some(e) = r.get("error").filter(|e| e.is_object()) {
            self.error =
                Some(string_of(e, "message").unwrap_or_else(|| "unknown error".to_owned()));
        }
        if let Some(output) = r
            .get("output")
            .and_then(Value::as_array)
            .filter(|o| !o.is_empty())
        {
            self.items = output
                .iter()
                .enumerate()
                .map(|(i, item)| (i as u64, Item::from_value(item)))
                .collect();
        }
    }

    fn item(&mut self, event: &Value) -> &mut Item {
        let index = u64_of(event, "output_index").unwrap_or(0);
        self.items.entry(index).or_default()
    }

    fn finish(self) -> ExchangeResponse {
        let mut out = ExchangeResponse {
            id: self.id,
            model: self.model,
            usage: self.usage,
            finish_reason: self.finish_reason,
            error: self.error,
            ..ExchangeResponse::default()
        };
        for item in self.items.into_values() {
            out.output_text.push_str(&item.text);
            out.reasoning.push_str(&item.reasoning);
            out.tool_calls.extend(item.call);
        }
        out
    }
}

/// The Responses SSE stream: `event: <type>` lines with JSON `data` carrying the same `type`.
#[derive(Debug, Default)]
struct ResponsesStream {
    out: Output,
}

impl StreamDecoder for ResponsesStream {
    fn event(&mut self, name: Option<&str>, data: &[u8]) -> Outcome {
        let data = json::trim(data);
        if data.is_empty() || data == b"[DONE]" {
            return Outcome::Event;
        }
        let Some(event) = json::parse_event(data) else {
            return Outcome::Malformed;
        };
        let ty = json::event_type(&event, name);
        let delta = || str_of(&event, "delta").unwrap_or_default();
        match ty {
            "response.created" | "response.in_progress" | "response.queued" => {
                if let Some(r) = event.get("response") {
                    self.out.response(r);
                }
            }
            "response.output_item.added" | "response.output_item.done" => {
                if let Some(item) = event.get("item") {
                    *self.out.item(&event) = Item::from_value(item);
                }
            }
            "response.output_text.delta" | "response.refusal.delta" => {
                self.out.item(&event).text.push_str(delta());
            }
            "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
                self.out.item(&event).reasoning.push_str(delta());
            }
            "response.function_call_arguments.delta" | "response.custom_tool_call_input.delta" => {
                let call = self
                    .out
                    .item(&event)
                    .call
                    .get_or_insert_with(ToolCall::default);
                call.arguments.push_str(delta());
            }
            "response.function_call_arguments.done" | "response.custom_tool_call_input.done" => {
                let key = if ty == "response.function_call_arguments.done" {
                    "arguments"
                } else {
                    "input"
                };
                if let Some(whole) = string_of(&event, key) {
                    let call = self
                        .out
                        .item(&event)
                        .call
                        .get_or_insert_with(ToolCall::default);
                    call.arguments = whole;
                }
            }
            "response.completed" | "response.failed" | "response.incomplete" => {
                if let Some(r) = event.get("response") {
                    self.out.response(r);
                }
                return Outcome::Terminal;
            }
            "error" => {
                self.out.error = Some(
                    string_of(&event, "message")
                        .or_else(|| error_message(&event))
                        .unwrap_or_else(|| "unknown error".to_owned()),
                );
            }
            _ => {}
        }
        Outcome::Event
    }

    fn finish(self: Box<Self>) -> ExchangeResponse {
        self.out.finish()
    }

    fn output_len(&self) -> usize {
        self.out
            .items
            .values()
            .map(|i| {
                i.text.len()
                    + i.reasoning.len()
                    + i.call
                        .as_ref()
                        .map_or(0, |t| t.name.len() + t.arguments.len())
            })
            .sum()
    }
}
