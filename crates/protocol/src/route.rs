//! Which provider operation a request path names.
//!
//! The gateway strips any named-upstream prefix (`/vllm/...`) first and hands the rest here; this
//! module only knows the providers' own paths. It owns no I/O and no body parsing.

use std::fmt;

use serde::Serialize;

/// An LLM provider protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// OpenAI and every OpenAI-compatible server (vLLM, llama.cpp, LM Studio, OpenRouter, …).
    OpenAi,
    /// Anthropic Messages API.
    Anthropic,
    /// Google Gemini API (Generative Language API).
    Gemini,
    /// Ollama's native API.
    Ollama,
}

impl Provider {
    /// Every provider, in display order.
    pub const ALL: [Provider; 4] = [
        Provider::OpenAi,
        Provider::Anthropic,
        Provider::Gemini,
        Provider::Ollama,
    ];

    /// The name used in config, CLI flags and env vars (`openai`, `anthropic`, `gemini`, `ollama`).
    pub fn name(self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::Anthropic => "anthropic",
            Provider::Gemini => "gemini",
            Provider::Ollama => "ollama",
        }
    }

    /// Parses a provider name as written in config (case-insensitive).
    pub fn from_name(name: &str) -> Option<Provider> {
        Provider::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name))
    }

    /// The public API origin used when no upstream is configured.
    pub fn default_base_url(self) -> &'static str {
        match self {
            Provider::OpenAi => "https://api.openai.com",
            Provider::Anthropic => "https://api.anthropic.com",
            Provider::Gemini => "https://generativelanguage.googleapis.com",
            Provider::Ollama => "http://127.0.0.1:11434",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A provider operation the gateway understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// OpenAI `POST /v1/chat/completions`.
    ChatCompletions,
    /// OpenAI `POST /v1/completions` (legacy).
    Completions,
    /// OpenAI `POST /v1/embeddings`.
    Embeddings,
    /// OpenAI `POST /v1/responses`.
    Responses,
    /// OpenAI `GET /v1/models`, `GET /v1/models/{id}`; Gemini `GET /v1beta/models[/{model}]`.
    ListModels,
    /// Anthropic `POST /v1/messages`.
    Messages,
    /// Anthropic `POST /v1/messages/count_tokens`; Gemini `:countTokens`.
    CountTokens,
    /// Gemini `:generateContent`.
    GenerateContent,
    /// Gemini `:streamGenerateContent` (SSE with `?alt=sse`, a streamed JSON array without).
    StreamGenerateContent,
    /// Gemini `:embedContent` and `:batchEmbedContents`; Ollama `/api/embed`, `/api/embeddings`.
    EmbedContent,
    /// Ollama `POST /api/chat`.
    OllamaChat,
    /// Ollama `POST /api/generate`.
    OllamaGenerate,
    /// Ollama `GET /api/tags`, `/api/ps`, `/api/version`, `POST /api/show`.
    OllamaInfo,
}

impl Operation {
    /// The operation's name as serialized (`chat_completions`, `messages`, `generate_content`, …),
    /// which policy rules match with `route = …`.
    pub fn name(self) -> &'static str {
        match self {
            Operation::ChatCompletions => "chat_completions",
            Operation::Completions => "completions",
            Operation::Embeddings => "embeddings",
            Operation::Responses => "responses",
            Operation::ListModels => "list_models",
            Operation::Messages => "messages",
            Operation::CountTokens => "count_tokens",
            Operation::GenerateContent => "generate_content",
            Operation::StreamGenerateContent => "stream_generate_content",
            Operation::EmbedContent => "embed_content",
            Operation::OllamaChat => "ollama_chat",
            Operation::OllamaGenerate => "ollama_generate",
            Operation::OllamaInfo => "ollama_info",
        }
    }

    /// Whether requests of this operation carry a JSON body worth parsing into the exchange model.
    pub fn has_body(self) -> bool {
        !matches!(self, Operation::ListModels | Operation::OllamaInfo)
    }
}

/// A classified request path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    /// Provider protocol of the path.
    pub provider: Provider,
    /// Operation named by the path.
    pub operation: Operation,
    /// Model named in the path (Gemini `models/{model}:…`, OpenAI `GET /v1/models/{id}`).
    pub path_model: Option<String>,
}

impl Route {
    fn new(provider: Provider, operation: Operation) -> Route {
        Route {
            provider,
            operation,
            path_model: None,
        }
    }
}

/// Human-readable list of every supported route, for the unknown-path error.
pub const SUPPORTED_ROUTES: &[&str] = &[
    "POST /v1/chat/completions",
    "POST /v1/completions",
    "POST /v1/embeddings",
    "POST /v1/responses",
    "GET /v1/models",
    "POST /v1/messages",
    "POST /v1/messages/count_tokens",
    "POST /v1beta/models/{model}:generateContent",
    "POST /v1beta/models/{model}:streamGenerateContent",
    "POST /v1beta/models/{model}:countTokens",
    "POST /v1beta/models/{model}:embedContent",
    "POST /v1/models/{model}:<same Gemini actions>",
    "GET /v1beta/models",
    "POST /api/chat",
    "POST /api/generate",
    "POST /api/embed",
    "GET /api/tags",
];

/// Classifies a request by method, path, query and headers.
///
/// Like [`classify`], plus one client fact only a header or query shows: google-genai lists
/// models with `GET /v1/models[/{model}]`, the same path as OpenAI's, and tells itself apart by
/// sending its key as `x-goog-api-key` or `?key=`. `has_header` is asked for lower-case names.
pub fn classify_request(
    method: &str,
    path: &str,
    query: Option<&str>,
    has_header: impl Fn(&str) -> bool,
) -> Option<Route> {
    let mut route = classify(method, path)?;
    if route.provider == Provider::OpenAi && route.operation == Operation::ListModels {
        let key_in_query = query.is_some_and(|q| q.split('&').any(|kv| kv.starts_with("key=")));
        if key_in_query || has_header("x-goog-api-key") {
            route.provider = Provider::Gemini;
        }
    }
    Some(route)
}

/// Classifies a request by method and path (no query string, no named-upstream prefix).
///
/// Returns `None` for paths no provider defines; the caller answers 404.
pub fn classify(method: &str, path: &str) -> Option<Route> {
    use Operation::*;
    use Provider::*;
    let post = method.eq_ignore_ascii_case("POST");
    let get = method.eq_ignore_ascii_case("GET");
    let path = path.strip_suffix('/').unwrap_or(path);

    // Gemini first: its model paths contain a colon action, which tells them apart from OpenAI's
    // `GET /v1/models/{id}`.
    for prefix in ["/v1beta/", "/v1/", "/v1alpha/"] {
        if let Some(rest) = path.strip_prefix(prefix) {
            if let Some((model, action)) = rest
                .strip_prefix("models/")
                .and_then(|m| m.rsplit_once(':'))
            {
                if !post || model.is_empty() || model.contains('/') {
                    return None;
                }
                let operation = match action {
                    "generateContent" => GenerateContent,
                    "streamGenerateContent" => StreamGenerateContent,
                    "countTokens" => CountTokens,
                    "embedContent" | "batchEmbedContents" => EmbedContent,
                    _ => return None,
                };
                return Some(Route {
                    provider: Gemini,
                    operation,
                    path_model: Some(model.to_string()),
                });
            }
            if prefix != "/v1/" && get {
                if rest == "models" {
                    return Some(Route::new(Gemini, ListModels));
                }
                if let Some(model) = rest
                    .strip_prefix("models/")
                    .filter(|m| !m.is_empty() && !m.contains('/'))
                {
                    return Some(Route {
                        path_model: Some(model.to_string()),
                        ..Route::new(Gemini, ListModels)
                    });
                }
            }
        }
    }

    let route = match (path, post, get) {
        ("/v1/chat/completions", true, _) => Route::new(OpenAi, ChatCompletions),
        ("/v1/completions", true, _) => Route::new(OpenAi, Completions),
        ("/v1/embeddings", true, _) => Route::new(OpenAi, Embeddings),
        ("/v1/responses", true, _) => Route::new(OpenAi, Responses),
        ("/v1/models", _, true) => Route::new(OpenAi, ListModels),
        ("/v1/messages", true, _) => Route::new(Anthropic, Messages),
        ("/v1/messages/count_tokens", true, _) => Route::new(Anthropic, CountTokens),
        ("/api/chat", true, _) => Route::new(Ollama, OllamaChat),
        ("/api/generate", true, _) => Route::new(Ollama, OllamaGenerate),
        ("/api/embed" | "/api/embeddings", true, _) => Route::new(Ollama, EmbedContent),
        ("/api/tags" | "/api/ps" | "/api/version", _, true) => Route::new(Ollama, OllamaInfo),
        ("/api/show", true, _) => Route::new(Ollama, OllamaInfo),
        _ => {
            let id = path.strip_prefix("/v1/models/")?;
            if !get || id.is_empty() {
                return None;
            }
            // OpenAI model ids may contain a slash (`ft:...`, OpenRouter's `vendor/model`).
            Route {
                path_model: Some(id.to_string()),
                ..Route::new(OpenAi, ListModels)
            }
        }
    };
    Some(route)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(method: &str, path: &str) -> Option<(Provider, Operation, Option<String>)> {
        classify(method, path).map(|r| (r.provider, r.operation, r.path_model))
    }

    #[test]
    fn openai_routes() {
        assert_eq!(
            op("POST", "/v1/chat/completions"),
            Some((Provider::OpenAi, Operation::ChatCompletions, None))
        );
        assert_eq!(
            op("GET", "/v1/models"),
            Some((Provider::OpenAi, Operation::ListModels, None))
        );
        assert_eq!(
            op("GET", "/v1/models/gpt-4o"),
            Some((
                Provider::OpenAi,
                Operation::ListModels,
                Some("gpt-4o".into())
            ))
        );
        assert_eq!(op("GET", "/v1/chat/completions"), None);
    }

    #[test]
    fn gemini_under_both_prefixes() {
        for prefix in ["/v1beta", "/v1"] {
            let path = format!("{prefix}/models/gemini-2.5-flash:streamGenerateContent");
            assert_eq!(
                op("POST", &path),
                Some((
                    Provider::Gemini,
                    Operation::StreamGenerateContent,
                    Some("gemini-2.5-flash".into())
                ))
            );
        }
        assert_eq!(op("POST", "/v1beta/models/x:unknownAction"), None);
        assert_eq!(op("GET", "/v1beta/models/x:generateContent"), None);
        assert_eq!(
            op("GET", "/v1beta/models"),
            Some((Provider::Gemini, Operation::ListModels, None))
        );
    }

    #[test]
    fn gemini_model_listing_under_v1_is_told_apart_by_its_key() {
        let r = classify_request("GET", "/v1/models", None, |h| h == "x-goog-api-key").unwrap();
        assert_eq!(r.provider, Provider::Gemini);
        let r = classify_request(
            "GET",
            "/v1/models/gemini-2.5-flash",
            Some("key=AIza"),
            |_| false,
        )
        .unwrap();
        assert_eq!(
            (r.provider, r.path_model.as_deref()),
            (Provider::Gemini, Some("gemini-2.5-flash"))
        );
        let r = classify_request("GET", "/v1/models", Some("monkey=1"), |_| false).unwrap();
        assert_eq!(r.provider, Provider::OpenAi);
    }

    #[test]
    fn anthropic_and_ollama() {
        assert_eq!(
            op("POST", "/v1/messages/count_tokens"),
            Some((Provider::Anthropic, Operation::CountTokens, None))
        );
        assert_eq!(
            op("POST", "/api/chat"),
            Some((Provider::Ollama, Operation::OllamaChat, None))
        );
        assert_eq!(
            op("GET", "/api/tags"),
            Some((Provider::Ollama, Operation::OllamaInfo, None))
        );
        assert_eq!(op("POST", "/nope"), None);
    }
}
