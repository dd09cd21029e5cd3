//! The load generator against the in-process mock provider: short bounded runs.

use std::sync::Arc;
use std::time::Duration;

use warden_loadgen::{Config, run};

const CHAT: &str = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello."}]}"#;

/// Starts the mock on a free loopback port; it stops when the test's runtime does.
async fn mock() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stats = Arc::new(warden_mock::MockStats::default());
    tokio::spawn(warden_mock::run(
        listener,
        stats,
        std::future::pending::<()>(),
    ));
    format!("http://{addr}/v1/chat/completions")
}

fn config(url: String, scenario: Option<&str>) -> Config {
    let mut config = Config::new(url);
    config.body = CHAT.into();
    config.headers = vec![("content-type".into(), "application/json".into())];
    if let Some(s) = scenario {
        config.headers.push(("x-mock-scenario".into(), s.into()));
    }
    config.conns = 2;
    config.duration = Duration::from_millis(300);
    config.warmup = Duration::from_millis(50);
    config.timeout = Duration::from_secs(5);
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_against_the_mock() {
    let report = run(&config(mock().await, None)).await.unwrap();
    assert!(report.requests > 0, "{report:?}");
    assert_eq!(report.errors, 0, "{report:?}");
    assert_eq!(report.first_error, None);
    assert!(report.total_requests >= report.requests);
    assert!(report.duration_s >= 0.3);
    assert!(report.ttlb.p50 >= report.ttfb.p50);
    assert!(report.ttlb.max >= report.ttlb.p999);
    assert!(report.body_bytes > 0);
    let json = report.to_json();
    for key in [
        "requests",
        "errors",
        "first_error",
        "duration_s",
        "rps",
        "ttfb",
        "ttlb",
    ] {
        assert!(json.get(key).is_some(), "{key} missing from {json}");
    }
    for key in ["p50", "p90", "p99", "p999", "max", "mean"] {
        assert!(json["ttlb"].get(key).is_some(), "ttlb.{key} missing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_are_read_to_the_end() {
    let url = mock().await;
    let mut config = config(url, Some(r#"{"words":50}"#));
    config.body =
        r#"{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Hi"}]}"#
            .into();
    let report = run(&config).await.unwrap();
    assert!(report.requests > 0);
    assert_eq!(report.errors, 0, "{:?}", report.first_error);
    // 50 words as 50 SSE chunks plus the terminator: far more than a buffered reply.
    assert!(report.body_bytes / report.requests > 2_000, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_statuses_are_errors() {
    let report = run(&config(mock().await, Some(r#"{"status":500}"#)))
        .await
        .unwrap();
    assert_eq!(report.requests, 0, "{report:?}");
    assert!(report.errors > 0);
    let first = report.first_error.unwrap();
    assert!(first.starts_with("status 500"), "{first}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_keeps_the_rate() {
    let mut config = config(mock().await, None);
    config.rate = Some(200.0);
    config.conns = 4;
    config.warmup = Duration::ZERO;
    config.duration = Duration::from_millis(500);
    let report = run(&config).await.unwrap();
    assert_eq!(report.errors, 0, "{:?}", report.first_error);
    // 100 scheduled in the window; allow for a slow CI machine.
    assert!((90..=101).contains(&report.requests), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_are_errors() {
    // Bind and drop: nothing listens on that port any more.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut config = config(format!("http://{addr}/v1/chat/completions"), None);
    config.duration = Duration::from_millis(100);
    config.warmup = Duration::ZERO;
    let report = run(&config).await.unwrap();
    assert_eq!(report.requests, 0);
    assert!(report.errors > 0);
    assert!(report.first_error.unwrap().starts_with("connect"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_abandons_what_is_in_flight_at_the_end() {
    let mut config = config(mock().await, Some(r#"{"delay_ms":3000}"#));
    config.warmup = Duration::ZERO;
    config.duration = Duration::from_millis(200);
    let started = std::time::Instant::now();
    let report = run(&config).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "waited for the slow replies"
    );
    assert_eq!((report.requests, report.errors), (0, 0), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_passes_requests_and_replies_through_unchanged() {
    let direct = mock().await;
    let upstream: std::net::SocketAddr = direct
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relayed = format!(
        "http://{}/v1/chat/completions",
        listener.local_addr().unwrap()
    );
    tokio::spawn(warden_loadgen::relay(listener, upstream));
    let report = run(&config(relayed.clone(), None)).await.unwrap();
    assert!(report.requests > 0, "{report:?}");
    assert_eq!(report.errors, 0, "{report:?}");
    // The same answer as without the relay.
    let answer = |addr: String| async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{CHAT}",
            CHAT.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        let body = out.split_once("\r\n\r\n").unwrap().1;
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        v["choices"][0]["message"]["content"].clone()
    };
    let via_relay = answer(relayed.split('/').nth(2).unwrap().to_string()).await;
    assert!(
        via_relay.as_str().is_some_and(|t| !t.is_empty()),
        "{via_relay}"
    );
    assert_eq!(via_relay, answer(upstream.to_string()).await);
}
