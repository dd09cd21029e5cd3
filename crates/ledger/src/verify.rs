//! Offline verification of a whole ledger directory, and of receipts.
//!
//! This module is the auditor's check. Given only the files and the log's verifier key, it
//! re-derives everything in one streaming pass in constant memory (plus one small entry per
//! session): every record's framing, every entry's canonical form, index continuity, every
//! session's `prev` chain, the Merkle root at every embedded checkpoint, every checkpoint's
//! signature, and the checkpoints file and an optional anchor against the recomputed tree. It
//! never trusts the derived files (`tree.hashes`, `entries.offsets`, `manifest`) and never
//! writes. It stops at the first failure and names the first bad index.
//!
//! What each failure means is in [`FailureKind`]. A checkpoint-level failure is located at the
//! first index of the batch that checkpoint covers: with a batch of one entry, that is the
//! entry itself; with larger batches the verifier knows only that the batch differs from what
//! was signed.
//!
//! Not failures: entries after the last checkpoint (an unfinished batch, never acknowledged) and
//! a torn record at the very end of the last segment (a crash mid-write). Both are reported, and
//! the next [`Ledger::open`](crate::log::Ledger::open) cuts them.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{self, Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::checkpoint::{Checkpoint, SignedCheckpoint};
use crate::log::{
    CHECKPOINT, CHECKPOINTS_FILE, CHECKPOINTS_HEADER_LEN, CHECKPOINTS_MAGIC, ENTRY, LedgerReader,
    RecordFault, RecordReader, SEGMENT_HEADER_LEN, SEGMENT_MAGIC, SessionKey, entry_fields,
    list_segments, segment_path, session_key,
};
use crate::note::{NoteError, NoteVerifier};
use crate::receipt::{Receipt, ReceiptError};
use crate::tree::{Frontier, Hash, verify_consistency};

/// What to verify a ledger against.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VerifyOptions {
    /// The log's verifier key; its name is the expected checkpoint origin.
    pub verifier: NoteVerifier,
    /// A file of anchored checkpoints (the `anchor` the ledger was configured with, or a copy).
    pub anchor: Option<PathBuf>,
}

impl VerifyOptions {
    /// Verify against `verifier`, without an anchor.
    pub fn new(verifier: NoteVerifier) -> VerifyOptions {
        VerifyOptions {
            verifier,
            anchor: None,
        }
    }

    /// Verify against a verifier key string (`name+hexid+base64`).
    pub fn from_vkey(vkey: &str) -> Result<VerifyOptions, NoteError> {
        Ok(VerifyOptions::new(NoteVerifier::from_vkey(vkey)?))
    }
}

/// Why the verifier could not run at all (as opposed to finding the ledger bad).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The directory holds no ledger segments.
    #[error("{0} is not a ledger directory (no segments)")]
    NotALedger(PathBuf),
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

/// The kind of the first problem found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureKind {
    /// An entry's bytes changed: its record check hash, canonical form or content no longer match
    /// what was signed (or a session's next entry names a different hash for it).
    Edited,
    /// Entries are missing from the sequence.
    Deleted,
    /// A record claims an index that was already used: an entry was inserted or duplicated.
    Inserted,
    /// Entries are out of order.
    Reordered,
    /// The log holds fewer entries than a surviving checkpoint (checkpoints file or anchor) covers.
    Truncated,
    /// A checkpoint's signature does not verify with the log's key, or it names another origin.
    BadSignature,
    /// Two validly signed checkpoints cannot both describe this log (a fork or a forged root).
    InconsistentCheckpoints,
    /// An entry's `prev` does not continue its session's chain.
    BrokenChain,
    /// The files are damaged so that records cannot be read (framing, headers, segment order).
    Malformed,
}

impl FailureKind {
    /// A short lowercase name (`edited`, `deleted`, ...), for machine output.
    pub fn as_str(&self) -> &'static str {
        match self {
            FailureKind::Edited => "edited",
            FailureKind::Deleted => "deleted",
            FailureKind::Inserted => "inserted",
            FailureKind::Reordered => "reordered",
            FailureKind::Truncated => "truncated",
            FailureKind::BadSignature => "bad_signature",
            FailureKind::InconsistentCheckpoints => "inconsistent_checkpoints",
            FailureKind::BrokenChain => "broken_chain",
            FailureKind::Malformed => "malformed",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyFailure {
    /// The first bad index.
    pub index: u64,
    /// What is wrong.
    pub kind: FailureKind,
    /// A sentence for humans.
    pub detail: String,
}

impl fmt::Display for VerifyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "entry {}: {}: {}", self.index, self.kind, self.detail)
    }
}

/// The outcome of [`verify_ledger`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Entry records read.
    pub entries: u64,
    /// Entries covered by a verified checkpoint.
    pub verified_size: u64,
    /// Checkpoints verified in the segments (signature and root).
    pub checkpoints_checked: u64,
    /// Checkpoints in the checkpoints file checked against the tree.
    pub checkpoints_file_checked: u64,
    /// Checkpoints in the anchor checked against the tree.
    pub anchor_checked: u64,
    /// Distinct sessions (the sessionless chain counts as one).
    pub sessions: u64,
    /// Segment bytes read.
    pub bytes: u64,
    /// The latest verified checkpoint.
    pub latest: Option<Checkpoint>,
    /// Entries after the last checkpoint: an unfinished batch, not part of the log yet.
    pub uncommitted_entries: u64,
    /// Bytes of a torn record at the end of the last segment (a crash mid-write).
    pub torn_tail_bytes: u64,
    /// How long verification took.
    pub elapsed: Duration,
    /// The first problem, if any.
    pub failure: Option<VerifyFailure>,
}

impl VerifyReport {
    /// `true` if no problem was found.
    pub fn is_intact(&self) -> bool {
        self.failure.is_none()
    }
}

/// Verifies the ledger in `dir` (the directory given to [`Ledger::open`](crate::log::Ledger::open)).
///
/// Returns `Err` only if verification could not run; a tampered ledger is an `Ok` report with a
/// [`failure`](VerifyReport::failure).
pub fn verify_ledger(dir: &Path, opts: &VerifyOptions) -> Result<VerifyReport, VerifyError> {
    let started = Instant::now();
    let segments = list_segments(dir).map_err(|source| VerifyError::Io {
        path: dir.to_owned(),
        source,
    })?;
    if segments.is_empty() {
        return Err(VerifyError::NotALedger(dir.to_owned()));
    }
    let mut v = Verifier {
        verifier: &opts.verifier,
        report: VerifyReport::default(),
        frontier: Frontier::default(),
        sessions: HashMap::new(),
        last_leaf: None,
        batch_start: 0,
        suspect: None,
        confirmed: None,
        witnesses: Vec::new(),
        failure: None,
        missing: None,
    };
    v.witnesses.push(Witness::open(
        &dir.join(CHECKPOINTS_FILE),
        "checkpoints file",
    )?);
    if let Some(anchor) = &opts.anchor {
        v.witnesses.push(Witness::open(anchor, "anchor")?);
    }
    let last = *segments.last().expect("non-empty");
    for &first in &segments {
        if v.stopped() {
            break;
        }
        v.segment(dir, first, first == last)?;
    }
    v.finish()?;
    let mut report = v.report;
    report.failure = v.failure;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// A checkpoint suspected of not matching its entries, pending the next checkpoint's verdict.
struct Suspect {
    start: u64,
    size: u64,
    detail: String,
}

struct Verifier<'a> {
    verifier: &'a NoteVerifier,
    report: VerifyReport,
    frontier: Frontier,
    /// Per session: the last entry's leaf hash and index.
    sessions: HashMap<SessionKey, (Hash, u64)>,
    last_leaf: Option<Hash>,
    /// The first index after the last verified checkpoint.
    batch_start: u64,
    suspect: Option<Suspect>,
    /// The last size for which a witness checkpoint with other bytes agreed with the entries.
    confirmed: Option<u64>,
    witnesses: Vec<Witness>,
    failure: Option<VerifyFailure>,
    /// After an index gap: the first missing index, looked for in the rest of the log to tell a
    /// deletion from a reorder.
    missing: Option<u64>,
}

impl Verifier<'_> {
    fn stopped(&self) -> bool {
        self.failure.is_some() && self.missing.is_none()
    }

    fn fail(&mut self, index: u64, kind: FailureKind, detail: impl Into<String>) {
        if self.failure.is_none() {
            self.failure = Some(VerifyFailure {
                index,
                kind,
                detail: detail.into(),
            });
        }
    }

    fn segment(&mut self, dir: &Path, first: u64, is_last: bool) -> Result<(), VerifyError> {
        let path = segment_path(dir, first);
        let io = |source| VerifyError::Io {
            path: path.clone(),
            source,
        };
        let mut file = File::open(&path).map_err(io)?;
        let mut header = [0u8; SEGMENT_HEADER_LEN as usize];
        let got = file.read(&mut header).map_err(io)?;
        let size = self.frontier.size();
        if self.missing.is_none() {
            if got < header.len() || &header[..8] != SEGMENT_MAGIC {
                if is_last && got < header.len() {
                    self.report.torn_tail_bytes += got as u64;
                    return Ok(());
                }
                self.fail(
                    size,
                    FailureKind::Malformed,
                    format!("segment {first} has no valid header"),
                );
                return Ok(());
            }
            let named = u64::from_le_bytes(header[8..].try_into().expect("8 bytes"));
            if named != first {
                self.fail(
                    size,
                    FailureKind::Malformed,
                    format!("segment file {first} says it starts at {named}"),
                );
                return Ok(());
            }
            if first != size {
                let (kind, what) = if first > size {
                    (FailureKind::Deleted, "entries are missing before it")
                } else {
                    (FailureKind::Inserted, "it overlaps the previous segment")
                };
                self.fail(
                    size,
                    kind,
                    format!(
                        "segment {first} follows entry {}: {what}",
                        size.wrapping_sub(1)
                    ),
                );
                if first > size {
                    self.missing = Some(size);
                } else {
                    return Ok(());
                }
            }
        }
        file.seek(SeekFrom::Start(SEGMENT_HEADER_LEN)).map_err(io)?;
        let mut records = RecordReader::new(file, SEGMENT_HEADER_LEN);
        let mut payload = Vec::with_capacity(4096);
        loop {
            if self.stopped() {
                return Ok(());
            }
            let at = records.pos();
            match records.next(&mut payload) {
                Ok(Some(meta)) => {
                    self.report.bytes += meta.end(payload.len()) - meta.offset;
                    if self.missing.is_some() {
                        self.look_for_missing(meta.kind, &payload);
                    } else if meta.kind == ENTRY {
                        self.entry(&payload, meta.check);
                    } else {
                        self.checkpoint(&payload);
                    }
                }
                Ok(None) => return Ok(()),
                Err(RecordFault::Io(source)) => return Err(io(source)),
                Err(fault) => {
                    if self.missing.is_some() {
                        return Ok(());
                    }
                    let size = self.frontier.size();
                    let len = records_len(&path).map_err(io)?;
                    let committed_after = match fault {
                        RecordFault::BadRecord { next } => {
                            crate::log::committed_after(&path, next).map_err(io)?
                        }
                        _ => false,
                    };
                    if is_last && !committed_after {
                        self.report.torn_tail_bytes = len.saturating_sub(at);
                    } else if matches!(fault, RecordFault::BadRecord { .. }) {
                        self.fail(size, FailureKind::Edited, format!(
                            "the record at offset {at} of segment {first} does not match its check hash"
                        ));
                    } else {
                        self.fail(
                            size,
                            FailureKind::Malformed,
                            format!("unreadable record at offset {at} of segment {first}"),
                        );
                    }
                    return Ok(());
                }
            }
        }
    }

    fn look_for_missing(&mut self, kind: u8, payload: &[u8]) {
        let missing = self.missing.expect("looking");
        if kind == ENTRY
            && let Ok(fields) = entry_fields(payload)
            && fields.index == missing
        {
            if let Some(f) = &mut self.failure {
                f.kind = FailureKind::Reordered;
                f.detail = format!("{}; entry {missing} appears later in the log", f.detail);
            }
            self.missing = None;
        }
    }

    fn entry(&mut self, payload: &[u8], leaf: Hash) {
        let size = self.frontier.size();
        self.report.entries += 1;
        let fields = match entry_fields(payload) {
            Ok(f) => f,
            Err(why) => {
                return self.fail(
                    size,
                    FailureKind::Edited,
                    format!("entry {size} is invalid: {why}"),
                );
            }
        };
        if fields.index != size {
            let claimed = fields.index;
            if claimed > size {
                self.missing = Some(size);
                return self.fail(
                    size,
                    FailureKind::Deleted,
                    format!("entry {size} is missing: the next record claims index {claimed}"),
                );
            }
            let duplicate_of_previous = claimed + 1 == size && self.last_leaf == Some(leaf);
            let index = if claimed + 1 == size && !duplicate_of_previous {
                claimed
            } else {
                size
            };
            return self.fail(
                index,
                FailureKind::Inserted,
                format!(
                    "the record at position {size} claims index {claimed}, which is already taken"
                ),
            );
        }
        let key = session_key(fields.session.as_deref());
        let expected = self.sessions.get(&key).copied();
        match (fields.prev, expected) {
            (None, None) => {}
            (Some(p), Some((h, _))) if p == h => {}
            (Some(_), Some((_, j))) => {
                return self.fail(j, FailureKind::Edited, format!(
                    "entry {size} names a different leaf hash for the previous entry of its session, {j}"
                ));
            }
            (None, Some((_, j))) => {
                return self.fail(size, FailureKind::BrokenChain, format!(
                    "entry {size} starts its session's chain, but entry {j} is in the same session"
                ));
            }
            (Some(_), None) => {
                return self.fail(
                    size,
                    FailureKind::BrokenChain,
                    format!(
                        "entry {size} names a previous entry, but it is the first of its session"
                    ),
                );
            }
        }
        // The entry itself is sound; witnesses for the size before it are now settled.
        self.resolve_pending_witnesses();
        if self.stopped() {
            return;
        }
        self.sessions.insert(key, (leaf, size));
        self.last_leaf = Some(leaf);
        let mut discard = Vec::new();
        self.frontier.push(leaf, &mut discard);
        self.check_witnesses_at_size();
    }

    fn checkpoint(&mut self, payload: &[u8]) {
        let size = self.frontier.size();
        let start = self.batch_start;
        let note = match std::str::from_utf8(payload) {
            Ok(n) => n,
            Err(_) => return self.fail(start, FailureKind::Malformed, "a checkpoint is not UTF-8"),
        };
        let cp = match SignedCheckpoint::open(note, self.verifier) {
            Ok(cp) => cp,
            Err(e) => {
                let claimed = SignedCheckpoint::parse_unverified(note)
                    .map(|c| c.size())
                    .unwrap_or(size);
                return self.fail(
                    start,
                    FailureKind::BadSignature,
                    format!("the checkpoint for size {claimed} does not verify: {e}"),
                );
            }
        };
        if cp.size() > size {
            self.missing = Some(size);
            return self.fail(
                size,
                FailureKind::Deleted,
                format!(
                    "the checkpoint for size {} follows only {size} entries",
                    cp.size()
                ),
            );
        }
        if cp.size() < size {
            return self.fail(
                cp.size(),
                FailureKind::Inserted,
                format!(
                    "the checkpoint for size {} follows {size} entries",
                    cp.size()
                ),
            );
        }
        let root = self.frontier.root();
        let matches = cp.root() == root;
        if let Some(s) = self.suspect.take() {
            // The previous checkpoint disagreed with the entries; this one decides who is wrong.
            if matches {
                return self.fail(s.start, FailureKind::InconsistentCheckpoints, format!(
                    "{}, yet the checkpoint for size {size} agrees with the entries: the checkpoint for size {} is forged or from a fork",
                    s.detail, s.size
                ));
            }
            return self.fail(s.start, FailureKind::Edited, s.detail);
        }
        if !matches {
            self.suspect = Some(Suspect {
                start,
                size,
                detail: if size - start == 1 {
                    format!("entry {start} does not hash to the root signed for size {size}")
                } else {
                    format!(
                        "entries {start} to {} do not hash to the root signed for size {size}",
                        size - 1
                    )
                },
            });
        } else {
            self.report.verified_size = size;
            self.report.latest = Some(cp.checkpoint().clone());
        }
        self.report.checkpoints_checked += 1;
        self.batch_start = size;
        self.witness_embedded(size, payload);
    }

    /// Checks witnesses (checkpoints file, anchor) that hold a checkpoint for the current size.
    fn check_witnesses_at_size(&mut self) {
        let size = self.frontier.size();
        for i in 0..self.witnesses.len() {
            match self.witnesses[i].peek_size() {
                Some(s) if s < size => {
                    let name = self.witnesses[i].name;
                    return self.fail(
                        s,
                        FailureKind::Malformed,
                        format!(
                            "the {name} holds checkpoints out of order (size {s} after {size})"
                        ),
                    );
                }
                Some(s) if s == size => {
                    let root = self.frontier.root();
                    let w = &mut self.witnesses[i];
                    let note = w.take().expect("peeked");
                    w.pending = Some((size, root, note));
                }
                _ => {}
            }
        }
    }

    /// An embedded checkpoint for `size` was read: witnesses holding the same bytes need no
    /// further check.
    fn witness_embedded(&mut self, size: u64, embedded: &[u8]) {
        for w in &mut self.witnesses {
            if let Some((s, _, note)) = &w.pending
                && *s == size
                && note.as_slice() == embedded
            {
                w.pending = None;
                w.checked += 1;
            }
        }
        self.resolve_pending_witnesses();
    }

    /// Fully checks witness checkpoints that did not match an embedded one byte for byte.
    fn resolve_pending_witnesses(&mut self) {
        for i in 0..self.witnesses.len() {
            let Some((size, root, note)) = self.witnesses[i].pending.take() else {
                continue;
            };
            let name = self.witnesses[i].name;
            self.witnesses[i].checked += 1;
            let start = self.batch_start.min(size.saturating_sub(1));
            let text = String::from_utf8_lossy(&note);
            match SignedCheckpoint::open(&text, self.verifier) {
                Err(e) => {
                    return self.fail(
                        start,
                        FailureKind::BadSignature,
                        format!("the {name}'s checkpoint for size {size} does not verify: {e}"),
                    );
                }
                Ok(cp) if cp.root() != root => {
                    return self.fail(start, FailureKind::InconsistentCheckpoints, format!(
                        "the {name} holds a validly signed checkpoint for size {size} whose root differs from the log's"
                    ));
                }
                Ok(_) => self.confirmed = Some(size),
            }
        }
    }

    fn finish(&mut self) -> Result<(), VerifyError> {
        if self.missing.is_some() {
            self.missing = None; // never reappeared: a deletion, as recorded
        }
        if self.failure.is_some() {
            return Ok(());
        }
        self.resolve_pending_witnesses();
        if let Some(s) = self.suspect.take() {
            if self.confirmed == Some(s.size) {
                self.fail(s.start, FailureKind::InconsistentCheckpoints, format!(
                    "{}, yet the checkpoints file holds a validly signed checkpoint for size {} that agrees with the entries: the segment's checkpoint is forged or from a fork",
                    s.detail, s.size
                ));
            } else {
                self.fail(s.start, FailureKind::Edited, s.detail);
            }
            return Ok(());
        }
        self.report.uncommitted_entries = self.frontier.size() - self.report.verified_size;
        self.report.sessions = self.sessions.len() as u64;
        self.report.checkpoints_file_checked = self.witnesses[0].checked;
        self.report.anchor_checked = self.witnesses.get(1).map_or(0, |w| w.checked);
        let committed = self.report.verified_size;
        for i in 0..self.witnesses.len() {
            let w = &mut self.witnesses[i];
            if let Some(s) = w.peek_size()
                && s > committed
            {
                let name = w.name;
                self.fail(committed, FailureKind::Truncated, format!(
                    "the log holds {committed} signed entries, but the {name} has a checkpoint for {s}"
                ));
                return Ok(());
            }
            if let Some(e) = w.error.take() {
                let name = w.name;
                self.fail(
                    committed,
                    FailureKind::Malformed,
                    format!("the {name} is damaged: {e}"),
                );
                return Ok(());
            }
        }
        Ok(())
    }
}

fn records_len(path: &Path) -> io::Result<u64> {
    Ok(std::fs::metadata(path)?.len())
}

/// A checkpoints-format file read alongside the segments.
struct Witness {
    name: &'static str,
    records: Option<RecordReader>,
    payload: Vec<u8>,
    peeked: Option<(u64, Vec<u8>)>,
    /// A checkpoint for the current size, awaiting the embedded one: (size, root, note bytes).
    pending: Option<(u64, Hash, Vec<u8>)>,
    checked: u64,
    error: Option<String>,
    /// The file's length when verification started.
    limit: u64,
}

impl Witness {
    fn open(path: &Path, name: &'static str) -> Result<Witness, VerifyError> {
        let io = |source| VerifyError::Io {
            path: path.to_owned(),
            source,
        };
        let mut w = Witness {
            name,
            records: None,
            payload: Vec::new(),
            peeked: None,
            pending: None,
            checked: 0,
            error: None,
            limit: 0,
        };
        let mut file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                w.error = Some("the file is missing".into());
                return Ok(w);
            }
            Err(e) => return Err(io(e)),
        };
        let mut magic = [0u8; 8];
        if file.read_exact(&mut magic).is_err() || &magic != CHECKPOINTS_MAGIC {
            w.error = Some("it has no checkpoints header".into());
            return Ok(w);
        }
        // Read only what exists now: on a live ledger, checkpoints appended while the segments
        // are read could otherwise look like a truncation.
        w.limit = file.metadata().map_err(io)?.len();
        w.records = Some(RecordReader::new(file, CHECKPOINTS_HEADER_LEN));
        Ok(w)
    }

    fn peek_size(&mut self) -> Option<u64> {
        if let Some((s, _)) = &self.peeked {
            return Some(*s);
        }
        let records = self.records.as_mut()?;
        if records.pos() >= self.limit {
            self.records = None;
            return None;
        }
        match records.next(&mut self.payload) {
            Ok(Some(meta)) if meta.kind == CHECKPOINT => {
                let size = std::str::from_utf8(&self.payload)
                    .ok()
                    .and_then(|n| SignedCheckpoint::parse_unverified(n).ok())
                    .map(|c| c.size());
                match size {
                    Some(s) => {
                        self.peeked = Some((s, std::mem::take(&mut self.payload)));
                        Some(s)
                    }
                    None => {
                        self.error = Some("an unreadable checkpoint".into());
                        self.records = None;
                        None
                    }
                }
            }
            // A damaged tail is what a crash leaves in a file synced only at seals: treat it as
            // the end (cutting a witness short hides nothing a clean cut would not).
            Ok(None) | Err(_) => {
                self.records = None;
                None
            }
            Ok(Some(_)) => {
                self.error = Some("a record that is not a checkpoint".into());
                self.records = None;
                None
            }
        }
    }

    fn take(&mut self) -> Option<Vec<u8>> {
        self.peeked.take().map(|(_, p)| p)
    }
}

/// The result of [`verify_receipt`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReceiptCheck {
    /// The entry's index.
    pub index: u64,
    /// The receipt's verified checkpoint.
    pub checkpoint: Checkpoint,
    /// The ledger's current checkpoint it was proven consistent with, if a ledger was given.
    pub consistent_with: Option<Checkpoint>,
}

/// Verifies a receipt (text or base64) for `entry` (the exact entry bytes) with the log's
/// verifier key string, offline.
pub fn verify_receipt(
    receipt: &str,
    entry: &[u8],
    vkey: &str,
) -> Result<ReceiptCheck, ReceiptError> {
    let verifier = NoteVerifier::from_vkey(vkey).map_err(|e| ReceiptError::Checkpoint(e.into()))?;
    let receipt = Receipt::parse_any(receipt)?;
    let checkpoint = receipt.verify(entry, &verifier)?;
    Ok(ReceiptCheck {
        index: receipt.index(),
        checkpoint,
        consistent_with: None,
    })
}

/// Verifies a receipt as [`verify_receipt`] does, then checks it against the ledger at hand: the
/// ledger must still hold the same entry at that index, and its current (verified) checkpoint
/// must be consistent with the receipt's. Catches a ledger rolled back or forked after the
/// receipt was issued.
pub fn verify_receipt_against(
    receipt: &Receipt,
    entry: &[u8],
    verifier: &NoteVerifier,
    ledger: &LedgerReader,
) -> Result<ReceiptCheck, ReceiptError> {
    let checkpoint = receipt.verify(entry, verifier)?;
    let current = ledger.latest_checkpoint().ok_or(ReceiptError::RolledBack {
        receipt_size: checkpoint.size,
        ledger_size: 0,
    })?;
    let current = SignedCheckpoint::open(current.note(), verifier)?;
    if current.size() < checkpoint.size {
        return Err(ReceiptError::RolledBack {
            receipt_size: checkpoint.size,
            ledger_size: current.size(),
        });
    }
    let proof = ledger
        .consistency(checkpoint.size, current.size())
        .map_err(|e| ReceiptError::Ledger(e.to_string()))?;
    verify_consistency(
        checkpoint.size,
        current.size(),
        &checkpoint.root,
        &current.root(),
        &proof,
    )
    .map_err(|_| ReceiptError::Inconsistent {
        receipt_size: checkpoint.size,
        ledger_size: current.size(),
    })?;
    match ledger.entry(receipt.index()) {
        Ok(bytes) if bytes == entry => {}
        Ok(_) => {
            return Err(ReceiptError::Ledger(format!(
                "the ledger's entry {} differs from the given bytes",
                receipt.index()
            )));
        }
        Err(e) => return Err(ReceiptError::Ledger(e.to_string())),
    }
    Ok(ReceiptCheck {
        index: receipt.index(),
        checkpoint,
        consistent_with: Some(current.checkpoint().clone()),
    })
}
