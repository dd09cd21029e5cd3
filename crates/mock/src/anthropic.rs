//! Anthropic: the Messages API (buffered `message` objects and named-event SSE streams),
//! token counting, and Anthropic's error body. The `anthropic` SDK dispatches stream events on
//! the `event:` line, so every frame carries one.

use std::borrow::Cow;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::directive::Directive;
use crate::ids;
use crate::reply::{Reply, ToolCall};
use crate::request::{MockRequest, content_text};
use crate::response::{self, MockResponse, SSE};
use crate::stats::MockStats;

pub(crate) const DEFAULT_MODEL: &str = "claude-sonnet-4-5";
const DEFAULT_TEXT: &str = "Hello from the mock Anthropic upstream.";

pub(crate) fn error_body(status: u16, message: &str) -> Vec<u8> {
    let kind = match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        503 | 529 => "overloaded_error",
        other if other < 500 => "invalid_request_error",
        _ => "api_error",
    };
    response::to_vec(&json!({
        "type": "error",
        "error": {"type": kind, "message": message},
        "request_id": ids::anthropic_request(),
    }))
}

/// Text of the last user turn; a turn of tool results alone carries none.
pub(crate) fn user_text(body: &Value) -> Option<Cow<'_, str>> {
    let last_user = body
        .get("messages")?
        .as_array()?
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))?;
    match last_user.get("content")? {
        Value::Array(blocks) => crate::request::join_texts(
            blocks
                .iter()
                .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
                .filter_map(|b| b.get("text")?.as_str()),
        ),
        other => content_text(other),
    }
}

/// The content blocks of a reply, in order: thinking, text, tool uses.
enum Planned<'a> {
    Thinking(&'a str, &'a str),
    Text,
    ToolUse(&'a ToolCall, &'a str),
}

#[derive(Serialize)]
struct Message<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: Vec<Block<'a>>,
    stop_reason: Option<&'static str>,
    stop_sequence: Option<()>,
    usage: Usage,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Thinking {
        thinking: &'a str,
        signature: &'a str,
    },
    Text {
        text: &'a str,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: &'a Value,
    },
}

#[derive(Serialize)]
struct Usage {
    input_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
    output_tokens: u64,
    service_tier: &'static str,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event<'a> {
    MessageStart {
        message: Message<'a>,
    },
    ContentBlockStart {
        index: usize,
        content_block: Block<'a>,
    },
    Ping,
    ContentBlockDelta {
        index: usize,
        delta: Delta<'a>,
    },
    ContentBlockStop {
        index: usize,
    },
    MessageDelta {
        delta: StopDelta,
        usage: OutputUsage,
    },
    MessageStop,
}

impl Event<'_> {
    fn name(&self) -> &'static str {
        match self {
            Event::MessageStart { .. } => "message_start",
            Event::ContentBlockStart { .. } => "content_block_start",
            Event::Ping => "ping",
            Event::ContentBlockDelta { .. } => "content_block_delta",
            Event::ContentBlockStop { .. } => "content_block_stop",
            Event::MessageDelta { .. } => "message_delta",
            Event::MessageStop => "message_stop",
        }
    }
}

#[derive(Serialize)]
#[serde(tag = "type")]
enum Delta<'a> {
    #[serde(rename = "text_delta")]
    Text { text: &'a str },
    #[serde(rename = "thinking_delta")]
    Thinking { thinking: &'a str },
    #[serde(rename = "signature_delta")]
    Signature { signature: &'a str },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: &'a str },
}

#[derive(Serialize)]
struct StopDelta {
    stop_reason: &'static str,
    stop_sequence: Option<()>,
}

#[derive(Serialize)]
struct OutputUsage {
    output_tokens: u64,
}

pub(crate) fn messages(req: &MockRequest, d: &Directive, stats: &Arc<MockStats>) -> MockResponse {
    let reply = Reply::build(req, d, DEFAULT_TEXT);
    let model = req.model(DEFAULT_MODEL);
    let id = ids::anthropic_message();
    let signature = reply.reasoning.as_ref().map(|_| ids::thinking_signature());
    let tool_ids: Vec<String> = reply
        .tool_calls
        .iter()
        .map(|_| ids::anthropic_tool_use())
        .collect();
    let stop_reason = if reply.tool_calls.is_empty() {
        "end_turn"
    } else {
        "tool_use"
    };
    let usage = |output_tokens| Usage {
        input_tokens: reply.input_tokens,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 0,
        output_tokens,
        service_tier: "standard",
    };

    let mut plan = Vec::with_capacity(2 + tool_ids.len());
    if let (Some(thinking), Some(signature)) = (&reply.reasoning, &signature) {
        plan.push(Planned::Thinking(thinking, signature));
    }
    if reply.has_text() {
        plan.push(Planned::Text);
    }
    for (call, id) in reply.tool_calls.iter().zip(&tool_ids) {
        plan.push(Planned::ToolUse(call, id));
    }

    let with_request_id =
        |response| response::with_header(response, "request-id", &ids::anthropic_request());

    if req.flag("stream") != Some(true) {
        let content = plan
            .iter()
            .map(|planned| match *planned {
                Planned::Thinking(thinking, signature) => Block::Thinking {
                    thinking,
                    signature,
                },
                Planned::Text => Block::Text { text: &reply.text },
                Planned::ToolUse(call, id) => Block::ToolUse {
                    id,
                    name: &call.name,
                    input: &call.arguments,
                },
            })
            .collect();
        return with_request_id(response::ok_json(&Message {
            id: &id,
            kind: "message",
            role: "assistant",
            model,
            content,
            stop_reason: Some(stop_reason),
            stop_sequence: None,
            usage: usage(reply.output_tokens),
        }));
    }

    let empty_input = Value::Object(Map::new());
    let mut frames = Vec::with_capacity(8 + reply.text_pieces().len());
    let mut emit = |event: Event<'_>| frames.push(response::sse_event(event.name(), &event));
    emit(Event::MessageStart {
        message: Message {
            id: &id,
            kind: "message",
            role: "assistant",
            model,
            content: Vec::new(),
            stop_reason: None,
            stop_sequence: None,
            usage: usage(1),
        },
    });
    for (index, planned) in plan.iter().enumerate() {
        let (start, deltas): (Block<'_>, Vec<Delta<'_>>) = match *planned {
            Planned::Thinking(_, signature) => {
                let mut deltas: Vec<Delta<'_>> = reply
                    .reasoning_pieces()
                    .into_iter()
                    .map(|thinking| Delta::Thinking { thinking })
                    .collect();
                deltas.push(Delta::Signature { signature });
                let start = Block::Thinking {
                    thinking: "",
                    signature: "",
                };
                (start, deltas)
            }
            Planned::Text => (
                Block::Text { text: "" },
                reply
                    .text_pieces()
                    .into_iter()
                    .map(|text| Delta::Text { text })
                    .collect(),
            ),
            Planned::ToolUse(call, id) => (
                Block::ToolUse {
                    id,
                    name: &call.name,
                    input: &empty_input,
                },
                call.argument_pieces()
                    .into_iter()
                    .map(|partial_json| Delta::InputJson { partial_json })
                    .collect(),
            ),
        };
        emit(Event::ContentBlockStart {
            index,
            content_block: start,
        });
        if index == 0 {
            emit(Event::Ping);
        }
        for delta in deltas {
            emit(Event::ContentBlockDelta { index, delta });
        }
        emit(Event::ContentBlockStop { index });
    }
    emit(Event::MessageDelta {
        delta: StopDelta {
            stop_reason,
            stop_sequence: None,
        },
        usage: OutputUsage {
            output_tokens: reply.output_tokens,
        },
    });
    emit(Event::MessageStop);
    with_request_id(response::stream(SSE, frames, d, stats))
}

pub(crate) fn count_tokens(req: &MockRequest, d: &Directive) -> MockResponse {
    let tokens = d
        .usage
        .as_ref()
        .and_then(|u| u.input)
        .unwrap_or_else(|| req.input_tokens());
    response::ok_json(&json!({"input_tokens": tokens}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_ignores_tool_result_turns() {
        let body = json!({"messages": [
            {"role": "user", "content": [{"type": "text", "text": "[mock:{}]"}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "x"}]},
        ]});
        assert_eq!(user_text(&body), None);
        let body = json!({"messages": [{"role": "user", "content": "hello"}]});
        assert_eq!(user_text(&body).as_deref(), Some("hello"));
    }
}
