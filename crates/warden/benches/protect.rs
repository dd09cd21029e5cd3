//! Content protection on the gateway's hot paths: the added cost per stream chunk of the
//! stream protector (hold-back, event rewriting, placeholder restore) and the request stage on
//! small and large bodies.
//!
//! `cargo bench -p warden --bench protect`

use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use warden::config::ProtectConfig;
use warden::pipeline::protect::{Caller, ProtectRecord, StreamProtector, request};
use warden_protect::vault::Vault;
use warden_protocol::Framing;

/// An OpenAI chat stream of `n` content chunks of a few words each, one secret among them.
fn openai_stream(n: usize) -> Vec<Vec<u8>> {
    let words = [
        "The ", "quick ", "brown ", "fox ", "jumps ", "over ", "the ", "lazy ", "dog. ",
    ];
    let mut out = Vec::with_capacity(n + 1);
    for i in 0..n {
        let text = if i == n / 2 {
            "ghp_R4nd0mT0k3nV4lu3F0rT3st1ngOnlyAbC9xy ".to_string()
        } else {
            format!("{}{}", words[i % words.len()], words[(i + 3) % words.len()])
        };
        let event = serde_json::json!({
            "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]
        });
        out.push(format!("data: {event}\n\n").into_bytes());
    }
    out.push(b"data: [DONE]\n\n".to_vec());
    out
}

fn bench(c: &mut Criterion) {
    let cfg = Arc::new(ProtectConfig::default());
    let vault = Arc::new(Vault::new(
        Vault::generate_key(),
        std::time::Duration::from_secs(60),
    ));
    let caller = Caller {
        tenant: Some("acme".into()),
        session: Some("s1".into()),
    };
    let chunks = openai_stream(200);
    let mut g = c.benchmark_group("stream_protector");
    g.throughput(Throughput::Elements(chunks.len() as u64));
    g.bench_function("openai_200_chunks", |b| {
        b.iter(|| {
            let mut p =
                StreamProtector::new(cfg.clone(), vault.clone(), caller.clone(), Framing::Sse);
            let mut n = 0;
            for c in &chunks[..chunks.len() - 1] {
                n += p.push(c).len();
            }
            let (a, z) = p.finish(&chunks[chunks.len() - 1]);
            n + a.len() + z.len()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("request_stage");
    for (name, text) in [
        (
            "small_chat",
            "Say hello to the auditors, please.".to_string(),
        ),
        (
            "100KB_prose",
            "The quarterly report shows steady growth across all regions. ".repeat(1650),
        ),
    ] {
        let body = serde_json::to_vec(&serde_json::json!({
            "model": "gpt-4o-mini",
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]
        }))
        .expect("serializes");
        g.throughput(Throughput::Bytes(body.len() as u64));
        let body = Bytes::from(body);
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut body = body.clone();
                let mut record = ProtectRecord::default();
                request(&cfg, &vault, &caller, &mut body, &mut record).expect("not blocked")
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
