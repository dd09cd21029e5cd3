//! Inspect stage for streams: the body the client reads, wrapped so the gateway sees every byte
//! as it passes, holds the terminal event back until the exchange is recorded, and records the
//! exchange when the stream ends, fails or is dropped.
//!
//! Whole events are forwarded as soon as they are complete (a chunk that holds only whole
//! events is passed on as is, without copying); a partial event waits for its end, and the
//! terminal event (`data: [DONE]`, `message_stop`, Gemini's last chunk, Ollama's `done: true`)
//! and anything after it wait for the commit. Then the SSE receipt comment and the terminal
//! event go out; if the commit fails, a provider-shaped error event goes out instead.
//! The body also enforces the upstream idle timeout between chunks. When the client
//! disconnects, hyper drops this body, which drops the upstream body and so cancels the
//! upstream request; the exchange is recorded as cancelled. A stream registered with the
//! control plane is also watched for a cut (kill switch): the upstream is dropped at once, the
//! exchange is recorded as refused, and the client's stream ends with a provider-shaped error
//! event.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use sha2::{Digest, Sha256};
use tokio::time::Sleep;
use warden_protocol::error::{ErrorKind, render_stream_error};
use warden_protocol::{Framing, Provider, StreamInspector};

use super::record::{AuditError, BodyDigest, Commit, Outcome, Receipt};
use super::{BoxError, Flight};

/// The decisions on held tool calls, once every human has answered (or the timeout): a spawned
/// task (a body must be `Sync`, a boxed future is not), aborted if the stream is dropped.
struct Approving(
    tokio::task::JoinHandle<
        Vec<(
            super::govern::PendingAsk,
            Result<crate::approve::Resolution, String>,
        )>,
    >,
);

impl Drop for Approving {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How often a stream held for an approval sends an SSE comment, so proxies and clients with
/// read timeouts keep the connection.
const HEARTBEAT: Duration = Duration::from_secs(5);

enum State {
    /// Upstream bytes are flowing.
    Streaming,
    /// A tool call waits for a human; the upstream is not read meanwhile. `ending`: the
    /// upstream had already ended, so the exchange is recorded after the decision.
    Approving {
        decisions: Approving,
        heartbeat: Pin<Box<Sleep>>,
        ending: bool,
    },
    /// The upstream is done; waiting for the record to be durable.
    Committing(Commit),
    /// The last bytes to send: receipt + terminal event, or an error event.
    Trailer(Bytes),
    /// Nothing more.
    Done,
}

/// The client-facing body of a streamed response.
pub struct StreamBody {
    /// The upstream body; dropped (cancelling the upstream request) when the stream is cut.
    inner: Option<super::prefetch::Prefetch>,
    /// Resolves when the control plane cuts this stream.
    cut: Option<Pin<Box<tokio::sync::futures::OwnedNotified>>>,
    /// The error event that ends a cut stream, sent once the cut is recorded.
    cut_event: Option<Bytes>,
    /// Bytes at the start of `held` that are the hidden usage chunk (dropped, never sent).
    hidden_len: usize,
    framing: Framing,
    provider: Provider,
    idle_timeout: Duration,
    idle: Pin<Box<Sleep>>,
    inspector: Option<StreamInspector>,
    hasher: Sha256,
    pushed: u64,
    released: u64,
    /// Bytes from `released` to `pushed`, not yet sent.
    held: BytesMut,
    state: State,
    /// The exchange in flight, until it is handed to the recorder.
    flight: Option<Flight>,
    /// Content protection's event rewriter, when the response may change.
    protector: Option<super::protect::StreamProtector>,
    /// What goes out around the receipt once the stream is recorded: protected events before
    /// the terminal event, and the (protected) terminal event.
    tail: Option<(Vec<u8>, Vec<u8>)>,
    /// Tool-call governance: holds a call's events until it is judged.
    gate: Option<super::govern::ToolGate>,
    /// What the gate released while the stream ended, before its final release.
    gate_before: Vec<u8>,
}

impl StreamBody {
    /// Wraps an upstream stream body.
    pub fn new(
        inner: Incoming,
        framing: Framing,
        idle_timeout: Duration,
        flight: Flight,
        protector: Option<super::protect::StreamProtector>,
        gate: Option<super::govern::ToolGate>,
    ) -> Self {
        let cut = flight
            .tracked
            .as_ref()
            .map(|t| Box::pin(t.signal.notified()));
        let mut inspector = StreamInspector::new(&flight.target.route, framing);
        if flight.hide_usage {
            inspector.hide_usage_chunk();
        }
        StreamBody {
            inner: Some(super::prefetch::Prefetch::spawn(inner)),
            cut,
            cut_event: None,
            hidden_len: 0,
            framing,
            provider: flight.target.route.provider,
            idle_timeout,
            idle: Box::pin(tokio::time::sleep(idle_timeout)),
            inspector: Some(inspector),
            hasher: Sha256::new(),
            pushed: 0,
            released: 0,
            held: BytesMut::new(),
            state: State::Streaming,
            flight: Some(flight),
            protector,
            tail: None,
            gate,
            gate_before: Vec::new(),
        }
    }

    /// Held bytes, from the release point, that are the usage chunk Warden asked for itself.
    fn hidden_usage_len(&self) -> usize {
        self.inspector
            .as_ref()
            .and_then(StreamInspector::hidden_len)
            .map_or(0, |n| usize::try_from(n).expect("held bytes fit in memory"))
    }

    /// The upstream ended: content protection sees the held terminal event and releases every
    /// event it still holds, so its findings are recorded with the exchange.
    fn end_protection(&mut self) {
        let hidden = self.hidden_usage_len();
        let Some(p) = self.protector.as_mut() else {
            return;
        };
        let held = std::mem::take(&mut self.held);
        let visible = &held[hidden.min(held.len())..];
        let (before, after) = p.finish(visible);
        let record = p.take_record();
        let blocked = record.blocked;
        if let Some(f) = self.flight.as_mut() {
            f.protect.merge(record);
        }
        if blocked {
            self.on_block();
        } else {
            self.tail = Some((before, after));
        }
    }

    /// Content protection found a value to block in the answer: drop the upstream, record the
    /// refusal, and end the client's stream with an error event once it is recorded.
    fn on_block(&mut self) {
        if let Some(p) = self.protector.as_mut() {
            let record = p.take_record();
            if let Some(f) = self.flight.as_mut() {
                f.protect.merge(record);
            }
        }
        let summary = self
            .flight
            .as_ref()
            .map(|f| f.protect.blocked_types("response"))
            .unwrap_or_default();
        let message = format!(
            "Warden ended this stream: the model's answer contains {summary}, which content protection blocks. The exchange is recorded; ask the operator to review `protect.response` if this is intended."
        );
        self.end_with_error(
            400,
            ErrorKind::ContentBlocked,
            super::refuse::Source::Upstream,
            message,
        );
    }

    /// Hands the exchange to the recorder; returns the commit, or `None` if already done.
    fn record(&mut self, outcome: Outcome) -> Option<Commit> {
        let mut flight = self.flight.take()?;
        if let Some(g) = self.gate.as_mut() {
            flight.govern = g.take_record();
        }
        self.hidden_len = self.hidden_usage_len();
        let response = self.inspector.take().map(StreamInspector::finish);
        let digest = BodyDigest::finish(std::mem::take(&mut self.hasher), self.pushed);
        flight.permit.take();
        Some(flight.finish(outcome, response, Some(digest)))
    }

    /// Takes what may go out now from a new upstream chunk.
    fn on_data(&mut self, data: Bytes) -> Option<Bytes> {
        self.hasher.update(&data);
        self.pushed += data.len() as u64;
        let inspector = self.inspector.as_mut()?;
        inspector.push(&data);
        let upto = inspector.release().upto;
        let output = inspector.output_len();
        if let Some(f) = self.flight.as_mut()
            && let Some(a) = f.admission.as_mut()
            && a.watches_cost()
        {
            let running = a.running_micros(output);
            if let Err(message) = a.cover(&f.control, running)
                && let Some(t) = &f.tracked
            {
                // Cut through the same path as a kill; the body polls the signal next.
                t.signal.cut(crate::control::Cut::Budget(message));
            }
        }
        let n = usize::try_from(upto - self.released).expect("held bytes fit in memory");
        self.released = upto;
        let out = if self.held.is_empty() && n == data.len() {
            Some(data)
        } else {
            self.held.extend_from_slice(&data);
            (n > 0).then(|| self.held.split_to(n).freeze())
        };
        let out = match self.protector.as_mut() {
            None => out,
            Some(p) => {
                let rewritten = p.push(&out?);
                if p.blocked() {
                    self.on_block();
                    return None;
                }
                (!rewritten.is_empty()).then(|| Bytes::from(rewritten))
            }
        };
        let Some(g) = self.gate.as_mut() else {
            return out;
        };
        let gated = g.push(&out?);
        self.after_gate(false);
        (!gated.is_empty()).then(|| Bytes::from(gated))
    }

    /// After the gate saw new events: a refused call ends the stream, and calls waiting for
    /// approval pause it.
    fn after_gate(&mut self, ending: bool) -> bool {
        let Some(g) = self.gate.as_mut() else {
            return false;
        };
        if let Some(message) = g.refusal().map(str::to_string) {
            self.on_tool_refusal(message);
            return true;
        }
        let asks = g.take_asks();
        if asks.is_empty() {
            return false;
        }
        let ctx = g.ctx().clone();
        self.state = State::Approving {
            decisions: Approving(tokio::spawn(async move { ctx.resolve(asks).await })),
            heartbeat: Box::pin(tokio::time::sleep(HEARTBEAT)),
            ending,
        };
        true
    }

    /// The upstream ended: the gate judges calls the terminal event completes. Returns true
    /// when the stream now waits (approval) or ended (refusal) instead of being recorded.
    fn end_gate(&mut self) -> bool {
        if self.gate.is_none() {
            return false;
        }
        let (before, after) = match self.tail.take() {
            Some(t) => t,
            None => {
                let hidden = self.hidden_usage_len();
                let held = std::mem::take(&mut self.held);
                (Vec::new(), held[hidden.min(held.len())..].to_vec())
            }
        };
        let g = self.gate.as_mut().expect("checked above");
        let mut out = g.push(&before);
        out.extend(g.finish_begin(&after));
        self.gate_before = out;
        if self.after_gate(true) {
            return true;
        }
        self.finish_gate();
        !matches!(self.state, State::Streaming)
    }

    /// Every call is decided: the gate's last events become the stream's tail.
    fn finish_gate(&mut self) {
        let Some(g) = self.gate.as_mut() else {
            return;
        };
        if let Some(message) = g.refusal().map(str::to_string) {
            self.on_tool_refusal(message);
            return;
        }
        let (b, a) = g.finish_release();
        let mut before = std::mem::take(&mut self.gate_before);
        before.extend_from_slice(&b);
        self.tail = Some((before, a));
    }

    /// A tool call the rules deny with `on_deny = "error"`: drop the upstream, record the
    /// refusal, and end the client's stream with an error event once it is recorded.
    fn on_tool_refusal(&mut self, message: String) {
        if let Some(f) = self.flight.as_mut() {
            f.control.metrics.stream_cut("tool");
        }
        self.end_with_error(
            400,
            ErrorKind::ContentBlocked,
            super::refuse::Source::Upstream,
            message,
        );
    }

    /// Records `outcome`; the stream ends once the record is durable.
    fn commit(&mut self, outcome: Outcome) {
        self.state = match self.record(outcome) {
            Some(c) => State::Committing(c),
            None => State::Done,
        };
    }

    /// Drops the upstream and ends the client's stream with a provider-shaped error event,
    /// sent once the refusal is recorded.
    fn end_with_error(
        &mut self,
        status: u16,
        kind: ErrorKind,
        source: super::refuse::Source,
        message: String,
    ) {
        self.inner = None;
        self.cut_event = Some(Bytes::from(render_stream_error(
            self.provider,
            self.framing,
            status,
            kind,
            &message,
        )));
        self.commit(Outcome::Refused {
            status,
            code: kind.type_and_code().1,
            source,
            message,
        });
    }

    /// The bytes that end the stream once the record is durable.
    fn trailer(&mut self, committed: Result<Option<Receipt>, AuditError>) -> Bytes {
        let mut held = std::mem::take(&mut self.held);
        // The usage chunk Warden asked for itself is not the client's to see.
        let _ = held.split_to(self.hidden_len.min(held.len()));
        if let (Some(event), Ok(_)) = (self.cut_event.take(), &committed) {
            // A partial event in `held` is dropped: the error event must start on a boundary.
            return event;
        }
        match committed {
            Ok(receipt) => {
                let mut out = BytesMut::new();
                let (before, after) = self
                    .tail
                    .take()
                    .unwrap_or_else(|| (Vec::new(), held.to_vec()));
                out.extend_from_slice(&before);
                // google-genai reads every line that is not `data: …` as raw JSON (for error
                // bodies), so an SSE comment breaks it; Gemini streams carry no in-band receipt.
                let comment_safe = self.provider != Provider::Gemini;
                if let (Some(r), Framing::Sse, true) = (receipt, self.framing, comment_safe) {
                    // An SSE comment: the OpenAI and Anthropic SDKs skip it; a client that wants
                    // proof reads it.
                    out.extend_from_slice(b": warden-receipt ");
                    out.extend_from_slice(r.proof.as_bytes());
                    out.extend_from_slice(b"\n\n");
                }
                out.extend_from_slice(&after);
                out.freeze()
            }
            Err(e) => Bytes::from(render_stream_error(
                self.provider,
                self.framing,
                503,
                ErrorKind::AuditUnavailable,
                &format!(
                    "Warden could not record this exchange in its audit ledger, so the end of the response is withheld: {e}"
                ),
            )),
        }
    }
}

impl Body for StreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if matches!(this.state, State::Streaming | State::Approving { .. })
                && let Some(cut) = this.cut.as_mut()
                && cut.as_mut().poll(cx).is_ready()
            {
                this.cut = None;
                this.on_cut();
                continue;
            }
            match &mut this.state {
                State::Streaming => {
                    match Pin::new(this.inner.as_mut().expect("streaming has an upstream"))
                        .poll_frame(cx)
                    {
                        Poll::Ready(Some(Ok(frame))) => {
                            let deadline = tokio::time::Instant::now() + this.idle_timeout;
                            this.idle.as_mut().reset(deadline);
                            match frame.into_data() {
                                Ok(data) => {
                                    if let Some(out) = this.on_data(data) {
                                        return Poll::Ready(Some(Ok(Frame::data(out))));
                                    }
                                }
                                // Trailers pass through as they come.
                                Err(frame) => return Poll::Ready(Some(Ok(frame))),
                            }
                        }
                        Poll::Ready(Some(Err(e))) => {
                            let message = format!(
                                "upstream response broke off: {}",
                                super::forward::root_cause(&e)
                            );
                            this.fail(message.clone());
                            return Poll::Ready(Some(Err(message.into())));
                        }
                        Poll::Ready(None) => {
                            this.end_protection();
                            if !matches!(this.state, State::Streaming) || this.end_gate() {
                                continue;
                            }
                            this.commit(Outcome::Completed);
                        }
                        Poll::Pending => {
                            ready!(this.idle.as_mut().poll(cx));
                            let message = format!(
                                "upstream sent nothing for {:?} mid-response (limits.idle_timeout)",
                                this.idle_timeout
                            );
                            this.fail(message.clone());
                            return Poll::Ready(Some(Err(message.into())));
                        }
                    }
                }
                State::Approving {
                    decisions,
                    heartbeat,
                    ending,
                } => {
                    if let Poll::Ready(joined) = Pin::new(&mut decisions.0).poll(cx) {
                        let ending = *ending;
                        this.state = State::Streaming;
                        let Ok(results) = joined else {
                            this.on_tool_refusal(
                                "Warden withheld this response: waiting for a tool-call approval failed, so the call is not delivered. The exchange is recorded.".into(),
                            );
                            continue;
                        };
                        let out = this
                            .gate
                            .as_mut()
                            .map(|g| g.decided(results))
                            .unwrap_or_default();
                        if ending {
                            this.finish_gate();
                            if matches!(this.state, State::Streaming) {
                                this.commit(Outcome::Completed);
                            }
                            continue;
                        }
                        if this.after_gate(false) || !matches!(this.state, State::Streaming) {
                            if !out.is_empty() && matches!(this.state, State::Approving { .. }) {
                                return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
                            }
                            continue;
                        }
                        let deadline = tokio::time::Instant::now() + this.idle_timeout;
                        this.idle.as_mut().reset(deadline);
                        if !out.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
                        }
                        continue;
                    }
                    ready!(heartbeat.as_mut().poll(cx));
                    heartbeat
                        .as_mut()
                        .reset(tokio::time::Instant::now() + HEARTBEAT);
                    // google-genai treats a line that is not `data: …` as an error body, and
                    // NDJSON has no comments: only other SSE streams get the heartbeat.
                    if this.framing == Framing::Sse && this.provider != Provider::Gemini {
                        return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(
                            b": warden-approval-pending\n\n",
                        )))));
                    }
                }
                State::Committing(commit) => {
                    let committed = ready!(Pin::new(commit).poll(cx));
                    let trailer = this.trailer(committed);
                    this.state = State::Trailer(trailer);
                }
                State::Trailer(bytes) => {
                    let bytes = std::mem::take(bytes);
                    this.state = State::Done;
                    if !bytes.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(bytes))));
                    }
                }
                State::Done => return Poll::Ready(None),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn size_hint(&self) -> SizeHint {
        // The receipt comment changes the length; never promise one.
        SizeHint::default()
    }
}

impl StreamBody {
    /// The control plane cut this stream: drop the upstream, record the refusal, and end the
    /// client's stream with an error event once the record is durable.
    fn on_cut(&mut self) {
        use crate::control::Cut;
        self.inner = None;
        let reason = self
            .flight
            .as_ref()
            .and_then(|f| f.tracked.as_ref())
            .and_then(|t| t.signal.reason());
        let (status, kind, message, action) = match reason {
            Some(Cut::Killed(k)) => {
                let e = super::refuse::GatewayError::killed(&k);
                (403u16, ErrorKind::Killed, e.message, "killed")
            }
            Some(Cut::Budget(m)) => (429u16, ErrorKind::BudgetExceeded, m, "budget_exceeded"),
            None => return,
        };
        if let Some(f) = self.flight.as_mut() {
            f.verdict.action = action;
            f.verdict.reason = Some(message.clone());
            f.control
                .metrics
                .stream_cut(if action == "killed" { "kill" } else { "budget" });
        }
        self.end_with_error(status, kind, super::refuse::Source::Client, message);
    }

    /// The upstream failed mid-stream: record it (the client's stream is cut, nothing to hold).
    fn fail(&mut self, message: String) {
        self.state = State::Done;
        self.held.clear();
        // Nothing is waiting to be released, so the commit is not awaited.
        drop(self.record(Outcome::UpstreamFailed { message }));
    }
}

impl Drop for StreamBody {
    fn drop(&mut self) {
        if self.flight.is_some() {
            drop(self.record(Outcome::ClientCancelled));
        }
    }
}
