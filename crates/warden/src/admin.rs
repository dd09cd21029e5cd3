//! The admin API under `/admin/` on the gateway's listener, and `GET /metrics`.
//!
//! Every admin route needs `Authorization: Bearer <admin token>` (compared in constant time);
//! the token lives in `<data-dir>/admin.token` (mode 0600, created on first start) unless
//! `WARDEN_ADMIN_TOKEN` supplies it. Answers are JSON; errors are `{"error": {"code",
//! "message"}}`. Operator actions (kill, unkill, key created or revoked, reload) are recorded in
//! the ledger with who did them and why. This module translates HTTP to [`Control`] calls; it
//! owns no state and never returns a virtual key except once, in the answer that creates it.
//! `docs/admin-api.md` documents every route.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response as AxumResponse};
use axum::routing::{delete, get, post};
use bytes::Bytes;
use http::{HeaderValue, Request, Response, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tower::ServiceExt;
use warden_state::{KillTarget, NewKey, Period, Scope, SpendFilter};

use crate::config::{Config, Overrides};
use crate::control::{Control, unkill_flags};
use crate::pipeline::record::Recorder;
use crate::pipeline::{Gateway, GatewayBody};

/// Where `POST /admin/reload` and SIGHUP read the config from.
#[derive(Debug, Clone)]
pub struct ReloadSource {
    /// The config file (`None`: `./warden.toml` if present).
    pub file: Option<PathBuf>,
    /// The flags and environment the gateway started with.
    pub overrides: Overrides,
}

/// What the admin routes share.
#[derive(Clone)]
pub struct AdminState {
    control: Arc<Control>,
    recorder: Arc<Recorder>,
    config: Arc<std::sync::RwLock<Arc<Config>>>,
    token: Arc<String>,
    reload: Option<Arc<ReloadSource>>,
    ready: Arc<AtomicBool>,
    listen: Arc<std::sync::OnceLock<std::net::SocketAddr>>,
}

impl AdminState {
    /// The admin state of a gateway.
    pub fn new(
        control: Arc<Control>,
        recorder: Arc<Recorder>,
        config: Arc<Config>,
        token: String,
        reload: Option<ReloadSource>,
        ready: Arc<AtomicBool>,
    ) -> AdminState {
        AdminState {
            control,
            recorder,
            config: Arc::new(std::sync::RwLock::new(config)),
            token: Arc::new(token),
            reload: reload.map(Arc::new),
            ready,
            listen: Arc::new(std::sync::OnceLock::new()),
        }
    }

    /// The address the gateway actually listens on (the config may say port 0).
    pub fn set_listen(&self, addr: std::net::SocketAddr) {
        let _ = self.listen.set(addr);
    }

    /// Re-reads the config, validates it, and applies what can change live (rules, budgets,
    /// pricing, auth mode, provider keys). A bad config is refused and the old one stays.
    pub async fn reload(&self, actor: &str) -> Result<Value, (StatusCode, String)> {
        let Some(src) = &self.reload else {
            return Err((
                StatusCode::CONFLICT,
                "this gateway was not started from a config it can re-read".into(),
            ));
        };
        let new = Config::load(src.file.as_deref(), &src.overrides).map_err(|e| {
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("the new config is invalid and was not applied (the old one stays): {e}"),
            )
        })?;
        let old = self.config.read().expect("config lock").clone();
        // What cannot change live: compare everything but the live-reloadable parts.
        let mut same = new.clone();
        same.policy = old.policy.clone();
        same.auth = old.auth;
        let restart_required = same.render() != old.render();
        let digest = crate::pipeline::record::BodyDigest::of(new.render().as_bytes()).sha256;
        let mut details = Map::new();
        details.insert("actor".into(), json!(actor));
        details.insert("config_sha256".into(), json!(digest));
        details.insert("restart_required".into(), json!(restart_required));
        self.recorder.event("reload", details).await.map_err(|e| {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the reload could not be recorded in the ledger, so it was not applied: {e}"
                ),
            )
        })?;
        self.control.apply(&new);
        let rules = new.policy.rules.rules().len();
        let budgets = new.policy.budgets.len();
        *self.config.write().expect("config lock") = Arc::new(new);
        tracing::info!(rules, budgets, restart_required, "config reloaded");
        Ok(json!({
            "reloaded": true,
            "rules": rules,
            "budgets": budgets,
            "config_sha256": digest,
            "restart_required": restart_required,
            "note": if restart_required {
                "settings outside [[rules]], [[budgets]], [pricing], [policy] and [auth] changed; they take effect after a restart"
            } else {
                "all changes are in force"
            },
        }))
    }
}

/// Serves an `/admin/…` or `/metrics` request.
pub async fn handle(gw: &Gateway, req: Request<Incoming>) -> Response<GatewayBody> {
    let state = gw.admin.clone();
    let path = req.uri().path().to_string();
    let public_metrics = path == "/metrics" && gw.config.admin.public_metrics;
    if !public_metrics && !authorized(req.headers(), &state.token) {
        return to_gateway(
            error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "the admin API needs `Authorization: Bearer <token>`; the token is in <data-dir>/admin.token (or WARDEN_ADMIN_TOKEN)",
            )
            .into_response(),
        )
        .await;
    }
    let router = axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/admin/status", get(status))
        .route("/admin/spend", get(spend))
        .route("/admin/sessions", get(sessions))
        .route("/admin/keys", get(list_keys).post(create_key))
        .route("/admin/keys/{id}", delete(revoke_key))
        .route("/admin/kills", get(kills))
        .route("/admin/kill", post(kill))
        .route("/admin/unkill", post(unkill))
        .route("/admin/reload", post(reload))
        .route("/admin/approvals", get(approvals))
        .route("/admin/approvals/{id}", get(approval))
        .route("/admin/approvals/{id}/approve", post(approve))
        .route("/admin/approvals/{id}/deny", post(deny))
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such admin route; see docs/admin-api.md (status, spend, sessions, keys, kills, kill, unkill, reload)",
            )
        })
        .with_state(state);
    match router.oneshot(req).await {
        Ok(resp) => to_gateway(resp).await,
        Err(never) => match never {},
    }
}

/// Admin answers are small JSON documents: collected whole into the gateway's body type.
async fn to_gateway(resp: AxumResponse) -> Response<GatewayBody> {
    let (parts, body) = resp.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    Response::from_parts(parts, crate::pipeline::full(bytes))
}

/// Constant-time comparison of the presented bearer token with the admin token.
fn authorized(headers: &http::HeaderMap, token: &str) -> bool {
    let Some(presented) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    constant_time_eq(presented.trim().as_bytes(), token.as_bytes())
}

/// Equal-length inputs are compared without an early exit, so timing reveals nothing of the
/// token; the length of the token is not a secret (it is fixed by `warden`).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn error(status: StatusCode, code: &str, message: &str) -> AxumResponse {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

fn store_error(e: warden_state::StoreError) -> AxumResponse {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "state_unavailable",
        &format!("the state store failed: {e}"),
    )
}

async fn metrics(State(s): State<AdminState>) -> AxumResponse {
    s.control
        .metrics
        .ledger_healthy(s.ready.load(Ordering::Relaxed));
    let body = s.control.metrics.render();
    let mut resp = body.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::metrics::Metrics::CONTENT_TYPE),
    );
    resp
}

/// Spend reads wait for queued settlements, so a status taken after a request sees its cost.
async fn settled(control: &Arc<Control>) {
    let c = control.clone();
    let _ = tokio::task::spawn_blocking(move || c.flush()).await;
}

async fn status(State(s): State<AdminState>) -> AxumResponse {
    settled(&s.control).await;
    let config = s.config.read().expect("config lock").clone();
    let c = &s.control;
    let ledger = s.recorder.ledger().map(
        |l| json!({"size": l.size(), "healthy": l.is_healthy(), "origin": config.audit.origin}),
    );
    let kills = c.store.kills().unwrap_or_default();
    let keys = c.store.list_keys().unwrap_or_default();
    let active_keys = keys.iter().filter(|k| k.revoked_at.is_none()).count();
    let top = |scope: Scope| {
        let mut rows = c
            .store
            .spend(&SpendFilter {
                scope: Some(scope),
                subject: None,
                period: Some(Period::Total),
                limit: 1000,
            })
            .unwrap_or_default();
        rows.sort_by_key(|r| std::cmp::Reverse(r.spent_micros));
        rows.truncate(10);
        rows
    };
    let global = top(Scope::Global);
    let pending = c
        .store
        .list_approvals(
            &warden_state::ApprovalFilter {
                status: Some(warden_state::ApprovalStatus::Pending),
                limit: Some(100),
            },
            SystemTime::now(),
        )
        .unwrap_or_default();
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "listen": s.listen.get().copied().unwrap_or(config.listen).to_string(),
        "uptime_s": c.started.elapsed().as_secs(),
        "ready": s.ready.load(Ordering::Relaxed),
        "auth": {"mode": config.auth, "keys_required": c.keys_required(), "active_keys": active_keys, "keys": keys.len()},
        "ledger": ledger,
        "streams_in_flight": c.in_flight(),
        "kills": kills,
        "approvals_pending": pending,
        "policy": {"rules": c.policy().rules.rules().len(), "budgets": c.policy().budgets.len()},
        "spend": {
            "total": global.first(),
            "top_tenants": top(Scope::Tenant),
            "top_agents": top(Scope::Agent),
            "top_keys": top(Scope::Key),
        },
    }))
    .into_response()
}

#[derive(Deserialize)]
struct SpendQuery {
    scope: Option<String>,
    subject: Option<String>,
    period: Option<String>,
    limit: Option<usize>,
}

async fn spend(State(s): State<AdminState>, Query(q): Query<SpendQuery>) -> AxumResponse {
    settled(&s.control).await;
    let scope = match q.scope.as_deref().map(|v| (v, Scope::parse(v))) {
        None => None,
        Some((_, Some(sc))) => Some(sc),
        Some((v, None)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                &format!("`{v}` is not a scope; use global, tenant, agent, session or key"),
            );
        }
    };
    let period = match q.period.as_deref().map(|v| (v, Period::parse(v))) {
        None => None,
        Some((_, Some(p))) => Some(p),
        Some((v, None)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_period",
                &format!("`{v}` is not a period; use total, day or month"),
            );
        }
    };
    let filter = SpendFilter {
        scope,
        subject: q.subject,
        period,
        limit: q.limit.unwrap_or(100).min(10_000),
    };
    match s.control.store.spend(&filter) {
        Ok(rows) => Json(json!({"spend": rows})).into_response(),
        Err(e) => store_error(e),
    }
}

async fn sessions(State(s): State<AdminState>, Query(q): Query<SpendQuery>) -> AxumResponse {
    settled(&s.control).await;
    let filter = SpendFilter {
        scope: Some(Scope::Session),
        subject: q.subject,
        period: Some(Period::Total),
        limit: q.limit.unwrap_or(100).min(10_000),
    };
    match s.control.store.spend(&filter) {
        Ok(mut rows) => {
            rows.sort_by_key(|r| std::cmp::Reverse(r.last_at));
            Json(json!({"sessions": rows})).into_response()
        }
        Err(e) => store_error(e),
    }
}

async fn list_keys(State(s): State<AdminState>) -> AxumResponse {
    match s.control.store.list_keys() {
        Ok(keys) => Json(json!({"keys": keys})).into_response(),
        Err(e) => store_error(e),
    }
}

/// The body of `POST /admin/keys`.
#[derive(Debug, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// Tenant the key belongs to.
    pub tenant: Option<String>,
    /// Agent the key belongs to.
    pub agent: Option<String>,
    /// A label.
    pub name: Option<String>,
    /// Model globs the key may use (empty: any).
    #[serde(default)]
    pub models: Vec<String>,
    /// Requests per minute.
    pub rpm: Option<u32>,
    /// Tokens per minute.
    pub tpm: Option<u32>,
    /// Budget in USD.
    pub budget_usd: Option<f64>,
    /// Budget period: total (default), day, month.
    pub period: Option<String>,
    /// Expiry: RFC 3339 time, or a duration from now (`30d`, `12h`).
    pub expires: Option<String>,
    /// Who asked (recorded).
    pub actor: Option<String>,
}

/// Validates a key request into a [`NewKey`].
pub fn new_key(req: &CreateKey, now: SystemTime) -> Result<NewKey, String> {
    let budget_micros = req
        .budget_usd
        .map(warden_policy::usd_to_micros)
        .transpose()
        .map_err(|e| format!("budget: {e}"))?;
    let budget_period = match req.period.as_deref() {
        None => Period::Total,
        Some(p) => Period::parse(p)
            .ok_or_else(|| format!("period `{p}` is not one of: total, day, month"))?,
    };
    let expires_at = req
        .expires
        .as_deref()
        .map(|e| parse_expiry(e, now))
        .transpose()?;
    for (what, v) in [("tenant", &req.tenant), ("agent", &req.agent)] {
        if let Some(v) = v
            && (v.is_empty()
                || v.len() > 128
                || !v
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:@/+=".contains(&b)))
        {
            return Err(format!(
                "{what} must be 1 to 128 characters (letters, digits and -_.:@/+=)"
            ));
        }
    }
    Ok(NewKey {
        tenant: req.tenant.clone(),
        agent: req.agent.clone(),
        name: req.name.clone(),
        models: req.models.clone(),
        rpm: req.rpm,
        tpm: req.tpm,
        budget_micros,
        budget_period,
        expires_at,
    })
}

/// `2027-01-01T00:00:00Z` or a duration from now (`90d`, `12h`, `30m`).
fn parse_expiry(s: &str, now: SystemTime) -> Result<SystemTime, String> {
    if let Ok(ts) = s.parse::<jiff::Timestamp>() {
        let secs = ts.as_second();
        return u64::try_from(secs)
            .map(|s| UNIX_EPOCH + Duration::from_secs(s))
            .map_err(|_| format!("expiry `{s}` is before 1970"));
    }
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = n
        .parse()
        .map_err(|_| format!("expiry `{s}` is neither an RFC 3339 time nor a duration like 30d"))?;
    let secs = match unit {
        "d" => n * 86_400,
        "h" => n * 3_600,
        "m" => n * 60,
        "s" => n,
        _ => return Err(format!("expiry `{s}`: use d, h, m or s, e.g. 30d")),
    };
    Ok(now + Duration::from_secs(secs))
}

async fn create_key(State(s): State<AdminState>, Json(req): Json<CreateKey>) -> AxumResponse {
    let new = match new_key(&req, SystemTime::now()) {
        Ok(n) => n,
        Err(m) => return error(StatusCode::BAD_REQUEST, "invalid_key_request", &m),
    };
    let switched = !s.control.keys_required();
    let created = match s.control.store.create_key(new, SystemTime::now()) {
        Ok(c) => c,
        Err(e) => return store_error(e),
    };
    s.control.key_created();
    let mut details = Map::new();
    details.insert(
        "actor".into(),
        json!(req.actor.as_deref().unwrap_or("admin-api")),
    );
    details.insert("key".into(), json!(created.info));
    if let Err(e) = s.recorder.event("key_created", details).await {
        // The key exists but its creation is unrecorded: revoke it rather than leave it.
        let _ = s
            .control
            .store
            .revoke_key(&created.info.id, SystemTime::now());
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "audit_unavailable",
            &format!("the key could not be recorded in the ledger, so it was revoked again: {e}"),
        );
    }
    let auth_switched = switched && s.control.auth_mode() == crate::config::AuthMode::Auto;
    Json(json!({
        "key": created.secret,
        "info": created.info,
        "auth_switched": auth_switched,
    }))
    .into_response()
}

async fn revoke_key(
    State(s): State<AdminState>,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<ActorQuery>,
) -> AxumResponse {
    match s.control.store.revoke_key(&id, SystemTime::now()) {
        Ok(Some(info)) => {
            let mut details = Map::new();
            details.insert(
                "actor".into(),
                json!(q.actor.as_deref().unwrap_or("admin-api")),
            );
            details.insert("key_id".into(), json!(id));
            if let Err(e) = s.recorder.event("key_revoked", details).await {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "audit_unavailable",
                    &format!(
                        "the key is revoked, but the revocation could not be recorded in the ledger: {e}"
                    ),
                );
            }
            Json(json!({"revoked": info})).into_response()
        }
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "unknown_key",
            &format!("no key with id `{id}`; `warden keys list` shows them"),
        ),
        Err(e) => store_error(e),
    }
}

#[derive(Deserialize)]
struct ActorQuery {
    actor: Option<String>,
}

async fn kills(State(s): State<AdminState>) -> AxumResponse {
    match s.control.store.kills() {
        Ok(k) => Json(json!({"kills": k})).into_response(),
        Err(e) => store_error(e),
    }
}

/// The body of `POST /admin/kill` and `POST /admin/unkill`.
#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct KillRequest {
    /// What to stop: `{"kind": "agent", "id": "billing-bot"}` or `{"kind": "all"}`.
    pub target: KillTarget,
    /// Why (required for kill).
    #[serde(default)]
    pub reason: String,
    /// Who (recorded).
    pub actor: Option<String>,
}

async fn kill(State(s): State<AdminState>, Json(req): Json<KillRequest>) -> AxumResponse {
    if req.reason.trim().is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "reason_required",
            "a kill needs a reason (--reason \"…\"); it is recorded in the ledger",
        );
    }
    let actor = req.actor.clone().unwrap_or_else(|| "admin-api".into());
    // The kill takes effect first: refusing traffic is the safe side if the ledger then fails.
    let (record, cut) = match s.control.kill(req.target.clone(), &req.reason, &actor) {
        Ok(r) => r,
        Err(e) => return store_error(e),
    };
    let mut details = Map::new();
    details.insert("actor".into(), json!(actor));
    details.insert("target".into(), json!(record.target));
    details.insert("reason".into(), json!(record.reason));
    details.insert("streams_cut".into(), json!(cut));
    let entry = match s.recorder.event("kill", details).await {
        Ok(r) => r.map(|r| r.index),
        Err(e) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "audit_unavailable",
                &format!("the kill is in force, but it could not be recorded in the ledger: {e}"),
            );
        }
    };
    Json(json!({"killed": record, "streams_cut": cut, "entry": entry, "undo": format!("warden unkill {}", unkill_flags(&record.target))}))
        .into_response()
}

async fn unkill(State(s): State<AdminState>, Json(req): Json<KillRequest>) -> AxumResponse {
    let actor = req.actor.clone().unwrap_or_else(|| "admin-api".into());
    let was = match s.control.store.kills() {
        Ok(k) => k.into_iter().find(|k| k.target == req.target),
        Err(e) => return store_error(e),
    };
    if was.is_none() {
        return error(
            StatusCode::NOT_FOUND,
            "not_killed",
            &format!("{} is not killed; `warden status` lists kills", req.target),
        );
    }
    // Lifting a kill is recorded before it takes effect: if the ledger fails, the kill stays.
    let mut details = Map::new();
    details.insert("actor".into(), json!(actor));
    details.insert("target".into(), json!(req.target));
    details.insert("reason".into(), json!(req.reason));
    let entry = match s.recorder.event("unkill", details).await {
        Ok(r) => r.map(|r| r.index),
        Err(e) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "audit_unavailable",
                &format!("the unkill could not be recorded in the ledger, so the kill stays: {e}"),
            );
        }
    };
    match s.control.unkill(&req.target) {
        Ok(lifted) => Json(json!({"lifted": lifted, "entry": entry})).into_response(),
        Err(e) => store_error(e),
    }
}

#[derive(Deserialize)]
struct ApprovalsQuery {
    status: Option<String>,
    limit: Option<usize>,
}

async fn approvals(State(s): State<AdminState>, Query(q): Query<ApprovalsQuery>) -> AxumResponse {
    let status = match q.status.as_deref() {
        None | Some("all") => None,
        Some(name) => match warden_state::ApprovalStatus::parse(name) {
            Some(st) => Some(st),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_status",
                    &format!(
                        "`{name}` is not a status; use pending, approved, denied, expired or all"
                    ),
                );
            }
        },
    };
    let filter = warden_state::ApprovalFilter {
        status,
        limit: q.limit,
    };
    match s.control.store.list_approvals(&filter, SystemTime::now()) {
        Ok(list) => Json(json!({"approvals": list})).into_response(),
        Err(e) => store_error(e),
    }
}

async fn approval(State(s): State<AdminState>, UrlPath(id): UrlPath<String>) -> AxumResponse {
    match s.control.store.approval(&id) {
        Ok(Some(a)) => Json(json!({"approval": a})).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("no approval {id}; `warden approvals list` shows the queue"),
        ),
        Err(e) => store_error(e),
    }
}

/// The body of `POST /admin/approvals/{id}/approve|deny`.
#[derive(Debug, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct DecideRequest {
    /// Who decides (recorded).
    pub actor: Option<String>,
    /// Why (recorded; shown to the agent on deny).
    pub reason: Option<String>,
}

async fn approve(
    State(s): State<AdminState>,
    UrlPath(id): UrlPath<String>,
    body: Option<Json<DecideRequest>>,
) -> AxumResponse {
    decide(
        s,
        id,
        warden_state::Decision::Approve,
        body.map(|b| b.0).unwrap_or_default(),
    )
    .await
}

async fn deny(
    State(s): State<AdminState>,
    UrlPath(id): UrlPath<String>,
    body: Option<Json<DecideRequest>>,
) -> AxumResponse {
    decide(
        s,
        id,
        warden_state::Decision::Deny,
        body.map(|b| b.0).unwrap_or_default(),
    )
    .await
}

async fn decide(
    s: AdminState,
    id: String,
    decision: warden_state::Decision,
    req: DecideRequest,
) -> AxumResponse {
    let actor = req.actor.unwrap_or_else(|| "admin-api".into());
    let reason = req.reason.filter(|r| !r.trim().is_empty());
    match s
        .control
        .approvals
        .decide(&s.recorder, &id, decision, &actor, reason.as_deref())
        .await
    {
        Ok(warden_state::DecideOutcome::Decided(a)) => Json(json!({"approval": a})).into_response(),
        Ok(warden_state::DecideOutcome::AlreadyDecided(a)) => {
            let mut resp = error(
                StatusCode::CONFLICT,
                "already_decided",
                &format!("approval {id} is already {}", a.status.name()),
            );
            *resp.status_mut() = StatusCode::CONFLICT;
            resp
        }
        Ok(warden_state::DecideOutcome::NotFound) => error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("no approval {id}; `warden approvals list` shows the queue"),
        ),
        Err(m) => error(StatusCode::SERVICE_UNAVAILABLE, "approval_unavailable", &m),
    }
}

async fn reload(State(s): State<AdminState>, Query(q): Query<ActorQuery>) -> AxumResponse {
    match s.reload(q.actor.as_deref().unwrap_or("admin-api")).await {
        Ok(v) => Json(v).into_response(),
        Err((status, m)) => error(status, "reload_failed", &m),
    }
}

/// Reads the admin token from `WARDEN_ADMIN_TOKEN` or `path`, creating the file (mode 0600)
/// with a new random token when neither exists.
pub fn load_or_create_token(path: &Path) -> std::io::Result<String> {
    if let Ok(t) = std::env::var("WARDEN_ADMIN_TOKEN")
        && !t.trim().is_empty()
    {
        return Ok(t.trim().to_string());
    }
    match std::fs::read_to_string(path) {
        Ok(t) if !t.trim().is_empty() => return Ok(t.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| std::io::Error::other(e.to_string()))?;
    let token: String = std::iter::once("wat_".to_string())
        .chain(raw.iter().map(|b| format!("{b:02x}")))
        .collect();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path)?;
    f.write_all(token.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    Ok(token)
}

/// Reads the token the CLI should present: `WARDEN_ADMIN_TOKEN`, else the token file.
pub fn read_token(path: &Path) -> Option<String> {
    if let Ok(t) = std::env::var("WARDEN_ADMIN_TOKEN")
        && !t.trim().is_empty()
    {
        return Some(t.trim().to_string());
    }
    std::fs::read_to_string(path)
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// A JSON body for the CLI's requests.
pub fn json_body(v: &impl serde::Serialize) -> Bytes {
    Bytes::from(serde_json::to_vec(v).expect("request bodies serialize"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_in_full() {
        assert!(constant_time_eq(b"wat_abc", b"wat_abc"));
        assert!(!constant_time_eq(b"wat_abc", b"wat_abd"));
        assert!(!constant_time_eq(b"wat_ab", b"wat_abc"));
        let mut h = http::HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Bearer wat_abc"));
        assert!(authorized(&h, "wat_abc"));
        assert!(!authorized(&h, "wat_abd"));
        assert!(!authorized(&http::HeaderMap::new(), "wat_abc"));
    }

    #[test]
    fn expiry_accepts_times_and_durations() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(
            parse_expiry("30d", now).unwrap(),
            now + Duration::from_secs(30 * 86_400)
        );
        assert_eq!(
            parse_expiry("2026-11-21T00:00:00Z", now).unwrap(),
            UNIX_EPOCH + Duration::from_secs(1_795_219_200)
        );
        assert!(parse_expiry("soon", now).is_err());
        assert!(parse_expiry("3w", now).is_err());
    }

    #[test]
    fn token_file_is_created_private_and_reused() {
        let dir = std::env::temp_dir().join(format!("warden-token-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("admin.token");
        // SAFETY-free: the variable is only read; tests do not set it.
        if std::env::var("WARDEN_ADMIN_TOKEN").is_ok() {
            return;
        }
        let a = load_or_create_token(&path).unwrap();
        let b = load_or_create_token(&path).unwrap();
        assert_eq!(a, b);
        assert!(a.starts_with("wat_") && a.len() == 68);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
