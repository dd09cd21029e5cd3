//! Ollama shapes: NDJSON streaming by default, buffered with `stream: false`.

use serde_json::{Value, json};

use crate::common::Mock;

const TEXT: &str = "Hello from the mock Ollama upstream.";

#[tokio::test]
async fn chat_streams_ndjson_by_default() {
    let mock = Mock::start().await;
    let reply = mock
        .post(
            "/api/chat",
            json!({"model": "llama-test", "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.content_type(), "application/x-ndjson");
    let lines = reply.ndjson();
    assert_eq!(lines.len(), 7);
    for line in &lines[..6] {
        assert_eq!(line["model"], "llama-test");
        assert_eq!(line["done"], false);
        assert_eq!(line["message"]["role"], "assistant");
        assert!(line["created_at"].as_str().unwrap().ends_with('Z'));
    }
    let text: String = lines
        .iter()
        .map(|l| l["message"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(text, TEXT);
    let last = lines.last().unwrap();
    assert_eq!(last["done"], true);
    assert_eq!(last["done_reason"], "stop");
    assert_eq!(last["eval_count"], 6);
    assert_eq!(last["prompt_eval_count"], 1);
    assert!(last["total_duration"].as_u64().unwrap() > 0);
    assert_eq!(
        mock.wait_for(|s| s.streams_completed == 1)
            .await
            .streams_completed,
        1
    );
}

#[tokio::test]
async fn chat_buffered_with_stream_false() {
    let mock = Mock::start().await;
    let body = mock
        .post("/api/chat", json!({"model": "llama-test", "stream": false, "messages": [{"role": "user", "content": "Hi"}]}))
        .await
        .json();
    assert_eq!(body["message"]["content"], TEXT);
    assert_eq!(body["done"], true);
    assert_eq!(body["done_reason"], "stop");
    assert_eq!(mock.stats.snapshot().streams_started, 0);
}

#[tokio::test]
async fn chat_tool_calls_and_thinking() {
    let mock = Mock::start().await;
    let content = r#"[mock:{"reasoning":"let me see","tool_calls":[{"name":"get_weather","arguments":{"city":"Paris"}}]}]"#;
    let body = mock
        .post(
            "/api/chat",
            json!({"stream": false, "messages": [{"role": "user", "content": content}]}),
        )
        .await
        .json();
    assert_eq!(body["message"]["thinking"], "let me see");
    assert_eq!(
        body["message"]["tool_calls"][0]["function"]["name"],
        "get_weather"
    );
    assert_eq!(
        body["message"]["tool_calls"][0]["function"]["arguments"],
        json!({"city": "Paris"})
    );

    let lines = mock
        .post(
            "/api/chat",
            json!({"messages": [{"role": "user", "content": content}]}),
        )
        .await
        .ndjson();
    let thinking: String = lines
        .iter()
        .filter_map(|l| l["message"]["thinking"].as_str())
        .collect();
    assert_eq!(thinking, "let me see");
    let calls: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"].get("tool_calls").is_some())
        .collect();
    assert_eq!(calls.len(), 1);
    assert_eq!(lines.last().unwrap()["done"], true);
}

#[tokio::test]
async fn generate_streams_and_buffers() {
    let mock = Mock::start().await;
    let lines = mock
        .post(
            "/api/generate",
            json!({"model": "llama-test", "prompt": "Why?"}),
        )
        .await
        .ndjson();
    let text: String = lines
        .iter()
        .map(|l| l["response"].as_str().unwrap())
        .collect();
    assert_eq!(text, TEXT);
    let last = lines.last().unwrap();
    assert_eq!(last["done"], true);
    assert!(last["context"].is_array());

    let body = mock
        .post(
            "/api/generate",
            json!({"prompt": "Why? [mock:{\"words\":3}]", "stream": false}),
        )
        .await
        .json();
    assert_eq!(body["response"], "lorem ipsum dolor");
    assert_eq!(body["eval_count"], 3);
}

#[tokio::test]
async fn tags_version_and_embed() {
    let mock = Mock::start().await;
    let tags = mock.get("/api/tags").await.json();
    assert!(tags["models"][0]["name"].as_str().unwrap().contains(':'));
    assert!(mock.get("/api/version").await.json()["version"].is_string());
    let embed = mock
        .post(
            "/api/embed",
            json!({"model": "all-minilm", "input": ["a", "b"]}),
        )
        .await
        .json();
    assert_eq!(embed["model"], "all-minilm");
    assert_eq!(embed["embeddings"].as_array().unwrap().len(), 2);
    assert_eq!(embed["embeddings"][0].as_array().unwrap().len(), 8);
    let legacy = mock
        .post("/api/embeddings", json!({"prompt": "a"}))
        .await
        .json();
    assert_eq!(legacy["embedding"], embed["embeddings"][0]);
}
