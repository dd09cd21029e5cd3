//! Errors in each provider's own shape, so an official SDK raises its usual exception with the
//! gateway's message.
//!
//! The gateway decides *what* went wrong ([`ErrorKind`]) and the HTTP status; this module only
//! renders it. Shapes:
//! - OpenAI: `{"error":{"message","type","param":null,"code"}}`
//! - Anthropic: `{"type":"error","error":{"type","message"}}`
//! - Gemini: `{"error":{"code","message","status"}}`
//! - Ollama: `{"error":"message"}`

use serde_json::json;

use crate::route::Provider;

/// Why the gateway itself refused or failed a request (DESIGN.md "Refusals").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Missing, invalid, expired or revoked virtual key (401).
    InvalidApiKey,
    /// A policy rule denied the request, or the model is not allowed (403).
    PolicyDenied,
    /// A kill switch matched the caller (403).
    Killed,
    /// A rate limit was hit (429).
    RateLimited,
    /// A USD budget hard cap was hit (429).
    BudgetExceeded,
    /// Content protection blocked the request or response (400).
    ContentBlocked,
    /// The ledger could not record the exchange (503).
    AuditUnavailable,
    /// The upstream did not answer in time (504).
    UpstreamTimeout,
    /// The upstream could not be reached or broke the connection (502).
    UpstreamUnreachable,
    /// The request body is not valid JSON or not the provider's shape (400).
    InvalidRequest,
    /// The request body exceeds the configured limit (413).
    RequestTooLarge,
    /// No route matches the path (404).
    NotFound,
    /// The gateway is at its concurrency limit (503).
    Overloaded,
    /// Anything else that is the gateway's fault (500).
    Internal,
}

impl ErrorKind {
    /// `(type, code)` as written in OpenAI-shaped bodies; `type` is also used for Anthropic.
    pub fn type_and_code(self) -> (&'static str, &'static str) {
        match self {
            ErrorKind::InvalidApiKey => ("authentication_error", "invalid_api_key"),
            ErrorKind::PolicyDenied => ("permission_error", "policy_denied"),
            ErrorKind::Killed => ("permission_error", "killed"),
            ErrorKind::RateLimited => ("rate_limit_error", "rate_limited"),
            ErrorKind::BudgetExceeded => ("insufficient_quota", "budget_exceeded"),
            ErrorKind::ContentBlocked => ("invalid_request_error", "content_blocked"),
            ErrorKind::AuditUnavailable => ("api_error", "audit_unavailable"),
            ErrorKind::UpstreamTimeout => ("api_error", "upstream_timeout"),
            ErrorKind::UpstreamUnreachable => ("api_error", "upstream_unreachable"),
            ErrorKind::InvalidRequest => ("invalid_request_error", "invalid_request"),
            ErrorKind::RequestTooLarge => ("invalid_request_error", "request_too_large"),
            ErrorKind::NotFound => ("invalid_request_error", "not_found"),
            ErrorKind::Overloaded => ("api_error", "overloaded"),
            ErrorKind::Internal => ("api_error", "internal_error"),
        }
    }

    /// The Anthropic error `type`, which has its own vocabulary.
    fn anthropic_type(self) -> &'static str {
        match self {
            ErrorKind::InvalidApiKey => "authentication_error",
            ErrorKind::PolicyDenied | ErrorKind::Killed => "permission_error",
            ErrorKind::RateLimited | ErrorKind::BudgetExceeded => "rate_limit_error",
            ErrorKind::ContentBlocked | ErrorKind::InvalidRequest => "invalid_request_error",
            ErrorKind::RequestTooLarge => "request_too_large",
            ErrorKind::NotFound => "not_found_error",
            ErrorKind::Overloaded => "overloaded_error",
            ErrorKind::AuditUnavailable
            | ErrorKind::UpstreamTimeout
            | ErrorKind::UpstreamUnreachable
            | ErrorKind::Internal => "api_error",
        }
    }
}

/// The canonical gRPC-style status Gemini puts in `error.status` for an HTTP status.
fn gemini_status(status: u16) -> &'static str {
    match status {
        400 | 413 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        502 | 503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    }
}

/// Renders an error body in `provider`'s shape. The content type is always `application/json`.
///
/// ```
/// use warden_protocol::{error::{render, ErrorKind}, Provider};
/// let body = render(Provider::Anthropic, 403, ErrorKind::Killed, "agent a1 is killed");
/// let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
/// assert_eq!(v["type"], "error");
/// assert_eq!(v["error"]["type"], "permission_error");
/// ```
pub fn render(provider: Provider, status: u16, kind: ErrorKind, message: &str) -> Vec<u8> {
    let (ty, code) = kind.type_and_code();
    let value = match provider {
        Provider::OpenAi => json!({
            "error": {"message": message, "type": ty, "param": null, "code": code}
        }),
        Provider::Anthropic => json!({
            "type": "error",
            "error": {"type": kind.anthropic_type(), "message": message}
        }),
        Provider::Gemini => json!({
            "error": {
                "code": status,
                "message": message,
                "status": gemini_status(status),
                "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": code, "domain": "warden"}]
            }
        }),
        Provider::Ollama => json!({ "error": message }),
    };
    serde_json::to_vec(&value).expect("a JSON value always serializes")
}

/// Renders an error as one more event of an already-started stream, in the provider's own
/// in-stream error shape, so the SDK reading the stream raises it. `framing` is the stream's.
///
/// - OpenAI SSE: `data: {"error":{…}}` (the openai SDKs raise on an `error` key);
/// - Anthropic SSE: `event: error` with `{"type":"error","error":{…}}`;
/// - Gemini SSE: `data: {"error":{…}}`; Gemini JSON-array stream: a last `{"error":…}` element
///   and the closing `]`;
/// - Ollama NDJSON: a `{"error":"…"}` line.
pub fn render_stream_error(
    provider: Provider,
    framing: crate::Framing,
    status: u16,
    kind: ErrorKind,
    message: &str,
) -> Vec<u8> {
    let body = render(provider, status, kind, message);
    let mut out = Vec::with_capacity(body.len() + 32);
    match framing {
        crate::Framing::Sse => {
            if provider == Provider::Anthropic {
                out.extend_from_slice(b"event: error\n");
            }
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(&body);
            out.extend_from_slice(b"\n\n");
        }
        crate::Framing::JsonArrayStream => {
            out.extend_from_slice(b",\r\n");
            out.extend_from_slice(&body);
            out.extend_from_slice(b"\n]");
        }
        crate::Framing::Ndjson | crate::Framing::Json => {
            out.extend_from_slice(&body);
            out.push(b'\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn parse(b: Vec<u8>) -> Value {
        serde_json::from_slice(&b).unwrap()
    }

    #[test]
    fn openai_shape() {
        let v = parse(render(
            Provider::OpenAi,
            429,
            ErrorKind::BudgetExceeded,
            "over",
        ));
        assert_eq!(v["error"]["type"], "insufficient_quota");
        assert_eq!(v["error"]["code"], "budget_exceeded");
        assert_eq!(v["error"]["message"], "over");
    }

    #[test]
    fn gemini_shape() {
        let v = parse(render(
            Provider::Gemini,
            504,
            ErrorKind::UpstreamTimeout,
            "slow",
        ));
        assert_eq!(v["error"]["code"], 504);
        assert_eq!(v["error"]["status"], "DEADLINE_EXCEEDED");
    }

    #[test]
    fn stream_errors_are_events_of_the_stream() {
        use crate::Framing;
        let a = render_stream_error(
            Provider::Anthropic,
            Framing::Sse,
            503,
            ErrorKind::AuditUnavailable,
            "x",
        );
        let a = String::from_utf8(a).unwrap();
        assert!(
            a.starts_with("event: error\ndata: {") && a.ends_with("}\n\n"),
            "{a}"
        );
        let o = String::from_utf8(render_stream_error(
            Provider::OpenAi,
            Framing::Sse,
            503,
            ErrorKind::AuditUnavailable,
            "x",
        ))
        .unwrap();
        assert!(o.starts_with("data: {\"error\""), "{o}");
        let n = String::from_utf8(render_stream_error(
            Provider::Ollama,
            Framing::Ndjson,
            503,
            ErrorKind::AuditUnavailable,
            "x",
        ))
        .unwrap();
        assert_eq!(n, "{\"error\":\"x\"}\n");
        let g = render_stream_error(
            Provider::Gemini,
            Framing::JsonArrayStream,
            503,
            ErrorKind::AuditUnavailable,
            "x",
        );
        let whole = [b"[{\"candidates\":[]}".as_slice(), &g].concat();
        let v: serde_json::Value = serde_json::from_slice(&whole).unwrap();
        assert_eq!(v[1]["error"]["code"], 503);
    }

    #[test]
    fn ollama_shape() {
        let v = parse(render(Provider::Ollama, 404, ErrorKind::NotFound, "no"));
        assert_eq!(v["error"], "no");
    }
}
