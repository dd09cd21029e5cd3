//! OpenAI shapes: chat, completions, embeddings, Responses, models.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::common::{Mock, chat, chat_stream};

const TEXT: &str = "Hello from the mock OpenAI upstream.";

#[tokio::test]
async fn chat_buffered_has_the_real_shape() {
    let mock = Mock::start().await;
    // 13 characters of text: ceil(13 / 4) = 4 input tokens.
    let reply = mock
        .post("/v1/chat/completions", chat("Say hi please"))
        .await;
    assert_eq!(reply.status, 200);
    assert!(reply.content_type().starts_with("application/json"));
    assert!(
        reply
            .header("x-request-id")
            .is_some_and(|v| v.starts_with("req_"))
    );
    let body = reply.json();
    assert_eq!(body["object"], "chat.completion");
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert!(body["created"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(body["model"], "gpt-test");
    let choice = &body["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["content"], TEXT);
    assert_eq!(choice["finish_reason"], "stop");
    assert_eq!(body["usage"]["prompt_tokens"], 4);
    assert_eq!(body["usage"]["completion_tokens"], 6);
    assert_eq!(body["usage"]["total_tokens"], 10);
    assert_eq!(mock.stats.snapshot().requests, 1);
}

#[tokio::test]
async fn chat_stream_ends_with_usage_and_done() {
    let mock = Mock::start().await;
    let mut request = chat_stream("Hi");
    request["stream_options"] = json!({"include_usage": true});
    let reply = mock.post("/v1/chat/completions", request).await;
    assert_eq!(reply.status, 200);
    assert!(reply.content_type().starts_with("text/event-stream"));
    let events = reply.sse();
    assert!(
        events.iter().all(|(name, _)| name.is_none()),
        "chat SSE has no event names"
    );
    assert_eq!(events.last().unwrap().1, "[DONE]");
    let chunks = reply.sse_json();
    let id = chunks[0]["id"].as_str().unwrap();
    assert!(id.starts_with("chatcmpl-"));
    for chunk in &chunks {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["id"], id);
        assert_eq!(chunk["model"], "gpt-test");
        assert!(chunk.get("usage").is_some());
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, TEXT);
    let usage_chunk = chunks.last().unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"]["completion_tokens"], 6);
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert_eq!(finish["usage"], Value::Null);
    // One content delta per word.
    let deltas = chunks
        .iter()
        .filter(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
        })
        .count();
    assert_eq!(deltas, 6);
    let stats = mock.wait_for(|s| s.streams_completed == 1).await;
    assert_eq!(
        (
            stats.streams_started,
            stats.streams_completed,
            stats.streams_cancelled
        ),
        (1, 1, 0)
    );
}

#[tokio::test]
async fn chat_stream_tool_calls_and_reasoning_reassemble() {
    let mock = Mock::start().await;
    let directive = r#"Weather? [mock:{"reasoning":"The user wants weather.","tool_calls":[{"name":"get_weather","arguments":{"city":"Paris"}},{"name":"get_time","arguments":{"tz":"Europe/Paris","format":"24h"}}]}]"#;
    let reply = mock
        .post("/v1/chat/completions", chat_stream(directive))
        .await;
    let chunks = reply.sse_json();
    let reasoning: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["reasoning_content"].as_str())
        .collect();
    assert_eq!(reasoning, "The user wants weather.");
    let mut calls: BTreeMap<u64, (String, String, String, usize)> = BTreeMap::new();
    for chunk in &chunks {
        let Some(deltas) = chunk["choices"][0]["delta"]["tool_calls"].as_array() else {
            continue;
        };
        for delta in deltas {
            let entry = calls.entry(delta["index"].as_u64().unwrap()).or_default();
            if let Some(id) = delta["id"].as_str() {
                assert_eq!(delta["type"], "function");
                entry.0 = id.to_owned();
                entry.1 = delta["function"]["name"].as_str().unwrap().to_owned();
            }
            let piece = delta["function"]["arguments"].as_str().unwrap();
            if !piece.is_empty() {
                entry.2.push_str(piece);
                entry.3 += 1;
            }
        }
    }
    assert_eq!(calls.len(), 2);
    let (id, name, args, pieces) = &calls[&0];
    assert!(id.starts_with("call_"));
    assert_eq!(name, "get_weather");
    assert_eq!(
        serde_json::from_str::<Value>(args).unwrap(),
        json!({"city": "Paris"})
    );
    assert!(*pieces >= 2, "arguments must arrive in several deltas");
    assert_eq!(calls[&1].1, "get_time");
    assert_eq!(
        serde_json::from_str::<Value>(&calls[&1].2).unwrap(),
        json!({"tz": "Europe/Paris", "format": "24h"})
    );
    let finish = chunks
        .iter()
        .find_map(|c| c["choices"][0]["finish_reason"].as_str())
        .unwrap();
    assert_eq!(finish, "tool_calls");
}

#[tokio::test]
async fn chat_buffered_tool_calls() {
    let mock = Mock::start().await;
    let body = mock
        .post_with(
            "/v1/chat/completions",
            &[(
                "x-mock-scenario",
                r#"{"tool_calls":[{"name":"get_weather","arguments":{"city":"Paris"}}],"reasoning":"hmm"}"#,
            )],
            chat("Weather in Paris?"),
        )
        .await
        .json();
    let message = &body["choices"][0]["message"];
    assert_eq!(message["content"], Value::Null);
    assert_eq!(message["reasoning_content"], "hmm");
    let call = &message["tool_calls"][0];
    assert!(call["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "Paris"}));
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(
        body["usage"]["completion_tokens_details"]["reasoning_tokens"],
        1
    );
}

#[tokio::test]
async fn legacy_completions_buffered_and_streamed() {
    let mock = Mock::start().await;
    let body = mock
        .post(
            "/v1/completions",
            json!({"model": "gpt-3.5-turbo-instruct", "prompt": "Say this"}),
        )
        .await
        .json();
    assert_eq!(body["object"], "text_completion");
    assert!(body["id"].as_str().unwrap().starts_with("cmpl-"));
    assert_eq!(body["choices"][0]["text"], TEXT);
    assert_eq!(body["usage"]["prompt_tokens"], 2);

    let reply = mock
        .post(
            "/v1/completions",
            json!({"prompt": "Say this", "stream": true}),
        )
        .await;
    assert_eq!(reply.sse().last().unwrap().1, "[DONE]");
    let chunks = reply.sse_json();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["text"].as_str())
        .collect();
    assert_eq!(text, TEXT);
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
}

#[tokio::test]
async fn embeddings_floats_and_base64_agree() {
    let mock = Mock::start().await;
    let floats = mock
        .post("/v1/embeddings", json!({"model": "text-embedding-3-small", "input": ["hello", "world"], "encoding_format": "float"}))
        .await
        .json();
    assert_eq!(floats["object"], "list");
    assert_eq!(floats["model"], "text-embedding-3-small");
    assert_eq!(floats["data"].as_array().unwrap().len(), 2);
    assert_eq!(floats["data"][1]["object"], "embedding");
    assert_eq!(floats["data"][1]["index"], 1);
    let vector: Vec<f32> = floats["data"][0]["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    assert_eq!(vector.len(), 8);
    assert_eq!(
        floats["usage"]["prompt_tokens"],
        floats["usage"]["total_tokens"]
    );

    let encoded = mock
        .post(
            "/v1/embeddings",
            json!({"input": "hello", "encoding_format": "base64"}),
        )
        .await
        .json();
    let b64 = encoded["data"][0]["embedding"].as_str().unwrap();
    let decoded: Vec<f32> = decode_base64(b64)
        .chunks(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(decoded, vector);

    let sized = mock
        .post("/v1/embeddings", json!({"input": "x", "dimensions": 3}))
        .await
        .json();
    assert_eq!(sized["data"][0]["embedding"].as_array().unwrap().len(), 3);
}

fn decode_base64(s: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("bad base64 {c}"),
    };
    let digits: Vec<u8> = s.bytes().filter(|&c| c != b'=').map(value).collect();
    let mut out = Vec::new();
    for chunk in digits.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &d)| n | (u32::from(d) << (18 - 6 * i)));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

#[tokio::test]
async fn responses_buffered_has_the_real_shape() {
    let mock = Mock::start().await;
    let body = mock
        .post(
            "/v1/responses",
            json!({"model": "gpt-4.1", "input": "Tell me something", "instructions": "Be brief"}),
        )
        .await
        .json();
    assert_eq!(body["object"], "response");
    assert!(body["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(body["status"], "completed");
    assert_eq!(body["model"], "gpt-4.1");
    assert_eq!(body["instructions"], "Be brief");
    let item = &body["output"][0];
    assert_eq!(item["type"], "message");
    assert!(item["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(item["content"][0]["type"], "output_text");
    assert_eq!(item["content"][0]["text"], TEXT);
    // "Tell me something" + "Be brief" = 25 characters.
    assert_eq!(body["usage"]["input_tokens"], 7);
    assert_eq!(body["usage"]["output_tokens"], 6);
    assert_eq!(body["usage"]["total_tokens"], 13);
}

fn event_types(events: &[(Option<String>, String)]) -> Vec<String> {
    let mut types = Vec::new();
    for (i, (name, data)) in events.iter().enumerate() {
        let data: Value = serde_json::from_str(data).unwrap();
        assert_eq!(
            name.as_deref(),
            data["type"].as_str(),
            "event line matches type"
        );
        assert_eq!(data["sequence_number"], i as u64);
        types.push(data["type"].as_str().unwrap().to_owned());
    }
    types
}

#[tokio::test]
async fn responses_stream_has_the_full_event_sequence() {
    let mock = Mock::start().await;
    let reply = mock
        .post("/v1/responses", json!({"input": [{"role": "user", "content": [{"type": "input_text", "text": "hi [mock:{\"text\":\"one two three\"}]"}]}], "stream": true}))
        .await;
    assert!(reply.content_type().starts_with("text/event-stream"));
    let events = reply.sse();
    let types = event_types(&events);
    assert_eq!(
        types,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let data: Vec<Value> = events
        .iter()
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(data[0]["response"]["status"], "in_progress");
    let text: String = data
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, "one two three");
    let completed = &data.last().unwrap()["response"];
    assert_eq!(completed["status"], "completed");
    assert_eq!(
        completed["output"][0]["content"][0]["text"],
        "one two three"
    );
    assert_eq!(data[4]["item_id"], completed["output"][0]["id"]);
}

#[tokio::test]
async fn responses_stream_function_calls_and_reasoning() {
    let mock = Mock::start().await;
    let reply = mock
        .post_with(
            "/v1/responses",
            &[("x-mock-scenario", r#"{"reasoning":"think think","tool_calls":[{"name":"lookup","arguments":{"q":"rust async"}}]}"#)],
            json!({"input": "search", "stream": true}),
        )
        .await;
    let events = reply.sse();
    let types = event_types(&events);
    let data: Vec<Value> = events
        .iter()
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect();
    assert!(types.contains(&"response.reasoning_summary_text.delta".to_owned()));
    assert!(
        !types.contains(&"response.output_text.delta".to_owned()),
        "tool calls alone carry no text"
    );
    let args: String = data
        .iter()
        .filter(|e| e["type"] == "response.function_call_arguments.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"q": "rust async"})
    );
    let done = data
        .iter()
        .find(|e| e["type"] == "response.function_call_arguments.done")
        .unwrap();
    assert_eq!(done["arguments"], args);
    let output = data.last().unwrap()["response"]["output"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(output[0]["type"], "reasoning");
    assert!(output[0]["id"].as_str().unwrap().starts_with("rs_"));
    assert_eq!(output[0]["summary"][0]["text"], "think think");
    assert_eq!(output[1]["type"], "function_call");
    assert!(output[1]["id"].as_str().unwrap().starts_with("fc_"));
    assert!(output[1]["call_id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(output[1]["name"], "lookup");
    assert_eq!(done["item_id"], output[1]["id"]);
    assert_eq!(done["output_index"], 1);
}

#[tokio::test]
async fn models_list_and_get() {
    let mock = Mock::start().await;
    let list = mock.get("/v1/models").await.json();
    assert_eq!(list["object"], "list");
    assert!(
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["object"] == "model")
    );
    let model = mock.get("/v1/models/gpt-anything").await.json();
    assert_eq!(model["id"], "gpt-anything");
    assert_eq!(model["object"], "model");
}
