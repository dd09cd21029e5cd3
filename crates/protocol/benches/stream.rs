//! Provider stream parsing: what the gateway spends decoding each streamed event into the
//! exchange model (`StreamInspector`), per provider, fed as the upstream sends it (one chunk per
//! event), plus the tool-call tracker the tool gate runs on the same events, and finding each
//! event's content strings (what the stream protector scans) from its bytes against parsing it
//! into a tree and walking that.
//!
//! `cargo bench -p warden-protocol --bench stream`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use warden_protocol::tools::ToolCallTracker;
use warden_protocol::{
    EventSplitter, Framing, StreamInspector, classify, content_spans, visit_content_strings,
};

const OPENAI: &str = include_str!("../tests/fixtures/openai/chat_stream_text_tool.sse");
const ANTHROPIC: &str = include_str!("../tests/fixtures/anthropic/stream_tool_use.sse");
const GEMINI: &str = include_str!("../tests/fixtures/gemini/stream_text.sse");

/// A long OpenAI text stream: `n` content chunks, as a model streams tokens.
fn openai_text(n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        s.push_str(&format!(
            "data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"token{i} \"}},\"finish_reason\":null}}]}}\n\n"
        ));
    }
    s.push_str("data: [DONE]\n\n");
    s
}

fn bench(c: &mut Criterion) {
    let long = openai_text(200);
    let cases = [
        ("openai_text_200", "/v1/chat/completions", long.as_str()),
        ("openai_tool_call", "/v1/chat/completions", OPENAI),
        ("anthropic_tool_use", "/v1/messages", ANTHROPIC),
        (
            "gemini_sse",
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
            GEMINI,
        ),
    ];
    let mut g = c.benchmark_group("stream_inspector");
    for (name, path, body) in cases {
        let route = classify("POST", path).expect("route");
        // One chunk per event, cut where the splitter says events start.
        let starts: Vec<usize> = EventSplitter::new(Framing::Sse)
            .expect("SSE")
            .push(body.as_bytes())
            .iter()
            .map(|e| e.start as usize)
            .chain([body.len()])
            .collect();
        let events: Vec<&str> = std::iter::once(&body[..starts[0]])
            .filter(|s| !s.is_empty())
            .chain(starts.windows(2).map(|w| &body[w[0]..w[1]]))
            .collect();
        g.throughput(Throughput::Elements(events.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut i = StreamInspector::new(&route, Framing::Sse);
                for e in &events {
                    i.push(black_box(e.as_bytes()));
                }
                i.finish()
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("tool_call_tracker");
    for (name, path, body) in cases {
        let route = classify("POST", path).expect("route");
        let events = EventSplitter::new(Framing::Sse)
            .expect("SSE")
            .push(body.as_bytes());
        g.throughput(Throughput::Elements(events.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut t = ToolCallTracker::new(&route);
                let mut n = 0;
                for e in &events {
                    n += t
                        .observe(e.name.as_deref(), black_box(&e.data))
                        .completed
                        .len();
                }
                n
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("content_strings");
    for (name, _, body) in cases {
        let events = EventSplitter::new(Framing::Sse)
            .expect("SSE")
            .push(body.as_bytes());
        g.throughput(Throughput::Elements(events.len() as u64));
        g.bench_function(format!("{name}/spans"), |b| {
            b.iter(|| {
                let mut n = 0;
                for e in &events {
                    n += content_spans(black_box(&e.data)).map_or(0, |s| s.len());
                }
                n
            })
        });
        g.bench_function(format!("{name}/tree"), |b| {
            b.iter(|| {
                let mut n = 0;
                for e in &events {
                    if let Ok(mut v) = serde_json::from_slice(black_box(&e.data)) {
                        visit_content_strings(&mut v, &mut |_, _| n += 1);
                    }
                }
                n
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
