//! Ollama: `/api/chat` and `/api/generate` (NDJSON streams unless `"stream": false`, as Ollama
//! defaults to streaming), `/api/embed`, the legacy `/api/embeddings`, `/api/tags`,
//! `/api/version`, and Ollama's `{"error": "..."}` body. Ollama sends tool calls whole, with
//! arguments as an object, so they are not split.

use std::borrow::Cow;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};

use crate::directive::Directive;
use crate::ids;
use crate::reply::Reply;
use crate::request::{MockRequest, content_text, tokens_for_chars};
use crate::response::{self, MockResponse, NDJSON};
use crate::stats::MockStats;
use crate::vectors;

pub(crate) const DEFAULT_MODEL: &str = "llama3.2";
const DEFAULT_TEXT: &str = "Hello from the mock Ollama upstream.";
/// Plausible per-token timings, in nanoseconds, for the duration fields.
const PROMPT_NS_PER_TOKEN: u64 = 1_000_000;
const EVAL_NS_PER_TOKEN: u64 = 10_000_000;
const LOAD_NS: u64 = 2_500_000;

pub(crate) fn error_body(message: &str) -> Vec<u8> {
    response::to_vec(&json!({ "error": message }))
}

/// Text of the last user message of a chat; a trailing tool result ends the search.
pub(crate) fn chat_user_text(body: &Value) -> Option<Cow<'_, str>> {
    for message in body.get("messages")?.as_array()?.iter().rev() {
        match message.get("role").and_then(Value::as_str) {
            Some("user") => return content_text(message.get("content")?),
            Some("tool") => return None,
            _ => {}
        }
    }
    None
}

pub(crate) fn generate_prompt(body: &Value) -> Option<Cow<'_, str>> {
    body.get("prompt")?.as_str().map(Cow::Borrowed)
}

/// The fields only the final object of a generation carries.
#[derive(Serialize)]
struct Totals {
    done_reason: &'static str,
    total_duration: u64,
    load_duration: u64,
    prompt_eval_count: u64,
    prompt_eval_duration: u64,
    eval_count: u64,
    eval_duration: u64,
}

impl Totals {
    fn of(reply: &Reply) -> Self {
        let prompt_eval_duration = reply.input_tokens * PROMPT_NS_PER_TOKEN;
        let eval_duration = reply.output_tokens * EVAL_NS_PER_TOKEN;
        Totals {
            done_reason: "stop",
            total_duration: LOAD_NS + prompt_eval_duration + eval_duration,
            load_duration: LOAD_NS,
            prompt_eval_count: reply.input_tokens,
            prompt_eval_duration,
            eval_count: reply.output_tokens,
            eval_duration,
        }
    }
}

#[derive(Serialize)]
struct ChatObject<'a> {
    model: &'a str,
    created_at: &'a str,
    message: ChatMessage<'a>,
    done: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    totals: Option<&'a Totals>,
}

#[derive(Serialize)]
struct ChatMessage<'a> {
    role: &'static str,
    content: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCall<'a>>,
}

#[derive(Serialize)]
struct ToolCall<'a> {
    function: ToolFunction<'a>,
}

#[derive(Serialize)]
struct ToolFunction<'a> {
    index: usize,
    name: &'a str,
    arguments: &'a Value,
}

#[derive(Serialize)]
struct GenerateObject<'a> {
    model: &'a str,
    created_at: &'a str,
    response: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<&'a str>,
    done: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<&'a [u32]>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    totals: Option<&'a Totals>,
}

fn tool_calls(reply: &Reply) -> Vec<ToolCall<'_>> {
    reply
        .tool_calls
        .iter()
        .enumerate()
        .map(|(index, call)| ToolCall {
            function: ToolFunction {
                index,
                name: &call.name,
                arguments: &call.arguments,
            },
        })
        .collect()
}

fn streams(req: &MockRequest) -> bool {
    req.flag("stream") != Some(false)
}

pub(crate) fn chat(req: &MockRequest, d: &Directive, stats: &Arc<MockStats>) -> MockResponse {
    let reply = Reply::build(req, d, DEFAULT_TEXT);
    let model = req.model(DEFAULT_MODEL);
    let created_at = ids::rfc3339_now();
    let totals = Totals::of(&reply);
    let line = |content: &str, thinking: Option<&str>, calls: bool, last: bool, suffix: &[u8]| {
        let object = ChatObject {
            model,
            created_at: &created_at,
            message: ChatMessage {
                role: "assistant",
                content,
                thinking,
                tool_calls: if calls {
                    tool_calls(&reply)
                } else {
                    Vec::new()
                },
            },
            done: last,
            totals: last.then_some(&totals),
        };
        response::frame(b"", &object, suffix)
    };

    if !streams(req) {
        let body = line(&reply.text, reply.reasoning.as_deref(), true, true, b"");
        return response::json(http::StatusCode::OK, body);
    }

    let mut frames = Vec::with_capacity(4 + reply.text_pieces().len());
    for piece in reply.reasoning_pieces() {
        frames.push(line("", Some(piece), false, false, b"\n"));
    }
    for piece in reply.text_pieces() {
        frames.push(line(piece, None, false, false, b"\n"));
    }
    if !reply.tool_calls.is_empty() {
        frames.push(line("", None, true, false, b"\n"));
    }
    frames.push(line("", None, false, true, b"\n"));
    response::stream(NDJSON, frames, d, stats)
}

pub(crate) fn generate(req: &MockRequest, d: &Directive, stats: &Arc<MockStats>) -> MockResponse {
    let reply = Reply::build(req, d, DEFAULT_TEXT);
    let model = req.model(DEFAULT_MODEL);
    let created_at = ids::rfc3339_now();
    let totals = Totals::of(&reply);
    // Ollama returns the conversation's token ids for follow-up calls; any ids will do.
    let context: Vec<u32> = (1..=reply.total_tokens().min(64) as u32).collect();
    let line = |response: &str, thinking: Option<&str>, last: bool, suffix: &[u8]| {
        let object = GenerateObject {
            model,
            created_at: &created_at,
            response,
            thinking,
            done: last,
            context: last.then_some(context.as_slice()),
            totals: last.then_some(&totals),
        };
        response::frame(b"", &object, suffix)
    };

    if !streams(req) {
        let body = line(&reply.text, reply.reasoning.as_deref(), true, b"");
        return response::json(http::StatusCode::OK, body);
    }

    let mut frames = Vec::with_capacity(2 + reply.text_pieces().len());
    for piece in reply.reasoning_pieces() {
        frames.push(line("", Some(piece), false, b"\n"));
    }
    for piece in reply.text_pieces() {
        frames.push(line(piece, None, false, b"\n"));
    }
    frames.push(line("", None, true, b"\n"));
    response::stream(NDJSON, frames, d, stats)
}

fn dimensions(req: &MockRequest) -> usize {
    req.json
        .get("dimensions")
        .and_then(Value::as_u64)
        .map_or(vectors::DEFAULT_DIMS, |n| n as usize)
}

pub(crate) fn embed(req: &MockRequest, d: &Directive) -> MockResponse {
    let inputs: Vec<&str> = match req.json.get("input") {
        Some(Value::String(s)) => vec![s],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let dims = dimensions(req);
    let embeddings: Vec<Vec<f32>> = inputs.iter().map(|s| vectors::embedding(s, dims)).collect();
    let chars = inputs.iter().map(|s| s.chars().count()).sum();
    let tokens = d
        .usage
        .as_ref()
        .and_then(|u| u.input)
        .unwrap_or_else(|| tokens_for_chars(chars));
    response::ok_json(&json!({
        "model": req.model(DEFAULT_MODEL),
        "embeddings": embeddings,
        "total_duration": LOAD_NS + tokens * PROMPT_NS_PER_TOKEN,
        "load_duration": LOAD_NS,
        "prompt_eval_count": tokens,
    }))
}

pub(crate) fn legacy_embeddings(req: &MockRequest) -> MockResponse {
    let prompt = req.json.get("prompt").and_then(Value::as_str).unwrap_or("");
    response::ok_json(&json!({"embedding": vectors::embedding(prompt, dimensions(req))}))
}

pub(crate) fn tags() -> MockResponse {
    let model = |name: &str, family: &str, size: &str, bytes: u64| {
        json!({
            "name": format!("{name}:latest"),
            "model": format!("{name}:latest"),
            "modified_at": "2025-01-01T00:00:00.000000000Z",
            "size": bytes,
            "digest": format!("{:0>64}", format!("{:x}", bytes)),
            "details": {
                "parent_model": "",
                "format": "gguf",
                "family": family,
                "families": [family],
                "parameter_size": size,
                "quantization_level": "Q4_K_M"
            }
        })
    };
    response::ok_json(&json!({"models": [
        model("llama3.2", "llama", "3.2B", 2_019_393_189),
        model("qwen3", "qwen3", "8.2B", 5_225_388_164),
        model("all-minilm", "bert", "23M", 45_960_996),
    ]}))
}

pub(crate) fn version() -> MockResponse {
    response::ok_json(&json!({"version": "0.12.0"}))
}
