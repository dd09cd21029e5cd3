//! Inspect stage: the response body the client reads, wrapped so the gateway sees every byte
//! as it passes and finalises the exchange when the body ends, fails or is dropped.
//!
//! Frames are forwarded as they arrive (no added buffering); a copy is fed to the provider's
//! stream decoder (or kept, for a buffered JSON body, up to a cap) to build the normalized
//! response. The body also enforces the upstream idle timeout between chunks. When the client
//! disconnects, hyper drops this body, which drops the upstream body and so cancels the
//! upstream request; the exchange is then recorded as cancelled.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Sleep;
use warden_protocol::{Exchange, ExchangeResponse, Framing, StreamInspector, parse_response};

use super::BoxError;
use super::record::{ExchangeRecord, Outcome, Recorder};

/// A buffered response body larger than this is passed through but not parsed.
const MAX_INSPECTED_BODY: usize = 64 * 1024 * 1024;

enum Inspector {
    Buffered { buf: Vec<u8>, overflow: bool },
    Stream(Box<StreamInspector>),
}

impl Inspector {
    fn push(&mut self, data: &[u8]) {
        match self {
            Inspector::Buffered { buf, overflow } => {
                if !*overflow && buf.len() + data.len() <= MAX_INSPECTED_BODY {
                    buf.extend_from_slice(data);
                } else {
                    *overflow = true;
                    buf.clear();
                }
            }
            Inspector::Stream(s) => {
                s.push(data);
            }
        }
    }

    fn finish(self, exchange: &Exchange) -> Option<ExchangeResponse> {
        match self {
            Inspector::Buffered { overflow: true, .. } => None,
            Inspector::Buffered { buf, .. } => parse_response(&exchange.route, &buf).ok(),
            Inspector::Stream(s) => Some(s.finish()),
        }
    }
}

/// What is needed to record the exchange once the body is done.
pub struct Pending {
    /// The exchange so far (request, route, status).
    pub exchange: Exchange,
    /// Who called.
    pub identity: super::identify::Identity,
    /// Upstream name.
    pub upstream: String,
    /// Method and path for the record.
    pub method: String,
    /// Request path.
    pub path: String,
    /// When the request was forwarded.
    pub started: Instant,
    /// Where the record goes.
    pub recorder: Arc<Recorder>,
    /// The concurrency slot, released when the body is done.
    pub permit: Option<OwnedSemaphorePermit>,
}

/// The client-facing response body.
pub struct InspectBody {
    inner: Incoming,
    idle_timeout: Duration,
    idle: Pin<Box<Sleep>>,
    inspector: Option<Inspector>,
    pending: Option<Pending>,
}

impl InspectBody {
    /// Wraps an upstream body. `framing` says how to decode it.
    pub fn new(
        inner: Incoming,
        framing: Framing,
        idle_timeout: Duration,
        pending: Pending,
    ) -> Self {
        let inspector = if framing.is_stream() {
            Inspector::Stream(Box::new(StreamInspector::new(
                &pending.exchange.route,
                framing,
            )))
        } else {
            Inspector::Buffered {
                buf: Vec::new(),
                overflow: false,
            }
        };
        InspectBody {
            inner,
            idle_timeout,
            idle: Box::pin(tokio::time::sleep(idle_timeout)),
            inspector: Some(inspector),
            pending: Some(pending),
        }
    }

    fn finish(&mut self, outcome: Outcome) {
        let Some(mut p) = self.pending.take() else {
            return;
        };
        if let Some(inspector) = self.inspector.take() {
            p.exchange.response = inspector.finish(&p.exchange);
        }
        p.exchange.upstream_latency_us = Some(p.started.elapsed().as_micros() as u64);
        drop(p.permit.take());
        p.recorder.record(ExchangeRecord {
            exchange: p.exchange,
            identity: p.identity,
            upstream: Some(p.upstream),
            method: p.method,
            path: p.path,
            outcome,
        });
    }
}

impl Body for InspectBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(inspector)) = (frame.data_ref(), this.inspector.as_mut()) {
                    inspector.push(data);
                }
                if this.inner.is_end_stream() {
                    // A body with a known length is complete once its last byte is here; hyper
                    // drops it without a final poll, so this is the moment to record it.
                    this.finish(Outcome::Completed);
                } else {
                    let deadline = tokio::time::Instant::now() + this.idle_timeout;
                    this.idle.as_mut().reset(deadline);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                let message = format!(
                    "upstream response broke off: {}",
                    super::forward::root_cause(&e)
                );
                this.finish(Outcome::UpstreamFailed {
                    message: message.clone(),
                });
                Poll::Ready(Some(Err(message.into())))
            }
            Poll::Ready(None) => {
                this.finish(Outcome::Completed);
                Poll::Ready(None)
            }
            Poll::Pending => {
                ready!(this.idle.as_mut().poll(cx));
                let message = format!(
                    "upstream sent nothing for {:?} mid-response (limits.idle_timeout)",
                    this.idle_timeout
                );
                this.finish(Outcome::UpstreamFailed {
                    message: message.clone(),
                });
                Poll::Ready(Some(Err(message.into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        // Not the inner body's answer: hyper stops polling at end-of-stream, and the final poll
        // is what records the exchange as completed.
        self.pending.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for InspectBody {
    fn drop(&mut self) {
        if self.pending.is_some() {
            self.finish(Outcome::ClientCancelled);
        }
    }
}
