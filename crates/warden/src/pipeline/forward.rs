//! Forward stage: build the upstream request from the client's and send it over a pooled,
//! keep-alive connection (rustls for https, webpki roots).
//!
//! This module decides which headers cross the gateway (RFC 9110 hop-by-hop handling) and maps
//! transport failures to 502/504. It does not read or change bodies; it sends what it is given.

use std::collections::HashMap;
use std::time::Duration;
use warden_protocol::Provider;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;

use super::refuse::GatewayError;
use super::route::Target;
use crate::config::{Config, Limits};

/// The pooled http/https client the gateway uses for upstreams (and the witness submitter).
pub type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The pooled upstream clients: one shared by every upstream with the built-in roots, and one
/// per upstream that trusts an extra CA (`ca_file`), so a private CA is trusted only there.
#[derive(Clone)]
pub struct Upstreams {
    client: HttpsClient,
    private_ca: HashMap<String, HttpsClient>,
    response_timeout: Duration,
    connect_timeout: Duration,
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus the proxy ones.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];

/// Removes hop-by-hop headers, including any the `connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove(header::TRANSFER_ENCODING);
}

impl Upstreams {
    /// Builds the clients from the config.
    pub fn new(config: &Config) -> Upstreams {
        let limits = &config.limits;
        let private_ca = config
            .upstreams
            .iter()
            .filter(|u| !u.ca_certs.is_empty())
            .map(|u| (u.name.clone(), build_client(limits, &u.ca_certs)))
            .collect();
        Upstreams {
            client: build_client(limits, &[]),
            private_ca,
            response_timeout: limits.response_timeout,
            connect_timeout: limits.connect_timeout,
        }
    }

    /// Builds the upstream request: same method, the target's path and the client's query, the
    /// client's headers minus hop-by-hop and `x-warden-*`, `host` set to the upstream.
    pub fn build_request(
        &self,
        target: &Target,
        method: http::Method,
        query: Option<&str>,
        mut headers: HeaderMap,
        body: Bytes,
        credential: Option<Option<&str>>,
    ) -> Result<Request<Full<Bytes>>, GatewayError> {
        // With virtual keys the caller's key is Warden's, never the provider's: it is removed
        // wherever the SDK put it, and the provider key (if configured) takes its place.
        let stripped;
        let query = match credential {
            Some(key) => {
                for h in ["authorization", "x-api-key", "x-goog-api-key"] {
                    headers.remove(h);
                }
                if let Some(key) = key {
                    let (name, value) = match target.route.provider {
                        Provider::Anthropic => ("x-api-key", key.to_string()),
                        Provider::Gemini => ("x-goog-api-key", key.to_string()),
                        Provider::OpenAi | Provider::Ollama => {
                            ("authorization", format!("Bearer {key}"))
                        }
                    };
                    let mut v = HeaderValue::from_str(&value).map_err(|_| {
                        GatewayError::internal(format!(
                            "the provider key for upstream {} has characters a header cannot carry",
                            target.upstream.name
                        ))
                    })?;
                    v.set_sensitive(true);
                    headers.insert(name, v);
                }
                stripped = query.map(|q| {
                    q.split('&')
                        .filter(|p| !p.starts_with("key="))
                        .collect::<Vec<_>>()
                        .join("&")
                });
                stripped.as_deref().filter(|q| !q.is_empty())
            }
            None => query,
        };
        let base = &target.upstream.url;
        let mut uri = String::with_capacity(
            base.scheme.len()
                + base.authority.len()
                + base.path_prefix.len()
                + target.path.len()
                + 16,
        );
        uri.push_str(&base.scheme);
        uri.push_str("://");
        uri.push_str(&base.authority);
        uri.push_str(&base.path_prefix);
        uri.push_str(&target.path);
        if let Some(q) = query {
            uri.push('?');
            uri.push_str(q);
        }
        let uri: Uri = uri.parse().map_err(|e| {
            GatewayError::invalid_request(format!("the request path cannot be forwarded: {e}"))
        })?;

        strip_hop_by_hop(&mut headers);
        headers.retain_warden_free();
        headers.remove(header::CONTENT_LENGTH);
        // The gateway must read responses to inspect and record them, so it asks for identity
        // encoding upstream; clients still get a valid (uncompressed) response.
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("identity"),
        );
        headers.insert(
            header::HOST,
            HeaderValue::from_str(&base.authority).expect("authority was validated"),
        );
        if !body.is_empty() || method == http::Method::POST {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = method;
        *req.uri_mut() = uri;
        *req.headers_mut() = headers;
        Ok(req)
    }

    /// Sends the request and waits for the response head, within `limits.response_timeout`.
    pub async fn send(
        &self,
        target: &Target,
        req: Request<Full<Bytes>>,
    ) -> Result<http::Response<Incoming>, GatewayError> {
        let upstream = &target.upstream;
        let client = self.private_ca.get(&upstream.name).unwrap_or(&self.client);
        match tokio::time::timeout(self.response_timeout, client.request(req)).await {
            Err(_) => Err(GatewayError::upstream_timeout(format!(
                "upstream `{}` ({}) sent no response within {:?} (limits.response_timeout)",
                upstream.name, upstream.url, self.response_timeout
            ))),
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => {
                let cause = root_cause(&e);
                if e.is_connect() && cause.contains("timed out") {
                    Err(GatewayError::upstream_timeout(format!(
                        "could not connect to upstream `{}` ({}) within {:?} (limits.connect_timeout)",
                        upstream.name, upstream.url, self.connect_timeout
                    )))
                } else if e.is_connect() {
                    Err(GatewayError::upstream_unreachable(format!(
                        "cannot reach upstream `{}` ({}): {cause}; check that it is running and the URL in --upstream / [upstreams.{}] is right",
                        upstream.name, upstream.url, upstream.name
                    )))
                } else {
                    Err(GatewayError::upstream_unreachable(format!(
                        "upstream `{}` ({}) failed before answering: {cause}",
                        upstream.name, upstream.url
                    )))
                }
            }
        }
    }
}

/// A pooled keep-alive client trusting the webpki roots plus `extra_roots`.
pub fn build_client(limits: &Limits, extra_roots: &[CertificateDer<'static>]) -> HttpsClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(limits.connect_timeout));
    http.set_keepalive(Some(Duration::from_secs(60)));
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for cert in extra_roots {
        // Validated when the config was loaded; a certificate rustls rejects here is skipped
        // and the handshake then fails with a clear "unknown issuer" error.
        let _ = roots.add(cert.clone());
    }
    let tls = rustls::ClientConfig::builder_with_provider(
        rustls::crypto::ring::default_provider().into(),
    )
    .with_safe_default_protocol_versions()
    .expect("ring supports the default TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(256)
        .build(https)
}

/// The innermost error message, which is the one that says what actually happened.
pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur: &(dyn std::error::Error + 'static) = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    let msg = cur.to_string();
    if msg.is_empty() { e.to_string() } else { msg }
}

trait RetainWardenFree {
    fn retain_warden_free(&mut self);
}

impl RetainWardenFree for HeaderMap {
    /// `x-warden-*` headers are addressed to the gateway; the provider has no use for them.
    fn retain_warden_free(&mut self) {
        let names: Vec<HeaderName> = self
            .keys()
            .filter(|k| k.as_str().starts_with("x-warden-"))
            .cloned()
            .collect();
        for n in names {
            self.remove(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_connection_tokens_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-custom-hop"),
        );
        h.insert("x-custom-hop", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("te", HeaderValue::from_static("trailers"));
        h.insert("authorization", HeaderValue::from_static("Bearer sk-test"));
        h.insert("anthropic-version", HeaderValue::from_static("2023-06-01"));
        strip_hop_by_hop(&mut h);
        assert!(h.get("x-custom-hop").is_none());
        assert!(h.get("keep-alive").is_none());
        assert!(h.get("te").is_none());
        assert_eq!(h.get("authorization").unwrap(), "Bearer sk-test");
        assert_eq!(h.get("anthropic-version").unwrap(), "2023-06-01");
    }
}
