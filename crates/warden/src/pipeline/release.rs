//! Release stage for buffered responses: read the whole upstream body, record the exchange,
//! and only then answer the client, with the receipt in its headers.
//!
//! Streams are released by [`super::inspect::StreamBody`] instead. This module also owns the
//! receipt headers (`x-warden-entry`, `x-warden-receipt`) every released response carries.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::record::Receipt;
use super::refuse::GatewayError;

/// Reads a whole upstream body, allowing at most `idle` between chunks and `max` bytes in all.
pub async fn collect(
    mut body: Incoming,
    idle: Duration,
    max: usize,
    upstream: &str,
) -> Result<Bytes, GatewayError> {
    let mut buf = BytesMut::new();
    loop {
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => {
                return Err(GatewayError::upstream_timeout(format!(
                    "upstream `{upstream}` sent nothing for {idle:?} mid-response (limits.idle_timeout)"
                )));
            }
            Ok(None) => return Ok(buf.freeze()),
            Ok(Some(Err(e))) => {
                return Err(GatewayError::upstream_unreachable(format!(
                    "upstream `{upstream}` broke off its response: {}",
                    super::forward::root_cause(&e)
                )));
            }
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > max {
                return Err(GatewayError::upstream_unreachable(format!(
                    "upstream `{upstream}` sent a response larger than {max} bytes (limits.max_response_bytes); it was not released"
                )));
            }
            buf.extend_from_slice(&data);
        }
    }
}

/// Adds `x-warden-entry` and `x-warden-receipt` for a committed record.
pub fn receipt_headers(headers: &mut HeaderMap, receipt: Option<&Receipt>) {
    if let Some(r) = receipt {
        headers.insert("x-warden-entry", HeaderValue::from(r.index));
        if let Ok(v) = HeaderValue::from_str(&r.proof) {
            headers.insert("x-warden-receipt", v);
        }
    }
}
