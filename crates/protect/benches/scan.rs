//! Scanner throughput on generated text (no files): clean English prose, text dense with
//! candidates, and non-ASCII prose that exercises normalization.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use warden_protect::detect::{ScanOptions, Scanner};

mod text;

use text::{Rng, SEED, SIZE, dense, non_ascii, non_ascii_nfkc, prose};

fn bench(c: &mut Criterion) {
    let scanner = Scanner::builtin();
    let detectors_only = Scanner::new(
        ScanOptions {
            decode: false,
            injection: false,
        },
        Vec::new(),
    )
    .expect("builtins compile");
    let mut rng = Rng(SEED);
    let inputs = [
        ("clean_english", prose(&mut rng, SIZE)),
        ("dense", dense(&mut rng, SIZE)),
        ("non_ascii", non_ascii(&mut rng, SIZE)),
        ("non_ascii_nfkc", non_ascii_nfkc(&mut rng, SIZE)),
    ];
    for (name, text) in &inputs {
        let mut g = c.benchmark_group(*name);
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_function("scan", |b| b.iter(|| scanner.scan(black_box(text))));
        // The PII and secret detectors alone (`protect.injection = false`).
        g.bench_function("scan_without_injection", |b| {
            b.iter(|| detectors_only.scan(black_box(text)))
        });
        g.bench_function("injection_only", |b| {
            b.iter(|| {
                let mut out = Vec::new();
                warden_protect::inject::scan(black_box(text), &mut out);
                out
            })
        });
        g.bench_function("stable_prefix", |b| {
            b.iter(|| scanner.stable_prefix(black_box(text)))
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
