//! Human approval of tool calls: the queue's live side.
//!
//! A tool rule with `action = "approve"` puts the call in the durable queue of `warden-state`
//! (so `warden approvals list` shows it from any process, and it survives a restart), records an
//! `approval_requested` event in the ledger, notifies the configured webhooks, and holds the
//! client's request until a human decides or the timeout denies. Decisions come from the admin
//! API (which `warden approvals approve|deny` uses while a gateway runs) and are written to the
//! store first, then recorded as `approval_decided` events; a waiting request is woken at once
//! in-process and polls the store as a fallback (a decision written by a CLI working directly
//! on the data dir is seen within a second).
//!
//! This module owns waiting, waking, notifying and the approval ledger events. It does not judge
//! tool calls (`warden-govern` does) and does not rewrite responses (`pipeline::govern` does).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::Full;
use serde_json::{Map, Value, json};
use tokio::sync::Notify;
use warden_state::{Approval, ApprovalStatus, DecideOutcome, Decision, NewApproval, Store};

use crate::pipeline::forward::HttpsClient;
use crate::pipeline::record::Recorder;

/// How often a waiting request re-reads its approval from the store, for decisions written by
/// another process.
const POLL: Duration = Duration::from_secs(1);

/// Webhook deliveries are attempted this many times, with a growing pause between.
const WEBHOOK_ATTEMPTS: u32 = 3;

/// The approval settings of `[tools]` that the queue needs.
#[derive(Debug, Clone)]
pub struct ApprovalSettings {
    /// How long a call waits for a decision before it is denied (`tools.approval_timeout`).
    pub timeout: Duration,
    /// URLs notified of every new approval (`tools.approval_webhooks`).
    pub webhooks: Vec<String>,
    /// Base URL of the gateway's admin API as a human reaches it, for links in notifications
    /// (`tools.approval_link_base`); the CLI commands are always included.
    pub link_base: Option<String>,
}

/// How a wait ended.
#[derive(Debug, Clone)]
pub struct Resolution {
    /// The approval as finally stored.
    pub approval: Approval,
}

impl Resolution {
    /// Whether the call may be delivered.
    pub fn approved(&self) -> bool {
        self.approval.status == ApprovalStatus::Approved
    }
}

/// What a waiting exchange tells the queue about the call.
#[derive(Debug, Clone)]
pub struct Ask {
    /// The approval record to create (arguments already redacted by the caller).
    pub new: NewApproval,
    /// The rule's explanation, for the notification.
    pub summary: String,
}

/// The live approval queue shared by the gateway's workers and its admin API.
pub struct Approvals {
    store: Arc<dyn Store>,
    waiters: Mutex<HashMap<String, Arc<Notify>>>,
    client: HttpsClient,
}

impl std::fmt::Debug for Approvals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Approvals").finish_non_exhaustive()
    }
}

impl Approvals {
    /// The queue over `store`; webhooks go out through `client`.
    pub fn new(store: Arc<dyn Store>, client: HttpsClient) -> Approvals {
        Approvals {
            store,
            waiters: Mutex::new(HashMap::new()),
            client,
        }
    }

    /// Queues a call, records the request in the ledger and notifies the webhooks. Errors mean
    /// the queue or the ledger could not be used: the caller must fail closed (the call is not
    /// delivered).
    pub async fn request(
        &self,
        recorder: &Recorder,
        ask: Ask,
        settings: &ApprovalSettings,
    ) -> Result<Approval, String> {
        let approval = self
            .store
            .create_approval(ask.new, SystemTime::now())
            .map_err(|e| format!("the approval queue could not store the request: {e}"))?;
        let receipt = recorder
            .event("approval_requested", requested_details(&approval))
            .await
            .map_err(|e| format!("the ledger could not record the approval request: {e}"))?;
        if let Some(r) = receipt {
            let _ = self.store.set_approval_entry(&approval.id, r.index);
        }
        self.notify_webhooks(&approval, &ask.summary, settings);
        tracing::info!(target: "warden::approvals", id = %approval.id, tool = %approval.tool, "tool call waiting for approval");
        Ok(approval)
    }

    /// Waits for a decision on `id` until its expiry, which denies it.
    pub async fn wait(
        self: &Arc<Self>,
        recorder: &Recorder,
        id: &str,
    ) -> Result<Resolution, String> {
        let notify = Arc::new(Notify::new());
        self.waiters
            .lock()
            .expect("waiters lock")
            .insert(id.to_string(), notify.clone());
        let _unregister = Unregister {
            approvals: self.clone(),
            id: id.to_string(),
        };
        loop {
            let current = self
                .store
                .approval(id)
                .map_err(|e| format!("the approval queue could not be read: {e}"))?;
            let expires = match current {
                // Overdue but not yet stored as expired: store and record it now.
                Some(a) if a.status == ApprovalStatus::Expired && a.approver.is_none() => {
                    return self.expire(recorder, id).await;
                }
                Some(a) if a.status != ApprovalStatus::Pending => {
                    return Ok(Resolution { approval: a });
                }
                None => return Err(format!("approval {id} disappeared from the queue")),
                Some(a) => a.expires_at,
            };
            let left = expires
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO);
            if left.is_zero() {
                return self.expire(recorder, id).await;
            }
            tokio::select! {
                _ = notify.notified() => {}
                _ = tokio::time::sleep(left.min(POLL)) => {}
            }
        }
    }

    /// The wait timed out: deny it in the store (unless a decision raced in) and record it.
    async fn expire(&self, recorder: &Recorder, id: &str) -> Result<Resolution, String> {
        self.expire_overdue(recorder)
            .await
            .map_err(|e| format!("the approval queue could not be updated: {e}"))?;
        match self.store.approval(id) {
            Ok(Some(a)) => Ok(Resolution { approval: a }),
            Ok(None) => Err(format!("approval {id} disappeared from the queue")),
            Err(e) => Err(format!("the approval queue could not be read: {e}")),
        }
    }

    /// Stores every overdue pending approval as expired, records each once in the ledger, and
    /// wakes the requests waiting for them.
    async fn expire_overdue(&self, recorder: &Recorder) -> Result<(), warden_state::StoreError> {
        for a in self.store.expire_approvals(SystemTime::now())? {
            self.wake(&a.id);
            let _ = recorder
                .event("approval_decided", decided_details(&a, "timeout"))
                .await;
        }
        Ok(())
    }

    fn wake(&self, id: &str) {
        if let Some(n) = self.waiters.lock().expect("waiters lock").get(id) {
            n.notify_one();
        }
    }

    /// Decides a pending approval (admin API, CLI through it): stored first, then recorded in
    /// the ledger, then the waiting request is woken.
    pub async fn decide(
        &self,
        recorder: &Recorder,
        id: &str,
        decision: Decision,
        approver: &str,
        reason: Option<&str>,
    ) -> Result<DecideOutcome, String> {
        let outcome = self
            .store
            .decide_approval(id, decision, approver, reason, SystemTime::now())
            .map_err(|e| format!("the approval queue could not be updated: {e}"))?;
        if let DecideOutcome::Decided(a) = &outcome {
            recorder
                .event("approval_decided", decided_details(a, approver))
                .await
                .map_err(|e| {
                    format!("decided, but the ledger could not record the decision: {e}")
                })?;
            tracing::info!(target: "warden::approvals", id = %a.id, status = %a.status, approver, "approval decided");
        }
        self.wake(id);
        Ok(outcome)
    }

    /// Marks overdue approvals no request waits for any more (e.g. from before a restart) as
    /// expired and records them. Run periodically by the gateway.
    pub async fn sweep(&self, recorder: &Recorder) {
        if let Err(e) = self.expire_overdue(recorder).await {
            tracing::warn!(target: "warden::approvals", "cannot expire approvals: {e}");
        }
    }

    fn notify_webhooks(&self, approval: &Approval, summary: &str, settings: &ApprovalSettings) {
        if settings.webhooks.is_empty() {
            return;
        }
        let body = Bytes::from(notification(approval, summary, settings).to_string());
        for url in &settings.webhooks {
            let client = self.client.clone();
            let url = url.clone();
            let body = body.clone();
            let id = approval.id.clone();
            tokio::spawn(async move {
                for attempt in 1..=WEBHOOK_ATTEMPTS {
                    let req = http::Request::post(&url)
                        .header(http::header::CONTENT_TYPE, "application/json")
                        .header(
                            http::header::USER_AGENT,
                            concat!("warden/", env!("CARGO_PKG_VERSION")),
                        )
                        .body(Full::new(body.clone()));
                    let req = match req {
                        Ok(r) => r,
                        Err(e) => {
                            tracing::warn!(target: "warden::approvals", %url, "approval webhook URL is not usable: {e}");
                            return;
                        }
                    };
                    match tokio::time::timeout(Duration::from_secs(10), client.request(req)).await {
                        Ok(Ok(resp)) if resp.status().is_success() => return,
                        Ok(Ok(resp)) => {
                            tracing::warn!(target: "warden::approvals", %url, %id, status = resp.status().as_u16(), attempt, "approval webhook refused the notification")
                        }
                        Ok(Err(e)) => {
                            tracing::warn!(target: "warden::approvals", %url, %id, attempt, "approval webhook unreachable: {e}")
                        }
                        Err(_) => {
                            tracing::warn!(target: "warden::approvals", %url, %id, attempt, "approval webhook timed out")
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
                }
            });
        }
    }
}

/// Removes a finished wait's wake-up handle.
struct Unregister {
    approvals: Arc<Approvals>,
    id: String,
}

impl Drop for Unregister {
    fn drop(&mut self) {
        if let Ok(mut w) = self.approvals.waiters.lock() {
            w.remove(&self.id);
        }
    }
}

/// The webhook's JSON: the approval (redacted arguments only), what to run to decide, and a
/// Slack-compatible `text` so an incoming-webhook URL works as is.
pub fn notification(approval: &Approval, summary: &str, settings: &ApprovalSettings) -> Value {
    let approve = format!("warden approvals approve {}", approval.id);
    let deny = format!("warden approvals deny {} --reason \"…\"", approval.id);
    let who = [
        approval.tenant.as_deref().map(|t| format!("tenant {t}")),
        approval.agent.as_deref().map(|a| format!("agent {a}")),
        approval.session.as_deref().map(|s| format!("session {s}")),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(", ");
    let expires = crate::pipeline::entry::rfc3339(approval.expires_at);
    let mut text = format!(
        "Warden: tool call `{}` needs approval ({}). {summary}\nArguments: {}\nApprove: `{approve}`\nDeny: `{deny}`\nDenied automatically at {expires}.",
        approval.tool,
        if who.is_empty() {
            "caller unknown".to_string()
        } else {
            who
        },
        approval.arguments,
    );
    let mut links = Map::new();
    if let Some(base) = &settings.link_base {
        let base = base.trim_end_matches('/');
        let a = format!("{base}/admin/approvals/{}/approve", approval.id);
        let d = format!("{base}/admin/approvals/{}/deny", approval.id);
        text.push_str(&format!("\nAdmin API: POST {a} | POST {d}"));
        links.insert("approve".into(), json!(a));
        links.insert("deny".into(), json!(d));
    }
    json!({
        "type": "warden.approval_requested",
        "text": text,
        "approval": approval,
        "commands": {"approve": approve, "deny": deny},
        "links": links,
    })
}

fn requested_details(a: &Approval) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("approval".into(), json!(a.id));
    m.insert("tool".into(), json!(a.tool));
    m.insert("rule".into(), json!(a.rule));
    m.insert("reason".into(), json!(a.reason));
    // `session` is the ledger's own member (events belong to none), so the caller's identity
    // is one object.
    m.insert(
        "caller".into(),
        json!({"tenant": a.tenant, "agent": a.agent, "session": a.session, "key": a.key_id}),
    );
    m.insert("provider".into(), json!(a.provider));
    m.insert("model".into(), json!(a.model));
    m.insert(
        "expires".into(),
        json!(crate::pipeline::entry::rfc3339(a.expires_at)),
    );
    m
}

pub(crate) fn decided_details(a: &Approval, actor: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("approval".into(), json!(a.id));
    m.insert("tool".into(), json!(a.tool));
    m.insert("status".into(), json!(a.status.name()));
    m.insert("actor".into(), json!(actor));
    m.insert("approver".into(), json!(a.approver));
    m.insert("reason".into(), json!(a.decision_reason));
    m.insert("request_entry".into(), json!(a.entry));
    m
}
