//! Govern stage: every tool call a model asks for is judged before the agent can receive it.
//!
//! - **Requests**: tool definitions a rule strips (`strip = true`) are removed before the model
//!   sees them.
//! - **Buffered responses**: each tool call is judged; a denied call either replaces the whole
//!   response with a provider-shaped error (`on_deny = "error"`) or is removed and explained in
//!   assistant text (`on_deny = "replace"`); a call that needs approval holds the response until
//!   a human decides (or the timeout denies).
//! - **Streams** ([`ToolGate`]): text flows live; from the first event of a tool call on, events
//!   are held until the call is complete and judged, then released as they were, rewritten
//!   without the denied call, or replaced by an error event.
//!
//! Judging is `warden-govern`'s; reading and rewriting provider JSON is `warden-protocol`'s
//! (`tools`); waiting for humans is [`crate::approve`]'s. This module decides what the agent
//! receives and records each call's fate ([`GovernRecord`], the entry's `tools` member: tool
//! names, rules and decisions, never arguments).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;
use warden_govern::{Action, OnDeny, Subject, Verdict};
use warden_protocol::tools::{ToolCallTracker, rewrite_response, strip_tools};
use warden_protocol::{EventSplitter, Framing, Route, ToolCall};
use warden_state::NewApproval;

use super::identify::Identity;
use super::record::Recorder;
use super::refuse::{GatewayError, Source};
use crate::approve::{Approvals, Ask, Resolution};
use crate::config::{ProtectConfig, ToolsConfig};

/// What governance did in one exchange, for its ledger entry.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct GovernRecord {
    /// Every tool call the model asked for, in order, with its decision.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<CallRow>,
    /// Tool definitions removed from the request.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stripped: Vec<String>,
}

impl GovernRecord {
    /// Nothing to record.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty() && self.stripped.is_empty()
    }

    fn row(&mut self, slot: usize) -> Option<&mut CallRow> {
        self.calls.iter_mut().find(|r| r.slot == slot)
    }
}

/// One judged tool call.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CallRow {
    /// Position among the response's tool calls.
    pub slot: usize,
    /// The tool the model asked for.
    pub tool: String,
    /// The provider's call id, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The rule that decided (`preset:sql`, a `[[tools.rules]]` name, or `default`).
    pub rule: String,
    /// The rule's action: `allow`, `log`, `deny` or `approve`.
    pub action: &'static str,
    /// What the agent got: `delivered`, `removed` (replaced by an explanation) or `refused`
    /// (the response became an error).
    pub result: &'static str,
    /// Why, for anything but a plain allow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The human decision, for `approve`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalRow>,
}

/// How an approval ended.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ApprovalRow {
    /// `apr_…`.
    pub id: String,
    /// `approved`, `denied` or `expired`; `unavailable` when the queue could not be used.
    pub status: String,
    /// Who decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approver: Option<String>,
}

/// Everything judging needs about one exchange.
#[derive(Clone)]
pub struct GovernCtx {
    /// `[tools]`, as read when the exchange started.
    pub tools: Arc<ToolsConfig>,
    /// Content protection's scanner, to redact arguments shown to approvers.
    pub protection: Arc<ProtectConfig>,
    /// The approval queue.
    pub approvals: Arc<Approvals>,
    /// For the approval ledger events.
    pub recorder: Arc<Recorder>,
    /// Who is calling.
    pub identity: Identity,
    /// Provider name.
    pub provider: &'static str,
    /// Model the request named.
    pub model: Option<String>,
}

/// The judgement of one call, before any human is asked.
enum Fate {
    Deliver,
    Remove(String),
    Refuse(String),
    Ask,
}

impl GovernCtx {
    fn subject(&self) -> Subject<'_> {
        Subject {
            tenant: self.identity.tenant.as_deref(),
            agent: self.identity.agent.as_deref(),
            key: self.identity.key.as_deref(),
        }
    }

    /// Whether this exchange has anything to judge at all (no rules, preset off: nothing).
    pub fn active(&self) -> bool {
        self.tools.enabled
    }

    fn judge(&self, call: &ToolCall) -> Verdict {
        let args: Value = serde_json::from_str(&call.arguments)
            .unwrap_or_else(|_| Value::String(call.arguments.clone()));
        let mut v = self.tools.governor.judge(
            &warden_govern::ToolCall {
                name: &call.name,
                arguments: &args,
            },
            &self.subject(),
        );
        if v.rule.starts_with("preset:") || v.rule.as_ref() == "default" {
            v.on_deny = self.tools.on_deny;
        }
        v
    }

    /// Judges `call` and adds its row to `record`.
    fn fate(&self, slot: usize, call: &ToolCall, record: &mut GovernRecord) -> (Fate, Verdict) {
        let v = self.judge(call);
        let (fate, result) = match v.action {
            Action::Allow | Action::Log => (Fate::Deliver, "delivered"),
            Action::Deny => match v.on_deny {
                OnDeny::Error => (Fate::Refuse(refusal(call, &v)), "refused"),
                OnDeny::Replace => (Fate::Remove(explanation(call, &v.reason)), "removed"),
            },
            Action::Approve => (Fate::Ask, "pending"),
        };
        if v.action != Action::Allow || v.rule.as_ref() != "default" {
            tracing::info!(target: "warden::tools", tool = %call.name, rule = %v.rule, action = %v.action, "tool call judged");
        }
        record.calls.push(CallRow {
            slot,
            tool: call.name.clone(),
            id: call.id.clone(),
            rule: v.rule.to_string(),
            action: action_name(v.action),
            result,
            reason: (v.action != Action::Allow).then(|| v.reason.clone()),
            approval: None,
        });
        (fate, v)
    }

    /// The approval request for `call`, arguments redacted.
    /// The approval request for `call`; `arguments` are what approvers see, already redacted.
    fn ask(&self, call: &ToolCall, v: &Verdict, arguments: String) -> Ask {
        Ask {
            new: NewApproval {
                tenant: self.identity.tenant.clone(),
                agent: self.identity.agent.clone(),
                session: self.identity.session.clone(),
                key_id: self.identity.key.clone(),
                provider: self.provider.to_string(),
                model: self.model.clone().unwrap_or_default(),
                tool: call.name.clone(),
                arguments,
                rule: v.rule.to_string(),
                reason: v.reason.clone(),
                ttl: self.tools.approvals.timeout,
            },
            summary: v.reason.clone(),
        }
    }

    /// Asks for every call in `asks` (all requests first, so approvers see them together),
    /// then waits for each decision.
    pub async fn resolve(
        &self,
        asks: Vec<PendingAsk>,
    ) -> Vec<(PendingAsk, Result<Resolution, String>)> {
        let requests = asks
            .iter()
            .map(|a| {
                let mut arguments = a.call.arguments.clone();
                super::protect::redact_text(&self.protection, &mut arguments);
                self.ask(&a.call, &a.verdict, arguments)
            })
            .collect();
        asks.into_iter()
            .zip(self.decisions(requests).await)
            .collect()
    }

    /// Queues every request, then waits for each decision, in order.
    async fn decisions(&self, requests: Vec<Ask>) -> Vec<Result<Resolution, String>> {
        let mut opened = Vec::with_capacity(requests.len());
        for ask in requests {
            opened.push(
                self.approvals
                    .request(&self.recorder, ask, &self.tools.approvals)
                    .await,
            );
        }
        let mut out = Vec::with_capacity(opened.len());
        for r in opened {
            out.push(match r {
                Ok(approval) => self.approvals.wait(&self.recorder, &approval.id).await,
                Err(e) => Err(e),
            });
        }
        out
    }
}

/// A call judged `approve`, waiting for a human.
#[derive(Debug, Clone)]
pub struct PendingAsk {
    /// Its position among the response's calls.
    pub slot: usize,
    /// The call.
    pub call: ToolCall,
    /// The rule that asked.
    pub verdict: Verdict,
}

/// How a wait for a human ended: the ledger row, whether it was approved, and why not.
fn outcome(resolution: &Result<Resolution, String>) -> (ApprovalRow, bool, String) {
    match resolution {
        Ok(r) => (
            ApprovalRow {
                id: r.approval.id.clone(),
                status: r.approval.status.name().to_string(),
                approver: r.approval.approver.clone(),
            },
            r.approved(),
            match (r.approval.status.name(), &r.approval.decision_reason) {
                ("expired", _) => "no one decided before the approval timeout".to_string(),
                (_, Some(reason)) => format!("an approver denied it: {reason}"),
                _ => "an approver denied it".to_string(),
            },
        ),
        Err(e) => (
            ApprovalRow {
                id: String::new(),
                status: "unavailable".into(),
                approver: None,
            },
            false,
            format!("approval could not be asked for: {e}"),
        ),
    }
}

/// Applies a human decision: the row is completed, and the call's fate is final.
fn settle(
    record: &mut GovernRecord,
    ask: &PendingAsk,
    resolution: &Result<Resolution, String>,
) -> Fate {
    let (row, approved, why) = outcome(resolution);
    let fate = if approved {
        Fate::Deliver
    } else {
        let reason = format!("{} ({why})", ask.verdict.reason);
        match ask.verdict.on_deny {
            OnDeny::Error => Fate::Refuse(format!(
                "Warden withheld this response: the model asked to call tool \"{}\", which rule \"{}\" sends for human approval, and it was not approved: {why}. The exchange is recorded.",
                ask.call.name, ask.verdict.rule
            )),
            OnDeny::Replace => Fate::Remove(explanation(&ask.call, &reason)),
        }
    };
    if let Some(r) = record.row(ask.slot) {
        r.result = match fate {
            Fate::Deliver => "delivered",
            Fate::Remove(_) => "removed",
            _ => "refused",
        };
        r.approval = Some(row);
    }
    fate
}

fn action_name(a: Action) -> &'static str {
    match a {
        Action::Allow => "allow",
        Action::Log => "log",
        Action::Deny => "deny",
        Action::Approve => "approve",
    }
}

/// The assistant text that stands in for a removed call.
fn explanation(call: &ToolCall, reason: &str) -> String {
    format!(
        "[warden] The tool call \"{}\" was blocked and not delivered: {reason}. Continue without it or ask the user.",
        call.name
    )
}

fn refusal(call: &ToolCall, v: &Verdict) -> String {
    format!(
        "Warden withheld this response: the model asked to call tool \"{}\", and rule \"{}\" denies it: {}. The exchange is recorded; ask the operator to review [tools] if this is intended.",
        call.name, v.rule, v.reason
    )
}

/// Holds a request a policy rule or a budget sends for approval until a human decides; a
/// denial or the timeout refuses it (403 `policy_denied`), and the decision is recorded in the
/// exchange's `decision.approval`.
pub async fn hold_request(
    flight: &mut super::Flight,
    hold: super::decide::Hold,
) -> Result<(), GatewayError> {
    let ctx = flight.govern_ctx();
    // What the approver sees: the model and the last thing the user said, redacted.
    let last_user = flight
        .request
        .as_ref()
        .and_then(|r| {
            r.messages
                .iter()
                .rev()
                .find(|m| m.role == warden_protocol::Role::User)
        })
        .map(|m| {
            m.content
                .iter()
                .filter_map(|c| match c {
                    warden_protocol::Content::Text(t) => Some(t.text.as_str()),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    let mut excerpt: String = last_user.chars().take(500).collect();
    super::protect::redact_text(&ctx.protection, &mut excerpt);
    let operation = flight.target.route.operation.name();
    let call = ToolCall {
        id: None,
        name: format!("request:{operation}"),
        arguments: serde_json::json!({
            "model": ctx.model,
            "path": flight.path,
            "last_user_message": excerpt,
        })
        .to_string(),
    };
    let verdict = Verdict {
        action: Action::Approve,
        rule: Arc::from(hold.rule.as_str()),
        reason: hold.reason.clone(),
        on_deny: OnDeny::Error,
    };
    // The excerpt was redacted on its own, so what approvers see stays valid JSON.
    let ask = ctx.ask(&call, &verdict, call.arguments.clone());
    let resolution = ctx
        .decisions(vec![ask])
        .await
        .pop()
        .expect("one decision per request");
    let (row, approved, why) = outcome(&resolution);
    flight.verdict.approval = Some(row);
    if approved {
        return Ok(());
    }
    flight.verdict.action = "deny";
    let message = format!(
        "Warden refused this request: {} (rule `{}`) needs a human's approval, and it was not approved: {why}.",
        hold.reason, hold.rule
    );
    flight.verdict.reason = Some(message.clone());
    Err(GatewayError::policy_denied(403, message))
}

/// Removes the tool definitions the caller may not offer. Returns the new body when anything
/// was removed.
pub fn strip_request(
    ctx: &GovernCtx,
    route: &Route,
    body: &Bytes,
    record: &mut GovernRecord,
) -> Result<Option<Bytes>, GatewayError> {
    if !ctx.tools.strips {
        return Ok(None);
    }
    let subject = ctx.subject();
    let keep = |name: &str| ctx.tools.governor.offers(name, &subject);
    match strip_tools(route, body, &keep) {
        Ok(Some((bytes, removed))) => {
            record.stripped = removed;
            Ok(Some(Bytes::from(bytes)))
        }
        Ok(None) => Ok(None),
        Err(e) => Err(GatewayError::invalid_request(format!(
            "Warden could not read the tools of this request: {e}"
        ))),
    }
}

/// Judges the tool calls of a buffered response; returns the bytes the agent may receive.
pub async fn buffered(
    ctx: &GovernCtx,
    route: &Route,
    calls: &[ToolCall],
    bytes: Bytes,
    record: &mut GovernRecord,
) -> Result<Bytes, GatewayError> {
    let mut denied = BTreeMap::new();
    let mut asks = Vec::new();
    for (slot, call) in calls.iter().enumerate() {
        let (fate, verdict) = ctx.fate(slot, call, record);
        match fate {
            Fate::Deliver => {}
            Fate::Remove(text) => {
                denied.insert(slot, text);
            }
            Fate::Refuse(message) => {
                return Err(GatewayError::content_blocked(message, Source::Upstream));
            }
            Fate::Ask => asks.push(PendingAsk {
                slot,
                call: call.clone(),
                verdict,
            }),
        }
    }
    for (ask, resolution) in ctx.resolve(asks).await {
        match settle(record, &ask, &resolution) {
            Fate::Deliver | Fate::Ask => {}
            Fate::Remove(text) => {
                denied.insert(ask.slot, text);
            }
            Fate::Refuse(message) => {
                return Err(GatewayError::content_blocked(message, Source::Upstream));
            }
        }
    }
    if denied.is_empty() {
        return Ok(bytes);
    }
    rewrite_response(route, &bytes, &denied)
        .map(Bytes::from)
        .map_err(|e| {
            GatewayError::internal(format!(
                "Warden could not remove a denied tool call from the response, so it is withheld: {e}"
            ))
        })
}

/// One event the gate holds.
struct Held {
    name: Option<String>,
    data: Vec<u8>,
    /// The event's bytes as received (with its separators).
    raw: Vec<u8>,
}

/// Holds a stream's tool-call events until each call is judged (see the module docs).
pub struct ToolGate {
    ctx: GovernCtx,
    framing: Framing,
    splitter: EventSplitter,
    tracker: ToolCallTracker,
    pos: u64,
    queue: VecDeque<Held>,
    /// Calls seen but not complete.
    open: BTreeSet<usize>,
    /// Calls judged `approve`, not yet handed to [`ToolGate::take_asks`].
    asks: Vec<PendingAsk>,
    /// Calls handed out for approval and not yet decided.
    waiting: BTreeSet<usize>,
    denied: BTreeMap<usize, String>,
    /// Set once any call was seen: from then on every event goes through the rewriter, which
    /// keeps later stop reasons consistent with what was removed.
    rewriting: bool,
    refusal: Option<String>,
    record: GovernRecord,
    /// Queue length when the terminal bytes were added by [`ToolGate::finish_begin`].
    terminal_from: Option<usize>,
}

impl ToolGate {
    /// A gate for one stream; `None` for framings without events.
    pub fn new(ctx: GovernCtx, route: &Route, framing: Framing) -> Option<ToolGate> {
        Some(ToolGate {
            splitter: EventSplitter::new(framing)?,
            tracker: ToolCallTracker::new(route),
            ctx,
            framing,
            pos: 0,
            queue: VecDeque::new(),
            open: BTreeSet::new(),
            asks: Vec::new(),
            waiting: BTreeSet::new(),
            denied: BTreeMap::new(),
            rewriting: false,
            refusal: None,
            record: GovernRecord::default(),
            terminal_from: None,
        })
    }

    /// The judging context (to resolve asks).
    pub fn ctx(&self) -> &GovernCtx {
        &self.ctx
    }

    /// A call was denied with `on_deny = "error"`: the stream must end with this message.
    pub fn refusal(&self) -> Option<&str> {
        self.refusal.as_deref()
    }

    /// What governance did so far.
    pub fn take_record(&mut self) -> GovernRecord {
        std::mem::take(&mut self.record)
    }

    /// Calls waiting for a human; while any is undecided the gate holds everything.
    pub fn take_asks(&mut self) -> Vec<PendingAsk> {
        for a in &self.asks {
            self.waiting.insert(a.slot);
        }
        std::mem::take(&mut self.asks)
    }

    /// Feeds released bytes (whole events); returns what may go out now.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = self.add_events(bytes);
        self.release(&mut out);
        out
    }

    /// Human decisions for calls from [`ToolGate::take_asks`]; returns what may go out now.
    pub fn decided(&mut self, results: Vec<(PendingAsk, Result<Resolution, String>)>) -> Vec<u8> {
        for (ask, resolution) in results {
            self.waiting.remove(&ask.slot);
            match settle(&mut self.record, &ask, &resolution) {
                Fate::Deliver | Fate::Ask => {}
                Fate::Remove(text) => {
                    self.denied.insert(ask.slot, text);
                }
                Fate::Refuse(m) => {
                    self.refusal.get_or_insert(m);
                }
            }
        }
        let mut out = Vec::new();
        if self.terminal_from.is_none() {
            self.release(&mut out);
        }
        out
    }

    /// The upstream ended: `terminal` is the held-back terminal event (and whatever followed).
    /// Calls still open are completed and judged; asks may follow ([`ToolGate::take_asks`])
    /// before [`ToolGate::finish_release`].
    pub fn finish_begin(&mut self, terminal: &[u8]) -> Vec<u8> {
        self.terminal_from = Some(self.queue.len());
        let before = self.add_events_at_end(terminal);
        for (slot, call) in self.tracker.finish() {
            self.open.remove(&slot);
            self.judge(slot, &call);
        }
        self.open.clear();
        before
    }

    /// After [`ToolGate::finish_begin`] and any decisions: the events before the terminal
    /// event, and the terminal event, as they may go out.
    pub fn finish_release(&mut self) -> (Vec<u8>, Vec<u8>) {
        let terminal_from = self.terminal_from.take().unwrap_or(self.queue.len());
        let mut before = Vec::new();
        let mut after = Vec::new();
        if self.refusal.is_some() {
            return (before, after);
        }
        let mut i = 0;
        while let Some(h) = self.queue.pop_front() {
            let target = if i < terminal_from {
                &mut before
            } else {
                &mut after
            };
            self.render(h, target);
            i += 1;
        }
        (before, after)
    }

    fn judge(&mut self, slot: usize, call: &ToolCall) {
        self.rewriting = true;
        let (fate, verdict) = self.ctx.fate(slot, call, &mut self.record);
        match fate {
            Fate::Deliver => {}
            Fate::Remove(text) => {
                self.denied.insert(slot, text);
            }
            Fate::Refuse(m) => {
                self.refusal.get_or_insert(m);
            }
            Fate::Ask => self.asks.push(PendingAsk {
                slot,
                call: call.clone(),
                verdict,
            }),
        }
    }

    /// Splits `bytes` into events, observes and queues them; returns separator bytes that
    /// belong to no held event.
    fn add_events(&mut self, bytes: &[u8]) -> Vec<u8> {
        let base = self.pos;
        self.pos += bytes.len() as u64;
        let events = self.splitter.push(bytes);
        self.queue_events(base, bytes, events)
    }

    /// Like [`ToolGate::add_events`] for the stream's last bytes, flushing an unterminated event.
    fn add_events_at_end(&mut self, bytes: &[u8]) -> Vec<u8> {
        let base = self.pos;
        self.pos += bytes.len() as u64;
        let mut events = self.splitter.push(bytes);
        events.extend(self.splitter.finish());
        self.queue_events(base, bytes, events)
    }

    fn queue_events(
        &mut self,
        base: u64,
        bytes: &[u8],
        events: Vec<warden_protocol::StreamEvent>,
    ) -> Vec<u8> {
        let first = events
            .first()
            .map_or(bytes.len(), |e| (e.start.saturating_sub(base)) as usize)
            .min(bytes.len());
        let mut out = Vec::new();
        match self.queue.back_mut() {
            Some(h) => h.raw.extend_from_slice(&bytes[..first]),
            None => out.extend_from_slice(&bytes[..first]),
        }
        for (i, e) in events.iter().enumerate() {
            let from = (e.start.saturating_sub(base) as usize).min(bytes.len());
            let to = events
                .get(i + 1)
                .map_or(bytes.len(), |n| (n.start.saturating_sub(base)) as usize)
                .min(bytes.len());
            let seen = self.tracker.observe(e.name.as_deref(), &e.data);
            for s in seen.open {
                self.open.insert(s);
                self.rewriting = true;
            }
            for (slot, call) in seen.completed {
                self.open.remove(&slot);
                self.judge(slot, &call);
            }
            self.queue.push_back(Held {
                name: e.name.clone(),
                data: e.data.clone(),
                raw: bytes[from..to].to_vec(),
            });
        }
        out
    }

    /// Sends queued events once no call is open or undecided.
    fn release(&mut self, out: &mut Vec<u8>) {
        if self.refusal.is_some()
            || !self.open.is_empty()
            || !self.asks.is_empty()
            || !self.waiting.is_empty()
        {
            return;
        }
        while let Some(h) = self.queue.pop_front() {
            self.render(h, out);
        }
    }

    fn render(&mut self, h: Held, out: &mut Vec<u8>) {
        if !self.rewriting {
            out.extend_from_slice(&h.raw);
            return;
        }
        let rewrite = self
            .tracker
            .rewrite(h.name.as_deref(), &h.data, &self.denied);
        out.extend_from_slice(&rewrite.render(self.framing, &h.raw));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use warden_protocol::{StreamInspector, classify};

    use super::*;
    use crate::config::{Capture, Config, Overrides};

    const STREAM: &str =
        include_str!("../../../protocol/tests/fixtures/openai/chat_stream_text_tool.sse");

    fn ctx(tag: &str, toml: &str) -> GovernCtx {
        let config = Config::from_str(toml, "test.toml", &Overrides::default()).expect("config");
        let dir = std::env::temp_dir().join(format!("warden-govern-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store: Arc<dyn warden_state::Store> =
            Arc::new(warden_state::SqliteStore::open(&dir).expect("store"));
        GovernCtx {
            tools: config.policy.tools.clone(),
            protection: config.policy.protect.clone(),
            approvals: Arc::new(Approvals::new(
                store,
                super::super::forward::build_client(&config.limits, &[]),
            )),
            recorder: Arc::new(Recorder::new(
                Arc::new(AtomicBool::new(true)),
                None,
                Capture::Redacted,
            )),
            identity: Identity::default(),
            provider: "openai",
            model: None,
        }
    }

    /// The fixture's events (each with its separator), and where `[DONE]` starts.
    fn events(stream: &str) -> (Vec<&str>, usize) {
        let parts: Vec<&str> = stream.split_inclusive("\n\n").collect();
        let done = parts
            .iter()
            .position(|p| p.starts_with("data: [DONE]"))
            .expect("a terminal event");
        (parts, done)
    }

    /// Runs a stream through a gate in groups of `group` events; returns the released bytes and
    /// how many bytes had gone out by the time each event was pushed.
    fn run(gate: &mut ToolGate, stream: &str, group: usize) -> (String, Vec<usize>) {
        let (parts, done) = events(stream);
        let mut out = Vec::new();
        let mut progress = Vec::new();
        for chunk in parts[..done].chunks(group) {
            out.extend(gate.push(chunk.concat().as_bytes()));
            progress.extend(std::iter::repeat_n(out.len(), chunk.len()));
        }
        out.extend(gate.finish_begin(parts[done..].concat().as_bytes()));
        assert!(gate.take_asks().is_empty());
        let (before, after) = gate.finish_release();
        out.extend(before);
        out.extend(after);
        (String::from_utf8(out).expect("UTF-8"), progress)
    }

    fn reparse(bytes: &str) -> warden_protocol::ExchangeResponse {
        let route = classify("POST", "/v1/chat/completions").expect("route");
        let mut i = StreamInspector::new(&route, Framing::Sse);
        i.push(bytes.as_bytes());
        assert_eq!(
            i.malformed_events(),
            0,
            "the rewritten stream must stay valid:\n{bytes}"
        );
        i.finish()
    }

    #[test]
    fn a_denied_streamed_call_never_leaves_and_text_before_it_flows_live() {
        let route = classify("POST", "/v1/chat/completions").expect("route");
        let (parts, _) = events(STREAM);
        let first_call = parts
            .iter()
            .position(|p| p.contains("\"tool_calls\""))
            .expect("a tool call");
        let text_len: usize = parts[..first_call].iter().map(|p| p.len()).sum();
        for group in [1, 2, 3, 7, 64] {
            let mut gate = ToolGate::new(
                ctx("deny", "[tools]\non_deny = \"replace\"\n"),
                &route,
                Framing::Sse,
            )
            .expect("SSE has events");
            let (out, progress) = run(&mut gate, STREAM, group);
            // Text before the call was released as it was pushed, not held for the call.
            if group == 1 {
                let completes = parts
                    .iter()
                    .position(|p| p.contains("\"finish_reason\":\"tool_calls\""))
                    .expect("the call's finish");
                assert_eq!(progress[first_call - 1], text_len);
                assert!(
                    progress[first_call..completes]
                        .iter()
                        .all(|&n| n == text_len),
                    "nothing of the call may go out before it is judged: {progress:?}"
                );
            }
            assert!(
                !out.contains("\"arguments\":\"DROP\"") && !out.contains("\"tool_calls\":["),
                "the denied call leaked (group {group}):\n{out}"
            );
            let resp = reparse(&out);
            assert!(resp.tool_calls.is_empty(), "{:?}", resp.tool_calls);
            assert!(
                resp.output_text
                    .starts_with("The users table is obsolete; dropping it now.")
            );
            assert!(
                resp.output_text
                    .contains("[warden] The tool call \"execute_sql\" was blocked")
            );
            assert_eq!(resp.finish_reason.as_deref(), Some("stop"));
            let record = gate.take_record();
            assert_eq!(record.calls.len(), 1);
            assert_eq!(
                (record.calls[0].rule.as_str(), record.calls[0].result),
                ("preset:sql", "removed")
            );
        }
    }

    #[test]
    fn an_allowed_streamed_call_goes_out_byte_for_byte() {
        let route = classify("POST", "/v1/chat/completions").expect("route");
        let harmless = STREAM
            .replace("DROP", "SELECT * FROM")
            .replace(" TABLE", "");
        assert!(harmless.contains("SELECT * FROM"));
        for group in [1, 4, 64] {
            let mut gate =
                ToolGate::new(ctx("allow", ""), &route, Framing::Sse).expect("SSE has events");
            let (out, _) = run(&mut gate, &harmless, group);
            assert_eq!(out, harmless);
            assert_eq!(gate.take_record().calls[0].result, "delivered");
        }
    }

    #[test]
    fn a_call_denied_as_error_refuses_the_stream() {
        let route = classify("POST", "/v1/chat/completions").expect("route");
        let mut gate = ToolGate::new(ctx("error", ""), &route, Framing::Sse).expect("events");
        let (parts, done) = events(STREAM);
        let mut out = Vec::new();
        for p in &parts[..done] {
            out.extend(gate.push(p.as_bytes()));
        }
        gate.finish_begin(parts[done].as_bytes());
        let refusal = gate.refusal().expect("refused").to_string();
        assert!(
            refusal.contains("preset:sql") && refusal.contains("execute_sql"),
            "{refusal}"
        );
        assert!(!String::from_utf8_lossy(&out).contains("tool_calls"));
        assert_eq!(gate.finish_release(), (Vec::new(), Vec::new()));
    }
}
