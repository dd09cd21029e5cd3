//! Every stream fixture, replayed at every split point, byte by byte, in random chunkings, and
//! with LF, CRLF and CR line endings: the reassembled response, the event counts and the terminal
//! offset must not depend on how the bytes were cut. Field-by-field expectations live in the
//! provider test files; this file proves the decoding is split-proof.

mod common;

use common::{fixture, fixtures_dir, line_ending_variants, replay, replay_with_step, route, run};
use warden_protocol::{Framing, parse_response};

/// Where a fixture's terminal event starts.
#[derive(Debug, Clone, Copy)]
enum Terminal {
    /// At the last occurrence of this text.
    LastOf(&'static str),
    /// The stream has no terminal event (cut short by an error).
    Absent,
}

struct Case {
    file: &'static str,
    path: &'static str,
    framing: Framing,
    terminal: Terminal,
}

const CHAT: &str = "/v1/chat/completions";
const GEMINI_STREAM: &str = "/v1beta/models/gemini-2.5-flash:streamGenerateContent";

macro_rules! cases {
    ($($name:ident: $file:literal, $path:expr, $framing:ident, $terminal:expr;)*) => {
        const CASES: &[Case] = &[$(Case {
            file: $file,
            path: $path,
            framing: Framing::$framing,
            terminal: $terminal,
        }),*];
        $(
            #[test]
            fn $name() {
                replay_case(CASES.iter().find(|c| c.file == $file).unwrap());
            }
        )*
    };
}

cases! {
    openai_chat_text: "openai/chat_stream_text.sse", CHAT, Sse, Terminal::LastOf("data: [DONE]");
    openai_chat_tools: "openai/chat_stream_tools.sse", CHAT, Sse, Terminal::LastOf("data: [DONE]");
    openai_chat_text_tool: "openai/chat_stream_text_tool.sse", CHAT, Sse, Terminal::LastOf("data: [DONE]");
    openai_chat_reasoning: "openai/chat_stream_reasoning.sse", CHAT, Sse, Terminal::LastOf("data: [DONE]");
    openai_completions: "openai/completions_stream.sse", "/v1/completions", Sse, Terminal::LastOf("data: [DONE]");
    openai_responses: "openai/responses_stream.sse", "/v1/responses", Sse, Terminal::LastOf("event: response.completed");
    openai_responses_tools: "openai/responses_stream_tools.sse", "/v1/responses", Sse, Terminal::LastOf("event: response.completed");
    openai_responses_failed: "openai/responses_stream_failed.sse", "/v1/responses", Sse, Terminal::LastOf("event: response.failed");
    anthropic_text: "anthropic/stream_text.sse", "/v1/messages", Sse, Terminal::LastOf("event: message_stop");
    anthropic_multi: "anthropic/stream_multi.sse", "/v1/messages", Sse, Terminal::LastOf("event: message_stop");
    anthropic_tool_use: "anthropic/stream_tool_use.sse", "/v1/messages", Sse, Terminal::LastOf("event: message_stop");
    anthropic_error: "anthropic/stream_error.sse", "/v1/messages", Sse, Terminal::Absent;
    gemini_text_sse: "gemini/stream_text.sse", GEMINI_STREAM, Sse, Terminal::LastOf("data: ");
    gemini_text_array: "gemini/stream_text.array.json", GEMINI_STREAM, JsonArrayStream, Terminal::LastOf("]");
    gemini_calls_sse: "gemini/stream_function_calls.sse", GEMINI_STREAM, Sse, Terminal::LastOf("data: ");
    gemini_calls_array: "gemini/stream_function_calls.array.json", GEMINI_STREAM, JsonArrayStream, Terminal::LastOf("]");
    ollama_chat: "ollama/chat_stream.ndjson", "/api/chat", Ndjson, Terminal::LastOf("{\"model\"");
    ollama_chat_tools: "ollama/chat_stream_tools.ndjson", "/api/chat", Ndjson, Terminal::LastOf("{\"model\"");
    ollama_generate: "ollama/generate_stream.ndjson", "/api/generate", Ndjson, Terminal::LastOf("{\"model\"");
    ollama_error: "ollama/chat_stream_error.ndjson", "/api/chat", Ndjson, Terminal::Absent;
}

fn expected_terminal(body: &[u8], terminal: Terminal) -> Option<u64> {
    match terminal {
        Terminal::Absent => None,
        Terminal::LastOf(marker) => {
            let at = body
                .windows(marker.len())
                .rposition(|w| w == marker.as_bytes())
                .expect("terminal marker present in fixture");
            Some(at as u64)
        }
    }
}

fn replay_case(case: &Case) {
    let route = route("POST", case.path);
    let original = fixture(case.file);
    let whole = replay(&route, case.framing, &original);
    assert_eq!(whole.malformed, 0, "fixtures are well-formed");
    assert!(whole.events > 0);
    assert_eq!(
        whole.terminal_at,
        expected_terminal(&original, case.terminal),
        "terminal offset"
    );
    for (name, variant) in line_ending_variants(&original, case.framing) {
        // Every split point for LF and CRLF; lone-CR endings are rarer on the wire and sampled.
        let step = if name == "CR" { 7 } else { 1 };
        let r = replay_with_step(&route, case.framing, &variant, step);
        assert_eq!(
            r.response, whole.response,
            "{name} line endings: response differs"
        );
        assert_eq!(r.events, whole.events, "{name} line endings: events differ");
        assert_eq!(r.malformed, 0, "{name} line endings: malformed events");
        assert_eq!(
            r.terminal_at,
            expected_terminal(&variant, case.terminal),
            "{name}: terminal offset"
        );
    }
    // A caller that buffered the whole stream gets the same response from `parse_response`.
    let buffered = parse_response(&route, &original).expect("a buffered stream body parses");
    assert_eq!(
        buffered, whole.response,
        "parse_response of the whole stream body"
    );
    // Cut short anywhere, the stream still decodes what it carried, without panicking, and never
    // claims a terminal event it has not completed.
    for cut in 0..original.len() {
        let partial = run(&route, case.framing, &[&original[..cut]]);
        if let Some(t) = whole.terminal_at
            && (cut as u64) <= t
        {
            assert!(
                !partial.terminal_seen,
                "terminal seen in a prefix of {cut} bytes"
            );
        }
    }
}

/// A stream fixture that no case replays would silently escape the split-point tests.
#[test]
fn every_stream_fixture_is_replayed() {
    let mut missing = Vec::new();
    for provider in ["openai", "anthropic", "gemini", "ollama"] {
        let dir = fixtures_dir().join(provider);
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let is_stream = name.ends_with(".sse")
                || name.ends_with(".ndjson")
                || name.ends_with(".array.json");
            let file = format!("{provider}/{name}");
            if is_stream && !CASES.iter().any(|c| c.file == file) {
                missing.push(file);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "stream fixtures without a replay case: {missing:?}"
    );
}
