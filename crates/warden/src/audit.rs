//! Opening the audit ledger for the gateway: the signing key (file or `WARDEN_SIGNING_KEY`),
//! the ledger options from `[audit]`, and the recovery report on start.
//!
//! The ledger itself (format, group commit, proofs, verification) is the `warden-ledger`
//! crate; this module only decides where the key and the files are. It never prints or logs
//! the signing key.

use std::path::Path;
use std::sync::Arc;

use warden_ledger::log::{Ledger, LedgerOptions};
use warden_ledger::note::NoteSigner;

use crate::config::{Config, Durability};

/// Environment variable holding a signer key string (`PRIVATE+KEY+…`), instead of a key file.
pub const SIGNING_KEY_ENV: &str = "WARDEN_SIGNING_KEY";

/// Why the ledger could not be opened; the gateway does not start without it.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The signing key could not be read, created or parsed.
    #[error("signing key {origin}: {message}")]
    Key {
        /// File path or environment variable.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// The ledger directory could not be opened or recovered.
    #[error("cannot open the ledger at {dir}: {source}")]
    Ledger {
        /// Ledger directory.
        dir: String,
        /// The ledger's error.
        source: warden_ledger::log::LedgerError,
    },
}

/// Loads the signing key: `WARDEN_SIGNING_KEY`, else the key file; creates the file (mode
/// 0600) when `create` is set and it does not exist. Returns the signer and whether it is new.
pub fn signing_key(config: &Config, create: bool) -> Result<(NoteSigner, bool), OpenError> {
    if let Ok(skey) = std::env::var(SIGNING_KEY_ENV) {
        let signer = NoteSigner::from_skey(&skey).map_err(|e| OpenError::Key {
            origin: SIGNING_KEY_ENV.into(),
            message: e.to_string(),
        })?;
        return Ok((signer, false));
    }
    let path = config.key_file();
    let key_err = |message: String| OpenError::Key {
        origin: path.display().to_string(),
        message,
    };
    if path.exists() {
        let signer = NoteSigner::read_key_file(&path).map_err(|e| key_err(e.to_string()))?;
        return Ok((signer, false));
    }
    if !create {
        return Err(key_err(
            "does not exist; run `warden init` (or start `warden serve` once) to create it, or set WARDEN_SIGNING_KEY".into(),
        ));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| key_err(format!("cannot create its directory: {e}")))?;
    }
    let signer = NoteSigner::create_key_file(&path, &config.audit.origin)
        .map_err(|e| key_err(e.to_string()))?;
    Ok((signer, true))
}

/// Opens (creating if needed) the ledger for `config`, or `None` when auditing is off.
pub fn open(config: &Config) -> Result<Option<Arc<Ledger>>, OpenError> {
    open_observed(config, None)
}

/// [`open`], telling `observer` about every committed batch (metrics).
pub fn open_observed(
    config: &Config,
    observer: Option<Arc<dyn warden_ledger::log::BatchObserver>>,
) -> Result<Option<Arc<Ledger>>, OpenError> {
    if !config.audit.enabled {
        tracing::warn!("audit.enabled = false: exchanges are NOT recorded in a ledger");
        return Ok(None);
    }
    let (signer, created) = signing_key(config, true)?;
    if created {
        tracing::info!(
            "created signing key {} (verifier key: {})",
            config.key_file().display(),
            signer.verifier().to_vkey()
        );
    }
    let ledger = open_with(config, signer, observer)?;
    let r = ledger.recovery();
    if r.truncated_bytes > 0 || r.dropped_entries > 0 {
        let acknowledged = match config.audit.durability {
            Durability::Fsync => "never acknowledged to any client",
            // Entries answered before their sync can be the ones a host crash cut.
            Durability::Write => {
                "with audit.durability = \"write\" they may have been released before a host crash: their receipts will not verify"
            }
        };
        tracing::warn!(
            "ledger recovery: cut {} bytes of a torn final write ({} entries, {acknowledged})",
            r.truncated_bytes,
            r.dropped_entries
        );
    }
    if config.audit.durability == Durability::Write {
        tracing::warn!(
            "audit.durability = \"write\": responses are released once their ledger entries are written, before their fdatasync (at most {:?} later); a crash of the host or a power loss can lose that much of the ledger",
            config.audit.sync_interval
        );
    }
    if r.rescanned_entries > 0 || r.restored_checkpoints > 0 {
        tracing::info!(
            "ledger recovery: rebuilt derived state from {} entries, restored {} checkpoints",
            r.rescanned_entries,
            r.restored_checkpoints
        );
    }
    tracing::info!(
        "ledger {}: {} entries, origin {}",
        config.ledger_dir().display(),
        ledger.size(),
        ledger.verifier().name()
    );
    Ok(Some(Arc::new(ledger)))
}

fn open_with(
    config: &Config,
    signer: NoteSigner,
    observer: Option<Arc<dyn warden_ledger::log::BatchObserver>>,
) -> Result<Ledger, OpenError> {
    let a = &config.audit;
    let mut opts = LedgerOptions::new(signer);
    opts.observer = observer;
    opts.batch_max_entries = a.batch_max_entries;
    opts.batch_max_wait = a.batch_max_wait;
    opts.durability = match a.durability {
        Durability::Fsync => warden_ledger::Durability::Fsync,
        Durability::Write => warden_ledger::Durability::Write {
            sync_interval: a.sync_interval,
        },
    };
    opts.segment_bytes = a.segment_size;
    opts.anchor = a.anchor.clone();
    // Each admitted request has at most one append queued at a time; the rest is events.
    opts.queue_capacity = opts
        .queue_capacity
        .max(config.limits.max_concurrent_requests.saturating_mul(2));
    let dir = config.ledger_dir();
    Ledger::open(&dir, opts).map_err(|source| OpenError::Ledger {
        dir: dir.display().to_string(),
        source,
    })
}

/// Whether `dir` looks like a ledger directory (for commands that accept a data dir or the
/// ledger folder inside it).
pub fn resolve_ledger_dir(dir: &Path) -> std::path::PathBuf {
    let inner = dir.join("ledger");
    if inner.is_dir() {
        inner
    } else {
        dir.to_path_buf()
    }
}

/// Publishes signed checkpoints off the host: every `interval`, if the log has grown, runs
/// `audit.anchor_command` with the latest signed checkpoint note on stdin (and
/// `WARDEN_CHECKPOINT_SIZE` / `WARDEN_CHECKPOINT_ORIGIN` in its environment).
///
/// A copy of the checkpoint held elsewhere (a witness, object storage, a ticket) is what makes
/// a ledger cut or rewritten on this host detectable later. A failed publish is logged and
/// retried at the next interval; it does not stop traffic, because the ledger itself is still
/// durable and the gateway's availability must not depend on an external witness.
pub struct Anchor {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Longest a single run of the anchor command may take before it is killed.
const ANCHOR_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

impl Anchor {
    /// Starts the publisher, or returns `None` when neither a command nor a witness is
    /// configured.
    pub fn start(config: &Config, ledger: Option<&Arc<Ledger>>) -> Option<Anchor> {
        let argv = config.audit.anchor_command.clone();
        let witness = config
            .audit
            .anchor_witness
            .clone()
            .map(|url| Witness::new(url, config, config.ledger_dir()));
        if argv.is_none() && witness.is_none() {
            return None;
        }
        let ledger = ledger?.clone();
        let mut witness = witness.flatten();
        let interval = config.audit.anchor_interval;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("warden-anchor".into())
            .spawn(move || {
                let mut published = 0u64;
                let tick = std::time::Duration::from_millis(50);
                let mut waited = std::time::Duration::ZERO;
                while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    waited += tick;
                    if waited < interval {
                        continue;
                    }
                    waited = std::time::Duration::ZERO;
                    // Only a synced checkpoint leaves the host: with `durability = "write"` the
                    // latest one could still be taken back by a power loss.
                    let Some(cp) = ledger.durable_checkpoint() else {
                        continue;
                    };
                    if let Some(w) = witness.as_mut() {
                        w.submit(&ledger, &cp);
                    }
                    let Some(argv) = argv.as_ref() else {
                        continue;
                    };
                    if cp.size() <= published {
                        continue;
                    }
                    match run_anchor(argv, cp.note(), cp.size(), ledger.verifier().name()) {
                        Ok(()) => {
                            published = cp.size();
                            tracing::debug!(
                                size = published,
                                "checkpoint published by audit.anchor_command"
                            );
                        }
                        Err(e) => tracing::warn!("audit.anchor_command failed (will retry): {e}"),
                    }
                }
            })
            .ok()?;
        Some(Anchor {
            stop,
            thread: Some(thread),
        })
    }
}

/// Submits checkpoints to a C2SP tlog-witness (`POST <prefix>/add-checkpoint`): the request
/// names the size the witness last cosigned (`old N`), carries the RFC 6962 consistency proof
/// from there, then the signed checkpoint. A `409` answer says which size the witness really
/// has; the next submission starts from it. Cosignatures the witness returns are appended to
/// `<ledger>/cosignatures` with the size they cover.
struct Witness {
    url: String,
    runtime: tokio::runtime::Runtime,
    client: crate::pipeline::forward::HttpsClient,
    /// Size the witness is known to have cosigned (0 before the first answer).
    witnessed: u64,
    cosignatures: std::path::PathBuf,
}

/// Longest one witness submission may take.
const WITNESS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

impl Witness {
    fn new(prefix: String, config: &Config, ledger_dir: std::path::PathBuf) -> Option<Witness> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .inspect_err(|e| tracing::warn!("audit.anchor_witness disabled: no runtime: {e}"))
            .ok()?;
        // The connector spawns its connections on the runtime it is built in.
        let client = {
            let _guard = runtime.enter();
            crate::pipeline::forward::build_client(&config.limits, &[])
        };
        Some(Witness {
            url: format!("{prefix}/add-checkpoint"),
            runtime,
            client,
            witnessed: 0,
            cosignatures: ledger_dir.join("cosignatures"),
        })
    }

    /// One submission round: at most two requests (a `409` tells the right `old` size).
    fn submit(&mut self, ledger: &Ledger, cp: &warden_ledger::checkpoint::SignedCheckpoint) {
        for _ in 0..2 {
            if cp.size() <= self.witnessed {
                return;
            }
            let proof = if self.witnessed == 0 {
                Vec::new()
            } else {
                match ledger.consistency(self.witnessed, cp.size()) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(
                            "audit.anchor_witness: no consistency proof from {} to {}: {e}",
                            self.witnessed,
                            cp.size()
                        );
                        return;
                    }
                }
            };
            let body = add_checkpoint_body(self.witnessed, &proof, cp.note());
            match self.post(body) {
                Ok((200, text)) => {
                    self.witnessed = cp.size();
                    self.keep_cosignatures(cp.size(), &text);
                    tracing::debug!(size = cp.size(), "checkpoint cosigned by the witness");
                    return;
                }
                Ok((409, text)) => match text.trim().parse::<u64>() {
                    Ok(size) if size <= cp.size() => self.witnessed = size,
                    _ => {
                        tracing::warn!(
                            "audit.anchor_witness: the witness has a checkpoint this log never signed ({}); check the witness and the ledger",
                            text.trim()
                        );
                        return;
                    }
                },
                Ok((status, text)) => {
                    tracing::warn!(
                        "audit.anchor_witness: {} answered {status}: {} (will retry)",
                        self.url,
                        text.trim()
                    );
                    return;
                }
                Err(e) => {
                    tracing::warn!(
                        "audit.anchor_witness: {} failed: {e} (will retry)",
                        self.url
                    );
                    return;
                }
            }
        }
    }

    fn post(&self, body: String) -> Result<(u16, String), String> {
        use http_body_util::BodyExt;
        let request = http::Request::post(&self.url)
            .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        self.runtime.block_on(async {
            let send = async {
                let resp = self
                    .client
                    .request(request)
                    .await
                    .map_err(|e| crate::pipeline::forward::root_cause(&e))?;
                let status = resp.status().as_u16();
                let bytes = http_body_util::Limited::new(resp.into_body(), 64 << 10)
                    .collect()
                    .await
                    .map_err(|e| e.to_string())?
                    .to_bytes();
                Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
            };
            tokio::time::timeout(WITNESS_TIMEOUT, send)
                .await
                .map_err(|_| format!("no answer in {WITNESS_TIMEOUT:?}"))?
        })
    }

    fn keep_cosignatures(&self, size: u64, text: &str) {
        use std::io::Write;
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("\u{2014} "))
            .collect();
        if lines.is_empty() {
            return;
        }
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.cosignatures)?;
            writeln!(f, "size {size}")?;
            for l in &lines {
                writeln!(f, "{l}")?;
            }
            f.sync_data()
        };
        if let Err(e) = write() {
            tracing::warn!(path = %self.cosignatures.display(), "cannot keep the witness cosignature: {e}");
        }
    }
}

/// The body of a tlog-witness `add-checkpoint` request: `old <size>`, one base64 consistency
/// proof hash per line, an empty line, then the signed checkpoint note.
fn add_checkpoint_body(old: u64, proof: &[warden_ledger::tree::Hash], note: &str) -> String {
    let mut body = format!("old {old}\n");
    for h in proof {
        body.push_str(&h.to_base64());
        body.push('\n');
    }
    body.push('\n');
    body.push_str(note);
    body
}

impl Drop for Anchor {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run_anchor(argv: &[String], note: &str, size: u64, origin: &str) -> Result<(), String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .env("WARDEN_CHECKPOINT_SIZE", size.to_string())
        .env("WARDEN_CHECKPOINT_ORIGIN", origin)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", argv[0]))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(note.as_bytes())
            .map_err(|e| format!("cannot write the checkpoint to {}: {e}", argv[0]))?;
    }
    let started = std::time::Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                let tail: String = err
                    .chars()
                    .rev()
                    .take(300)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                return Err(format!("{} exited with {status}: {}", argv[0], tail.trim()));
            }
            Ok(None) if started.elapsed() > ANCHOR_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{} did not finish within {ANCHOR_TIMEOUT:?}",
                    argv[0]
                ));
            }
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(10)),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Numbers the temp files of blob writes in this process.
static TMP_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Content-addressed storage for long content (`<ledger>/blobs/<first 2 hex>/<sha256>`).
///
/// A blob's name is the SHA-256 of its bytes and the entry that refers to it is in the
/// Merkle tree, so a blob cannot be altered without the mismatch showing. Blobs are written and
/// synced before the entry that refers to them is appended.
#[derive(Debug, Clone)]
pub struct BlobStore {
    dir: std::path::PathBuf,
}

impl BlobStore {
    /// The store inside a ledger directory.
    pub fn new(ledger_dir: &Path) -> BlobStore {
        BlobStore {
            dir: ledger_dir.join("blobs"),
        }
    }

    /// Where the blob named `sha256` lives.
    pub fn path(&self, sha256: &str) -> std::path::PathBuf {
        self.dir.join(&sha256[..2.min(sha256.len())]).join(sha256)
    }

    /// Writes each blob durably (temp file, fsync, rename, fsync of the folder); blobs
    /// already present are skipped.
    pub fn write(&self, blobs: &[crate::pipeline::entry::Blob]) -> std::io::Result<()> {
        use std::io::Write;
        for blob in blobs {
            let path = self.path(&blob.sha256);
            if path.exists() {
                continue;
            }
            let folder = path.parent().expect("blob paths have a folder");
            std::fs::create_dir_all(folder)?;
            // Identical content arriving at once (the same large prompt from parallel agents)
            // is written by each writer: with one shared temp name, one rename would move the
            // file from under the other (whose rename then fails, failing the ledger closed).
            let tmp = folder.join(format!(
                ".{}.{}-{}.tmp",
                blob.sha256,
                std::process::id(),
                TMP_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ));
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&blob.bytes)?;
            f.sync_data()?;
            std::fs::rename(&tmp, &path)?;
            std::fs::File::open(folder)?.sync_all()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::BlobStore;
    use crate::pipeline::entry::Blob;
    use crate::pipeline::record::BodyDigest;

    #[test]
    fn the_same_blob_written_at_once_by_many_writers_is_stored_whole() {
        let dir = std::env::temp_dir().join(format!("warden-blobs-race-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = BlobStore::new(&dir);
        // Rounds of 8 writers racing on one new blob each: with a shared temp name nearly
        // every round loses a rename.
        for round in 0..20 {
            let bytes = format!("round {round}: a large prompt sent by every agent at once. ")
                .repeat(2048)
                .into_bytes();
            let sha256 = BodyDigest::of(&bytes).sha256;
            let barrier = std::sync::Barrier::new(8);
            std::thread::scope(|s| {
                for _ in 0..8 {
                    s.spawn(|| {
                        let blob = Blob {
                            sha256: sha256.clone(),
                            bytes: bytes.clone(),
                        };
                        barrier.wait();
                        store.write(&[blob]).expect("every writer succeeds");
                    });
                }
            });
            assert_eq!(std::fs::read(store.path(&sha256)).unwrap(), bytes);
        }
        let leftovers: Vec<_> = walk(&dir)
            .into_iter()
            .filter(|name| name.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn walk(dir: &std::path::Path) -> Vec<String> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                out.extend(walk(&e.path()));
            } else {
                out.push(e.file_name().into_string().unwrap());
            }
        }
        out
    }
}
