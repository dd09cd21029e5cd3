//! The accept loop, one hyper HTTP/1.1 connection task per client, and request routing:
//! path → endpoint, directive resolution, delays and scripted errors, then the provider handler.

use std::borrow::Cow;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, Method, Request};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::directive::{self, Directive};
use crate::errors::{Provider, error_response, simulated_message};
use crate::gemini::Action;
use crate::request::MockRequest;
use crate::response::{self, MockResponse};
use crate::stats::MockStats;
use crate::{anthropic, gemini, ollama, openai};

/// Request bodies beyond this are refused (413) rather than buffered.
const MAX_BODY: usize = 64 << 20;

/// Serve until `shutdown` resolves. Accept loop on the given listener, one task per connection.
///
/// When `shutdown` resolves the listener is closed and every open connection is asked to shut
/// down gracefully: idle keep-alive connections close at once, in-flight responses (streams
/// included) finish first. This returns without waiting for them. Accept errors (such as
/// running out of file descriptors) are logged and retried after a short pause, so the mock
/// keeps serving under overload; the `Result` is kept for callers' uniform error handling.
pub async fn run(
    listener: TcpListener,
    stats: Arc<MockStats>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve(listener, None, stats, shutdown).await
}

/// Like [`run`], but speaks HTTPS with the given server config, so tests can exercise the
/// gateway's upstream TLS (rustls, custom CA) without the network.
pub async fn run_tls(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    stats: Arc<MockStats>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve(
        listener,
        Some(tokio_rustls::TlsAcceptor::from(tls)),
        stats,
        shutdown,
    )
    .await
}

async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stats: Arc<MockStats>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Dropping the sender is the signal: every connection's receiver then sees `changed()` end.
    let (stop_tx, stop_rx) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "warden-mock accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        // Small SSE frames must go out as they are produced, not when Nagle decides.
        let _ = stream.set_nodelay(true);
        let stats = stats.clone();
        let stop = stop_rx.clone();
        match &tls {
            None => {
                tokio::spawn(serve_connection(stream, stats, stop));
            }
            Some(acceptor) => {
                let accept = acceptor.accept(stream);
                tokio::spawn(async move {
                    match accept.await {
                        Ok(stream) => serve_connection(stream, stats, stop).await,
                        Err(e) => tracing::debug!(error = %e, "warden-mock TLS handshake failed"),
                    }
                });
            }
        }
    }
    drop(stop_tx);
    Ok(())
}

async fn serve_connection<S>(stream: S, stats: Arc<MockStats>, mut stop: watch::Receiver<()>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| handle(req, stats.clone()));
    let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "warden-mock connection ended with an error");
    }
}

/// A provider operation the mock serves.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Endpoint {
    OpenAiChat,
    OpenAiCompletions,
    OpenAiEmbeddings,
    OpenAiResponses,
    OpenAiModels,
    OpenAiModel(String),
    AnthropicMessages,
    AnthropicCountTokens,
    Gemini { model: String, action: Action },
    GeminiModels,
    GeminiModel(String),
    OllamaChat,
    OllamaGenerate,
    OllamaEmbed,
    OllamaEmbeddings,
    OllamaTags,
    OllamaVersion,
}

#[derive(Debug, PartialEq, Eq)]
enum Route {
    Stats,
    Reset,
    Serve(Endpoint),
    NotFound(Provider),
    WrongMethod(Provider),
}

impl Endpoint {
    fn provider(&self) -> Provider {
        match self {
            Endpoint::OpenAiChat
            | Endpoint::OpenAiCompletions
            | Endpoint::OpenAiEmbeddings
            | Endpoint::OpenAiResponses
            | Endpoint::OpenAiModels
            | Endpoint::OpenAiModel(_) => Provider::OpenAi,
            Endpoint::AnthropicMessages | Endpoint::AnthropicCountTokens => Provider::Anthropic,
            Endpoint::Gemini { .. } | Endpoint::GeminiModels | Endpoint::GeminiModel(_) => {
                Provider::Gemini
            }
            Endpoint::OllamaChat
            | Endpoint::OllamaGenerate
            | Endpoint::OllamaEmbed
            | Endpoint::OllamaEmbeddings
            | Endpoint::OllamaTags
            | Endpoint::OllamaVersion => Provider::Ollama,
        }
    }

    fn method(&self) -> Method {
        match self {
            Endpoint::OpenAiModels
            | Endpoint::OpenAiModel(_)
            | Endpoint::GeminiModels
            | Endpoint::GeminiModel(_)
            | Endpoint::OllamaTags
            | Endpoint::OllamaVersion => Method::GET,
            _ => Method::POST,
        }
    }

    /// The text a `[mock:...]` marker may be in, per the provider's request shape.
    fn user_text<'a>(&self, body: &'a Value) -> Option<Cow<'a, str>> {
        match self {
            Endpoint::OpenAiChat => openai::chat_user_text(body),
            Endpoint::OpenAiCompletions => openai::completion_prompt(body),
            Endpoint::OpenAiResponses => openai::responses_user_text(body),
            Endpoint::AnthropicMessages | Endpoint::AnthropicCountTokens => {
                anthropic::user_text(body)
            }
            Endpoint::Gemini { action, .. } if action.reads_messages() => gemini::user_text(body),
            Endpoint::OllamaChat => ollama::chat_user_text(body),
            Endpoint::OllamaGenerate => ollama::generate_prompt(body),
            _ => None,
        }
    }
}

/// Whether a request on an ambiguous `/v1/models` path comes from a Gemini client.
fn has_google_key(headers: &HeaderMap, query: Option<&str>) -> bool {
    headers.contains_key("x-goog-api-key")
        || query.is_some_and(|q| q.split('&').any(|pair| pair.starts_with("key=")))
}

fn route(method: &Method, path: &str, headers: &HeaderMap, query: Option<&str>) -> Route {
    let endpoint = match path {
        "/mock/stats" if method == Method::GET => return Route::Stats,
        "/mock/reset" if method == Method::POST => return Route::Reset,
        "/v1/chat/completions" | "/v1beta/openai/chat/completions" => Endpoint::OpenAiChat,
        "/v1/completions" => Endpoint::OpenAiCompletions,
        "/v1/embeddings" => Endpoint::OpenAiEmbeddings,
        "/v1/responses" => Endpoint::OpenAiResponses,
        "/v1/messages" => Endpoint::AnthropicMessages,
        "/v1/messages/count_tokens" => Endpoint::AnthropicCountTokens,
        "/v1beta/models" => Endpoint::GeminiModels,
        "/v1/models" if has_google_key(headers, query) => Endpoint::GeminiModels,
        "/v1/models" => Endpoint::OpenAiModels,
        "/api/chat" => Endpoint::OllamaChat,
        "/api/generate" => Endpoint::OllamaGenerate,
        "/api/embed" => Endpoint::OllamaEmbed,
        "/api/embeddings" => Endpoint::OllamaEmbeddings,
        "/api/tags" => Endpoint::OllamaTags,
        "/api/version" => Endpoint::OllamaVersion,
        _ => match model_path(method, path, headers, query) {
            Some(route) => return route,
            None => return Route::NotFound(provider_of_path(path)),
        },
    };
    if *method == endpoint.method() {
        Route::Serve(endpoint)
    } else {
        Route::WrongMethod(endpoint.provider())
    }
}

/// `/v1beta/models/{model}[:action]` and `/v1/models/{id or model:action}`.
fn model_path(
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Option<Route> {
    let (rest, beta) = match path.strip_prefix("/v1beta/models/") {
        Some(rest) => (rest, true),
        None => (path.strip_prefix("/v1/models/")?, false),
    };
    if rest.is_empty() {
        return None;
    }
    // Gemini actions are POSTs; a GET is a model lookup, whose OpenAI ids may contain colons
    // themselves (`ft:gpt-4o-mini:org::id`).
    if *method == Method::POST {
        let (model, action) = rest
            .rsplit_once(':')
            .or_else(|| rest.rsplit_once("%3A"))
            .or_else(|| rest.rsplit_once("%3a"))?;
        return Some(match Action::parse(action) {
            Some(action) if !model.is_empty() => Route::Serve(Endpoint::Gemini {
                model: model.to_owned(),
                action,
            }),
            _ => Route::NotFound(Provider::Gemini),
        });
    }
    if *method != Method::GET {
        let provider = if beta {
            Provider::Gemini
        } else {
            Provider::OpenAi
        };
        return Some(Route::WrongMethod(provider));
    }
    Some(Route::Serve(if beta || has_google_key(headers, query) {
        Endpoint::GeminiModel(rest.to_owned())
    } else {
        Endpoint::OpenAiModel(rest.to_owned())
    }))
}

fn provider_of_path(path: &str) -> Provider {
    if path.starts_with("/api/") {
        Provider::Ollama
    } else if path.starts_with("/v1beta/") {
        Provider::Gemini
    } else if path.starts_with("/v1/messages") {
        Provider::Anthropic
    } else {
        Provider::OpenAi
    }
}

async fn handle(req: Request<Incoming>, stats: Arc<MockStats>) -> Result<MockResponse, Infallible> {
    let endpoint = match route(
        req.method(),
        req.uri().path(),
        req.headers(),
        req.uri().query(),
    ) {
        Route::Stats => return Ok(response::ok_json(&stats.snapshot())),
        Route::Reset => {
            stats.reset();
            return Ok(response::ok_json(&stats.snapshot()));
        }
        Route::NotFound(provider) => {
            stats.record_request();
            let message = format!("Invalid URL ({} {})", req.method(), req.uri().path());
            return Ok(error_response(provider, 404, &message));
        }
        Route::WrongMethod(provider) => {
            stats.record_request();
            let message = format!(
                "Method {} not allowed on {}",
                req.method(),
                req.uri().path()
            );
            return Ok(error_response(provider, 405, &message));
        }
        Route::Serve(endpoint) => endpoint,
    };
    stats.record_request();
    let provider = endpoint.provider();

    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            let (status, message) = if e.is::<http_body_util::LengthLimitError>() {
                (413, format!("request body exceeds {MAX_BODY} bytes"))
            } else {
                (400, format!("could not read the request body: {e}"))
            };
            return Ok(error_response(provider, status, &message));
        }
    };
    let req = MockRequest::new(parts, body);

    let directive = match directive::resolve(&req.headers, endpoint.user_text(&req.json).as_deref())
    {
        Ok(directive) => directive,
        Err(e) => return Ok(error_response(provider, 400, &e.to_string())),
    };
    if let Some(e) = &req.json_error
        && !directive.echo
    {
        let message = format!("request body is not valid JSON: {e}");
        return Ok(error_response(provider, 400, &message));
    }
    if let Some(ms) = directive.delay_ms.filter(|&ms| ms > 0) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if let Some(status) = directive.status {
        return Ok(error_response(provider, status, &simulated_message(status)));
    }
    Ok(dispatch(&endpoint, &req, &directive, &stats))
}

fn dispatch(
    endpoint: &Endpoint,
    req: &MockRequest,
    d: &Directive,
    stats: &Arc<MockStats>,
) -> MockResponse {
    match endpoint {
        Endpoint::OpenAiChat => openai::chat(req, d, stats),
        Endpoint::OpenAiCompletions => openai::completions(req, d, stats),
        Endpoint::OpenAiEmbeddings => openai::embeddings(req, d),
        Endpoint::OpenAiResponses => openai::responses(req, d, stats),
        Endpoint::OpenAiModels => openai::models(),
        Endpoint::OpenAiModel(id) => openai::model(id),
        Endpoint::AnthropicMessages => anthropic::messages(req, d, stats),
        Endpoint::AnthropicCountTokens => anthropic::count_tokens(req, d),
        Endpoint::Gemini { model, action } => match action {
            Action::GenerateContent => gemini::generate(req, d, stats, model, false),
            Action::StreamGenerateContent => gemini::generate(req, d, stats, model, true),
            Action::CountTokens => gemini::count_tokens(req, d),
            Action::EmbedContent => gemini::embed_content(req),
            Action::BatchEmbedContents => gemini::batch_embed_contents(req),
        },
        Endpoint::GeminiModels => gemini::models(),
        Endpoint::GeminiModel(name) => gemini::model(name),
        Endpoint::OllamaChat => ollama::chat(req, d, stats),
        Endpoint::OllamaGenerate => ollama::generate(req, d, stats),
        Endpoint::OllamaEmbed => ollama::embed(req, d),
        Endpoint::OllamaEmbeddings => ollama::legacy_embeddings(req),
        Endpoint::OllamaTags => ollama::tags(),
        Endpoint::OllamaVersion => ollama::version(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(method: Method, path: &str) -> Route {
        route(&method, path, &HeaderMap::new(), None)
    }

    #[test]
    fn routes_every_provider() {
        assert_eq!(
            r(Method::POST, "/v1/chat/completions"),
            Route::Serve(Endpoint::OpenAiChat)
        );
        assert_eq!(
            r(Method::POST, "/v1/messages"),
            Route::Serve(Endpoint::AnthropicMessages)
        );
        assert_eq!(
            r(Method::GET, "/v1/models"),
            Route::Serve(Endpoint::OpenAiModels)
        );
        assert_eq!(
            r(Method::GET, "/v1/models/ft:gpt-4o-mini:org::abc"),
            Route::Serve(Endpoint::OpenAiModel("ft:gpt-4o-mini:org::abc".into()))
        );
        for prefix in ["/v1beta/models/", "/v1/models/"] {
            assert_eq!(
                r(
                    Method::POST,
                    &format!("{prefix}gemini-2.5-flash:streamGenerateContent")
                ),
                Route::Serve(Endpoint::Gemini {
                    model: "gemini-2.5-flash".into(),
                    action: Action::StreamGenerateContent
                })
            );
        }
        assert_eq!(
            r(Method::POST, "/v1beta/models/gemini-2.5-flash:nope"),
            Route::NotFound(Provider::Gemini)
        );
        assert_eq!(
            r(Method::POST, "/api/chat"),
            Route::Serve(Endpoint::OllamaChat)
        );
        assert_eq!(
            r(Method::GET, "/api/chat"),
            Route::WrongMethod(Provider::Ollama)
        );
        assert_eq!(r(Method::GET, "/nope"), Route::NotFound(Provider::OpenAi));
        assert_eq!(r(Method::GET, "/mock/stats"), Route::Stats);
    }

    #[test]
    fn gemini_credentials_pick_gemini_model_listing() {
        let mut headers = HeaderMap::new();
        headers.insert("x-goog-api-key", http::HeaderValue::from_static("k"));
        assert_eq!(
            route(&Method::GET, "/v1/models", &headers, None),
            Route::Serve(Endpoint::GeminiModels)
        );
        assert_eq!(
            route(
                &Method::GET,
                "/v1/models/gemini-2.5-pro",
                &HeaderMap::new(),
                Some("key=abc")
            ),
            Route::Serve(Endpoint::GeminiModel("gemini-2.5-pro".into()))
        );
    }
}
