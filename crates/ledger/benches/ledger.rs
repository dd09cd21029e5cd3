//! Ledger benchmarks: the machine's fdatasync latency, durable append throughput at concurrency
//! 1, 64 and 512, JCS canonicalization, proof generation and verification, and streaming
//! verification. Short by default (few samples); run with `cargo bench -p warden-ledger`.
//!
//! Criterion reports throughput per entry ("elem/s"), so the append benchmarks read directly as
//! durable entries per second.

use std::fs::OpenOptions;
use std::hint::black_box;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};
use warden_ledger::log::{Durability, EntryDraft, Ledger, LedgerOptions, LedgerReader};
use warden_ledger::note::NoteSigner;
use warden_ledger::tree::{leaf_hash, verify_inclusion};
use warden_ledger::verify::{VerifyOptions, verify_ledger};

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/bench-scratch")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn signer() -> NoteSigner {
    NoteSigner::from_seed("warden.local/bench", [1u8; 32]).unwrap()
}

/// An entry shaped like the gateway's (identity, route, digests, usage, decision, findings),
/// about 700 bytes canonical.
fn body(n: u64) -> Value {
    json!({
        "schema": 1,
        "kind": "exchange",
        "time": "2026-05-01T12:00:00.123456Z",
        "tenant": "acme",
        "agent": "support-bot",
        "key_id": "vk_3f9a1c",
        "provider": "openai",
        "route": "/v1/chat/completions",
        "model": "gpt-4o-mini",
        "stream": false,
        "request_digest": "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "response_digest": "sha256:60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752",
        "usage": {"input_tokens": 812 + n % 100, "output_tokens": 153, "cost_usd_micros": 2311},
        "decision": {"action": "allow", "rule": "default", "reason": "no rule matched"},
        "findings": [{"type": "email", "count": 1, "path": "$.messages[0].content"}],
        "tool_calls": [{"name": "lookup_order", "arguments": "{\"order_id\":\"A-1042\"}"}],
        "upstream": {"status": 200, "latency_ms": 843},
        "n": n,
    })
}

fn draft(n: u64) -> EntryDraft {
    EntryDraft::new(
        Some(format!("session-{}", n % 1000)),
        body(n).as_object().unwrap().clone(),
    )
}

fn fdatasync_latency(c: &mut Criterion) {
    let dir = scratch("fdatasync");
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("f"))
        .unwrap();
    let block = [7u8; 1024];
    let mut g = c.benchmark_group("fdatasync");
    g.sample_size(30).measurement_time(Duration::from_secs(3));
    g.bench_function("append_1KiB_then_fdatasync", |b| {
        b.iter(|| {
            file.write_all(&block).unwrap();
            file.sync_data().unwrap();
        })
    });
    g.finish();
    let _ = std::fs::remove_dir_all(dir);
}

/// Durable appends: `threads` callers each calling `append_blocking` in a loop; then the same
/// at concurrency 1 with `Durability::Write` (answered after the write, synced every 50 ms).
fn append_throughput(c: &mut Criterion) {
    let mut g = c.benchmark_group("durable_append");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(1));
    for (threads, durability, name) in [
        (1usize, Durability::Fsync, "concurrency_1"),
        (64, Durability::Fsync, "concurrency_64"),
        (512, Durability::Fsync, "concurrency_512"),
        (
            1,
            Durability::Write {
                sync_interval: Duration::from_millis(50),
            },
            "write_mode_concurrency_1",
        ),
    ] {
        let dir = scratch(&format!("append-{name}"));
        let mut opts = LedgerOptions::new(signer());
        opts.durability = durability;
        opts.batch_max_entries = 512;
        if let Some(us) = std::env::var("WARDEN_LEDGER_BENCH_WAIT_US")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            opts.batch_max_wait = Duration::from_micros(us);
        }
        let ledger = Arc::new(Ledger::open(&dir, opts).unwrap());
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let per_thread = iters.div_ceil(threads as u64);
                let barrier = Arc::new(Barrier::new(threads + 1));
                let workers: Vec<_> = (0..threads)
                    .map(|t| {
                        let ledger = ledger.clone();
                        let barrier = barrier.clone();
                        std::thread::spawn(move || {
                            barrier.wait();
                            for i in 0..per_thread {
                                ledger
                                    .append_blocking(draft(t as u64 * 1_000_000 + i))
                                    .unwrap();
                            }
                        })
                    })
                    .collect();
                barrier.wait();
                let start = Instant::now();
                for w in workers {
                    w.join().unwrap();
                }
                // Normalize to the requested iteration count.
                start
                    .elapsed()
                    .mul_f64(iters as f64 / (per_thread * threads as u64) as f64)
            })
        });
        drop(ledger);
        let _ = std::fs::remove_dir_all(dir);
    }
    g.finish();
}

fn jcs(c: &mut Criterion) {
    let mut value = body(42);
    value["index"] = json!(123_456);
    value["prev"] = json!("2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae");
    value["session"] = json!("session-42");
    let len = warden_ledger::jcs::canonicalize(&value).unwrap().len();
    let mut g = c.benchmark_group("jcs");
    g.sample_size(30).throughput(Throughput::Bytes(len as u64));
    g.bench_function(format!("canonicalize_entry_{len}B"), |b| {
        b.iter(|| warden_ledger::jcs::canonicalize(black_box(&value)).unwrap())
    });
    g.finish();
}

/// Builds a ledger of `n` entries with 64 appending threads.
fn build(dir: &Path, n: u64) {
    let mut opts = LedgerOptions::new(signer());
    opts.batch_max_entries = 512;
    let ledger = Arc::new(Ledger::open(dir, opts).unwrap());
    let threads: Vec<_> = (0..64u64)
        .map(|t| {
            let ledger = ledger.clone();
            std::thread::spawn(move || {
                let mut i = t;
                while i < n {
                    ledger.append_blocking(draft(i)).unwrap();
                    i += 64;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

fn proofs_and_verify(c: &mut Criterion) {
    const N: u64 = 100_000;
    let dir = scratch("proofs");
    build(&dir, N);
    let reader = LedgerReader::open(&dir).unwrap();
    let verifier = signer().verifier();
    let entry = reader.entry(N / 3).unwrap();
    let receipt = reader.prove(N / 3).unwrap();
    let cp = reader.latest_checkpoint().unwrap();

    let mut g = c.benchmark_group("proof");
    g.sample_size(30);
    let mut i = 0u64;
    g.bench_function("prove_from_disk_100k", |b| {
        b.iter(|| {
            i = (i + 7919) % N;
            reader.prove(i).unwrap()
        })
    });
    g.bench_function("verify_inclusion_only", |b| {
        let leaf = leaf_hash(&entry);
        b.iter(|| verify_inclusion(N / 3, cp.size(), &leaf, receipt.proof(), &cp.root()).unwrap())
    });
    g.bench_function("verify_receipt_with_signature", |b| {
        b.iter(|| receipt.verify(black_box(&entry), &verifier).unwrap())
    });
    g.finish();

    let mut g = c.benchmark_group("verify_ledger");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .throughput(Throughput::Elements(N));
    let opts = VerifyOptions::new(verifier);
    g.bench_function("stream_100k_entries", |b| {
        b.iter(|| {
            let report = verify_ledger(&dir, &opts).unwrap();
            assert!(report.is_intact());
        })
    });
    g.finish();
    let _ = std::fs::remove_dir_all(dir);
}

criterion_group!(
    benches,
    fdatasync_latency,
    append_throughput,
    jcs,
    proofs_and_verify
);
criterion_main!(benches);
