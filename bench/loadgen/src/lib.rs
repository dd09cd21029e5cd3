//! `warden-loadgen`: the HTTP/1.1 load generator of Warden's benchmark harness (`bench/run.sh`).
//!
//! Each of `conns` connections is its own keep-alive HTTP/1.1 connection (a `TcpStream` with
//! `TCP_NODELAY`, driven by `hyper::client::conn::http1`), reconnecting after a transport
//! failure (which counts as an error). Two ways to drive them:
//!
//! - **closed loop** (no `rate`): each connection sends its next request as soon as the previous
//!   response body has been read to the end, for `duration`;
//! - **open loop** (`rate` requests per second across all connections): request *i* is scheduled
//!   at `start + i / rate`; a free connection takes the next scheduled request and sends it at its
//!   time. Latency is measured from the *scheduled* time, so a request that had to wait because
//!   every connection was busy carries that wait (coordinated omission is corrected). When a
//!   connection was early and slept until the scheduled time, latency is measured from when it
//!   woke, so the timer's millisecond granularity is not charged to the server.
//!
//! What is recorded: in closed loop, the requests that complete within the measured period
//! (`duration`, after `warmup`), whenever they started, like wrk; the requests still in flight
//! when it ends are abandoned, so a run never outlasts `warmup + duration` and a slow server is
//! not flattered by its tail. In open loop, the requests *scheduled* within the measured period,
//! however long they take (up to `timeout`): the run waits for them, and the throughput divides
//! by the time to the last completion. Per recorded request it keeps the time to first byte (the
//! response head received) and the time to last byte (the body read to its end); a non-2xx
//! status, a body error, a transport error or a `timeout` is an error, and the first error's
//! message is kept. Percentiles are nearest-rank over all samples.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use http::header::{HOST, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// What to send, where, and how hard.
#[derive(Clone, Debug)]
pub struct Config {
    /// The target URL (`http://host:port/path?query`).
    pub url: String,
    /// Send every request through this HTTP forward proxy (`host:port`), in absolute form.
    pub proxy: Option<String>,
    pub method: Method,
    /// Extra request headers (a `host` here overrides the URL's authority).
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// Concurrent keep-alive connections.
    pub conns: usize,
    /// Measured period, after `warmup`.
    pub duration: Duration,
    /// Period whose requests are sent but not recorded.
    pub warmup: Duration,
    /// Open loop: requests per second across all connections. `None`: closed loop.
    pub rate: Option<f64>,
    /// Limit for one whole request (head and body); past it the request is an error.
    pub timeout: Duration,
}

impl Config {
    /// A closed-loop POST of `body` to `url` on one connection for one second.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            proxy: None,
            method: Method::POST,
            headers: Vec::new(),
            body: Bytes::new(),
            conns: 1,
            duration: Duration::from_secs(1),
            warmup: Duration::ZERO,
            rate: None,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Latency summary in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stats {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: f64,
}

impl Stats {
    /// Summarizes `samples` (sorted in place).
    pub fn from_samples(samples: &mut [u64]) -> Self {
        samples.sort_unstable();
        if samples.is_empty() {
            return Self::default();
        }
        let sum: u128 = samples.iter().map(|&v| u128::from(v)).sum();
        Self {
            p50: percentile(samples, 50.0),
            p90: percentile(samples, 90.0),
            p99: percentile(samples, 99.0),
            p999: percentile(samples, 99.9),
            max: samples[samples.len() - 1],
            mean: sum as f64 / samples.len() as f64,
        }
    }

    fn to_json(self) -> Value {
        json!({
            "p50": self.p50, "p90": self.p90, "p99": self.p99, "p999": self.p999,
            "max": self.max, "mean": (self.mean * 10.0).round() / 10.0,
        })
    }
}

/// The nearest-rank `p`-th percentile (0–100) of ascending `sorted`; 0 when it is empty.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let n = sorted.len();
    // The epsilon keeps 99.9% of 1000 at rank 999 despite 0.999 * 1000 = 999.0000000000001.
    let rank = ((p / 100.0) * n as f64 - 1e-9).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

/// The outcome of a run.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Recorded requests that succeeded.
    pub requests: u64,
    /// Recorded requests that failed.
    pub errors: u64,
    /// Failures during the warmup (not in `errors`).
    pub warmup_errors: u64,
    /// The first failure's message, warmup included.
    pub first_error: Option<String>,
    /// `duration` (closed loop); from the end of the warmup to the last recorded completion, at
    /// least `duration` (open loop).
    pub duration_s: f64,
    /// `requests / duration_s`.
    pub rps: f64,
    /// Every request completed or failed, warmup included (abandoned ones excluded): the
    /// denominator for CPU per request measured outside.
    pub total_requests: u64,
    /// Response body bytes of the recorded requests.
    pub body_bytes: u64,
    /// Time to the response head, µs.
    pub ttfb: Stats,
    /// Time to the body's last byte, µs.
    pub ttlb: Stats,
    pub conns: usize,
    pub rate: Option<f64>,
}

impl Report {
    /// The report as one JSON object.
    pub fn to_json(&self) -> Value {
        json!({
            "requests": self.requests,
            "errors": self.errors,
            "warmup_errors": self.warmup_errors,
            "first_error": self.first_error,
            "duration_s": (self.duration_s * 1e6).round() / 1e6,
            "rps": (self.rps * 10.0).round() / 10.0,
            "total_requests": self.total_requests,
            "body_bytes": self.body_bytes,
            "conns": self.conns,
            "rate": self.rate,
            "ttfb": self.ttfb.to_json(),
            "ttlb": self.ttlb.to_json(),
        })
    }
}

/// The prepared request and the run's clock, shared by the connections.
struct Shared {
    addr: SocketAddr,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    rate: Option<f64>,
    timeout: Duration,
    start: Instant,
    window_start: Instant,
    window_end: Instant,
    next: AtomicU64,
}

impl Shared {
    fn request(&self) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(self.body.clone()));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.headers_mut() = self.headers.clone();
        req
    }
}

#[derive(Default)]
struct ConnResult {
    ttfb: Vec<u64>,
    ttlb: Vec<u64>,
    errors: u64,
    warmup_errors: u64,
    first_error: Option<(Instant, String)>,
    last_done: Option<Instant>,
    body_bytes: u64,
    total: u64,
}

/// A failed request; `broken` when the connection cannot be reused.
struct Failure {
    message: String,
    broken: bool,
}

fn broken(context: &str, e: impl std::fmt::Display) -> Failure {
    Failure {
        message: format!("{context}: {e}"),
        broken: true,
    }
}

/// Runs the load described by `config` and reports what it measured.
pub async fn run(config: &Config) -> anyhow::Result<Report> {
    if config.conns == 0 {
        bail!("--conns must be at least 1");
    }
    if let Some(rate) = config.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        bail!("--rate must be a positive number");
    }
    let url: Uri = config.url.parse().context("invalid --url")?;
    if url.scheme_str() != Some("http") {
        bail!("--url must be an http:// URL");
    }
    let authority = url
        .authority()
        .ok_or_else(|| anyhow!("--url has no host"))?
        .clone();
    let connect_to = match &config.proxy {
        Some(proxy) => proxy.clone(),
        None => format!(
            "{}:{}",
            authority.host(),
            authority.port_u16().unwrap_or(80)
        ),
    };
    let addr = tokio::net::lookup_host(&connect_to)
        .await
        .with_context(|| format!("resolving {connect_to}"))?
        .next()
        .ok_or_else(|| anyhow!("{connect_to} resolves to no address"))?;
    // Origin form to a server, absolute form to a forward proxy.
    let uri = if config.proxy.is_some() {
        url.clone()
    } else {
        url.path_and_query()
            .map_or("/", |pq| pq.as_str())
            .parse()
            .context("invalid path")?
    };
    let mut headers = HeaderMap::new();
    headers.insert(HOST, HeaderValue::from_str(authority.as_str())?);
    for (name, value) in &config.headers {
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .with_context(|| format!("invalid header name {name:?}"))?;
        let value = HeaderValue::from_str(value.trim())
            .with_context(|| format!("invalid value for header {name}"))?;
        if name == HOST {
            headers.insert(name, value);
        } else {
            headers.append(name, value);
        }
    }

    let start = Instant::now();
    let window_start = start + config.warmup;
    let shared = Arc::new(Shared {
        addr,
        method: config.method.clone(),
        uri,
        headers,
        body: config.body.clone(),
        rate: config.rate,
        timeout: config.timeout,
        start,
        window_start,
        window_end: window_start + config.duration,
        next: AtomicU64::new(0),
    });
    let workers: Vec<_> = (0..config.conns)
        .map(|_| tokio::spawn(connection(shared.clone())))
        .collect();
    let mut results = Vec::with_capacity(workers.len());
    for worker in workers {
        results.push(worker.await.context("connection task panicked")?);
    }

    let mut report = Report {
        conns: config.conns,
        rate: config.rate,
        ..Report::default()
    };
    let mut ttfb = Vec::new();
    let mut ttlb = Vec::new();
    let mut last_done = shared.window_end;
    let mut first_error: Option<(Instant, String)> = None;
    for r in results {
        ttfb.extend(r.ttfb);
        ttlb.extend(r.ttlb);
        report.errors += r.errors;
        report.warmup_errors += r.warmup_errors;
        report.body_bytes += r.body_bytes;
        report.total_requests += r.total;
        if let Some(done) = r.last_done {
            last_done = last_done.max(done);
        }
        if let Some((at, message)) = r.first_error
            && first_error.as_ref().is_none_or(|(first, _)| at < *first)
        {
            first_error = Some((at, message));
        }
    }
    report.first_error = first_error.map(|(_, message)| message);
    report.requests = ttlb.len() as u64;
    report.duration_s = (last_done - window_start).as_secs_f64();
    report.rps = report.requests as f64 / report.duration_s.max(1e-9);
    report.ttfb = Stats::from_samples(&mut ttfb);
    report.ttlb = Stats::from_samples(&mut ttlb);
    Ok(report)
}

/// One keep-alive connection's loop.
async fn connection(shared: Arc<Shared>) -> ConnResult {
    let mut result = ConnResult::default();
    let mut sender: Option<SendRequest<Full<Bytes>>> = None;
    loop {
        // When the request counts from, and whether it is recorded.
        let from = match shared.rate {
            None => {
                let now = Instant::now();
                if now >= shared.window_end {
                    break;
                }
                now
            }
            Some(rate) => {
                let i = shared.next.fetch_add(1, Ordering::Relaxed);
                let scheduled = shared.start + Duration::from_secs_f64(i as f64 / rate);
                if scheduled >= shared.window_end {
                    break;
                }
                if Instant::now() < scheduled {
                    tokio::time::sleep_until(scheduled).await;
                    // Timer lateness is the generator's, not the server's.
                    Instant::now()
                } else {
                    scheduled
                }
            }
        };
        let request = tokio::time::timeout(shared.timeout, send(&mut sender, &shared));
        let outcome = if shared.rate.is_none() {
            // Closed loop: what is still in flight when the period ends is abandoned.
            tokio::select! {
                outcome = request => outcome,
                () = tokio::time::sleep_until(shared.window_end) => break,
            }
        } else {
            request.await
        };
        let outcome = outcome.unwrap_or_else(|_| {
            Err(broken(
                "timeout",
                format!("no complete response in {:?}", shared.timeout),
            ))
        });
        let done = Instant::now();
        let recorded = if shared.rate.is_none() {
            done >= shared.window_start
        } else {
            from >= shared.window_start
        };
        result.total += 1;
        result.last_done = Some(done).filter(|_| recorded).or(result.last_done);
        match outcome {
            Ok((head, bytes)) => {
                if recorded {
                    result
                        .ttfb
                        .push(micros(head.saturating_duration_since(from)));
                    result
                        .ttlb
                        .push(micros(done.saturating_duration_since(from)));
                    result.body_bytes += bytes;
                }
            }
            Err(failure) => {
                if recorded {
                    result.errors += 1;
                } else {
                    result.warmup_errors += 1;
                }
                if result.first_error.is_none() {
                    result.first_error = Some((done, failure.message));
                }
                if failure.broken {
                    sender = None;
                    // Do not spin on a refused connection.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
    }
    result
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Sends one request on the connection (opening it first if needed) and reads the whole body.
/// Returns when the head arrived and the body's length.
async fn send(
    sender: &mut Option<SendRequest<Full<Bytes>>>,
    shared: &Shared,
) -> Result<(Instant, u64), Failure> {
    let tx = match sender {
        Some(tx) if !tx.is_closed() => tx,
        _ => sender.insert(connect(shared.addr).await?),
    };
    tx.ready().await.map_err(|e| broken("connection", e))?;
    let response = tx
        .send_request(shared.request())
        .await
        .map_err(|e| broken("request", e))?;
    let head = Instant::now();
    let status = response.status();
    let mut body = response.into_body();
    let mut bytes = 0u64;
    let mut snippet = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| broken("response body", e))?;
        if let Some(data) = frame.data_ref() {
            bytes += data.len() as u64;
            if !status.is_success() && snippet.len() < 300 {
                snippet.extend_from_slice(&data[..data.len().min(300 - snippet.len())]);
            }
        }
    }
    if !status.is_success() {
        return Err(Failure {
            message: format!("status {status}: {}", String::from_utf8_lossy(&snippet)),
            broken: false,
        });
    }
    Ok((head, bytes))
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, Failure> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| broken(&format!("connect {addr}"), e))?;
    stream
        .set_nodelay(true)
        .map_err(|e| broken("TCP_NODELAY", e))?;
    let (tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| broken("handshake", e))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(tx)
}

/// A byte relay: every connection accepted on `listener` is joined to a fresh connection to
/// `to`, and bytes are copied both ways until either side closes.
///
/// It is the benchmark's floor for any gateway: one more loopback hop and two more sockets per
/// connection, with no HTTP parsing and no work of its own. `bench/run.py --configs relay`
/// measures it next to Warden, so "how far from direct" separates what the hop costs on this
/// machine from what Warden's pipeline costs.
pub async fn relay(listener: tokio::net::TcpListener, to: SocketAddr) -> anyhow::Result<()> {
    loop {
        let (mut inbound, _) = listener.accept().await.context("accepting a connection")?;
        tokio::spawn(async move {
            let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await else {
                return;
            };
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_is_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 90.0), 90);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 99.9), 100);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&v, 0.0), 1);
        assert_eq!(percentile(&[7], 50.0), 7);
        assert_eq!(percentile(&[7], 99.9), 7);
        assert_eq!(percentile(&[], 50.0), 0);
        let v: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&v, 99.9), 999);
        assert_eq!(percentile(&[1, 2, 3, 4], 50.0), 2);
        assert_eq!(percentile(&[1, 2, 3, 4], 51.0), 3);
    }

    #[test]
    fn stats_sort_and_summarize() {
        let mut v = vec![5, 1, 4, 2, 3];
        let s = Stats::from_samples(&mut v);
        assert_eq!(v, [1, 2, 3, 4, 5]);
        assert_eq!((s.p50, s.p90, s.p99, s.p999, s.max), (3, 5, 5, 5, 5));
        assert!((s.mean - 3.0).abs() < 1e-9);
        assert_eq!(Stats::from_samples(&mut []), Stats::default());
    }
}
