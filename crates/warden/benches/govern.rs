//! Tool-call governance on the gateway's hot path: the added cost per stream event of the tool
//! gate, on a text-only stream (nothing to judge) and on a stream carrying a tool call whose
//! arguments arrive as deltas (held, judged by the preset's SQL check, released).
//!
//! `cargo bench -p warden --bench govern`

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use warden::approve::Approvals;
use warden::config::{Capture, Config, Overrides};
use warden::pipeline::govern::{GovernCtx, ToolGate};
use warden::pipeline::identify::Identity;
use warden::pipeline::record::Recorder;
use warden_protocol::{Framing, classify};

fn text_stream(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let event = serde_json::json!({
                "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
                "choices": [{"index": 0, "delta": {"content": format!("word{i} ")}, "finish_reason": null}]
            });
            format!("data: {event}\n\n").into_bytes()
        })
        .collect()
}

fn tool_stream() -> Vec<Vec<u8>> {
    let text = include_str!("../../protocol/tests/fixtures/openai/chat_stream_text_tool.sse")
        .replace("DROP", "SELECT * FROM")
        .replace(" TABLE", "");
    text.split_inclusive("\n\n")
        .filter(|e| !e.starts_with("data: [DONE]"))
        .map(|e| e.as_bytes().to_vec())
        .collect()
}

fn bench(c: &mut Criterion) {
    let config = Config::from_str("", "bench", &Overrides::default()).expect("config");
    let dir = std::env::temp_dir().join(format!("warden-bench-govern-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store: Arc<dyn warden_state::Store> =
        Arc::new(warden_state::SqliteStore::open(&dir).expect("store"));
    let ctx = GovernCtx {
        tools: config.policy.tools.clone(),
        protection: config.policy.protect.clone(),
        approvals: Arc::new(Approvals::new(
            store,
            warden::pipeline::forward::build_client(&config.limits, &[]),
        )),
        recorder: Arc::new(Recorder::new(
            Arc::new(AtomicBool::new(true)),
            None,
            Capture::Redacted,
        )),
        identity: Identity::default(),
        provider: "openai",
        model: None,
    };
    let route = classify("POST", "/v1/chat/completions").expect("route");
    let mut g = c.benchmark_group("tool_gate");
    for (name, events) in [
        ("text_200_events", text_stream(200)),
        ("sql_tool_call_events", tool_stream()),
    ] {
        g.throughput(Throughput::Elements(events.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut gate = ToolGate::new(ctx.clone(), &route, Framing::Sse).expect("events");
                let mut n = 0;
                for e in &events {
                    n += gate.push(e).len();
                }
                n + gate.finish_begin(b"data: [DONE]\n\n").len()
            })
        });
    }
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
