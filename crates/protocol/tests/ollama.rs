//! Ollama native API fixtures, asserted field by field.

mod common;

use common::{
    all_content, call, decode, fixture, media, reasoning, route, text, tool_call, tool_result, tp,
};
use warden_protocol::{Framing, Role, Usage, parse_request, parse_response};

#[test]
fn chat_request() {
    let req = parse_request(
        &route("POST", "/api/chat"),
        &fixture("ollama/chat_request.json"),
    )
    .unwrap();
    assert_eq!(req.model.as_deref(), Some("qwen3:8b"));
    assert!(req.stream, "Ollama streams unless told not to");
    assert_eq!(req.max_tokens, Some(512));
    assert_eq!(
        tp(&req.system[0]),
        ("You are a helpful assistant.", "$.messages[0].content")
    );
    let roles: Vec<_> = req.messages.iter().map(|m| m.role.clone()).collect();
    assert_eq!(roles, [Role::User, Role::Assistant, Role::Tool]);
    let user = &req.messages[0].content;
    assert_eq!(
        text(&user[0]),
        (
            "What is in this picture, and what's the weather in Toronto?",
            "$.messages[1].content"
        )
    );
    assert_eq!(media(&user[1]), None);
    let assistant = &req.messages[1].content;
    assert_eq!(
        reasoning(&assistant[0]),
        (
            "The user asks two things; I need the weather tool for Toronto.",
            "$.messages[2].thinking"
        )
    );
    assert_eq!(text(&assistant[1]), ("", "$.messages[2].content"));
    assert_eq!(
        tool_call(&assistant[2]),
        &call(
            None,
            "get_current_weather",
            r#"{"city":"Toronto","format":"celsius"}"#
        )
    );
    assert_eq!(
        tool_result(&req.messages[2].content[0]),
        (
            None,
            Some("get_current_weather"),
            r#"{"temperature": 11, "conditions": "cloudy"}"#,
            "$.messages[3].content"
        )
    );
    assert_eq!(req.tools.len(), 1);
    assert_eq!(req.tools[0].name, "get_current_weather");
    assert!(req.tools[0].parameters.is_some());
}

#[test]
fn generate_and_embed_requests() {
    let req = parse_request(
        &route("POST", "/api/generate"),
        &fixture("ollama/generate_request.json"),
    )
    .unwrap();
    assert!(!req.stream);
    assert_eq!(req.max_tokens, None, "num_predict -1 is no limit");
    assert_eq!(tp(&req.system[0]), ("You are a poet.", "$.system"));
    assert_eq!(
        text(&req.messages[0].content[0]),
        ("Why is the sky blue?", "$.prompt")
    );
    assert_eq!(media(&req.messages[0].content[1]), None);

    let req = parse_request(
        &route("POST", "/api/embed"),
        &fixture("ollama/embed_request.json"),
    )
    .unwrap();
    assert!(!req.stream);
    let texts: Vec<_> = all_content(&req.messages).map(text).collect();
    assert_eq!(
        texts,
        [
            ("Why is the sky blue?", "$.input[0]"),
            ("Why is the grass green?", "$.input[1]")
        ]
    );

    let req = parse_request(
        &route("POST", "/api/generate"),
        br#"{"model":"llama3.2","prompt":"hi"}"#,
    )
    .unwrap();
    assert!(req.stream);
}

#[test]
fn buffered_responses() {
    let resp = parse_response(
        &route("POST", "/api/chat"),
        &fixture("ollama/chat_response.json"),
    )
    .unwrap();
    assert_eq!(resp.model.as_deref(), Some("llama3.2"));
    assert_eq!(resp.id, None);
    assert_eq!(
        resp.output_text,
        "The sky is blue because of Rayleigh scattering."
    );
    assert_eq!(resp.finish_reason.as_deref(), Some("stop"));
    assert_eq!(
        resp.usage,
        Usage {
            input_tokens: Some(26),
            output_tokens: Some(12),
            cached_input_tokens: None,
            reasoning_tokens: None,
        }
    );

    let resp = parse_response(
        &route("POST", "/api/chat"),
        &fixture("ollama/chat_response_tool_calls.json"),
    )
    .unwrap();
    assert_eq!(
        resp.tool_calls,
        [
            call(
                None,
                "get_current_weather",
                r#"{"city":"Toronto","format":"celsius"}"#
            ),
            call(
                None,
                "get_current_weather",
                r#"{"city":"Paris","format":"celsius"}"#
            ),
        ]
    );

    let resp = parse_response(
        &route("POST", "/api/generate"),
        &fixture("ollama/generate_response.json"),
    )
    .unwrap();
    assert_eq!(
        resp.output_text,
        "The sky is blue because of Rayleigh scattering."
    );
    assert_eq!(resp.usage.output_tokens, Some(290));

    let resp = parse_response(
        &route("POST", "/api/chat"),
        &fixture("ollama/error_response.json"),
    )
    .unwrap();
    assert_eq!(
        resp.error.as_deref(),
        Some("model \"llama9\" not found, try pulling it first")
    );
}

#[test]
fn chat_stream_with_thinking() {
    let (resp, terminal) = decode(
        &route("POST", "/api/chat"),
        Framing::Ndjson,
        &fixture("ollama/chat_stream.ndjson"),
    );
    assert!(terminal);
    assert_eq!(resp.reasoning, "Okay, the user wants a haiku.");
    assert_eq!(resp.output_text, "Blue sky at dawn — calme ☀️");
    assert_eq!(resp.finish_reason.as_deref(), Some("stop"));
    assert_eq!(resp.usage.input_tokens, Some(26));
    assert_eq!(resp.usage.output_tokens, Some(282));
}

#[test]
fn chat_stream_tool_calls_match_buffered() {
    let route = route("POST", "/api/chat");
    let (resp, _) = decode(
        &route,
        Framing::Ndjson,
        &fixture("ollama/chat_stream_tools.ndjson"),
    );
    let buffered =
        parse_response(&route, &fixture("ollama/chat_response_tool_calls.json")).unwrap();
    assert_eq!(resp.tool_calls, buffered.tool_calls);
    assert_eq!(resp.usage, buffered.usage);
}

#[test]
fn generate_stream_and_error_line() {
    let (resp, terminal) = decode(
        &route("POST", "/api/generate"),
        Framing::Ndjson,
        &fixture("ollama/generate_stream.ndjson"),
    );
    assert!(terminal);
    assert_eq!(
        resp.output_text,
        "The sky is blue because of Rayleigh scattering."
    );
    assert_eq!(resp.usage.output_tokens, Some(9));

    let (resp, terminal) = decode(
        &route("POST", "/api/chat"),
        Framing::Ndjson,
        &fixture("ollama/chat_stream_error.ndjson"),
    );
    assert!(!terminal);
    assert_eq!(resp.output_text, "Hel");
    assert_eq!(
        resp.error.as_deref(),
        Some("an error was encountered while running the model: unexpected EOF")
    );
}
