//! The gateway asks OpenAI streams for usage the client did not ask for, and hides the extra
//! usage chunk from the client: request rewriting and the inspector's hold-back, at every split.

use warden_protocol::{Framing, StreamInspector, classify, request_stream_usage};

#[test]
fn include_usage_is_added_only_when_missing() {
    let body = br#"{"model":"gpt-4o-mini","stream":true,"messages":[]}"#;
    let out = request_stream_usage(body).expect("a stream without stream_options gets it");
    assert_eq!(
        out,
        br#"{"stream_options":{"include_usage":true},"model":"gpt-4o-mini","stream":true,"messages":[]}"#
    );
    serde_json::from_slice::<serde_json::Value>(&out).unwrap();

    let asked = br#"{"stream":true,"stream_options":{"include_usage":true}}"#;
    assert_eq!(request_stream_usage(asked), None);
    let other = br#"{"stream":true,"stream_options":{"include_obfuscation":false}}"#;
    let v: serde_json::Value =
        serde_json::from_slice(&request_stream_usage(other).unwrap()).unwrap();
    assert_eq!(v["stream_options"]["include_usage"], true);
    assert_eq!(v["stream_options"]["include_obfuscation"], false);
    assert_eq!(request_stream_usage(br#"{"stream":false}"#), None);
    assert_eq!(request_stream_usage(br#"{"model":"x"}"#), None);
    assert_eq!(request_stream_usage(b"not json"), None);
}

const STREAM: &str = concat!(
    "data: {\"id\":\"c1\",\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\n",
    "data: {\"id\":\"c1\",\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
    "data: {\"id\":\"c1\",\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":2,\"total_tokens\":9}}\n\n",
    "data: [DONE]\n\n",
);

/// What a client would see: everything released, minus the hidden bytes, plus the tail.
fn client_view(
    split: usize,
    hide: bool,
) -> (String, Option<u64>, warden_protocol::ExchangeResponse) {
    let route = classify("POST", "/v1/chat/completions").unwrap();
    let mut s = StreamInspector::new(&route, Framing::Sse);
    if hide {
        s.hide_usage_chunk();
    }
    let bytes = STREAM.as_bytes();
    let mut released = 0u64;
    let mut out = Vec::new();
    for part in [&bytes[..split], &bytes[split..]] {
        s.push(part);
        let upto = s.release().upto;
        out.extend_from_slice(&bytes[released as usize..upto as usize]);
        released = upto;
    }
    let hidden = s.hidden_len();
    let skip = hidden.unwrap_or(0);
    out.extend_from_slice(&bytes[(released + skip) as usize..]);
    (String::from_utf8(out).unwrap(), hidden, s.finish())
}

#[test]
fn the_usage_chunk_is_hidden_at_every_split_and_still_counted() {
    for split in 0..=STREAM.len() {
        let (seen, hidden, resp) = client_view(split, true);
        assert!(!seen.contains("prompt_tokens"), "split {split}: {seen}");
        assert!(seen.ends_with("data: [DONE]\n\n"), "split {split}");
        assert!(seen.contains("\"content\":\"Hi\""));
        assert!(hidden.is_some());
        assert_eq!(
            resp.usage.input_tokens,
            Some(7),
            "usage still reaches the record"
        );
        assert_eq!(resp.usage.output_tokens, Some(2));
        assert_eq!(resp.output_text, "Hi");
    }
}

#[test]
fn without_hiding_the_client_sees_everything() {
    let (seen, hidden, _) = client_view(40, false);
    assert_eq!(seen, STREAM);
    assert_eq!(hidden, None);
}

#[test]
fn a_usage_chunk_that_is_not_last_is_shown() {
    let route = classify("POST", "/v1/chat/completions").unwrap();
    let mut s = StreamInspector::new(&route, Framing::Sse);
    s.hide_usage_chunk();
    let body = concat!(
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"late\"}}]}\n\n",
        "data: [DONE]\n\n",
    );
    s.push(body.as_bytes());
    assert_eq!(s.hidden_len(), None);
    let terminal_at = body.find("data: [DONE]").unwrap() as u64;
    assert_eq!(s.release().upto, terminal_at);
}
