//! The request pipeline: one exchange from the client's request to the released response.
//!
//! ```text
//! client ─► route ─► identify ─► kill ─► admit ─► read body ─► parse ─► decide ─► [record request] ─► forward
//!             │          │         │        │          │          │        │       (streams)           │
//!            404      400/401     403      503        413        400   403/429                     502/504
//!
//! buffered: collect body ─► record exchange (durable) ─► release with receipt headers
//! stream:   release headers ─► events flow ─► upstream ends ─► record ─► receipt + terminal event
//! every refusal above is recorded before it is answered
//! ```
//!
//! [`handle`] is the spine and [`exchange`] runs the stages in DESIGN.md's order over one
//! [`Flight`] (the per-request context); each stage lives in its own module. Every routed
//! request, allowed or refused, produces exactly one finished [`record::ExchangeRecord`] (plus a
//! request record first for streams), and nothing is released before its record is committed.
//! `decide` judges the request (rules, limits, budgets) and [`decide::settle`] charges what it
//! really cost when it ends. `protect` rewrites or blocks sensitive content in the request
//! before it is forwarded and in the response before it is released.

pub mod decide;
pub mod entry;
pub mod forward;
pub mod govern;
pub mod identify;
pub mod inspect;
pub mod prefetch;
pub mod protect;
pub mod record;
pub mod refuse;
pub mod release;
pub mod route;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited, combinators::BoxBody};
use hyper::body::Incoming;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use warden_protocol::{
    Exchange, ExchangeRequest, ExchangeResponse, Framing, parse_request, parse_response,
};

use crate::config::Config;
use crate::control::{Control, FlightGuard};
use decide::{Admission, Cost, Verdict};
use forward::Upstreams;
use identify::Identity;
use inspect::StreamBody;
use record::{BodyDigest, Commit, ExchangeRecord, Outcome, Recorder};
use refuse::GatewayError;
use route::{Router, Target};
use warden_ledger::log::Ledger;

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
    /// Keys, policy, kills, budgets, metrics.
    pub control: Arc<Control>,
    /// The admin API's state.
    pub admin: crate::admin::AdminState,
}

impl Gateway {
    /// Builds the shared state from a validated config and the opened ledger (`None` when
    /// `audit.enabled = false`).
    ///
    /// `admin_token` guards `/admin/`; `reload` says where `POST /admin/reload` re-reads the
    /// config from.
    pub fn new(
        config: Config,
        ledger: Option<Arc<Ledger>>,
        control: Arc<Control>,
        admin_token: String,
        reload: Option<crate::admin::ReloadSource>,
    ) -> Gateway {
        let ready = Arc::new(AtomicBool::new(true));
        let recorder = Arc::new(
            Recorder::new(ready.clone(), ledger, config.audit.capture).with_blobs(
                crate::audit::BlobStore::new(&config.ledger_dir()),
                config.audit.blob_threshold,
            ),
        );
        let config = Arc::new(config);
        Gateway {
            admin: crate::admin::AdminState::new(
                control.clone(),
                recorder.clone(),
                config.clone(),
                admin_token,
                reload,
                ready.clone(),
            ),
            control,
            router: Arc::new(Router::new(&config)),
            upstreams: Upstreams::new(&config),
            permits: Arc::new(Semaphore::new(config.limits.max_concurrent_requests)),
            recorder,
            ready,
            config,
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
            control: self.control.clone(),
            admin: self.admin.clone(),
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

/// One exchange in flight: what the stages know so far (pingora's per-request `CTX`). Stages
/// fill it in order; [`Flight::finish`] turns it into the exchange's record.
pub struct Flight {
    recorder: Arc<Recorder>,
    control: Arc<Control>,
    /// When the gateway received the request.
    pub received: Instant,
    /// Where the request goes.
    pub target: Target,
    /// Who is calling.
    pub identity: Identity,
    /// Client's method.
    pub method: Method,
    /// Client's path (no query).
    pub path: String,
    /// The parsed request.
    pub request: Option<ExchangeRequest>,
    /// Digest of the request body as forwarded.
    pub request_digest: Option<BodyDigest>,
    /// Ledger index of the request record committed before forwarding, if any.
    pub request_entry: Option<u64>,
    /// Upstream status once it answered.
    pub upstream_status: Option<u16>,
    /// When the request was forwarded.
    pub started: Option<Instant>,
    /// The concurrency slot, released when the exchange is done.
    pub permit: Option<OwnedSemaphorePermit>,
    /// The caller's virtual key, when one was used.
    pub key: Option<warden_state::KeyInfo>,
    /// What the decide stage concluded.
    pub verdict: Verdict,
    /// Reservations, rates and slots held until the exchange ends.
    pub admission: Option<Admission>,
    /// A stream's registration, so kills and budgets can cut it.
    pub tracked: Option<FlightGuard>,
    /// Upstream time, once the response ended.
    pub upstream_time: Option<std::time::Duration>,
    /// Warden asked the upstream for stream usage the client did not ask for, so the extra
    /// usage chunk is hidden from the client.
    pub hide_usage: bool,
    /// What content protection found and did.
    pub protect: protect::ProtectRecord,
    /// The content-protection settings this exchange runs under, read once when it starts so a
    /// reload mid-exchange cannot mix two configurations.
    pub protection: Arc<crate::config::ProtectConfig>,
    /// The tool rules this exchange runs under, read once when it starts.
    pub tools: Arc<crate::config::ToolsConfig>,
    /// What tool-call governance judged and did.
    pub govern: govern::GovernRecord,
    /// The request waits for a human before it is forwarded.
    pub hold: Option<decide::Hold>,
    /// The response was already scanned (buffered, or a stream with a protector), so
    /// [`Flight::finish`] does not scan it again.
    pub protect_streamed: bool,
    /// The exchange's completion is with the recorder (the buffered path records it before
    /// release), so a flight dropped afterwards has nothing left to record.
    pub completed: bool,
    /// Counts this exchange in `warden_inflight_requests` until it ends.
    _inflight: crate::metrics::InflightGuard,
}

/// Holds a flight while its exchange runs. If the client goes away first (the connection
/// drops the request's future), the exchange is still recorded, as `client_cancelled`, and its
/// budget reservation settled, as a stream's body does when dropped; otherwise a request that
/// reached the provider would leave no entry, and its reservation would hold until restart.
struct Unreleased(Option<Flight>);

impl Unreleased {
    fn flight(&mut self) -> &mut Flight {
        self.0
            .as_mut()
            .expect("an exchange's flight is there until it is released")
    }

    fn release(mut self) -> Flight {
        self.0
            .take()
            .expect("an exchange's flight is released once")
    }
}

impl Drop for Unreleased {
    fn drop(&mut self) {
        if let Some(flight) = self.0.take()
            && !flight.completed
        {
            // Queued now; nothing waits for it to be durable.
            drop(flight.finish(Outcome::ClientCancelled, None, None));
        }
    }
}

impl Flight {
    /// The model the request names (body, else path).
    pub fn model(&self) -> Option<&str> {
        self.request
            .as_ref()
            .and_then(|r| r.model.as_deref())
            .or(self.target.route.path_model.as_deref())
    }

    /// What tool-call governance needs about this exchange.
    pub fn govern_ctx(&self) -> govern::GovernCtx {
        govern::GovernCtx {
            tools: self.tools.clone(),
            protection: self.protection.clone(),
            approvals: self.control.approvals.clone(),
            recorder: self.recorder.clone(),
            identity: self.identity.clone(),
            provider: self.target.route.provider.name(),
            model: self.model().map(str::to_string),
        }
    }

    /// Who is calling, for tokenize and restore.
    pub fn caller(&self) -> protect::Caller {
        // Placeholders are per conversation; without `x-warden-session` the agent's requests
        // share one scope (never across tenants).
        protect::Caller {
            tenant: self.identity.tenant.clone(),
            session: self
                .identity
                .session
                .clone()
                .or_else(|| self.identity.agent.clone())
                .or_else(|| Some(String::new())),
        }
    }

    fn record(
        &self,
        outcome: Outcome,
        response: Option<ExchangeResponse>,
        response_digest: Option<BodyDigest>,
        cost: Option<Cost>,
    ) -> ExchangeRecord {
        let mut rec = self.record_raw(outcome, response, response_digest, cost);
        self.redact(&mut rec);
        rec
    }

    /// `audit.capture = "redacted"`: no detected value reaches the ledger.
    fn redact(&self, rec: &mut ExchangeRecord) {
        if self.recorder.capture() == crate::config::Capture::Redacted {
            protect::redact_record(&self.protection, rec);
        }
    }

    fn record_raw(
        &self,
        outcome: Outcome,
        response: Option<ExchangeResponse>,
        response_digest: Option<BodyDigest>,
        cost: Option<Cost>,
    ) -> ExchangeRecord {
        ExchangeRecord {
            tools: self.govern.clone(),
            protect: self.protect.clone(),
            verdict: self.verdict.clone(),
            cost,
            exchange: Exchange {
                route: self.target.route.clone(),
                request: self.request.clone(),
                response,
                upstream_status: self.upstream_status,
                upstream_latency_us: self.started.map(|s| s.elapsed().as_micros() as u64),
            },
            identity: self.identity.clone(),
            upstream: Some(self.target.upstream.name.clone()),
            method: self.method.to_string(),
            path: self.path.clone(),
            outcome,
            request_digest: self.request_digest.clone(),
            response_digest,
            request_entry: self.request_entry,
        }
    }

    /// Records the finished exchange; the commit resolves when it is durable.
    pub fn finish(
        mut self,
        outcome: Outcome,
        response: Option<ExchangeResponse>,
        response_digest: Option<BodyDigest>,
    ) -> Commit {
        if self.upstream_time.is_none() {
            self.upstream_time = self.started.map(|s| s.elapsed());
        }
        let control = self.control.clone();
        let abandoned = matches!(outcome, Outcome::ClientCancelled);
        let cost = decide::settle(&control, &mut self, response.as_ref(), abandoned);
        self.observe(&outcome, response.as_ref(), cost.as_ref());
        // The flight ends here, so its parsed request (the whole conversation) moves into the
        // record instead of being copied.
        let request = self.request.take();
        let mut rec = self.record_raw(outcome, response, response_digest, cost);
        rec.exchange.request = request;
        if let Some(resp) = rec.exchange.response.as_ref()
            && !self.protect_streamed
        {
            // A stream that ran without a protector (nothing to rewrite) is still reported.
            protect::response_findings(&self.protection, &self.caller(), resp, &mut rec.protect);
        }
        self.meter(&rec);
        self.redact(&mut rec);
        self.recorder.commit(rec)
    }

    /// Content-protection findings and judged tool calls of a finished record.
    fn meter(&self, rec: &ExchangeRecord) {
        for c in &rec.tools.calls {
            self.control.metrics.tool_call(&c.rule, c.action, c.result);
        }
        for f in &rec.protect.findings {
            self.control.metrics.protect_finding(
                f.direction,
                &f.kind,
                f.action,
                u64::from(f.count),
            );
        }
    }

    /// Metrics for the finished exchange.
    fn observe(&self, outcome: &Outcome, response: Option<&ExchangeResponse>, cost: Option<&Cost>) {
        let (status, refusal) = match outcome {
            Outcome::Refused { status, code, .. } => (*status, Some(*code)),
            _ => (self.upstream_status.unwrap_or(0), None),
        };
        let decision = match outcome {
            Outcome::Refused { .. }
                if self.verdict.action.is_empty()
                    || self.verdict.action == "allow"
                    || self.verdict.action == "log" =>
            {
                "error"
            }
            _ if self.verdict.action.is_empty() => "allow",
            _ => self.verdict.action,
        };
        let usage = response.map(|r| &r.usage);
        let total = self.received.elapsed();
        let upstream = self.upstream_time;
        self.control
            .metrics
            .exchange(&crate::metrics::ExchangeMetrics {
                provider: self.target.route.provider.name(),
                model: self.model(),
                status,
                decision,
                refusal_code: refusal,
                tenant: self.identity.tenant.as_deref(),
                agent: self.identity.agent.as_deref(),
                upstream_latency: upstream,
                overhead: upstream.map(|u| total.saturating_sub(u)).or(Some(total)),
                input_tokens: usage.and_then(|u| u.input_tokens).unwrap_or(0),
                output_tokens: usage.and_then(|u| u.output_tokens).unwrap_or(0),
                cached_input_tokens: usage.and_then(|u| u.cached_input_tokens).unwrap_or(0),
                cost_usd: cost.and_then(|c| c.micros).map(|m| m as f64 / 1e6),
            });
    }
}

/// Handles one request. Never fails: every error becomes a provider-shaped response, and every
/// routed request, allowed or refused, is recorded before anything is released.
pub async fn handle(
    gw: Arc<Gateway>,
    req: Request<Incoming>,
) -> Result<Response<GatewayBody>, Infallible> {
    if let Some(resp) = local(&gw, &req) {
        return Ok(resp);
    }
    let path = req.uri().path();
    if path.starts_with("/admin/") || path == "/admin" || path == "/metrics" {
        return Ok(crate::admin::handle(&gw, req).await);
    }
    let method = req.method().clone();
    let path = req.uri().path().to_string();

    // route: an unroutable request names no provider operation, so there is nothing to record.
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
    let flight = Flight {
        recorder: gw.recorder.clone(),
        control: gw.control.clone(),
        received: Instant::now(),
        key: None,
        verdict: Verdict::default(),
        admission: None,
        tracked: None,
        upstream_time: None,
        hide_usage: false,
        protect: protect::ProtectRecord::default(),
        protection: gw.control.policy().protect.clone(),
        tools: gw.control.policy().tools.clone(),
        govern: govern::GovernRecord::default(),
        hold: None,
        protect_streamed: false,
        _inflight: gw.control.metrics.inflight(),
        target,
        identity: Identity::default(),
        method,
        path,
        request: None,
        request_digest: None,
        request_entry: None,
        upstream_status: None,
        started: None,
        permit: None,
        completed: false,
    };
    let mut unreleased = Unreleased(Some(flight));
    let result = exchange(&gw, unreleased.flight(), req).await;
    let mut flight = unreleased.release();
    match result {
        Ok(Released::Buffered(resp)) => Ok(resp),
        Ok(Released::Stream(head, incoming, framing)) => {
            let protection = flight.protection.clone();
            let tenant = flight.identity.tenant.clone();
            // Hold back and rewrite only when something can change: a response action that
            // rewrites or blocks, or placeholders this request was given to restore.
            let protector = (protection.policy.mode(tenant.as_deref())
                == warden_protect::policy::Mode::Enforce
                && (protection
                    .policy
                    .rewrites(warden_protect::policy::Direction::Response)
                    || flight.protect.tokenized()))
            .then(|| {
                flight.protect_streamed = true;
                protect::StreamProtector::new(
                    protection.clone(),
                    gw.control.vault.clone(),
                    flight.caller(),
                    framing,
                )
            });
            let gate = flight
                .tools
                .enabled
                .then(|| govern::ToolGate::new(flight.govern_ctx(), &flight.target.route, framing))
                .flatten();
            let body = StreamBody::new(
                incoming,
                framing,
                gw.config.limits.idle_timeout,
                flight,
                protector,
                gate,
            );
            Ok(Response::from_parts(head, body.boxed()))
        }
        Err(e) => Ok(refuse(flight, e).await),
    }
}

/// What the stages produced: a response recorded and ready to go, or a stream whose body
/// records the exchange as it ends.
enum Released {
    Buffered(Response<GatewayBody>),
    Stream(http::response::Parts, Incoming, Framing),
}

/// The stages of one routed exchange, in DESIGN.md's order.
async fn exchange(
    gw: &Gateway,
    flight: &mut Flight,
    req: Request<Incoming>,
) -> Result<Released, GatewayError> {
    let limits = &gw.config.limits;
    flight.identity = identify::identify(req.headers())?;
    let keys = gw.control.keys_required();
    if keys {
        let info = identify::authenticate(
            gw.control.store.as_ref(),
            req.headers(),
            req.uri().query(),
            &mut flight.identity,
        )
        .inspect_err(|_| flight.verdict.action = "unauthenticated")?;
        flight.key = Some(info);
    }
    decide::kill_check(&gw.control, flight)?;
    flight.permit = Some(
        gw.permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| GatewayError::overloaded(limits.max_concurrent_requests))?,
    );

    let (parts, body) = req.into_parts();
    let mut body = read_body(&parts.headers, body, limits.max_request_bytes).await?;
    if flight.target.route.operation.has_body() {
        let parsed = parse_request(&flight.target.route, &body).map_err(|e| {
            GatewayError::invalid_request(format!(
                "Warden could not read this {} request: {e}",
                flight.target.route.provider
            ))
        })?;
        flight.request = Some(parsed);
    }
    flight.request_digest = Some(BodyDigest::of(&body));
    let stream_requested = flight.request.as_ref().is_some_and(|r| r.stream);
    decide::decide(&gw.control, flight, &parts.headers, body.len()).await?;
    let protection = flight.protection.clone();
    if flight.target.route.operation.has_body() {
        let caller = flight.caller();
        let changed = protect::request(
            &protection,
            &gw.control.vault,
            &caller,
            &mut body,
            &mut flight.protect,
        )?;
        if changed {
            flight.request = parse_request(&flight.target.route, &body).ok();
            flight.request_digest = Some(BodyDigest::of(&body));
        }
    }
    if flight.tools.strips && flight.target.route.operation.has_body() {
        let ctx = flight.govern_ctx();
        if let Some(stripped) =
            govern::strip_request(&ctx, &flight.target.route, &body, &mut flight.govern)?
        {
            body = stripped;
            flight.request = parse_request(&flight.target.route, &body).ok();
            flight.request_digest = Some(BodyDigest::of(&body));
        }
    }
    // A stream is priced from its usage, which OpenAI sends only when asked.
    if stream_requested
        && flight.target.upstream.stream_usage
        && flight.target.route.provider == warden_protocol::Provider::OpenAi
        && matches!(
            flight.target.route.operation,
            warden_protocol::Operation::ChatCompletions | warden_protocol::Operation::Completions
        )
        && let Some(rewritten) = warden_protocol::request_stream_usage(&body)
    {
        body = Bytes::from(rewritten);
        flight.request_digest = Some(BodyDigest::of(&body));
        flight.hide_usage = true;
    }

    if let Some(hold) = flight.hold.take() {
        govern::hold_request(flight, hold).await?;
    }

    // A live stream shows the client output before its completion is recorded, so the request
    // itself is recorded first: a crash mid-stream still leaves who asked what.
    let mut request_receipt = None;
    let live_stream = stream_requested && !gw.config.audit.stream_buffer;
    if live_stream || gw.config.audit.request_entries_all {
        let rec = flight.record(Outcome::Forwarded, None, None, None);
        request_receipt = gw.recorder.commit(rec).await.map_err(|e| {
            gw.recorder.fail(&e);
            GatewayError::audit_unavailable(e.to_string())
        })?;
        flight.request_entry = request_receipt.as_ref().map(|r| r.index);
    }

    let credential = keys.then(|| gw.control.credential(&flight.target.upstream.name));
    let upstream_req = gw.upstreams.build_request(
        &flight.target,
        flight.method.clone(),
        parts.uri.query(),
        parts.headers,
        body,
        credential.as_ref().map(|c| c.as_deref()),
    )?;
    flight.started = Some(Instant::now());
    let upstream_resp = gw.upstreams.send(&flight.target, upstream_req).await?;

    let (mut head, incoming) = upstream_resp.into_parts();
    flight.upstream_status = Some(head.status.as_u16());
    forward::strip_hop_by_hop(&mut head.headers);
    let content_type = head
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let framing = Framing::detect(&flight.target.route, content_type, stream_requested);

    budget_warning_headers(&mut head.headers, &flight.verdict);
    if framing.is_stream() && !gw.config.audit.stream_buffer {
        // Headers go out now with the request record's index; the body carries the rest.
        head.headers.remove(header::CONTENT_LENGTH);
        flight.tracked = Some(gw.control.track(decide::subjects(flight)));
        if let Some(r) = &request_receipt {
            head.headers
                .insert("x-warden-entry", HeaderValue::from(r.index));
        }
        return Ok(Released::Stream(head, incoming, framing));
    }

    let bytes = release::collect(
        incoming,
        limits.idle_timeout,
        limits.max_response_bytes,
        &flight.target.upstream.name,
    )
    .await?;
    flight.upstream_time = flight.started.map(|s| s.elapsed());
    let response = parse_response(&flight.target.route, &bytes).ok();
    let bytes = if flight.hide_usage && framing.is_stream() {
        strip_usage_chunk(&flight.target.route, framing, bytes)
    } else {
        bytes
    };
    flight.protect_streamed = true;
    let caller = flight.caller();
    let bytes = protect::response(
        &protection,
        &gw.control.vault,
        &caller,
        framing,
        bytes,
        &mut flight.protect,
    )?;
    let bytes = if flight.tools.enabled
        && (framing.is_stream() || response.as_ref().is_some_and(|r| !r.tool_calls.is_empty()))
    {
        judge_buffered(flight, framing, bytes).await?
    } else {
        bytes
    };
    let response_digest = BodyDigest::of(&bytes);
    let cost = decide::settle(&gw.control, flight, response.as_ref(), false);
    flight.observe(&Outcome::Completed, response.as_ref(), cost.as_ref());
    let rec = flight.record(Outcome::Completed, response, Some(response_digest), cost);
    flight.meter(&rec);
    let commit = gw.recorder.commit(rec);
    flight.completed = true;
    let receipt = commit.await.map_err(|e| {
        gw.recorder.fail(&e);
        GatewayError::audit_unavailable(e.to_string())
    })?;
    flight.permit.take();
    head.headers.remove(header::CONTENT_LENGTH);
    release::receipt_headers(&mut head.headers, receipt.as_ref());
    Ok(Released::Buffered(Response::from_parts(head, full(bytes))))
}

/// Tool-call governance over a whole response: a JSON body, or a stream buffered whole
/// (`audit.stream_buffer`), which goes through the same gate a live stream does.
async fn judge_buffered(
    flight: &mut Flight,
    framing: Framing,
    bytes: Bytes,
) -> Result<Bytes, GatewayError> {
    let ctx = flight.govern_ctx();
    let route = flight.target.route.clone();
    if !framing.is_stream() {
        // The calls as the agent would receive them (after content protection).
        let calls = parse_response(&route, &bytes)
            .map(|r| r.tool_calls)
            .unwrap_or_default();
        return govern::buffered(&ctx, &route, &calls, bytes, &mut flight.govern).await;
    }
    let Some(mut gate) = govern::ToolGate::new(ctx.clone(), &route, framing) else {
        return Ok(bytes);
    };
    let mut out = gate.finish_begin(&bytes);
    let asks = gate.take_asks();
    if !asks.is_empty() {
        let results = ctx.resolve(asks).await;
        gate.decided(results);
    }
    let refusal = gate.refusal().map(str::to_string);
    flight.govern = gate.take_record();
    if let Some(message) = refusal {
        return Err(GatewayError::content_blocked(
            message,
            refuse::Source::Upstream,
        ));
    }
    let (before, after) = gate.finish_release();
    out.extend_from_slice(&before);
    out.extend_from_slice(&after);
    Ok(Bytes::from(out))
}

/// A whole (buffered) stream without the usage chunk Warden asked for on the client's behalf.
fn strip_usage_chunk(route: &warden_protocol::Route, framing: Framing, bytes: Bytes) -> Bytes {
    let mut inspector = warden_protocol::StreamInspector::new(route, framing);
    inspector.hide_usage_chunk();
    inspector.push(&bytes);
    let (Some(len), start) = (inspector.hidden_len(), inspector.release().upto) else {
        return bytes;
    };
    let (start, len) = (start as usize, len as usize);
    let mut out = Vec::with_capacity(bytes.len() - len);
    out.extend_from_slice(&bytes[..start]);
    out.extend_from_slice(&bytes[start + len..]);
    Bytes::from(out)
}

/// `x-warden-budget-warning` for every soft cap the request crossed.
fn budget_warning_headers(headers: &mut http::HeaderMap, verdict: &Verdict) {
    for w in &verdict.budget_warnings {
        if let Ok(v) = HeaderValue::from_str(w) {
            headers.append("x-warden-budget-warning", v);
        }
    }
}

/// Answers a refusal in the target provider's shape, after recording it.
async fn refuse(flight: Flight, e: GatewayError) -> Response<GatewayBody> {
    let provider = flight.target.route.provider;
    let recorder = flight.recorder.clone();
    let outcome = Outcome::Refused {
        status: e.status.as_u16(),
        code: e.kind.type_and_code().1,
        source: e.origin,
        message: e.message.clone(),
    };
    match flight.finish(outcome, None, None).await {
        Ok(receipt) => {
            let mut resp = e.into_response(provider);
            release::receipt_headers(resp.headers_mut(), receipt.as_ref());
            resp
        }
        Err(audit) => {
            recorder.fail(&audit);
            GatewayError::audit_unavailable(audit.to_string()).into_response(provider)
        }
    }
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
