//! The token vault: issues placeholders such as `⟦EMAIL_1⟧` for tokenized values and restores
//! them in the response to the same tenant and session.
//!
//! This is the only place in the crate where a detected value outlives the call that found it,
//! and it is kept encrypted: AES-256-GCM under the vault key, with a random 96-bit nonce and the
//! tenant, session and placeholder as associated data, so a ciphertext moved to another session
//! (or another placeholder) does not decrypt. Lookups by value go through an HMAC-SHA256
//! fingerprint under a key derived from the vault key (never the raw AES key), so the maps hold
//! no plaintext values and no plaintext tenant or session ids either. Nothing here logs.
//!
//! Placeholders are deterministic per (tenant, session): the same value of the same type gets
//! the same placeholder every time, because multi-turn chats re-send their history and the model
//! must see a stable token. Numbering is per label per session (`EMAIL_1`, `EMAIL_2`, …) and
//! never shared between sessions or tenants. A placeholder from another session, or one that was
//! never issued, is left untouched by [`Vault::restore`].
//!
//! Entries expire `ttl` after their last use (issue, re-issue or restore). A session's counters
//! live as long as any of its entries, so a number is never reused for a different value while
//! an older text could still carry it. Expiry runs in [`Vault::purge_expired`] and
//! opportunistically on [`Vault::tokenize`], per shard, at most every `ttl / 4` (capped at 60 s).
//!
//! Gateway order of operations: scan and transform a response first, restore placeholders after,
//! otherwise a restored value would be caught (and redacted) by the response policy.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const OPEN: &str = "\u{27E6}";
const CLOSE: &str = "\u{27E7}";
/// Longest label (the upper-cased type name) inside a placeholder, in bytes (ASCII).
const LABEL_MAX: usize = 40;
/// Enough shards that two sessions rarely contend on 2–16 cores; each is an empty map at rest.
const SHARDS: usize = 16;

type Fp = [u8; 32];

/// The label for a type name: ASCII upper case, anything outside `[A-Z0-9]` becomes `_`,
/// at most [`LABEL_MAX`] bytes. Shared with redaction labels so `[EMAIL]` and `⟦EMAIL_1⟧` agree.
pub(crate) fn label_name(kind: &str) -> String {
    let mut out: String = kind
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .take(LABEL_MAX)
        .collect();
    if out.is_empty() {
        out.push_str("VALUE");
    }
    out
}

fn is_label_byte(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'
}

struct Sealed {
    /// The value fingerprint that maps to this placeholder, so both go together on expiry.
    value_fp: Fp,
    nonce: [u8; 12],
    ciphertext: Vec<u8>,
    last_used: Instant,
}

#[derive(Default)]
struct Session {
    by_value: HashMap<Fp, Arc<str>>,
    sealed: HashMap<Arc<str>, Sealed>,
    counters: HashMap<String, u64>,
}

struct Shard {
    sessions: HashMap<Fp, Session>,
    next_purge: Option<Instant>,
}

/// Encrypted placeholder store for tokenize / restore. `Send + Sync`; sharded by session.
pub struct Vault {
    cipher: Aes256Gcm,
    /// Keyed with `HMAC(key, "warden vault hmac v1")`, not with the AES key itself.
    mac: Hmac<Sha256>,
    ttl: Duration,
    purge_every: Duration,
    shards: Box<[Mutex<Shard>]>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("ttl", &self.ttl)
            .field("entries", &self.len())
            .finish_non_exhaustive()
    }
}

impl Vault {
    /// Bytes of the longest placeholder [`Vault::tokenize`] can issue:
    /// `⟦` + label (≤ 40) + `_` + a `u64` in decimal (≤ 20) + `⟧`.
    pub const PLACEHOLDER_MAX_LEN: usize = OPEN.len() + LABEL_MAX + 1 + 20 + CLOSE.len();

    /// A vault whose values are encrypted under `key` (AES-256-GCM) and kept for `ttl` after
    /// their last use.
    pub fn new(key: [u8; 32], ttl: Duration) -> Vault {
        use aes_gcm::aead::KeyInit as _;
        let cipher = Aes256Gcm::new(&key.into());
        let mut derive = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(&key)
            .expect("HMAC accepts a key of any length");
        derive.update(b"warden vault hmac v1");
        let mac_key = derive.finalize().into_bytes();
        let mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(&mac_key)
            .expect("HMAC accepts a key of any length");
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    sessions: HashMap::new(),
                    next_purge: None,
                })
            })
            .collect();
        Vault {
            cipher,
            mac,
            ttl,
            purge_every: (ttl / 4).min(Duration::from_secs(60)),
            shards,
        }
    }

    /// A fresh random vault key from the operating system.
    pub fn generate_key() -> [u8; 32] {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the operating system's random source is unavailable");
        key
    }

    /// The placeholder for `value` of type `kind` in this tenant's session, issuing (and
    /// storing, encrypted) a new one on first sight.
    pub fn tokenize(&self, tenant: &str, session: &str, kind: &str, value: &str) -> String {
        self.tokenize_at(tenant, session, kind, value, Instant::now())
    }

    /// Replaces every placeholder issued for this tenant and session with its value. Unknown,
    /// expired or foreign placeholders stay as they are. `None` if nothing was replaced;
    /// otherwise the new text and how many placeholders were restored.
    pub fn restore(&self, tenant: &str, session: &str, text: &str) -> Option<(String, usize)> {
        // Most texts carry no placeholder: answer without hashing or locking.
        memchr::memmem::find(text.as_bytes(), OPEN.as_bytes())?;
        let scope = self.scope(tenant, session);
        self.restore_at(&scope, tenant, session, text, Instant::now())
    }

    /// Drops entries unused for `ttl`; returns how many.
    pub fn purge_expired(&self) -> usize {
        self.purge_expired_at(Instant::now())
    }

    /// Stored values, all tenants and sessions.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                lock(s)
                    .sessions
                    .values()
                    .map(|sess| sess.sealed.len())
                    .sum::<usize>()
            })
            .sum()
    }

    /// Whether no value is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn fingerprint(&self, fields: &[&[u8]]) -> Fp {
        let mut mac = self.mac.clone();
        // Length-prefixed so that ("ab", "c") and ("a", "bc") cannot collide.
        for f in fields {
            mac.update(&(f.len() as u64).to_le_bytes());
            mac.update(f);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(&mac.finalize().into_bytes());
        out
    }

    fn scope(&self, tenant: &str, session: &str) -> Fp {
        self.fingerprint(&[b"scope", tenant.as_bytes(), session.as_bytes()])
    }

    fn shard(&self, scope: &Fp) -> MutexGuard<'_, Shard> {
        lock(&self.shards[usize::from(scope[0]) % SHARDS])
    }

    fn tokenize_at(
        &self,
        tenant: &str,
        session: &str,
        kind: &str,
        value: &str,
        now: Instant,
    ) -> String {
        let scope = self.scope(tenant, session);
        let value_fp = self.fingerprint(&[
            b"value",
            tenant.as_bytes(),
            session.as_bytes(),
            kind.as_bytes(),
            value.as_bytes(),
        ]);
        let mut shard = self.shard(&scope);
        if shard.next_purge.is_none_or(|t| now >= t) {
            self.purge_shard(&mut shard, now);
            shard.next_purge = Some(now + self.purge_every);
        }
        let sess = shard.sessions.entry(scope).or_default();
        if let Some(placeholder) = sess.by_value.get(&value_fp) {
            if let Some(sealed) = sess.sealed.get_mut(placeholder) {
                sealed.last_used = now;
            }
            return placeholder.to_string();
        }
        let label = label_name(kind);
        let counter = sess.counters.entry(label.clone()).or_insert(0);
        *counter += 1;
        let placeholder: Arc<str> = Arc::from(format!("{OPEN}{label}_{counter}{CLOSE}"));
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).expect("the operating system's random source is unavailable");
        let aad = aad(tenant, session, &placeholder);
        let ciphertext = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: value.as_bytes(),
                    aad: &aad,
                },
            )
            .expect("AES-GCM encrypts any message shorter than 64 GiB");
        sess.by_value.insert(value_fp, placeholder.clone());
        sess.sealed.insert(
            placeholder.clone(),
            Sealed {
                value_fp,
                nonce,
                ciphertext,
                last_used: now,
            },
        );
        placeholder.to_string()
    }

    fn restore_at(
        &self,
        scope: &Fp,
        tenant: &str,
        session: &str,
        text: &str,
        now: Instant,
    ) -> Option<(String, usize)> {
        // Most pieces of a stream carry no placeholder: answer without locking.
        memchr::memmem::find(text.as_bytes(), OPEN.as_bytes())?;
        let mut shard = self.shard(scope);
        let sess = shard.sessions.get_mut(scope)?;
        let mut out = String::new();
        let mut copied = 0;
        let mut count = 0;
        let mut pos = 0;
        while let Some(rel) = memchr::memmem::find(&text.as_bytes()[pos..], OPEN.as_bytes()) {
            let start = pos + rel;
            pos = start + OPEN.len();
            let window_end = text.len().min(start + Vault::PLACEHOLDER_MAX_LEN);
            let Some(close) =
                memchr::memmem::find(&text.as_bytes()[pos..window_end], CLOSE.as_bytes())
            else {
                continue;
            };
            let end = pos + close + CLOSE.len();
            let candidate = &text[start..end];
            let Some(sealed) = sess.sealed.get_mut(candidate) else {
                continue;
            };
            let plain = self.cipher.decrypt(
                Nonce::from_slice(&sealed.nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad: &aad(tenant, session, candidate),
                },
            );
            // A failed open means the entry does not belong here (tampered or moved): leave the
            // placeholder as it is rather than guess.
            let Some(value) = plain.ok().and_then(|v| String::from_utf8(v).ok()) else {
                continue;
            };
            sealed.last_used = now;
            out.push_str(&text[copied..start]);
            out.push_str(&value);
            copied = end;
            pos = end;
            count += 1;
        }
        if count == 0 {
            return None;
        }
        out.push_str(&text[copied..]);
        Some((out, count))
    }

    fn purge_expired_at(&self, now: Instant) -> usize {
        self.shards
            .iter()
            .map(|s| self.purge_shard(&mut lock(s), now))
            .sum()
    }

    fn purge_shard(&self, shard: &mut Shard, now: Instant) -> usize {
        let mut removed = 0;
        for sess in shard.sessions.values_mut() {
            let before = sess.sealed.len();
            let by_value = &mut sess.by_value;
            sess.sealed.retain(|_, s| {
                let keep = now.saturating_duration_since(s.last_used) < self.ttl;
                if !keep {
                    by_value.remove(&s.value_fp);
                }
                keep
            });
            removed += before - sess.sealed.len();
        }
        shard.sessions.retain(|_, s| !s.sealed.is_empty());
        removed
    }
}

/// A panic while holding a shard cannot leave it logically broken (every mutation is a single
/// map insert or retain), so a poisoned lock is still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn aad(tenant: &str, session: &str, placeholder: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + tenant.len() + session.len() + placeholder.len());
    for f in [tenant, session, placeholder] {
        out.extend_from_slice(&(f.len() as u64).to_le_bytes());
        out.extend_from_slice(f.as_bytes());
    }
    out
}

/// Restores placeholders in one response that arrives in pieces (a stream), holding back only a
/// trailing `⟦…` that could still become a placeholder, at most
/// [`Vault::PLACEHOLDER_MAX_LEN`] bytes.
pub struct Restorer<'v> {
    vault: &'v Vault,
    tenant: String,
    session: String,
    scope: Fp,
    held: String,
    restored: usize,
}

impl<'v> Restorer<'v> {
    /// A restorer for one response of `tenant`'s `session`.
    pub fn new(vault: &'v Vault, tenant: &str, session: &str) -> Self {
        Restorer {
            vault,
            tenant: tenant.to_owned(),
            session: session.to_owned(),
            scope: vault.scope(tenant, session),
            held: String::new(),
            restored: 0,
        }
    }

    /// Takes the next piece; returns the text that is safe to release now, restored.
    pub fn push(&mut self, piece: &str) -> String {
        let mut buf = std::mem::take(&mut self.held);
        buf.push_str(piece);
        let cut = hold_from(&buf);
        self.held = buf.split_off(cut);
        self.restore(buf)
    }

    /// Releases whatever is held (an unfinished `⟦…` is passed through verbatim).
    pub fn finish(&mut self) -> String {
        let buf = std::mem::take(&mut self.held);
        self.restore(buf)
    }

    /// Placeholders restored so far.
    pub fn restored(&self) -> usize {
        self.restored
    }

    fn restore(&mut self, text: String) -> String {
        match self.vault.restore_at(
            &self.scope,
            &self.tenant,
            &self.session,
            &text,
            Instant::now(),
        ) {
            Some((out, n)) => {
                self.restored += n;
                out
            }
            None => text,
        }
    }
}

/// Where to cut `buf` so that everything before can be released: at the last `⟦` if what
/// follows it can still grow into a placeholder, else at the end.
fn hold_from(buf: &str) -> usize {
    let Some(start) = buf.rfind(OPEN) else {
        return buf.len();
    };
    let tail = &buf.as_bytes()[start + OPEN.len()..];
    // An open placeholder needs room left for at least its closing bracket.
    let fits = buf.len() - start + CLOSE.len() <= Vault::PLACEHOLDER_MAX_LEN;
    if fits && tail.iter().all(|&b| is_label_byte(b)) {
        start
    } else {
        buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    fn vault() -> Vault {
        Vault::new(KEY, Duration::from_secs(600))
    }

    #[test]
    fn placeholders_are_deterministic_and_numbered_per_label() {
        let v = vault();
        let a = v.tokenize("t", "s", "email", "a\x40example.org");
        let b = v.tokenize("t", "s", "email", "b\x40example.org");
        let c = v.tokenize("t", "s", "phone", "+1 555 123 4567");
        assert_eq!(a, "⟦EMAIL_1⟧");
        assert_eq!(b, "⟦EMAIL_2⟧");
        assert_eq!(c, "⟦PHONE_1⟧");
        assert_eq!(v.tokenize("t", "s", "email", "a\x40example.org"), a);
        assert_eq!(v.tokenize("t", "s", "email", "b\x40example.org"), b);
        // The same text under another type is another value.
        assert_eq!(
            v.tokenize("t", "s", "custom_x", "a\x40example.org"),
            "⟦CUSTOM_X_1⟧"
        );
        assert_eq!(v.len(), 4);
        assert!(!v.is_empty());
    }

    #[test]
    fn round_trip_restores_only_own_session() {
        let v = vault();
        let a = v.tokenize("t", "s1", "email", "a\x40example.org");
        let other_session = v.tokenize("t", "s2", "email", "b\x40example.org");
        let other_tenant = v.tokenize("u", "s1", "email", "c\x40example.org");
        // Independent numbering: all three are EMAIL_1.
        assert_eq!(a, "⟦EMAIL_1⟧");
        assert_eq!(other_session, a);
        assert_eq!(other_tenant, a);

        let text = format!("Write to {a} or ⟦EMAIL_9⟧ or ⟦NOPE⟧ or ⟦ and ⟧ now");
        let (out, n) = v.restore("t", "s1", &text).unwrap();
        assert_eq!(
            out,
            "Write to a\x40example.org or ⟦EMAIL_9⟧ or ⟦NOPE⟧ or ⟦ and ⟧ now"
        );
        assert_eq!(n, 1);
        let (out, _) = v.restore("t", "s2", &text).unwrap();
        assert!(out.starts_with("Write to b\x40example.org "));
        let (out, _) = v.restore("u", "s1", &text).unwrap();
        assert!(out.starts_with("Write to c\x40example.org "));
        assert_eq!(v.restore("t", "s3", &text), None);
        assert_eq!(v.restore("t", "s1", "no placeholders here"), None);
        assert_eq!(v.restore("t", "s1", "⟦EMAIL_2⟧"), None);
    }

    #[test]
    fn restores_many_adjacent_and_multibyte() {
        let v = vault();
        let a = v.tokenize("t", "s", "email", "été@exemple.fr");
        let b = v.tokenize("t", "s", "phone", "010-1234-5678");
        let text = format!("{a}{b}한국어{a}⟦{b}⟧");
        let (out, n) = v.restore("t", "s", &text).unwrap();
        assert_eq!(
            out,
            "été@exemple.fr010-1234-5678한국어été@exemple.fr⟦010-1234-5678⟧"
        );
        assert_eq!(n, 4);
    }

    #[test]
    fn ciphertext_is_bound_to_its_session() {
        let v = vault();
        let a = v.tokenize("t", "s1", "email", "a\x40example.org");
        let b = v.tokenize("t", "s2", "email", "b\x40example.org");
        assert_eq!(a, b);
        // Copy s1's sealed entry over s2's: same placeholder, wrong associated data.
        let s1 = v.scope("t", "s1");
        let s2 = v.scope("t", "s2");
        let (nonce, ciphertext) = {
            let shard = v.shard(&s1);
            let e = &shard.sessions[&s1].sealed[a.as_str()];
            (e.nonce, e.ciphertext.clone())
        };
        {
            let mut shard = v.shard(&s2);
            let e = shard
                .sessions
                .get_mut(&s2)
                .unwrap()
                .sealed
                .get_mut(a.as_str())
                .unwrap();
            e.nonce = nonce;
            e.ciphertext = ciphertext;
        }
        assert_eq!(v.restore("t", "s2", &format!("x {a} y")), None);
        assert_eq!(v.restore("t", "s1", &a).unwrap().0, "a\x40example.org");
    }

    #[test]
    fn different_keys_give_unrelated_fingerprints() {
        let a = Vault::new([1; 32], Duration::from_secs(1));
        let b = Vault::new([2; 32], Duration::from_secs(1));
        assert_ne!(a.scope("t", "s"), b.scope("t", "s"));
        assert_ne!(a.scope("ts", ""), a.scope("t", "s"));
        assert_ne!(Vault::generate_key(), Vault::generate_key());
    }

    #[test]
    fn entries_expire_after_ttl_since_last_use() {
        let ttl = Duration::from_secs(100);
        let v = Vault::new(KEY, ttl);
        let t0 = Instant::now();
        let a = v.tokenize_at("t", "s", "email", "a\x40example.org", t0);
        let b = v.tokenize_at("t", "s", "email", "b\x40example.org", t0);
        let scope = v.scope("t", "s");
        // Re-using `a` at t0+60 keeps it; `b` is last used at t0.
        assert_eq!(
            v.tokenize_at(
                "t",
                "s",
                "email",
                "a\x40example.org",
                t0 + Duration::from_secs(60)
            ),
            a
        );
        assert!(
            v.restore_at(&scope, "t", "s", &b, t0 + Duration::from_secs(99))
                .is_some()
        );
        assert_eq!(v.purge_expired_at(t0 + Duration::from_secs(150)), 0);
        assert_eq!(v.purge_expired_at(t0 + Duration::from_secs(170)), 1);
        assert_eq!(
            v.restore_at(&scope, "t", "s", &a, t0 + Duration::from_secs(171)),
            None
        );
        assert!(
            v.restore_at(&scope, "t", "s", &b, t0 + Duration::from_secs(171))
                .is_some()
        );
        // The counter survives while the session has entries: a new value never reuses 1.
        let c = v.tokenize_at(
            "t",
            "s",
            "email",
            "c\x40example.org",
            t0 + Duration::from_secs(172),
        );
        assert_eq!(c, "⟦EMAIL_3⟧");
        assert_eq!(v.purge_expired_at(t0 + Duration::from_secs(1000)), 2);
        assert!(v.is_empty());
        // Once the whole session expired, numbering starts over.
        let d = v.tokenize_at(
            "t",
            "s",
            "email",
            "d\x40example.org",
            t0 + Duration::from_secs(1001),
        );
        assert_eq!(d, "⟦EMAIL_1⟧");
    }

    #[test]
    fn tokenize_purges_opportunistically() {
        let v = Vault::new(KEY, Duration::from_secs(8));
        let t0 = Instant::now();
        v.tokenize_at("t", "s", "email", "a\x40example.org", t0);
        assert_eq!(v.len(), 1);
        // Same shard (same scope), well past ttl and past the purge interval.
        v.tokenize_at("t", "s", "phone", "123", t0 + Duration::from_secs(30));
        assert_eq!(v.len(), 1);
    }

    #[test]
    fn placeholder_len_is_bounded() {
        let v = vault();
        let kind = "a-very-long-custom-rule-name-that-goes-on-and-on-and-on";
        let p = v.tokenize("t", "s", kind, "x");
        assert!(p.len() <= Vault::PLACEHOLDER_MAX_LEN);
        assert_eq!(p, format!("⟦{}_1⟧", &label_name(kind)));
        assert_eq!(label_name(kind).len(), LABEL_MAX);
        assert_eq!(label_name("이메일"), "___");
        assert_eq!(label_name(""), "VALUE");
        assert_eq!(v.restore("t", "s", &p).unwrap().0, "x");
        let worst = format!("{OPEN}{}_{}{CLOSE}", "A".repeat(LABEL_MAX), u64::MAX);
        assert_eq!(worst.len(), Vault::PLACEHOLDER_MAX_LEN);
    }

    fn stream(v: &Vault, pieces: &[&str]) -> (String, usize) {
        let mut r = Restorer::new(v, "t", "s");
        let mut out = String::new();
        for p in pieces {
            out.push_str(&r.push(p));
        }
        out.push_str(&r.finish());
        (out, r.restored())
    }

    #[test]
    fn restorer_handles_every_split_position() {
        let v = vault();
        let a = v.tokenize("t", "s", "email", "a\x40example.org");
        let text = format!("é {a}, ⟦EMAIL_7⟧ and {a}⟦");
        let expected = "é a\x40example.org, ⟦EMAIL_7⟧ and a\x40example.org⟦";
        let bounds: Vec<usize> = (0..=text.len())
            .filter(|&i| text.is_char_boundary(i))
            .collect();
        for &i in &bounds {
            assert_eq!(
                stream(&v, &[&text[..i], &text[i..]]),
                (expected.to_string(), 2),
                "split {i}"
            );
            for &j in bounds.iter().filter(|&&j| j >= i) {
                let (out, n) = stream(&v, &[&text[..i], &text[i..j], &text[j..]]);
                assert_eq!((out.as_str(), n), (expected, 2), "split {i} {j}");
            }
        }
        let chars: Vec<String> = text.chars().map(String::from).collect();
        let pieces: Vec<&str> = chars.iter().map(String::as_str).collect();
        assert_eq!(stream(&v, &pieces), (expected.to_string(), 2));
    }

    #[test]
    fn restorer_holds_only_a_possible_placeholder() {
        let v = vault();
        let a = v.tokenize("t", "s", "email", "a\x40example.org");
        let mut r = Restorer::new(&v, "t", "s");
        assert_eq!(r.push("hello ⟦EMA"), "hello ");
        assert_eq!(r.push("IL_1⟧ bye"), "a\x40example.org bye");
        // Not a placeholder shape: released at once.
        assert_eq!(r.push("x ⟦not one"), "x ⟦not one");
        // Grows past the bound: released verbatim.
        assert_eq!(r.push("⟦"), "");
        let long = "A".repeat(Vault::PLACEHOLDER_MAX_LEN);
        assert_eq!(r.push(&long), format!("⟦{long}"));
        assert_eq!(r.push("⟦AB"), "");
        assert_eq!(r.finish(), "⟦AB");
        assert_eq!(r.restored(), 1);
        // The longest possible placeholder is held until complete.
        let worst = format!("{OPEN}{}_{}", "A".repeat(LABEL_MAX), u64::MAX);
        let mut r = Restorer::new(&v, "t", "s");
        assert_eq!(r.push(&worst), "");
        assert_eq!(r.push(CLOSE), format!("{worst}{CLOSE}"));
        let _ = a;
    }

    #[test]
    fn concurrent_tokenize_agrees_on_placeholders() {
        let v = vault();
        let values: Vec<String> = (0..20).map(|i| format!("user{i}\x40example.org")).collect();
        let results: Vec<Vec<String>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        values
                            .iter()
                            .map(|val| v.tokenize("t", "s", "email", val))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(results.windows(2).all(|w| w[0] == w[1]));
        let mut uniq = results[0].clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), 20);
        assert_eq!(v.len(), 20);
        let joined = results[0].concat();
        assert_eq!(v.restore("t", "s", &joined).unwrap().0, values.concat());
    }

    #[test]
    fn vault_is_send_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Vault>();
        assert_send_sync::<Restorer<'static>>();
    }
}
