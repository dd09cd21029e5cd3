//! OpenAI: chat completions, legacy completions, embeddings, the Responses API, model listing,
//! and OpenAI's error body. Shapes follow the public API reference as the `openai` SDK parses it:
//! chat streams are data-only SSE ending in `data: [DONE]`; Responses streams are named events
//! (`event: response.*`) each carrying `type` and `sequence_number`, with no `[DONE]`.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Value, json};

use crate::directive::Directive;
use crate::ids;
use crate::reply::Reply;
use crate::request::{MockRequest, content_text, tokens_for_chars};
use crate::response::{self, MockResponse, SSE};
use crate::stats::MockStats;
use crate::vectors;

pub(crate) const DEFAULT_MODEL: &str = "gpt-4o-mini";
const DEFAULT_TEXT: &str = "Hello from the mock OpenAI upstream.";
/// "fp_" + hex of "mock", shaped like OpenAI's system fingerprints.
const FINGERPRINT: &str = "fp_6d6f636b00";
const DONE: &[u8] = b"data: [DONE]\n\n";

const MODELS: &[(&str, u64, &str)] = &[
    ("gpt-4o-mini", 1_721_172_741, "system"),
    ("gpt-4o", 1_715_367_049, "system"),
    ("gpt-4.1", 1_744_316_542, "system"),
    ("o3-mini", 1_737_146_383, "system"),
    ("text-embedding-3-small", 1_705_948_997, "system"),
];

pub(crate) fn error_body(status: u16, message: &str) -> Vec<u8> {
    let (kind, code) = match status {
        401 => ("invalid_request_error", Some("invalid_api_key")),
        403 => ("permission_error", None),
        404 => ("invalid_request_error", Some("not_found")),
        429 => ("requests", Some("rate_limit_exceeded")),
        other if other < 500 => ("invalid_request_error", None),
        _ => ("server_error", None),
    };
    response::to_vec(&json!({
        "error": {"message": message, "type": kind, "param": null, "code": code}
    }))
}

/// Text of the last user message of a chat; a trailing tool result ends the search.
pub(crate) fn chat_user_text(body: &Value) -> Option<Cow<'_, str>> {
    for message in body.get("messages")?.as_array()?.iter().rev() {
        match message.get("role").and_then(Value::as_str) {
            Some("user") => return content_text(message.get("content")?),
            Some("tool" | "function") => return None,
            _ => {}
        }
    }
    None
}

/// The prompt of a legacy completion (the last one when it is a list).
pub(crate) fn completion_prompt(body: &Value) -> Option<Cow<'_, str>> {
    match body.get("prompt")? {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Array(items) => items
            .iter()
            .rev()
            .find_map(Value::as_str)
            .map(Cow::Borrowed),
        _ => None,
    }
}

/// The last user input of a Responses request; a trailing tool output ends the search.
pub(crate) fn responses_user_text(body: &Value) -> Option<Cow<'_, str>> {
    match body.get("input")? {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Array(items) => {
            for item in items.iter().rev() {
                let kind = item.get("type").and_then(Value::as_str).unwrap_or("");
                if kind.ends_with("_call_output") {
                    return None;
                }
                if item.get("role").and_then(Value::as_str) == Some("user") {
                    return content_text(item.get("content")?);
                }
            }
            None
        }
        _ => None,
    }
}

fn with_request_id(response: MockResponse) -> MockResponse {
    response::with_header(response, "x-request-id", &ids::openai_request())
}

// ---- chat completions -------------------------------------------------------------------

#[derive(Serialize)]
struct ChatCompletion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [ChatChoice<'a>; 1],
    usage: ChatUsage,
    service_tier: &'static str,
    system_fingerprint: &'static str,
}

#[derive(Serialize)]
struct ChatChoice<'a> {
    index: u32,
    message: ChatMessage<'a>,
    logprobs: Option<()>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct ChatMessage<'a> {
    role: &'static str,
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ChatToolCall<'a>>,
    refusal: Option<()>,
    annotations: [(); 0],
}

#[derive(Serialize)]
struct ChatToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: ChatFunction<'a>,
}

#[derive(Serialize)]
struct ChatFunction<'a> {
    name: &'a str,
    arguments: &'a str,
}

#[derive(Serialize)]
struct ChatUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: PromptDetails,
    completion_tokens_details: CompletionDetails,
}

#[derive(Serialize)]
struct PromptDetails {
    cached_tokens: u64,
    audio_tokens: u64,
}

#[derive(Serialize)]
struct CompletionDetails {
    reasoning_tokens: u64,
    audio_tokens: u64,
    accepted_prediction_tokens: u64,
    rejected_prediction_tokens: u64,
}

impl ChatUsage {
    fn of(reply: &Reply) -> Self {
        ChatUsage {
            prompt_tokens: reply.input_tokens,
            completion_tokens: reply.output_tokens,
            total_tokens: reply.total_tokens(),
            prompt_tokens_details: PromptDetails {
                cached_tokens: 0,
                audio_tokens: 0,
            },
            completion_tokens_details: CompletionDetails {
                reasoning_tokens: reply.reasoning_tokens,
                audio_tokens: 0,
                accepted_prediction_tokens: 0,
                rejected_prediction_tokens: 0,
            },
        }
    }
}

#[derive(Serialize)]
struct ChatChunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    service_tier: &'static str,
    system_fingerprint: &'static str,
    choices: &'a [ChunkChoice<'a>],
    /// Absent unless usage was asked for; then `null` on every chunk but the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<&'a ChatUsage>>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'static str>,
}

#[derive(Serialize, Default)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCallDelta<'a>; 1]>,
}

#[derive(Serialize)]
struct ToolCallDelta<'a> {
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: FunctionDelta<'a>,
}

#[derive(Serialize)]
struct FunctionDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

pub(crate) fn chat(req: &MockRequest, d: &Directive, stats: &Arc<MockStats>) -> MockResponse {
    let reply = Reply::build(req, d, DEFAULT_TEXT);
    let model = req.model(DEFAULT_MODEL);
    let id = ids::chat_completion();
    let created = ids::unix_secs();
    let call_ids: Vec<String> = reply
        .tool_calls
        .iter()
        .map(|_| ids::openai_call())
        .collect();
    let finish_reason = if reply.tool_calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    let usage = ChatUsage::of(&reply);

    if req.flag("stream") != Some(true) {
        let tool_calls = reply
            .tool_calls
            .iter()
            .zip(&call_ids)
            .map(|(call, id)| ChatToolCall {
                id,
                kind: "function",
                function: ChatFunction {
                    name: &call.name,
                    arguments: &call.arguments_json,
                },
            })
            .collect();
        let body = ChatCompletion {
            id: &id,
            object: "chat.completion",
            created,
            model,
            choices: [ChatChoice {
                index: 0,
                message: ChatMessage {
                    role: "assistant",
                    content: reply.has_text().then_some(reply.text.as_str()),
                    reasoning_content: reply.reasoning.as_deref(),
                    tool_calls,
                    refusal: None,
                    annotations: [],
                },
                logprobs: None,
                finish_reason,
            }],
            usage,
            service_tier: "default",
            system_fingerprint: FINGERPRINT,
        };
        return with_request_id(response::ok_json(&body));
    }

    let include_usage = req
        .json
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        == Some(true);
    let text_pieces = reply.text_pieces();
    let reasoning_pieces = reply.reasoning_pieces();
    let mut frames = Vec::with_capacity(text_pieces.len() + reasoning_pieces.len() + 8);
    let chunk = |delta: Delta<'_>, finish_reason: Option<&'static str>| {
        let choices = [ChunkChoice {
            index: 0,
            delta,
            logprobs: None,
            finish_reason,
        }];
        response::sse_data(&ChatChunk {
            id: &id,
            object: "chat.completion.chunk",
            created,
            model,
            service_tier: "default",
            system_fingerprint: FINGERPRINT,
            choices: &choices,
            usage: include_usage.then_some(None),
        })
    };
    frames.push(chunk(
        Delta {
            role: Some("assistant"),
            content: Some(""),
            ..Delta::default()
        },
        None,
    ));
    for piece in reasoning_pieces {
        frames.push(chunk(
            Delta {
                reasoning_content: Some(piece),
                ..Delta::default()
            },
            None,
        ));
    }
    for piece in text_pieces {
        frames.push(chunk(
            Delta {
                content: Some(piece),
                ..Delta::default()
            },
            None,
        ));
    }
    for (index, (call, call_id)) in reply.tool_calls.iter().zip(&call_ids).enumerate() {
        frames.push(chunk(
            Delta {
                tool_calls: Some([ToolCallDelta {
                    index,
                    id: Some(call_id),
                    kind: Some("function"),
                    function: FunctionDelta {
                        name: Some(&call.name),
                        arguments: "",
                    },
                }]),
                ..Delta::default()
            },
            None,
        ));
        for piece in call.argument_pieces() {
            frames.push(chunk(
                Delta {
                    tool_calls: Some([ToolCallDelta {
                        index,
                        id: None,
                        kind: None,
                        function: FunctionDelta {
                            name: None,
                            arguments: piece,
                        },
                    }]),
                    ..Delta::default()
                },
                None,
            ));
        }
    }
    frames.push(chunk(Delta::default(), Some(finish_reason)));
    if include_usage {
        frames.push(response::sse_data(&ChatChunk {
            id: &id,
            object: "chat.completion.chunk",
            created,
            model,
            service_tier: "default",
            system_fingerprint: FINGERPRINT,
            choices: &[],
            usage: Some(Some(&usage)),
        }));
    }
    frames.push(Bytes::from_static(DONE));
    with_request_id(response::stream(SSE, frames, d, stats))
}

// ---- legacy completions -----------------------------------------------------------------

#[derive(Serialize)]
struct TextCompletion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    system_fingerprint: &'static str,
    choices: &'a [TextChoice<'a>],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<&'a TextUsage>>,
}

#[derive(Serialize)]
struct TextChoice<'a> {
    text: &'a str,
    index: u32,
    logprobs: Option<()>,
    finish_reason: Option<&'static str>,
}

/// What every object of one legacy completion shares.
struct CompletionHead<'a> {
    id: &'a str,
    created: u64,
    model: &'a str,
}

impl<'a> CompletionHead<'a> {
    fn with<'b>(
        &self,
        choices: &'b [TextChoice<'b>],
        usage: Option<Option<&'b TextUsage>>,
    ) -> TextCompletion<'b>
    where
        'a: 'b,
    {
        TextCompletion {
            id: self.id,
            object: "text_completion",
            created: self.created,
            model: self.model,
            system_fingerprint: FINGERPRINT,
            choices,
            usage,
        }
    }
}

#[derive(Serialize)]
struct TextUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
}

pub(crate) fn completions(
    req: &MockRequest,
    d: &Directive,
    stats: &Arc<MockStats>,
) -> MockResponse {
    let reply = Reply::build(req, d, DEFAULT_TEXT);
    let model = req.model("gpt-3.5-turbo-instruct");
    let id = ids::text_completion();
    let created = ids::unix_secs();
    let usage = TextUsage {
        prompt_tokens: reply.input_tokens,
        completion_tokens: reply.output_tokens,
        total_tokens: reply.total_tokens(),
    };
    let head = CompletionHead {
        id: &id,
        created,
        model,
    };
    if req.flag("stream") != Some(true) {
        let choices = [TextChoice {
            text: &reply.text,
            index: 0,
            logprobs: None,
            finish_reason: Some("stop"),
        }];
        return with_request_id(response::ok_json(&head.with(&choices, Some(Some(&usage)))));
    }

    let include_usage = req
        .json
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        == Some(true);
    let pieces = reply.text_pieces();
    let mut frames = Vec::with_capacity(pieces.len() + 3);
    let per_chunk_usage = include_usage.then_some(None);
    for piece in pieces {
        let choices = [TextChoice {
            text: piece,
            index: 0,
            logprobs: None,
            finish_reason: None,
        }];
        frames.push(response::sse_data(&head.with(&choices, per_chunk_usage)));
    }
    let last = [TextChoice {
        text: "",
        index: 0,
        logprobs: None,
        finish_reason: Some("stop"),
    }];
    frames.push(response::sse_data(&head.with(&last, per_chunk_usage)));
    if include_usage {
        frames.push(response::sse_data(&head.with(&[], Some(Some(&usage)))));
    }
    frames.push(Bytes::from_static(DONE));
    with_request_id(response::stream(SSE, frames, d, stats))
}

// ---- embeddings ---------------------------------------------------------------------------

#[derive(Serialize)]
struct EmbeddingList<'a> {
    object: &'static str,
    data: Vec<EmbeddingItem>,
    model: &'a str,
    usage: EmbeddingUsage,
}

#[derive(Serialize)]
struct EmbeddingItem {
    object: &'static str,
    embedding: EmbeddingValue,
    index: usize,
}

#[derive(Serialize)]
#[serde(untagged)]
enum EmbeddingValue {
    Floats(Vec<f32>),
    Base64(String),
}

#[derive(Serialize)]
struct EmbeddingUsage {
    prompt_tokens: u64,
    total_tokens: u64,
}

/// Each embedding input as text: strings as they are, token arrays as their JSON.
fn embedding_inputs(input: Option<&Value>) -> Vec<Cow<'_, str>> {
    match input {
        Some(Value::String(s)) => vec![Cow::Borrowed(s)],
        Some(Value::Array(items)) if items.iter().all(Value::is_number) && !items.is_empty() => {
            vec![Cow::Owned(Value::Array(items.clone()).to_string())]
        }
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Cow::Borrowed(s.as_str()),
                other => Cow::Owned(other.to_string()),
            })
            .collect(),
        Some(other) => vec![Cow::Owned(other.to_string())],
        None => vec![Cow::Borrowed("")],
    }
}

pub(crate) fn embeddings(req: &MockRequest, d: &Directive) -> MockResponse {
    let dims = req
        .json
        .get("dimensions")
        .and_then(Value::as_u64)
        .map_or(vectors::DEFAULT_DIMS, |n| n as usize);
    let base64 = req.json.get("encoding_format").and_then(Value::as_str) == Some("base64");
    let inputs = embedding_inputs(req.json.get("input"));
    let chars: usize = inputs.iter().map(|s| s.chars().count()).sum();
    let tokens = d
        .usage
        .as_ref()
        .and_then(|u| u.input)
        .unwrap_or_else(|| tokens_for_chars(chars));
    let data = inputs
        .iter()
        .enumerate()
        .map(|(index, input)| {
            let v = vectors::embedding(input, dims);
            EmbeddingItem {
                object: "embedding",
                embedding: if base64 {
                    EmbeddingValue::Base64(vectors::base64_f32_le(&v))
                } else {
                    EmbeddingValue::Floats(v)
                },
                index,
            }
        })
        .collect();
    with_request_id(response::ok_json(&EmbeddingList {
        object: "list",
        data,
        model: req.model("text-embedding-3-small"),
        usage: EmbeddingUsage {
            prompt_tokens: tokens,
            total_tokens: tokens,
        },
    }))
}

// ---- models -------------------------------------------------------------------------------

pub(crate) fn models() -> MockResponse {
    let data: Vec<Value> = MODELS
        .iter()
        .map(|(id, created, owner)| json!({"id": id, "object": "model", "created": created, "owned_by": owner}))
        .collect();
    response::ok_json(&json!({"object": "list", "data": data}))
}

pub(crate) fn model(id: &str) -> MockResponse {
    let (created, owner) = MODELS
        .iter()
        .find(|(known, _, _)| *known == id)
        .map_or((1_700_000_000, "system"), |(_, c, o)| (*c, *o));
    response::ok_json(&json!({"id": id, "object": "model", "created": created, "owned_by": owner}))
}

// ---- Responses API ------------------------------------------------------------------------

/// Builds the Responses stream's frames, numbering events as the API does.
struct EventWriter {
    frames: Vec<Bytes>,
    sequence: u64,
}

impl EventWriter {
    fn emit(&mut self, kind: &'static str, mut event: Value) {
        if let Value::Object(fields) = &mut event {
            fields.insert("type".into(), Value::from(kind));
            fields.insert("sequence_number".into(), Value::from(self.sequence));
        }
        self.sequence += 1;
        self.frames.push(response::sse_event(kind, &event));
    }
}

struct ResponseHead<'a> {
    id: &'a str,
    created: u64,
    model: &'a str,
    req: &'a MockRequest,
}

impl ResponseHead<'_> {
    fn object(&self, status: &str, output: Value, usage: Value) -> Value {
        let field = |key: &str, default: Value| self.req.json.get(key).cloned().unwrap_or(default);
        json!({
            "id": self.id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "background": false,
            "error": null,
            "incomplete_details": null,
            "instructions": field("instructions", Value::Null),
            "max_output_tokens": field("max_output_tokens", Value::Null),
            "model": self.model,
            "output": output,
            "parallel_tool_calls": true,
            "previous_response_id": field("previous_response_id", Value::Null),
            "reasoning": {"effort": null, "summary": null},
            "service_tier": "default",
            "store": true,
            "temperature": 1.0,
            "text": {"format": {"type": "text"}},
            "tool_choice": "auto",
            "tools": field("tools", json!([])),
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": usage,
            "user": null,
            "metadata": {}
        })
    }
}

fn output_text_part(text: &str) -> Value {
    json!({"type": "output_text", "annotations": [], "logprobs": [], "text": text})
}

pub(crate) fn responses(req: &MockRequest, d: &Directive, stats: &Arc<MockStats>) -> MockResponse {
    let reply = Reply::build(req, d, DEFAULT_TEXT);
    let id = ids::response();
    let head = ResponseHead {
        id: &id,
        created: ids::unix_secs(),
        model: req.model(DEFAULT_MODEL),
        req,
    };
    let usage = json!({
        "input_tokens": reply.input_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": reply.output_tokens,
        "output_tokens_details": {"reasoning_tokens": reply.reasoning_tokens},
        "total_tokens": reply.total_tokens(),
    });

    let reasoning_id = reply.reasoning.as_ref().map(|_| ids::response_reasoning());
    let message_id = reply.has_text().then(ids::response_message);
    let calls: Vec<(String, String)> = reply
        .tool_calls
        .iter()
        .map(|_| (ids::response_function_call(), ids::openai_call()))
        .collect();

    let mut output = Vec::with_capacity(2 + calls.len());
    if let (Some(rid), Some(reasoning)) = (&reasoning_id, &reply.reasoning) {
        output.push(json!({
            "id": rid, "type": "reasoning",
            "summary": [{"type": "summary_text", "text": reasoning}]
        }));
    }
    if let Some(mid) = &message_id {
        output.push(json!({
            "id": mid, "type": "message", "status": "completed", "role": "assistant",
            "content": [output_text_part(&reply.text)]
        }));
    }
    for (call, (fc_id, call_id)) in reply.tool_calls.iter().zip(&calls) {
        output.push(json!({
            "id": fc_id, "type": "function_call", "status": "completed",
            "arguments": call.arguments_json, "call_id": call_id, "name": call.name
        }));
    }

    if req.flag("stream") != Some(true) {
        let body = head.object("completed", Value::Array(output), usage);
        return with_request_id(response::ok_json(&body));
    }

    let mut w = EventWriter {
        frames: Vec::with_capacity(16 + reply.text_pieces().len()),
        sequence: 0,
    };
    let pending = head.object("in_progress", json!([]), Value::Null);
    w.emit("response.created", json!({"response": pending}));
    w.emit("response.in_progress", json!({"response": pending}));

    let mut finished_items = output.iter();
    let mut output_index = 0usize;
    if let (Some(rid), Some(reasoning)) = (&reasoning_id, &reply.reasoning) {
        let at = json!({"item_id": rid, "output_index": output_index, "summary_index": 0});
        let with = |extra: Value| merge(&at, extra);
        w.emit(
            "response.output_item.added",
            json!({"output_index": output_index, "item": {"id": rid, "type": "reasoning", "summary": []}}),
        );
        w.emit(
            "response.reasoning_summary_part.added",
            with(json!({"part": {"type": "summary_text", "text": ""}})),
        );
        for piece in reply.reasoning_pieces() {
            w.emit(
                "response.reasoning_summary_text.delta",
                with(json!({"delta": piece})),
            );
        }
        w.emit(
            "response.reasoning_summary_text.done",
            with(json!({"text": reasoning})),
        );
        w.emit(
            "response.reasoning_summary_part.done",
            with(json!({"part": {"type": "summary_text", "text": reasoning}})),
        );
        if let Some(item) = finished_items.next() {
            w.emit(
                "response.output_item.done",
                json!({"output_index": output_index, "item": item}),
            );
        }
        output_index += 1;
    }
    if let Some(mid) = &message_id {
        let at = json!({"item_id": mid, "output_index": output_index, "content_index": 0});
        let with = |extra: Value| merge(&at, extra);
        w.emit(
            "response.output_item.added",
            json!({"output_index": output_index, "item": {
                "id": mid, "type": "message", "status": "in_progress", "role": "assistant", "content": []
            }}),
        );
        w.emit(
            "response.content_part.added",
            with(json!({"part": output_text_part("")})),
        );
        for piece in reply.text_pieces() {
            w.emit(
                "response.output_text.delta",
                with(json!({"delta": piece, "logprobs": []})),
            );
        }
        w.emit(
            "response.output_text.done",
            with(json!({"text": reply.text, "logprobs": []})),
        );
        w.emit(
            "response.content_part.done",
            with(json!({"part": output_text_part(&reply.text)})),
        );
        if let Some(item) = finished_items.next() {
            w.emit(
                "response.output_item.done",
                json!({"output_index": output_index, "item": item}),
            );
        }
        output_index += 1;
    }
    for (call, (fc_id, call_id)) in reply.tool_calls.iter().zip(&calls) {
        let at = json!({"item_id": fc_id, "output_index": output_index});
        w.emit(
            "response.output_item.added",
            json!({"output_index": output_index, "item": {
                "id": fc_id, "type": "function_call", "status": "in_progress",
                "arguments": "", "call_id": call_id, "name": call.name
            }}),
        );
        for piece in call.argument_pieces() {
            w.emit(
                "response.function_call_arguments.delta",
                merge(&at, json!({"delta": piece})),
            );
        }
        w.emit(
            "response.function_call_arguments.done",
            merge(
                &at,
                json!({"name": call.name, "arguments": call.arguments_json}),
            ),
        );
        if let Some(item) = finished_items.next() {
            w.emit(
                "response.output_item.done",
                json!({"output_index": output_index, "item": item}),
            );
        }
        output_index += 1;
    }
    let done = head.object("completed", Value::Array(output), usage);
    w.emit("response.completed", json!({"response": done}));
    with_request_id(response::stream(SSE, w.frames, d, stats))
}

/// `base`'s fields plus `extra`'s (both objects).
fn merge(base: &Value, extra: Value) -> Value {
    let mut merged = base.clone();
    if let (Value::Object(into), Value::Object(from)) = (&mut merged, extra) {
        into.extend(from);
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_user_text_stops_at_tool_results() {
        let body = json!({"messages": [
            {"role": "user", "content": "[mock:{\"words\":2}]"},
            {"role": "assistant", "content": "ok"},
        ]});
        assert_eq!(
            chat_user_text(&body).as_deref(),
            Some("[mock:{\"words\":2}]")
        );
        let body = json!({"messages": [
            {"role": "user", "content": "[mock:{\"words\":2}]"},
            {"role": "assistant", "tool_calls": []},
            {"role": "tool", "content": "sunny"},
        ]});
        assert_eq!(chat_user_text(&body), None);
    }

    #[test]
    fn responses_user_text_reads_strings_and_items() {
        assert_eq!(
            responses_user_text(&json!({"input": "hi"})).as_deref(),
            Some("hi")
        );
        let body = json!({"input": [
            {"role": "user", "content": [{"type": "input_text", "text": "a"}]},
            {"role": "assistant", "content": "b"}
        ]});
        assert_eq!(responses_user_text(&body).as_deref(), Some("a"));
        let body = json!({"input": [
            {"role": "user", "content": "a"},
            {"type": "function_call_output", "call_id": "c", "output": "x"}
        ]});
        assert_eq!(responses_user_text(&body), None);
    }

    #[test]
    fn embedding_inputs_cover_every_form() {
        assert_eq!(embedding_inputs(Some(&json!("a"))).len(), 1);
        assert_eq!(embedding_inputs(Some(&json!(["a", "b"]))).len(), 2);
        assert_eq!(embedding_inputs(Some(&json!([1, 2, 3]))).len(), 1);
        assert_eq!(embedding_inputs(Some(&json!([[1, 2], [3]]))).len(), 2);
    }
}
