//! Anthropic shapes: messages buffered and streamed, token counting.

use serde_json::{Value, json};

use crate::common::Mock;

const TEXT: &str = "Hello from the mock Anthropic upstream.";

fn messages(text: &str, stream: bool) -> Value {
    json!({
        "model": "claude-test",
        "max_tokens": 256,
        "system": "Be nice",
        "messages": [{"role": "user", "content": text}],
        "stream": stream
    })
}

#[tokio::test]
async fn message_buffered_has_the_real_shape() {
    let mock = Mock::start().await;
    let reply = mock
        .post_with(
            "/v1/messages",
            &[
                ("x-api-key", "sk-ant-test"),
                ("anthropic-version", "2023-06-01"),
            ],
            messages("Hello there", false),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .header("request-id")
            .is_some_and(|v| v.starts_with("req_"))
    );
    let body = reply.json();
    assert_eq!(body["type"], "message");
    assert_eq!(body["role"], "assistant");
    assert!(body["id"].as_str().unwrap().starts_with("msg_01"));
    assert_eq!(body["model"], "claude-test");
    assert_eq!(body["content"], json!([{"type": "text", "text": TEXT}]));
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(body["stop_sequence"], Value::Null);
    // "Be nice" + "Hello there" = 18 characters.
    assert_eq!(body["usage"]["input_tokens"], 5);
    assert_eq!(body["usage"]["output_tokens"], 6);
}

#[tokio::test]
async fn message_stream_has_named_events_in_order() {
    let mock = Mock::start().await;
    let reply = mock.post("/v1/messages", messages("Hello", true)).await;
    assert!(reply.content_type().starts_with("text/event-stream"));
    let events = reply.sse();
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_deref().unwrap()).collect();
    for (name, data) in &events {
        let data: Value = serde_json::from_str(data).unwrap();
        assert_eq!(Some(data["type"].as_str().unwrap()), name.as_deref());
    }
    assert_eq!(
        &names[..3],
        ["message_start", "content_block_start", "ping"]
    );
    assert_eq!(
        &names[names.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );
    let data: Vec<Value> = events
        .iter()
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(data[0]["message"]["content"], json!([]));
    assert_eq!(data[0]["message"]["model"], "claude-test");
    assert_eq!(
        data[1]["content_block"],
        json!({"type": "text", "text": ""})
    );
    let text: String = data
        .iter()
        .filter(|e| e["type"] == "content_block_delta")
        .map(|e| {
            assert_eq!(e["delta"]["type"], "text_delta");
            e["delta"]["text"].as_str().unwrap()
        })
        .collect();
    assert_eq!(text, TEXT);
    let delta = &data[data.len() - 2];
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], 6);
}

#[tokio::test]
async fn message_stream_thinking_and_tool_use() {
    let mock = Mock::start().await;
    let text = r#"Check the weather [mock:{"reasoning":"I should call the tool.","text":"Let me check.","tool_calls":[{"name":"get_weather","arguments":{"city":"Paris","unit":"celsius"}}]}]"#;
    let reply = mock.post("/v1/messages", messages(text, true)).await;
    let data: Vec<Value> = reply
        .sse()
        .iter()
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect();
    let starts: Vec<&Value> = data
        .iter()
        .filter(|e| e["type"] == "content_block_start")
        .collect();
    assert_eq!(starts.len(), 3);
    assert_eq!(starts[0]["content_block"]["type"], "thinking");
    assert_eq!(starts[1]["content_block"]["type"], "text");
    assert_eq!(starts[2]["content_block"]["type"], "tool_use");
    assert!(
        starts[2]["content_block"]["id"]
            .as_str()
            .unwrap()
            .starts_with("toolu_")
    );
    assert_eq!(starts[2]["content_block"]["name"], "get_weather");
    assert_eq!(starts[2]["content_block"]["input"], json!({}));

    let deltas = |index: u64, kind: &str, field: &str| -> Vec<String> {
        data.iter()
            .filter(|e| {
                e["type"] == "content_block_delta"
                    && e["index"] == index
                    && e["delta"]["type"] == kind
            })
            .map(|e| e["delta"][field].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        deltas(0, "thinking_delta", "thinking").concat(),
        "I should call the tool."
    );
    let signatures = deltas(0, "signature_delta", "signature");
    assert_eq!(signatures.len(), 1);
    assert!(!signatures[0].is_empty());
    assert_eq!(deltas(1, "text_delta", "text").concat(), "Let me check.");
    let json_pieces = deltas(2, "input_json_delta", "partial_json");
    assert!(json_pieces.len() >= 2);
    assert_eq!(
        serde_json::from_str::<Value>(&json_pieces.concat()).unwrap(),
        json!({"city": "Paris", "unit": "celsius"})
    );
    let message_delta = data.iter().find(|e| e["type"] == "message_delta").unwrap();
    assert_eq!(message_delta["delta"]["stop_reason"], "tool_use");
}

#[tokio::test]
async fn message_buffered_thinking_and_tool_use() {
    let mock = Mock::start().await;
    let text = r#"[mock:{"reasoning":"hmm","tool_calls":[{"name":"f","arguments":{"a":1}}]}]"#;
    let body = mock
        .post("/v1/messages", messages(text, false))
        .await
        .json();
    let content = body["content"].as_array().unwrap();
    assert_eq!(content.len(), 2);
    assert_eq!(content[0]["type"], "thinking");
    assert_eq!(content[0]["thinking"], "hmm");
    assert!(content[0]["signature"].as_str().unwrap().len() > 20);
    assert_eq!(content[1]["type"], "tool_use");
    assert_eq!(content[1]["input"], json!({"a": 1}));
    assert_eq!(body["stop_reason"], "tool_use");
}

#[tokio::test]
async fn count_tokens() {
    let mock = Mock::start().await;
    let body = mock
        .post(
            "/v1/messages/count_tokens",
            json!({"model": "claude-test", "messages": [{"role": "user", "content": "12345678"}]}),
        )
        .await
        .json();
    assert_eq!(body, json!({"input_tokens": 2}));
}
