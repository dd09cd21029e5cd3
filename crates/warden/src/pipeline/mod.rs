//! The request pipeline: one exchange from the client's request to the released response.
//!
//! ```text
//! client ─► route ─► read body (limits) ─► parse (warden-protocol) ─► forward ─► inspect ─► client
//!             │            │                      │                      │           │
//!             └── 404      └── 413                └── 400                └── 502/504 └── recorded at end
//!                              every refusal and every finished body ─► record
//! ```
//!
//! [`handle`] is the spine and reads top to bottom in the order of DESIGN.md; each stage lives
//! in its own module. Every path out of `handle`, success or refusal, produces exactly one
//! [`record::ExchangeRecord`]. Stages not built yet (identify, decide, protect) slot in between
//! parse and forward without changing this shape.

pub mod forward;
pub mod identify;
pub mod inspect;
pub mod record;
pub mod refuse;
pub mod route;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited, combinators::BoxBody};
use hyper::body::Incoming;
use tokio::sync::Semaphore;
use warden_protocol::{Exchange, Framing, parse_request};

use crate::config::Config;
use forward::Upstreams;
use identify::Identity;
use inspect::{InspectBody, Pending};
use record::{ExchangeRecord, Outcome, Recorder};
use refuse::GatewayError;
use route::{Router, Target};

/// Boxed error for response bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The response body type of every gateway response.
pub type GatewayBody = BoxBody<Bytes, BoxError>;

/// A complete in-memory body.
pub fn full(bytes: impl Into<Bytes>) -> GatewayBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// Everything one gateway worker needs to serve requests.
///
/// The gateway runs one worker per core, each on its own single-threaded runtime (no work
/// stealing, no cross-thread wake-ups on the hot path). Workers share the config, the
/// concurrency limit, readiness and the recorder; each has its own pooled upstream client so a
/// pooled connection is always driven by the thread that uses it.
pub struct Gateway {
    /// The validated configuration.
    pub config: Arc<Config>,
    router: Arc<Router>,
    upstreams: Upstreams,
    permits: Arc<Semaphore>,
    /// Where finished exchanges go.
    pub recorder: Arc<Recorder>,
    ready: Arc<AtomicBool>,
}

impl Gateway {
    /// Builds the shared state from a validated config.
    pub fn new(config: Config) -> Gateway {
        Gateway {
            router: Arc::new(Router::new(&config)),
            upstreams: Upstreams::new(&config),
            permits: Arc::new(Semaphore::new(config.limits.max_concurrent_requests)),
            recorder: Arc::new(Recorder::default()),
            ready: Arc::new(AtomicBool::new(true)),
            config: Arc::new(config),
        }
    }

    /// Another worker of the same gateway: shared state, its own upstream connection pool.
    pub fn worker(&self) -> Gateway {
        Gateway {
            config: self.config.clone(),
            router: self.router.clone(),
            upstreams: Upstreams::new(&self.config),
            permits: self.permits.clone(),
            recorder: self.recorder.clone(),
            ready: self.ready.clone(),
        }
    }

    /// Marks the gateway ready or not for `/readyz`.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// The configured upstreams.
    pub fn router(&self) -> &Router {
        &self.router
    }
}

/// Handles one request. Never fails: every error becomes a provider-shaped response.
pub async fn handle(
    gw: Arc<Gateway>,
    req: Request<Incoming>,
) -> Result<Response<GatewayBody>, Infallible> {
    if let Some(resp) = local(&gw, &req) {
        return Ok(resp);
    }
    let method = req.method().clone();
    let path = req.uri().path().to_string();

    // route
    let target = match gw
        .router
        .resolve(method.as_str(), &path, req.uri().query(), req.headers())
    {
        Ok(t) => t,
        Err(e) => {
            let provider = refuse::guess_provider(&path, req.headers());
            tracing::info!(target: "warden::exchange", %method, path, status = e.status.as_u16(), outcome = "not_found", "exchange");
            return Ok(e.into_response(provider));
        }
    };
    // identify
    let identity = match identify::identify(req.headers()) {
        Ok(id) => id,
        Err(e) => {
            return Ok(refuse(
                &gw,
                &target,
                Identity::default(),
                &method,
                &path,
                None,
                e,
            ));
        }
    };
    let Ok(permit) = gw.permits.clone().try_acquire_owned() else {
        let e = GatewayError::overloaded(gw.config.limits.max_concurrent_requests);
        return Ok(refuse(
            &gw,
            &target,
            identity.clone(),
            &method,
            &path,
            None,
            e,
        ));
    };

    // read body, within limits
    let (parts, body) = req.into_parts();
    let body = match read_body(&parts.headers, body, gw.config.limits.max_request_bytes).await {
        Ok(b) => b,
        Err(e) => {
            return Ok(refuse(
                &gw,
                &target,
                identity.clone(),
                &method,
                &path,
                None,
                e,
            ));
        }
    };

    // parse into the exchange model
    let request = if target.route.operation.has_body() {
        match parse_request(&target.route, &body) {
            Ok(r) => Some(r),
            Err(e) => {
                let e = GatewayError::invalid_request(format!(
                    "Warden could not read this {} request: {e}",
                    target.route.provider
                ));
                return Ok(refuse(
                    &gw,
                    &target,
                    identity.clone(),
                    &method,
                    &path,
                    None,
                    e,
                ));
            }
        }
    } else {
        None
    };
    let stream_requested = request.as_ref().is_some_and(|r| r.stream);

    // forward
    let query = parts.uri.query();
    let upstream_req =
        match gw
            .upstreams
            .build_request(&target, method.clone(), query, parts.headers, body)
        {
            Ok(r) => r,
            Err(e) => {
                return Ok(refuse(
                    &gw,
                    &target,
                    identity.clone(),
                    &method,
                    &path,
                    request,
                    e,
                ));
            }
        };
    let started = Instant::now();
    let upstream_resp = match gw.upstreams.send(&target, upstream_req).await {
        Ok(r) => r,
        Err(e) => {
            return Ok(refuse(
                &gw,
                &target,
                identity.clone(),
                &method,
                &path,
                request,
                e,
            ));
        }
    };

    // inspect + release: the body records the exchange when it ends
    let (mut head, incoming) = upstream_resp.into_parts();
    forward::strip_hop_by_hop(&mut head.headers);
    let content_type = head
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let framing = Framing::detect(&target.route, content_type, stream_requested);
    let pending = Pending {
        exchange: Exchange {
            route: target.route.clone(),
            request,
            response: None,
            upstream_status: Some(head.status.as_u16()),
            upstream_latency_us: None,
        },
        identity,
        upstream: target.upstream.name.clone(),
        method: method.to_string(),
        path,
        started,
        recorder: gw.recorder.clone(),
        permit: Some(permit),
    };
    let body = InspectBody::new(incoming, framing, gw.config.limits.idle_timeout, pending);
    Ok(Response::from_parts(head, body.boxed()))
}

/// Answers a refusal in `provider`'s shape and records it.
fn refuse(
    gw: &Gateway,
    target: &Target,
    identity: Identity,
    method: &Method,
    path: &str,
    request: Option<warden_protocol::ExchangeRequest>,
    e: GatewayError,
) -> Response<GatewayBody> {
    gw.recorder.record(ExchangeRecord {
        exchange: Exchange {
            route: target.route.clone(),
            request,
            response: None,
            upstream_status: None,
            upstream_latency_us: None,
        },
        identity,
        upstream: Some(target.upstream.name.clone()),
        method: method.to_string(),
        path: path.to_string(),
        outcome: Outcome::Refused {
            status: e.status.as_u16(),
            code: e.kind.type_and_code().1,
            source: e.origin,
            message: e.message.clone(),
        },
    });
    e.into_response(target.route.provider)
}

async fn read_body(
    headers: &http::HeaderMap,
    body: Incoming,
    limit: usize,
) -> Result<Bytes, GatewayError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(GatewayError::too_large(limit));
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(GatewayError::too_large(limit)),
        Err(e) => Err(GatewayError::invalid_request(format!(
            "the request body could not be read: {}",
            forward::root_cause(e.as_ref())
        ))),
    }
}

/// The gateway's own endpoints.
fn local(gw: &Gateway, req: &Request<Incoming>) -> Option<Response<GatewayBody>> {
    if req.method() != Method::GET {
        return None;
    }
    let (status, body) = match req.uri().path() {
        "/healthz" => (StatusCode::OK, r#"{"status":"ok"}"#),
        "/readyz" if gw.ready.load(Ordering::Relaxed) => (StatusCode::OK, r#"{"status":"ready"}"#),
        "/readyz" => (StatusCode::SERVICE_UNAVAILABLE, r#"{"status":"not_ready"}"#),
        _ => return None,
    };
    let mut resp = Response::new(full(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Some(resp)
}
