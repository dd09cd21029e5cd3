//! A fast, scriptable fake LLM provider speaking OpenAI, Anthropic, Gemini and Ollama.
//!
//! `warden-mock` is the upstream for Warden's end-to-end tests, the `warden demo` command and
//! benchmarks. It answers on the real APIs' paths with the real APIs' response shapes (ids,
//! `object` fields, `created`, `usage`, content types, SSE event names), buffered and streaming,
//! so the official SDKs accept what it sends. It ignores credentials but never fails on them.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use std::sync::Arc;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let stats = Arc::new(warden_mock::MockStats::default());
//! warden_mock::run(listener, stats.clone(), async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```
//!
//! # Routes
//!
//! | provider  | routes |
//! |-----------|--------|
//! | OpenAI    | `POST /v1/chat/completions`, `POST /v1/completions`, `POST /v1/embeddings`, `POST /v1/responses`, `GET /v1/models`, `GET /v1/models/{id}` |
//! | Anthropic | `POST /v1/messages`, `POST /v1/messages/count_tokens` |
//! | Gemini    | `POST /v1beta/models/{model}:ACTION` and `POST /v1/models/{model}:ACTION` for `generateContent`, `streamGenerateContent` (`?alt=sse` for SSE, otherwise an incrementally streamed JSON array), `countTokens`, `embedContent`, `batchEmbedContents`; `GET /v1beta/models`, `GET /v1beta/models/{model}` |
//! | Ollama    | `POST /api/chat`, `POST /api/generate` (NDJSON streaming unless `"stream": false`), `POST /api/embed`, `POST /api/embeddings`, `GET /api/tags`, `GET /api/version` |
//! | mock      | `GET /mock/stats` (a [`StatsSnapshot`] as JSON), `POST /mock/reset` (zeroes the counters) |
//!
//! `GET /v1/models` and `GET /v1/models/{id}` answer in Gemini's shape when the request carries
//! Gemini credentials (`x-goog-api-key` or `?key=`), since both SDKs use those paths. Anything
//! else is a 404 in the shape of the provider the path looks like (OpenAI's by default).
//!
//! Replies use the request's `model` (or the model in a Gemini path). The default reply is
//! `"Hello from the mock {OpenAI|Anthropic|Gemini|Ollama} upstream."`; input tokens are the
//! request's text characters divided by four, rounded up (at least 1), and output tokens the
//! number of words generated.
//!
//! # Scripting a reply: the mock directive
//!
//! A directive is a JSON object read from the [`SCENARIO_HEADER`] request header
//! (`x-mock-scenario`) or, when that header is absent, from the text of the **last user message**
//! when that text contains `[mock:{...}]`. The JSON object right after `[mock:` is parsed up to its
//! closing `}` and must be followed by `]`. The "last user message" is, per API:
//!
//! - OpenAI chat / Ollama chat: the last `messages[]` entry with role `user`; a trailing `tool`
//!   message counts as the latest user turn and carries no directive, so an agent loop that sent
//!   tool results gets an ordinary reply instead of the same tool calls again;
//! - OpenAI Responses: `input` when it is a string, otherwise the last item with role `user`
//!   (a trailing `function_call_output` item ends the search the same way);
//! - OpenAI legacy completions and Ollama generate: the `prompt`;
//! - Anthropic: the last `messages[]` entry with role `user` (its `text` blocks; a user turn made
//!   only of `tool_result` blocks carries no directive);
//! - Gemini: the last `contents[]` entry with role `user` (or no role), its `text` parts.
//!
//! Embedding routes and model listings read the header only.
//!
//! All fields are optional; unknown fields are rejected so typos surface at once:
//!
//! | field | effect |
//! |-------|--------|
//! | `"text": "..."` | reply with exactly this text |
//! | `"words": N` | reply with N generated words (`lorem ipsum dolor ...`, cycling) |
//! | `"echo": true` | reply with a compact JSON string of what the mock received: `{"method","path","query","headers","body"}`; `query` is the raw query string or `null`, `headers` maps every lower-cased header name to its value (repeats joined by `", "`), `body` is the parsed JSON, a string when it is not JSON, or `null` when empty |
//! | `"chunks": N` | stream the text (and reasoning) as N deltas of about equal length instead of one delta per word |
//! | `"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]` | the model calls these tools (`arguments` may be any JSON value or a string holding JSON); streams send each call's arguments in ~3 pieces where the API streams arguments |
//! | `"reasoning": "..."` | add a reasoning block: Anthropic `thinking` (with a signature), OpenAI chat `reasoning_content`, a Responses `reasoning` item with a summary, a Gemini part with `"thought": true`, Ollama `thinking` |
//! | `"status": 429` | answer this status (400–599) with the provider's own error body; 429 adds `retry-after: 1` |
//! | `"delay_ms": N` | wait N ms before sending the response headers |
//! | `"chunk_delay_ms": N` | wait N ms between stream chunks |
//! | `"break_after": N` | send N stream chunks, then abort the connection with no terminal event and no chunked terminator (streams only) |
//! | `"usage": {"input": N, "output": M}` | override the reported token counts |
//!
//! `text`, `words` and `echo` are mutually exclusive. With `tool_calls` and none of them, the
//! reply has no text. A malformed directive is answered with a 400 in the provider's error shape
//! whose message says what is wrong.
//!
//! Examples: header `x-mock-scenario: {"status":429}`; user message
//! `What's the weather? [mock:{"tool_calls":[{"name":"get_weather","arguments":{"city":"Paris"}}]}]`.
//!
//! # Counters
//!
//! [`MockStats`] counts requests (routes under `/mock/` excepted) and streams: started,
//! completed (the last chunk was handed to the connection), and cancelled (the response body was
//! dropped before its last chunk, i.e. the client or gateway went away). A stream cut by
//! `break_after` is neither completed nor cancelled.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod anthropic;
mod directive;
mod errors;
mod gemini;
mod ids;
mod ollama;
mod openai;
mod reply;
mod request;
mod response;
mod server;
mod stats;
mod stream;
mod vectors;

pub use directive::SCENARIO_HEADER;
pub use server::{run, run_tls};
pub use stats::{MockStats, StatsSnapshot};

/// Loads a PEM certificate chain and private key into a TLS server config for [`run_tls`].
pub fn tls_config(
    cert_pem: &std::path::Path,
    key_pem: &std::path::Path,
) -> Result<std::sync::Arc<rustls::ServerConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert_pem)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read certificates from {}: {e}", cert_pem.display()))?;
    let key = PrivateKeyDer::from_pem_file(key_pem)
        .map_err(|e| format!("cannot read a private key from {}: {e}", key_pem.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(
        rustls::crypto::ring::default_provider().into(),
    )
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| format!("invalid certificate/key pair: {e}"))?;
    Ok(std::sync::Arc::new(config))
}
