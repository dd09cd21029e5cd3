//! How response bodies are framed on the wire, and the splitters that cut a byte stream into
//! events: server-sent events, newline-delimited JSON, and a JSON array streamed element by
//! element.
//!
//! This module owns framing only: it never looks inside an event's payload (that is the provider
//! modules' job) and never buffers more than the event in progress. Every splitter is fed chunks
//! split at arbitrary bytes and reports each event once, with the absolute stream offset where it
//! starts, so the caller can tell where a terminal event begins inside the chunk that completes it.

use memchr::{memchr, memchr2};

use crate::route::{Operation, Provider, Route};

/// How a response body is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One JSON document (buffered responses, error bodies).
    Json,
    /// Server-sent events (`text/event-stream`): OpenAI, Anthropic, Gemini with `?alt=sse`.
    Sse,
    /// One JSON object per line (`application/x-ndjson`): Ollama.
    Ndjson,
    /// One JSON array whose elements arrive incrementally: Gemini `streamGenerateContent` without
    /// `?alt=sse`.
    JsonArrayStream,
}

impl Framing {
    /// Picks the framing from the upstream response content type and the route.
    ///
    /// `text/event-stream` is SSE and `application/x-ndjson` (or `application/ndjson`) is NDJSON
    /// whatever the route. A JSON content type means a streamed JSON array on Gemini's
    /// `streamGenerateContent`, and NDJSON on Ollama chat/generate when the client asked for a
    /// stream (Ollama labels its streams `application/x-ndjson`, but proxies in front of it do not
    /// always keep that). Everything else is one JSON document.
    ///
    /// ```
    /// use warden_protocol::{classify, Framing};
    /// let route = classify("POST", "/v1beta/models/gemini-2.5-flash:streamGenerateContent").unwrap();
    /// assert_eq!(Framing::detect(&route, Some("application/json; charset=UTF-8"), true), Framing::JsonArrayStream);
    /// assert_eq!(Framing::detect(&route, Some("text/event-stream"), true), Framing::Sse);
    /// ```
    pub fn detect(route: &Route, content_type: Option<&str>, request_stream: bool) -> Framing {
        let media = content_type.map(|ct| ct.split(';').next().unwrap_or_default().trim());
        let is = |name: &str| media.is_some_and(|m| m.eq_ignore_ascii_case(name));
        if is("text/event-stream") {
            return Framing::Sse;
        }
        if is("application/x-ndjson") || is("application/ndjson") || is("application/jsonl") {
            return Framing::Ndjson;
        }
        let json_or_unlabelled = media.is_none() || is("application/json") || is("text/json");
        match (route.provider, route.operation) {
            (Provider::Gemini, Operation::StreamGenerateContent) if json_or_unlabelled => {
                Framing::JsonArrayStream
            }
            (Provider::Ollama, Operation::OllamaChat | Operation::OllamaGenerate)
                if json_or_unlabelled && request_stream =>
            {
                Framing::Ndjson
            }
            _ => Framing::Json,
        }
    }

    /// Whether the body is a stream (everything but [`Framing::Json`]).
    pub fn is_stream(self) -> bool {
        self != Framing::Json
    }
}

/// Largest event (or line) a splitter buffers; bigger ones are dropped and counted as malformed,
/// so a stream that never sends a delimiter cannot grow memory without bound.
pub(crate) const MAX_EVENT_BYTES: usize = 32 << 20;

/// One thing a splitter found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame<'a> {
    /// A complete event.
    Event {
        /// Absolute stream offset of the event's first byte (SSE: its first line; NDJSON: the line;
        /// JSON array: the element's opening brace).
        start: u64,
        /// SSE `event:` field, when set.
        name: Option<&'a str>,
        /// SSE `data:` lines joined with `\n`, the NDJSON line, or the array element's JSON text.
        data: &'a [u8],
    },
    /// The closing `]` of a JSON-array stream, at this absolute offset.
    ArrayEnd {
        /// Absolute stream offset of the `]`.
        at: u64,
    },
    /// Bytes that cannot form an event (oversized event, stray bytes in a JSON-array stream).
    Malformed,
}

/// One splitter per framing, behind a common push/finish.
#[derive(Debug)]
pub(crate) enum Splitter {
    /// Server-sent events.
    Sse(SseSplitter),
    /// Newline-delimited JSON.
    Ndjson(LineSplitter),
    /// A streamed JSON array.
    Array(ArraySplitter),
}

impl Splitter {
    /// A splitter for a stream framing; `None` for [`Framing::Json`], which is not split.
    pub(crate) fn new(framing: Framing) -> Option<Splitter> {
        match framing {
            Framing::Json => None,
            Framing::Sse => Some(Splitter::Sse(SseSplitter::default())),
            Framing::Ndjson => Some(Splitter::Ndjson(LineSplitter::default())),
            Framing::JsonArrayStream => Some(Splitter::Array(ArraySplitter::default())),
        }
    }

    /// Splits the next chunk, calling `sink` for every frame it completes.
    pub(crate) fn push(&mut self, chunk: &[u8], sink: &mut dyn FnMut(Frame<'_>)) {
        match self {
            Splitter::Sse(s) => s.push(chunk, sink),
            Splitter::Ndjson(s) => s.push(chunk, sink),
            Splitter::Array(s) => s.push(chunk, sink),
        }
    }

    /// Absolute offset where the event still being assembled starts, if one is open. Every byte
    /// before it belongs to a complete event or to separators between events.
    pub(crate) fn open_event_start(&self) -> Option<u64> {
        match self {
            Splitter::Sse(s) => match (s.block.start, s.lines.open_line_start()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            Splitter::Ndjson(s) => s.lines.open_line_start(),
            Splitter::Array(s) => match s.state {
                ArrayState::InElement | ArrayState::InBare => Some(s.elem_start),
                _ => None,
            },
        }
    }

    /// Flushes a trailing event that the stream did not terminate.
    pub(crate) fn finish(&mut self, sink: &mut dyn FnMut(Frame<'_>)) {
        match self {
            Splitter::Sse(s) => s.finish(sink),
            Splitter::Ndjson(s) => s.finish(sink),
            Splitter::Array(s) => s.finish(sink),
        }
    }
}

/// Appends to a bounded buffer; returns false (and leaves the buffer alone) past the bound.
fn append_bounded(buf: &mut Vec<u8>, bytes: &[u8]) -> bool {
    if buf.len() + bytes.len() > MAX_EVENT_BYTES {
        return false;
    }
    buf.extend_from_slice(bytes);
    true
}

/// Cuts a byte stream into lines ending in CR, LF or CRLF, carrying a partial line across chunks.
/// Shared by the SSE splitter (all three endings, per WHATWG) and the NDJSON one (LF and CRLF; a
/// lone CR never ends an NDJSON line).
#[derive(Debug, Default)]
struct Lines {
    /// Absolute offset of the next byte to be pushed.
    pos: u64,
    /// The partial line carried over from earlier chunks.
    partial: Vec<u8>,
    /// Whether `partial` holds a started line (it may be empty only if no byte came yet).
    pending: bool,
    /// Absolute offset of the partial line's first byte.
    partial_start: u64,
    /// The partial line outgrew [`MAX_EVENT_BYTES`]; it is dropped when it ends.
    overflow: bool,
    /// The previous chunk ended in CR, so a leading LF of this one finishes that CRLF.
    skip_lf: bool,
}

/// A complete line handed to a splitter: its bytes (without the ending), absolute start, and
/// whether it overflowed (its bytes are then empty and must be treated as malformed).
struct Line<'a> {
    bytes: &'a [u8],
    start: u64,
    overflow: bool,
}

impl Lines {
    /// Absolute start of a line begun but not yet ended.
    fn open_line_start(&self) -> Option<u64> {
        self.pending.then_some(self.partial_start)
    }

    fn push(&mut self, chunk: &[u8], cr_ends_line: bool, on_line: &mut dyn FnMut(Line<'_>)) {
        let base = self.pos;
        self.pos += chunk.len() as u64;
        let mut i = 0;
        if self.skip_lf && !chunk.is_empty() {
            self.skip_lf = false;
            if chunk[0] == b'\n' {
                i = 1;
            }
        }
        while i < chunk.len() {
            let rest = &chunk[i..];
            let found = if cr_ends_line {
                memchr2(b'\r', b'\n', rest)
            } else {
                memchr(b'\n', rest)
            };
            let Some(off) = found else {
                if !self.pending {
                    self.pending = true;
                    self.partial_start = base + i as u64;
                }
                if !self.overflow && !append_bounded(&mut self.partial, rest) {
                    self.overflow = true;
                    self.partial = Vec::new();
                }
                return;
            };
            let end = i + off;
            let ending = chunk[end];
            if self.pending {
                if !self.overflow && !append_bounded(&mut self.partial, &chunk[i..end]) {
                    self.overflow = true;
                    self.partial = Vec::new();
                }
                let line = std::mem::take(&mut self.partial);
                on_line(Line {
                    bytes: &line,
                    start: self.partial_start,
                    overflow: self.overflow,
                });
                // Keep the allocation for the next partial line.
                self.partial = line;
                self.partial.clear();
                self.pending = false;
                self.overflow = false;
            } else {
                on_line(Line {
                    bytes: &chunk[i..end],
                    start: base + i as u64,
                    overflow: false,
                });
            }
            i = end + 1;
            if ending == b'\r' {
                match chunk.get(i) {
                    Some(b'\n') => i += 1,
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
        }
    }

    /// Hands over a final line the stream did not terminate.
    fn finish(&mut self, on_line: &mut dyn FnMut(Line<'_>)) {
        if self.pending {
            let line = std::mem::take(&mut self.partial);
            on_line(Line {
                bytes: &line,
                start: self.partial_start,
                overflow: self.overflow,
            });
            self.pending = false;
            self.overflow = false;
        }
    }
}

/// Server-sent events per the WHATWG HTML "event stream interpretation" rules: lines end in CR,
/// LF or CRLF; an empty line dispatches the event; `data:` lines are joined with `\n`; lines
/// starting with `:` are comments; `field:value` loses one leading space of the value; a field
/// with no colon has an empty value; an event with no `data:` line is not dispatched; a leading
/// UTF-8 BOM is ignored. Unlike a browser, a trailing event without its closing blank line is
/// still delivered by [`SseSplitter::finish`], so a truncated stream loses nothing it carried.
#[derive(Debug, Default)]
pub(crate) struct SseSplitter {
    lines: Lines,
    block: SseBlock,
    /// At least one line has been seen (the BOM may only precede the first).
    started: bool,
}

/// The event being assembled.
#[derive(Debug, Default)]
struct SseBlock {
    /// Absolute offset of the block's first line (comments included).
    start: Option<u64>,
    event: String,
    data: Vec<u8>,
    data_lines: usize,
    /// Part of the event was dropped for size; it is reported as malformed.
    overflow: bool,
}

impl SseSplitter {
    pub(crate) fn push(&mut self, chunk: &[u8], sink: &mut dyn FnMut(Frame<'_>)) {
        let Self {
            lines,
            block,
            started,
        } = self;
        lines.push(chunk, true, &mut |line| {
            Self::line(block, started, line, sink)
        });
    }

    pub(crate) fn finish(&mut self, sink: &mut dyn FnMut(Frame<'_>)) {
        let Self {
            lines,
            block,
            started,
        } = self;
        lines.finish(&mut |line| Self::line(block, started, line, sink));
        Self::dispatch(block, sink);
    }

    fn line(
        block: &mut SseBlock,
        started: &mut bool,
        line: Line<'_>,
        sink: &mut dyn FnMut(Frame<'_>),
    ) {
        let mut bytes = line.bytes;
        if !*started {
            *started = true;
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        }
        if line.overflow {
            block.start.get_or_insert(line.start);
            block.overflow = true;
            return;
        }
        if bytes.is_empty() {
            Self::dispatch(block, sink);
            return;
        }
        block.start.get_or_insert(line.start);
        if bytes[0] == b':' {
            return;
        }
        let (name, value) = match memchr(b':', bytes) {
            Some(c) => {
                let v = &bytes[c + 1..];
                (&bytes[..c], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (bytes, &[][..]),
        };
        match name {
            b"data" => {
                let sep: &[u8] = if block.data_lines > 0 { b"\n" } else { b"" };
                if block.data.len() + sep.len() + value.len() > MAX_EVENT_BYTES {
                    block.overflow = true;
                    block.data = Vec::new();
                } else if !block.overflow {
                    block.data.extend_from_slice(sep);
                    block.data.extend_from_slice(value);
                }
                block.data_lines += 1;
            }
            b"event" => {
                block.event.clear();
                block.event.push_str(&String::from_utf8_lossy(value));
            }
            // `id` and `retry` steer browser reconnection; nothing here reconnects.
            _ => {}
        }
    }

    fn dispatch(block: &mut SseBlock, sink: &mut dyn FnMut(Frame<'_>)) {
        if block.overflow {
            sink(Frame::Malformed);
        } else if block.data_lines > 0 {
            sink(Frame::Event {
                start: block.start.unwrap_or(0),
                name: (!block.event.is_empty()).then_some(block.event.as_str()),
                data: &block.data,
            });
        }
        block.start = None;
        block.event.clear();
        block.data.clear();
        block.data_lines = 0;
        block.overflow = false;
    }
}

/// Newline-delimited JSON: one event per LF- or CRLF-terminated line; blank lines are skipped.
#[derive(Debug, Default)]
pub(crate) struct LineSplitter {
    lines: Lines,
}

impl LineSplitter {
    pub(crate) fn push(&mut self, chunk: &[u8], sink: &mut dyn FnMut(Frame<'_>)) {
        self.lines
            .push(chunk, false, &mut |line| Self::line(line, sink));
    }

    pub(crate) fn finish(&mut self, sink: &mut dyn FnMut(Frame<'_>)) {
        self.lines.finish(&mut |line| Self::line(line, sink));
    }

    fn line(line: Line<'_>, sink: &mut dyn FnMut(Frame<'_>)) {
        if line.overflow {
            sink(Frame::Malformed);
            return;
        }
        let bytes = line.bytes.strip_suffix(b"\r").unwrap_or(line.bytes);
        if bytes.trim_ascii().is_empty() {
            return;
        }
        sink(Frame::Event {
            start: line.start,
            name: None,
            data: bytes,
        });
    }
}

/// A JSON array streamed incrementally (`[{...}\n,\r\n{...}\n]`): each element is delivered as
/// soon as its closing brace arrives, by tracking string, escape and nesting state across chunks
/// rather than re-scanning the buffer. A bare top-level object (an error body sent instead of
/// the array) is delivered as an element too.
#[derive(Debug, Default)]
pub(crate) struct ArraySplitter {
    /// Absolute offset of the next byte to be pushed.
    pos: u64,
    state: ArrayState,
    /// Nesting depth inside the current element.
    depth: u32,
    in_string: bool,
    escape: bool,
    /// The current element's bytes from earlier chunks.
    elem: Vec<u8>,
    elem_start: u64,
    overflow: bool,
    /// Inside a run of stray bytes already reported as malformed.
    in_garbage: bool,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ArrayState {
    /// Before the opening `[` (or between bare top-level objects).
    #[default]
    Before,
    /// Inside the array, between elements.
    Between,
    /// Inside an element of the array.
    InElement,
    /// Inside a bare top-level object.
    InBare,
    /// After the closing `]`.
    Closed,
}

impl ArraySplitter {
    pub(crate) fn push(&mut self, chunk: &[u8], sink: &mut dyn FnMut(Frame<'_>)) {
        let base = self.pos;
        self.pos += chunk.len() as u64;
        // Start (within this chunk) of the element bytes not yet copied into `elem`.
        let mut from: Option<usize> = match self.state {
            ArrayState::InElement | ArrayState::InBare => Some(0),
            _ => None,
        };
        let mut i = 0;
        while i < chunk.len() {
            let in_elem = matches!(self.state, ArrayState::InElement | ArrayState::InBare);
            if in_elem && self.in_string {
                if self.escape {
                    self.escape = false;
                    i += 1;
                    continue;
                }
                match memchr2(b'"', b'\\', &chunk[i..]) {
                    Some(off) => {
                        if chunk[i + off] == b'\\' {
                            self.escape = true;
                        } else {
                            self.in_string = false;
                        }
                        i += off + 1;
                    }
                    None => i = chunk.len(),
                }
                continue;
            }
            let c = chunk[i];
            match self.state {
                ArrayState::InElement | ArrayState::InBare => match c {
                    b'"' => self.in_string = true,
                    b'{' | b'[' => self.depth += 1,
                    b'}' | b']' => {
                        self.depth -= 1;
                        if self.depth == 0 {
                            let seg = &chunk[from.unwrap_or(0)..=i];
                            self.complete(seg, sink);
                            from = None;
                            self.state = if self.state == ArrayState::InBare {
                                ArrayState::Before
                            } else {
                                ArrayState::Between
                            };
                        }
                    }
                    _ => {}
                },
                ArrayState::Before | ArrayState::Between | ArrayState::Closed => {
                    if c.is_ascii_whitespace() || (c == b',' && self.state == ArrayState::Between) {
                        self.in_garbage = false;
                    } else if c == b'[' && self.state == ArrayState::Before {
                        self.in_garbage = false;
                        self.state = ArrayState::Between;
                    } else if c == b'{' && self.state != ArrayState::Closed {
                        self.in_garbage = false;
                        self.state = if self.state == ArrayState::Before {
                            ArrayState::InBare
                        } else {
                            ArrayState::InElement
                        };
                        self.depth = 1;
                        self.elem_start = base + i as u64;
                        from = Some(i);
                    } else if c == b']' && self.state == ArrayState::Between {
                        self.in_garbage = false;
                        self.state = ArrayState::Closed;
                        sink(Frame::ArrayEnd {
                            at: base + i as u64,
                        });
                    } else if !self.in_garbage {
                        self.in_garbage = true;
                        sink(Frame::Malformed);
                    }
                }
            }
            i += 1;
        }
        if let Some(f) = from
            && !self.overflow
            && !append_bounded(&mut self.elem, &chunk[f..])
        {
            self.overflow = true;
            self.elem = Vec::new();
        }
    }

    /// Delivers the element ending with `tail` (its bytes in the current chunk).
    fn complete(&mut self, tail: &[u8], sink: &mut dyn FnMut(Frame<'_>)) {
        if self.overflow {
            sink(Frame::Malformed);
        } else if self.elem.is_empty() {
            sink(Frame::Event {
                start: self.elem_start,
                name: None,
                data: tail,
            });
        } else if append_bounded(&mut self.elem, tail) {
            sink(Frame::Event {
                start: self.elem_start,
                name: None,
                data: &self.elem,
            });
        } else {
            sink(Frame::Malformed);
        }
        self.elem.clear();
        self.overflow = false;
        self.in_string = false;
        self.escape = false;
    }

    pub(crate) fn finish(&mut self, sink: &mut dyn FnMut(Frame<'_>)) {
        if matches!(self.state, ArrayState::InElement | ArrayState::InBare) {
            // A truncated element cannot be valid JSON.
            sink(Frame::Malformed);
            self.elem.clear();
            self.state = ArrayState::Closed;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Owned copy of a frame, for comparing.
    #[derive(Debug, PartialEq, Eq, Clone)]
    enum F {
        E(u64, Option<String>, String),
        End(u64),
        Bad,
    }

    fn run(framing: Framing, chunks: &[&[u8]]) -> Vec<F> {
        let mut s = Splitter::new(framing).unwrap();
        let mut out = Vec::new();
        let mut sink = |f: Frame<'_>| {
            out.push(match f {
                Frame::Event { start, name, data } => F::E(
                    start,
                    name.map(str::to_owned),
                    String::from_utf8_lossy(data).into_owned(),
                ),
                Frame::ArrayEnd { at } => F::End(at),
                Frame::Malformed => F::Bad,
            })
        };
        for c in chunks {
            s.push(c, &mut sink);
        }
        s.finish(&mut sink);
        out
    }

    /// Every two-way split gives the same frames as one push.
    fn split_invariant(framing: Framing, body: &[u8]) -> Vec<F> {
        let whole = run(framing, &[body]);
        for i in 0..=body.len() {
            assert_eq!(
                run(framing, &[&body[..i], &body[i..]]),
                whole,
                "split at {i}"
            );
        }
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(run(framing, &bytes), whole, "byte by byte");
        whole
    }

    #[test]
    fn sse_fields_comments_and_line_endings() {
        let body = b"\xEF\xBB\xBF: comment\r\nevent: a\r\ndata: x\rdata:y\n\n\n\ndata\n\nid: 1\nretry: 5\n\nevent: e\ndata: z\n\n";
        let frames = split_invariant(Framing::Sse, body);
        assert_eq!(
            frames,
            vec![
                F::E(0, Some("a".into()), "x\ny".into()),
                F::E(42, None, "".into()),
                F::E(64, Some("e".into()), "z".into()),
            ]
        );
    }

    #[test]
    fn sse_trailing_event_without_blank_line_is_flushed() {
        assert_eq!(
            run(Framing::Sse, &[b"data: 1\n\ndata: 2"]),
            vec![F::E(0, None, "1".into()), F::E(9, None, "2".into())]
        );
    }

    #[test]
    fn ndjson_lines() {
        let body = b"{\"a\":1}\r\n\n  \n{\"b\":\"\xC3\xA9\"}\n{\"c\":3}";
        let frames = split_invariant(Framing::Ndjson, body);
        assert_eq!(
            frames,
            vec![
                F::E(0, None, "{\"a\":1}".into()),
                F::E(13, None, "{\"b\":\"é\"}".into()),
                F::E(24, None, "{\"c\":3}".into()),
            ]
        );
    }

    #[test]
    fn json_array_elements() {
        let body = b"[{\"a\": \"}]\\\"{\"}\n,\r\n{\"b\": [1, {\"c\": 2}]}\n]";
        let frames = split_invariant(Framing::JsonArrayStream, body);
        assert_eq!(
            frames,
            vec![
                F::E(1, None, "{\"a\": \"}]\\\"{\"}".into()),
                F::E(19, None, "{\"b\": [1, {\"c\": 2}]}".into()),
                F::End(40),
            ]
        );
    }

    #[test]
    fn json_array_bare_object_garbage_and_truncation() {
        assert_eq!(
            run(Framing::JsonArrayStream, &[b"{\"error\": {}}"]),
            vec![F::E(0, None, "{\"error\": {}}".into())]
        );
        assert_eq!(
            run(Framing::JsonArrayStream, &[b"xx[1, {}]"]),
            vec![F::Bad, F::Bad, F::E(6, None, "{}".into()), F::End(8)]
        );
        assert_eq!(run(Framing::JsonArrayStream, &[b"[{\"a\": "]), vec![F::Bad]);
    }

    #[test]
    fn oversized_line_is_dropped() {
        let mut s = Splitter::new(Framing::Ndjson).unwrap();
        let big = vec![b'x'; 1 << 20];
        let mut bad = 0;
        let mut good = 0;
        let mut sink = |f: Frame<'_>| match f {
            Frame::Malformed => bad += 1,
            _ => good += 1,
        };
        for _ in 0..40 {
            s.push(&big, &mut sink);
        }
        s.push(b"\n{}\n", &mut sink);
        assert_eq!((bad, good), (1, 1));
    }

    #[test]
    fn detect() {
        let route = |m: &str, p: &str| crate::route::classify(m, p).unwrap();
        let chat = route("POST", "/v1/chat/completions");
        let ollama = route("POST", "/api/chat");
        assert_eq!(
            Framing::detect(&chat, Some("text/event-stream; charset=utf-8"), true),
            Framing::Sse
        );
        assert_eq!(
            Framing::detect(&chat, Some("application/json"), true),
            Framing::Json
        );
        assert_eq!(
            Framing::detect(&ollama, Some("application/x-ndjson"), false),
            Framing::Ndjson
        );
        assert_eq!(
            Framing::detect(&ollama, Some("application/json"), true),
            Framing::Ndjson
        );
        assert_eq!(
            Framing::detect(&ollama, Some("application/json"), false),
            Framing::Json
        );
        assert!(!Framing::Json.is_stream());
        assert!(Framing::JsonArrayStream.is_stream());
    }
}
