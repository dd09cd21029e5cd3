//! Error responses in each provider's own shape, so SDKs raise their usual exception types.

use http::StatusCode;
use http::header::RETRY_AFTER;

use crate::response::{self, MockResponse};
use crate::{anthropic, gemini, ollama, openai};

/// Whose API a route belongs to; decides error shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Provider {
    OpenAi,
    Anthropic,
    Gemini,
    Ollama,
}

/// `status` with `message` in `provider`'s error body; a 429 also says `retry-after: 1`.
pub(crate) fn error_response(provider: Provider, status: u16, message: &str) -> MockResponse {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let status = code.as_u16();
    let body = match provider {
        Provider::OpenAi => openai::error_body(status, message),
        Provider::Anthropic => anthropic::error_body(status, message),
        Provider::Gemini => gemini::error_body(status, message),
        Provider::Ollama => ollama::error_body(message),
    };
    let mut response = response::json(code, body);
    if status == 429 {
        response
            .headers_mut()
            .insert(RETRY_AFTER, http::HeaderValue::from_static("1"));
    }
    response
}

/// The message of an error the directive asked for.
pub(crate) fn simulated_message(status: u16) -> String {
    let reason = match status {
        429 => "Rate limit exceeded",
        529 => "Overloaded",
        _ => StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Error"),
    };
    format!("{reason} (simulated by warden-mock, status {status})")
}
