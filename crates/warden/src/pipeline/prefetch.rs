//! Reads a streamed upstream body ahead of the client, in a task of its own, so the
//! client-facing stream takes every event that has arrived in one poll.
//!
//! Why: hyper's client hands a body over one chunk per wake-up of its connection task, and
//! hyper's server flushes whenever the body it is sending is pending. Relayed frame by frame, a
//! 200-event stream cost about 200 `writev`s and as many task round trips, most of the gateway's
//! CPU per stream. Here a task drains the upstream into a bounded queue as fast as it arrives, and
//! the consumer joins everything queued into one frame (up to [`MAX_JOINED`] bytes), so one write
//! carries many events while a lone event still goes out at once.
//!
//! It owns the upstream body and nothing else. It must not reorder, drop or alter bytes, and it
//! keeps backpressure (the queue is bounded; the task waits while it is full). Dropping a
//! [`Prefetch`] aborts the task, which drops the upstream body and so cancels the upstream
//! request, exactly as dropping the body itself did.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Frames queued ahead of the client.
const QUEUE: usize = 64;
/// Largest joined frame.
const MAX_JOINED: usize = 64 * 1024;

type Item = Result<Frame<Bytes>, hyper::Error>;

/// An upstream body read ahead by a task; see the module docs.
pub struct Prefetch {
    rx: mpsc::Receiver<Item>,
    task: JoinHandle<()>,
    /// A trailers frame or an error that arrived behind data already joined: returned by the
    /// next poll.
    next: Option<Item>,
}

impl Prefetch {
    /// Starts reading `body` (needs a Tokio runtime).
    pub fn spawn(body: Incoming) -> Prefetch {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(async move {
            let mut body = body;
            while let Some(item) = body.frame().await {
                let (item, behind) = match item {
                    Ok(frame) => match frame.into_data() {
                        Ok(data) => join_ready(&mut body, data).await,
                        Err(frame) => (Ok(Frame::data(Bytes::new())), Some(Ok(frame))),
                    },
                    Err(e) => (Ok(Frame::data(Bytes::new())), Some(Err(e))),
                };
                let empty = item
                    .as_ref()
                    .ok()
                    .and_then(|f| f.data_ref())
                    .is_some_and(|d| d.is_empty());
                if !empty && tx.send(item).await.is_err() {
                    return;
                }
                if let Some(last) = behind {
                    let failed = last.is_err();
                    if tx.send(last).await.is_err() || failed {
                        return;
                    }
                }
            }
        });
        Prefetch {
            rx,
            task,
            next: None,
        }
    }
}

/// Appends to `first` the data frames the upstream connection has already decoded: one yield
/// lets hyper's connection task hand over its next chunk, and the joining stops at the first
/// poll that finds nothing, so a lone event is sent at once. Returns the joined data and, when
/// the join stopped at trailers, an error or the end, what stopped it.
async fn join_ready(body: &mut Incoming, first: Bytes) -> (Item, Option<Item>) {
    let mut joined: Option<BytesMut> = None;
    let behind = loop {
        let len = joined.as_ref().map_or(first.len(), |j| j.len());
        if len >= MAX_JOINED {
            break None;
        }
        tokio::task::yield_now().await;
        let next = std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *body).poll_frame(cx)));
        match next.await {
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => joined
                    .get_or_insert_with(|| {
                        let mut j = BytesMut::with_capacity(first.len() * 8);
                        j.extend_from_slice(&first);
                        j
                    })
                    .extend_from_slice(&data),
                Err(frame) => break Some(Ok(frame)),
            },
            Poll::Ready(Some(Err(e))) => break Some(Err(e)),
            // The end is seen again by the caller's next `frame()`.
            Poll::Ready(None) | Poll::Pending => break None,
        }
    };
    let data = joined.map_or(first, BytesMut::freeze);
    (Ok(Frame::data(data)), behind)
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Body for Prefetch {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        if let Some(item) = this.next.take() {
            return Poll::Ready(Some(item));
        }
        let mut first: Option<Bytes> = None;
        let mut joined: Option<BytesMut> = None;
        loop {
            let size = joined
                .as_ref()
                .map(|j| j.len())
                .or(first.as_ref().map(|f| f.len()))
                .unwrap_or(0);
            if size >= MAX_JOINED {
                break;
            }
            match this.rx.poll_recv(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => match (&mut first, &mut joined) {
                        (_, Some(j)) => j.extend_from_slice(&data),
                        (Some(f), None) => {
                            let mut j = BytesMut::with_capacity((f.len() + data.len()) * 4);
                            j.extend_from_slice(f);
                            j.extend_from_slice(&data);
                            joined = Some(j);
                        }
                        (None, None) => first = Some(data),
                    },
                    Err(frame) => {
                        if size == 0 {
                            return Poll::Ready(Some(Ok(frame)));
                        }
                        this.next = Some(Ok(frame));
                        break;
                    }
                },
                Poll::Ready(Some(Err(e))) => {
                    if size == 0 {
                        return Poll::Ready(Some(Err(e)));
                    }
                    this.next = Some(Err(e));
                    break;
                }
                // The end (the task finished or was aborted): whatever was joined goes first;
                // the next poll sees the closed queue again.
                Poll::Ready(None) if size == 0 => return Poll::Ready(None),
                Poll::Ready(None) | Poll::Pending => break,
            }
        }
        match (joined, first) {
            (Some(j), _) => Poll::Ready(Some(Ok(Frame::data(j.freeze())))),
            (None, Some(f)) => Poll::Ready(Some(Ok(Frame::data(f)))),
            (None, None) => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::TokioIo;
    use tokio::net::{TcpListener, TcpStream};
    use warden_mock::MockStats;

    async fn mock() -> (std::net::SocketAddr, Arc<MockStats>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stats = Arc::new(MockStats::default());
        tokio::spawn(warden_mock::run(
            listener,
            stats.clone(),
            std::future::pending::<()>(),
        ));
        (addr, stats)
    }

    /// A streamed OpenAI chat completion from the mock, as hyper's client hands it over.
    async fn stream(addr: std::net::SocketAddr, scenario: &str) -> Incoming {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .unwrap();
        tokio::spawn(conn);
        let req = http::Request::post("/v1/chat/completions")
            .header("host", addr.to_string())
            .header("content-type", "application/json")
            .header("x-mock-scenario", scenario)
            .body(Full::new(Bytes::from_static(
                br#"{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
            )))
            .unwrap();
        let resp = send.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        resp.into_body()
    }

    /// The text deltas of an OpenAI chat stream, in order.
    fn deltas(sse: &[u8]) -> Vec<String> {
        String::from_utf8_lossy(sse)
            .split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
            .filter_map(|d| {
                let v: serde_json::Value = serde_json::from_str(d).ok()?;
                v["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(String::from)
            })
            .collect()
    }

    #[tokio::test]
    async fn joins_what_has_arrived_and_keeps_every_byte_in_order() {
        let (addr, _) = mock().await;
        let scenario = r#"{"words":200}"#;
        let direct = stream(addr, scenario)
            .await
            .collect()
            .await
            .unwrap()
            .to_bytes();
        let mut body = Prefetch::spawn(stream(addr, scenario).await);
        let mut got = Vec::new();
        let mut frames = 0;
        while let Some(frame) = body.frame().await {
            got.extend_from_slice(&frame.unwrap().into_data().unwrap());
            frames += 1;
        }
        let words = deltas(&got);
        assert_eq!(words, deltas(&direct));
        assert!(words.len() >= 200, "{} deltas", words.len());
        assert!(got.ends_with(b"data: [DONE]\n\n"));
        // 200 events and the terminal ones came in fewer frames than events.
        assert!(frames < 200, "{frames} frames");
    }

    #[tokio::test]
    async fn an_upstream_break_arrives_after_the_data_before_it() {
        let (addr, _) = mock().await;
        let mut body = Prefetch::spawn(stream(addr, r#"{"words":50,"break_after":10}"#).await);
        let mut got = Vec::new();
        let mut error = None;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => got.extend_from_slice(&f.into_data().unwrap()),
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        assert!(error.is_some(), "the broken stream must end in an error");
        assert!(
            !deltas(&got).is_empty(),
            "the chunks before the break are delivered"
        );
    }

    #[tokio::test]
    async fn dropping_it_cancels_the_upstream() {
        let (addr, stats) = mock().await;
        let mut body = Prefetch::spawn(stream(addr, r#"{"words":500,"chunk_delay_ms":10}"#).await);
        let first = body.frame().await.unwrap().unwrap();
        assert!(first.is_data());
        drop(body);
        for _ in 0..200 {
            if stats.snapshot().streams_cancelled == 1 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "the mock never saw the stream cancelled: {:?}",
            stats.snapshot()
        );
    }
}
