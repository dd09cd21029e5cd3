//! Gemini shapes: generateContent, both streaming framings, counting, embedding, models.

use http::Method;
use serde_json::{Value, json};

use crate::common::{Mock, Reply, next_data};

const TEXT: &str = "Hello from the mock Gemini upstream.";

fn contents(text: &str) -> Value {
    json!({
        "contents": [{"role": "user", "parts": [{"text": text}]}],
        "generationConfig": {"temperature": 0.5}
    })
}

#[tokio::test]
async fn generate_content_on_both_prefixes() {
    let mock = Mock::start().await;
    for prefix in ["/v1beta", "/v1"] {
        let reply = mock
            .post_with(
                &format!("{prefix}/models/gemini-test:generateContent"),
                &[("x-goog-api-key", "AIza-test")],
                contents("Hello Gemini"),
            )
            .await;
        assert_eq!(reply.status, 200);
        assert!(reply.content_type().starts_with("application/json"));
        let body = reply.json();
        let candidate = &body["candidates"][0];
        assert_eq!(candidate["content"]["role"], "model");
        assert_eq!(candidate["content"]["parts"], json!([{"text": TEXT}]));
        assert_eq!(candidate["finishReason"], "STOP");
        assert_eq!(body["modelVersion"], "gemini-test");
        assert!(!body["responseId"].as_str().unwrap().is_empty());
        let usage = &body["usageMetadata"];
        assert_eq!(usage["promptTokenCount"], 3);
        assert_eq!(usage["candidatesTokenCount"], 6);
        assert_eq!(usage["totalTokenCount"], 9);
    }
}

#[tokio::test]
async fn stream_with_alt_sse() {
    let mock = Mock::start().await;
    let reply = mock
        .post(
            "/v1beta/models/gemini-test:streamGenerateContent?alt=sse",
            contents("Hi"),
        )
        .await;
    assert!(reply.content_type().starts_with("text/event-stream"));
    let raw = reply.text();
    assert!(raw.starts_with("data: {"));
    assert!(raw.ends_with("\r\n\r\n"));
    let chunks = reply.sse_json();
    assert_eq!(chunks.len(), 6);
    let text: String = chunks
        .iter()
        .map(|c| {
            c["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(text, TEXT);
    assert!(
        chunks[..5]
            .iter()
            .all(|c| c["candidates"][0].get("finishReason").is_none())
    );
    let last = chunks.last().unwrap();
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(last["usageMetadata"]["candidatesTokenCount"], 6);
}

#[tokio::test]
async fn stream_without_alt_is_an_incremental_json_array() {
    let mock = Mock::start().await;
    let (response, _conn) = mock
        .open(
            Method::POST,
            "/v1beta/models/gemini-test:streamGenerateContent",
            &[],
            Some(contents("Hi")),
        )
        .await;
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let mut body = response.into_body();
    let first = next_data(&mut body).await.unwrap().unwrap();
    assert!(
        first.starts_with(b"["),
        "the array opens with the first element"
    );
    let mut all = first.to_vec();
    while let Some(frame) = next_data(&mut body).await {
        all.extend_from_slice(&frame.unwrap());
    }
    let array: Vec<Value> = serde_json::from_slice(&all).unwrap();
    assert_eq!(array.len(), 6);
    let text: String = array
        .iter()
        .map(|c| {
            c["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(text, TEXT);
}

#[tokio::test]
async fn function_calls_and_thoughts() {
    let mock = Mock::start().await;
    let text = r#"[mock:{"reasoning":"Thinking hard","tool_calls":[{"name":"get_weather","arguments":{"city":"Paris"}}]}]"#;
    let body = mock
        .post("/v1beta/models/gemini-test:generateContent", contents(text))
        .await
        .json();
    let parts = body["candidates"][0]["content"]["parts"]
        .as_array()
        .unwrap();
    assert_eq!(parts[0], json!({"text": "Thinking hard", "thought": true}));
    assert_eq!(
        parts[1],
        json!({"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}})
    );
    assert_eq!(body["candidates"][0]["finishReason"], "STOP");
    assert_eq!(body["usageMetadata"]["thoughtsTokenCount"], 2);

    let reply = mock
        .post(
            "/v1beta/models/gemini-test:streamGenerateContent?alt=sse",
            contents(text),
        )
        .await;
    let chunks = reply.sse_json();
    let thoughts: String = chunks
        .iter()
        .flat_map(|c| {
            c["candidates"][0]["content"]["parts"]
                .as_array()
                .unwrap()
                .clone()
        })
        .filter(|p| p["thought"] == true)
        .map(|p| p["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(thoughts, "Thinking hard");
    let last = chunks.last().unwrap();
    assert_eq!(
        last["candidates"][0]["content"]["parts"][0]["functionCall"]["name"],
        "get_weather"
    );
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
}

#[tokio::test]
async fn count_tokens_and_embeddings() {
    let mock = Mock::start().await;
    let count = mock
        .post(
            "/v1beta/models/gemini-test:countTokens",
            contents("12345678"),
        )
        .await
        .json();
    assert_eq!(count["totalTokens"], 2);

    let embed = mock
        .post(
            "/v1beta/models/text-embedding-004:embedContent",
            json!({"content": {"parts": [{"text": "hello"}]}}),
        )
        .await
        .json();
    let values = embed["embedding"]["values"].as_array().unwrap();
    assert_eq!(values.len(), 8);

    let batch = mock
        .post(
            "/v1beta/models/text-embedding-004:batchEmbedContents",
            json!({"requests": [
                {"model": "models/text-embedding-004", "content": {"parts": [{"text": "hello"}]}},
                {"model": "models/text-embedding-004", "content": {"parts": [{"text": "world"}]}, "outputDimensionality": 4}
            ]}),
        )
        .await
        .json();
    let embeddings = batch["embeddings"].as_array().unwrap();
    assert_eq!(embeddings[0]["values"].as_array().unwrap(), values);
    assert_eq!(embeddings[1]["values"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn models_listing() {
    let mock = Mock::start().await;
    let list = mock.get("/v1beta/models").await.json();
    let models = list["models"].as_array().unwrap();
    assert!(
        models
            .iter()
            .all(|m| m["name"].as_str().unwrap().starts_with("models/"))
    );
    let one = mock.get("/v1beta/models/gemini-2.5-flash").await.json();
    assert_eq!(one["name"], "models/gemini-2.5-flash");
    let v1: Reply = mock
        .call(Method::GET, "/v1/models", &[("x-goog-api-key", "k")], None)
        .await;
    assert!(v1.json()["models"].is_array());
}

#[tokio::test]
async fn unknown_action_is_a_gemini_404() {
    let mock = Mock::start().await;
    let reply = mock
        .post("/v1beta/models/gemini-test:fly", contents("x"))
        .await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json()["error"]["status"], "NOT_FOUND");
}
