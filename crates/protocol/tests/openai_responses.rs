//! OpenAI Responses API fixtures, asserted field by field.

mod common;

use common::{call, decode, fixture, media, reasoning, route, text, tool_call, tool_result, tp};
use warden_protocol::{Framing, Role, StreamInspector, Usage, parse_request, parse_response};

const RESPONSES: &str = "/v1/responses";

#[test]
fn request_items_instructions_and_tools() {
    let req = parse_request(
        &route("POST", RESPONSES),
        &fixture("openai/responses_request.json"),
    )
    .unwrap();
    assert_eq!(req.model.as_deref(), Some("gpt-5"));
    assert!(req.stream);
    assert_eq!(req.max_tokens, Some(2048));
    assert_eq!(
        req.system.iter().map(tp).collect::<Vec<_>>(),
        [
            (
                "You are a travel assistant. Use tools when needed.",
                "$.instructions"
            ),
            ("Answer in one sentence.", "$.input[4].content"),
        ]
    );
    let roles: Vec<_> = req.messages.iter().map(|m| m.role.clone()).collect();
    assert_eq!(
        roles,
        [
            Role::User,
            Role::Assistant,
            Role::Assistant,
            Role::Tool,
            Role::Assistant
        ],
        "item_reference carries nothing and is skipped"
    );
    let user = &req.messages[0].content;
    assert_eq!(
        text(&user[0]),
        (
            "What's the weather in Paris? My itinerary is attached.",
            "$.input[0].content[0].text"
        )
    );
    assert_eq!(media(&user[1]), Some("image/jpeg"));
    assert_eq!(media(&user[2]), Some("application/pdf"));
    assert_eq!(
        reasoning(&req.messages[1].content[0]),
        (
            "**Checking the weather**\n\nThe user wants current conditions in Paris.",
            "$.input[1].summary[0].text"
        )
    );
    assert_eq!(
        tool_call(&req.messages[2].content[0]),
        &call(
            Some("call_Xq3uZ9LmT2pVwB7rK4sYdN1e"),
            "get_weather",
            r#"{"city":"Paris","unit":"celsius"}"#
        )
    );
    assert_eq!(
        tool_result(&req.messages[3].content[0]),
        (
            Some("call_Xq3uZ9LmT2pVwB7rK4sYdN1e"),
            None,
            r#"{"temp_c":18,"conditions":"light rain"}"#,
            "$.input[3].output"
        )
    );
    assert_eq!(
        text(&req.messages[4].content[0]),
        ("Checking now.", "$.input[5].content[0].text")
    );
    let tools: Vec<_> = req.tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(tools, ["get_weather", "web_search"]);
    assert!(req.tools[0].parameters.is_some());
    assert!(req.tools[1].parameters.is_none());
}

#[test]
fn request_string_input() {
    let req = parse_request(
        &route("POST", RESPONSES),
        br#"{"model":"gpt-5-nano","input":"Tell me a joke"}"#,
    )
    .unwrap();
    assert!(!req.stream);
    assert_eq!(req.messages[0].role, Role::User);
    assert_eq!(
        text(&req.messages[0].content[0]),
        ("Tell me a joke", "$.input")
    );
}

#[test]
fn buffered_response() {
    let resp = parse_response(
        &route("POST", RESPONSES),
        &fixture("openai/responses_response.json"),
    )
    .unwrap();
    assert_eq!(
        resp.id.as_deref(),
        Some("resp_68b0d1d0c1b2a3948576a5b4c3d2e1f0")
    );
    assert_eq!(resp.model.as_deref(), Some("gpt-5-2025-08-07"));
    assert_eq!(resp.output_text, "It's 18 °C with light rain in Paris.");
    assert_eq!(
        resp.reasoning,
        "**Planning the answer**\n\nWeather is known; time still needed."
    );
    assert_eq!(
        resp.tool_calls,
        [call(
            Some("call_R7mYp2QwX9vLb4NtK6sZc1Ue"),
            "get_time",
            r#"{"timezone":"Europe/Paris"}"#
        )],
        "the built-in web_search_call is the provider's, not the agent's"
    );
    assert_eq!(resp.finish_reason.as_deref(), Some("completed"));
    assert_eq!(
        resp.usage,
        Usage {
            input_tokens: Some(412),
            output_tokens: Some(180),
            cached_input_tokens: Some(256),
            reasoning_tokens: Some(128),
        }
    );
    assert_eq!(resp.error, None);
}

#[test]
fn incomplete_response_reports_the_reason() {
    let resp = parse_response(
        &route("POST", RESPONSES),
        &fixture("openai/responses_response_incomplete.json"),
    )
    .unwrap();
    assert_eq!(resp.finish_reason.as_deref(), Some("max_output_tokens"));
    assert_eq!(resp.output_text, "");
    assert_eq!(resp.usage.reasoning_tokens, Some(16));
}

#[test]
fn stream_matches_the_buffered_response() {
    let route = route("POST", RESPONSES);
    let (streamed, terminal) = decode(
        &route,
        Framing::Sse,
        &fixture("openai/responses_stream.sse"),
    );
    assert!(terminal);
    let buffered = parse_response(&route, &fixture("openai/responses_response.json")).unwrap();
    assert_eq!(streamed, buffered);
}

#[test]
fn stream_cut_before_completion_keeps_the_deltas() {
    let route = route("POST", RESPONSES);
    let body = fixture("openai/responses_stream.sse");
    let marker = b"event: response.function_call_arguments.done";
    let cut = body
        .windows(marker.len())
        .position(|w| w == marker)
        .unwrap();
    let mut inspector = StreamInspector::new(&route, Framing::Sse);
    inspector.push(&body[..cut]);
    assert!(!inspector.saw_terminal());
    let resp = inspector.finish();
    assert_eq!(resp.output_text, "It's 18 °C with light rain in Paris.");
    assert_eq!(
        resp.reasoning,
        "**Planning the answer**\n\nWeather is known; time still needed."
    );
    assert_eq!(
        resp.tool_calls,
        [call(
            Some("call_R7mYp2QwX9vLb4NtK6sZc1Ue"),
            "get_time",
            r#"{"timezone":"Europe/Paris"}"#
        )]
    );
    assert_eq!(
        resp.id.as_deref(),
        Some("resp_68b0d1d0c1b2a3948576a5b4c3d2e1f0")
    );
    assert_eq!(resp.usage, Usage::default());
    assert_eq!(
        resp.finish_reason, None,
        "in_progress is not a finish reason"
    );
}

#[test]
fn failed_stream() {
    let (resp, terminal) = decode(
        &route("POST", RESPONSES),
        Framing::Sse,
        &fixture("openai/responses_stream_failed.sse"),
    );
    assert!(terminal, "response.failed is terminal");
    assert_eq!(resp.output_text, "Partial answer");
    assert_eq!(resp.finish_reason.as_deref(), Some("failed"));
    assert_eq!(
        resp.error.as_deref(),
        Some("The server had an error processing your request. Sorry about that!")
    );
}
