//! The one place a pipeline error becomes an HTTP response in the caller's provider shape
//! (linkerd's "rescue"). Every refusal the gateway makes itself goes through [`GatewayError`].

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use warden_protocol::Provider;
use warden_protocol::error::{ErrorKind, render};

use super::GatewayBody;

/// Where a failure came from (pingora's `esource`), recorded with the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The client sent something the gateway will not forward.
    Client,
    /// The upstream failed, timed out or could not be reached.
    Upstream,
    /// The gateway itself (limits, overload, internal errors).
    Gateway,
}

/// A refusal or failure the gateway answers itself.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct GatewayError {
    /// HTTP status to answer.
    pub status: StatusCode,
    /// Error category, which fixes the error `type`/`code` in the body.
    pub kind: ErrorKind,
    /// What happened and what to do, for a person.
    pub message: String,
    /// Who is at fault.
    pub origin: Source,
    /// Seconds for a `retry-after` header.
    pub retry_after: Option<u64>,
}

impl GatewayError {
    fn new(status: StatusCode, kind: ErrorKind, source: Source, message: String) -> Self {
        GatewayError {
            status,
            kind,
            message,
            origin: source,
            retry_after: None,
        }
    }

    /// 400: the body is not valid JSON or not the provider's request shape.
    pub fn invalid_request(message: String) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorKind::InvalidRequest,
            Source::Client,
            message,
        )
    }

    /// 413: the body is larger than `limits.max_request_bytes`.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::RequestTooLarge,
            Source::Client,
            format!(
                "request body exceeds the gateway's limit of {limit} bytes (limits.max_request_bytes); send a smaller request or raise the limit"
            ),
        )
    }

    /// 404: no provider route matches.
    pub fn not_found(message: String) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            ErrorKind::NotFound,
            Source::Client,
            message,
        )
    }

    /// 503: the gateway is at `limits.max_concurrent_requests`.
    pub fn overloaded(limit: usize) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Overloaded,
            Source::Gateway,
            format!(
                "the gateway is handling its maximum of {limit} concurrent requests (limits.max_concurrent_requests); retry shortly"
            ),
        );
        e.retry_after = Some(1);
        e
    }

    /// 504: the upstream did not connect or answer in time.
    pub fn upstream_timeout(message: String) -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::UpstreamTimeout,
            Source::Upstream,
            message,
        )
    }

    /// 502: the upstream could not be reached or broke the exchange.
    pub fn upstream_unreachable(message: String) -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            ErrorKind::UpstreamUnreachable,
            Source::Upstream,
            message,
        )
    }

    /// 503: the ledger could not record the exchange, so nothing is released.
    pub fn audit_unavailable(message: String) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::AuditUnavailable,
            Source::Gateway,
            format!(
                "Warden could not record this exchange in its audit ledger, so it withheld the response: {message}"
            ),
        )
    }

    /// 401: missing, invalid, revoked or expired virtual key.
    pub fn unauthenticated(message: String) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorKind::InvalidApiKey,
            Source::Client,
            message,
        )
    }

    /// 403 (or the rule's status): a policy rule denied the request.
    pub fn policy_denied(status: u16, message: String) -> Self {
        Self::new(
            StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN),
            ErrorKind::PolicyDenied,
            Source::Client,
            message,
        )
    }

    /// 403: a kill switch matched the caller.
    pub fn killed(kill: &warden_state::KillRecord) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            ErrorKind::Killed,
            Source::Client,
            format!(
                "{} was stopped by the Warden kill switch: {} (by {} at {}); an operator lifts it with `warden unkill {}`",
                kill.target,
                kill.reason,
                kill.actor,
                super::entry::rfc3339(
                    std::time::UNIX_EPOCH + std::time::Duration::from_secs(kill.at)
                ),
                crate::control::unkill_flags(&kill.target),
            ),
        )
    }

    /// 429 + `retry-after`: a rate or concurrency limit was reached.
    pub fn rate_limited(message: String, retry_after: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::RateLimited,
            Source::Client,
            message,
        );
        e.retry_after = Some(retry_after);
        e
    }

    /// 429: a USD budget hard cap would be crossed.
    pub fn budget_exceeded(message: String) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::BudgetExceeded,
            Source::Client,
            message,
        )
    }

    /// 400: content protection blocks what the request (or the model's answer) contains; the
    /// message names the types found, never the values.
    pub fn content_blocked(message: String, source: Source) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorKind::ContentBlocked,
            source,
            message,
        )
    }

    /// 503: the state store (keys, budgets) cannot be read or written; fail closed.
    pub fn state_unavailable(message: String) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal,
            Source::Gateway,
            format!(
                "Warden cannot reach its state store (keys, budgets), so it refuses rather than guess: {message}"
            ),
        )
    }

    /// 500: a bug or an environment problem in the gateway.
    pub fn internal(message: String) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::Internal,
            Source::Gateway,
            message,
        )
    }

    /// Renders the error in `provider`'s shape.
    pub fn into_response(&self, provider: Provider) -> Response<GatewayBody> {
        let body = render(provider, self.status.as_u16(), self.kind, &self.message);
        let mut resp = Response::new(super::full(Bytes::from(body)));
        *resp.status_mut() = self.status;
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(secs) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        h.insert(
            "x-warden-error",
            HeaderValue::from_static(self.kind.type_and_code().1),
        );
        resp
    }
}

/// Guesses the provider of a request no route matched, so even a 404 comes in a shape the
/// caller's SDK understands.
pub fn guess_provider(path: &str, headers: &http::HeaderMap) -> Provider {
    let path = path.trim_start_matches('/');
    let after_prefix = path.split_once('/').map(|(_, r)| r).unwrap_or("");
    let looks = |p: &str| path.starts_with(p) || after_prefix.starts_with(p);
    if looks("api/") {
        Provider::Ollama
    } else if looks("v1beta")
        || path.contains(":generateContent")
        || headers.contains_key("x-goog-api-key")
    {
        Provider::Gemini
    } else if headers.contains_key("anthropic-version") || headers.contains_key("x-api-key") {
        Provider::Anthropic
    } else {
        Provider::OpenAi
    }
}
