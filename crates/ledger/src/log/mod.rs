//! The durable ledger: group-committed appends, crash recovery, and reads.
//!
//! This module owns the ledger directory. One [`Ledger`] per directory appends (an advisory lock
//! enforces it); any number of [`LedgerReader`]s read. It runs Tessera's three lifecycles in one
//! writer thread, in this order for every batch:
//!
//! 1. **sequence** — take up to `batch_max_entries` queued drafts (waiting at most
//!    `batch_max_wait` for concurrent ones), assign each its `index` and `prev`;
//! 2. **integrate** — hash the canonical entries into the Merkle tree (in memory, `O(log n)`);
//! 3. **publish** — sign a checkpoint for the new size, write the entries *and* that checkpoint
//!    to the active segment in one `write`, `fdatasync` once, then extend the derived files and
//!    hand the batch to a second thread that builds each caller's inclusion proof and answers it
//!    (so the next batch's write and sync overlap those answers).
//!
//! Because the checkpoint travels in the same write as its batch, a batch is durable exactly
//! when its checkpoint is: recovery never has to guess which entries a released receipt covered.
//!
//! [`Durability::Write`] (opt-in) answers after the `write` and moves the `fdatasync` to a timer;
//! checkpoint copies (`checkpoints`, the anchor) are then appended only after the sync that made
//! their batch durable, so the copies still never run ahead of the segments.
//!
//! It does not decide what goes into an entry (the gateway does), and it never verifies its own
//! history beyond what recovery needs; [`crate::verify`] is the auditor's check. It has no async
//! runtime: [`Ledger::append`] takes a completion callback, so a tokio caller wraps it in a
//! oneshot channel and a thread caller uses [`Ledger::append_blocking`].
//!
//! # Entries
//!
//! The ledger adds three top-level members to every draft body and owns them (a draft that
//! already has one is refused): `index` (the entry's position, an integer), `session` (the
//! draft's session, or `null`) and `prev` (the leaf hash, lowercase hex, of the previous entry
//! with the same `session` value, or `null` for the first). Entries without a session form one
//! chain of their own, so every entry is chained. The entry bytes are the RFC 8785 canonical
//! form of the result; its leaf hash is `SHA-256(0x00 ‖ bytes)`.
//!
//! # Failure
//!
//! If a write or `fdatasync` fails, every caller in that batch gets an error, the ledger turns
//! unhealthy ([`Ledger::is_healthy`]) and every later append fails at once with
//! [`LedgerError::Unavailable`]: it fails closed and never retries, because after a failed
//! `fdatasync` the kernel may have dropped the dirty pages and a retry can falsely succeed. The
//! recovery is to fix the cause (disk full, read-only file system) and restart the process:
//! [`Ledger::open`] cuts any torn tail and rebuilds the derived files.

mod format;
mod reader;
mod recover;
mod writer;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::checkpoint::SignedCheckpoint;
use crate::jcs::{JcsError, SplitObject};
use crate::note::{NoteError, NoteSigner, NoteVerifier};
use crate::receipt::Receipt;
use crate::tree::{Hash, ProofError};

pub use reader::{Checkpoints, Entries, LedgerReader};

pub(crate) use format::{
    CHECKPOINT, CHECKPOINTS_FILE, CHECKPOINTS_HEADER_LEN, CHECKPOINTS_MAGIC, ENTRY, RecordFault,
    RecordReader, SEGMENT_HEADER_LEN, SEGMENT_MAGIC, SessionKey, committed_after, list_segments,
    segment_path, session_key,
};
pub(crate) use recover::entry_fields;

/// The top-level members the ledger adds to every entry, in canonical order.
pub const RESERVED_KEYS: [&str; 3] = ["index", "prev", "session"];

/// Errors from opening, appending to, or reading the ledger.
///
/// Clone, because one write failure is reported to every caller in the batch.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// A file operation failed.
    #[error("ledger I/O error while {context}: {source}")]
    Io {
        /// What the ledger was doing.
        context: String,
        /// The operating system error.
        source: Arc<io::Error>,
    },
    /// An earlier write or sync failed, so the ledger refuses all appends until it is reopened.
    /// Callers SHOULD map this to 503 (`audit_unavailable`).
    #[error("ledger is unavailable after a write failure ({cause}); restart to recover")]
    Unavailable {
        /// The original failure.
        cause: String,
    },
    /// The ledger is shutting down or was closed.
    #[error("ledger is closed")]
    Closed,
    /// Too many appends are queued (`queue_capacity`). Callers SHOULD answer 503 with
    /// `Retry-After`; the ledger itself is healthy.
    #[error("ledger is overloaded: too many appends are queued")]
    Overloaded,
    /// The draft cannot be recorded (reserved key, non-canonicalizable value, too large).
    #[error("invalid entry: {0}")]
    InvalidEntry(String),
    /// Another process holds the ledger's lock.
    #[error("another process is appending to the ledger at {0}")]
    Locked(PathBuf),
    /// The ledger's files contradict each other beyond a torn tail: refuse to append on top of
    /// them. Run the verifier to locate the damage.
    #[error("ledger is corrupt: {0}")]
    Corrupt(String),
    /// A checkpoint kept elsewhere (the checkpoints file or the anchor) covers more entries than
    /// the log holds: the log was truncated or rolled back.
    #[error(
        "ledger was truncated: it holds {size} entries but a checkpoint for {witnessed} exists ({source_file})"
    )]
    Truncated {
        /// The entries present.
        size: u64,
        /// The size a surviving checkpoint covers.
        witnessed: u64,
        /// Where that checkpoint was found.
        source_file: String,
    },
    /// No entry with that index exists (yet).
    #[error("index {index} is beyond the ledger's {size} entries")]
    OutOfRange {
        /// The requested index.
        index: u64,
        /// The number of entries.
        size: u64,
    },
    /// A proof could not be produced.
    #[error("proof: {0}")]
    Proof(#[from] ProofError),
    /// Signing a checkpoint failed, or the key does not fit the ledger.
    #[error("key: {0}")]
    Key(#[from] NoteError),
}

impl From<JcsError> for LedgerError {
    fn from(e: JcsError) -> LedgerError {
        LedgerError::InvalidEntry(e.to_string())
    }
}

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> LedgerError {
    // Converted only on error: a literal context costs nothing on the success path.
    move |source| LedgerError::Io {
        context: context.into(),
        source: Arc::new(source),
    }
}

/// [`io_err`] with a context that is formatted only on error (for the writer's per-batch paths).
pub(crate) fn io_err_with(
    context: impl FnOnce() -> String,
) -> impl FnOnce(io::Error) -> LedgerError {
    move |source| io_err(context())(source)
}

/// Told about every committed batch, on the writer thread: keep it cheap and non-blocking.
///
/// The writer calls it once per batch, after the batch and its checkpoint are `fdatasync`'d (with
/// [`Durability::Write`]: written) and published, and before the batch's callers are answered — so a slow observer delays every
/// append. It is for metrics (a few atomic updates); it MUST NOT append to the ledger, block on
/// I/O or panic. It is never called for a failed batch.
pub trait BatchObserver: Send + Sync {
    /// One batch is committed.
    fn batch_committed(&self, stats: &BatchStats);
}

/// What [`BatchObserver::batch_committed`] is told about one committed batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchStats {
    /// Entries in the batch.
    pub entries: usize,
    /// Bytes written to the segment: the entry records and the checkpoint record.
    pub bytes: u64,
    /// Time spent in the segment `write` and its `fdatasync` (with [`Durability::Write`], the
    /// `write` only).
    pub sync: Duration,
    /// The tree size (entries committed) after the batch.
    pub tree_size: u64,
}

/// When an appended batch counts as committed, so that its callers are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// The batch is written and `fdatasync`'d before any caller is answered: an answered entry
    /// survives a crash of the process, of the host and a power loss. The default, and the only
    /// mode in which a released receipt can never be lost.
    Fsync,
    /// The batch is written to the operating system before its callers are answered, and
    /// `fdatasync`'d at most `sync_interval` after its write (sooner under load: the next batch
    /// past the interval syncs everything before it). An answered entry survives a crash of the
    /// process; a crash of the host or a power loss can lose the entries of the last interval,
    /// and the receipts released for them then name a checkpoint the recovered log does not
    /// have. `checkpoints`, the anchor and [`Ledger::durable_checkpoint`] only ever hold
    /// checkpoints whose batch has been synced, so recovery still never finds a copy beyond the
    /// log.
    Write {
        /// The longest a written batch stays unsynced.
        sync_interval: Duration,
    },
}

/// How to run a [`Ledger`]. Build with [`LedgerOptions::new`] and adjust fields.
#[derive(Clone)]
#[non_exhaustive]
pub struct LedgerOptions {
    /// The checkpoint signing key. Its name is the log's origin (the checkpoint's first line).
    pub signer: NoteSigner,
    /// A batch closes when it holds this many entries. Default 256.
    pub batch_max_entries: usize,
    /// How long the writer waits for concurrent appends to join a batch, once it has one.
    /// The wait only happens while the previous batch had more than one entry (a lone caller is
    /// never delayed). Default 200 µs.
    pub batch_max_wait: Duration,
    /// A new segment file starts once the active one would exceed this size. Default 64 MiB.
    pub segment_bytes: u64,
    /// If set, every signed checkpoint is also appended to this file (same format as the
    /// `checkpoints` file), ideally on another disk. Failing to write it fails the batch.
    pub anchor: Option<PathBuf>,
    /// The largest entry accepted, in bytes. Default 4 MiB.
    pub max_entry_bytes: usize,
    /// Appends queued beyond this fail with [`LedgerError::Overloaded`]. Default 8,192.
    ///
    /// The queue's slots are allocated (and touched) when the ledger opens, about 140 bytes
    /// each: 65,536 of them were 9 MB of resident memory in a gateway that admits 4,096
    /// requests at once, each with at most one append queued.
    pub queue_capacity: usize,
    /// When a batch counts as committed and its callers are answered. Default
    /// [`Durability::Fsync`].
    pub durability: Durability,
    /// Told about every committed batch (metrics). Default `None`.
    pub observer: Option<Arc<dyn BatchObserver>>,
    #[cfg(test)]
    pub(crate) fault: Option<writer::FaultHook>,
}

// By hand because `dyn BatchObserver` has no `Debug`.
impl fmt::Debug for LedgerOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LedgerOptions")
            .field("signer", &self.signer)
            .field("batch_max_entries", &self.batch_max_entries)
            .field("batch_max_wait", &self.batch_max_wait)
            .field("segment_bytes", &self.segment_bytes)
            .field("anchor", &self.anchor)
            .field("max_entry_bytes", &self.max_entry_bytes)
            .field("queue_capacity", &self.queue_capacity)
            .field("durability", &self.durability)
            .field("observer", &self.observer.as_ref().map(|_| "BatchObserver"))
            .finish_non_exhaustive()
    }
}

impl LedgerOptions {
    /// Defaults, signing with `signer`.
    pub fn new(signer: NoteSigner) -> LedgerOptions {
        LedgerOptions {
            signer,
            batch_max_entries: 256,
            batch_max_wait: Duration::from_micros(200),
            segment_bytes: 64 << 20,
            anchor: None,
            max_entry_bytes: 4 << 20,
            queue_capacity: 8_192,
            durability: Durability::Fsync,
            observer: None,
            #[cfg(test)]
            fault: None,
        }
    }
}

/// An entry to append: the gateway's body and the session it belongs to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EntryDraft {
    /// The session whose chain the entry joins (`None`: the chain of sessionless entries).
    pub session: Option<String>,
    /// The entry's members. MUST NOT contain [`RESERVED_KEYS`]; integers MUST be within
    /// ±(2^53 − 1) (see [`crate::jcs`]).
    pub body: Map<String, Value>,
}

impl EntryDraft {
    /// A draft for `session` with `body`.
    pub fn new(session: Option<String>, body: Map<String, Value>) -> EntryDraft {
        EntryDraft { session, body }
    }
}

/// A durably appended entry, with everything its receipt needs.
#[derive(Clone)]
pub struct Appended {
    index: u64,
    leaf_hash: Hash,
    entry: Vec<u8>,
    checkpoint: Arc<SignedCheckpoint>,
    proof: Vec<Hash>,
}

impl Appended {
    /// The entry's index (`x-warden-entry`).
    pub fn index(&self) -> u64 {
        self.index
    }

    /// The entry's leaf hash.
    pub fn leaf_hash(&self) -> Hash {
        self.leaf_hash
    }

    /// The exact bytes that were hashed and stored.
    pub fn entry(&self) -> &[u8] {
        &self.entry
    }

    /// The signed checkpoint of the batch that contained the entry.
    pub fn checkpoint(&self) -> &SignedCheckpoint {
        &self.checkpoint
    }

    /// The inclusion proof of the entry in that checkpoint's tree.
    pub fn proof(&self) -> &[Hash] {
        &self.proof
    }

    /// The entry's receipt (C2SP tlog-proof).
    pub fn receipt(&self) -> Receipt {
        Receipt::new(self.index, self.proof.clone(), &self.checkpoint)
    }

    /// The receipt text.
    pub fn receipt_text(&self) -> String {
        self.receipt().to_text()
    }

    /// The base64 of the receipt text (`x-warden-receipt`).
    pub fn receipt_base64(&self) -> String {
        self.receipt().to_base64()
    }
}

impl fmt::Debug for Appended {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Appended")
            .field("index", &self.index)
            .field("leaf_hash", &self.leaf_hash)
            .field("checkpoint_size", &self.checkpoint.size())
            .finish_non_exhaustive()
    }
}

/// What [`Ledger::open`] found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// The ledger directory did not exist or was empty, and was created.
    pub created: bool,
    /// Entries present at open (the latest checkpoint's size).
    pub size: u64,
    /// Bytes cut from the end of the last segment (a torn or incomplete final batch).
    pub truncated_bytes: u64,
    /// Complete entry records among the cut bytes (written but never acknowledged).
    pub dropped_entries: u64,
    /// Entries re-read to rebuild the derived files (hashes, offsets, session chains).
    pub rescanned_entries: u64,
    /// Checkpoints copied from the segments into the `checkpoints` file because it was behind.
    pub restored_checkpoints: u64,
}

type Done = Box<dyn FnOnce(Result<Appended, LedgerError>) + Send + 'static>;

/// A caller waiting for its append. If dropped unanswered (the writer died), it answers
/// [`LedgerError::Closed`], so no caller ever waits forever.
pub(crate) struct Waiter(Option<Done>);

impl Waiter {
    fn new(done: Done) -> Waiter {
        Waiter(Some(done))
    }

    pub(crate) fn answer(mut self, result: Result<Appended, LedgerError>) {
        if let Some(done) = self.0.take() {
            done(result);
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        if let Some(done) = self.0.take() {
            done(Err(LedgerError::Closed));
        }
    }
}

/// A draft canonicalized on the caller's thread, waiting for its index and `prev`.
pub(crate) struct Prepared {
    key: SessionKey,
    split: SplitObject,
    session_member: Vec<u8>,
    waiter: Waiter,
}

fn prepare(
    draft: &EntryDraft,
    max_entry_bytes: usize,
) -> Result<(SplitObject, Vec<u8>), LedgerError> {
    if let Some(k) = RESERVED_KEYS.iter().find(|k| draft.body.contains_key(**k)) {
        return Err(LedgerError::InvalidEntry(format!(
            "`{k}` is set by the ledger"
        )));
    }
    let split = SplitObject::new(&draft.body, &RESERVED_KEYS)?;
    let mut session_member = b"\"session\":".to_vec();
    match &draft.session {
        Some(s) => crate::jcs::write_string(s, &mut session_member),
        None => session_member.extend_from_slice(b"null"),
    }
    // index ≤ 16 digits, prev 66 bytes, member names and separators: 128 covers them.
    if split.len() + session_member.len() + 128 > max_entry_bytes {
        return Err(LedgerError::InvalidEntry(format!(
            "entry exceeds the {max_entry_bytes}-byte limit"
        )));
    }
    Ok((split, session_member))
}

pub(crate) enum Request {
    Append(Prepared),
}

/// Health shared by the ledger handle and its writer.
pub(crate) struct Health {
    failed: AtomicBool,
    cause: Mutex<Option<String>>,
}

impl Health {
    fn new() -> Health {
        Health {
            failed: AtomicBool::new(false),
            cause: Mutex::new(None),
        }
    }

    pub(crate) fn fail(&self, cause: String) {
        let mut slot = self.cause.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert(cause);
        self.failed.store(true, Ordering::Release);
    }

    pub(crate) fn is_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    pub(crate) fn unavailable(&self) -> LedgerError {
        let cause = self.cause.lock().unwrap_or_else(|p| p.into_inner());
        LedgerError::Unavailable {
            cause: cause.clone().unwrap_or_else(|| "unknown".into()),
        }
    }
}

/// The appending handle of a ledger directory: share it (`Arc<Ledger>`) between request
/// handlers.
///
/// Dropping it (or [`close`](Self::close)) finishes every queued append, syncs the derived files
/// and stops the writer thread.
pub struct Ledger {
    sender: Option<SyncSender<Request>>,
    thread: Option<JoinHandle<Result<(), LedgerError>>>,
    health: Arc<Health>,
    reader: LedgerReader,
    verifier: NoteVerifier,
    max_entry_bytes: usize,
    recovery: RecoveryReport,
    _lock: std::fs::File,
}

impl Ledger {
    /// Opens (creating if needed) the ledger in `dir`, recovers it, and starts its writer thread.
    ///
    /// Recovery cuts a torn or incomplete final batch, rebuilds the derived files from the last
    /// seal, checks every checkpoint it re-reads against the tree and the latest one's signature,
    /// and refuses to open ([`LedgerError::Truncated`], [`LedgerError::Corrupt`]) if the files
    /// contradict each other, or if the signing key is not the one the ledger was written with.
    /// What it did is in [`recovery`](Self::recovery).
    pub fn open(dir: &Path, opts: LedgerOptions) -> Result<Ledger, LedgerError> {
        std::fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
        let lock = recover::lock(dir)?;
        let health = Arc::new(Health::new());
        let (state, reader, recovery) = recover::recover(dir, &opts)?;
        let verifier = opts.signer.verifier();
        let max_entry_bytes = opts.max_entry_bytes;
        let (sender, receiver) = mpsc::sync_channel(opts.queue_capacity.max(1));
        let writer = writer::Writer::new(state, opts, reader.clone(), health.clone());
        let thread = std::thread::Builder::new()
            .name("warden-ledger".into())
            .spawn(move || writer.run(receiver))
            .map_err(io_err("starting the writer thread"))?;
        Ok(Ledger {
            sender: Some(sender),
            thread: Some(thread),
            health,
            reader,
            verifier,
            max_entry_bytes,
            recovery,
            _lock: lock,
        })
    }

    /// Appends an entry. `done` is called exactly once:
    ///
    /// - with `Ok` only after the batch holding the entry was written and `fdatasync`'d and a
    ///   checkpoint covering it was signed (and is durable in the same write) — the caller MAY
    ///   then release the response; with [`Durability::Write`], after the batch and its
    ///   checkpoint were written, before their `fdatasync`;
    /// - with `Err` if the draft is invalid, the ledger is unhealthy, overloaded or closing, or
    ///   the batch failed — the caller MUST NOT release the response.
    ///
    /// `done` runs on one of the ledger's threads (or, for errors found before queueing, on the
    /// calling thread). It MUST NOT block and MUST NOT panic: hand the result to a channel or a
    /// oneshot (a `tokio::sync::oneshot::Sender::send` is fine). It MUST NOT append and wait for
    /// that append from inside `done`.
    pub fn append<F>(&self, draft: EntryDraft, done: F)
    where
        F: FnOnce(Result<Appended, LedgerError>) + Send + 'static,
    {
        let done: Done = Box::new(done);
        if self.health.is_failed() {
            return done(Err(self.health.unavailable()));
        }
        let (split, session_member) = match prepare(&draft, self.max_entry_bytes) {
            Ok(p) => p,
            Err(e) => return done(Err(e)),
        };
        let prepared = Prepared {
            key: session_key(draft.session.as_deref()),
            split,
            session_member,
            waiter: Waiter::new(done),
        };
        let Some(sender) = &self.sender else {
            return prepared.waiter.answer(Err(LedgerError::Closed));
        };
        match sender.try_send(Request::Append(prepared)) {
            Ok(()) => {}
            Err(TrySendError::Full(Request::Append(p))) => {
                p.waiter.answer(Err(LedgerError::Overloaded))
            }
            Err(TrySendError::Disconnected(Request::Append(p))) => {
                p.waiter.answer(Err(LedgerError::Closed));
            }
        }
    }

    /// Appends an entry and waits for the outcome (see [`append`](Self::append)). For threads
    /// that may block; async callers use `append` with a oneshot channel.
    pub fn append_blocking(&self, draft: EntryDraft) -> Result<Appended, LedgerError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.append(draft, move |result| {
            let _ = tx.send(result);
        });
        rx.recv().unwrap_or(Err(LedgerError::Closed))
    }

    /// `false` once a write or sync has failed; every append then fails until the process
    /// reopens the ledger. Wire it to readiness (`/readyz`).
    pub fn is_healthy(&self) -> bool {
        !self.health.is_failed()
    }

    /// The verifier key of the ledger's checkpoints (what `warden audit pubkey` prints).
    pub fn verifier(&self) -> &NoteVerifier {
        &self.verifier
    }

    /// What [`open`](Self::open) found and repaired.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// A read handle sharing this ledger's view (cheap to clone).
    pub fn reader(&self) -> &LedgerReader {
        &self.reader
    }

    /// The number of committed entries.
    pub fn size(&self) -> u64 {
        self.reader.size()
    }

    /// The latest signed checkpoint (`None` while the ledger is empty).
    pub fn latest_checkpoint(&self) -> Option<Arc<SignedCheckpoint>> {
        self.reader.latest_checkpoint()
    }

    /// The latest checkpoint whose batch is known to be on disk: with [`Durability::Fsync`] the
    /// latest one; with [`Durability::Write`] the latest synced one. Publish this one (to a
    /// witness, an anchor program), never a checkpoint a power loss could take back.
    pub fn durable_checkpoint(&self) -> Option<Arc<SignedCheckpoint>> {
        self.reader.durable_checkpoint()
    }

    /// The exact bytes of entry `index`.
    pub fn entry(&self, index: u64) -> Result<Vec<u8>, LedgerError> {
        self.reader.entry(index)
    }

    /// Committed entries from `from` on, as `(index, bytes)`, streamed.
    pub fn iter(&self, from: u64) -> Result<Entries, LedgerError> {
        self.reader.iter(from)
    }

    /// Every checkpoint signed so far, oldest first, streamed.
    pub fn checkpoints(&self) -> Result<Checkpoints, LedgerError> {
        self.reader.checkpoints()
    }

    /// The receipt of entry `index` in the latest checkpoint.
    pub fn prove(&self, index: u64) -> Result<Receipt, LedgerError> {
        self.reader.prove(index)
    }

    /// The consistency proof between the trees of `old` and `new` entries.
    pub fn consistency(&self, old: u64, new: u64) -> Result<Vec<Hash>, LedgerError> {
        self.reader.consistency(old, new)
    }

    /// Finishes queued appends, syncs every file and stops the writer; reports a final failure.
    pub fn close(mut self) -> Result<(), LedgerError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), LedgerError> {
        self.sender.take();
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .unwrap_or_else(|_| Err(LedgerError::Corrupt("the writer thread panicked".into()))),
            None => Ok(()),
        }
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

impl fmt::Debug for Ledger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ledger")
            .field("dir", &self.reader.dir())
            .field("size", &self.size())
            .field("healthy", &self.is_healthy())
            .finish()
    }
}

#[cfg(test)]
mod tests;
