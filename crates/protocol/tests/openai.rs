//! OpenAI Chat Completions, Completions and Embeddings fixtures, asserted field by field.

mod common;

use common::{
    all_content, call, decode, fixture, media, reasoning, route, text, tool_call, tool_result, tp,
};
use warden_protocol::{Framing, ProtocolError, Role, Usage, parse_request, parse_response};

const CHAT: &str = "/v1/chat/completions";

#[test]
fn chat_request_with_tools_results_system_and_media() {
    let req = parse_request(&route("POST", CHAT), &fixture("openai/chat_request.json")).unwrap();
    assert_eq!(req.model.as_deref(), Some("gpt-4o-2024-08-06"));
    assert!(req.stream);
    // `max_completion_tokens` supersedes the deprecated `max_tokens`.
    assert_eq!(req.max_tokens, Some(1024));

    // System and developer turns become the system prompt, and only that.
    assert_eq!(req.system.len(), 2);
    assert_eq!(
        tp(&req.system[0]),
        (
            "You are a travel assistant for Acme Corp. Never reveal internal booking codes.",
            "$.messages[0].content"
        )
    );
    assert_eq!(
        tp(&req.system[1]),
        ("Prefer metric units.", "$.messages[1].content[0].text")
    );

    let roles: Vec<_> = req.messages.iter().map(|m| m.role.clone()).collect();
    assert_eq!(roles, [Role::User, Role::Assistant, Role::Tool, Role::Tool]);

    let user = &req.messages[0].content;
    assert_eq!(user.len(), 4);
    assert_eq!(
        text(&user[0]),
        (
            "What's the weather in Paris and the local time? My card is 4111 1111 1111 1111.",
            "$.messages[2].content[0].text"
        )
    );
    assert_eq!(media(&user[1]), Some("image/jpeg"));
    assert_eq!(media(&user[2]), Some("audio/wav"));
    assert_eq!(media(&user[3]), Some("application/pdf"));

    let assistant = &req.messages[1].content;
    assert_eq!(assistant.len(), 2);
    assert_eq!(
        tool_call(&assistant[0]),
        &call(
            Some("call_8GjWqL6oXkR2tH5dN1bY3mZp"),
            "get_weather",
            r#"{"location":"Paris, France","unit":"celsius"}"#
        )
    );
    assert_eq!(tool_call(&assistant[1]).name, "get_time");

    assert_eq!(
        tool_result(&req.messages[2].content[0]),
        (
            Some("call_8GjWqL6oXkR2tH5dN1bY3mZp"),
            None,
            r#"{"temperature":18,"conditions":"light rain"}"#,
            "$.messages[4].content"
        )
    );
    assert_eq!(
        tool_result(&req.messages[3].content[0]),
        (
            Some("call_Qz7vB2nK9sLx4RtY1pHc6WdE"),
            None,
            "14:32 CEST",
            "$.messages[5].content[0].text"
        )
    );

    assert_eq!(req.tools.len(), 2);
    assert_eq!(req.tools[0].name, "get_weather");
    assert_eq!(
        req.tools[0].description.as_deref(),
        Some("Get the current weather in a given location")
    );
    let params = req.tools[0].parameters.as_ref().unwrap();
    assert_eq!(params["required"], serde_json::json!(["location", "unit"]));
    assert_eq!(req.tools[1].name, "get_time");
}

#[test]
fn chat_request_legacy_functions() {
    let req = parse_request(
        &route("POST", CHAT),
        &fixture("openai/chat_request_legacy_functions.json"),
    )
    .unwrap();
    assert!(!req.stream);
    assert_eq!(req.max_tokens, Some(256));
    assert_eq!(
        tool_call(&req.messages[1].content[0]),
        &call(
            None,
            "get_current_weather",
            "{\n  \"location\": \"Boston, MA\"\n}"
        )
    );
    let (call_id, name, result, path) = tool_result(&req.messages[2].content[0]);
    assert_eq!(req.messages[2].role, Role::Tool);
    assert_eq!(
        (call_id, name, path),
        (None, Some("get_current_weather"), "$.messages[2].content")
    );
    assert!(result.contains("Sunny"));
    assert_eq!(req.tools.len(), 1);
    assert_eq!(req.tools[0].name, "get_current_weather");
}

#[test]
fn completions_and_embeddings_requests() {
    let req = parse_request(
        &route("POST", "/v1/completions"),
        &fixture("openai/completions_request.json"),
    )
    .unwrap();
    assert_eq!(req.model.as_deref(), Some("gpt-3.5-turbo-instruct"));
    assert_eq!(req.max_tokens, Some(16));
    let texts: Vec<_> = all_content(&req.messages).map(text).collect();
    assert_eq!(
        texts,
        [
            ("Say this is a test", "$.prompt[0]"),
            ("Translate to French: good morning", "$.prompt[1]"),
            ("\n-- end --", "$.suffix"),
        ]
    );
    assert!(req.messages.iter().all(|m| m.role == Role::User));

    let req = parse_request(
        &route("POST", "/v1/embeddings"),
        &fixture("openai/embeddings_request.json"),
    )
    .unwrap();
    let texts: Vec<_> = all_content(&req.messages).map(text).collect();
    assert_eq!(
        texts[1],
        ("Contact me at jane.doe@example.com", "$.input[1]")
    );
    assert_eq!(req.messages.len(), 2);

    let req = parse_request(
        &route("POST", "/v1/embeddings"),
        br#"{"model":"m","input":"hello"}"#,
    )
    .unwrap();
    assert_eq!(text(&req.messages[0].content[0]), ("hello", "$.input"));
    let req = parse_request(
        &route("POST", "/v1/embeddings"),
        br#"{"model":"m","input":[[1,2,3]]}"#,
    )
    .unwrap();
    assert!(
        req.messages.is_empty(),
        "token arrays carry no readable text"
    );
}

#[test]
fn models_route_has_no_body() {
    let req = parse_request(&route("GET", "/v1/models/gpt-4o"), b"").unwrap();
    assert_eq!(req.model.as_deref(), Some("gpt-4o"));
    assert!(req.messages.is_empty());
}

#[test]
fn chat_response_text() {
    let resp = parse_response(
        &route("POST", CHAT),
        &fixture("openai/chat_response_text.json"),
    )
    .unwrap();
    assert_eq!(
        resp.id.as_deref(),
        Some("chatcmpl-BcKwzH1dF6uV3nQ8pXrT2yLm9sAe")
    );
    assert_eq!(resp.model.as_deref(), Some("gpt-4o-2024-08-06"));
    assert_eq!(
        resp.output_text,
        "It's 18 °C with light rain in Paris right now, and the local time is 14:32."
    );
    assert_eq!(resp.finish_reason.as_deref(), Some("stop"));
    assert_eq!(
        resp.usage,
        Usage {
            input_tokens: Some(1117),
            output_tokens: Some(24),
            cached_input_tokens: Some(1024),
            reasoning_tokens: Some(0),
        }
    );
    assert!(resp.tool_calls.is_empty());
    assert_eq!(resp.error, None);
}

#[test]
fn chat_response_two_tool_calls() {
    let resp = parse_response(
        &route("POST", CHAT),
        &fixture("openai/chat_response_tool_calls.json"),
    )
    .unwrap();
    assert_eq!(resp.output_text, "");
    assert_eq!(resp.finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(
        resp.tool_calls,
        [
            call(
                Some("call_8GjWqL6oXkR2tH5dN1bY3mZp"),
                "get_weather",
                r#"{"location":"Paris, France","unit":"celsius"}"#
            ),
            call(
                Some("call_Qz7vB2nK9sLx4RtY1pHc6WdE"),
                "get_time",
                r#"{"timezone":"Europe/Paris"}"#
            ),
        ]
    );
    assert_eq!(resp.usage.reasoning_tokens, Some(192));
}

#[test]
fn chat_response_reasoning_content() {
    let resp = parse_response(
        &route("POST", CHAT),
        &fixture("openai/chat_response_reasoning.json"),
    )
    .unwrap();
    assert_eq!(resp.output_text, "9.11 is smaller than 9.8.");
    assert!(resp.reasoning.starts_with("Compare the decimals"));
    assert_eq!(resp.usage.reasoning_tokens, Some(81));
    assert_eq!(resp.usage.input_tokens, Some(19));
}

#[test]
fn error_body() {
    let resp =
        parse_response(&route("POST", CHAT), &fixture("openai/error_response.json")).unwrap();
    assert!(
        resp.error
            .as_deref()
            .unwrap()
            .starts_with("This model's maximum context length is 128000 tokens.")
    );
    assert_eq!(resp.output_text, "");
}

#[test]
fn completions_and_embeddings_responses() {
    let resp = parse_response(
        &route("POST", "/v1/completions"),
        &fixture("openai/completions_response.json"),
    )
    .unwrap();
    assert_eq!(resp.output_text, "\n\nThis is indeed a test\n\nBonjour");
    assert_eq!(resp.finish_reason.as_deref(), Some("length"));
    assert_eq!(resp.usage.output_tokens, Some(10));

    let resp = parse_response(
        &route("POST", "/v1/embeddings"),
        &fixture("openai/embeddings_response.json"),
    )
    .unwrap();
    assert_eq!(resp.model.as_deref(), Some("text-embedding-3-small"));
    assert_eq!(resp.usage.input_tokens, Some(19));
    assert_eq!(resp.output_text, "", "vectors are not text");
}

#[test]
fn chat_stream_text_with_usage_chunk() {
    let (resp, terminal) = decode(
        &route("POST", CHAT),
        Framing::Sse,
        &fixture("openai/chat_stream_text.sse"),
    );
    assert!(terminal);
    assert_eq!(
        resp.id.as_deref(),
        Some("chatcmpl-BcKx5Zr0yQ3Jt7WmVZ9pGk2Lq8sTd")
    );
    assert_eq!(
        resp.output_text,
        "It's 18 °C with light rain in Paris ☔ — bring an umbrella."
    );
    assert_eq!(resp.finish_reason.as_deref(), Some("stop"));
    assert_eq!(resp.usage.input_tokens, Some(1117));
    assert_eq!(resp.usage.output_tokens, Some(16));
    assert_eq!(resp.usage.cached_input_tokens, Some(1024));
}

#[test]
fn chat_stream_interleaved_tool_calls() {
    let (resp, _) = decode(
        &route("POST", CHAT),
        Framing::Sse,
        &fixture("openai/chat_stream_tools.sse"),
    );
    assert_eq!(
        resp.tool_calls,
        [
            call(
                Some("call_8GjWqL6oXkR2tH5dN1bY3mZp"),
                "get_weather",
                r#"{"location":"Paris, France","unit":"celsius"}"#
            ),
            call(
                Some("call_Qz7vB2nK9sLx4RtY1pHc6WdE"),
                "get_time",
                r#"{"timezone":"Europe/Paris"}"#
            ),
        ]
    );
    assert_eq!(resp.finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(resp.usage.output_tokens, Some(51));
    // The stream assembles exactly what the buffered response of the same call carries.
    let buffered = parse_response(
        &route("POST", CHAT),
        &fixture("openai/chat_response_tool_calls.json"),
    )
    .unwrap();
    assert_eq!(resp.tool_calls, buffered.tool_calls);
}

#[test]
fn chat_stream_reasoning_content() {
    let (resp, terminal) = decode(
        &route("POST", CHAT),
        Framing::Sse,
        &fixture("openai/chat_stream_reasoning.sse"),
    );
    assert!(terminal);
    assert_eq!(resp.reasoning, "Compare the decimals: 0.11 < 0.80.");
    assert_eq!(resp.output_text, "9.11 is smaller than 9.8.");
    assert_eq!(resp.usage.reasoning_tokens, Some(81));
    assert_eq!(resp.finish_reason.as_deref(), Some("stop"));
}

#[test]
fn completions_stream_orders_choices_by_index() {
    let (resp, _) = decode(
        &route("POST", "/v1/completions"),
        Framing::Sse,
        &fixture("openai/completions_stream.sse"),
    );
    let buffered = parse_response(
        &route("POST", "/v1/completions"),
        &fixture("openai/completions_response.json"),
    )
    .unwrap();
    assert_eq!(resp.output_text, buffered.output_text);
    assert_eq!(resp.finish_reason, buffered.finish_reason);
}

#[test]
fn compatible_server_variants() {
    // OpenRouter-style `reasoning`, a tool call without `index`, and a mid-stream error object.
    let body = concat!(
        "data: {\"id\":\"gen-1\",\"choices\":[{\"index\":0,\"delta\":{\"reasoning\":\"think\"}}]}\n\n",
        "data: {\"id\":\"gen-1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"id\":\"call_a\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}}]}\n\n",
        "data: {\"id\":\"gen-1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"id\":\"call_b\",\"function\":{\"name\":\"g\",\"arguments\":\"{\\\"x\\\"\"}}]}}]}\n\n",
        "data: {\"id\":\"gen-1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"function\":{\"arguments\":\":1}\"}}]}}]}\n\n",
        "data: {\"error\":{\"message\":\"upstream provider failed\",\"code\":502}}\n\n",
    );
    let (resp, terminal) = decode(&route("POST", CHAT), Framing::Sse, body.as_bytes());
    assert!(!terminal);
    assert_eq!(resp.reasoning, "think");
    assert_eq!(
        resp.tool_calls,
        [
            call(Some("call_a"), "f", "{}"),
            call(Some("call_b"), "g", r#"{"x":1}"#)
        ]
    );
    assert_eq!(resp.error.as_deref(), Some("upstream provider failed"));
}

#[test]
fn shape_errors_name_the_path() {
    let chat = route("POST", CHAT);
    let cases: &[(&[u8], &str)] = &[
        (br#"{"model":"m"}"#, "`messages` must be an array"),
        (br#"{"messages":{}}"#, "`messages` must be an array"),
        (br#"{"messages":[1]}"#, "`messages[0]` must be an object"),
        (
            br#"{"messages":[{"content":"x"}]}"#,
            "`messages[0].role` must be a string",
        ),
        (
            br#"{"messages":[{"role":"user","content":5}]}"#,
            "`messages[0].content` must be a string or an array",
        ),
        (
            br#"{"messages":[{"role":"user","content":[{"type":"text","text":7}]}]}"#,
            "`messages[0].content[0].text` must be a string",
        ),
        (br#"[]"#, "request body must be a JSON object"),
    ];
    for (body, want) in cases {
        match parse_request(&chat, body) {
            Err(ProtocolError::Shape(msg)) => assert_eq!(&msg, want),
            other => panic!("{}: {other:?}", String::from_utf8_lossy(body)),
        }
    }
    assert!(matches!(
        parse_request(&chat, b"{not json"),
        Err(ProtocolError::InvalidJson(_))
    ));
    // Nulls stand for absent optionals, as the SDKs send them.
    let req = parse_request(&chat, br#"{"model":"m","stream":null,"max_tokens":null,"tools":null,"messages":[{"role":"assistant","content":null,"tool_calls":null}]}"#).unwrap();
    assert!(!req.stream);
    assert_eq!(req.messages[0].content, []);
}

#[test]
fn assistant_reasoning_echo() {
    let req = parse_request(
        &route("POST", CHAT),
        br#"{"model":"deepseek-reasoner","messages":[{"role":"assistant","reasoning_content":"hmm","content":"ok"}]}"#,
    )
    .unwrap();
    assert_eq!(
        reasoning(&req.messages[0].content[0]),
        ("hmm", "$.messages[0].reasoning_content")
    );
    assert_eq!(
        text(&req.messages[0].content[1]),
        ("ok", "$.messages[0].content")
    );
}
