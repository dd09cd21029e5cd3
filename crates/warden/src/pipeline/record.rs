//! Record stage: every exchange, allowed, refused or failed, ends here exactly once.
//!
//! Today a record becomes one structured log line (never content, keys or query strings) and
//! is handed to in-process subscribers (`warden demo` reads them). This is the single gate the
//! durable ledger plugs into; nothing else in the pipeline emits per-exchange records.

use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::mpsc;
use warden_protocol::Exchange;

use super::refuse::Source;

/// How an exchange ended.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
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

/// One finished exchange.
#[derive(Debug, Clone, Serialize)]
pub struct ExchangeRecord {
    /// The normalized exchange.
    pub exchange: Exchange,
    /// Who called.
    pub identity: super::identify::Identity,
    /// Upstream name, when one was chosen.
    pub upstream: Option<String>,
    /// HTTP method and path as the client sent them (no query string: it may hold a key).
    pub method: String,
    /// Request path.
    pub path: String,
    /// How it ended.
    pub outcome: Outcome,
}

/// Receives finished exchanges.
#[derive(Default)]
pub struct Recorder {
    subscribers: Mutex<Vec<mpsc::UnboundedSender<Arc<ExchangeRecord>>>>,
}

impl Recorder {
    /// Records one exchange: logs it and passes it to subscribers.
    pub fn record(&self, rec: ExchangeRecord) {
        let ex = &rec.exchange;
        let req = ex.request.as_ref();
        let resp = ex.response.as_ref();
        let outcome = match &rec.outcome {
            Outcome::Completed => "completed",
            Outcome::Refused { code, .. } => code,
            Outcome::UpstreamFailed { .. } => "upstream_failed",
            Outcome::ClientCancelled => "client_cancelled",
        };
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
        let mut subs = self.subscribers.lock().expect("recorder lock");
        if subs.is_empty() {
            return;
        }
        let rec = Arc::new(rec);
        subs.retain(|s| s.send(rec.clone()).is_ok());
    }

    /// Subscribes to every record from now on.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<Arc<ExchangeRecord>> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.subscribers.lock().expect("recorder lock").push(tx);
        rx
    }
}
