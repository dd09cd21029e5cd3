//! The batch observer (`LedgerOptions::observer`) is told about every committed batch, with
//! counts that add up to what was appended — the gateway's ledger metrics depend on it.

mod common;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::*;
use warden_ledger::log::{BatchObserver, BatchStats, Ledger, LedgerOptions};

#[derive(Default)]
struct Counting {
    batches: AtomicUsize,
    entries: AtomicUsize,
    bytes: AtomicU64,
    /// Every batch's stats, in the order the writer reported them.
    seen: Mutex<Vec<BatchStats>>,
}

impl BatchObserver for Counting {
    fn batch_committed(&self, stats: &BatchStats) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.entries.fetch_add(stats.entries, Ordering::Relaxed);
        self.bytes.fetch_add(stats.bytes, Ordering::Relaxed);
        self.seen.lock().unwrap().push(*stats);
    }
}

#[test]
fn observer_sees_every_committed_entry() {
    const THREADS: u64 = 4;
    const PER_THREAD: u64 = 50;
    const N: u64 = THREADS * PER_THREAD;

    let dir = TempDir::new("observer");
    let observer = Arc::new(Counting::default());
    let mut opts = LedgerOptions::new(signer());
    opts.batch_max_entries = 16;
    opts.observer = Some(observer.clone());
    let ledger = Arc::new(Ledger::open(&dir.ledger(), opts).unwrap());

    // Several threads, so batches of more than one entry happen too.
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let ledger = ledger.clone();
            std::thread::spawn(move || {
                for i in 0..PER_THREAD {
                    let n = t * PER_THREAD + i;
                    ledger.append_blocking(draft(session_of(n), n)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // Every append has been answered, and the observer runs before the answers: nothing is
    // still in flight.
    assert_eq!(observer.entries.load(Ordering::Relaxed) as u64, N);
    assert!(observer.bytes.load(Ordering::Relaxed) > 0);

    let seen = observer.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), observer.batches.load(Ordering::Relaxed));
    // Batches are reported in commit order, each with the tree size it produced.
    let mut size = 0u64;
    for stats in &seen {
        assert!(stats.entries >= 1 && stats.entries <= 16, "{stats:?}");
        assert!(stats.bytes > 0, "{stats:?}");
        size += stats.entries as u64;
        assert_eq!(stats.tree_size, size, "{stats:?}");
    }
    assert_eq!(size, N);
    assert_eq!(ledger.size(), N);

    Arc::into_inner(ledger).unwrap().close().unwrap();
}

#[test]
fn no_observer_is_the_default() {
    let opts = LedgerOptions::new(signer());
    assert!(opts.observer.is_none());
    // Debug is hand-written (the observer has none): it still prints the options.
    assert!(format!("{opts:?}").contains("observer: None"));
}
