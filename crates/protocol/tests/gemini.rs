//! Gemini fixtures, asserted field by field, in both stream framings.

mod common;

use common::{
    all_content, call, decode, fixture, media, reasoning, route, text, tool_call, tool_result, tp,
};
use warden_protocol::{Framing, Role, Usage, parse_request, parse_response};

const GENERATE: &str = "/v1beta/models/gemini-2.5-flash:generateContent";
const STREAM: &str = "/v1beta/models/gemini-2.5-flash:streamGenerateContent";

#[test]
fn request_contents_tools_and_config() {
    let req = parse_request(&route("POST", GENERATE), &fixture("gemini/request.json")).unwrap();
    assert_eq!(
        req.model.as_deref(),
        Some("gemini-2.5-flash"),
        "model comes from the path"
    );
    assert!(!req.stream);
    assert_eq!(req.max_tokens, Some(8192));
    assert_eq!(
        req.system.iter().map(tp).collect::<Vec<_>>(),
        [
            (
                "You are a concise travel agent.",
                "$.systemInstruction.parts[0].text"
            ),
            (
                "Always check the weather before planning outdoor activities.",
                "$.systemInstruction.parts[1].text"
            ),
        ]
    );
    let roles: Vec<_> = req.messages.iter().map(|m| m.role.clone()).collect();
    assert_eq!(roles, [Role::User, Role::Assistant, Role::User]);
    let user = &req.messages[0].content;
    assert_eq!(
        text(&user[0]),
        (
            "Plan a day in Kyoto from this photo and my booking PDF.",
            "$.contents[0].parts[0].text"
        )
    );
    assert_eq!(media(&user[1]), Some("image/jpeg"));
    assert_eq!(media(&user[2]), Some("application/pdf"));
    let model = &req.messages[1].content;
    assert_eq!(
        reasoning(&model[0]),
        (
            "**Checking the forecast**\n\nI need the weather for Kyoto first.",
            "$.contents[1].parts[0].text"
        )
    );
    assert_eq!(
        tool_call(&model[1]),
        &call(
            None,
            "get_weather",
            r#"{"city":"Kyoto","date":"2025-06-01"}"#
        )
    );
    assert_eq!(
        tool_result(&req.messages[2].content[0]),
        (
            None,
            Some("get_weather"),
            r#"{"forecast":"sunny","high_c":27}"#,
            "$.contents[2].parts[0].functionResponse.response"
        )
    );
    let tools: Vec<_> = req.tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(tools, ["get_weather", "book_restaurant", "googleSearch"]);
    assert_eq!(req.tools[0].parameters.as_ref().unwrap()["type"], "OBJECT");
    assert_eq!(
        req.tools[1].parameters.as_ref().unwrap()["type"],
        "object",
        "parametersJsonSchema"
    );
}

#[test]
fn stream_route_streams() {
    let req = parse_request(&route("POST", STREAM), &fixture("gemini/request.json")).unwrap();
    assert!(req.stream);
    let req = parse_request(
        &route("POST", "/v1/models/gemini-2.5-pro:streamGenerateContent"),
        br#"{"contents":[]}"#,
    )
    .unwrap();
    assert!(req.stream);
    assert_eq!(req.model.as_deref(), Some("gemini-2.5-pro"));
}

#[test]
fn snake_case_request() {
    let req = parse_request(
        &route("POST", GENERATE),
        &fixture("gemini/request_snake_case.json"),
    )
    .unwrap();
    assert_eq!(
        tp(&req.system[0]),
        ("Answer in French.", "$.system_instruction.parts[0].text")
    );
    assert_eq!(req.max_tokens, Some(100));
    assert_eq!(
        req.messages[0].role,
        Role::User,
        "a content without a role is the user's"
    );
    assert_eq!(media(&req.messages[0].content[1]), Some("audio/mp3"));
    assert_eq!(
        tool_call(&req.messages[1].content[0]),
        &call(Some("fc-1"), "lookup", r#"{"q":"x"}"#)
    );
    assert_eq!(req.messages[2].role, Role::Tool);
    assert_eq!(
        tool_result(&req.messages[2].content[0]),
        (
            Some("fc-1"),
            Some("lookup"),
            r#"{"result":"ok"}"#,
            "$.contents[2].parts[0].function_response.response"
        )
    );
    let tools: Vec<_> = req.tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(tools, ["lookup", "code_execution"]);
}

#[test]
fn count_tokens_and_embed_requests() {
    let req = parse_request(
        &route("POST", "/v1beta/models/gemini-2.5-flash:countTokens"),
        &fixture("gemini/count_tokens_request.json"),
    )
    .unwrap();
    assert_eq!(
        tp(&req.system[0]),
        (
            "Be terse.",
            "$.generateContentRequest.systemInstruction.parts[0].text"
        )
    );
    assert_eq!(
        text(&req.messages[0].content[0]),
        (
            "How many tokens is this?",
            "$.generateContentRequest.contents[0].parts[0].text"
        )
    );

    let req = parse_request(
        &route("POST", "/v1beta/models/gemini-embedding-001:embedContent"),
        &fixture("gemini/embed_request.json"),
    )
    .unwrap();
    assert_eq!(
        text(&req.messages[0].content[0]),
        ("What is the meaning of life?", "$.content.parts[0].text")
    );

    let req = parse_request(
        &route(
            "POST",
            "/v1beta/models/gemini-embedding-001:batchEmbedContents",
        ),
        &fixture("gemini/batch_embed_request.json"),
    )
    .unwrap();
    let texts: Vec<_> = all_content(&req.messages).map(text).collect();
    assert_eq!(
        texts,
        [
            ("first", "$.requests[0].content.parts[0].text"),
            ("second", "$.requests[1].content.parts[0].text")
        ]
    );
}

#[test]
fn missing_contents_is_a_shape_error() {
    let err = parse_request(&route("POST", GENERATE), br#"{"generationConfig":{}}"#).unwrap_err();
    assert_eq!(err.to_string(), "`contents` must be an array");
}

#[test]
fn buffered_parallel_function_calls() {
    let resp = parse_response(
        &route("POST", GENERATE),
        &fixture("gemini/response_function_calls.json"),
    )
    .unwrap();
    assert_eq!(resp.id.as_deref(), Some("kJM4aM7xJ5iVz7IPlYvNyQs"));
    assert_eq!(resp.model.as_deref(), Some("gemini-2.5-flash"));
    assert_eq!(
        resp.tool_calls,
        [
            call(None, "get_weather", r#"{"city":"Kyoto"}"#),
            call(
                None,
                "get_weather",
                r#"{"city":"Osaka","date":"2025-06-01"}"#
            ),
        ]
    );
    assert_eq!(resp.finish_reason.as_deref(), Some("STOP"));
    // Thinking tokens are billed as output.
    assert_eq!(
        resp.usage,
        Usage {
            input_tokens: Some(118),
            output_tokens: Some(36 + 136),
            cached_input_tokens: None,
            reasoning_tokens: Some(136),
        }
    );
}

#[test]
fn buffered_thinking_and_cache() {
    let resp = parse_response(
        &route("POST", GENERATE),
        &fixture("gemini/response_thinking.json"),
    )
    .unwrap();
    assert_eq!(
        resp.reasoning,
        "**Weighing the options**\n\nKyoto in June is rainy season, so indoor temples first."
    );
    assert_eq!(
        resp.output_text,
        "Start at Kinkaku-ji at 9:00, lunch in Nishiki Market, then Fushimi Inari before sunset."
    );
    assert_eq!(resp.finish_reason.as_deref(), Some("MAX_TOKENS"));
    assert_eq!(resp.usage.cached_input_tokens, Some(1536));
    assert_eq!(resp.usage.output_tokens, Some(27 + 350));
}

#[test]
fn blocked_prompt_error_and_count_tokens() {
    let resp = parse_response(
        &route("POST", GENERATE),
        &fixture("gemini/response_blocked.json"),
    )
    .unwrap();
    assert_eq!(resp.finish_reason.as_deref(), Some("SAFETY"));
    assert_eq!(resp.output_text, "");

    let resp = parse_response(
        &route("POST", GENERATE),
        &fixture("gemini/error_response.json"),
    )
    .unwrap();
    assert_eq!(
        resp.error.as_deref(),
        Some("API key not valid. Please pass a valid API key.")
    );

    let resp = parse_response(
        &route("POST", "/v1beta/models/gemini-2.5-flash:countTokens"),
        &fixture("gemini/count_tokens_response.json"),
    )
    .unwrap();
    assert_eq!(resp.usage.input_tokens, Some(31));
}

#[test]
fn both_stream_framings_give_the_same_response() {
    let route = route("POST", STREAM);
    let (sse, sse_terminal) = decode(&route, Framing::Sse, &fixture("gemini/stream_text.sse"));
    let (array, array_terminal) = decode(
        &route,
        Framing::JsonArrayStream,
        &fixture("gemini/stream_text.array.json"),
    );
    assert!(sse_terminal && array_terminal);
    assert_eq!(sse, array);
    assert_eq!(sse.id.as_deref(), Some("uJI4aIbHK8mvz7IP6d7R0Qk"));
    assert_eq!(
        sse.reasoning,
        "**Mapping the route**\n\nTemples cluster in the east."
    );
    assert_eq!(
        sse.output_text,
        "Start at Kiyomizu-dera (清水寺) at 8:00, walk down Sannenzaka for matcha, and end the day in Gion."
    );
    assert_eq!(sse.finish_reason.as_deref(), Some("STOP"));
    assert_eq!(
        sse.usage,
        Usage {
            input_tokens: Some(9),
            output_tokens: Some(41 + 530),
            cached_input_tokens: None,
            reasoning_tokens: Some(530),
        },
        "usage comes from the last chunk"
    );
}

#[test]
fn streamed_function_calls() {
    let route = route("POST", STREAM);
    let (sse, _) = decode(
        &route,
        Framing::Sse,
        &fixture("gemini/stream_function_calls.sse"),
    );
    let (array, _) = decode(
        &route,
        Framing::JsonArrayStream,
        &fixture("gemini/stream_function_calls.array.json"),
    );
    assert_eq!(sse, array);
    assert_eq!(sse.output_text, "Checking both cities.");
    let buffered = parse_response(&route, &fixture("gemini/response_function_calls.json")).unwrap();
    assert_eq!(sse.tool_calls, buffered.tool_calls);
}

#[test]
fn array_stream_terminal_is_the_closing_bracket() {
    let route = route("POST", STREAM);
    let body = fixture("gemini/stream_text.array.json");
    let mut inspector = warden_protocol::StreamInspector::new(&route, Framing::JsonArrayStream);
    // Everything but the closing bracket: the finishReason chunk is in, the stream is not over.
    let progress = inspector.push(&body[..body.len() - 1]);
    assert_eq!(progress.events, 4);
    assert!(!inspector.saw_terminal());
    let progress = inspector.push(&body[body.len() - 1..]);
    assert_eq!(progress.terminal_at, Some(0));
    assert!(inspector.saw_terminal());
}

#[test]
fn array_stream_error_element() {
    let route = route("POST", STREAM);
    let body = br#"[{
  "error": {
    "code": 429,
    "message": "Resource has been exhausted (e.g. check quota).",
    "status": "RESOURCE_EXHAUSTED"
  }
}
]"#;
    let (resp, terminal) = decode(&route, Framing::JsonArrayStream, body);
    assert!(terminal);
    assert_eq!(
        resp.error.as_deref(),
        Some("Resource has been exhausted (e.g. check quota).")
    );
    // A bare error object (not wrapped in an array) is read too.
    let (resp, _) = decode(
        &route,
        Framing::JsonArrayStream,
        &fixture("gemini/error_response.json"),
    );
    assert_eq!(
        resp.error.as_deref(),
        Some("API key not valid. Please pass a valid API key.")
    );
}
