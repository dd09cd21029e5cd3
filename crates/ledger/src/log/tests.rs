use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use serde_json::json;

use super::writer::FaultPoint;
use super::*;
use crate::tree::{leaf_hash, verify_consistency};

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "warden-ledger-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn signer() -> NoteSigner {
    NoteSigner::from_seed("warden.local/test", [7u8; 32]).unwrap()
}

fn draft(session: Option<&str>, n: u64) -> EntryDraft {
    let body = json!({"kind": "test", "n": n, "text": format!("entry number {n}")});
    EntryDraft::new(
        session.map(str::to_owned),
        body.as_object().unwrap().clone(),
    )
}

fn parse(entry: &[u8]) -> Value {
    serde_json::from_slice(entry).unwrap()
}

#[test]
fn appends_chain_sessions_and_survive_reopen() {
    let dir = TempDir::new("basic");
    let verifier = signer().verifier();
    let mut receipts = Vec::new();
    {
        let ledger = Ledger::open(dir.path(), LedgerOptions::new(signer())).unwrap();
        assert!(ledger.recovery().created);
        assert_eq!(ledger.size(), 0);
        assert!(ledger.latest_checkpoint().is_none());
        let sessions = [Some("a"), None, Some("a"), Some("b"), None, Some("a")];
        for (n, s) in sessions.iter().enumerate() {
            let appended = ledger.append_blocking(draft(*s, n as u64)).unwrap();
            assert_eq!(appended.index(), n as u64);
            assert_eq!(appended.leaf_hash(), leaf_hash(appended.entry()));
            assert_eq!(appended.checkpoint().size(), n as u64 + 1);
            appended
                .receipt()
                .verify(appended.entry(), &verifier)
                .unwrap();
            receipts.push(appended);
        }
        // prev chains: a: 0 <- 2 <- 5; none: 1 <- 4; b: 3.
        let prev = |i: usize| parse(receipts[i].entry())["prev"].clone();
        let hex = |i: usize| json!(receipts[i].leaf_hash().to_hex());
        assert_eq!(prev(0), Value::Null);
        assert_eq!(prev(1), Value::Null);
        assert_eq!(prev(2), hex(0));
        assert_eq!(prev(3), Value::Null);
        assert_eq!(prev(4), hex(1));
        assert_eq!(prev(5), hex(2));
        assert_eq!(parse(receipts[1].entry())["session"], Value::Null);
        assert_eq!(parse(receipts[3].entry())["session"], json!("b"));
        // The bytes are canonical.
        let v = parse(receipts[5].entry());
        assert_eq!(crate::jcs::canonicalize(&v).unwrap(), receipts[5].entry());
        ledger.close().unwrap();
    }
    let ledger = Ledger::open(dir.path(), LedgerOptions::new(signer())).unwrap();
    let report = ledger.recovery().clone();
    assert!(!report.created);
    assert_eq!(report.size, 6);
    assert_eq!(report.truncated_bytes, 0);
    for r in &receipts {
        assert_eq!(ledger.entry(r.index()).unwrap(), r.entry());
        ledger
            .prove(r.index())
            .unwrap()
            .verify(r.entry(), &verifier)
            .unwrap();
    }
    // The session chain continues across the reopen.
    let next = ledger.append_blocking(draft(Some("b"), 6)).unwrap();
    assert_eq!(
        parse(next.entry())["prev"],
        json!(receipts[3].leaf_hash().to_hex())
    );
    let all: Vec<_> = ledger.iter(0).unwrap().map(Result::unwrap).collect();
    assert_eq!(all.len(), 7);
    assert_eq!(all[6].1, next.entry());
    let from4: Vec<u64> = ledger.iter(4).unwrap().map(|r| r.unwrap().0).collect();
    assert_eq!(from4, vec![4, 5, 6]);
}

#[test]
fn concurrent_appends_get_distinct_indexes_and_valid_receipts() {
    let dir = TempDir::new("concurrent");
    let mut opts = LedgerOptions::new(signer());
    opts.batch_max_entries = 16;
    opts.segment_bytes = 16 << 10; // force many segments
    let ledger = Arc::new(Ledger::open(dir.path(), opts).unwrap());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let ledger = ledger.clone();
            std::thread::spawn(move || {
                (0..50)
                    .map(|n| {
                        let session = format!("s{}", t % 3);
                        ledger.append_blocking(draft(Some(&session), n)).unwrap()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all: Vec<Appended> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    all.sort_by_key(Appended::index);
    assert_eq!(all.len(), 400);
    let verifier = signer().verifier();
    for (i, a) in all.iter().enumerate() {
        assert_eq!(a.index(), i as u64);
        a.receipt().verify(a.entry(), &verifier).unwrap();
        assert_eq!(ledger.entry(a.index()).unwrap(), a.entry());
    }
    assert!(ledger.reader().view().segments.len() > 3, "rolled segments");
    // Every checkpoint is consistent with the latest one.
    let latest = ledger.latest_checkpoint().unwrap();
    let mut count = 0;
    for cp in ledger.checkpoints().unwrap() {
        let cp = cp.unwrap();
        let proof = ledger.consistency(cp.size(), latest.size()).unwrap();
        verify_consistency(cp.size(), latest.size(), &cp.root(), &latest.root(), &proof).unwrap();
        count += 1;
    }
    assert!((25..=400).contains(&count), "{count} checkpoints");
    drop(ledger);
    // Reopen across the segments: nothing rescanned beyond the last segment.
    let ledger = Ledger::open(dir.path(), LedgerOptions::new(signer())).unwrap();
    assert_eq!(ledger.size(), 400);
    assert!(ledger.recovery().rescanned_entries < 400);
    assert_eq!(ledger.iter(0).unwrap().count(), 400);
}

#[test]
fn invalid_drafts_are_refused_before_queueing() {
    let dir = TempDir::new("invalid");
    let mut opts = LedgerOptions::new(signer());
    opts.max_entry_bytes = 1024;
    let ledger = Ledger::open(dir.path(), opts).unwrap();
    for key in RESERVED_KEYS {
        let mut d = draft(None, 0);
        d.body.insert(key.into(), json!(1));
        assert!(matches!(
            ledger.append_blocking(d),
            Err(LedgerError::InvalidEntry(_))
        ));
    }
    let mut big = draft(None, 0);
    big.body
        .insert("ns".into(), json!(1_700_000_000_000_000_000u64));
    assert!(matches!(
        ledger.append_blocking(big),
        Err(LedgerError::InvalidEntry(_))
    ));
    let mut huge = draft(None, 0);
    huge.body.insert("x".into(), json!("y".repeat(2000)));
    assert!(matches!(
        ledger.append_blocking(huge),
        Err(LedgerError::InvalidEntry(_))
    ));
    assert!(ledger.is_healthy());
    assert_eq!(ledger.append_blocking(draft(None, 1)).unwrap().index(), 0);
}

#[test]
fn torn_final_record_is_cut_on_reopen() {
    let dir = TempDir::new("torn");
    {
        let ledger = Ledger::open(dir.path(), LedgerOptions::new(signer())).unwrap();
        for n in 0..5 {
            ledger.append_blocking(draft(Some("s"), n)).unwrap();
        }
    }
    let seg = segment_path(dir.path(), 0);
    let clean_len = std::fs::metadata(&seg).unwrap().len();
    // A complete entry record with no checkpoint after it (an unacknowledged batch), then half
    // of another record.
    let mut tail = Vec::new();
    format::push_record(
        &mut tail,
        ENTRY,
        br#"{"index":5,"prev":null,"session":null}"#,
    );
    let mut partial = Vec::new();
    format::push_record(
        &mut partial,
        ENTRY,
        br#"{"index":6,"prev":null,"session":null}"#,
    );
    tail.extend_from_slice(&partial[..partial.len() / 2]);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&seg)
        .unwrap()
        .write_all(&tail)
        .unwrap();
    let ledger = Ledger::open(dir.path(), LedgerOptions::new(signer())).unwrap();
    let report = ledger.recovery();
    assert_eq!(report.size, 5);
    assert_eq!(report.truncated_bytes, tail.len() as u64);
    assert_eq!(report.dropped_entries, 1);
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), clean_len);
    let next = ledger.append_blocking(draft(Some("s"), 5)).unwrap();
    assert_eq!(next.index(), 5);
    drop(ledger);

    // Zeros at the end (a file extended but never written) are cut too.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&seg)
        .unwrap()
        .write_all(&[0u8; 4096])
        .unwrap();
    let ledger = Ledger::open(dir.path(), LedgerOptions::new(signer())).unwrap();
    assert_eq!(ledger.recovery().truncated_bytes, 4096);
    assert_eq!(ledger.size(), 6);
}

#[test]
fn damaged_committed_record_refuses_to_open() {
    let dir = TempDir::new("damaged");
    {
        let ledger = Ledger::open(dir.path(), LedgerOptions::new(signer())).unwrap();
        for n in 0..5 {
            ledger.append_blocking(draft(None, n)).unwrap();
        }
    }
    // Flip a byte inside entry 1 (committed, followed by later batches).
    let seg = segment_path(dir.path(), 0);
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = bytes
        .windows(13)
        .position(|w| w == b"entry number ")
        .unwrap();
    let second = at
        + 13
        + bytes[at + 13..]
            .windows(13)
            .position(|w| w == b"entry number ")
            .unwrap();
    bytes[second] ^= 1;
    std::fs::write(&seg, &bytes).unwrap();
    assert!(matches!(
        Ledger::open(dir.path(), LedgerOptions::new(signer())),
        Err(LedgerError::Corrupt(_))
    ));
}

#[test]
fn write_failure_fails_the_whole_batch_and_then_everything() {
    let dir = TempDir::new("fault");
    let syncs = Arc::new(AtomicUsize::new(0));
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let gate_rx = Arc::new(std::sync::Mutex::new(gate_rx));
    let hook = {
        let syncs = syncs.clone();
        writer::FaultHook(Arc::new(move |point| {
            if point != FaultPoint::SegmentSync {
                return Ok(());
            }
            match syncs.fetch_add(1, Ordering::SeqCst) {
                // Hold the first batch's sync until the test has queued the next batch.
                0 => {
                    gate_rx.lock().unwrap().recv().unwrap();
                    Ok(())
                }
                1 => Err(io::Error::other("injected fdatasync failure")),
                _ => Ok(()),
            }
        }))
    };
    let mut opts = LedgerOptions::new(signer());
    opts.batch_max_entries = 1000;
    opts.fault = Some(hook);
    let ledger = Arc::new(Ledger::open(dir.path(), opts).unwrap());
    let first = {
        let ledger = ledger.clone();
        std::thread::spawn(move || ledger.append_blocking(draft(None, 0)))
    };
    while syncs.load(Ordering::SeqCst) == 0 {
        std::thread::yield_now();
    }
    // The writer is inside batch 1's sync; these 20 queue up and form batch 2.
    let (tx, rx) = mpsc::channel();
    for n in 1..=20 {
        let tx = tx.clone();
        ledger.append(draft(Some("x"), n), move |r| tx.send(r).unwrap());
    }
    gate_tx.send(()).unwrap();
    assert_eq!(first.join().unwrap().unwrap().index(), 0);
    let results: Vec<_> = (0..20).map(|_| rx.recv().unwrap()).collect();
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Err(LedgerError::Io { .. }))),
        "{results:?}"
    );
    assert!(!ledger.is_healthy());
    assert!(matches!(
        ledger.append_blocking(draft(None, 99)),
        Err(LedgerError::Unavailable { .. })
    ));
    assert_eq!(ledger.size(), 1);
    drop(ledger);
    // Restart: recovery keeps the acknowledged entry. (The failed batch's bytes reached the page
    // cache, so it may survive as a recorded-but-never-released batch; that is fail-closed.)
    let ledger = Ledger::open(dir.path(), LedgerOptions::new(signer())).unwrap();
    assert!(ledger.is_healthy());
    assert!(ledger.size() == 1 || ledger.size() == 21);
    ledger.append_blocking(draft(None, 100)).unwrap();
}

#[test]
fn a_second_writer_is_locked_out() {
    let dir = TempDir::new("lock");
    let _ledger = Ledger::open(dir.path(), LedgerOptions::new(signer())).unwrap();
    assert!(matches!(
        Ledger::open(dir.path(), LedgerOptions::new(signer())),
        Err(LedgerError::Locked(_))
    ));
}

#[test]
fn the_wrong_key_is_refused() {
    let dir = TempDir::new("wrongkey");
    {
        let ledger = Ledger::open(dir.path(), LedgerOptions::new(signer())).unwrap();
        ledger.append_blocking(draft(None, 0)).unwrap();
    }
    let other = NoteSigner::from_seed("warden.local/test", [8u8; 32]).unwrap();
    assert!(matches!(
        Ledger::open(dir.path(), LedgerOptions::new(other)),
        Err(LedgerError::Corrupt(_))
    ));
}

#[test]
fn derived_files_are_rebuilt_when_lost() {
    let dir = TempDir::new("rebuild");
    let mut opts = LedgerOptions::new(signer());
    opts.segment_bytes = 4 << 10;
    let mut last = None;
    {
        let ledger = Ledger::open(dir.path(), opts.clone()).unwrap();
        for n in 0..60 {
            last = Some(ledger.append_blocking(draft(Some("s"), n)).unwrap());
        }
    }
    for name in [
        format::HASHES_FILE,
        format::OFFSETS_FILE,
        format::MANIFEST_FILE,
    ] {
        std::fs::remove_file(dir.path().join(name)).unwrap();
    }
    let ledger = Ledger::open(dir.path(), opts).unwrap();
    assert_eq!(ledger.recovery().rescanned_entries, 60);
    assert_eq!(ledger.size(), 60);
    let last = last.unwrap();
    assert_eq!(
        ledger.latest_checkpoint().unwrap().root(),
        last.checkpoint().root()
    );
    let next = ledger.append_blocking(draft(Some("s"), 60)).unwrap();
    assert_eq!(
        parse(next.entry())["prev"],
        json!(last.leaf_hash().to_hex())
    );
}

#[test]
fn truncation_below_a_surviving_checkpoint_refuses_to_open() {
    let dir = TempDir::new("truncated");
    let anchor_dir = TempDir::new("truncated-anchor");
    std::fs::create_dir_all(anchor_dir.path()).unwrap();
    let anchor = anchor_dir.path().join("anchor");
    let mut opts = LedgerOptions::new(signer());
    opts.anchor = Some(anchor.clone());
    let mut cut_at = 0;
    {
        let ledger = Ledger::open(dir.path(), opts.clone()).unwrap();
        for n in 0..10 {
            ledger.append_blocking(draft(None, n)).unwrap();
            if n == 5 {
                cut_at = std::fs::metadata(segment_path(dir.path(), 0))
                    .unwrap()
                    .len();
            }
        }
    }
    // Cut the segment at a batch boundary: the log itself still looks whole.
    let seg = segment_path(dir.path(), 0);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(cut_at)
        .unwrap();
    match Ledger::open(dir.path(), opts.clone()) {
        Err(LedgerError::Truncated {
            size: 6,
            witnessed: 7,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    // Even with the checkpoints file cut too, the anchor remembers.
    let cps = dir.path().join(CHECKPOINTS_FILE);
    let end = recover_cursor_end(&cps, 6);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&cps)
        .unwrap()
        .set_len(end)
        .unwrap();
    match Ledger::open(dir.path(), opts) {
        Err(LedgerError::Truncated {
            size: 6,
            witnessed: 10,
            source_file,
        }) => assert!(source_file.ends_with("anchor")),
        other => panic!("{other:?}"),
    }
}

/// The byte offset just past the checkpoint of size `size` in a checkpoints file.
fn recover_cursor_end(path: &Path, size: u64) -> u64 {
    let file = std::fs::File::open(path).unwrap();
    use std::io::Seek as _;
    let mut file = file;
    file.seek(std::io::SeekFrom::Start(CHECKPOINTS_HEADER_LEN))
        .unwrap();
    let mut records = RecordReader::new(file, CHECKPOINTS_HEADER_LEN);
    let mut payload = Vec::new();
    while let Ok(Some(meta)) = records.next(&mut payload) {
        let cp =
            SignedCheckpoint::parse_unverified(std::str::from_utf8(&payload).unwrap()).unwrap();
        if cp.size() == size {
            return meta.end(payload.len());
        }
    }
    panic!("no checkpoint of size {size}");
}

#[test]
fn a_reader_follows_the_live_ledger() {
    let dir = TempDir::new("reader");
    let ledger = Ledger::open(dir.path(), LedgerOptions::new(signer())).unwrap();
    ledger.append_blocking(draft(None, 0)).unwrap();
    let reader = LedgerReader::open(dir.path()).unwrap();
    assert_eq!(reader.size(), 1);
    let a = ledger.append_blocking(draft(None, 1)).unwrap();
    assert_eq!(reader.size(), 1);
    reader.refresh().unwrap();
    assert_eq!(reader.size(), 2);
    assert_eq!(reader.entry(1).unwrap(), a.entry());
    assert_eq!(reader.leaf_hash(1).unwrap(), a.leaf_hash());
    assert_eq!(reader.root_at(2).unwrap(), a.checkpoint().root());
    assert_eq!(reader.checkpoints().unwrap().count(), 2);
    assert!(matches!(
        reader.entry(2),
        Err(LedgerError::OutOfRange { index: 2, size: 2 })
    ));
}

#[test]
fn large_floats_and_odd_strings_round_trip_through_verify() {
    let dir = TempDir::new("floats");
    let ledger = Ledger::open(dir.path(), LedgerOptions::new(signer())).unwrap();
    let body = json!({
        "big": 1.0e17,
        "neg": -1.0350730343821558e16,
        "tiny": 1e-7,
        "pi": std::f64::consts::PI,
        "text": "tab\t, nul\u{0}, quote\", emoji 😀, \u{2028}",
        "nested": {"€": [1, {"z": null, "a": false}]},
    });
    let session = Some("sess\"ion\n😀".to_owned());
    let a = ledger
        .append_blocking(EntryDraft::new(
            session.clone(),
            body.as_object().unwrap().clone(),
        ))
        .unwrap();
    let b = ledger
        .append_blocking(EntryDraft::new(session, Map::new()))
        .unwrap();
    assert_eq!(parse(b.entry())["prev"], json!(a.leaf_hash().to_hex()));
    ledger.close().unwrap();
    let report = crate::verify::verify_ledger(
        dir.path(),
        &crate::verify::VerifyOptions::new(signer().verifier()),
    )
    .unwrap();
    assert!(report.is_intact(), "{:?}", report.failure);
    // Reopening re-reads the same entries through recovery's checks.
    let ledger = Ledger::open(dir.path(), LedgerOptions::new(signer())).unwrap();
    assert_eq!(ledger.size(), 2);
}

#[test]
fn lost_checkpoint_copies_are_restored_from_the_segments() {
    let dir = TempDir::new("restore");
    let anchor_dir = TempDir::new("restore-anchor");
    std::fs::create_dir_all(anchor_dir.path()).unwrap();
    let mut opts = LedgerOptions::new(signer());
    opts.anchor = Some(anchor_dir.path().join("anchor"));
    {
        let ledger = Ledger::open(dir.path(), opts.clone()).unwrap();
        for n in 0..8 {
            ledger.append_blocking(draft(None, n)).unwrap();
        }
    }
    // A power loss took the unsynced tails of `checkpoints` and the anchor (and left garbage).
    let cps = dir.path().join(CHECKPOINTS_FILE);
    let keep = recover_cursor_end(&cps, 3);
    let anchor = anchor_dir.path().join("anchor");
    let anchor_keep = recover_cursor_end(&anchor, 5);
    for (path, len) in [(&cps, keep), (&anchor, anchor_keep)] {
        let f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
        f.set_len(len).unwrap();
        (&f).write_all(&[0u8; 100]).unwrap();
    }
    let ledger = Ledger::open(dir.path(), opts.clone()).unwrap();
    assert_eq!(ledger.recovery().restored_checkpoints, 5);
    assert_eq!(ledger.size(), 8);
    assert_eq!(ledger.checkpoints().unwrap().count(), 8);
    drop(ledger);
    let mut vopts = crate::verify::VerifyOptions::new(signer().verifier());
    vopts.anchor = opts.anchor.clone();
    let report = crate::verify::verify_ledger(dir.path(), &vopts).unwrap();
    assert!(report.is_intact(), "{:?}", report.failure);
    assert_eq!(report.checkpoints_file_checked, 8);
    // The anchor kept sizes 1..=5 and was caught up with the latest (8).
    assert_eq!(report.anchor_checked, 6);
}

/// A fault hook that counts segment syncs and fails them while `fail` is set.
fn sync_counter(fail: Arc<std::sync::atomic::AtomicBool>) -> (writer::FaultHook, Arc<AtomicUsize>) {
    let syncs = Arc::new(AtomicUsize::new(0));
    let counted = syncs.clone();
    let hook = writer::FaultHook(Arc::new(move |point| {
        if point != FaultPoint::SegmentSync {
            return Ok(());
        }
        counted.fetch_add(1, Ordering::SeqCst);
        if fail.load(Ordering::SeqCst) {
            return Err(io::Error::other("injected fdatasync failure"));
        }
        Ok(())
    }));
    (hook, syncs)
}

/// Options for `Durability::Write` with `sync_interval`, syncs watched by `hook`.
fn write_mode(sync_interval: Duration, hook: writer::FaultHook) -> LedgerOptions {
    let mut opts = LedgerOptions::new(signer());
    opts.durability = Durability::Write { sync_interval };
    opts.fault = Some(hook);
    opts
}

fn checkpoint_copies(dir: &Path) -> u64 {
    std::fs::metadata(dir.join(CHECKPOINTS_FILE)).unwrap().len() - CHECKPOINTS_HEADER_LEN
}

/// Polls `done` (bounded: 1,000 × 10 ms) and reports whether it came true.
fn eventually(done: impl Fn() -> bool) -> bool {
    (0..1000).any(|_| {
        if done() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
        false
    })
}

#[test]
fn write_durability_answers_before_the_sync_and_copies_checkpoints_only_after_it() {
    let dir = TempDir::new("write-mode");
    let (hook, syncs) = sync_counter(Arc::default());
    let opts = write_mode(Duration::from_secs(3600), hook);
    let ledger = Ledger::open(dir.path(), opts).unwrap();
    let receipts: Vec<_> = (0..5)
        .map(|n| ledger.append_blocking(draft(Some("s"), n)).unwrap())
        .collect();
    // Answered, readable and provable, but not yet synced, so not copied or published as durable.
    assert_eq!(syncs.load(Ordering::SeqCst), 0);
    assert_eq!(ledger.size(), 5);
    assert_eq!(ledger.entry(4).unwrap(), receipts[4].entry());
    assert!(ledger.durable_checkpoint().is_none());
    assert_eq!(checkpoint_copies(dir.path()), 0);
    assert_eq!(ledger.checkpoints().unwrap().count(), 0);
    // Closing syncs them and then copies every checkpoint.
    ledger.close().unwrap();
    assert_eq!(syncs.load(Ordering::SeqCst), 1);
    let ledger = Ledger::open(dir.path(), LedgerOptions::new(signer())).unwrap();
    assert_eq!(ledger.size(), 5);
    assert_eq!(ledger.checkpoints().unwrap().count(), 5);
    assert_eq!(ledger.durable_checkpoint().unwrap().size(), 5);
    drop(ledger);
    let report = crate::verify::verify_ledger(
        dir.path(),
        &crate::verify::VerifyOptions::new(signer().verifier()),
    )
    .unwrap();
    assert!(report.is_intact(), "{:?}", report.failure);
    let vkey = signer().verifier().to_vkey();
    for r in &receipts {
        crate::verify::verify_receipt(&r.receipt_text(), r.entry(), &vkey).unwrap();
    }
}

#[test]
fn write_durability_syncs_an_idle_ledger_when_the_interval_ends_and_a_busy_one_per_interval() {
    let dir = TempDir::new("write-idle");
    let (hook, syncs) = sync_counter(Arc::default());
    let opts = write_mode(Duration::from_millis(20), hook);
    let ledger = Ledger::open(dir.path(), opts).unwrap();
    let first = ledger.append_blocking(draft(None, 0)).unwrap();
    // Nothing else arrives: the writer wakes for the due sync by itself.
    assert!(eventually(|| ledger.durable_checkpoint().is_some()));
    assert_eq!(syncs.load(Ordering::SeqCst), 1);
    assert_eq!(ledger.durable_checkpoint().unwrap().size(), 1);
    assert_eq!(
        ledger.durable_checkpoint().unwrap().note(),
        first.checkpoint().note()
    );
    assert_eq!(ledger.checkpoints().unwrap().count(), 1);
    drop(ledger);

    // A zero interval syncs every batch before answering it: `fsync` behaviour, answered the
    // same way.
    let dir = TempDir::new("write-zero");
    let (hook, syncs) = sync_counter(Arc::default());
    let opts = write_mode(Duration::ZERO, hook);
    let ledger = Ledger::open(dir.path(), opts).unwrap();
    for n in 0..3 {
        let a = ledger.append_blocking(draft(None, n)).unwrap();
        assert_eq!(ledger.durable_checkpoint().unwrap().size(), a.index() + 1);
    }
    assert_eq!(syncs.load(Ordering::SeqCst), 3);
    assert!(checkpoint_copies(dir.path()) > 0);
}

#[test]
fn a_failed_deferred_sync_fails_the_ledger_closed() {
    let dir = TempDir::new("write-fail");
    let fail = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (hook, syncs) = sync_counter(fail.clone());
    let opts = write_mode(Duration::from_millis(10), hook);
    let ledger = Ledger::open(dir.path(), opts).unwrap();
    // Answered before its sync, which then fails.
    ledger.append_blocking(draft(None, 0)).unwrap();
    assert!(eventually(|| !ledger.is_healthy()));
    assert_eq!(syncs.load(Ordering::SeqCst), 1);
    assert!(ledger.durable_checkpoint().is_none());
    assert_eq!(checkpoint_copies(dir.path()), 0);
    let err = ledger.append_blocking(draft(None, 1)).unwrap_err();
    assert!(matches!(err, LedgerError::Unavailable { .. }), "{err:?}");
    assert!(
        err.to_string().contains("injected fdatasync failure"),
        "{err}"
    );
    drop(ledger);
    // The written batch reached the page cache, so a restart keeps it and restores its copy.
    let ledger = Ledger::open(dir.path(), LedgerOptions::new(signer())).unwrap();
    assert!(ledger.is_healthy());
    assert_eq!(ledger.size(), 1);
    assert_eq!(ledger.checkpoints().unwrap().count(), 1);
}
