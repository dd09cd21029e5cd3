//! Reading a ledger directory: entries, checkpoints and proofs, for the appending process and for
//! tools (`warden audit show|prove|export`) that run beside it.
//!
//! A reader never writes and takes no lock. Its view is the latest checkpoint: the writer extends
//! the derived files before it publishes a checkpoint, so everything a reader can see is
//! complete. It does not verify signatures ([`crate::verify`] does).

use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use super::format::{
    CHECKPOINT, CHECKPOINTS_FILE, CHECKPOINTS_HEADER_LEN, ENTRY, HASHES_FILE, MANIFEST_FILE,
    Manifest, OFFSETS_FILE, RECORD_HEADER_LEN, RecordFault, RecordReader, SEGMENT_HEADER_LEN,
    list_segments, read_record_ending_at, record_check, segment_path,
};
use super::{LedgerError, io_err};
use crate::checkpoint::SignedCheckpoint;
use crate::receipt::Receipt;
use crate::tree::{
    Hash, HashReader, consistency_proof, inclusion_proof, stored_hash_count, stored_hash_index,
    tree_root,
};

/// A read handle on a ledger directory. Cheap to clone; clones share one view.
#[derive(Clone)]
pub struct LedgerReader {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    hashes: File,
    offsets: File,
    view: RwLock<View>,
    /// The most recently read segment, kept open.
    segment: Mutex<Option<(u64, Arc<File>)>>,
}

#[derive(Clone, Debug)]
pub(crate) struct View {
    pub(crate) size: u64,
    pub(crate) latest: Option<Arc<SignedCheckpoint>>,
    /// The latest checkpoint whose batch is synced (equal to `latest` unless the writer runs
    /// with `Durability::Write`).
    pub(crate) durable: Option<Arc<SignedCheckpoint>>,
    pub(crate) segments: Vec<u64>,
    pub(crate) checkpoints_end: u64,
}

/// Stored hashes read from `tree.hashes`, bounded by a tree size.
pub(crate) struct FileHashes<'a> {
    pub(crate) file: &'a File,
    pub(crate) count: u64,
}

impl HashReader for FileHashes<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> io::Result<Vec<Hash>> {
        indexes
            .iter()
            .map(|&i| {
                if i >= self.count {
                    return Err(io::Error::other(format!(
                        "stored hash {i} is beyond the tree"
                    )));
                }
                let mut h = [0u8; 32];
                self.file.read_exact_at(&mut h, i * 32)?;
                Ok(Hash(h))
            })
            .collect()
    }
}

fn open_read(path: &Path) -> Result<File, LedgerError> {
    File::open(path).map_err(io_err(format!("opening {}", path.display())))
}

impl LedgerReader {
    /// Opens `dir` for reading, as of its latest checkpoint. Fails with
    /// [`LedgerError::Corrupt`] if the derived files are behind the checkpoints (the ledger
    /// crashed and has not been reopened for appending since).
    pub fn open(dir: &Path) -> Result<LedgerReader, LedgerError> {
        let view = read_view(dir)?;
        LedgerReader::with_view(dir, view)
    }

    pub(crate) fn with_view(dir: &Path, view: View) -> Result<LedgerReader, LedgerError> {
        let hashes = open_read(&dir.join(HASHES_FILE))?;
        let offsets = open_read(&dir.join(OFFSETS_FILE))?;
        check_derived(&hashes, &offsets, view.size)?;
        Ok(LedgerReader {
            inner: Arc::new(Inner {
                dir: dir.to_owned(),
                hashes,
                offsets,
                view: RwLock::new(view),
                segment: Mutex::new(None),
            }),
        })
    }

    /// Re-reads the latest checkpoint from disk, for a reader following a live ledger.
    pub fn refresh(&self) -> Result<(), LedgerError> {
        let view = read_view(&self.inner.dir)?;
        check_derived(&self.inner.hashes, &self.inner.offsets, view.size)?;
        *self.inner.view.write().unwrap_or_else(|p| p.into_inner()) = view;
        Ok(())
    }

    /// A committed batch: `latest` becomes readable. `durable` is `Some` when its batch is
    /// synced too (and the checkpoint copies now end at `checkpoints_end`).
    pub(crate) fn publish(&self, size: u64, latest: Arc<SignedCheckpoint>, durable: Option<u64>) {
        let mut view = self.inner.view.write().unwrap_or_else(|p| p.into_inner());
        view.size = size;
        if let Some(end) = durable {
            view.durable = Some(latest.clone());
            view.checkpoints_end = end;
        }
        view.latest = Some(latest);
    }

    /// A sync made `durable` (an earlier `latest`) durable; the copies end at `checkpoints_end`.
    pub(crate) fn publish_durable(&self, durable: Arc<SignedCheckpoint>, checkpoints_end: u64) {
        let mut view = self.inner.view.write().unwrap_or_else(|p| p.into_inner());
        view.durable = Some(durable);
        view.checkpoints_end = checkpoints_end;
    }

    pub(crate) fn add_segment(&self, first: u64) {
        let mut view = self.inner.view.write().unwrap_or_else(|p| p.into_inner());
        view.segments.push(first);
    }

    pub(crate) fn view(&self) -> View {
        self.inner
            .view
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The ledger directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The number of committed entries (the latest checkpoint's size).
    pub fn size(&self) -> u64 {
        self.inner
            .view
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .size
    }

    /// The latest signed checkpoint (`None` while the ledger is empty). Not verified.
    pub fn latest_checkpoint(&self) -> Option<Arc<SignedCheckpoint>> {
        self.inner
            .view
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .latest
            .clone()
    }

    /// The latest checkpoint known to be on disk (see `Ledger::durable_checkpoint`).
    pub fn durable_checkpoint(&self) -> Option<Arc<SignedCheckpoint>> {
        self.inner
            .view
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .durable
            .clone()
    }

    fn hashes(&self, size: u64) -> FileHashes<'_> {
        FileHashes {
            file: &self.inner.hashes,
            count: stored_hash_count(size),
        }
    }

    fn segment_file(&self, view: &View, index: u64) -> Result<(u64, Arc<File>), LedgerError> {
        let pos = view.segments.partition_point(|&f| f <= index);
        let first = *view
            .segments
            .get(pos.wrapping_sub(1))
            .ok_or_else(|| LedgerError::Corrupt(format!("no segment holds entry {index}")))?;
        let mut cached = self.inner.segment.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((f, file)) = cached.as_ref()
            && *f == first
        {
            return Ok((first, file.clone()));
        }
        let file = Arc::new(open_read(&segment_path(&self.inner.dir, first))?);
        *cached = Some((first, file.clone()));
        Ok((first, file))
    }

    fn entry_offset(&self, index: u64) -> Result<u64, LedgerError> {
        let mut b = [0u8; 8];
        self.inner
            .offsets
            .read_exact_at(&mut b, index * 8)
            .map_err(io_err("reading entries.offsets"))?;
        Ok(u64::from_le_bytes(b))
    }

    /// The exact bytes of entry `index` (what was hashed; `warden audit show --raw`).
    pub fn entry(&self, index: u64) -> Result<Vec<u8>, LedgerError> {
        let view = self.view();
        if index >= view.size {
            return Err(LedgerError::OutOfRange {
                index,
                size: view.size,
            });
        }
        let offset = self.entry_offset(index)?;
        let (first, file) = self.segment_file(&view, index)?;
        let context = || format!("reading entry {index} from segment {first}");
        let mut header = [0u8; RECORD_HEADER_LEN];
        file.read_exact_at(&mut header, offset)
            .map_err(io_err(context()))?;
        let len = u32::from_le_bytes(header[1..5].try_into().expect("4 bytes"));
        if header[0] != ENTRY || len > super::format::MAX_PAYLOAD {
            return Err(LedgerError::Corrupt(format!(
                "entry {index}: no entry record at offset {offset} of segment {first}"
            )));
        }
        let mut payload = vec![0u8; len as usize];
        file.read_exact_at(&mut payload, offset + RECORD_HEADER_LEN as u64)
            .map_err(io_err(context()))?;
        if record_check(&payload).0 != header[5..] {
            return Err(LedgerError::Corrupt(format!(
                "entry {index}: bytes do not match their check hash"
            )));
        }
        Ok(payload)
    }

    /// The leaf hash of entry `index`, from the stored tree.
    pub fn leaf_hash(&self, index: u64) -> Result<Hash, LedgerError> {
        let size = self.size();
        if index >= size {
            return Err(LedgerError::OutOfRange { index, size });
        }
        let hashes = self
            .hashes(size)
            .read_hashes(&[stored_hash_index(0, index)])
            .map_err(io_err("reading tree.hashes"))?;
        Ok(hashes[0])
    }

    /// Committed entries from `from` on, as `(index, bytes)`, read sequentially in constant
    /// memory. The end is the size when the iterator is created.
    pub fn iter(&self, from: u64) -> Result<Entries, LedgerError> {
        let view = self.view();
        Ok(Entries {
            reader: self.clone(),
            next: from,
            end: view.size,
            view,
            records: None,
            payload: Vec::new(),
        })
    }

    /// Every checkpoint signed so far, oldest first (signatures not verified).
    pub fn checkpoints(&self) -> Result<Checkpoints, LedgerError> {
        let view = self.view();
        let path = self.inner.dir.join(CHECKPOINTS_FILE);
        let mut file = open_read(&path)?;
        file.seek(SeekFrom::Start(CHECKPOINTS_HEADER_LEN))
            .map_err(io_err("reading checkpoints"))?;
        Ok(Checkpoints {
            records: RecordReader::new(file, CHECKPOINTS_HEADER_LEN),
            end: view.checkpoints_end,
            payload: Vec::new(),
        })
    }

    /// The root of the tree of the first `size` entries.
    pub fn root_at(&self, size: u64) -> Result<Hash, LedgerError> {
        let current = self.size();
        if size > current {
            return Err(LedgerError::OutOfRange {
                index: size,
                size: current,
            });
        }
        Ok(tree_root(size, &self.hashes(size))?)
    }

    /// The receipt of entry `index` in the latest checkpoint (`warden audit prove`).
    pub fn prove(&self, index: u64) -> Result<Receipt, LedgerError> {
        let view = self.view();
        let latest = view
            .latest
            .as_ref()
            .ok_or(LedgerError::OutOfRange { index, size: 0 })?;
        if index >= latest.size() {
            return Err(LedgerError::OutOfRange {
                index,
                size: latest.size(),
            });
        }
        let proof = inclusion_proof(latest.size(), index, &self.hashes(latest.size()))?;
        Ok(Receipt::new(index, proof, latest))
    }

    /// The consistency proof from the tree of `old` entries to the tree of `new` entries.
    pub fn consistency(&self, old: u64, new: u64) -> Result<Vec<Hash>, LedgerError> {
        let size = self.size();
        if new > size {
            return Err(LedgerError::OutOfRange { index: new, size });
        }
        Ok(consistency_proof(old, new, &self.hashes(new))?)
    }
}

/// The view of the latest checkpoint in `dir`'s files.
fn read_view(dir: &Path) -> Result<View, LedgerError> {
    let segments = list_segments(dir).map_err(io_err("listing segments"))?;
    let path = dir.join(CHECKPOINTS_FILE);
    let file = open_read(&path)?;
    let len = file
        .metadata()
        .map_err(io_err("reading checkpoints"))?
        .len();
    let (latest, end) = match read_record_ending_at(&file, len, CHECKPOINTS_HEADER_LEN)
        .map_err(io_err("reading checkpoints"))?
    {
        Some((CHECKPOINT, payload)) => (Some(payload), len),
        _ => last_checkpoint_by_scan(dir, file)?,
    };
    let latest = match latest {
        None => None,
        Some(payload) => {
            let note = String::from_utf8(payload)
                .map_err(|_| LedgerError::Corrupt("a checkpoint is not UTF-8".into()))?;
            Some(Arc::new(
                SignedCheckpoint::parse_unverified(&note)
                    .map_err(|e| LedgerError::Corrupt(format!("latest checkpoint: {e}")))?,
            ))
        }
    };
    Ok(View {
        size: latest.as_ref().map_or(0, |c| c.size()),
        durable: latest.clone(),
        latest,
        segments,
        checkpoints_end: end,
    })
}

/// Finds the last valid checkpoint record by scanning forward (the file has a torn tail).
fn last_checkpoint_by_scan(
    dir: &Path,
    mut file: File,
) -> Result<(Option<Vec<u8>>, u64), LedgerError> {
    let start = std::fs::read(dir.join(MANIFEST_FILE))
        .ok()
        .and_then(|b| Manifest::decode(&b))
        .map_or(CHECKPOINTS_HEADER_LEN, |m| {
            m.checkpoints_len.max(CHECKPOINTS_HEADER_LEN)
        });
    let start = if start > CHECKPOINTS_HEADER_LEN {
        // Start at the record that ends at the manifest's length, to keep it as a candidate.
        match read_record_ending_at(&file, start, CHECKPOINTS_HEADER_LEN)
            .map_err(io_err("reading checkpoints"))?
        {
            Some((_, p)) => start - (super::format::RECORD_OVERHEAD + p.len()) as u64,
            None => CHECKPOINTS_HEADER_LEN,
        }
    } else {
        start
    };
    file.seek(SeekFrom::Start(start))
        .map_err(io_err("reading checkpoints"))?;
    let mut records = RecordReader::new(file, start);
    let mut payload = Vec::new();
    let mut last = None;
    let mut end = start;
    loop {
        match records.next(&mut payload) {
            Ok(Some(meta)) if meta.kind == CHECKPOINT => {
                end = meta.end(payload.len());
                last = Some(payload.clone());
            }
            Ok(Some(_)) => {
                return Err(LedgerError::Corrupt(
                    "non-checkpoint record in checkpoints".into(),
                ));
            }
            Ok(None)
            | Err(
                RecordFault::Truncated | RecordFault::BadHeader | RecordFault::BadRecord { .. },
            ) => break,
            Err(RecordFault::Io(e)) => return Err(io_err("reading checkpoints")(e)),
        }
    }
    Ok((last, end))
}

fn check_derived(hashes: &File, offsets: &File, size: u64) -> Result<(), LedgerError> {
    let len = |f: &File| {
        f.metadata()
            .map(|m| m.len())
            .map_err(io_err("reading derived files"))
    };
    if len(hashes)? < stored_hash_count(size) * 32 || len(offsets)? < size * 8 {
        return Err(LedgerError::Corrupt(format!(
            "the derived files are behind the latest checkpoint (size {size}); \
             open the ledger for appending once to rebuild them"
        )));
    }
    Ok(())
}

/// Streams committed entries; see [`LedgerReader::iter`].
pub struct Entries {
    reader: LedgerReader,
    view: View,
    next: u64,
    end: u64,
    records: Option<RecordReader>,
    payload: Vec<u8>,
}

impl Entries {
    fn open_at(&mut self, index: u64) -> Result<(), LedgerError> {
        let offset = self.reader.entry_offset(index)?;
        let (first, _) = self.reader.segment_file(&self.view, index)?;
        let path = segment_path(self.reader.dir(), first);
        let mut file = open_read(&path)?;
        file.seek(SeekFrom::Start(offset))
            .map_err(io_err(format!("reading {}", path.display())))?;
        self.records = Some(RecordReader::new(file, offset));
        Ok(())
    }

    fn advance(&mut self) -> Result<Option<(u64, Vec<u8>)>, LedgerError> {
        if self.next >= self.end {
            return Ok(None);
        }
        if self.records.is_none() {
            self.open_at(self.next)?;
        }
        loop {
            let records = self.records.as_mut().expect("opened above");
            match records.next(&mut self.payload) {
                Ok(Some(meta)) if meta.kind == ENTRY => {
                    let index = self.next;
                    self.next += 1;
                    return Ok(Some((index, std::mem::take(&mut self.payload))));
                }
                Ok(Some(_)) => continue,
                Ok(None) => {
                    // End of this segment: the next entry starts the next one.
                    let pos = self.view.segments.partition_point(|&f| f <= self.next);
                    if self.view.segments.get(pos.wrapping_sub(1)) != Some(&self.next) {
                        return Err(LedgerError::Corrupt(format!(
                            "segment ends before entry {}",
                            self.next
                        )));
                    }
                    let path = segment_path(self.reader.dir(), self.next);
                    let mut file = open_read(&path)?;
                    file.seek(SeekFrom::Start(SEGMENT_HEADER_LEN))
                        .map_err(io_err(format!("reading {}", path.display())))?;
                    self.records = Some(RecordReader::new(file, SEGMENT_HEADER_LEN));
                }
                Err(RecordFault::Io(e)) => return Err(io_err("reading a segment")(e)),
                Err(_) => {
                    return Err(LedgerError::Corrupt(format!(
                        "damaged record before entry {}",
                        self.next
                    )));
                }
            }
        }
    }
}

impl Iterator for Entries {
    type Item = Result<(u64, Vec<u8>), LedgerError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.advance() {
            Ok(Some(item)) => Some(Ok(item)),
            Ok(None) => None,
            Err(e) => {
                self.next = self.end; // stop after an error
                Some(Err(e))
            }
        }
    }
}

/// Streams signed checkpoints; see [`LedgerReader::checkpoints`].
pub struct Checkpoints {
    records: RecordReader,
    end: u64,
    payload: Vec<u8>,
}

impl Iterator for Checkpoints {
    type Item = Result<SignedCheckpoint, LedgerError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.records.pos() >= self.end {
            return None;
        }
        let result = match self.records.next(&mut self.payload) {
            Ok(Some(meta)) if meta.kind == CHECKPOINT => std::str::from_utf8(&self.payload)
                .map_err(|_| LedgerError::Corrupt("a checkpoint is not UTF-8".into()))
                .and_then(|note| {
                    SignedCheckpoint::parse_unverified(note)
                        .map_err(|e| LedgerError::Corrupt(format!("checkpoint: {e}")))
                }),
            Ok(None) => return None,
            Ok(Some(_)) => Err(LedgerError::Corrupt(
                "non-checkpoint record in checkpoints".into(),
            )),
            Err(RecordFault::Io(e)) => Err(io_err("reading checkpoints")(e)),
            Err(_) => Err(LedgerError::Corrupt("damaged checkpoint record".into())),
        };
        if result.is_err() {
            self.end = 0;
        }
        Some(result)
    }
}
