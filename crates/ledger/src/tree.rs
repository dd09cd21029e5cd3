//! RFC 6962 Merkle tree hashing, proofs and the stored-hash layout.
//!
//! This module owns the tree *math*: how a leaf and an interior node are hashed, how the root of a
//! tree of any size is formed, how inclusion and consistency proofs are generated from stored
//! hashes and how they are verified. It does no I/O of its own: proof generation reads hashes
//! through the [`HashReader`] trait, which the durable store ([`crate::log`]) implements over its
//! hash file and [`MemoryTree`] implements in memory. Verification functions are pure.
//!
//! - Leaf hash: `SHA-256(0x00 ‖ entry)`; node hash: `SHA-256(0x01 ‖ left ‖ right)`; the root of
//!   the empty tree is `SHA-256("")` (RFC 6962 §2.1, RFC 9162 §2.1.1).
//! - Verification follows RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2 (consistency) literally.
//! - Stored hashes use the layout of Go's `golang.org/x/mod/sumdb/tlog`: every complete subtree
//!   (level `L`, index `n`, covering leaves `[n·2^L, (n+1)·2^L)`) has one position in a single
//!   append-only sequence ([`stored_hash_index`]). Appending leaf `n` appends exactly the leaf
//!   hash and the hashes of the subtrees it completes, so the sequence for a tree of `n` leaves is
//!   `2n − popcount(n)` hashes long ([`stored_hash_count`]) and any proof needs `O(log n)` reads.

use std::fmt;
use std::io;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256};

/// A SHA-256 hash: a leaf hash, an interior node hash or a tree root.
///
/// `Display` and `Debug` print lowercase hex; checkpoints and receipts carry hashes in base64
/// ([`Hash::to_base64`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The length of a hash in bytes.
    pub const LEN: usize = 32;

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex, 64 characters (the form entries use for `prev`).
    pub fn to_hex(&self) -> String {
        crate::hex::encode(&self.0)
    }

    /// Parses 64 hex digits (either case). Returns `None` for anything else.
    pub fn from_hex(s: &str) -> Option<Hash> {
        let bytes = crate::hex::decode(s)?;
        Some(Hash(bytes.try_into().ok()?))
    }

    /// Standard base64 with padding (the form checkpoints and receipts use).
    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0)
    }

    /// Parses standard base64 of exactly 32 bytes. Returns `None` for anything else.
    pub fn from_base64(s: &str) -> Option<Hash> {
        let bytes = BASE64.decode(s).ok()?;
        Some(Hash(bytes.try_into().ok()?))
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

/// The RFC 6962 leaf hash of an entry: `SHA-256(0x00 ‖ entry)`.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(entry);
    Hash(h.finalize().into())
}

/// The RFC 6962 interior node hash: `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left.0);
    h.update(right.0);
    Hash(h.finalize().into())
}

/// The root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    Hash(Sha256::digest([]).into())
}

/// The RFC 6962 Merkle tree hash of a list of leaf hashes, computed directly from the recursive
/// definition. `O(n)` time and memory: a reference for tests and small trees; the ledger itself
/// never holds all leaves.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = largest_power_of_two_below(n as u64) as usize;
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// Why a proof could not be produced or did not verify.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The leaf index is not inside the tree (`index >= size`).
    #[error("index {index} is outside a tree of size {size}")]
    IndexOutOfRange {
        /// The requested leaf index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// A consistency proof was requested or checked from a larger to a smaller tree.
    #[error("tree size {old} is larger than {new}")]
    SizeOrder {
        /// The older (claimed smaller) size.
        old: u64,
        /// The newer size.
        new: u64,
    },
    /// The proof has the wrong number of hashes for the sizes involved.
    #[error("proof has the wrong number of hashes")]
    WrongLength,
    /// The proof is well-formed but the recomputed root differs from the expected one.
    #[error("recomputed root does not match")]
    RootMismatch,
    /// The stored hashes could not be read (proof generation only).
    #[error("reading stored hashes: {0}")]
    Io(Arc<io::Error>),
}

/// Where proof generation reads stored hashes from.
///
/// Implementations MUST return exactly one hash per requested index, in the order requested, and
/// MUST return an error rather than a wrong hash for an index they do not have.
pub trait HashReader {
    /// Reads the stored hashes at the given [`stored_hash_index`] positions.
    fn read_hashes(&self, indexes: &[u64]) -> io::Result<Vec<Hash>>;
}

/// The position of the hash of the complete subtree at `level` with index `n` (covering leaves
/// `[n·2^level, (n+1)·2^level)`) in the stored-hash sequence (Go `tlog.StoredHashIndex`).
pub fn stored_hash_index(level: u8, n: u64) -> u64 {
    // Level L's n-th hash is written right after level L+1's (2n+1)-th hash; walk down to level 0.
    let mut n = n;
    for _ in 0..level {
        n = 2 * n + 1;
    }
    // Level 0's n-th hash is written at n + n/2 + n/4 + ...
    let mut i = 0u64;
    while n > 0 {
        i += n;
        n >>= 1;
    }
    i + u64::from(level)
}

/// The number of stored hashes for a tree of `n` leaves (`2n − popcount(n)`).
pub fn stored_hash_count(n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    let mut count = stored_hash_index(0, n - 1) + 1;
    let mut i = n - 1;
    while i & 1 != 0 {
        count += 1;
        i >>= 1;
    }
    count
}

/// The largest power of two strictly below `n` (`n >= 2`): RFC 6962's split point `k`.
fn largest_power_of_two_below(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The largest power of two `<= n` (`n >= 1`), with its exponent.
fn largest_power_of_two_at_most(n: u64) -> (u64, u8) {
    let level = 63 - n.leading_zeros() as u8;
    (1u64 << level, level)
}

/// Appends the stored-hash indexes of the maximal complete subtrees of `[lo, hi)`, left to right.
fn subtree_indexes(mut lo: u64, hi: u64, need: &mut Vec<u64>) {
    while lo < hi {
        let (k, level) = largest_power_of_two_at_most(hi - lo);
        debug_assert_eq!(lo & (k - 1), 0, "subtree [lo, hi) must be aligned");
        need.push(stored_hash_index(level, lo >> level));
        lo += k;
    }
}

/// Folds the hashes read for `subtree_indexes(lo, hi)` into the subtree's hash, consuming them.
fn subtree_hash(mut lo: u64, hi: u64, hashes: &mut impl Iterator<Item = Hash>) -> Hash {
    let mut parts = Vec::new();
    while lo < hi {
        let (k, _) = largest_power_of_two_at_most(hi - lo);
        parts.push(hashes.next().expect("hash count matches index count"));
        lo += k;
    }
    let mut h = parts.pop().expect("non-empty subtree");
    while let Some(left) = parts.pop() {
        h = node_hash(&left, &h);
    }
    h
}

fn inclusion_indexes(lo: u64, hi: u64, index: u64, need: &mut Vec<u64>) {
    if lo + 1 == hi {
        return;
    }
    let k = largest_power_of_two_below(hi - lo);
    if index < lo + k {
        inclusion_indexes(lo, lo + k, index, need);
        subtree_indexes(lo + k, hi, need);
    } else {
        subtree_indexes(lo, lo + k, need);
        inclusion_indexes(lo + k, hi, index, need);
    }
}

fn inclusion_path(
    lo: u64,
    hi: u64,
    index: u64,
    hashes: &mut impl Iterator<Item = Hash>,
    out: &mut Vec<Hash>,
) {
    if lo + 1 == hi {
        return;
    }
    let k = largest_power_of_two_below(hi - lo);
    if index < lo + k {
        inclusion_path(lo, lo + k, index, hashes, out);
        out.push(subtree_hash(lo + k, hi, hashes));
    } else {
        let left = subtree_hash(lo, lo + k, hashes);
        inclusion_path(lo + k, hi, index, hashes, out);
        out.push(left);
    }
}

fn consistency_indexes(lo: u64, hi: u64, old: u64, need: &mut Vec<u64>) {
    if old == hi {
        if lo != 0 {
            subtree_indexes(lo, hi, need);
        }
        return;
    }
    let k = largest_power_of_two_below(hi - lo);
    if old <= lo + k {
        consistency_indexes(lo, lo + k, old, need);
        subtree_indexes(lo + k, hi, need);
    } else {
        subtree_indexes(lo, lo + k, need);
        consistency_indexes(lo + k, hi, old, need);
    }
}

fn consistency_path(
    lo: u64,
    hi: u64,
    old: u64,
    hashes: &mut impl Iterator<Item = Hash>,
    out: &mut Vec<Hash>,
) {
    if old == hi {
        if lo != 0 {
            out.push(subtree_hash(lo, hi, hashes));
        }
        return;
    }
    let k = largest_power_of_two_below(hi - lo);
    if old <= lo + k {
        consistency_path(lo, lo + k, old, hashes, out);
        out.push(subtree_hash(lo + k, hi, hashes));
    } else {
        let left = subtree_hash(lo, lo + k, hashes);
        consistency_path(lo + k, hi, old, hashes, out);
        out.push(left);
    }
}

fn read_all(reader: &impl HashReader, indexes: &[u64]) -> Result<Vec<Hash>, ProofError> {
    let hashes = reader
        .read_hashes(indexes)
        .map_err(|e| ProofError::Io(Arc::new(e)))?;
    if hashes.len() != indexes.len() {
        return Err(ProofError::Io(Arc::new(io::Error::other(
            "hash reader returned the wrong number of hashes",
        ))));
    }
    Ok(hashes)
}

/// The root of the tree of the first `size` leaves, from stored hashes (`O(log size)` reads).
pub fn tree_root(size: u64, reader: &impl HashReader) -> Result<Hash, ProofError> {
    if size == 0 {
        return Ok(empty_root());
    }
    let mut need = Vec::new();
    subtree_indexes(0, size, &mut need);
    let hashes = read_all(reader, &need)?;
    Ok(subtree_hash(0, size, &mut hashes.into_iter()))
}

/// The RFC 6962 inclusion proof (audit path) of leaf `index` in the tree of the first `size`
/// leaves, ordered from the leaf's sibling up to the root's child (RFC 9162 §2.1.3.1).
pub fn inclusion_proof(
    size: u64,
    index: u64,
    reader: &impl HashReader,
) -> Result<Vec<Hash>, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let mut need = Vec::new();
    inclusion_indexes(0, size, index, &mut need);
    let hashes = read_all(reader, &need)?;
    let mut out = Vec::new();
    inclusion_path(0, size, index, &mut hashes.into_iter(), &mut out);
    Ok(out)
}

/// The RFC 6962 consistency proof between the trees of the first `old` and `new` leaves
/// (RFC 9162 §2.1.4.1). Empty when `old == 0` or `old == new`.
pub fn consistency_proof(
    old: u64,
    new: u64,
    reader: &impl HashReader,
) -> Result<Vec<Hash>, ProofError> {
    if old > new {
        return Err(ProofError::SizeOrder { old, new });
    }
    if old == 0 || old == new {
        return Ok(Vec::new());
    }
    let mut need = Vec::new();
    consistency_indexes(0, new, old, &mut need);
    let hashes = read_all(reader, &need)?;
    let mut out = Vec::new();
    consistency_path(0, new, old, &mut hashes.into_iter(), &mut out);
    Ok(out)
}

/// Recomputes the root implied by an inclusion proof (RFC 9162 §2.1.3.2 steps 1–5).
pub fn root_from_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return Err(ProofError::WrongLength);
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(ProofError::WrongLength);
    }
    Ok(r)
}

/// Verifies that `leaf` is at `index` in the tree of `size` leaves whose root is `root`
/// (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if root_from_inclusion(index, size, leaf, proof)? == *root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// Verifies that the tree of `old` leaves with root `old_root` is a prefix of the tree of `new`
/// leaves with root `new_root` (RFC 9162 §2.1.4.2).
///
/// Equal sizes need equal roots and an empty proof; the empty tree (`old == 0`) is a prefix of
/// every tree and needs an empty proof.
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old > new {
        return Err(ProofError::SizeOrder { old, new });
    }
    if old == new {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        return if old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    if old == 0 {
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(ProofError::WrongLength)
        };
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength);
    }
    // Step 2: if `old` is a power of two, the old root is the first node of the path.
    let (seed, rest) = if old.is_power_of_two() {
        (*old_root, proof)
    } else {
        (proof[0], &proof[1..])
    };
    let (mut f_n, mut s_n) = (old - 1, new - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let (mut f_r, mut s_r) = (seed, seed);
    for c in rest {
        if s_n == 0 {
            return Err(ProofError::WrongLength);
        }
        if f_n & 1 == 1 || f_n == s_n {
            f_r = node_hash(c, &f_r);
            s_r = node_hash(c, &s_r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            s_r = node_hash(&s_r, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(ProofError::WrongLength);
    }
    if f_r == *old_root && s_r == *new_root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// The right edge of a tree: the roots of its maximal complete subtrees ("peaks"), largest first.
///
/// It is all a writer or a streaming verifier needs to append leaves and compute the current
/// root: `O(log n)` memory whatever the size.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Frontier {
    size: u64,
    peaks: Vec<Hash>,
}

impl Frontier {
    /// The frontier of a tree of `size` leaves whose peaks are given largest first.
    pub(crate) fn from_peaks(size: u64, peaks: Vec<Hash>) -> Frontier {
        debug_assert_eq!(peaks.len() as u32, size.count_ones());
        Frontier { size, peaks }
    }

    /// The stored-hash indexes of the peaks of a tree of `size` leaves, largest first.
    pub(crate) fn peak_indexes(size: u64) -> Vec<u64> {
        let mut need = Vec::new();
        subtree_indexes(0, size, &mut need);
        need
    }

    /// The number of leaves.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf, pushing the stored hashes it creates (the leaf hash, then each subtree it
    /// completes, lowest first) onto `stored`, in stored-hash order.
    pub(crate) fn push(&mut self, leaf: Hash, stored: &mut Vec<Hash>) {
        let mut h = leaf;
        stored.push(h);
        let mut n = self.size;
        while n & 1 == 1 {
            let left = self.peaks.pop().expect("a peak per set bit");
            h = node_hash(&left, &h);
            stored.push(h);
            n >>= 1;
        }
        self.peaks.push(h);
        self.size += 1;
    }

    /// The current root.
    pub(crate) fn root(&self) -> Hash {
        let mut iter = self.peaks.iter().rev();
        let Some(last) = iter.next() else {
            return empty_root();
        };
        let mut h = *last;
        for left in iter {
            h = node_hash(left, &h);
        }
        h
    }
}

/// An in-memory tree holding its stored hashes: for tests, tools and small logs.
///
/// Memory is `2n` hashes; the durable ledger keeps the same sequence in a file instead.
#[derive(Debug, Clone, Default)]
pub struct MemoryTree {
    frontier: Frontier,
    stored: Vec<Hash>,
}

impl MemoryTree {
    /// An empty tree.
    pub fn new() -> MemoryTree {
        MemoryTree::default()
    }

    /// Appends an entry (hashing it as a leaf) and returns its leaf hash.
    pub fn push_entry(&mut self, entry: &[u8]) -> Hash {
        let leaf = leaf_hash(entry);
        self.push_leaf(leaf);
        leaf
    }

    /// Appends a leaf hash.
    pub fn push_leaf(&mut self, leaf: Hash) {
        self.frontier.push(leaf, &mut self.stored);
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// The root of the whole tree.
    pub fn root(&self) -> Hash {
        self.frontier.root()
    }

    /// The root of the tree of the first `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<Hash, ProofError> {
        if size > self.size() {
            return Err(ProofError::SizeOrder {
                old: size,
                new: self.size(),
            });
        }
        tree_root(size, self)
    }

    /// The inclusion proof of leaf `index` in the tree of the first `size` leaves.
    pub fn inclusion_proof(&self, size: u64, index: u64) -> Result<Vec<Hash>, ProofError> {
        if size > self.size() {
            return Err(ProofError::SizeOrder {
                old: size,
                new: self.size(),
            });
        }
        inclusion_proof(size, index, self)
    }

    /// The consistency proof between the first `old` and first `new` leaves.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, ProofError> {
        if new > self.size() {
            return Err(ProofError::SizeOrder {
                old: new,
                new: self.size(),
            });
        }
        consistency_proof(old, new, self)
    }
}

impl HashReader for MemoryTree {
    fn read_hashes(&self, indexes: &[u64]) -> io::Result<Vec<Hash>> {
        indexes
            .iter()
            .map(|&i| {
                usize::try_from(i)
                    .ok()
                    .and_then(|i| self.stored.get(i).copied())
                    .ok_or_else(|| io::Error::other(format!("no stored hash at index {i}")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
