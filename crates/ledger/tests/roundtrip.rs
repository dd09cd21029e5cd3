//! Append from many threads, verify the directory, and check every receipt offline — including
//! after a restart, and against a ledger that was rolled back.

mod common;

use std::sync::Arc;

use common::*;
use warden_ledger::log::{Appended, Ledger, LedgerOptions, LedgerReader};
use warden_ledger::receipt::{Receipt, ReceiptError};
use warden_ledger::verify::{VerifyOptions, verify_ledger, verify_receipt, verify_receipt_against};

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn many_threads_append_and_everything_verifies() {
    let dir = TempDir::new("roundtrip");
    let anchor = dir.path().join("anchor");
    let mut opts = LedgerOptions::new(signer());
    opts.batch_max_entries = 32;
    opts.segment_bytes = 64 << 10;
    opts.anchor = Some(anchor.clone());
    let ledger = Arc::new(Ledger::open(&dir.ledger(), opts.clone()).unwrap());
    let threads: Vec<_> = (0..16u64)
        .map(|t| {
            let ledger = ledger.clone();
            std::thread::spawn(move || {
                (0..60)
                    .map(|i| {
                        let n = t * 1000 + i;
                        ledger.append_blocking(draft(session_of(t), n)).unwrap()
                    })
                    .collect::<Vec<Appended>>()
            })
        })
        .collect();
    let appended: Vec<Appended> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert_eq!(appended.len(), 960);
    let vkey = signer().verifier().to_vkey();

    // Receipts verify offline, as text and as the base64 header value.
    for a in &appended {
        let check = verify_receipt(&a.receipt_text(), a.entry(), &vkey).unwrap();
        assert_eq!(check.index, a.index());
        verify_receipt(&a.receipt_base64(), a.entry(), &vkey).unwrap();
        assert!(verify_receipt(&a.receipt_base64(), b"{}", &vkey).is_err());
    }
    let batches = {
        let mut sizes: Vec<u64> = appended.iter().map(|a| a.checkpoint().size()).collect();
        sizes.dedup();
        sizes.sort_unstable();
        sizes.dedup();
        sizes.len()
    };
    assert!(
        batches < 960,
        "concurrent appends were group-committed ({batches} batches)"
    );

    // Append a few more after a restart.
    drop(ledger);
    let ledger = Ledger::open(&dir.ledger(), opts).unwrap();
    assert_eq!(ledger.size(), 960);
    for i in 0..5 {
        ledger.append_blocking(draft(None, 10_000 + i)).unwrap();
    }
    drop(ledger);

    let mut vopts = VerifyOptions::from_vkey(&vkey).unwrap();
    vopts.anchor = Some(anchor);
    let report = verify_ledger(&dir.ledger(), &vopts).unwrap();
    assert!(report.is_intact(), "{:?}", report.failure);
    assert_eq!(report.entries, 965);
    assert_eq!(report.verified_size, 965);
    assert_eq!(report.sessions, 4);
    assert!(report.anchor_checked > 0);

    // Old receipts are consistent with the current ledger.
    let reader = LedgerReader::open(&dir.ledger()).unwrap();
    let verifier = signer().verifier();
    for a in appended.iter().step_by(37) {
        let check = verify_receipt_against(&a.receipt(), a.entry(), &verifier, &reader).unwrap();
        assert_eq!(check.consistent_with.unwrap().size, 965);
        // `warden audit prove` gives a receipt in the current checkpoint.
        let fresh = reader.prove(a.index()).unwrap();
        assert_eq!(fresh.verify(a.entry(), &verifier).unwrap().size, 965);
    }
}

#[test]
fn a_rolled_back_ledger_fails_newer_receipts() {
    let dir = TempDir::new("rollback");
    let old_copy = dir.path().join("old");
    let ledger = Ledger::open(&dir.ledger(), LedgerOptions::new(signer())).unwrap();
    for i in 0..10 {
        ledger.append_blocking(draft(session_of(i), i)).unwrap();
    }
    ledger.close().unwrap();
    copy_dir(&dir.ledger(), &old_copy);

    let ledger = Ledger::open(&dir.ledger(), LedgerOptions::new(signer())).unwrap();
    let later: Vec<Appended> = (10..15)
        .map(|i| ledger.append_blocking(draft(session_of(i), i)).unwrap())
        .collect();
    drop(ledger);

    // The operator restores the old copy: receipts issued since then expose it.
    let verifier = signer().verifier();
    let old = LedgerReader::open(&old_copy).unwrap();
    let receipt = Receipt::parse(&later[2].receipt_text()).unwrap();
    assert!(matches!(
        verify_receipt_against(&receipt, later[2].entry(), &verifier, &old),
        Err(ReceiptError::RolledBack {
            ledger_size: 10,
            ..
        })
    ));

    // A fork: the old copy grows again with different entries past the receipt's size.
    let forked = Ledger::open(&old_copy, LedgerOptions::new(signer())).unwrap();
    for i in 0..10 {
        forked
            .append_blocking(draft(Some("fork"), 100 + i))
            .unwrap();
    }
    drop(forked);
    let forked = LedgerReader::open(&old_copy).unwrap();
    assert!(matches!(
        verify_receipt_against(&receipt, later[2].entry(), &verifier, &forked),
        Err(ReceiptError::Inconsistent { .. })
    ));
}

#[test]
fn verifying_a_live_ledger_reports_no_false_failures() {
    let dir = TempDir::new("live");
    let mut opts = LedgerOptions::new(signer());
    opts.segment_bytes = 32 << 10;
    let ledger = Arc::new(Ledger::open(&dir.ledger(), opts).unwrap());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..4u64)
        .map(|t| {
            let (ledger, stop) = (ledger.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 2_000 {
                    ledger.append_blocking(draft(session_of(t), n)).unwrap();
                    n += 1;
                }
            })
        })
        .collect();
    let opts = VerifyOptions::new(signer().verifier());
    let mut last = 0;
    for _ in 0..20 {
        let report = verify_ledger(&dir.ledger(), &opts).unwrap();
        assert!(report.is_intact(), "{:?}", report.failure);
        assert!(report.verified_size >= last);
        last = report.verified_size;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    drop(ledger);
    let report = verify_ledger(&dir.ledger(), &opts).unwrap();
    assert!(report.is_intact(), "{:?}", report.failure);
    assert_eq!(report.uncommitted_entries, 0);
}

#[test]
fn a_deleted_segment_is_named() {
    let dir = TempDir::new("segment-gone");
    let mut opts = LedgerOptions::new(signer());
    opts.segment_bytes = 4 << 10;
    sequential_ledger(&dir.ledger(), 60, opts);
    let mut segments: Vec<_> = std::fs::read_dir(dir.ledger().join("segments"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    segments.sort();
    assert!(segments.len() >= 4, "{segments:?}");
    let victim = &segments[1];
    let first: u64 = victim.trim_end_matches(".seg").parse().unwrap();
    std::fs::remove_file(dir.ledger().join("segments").join(victim)).unwrap();
    let report = verify_ledger(&dir.ledger(), &VerifyOptions::new(signer().verifier())).unwrap();
    let failure = report.failure.unwrap();
    assert_eq!(failure.index, first);
    assert_eq!(failure.kind, warden_ledger::FailureKind::Deleted);
    // And the ledger refuses to append on top of the hole.
    assert!(Ledger::open(&dir.ledger(), LedgerOptions::new(signer())).is_err());
}
