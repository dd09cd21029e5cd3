//! Record stage: every exchange, allowed, refused or failed, ends here exactly once, and
//! nothing is released to the client before its record is committed.
//!
//! [`Recorder::commit`] takes an [`ExchangeRecord`] and returns a [`Commit`], a future that
//! resolves once the record is durable, with the [`Receipt`] to hand the client. Release waits on
//! it: a buffered response is sent only after it resolves, a stream's terminal event likewise.
//! A commit that fails resolves to an [`AuditError`]; the caller answers 503 instead of
//! releasing (fail closed) and the gateway turns not-ready. Every commit also becomes one
//! structured log line (never content, keys or query strings) and is handed to in-process
//! subscribers (`warden demo`).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use serde::Serialize;
use sha2::{Digest as _, Sha256};
use std::time::SystemTime;

use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, oneshot};
use warden_ledger::log::{EntryDraft, Ledger};
use warden_protocol::Exchange;

use super::entry;
use crate::audit::BlobStore;
use crate::config::Capture;

use super::identify::Identity;
use super::refuse::Source;

/// How an exchange ended.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The request was recorded before being forwarded (streams); its completion follows.
    Forwarded,
    /// The upstream's response was delivered to the client in full.
    Completed,
    /// The gateway answered itself with an error.
    Refused {
        /// Status sent to the client.
        status: u16,
        /// Error code (`not_found`, `upstream_timeout`, …).
        code: &'static str,
        /// Who was at fault.
        source: Source,
        /// The message the client got.
        message: String,
    },
    /// The upstream failed after its response began (broken stream, idle timeout).
    UpstreamFailed {
        /// What went wrong.
        message: String,
    },
    /// The client went away before the response was complete; the upstream request was dropped.
    ClientCancelled,
}

impl Outcome {
    /// Short name for logs and summaries.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Forwarded => "forwarded",
            Outcome::Completed => "completed",
            Outcome::Refused { code, .. } => code,
            Outcome::UpstreamFailed { .. } => "upstream_failed",
            Outcome::ClientCancelled => "client_cancelled",
        }
    }
}

/// The entry body of a gateway event.
fn event_body(event: &str, details: Map<String, Value>) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("v".into(), json!(entry::SCHEMA_VERSION));
    body.insert("kind".into(), json!("event"));
    body.insert("time".into(), json!(entry::rfc3339(SystemTime::now())));
    body.insert("event".into(), json!(event));
    body.extend(details);
    body
}

/// SHA-256 and length of a body as it crossed the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BodyDigest {
    /// Lower-case hex SHA-256.
    pub sha256: String,
    /// Length in bytes.
    pub bytes: u64,
}

impl BodyDigest {
    /// Digest of one buffer.
    pub fn of(bytes: &[u8]) -> BodyDigest {
        let mut h = Sha256::new();
        h.update(bytes);
        BodyDigest::finish(h, bytes.len() as u64)
    }

    /// Finishes a running hash.
    pub fn finish(h: Sha256, bytes: u64) -> BodyDigest {
        // One string, not a `format!` per byte: this runs twice for every exchange.
        let sha256 = warden_ledger::Hash(h.finalize().into()).to_hex();
        BodyDigest { sha256, bytes }
    }
}

/// One record: a request about to be forwarded, or a finished exchange.
#[derive(Debug, Clone, Serialize)]
pub struct ExchangeRecord {
    /// The normalized exchange.
    pub exchange: Exchange,
    /// What tool-call governance judged and did.
    pub tools: super::govern::GovernRecord,
    /// Who called.
    pub identity: Identity,
    /// Upstream name, when one was chosen.
    pub upstream: Option<String>,
    /// HTTP method as the client sent it.
    pub method: String,
    /// Request path (no query string: it may hold a key).
    pub path: String,
    /// How it ended (or [`Outcome::Forwarded`] for a request record).
    pub outcome: Outcome,
    /// Digest of the request body as forwarded.
    pub request_digest: Option<BodyDigest>,
    /// Digest of the response body: as released for buffered responses (after content
    /// protection), as received from the upstream for streams.
    pub response_digest: Option<BodyDigest>,
    /// Index of this exchange's request record, when one was committed before forwarding.
    pub request_entry: Option<u64>,
    /// What the decide stage concluded.
    pub verdict: super::decide::Verdict,
    /// What the exchange cost, once it ended.
    pub cost: Option<super::decide::Cost>,
    /// What content protection found and did.
    pub protect: super::protect::ProtectRecord,
}

/// What a client gets to prove its exchange was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// Ledger index of the record.
    pub index: u64,
    /// Base64 of the C2SP tlog-proof for the record.
    pub proof: String,
}

/// The record could not be made durable; nothing may be released.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct AuditError(pub String);

/// A commit in flight: resolves once the record is durable (`Some` receipt when a ledger is
/// configured, `None` when auditing is off) or failed.
pub struct Commit(oneshot::Receiver<Result<Option<Receipt>, AuditError>>);

impl Future for Commit {
    type Output = Result<Option<Receipt>, AuditError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|r| {
            r.unwrap_or_else(|_| Err(AuditError("the ledger stopped before recording".into())))
        })
    }
}

/// Receives every record.
pub struct Recorder {
    subscribers: Mutex<Vec<mpsc::UnboundedSender<Arc<ExchangeRecord>>>>,
    ready: Arc<AtomicBool>,
    ledger: Option<Arc<Ledger>>,
    capture: Capture,
    blobs: Option<(BlobStore, usize)>,
}

impl Recorder {
    /// A recorder that appends to `ledger` (none: log only, auditing off) and reports the
    /// ledger's health through `ready` (`/readyz`).
    pub fn new(ready: Arc<AtomicBool>, ledger: Option<Arc<Ledger>>, capture: Capture) -> Recorder {
        Recorder {
            subscribers: Mutex::new(Vec::new()),
            ready,
            ledger,
            capture,
            blobs: None,
        }
    }

    /// Moves content strings longer than `threshold` bytes (full capture) into `store`.
    pub fn with_blobs(mut self, store: BlobStore, threshold: usize) -> Recorder {
        self.blobs = Some((store, threshold));
        self
    }

    /// What entries keep of content.
    pub fn capture(&self) -> Capture {
        self.capture
    }

    /// The ledger, when auditing is on.
    pub fn ledger(&self) -> Option<&Arc<Ledger>> {
        self.ledger.as_ref()
    }

    /// Records `rec`; the returned future resolves when it is durable (written, fdatasync'd and
    /// covered by a signed checkpoint) or failed.
    pub fn commit(&self, rec: ExchangeRecord) -> Commit {
        let (tx, rx) = oneshot::channel();
        self.log(&rec);
        match &self.ledger {
            None => {
                let _ = tx.send(Ok(None));
            }
            Some(ledger) => {
                let threshold = self.blobs.as_ref().map_or(usize::MAX, |(_, t)| *t);
                let (body, blobs) =
                    entry::body_with_blobs(&rec, self.capture, threshold, SystemTime::now());
                let draft = EntryDraft::new(rec.identity.session.clone(), body);
                let ledger = ledger.clone();
                let append = move |tx: oneshot::Sender<_>| {
                    ledger.append(draft, move |result| {
                        let _ = tx.send(
                            result
                                .map(|a| {
                                    Some(Receipt {
                                        index: a.index(),
                                        proof: a.receipt_base64(),
                                    })
                                })
                                .map_err(|e| AuditError(e.to_string())),
                        );
                    });
                };
                match (&self.blobs, blobs.is_empty()) {
                    (Some((store, _)), false) => {
                        // Blobs are synced before the entry that names them; that file I/O
                        // must not run on the event loop.
                        let store = store.clone();
                        let work = move || match store.write(&blobs) {
                            Ok(()) => append(tx),
                            Err(e) => {
                                let _ = tx.send(Err(AuditError(format!(
                                    "cannot write content blobs: {e}"
                                ))));
                            }
                        };
                        match tokio::runtime::Handle::try_current() {
                            Ok(h) => drop(h.spawn_blocking(work)),
                            Err(_) => work(),
                        }
                    }
                    _ => append(tx),
                }
            }
        }
        self.publish(rec);
        Commit(rx)
    }

    /// Records an operator action (kill, unkill, key created or revoked, reload); resolves when
    /// it is durable.
    pub fn event(&self, event: &str, details: Map<String, Value>) -> Commit {
        let (tx, rx) = oneshot::channel();
        let Some(ledger) = &self.ledger else {
            let _ = tx.send(Ok(None));
            return Commit(rx);
        };
        tracing::info!(target: "warden::admin", event, "operator action");
        ledger.append(
            EntryDraft::new(None, event_body(event, details)),
            move |r| {
                let _ = tx.send(
                    r.map(|a| {
                        Some(Receipt {
                            index: a.index(),
                            proof: a.receipt_base64(),
                        })
                    })
                    .map_err(|e| AuditError(e.to_string())),
                );
            },
        );
        Commit(rx)
    }

    /// Records a gateway event (start, config change) and waits until it is durable.
    pub fn event_blocking(
        &self,
        event: &str,
        details: Map<String, Value>,
    ) -> Result<Option<u64>, AuditError> {
        let Some(ledger) = &self.ledger else {
            return Ok(None);
        };
        ledger
            .append_blocking(EntryDraft::new(None, event_body(event, details)))
            .map(|a| Some(a.index()))
            .map_err(|e| AuditError(e.to_string()))
    }

    /// Marks the durable store failed: `/readyz` reports not ready from now on.
    pub fn fail(&self, e: &AuditError) {
        if self.ready.swap(false, Ordering::Relaxed) {
            tracing::error!(
                "the ledger cannot record exchanges; refusing traffic until restart: {e}"
            );
        }
    }

    fn log(&self, rec: &ExchangeRecord) {
        let ex = &rec.exchange;
        let req = ex.request.as_ref();
        let resp = ex.response.as_ref();
        let outcome = rec.outcome.name();
        if matches!(rec.outcome, Outcome::Forwarded) {
            tracing::debug!(target: "warden::exchange", path = %rec.path, outcome, "request recorded before forwarding");
            return;
        }
        tracing::info!(
            target: "warden::exchange",
            provider = ex.route.provider.name(),
            operation = ?ex.route.operation,
            upstream = rec.upstream.as_deref().unwrap_or("-"),
            session = rec.identity.session.as_deref(),
            tenant = rec.identity.tenant.as_deref(),
            agent = rec.identity.agent.as_deref(),
            path = %rec.path,
            model = req.and_then(|r| r.model.as_deref()).or_else(|| resp.and_then(|r| r.model.as_deref())).unwrap_or("-"),
            stream = req.is_some_and(|r| r.stream),
            status = ex.upstream_status,
            input_tokens = resp.and_then(|r| r.usage.input_tokens),
            output_tokens = resp.and_then(|r| r.usage.output_tokens),
            tool_calls = resp.map_or(0, |r| r.tool_calls.len()),
            latency_us = ex.upstream_latency_us,
            outcome,
            "exchange"
        );
        if let Outcome::Refused { message, .. } | Outcome::UpstreamFailed { message } = &rec.outcome
        {
            tracing::warn!(target: "warden::exchange", path = %rec.path, "{message}");
        }
    }

    fn publish(&self, rec: ExchangeRecord) {
        let mut subs = self.subscribers.lock().expect("recorder lock");
        if subs.is_empty() || matches!(rec.outcome, Outcome::Forwarded) {
            return;
        }
        let rec = Arc::new(rec);
        subs.retain(|s| s.send(rec.clone()).is_ok());
    }

    /// Subscribes to every finished exchange from now on.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<Arc<ExchangeRecord>> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.subscribers.lock().expect("recorder lock").push(tx);
        rx
    }
}
