//! Building responses: JSON bodies, streams, and the SSE / NDJSON frame encodings.

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName};
use http::{HeaderValue, Response, StatusCode};
use serde::Serialize;

use crate::directive::Directive;
use crate::stats::MockStats;
use crate::stream::{FrameStream, MockBody, Pacing};

pub(crate) type MockResponse = Response<MockBody>;

pub(crate) const JSON: &str = "application/json";
pub(crate) const SSE: &str = "text/event-stream; charset=utf-8";
pub(crate) const NDJSON: &str = "application/x-ndjson";

/// Serializes one of the mock's own values. These are plain structs and `Value`s with string
/// keys, which cannot fail to serialize; should that ever change, the failure is logged and
/// the body is empty rather than the server panicking.
pub(crate) fn to_vec(value: &impl Serialize) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    if let Err(e) = serde_json::to_writer(&mut out, value) {
        tracing::error!(error = %e, "warden-mock could not serialize a response");
    }
    out
}

pub(crate) fn json(status: StatusCode, body: impl Into<Bytes>) -> MockResponse {
    json_as(status, JSON, body)
}

pub(crate) fn json_as(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> MockResponse {
    let mut response = Response::new(MockBody::full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

pub(crate) fn ok_json(value: &impl Serialize) -> MockResponse {
    json(StatusCode::OK, to_vec(value))
}

/// A 200 streaming `frames`, paced and possibly broken as the directive says.
pub(crate) fn stream(
    content_type: &'static str,
    frames: Vec<Bytes>,
    directive: &Directive,
    stats: &Arc<MockStats>,
) -> MockResponse {
    let pacing = Pacing {
        chunk_delay: directive.chunk_delay_ms.map(Duration::from_millis),
        break_after: directive.break_after,
    };
    let body = FrameStream::new(frames, pacing, stats.clone());
    let mut response = Response::new(MockBody::Stream(Box::new(body)));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Adds a header whose value the mock generated (ids), skipping it if it is not a valid value.
pub(crate) fn with_header(
    mut response: MockResponse,
    name: &'static str,
    value: &str,
) -> MockResponse {
    if let Ok(value) = HeaderValue::from_str(value) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(name), value);
    }
    response
}

/// `data: {json}\n\n`, the frame of data-only SSE streams (OpenAI chat and completions).
pub(crate) fn sse_data(value: &impl Serialize) -> Bytes {
    frame(b"data: ", value, b"\n\n")
}

/// `event: {name}\ndata: {json}\n\n`, the frame of named-event SSE streams.
pub(crate) fn sse_event(name: &str, value: &impl Serialize) -> Bytes {
    let mut buf = BytesMut::with_capacity(160);
    buf.put_slice(b"event: ");
    buf.put_slice(name.as_bytes());
    buf.put_slice(b"\ndata: ");
    write_json(&mut buf, value);
    buf.put_slice(b"\n\n");
    buf.freeze()
}

/// `prefix`, the JSON of `value`, `suffix`, in one buffer.
pub(crate) fn frame(prefix: &[u8], value: &impl Serialize, suffix: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(160);
    buf.put_slice(prefix);
    write_json(&mut buf, value);
    buf.put_slice(suffix);
    buf.freeze()
}

fn write_json(buf: &mut BytesMut, value: &impl Serialize) {
    let mut writer = buf.writer();
    if let Err(e) = serde_json::to_writer(&mut writer, value) {
        tracing::error!(error = %e, "warden-mock could not serialize a stream frame");
    }
}
