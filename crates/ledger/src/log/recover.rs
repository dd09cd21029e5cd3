//! Opening a ledger directory for appending: creating it, or recovering it after any stop.
//!
//! Recovery trusts what was sealed (everything before the manifest's segment, whose derived files
//! were synced) and re-reads the rest: it re-hashes the entries after the seal, checks each
//! checkpoint it meets against the recomputed tree, rebuilds the derived files and the session
//! chains, cuts a torn or incomplete final batch (never acknowledged: acknowledgement follows the
//! batch's `fdatasync`), and cross-checks the checkpoints file and the anchor. It MUST NOT cut
//! anything a checkpoint outside the segments still vouches for: that is truncation, reported as
//! [`LedgerError::Truncated`], and the files are left untouched.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write as _};
use std::os::unix::fs::FileExt as _;
use std::path::Path;

use super::format::{
    CHECKPOINT, CHECKPOINTS_FILE, CHECKPOINTS_HEADER_LEN, CHECKPOINTS_MAGIC, ENTRY, HASHES_FILE,
    LOCK_FILE, MANIFEST_FILE, Manifest, OFFSETS_FILE, RecordFault, RecordReader,
    SEGMENT_HEADER_LEN, SEGMENT_MAGIC, SEGMENTS_DIR, SessionKey, list_segments, push_record,
    read_record_ending_at, segment_header, segment_path, session_key,
};
use super::reader::{FileHashes, LedgerReader, View};
use super::{LedgerError, LedgerOptions, RecoveryReport, io_err};
use crate::checkpoint::SignedCheckpoint;
use crate::jcs::{Slot, check_entry};
use crate::tree::{Frontier, Hash, HashReader, stored_hash_count, tree_root};

/// Everything the writer needs, as recovered.
pub(crate) struct State {
    pub(crate) segment: File,
    pub(crate) segment_first: u64,
    pub(crate) segment_len: u64,
    pub(crate) hashes: File,
    pub(crate) offsets: File,
    pub(crate) checkpoints: File,
    pub(crate) checkpoints_len: u64,
    pub(crate) anchor: Option<File>,
    pub(crate) frontier: Frontier,
    pub(crate) sessions: HashMap<SessionKey, Hash>,
}

/// Takes the directory's append lock.
pub(crate) fn lock(dir: &Path) -> Result<File, LedgerError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err(format!("opening {}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(LedgerError::Locked(dir.to_owned())),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(io_err(format!("locking {}", path.display()))(e))
        }
    }
}

fn sync_dir(path: &Path) -> Result<(), LedgerError> {
    File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(io_err(format!("syncing directory {}", path.display())))
}

fn open_rw(path: &Path) -> Result<File, LedgerError> {
    OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .map_err(io_err(format!("opening {}", path.display())))
}

fn file_len(file: &File, what: &str) -> Result<u64, LedgerError> {
    Ok(file
        .metadata()
        .map_err(io_err(format!("reading {what}")))?
        .len())
}

/// Creates segment `first` with its header, durably.
pub(crate) fn create_segment(dir: &Path, first: u64) -> Result<File, LedgerError> {
    let path = segment_path(dir, first);
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create_new(true)
        .open(&path)
        .map_err(io_err(format!("creating {}", path.display())))?;
    file.write_all(&segment_header(first))
        .and_then(|()| file.sync_data())
        .map_err(io_err(format!("writing {}", path.display())))?;
    sync_dir(&dir.join(SEGMENTS_DIR))?;
    Ok(file)
}

/// Replaces the manifest atomically and durably.
pub(crate) fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<(), LedgerError> {
    let tmp = dir.join(format!("{MANIFEST_FILE}.tmp"));
    let context = || format!("writing {}", tmp.display());
    let mut file = File::create(&tmp).map_err(io_err(context()))?;
    file.write_all(&manifest.encode())
        .and_then(|()| file.sync_all())
        .map_err(io_err(context()))?;
    std::fs::rename(&tmp, dir.join(MANIFEST_FILE)).map_err(io_err("replacing the manifest"))?;
    sync_dir(dir)
}

fn create_fresh(dir: &Path) -> Result<(), LedgerError> {
    for name in [CHECKPOINTS_FILE, MANIFEST_FILE] {
        let path = dir.join(name);
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if len > CHECKPOINTS_HEADER_LEN {
            return Err(LedgerError::Corrupt(format!(
                "{} exists but the segments are missing",
                path.display()
            )));
        }
    }
    std::fs::create_dir_all(dir.join(SEGMENTS_DIR))
        .map_err(io_err("creating the segments directory"))?;
    create_segment(dir, 0)?;
    for name in [HASHES_FILE, OFFSETS_FILE] {
        File::create(dir.join(name)).map_err(io_err(format!("creating {name}")))?;
    }
    let mut cps =
        File::create(dir.join(CHECKPOINTS_FILE)).map_err(io_err("creating checkpoints"))?;
    cps.write_all(CHECKPOINTS_MAGIC)
        .and_then(|()| cps.sync_all())
        .map_err(io_err("writing checkpoints"))?;
    write_manifest(
        dir,
        &Manifest {
            checkpoints_len: CHECKPOINTS_HEADER_LEN,
            segments: vec![0],
            ..Manifest::default()
        },
    )
}

/// Opens a checkpoints-format file (the `checkpoints` file or an anchor), writing the header if
/// it is new. A file with a foreign header is refused.
fn open_checkpoint_file(path: &Path) -> Result<File, LedgerError> {
    let mut file = open_rw(path)?;
    let len = file_len(&file, &path.display().to_string())?;
    if len < CHECKPOINTS_HEADER_LEN {
        file.set_len(0)
            .and_then(|()| file.write_all(CHECKPOINTS_MAGIC))
            .and_then(|()| file.sync_data())
            .map_err(io_err(format!("writing {}", path.display())))?;
        return Ok(file);
    }
    let mut magic = [0u8; 8];
    file.read_exact_at(&mut magic, 0)
        .map_err(io_err(format!("reading {}", path.display())))?;
    if &magic != CHECKPOINTS_MAGIC {
        return Err(LedgerError::Corrupt(format!(
            "{} is not a ledger checkpoints file",
            path.display()
        )));
    }
    Ok(file)
}

/// The fields the ledger owns in an entry, as read back from its bytes.
pub(crate) struct EntryFields {
    pub(crate) index: u64,
    pub(crate) session: Option<String>,
    pub(crate) prev: Option<Hash>,
}

/// Checks that an entry is canonical JSON (RFC 8785) and extracts `index`, `session` and `prev`.
pub(crate) fn entry_fields(payload: &[u8]) -> Result<EntryFields, String> {
    let members = check_entry(payload).map_err(str::to_owned)?;
    let index = members.index.ok_or("no integer `index`")?;
    let session = match members.session {
        Slot::Null => None,
        Slot::Text(s) => Some(s),
        _ => return Err("`session` must be a string or null".into()),
    };
    let prev = match members.prev {
        Slot::Null => None,
        Slot::Text(s) if s.len() == 64 && !s.bytes().any(|b| b.is_ascii_uppercase()) => {
            Some(Hash::from_hex(&s).ok_or("`prev` is not a hex hash")?)
        }
        _ => return Err("`prev` must be a lowercase hex hash or null".into()),
    };
    Ok(EntryFields {
        index,
        session,
        prev,
    })
}

/// Walks a checkpoints-format file alongside the segments' embedded checkpoints.
struct Cursor {
    records: RecordReader,
    payload: Vec<u8>,
    /// The next record: (size, note bytes).
    peeked: Option<(u64, Vec<u8>)>,
    /// Where valid data ends, once the end (or damage) was reached.
    end: Option<u64>,
}

impl Cursor {
    fn new(path: &Path, start: u64) -> Result<Cursor, LedgerError> {
        let mut file = File::open(path).map_err(io_err(format!("reading {}", path.display())))?;
        file.seek(SeekFrom::Start(start))
            .map_err(io_err(format!("reading {}", path.display())))?;
        Ok(Cursor {
            records: RecordReader::new(file, start),
            payload: Vec::new(),
            peeked: None,
            end: None,
        })
    }

    fn peek(&mut self) -> Result<Option<u64>, LedgerError> {
        if let Some((size, _)) = &self.peeked {
            return Ok(Some(*size));
        }
        if self.end.is_some() {
            return Ok(None);
        }
        let start = self.records.pos();
        match self.records.next(&mut self.payload) {
            Ok(Some(meta)) if meta.kind == CHECKPOINT => {
                let size = std::str::from_utf8(&self.payload)
                    .ok()
                    .and_then(|n| SignedCheckpoint::parse_unverified(n).ok())
                    .map(|c| c.size())
                    .ok_or_else(|| {
                        LedgerError::Corrupt(format!(
                            "unreadable checkpoint at offset {start} of the checkpoints file"
                        ))
                    })?;
                self.peeked = Some((size, std::mem::take(&mut self.payload)));
                Ok(Some(size))
            }
            Ok(Some(_)) => Err(LedgerError::Corrupt(
                "non-checkpoint record in a checkpoints file".into(),
            )),
            Ok(None) | Err(RecordFault::Truncated | RecordFault::BadHeader) => {
                self.end = Some(start);
                Ok(None)
            }
            Err(RecordFault::BadRecord { .. }) => Err(LedgerError::Corrupt(format!(
                "damaged checkpoint record at offset {start} of the checkpoints file"
            ))),
            Err(RecordFault::Io(e)) => Err(io_err("reading checkpoints")(e)),
        }
    }

    fn take(&mut self) -> Option<(u64, Vec<u8>)> {
        self.peeked.take()
    }
}

/// Recovery's progress through the segments.
struct Scan<'a> {
    dir: &'a Path,
    origin: &'a str,
    frontier: Frontier,
    sessions: HashMap<SessionKey, Hash>,
    /// Since the last checkpoint: new stored hashes, offsets, session undo log, entry count.
    stored: Vec<Hash>,
    offsets: Vec<u8>,
    undo: Vec<(SessionKey, Option<Hash>)>,
    pending: u64,
    committed: Frontier,
    latest: Option<Vec<u8>>,
    hashes: &'a mut File,
    offsets_file: &'a mut File,
    checkpoints: &'a mut File,
    cursor: Cursor,
    checkpoints_truncated: bool,
    report: RecoveryReport,
}

impl Scan<'_> {
    fn entry(
        &mut self,
        segment: u64,
        offset: u64,
        payload: &[u8],
        leaf: Hash,
    ) -> Result<(), LedgerError> {
        let size = self.frontier.size();
        let corrupt = |why: String| {
            LedgerError::Corrupt(format!(
                "entry at offset {offset} of segment {segment} (expected index {size}): {why}"
            ))
        };
        let fields = entry_fields(payload).map_err(corrupt)?;
        if fields.index != size {
            return Err(corrupt(format!("it claims index {}", fields.index)));
        }
        let key = session_key(fields.session.as_deref());
        let prev = self.sessions.get(&key).copied();
        if fields.prev != prev {
            return Err(corrupt(
                "its `prev` does not match its session chain".into(),
            ));
        }
        self.undo.push((key, self.sessions.insert(key, leaf)));
        self.frontier.push(leaf, &mut self.stored);
        self.offsets.extend_from_slice(&offset.to_le_bytes());
        self.pending += 1;
        Ok(())
    }

    fn checkpoint(&mut self, segment: u64, offset: u64, payload: &[u8]) -> Result<(), LedgerError> {
        let corrupt = |why: String| {
            LedgerError::Corrupt(format!(
                "checkpoint at offset {offset} of segment {segment}: {why}"
            ))
        };
        let note = std::str::from_utf8(payload).map_err(|_| corrupt("not UTF-8".into()))?;
        let cp = SignedCheckpoint::parse_unverified(note).map_err(|e| corrupt(e.to_string()))?;
        if cp.checkpoint().origin != self.origin {
            return Err(corrupt(format!(
                "origin {:?} is not the signing key's name {:?} (wrong key for this ledger?)",
                cp.checkpoint().origin,
                self.origin
            )));
        }
        if cp.size() != self.frontier.size() || cp.root() != self.frontier.root() {
            return Err(corrupt(format!(
                "it covers {} entries with root {}, but the entries before it give {} with root {}",
                cp.size(),
                cp.root(),
                self.frontier.size(),
                self.frontier.root()
            )));
        }
        // The checkpoints file must hold the same checkpoint, or end before it.
        match self.cursor.peek()? {
            Some(s) if s == cp.size() => {
                let (_, copy) = self.cursor.take().expect("peeked");
                if copy != payload {
                    return Err(LedgerError::Corrupt(format!(
                        "the checkpoints file holds a different checkpoint for size {s}: the log forked"
                    )));
                }
            }
            Some(s) => {
                return Err(LedgerError::Corrupt(format!(
                    "the checkpoints file holds a checkpoint for size {s} where the segments have one for {}",
                    cp.size()
                )));
            }
            None => {
                if !self.checkpoints_truncated {
                    let end = self.cursor.end.expect("peek returned None");
                    self.checkpoints
                        .set_len(end)
                        .map_err(io_err("cutting the checkpoints file's torn tail"))?;
                    self.checkpoints_truncated = true;
                }
                let mut record = Vec::with_capacity(payload.len() + 41);
                push_record(&mut record, CHECKPOINT, payload);
                self.checkpoints
                    .write_all(&record)
                    .map_err(io_err("restoring checkpoints"))?;
                self.report.restored_checkpoints += 1;
            }
        }
        // Commit the batch's derived data.
        let mut bytes = Vec::with_capacity(self.stored.len() * 32);
        for h in &self.stored {
            bytes.extend_from_slice(&h.0);
        }
        self.hashes
            .write_all(&bytes)
            .map_err(io_err("rebuilding tree.hashes"))?;
        self.offsets_file
            .write_all(&self.offsets)
            .map_err(io_err("rebuilding entries.offsets"))?;
        self.stored.clear();
        self.offsets.clear();
        self.undo.clear();
        self.report.rescanned_entries += self.pending;
        self.pending = 0;
        self.committed = self.frontier.clone();
        self.latest = Some(payload.to_vec());
        Ok(())
    }

    /// Forgets an incomplete final batch.
    fn roll_back(&mut self) {
        for (key, old) in self.undo.drain(..).rev() {
            match old {
                Some(h) => self.sessions.insert(key, h),
                None => self.sessions.remove(&key),
            };
        }
        self.frontier = self.committed.clone();
        self.report.dropped_entries = self.pending;
        self.pending = 0;
        self.stored.clear();
        self.offsets.clear();
    }

    /// Scans one segment; returns where its committed data ends.
    fn segment(&mut self, first: u64, is_last: bool) -> Result<u64, LedgerError> {
        let path = segment_path(self.dir, first);
        let mut file = File::open(&path).map_err(io_err(format!("opening {}", path.display())))?;
        let mut header = [0u8; SEGMENT_HEADER_LEN as usize];
        let got = file
            .read(&mut header)
            .map_err(io_err(format!("reading {}", path.display())))?;
        if got < header.len() {
            if is_last {
                return Ok(0); // torn header: the segment is rewritten empty
            }
            return Err(LedgerError::Corrupt(format!(
                "{} has no header",
                path.display()
            )));
        }
        if &header[..8] != SEGMENT_MAGIC || header[8..] != first.to_le_bytes() {
            return Err(LedgerError::Corrupt(format!(
                "{} has a wrong header",
                path.display()
            )));
        }
        let mut records = RecordReader::new(file, SEGMENT_HEADER_LEN);
        let mut payload = Vec::new();
        let mut good_end = SEGMENT_HEADER_LEN;
        loop {
            let at = records.pos();
            match records.next(&mut payload) {
                Ok(Some(meta)) if meta.kind == ENTRY => {
                    self.entry(first, meta.offset, &payload, meta.check)?;
                }
                Ok(Some(meta)) => {
                    self.checkpoint(first, meta.offset, &payload)?;
                    good_end = meta.end(payload.len());
                }
                Ok(None) => break,
                Err(RecordFault::Io(e)) => {
                    return Err(io_err(format!("reading {}", path.display()))(e));
                }
                Err(RecordFault::BadRecord { next }) if is_last => {
                    if super::format::committed_after(&path, next)
                        .map_err(io_err(format!("reading {}", path.display())))?
                    {
                        return Err(LedgerError::Corrupt(format!(
                            "damaged record at offset {at} of segment {first}, followed by committed batches"
                        )));
                    }
                    break;
                }
                Err(_) if is_last => break,
                Err(_) => {
                    return Err(LedgerError::Corrupt(format!(
                        "damaged record at offset {at} of sealed segment {first}"
                    )));
                }
            }
        }
        if self.pending > 0 && !is_last {
            return Err(LedgerError::Corrupt(format!(
                "sealed segment {first} ends inside a batch"
            )));
        }
        Ok(good_end)
    }
}

/// The last valid checkpoint in a checkpoints-format file, as (size, root), and where the file's
/// valid records end.
fn last_checkpoint(path: &Path, file: &File) -> Result<(Option<(u64, Hash)>, u64), LedgerError> {
    let len = file_len(file, &path.display().to_string())?;
    let (payload, end) = match read_record_ending_at(file, len, CHECKPOINTS_HEADER_LEN)
        .map_err(io_err(format!("reading {}", path.display())))?
    {
        Some((CHECKPOINT, p)) => (Some(p), len),
        _ => {
            let mut cursor = Cursor::new(path, CHECKPOINTS_HEADER_LEN)?;
            let mut last = None;
            while cursor.peek()?.is_some() {
                last = cursor.take().map(|(_, p)| p);
            }
            (last, cursor.end.unwrap_or(len))
        }
    };
    let Some(payload) = payload else {
        return Ok((None, end));
    };
    let cp = std::str::from_utf8(&payload)
        .ok()
        .and_then(|n| SignedCheckpoint::parse_unverified(n).ok())
        .ok_or_else(|| {
            LedgerError::Corrupt(format!("unreadable checkpoint in {}", path.display()))
        })?;
    Ok((Some((cp.size(), cp.root())), end))
}

/// Opens `dir` for appending (creating it if empty), recovering it as the module docs describe.
pub(crate) fn recover(
    dir: &Path,
    opts: &LedgerOptions,
) -> Result<(State, LedgerReader, RecoveryReport), LedgerError> {
    let mut segments = list_segments(dir).map_err(io_err("listing segments"))?;
    let created = segments.is_empty();
    if created {
        create_fresh(dir)?;
        segments = vec![0];
    }
    if segments[0] != 0 {
        return Err(LedgerError::Corrupt(format!(
            "the first segment starts at entry {}, not 0",
            segments[0]
        )));
    }
    let cps_path = dir.join(CHECKPOINTS_FILE);
    let mut checkpoints = open_checkpoint_file(&cps_path)?;
    let mut hashes = open_rw(&dir.join(HASHES_FILE))?;
    let mut offsets = open_rw(&dir.join(OFFSETS_FILE))?;

    // Start from the manifest if the derived files still cover it; otherwise from scratch.
    let from_scratch = Manifest {
        checkpoints_len: CHECKPOINTS_HEADER_LEN,
        ..Manifest::default()
    };
    let mut manifest = std::fs::read(dir.join(MANIFEST_FILE))
        .ok()
        .and_then(|b| Manifest::decode(&b))
        .unwrap_or_else(|| from_scratch.clone());
    // Every segment sealed before the manifest must still be there, and no other.
    let sealed = |list: &[u64]| -> Vec<u64> {
        list.iter()
            .copied()
            .filter(|&f| f < manifest.first)
            .collect()
    };
    if manifest.first > 0 && sealed(&manifest.segments) != sealed(&segments) {
        let missing: Vec<u64> = sealed(&manifest.segments)
            .into_iter()
            .filter(|f| !segments.contains(f))
            .collect();
        return Err(LedgerError::Corrupt(if missing.is_empty() {
            "the segments directory holds segments the manifest does not list".into()
        } else {
            format!("sealed segments are missing: {missing:?}")
        }));
    }
    if !segments.contains(&manifest.first)
        || file_len(&hashes, HASHES_FILE)? < manifest.hashes_len
        || file_len(&offsets, OFFSETS_FILE)? < manifest.offsets_len
        || file_len(&checkpoints, CHECKPOINTS_FILE)? < manifest.checkpoints_len
        || manifest.hashes_len != stored_hash_count(manifest.first) * 32
        || manifest.offsets_len != manifest.first * 8
    {
        manifest = from_scratch;
    }
    hashes
        .set_len(manifest.hashes_len)
        .map_err(io_err("truncating tree.hashes to the seal"))?;
    offsets
        .set_len(manifest.offsets_len)
        .map_err(io_err("truncating entries.offsets to the seal"))?;
    let peaks = FileHashes {
        file: &hashes,
        count: stored_hash_count(manifest.first),
    }
    .read_hashes(&Frontier::peak_indexes(manifest.first))
    .map_err(io_err("reading tree.hashes"))?;
    let frontier = Frontier::from_peaks(manifest.first, peaks);
    let sealed_latest = if manifest.checkpoints_len > CHECKPOINTS_HEADER_LEN {
        match read_record_ending_at(
            &checkpoints,
            manifest.checkpoints_len,
            CHECKPOINTS_HEADER_LEN,
        )
        .map_err(io_err("reading checkpoints"))?
        {
            Some((CHECKPOINT, p)) => Some(p),
            _ => {
                return Err(LedgerError::Corrupt(
                    "the checkpoints file does not match the manifest".into(),
                ));
            }
        }
    } else {
        None
    };

    let mut scan = Scan {
        dir,
        origin: opts.signer.name(),
        committed: frontier.clone(),
        frontier,
        sessions: manifest.sessions.iter().copied().collect(),
        stored: Vec::new(),
        offsets: Vec::new(),
        undo: Vec::new(),
        pending: 0,
        latest: sealed_latest,
        hashes: &mut hashes,
        offsets_file: &mut offsets,
        checkpoints: &mut checkpoints,
        cursor: Cursor::new(&cps_path, manifest.checkpoints_len)?,
        checkpoints_truncated: false,
        report: RecoveryReport {
            created,
            ..RecoveryReport::default()
        },
    };
    let last = *segments.last().expect("at least segment 0");
    let mut good_end = SEGMENT_HEADER_LEN;
    for &first in segments.iter().filter(|&&f| f >= manifest.first) {
        if first != scan.frontier.size() {
            return Err(LedgerError::Corrupt(format!(
                "segment {first} does not start where the previous one ends (entry {})",
                scan.frontier.size()
            )));
        }
        good_end = scan.segment(first, first == last)?;
    }
    scan.roll_back();
    let size = scan.frontier.size();

    // A checkpoint still listed after the recovered size means entries were removed.
    if let Some(witnessed) = scan.cursor.peek()?
        && witnessed > size
    {
        return Err(LedgerError::Truncated {
            size,
            witnessed,
            source_file: cps_path.display().to_string(),
        });
    }
    if scan.cursor.peek()?.is_some() {
        return Err(LedgerError::Corrupt(
            "the checkpoints file lists checkpoints the segments do not hold".into(),
        ));
    }

    // The latest checkpoint must be ours and match the tree.
    let latest = match &scan.latest {
        None => None,
        Some(payload) => {
            let note = std::str::from_utf8(payload)
                .map_err(|_| LedgerError::Corrupt("latest checkpoint is not UTF-8".into()))?;
            let cp = SignedCheckpoint::open(note, &opts.signer.verifier()).map_err(|e| {
                LedgerError::Corrupt(format!(
                    "the latest checkpoint does not verify with this signing key ({e}); \
                     is this the ledger's key?"
                ))
            })?;
            if cp.size() != size || cp.root() != scan.frontier.root() {
                return Err(LedgerError::Corrupt(format!(
                    "the latest checkpoint (size {}) does not match the entries (size {size})",
                    cp.size()
                )));
            }
            Some(cp)
        }
    };
    let mut report = std::mem::take(&mut scan.report);
    let sessions = std::mem::take(&mut scan.sessions);
    let frontier = scan.frontier.clone();
    drop(scan);

    // The anchor may lag (it is synced at seals), but never lead, and must agree with the tree.
    let anchor = match &opts.anchor {
        None => None,
        Some(path) => {
            let mut anchor = open_checkpoint_file(path)?;
            let (last, valid_end) = last_checkpoint(path, &anchor)?;
            anchor.set_len(valid_end).map_err(io_err(format!(
                "cutting the torn tail of {}",
                path.display()
            )))?;
            if let Some((asize, aroot)) = last {
                if asize > size {
                    return Err(LedgerError::Truncated {
                        size,
                        witnessed: asize,
                        source_file: path.display().to_string(),
                    });
                }
                let root = tree_root(
                    asize,
                    &FileHashes {
                        file: &hashes,
                        count: stored_hash_count(asize),
                    },
                )?;
                if root != aroot {
                    return Err(LedgerError::Corrupt(format!(
                        "the anchor's checkpoint for size {asize} disagrees with the log: the log forked"
                    )));
                }
                if asize < size
                    && let Some(cp) = &latest
                {
                    append_record(&mut anchor, cp.note().as_bytes(), path)?;
                }
            } else if let Some(cp) = &latest {
                append_record(&mut anchor, cp.note().as_bytes(), path)?;
            }
            Some(anchor)
        }
    };

    // Cut the torn or incomplete tail of the last segment, or rewrite a torn header.
    let segment_path_last = segment_path(dir, last);
    let segment = OpenOptions::new()
        .read(true)
        .append(true)
        .open(&segment_path_last)
        .map_err(io_err(format!("opening {}", segment_path_last.display())))?;
    let on_disk = file_len(&segment, "the last segment")?;
    if good_end == 0 {
        segment
            .set_len(0)
            .map_err(io_err("rewriting a torn segment header"))?;
        (&segment)
            .write_all(&segment_header(last))
            .map_err(io_err("rewriting a torn segment header"))?;
        good_end = SEGMENT_HEADER_LEN;
        report.truncated_bytes = on_disk;
    } else if on_disk > good_end {
        segment
            .set_len(good_end)
            .map_err(io_err("cutting the torn tail of the last segment"))?;
        report.truncated_bytes = on_disk - good_end;
    }
    segment
        .sync_data()
        .map_err(io_err("syncing the last segment"))?;
    let checkpoints_len = file_len(&checkpoints, CHECKPOINTS_FILE)?;
    report.size = size;

    let latest = latest.map(std::sync::Arc::new);
    let reader = LedgerReader::with_view(
        dir,
        View {
            size,
            durable: latest.clone(),
            latest,
            segments,
            checkpoints_end: checkpoints_len,
        },
    )?;
    Ok((
        State {
            segment,
            segment_first: last,
            segment_len: good_end,
            hashes,
            offsets,
            checkpoints,
            checkpoints_len,
            anchor,
            frontier,
            sessions,
        },
        reader,
        report,
    ))
}

fn append_record(file: &mut File, payload: &[u8], path: &Path) -> Result<(), LedgerError> {
    let mut record = Vec::new();
    push_record(&mut record, CHECKPOINT, payload);
    file.write_all(&record)
        .map_err(io_err(format!("appending to {}", path.display())))
}
