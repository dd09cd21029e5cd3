//! C2SP transparency-log checkpoints (`c2sp.org/tlog-checkpoint`), signed as notes.
//!
//! This module owns the checkpoint text — origin line, decimal tree size, base64 root hash and
//! optional extension lines — and the pairing of that text with its signed note. It does not
//! compute roots ([`crate::tree`]) or decide when to sign ([`crate::log`]).
//!
//! ```text
//! warden.local/ledger
//! 2
//! Kq3XG1wlNLuO+5fKPxXHgjcbrMjaBNTY4IWxJR3dBOQ=
//!
//! — warden.local/ledger 3pN2lQ...
//! ```
//!
//! The ledger's convention: the origin line equals the signing key's name, so a verifier key
//! alone says which log a checkpoint must come from. [`SignedCheckpoint::open`] enforces it.

use std::fmt;

use crate::note::{NoteError, NoteSigner, NoteVerifier};
use crate::tree::Hash;

/// Why a checkpoint was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The text is not a well-formed checkpoint.
    #[error("malformed checkpoint: {0}")]
    Malformed(&'static str),
    /// The signed note is malformed or its signature does not verify.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// The origin line is not the verifier key's name.
    #[error("checkpoint origin {found:?} is not the log's origin {expected:?}")]
    OriginMismatch {
        /// The origin the verifier expects.
        expected: String,
        /// The origin in the checkpoint.
        found: String,
    },
}

/// An unsigned checkpoint: a log's tree size and root hash at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's identity (the first line). The ledger uses its signing key's name.
    pub origin: String,
    /// The number of entries in the tree.
    pub size: u64,
    /// The RFC 6962 root hash of the tree.
    pub root: Hash,
    /// Opaque extension lines (non-empty); the ledger writes none.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// A checkpoint without extension lines.
    pub fn new(origin: impl Into<String>, size: u64, root: Hash) -> Checkpoint {
        Checkpoint {
            origin: origin.into(),
            size,
            root,
            extensions: Vec::new(),
        }
    }

    /// The checkpoint text: `origin\nsize\nbase64(root)\n` followed by extension lines.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            self.root.to_base64()
        );
        for line in &self.extensions {
            s.push_str(line);
            s.push('\n');
        }
        s
    }

    /// Parses checkpoint text (a note's text, ending in a newline).
    pub fn parse(text: &str) -> Result<Checkpoint, CheckpointError> {
        let body = text
            .strip_suffix('\n')
            .ok_or(CheckpointError::Malformed("text must end with a newline"))?;
        let mut lines = body.split('\n');
        let origin = lines.next().unwrap_or_default();
        let size = lines
            .next()
            .ok_or(CheckpointError::Malformed("missing tree size"))?;
        let root = lines
            .next()
            .ok_or(CheckpointError::Malformed("missing root hash"))?;
        if origin.is_empty() {
            return Err(CheckpointError::Malformed("empty origin"));
        }
        let size = parse_decimal(size).ok_or(CheckpointError::Malformed(
            "tree size must be decimal without leading zeros",
        ))?;
        let root = Hash::from_base64(root).ok_or(CheckpointError::Malformed(
            "root hash must be base64 of 32 bytes",
        ))?;
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(CheckpointError::Malformed("empty extension line"));
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }

    /// Signs the checkpoint. The signer's name SHOULD equal the origin (the ledger ensures it).
    pub fn sign(self, signer: &NoteSigner) -> Result<SignedCheckpoint, NoteError> {
        let note = signer.sign(&self.to_text())?;
        Ok(SignedCheckpoint {
            checkpoint: self,
            note,
        })
    }
}

/// A decimal `u64` with no sign and no leading zeros (`"0"` alone is allowed).
pub(crate) fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

/// A checkpoint together with its signed note text.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    checkpoint: Checkpoint,
    note: String,
}

impl SignedCheckpoint {
    /// Verifies `note` with `verifier` and parses it. The origin MUST equal the verifier's key
    /// name.
    pub fn open(note: &str, verifier: &NoteVerifier) -> Result<SignedCheckpoint, CheckpointError> {
        let text = verifier.open(note)?;
        let checkpoint = Checkpoint::parse(text)?;
        if checkpoint.origin != verifier.name() {
            return Err(CheckpointError::OriginMismatch {
                expected: verifier.name().to_owned(),
                found: checkpoint.origin,
            });
        }
        Ok(SignedCheckpoint {
            checkpoint,
            note: note.to_owned(),
        })
    }

    /// Parses a signed checkpoint WITHOUT verifying its signature: for listing and for pairing
    /// with a later [`open`](Self::open). Callers MUST NOT trust its contents.
    pub fn parse_unverified(note: &str) -> Result<SignedCheckpoint, CheckpointError> {
        let (text, _) = crate::note::split_note(note)?;
        Ok(SignedCheckpoint {
            checkpoint: Checkpoint::parse(text)?,
            note: note.to_owned(),
        })
    }

    /// The checkpoint.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// The tree size.
    pub fn size(&self) -> u64 {
        self.checkpoint.size
    }

    /// The root hash.
    pub fn root(&self) -> Hash {
        self.checkpoint.root
    }

    /// The complete signed note (text, blank line, signature lines).
    pub fn note(&self) -> &str {
        &self.note
    }
}

impl fmt::Debug for SignedCheckpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedCheckpoint")
            .field("origin", &self.checkpoint.origin)
            .field("size", &self.checkpoint.size)
            .field("root", &self.checkpoint.root)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::leaf_hash;

    #[test]
    fn spec_example_text_parses_and_round_trips() {
        // The example checkpoint of c2sp.org/tlog-checkpoint.
        let text =
            "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
        let cp = Checkpoint::parse(text).unwrap();
        assert_eq!(cp.origin, "example.com/behind-the-sofa");
        assert_eq!(cp.size, 20852163);
        assert_eq!(cp.to_text(), text);
    }

    #[test]
    fn extensions_round_trip_and_bad_text_is_rejected() {
        let mut cp = Checkpoint::new("a.example/log", 0, leaf_hash(b""));
        cp.extensions = vec!["ext one".into(), "two".into()];
        assert_eq!(Checkpoint::parse(&cp.to_text()).unwrap(), cp);
        let root = leaf_hash(b"").to_base64();
        for bad in [
            format!("a\n1\n{root}"),
            format!("\n1\n{root}\n"),
            format!("a\n01\n{root}\n"),
            format!("a\n-1\n{root}\n"),
            format!("a\n+1\n{root}\n"),
            "a\n1\nAAAA\n".to_owned(),
            format!("a\n1\n{root}\n\n"),
            "a\n1\n".to_owned(),
        ] {
            assert!(Checkpoint::parse(&bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn signed_checkpoints_open_with_the_right_key_only() {
        let signer = NoteSigner::generate("warden.local/test").unwrap();
        let signed = Checkpoint::new("warden.local/test", 7, leaf_hash(b"x"))
            .sign(&signer)
            .unwrap();
        let opened = SignedCheckpoint::open(signed.note(), &signer.verifier()).unwrap();
        assert_eq!(opened, signed);
        assert_eq!(opened.size(), 7);
        let other = NoteSigner::generate("warden.local/test").unwrap();
        assert!(SignedCheckpoint::open(signed.note(), &other.verifier()).is_err());
        // A checkpoint whose origin is not the key name is refused.
        let foreign = Checkpoint::new("elsewhere/log", 7, leaf_hash(b"x"))
            .sign(&signer)
            .unwrap();
        assert!(matches!(
            SignedCheckpoint::open(foreign.note(), &signer.verifier()),
            Err(CheckpointError::OriginMismatch { .. })
        ));
        assert_eq!(
            SignedCheckpoint::parse_unverified(foreign.note())
                .unwrap()
                .checkpoint()
                .origin,
            "elsewhere/log"
        );
    }
}
