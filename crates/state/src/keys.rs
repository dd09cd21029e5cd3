//! Virtual-key material: random ids and secrets, the keyed hash stored in their place, and the
//! pepper file that keys that hash.
//!
//! Owns everything that touches a raw secret. It must not store, log or format a secret: a
//! secret leaves this module only inside [`CreatedKey`](crate::CreatedKey), whose `Debug` redacts
//! it, and the database sees nothing but [`KeyHasher::hash`]'s output.

use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::path::Path;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::StoreError;

/// Prefix of every virtual-key secret, so a leaked one is recognizable (secret scanners, logs)
/// and a provider key pasted by mistake is rejected before any lookup.
pub(crate) const SECRET_PREFIX: &str = "wk_";
/// Prefix of every public key id.
pub(crate) const ID_PREFIX: &str = "key_";
/// Base62 digits needed for 256 bits: ceil(256 / log2(62)) = 43. Fixed width, so every secret
/// has the same length and the format check below is exact.
const SECRET_DIGITS: usize = 43;
const SECRET_LEN: usize = SECRET_PREFIX.len() + SECRET_DIGITS;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Length of the pepper file: one HMAC-SHA256 key.
const PEPPER_LEN: usize = 32;

/// Fills `buf` from the operating system's CSPRNG.
pub(crate) fn random_bytes(buf: &mut [u8]) -> Result<(), StoreError> {
    getrandom::fill(buf).map_err(|e| StoreError::Random(e.to_string()))
}

/// A fresh public key id: `key_` + 16 lowercase hex digits (64 random bits). Random rather than
/// sequential so ids reveal neither how many keys exist nor the order they were made in.
pub(crate) fn new_id() -> Result<String, StoreError> {
    random_id(ID_PREFIX)
}

/// `prefix` + 16 lowercase hex digits (64 random bits from the OS CSPRNG): the shape of every
/// public id the store issues (keys, approvals), unguessable and unordered.
pub(crate) fn random_id(prefix: &str) -> Result<String, StoreError> {
    let mut raw = [0u8; 8];
    random_bytes(&mut raw)?;
    let mut id = String::with_capacity(prefix.len() + 16);
    id.push_str(prefix);
    push_hex(&mut id, &raw);
    Ok(id)
}

/// A fresh secret: `wk_` + 43 base62 digits encoding 32 random bytes. Base62 keeps it one
/// double-click-selectable token that needs no escaping in headers, shells or URLs.
pub(crate) fn new_secret() -> Result<String, StoreError> {
    let mut raw = [0u8; 32];
    random_bytes(&mut raw)?;
    let mut secret = String::with_capacity(SECRET_LEN);
    secret.push_str(SECRET_PREFIX);
    secret.push_str(&base62(raw));
    Ok(secret)
}

/// Big-endian base62 of 32 bytes, left-padded with `0` to [`SECRET_DIGITS`].
fn base62(mut n: [u8; 32]) -> String {
    let mut digits = [b'0'; SECRET_DIGITS];
    for slot in digits.iter_mut().rev() {
        // Schoolbook division of the 256-bit number by 62, most significant byte first.
        let mut rem = 0u32;
        for byte in n.iter_mut() {
            let cur = (rem << 8) | u32::from(*byte);
            *byte = (cur / 62) as u8;
            rem = cur % 62;
        }
        *slot = BASE62[rem as usize];
    }
    digits.iter().map(|&d| d as char).collect()
}

/// Whether `s` has the exact shape of a secret this module issues. Checking the shape first
/// costs nothing secret-dependent (the format is public) and keeps arbitrary header junk, such
/// as a provider key sent by mistake, from reaching the database at all.
pub(crate) fn looks_like_secret(s: &str) -> bool {
    s.len() == SECRET_LEN
        && s.starts_with(SECRET_PREFIX)
        && s.as_bytes()[SECRET_PREFIX.len()..]
            .iter()
            .all(u8::is_ascii_alphanumeric)
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
}

/// HMAC-SHA256 keyed by the pepper. Keyed rather than a plain hash so that a copy of
/// `state.db` alone (a backup, a support bundle) cannot be used to test guesses offline.
#[derive(Clone)]
pub(crate) struct KeyHasher {
    mac: Hmac<Sha256>,
}

impl KeyHasher {
    fn new(pepper: &[u8; PEPPER_LEN]) -> Self {
        let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(pepper)
            .expect("HMAC accepts a key of any length");
        Self { mac }
    }

    /// Lowercase hex of HMAC-SHA256(pepper, secret): what the database stores and indexes.
    pub(crate) fn hash(&self, secret: &str) -> String {
        // Cloning the keyed state skips re-deriving the HMAC pads on every request.
        let mut mac = self.mac.clone();
        mac.update(secret.as_bytes());
        let tag = mac.finalize().into_bytes();
        let mut out = String::with_capacity(64);
        push_hex(&mut out, &tag);
        out
    }
}

impl std::fmt::Debug for KeyHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyHasher(..)")
    }
}

/// Loads `path`, or creates it holding 32 fresh random bytes with mode 0600.
///
/// Creation writes a private temporary file and hard-links it into place: `link` fails if the
/// name exists, so when a gateway and a CLI start at once exactly one pepper wins, and nobody
/// can read a half-written file. The loser reads the winner's pepper.
pub(crate) fn load_or_create_pepper(path: &Path) -> Result<KeyHasher, StoreError> {
    let io_err = |source: io::Error| StoreError::Io {
        path: path.to_owned(),
        source,
    };
    match read_pepper(path) {
        Ok(pepper) => return Ok(KeyHasher::new(&pepper)),
        Err(StoreError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }

    let mut pepper = [0u8; PEPPER_LEN];
    random_bytes(&mut pepper)?;
    let mut suffix = [0u8; 8];
    random_bytes(&mut suffix)?;
    let mut tmp_name = String::from("key-pepper.tmp-");
    push_hex(&mut tmp_name, &suffix);
    let tmp = path.with_file_name(tmp_name);

    let written = (|| {
        let mut file = private_create_new(&tmp)?;
        file.write_all(&pepper)?;
        file.sync_all()
    })();
    let linked = written.and_then(|()| fs::hard_link(&tmp, path));
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            sync_parent(path).map_err(io_err)?;
            Ok(KeyHasher::new(&pepper))
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            Ok(KeyHasher::new(&read_pepper(path)?))
        }
        Err(e) => Err(io_err(e)),
    }
}

fn read_pepper(path: &Path) -> Result<[u8; PEPPER_LEN], StoreError> {
    let mut file = File::open(path).map_err(|source| StoreError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut buf = Vec::with_capacity(PEPPER_LEN + 1);
    file.read_to_end(&mut buf)
        .map_err(|source| StoreError::Io {
            path: path.to_owned(),
            source,
        })?;
    <[u8; PEPPER_LEN]>::try_from(buf.as_slice()).map_err(|_| {
        // A wrong-sized pepper would silently invalidate every key, so refuse to guess.
        StoreError::Corrupt(format!(
            "{} holds {} bytes, expected {PEPPER_LEN}",
            path.display(),
            buf.len()
        ))
    })
}

#[cfg(unix)]
fn private_create_new(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn private_create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

/// Makes the new directory entry durable: losing the pepper in a crash would invalidate every
/// key issued since.
#[cfg(unix)]
fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

#[cfg(not(unix))]
fn sync_parent(_path: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base62_is_fixed_width_and_exact() {
        assert_eq!(base62([0; 32]), "0".repeat(SECRET_DIGITS));
        let mut one = [0u8; 32];
        one[31] = 61;
        assert_eq!(base62(one), format!("{}z", "0".repeat(SECRET_DIGITS - 1)));
        one[31] = 62;
        assert_eq!(base62(one), format!("{}10", "0".repeat(SECRET_DIGITS - 2)));
        // 2^256 - 1 needs all 43 digits, so no secret is ever truncated.
        let max = base62([0xff; 32]);
        assert_eq!(max.len(), SECRET_DIGITS);
        assert_ne!(max.as_bytes()[0], b'0');
    }

    #[test]
    fn secrets_and_ids_have_their_documented_shape() {
        let s = new_secret().unwrap();
        assert!(looks_like_secret(&s), "{s}");
        assert_eq!(s.len(), 46);
        assert_ne!(s, new_secret().unwrap());
        let id = new_id().unwrap();
        assert_eq!(id.len(), 20);
        assert!(id.starts_with("key_"));
        assert!(
            id[4..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
    }

    #[test]
    fn shape_check_rejects_near_misses() {
        let s = new_secret().unwrap();
        assert!(!looks_like_secret(&s[..45]));
        assert!(!looks_like_secret(&format!("{s}x")));
        assert!(!looks_like_secret(&s.replacen("wk_", "sk_", 1)));
        assert!(!looks_like_secret(&format!("{}-", &s[..45])));
        assert!(!looks_like_secret(""));
    }

    #[test]
    fn hash_is_hmac_sha256_keyed_by_the_pepper() {
        // HMAC zero-pads keys to the block size, so RFC 4231's 20-byte and 4-byte keys padded to
        // 32 bytes give the RFC's answers: known-answer tests for the exact construction.
        let mut key = [0u8; 32];
        key[..20].fill(0x0b);
        assert_eq!(
            KeyHasher::new(&key).hash("Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        let mut jefe = [0u8; 32];
        jefe[..4].copy_from_slice(b"Jefe");
        let h = KeyHasher::new(&jefe);
        let want = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        assert_eq!(h.hash("what do ya want for nothing?"), want);
        // The cloned keyed state must not carry input from a previous call.
        assert_eq!(h.hash("what do ya want for nothing?"), want);
        assert_ne!(
            KeyHasher::new(&[2; 32]).hash("Hi There"),
            KeyHasher::new(&key).hash("Hi There")
        );
    }
}
