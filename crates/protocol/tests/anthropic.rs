//! Anthropic Messages fixtures, asserted field by field.

mod common;

use common::{call, decode, fixture, media, reasoning, route, text, tool_call, tool_result, tp};
use warden_protocol::{Framing, ProtocolError, Role, Usage, parse_request, parse_response};

const MESSAGES: &str = "/v1/messages";

#[test]
fn request_blocks_tools_and_results() {
    let req = parse_request(&route("POST", MESSAGES), &fixture("anthropic/request.json")).unwrap();
    assert_eq!(req.model.as_deref(), Some("claude-sonnet-4-5-20250929"));
    assert!(req.stream);
    assert_eq!(req.max_tokens, Some(16000));
    assert_eq!(
        req.system.iter().map(tp).collect::<Vec<_>>(),
        [
            ("You are a meticulous travel assistant.", "$.system[0].text"),
            (
                "Company policy: never book flights over $2,000 without approval.",
                "$.system[1].text"
            ),
        ]
    );
    let roles: Vec<_> = req.messages.iter().map(|m| m.role.clone()).collect();
    assert_eq!(
        roles,
        [
            Role::User,
            Role::Assistant,
            Role::User,
            Role::Assistant,
            Role::User,
            Role::Assistant,
            Role::User
        ]
    );

    let first = &req.messages[0].content;
    assert_eq!(first.len(), 4);
    assert_eq!(media(&first[0]), Some("image/png"));
    // A plain-text document is client text, inspected like any other.
    assert_eq!(
        text(&first[1]),
        (
            "Trip notes: arrive SFO 9am, passport no. X1234567.",
            "$.messages[0].content[1].source.data"
        )
    );
    assert_eq!(media(&first[2]), Some("application/pdf"));
    assert_eq!(
        text(&first[3]),
        (
            "What's the weather where this photo was taken?",
            "$.messages[0].content[3].text"
        )
    );

    let assistant = &req.messages[1].content;
    assert_eq!(
        assistant.len(),
        3,
        "redacted thinking carries nothing readable"
    );
    assert_eq!(
        reasoning(&assistant[0]),
        (
            "The photo shows the Golden Gate Bridge, so San Francisco.",
            "$.messages[1].content[0].thinking"
        )
    );
    assert_eq!(text(&assistant[1]).1, "$.messages[1].content[2].text");
    assert_eq!(
        tool_call(&assistant[2]),
        &call(
            Some("toolu_01A09q90qw90lq917835lq9"),
            "get_weather",
            r#"{"location":"San Francisco, CA","unit":"celsius"}"#
        )
    );

    let results = &req.messages[2].content;
    assert_eq!(
        tool_result(&results[0]),
        (
            Some("toolu_01A09q90qw90lq917835lq9"),
            None,
            "15 degrees, foggy",
            "$.messages[2].content[0].content[0].text"
        )
    );
    assert_eq!(
        text(&results[1]),
        ("And in New York?", "$.messages[2].content[1].text")
    );
    assert_eq!(
        tool_result(&req.messages[4].content[0]),
        (
            Some("toolu_01VvD3yS2KfLmNpQ8wXzR4tB"),
            None,
            "Error: weather service timed out",
            "$.messages[4].content[0].content"
        )
    );
    assert_eq!(
        text(&req.messages[5].content[0]),
        (
            "New York's weather service is unavailable right now.",
            "$.messages[5].content"
        )
    );

    let tools: Vec<_> = req.tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(tools, ["get_weather", "web_search"]);
    assert_eq!(
        req.tools[0].parameters.as_ref().unwrap()["required"][0],
        "location"
    );
}

#[test]
fn string_system_and_shape_errors() {
    let route = route("POST", MESSAGES);
    let req = parse_request(
        &route,
        br#"{"model":"claude-haiku-4-5","max_tokens":64,"system":"Be brief.","messages":[{"role":"user","content":"Hi"}]}"#,
    )
    .unwrap();
    assert_eq!(tp(&req.system[0]), ("Be brief.", "$.system"));
    assert_eq!(
        text(&req.messages[0].content[0]),
        ("Hi", "$.messages[0].content")
    );
    assert!(!req.stream);

    let err = parse_request(&route, br#"{"system":5,"messages":[]}"#).unwrap_err();
    assert!(
        matches!(&err, ProtocolError::Shape(m) if m == "`system` must be a string or an array"),
        "{err}"
    );
    let err = parse_request(
        &route,
        br#"{"messages":[{"role":"user","content":[{"type":"text"}]}]}"#,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`messages[0].content[0].text` must be a string"
    );
}

#[test]
fn buffered_text_response() {
    let resp = parse_response(
        &route("POST", MESSAGES),
        &fixture("anthropic/response_text.json"),
    )
    .unwrap();
    assert_eq!(resp.id.as_deref(), Some("msg_013Zva2CMHLNnXjNJJKqJ2EF"));
    assert_eq!(
        resp.output_text,
        "Hi! I'm Claude. How can I help you plan your trip?"
    );
    assert_eq!(resp.finish_reason.as_deref(), Some("end_turn"));
    assert_eq!(resp.usage.input_tokens, Some(12));
    assert_eq!(resp.usage.output_tokens, Some(18));
}

#[test]
fn buffered_thinking_and_two_tool_uses() {
    let resp = parse_response(
        &route("POST", MESSAGES),
        &fixture("anthropic/response_tool_use.json"),
    )
    .unwrap();
    assert_eq!(
        resp.reasoning,
        "The user wants weather for two cities. I'll call the tool twice in parallel."
    );
    assert_eq!(resp.output_text, "I'll check both cities.");
    assert_eq!(
        resp.tool_calls,
        [
            call(
                Some("toolu_01T1x1fJ34qAmk2tNTrN7Up6"),
                "get_weather",
                r#"{"location":"San Francisco, CA"}"#
            ),
            // Object input is serialized compactly.
            call(
                Some("toolu_01LmYyR3k8wz4jJp3cXb2HqS"),
                "get_weather",
                r#"{"location":"New York, NY","unit":"fahrenheit"}"#
            ),
        ]
    );
    assert_eq!(resp.finish_reason.as_deref(), Some("tool_use"));
    // Input is normalized as billed: fresh + cache reads + cache writes.
    assert_eq!(
        resp.usage,
        Usage {
            input_tokens: Some(472 + 2048 + 100),
            output_tokens: Some(168),
            cached_input_tokens: Some(2048),
            reasoning_tokens: None,
        }
    );
}

#[test]
fn error_and_count_tokens_bodies() {
    let resp = parse_response(
        &route("POST", MESSAGES),
        &fixture("anthropic/error_response.json"),
    )
    .unwrap();
    assert_eq!(resp.error.as_deref(), Some("Overloaded"));
    let resp = parse_response(
        &route("POST", "/v1/messages/count_tokens"),
        &fixture("anthropic/count_tokens_response.json"),
    )
    .unwrap();
    assert_eq!(resp.usage.input_tokens, Some(2095));
    assert_eq!(resp.error, None);
}

#[test]
fn stream_text_equals_buffered() {
    let route = route("POST", MESSAGES);
    let (streamed, terminal) = decode(&route, Framing::Sse, &fixture("anthropic/stream_text.sse"));
    assert!(terminal);
    let buffered = parse_response(&route, &fixture("anthropic/response_text.json")).unwrap();
    assert_eq!(streamed, buffered);
}

#[test]
fn stream_thinking_text_and_tool_uses() {
    let (resp, terminal) = decode(
        &route("POST", MESSAGES),
        Framing::Sse,
        &fixture("anthropic/stream_multi.sse"),
    );
    assert!(terminal);
    assert_eq!(resp.id.as_deref(), Some("msg_01Aq9w938a90dw8q2XbKd5Yz"));
    assert_eq!(
        resp.reasoning,
        "The user wants weather for two cities. I'll call the tool twice in parallel."
    );
    assert_eq!(resp.output_text, "I'll check both cities — one moment ⏳");
    assert_eq!(
        resp.tool_calls,
        [
            // Stream arguments are the partial JSON exactly as concatenated.
            call(
                Some("toolu_01T1x1fJ34qAmk2tNTrN7Up6"),
                "get_weather",
                r#"{"location": "San Francisco, CA"}"#
            ),
            call(
                Some("toolu_01LmYyR3k8wz4jJp3cXb2HqS"),
                "get_weather",
                r#"{"location": "New York, NY", "unit": "fahrenheit"}"#
            ),
            // No argument deltas: the block start's empty input.
            call(Some("toolu_01Hz8bQeX5nR2mW7kPdC4vTa"), "get_time", "{}"),
        ]
    );
    assert_eq!(resp.finish_reason.as_deref(), Some("tool_use"));
    assert_eq!(resp.usage.input_tokens, Some(472 + 2048 + 100));
    assert_eq!(
        resp.usage.output_tokens,
        Some(168),
        "message_delta's count replaces message_start's"
    );
    assert_eq!(resp.usage.cached_input_tokens, Some(2048));
}

#[test]
fn stream_error_event() {
    let (resp, terminal) = decode(
        &route("POST", MESSAGES),
        Framing::Sse,
        &fixture("anthropic/stream_error.sse"),
    );
    assert!(!terminal);
    assert_eq!(resp.output_text, "Once upon a");
    assert_eq!(resp.error.as_deref(), Some("Overloaded"));
    assert_eq!(resp.finish_reason, None);
}
