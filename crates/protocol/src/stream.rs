//! Incremental decoding of streamed responses: framing (from [`crate::framing`]) feeding the
//! provider's event decoder (from the provider modules).
//!
//! This module owns offsets and terminal detection: it turns "the terminal event starts at stream
//! byte N" into an offset within the chunk being pushed. It owns no provider knowledge and does no
//! I/O; chunks are fed exactly as received and any split point gives the same result.

use crate::exchange::ExchangeResponse;
use crate::framing::{Frame, Framing, Splitter};
use crate::protocol::{Outcome, StreamDecoder, for_route};
use crate::route::Route;

/// What one [`StreamInspector::push`] decoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Complete events decoded from this chunk (malformed ones are not counted here).
    pub events: usize,
    /// Byte offset within this chunk where the terminal event starts, if it is completed by this
    /// chunk and starts in it. For SSE this is the start of the event's first line, for NDJSON the
    /// line start, for a JSON-array stream the closing `]`. When the terminal event began in an
    /// earlier chunk this is `None` (but [`StreamInspector::saw_terminal`] turns true).
    pub terminal_at: Option<usize>,
}

/// How much of a stream may be released to the client while the terminal event is held back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Release {
    /// Absolute stream offset up to which bytes may be released now: every byte before it
    /// belongs to a complete event (or separators) that is not the terminal event.
    pub upto: u64,
    /// Whether the terminal event has been seen; the bytes from `upto` on are then the terminal
    /// event and whatever followed it, to be released once the exchange is recorded.
    pub terminal: bool,
}

/// Incremental decoder for a streamed response.
///
/// Bytes may arrive split anywhere (inside an SSE line, an NDJSON line, a JSON string or a UTF-8
/// character); the reassembled [`ExchangeResponse`] is the same whatever the split points. Work per
/// chunk is proportional to the chunk: only the event in progress is buffered.
///
/// ```
/// use warden_protocol::{classify, Framing, StreamInspector};
/// let route = classify("POST", "/v1/chat/completions").unwrap();
/// let mut inspector = StreamInspector::new(&route, Framing::Sse);
/// let body = b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\ndata: [DONE]\n\n";
/// let first = inspector.push(&body[..30]);
/// assert_eq!(first.events, 0);
/// let rest = inspector.push(&body[30..]);
/// assert_eq!(rest.terminal_at, Some(body.len() - 30 - 14));
/// assert!(inspector.saw_terminal());
/// assert_eq!(inspector.finish().output_text, "Hi");
/// ```
pub struct StreamInspector {
    route: Route,
    framing: Framing,
    /// `None` for [`Framing::Json`], which is buffered whole and parsed at the end.
    splitter: Option<Splitter>,
    decoder: Box<dyn StreamDecoder>,
    /// The whole body, for [`Framing::Json`] only.
    buffered: Vec<u8>,
    /// Absolute offset of the next chunk's first byte.
    offset: u64,
    malformed: usize,
    terminal: bool,
    /// Absolute offset where the terminal event starts, once seen.
    terminal_start: Option<u64>,
    /// Whether a usage-only chunk is to be hidden from the client.
    hide_usage: bool,
    /// Where the usage-only chunk being hidden starts.
    hidden_start: Option<u64>,
}

impl std::fmt::Debug for StreamInspector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamInspector")
            .field("route", &self.route)
            .field("framing", &self.framing)
            .field("offset", &self.offset)
            .field("malformed", &self.malformed)
            .field("terminal", &self.terminal)
            .finish_non_exhaustive()
    }
}

impl StreamInspector {
    /// Starts decoding a response to `route` framed as `framing` (see [`Framing::detect`]).
    ///
    /// With [`Framing::Json`] the whole body is buffered and parsed by
    /// [`StreamInspector::finish`] as [`crate::parse_response`] would; no events are reported.
    pub fn new(route: &Route, framing: Framing) -> StreamInspector {
        StreamInspector {
            route: route.clone(),
            framing,
            splitter: Splitter::new(framing),
            decoder: for_route(route).stream_decoder(route),
            buffered: Vec::new(),
            offset: 0,
            malformed: 0,
            terminal: false,
            terminal_start: None,
            hide_usage: false,
            hidden_start: None,
        }
    }

    /// Holds back a usage-only chunk (OpenAI's `include_usage` chunk) so the gateway can drop it:
    /// [`StreamInspector::release`] stops at its start, and [`StreamInspector::hidden_len`] says
    /// how many bytes from there belong to it. Used when the gateway asked for usage the client
    /// did not. If any other event follows it before the terminal event, nothing is hidden.
    pub fn hide_usage_chunk(&mut self) {
        self.hide_usage = true;
    }

    /// Bytes from the release point that make up the hidden usage chunk (up to the terminal
    /// event), once the terminal event has been seen.
    pub fn hidden_len(&self) -> Option<u64> {
        Some(self.terminal_start? - self.hidden_start?)
    }

    /// Feeds the next chunk exactly as received. Never panics: malformed events are counted
    /// ([`StreamInspector::malformed_events`]) and skipped.
    pub fn push(&mut self, chunk: &[u8]) -> Progress {
        let base = self.offset;
        self.offset += chunk.len() as u64;
        let mut progress = Progress::default();
        let Some(splitter) = self.splitter.as_mut() else {
            // One JSON document: the gateway's response size limit bounds it, not an event cap.
            self.buffered.extend_from_slice(chunk);
            return progress;
        };
        let array = self.framing == Framing::JsonArrayStream;
        let Self {
            decoder,
            malformed,
            terminal,
            terminal_start,
            hide_usage,
            hidden_start,
            ..
        } = self;
        let mut on_terminal = |start: u64, progress: &mut Progress| {
            if !*terminal {
                *terminal = true;
                *terminal_start = Some(start);
                // `start` is never past the end of this chunk; `checked_sub` covers an event that
                // began in an earlier chunk.
                progress.terminal_at = start
                    .checked_sub(base)
                    .and_then(|off| usize::try_from(off).ok());
            }
        };
        splitter.push(chunk, &mut |frame| match frame {
            Frame::Event { start, name, data } => match decoder.event(name, data) {
                Outcome::Event => {
                    progress.events += 1;
                    // Something followed the usage chunk: it was not the last, so show it.
                    *hidden_start = None;
                }
                Outcome::UsageOnly => {
                    progress.events += 1;
                    if *hide_usage && hidden_start.is_none() {
                        *hidden_start = Some(start);
                    }
                }
                Outcome::Terminal => {
                    progress.events += 1;
                    // A streamed array ends at its `]`; a finish reason inside it is not the end.
                    if !array {
                        on_terminal(start, &mut progress);
                    }
                }
                Outcome::Malformed => *malformed += 1,
            },
            Frame::ArrayEnd { at } => {
                progress.events += 1;
                on_terminal(at, &mut progress);
            }
            Frame::Malformed => *malformed += 1,
        });
        progress
    }

    /// What may be released to the client now, for a gateway that must hold the terminal event
    /// until the exchange is recorded. Only whole events are ever released, so a receipt or an
    /// error event can be inserted before the terminal event without splitting another event.
    ///
    /// ```
    /// use warden_protocol::{classify, Framing, StreamInspector};
    /// let route = classify("POST", "/v1/chat/completions").unwrap();
    /// let mut s = StreamInspector::new(&route, Framing::Sse);
    /// let first = b"data: {\"choices\":[]}\n\ndata: [DO";
    /// s.push(first);
    /// // The partial `data: [DO` is not released: it may be (and is) the terminal event.
    /// assert_eq!(s.release().upto, 22);
    /// s.push(b"NE]\n\n");
    /// assert_eq!(s.release().upto, 22);
    /// assert!(s.release().terminal);
    /// ```
    pub fn release(&self) -> Release {
        if let Some(start) = self.terminal_start {
            return Release {
                upto: self.hidden_start.map_or(start, |h| h.min(start)),
                terminal: true,
            };
        }
        if let Some(h) = self.hidden_start {
            return Release {
                upto: h,
                terminal: false,
            };
        }
        let upto = match &self.splitter {
            // A buffered JSON body has no events; nothing is released before its end.
            None => 0,
            Some(splitter) => splitter.open_event_start().unwrap_or(self.offset),
        };
        Release {
            upto,
            terminal: false,
        }
    }

    /// Bytes of output (text, reasoning, tool calls) decoded so far, to estimate a stream's
    /// running cost before the provider reports usage (about 4 bytes per token). A JSON
    /// document ([`Framing::Json`]) reports 0 until its end.
    pub fn output_len(&self) -> usize {
        self.decoder.output_len()
    }

    /// Events that could not be decoded and were skipped so far.
    pub fn malformed_events(&self) -> usize {
        self.malformed
    }

    /// Whether the terminal event has been seen: OpenAI `data: [DONE]`; Responses
    /// `response.completed`, `response.failed` or `response.incomplete`; Anthropic `message_stop`;
    /// Gemini a chunk carrying `finishReason` (SSE) or the closing `]` (JSON-array stream); Ollama
    /// a line with `"done": true`.
    pub fn saw_terminal(&self) -> bool {
        self.terminal
    }

    /// Flushes any partial trailing event (a stream cut short still yields what it carried) and
    /// returns the reassembled response.
    pub fn finish(mut self) -> ExchangeResponse {
        let Some(mut splitter) = self.splitter.take() else {
            return crate::parse_response(&self.route, &self.buffered).unwrap_or_default();
        };
        let decoder = &mut self.decoder;
        splitter.finish(&mut |frame| {
            if let Frame::Event { name, data, .. } = frame {
                decoder.event(name, data);
            }
        });
        self.decoder.finish()
    }
}
