/*!
Provider wire protocols, normalized into one exchange model.

`warden-protocol` is the only place in Warden that reads or writes provider JSON. It knows the
request, response, stream and error shapes of OpenAI (and OpenAI-compatible servers), Anthropic,
Gemini and Ollama, and turns each into the types in [`exchange`]. It does no I/O: the gateway
feeds it bytes and reads back models, which is also what makes every parser testable on fixtures.

- [`route`] classifies a request path into a [`Route`] (provider + operation).
- [`parse_request`] and [`parse_response`] read buffered bodies into [`ExchangeRequest`] and
  [`ExchangeResponse`].
- [`StreamInspector`] reassembles a streamed response from chunks split anywhere, and says where
  the terminal event starts so the gateway can hold it back until the ledger is durable.
  [`Framing::detect`] tells it how the body is framed (SSE, NDJSON, a streamed JSON array).
- [`error`] renders the gateway's own refusals in each provider's error shape.
- [`exchange`] is the normalized model every later pipeline stage consumes.
- [`tools`] follows the tool calls of a stream event by event ([`ToolCallTracker`]) so the gateway
  can judge each before the agent sees it, rewrites streams and bodies so refused calls become
  assistant text ([`ToolCallTracker::rewrite`], [`rewrite_response`]), and withdraws tool
  definitions from requests ([`strip_tools`]).
- [`visit_content_strings`] finds the content strings of any body or stream event (what content
  protection scans), and [`EventSplitter`] / [`replace_event_data`] rewrite stream events in place.
  [`content_spans`] finds the same strings in an event's bytes, and [`splice_strings`] writes
  replacements back into them, without building a tree (the per-event path of live streams).

Inside, each provider is one module (`openai`, `openai_responses`, `anthropic`, `gemini`,
`ollama`) implementing one private trait: parse a request, parse a buffered response, decode
stream events. The public functions pick the implementation from the [`Route`] once, so nothing
outside a provider module names a provider. Framing (cutting bytes into events) is separate from
decoding (reading an event's JSON), which is why every provider's stream gets the same
split-anywhere guarantees from one tested splitter per framing.

```
use warden_protocol::{classify, parse_request, Framing, StreamInspector};

let route = classify("POST", "/v1/messages").unwrap();
let req = parse_request(&route, br#"{"model":"claude-sonnet-4-5","max_tokens":64,"stream":true,
    "messages":[{"role":"user","content":"Hello"}]}"#).unwrap();
assert!(req.stream);

let framing = Framing::detect(&route, Some("text/event-stream"), req.stream);
let mut inspector = StreamInspector::new(&route, framing);
inspector.push(b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,");
inspector.push(b"\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi!\"}}\n\n");
let progress = inspector.push(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
assert_eq!(progress.terminal_at, Some(0));
assert_eq!(inspector.finish().output_text, "Hi!");
```
*/
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod anthropic;
mod content;
mod content_spans;
pub mod error;
pub mod exchange;
pub mod framing;
mod gemini;
mod json;
mod ollama;
mod openai;
mod openai_responses;
mod protocol;
pub mod route;
mod stream;
pub mod tools;

pub use content::{EventSplitter, StreamEvent, replace_event_data, visit_content_strings};
pub use content_spans::{ContentSpan, content_spans, splice_strings, string_literal};
pub use exchange::{
    Content, Exchange, ExchangeRequest, ExchangeResponse, Message, Role, TextPart, ToolCall,
    ToolDefinition, Usage,
};
pub use framing::Framing;
pub use openai::request_stream_usage;
pub use route::{Operation, Provider, Route, classify, classify_request};
pub use stream::{Progress, Release, StreamInspector};
pub use tools::{EventCalls, OutEvent, Rewrite, ToolCallTracker, rewrite_response, strip_tools};

/// Why a client request body (or an upstream response body) could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The body is not JSON.
    #[error("request body is not valid JSON: {0}")]
    InvalidJson(#[from] serde_json::Error),
    /// The body is JSON but not the provider's shape; the message says what is wrong, e.g.
    /// "`messages` must be an array".
    #[error("{0}")]
    Shape(String),
}

/// Parses a client request body for `route` into the normalized model.
///
/// Every client string in the result carries the JSON path it was read from
/// (`$.messages[2].content[0].text`, `$.system`, `$.contents[0].parts[1].text`, `$.input`, …).
/// System and developer turns go to [`ExchangeRequest::system`] only. Ollama chat/generate stream
/// unless `"stream": false`; Gemini `streamGenerateContent` always streams and takes its model
/// from the path. Routes without a body (model lists, Ollama info calls) return the path's model.
///
/// # Errors
///
/// [`ProtocolError::InvalidJson`] when the body is not JSON, [`ProtocolError::Shape`] when it is
/// JSON the provider would not accept in a place the gateway must read (the message names the
/// path, e.g. "`messages` must be an array").
///
/// ```
/// use warden_protocol::{classify, parse_request, Content};
/// let route = classify("POST", "/v1/chat/completions").unwrap();
/// let body = br#"{"model":"gpt-4o","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"Hi"}]}]}"#;
/// let req = parse_request(&route, body).unwrap();
/// assert_eq!(req.system[0].path, "$.messages[0].content");
/// let Content::Text(hi) = &req.messages[0].content[0] else { panic!() };
/// assert_eq!((hi.text.as_str(), hi.path.as_str()), ("Hi", "$.messages[1].content[0].text"));
/// ```
pub fn parse_request(route: &Route, body: &[u8]) -> Result<ExchangeRequest, ProtocolError> {
    if !route.operation.has_body() {
        // `POST /api/show` names a model; a GET has no body at all.
        let body_model = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| json::string_of(&v, "model"));
        return Ok(ExchangeRequest {
            model: route.path_model.clone().or(body_model),
            ..ExchangeRequest::default()
        });
    }
    let value: serde_json::Value = serde_json::from_slice(body)?;
    protocol::for_route(route).parse_request(route, &value)
}

/// Parses a buffered (non-stream) upstream response body: a success body, or a provider error
/// body, whose message goes to [`ExchangeResponse::error`].
///
/// A whole streamed body handed over at once (SSE, Ollama NDJSON, a Gemini JSON array) is
/// reassembled as [`StreamInspector`] would, so a caller that buffered a stream gets the same
/// result.
///
/// # Errors
///
/// [`ProtocolError::InvalidJson`] when the body is neither JSON nor a recognisable stream.
pub fn parse_response(route: &Route, body: &[u8]) -> Result<ExchangeResponse, ProtocolError> {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(value) => Ok(protocol::for_route(route).parse_response(route, &value)),
        Err(err) => {
            let Some(framing) = sniff_stream(body) else {
                return Err(err.into());
            };
            let mut inspector = StreamInspector::new(route, framing);
            inspector.push(body);
            Ok(inspector.finish())
        }
    }
}

/// Recognises a buffered stream body that is not one JSON document: SSE starts with a field or
/// a comment; NDJSON is a first line that is JSON on its own.
pub(crate) fn sniff_stream(body: &[u8]) -> Option<Framing> {
    let body = body
        .strip_prefix(b"\xEF\xBB\xBF")
        .unwrap_or(body)
        .trim_ascii_start();
    let sse_start = [&b"data:"[..], b"event:", b"id:", b"retry:", b":"];
    if sse_start.iter().any(|p| body.starts_with(p)) {
        return Some(Framing::Sse);
    }
    let first_line = body.split(|&b| b == b'\n').next().unwrap_or_default();
    if body.len() > first_line.len()
        && serde_json::from_slice::<serde::de::IgnoredAny>(first_line).is_ok()
    {
        return Some(Framing::Ndjson);
    }
    None
}
