//! Gemini: `generateContent`, `streamGenerateContent` (SSE with `?alt=sse`, otherwise one JSON
//! array streamed element by element), `countTokens`, `embedContent`, `batchEmbedContents`,
//! model listing, and Google's error body. Gemini streams a function call whole in one chunk
//! (the API has no argument deltas), so tool calls are not split here.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Value, json};

use crate::directive::Directive;
use crate::ids;
use crate::reply::Reply;
use crate::request::{MockRequest, join_texts};
use crate::response::{self, MockResponse};
use crate::stats::MockStats;
use crate::vectors;

const DEFAULT_TEXT: &str = "Hello from the mock Gemini upstream.";
const JSON_UTF8: &str = "application/json; charset=UTF-8";
const SSE: &str = "text/event-stream";

const MODELS: &[(&str, &str)] = &[
    ("gemini-2.5-flash", "Gemini 2.5 Flash"),
    ("gemini-2.5-pro", "Gemini 2.5 Pro"),
    ("gemini-2.0-flash", "Gemini 2.0 Flash"),
    ("text-embedding-004", "Text Embedding 004"),
];

/// The Gemini `models/{model}:ACTION` operations the mock serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    GenerateContent,
    StreamGenerateContent,
    CountTokens,
    EmbedContent,
    BatchEmbedContents,
}

impl Action {
    pub(crate) fn parse(action: &str) -> Option<Self> {
        Some(match action {
            "generateContent" => Action::GenerateContent,
            "streamGenerateContent" => Action::StreamGenerateContent,
            "countTokens" => Action::CountTokens,
            "embedContent" => Action::EmbedContent,
            "batchEmbedContents" => Action::BatchEmbedContents,
            _ => return None,
        })
    }

    /// Whether the request holds a conversation whose last user turn may carry a directive.
    pub(crate) fn reads_messages(self) -> bool {
        matches!(
            self,
            Action::GenerateContent | Action::StreamGenerateContent | Action::CountTokens
        )
    }
}

pub(crate) fn error_body(status: u16, message: &str) -> Vec<u8> {
    let grpc_status = match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "NOT_IMPLEMENTED",
        503 | 529 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        other if other < 500 => "FAILED_PRECONDITION",
        _ => "INTERNAL",
    };
    response::to_vec(&json!({
        "error": {"code": status, "message": message, "status": grpc_status}
    }))
}

/// Text parts of the last user turn; a turn of function responses alone carries none.
pub(crate) fn user_text(body: &Value) -> Option<Cow<'_, str>> {
    let contents = body
        .get("contents")
        .or_else(|| body.pointer("/generateContentRequest/contents"))?;
    for content in contents.as_array()?.iter().rev() {
        match content.get("role").and_then(Value::as_str) {
            None | Some("user") => {
                let parts = content.get("parts")?.as_array()?;
                return join_texts(parts.iter().filter_map(|p| p.get("text")?.as_str()));
            }
            Some("function" | "tool") => return None,
            _ => {}
        }
    }
    None
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerateResponse<'a> {
    candidates: [Candidate<'a>; 1],
    usage_metadata: UsageMetadata,
    model_version: &'a str,
    response_id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Candidate<'a> {
    content: Content<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finish_reason: Option<&'static str>,
    index: u32,
}

#[derive(Serialize)]
struct Content<'a> {
    parts: Vec<Part<'a>>,
    role: &'static str,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Part<'a> {
    Text {
        text: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        thought: Option<bool>,
    },
    FunctionCall {
        #[serde(rename = "functionCall")]
        function_call: FunctionCall<'a>,
    },
}

#[derive(Serialize)]
struct FunctionCall<'a> {
    name: &'a str,
    args: &'a Value,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    prompt_token_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    candidates_token_count: Option<u64>,
    total_token_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    thoughts_token_count: Option<u64>,
    prompt_tokens_details: [ModalityCount; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ModalityCount {
    modality: &'static str,
    token_count: u64,
}

impl UsageMetadata {
    fn final_of(reply: &Reply) -> Self {
        let thoughts = reply.reasoning_tokens;
        UsageMetadata {
            prompt_token_count: reply.input_tokens,
            candidates_token_count: Some(reply.output_tokens - thoughts),
            total_token_count: reply.total_tokens(),
            thoughts_token_count: (thoughts > 0).then_some(thoughts),
            prompt_tokens_details: prompt_details(reply.input_tokens),
        }
    }

    /// What intermediate stream chunks report: the prompt so far, nothing generated yet.
    fn partial_of(reply: &Reply) -> Self {
        UsageMetadata {
            prompt_token_count: reply.input_tokens,
            candidates_token_count: None,
            total_token_count: reply.input_tokens,
            thoughts_token_count: None,
            prompt_tokens_details: prompt_details(reply.input_tokens),
        }
    }
}

fn prompt_details(tokens: u64) -> [ModalityCount; 1] {
    [ModalityCount {
        modality: "TEXT",
        token_count: tokens,
    }]
}

fn text_part(text: &str, thought: bool) -> Part<'_> {
    Part::Text {
        text,
        thought: thought.then_some(true),
    }
}

fn call_parts(reply: &Reply) -> impl Iterator<Item = Part<'_>> {
    reply.tool_calls.iter().map(|call| Part::FunctionCall {
        function_call: FunctionCall {
            name: &call.name,
            args: &call.arguments,
        },
    })
}

pub(crate) fn generate(
    req: &MockRequest,
    d: &Directive,
    stats: &Arc<MockStats>,
    model: &str,
    stream: bool,
) -> MockResponse {
    let reply = Reply::build(req, d, DEFAULT_TEXT);
    let response_id = ids::gemini_response();
    let render = |parts: Vec<Part<'_>>, last: bool, prefix: &[u8], suffix: &[u8]| {
        let body = GenerateResponse {
            candidates: [Candidate {
                content: Content {
                    parts,
                    role: "model",
                },
                finish_reason: last.then_some("STOP"),
                index: 0,
            }],
            usage_metadata: if last {
                UsageMetadata::final_of(&reply)
            } else {
                UsageMetadata::partial_of(&reply)
            },
            model_version: model,
            response_id: &response_id,
        };
        response::frame(prefix, &body, suffix)
    };

    if !stream {
        let mut parts = Vec::with_capacity(2 + reply.tool_calls.len());
        if let Some(reasoning) = &reply.reasoning {
            parts.push(text_part(reasoning, true));
        }
        if reply.has_text() {
            parts.push(text_part(&reply.text, false));
        }
        parts.extend(call_parts(&reply));
        return response::json_as(
            http::StatusCode::OK,
            JSON_UTF8,
            render(parts, true, b"", b""),
        );
    }

    let mut chunks: Vec<Vec<Part<'_>>> = Vec::new();
    chunks.extend(
        reply
            .reasoning_pieces()
            .into_iter()
            .map(|p| vec![text_part(p, true)]),
    );
    chunks.extend(
        reply
            .text_pieces()
            .into_iter()
            .map(|p| vec![text_part(p, false)]),
    );
    if !reply.tool_calls.is_empty() {
        chunks.push(call_parts(&reply).collect());
    }
    if chunks.is_empty() {
        chunks.push(vec![text_part("", false)]);
    }
    let count = chunks.len();
    let sse = req.query_param("alt") == Some("sse");
    let mut frames: Vec<Bytes> = Vec::with_capacity(count + 1);
    for (i, parts) in chunks.into_iter().enumerate() {
        let (prefix, suffix): (&[u8], &[u8]) = match (sse, i) {
            (true, _) => (b"data: ", b"\r\n\r\n"),
            (false, 0) => (b"[", b""),
            (false, _) => (b",\r\n", b""),
        };
        frames.push(render(parts, i + 1 == count, prefix, suffix));
    }
    if !sse {
        frames.push(Bytes::from_static(b"]"));
    }
    response::stream(if sse { SSE } else { JSON_UTF8 }, frames, d, stats)
}

pub(crate) fn count_tokens(req: &MockRequest, d: &Directive) -> MockResponse {
    let tokens = d
        .usage
        .as_ref()
        .and_then(|u| u.input)
        .unwrap_or_else(|| req.input_tokens());
    response::ok_json(&json!({
        "totalTokens": tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": tokens}]
    }))
}

/// `{"values": [...]}` for one embed request (`content` plus optional `outputDimensionality`).
fn embedding_of(request: &Value) -> Value {
    let dims = request
        .get("outputDimensionality")
        .and_then(Value::as_u64)
        .map_or(vectors::DEFAULT_DIMS, |n| n as usize);
    let text = request
        .pointer("/content/parts")
        .and_then(Value::as_array)
        .and_then(|parts| join_texts(parts.iter().filter_map(|p| p.get("text")?.as_str())))
        .unwrap_or_default();
    json!({"values": vectors::embedding(&text, dims)})
}

pub(crate) fn embed_content(req: &MockRequest) -> MockResponse {
    response::ok_json(&json!({"embedding": embedding_of(&req.json)}))
}

pub(crate) fn batch_embed_contents(req: &MockRequest) -> MockResponse {
    let embeddings: Vec<Value> = req
        .json
        .get("requests")
        .and_then(Value::as_array)
        .map(|requests| requests.iter().map(embedding_of).collect())
        .unwrap_or_default();
    response::ok_json(&json!({"embeddings": embeddings}))
}

fn model_object(name: &str) -> Value {
    let display = MODELS
        .iter()
        .find(|(id, _)| *id == name)
        .map_or(Cow::Borrowed(name), |(_, display)| Cow::Borrowed(*display));
    let embedding = name.contains("embedding");
    let methods: &[&str] = if embedding {
        &["embedContent", "batchEmbedContents"]
    } else {
        &["generateContent", "streamGenerateContent", "countTokens"]
    };
    json!({
        "name": format!("models/{name}"),
        "version": "001",
        "displayName": display,
        "description": format!("{display} served by warden-mock"),
        "inputTokenLimit": if embedding { 2048 } else { 1_048_576 },
        "outputTokenLimit": if embedding { 1 } else { 65_536 },
        "supportedGenerationMethods": methods,
    })
}

pub(crate) fn models() -> MockResponse {
    let models: Vec<Value> = MODELS.iter().map(|(id, _)| model_object(id)).collect();
    response::ok_json(&json!({"models": models}))
}

pub(crate) fn model(name: &str) -> MockResponse {
    response::ok_json(&model_object(name.strip_prefix("models/").unwrap_or(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_takes_the_last_user_turn() {
        let body = json!({"contents": [
            {"role": "user", "parts": [{"text": "a"}, {"text": "[mock:{}]"}]},
            {"role": "model", "parts": [{"text": "b"}]},
        ]});
        assert_eq!(user_text(&body).as_deref(), Some("a\n[mock:{}]"));
        let body = json!({"contents": [{"parts": [{"text": "no role"}]}]});
        assert_eq!(user_text(&body).as_deref(), Some("no role"));
        let body = json!({"contents": [
            {"role": "user", "parts": [{"text": "[mock:{}]"}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}}]},
        ]});
        assert_eq!(user_text(&body), None);
    }

    #[test]
    fn embeddings_follow_requested_dimensions() {
        let req = json!({"content": {"parts": [{"text": "hello"}]}, "outputDimensionality": 4});
        assert_eq!(embedding_of(&req)["values"].as_array().unwrap().len(), 4);
    }
}
