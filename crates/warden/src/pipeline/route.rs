//! Route stage: which upstream and which provider operation a request is for.
//!
//! A path either starts with a configured upstream's name (`/vllm/v1/chat/completions`) or is a
//! provider's own path served by that provider's default upstream. The operation itself is
//! classified by `warden-protocol`; this module only adds the upstream choice.

use std::sync::Arc;

use warden_protocol::route::SUPPORTED_ROUTES;
use warden_protocol::{Route, classify_request};

use super::refuse::GatewayError;
use crate::config::{Config, Upstream};

/// Where a request goes.
#[derive(Debug, Clone)]
pub struct Target {
    /// Classified operation.
    pub route: Route,
    /// Chosen upstream.
    pub upstream: Arc<Upstream>,
    /// The path to send upstream (the client's path minus any upstream-name prefix).
    pub path: String,
}

/// Upstreams indexed for lookup on every request.
#[derive(Debug)]
pub struct Router {
    upstreams: Vec<Arc<Upstream>>,
}

impl Router {
    /// Builds the router from a validated config.
    pub fn new(config: &Config) -> Router {
        Router {
            upstreams: config.upstreams.iter().cloned().map(Arc::new).collect(),
        }
    }

    /// Resolves a request to a target, or a provider-shaped 404.
    pub fn resolve(
        &self,
        method: &str,
        path: &str,
        query: Option<&str>,
        headers: &http::HeaderMap,
    ) -> Result<Target, GatewayError> {
        let classify = |p: &str| classify_request(method, p, query, |h| headers.contains_key(h));
        // A named prefix wins: `/openai/v1/...` reaches the upstream named `openai` explicitly.
        let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
        if let Some(up) = self.upstreams.iter().find(|u| u.name == first) {
            let rest = &path[1 + first.len()..];
            let rest = if rest.is_empty() { "/" } else { rest };
            return match classify(rest) {
                Some(route) if route.provider == up.provider => Ok(Target {
                    route,
                    upstream: up.clone(),
                    path: rest.to_string(),
                }),
                Some(route) => Err(GatewayError::not_found(format!(
                    "upstream `{}` speaks the {} protocol, but {method} {rest} is a {} route",
                    up.name, up.provider, route.provider
                ))),
                None => Err(not_found(method, path)),
            };
        }
        let route = classify(path).ok_or_else(|| not_found(method, path))?;
        let upstream = self
            .upstreams
            .iter()
            .find(|u| u.provider == route.provider && u.default)
            .expect("the config holds a default upstream for every provider")
            .clone();
        Ok(Target {
            route,
            upstream,
            path: path.to_string(),
        })
    }

    /// Every upstream, for status output.
    pub fn upstreams(&self) -> &[Arc<Upstream>] {
        &self.upstreams
    }
}

fn not_found(method: &str, path: &str) -> GatewayError {
    GatewayError::not_found(format!(
        "Warden has no route for {method} {path}. Supported routes: {}; each can be prefixed with a configured upstream name (e.g. /<name>/v1/chat/completions).",
        SUPPORTED_ROUTES.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overrides;
    use warden_protocol::{Operation, Provider};

    fn router() -> Router {
        let cfg = Config::from_str(
            "[upstreams.vllm]\nprovider = \"openai\"\nurl = \"http://127.0.0.1:8000\"\n",
            "t",
            &Overrides::default(),
        )
        .unwrap();
        Router::new(&cfg)
    }

    #[test]
    fn root_paths_use_the_default_upstream() {
        let t = router()
            .resolve("POST", "/v1/messages", None, &http::HeaderMap::new())
            .unwrap();
        assert_eq!(t.upstream.name, "anthropic");
        assert_eq!(t.route.operation, Operation::Messages);
        assert_eq!(t.path, "/v1/messages");
    }

    #[test]
    fn named_prefix_selects_the_upstream_and_is_stripped() {
        let t = router()
            .resolve(
                "POST",
                "/vllm/v1/chat/completions",
                None,
                &http::HeaderMap::new(),
            )
            .unwrap();
        assert_eq!(t.upstream.name, "vllm");
        assert_eq!(t.route.provider, Provider::OpenAi);
        assert_eq!(t.path, "/v1/chat/completions");
        let t = router()
            .resolve(
                "POST",
                "/gemini/v1beta/models/g:generateContent",
                None,
                &http::HeaderMap::new(),
            )
            .unwrap();
        assert_eq!(t.upstream.name, "gemini");
    }

    #[test]
    fn gemini_model_listing_on_the_openai_path_goes_to_gemini() {
        let mut h = http::HeaderMap::new();
        h.insert("x-goog-api-key", http::HeaderValue::from_static("k"));
        let t = router().resolve("GET", "/v1/models", None, &h).unwrap();
        assert_eq!(t.upstream.name, "gemini");
        let t = router()
            .resolve("GET", "/v1/models", None, &http::HeaderMap::new())
            .unwrap();
        assert_eq!(t.upstream.name, "openai");
    }

    #[test]
    fn wrong_protocol_for_prefix_is_404_naming_both() {
        let e = router()
            .resolve("POST", "/vllm/v1/messages", None, &http::HeaderMap::new())
            .unwrap_err();
        assert_eq!(e.status, 404);
        assert!(e.message.contains("vllm"), "{}", e.message);
    }

    #[test]
    fn unknown_path_lists_routes() {
        let e = router()
            .resolve("POST", "/v2/whatever", None, &http::HeaderMap::new())
            .unwrap_err();
        assert!(e.message.contains("/v1/chat/completions"));
        assert!(e.message.contains("/api/chat"));
    }
}
