//! C2SP signed notes with Ed25519 keys (`c2sp.org/signed-note`).
//!
//! This module owns the ledger's keys and the note format checkpoints are signed in: the verifier
//! key string (`name+hexid+base64(0x01‖pubkey)`, what `warden audit pubkey` prints), the signer
//! key string (`PRIVATE+KEY+name+hexid+base64(0x01‖seed)`, Go `sumdb/note` compatible), key
//! generation, signing a text and opening (verifying) a note. It does not know what the text
//! means; [`crate::checkpoint`] gives it meaning.
//!
//! A signed note is the text (ending in a newline), a blank line, and signature lines
//! `— <name> base64(keyid ‖ signature)`. The key id is the first four bytes of
//! `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ pubkey)`, big-endian. [`NoteVerifier::open`] follows the spec:
//! signatures by unknown keys are ignored, a signature by the known key MUST verify, and a note
//! with no verified signature is rejected.
//!
//! # Why not the `signed_note` crate
//!
//! `signed_note` 0.2 (Cloudflare, a port of Go's `sumdb/note`) was evaluated. It is correct but
//! pins `ed25519-dalek` 2, `sha2` 0.10, `base64` 0.21, `rand_core` 0.6 and `thiserror` 1, so an
//! auditor's build of this crate would carry two versions of each of them. The format is small
//! enough to implement against the spec and check with the spec's own example key and note (and
//! Go's), which the tests do.

use std::fmt;
use std::io::Write as _;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// The signature type byte of Ed25519 in C2SP signed notes.
const ED25519: u8 = 0x01;
/// The most signature lines [`NoteVerifier::open`] accepts (the spec requires at least 16).
const MAX_SIGNATURES: usize = 100;

/// Why a key or a note was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    /// A key name is empty or contains a space or `+`.
    #[error("invalid key name {0:?}: it must be non-empty, without spaces or '+'")]
    InvalidName(String),
    /// A verifier or signer key string is malformed.
    #[error("malformed {kind} key: {reason}")]
    MalformedKey {
        /// `"verifier"` or `"signer"`.
        kind: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A key's id does not match its name and public key.
    #[error("key id {found:08x} does not match the key (expected {expected:08x})")]
    KeyIdMismatch {
        /// The id in the key string.
        found: u32,
        /// The id computed from the name and public key.
        expected: u32,
    },
    /// A key uses a signature type other than Ed25519.
    #[error("unsupported signature type 0x{0:02x} (only Ed25519, 0x01)")]
    UnsupportedAlgorithm(u8),
    /// The text to sign is empty, lacks a final newline or contains control characters.
    #[error("text cannot be signed: {0}")]
    InvalidText(&'static str),
    /// A note is not well-formed.
    #[error("malformed note: {0}")]
    MalformedNote(&'static str),
    /// A signature by the trusted key did not verify: the note was altered or forged.
    #[error("signature by {name} (key id {key_id:08x}) does not verify")]
    BadSignature {
        /// The key name.
        name: String,
        /// The key id.
        key_id: u32,
    },
    /// The note carries no signature by the trusted key.
    #[error("note is not signed by {name} (key id {key_id:08x})")]
    NotSigned {
        /// The key name.
        name: String,
        /// The key id.
        key_id: u32,
    },
    /// The operating system's random source failed while generating a key.
    #[error("random number generator failed: {0}")]
    Random(String),
    /// A key file could not be read or written.
    #[error("key file {path}: {message}")]
    KeyFile {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// The C2SP key id: the first four bytes (big-endian) of `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ pubkey)`.
pub fn key_id(name: &str, public_key: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', ED25519]);
    h.update(public_key);
    let digest = h.finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

fn check_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty() || name.contains('+') || name.chars().any(char::is_whitespace) {
        return Err(NoteError::InvalidName(name.to_owned()));
    }
    Ok(())
}

/// Splits `name+hexid+base64` (the base64 part may itself contain `+`).
fn split_key<'a>(s: &'a str, kind: &'static str) -> Result<(&'a str, u32, Vec<u8>), NoteError> {
    let malformed = |reason| NoteError::MalformedKey { kind, reason };
    let mut parts = s.splitn(3, '+');
    let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(malformed("expected name+keyid+key"));
    };
    check_name(name)?;
    if id.len() != 8 {
        return Err(malformed("key id must be 8 hex digits"));
    }
    let id = u32::from_str_radix(id, 16).map_err(|_| malformed("key id must be 8 hex digits"))?;
    let key = BASE64
        .decode(key)
        .map_err(|_| malformed("key material is not base64"))?;
    match key.first() {
        None => Err(malformed("key material is empty")),
        Some(&ED25519) if key.len() == 33 => Ok((name, id, key[1..].to_vec())),
        Some(&ED25519) => Err(malformed("Ed25519 key material must be 32 bytes")),
        Some(&other) => Err(NoteError::UnsupportedAlgorithm(other)),
    }
}

/// A trusted public key: verifies notes signed by the matching [`NoteSigner`].
#[derive(Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    key_id: u32,
    key: VerifyingKey,
}

impl NoteVerifier {
    /// Parses a verifier key string, `name+hexid+base64(0x01‖pubkey)`, checking that the id
    /// matches the name and key.
    pub fn from_vkey(vkey: &str) -> Result<NoteVerifier, NoteError> {
        let vkey = vkey.trim();
        let (name, id, key) = split_key(vkey, "verifier")?;
        let key: [u8; 32] = key.try_into().expect("split_key checked the length");
        let expected = key_id(name, &key);
        if id != expected {
            return Err(NoteError::KeyIdMismatch {
                found: id,
                expected,
            });
        }
        let key = VerifyingKey::from_bytes(&key).map_err(|_| NoteError::MalformedKey {
            kind: "verifier",
            reason: "not a valid Ed25519 public key",
        })?;
        Ok(NoteVerifier {
            name: name.to_owned(),
            key_id: id,
            key,
        })
    }

    /// The verifier key string, `name+hexid+base64(0x01‖pubkey)`.
    pub fn to_vkey(&self) -> String {
        let mut material = vec![ED25519];
        material.extend_from_slice(self.key.as_bytes());
        format!(
            "{}+{:08x}+{}",
            self.name,
            self.key_id,
            BASE64.encode(material)
        )
    }

    /// The key name (the ledger uses it as the checkpoint origin).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// Verifies a signed note and returns its text (including the final newline).
    ///
    /// Signatures by other keys are ignored; a signature whose name and id match this key MUST
    /// verify, or the whole note is rejected ([`NoteError::BadSignature`]); a note with no
    /// signature by this key is rejected ([`NoteError::NotSigned`]).
    pub fn open<'a>(&self, note: &'a str) -> Result<&'a str, NoteError> {
        let (text, signatures) = split_note(note)?;
        let mut verified = false;
        for line in signatures {
            let (name, id, sig) = parse_signature_line(line)?;
            if name != self.name || id != self.key_id {
                continue;
            }
            let bad = || NoteError::BadSignature {
                name: self.name.clone(),
                key_id: self.key_id,
            };
            let sig: [u8; 64] = sig.try_into().map_err(|_| bad())?;
            self.key
                .verify_strict(text.as_bytes(), &Signature::from_bytes(&sig))
                .map_err(|_| bad())?;
            verified = true;
        }
        if verified {
            Ok(text)
        } else {
            Err(NoteError::NotSigned {
                name: self.name.clone(),
                key_id: self.key_id,
            })
        }
    }
}

impl fmt::Display for NoteVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_vkey())
    }
}

impl fmt::Debug for NoteVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NoteVerifier({})", self.to_vkey())
    }
}

/// Splits a note into its text (with the final newline) and its signature lines (without
/// newlines), checking the spec's character rules.
pub(crate) fn split_note(note: &str) -> Result<(&str, Vec<&str>), NoteError> {
    if note.bytes().any(|b| b < 0x20 && b != b'\n') {
        return Err(NoteError::MalformedNote(
            "contains a control character other than newline",
        ));
    }
    if !note.ends_with('\n') {
        return Err(NoteError::MalformedNote("does not end with a newline"));
    }
    let split = note.rfind("\n\n").ok_or(NoteError::MalformedNote(
        "no blank line before the signatures",
    ))?;
    let (text, rest) = (&note[..=split], &note[split + 2..]);
    let signatures: Vec<&str> = rest
        .strip_suffix('\n')
        .unwrap_or(rest)
        .split('\n')
        .collect();
    if rest.is_empty() || signatures.is_empty() {
        return Err(NoteError::MalformedNote("no signature lines"));
    }
    if signatures.len() > MAX_SIGNATURES {
        return Err(NoteError::MalformedNote("too many signatures"));
    }
    Ok((text, signatures))
}

/// Parses `— <name> base64(keyid ‖ sig)`.
fn parse_signature_line(line: &str) -> Result<(&str, u32, Vec<u8>), NoteError> {
    let bad = NoteError::MalformedNote("malformed signature line");
    let rest = line.strip_prefix("— ").ok_or(bad.clone())?;
    let (name, b64) = rest.split_once(' ').ok_or(bad.clone())?;
    if check_name(name).is_err() || b64.contains(' ') {
        return Err(bad);
    }
    let raw = BASE64.decode(b64).map_err(|_| bad.clone())?;
    if raw.len() < 5 {
        return Err(bad);
    }
    let id = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
    Ok((name, id, raw[4..].to_vec()))
}

/// A private signing key with its name. Its `Debug` never prints the secret.
///
/// The secret seed is zeroized when the signer is dropped.
#[derive(Clone)]
pub struct NoteSigner {
    name: String,
    key_id: u32,
    key: SigningKey,
}

impl NoteSigner {
    /// Generates a new Ed25519 key named `name` from the operating system's random source.
    pub fn generate(name: &str) -> Result<NoteSigner, NoteError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| NoteError::Random(e.to_string()))?;
        let signer = NoteSigner::from_seed(name, seed);
        seed.fill(0);
        signer
    }

    /// The signer for a 32-byte Ed25519 seed (RFC 8032 secret key).
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<NoteSigner, NoteError> {
        check_name(name)?;
        let key = SigningKey::from_bytes(&seed);
        let key_id = key_id(name, key.verifying_key().as_bytes());
        Ok(NoteSigner {
            name: name.to_owned(),
            key_id,
            key,
        })
    }

    /// Parses a signer key string, `PRIVATE+KEY+name+hexid+base64(0x01‖seed)` (the format of Go's
    /// `note.NewSigner`), checking the id against the derived public key.
    pub fn from_skey(skey: &str) -> Result<NoteSigner, NoteError> {
        let rest = skey
            .trim()
            .strip_prefix("PRIVATE+KEY+")
            .ok_or(NoteError::MalformedKey {
                kind: "signer",
                reason: "must start with PRIVATE+KEY+",
            })?;
        let (name, id, seed) = split_key(rest, "signer")?;
        let seed: [u8; 32] = seed.try_into().expect("split_key checked the length");
        let signer = NoteSigner::from_seed(name, seed)?;
        if signer.key_id != id {
            return Err(NoteError::KeyIdMismatch {
                found: id,
                expected: signer.key_id,
            });
        }
        Ok(signer)
    }

    /// The signer key string, `PRIVATE+KEY+name+hexid+base64(0x01‖seed)`. It is the secret:
    /// callers MUST NOT log it and SHOULD store it only in a file readable by its owner.
    pub fn to_skey(&self) -> String {
        let mut material = vec![ED25519];
        material.extend_from_slice(self.key.as_bytes());
        let s = format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.key_id,
            BASE64.encode(&material)
        );
        material.fill(0);
        s
    }

    /// Creates a new key file at `path` holding a freshly generated key (its
    /// [`to_skey`](Self::to_skey) string and a newline), readable and writable by its owner only
    /// (mode 0600 on Unix). Fails if the file exists.
    pub fn create_key_file(path: &Path, name: &str) -> Result<NoteSigner, NoteError> {
        let signer = NoteSigner::generate(name)?;
        let fail = |e: std::io::Error| NoteError::KeyFile {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(fail)?;
        file.write_all(format!("{}\n", signer.to_skey()).as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(fail)?;
        Ok(signer)
    }

    /// Reads a key file written by [`create_key_file`](Self::create_key_file) (or any file holding
    /// a signer key string).
    pub fn read_key_file(path: &Path) -> Result<NoteSigner, NoteError> {
        let text = std::fs::read_to_string(path).map_err(|e| NoteError::KeyFile {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        NoteSigner::from_skey(&text)
    }

    /// The key name (the ledger uses it as the checkpoint origin).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The matching verifier (public) key.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            key_id: self.key_id,
            key: self.key.verifying_key(),
        }
    }

    /// Signs `text` and returns the complete signed note: the text, a blank line and one
    /// signature line.
    ///
    /// `text` MUST be non-empty, end with a newline and contain no control characters other than
    /// newlines.
    pub fn sign(&self, text: &str) -> Result<String, NoteError> {
        if text.is_empty() || !text.ends_with('\n') {
            return Err(NoteError::InvalidText(
                "it must be non-empty and end with a newline",
            ));
        }
        if text.bytes().any(|b| b < 0x20 && b != b'\n') {
            return Err(NoteError::InvalidText("it contains a control character"));
        }
        let signature = self.key.sign(text.as_bytes());
        let mut raw = Vec::with_capacity(68);
        raw.extend_from_slice(&self.key_id.to_be_bytes());
        raw.extend_from_slice(&signature.to_bytes());
        Ok(format!("{text}\n— {} {}\n", self.name, BASE64.encode(raw)))
    }
}

impl fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "NoteSigner({}+{:08x}, secret redacted)",
            self.name, self.key_id
        )
    }
}

#[cfg(test)]
mod tests;
