//! The directive (header and message text), echo, scripted errors, broken and cancelled
//! streams, counters, routing errors and shutdown.

use std::time::Duration;

use http::Method;
use serde_json::{Value, json};

use crate::common::{Mock, Reply, build, chat, chat_stream, next_data};

fn content_deltas(reply: &Reply) -> Vec<String> {
    reply
        .sse_json()
        .iter()
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .filter(|t| !t.is_empty())
        .collect()
}

#[tokio::test]
async fn header_directive_sets_text_and_chunks() {
    let mock = Mock::start().await;
    let reply = mock
        .post_with(
            "/v1/chat/completions",
            &[(
                "x-mock-scenario",
                r#"{"text":"exactly this reply","chunks":4,"usage":{"input":11,"output":22}}"#,
            )],
            chat_stream("ignored [mock:{\"text\":\"not this\"}]"),
        )
        .await;
    let deltas = content_deltas(&reply);
    assert_eq!(deltas.len(), 4);
    assert_eq!(deltas.concat(), "exactly this reply");

    let body = mock
        .post_with(
            "/v1/chat/completions",
            &[(
                "x-mock-scenario",
                r#"{"words":25,"usage":{"input":11,"output":22}}"#,
            )],
            chat("hello"),
        )
        .await
        .json();
    let text = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(text.split_whitespace().count(), 25);
    assert!(text.starts_with("lorem ipsum dolor"));
    assert_eq!(body["usage"]["prompt_tokens"], 11);
    assert_eq!(body["usage"]["completion_tokens"], 22);
    assert_eq!(body["usage"]["total_tokens"], 33);
}

#[tokio::test]
async fn message_directive_for_each_provider() {
    let mock = Mock::start().await;
    let marker = r#"Please answer [mock:{"text":"scripted answer"}] thanks"#;
    let openai = mock.post("/v1/chat/completions", chat(marker)).await.json();
    assert_eq!(
        openai["choices"][0]["message"]["content"],
        "scripted answer"
    );
    let anthropic = mock
        .post("/v1/messages", json!({"model": "c", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "text", "text": marker}]}]}))
        .await
        .json();
    assert_eq!(anthropic["content"][0]["text"], "scripted answer");
    let gemini = mock
        .post(
            "/v1beta/models/g:generateContent",
            json!({"contents": [{"role": "user", "parts": [{"text": marker}]}]}),
        )
        .await
        .json();
    assert_eq!(
        gemini["candidates"][0]["content"]["parts"][0]["text"],
        "scripted answer"
    );
    let ollama = mock
        .post(
            "/api/chat",
            json!({"stream": false, "messages": [{"role": "user", "content": marker}]}),
        )
        .await
        .json();
    assert_eq!(ollama["message"]["content"], "scripted answer");
    let responses = mock
        .post("/v1/responses", json!({"input": marker}))
        .await
        .json();
    assert_eq!(
        responses["output"][0]["content"][0]["text"],
        "scripted answer"
    );
    let completions = mock
        .post("/v1/completions", json!({"prompt": marker}))
        .await
        .json();
    assert_eq!(completions["choices"][0]["text"], "scripted answer");
}

#[tokio::test]
async fn only_the_last_user_message_counts() {
    let mock = Mock::start().await;
    let body = mock
        .post(
            "/v1/chat/completions",
            json!({"messages": [
                {"role": "user", "content": "[mock:{\"text\":\"old\"}]"},
                {"role": "assistant", "content": "old"},
                {"role": "user", "content": "new question"}
            ]}),
        )
        .await
        .json();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello from the mock OpenAI upstream."
    );
}

#[tokio::test]
async fn malformed_directives_get_provider_shaped_400s() {
    let mock = Mock::start().await;
    let bad = r#"[mock:{"txet":"typo"}]"#;

    let openai = mock.post("/v1/chat/completions", chat(bad)).await;
    assert_eq!(openai.status, 400);
    let error = &openai.json()["error"];
    assert_eq!(error["type"], "invalid_request_error");
    assert!(error["message"].as_str().unwrap().contains("txet"));
    assert!(error.get("param").is_some() && error.get("code").is_some());

    let anthropic = mock
        .post(
            "/v1/messages",
            json!({"messages": [{"role": "user", "content": bad}]}),
        )
        .await;
    assert_eq!(anthropic.status, 400);
    assert_eq!(anthropic.json()["type"], "error");
    assert_eq!(anthropic.json()["error"]["type"], "invalid_request_error");

    let gemini = mock
        .post(
            "/v1beta/models/g:generateContent",
            json!({"contents": [{"parts": [{"text": bad}]}]}),
        )
        .await;
    assert_eq!(gemini.status, 400);
    assert_eq!(gemini.json()["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(gemini.json()["error"]["code"], 400);

    let ollama = mock.post("/api/generate", json!({"prompt": bad})).await;
    assert_eq!(ollama.status, 400);
    assert!(
        ollama.json()["error"]
            .as_str()
            .unwrap()
            .contains("directive")
    );

    let header = mock
        .post_with(
            "/v1/chat/completions",
            &[("x-mock-scenario", "{not json")],
            chat("hi"),
        )
        .await;
    assert_eq!(header.status, 400);
    assert!(
        header.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("x-mock-scenario")
    );
}

#[tokio::test]
async fn status_directive_uses_each_providers_error_shape() {
    let mock = Mock::start().await;
    let rate_limited = |provider_path: &'static str, body: Value| {
        let mock = &mock;
        async move {
            mock.post_with(
                provider_path,
                &[("x-mock-scenario", r#"{"status":429}"#)],
                body,
            )
            .await
        }
    };

    let openai = rate_limited("/v1/chat/completions", chat("hi")).await;
    assert_eq!(openai.status, 429);
    assert_eq!(openai.header("retry-after"), Some("1"));
    assert_eq!(openai.json()["error"]["code"], "rate_limit_exceeded");

    let anthropic = rate_limited("/v1/messages", json!({"messages": []})).await;
    assert_eq!(anthropic.status, 429);
    assert_eq!(anthropic.header("retry-after"), Some("1"));
    assert_eq!(anthropic.json()["error"]["type"], "rate_limit_error");

    let gemini = rate_limited("/v1beta/models/g:generateContent", json!({"contents": []})).await;
    assert_eq!(gemini.status, 429);
    assert_eq!(gemini.json()["error"]["status"], "RESOURCE_EXHAUSTED");

    let ollama = rate_limited("/api/chat", json!({"messages": []})).await;
    assert_eq!(ollama.status, 429);
    assert!(ollama.json()["error"].is_string());

    let overloaded = mock
        .post(
            "/v1/messages",
            json!({"messages": [{"role": "user", "content": "[mock:{\"status\":529}]"}]}),
        )
        .await;
    assert_eq!(overloaded.status, 529);
    assert_eq!(overloaded.header("retry-after"), None);
    assert_eq!(overloaded.json()["error"]["type"], "overloaded_error");

    let unavailable = mock
        .post(
            "/v1beta/models/g:streamGenerateContent?alt=sse",
            json!({"contents": [{"parts": [{"text": "[mock:{\"status\":503}]"}]}]}),
        )
        .await;
    assert_eq!(unavailable.status, 503);
    assert_eq!(unavailable.json()["error"]["status"], "UNAVAILABLE");

    let server_error = mock
        .post(
            "/v1/chat/completions",
            chat_stream("[mock:{\"status\":500}]"),
        )
        .await;
    assert_eq!(server_error.status, 500);
    assert_eq!(server_error.json()["error"]["type"], "server_error");
    assert_eq!(mock.stats.snapshot().streams_started, 0);
}

#[tokio::test]
async fn echo_reports_what_was_received() {
    let mock = Mock::start().await;
    let body = mock
        .call(
            Method::POST,
            "/v1/chat/completions?trace=1",
            &[
                ("x-mock-scenario", r#"{"echo":true}"#),
                ("authorization", "Bearer sk-forwarded"),
                ("x-custom", "a"),
                ("x-custom", "b"),
            ],
            Some(chat("what did you get?")),
        )
        .await
        .json();
    let text = body["choices"][0]["message"]["content"].as_str().unwrap();
    let echo: Value = serde_json::from_str(text).unwrap();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path"], "/v1/chat/completions");
    assert_eq!(echo["query"], "trace=1");
    assert_eq!(echo["headers"]["authorization"], "Bearer sk-forwarded");
    assert_eq!(echo["headers"]["x-custom"], "a, b");
    assert_eq!(echo["headers"]["host"], "mock.test");
    assert_eq!(echo["body"], chat("what did you get?"));

    let streamed = mock
        .post(
            "/api/chat",
            json!({"messages": [{"role": "user", "content": "[mock:{\"echo\":true}]"}]}),
        )
        .await
        .ndjson();
    let text: String = streamed
        .iter()
        .map(|l| l["message"]["content"].as_str().unwrap())
        .collect();
    let echo: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(echo["path"], "/api/chat");
    assert_eq!(echo["query"], Value::Null);
}

#[tokio::test]
async fn invalid_json_bodies_are_rejected_unless_echoed() {
    let mock = Mock::start().await;
    let (mut sender, _conn) = mock.connect().await;
    let mut request = build(Method::POST, "/v1/chat/completions", &[], None);
    *request.body_mut() = http_body_util::Full::new(bytes::Bytes::from_static(b"{oops"));
    let reply = Reply::read(sender.send_request(request).await.unwrap()).await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("JSON")
    );

    let mut request = build(
        Method::POST,
        "/v1/chat/completions",
        &[("x-mock-scenario", r#"{"echo":true}"#)],
        None,
    );
    *request.body_mut() = http_body_util::Full::new(bytes::Bytes::from_static(b"{oops"));
    let reply = Reply::read(sender.send_request(request).await.unwrap()).await;
    let text = reply.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["body"],
        "{oops"
    );
}

#[tokio::test]
async fn break_after_truncates_the_stream() {
    let mock = Mock::start().await;
    let (response, _conn) = mock
        .open(
            Method::POST,
            "/v1/chat/completions",
            &[("x-mock-scenario", r#"{"words":50,"break_after":3}"#)],
            Some(chat_stream("hi")),
        )
        .await;
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut data = Vec::new();
    let mut errored = false;
    for _ in 0..100 {
        match next_data(&mut body).await {
            Some(Ok(frame)) => data.extend_from_slice(&frame),
            Some(Err(_)) => {
                errored = true;
                break;
            }
            None => break,
        }
    }
    assert!(errored, "a broken stream must end in an error, not cleanly");
    let text = String::from_utf8(data).unwrap();
    assert_eq!(text.matches("data: ").count(), 3);
    assert!(!text.contains("[DONE]"));
    let stats = mock.wait_for(|s| s.streams_started == 1).await;
    assert_eq!((stats.streams_completed, stats.streams_cancelled), (0, 0));
}

#[tokio::test]
async fn client_disconnect_cancels_the_stream() {
    let mock = Mock::start().await;
    let (response, conn) = mock
        .open(
            Method::POST,
            "/v1/messages",
            &[("x-mock-scenario", r#"{"words":200,"chunk_delay_ms":20}"#)],
            Some(json!({"messages": [{"role": "user", "content": "hi"}], "stream": true})),
        )
        .await;
    let mut body = response.into_body();
    let first = next_data(&mut body).await.unwrap().unwrap();
    assert!(first.starts_with(b"event: message_start"));
    drop(body);
    conn.abort();
    let stats = mock.wait_for(|s| s.streams_cancelled == 1).await;
    assert_eq!(stats.streams_cancelled, 1);
    assert_eq!(stats.streams_completed, 0);
}

#[tokio::test]
async fn delays_still_answer() {
    let mock = Mock::start().await;
    let reply = mock
        .post_with(
            "/api/chat",
            &[(
                "x-mock-scenario",
                r#"{"delay_ms":20,"chunk_delay_ms":1,"text":"a b c"}"#,
            )],
            json!({"messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    let text: String = reply
        .ndjson()
        .iter()
        .map(|l| l["message"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(text, "a b c");
}

#[tokio::test]
async fn stats_endpoint_and_reset() {
    let mock = Mock::start().await;
    mock.post("/v1/chat/completions", chat_stream("hi")).await;
    mock.post("/v1/chat/completions", chat("hi")).await;
    let served: warden_mock::StatsSnapshot =
        serde_json::from_slice(&mock.get("/mock/stats").await.body).unwrap();
    assert_eq!(served.requests, 2, "/mock routes are not counted");
    assert_eq!(served.streams_started, 1);
    assert_eq!(served, mock.stats.snapshot());
    let reset = mock.call(Method::POST, "/mock/reset", &[], None).await;
    assert_eq!(reset.status, 200);
    assert_eq!(
        mock.stats.snapshot(),
        warden_mock::StatsSnapshot {
            requests: 0,
            streams_started: 0,
            streams_completed: 0,
            streams_cancelled: 0,
        }
    );
}

#[tokio::test]
async fn unknown_paths_and_methods() {
    let mock = Mock::start().await;
    let missing = mock.get("/v2/whatever").await;
    assert_eq!(missing.status, 404);
    assert!(
        missing.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/v2/whatever")
    );
    let ollama_missing = mock.get("/api/nothing").await;
    assert_eq!(ollama_missing.status, 404);
    assert!(ollama_missing.json()["error"].is_string());
    let wrong = mock.get("/v1/chat/completions").await;
    assert_eq!(wrong.status, 405);
}

#[tokio::test]
async fn keep_alive_serves_many_requests_per_connection() {
    let mock = Mock::start().await;
    let (mut sender, _conn) = mock.connect().await;
    for i in 0..20 {
        let stream = i % 2 == 0;
        let body = if stream {
            chat_stream("hi")
        } else {
            chat("hi")
        };
        sender.ready().await.unwrap();
        let response = sender
            .send_request(build(Method::POST, "/v1/chat/completions", &[], Some(body)))
            .await
            .unwrap();
        let reply = Reply::read(response).await;
        assert_eq!(reply.status, 200);
    }
    assert_eq!(mock.stats.snapshot().requests, 20);
}

#[tokio::test]
async fn shutdown_stops_the_accept_loop() {
    let mut mock = Mock::start().await;
    assert_eq!(mock.get("/v1/models").await.status, 200);
    mock.stop();
    let server = mock.server.take().unwrap();
    let result = tokio::time::timeout(Duration::from_secs(5), server).await;
    assert!(matches!(result, Ok(Ok(Ok(())))));
}
