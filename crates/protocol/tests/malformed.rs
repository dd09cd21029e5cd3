//! Garbage, truncation and non-UTF-8 input: every entry point must return an error or a partial
//! result, never panic, and count what it skipped.

mod common;

use common::{Lcg, fixture, route};
use warden_protocol::{
    Framing, ProtocolError, Route, StreamInspector, parse_request, parse_response,
};

const FRAMINGS: [Framing; 4] = [
    Framing::Json,
    Framing::Sse,
    Framing::Ndjson,
    Framing::JsonArrayStream,
];

fn routes() -> Vec<Route> {
    [
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/completions"),
        ("POST", "/v1/embeddings"),
        ("POST", "/v1/responses"),
        ("GET", "/v1/models"),
        ("POST", "/v1/messages"),
        ("POST", "/v1/messages/count_tokens"),
        ("POST", "/v1beta/models/gemini-2.5-flash:generateContent"),
        (
            "POST",
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
        ),
        ("POST", "/v1beta/models/gemini-2.5-flash:countTokens"),
        ("POST", "/v1beta/models/gemini-embedding-001:embedContent"),
        ("POST", "/api/chat"),
        ("POST", "/api/generate"),
        ("POST", "/api/embed"),
        ("GET", "/api/tags"),
    ]
    .iter()
    .map(|(m, p)| route(m, p))
    .collect()
}

/// Inputs chosen to hit parser edges: wrong JSON types everywhere, invalid UTF-8, lone
/// surrogates, deep nesting, half events.
fn nasty_inputs() -> Vec<Vec<u8>> {
    let mut inputs: Vec<Vec<u8>> = [
        &b""[..],
        b"\xff\xfe\xfd",
        b"data: \xff\xfe{\"choices\":[]}\n\n",
        b"{\"choices\":[{\"delta\":{\"content\":\"\\ud800\"}}]}",
        b"data: {\"choices\": 5, \"usage\": \"x\", \"id\": 7}\n\n",
        b"data: {\"type\":\"content_block_delta\",\"index\":18446744073709551615,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":1}}\n\n",
        b"data: {\"type\":\"response.output_text.delta\",\"output_index\":\"x\",\"delta\":[]}\n\n",
        b"data: {\"candidates\":[{\"content\":{\"parts\":\"no\"},\"index\":-1}]}\n\n",
        b"{\"message\":{\"tool_calls\":[{\"function\":null},7]},\"done\":\"yes\"}\n",
        b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]",
        b"]]]]]]}}}}}}",
        b"[{\"a\":\"\\",
        b"event: message_stop\n",
        b"data: [DONE]",
        b"\r\r\r\n\n\n:::\ndata\ndata:\nevent\n\n",
        b"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":5}]}]}",
        b"{\"contents\":[{\"parts\":[{\"functionCall\":7,\"functionResponse\":[]}]}]}",
        b"{\"input\":[{\"type\":\"reasoning\",\"summary\":[{\"text\":1}]}]}",
    ]
    .iter()
    .map(|b| b.to_vec())
    .collect();
    let mut deep = vec![b'['; 100_000];
    deep.extend(vec![b']'; 100_000]);
    inputs.push(deep);
    let mut rng = Lcg(7);
    for _ in 0..64 {
        let len = rng.below(300) as usize;
        // Biased toward structural bytes so random input reaches deep parser states.
        let alphabet = b"{}[]\":,\\ \n\r data: event: [DONE] 0123 true null \xff\xc3";
        inputs.push(
            (0..len)
                .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
                .collect(),
        );
    }
    inputs
}

#[test]
fn nothing_panics_on_garbage() {
    for route in routes() {
        for input in nasty_inputs() {
            let _ = parse_request(&route, &input);
            let _ = parse_response(&route, &input);
            for framing in FRAMINGS {
                let mut inspector = StreamInspector::new(&route, framing);
                for chunk in input.chunks(7) {
                    inspector.push(chunk);
                }
                inspector.push(&input);
                let _ = inspector.malformed_events();
                let _ = inspector.finish();
            }
        }
    }
}

#[test]
fn truncated_fixtures_never_panic_and_are_counted() {
    let cases = [
        (
            "POST",
            "/v1/chat/completions",
            "openai/chat_stream_tools.sse",
            Framing::Sse,
        ),
        (
            "POST",
            "/v1/messages",
            "anthropic/stream_multi.sse",
            Framing::Sse,
        ),
        (
            "POST",
            "/v1beta/models/g:streamGenerateContent",
            "gemini/stream_text.array.json",
            Framing::JsonArrayStream,
        ),
        (
            "POST",
            "/api/chat",
            "ollama/chat_stream.ndjson",
            Framing::Ndjson,
        ),
    ];
    for (method, path, file, framing) in cases {
        let route = route(method, path);
        let body = fixture(file);
        let mut rng = Lcg(1);
        for _ in 0..200 {
            let cut = rng.below(body.len() as u64) as usize;
            // A truncated event mid-stream, then the rest of the stream.
            let mut inspector = StreamInspector::new(&route, framing);
            inspector.push(&body[..cut]);
            let _ = inspector.finish();
            let _ = parse_response(&route, &body[..cut]);
        }
    }
}

#[test]
fn malformed_events_are_counted_and_skipped() {
    let route = route("POST", "/v1/chat/completions");
    let mut inspector = StreamInspector::new(&route, Framing::Sse);
    let progress = inspector.push(
        b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\ndata: {broken\n\ndata: \xff\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"b\"}}]}\n\n",
    );
    assert_eq!(progress.events, 2);
    assert_eq!(inspector.malformed_events(), 2);
    assert_eq!(inspector.finish().output_text, "ab");

    let ollama = common::route("POST", "/api/chat");
    let mut inspector = StreamInspector::new(&ollama, Framing::Ndjson);
    inspector.push(b"{\"message\":{\"content\":\"x\"},\"done\":false}\nnot json\n{\"message\":{\"content\":\"y\"},\"done\":true}\n");
    assert_eq!(inspector.malformed_events(), 1);
    assert!(inspector.saw_terminal());
    assert_eq!(inspector.finish().output_text, "xy");
}

#[test]
fn utf8_split_inside_a_character() {
    let route = route("POST", "/v1/messages");
    let body = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"清水寺 ☀️\"}}\n\n".as_bytes();
    let cut = body.iter().position(|&b| b >= 0x80).unwrap() + 1;
    let mut inspector = StreamInspector::new(&route, Framing::Sse);
    inspector.push(&body[..cut]);
    inspector.push(&body[cut..]);
    assert_eq!(inspector.malformed_events(), 0);
    assert_eq!(inspector.finish().output_text, "清水寺 ☀️");
}

#[test]
fn non_utf8_request_is_invalid_json() {
    let route = route("POST", "/v1/chat/completions");
    let err = parse_request(
        &route,
        b"{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\"}]}",
    )
    .unwrap_err();
    assert!(matches!(err, ProtocolError::InvalidJson(_)));
    assert!(
        err.to_string()
            .starts_with("request body is not valid JSON")
    );
    let err = parse_response(&route, b"<html>502 Bad Gateway</html>").unwrap_err();
    assert!(matches!(err, ProtocolError::InvalidJson(_)));
}

#[test]
fn json_framing_buffers_and_parses_at_the_end() {
    let route = route("POST", "/v1/chat/completions");
    let body = fixture("openai/chat_response_text.json");
    let mut inspector = StreamInspector::new(&route, Framing::Json);
    for chunk in body.chunks(5) {
        assert_eq!(inspector.push(chunk).events, 0);
    }
    assert_eq!(inspector.finish(), parse_response(&route, &body).unwrap());
}

#[test]
fn events_after_the_terminal_are_still_read() {
    // Nothing should follow `[DONE]`, but if a server sends more, it is decoded, not lost, and
    // the terminal is reported once.
    let route = route("POST", "/v1/chat/completions");
    let mut inspector = StreamInspector::new(&route, Framing::Sse);
    let first = inspector.push(b"data: [DONE]\n\n");
    assert_eq!(first.terminal_at, Some(0));
    let second = inspector.push(
        b"data: [DONE]\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"late\"}}]}\n\n",
    );
    assert_eq!(second.terminal_at, None);
    assert_eq!(inspector.finish().output_text, "late");
}

#[test]
fn sse_comment_before_terminal_is_part_of_the_event() {
    // The gateway inserts `: warden-receipt` comments right before the terminal event; a
    // comment in the same block counts as the event's first line.
    let route = route("POST", "/v1/messages");
    let mut inspector = StreamInspector::new(&route, Framing::Sse);
    let body = b"event: ping\ndata: {\"type\":\"ping\"}\n\n: warden-receipt abc\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    let progress = inspector.push(body);
    assert_eq!(progress.terminal_at, Some(35));
    assert_eq!(&body[35..37], b": ");
}
