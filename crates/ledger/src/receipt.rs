//! Receipts: C2SP transparency-log proofs (`c2sp.org/tlog-proof@v1`).
//!
//! This module owns the receipt format a client keeps to prove, offline and later, that its
//! exchange is in the log: the entry's index, its RFC 6962 inclusion proof and the signed
//! checkpoint the proof leads to. It formats, parses and verifies receipts; it does not generate
//! proofs ([`crate::tree`], [`crate::log`]).
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! index 1
//! bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=
//!
//! warden.local/ledger
//! 2
//! Kq3XG1wlNLuO+5fKPxXHgjcbrMjaBNTY4IWxJR3dBOQ=
//!
//! — warden.local/ledger 3pN2lQ...
//! ```
//!
//! The gateway sends the receipt as the base64 of that text ([`Receipt::to_base64`]) in the
//! `x-warden-receipt` header.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::checkpoint::{Checkpoint, CheckpointError, SignedCheckpoint, parse_decimal};
use crate::note::NoteVerifier;
use crate::tree::{Hash, ProofError, leaf_hash, verify_inclusion};

/// The first line of every receipt.
pub const RECEIPT_HEADER: &str = "c2sp.org/tlog-proof@v1";

/// Why a receipt was rejected.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// The receipt is not a well-formed tlog-proof.
    #[error("malformed receipt: {0}")]
    Malformed(&'static str),
    /// The receipt's checkpoint is malformed, not signed by the log's key, or from another log.
    #[error("receipt checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// The inclusion proof does not lead from the entry to the checkpoint's root: the entry bytes
    /// are not the logged ones, or the receipt was altered.
    #[error("entry is not included at index {index}: {source}")]
    NotIncluded {
        /// The index the receipt claims.
        index: u64,
        /// Why the proof failed.
        source: ProofError,
    },
    /// The ledger now holds fewer entries than the receipt's checkpoint: it was rolled back.
    #[error(
        "the ledger was rolled back: the receipt covers {receipt_size} entries, the ledger holds {ledger_size}"
    )]
    RolledBack {
        /// The receipt checkpoint's size.
        receipt_size: u64,
        /// The ledger's current size.
        ledger_size: u64,
    },
    /// The ledger's current checkpoint is not an extension of the receipt's: the log forked.
    #[error(
        "the ledger's checkpoint for {ledger_size} entries is not consistent with the receipt's for {receipt_size}"
    )]
    Inconsistent {
        /// The receipt checkpoint's size.
        receipt_size: u64,
        /// The ledger's current size.
        ledger_size: u64,
    },
    /// The ledger at hand could not be read, or holds other bytes at the receipt's index.
    #[error("ledger: {0}")]
    Ledger(String),
}

/// A C2SP tlog-proof: an entry's index, its inclusion proof, and the signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    index: u64,
    proof: Vec<Hash>,
    checkpoint: String,
    extra: Option<Vec<u8>>,
}

impl Receipt {
    /// A receipt for entry `index` with inclusion `proof` in the tree of the signed
    /// `checkpoint` note.
    pub fn new(index: u64, proof: Vec<Hash>, checkpoint: &SignedCheckpoint) -> Receipt {
        Receipt {
            index,
            proof,
            checkpoint: checkpoint.note().to_owned(),
            extra: None,
        }
    }

    /// The entry's index.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// The inclusion proof, from the leaf's sibling up to the root's child.
    pub fn proof(&self) -> &[Hash] {
        &self.proof
    }

    /// The signed checkpoint note, verbatim (unverified until [`verify`](Self::verify)).
    pub fn checkpoint_note(&self) -> &str {
        &self.checkpoint
    }

    /// The optional, unauthenticated extra data (`extra` line). The ledger writes none.
    pub fn extra(&self) -> Option<&[u8]> {
        self.extra.as_deref()
    }

    /// The receipt text.
    pub fn to_text(&self) -> String {
        let mut s = String::with_capacity(64 + 45 * self.proof.len() + self.checkpoint.len());
        s.push_str(RECEIPT_HEADER);
        s.push('\n');
        if let Some(extra) = &self.extra {
            s.push_str("extra ");
            s.push_str(&BASE64.encode(extra));
            s.push('\n');
        }
        s.push_str("index ");
        s.push_str(&self.index.to_string());
        s.push('\n');
        for h in &self.proof {
            s.push_str(&h.to_base64());
            s.push('\n');
        }
        s.push('\n');
        s.push_str(&self.checkpoint);
        s
    }

    /// Standard base64 of the receipt text (the `x-warden-receipt` header value).
    pub fn to_base64(&self) -> String {
        BASE64.encode(self.to_text())
    }

    /// Parses receipt text.
    pub fn parse(text: &str) -> Result<Receipt, ReceiptError> {
        let malformed = ReceiptError::Malformed;
        let rest = text
            .strip_prefix(RECEIPT_HEADER)
            .and_then(|r| r.strip_prefix('\n'))
            .ok_or(malformed("missing c2sp.org/tlog-proof@v1 header"))?;
        let (mut line, mut rest) = rest.split_once('\n').ok_or(malformed("truncated"))?;
        let mut extra = None;
        if let Some(b64) = line.strip_prefix("extra ") {
            extra = Some(
                BASE64
                    .decode(b64)
                    .map_err(|_| malformed("extra data is not base64"))?,
            );
            (line, rest) = rest.split_once('\n').ok_or(malformed("truncated"))?;
        }
        let index = line
            .strip_prefix("index ")
            .and_then(parse_decimal)
            .ok_or(malformed("missing or invalid index line"))?;
        let mut proof = Vec::new();
        loop {
            let (line, after) = rest
                .split_once('\n')
                .ok_or(malformed("missing blank line before the checkpoint"))?;
            rest = after;
            if line.is_empty() {
                break;
            }
            proof.push(
                Hash::from_base64(line).ok_or(malformed("proof hash is not base64 of 32 bytes"))?,
            );
            if proof.len() > 64 {
                return Err(malformed("proof is longer than any tree allows"));
            }
        }
        if rest.is_empty() {
            return Err(malformed("missing checkpoint"));
        }
        Ok(Receipt {
            index,
            proof,
            checkpoint: rest.to_owned(),
            extra,
        })
    }

    /// Parses the base64 of receipt text.
    pub fn from_base64(b64: &str) -> Result<Receipt, ReceiptError> {
        let bytes = BASE64
            .decode(b64.trim())
            .map_err(|_| ReceiptError::Malformed("not base64"))?;
        let text = String::from_utf8(bytes).map_err(|_| ReceiptError::Malformed("not UTF-8"))?;
        Receipt::parse(&text)
    }

    /// Parses either form: receipt text, or its base64 (as found in a header or a file).
    pub fn parse_any(input: &str) -> Result<Receipt, ReceiptError> {
        if input.starts_with(RECEIPT_HEADER) {
            Receipt::parse(input)
        } else {
            Receipt::from_base64(input)
        }
    }

    /// Verifies, offline, that `entry` (the exact logged bytes) is at this receipt's index in the
    /// tree of its checkpoint, and that the checkpoint is signed by `verifier`'s key for
    /// `verifier`'s log. Returns the verified checkpoint.
    pub fn verify(
        &self,
        entry: &[u8],
        verifier: &NoteVerifier,
    ) -> Result<Checkpoint, ReceiptError> {
        let signed = SignedCheckpoint::open(&self.checkpoint, verifier)?;
        let checkpoint = signed.checkpoint();
        verify_inclusion(
            self.index,
            checkpoint.size,
            &leaf_hash(entry),
            &self.proof,
            &checkpoint.root,
        )
        .map_err(|source| ReceiptError::NotIncluded {
            index: self.index,
            source,
        })?;
        Ok(checkpoint.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::NoteSigner;
    use crate::tree::MemoryTree;

    fn fixture() -> (NoteSigner, Vec<Vec<u8>>, Vec<Receipt>) {
        let signer = NoteSigner::generate("warden.local/receipts").unwrap();
        let mut tree = MemoryTree::new();
        let entries: Vec<Vec<u8>> = (0..5)
            .map(|i| format!("{{\"index\":{i}}}").into_bytes())
            .collect();
        for e in &entries {
            tree.push_entry(e);
        }
        let cp = Checkpoint::new(signer.name(), 5, tree.root())
            .sign(&signer)
            .unwrap();
        let receipts = (0..5)
            .map(|i| Receipt::new(i, tree.inclusion_proof(5, i).unwrap(), &cp))
            .collect();
        (signer, entries, receipts)
    }

    #[test]
    fn receipts_round_trip_and_verify() {
        let (signer, entries, receipts) = fixture();
        let verifier = signer.verifier();
        for (entry, receipt) in entries.iter().zip(&receipts) {
            let text = receipt.to_text();
            assert!(text.starts_with("c2sp.org/tlog-proof@v1\nindex "));
            assert_eq!(&Receipt::parse(&text).unwrap(), receipt);
            assert_eq!(
                &Receipt::from_base64(&receipt.to_base64()).unwrap(),
                receipt
            );
            assert_eq!(&Receipt::parse_any(&receipt.to_base64()).unwrap(), receipt);
            assert_eq!(receipt.verify(entry, &verifier).unwrap().size, 5);
            // Other bytes, or the right bytes at another index, do not verify.
            assert!(matches!(
                receipt.verify(b"{}", &verifier),
                Err(ReceiptError::NotIncluded { .. })
            ));
        }
        let other = NoteSigner::generate("warden.local/receipts").unwrap();
        assert!(matches!(
            receipts[0].verify(&entries[0], &other.verifier()),
            Err(ReceiptError::Checkpoint(_))
        ));
        let mut moved = receipts[1].clone();
        moved.index = 2;
        assert!(moved.verify(&entries[1], &verifier).is_err());
    }

    #[test]
    fn extra_line_is_parsed() {
        let (_, _, receipts) = fixture();
        let text = receipts[0]
            .to_text()
            .replacen("\nindex ", "\nextra aGVsbG8=\nindex ", 1);
        let parsed = Receipt::parse(&text).unwrap();
        assert_eq!(parsed.extra(), Some(&b"hello"[..]));
        assert_eq!(parsed.to_text(), text);
    }

    #[test]
    fn malformed_receipts_are_rejected() {
        let (_, _, receipts) = fixture();
        let good = receipts[3].to_text();
        for bad in [
            good.replacen("c2sp.org/tlog-proof@v1", "c2sp.org/tlog-proof@v2", 1),
            good.replacen("index 3", "index 03", 1),
            good.replacen("index 3", "index -3", 1),
            good.replacen("index 3", "idx 3", 1),
            good.replacen("index 3\n", "index 3\n!!!!\n", 1),
            good.split("\n\n").next().unwrap().to_owned(),
            "c2sp.org/tlog-proof@v1\nindex 0\n\n".to_owned(),
        ] {
            assert!(Receipt::parse(&bad).is_err(), "accepted {bad:?}");
        }
    }
}
