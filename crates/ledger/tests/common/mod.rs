//! Shared helpers for the integration tests: temporary directories, a ledger filled with known
//! entries, and a small independent reader/writer of the on-disk record format (written from
//! docs/ledger.md, so the tests also check that the document is enough to handle the files).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use warden_ledger::log::{EntryDraft, Ledger, LedgerOptions};
use warden_ledger::note::NoteSigner;

/// A directory under the integration-test scratch area, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "ledger-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn ledger(&self) -> PathBuf {
        self.0.join("ledger")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn signer() -> NoteSigner {
    NoteSigner::from_seed("warden.local/it", [42u8; 32]).unwrap()
}

pub fn draft(session: Option<&str>, n: u64) -> EntryDraft {
    let body = json!({
        "kind": "exchange",
        "n": n,
        "route": "/v1/chat/completions",
        "usage": {"input_tokens": n * 3, "output_tokens": n * 5},
    });
    EntryDraft::new(
        session.map(str::to_owned),
        body.as_object().unwrap().clone(),
    )
}

/// Sessions cycle a, b, none, c so that every entry but the first few has a successor in its
/// session.
pub fn session_of(n: u64) -> Option<&'static str> {
    [Some("a"), Some("b"), None, Some("c")][(n % 4) as usize]
}

/// A ledger of `n` entries appended one at a time (so every batch, and every checkpoint, covers
/// exactly one entry).
pub fn sequential_ledger(dir: &Path, n: u64, opts: LedgerOptions) {
    let ledger = Ledger::open(dir, opts).unwrap();
    for i in 0..n {
        ledger.append_blocking(draft(session_of(i), i)).unwrap();
    }
    ledger.close().unwrap();
}

// ---- the record format, per docs/ledger.md ----

pub const ENTRY: u8 = 1;
pub const CHECKPOINT: u8 = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub kind: u8,
    pub payload: Vec<u8>,
}

impl Record {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.payload).unwrap()
    }
}

pub fn leaf_hash(payload: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(payload);
    h.finalize().into()
}

pub fn encode(record: &Record) -> Vec<u8> {
    let len = (record.payload.len() as u32).to_le_bytes();
    let mut b = vec![record.kind];
    b.extend_from_slice(&len);
    b.extend_from_slice(&leaf_hash(&record.payload));
    b.extend_from_slice(&record.payload);
    b.extend_from_slice(&len);
    b
}

/// Splits a segment or checkpoints file into its header and records.
pub fn read_file(path: &Path, header_len: usize) -> (Vec<u8>, Vec<Record>) {
    let bytes = std::fs::read(path).unwrap();
    let (header, mut rest) = bytes.split_at(header_len);
    let mut records = Vec::new();
    while !rest.is_empty() {
        let kind = rest[0];
        let len = u32::from_le_bytes(rest[1..5].try_into().unwrap()) as usize;
        let payload = rest[37..37 + len].to_vec();
        assert_eq!(&rest[5..37], &leaf_hash(&payload), "check hash");
        records.push(Record { kind, payload });
        rest = &rest[41 + len..];
    }
    (header.to_vec(), records)
}

pub fn write_file(path: &Path, header: &[u8], records: &[Record]) {
    let mut bytes = header.to_vec();
    for r in records {
        bytes.extend_from_slice(&encode(r));
    }
    std::fs::write(path, bytes).unwrap();
}

pub fn segment0(ledger: &Path) -> PathBuf {
    ledger.join("segments").join(format!("{:020}.seg", 0))
}

/// The position in `records` of the entry with this index.
pub fn entry_pos(records: &[Record], index: u64) -> usize {
    records
        .iter()
        .position(|r| r.kind == ENTRY && r.json()["index"] == json!(index))
        .unwrap()
}

/// The canonical bytes of a JSON value.
pub fn to_bytes(v: &Value) -> Vec<u8> {
    warden_ledger::jcs::canonicalize(v).unwrap()
}
