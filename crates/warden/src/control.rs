//! The control plane shared by every worker and the admin API: the state store (keys, spend,
//! kills, rate state), the compiled policy, provider credentials, the registry of streams in
//! flight (so a kill or a budget can cut them), per-rule concurrency counts, and metrics.
//!
//! It owns no request handling: the pipeline's identify and decide stages read it, the admin
//! API changes it. Policy is swapped whole on reload (readers hold an `Arc` to the version they
//! started with), so a request is judged by one consistent policy.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use warden_state::{Cap, KillRecord, KillTarget, Micros, ReserveOutcome, Store, Subjects};

mod reserve;

pub use reserve::Reserver;

use crate::config::{AuthMode, Config, PolicyConfig};
use crate::metrics::Metrics;

/// Why a stream in flight was cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cut {
    /// A kill switch matched it.
    Killed(KillRecord),
    /// Its running cost would cross a hard budget cap.
    Budget(String),
}

/// The signal one stream in flight watches.
#[derive(Debug, Default)]
pub struct CutSignal {
    cut: Mutex<Option<Cut>>,
    notify: Arc<Notify>,
}

impl CutSignal {
    /// Cuts the stream (the first reason wins).
    pub fn cut(&self, reason: Cut) {
        let mut c = self.cut.lock().expect("cut lock");
        if c.is_none() {
            *c = Some(reason);
            self.notify.notify_one();
        }
    }

    /// The reason, once cut.
    pub fn reason(&self) -> Option<Cut> {
        self.cut.lock().expect("cut lock").clone()
    }

    /// Resolves when the stream is cut (a cut that came first resolves it at once: `Notify`
    /// keeps the permit).
    pub fn notified(&self) -> tokio::sync::futures::OwnedNotified {
        self.notify.clone().notified_owned()
    }
}

/// Streams in flight, by id, with who they belong to.
#[derive(Default)]
pub struct Flights {
    next: AtomicU64,
    live: Mutex<HashMap<u64, (Subjects, Arc<CutSignal>)>>,
}

/// Removes a stream from [`Flights`] when dropped.
pub struct FlightGuard {
    id: u64,
    control: Arc<Control>,
    /// The stream's cut signal.
    pub signal: Arc<CutSignal>,
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        self.control
            .flights
            .live
            .lock()
            .expect("flights lock")
            .remove(&self.id);
    }
}

/// Held while a request counts against a rule's `concurrent` limit.
pub struct ConcurrencyGuard {
    key: String,
    control: Arc<Control>,
}

impl Drop for ConcurrencyGuard {
    fn drop(&mut self) {
        let mut m = self.control.concurrency.lock().expect("concurrency lock");
        if let Some(n) = m.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.key);
            }
        }
    }
}

/// One exchange's spend to settle, off the request path.
pub struct Settlement {
    /// The budget reservation made at admission, if any.
    pub reservation: Option<warden_state::Reservation>,
    /// Reservations added while a stream ran.
    pub extra: Vec<warden_state::Reservation>,
    /// Who spent it.
    pub subjects: Subjects,
    /// What it cost.
    pub charge: warden_state::Charge,
    /// When it ended.
    pub at: std::time::SystemTime,
}

enum SettleMsg {
    Settle(Box<Settlement>),
    Flush(std::sync::mpsc::SyncSender<()>),
}

/// Settles spend on its own thread: a settlement only lowers what is reserved to what was
/// spent, so doing it a moment later never lets a cap be crossed (the reservation holds the
/// worst case until then), and the request path does no store write for it.
fn settler(store: Arc<dyn Store>, metrics: Arc<Metrics>) -> std::sync::mpsc::Sender<SettleMsg> {
    let (tx, rx) = std::sync::mpsc::channel::<SettleMsg>();
    let spawned = std::thread::Builder::new()
        .name("warden-settler".into())
        .spawn(move || {
            // Whatever queued while the last batch was written goes in the next one: under load
            // a batch holds many settlements for one lock and one commit.
            while let Ok(first) = rx.recv() {
                let began = Instant::now();
                let mut batch = Vec::new();
                let mut flushes = Vec::new();
                let mut next = Some(first);
                while let Some(msg) = next {
                    match msg {
                        SettleMsg::Settle(s) => batch.push(*s),
                        SettleMsg::Flush(done) => flushes.push(done),
                    }
                    next = if batch.len() < SETTLE_BATCH {
                        rx.try_recv().ok()
                    } else {
                        None
                    };
                }
                let full = batch.len() >= SETTLE_BATCH;
                settle_batch(store.as_ref(), &metrics, batch);
                for done in flushes {
                    let _ = done.send(());
                }
                // Written as they come, settlements under steady load are one wake-up and one
                // transaction each (15% of the gateway's CPU at 3,000 req/s). A pause lets
                // the next batch gather: one upsert per spend row for all of it. Nothing waits
                // on it but `flush` (status reads, shutdown), which waits at most this long more,
                // and a reservation only holds its worst case a moment longer.
                if !full && let Some(rest) = SETTLE_PACE.checked_sub(began.elapsed()) {
                    std::thread::sleep(rest);
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the settler thread: {e}");
    }
    tx
}

/// Most settlements written in one transaction.
const SETTLE_BATCH: usize = 512;

/// Shortest time from one batch of settlements to the next.
const SETTLE_PACE: Duration = Duration::from_millis(2);

fn settle_batch(store: &dyn Store, metrics: &Metrics, batch: Vec<Settlement>) {
    if batch.len() == 1 {
        let s = batch.into_iter().next().expect("one settlement");
        return settle_now(store, metrics, s);
    }
    let mut extras = Vec::new();
    let items: Vec<warden_state::Settlement> = batch
        .into_iter()
        .map(|s| {
            extras.extend(s.extra);
            warden_state::Settlement {
                reservation: s.reservation,
                subjects: s.subjects,
                charge: s.charge,
                at: s.at,
            }
        })
        .collect();
    match store.settle_batch(items) {
        Ok(all) => {
            for c in all.into_iter().flatten() {
                metrics.budget_remaining(
                    &c.name,
                    c.scope.name(),
                    &c.subject,
                    (c.limit_micros - c.spent_micros) as f64 / 1e6,
                );
            }
        }
        Err(e) => tracing::error!("cannot settle a batch of spend in the state store: {e}"),
    }
    for r in extras {
        if let Err(e) = store.release(r) {
            tracing::error!("cannot release a stream's extra budget reservation: {e}");
        }
    }
}

fn settle_now(store: &dyn Store, metrics: &Metrics, s: Settlement) {
    match store.settle(s.reservation, &s.subjects, &s.charge, s.at) {
        Ok(statuses) => {
            for c in statuses {
                metrics.budget_remaining(
                    &c.name,
                    c.scope.name(),
                    &c.subject,
                    (c.limit_micros - c.spent_micros) as f64 / 1e6,
                );
            }
        }
        Err(e) => tracing::error!("cannot settle spend in the state store: {e}"),
    }
    // Released only after the real cost is in: until then the cap counts both.
    for r in s.extra {
        if let Err(e) = store.release(r) {
            tracing::error!("cannot release a stream's extra budget reservation: {e}");
        }
    }
}

/// Shared governance state (see the module doc).
pub struct Control {
    settle_tx: Mutex<std::sync::mpsc::Sender<SettleMsg>>,
    /// Keys, spend, kills and rate state.
    pub store: Arc<dyn Store>,
    /// Budget reservations of requests, combined into batches under load.
    pub reserver: Arc<Reserver>,
    policy: RwLock<Arc<PolicyConfig>>,
    auth: RwLock<AuthMode>,
    has_keys: AtomicBool,
    keys_checked: Mutex<Instant>,
    credentials: RwLock<HashMap<String, String>>,
    flights: Flights,
    concurrency: Mutex<HashMap<String, u32>>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// When the gateway started.
    pub started: Instant,
    /// Tokenized values, encrypted, for restoring placeholders in responses (in memory: a
    /// restart forgets them, and placeholders from before it stay as they are).
    pub vault: Arc<warden_protect::vault::Vault>,
    /// The human-approval queue of tool calls.
    pub approvals: Arc<crate::approve::Approvals>,
}

impl Control {
    /// Builds the control plane for `config` over `store`.
    pub fn new(config: &Config, store: Arc<dyn Store>, metrics: Arc<Metrics>) -> Arc<Control> {
        let has_keys = store.has_keys().unwrap_or(true);
        let control = Control {
            approvals: Arc::new(crate::approve::Approvals::new(
                store.clone(),
                crate::pipeline::forward::build_client(&config.limits, &[]),
            )),
            settle_tx: Mutex::new(settler(store.clone(), metrics.clone())),
            reserver: Reserver::new(store.clone()),
            store,
            policy: RwLock::new(Arc::new(config.policy.clone())),
            auth: RwLock::new(config.auth),
            has_keys: AtomicBool::new(has_keys),
            keys_checked: Mutex::new(Instant::now()),
            credentials: RwLock::new(credentials(config)),
            flights: Flights::default(),
            concurrency: Mutex::new(HashMap::new()),
            metrics,
            started: Instant::now(),
            vault: Arc::new(warden_protect::vault::Vault::new(
                vault_key(config),
                config.policy.protect.vault_ttl,
            )),
        };
        if let Ok(kills) = control.store.kills() {
            control.metrics.set_kills_active(kills.len() as i64);
        }
        Arc::new(control)
    }

    /// Reserves `amount` on every cap (see [`Store::reserve`]), combined with the other requests
    /// reserving at the same time (see [`Reserver`]). `Err` is the store's failure, as a
    /// message for the client.
    pub async fn reserve(
        &self,
        caps: &[Cap],
        amount: Micros,
        at: std::time::SystemTime,
    ) -> Result<ReserveOutcome, String> {
        let request = warden_state::ReserveRequest {
            caps: caps.to_vec(),
            amount,
            at,
        };
        self.reserver.reserve(request).await
    }

    /// Queues an exchange's spend for the settler thread.
    pub fn settle(&self, s: Settlement) {
        let tx = self.settle_tx.lock().expect("settler lock");
        if let Err(std::sync::mpsc::SendError(SettleMsg::Settle(s))) =
            tx.send(SettleMsg::Settle(Box::new(s)))
        {
            // The thread is gone: settle here rather than lose spend.
            drop(tx);
            settle_now(self.store.as_ref(), &self.metrics, *s);
        }
    }

    /// Waits until every queued settlement is in the store (status reads, shutdown).
    pub fn flush(&self) {
        let (done_tx, done_rx) = std::sync::mpsc::sync_channel(1);
        let sent = self
            .settle_tx
            .lock()
            .expect("settler lock")
            .send(SettleMsg::Flush(done_tx))
            .is_ok();
        if sent {
            let _ = done_rx.recv_timeout(Duration::from_secs(10));
        }
    }

    /// The policy in force now.
    pub fn policy(&self) -> Arc<PolicyConfig> {
        self.policy.read().expect("policy lock").clone()
    }

    /// Replaces the policy, auth mode and credentials (reload).
    pub fn apply(&self, config: &Config) {
        *self.policy.write().expect("policy lock") = Arc::new(config.policy.clone());
        *self.auth.write().expect("auth lock") = config.auth;
        *self.credentials.write().expect("credentials lock") = credentials(config);
    }

    /// The configured auth mode.
    pub fn auth_mode(&self) -> AuthMode {
        *self.auth.read().expect("auth lock")
    }

    /// Whether requests need a virtual key right now.
    pub fn keys_required(&self) -> bool {
        match self.auth_mode() {
            AuthMode::Keys => true,
            AuthMode::Passthrough => false,
            AuthMode::Auto => {
                if self.has_keys.load(Ordering::Relaxed) {
                    return true;
                }
                // A key created by a CLI writing the data dir directly shows up within a second.
                let mut checked = self.keys_checked.lock().expect("keys lock");
                if checked.elapsed() >= Duration::from_secs(1) {
                    *checked = Instant::now();
                    if self.store.has_keys().unwrap_or(true) {
                        self.has_keys.store(true, Ordering::Relaxed);
                        return true;
                    }
                }
                false
            }
        }
    }

    /// Notes that a virtual key now exists (auto mode switches to keys).
    pub fn key_created(&self) {
        self.has_keys.store(true, Ordering::Relaxed);
    }

    /// The provider key injected for `upstream` when callers use virtual keys.
    pub fn credential(&self, upstream: &str) -> Option<String> {
        self.credentials
            .read()
            .expect("credentials lock")
            .get(upstream)
            .cloned()
    }

    /// Registers a stream so kills and budgets can cut it.
    pub fn track(self: &Arc<Self>, subjects: Subjects) -> FlightGuard {
        let id = self.flights.next.fetch_add(1, Ordering::Relaxed);
        let signal = Arc::new(CutSignal::default());
        self.flights
            .live
            .lock()
            .expect("flights lock")
            .insert(id, (subjects, signal.clone()));
        FlightGuard {
            id,
            control: self.clone(),
            signal,
        }
    }

    /// Cuts every stream in flight that `kill` matches; returns how many.
    pub fn cut_matching(&self, kill: &KillRecord) -> usize {
        let live = self.flights.live.lock().expect("flights lock");
        let mut n = 0;
        for (subjects, signal) in live.values() {
            if kill.target.matches(subjects) {
                signal.cut(Cut::Killed(kill.clone()));
                n += 1;
            }
        }
        n
    }

    /// Streams in flight now.
    pub fn in_flight(&self) -> usize {
        self.flights.live.lock().expect("flights lock").len()
    }

    /// Takes a slot of a `concurrent` limit, or `None` when all `limit` are taken.
    pub fn enter(self: &Arc<Self>, key: String, limit: u32) -> Option<ConcurrencyGuard> {
        let mut m = self.concurrency.lock().expect("concurrency lock");
        let n = m.entry(key.clone()).or_insert(0);
        if *n >= limit {
            return None;
        }
        *n += 1;
        Some(ConcurrencyGuard {
            key,
            control: self.clone(),
        })
    }

    /// Kills `target` durably, cuts its streams in flight, and updates metrics.
    pub fn kill(
        &self,
        target: KillTarget,
        reason: &str,
        actor: &str,
    ) -> Result<(KillRecord, usize), warden_state::StoreError> {
        let record = self
            .store
            .kill(target, reason, actor, std::time::SystemTime::now())?;
        let cut = self.cut_matching(&record);
        self.metrics.kill(kill_scope(&record.target));
        if let Ok(k) = self.store.kills() {
            self.metrics.set_kills_active(k.len() as i64);
        }
        Ok((record, cut))
    }

    /// Lifts a kill.
    pub fn unkill(
        &self,
        target: &KillTarget,
    ) -> Result<Option<KillRecord>, warden_state::StoreError> {
        let lifted = self.store.unkill(target)?;
        if let Ok(k) = self.store.kills() {
            self.metrics.set_kills_active(k.len() as i64);
        }
        Ok(lifted)
    }
}

/// The metric label for a kill target's scope.
pub fn kill_scope(t: &KillTarget) -> &'static str {
    match t {
        KillTarget::All => "all",
        KillTarget::Tenant(_) => "tenant",
        KillTarget::Agent(_) => "agent",
        KillTarget::Session(_) => "session",
        KillTarget::Key(_) => "key",
    }
}

/// Provider keys by upstream name, read from each upstream's `api_key_env` variables.
fn credentials(config: &Config) -> HashMap<String, String> {
    config
        .upstreams
        .iter()
        .filter_map(|u| {
            let key = u
                .api_key_env
                .iter()
                .find_map(|v| std::env::var(v).ok().filter(|k| !k.trim().is_empty()))?;
            Some((u.name.clone(), key.trim().to_string()))
        })
        .collect()
}

/// The `warden unkill` flags that lift a kill of `target`.
pub fn unkill_flags(target: &KillTarget) -> String {
    match target {
        KillTarget::All => "--all".into(),
        KillTarget::Tenant(t) => format!("--tenant {t}"),
        KillTarget::Agent(a) => format!("--agent {a}"),
        KillTarget::Session(s) => format!("--session {s}"),
        KillTarget::Key(k) => format!("--key {k}"),
    }
}

/// The token vault's AES-256-GCM key: `WARDEN_VAULT_KEY` (64 hex digits), else
/// `<data-dir>/protect/vault.key`, created (mode 0600) on first start. If neither can be had
/// the gateway still runs with a key of its own for this process (tokenize keeps working; the
/// warning says why the file could not be used).
fn vault_key(config: &Config) -> [u8; 32] {
    use warden_protect::vault::Vault;
    if let Ok(hex) = std::env::var("WARDEN_VAULT_KEY")
        && !hex.is_empty()
    {
        match parse_key_hex(hex.trim()) {
            Some(k) => return k,
            None => tracing::warn!(
                "WARDEN_VAULT_KEY is not 64 hex digits; using a key for this process only"
            ),
        }
    }
    let path = config.data_dir.join("protect").join("vault.key");
    match load_or_create_key(&path) {
        Ok(k) => k,
        Err(e) => {
            tracing::warn!(path = %path.display(), "cannot read or create the token vault key ({e}); using a key for this process only");
            Vault::generate_key()
        }
    }
}

fn parse_key_hex(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, b) in key.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(key)
}

fn load_or_create_key(path: &std::path::Path) -> std::io::Result<[u8; 32]> {
    use std::io::Write;
    match std::fs::read(path) {
        Ok(bytes) => {
            return bytes.try_into().map_err(|_| {
                std::io::Error::other("the file is not exactly 32 bytes; remove it to start over")
            });
        }
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        Err(_) => {}
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let key = warden_protect::vault::Vault::generate_key();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut f) => {
            f.write_all(&key)?;
            f.sync_all()?;
            Ok(key)
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::read(path)?
            .try_into()
            .map_err(|_| std::io::Error::other("the file is not exactly 32 bytes")),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod vault_key_tests {
    use super::*;

    #[test]
    fn key_file_is_created_once_with_mode_0600_and_reused() {
        let dir = std::env::temp_dir().join(format!("warden-vault-key-{}", std::process::id()));
        let path = dir.join("protect").join("vault.key");
        let _ = std::fs::remove_dir_all(&dir);
        let a = load_or_create_key(&path).unwrap();
        let b = load_or_create_key(&path).unwrap();
        assert_eq!(a, b);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        std::fs::write(&path, b"short").unwrap();
        assert!(load_or_create_key(&path).is_err());
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(parse_key_hex(&"ab".repeat(32)), Some([0xab; 32]));
        assert_eq!(parse_key_hex("abc"), None);
    }
}
