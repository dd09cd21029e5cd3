//! The ledger's on-disk encodings: file names, the record framing shared by segments and
//! checkpoint files, and the seal manifest. `docs/ledger.md` (Part B) is the prose version of this module.
//!
//! This module only encodes and decodes bytes; deciding what a damaged record means (a torn tail
//! to cut, or tampering to refuse) is the caller's job (`recover`, `verify`).

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::tree::{Hash, leaf_hash};

/// Directory of segment files.
pub(crate) const SEGMENTS_DIR: &str = "segments";
/// Derived: the stored hashes of the Merkle tree, 32 bytes each, in stored-hash order.
pub(crate) const HASHES_FILE: &str = "tree.hashes";
/// Derived: the byte offset of each entry's record inside its segment, u64 little-endian.
pub(crate) const OFFSETS_FILE: &str = "entries.offsets";
/// Every checkpoint ever signed, as checkpoint records, in order.
pub(crate) const CHECKPOINTS_FILE: &str = "checkpoints";
/// The state of the derived files and the session chains at the start of the last segment.
pub(crate) const MANIFEST_FILE: &str = "manifest";
/// Held (advisory lock) by the process that appends.
pub(crate) const LOCK_FILE: &str = "LOCK";

/// Segment file header: magic, then the index of the segment's first entry (u64 LE).
pub(crate) const SEGMENT_MAGIC: &[u8; 8] = b"WLDGSEG1";
pub(crate) const SEGMENT_HEADER_LEN: u64 = 16;
/// Checkpoints and anchor file header.
pub(crate) const CHECKPOINTS_MAGIC: &[u8; 8] = b"WLDGCKP1";
pub(crate) const CHECKPOINTS_HEADER_LEN: u64 = 8;
pub(crate) const MANIFEST_MAGIC: &[u8; 8] = b"WLDGMAN1";

/// Record framing: type (1) + payload length (4) + check hash (32) + payload + length again (4).
pub(crate) const RECORD_HEADER_LEN: usize = 37;
pub(crate) const RECORD_OVERHEAD: usize = RECORD_HEADER_LEN + 4;
/// No record payload may exceed this (a sanity bound for reading damaged files).
pub(crate) const MAX_PAYLOAD: u32 = 64 << 20;

/// Record types.
pub(crate) const ENTRY: u8 = 1;
pub(crate) const CHECKPOINT: u8 = 2;

/// The file name of the segment whose first entry is `first`.
pub(crate) fn segment_name(first: u64) -> String {
    format!("{first:020}.seg")
}

pub(crate) fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(SEGMENTS_DIR).join(segment_name(first))
}

/// The first indexes of the segments in `dir`, sorted. Other files in the directory are ignored.
pub(crate) fn list_segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut firsts = Vec::new();
    let entries = match std::fs::read_dir(dir.join(SEGMENTS_DIR)) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(firsts),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let name = entry?.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".seg")) else {
            continue;
        };
        if stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()) {
            firsts.push(stem.parse().expect("20 digits fit u64"));
        }
    }
    firsts.sort_unstable();
    Ok(firsts)
}

pub(crate) fn segment_header(first: u64) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[..8].copy_from_slice(SEGMENT_MAGIC);
    h[8..].copy_from_slice(&first.to_le_bytes());
    h
}

/// The check hash of a record: `SHA-256(0x00 ‖ payload)` — for entries, the RFC 6962 leaf hash.
pub(crate) fn record_check(payload: &[u8]) -> Hash {
    leaf_hash(payload)
}

/// Reserves a record header at the end of `buf`; the payload is then appended by the caller and
/// [`finish_record`] completes it.
pub(crate) fn begin_record(buf: &mut Vec<u8>) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; RECORD_HEADER_LEN]);
    start
}

/// Completes the record begun at `start`, returning its check hash.
pub(crate) fn finish_record(buf: &mut Vec<u8>, start: usize, kind: u8) -> Hash {
    let payload_start = start + RECORD_HEADER_LEN;
    let len = u32::try_from(buf.len() - payload_start).expect("payload fits u32");
    let check = record_check(&buf[payload_start..]);
    buf[start] = kind;
    buf[start + 1..start + 5].copy_from_slice(&len.to_le_bytes());
    buf[start + 5..payload_start].copy_from_slice(&check.0);
    buf.extend_from_slice(&len.to_le_bytes());
    check
}

/// Appends a complete record.
pub(crate) fn push_record(buf: &mut Vec<u8>, kind: u8, payload: &[u8]) -> Hash {
    let start = begin_record(buf);
    buf.extend_from_slice(payload);
    finish_record(buf, start, kind)
}

/// What is wrong with a record that could not be read.
#[derive(Debug)]
pub(crate) enum RecordFault {
    /// The file ends inside the record (a torn write, or a cut).
    Truncated,
    /// The header is implausible (unknown type, absurd length): the rest cannot be framed.
    BadHeader,
    /// The record is framed correctly but its bytes do not match its check hash or trailer.
    BadRecord {
        /// Where the next record would start if this one's length is believed.
        next: u64,
    },
    /// The underlying read failed.
    Io(io::Error),
}

/// One record read from a file.
pub(crate) struct RecordMeta {
    /// The record type.
    pub(crate) kind: u8,
    /// Byte offset of the record in its file.
    pub(crate) offset: u64,
    /// The check hash (verified against the payload).
    pub(crate) check: Hash,
}

impl RecordMeta {
    pub(crate) fn end(&self, payload_len: usize) -> u64 {
        self.offset + (RECORD_OVERHEAD + payload_len) as u64
    }
}

/// Reads records sequentially from a file, verifying framing and check hashes.
pub(crate) struct RecordReader {
    reader: BufReader<File>,
    pos: u64,
}

/// Whether a valid checkpoint record follows offset `from` in the segment at `path` (skipping
/// damaged records). Recovery and verification both use it to tell a torn tail (nothing
/// committed after the damage) from damage in the middle of committed data.
pub(crate) fn committed_after(path: &Path, from: u64) -> io::Result<bool> {
    use std::io::{Seek as _, SeekFrom};
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(from))?;
    let mut records = RecordReader::new(file, from);
    let mut payload = Vec::new();
    loop {
        match records.next(&mut payload) {
            Ok(Some(meta)) if meta.kind == CHECKPOINT => return Ok(true),
            Ok(Some(_)) | Err(RecordFault::BadRecord { .. }) => continue,
            Ok(None) | Err(_) => return Ok(false),
        }
    }
}

impl RecordReader {
    /// Reads from `file`, whose read position MUST be `pos`.
    pub(crate) fn new(file: File, pos: u64) -> RecordReader {
        RecordReader {
            reader: BufReader::with_capacity(1 << 20, file),
            pos,
        }
    }

    /// The offset of the next record.
    pub(crate) fn pos(&self) -> u64 {
        self.pos
    }

    /// Reads the next record's payload into `payload` (replacing its contents). `Ok(None)` at a
    /// clean end of file. After an error the reader is positioned nowhere useful.
    pub(crate) fn next(
        &mut self,
        payload: &mut Vec<u8>,
    ) -> Result<Option<RecordMeta>, RecordFault> {
        let offset = self.pos;
        let mut header = [0u8; RECORD_HEADER_LEN];
        match read_full(&mut self.reader, &mut header) {
            Ok(0) => return Ok(None),
            Ok(n) if n < RECORD_HEADER_LEN => return Err(RecordFault::Truncated),
            Ok(_) => {}
            Err(e) => return Err(RecordFault::Io(e)),
        }
        let kind = header[0];
        let len = u32::from_le_bytes(header[1..5].try_into().expect("4 bytes"));
        if !(kind == ENTRY || kind == CHECKPOINT) || len > MAX_PAYLOAD {
            return Err(RecordFault::BadHeader);
        }
        let check = Hash(header[5..].try_into().expect("32 bytes"));
        payload.clear();
        payload.resize(len as usize + 4, 0);
        match read_full(&mut self.reader, payload) {
            Ok(n) if n < payload.len() => return Err(RecordFault::Truncated),
            Ok(_) => {}
            Err(e) => return Err(RecordFault::Io(e)),
        }
        let trailer = u32::from_le_bytes(payload[len as usize..].try_into().expect("4 bytes"));
        payload.truncate(len as usize);
        let next = offset + (RECORD_OVERHEAD as u64) + u64::from(len);
        self.pos = next;
        if trailer != len || record_check(payload) != check {
            return Err(RecordFault::BadRecord { next });
        }
        Ok(Some(RecordMeta {
            kind,
            offset,
            check,
        }))
    }
}

/// Reads until `buf` is full or end of file; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Reads the record that ends exactly at byte `end` of `file`, using the length trailer.
/// `Ok(None)` if there is no valid record ending there.
pub(crate) fn read_record_ending_at(
    file: &File,
    end: u64,
    min_start: u64,
) -> io::Result<Option<(u8, Vec<u8>)>> {
    if end < min_start + RECORD_OVERHEAD as u64 {
        return Ok(None);
    }
    let mut trailer = [0u8; 4];
    file.read_exact_at(&mut trailer, end - 4)?;
    let len = u64::from(u32::from_le_bytes(trailer));
    let Some(start) = end.checked_sub(RECORD_OVERHEAD as u64 + len) else {
        return Ok(None);
    };
    if start < min_start || len > u64::from(MAX_PAYLOAD) {
        return Ok(None);
    }
    let mut record = vec![0u8; RECORD_HEADER_LEN + len as usize];
    file.read_exact_at(&mut record, start)?;
    let payload = record.split_off(RECORD_HEADER_LEN);
    let kind = record[0];
    let header_len = u64::from(u32::from_le_bytes(
        record[1..5].try_into().expect("4 bytes"),
    ));
    if header_len != len || record[5..] != record_check(&payload).0 {
        return Ok(None);
    }
    Ok(Some((kind, payload)))
}

/// The session-chain key of an entry: the first 16 bytes of `SHA-256(0x01 ‖ session)`, or all
/// zeros for entries without a session. 128 bits keep chains apart even against chosen names.
pub(crate) type SessionKey = [u8; 16];

pub(crate) fn session_key(session: Option<&str>) -> SessionKey {
    match session {
        None => [0u8; 16],
        Some(s) => {
            let mut h = Sha256::new();
            h.update([1u8]);
            h.update(s.as_bytes());
            h.finalize()[..16].try_into().expect("16 bytes")
        }
    }
}

/// The state recorded when a segment is created: everything before `first` is sealed and the
/// derived files were synced up to the recorded lengths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Manifest {
    /// The first index of the segment created at the seal (= the tree size then).
    pub(crate) first: u64,
    /// The length of `tree.hashes` at the seal.
    pub(crate) hashes_len: u64,
    /// The length of `entries.offsets` at the seal.
    pub(crate) offsets_len: u64,
    /// The length of `checkpoints` at the seal.
    pub(crate) checkpoints_len: u64,
    /// The first index of every segment at the seal, including the new one.
    pub(crate) segments: Vec<u64>,
    /// The last leaf hash of every session chain at the seal.
    pub(crate) sessions: Vec<(SessionKey, Hash)>,
}

impl Manifest {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut b =
            Vec::with_capacity(56 + self.segments.len() * 8 + self.sessions.len() * 48 + 32);
        b.extend_from_slice(MANIFEST_MAGIC);
        for v in [
            self.first,
            self.hashes_len,
            self.offsets_len,
            self.checkpoints_len,
            self.segments.len() as u64,
            self.sessions.len() as u64,
        ] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        for first in &self.segments {
            b.extend_from_slice(&first.to_le_bytes());
        }
        for (key, hash) in &self.sessions {
            b.extend_from_slice(key);
            b.extend_from_slice(&hash.0);
        }
        let digest = Sha256::digest(&b);
        b.extend_from_slice(&digest);
        b
    }

    /// Decodes a manifest; `None` if it is damaged in any way.
    pub(crate) fn decode(b: &[u8]) -> Option<Manifest> {
        let (body, digest) = b.split_at_checked(b.len().checked_sub(32)?)?;
        if Sha256::digest(body)[..] != digest[..] || !body.starts_with(MANIFEST_MAGIC) {
            return None;
        }
        let word = |i: usize| -> Option<u64> {
            Some(u64::from_le_bytes(
                body.get(8 + 8 * i..16 + 8 * i)?.try_into().ok()?,
            ))
        };
        let segment_count = usize::try_from(word(4)?).ok()?;
        let count = usize::try_from(word(5)?).ok()?;
        let segments_end = segment_count.checked_mul(8)?.checked_add(56)?;
        let segments = body
            .get(56..segments_end)?
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        let rest = body.get(segments_end..)?;
        if rest.len() != count.checked_mul(48)? {
            return None;
        }
        let sessions = rest
            .chunks_exact(48)
            .map(|c| {
                (
                    c[..16].try_into().expect("16 bytes"),
                    Hash(c[16..].try_into().expect("32 bytes")),
                )
            })
            .collect();
        Some(Manifest {
            first: word(0)?,
            hashes_len: word(1)?,
            offsets_len: word(2)?,
            checkpoints_len: word(3)?,
            segments,
            sessions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trips_and_detects_damage() {
        let m = Manifest {
            first: 7,
            hashes_len: 11 * 32,
            offsets_len: 56,
            checkpoints_len: 900,
            segments: vec![0, 7],
            sessions: vec![([1; 16], leaf_hash(b"a")), ([0; 16], leaf_hash(b"b"))],
        };
        let mut bytes = m.encode();
        assert_eq!(Manifest::decode(&bytes), Some(m));
        bytes[20] ^= 1;
        assert_eq!(Manifest::decode(&bytes), None);
        assert_eq!(Manifest::decode(&[]), None);
    }

    #[test]
    fn records_frame_and_check() {
        let mut buf = Vec::new();
        let check = push_record(&mut buf, ENTRY, b"{\"index\":0}");
        assert_eq!(check, leaf_hash(b"{\"index\":0}"));
        assert_eq!(buf.len(), RECORD_OVERHEAD + 11);
        assert_eq!(buf[0], ENTRY);
        assert_eq!(&buf[1..5], &11u32.to_le_bytes());
        assert_eq!(&buf[buf.len() - 4..], &11u32.to_le_bytes());
    }

    #[test]
    fn session_keys_separate_none_from_empty() {
        assert_ne!(session_key(None), session_key(Some("")));
        assert_ne!(session_key(Some("a")), session_key(Some("b")));
    }
}
