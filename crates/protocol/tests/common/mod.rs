//! Shared helpers for the fixture tests: loading fixtures, decoding streams, and the replay
//! harness that feeds a stream at every split point (like ripgrep's `SearcherTester`, one case
//! through every code path).

#![allow(dead_code)]

use std::path::PathBuf;

use warden_protocol::{
    Content, ExchangeResponse, Framing, Message, Route, StreamInspector, TextPart, ToolCall,
    classify,
};

/// The fixtures folder.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A fixture's bytes, by path relative to `tests/fixtures`.
pub fn fixture(rel: &str) -> Vec<u8> {
    let path = fixtures_dir().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A route by method and path.
pub fn route(method: &str, path: &str) -> Route {
    classify(method, path).unwrap_or_else(|| panic!("no route for {method} {path}"))
}

/// Decodes a whole stream in one push.
pub fn decode(route: &Route, framing: Framing, body: &[u8]) -> (ExchangeResponse, bool) {
    let mut inspector = StreamInspector::new(route, framing);
    inspector.push(body);
    let terminal = inspector.saw_terminal();
    (inspector.finish(), terminal)
}

/// `(text, path)` of a text part.
pub fn tp(part: &TextPart) -> (&str, &str) {
    (part.text.as_str(), part.path.as_str())
}

/// `(text, path)` of a `Content::Text`, panicking on another kind.
pub fn text(c: &Content) -> (&str, &str) {
    match c {
        Content::Text(t) => tp(t),
        other => panic!("expected text, got {other:?}"),
    }
}

/// `(text, path)` of a `Content::Reasoning`.
pub fn reasoning(c: &Content) -> (&str, &str) {
    match c {
        Content::Reasoning(t) => tp(t),
        other => panic!("expected reasoning, got {other:?}"),
    }
}

/// The tool call of a `Content::ToolCall`.
pub fn tool_call(c: &Content) -> &ToolCall {
    match c {
        Content::ToolCall(call) => call,
        other => panic!("expected a tool call, got {other:?}"),
    }
}

/// `(call_id, name, text, path)` of a `Content::ToolResult`.
pub fn tool_result(c: &Content) -> (Option<&str>, Option<&str>, &str, &str) {
    match c {
        Content::ToolResult {
            call_id,
            name,
            content,
        } => (
            call_id.as_deref(),
            name.as_deref(),
            content.text.as_str(),
            content.path.as_str(),
        ),
        other => panic!("expected a tool result, got {other:?}"),
    }
}

/// The media type of a `Content::Media`.
pub fn media(c: &Content) -> Option<&str> {
    match c {
        Content::Media { mime_type } => mime_type.as_deref(),
        other => panic!("expected media, got {other:?}"),
    }
}

/// Every content block of every message, for searching.
pub fn all_content(messages: &[Message]) -> impl Iterator<Item = &Content> {
    messages.iter().flat_map(|m| m.content.iter())
}

/// A tool call value for comparisons.
pub fn call(id: Option<&str>, name: &str, arguments: &str) -> ToolCall {
    ToolCall {
        id: id.map(str::to_owned),
        name: name.to_owned(),
        arguments: arguments.to_owned(),
    }
}

/// What one replay of a stream produced.
#[derive(Debug, PartialEq)]
pub struct Run {
    /// The reassembled response.
    pub response: ExchangeResponse,
    /// Absolute offset of the terminal event's start, as reported by `terminal_at`, or `None`
    /// when no terminal event was seen (or it began in an earlier chunk: see `terminal_seen`).
    pub terminal_at: Option<u64>,
    /// Whether `saw_terminal` turned true.
    pub terminal_seen: bool,
    /// Absolute offset of the chunk whose push turned `saw_terminal` true.
    pub terminal_chunk_start: Option<u64>,
    /// Events counted across all pushes.
    pub events: usize,
    /// Malformed events counted.
    pub malformed: usize,
}

/// Feeds `chunks` in order and checks the `Progress` contract on the way: `terminal_at` is set
/// only by the push that turns `saw_terminal` true, and only when the event starts in that chunk.
pub fn run(route: &Route, framing: Framing, chunks: &[&[u8]]) -> Run {
    let mut inspector = StreamInspector::new(route, framing);
    let mut offset = 0u64;
    let mut terminal_at = None;
    let mut events = 0;
    let mut terminal_chunk_start = None;
    let mut released = 0u64;
    for chunk in chunks {
        let before = inspector.saw_terminal();
        let progress = inspector.push(chunk);
        events += progress.events;
        let turned = !before && inspector.saw_terminal();
        if turned {
            terminal_chunk_start = Some(offset);
        }
        if let Some(at) = progress.terminal_at {
            assert!(
                turned,
                "terminal_at reported by a push that did not see the terminal"
            );
            assert!(
                at < chunk.len(),
                "terminal_at {at} outside a chunk of {}",
                chunk.len()
            );
            terminal_at = Some(offset + at as u64);
        }
        offset += chunk.len() as u64;
        check_release(route, framing, chunks, &inspector, offset, &mut released);
    }
    let terminal_seen = inspector.saw_terminal();
    if let (Some(at), true) = (terminal_at, terminal_seen) {
        assert_eq!(released, at, "release stops exactly at the terminal event");
    }
    let malformed = inspector.malformed_events();
    Run {
        response: inspector.finish(),
        terminal_at,
        terminal_seen,
        terminal_chunk_start,
        events,
        malformed,
    }
}

/// The `release()` contract after a push: monotonic, within what was pushed, and (checked on
/// short chunkings, where re-decoding the prefix is cheap) never cutting an event in two: the
/// released prefix, decoded alone, has no event left open.
fn check_release(
    route: &Route,
    framing: Framing,
    chunks: &[&[u8]],
    inspector: &StreamInspector,
    pushed: u64,
    released: &mut u64,
) {
    let r = inspector.release();
    assert!(
        r.upto >= *released,
        "release went backwards: {} < {released}",
        r.upto
    );
    assert!(
        r.upto <= pushed,
        "released {} of {pushed} bytes pushed",
        r.upto
    );
    assert_eq!(r.terminal, inspector.saw_terminal());
    *released = r.upto;
    if framing != Framing::Json && chunks.len() <= 3 {
        let body: Vec<u8> = chunks.concat();
        let prefix = &body[..r.upto as usize];
        let mut fresh = StreamInspector::new(route, framing);
        fresh.push(prefix);
        assert_eq!(
            fresh.release().upto,
            r.upto,
            "released prefix ends inside an event: {:?}",
            String::from_utf8_lossy(&prefix[prefix.len().saturating_sub(40)..])
        );
        assert!(
            !fresh.saw_terminal(),
            "released prefix holds the terminal event"
        );
    }
}

/// A deterministic pseudo-random generator (no dev-dependencies needed).
pub struct Lcg(pub u64);

impl Lcg {
    /// The next value below `n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Replays `body` at every two-way split point, byte by byte, and in random multi-chunk splits,
/// asserting each gives the same response, event counts and terminal detection as one push.
/// Where the terminal event is completed in a later chunk than it starts, the push that completes
/// it must report `terminal_at: None`. Returns the one-push run.
pub fn replay(route: &Route, framing: Framing, body: &[u8]) -> Run {
    replay_with_step(route, framing, body, 1)
}

/// [`replay`], trying only every `step`-th two-way split point (byte-by-byte and random
/// chunkings are always run), for variants that add little over a full replay.
pub fn replay_with_step(route: &Route, framing: Framing, body: &[u8], step: usize) -> Run {
    let whole = run(route, framing, &[body]);
    assert_eq!(
        whole.terminal_seen,
        whole.terminal_at.is_some(),
        "one push reports terminal_at"
    );
    let check = |chunks: &[&[u8]], what: &str| {
        let split = run(route, framing, chunks);
        assert_eq!(split.response, whole.response, "{what}: response differs");
        assert_eq!(split.events, whole.events, "{what}: event count differs");
        assert_eq!(
            split.malformed, whole.malformed,
            "{what}: malformed count differs"
        );
        assert_eq!(
            split.terminal_seen, whole.terminal_seen,
            "{what}: terminal detection differs"
        );
        // The push completing the terminal event reports where it starts, unless it started in
        // an earlier chunk.
        if let (Some(t), Some(chunk_start)) = (whole.terminal_at, split.terminal_chunk_start) {
            let want = (t >= chunk_start).then_some(t);
            assert_eq!(split.terminal_at, want, "{what}: terminal_at");
        }
    };
    for i in (0..=body.len()).step_by(step) {
        check(&[&body[..i], &body[i..]], &format!("split at {i}"));
    }
    let bytes: Vec<&[u8]> = body.chunks(1).collect();
    check(&bytes, "byte by byte");
    let mut rng = Lcg(body.len() as u64);
    for round in 0..16 {
        let mut chunks = Vec::new();
        let mut rest = body;
        while !rest.is_empty() {
            let n = (1 + rng.below(48) as usize).min(rest.len());
            chunks.push(&rest[..n]);
            rest = &rest[n..];
        }
        check(&chunks, &format!("random split round {round}"));
    }
    whole
}

/// Line-ending variants of a fixture: LF only, CRLF, and (for framings where a lone CR ends a
/// line or is whitespace) CR only.
pub fn line_ending_variants(body: &[u8], framing: Framing) -> Vec<(&'static str, Vec<u8>)> {
    let lf: Vec<u8> = {
        let mut out = Vec::with_capacity(body.len());
        let mut i = 0;
        while i < body.len() {
            if body[i] == b'\r' && body.get(i + 1) == Some(&b'\n') {
                i += 1;
                continue;
            }
            out.push(body[i]);
            i += 1;
        }
        out
    };
    let map = |to: &[u8]| -> Vec<u8> {
        lf.iter()
            .flat_map(|&b| if b == b'\n' { to.to_vec() } else { vec![b] })
            .collect()
    };
    let mut variants = vec![("CRLF", map(b"\r\n"))];
    if framing != Framing::Ndjson {
        variants.push(("CR", map(b"\r")));
    }
    variants.insert(0, ("LF", lf));
    // A variant identical to the fixture as stored adds nothing but test time.
    variants.retain(|(_, v)| v != body);
    variants
}
