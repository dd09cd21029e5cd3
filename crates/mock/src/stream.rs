//! The response body: a whole buffer, or a stream of pre-rendered frames with optional delays
//! between them, an optional deliberate break, and a guard that counts a stream as cancelled
//! when it is dropped before its last frame went out.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::stats::MockStats;

/// Returned by a stream cut by `break_after`; hyper then aborts the connection without the
/// chunked terminator, which is exactly what a crashed upstream looks like.
#[derive(Debug, thiserror::Error)]
#[error("stream broken on purpose by the mock's break_after directive")]
pub(crate) struct Broken;

/// Every response the mock sends.
pub(crate) enum MockBody {
    Full(Option<Bytes>),
    Stream(Box<FrameStream>),
}

impl MockBody {
    pub(crate) fn full(bytes: impl Into<Bytes>) -> Self {
        MockBody::Full(Some(bytes.into()))
    }
}

/// How a stream is paced and whether it breaks.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Pacing {
    pub(crate) chunk_delay: Option<Duration>,
    pub(crate) break_after: Option<usize>,
}

pub(crate) struct FrameStream {
    frames: std::vec::IntoIter<Bytes>,
    sent: usize,
    pacing: Pacing,
    /// Created once and reset between frames, so a paced stream allocates one timer.
    sleep: Option<Pin<Box<Sleep>>>,
    sleeping: bool,
    flushed_before_break: bool,
    /// Completed or deliberately broken: either way, dropping it is not a cancellation.
    finished: bool,
    stats: Arc<MockStats>,
}

impl FrameStream {
    pub(crate) fn new(frames: Vec<Bytes>, pacing: Pacing, stats: Arc<MockStats>) -> Self {
        stats.record_stream_started();
        let sleep = pacing
            .chunk_delay
            .filter(|d| !d.is_zero())
            .map(|d| Box::pin(tokio::time::sleep(d)));
        FrameStream {
            frames: frames.into_iter(),
            sent: 0,
            pacing,
            sleep,
            sleeping: false,
            flushed_before_break: false,
            finished: false,
            stats,
        }
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Broken>>> {
        if self.finished {
            return Poll::Ready(None);
        }
        let more_to_come = self.frames.len() > 0 || self.pacing.break_after.is_some();
        if self.sent > 0
            && more_to_come
            && !self.flushed_before_break
            && let (Some(sleep), Some(delay)) = (self.sleep.as_mut(), self.pacing.chunk_delay)
        {
            if !self.sleeping {
                sleep.as_mut().reset(Instant::now() + delay);
                self.sleeping = true;
            }
            ready!(sleep.as_mut().poll(cx));
            self.sleeping = false;
        }
        let break_now = self
            .pacing
            .break_after
            .is_some_and(|n| self.sent >= n || self.frames.len() == 0);
        if break_now {
            // hyper drops its unflushed write buffer when a body fails, so give it one turn to
            // flush the frames already handed over; the client must see them before the cut.
            if !self.flushed_before_break {
                self.flushed_before_break = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            self.finished = true;
            return Poll::Ready(Some(Err(Broken)));
        }
        match self.frames.next() {
            Some(frame) => {
                self.sent += 1;
                if self.frames.len() == 0 && self.pacing.break_after.is_none() {
                    self.finished = true;
                    self.stats.record_stream_completed();
                }
                Poll::Ready(Some(Ok(Frame::data(frame))))
            }
            None => {
                self.finished = true;
                self.stats.record_stream_completed();
                Poll::Ready(None)
            }
        }
    }
}

impl Drop for FrameStream {
    fn drop(&mut self) {
        if !self.finished {
            self.stats.record_stream_cancelled();
        }
    }
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = Broken;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Broken>>> {
        match self.get_mut() {
            MockBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            MockBody::Stream(stream) => stream.poll_next(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            MockBody::Full(bytes) => bytes.is_none(),
            MockBody::Stream(stream) => stream.finished,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            MockBody::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            MockBody::Stream(_) => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn body(frames: &[&'static str], pacing: Pacing, stats: &Arc<MockStats>) -> MockBody {
        let frames = frames
            .iter()
            .map(|f| Bytes::from_static(f.as_bytes()))
            .collect();
        MockBody::Stream(Box::new(FrameStream::new(frames, pacing, stats.clone())))
    }

    #[tokio::test]
    async fn a_stream_runs_to_completion() {
        let stats = Arc::new(MockStats::default());
        let b = body(&["a", "b", "c"], Pacing::default(), &stats);
        let all = b.collect().await.unwrap().to_bytes();
        assert_eq!(&all[..], b"abc");
        let s = stats.snapshot();
        assert_eq!(
            (s.streams_started, s.streams_completed, s.streams_cancelled),
            (1, 1, 0)
        );
    }

    #[tokio::test]
    async fn break_after_yields_an_error_and_is_not_a_cancel() {
        let stats = Arc::new(MockStats::default());
        for n in [0, 2, 5] {
            let mut b = body(
                &["a", "b", "c"],
                Pacing {
                    chunk_delay: Some(Duration::from_millis(1)),
                    break_after: Some(n),
                },
                &stats,
            );
            let mut data = Vec::new();
            let err = loop {
                match b.frame().await {
                    Some(Ok(f)) => data.extend_from_slice(&f.into_data().unwrap()),
                    Some(Err(e)) => break e,
                    None => panic!("stream ended cleanly"),
                }
            };
            assert_eq!(data.len(), n.min(3), "{err}");
        }
        let s = stats.snapshot();
        assert_eq!(
            (s.streams_started, s.streams_completed, s.streams_cancelled),
            (3, 0, 0)
        );
    }

    #[tokio::test]
    async fn dropping_midway_counts_a_cancel() {
        let stats = Arc::new(MockStats::default());
        let mut b = body(&["a", "b"], Pacing::default(), &stats);
        assert!(b.frame().await.is_some());
        drop(b);
        assert_eq!(stats.snapshot().streams_cancelled, 1);
        assert_eq!(stats.snapshot().streams_completed, 0);
    }
}
