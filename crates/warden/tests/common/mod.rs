//! Test harness: start the real `warden` binary (gateway and mock upstream) on free loopback
//! ports, talk to it over HTTP, and clean up the processes whatever happens.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

pub const BIN: &str = env!("CARGO_BIN_EXE_warden");

/// A fresh directory under cargo's per-target temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A child process killed on drop.
pub struct Proc {
    pub child: Child,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub log: PathBuf,
}

impl Proc {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The process's stderr so far (gateway logs), for failure messages.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `warden mock-upstream` on a free port.
pub fn mock() -> Proc {
    let dir = temp_dir("mock");
    let log = dir.join("stderr.log");
    let mut child = Command::new(BIN)
        .args(["mock-upstream", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("spawn warden mock-upstream");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .rsplit("http://")
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("mock printed no address: {line:?}"));
    Proc {
        child,
        addr,
        data_dir: dir,
        log,
    }
}

/// Starts `warden serve` with every provider pointed at `upstream`, plus `extra` args.
pub fn gateway(upstream: &str, extra: &[&str]) -> Proc {
    let mut args: Vec<String> = Vec::new();
    for p in ["openai", "anthropic", "gemini", "ollama"] {
        args.push("--upstream".into());
        args.push(format!("{p}={upstream}"));
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    gateway_with_args(&args)
}

/// Starts `warden serve` with `toml` as its config file and every provider pointed at `upstream`.
pub fn gateway_with_config(upstream: &str, toml: &str) -> Proc {
    let dir = temp_dir("cfg");
    let cfg = dir.join("warden.toml");
    std::fs::write(&cfg, toml).unwrap();
    let mut args = vec!["--config".to_string(), cfg.display().to_string()];
    for p in ["openai", "anthropic", "gemini", "ollama"] {
        args.push("--upstream".into());
        args.push(format!("{p}={upstream}"));
    }
    gateway_with_args(&args)
}

/// Starts `warden serve --listen 127.0.0.1:0 --data-dir <tmp> ARGS…` and waits for gateway.json.
pub fn gateway_with_args(args: &[String]) -> Proc {
    let dir = temp_dir("gw");
    let log = dir.join("stderr.log");
    let child = Command::new(BIN)
        .arg("serve")
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .args(args)
        .current_dir(&dir)
        .env_remove("WARDEN_LISTEN")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("spawn warden serve");
    let mut p = Proc {
        child,
        addr: "127.0.0.1:1".parse().unwrap(),
        data_dir: dir.clone(),
        log,
    };
    let info = dir.join("gateway.json");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(text) = std::fs::read_to_string(&info) {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            p.addr = v["listen"].as_str().unwrap().parse().unwrap();
            return p;
        }
        if let Ok(Some(status)) = p.child.try_wait() {
            panic!("warden serve exited with {status}: {}", p.log_text());
        }
        assert!(
            Instant::now() < deadline,
            "gateway did not start: {}",
            p.log_text()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A response read to the end.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Data frames as received.
    pub frames: usize,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The ledger index in `x-warden-entry`.
    pub fn entry_index(&self) -> u64 {
        self.headers["x-warden-entry"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    }
}

pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Sends one request and reads the whole response (bounded by 30 s).
pub async fn send(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Reply {
    let mut req = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(body.into())).unwrap();
    tokio::time::timeout(Duration::from_secs(30), async {
        let resp = client().request(req).await.expect("request failed");
        let status = resp.status();
        let headers = resp.headers().clone();
        let mut body = resp.into_body();
        let mut bytes = Vec::new();
        let mut frames = 0;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => {
                    if let Ok(d) = f.into_data() {
                        frames += 1;
                        bytes.extend_from_slice(&d);
                    }
                }
                Err(_) => break,
            }
        }
        Reply {
            status,
            headers,
            body: bytes.into(),
            frames,
        }
    })
    .await
    .expect("request timed out")
}

pub async fn post_json(url: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut h = vec![("content-type", "application/json")];
    h.extend_from_slice(headers);
    send(Method::POST, url, &h, body.to_string()).await
}

/// GET /mock/stats.
pub async fn mock_stats(mock: &Proc) -> serde_json::Value {
    send(Method::GET, &format!("{}/mock/stats", mock.url()), &[], "")
        .await
        .json()
}

/// A loopback port nobody listens on.
pub fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Starts `warden serve --listen 127.0.0.1:0 --data-dir DIR` with every provider pointed at
/// `upstream`, plus `extra` args, on a data dir the caller chose (e.g. one prepared offline by
/// the CLI). A `gateway.json` left by an earlier run in `dir` is removed first.
pub fn gateway_in(dir: &Path, upstream: &str, extra: &[&str]) -> Proc {
    let info = dir.join("gateway.json");
    let _ = std::fs::remove_file(&info);
    let log = dir.join("serve-stderr.log");
    let mut cmd = Command::new(BIN);
    cmd.arg("serve")
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir);
    for p in ["openai", "anthropic", "gemini", "ollama"] {
        cmd.arg("--upstream").arg(format!("{p}={upstream}"));
    }
    let child = cmd
        .args(extra)
        .current_dir(dir)
        .env_remove("WARDEN_LISTEN")
        .env_remove("WARDEN_CONFIG")
        .env_remove("WARDEN_ADMIN_TOKEN")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("spawn warden serve");
    let mut p = Proc {
        child,
        addr: "127.0.0.1:1".parse().unwrap(),
        data_dir: dir.to_path_buf(),
        log,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(text) = std::fs::read_to_string(&info)
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
        {
            p.addr = v["listen"].as_str().unwrap().parse().unwrap();
            return p;
        }
        if let Ok(Some(status)) = p.child.try_wait() {
            panic!("warden serve exited with {status}: {}", p.log_text());
        }
        assert!(
            Instant::now() < deadline,
            "gateway did not start: {}",
            p.log_text()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}
