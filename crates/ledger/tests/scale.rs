//! A large ledger builds, reopens quickly and verifies in constant memory.
//!
//! Ignored by default (it writes ~300 MB). Run it with
//! `cargo test -p warden-ledger --release --test scale -- --ignored --nocapture`;
//! set `WARDEN_LEDGER_SCALE_ENTRIES` for another size (10 000 000 works on a 2-core machine).

mod common;

use std::sync::Arc;
use std::time::Instant;

use common::*;
use warden_ledger::log::{Ledger, LedgerOptions};
use warden_ledger::verify::{VerifyOptions, verify_ledger};

#[test]
#[ignore = "writes a million entries; run explicitly with --release"]
fn a_million_entries_build_and_verify() {
    let total: u64 = std::env::var("WARDEN_LEDGER_SCALE_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let threads = 64u64;
    let dir = TempDir::new("scale");
    let mut opts = LedgerOptions::new(signer());
    opts.batch_max_entries = 512;
    let ledger = Arc::new(Ledger::open(&dir.ledger(), opts.clone()).unwrap());
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let ledger = ledger.clone();
            std::thread::spawn(move || {
                let mut n = t;
                while n < total {
                    let session = format!("session-{}", n % 10_000);
                    ledger.append_blocking(draft(Some(&session), n)).unwrap();
                    n += threads;
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let build = started.elapsed();
    assert_eq!(ledger.size(), total);
    drop(ledger);
    eprintln!(
        "built {total} entries with {threads} threads in {build:?} ({:.0} durable entries/s)",
        total as f64 / build.as_secs_f64()
    );

    let started = Instant::now();
    let ledger = Ledger::open(&dir.ledger(), opts).unwrap();
    eprintln!(
        "reopened in {:?}, rescanning {} entries",
        started.elapsed(),
        ledger.recovery().rescanned_entries
    );
    drop(ledger);

    let report = verify_ledger(&dir.ledger(), &VerifyOptions::new(signer().verifier())).unwrap();
    assert!(report.is_intact(), "{:?}", report.failure);
    assert_eq!(report.verified_size, total);
    eprintln!(
        "verified {} entries, {} checkpoints, {} MB in {:?}: {:.0} entries/s",
        report.entries,
        report.checkpoints_checked,
        report.bytes >> 20,
        report.elapsed,
        report.entries as f64 / report.elapsed.as_secs_f64()
    );
}
