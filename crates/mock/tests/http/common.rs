//! A mock server on 127.0.0.1:0 per test, and a minimal hyper client to talk to it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use warden_mock::{MockStats, StatsSnapshot};

pub struct Mock {
    pub addr: SocketAddr,
    pub stats: Arc<MockStats>,
    stop: Option<oneshot::Sender<()>>,
    pub server: Option<JoinHandle<std::io::Result<()>>>,
}

impl Mock {
    pub async fn start() -> Mock {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stats = Arc::new(MockStats::default());
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(warden_mock::run(listener, stats.clone(), async move {
            let _ = stopped.await;
        }));
        Mock {
            addr,
            stats,
            stop: Some(stop),
            server: Some(server),
        }
    }

    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// A fresh HTTP/1.1 connection; the returned task drives it.
    pub async fn connect(&self) -> (SendRequest<Full<Bytes>>, JoinHandle<()>) {
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        let (sender, conn) = http1::handshake(TokioIo::new(tcp)).await.unwrap();
        let task = tokio::spawn(async move {
            let _ = conn.await;
        });
        (sender, task)
    }

    /// Sends a request and returns the response head with its still-unread body.
    pub async fn open(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (Response<Incoming>, JoinHandle<()>) {
        let (mut sender, task) = self.connect().await;
        let response = sender
            .send_request(build(method, path, headers, body))
            .await
            .unwrap();
        (response, task)
    }

    /// Sends a request and reads the whole response.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Reply {
        let (response, _task) = self.open(method, path, headers, body).await;
        Reply::read(response).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, &[], Some(body)).await
    }

    pub async fn post_with(&self, path: &str, headers: &[(&str, &str)], body: Value) -> Reply {
        self.call(Method::POST, path, headers, Some(body)).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, &[], None).await
    }

    /// Polls the counters until `done` holds, for at most five seconds.
    pub async fn wait_for(&self, done: impl Fn(&StatsSnapshot) -> bool) -> StatsSnapshot {
        for _ in 0..500 {
            let snapshot = self.stats.snapshot();
            if done(&snapshot) {
                return snapshot;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.stats.snapshot()
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn build(
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Request<Full<Bytes>> {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "mock.test");
    if body.is_some() {
        builder = builder.header("content-type", "application/json");
    }
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    builder.body(Full::new(body)).unwrap()
}

pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub async fn read(response: Response<Incoming>) -> Reply {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.to_vec()).unwrap()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or("")
    }

    /// Server-sent events as (event name, data) pairs.
    pub fn sse(&self) -> Vec<(Option<String>, String)> {
        parse_sse(&self.text())
    }

    /// `data:` payloads that are JSON, in order.
    pub fn sse_json(&self) -> Vec<Value> {
        self.sse()
            .into_iter()
            .filter(|(_, data)| data != "[DONE]")
            .map(|(_, data)| serde_json::from_str(&data).unwrap())
            .collect()
    }

    pub fn ndjson(&self) -> Vec<Value> {
        self.text()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

pub fn parse_sse(text: &str) -> Vec<(Option<String>, String)> {
    let normalized = text.replace("\r\n", "\n");
    normalized
        .split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut event = None;
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(name) = line.strip_prefix("event: ") {
                    event = Some(name.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push(d);
                } else if !line.starts_with(':') {
                    panic!("unexpected SSE line {line:?}");
                }
            }
            (event, data.join("\n"))
        })
        .collect()
}

/// Reads the next data frame of a streaming body, skipping trailers.
pub async fn next_data(body: &mut Incoming) -> Option<Result<Bytes, hyper::Error>> {
    loop {
        match body.frame().await? {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    return Some(Ok(data));
                }
            }
            Err(e) => return Some(Err(e)),
        }
    }
}

pub fn chat(text: &str) -> Value {
    serde_json::json!({
        "model": "gpt-test",
        "messages": [{"role": "user", "content": text}]
    })
}

pub fn chat_stream(text: &str) -> Value {
    let mut body = chat(text);
    body["stream"] = Value::Bool(true);
    body
}
