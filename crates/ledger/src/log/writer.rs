//! The ledger's single writer thread: batching (group commit), sealing segments, and answering
//! callers.
//!
//! It owns every file handle that writes. It MUST NOT answer a caller with `Ok` before the
//! caller's batch — entries and checkpoint, in one `write` — has been `fdatasync`'d (with
//! `Durability::Write`: written, and then synced within the interval), and MUST NOT copy a
//! checkpoint to `checkpoints` or the anchor before its batch is synced. After any write or sync
//! failure it answers every caller with an error, forever (see the module docs of
//! [`crate::log`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Write as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::time::Instant;

use super::format::{
    CHECKPOINT, ENTRY, Manifest, SessionKey, begin_record, finish_record, push_record,
    segment_header,
};
use super::reader::{FileHashes, LedgerReader};
use super::recover::{State, create_segment, write_manifest};
use super::{
    Appended, BatchStats, Durability, Health, LedgerError, LedgerOptions, Prepared, Request,
    Waiter, io_err, io_err_with,
};
use crate::checkpoint::{Checkpoint, SignedCheckpoint};
use crate::tree::{Hash, HashReader, stored_hash_count};

/// What a fault hook is asked about (tests only).
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FaultPoint {
    /// Before writing a batch to the segment.
    SegmentWrite,
    /// Before `fdatasync` of the segment.
    SegmentSync,
}

/// A test-only seam: called before each segment write and sync; an `Err` is returned in place
/// of the real operation.
#[cfg(test)]
#[derive(Clone)]
pub(crate) struct FaultHook(pub(crate) Arc<dyn Fn(FaultPoint) -> io::Result<()> + Send + Sync>);

#[cfg(test)]
impl std::fmt::Debug for FaultHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FaultHook")
    }
}

pub(crate) struct Writer {
    dir: PathBuf,
    opts: LedgerOptions,
    origin: String,
    state: State,
    reader: LedgerReader,
    health: Arc<Health>,
    /// Reused buffers.
    buf: Vec<u8>,
    stored: Vec<Hash>,
    scratch: Vec<u8>,
    /// With `Durability::Write`: batches written but not yet synced.
    unsynced: Option<Unsynced>,
}

/// Written batches waiting for their `fdatasync` (`Durability::Write` only).
struct Unsynced {
    /// When the oldest of them was written: the sync is due `sync_interval` later.
    since: Instant,
    /// Their checkpoint records, copied to `checkpoints` and the anchor once synced.
    checkpoints: Vec<u8>,
    /// The newest of their checkpoints.
    latest: Arc<SignedCheckpoint>,
}

/// One entry of the batch being committed.
struct Staged {
    index: u64,
    leaf: Hash,
    range: std::ops::Range<usize>,
}

impl Writer {
    pub(crate) fn new(
        state: State,
        opts: LedgerOptions,
        reader: LedgerReader,
        health: Arc<Health>,
    ) -> Writer {
        Writer {
            dir: reader.dir().to_owned(),
            origin: opts.signer.name().to_owned(),
            opts,
            state,
            reader,
            health,
            buf: Vec::with_capacity(1 << 20),
            stored: Vec::new(),
            scratch: Vec::new(),
            unsynced: None,
        }
    }

    fn sync_interval(&self) -> Option<std::time::Duration> {
        match self.opts.durability {
            Durability::Fsync => None,
            Durability::Write { sync_interval } => Some(sync_interval),
        }
    }

    /// When the unsynced batches must be synced (`None`: nothing is waiting).
    fn sync_due(&self) -> Option<Instant> {
        let interval = self.sync_interval()?;
        self.unsynced.as_ref().map(|u| u.since + interval)
    }

    /// Runs until every sender is gone, then syncs the files.
    pub(crate) fn run(mut self, requests: Receiver<Request>) -> Result<(), LedgerError> {
        // Proofs and callbacks run on a second thread, so the next batch's write and fdatasync
        // overlap the previous batch's answers. Bounded: if answering falls behind, the writer
        // waits instead of queueing without limit.
        let hashes = self
            .state
            .hashes
            .try_clone()
            .map_err(io_err("duplicating the tree.hashes handle"))?;
        let (done_tx, done_rx) = mpsc::sync_channel::<Completed>(4);
        let completer = std::thread::Builder::new()
            .name("warden-ledger-answer".into())
            .spawn(move || {
                for completed in done_rx {
                    completed.answer(&hashes);
                }
            })
            .map_err(io_err("starting the answer thread"))?;
        let result = self.sequence(&requests, &done_tx);
        drop(done_tx);
        let _ = completer.join();
        result.and_then(|()| self.finish())
    }

    fn sequence(
        &mut self,
        requests: &Receiver<Request>,
        done: &SyncSender<Completed>,
    ) -> Result<(), LedgerError> {
        let max = self.opts.batch_max_entries.max(1);
        let wait = self.opts.batch_max_wait;
        let mut batch: Vec<Prepared> = Vec::with_capacity(max);
        let mut last_batch = 1usize;
        loop {
            // Idle with unsynced batches: wake up when their sync is due.
            let first = match self.sync_due() {
                None => match requests.recv() {
                    Ok(Request::Append(p)) => p,
                    Err(_) => break,
                },
                Some(due) => {
                    match requests.recv_timeout(due.saturating_duration_since(Instant::now())) {
                        Ok(Request::Append(p)) => p,
                        Err(RecvTimeoutError::Timeout) => {
                            if let Err(e) = self.sync_written() {
                                self.health.fail(e.to_string());
                            }
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
            };
            batch.push(first);
            // Take whatever is already queued.
            while batch.len() < max {
                match requests.try_recv() {
                    Ok(Request::Append(p)) => batch.push(p),
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
            }
            // Concurrent callers were seen: give them a moment to join this batch, up to the
            // size of the previous one (a lone caller never waits).
            let target = last_batch.min(max);
            if batch.len() < target && !wait.is_zero() {
                let deadline = Instant::now() + wait;
                while batch.len() < target {
                    let now = Instant::now();
                    if now >= deadline {
                        break;
                    }
                    match requests.recv_timeout(deadline - now) {
                        Ok(Request::Append(p)) => batch.push(p),
                        Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                    }
                }
            }
            last_batch = batch.len();
            if let Some(completed) = self.commit(&mut batch) {
                // With `Durability::Write` there is no fdatasync for the answers to overlap, and
                // the hand-off to the answer thread cost more than it saved (A/B, chat: p50 -3%
                // at c=1, req/s +3% at c=64 answering here).
                if self.sync_interval().is_some() {
                    completed.answer(&self.state.hashes);
                } else if let Err(mpsc::SendError(completed)) = done.send(completed) {
                    // The answer thread only stops if it panicked; answer here then.
                    completed.answer(&self.state.hashes);
                }
            }
        }
        Ok(())
    }

    /// Syncs everything at shutdown, so the next open rescans nothing it need not.
    fn finish(&mut self) -> Result<(), LedgerError> {
        if self.health.is_failed() {
            return Err(self.health.unavailable());
        }
        self.sync_written()?;
        let s = &self.state;
        for (file, name) in [
            (&s.segment, "segment"),
            (&s.hashes, "tree.hashes"),
            (&s.offsets, "entries.offsets"),
            (&s.checkpoints, "checkpoints"),
        ] {
            file.sync_data()
                .map_err(io_err(format!("syncing {name}")))?;
        }
        if let Some(anchor) = &s.anchor {
            anchor.sync_data().map_err(io_err("syncing the anchor"))?;
        }
        Ok(())
    }

    fn commit(&mut self, batch: &mut Vec<Prepared>) -> Option<Completed> {
        if self.health.is_failed() {
            let err = self.health.unavailable();
            for p in batch.drain(..) {
                p.waiter.answer(Err(err.clone()));
            }
            return None;
        }
        match self.write_batch(batch) {
            Ok((staged, checkpoint)) => Some(Completed {
                waiters: batch.drain(..).map(|p| p.waiter).collect(),
                staged,
                checkpoint,
                stored: std::mem::take(&mut self.stored),
                bytes: std::mem::replace(&mut self.buf, Vec::with_capacity(1 << 16)),
            }),
            Err(e) => {
                self.health.fail(e.to_string());
                for p in batch.drain(..) {
                    p.waiter.answer(Err(e.clone()));
                }
                None
            }
        }
    }

    /// Sequences, integrates and durably writes one batch.
    fn write_batch(
        &mut self,
        batch: &[Prepared],
    ) -> Result<(Vec<Staged>, Arc<SignedCheckpoint>), LedgerError> {
        let estimate: usize = batch
            .iter()
            .map(|p| p.split.len() + p.session_member.len() + 200)
            .sum::<usize>()
            + 512;
        if self.state.segment_len > super::SEGMENT_HEADER_LEN
            && self.state.segment_len + estimate as u64 > self.opts.segment_bytes
        {
            self.seal()?;
        }

        let start_size = self.state.frontier.size();
        let base = self.state.segment_len;
        self.buf.clear();
        self.stored.clear();
        self.scratch.clear();
        let mut staged = Vec::with_capacity(batch.len());
        let mut offsets = Vec::with_capacity(batch.len() * 8);
        let mut members = String::with_capacity(96);
        for (k, p) in batch.iter().enumerate() {
            let index = start_size + k as u64;
            let start = begin_record(&mut self.buf);
            let prev = self.state.sessions.get(&p.key).copied();
            // Both members go into one reused buffer: this loop runs once per entry.
            members.clear();
            let _ = write!(members, "\"index\":{index}");
            let index_end = members.len();
            match prev {
                Some(h) => {
                    let _ = write!(members, "\"prev\":\"{}\"", h.to_hex());
                }
                None => members.push_str("\"prev\":null"),
            }
            p.split.assemble(
                &[
                    &members.as_bytes()[..index_end],
                    &members.as_bytes()[index_end..],
                    &p.session_member,
                ],
                &mut self.buf,
            );
            let leaf = finish_record(&mut self.buf, start, ENTRY);
            offsets.extend_from_slice(&(base + start as u64).to_le_bytes());
            self.state.sessions.insert(p.key, leaf);
            self.state.frontier.push(leaf, &mut self.stored);
            let payload = start + super::format::RECORD_HEADER_LEN;
            staged.push(Staged {
                index,
                leaf,
                range: payload..self.buf.len() - 4,
            });
        }
        let size = self.state.frontier.size();
        let checkpoint = Checkpoint::new(self.origin.clone(), size, self.state.frontier.root())
            .sign(&self.opts.signer)?;
        let cp_start = self.buf.len();
        push_record(&mut self.buf, CHECKPOINT, checkpoint.note().as_bytes());

        // One write, one fdatasync: the batch and its checkpoint become durable together. (With
        // `Durability::Write` the fdatasync waits for `sync_written`.)
        let sync_start = Instant::now();
        self.segment_write()?;
        let sync = sync_start.elapsed();
        self.state.segment_len += self.buf.len() as u64;

        // Derived files and copies of the checkpoint (synced at seal and shutdown; rebuilt from
        // the segment by recovery if lost).
        let context = |what: &str| format!("appending to {what} after entry {}", size - 1);
        for h in &self.stored {
            self.scratch.extend_from_slice(&h.0);
        }
        self.state
            .hashes
            .write_all(&self.scratch)
            .map_err(io_err_with(|| context("tree.hashes")))?;
        self.state
            .offsets
            .write_all(&offsets)
            .map_err(io_err_with(|| context("entries.offsets")))?;
        let checkpoint = Arc::new(checkpoint);
        let durable = match self.sync_interval() {
            None => {
                copy_checkpoints(&mut self.state, &self.buf[cp_start..], size)?;
                Some(self.state.checkpoints_len)
            }
            Some(_) => {
                let unsynced = self.unsynced.get_or_insert_with(|| Unsynced {
                    since: sync_start,
                    checkpoints: Vec::new(),
                    latest: checkpoint.clone(),
                });
                unsynced
                    .checkpoints
                    .extend_from_slice(&self.buf[cp_start..]);
                unsynced.latest = checkpoint.clone();
                if self.sync_due().is_some_and(|due| due <= Instant::now()) {
                    // Due under load: sync this batch with the ones before it.
                    self.sync_written()?;
                    Some(self.state.checkpoints_len)
                } else {
                    None
                }
            }
        };
        self.reader.publish(size, checkpoint.clone(), durable);
        // Durable and published: only now is the batch "committed" for an observer, so a batch
        // that fails on a derived file (and is answered with an error) is never counted.
        if let Some(observer) = &self.opts.observer {
            observer.batch_committed(&BatchStats {
                entries: staged.len(),
                bytes: self.buf.len() as u64,
                sync,
                tree_size: size,
            });
        }
        Ok((staged, checkpoint))
    }

    fn segment_write(&mut self) -> Result<(), LedgerError> {
        let (first, last) = (self.state.segment_first, self.state.frontier.size() - 1);
        let context = |what: &str| format!("{what} segment {first} (entries up to {last})");
        #[cfg(test)]
        if let Some(hook) = &self.opts.fault {
            (hook.0)(FaultPoint::SegmentWrite).map_err(io_err(context("writing")))?;
        }
        self.state
            .segment
            .write_all(&self.buf)
            .map_err(io_err_with(|| context("writing")))?;
        if self.sync_interval().is_some() {
            return Ok(());
        }
        self.segment_sync()
    }

    fn segment_sync(&self) -> Result<(), LedgerError> {
        let (first, last) = (self.state.segment_first, self.state.frontier.size() - 1);
        let context = |what: &str| format!("{what} segment {first} (entries up to {last})");
        #[cfg(test)]
        if let Some(hook) = &self.opts.fault {
            (hook.0)(FaultPoint::SegmentSync).map_err(io_err(context("syncing")))?;
        }
        self.state
            .segment
            .sync_data()
            .map_err(io_err_with(|| context("syncing")))
    }

    /// `Durability::Write`: syncs the written batches, then copies their checkpoints to
    /// `checkpoints` and the anchor and publishes the newest as durable. A no-op when nothing
    /// is waiting.
    fn sync_written(&mut self) -> Result<(), LedgerError> {
        let Some(unsynced) = self.unsynced.take() else {
            return Ok(());
        };
        self.segment_sync()?;
        copy_checkpoints(
            &mut self.state,
            &unsynced.checkpoints,
            unsynced.latest.size(),
        )?;
        self.reader
            .publish_durable(unsynced.latest, self.state.checkpoints_len);
        Ok(())
    }

    /// Closes the active segment: syncs the derived files, starts a new segment at the current
    /// size, and records the manifest that lets recovery start there.
    fn seal(&mut self) -> Result<(), LedgerError> {
        self.sync_written()?;
        let s = &self.state;
        for (file, name) in [
            (&s.hashes, "tree.hashes"),
            (&s.offsets, "entries.offsets"),
            (&s.checkpoints, "checkpoints"),
        ] {
            file.sync_data()
                .map_err(io_err(format!("syncing {name} at seal")))?;
        }
        if let Some(anchor) = &s.anchor {
            anchor
                .sync_data()
                .map_err(io_err("syncing the anchor at seal"))?;
        }
        let first = self.state.frontier.size();
        let segment = create_segment(&self.dir, first)?;
        self.state.segment = segment;
        self.state.segment_first = first;
        self.state.segment_len = segment_header(first).len() as u64;
        self.reader.add_segment(first);
        let manifest = Manifest {
            first,
            hashes_len: stored_hash_count(first) * 32,
            offsets_len: first * 8,
            checkpoints_len: self.state.checkpoints_len,
            segments: self.reader.view().segments,
            sessions: self.sessions_snapshot(),
        };
        write_manifest(&self.dir, &manifest)
    }

    fn sessions_snapshot(&self) -> Vec<(SessionKey, Hash)> {
        let mut v: Vec<_> = self.state.sessions.iter().map(|(k, h)| (*k, *h)).collect();
        v.sort_unstable();
        v
    }
}

/// Appends checkpoint records of synced batches (up to the tree size `size`) to `checkpoints`
/// and the anchor.
fn copy_checkpoints(state: &mut State, records: &[u8], size: u64) -> Result<(), LedgerError> {
    let context = |what: &str| format!("appending to {what} after entry {}", size - 1);
    state
        .checkpoints
        .write_all(records)
        .map_err(io_err_with(|| context("checkpoints")))?;
    state.checkpoints_len += records.len() as u64;
    if let Some(anchor) = &mut state.anchor {
        anchor
            .write_all(records)
            .map_err(io_err_with(|| context("the anchor")))?;
    }
    Ok(())
}

/// A durably committed batch, waiting for its callers to be answered.
struct Completed {
    waiters: Vec<Waiter>,
    staged: Vec<Staged>,
    checkpoint: Arc<SignedCheckpoint>,
    /// The stored hashes the batch appended.
    stored: Vec<Hash>,
    /// The batch as written (entries are sliced out of it).
    bytes: Vec<u8>,
}

impl Completed {
    /// Answers every caller with its entry, checkpoint and inclusion proof.
    fn answer(self, hashes: &File) {
        let size = self.checkpoint.size();
        let start_size = size - self.staged.len() as u64;
        let reader = BatchHashes {
            file: FileHashes {
                file: hashes,
                count: stored_hash_count(size),
            },
            tail_base: stored_hash_count(start_size),
            tail: &self.stored,
            memo: RefCell::new(HashMap::new()),
        };
        for (waiter, s) in self.waiters.into_iter().zip(self.staged) {
            let result = crate::tree::inclusion_proof(size, s.index, &reader)
                .map_err(LedgerError::from)
                .map(|proof| Appended {
                    index: s.index,
                    leaf_hash: s.leaf,
                    entry: self.bytes[s.range].to_vec(),
                    checkpoint: self.checkpoint.clone(),
                    proof,
                });
            waiter.answer(result);
        }
    }
}

/// Stored hashes for a batch's proofs: this batch's new hashes from memory, older ones from the
/// file, each older one read once per batch.
struct BatchHashes<'a> {
    file: FileHashes<'a>,
    tail_base: u64,
    tail: &'a [Hash],
    memo: RefCell<HashMap<u64, Hash>>,
}

impl HashReader for BatchHashes<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> io::Result<Vec<Hash>> {
        let mut memo = self.memo.borrow_mut();
        indexes
            .iter()
            .map(|&i| {
                if let Some(h) = i
                    .checked_sub(self.tail_base)
                    .and_then(|k| self.tail.get(k as usize))
                {
                    return Ok(*h);
                }
                if let Some(h) = memo.get(&i) {
                    return Ok(*h);
                }
                let h = self.file.read_hashes(&[i])?[0];
                memo.insert(i, h);
                Ok(h)
            })
            .collect()
    }
}
