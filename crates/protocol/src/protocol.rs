//! The one trait every provider module implements, and the choice of implementation per route.
//!
//! Keeping the three entry points (request, buffered response, stream decoder) behind one trait
//! means the public functions in `lib.rs` and [`crate::StreamInspector`] dispatch once and never
//! name a provider, and a new provider is one new module plus one line in [`for_route`].

use serde_json::Value;

use crate::ProtocolError;
use crate::exchange::{ExchangeRequest, ExchangeResponse};
use crate::route::{Operation, Provider, Route};
use crate::{anthropic, gemini, ollama, openai, openai_responses};

/// One provider wire protocol.
pub(crate) trait Protocol: Sync {
    /// Reads a client request body already parsed as JSON.
    ///
    /// MUST give every client string its JSON path, and MUST return [`ProtocolError::Shape`] for a
    /// container or string it cannot read rather than skip it silently: content protection only
    /// sees what this returns.
    fn parse_request(&self, route: &Route, body: &Value) -> Result<ExchangeRequest, ProtocolError>;

    /// Reads a buffered upstream response body (success or error shape). MUST NOT fail on a
    /// well-formed JSON value of an unexpected shape; it reads what it recognises.
    fn parse_response(&self, route: &Route, body: &Value) -> ExchangeResponse;

    /// A decoder for the events of a streamed response to `route`.
    fn stream_decoder(&self, route: &Route) -> Box<dyn StreamDecoder>;
}

/// What one stream event meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Decoded (or recognised and deliberately ignored, like a ping).
    Event,
    /// Decoded, and it is the provider's terminal event.
    Terminal,
    /// Not decodable; skipped.
    Malformed,
    /// Decoded: a chunk that carries only usage (OpenAI's `stream_options.include_usage` chunk,
    /// `choices: []`), which the gateway may hide when it asked for usage itself.
    UsageOnly,
}

/// Reassembles a response from the events of one stream.
///
/// Implementations MUST produce the same response for the same sequence of events, and MUST NOT
/// panic whatever the payloads hold.
pub(crate) trait StreamDecoder: Send + Sync {
    /// Handles one event: its SSE `event:` name, if any, and its payload bytes.
    fn event(&mut self, name: Option<&str>, data: &[u8]) -> Outcome;

    /// The response assembled from every event so far.
    fn finish(self: Box<Self>) -> ExchangeResponse;

    /// Bytes of output (text, reasoning, tool-call names and arguments) decoded so far: what a
    /// gateway prices a stream's running cost by before the provider reports usage.
    fn output_len(&self) -> usize;
}

/// The protocol implementation for a route.
pub(crate) fn for_route(route: &Route) -> &'static dyn Protocol {
    match (route.provider, route.operation) {
        (Provider::OpenAi, Operation::Responses) => &openai_responses::Responses,
        (Provider::OpenAi, _) => &openai::OpenAi,
        (Provider::Anthropic, _) => &anthropic::Anthropic,
        (Provider::Gemini, _) => &gemini::Gemini,
        (Provider::Ollama, _) => &ollama::Ollama,
    }
}

/// Checks for decoders that read common events two ways (a borrowed fast reading, and the
/// general tree reading): both must agree.
#[cfg(test)]
pub(crate) mod agreement {
    use super::{Outcome, StreamDecoder};
    use crate::framing::{Frame, Framing, Splitter};

    /// The (name, data) of every event of an SSE body.
    pub(crate) fn sse_events(text: &[u8]) -> Vec<(Option<String>, Vec<u8>)> {
        let mut out = Vec::new();
        let mut splitter = Splitter::new(Framing::Sse).expect("SSE splits");
        let mut keep = |frame: Frame<'_>| {
            if let Frame::Event { name, data, .. } = frame {
                out.push((name.map(str::to_owned), data.to_vec()));
            }
        };
        splitter.push(text, &mut keep);
        splitter.finish(&mut keep);
        out
    }

    /// Feeds `events` to one decoder through [`StreamDecoder::event`] and to another through
    /// `general` only (given the trimmed payload); they must agree on every outcome and on the
    /// reassembled response. Returns how many events `is_plain` says took the fast reading.
    pub(crate) fn agree<D: StreamDecoder + Default + 'static>(
        events: &[(Option<String>, Vec<u8>)],
        is_plain: impl Fn(Option<&str>, &[u8]) -> bool,
        general: impl Fn(&mut D, Option<&str>, &[u8]) -> Outcome,
    ) -> usize {
        let mut fast = D::default();
        let mut slow = D::default();
        let mut plain = 0;
        for (name, data) in events {
            let trimmed = crate::json::trim(data);
            plain += usize::from(is_plain(name.as_deref(), trimmed));
            let a = fast.event(name.as_deref(), data);
            let b = if trimmed.is_empty() {
                Outcome::Event
            } else {
                general(&mut slow, name.as_deref(), trimmed)
            };
            assert_eq!(a, b, "{}", String::from_utf8_lossy(data));
        }
        assert_eq!(Box::new(fast).finish(), Box::new(slow).finish());
        plain
    }
}
