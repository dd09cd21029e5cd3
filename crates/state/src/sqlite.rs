//! [`SqliteStore`]: the embedded [`Store`], one SQLite file per data directory.
//!
//! Owns the SQL for keys, kills, spend and approvals (the latter in `approvals`), and the
//! connections that run it. It must not keep authoritative state anywhere but the database (the
//! kill mirror is a cache of the `kills` table and `KeyCache` one of recently checked keys, both
//! with a bounded staleness; rate state is deliberately ephemeral, see the `gcra` module),
//! because a CLI process may change the same file while the gateway runs.
//!
//! # Connections and concurrency
//!
//! - One **writer** connection behind a mutex runs every change. A change touching more than one
//!   row is one `BEGIN IMMEDIATE` transaction: `IMMEDIATE` takes SQLite's write lock before the
//!   first read, so a budget check and the reservation it justifies see the same numbers, even
//!   with another process writing the file. Other processes wait up to 5 s (`busy_timeout`).
//! - A few **reader** connections (`query_only`) serve lookups such as `authenticate`; WAL lets
//!   them run while the writer commits.
//! - One **watch** connection belongs to the kill mirror (see `mirror`).
//!
//! Durability is `synchronous=NORMAL` in WAL mode: a crash of the process loses nothing; a power
//! cut may lose the last few commits but never corrupts the file.
//!
//! # Files
//!
//! `<dir>/state.db` (plus SQLite's `-wal` and `-shm`) and `<dir>/key-pepper`, the 32-byte HMAC key
//! for virtual-key hashes, created with mode 0600. Losing the pepper invalidates every virtual
//! key; copying `state.db` without it reveals no usable secret.
//!
//! # Growth
//!
//! Spend rows are never deleted: one row per known subject per day and month bucket, plus one
//! total. Sessions dominate that count on a busy gateway; pruning old day buckets is a future
//! maintenance command, not something the request path should do. Approvals are never deleted
//! either (they are the audit trail of who let which tool call through); one row per held tool
//! call is small beside the spend rows.

mod approvals;
mod mirror;
mod schema;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::{Duration, Instant, SystemTime};

use rusqlite::types::Type;
use rusqlite::{Connection, ErrorCode, OptionalExtension as _, Row, TransactionBehavior, params};

use crate::gcra::RateTable;
use crate::keys::{self, KeyHasher};
use crate::time::{bucket, unix_secs};
use crate::{
    Approval, ApprovalFilter, Cap, CapStatus, Charge, CreatedKey, DecideOutcome, Decision,
    KeyCheck, KeyInfo, KillRecord, KillTarget, Micros, NewApproval, NewKey, Period, Rate,
    RateOutcome, Reservation, ReserveOutcome, ReservedCap, Scope, SpendFilter, SpendRow, Store,
    StoreError, Subjects,
};

use mirror::KillMirror;

const DB_FILE: &str = "state.db";
const PEPPER_FILE: &str = "key-pepper";

/// How [`SqliteStore::open_with`] sets up a store.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// How often [`Store::killed`] may check the database for kills made by other processes:
    /// the bound on how stale the kill mirror can be. Zero checks on every call (tests).
    pub kill_refresh: Duration,
    /// Read-only connections for lookups (at least 1).
    pub readers: usize,
    /// How long [`Store::authenticate`] may answer from memory for a key it looked up before:
    /// the bound on how late a key revoked by another process stops working. Revoking through
    /// this store takes effect at once. Zero asks the database on every call.
    pub key_refresh: Duration,
}

impl Default for Options {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Self {
            kill_refresh: Duration::from_millis(250),
            readers: cores.clamp(2, 4),
            key_refresh: Duration::from_millis(250),
        }
    }
}

/// An internal error before the database path is attached: lets helpers use `?` on both
/// rusqlite and store errors.
#[derive(Debug)]
enum Fail {
    Sql(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for Fail {
    fn from(e: rusqlite::Error) -> Self {
        Fail::Sql(e)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Store(e)
    }
}

impl Fail {
    fn at(self, path: &Path) -> StoreError {
        match self {
            Fail::Sql(source) => StoreError::Sqlite {
                path: path.to_owned(),
                source,
            },
            Fail::Store(e) => e,
        }
    }
}

fn invalid(msg: impl Into<String>) -> Fail {
    Fail::Store(StoreError::InvalidArgument(msg.into()))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a connection cannot leave a transaction open (rusqlite rolls back on
    // drop), so the connection behind a poisoned lock is still sound.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// SQLite stores integers as i64; counts and times here are u64 that never get near 2^63.
fn to_sql_int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn from_sql_int(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// The embedded [`Store`]: SQLite in WAL mode, shared safely with other processes.
///
/// `Send + Sync`; share it as `Arc<SqliteStore>` or `Arc<dyn Store>`.
pub struct SqliteStore {
    path: PathBuf,
    hasher: KeyHasher,
    writer: Mutex<Connection>,
    readers: Box<[Mutex<Connection>]>,
    next_reader: AtomicUsize,
    kills: KillMirror,
    rates: RateTable,
    /// Once true, stays true: keys are never deleted, so `has_keys` stops asking SQLite.
    has_keys: AtomicBool,
    keys: KeyCache,
    next_reservation: AtomicU64,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("readers", &self.readers.len())
            .field("kills", &self.kills)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed, directories too) `<dir>/state.db` and the key-hash secret
    /// `<dir>/key-pepper` (32 random bytes, created with mode 0600, never printed), and brings the
    /// schema up to date.
    pub fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        Self::open_with(dir, Options::default())
    }

    /// For a CLI that only lists: the same as [`open`](Self::open) today. Kept separate so that
    /// a later read-only mode (no migration, no pepper creation) changes no caller.
    pub fn open_read_only(dir: &Path) -> Result<SqliteStore, StoreError> {
        Self::open(dir)
    }

    /// [`open`](Self::open) with explicit [`Options`].
    pub fn open_with(dir: &Path, options: Options) -> Result<SqliteStore, StoreError> {
        fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join(DB_FILE);
        let hasher = keys::load_or_create_pepper(&dir.join(PEPPER_FILE))?;
        Self::open_db(path.clone(), hasher, options).map_err(|e| e.at(&path))
    }

    fn open_db(path: PathBuf, hasher: KeyHasher, options: Options) -> Result<Self, Fail> {
        let mut writer = schema::connect(&path, true)?;
        schema::migrate(&mut writer, &path)?;
        let readers = (0..options.readers.max(1))
            .map(|_| schema::connect(&path, false).map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()?
            .into_boxed_slice();
        let kills = KillMirror::new(schema::connect(&path, false)?, options.kill_refresh)?;
        Ok(Self {
            path,
            hasher,
            writer: Mutex::new(writer),
            readers,
            next_reader: AtomicUsize::new(0),
            kills,
            rates: RateTable::default(),
            has_keys: AtomicBool::new(false),
            keys: KeyCache::new(options.key_refresh),
            next_reservation: AtomicU64::new(1),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reloads the kill mirror from the database now, instead of waiting for the next periodic
    /// check (see [`Options::kill_refresh`]).
    pub fn refresh_kills(&self) -> Result<(), StoreError> {
        self.done(self.kills.reload())
    }

    fn done<T>(&self, r: Result<T, Fail>) -> Result<T, StoreError> {
        r.map_err(|e| e.at(&self.path))
    }

    /// A free reader if there is one, else waits on one; readers are interchangeable.
    fn reader(&self) -> MutexGuard<'_, Connection> {
        let n = self.readers.len();
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        for i in 0..n {
            match self.readers[(start + i) % n].try_lock() {
                Ok(conn) => return conn,
                Err(TryLockError::Poisoned(p)) => return p.into_inner(),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        lock(&self.readers[start % n])
    }

    fn create_key_inner(&self, new: NewKey, now: SystemTime) -> Result<CreatedKey, Fail> {
        let created_at = unix_secs(now);
        if new.budget_micros.is_some_and(|b| b < 0) {
            return Err(invalid("a key budget cannot be negative"));
        }
        let expires_at = new.expires_at.map(unix_secs);
        if expires_at.is_some_and(|e| e <= created_at) {
            return Err(invalid("a key's expiry must be in the future"));
        }
        let non_empty = |s: Option<String>| s.filter(|s| !s.is_empty());
        let mut info = KeyInfo {
            id: String::new(),
            tenant: non_empty(new.tenant),
            agent: non_empty(new.agent),
            name: non_empty(new.name),
            models: new.models,
            rpm: new.rpm,
            tpm: new.tpm,
            budget_micros: new.budget_micros,
            budget_period: new.budget_period,
            created_at,
            expires_at,
            revoked_at: None,
        };
        let models = serde_json::to_string(&info.models)
            .map_err(|e| invalid(format!("model globs: {e}")))?;
        let conn = lock(&self.writer);
        // Ids and hashes are random 64 and 256 bits; a UNIQUE clash is (astronomically) a
        // collision, and drawing again is the whole fix.
        for _ in 0..3 {
            info.id = keys::new_id()?;
            let secret = keys::new_secret()?;
            let inserted = conn
                .prepare_cached(
                    "INSERT INTO keys (id, hash, tenant, agent, name, models, rpm, tpm,
                         budget_micros, budget_period, created_at, expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                )?
                .execute(params![
                    info.id,
                    self.hasher.hash(&secret),
                    info.tenant,
                    info.agent,
                    info.name,
                    models,
                    info.rpm,
                    info.tpm,
                    info.budget_micros,
                    info.budget_period.name(),
                    to_sql_int(created_at),
                    expires_at.map(to_sql_int),
                ]);
            match inserted {
                Ok(_) => {
                    self.has_keys.store(true, Ordering::Relaxed);
                    return Ok(CreatedKey { secret, info });
                }
                Err(e) if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(Fail::Store(StoreError::Corrupt(
            "three random key ids in a row collided with existing keys".into(),
        )))
    }

    fn reserve_inner(
        &self,
        caps: &[Cap],
        amount: Micros,
        now: SystemTime,
    ) -> Result<ReserveOutcome, Fail> {
        let item = crate::ReserveRequest {
            caps: caps.to_vec(),
            amount,
            at: now,
        };
        match self.reserve_batch_inner(std::slice::from_ref(&item))?.pop() {
            Some(outcome) => outcome,
            None => Err(invalid("a batch of one reservation answered nothing")),
        }
    }

    /// Several reservations in one `BEGIN IMMEDIATE` transaction, judged in order exactly as
    /// one call each would judge them: each sees the spend and reservations of the ones before
    /// it. The spend rows are read once and written once per batch, which is the point: under
    /// load one lock and one commit serve every request waiting to reserve.
    ///
    /// An item that is invalid (a negative amount, a malformed cap) fails alone; an SQLite
    /// error fails the whole batch, and nothing of it is reserved.
    fn reserve_batch_inner(
        &self,
        items: &[crate::ReserveRequest],
    ) -> Result<Vec<Result<ReserveOutcome, Fail>>, Fail> {
        // Planned before the lock, like settlements: bad items are answered without it.
        let plans: Vec<Result<(u64, Vec<ReservedCap>), Fail>> = items
            .iter()
            .map(|item| {
                if item.amount < 0 {
                    return Err(invalid("a reservation cannot be negative"));
                }
                item.caps.iter().try_for_each(check_cap)?;
                let at = unix_secs(item.at);
                let caps = item
                    .caps
                    .iter()
                    .map(|cap| ReservedCap {
                        bucket: bucket(cap.period, at),
                        cap: cap.clone(),
                    })
                    .collect();
                Ok((at, caps))
            })
            .collect();

        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Every spend row the batch looks at, as the transaction sees it plus what earlier
        // items of the batch reserved on it. A batch names few distinct rows: a list it is.
        let mut rows: Vec<BatchRow> = Vec::new();
        let mut out = Vec::with_capacity(items.len());
        for (item, plan) in items.iter().zip(plans) {
            let (at, reserved) = match plan {
                Ok(p) => p,
                Err(e) => {
                    out.push(Err(e));
                    continue;
                }
            };
            let mut slots = Vec::with_capacity(reserved.len());
            for rc in &reserved {
                let slot = match rows.iter().position(|r| r.holds(rc)) {
                    Some(i) => i,
                    None => {
                        let s = read_status(&tx, &rc.cap, &rc.bucket)?;
                        rows.push(BatchRow {
                            key: RowKey {
                                scope: rc.cap.scope,
                                subject: rc.cap.subject.clone(),
                                period: rc.cap.period,
                                bucket: rc.bucket.clone(),
                            },
                            spent: s.spent_micros,
                            reserved: s.reserved_micros,
                            added: 0,
                            last_at: 0,
                            written: false,
                        });
                        rows.len() - 1
                    }
                };
                slots.push(slot);
            }
            let crossed = reserved.iter().zip(&slots).find(|(rc, slot)| {
                let row = &rows[**slot];
                let used = row.spent.saturating_add(row.reserved);
                used >= rc.cap.limit_micros
                    || used.saturating_add(item.amount) > rc.cap.limit_micros
            });
            if let Some((rc, slot)) = crossed {
                let row = &rows[*slot];
                out.push(Ok(ReserveOutcome::Exceeded(CapStatus {
                    name: rc.cap.name.clone(),
                    scope: rc.cap.scope,
                    subject: rc.cap.subject.clone(),
                    period: rc.cap.period,
                    bucket: rc.bucket.clone(),
                    limit_micros: rc.cap.limit_micros,
                    soft_micros: rc.cap.soft_micros,
                    spent_micros: row.spent,
                    reserved_micros: row.reserved,
                })));
                continue;
            }
            // Caps naming the same row share one reservation of the amount.
            let mut touched: Vec<usize> = Vec::with_capacity(slots.len());
            for slot in slots {
                if !touched.contains(&slot) {
                    touched.push(slot);
                    let row = &mut rows[slot];
                    row.reserved = row.reserved.saturating_add(item.amount);
                    row.added = row.added.saturating_add(item.amount);
                    row.last_at = row.last_at.max(at);
                    row.written = true;
                }
            }
            out.push(Ok(ReserveOutcome::Reserved(Reservation {
                id: self.next_reservation.fetch_add(1, Ordering::Relaxed),
                amount: item.amount,
                at,
                caps: reserved,
            })));
        }
        {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO spend (scope, subject, period, bucket, reserved_micros, last_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (scope, subject, period, bucket) DO UPDATE SET
                     reserved_micros = reserved_micros + excluded.reserved_micros,
                     last_at = max(last_at, excluded.last_at)",
            )?;
            // A reservation of 0 (a zero estimate) still writes its row, as a single call did:
            // `last_at` says the subject was seen.
            for row in rows.iter().filter(|r| r.written) {
                upsert.execute(params![
                    row.key.scope.name(),
                    row.key.subject,
                    row.key.period.name(),
                    row.key.bucket,
                    row.added,
                    to_sql_int(row.last_at),
                ])?;
            }
        }
        tx.commit()?;
        Ok(out)
    }

    fn settle_inner(
        &self,
        reservation: Option<Reservation>,
        subjects: &Subjects,
        charge: &Charge,
        now: SystemTime,
    ) -> Result<Vec<CapStatus>, Fail> {
        let item = crate::Settlement {
            reservation,
            subjects: subjects.clone(),
            charge: charge.clone(),
            at: now,
        };
        Ok(self
            .settle_batch_inner(vec![item])?
            .pop()
            .unwrap_or_default())
    }

    /// Several settlements in one transaction: one write lock and one commit for the batch.
    ///
    /// Settlements that touch the same spend row (under load, nearly all of them: one agent,
    /// one day) are summed into one upsert per row. That is exactly what applying them one by
    /// one does: sums and counts add, `last_at` takes the maximum, and giving back reservations
    /// `a` then `b` with `max(r - a, 0)` then `max(· - b, 0)` equals `max(r - (a + b), 0)`.
    /// Statuses are read once per cap after the whole batch is applied.
    fn settle_batch_inner(
        &self,
        items: Vec<crate::Settlement>,
    ) -> Result<Vec<Vec<CapStatus>>, Fail> {
        // Planned before the lock: a bad item fails the batch before anything is written.
        let plans = items
            .into_iter()
            .map(settle_plan)
            .collect::<Result<Vec<_>, _>>()?;
        let mut sums: HashMap<RowKey, RowSums> = HashMap::new();
        let mut reserved = Vec::with_capacity(plans.len());
        for (rows, caps, charge, last_at) in plans {
            for row in rows {
                sums.entry(row.key)
                    .or_default()
                    .add(row.release, &charge, last_at);
            }
            reserved.push(caps);
        }

        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO spend (scope, subject, period, bucket, spent_micros, requests,
                     input_tokens, output_tokens, unpriced_requests, last_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (scope, subject, period, bucket) DO UPDATE SET
                     spent_micros = spent_micros + excluded.spent_micros,
                     reserved_micros = max(reserved_micros - ?11, 0),
                     requests = requests + excluded.requests,
                     input_tokens = input_tokens + excluded.input_tokens,
                     output_tokens = output_tokens + excluded.output_tokens,
                     unpriced_requests = unpriced_requests + excluded.unpriced_requests,
                     last_at = max(last_at, excluded.last_at)",
            )?;
            for (key, row) in &sums {
                upsert.execute(params![
                    key.scope.name(),
                    key.subject,
                    key.period.name(),
                    key.bucket,
                    row.spent,
                    to_sql_int(row.requests),
                    to_sql_int(row.input_tokens),
                    to_sql_int(row.output_tokens),
                    to_sql_int(row.unpriced),
                    to_sql_int(row.last_at),
                    row.release,
                ])?;
            }
        }
        // A batch names few distinct caps: a list beats hashing the whole `Cap`.
        let mut statuses: Vec<(&ReservedCap, CapStatus)> = Vec::new();
        let mut out = Vec::with_capacity(reserved.len());
        for caps in &reserved {
            let mut item = Vec::with_capacity(caps.len());
            for rc in caps {
                let known = statuses
                    .iter()
                    .find(|(seen, _)| seen.cap == rc.cap && seen.bucket == rc.bucket);
                let status = match known {
                    Some((_, s)) => s.clone(),
                    None => {
                        let s = read_status(&tx, &rc.cap, &rc.bucket)?;
                        statuses.push((rc, s.clone()));
                        s
                    }
                };
                item.push(status);
            }
            out.push(item);
        }
        tx.commit()?;
        Ok(out)
    }
}

/// Keys looked up recently, by MAC (never by secret), each with when it was read.
///
/// Authentication is on every request; without this it is a database read each time. Entries
/// are trusted for `refresh` (see [`Options::key_refresh`]), dropped all at once when this
/// store revokes a key, and the whole map is dropped when it reaches [`KeyCache::MAX`] keys.
struct KeyCache {
    refresh: Duration,
    map: std::sync::RwLock<Cached>,
}

#[derive(Default)]
struct Cached {
    /// Bumped by every revocation through this store: a lookup that read the database before
    /// one does not put what it read.
    generation: u64,
    keys: HashMap<String, (KeyInfo, Instant)>,
}

impl KeyCache {
    const MAX: usize = 10_000;

    fn new(refresh: Duration) -> KeyCache {
        KeyCache {
            refresh,
            map: std::sync::RwLock::new(Cached::default()),
        }
    }

    /// A fresh entry, or the generation to hand to [`put`](Self::put) after reading the
    /// database.
    fn get(&self, hash: &str) -> Result<KeyInfo, u64> {
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        match map.keys.get(hash) {
            Some((info, read)) if read.elapsed() < self.refresh => Ok(info.clone()),
            _ => Err(map.generation),
        }
    }

    fn put(&self, hash: String, info: &KeyInfo, generation: u64) {
        if self.refresh.is_zero() {
            return;
        }
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        if map.generation != generation {
            return;
        }
        if map.keys.len() >= Self::MAX {
            map.keys.clear();
        }
        map.keys.insert(hash, (info.clone(), Instant::now()));
    }

    fn invalidate(&self) {
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        map.generation += 1;
        map.keys.clear();
    }
}

/// A spend row as a batch of reservations sees it (see `reserve_batch_inner`).
struct BatchRow {
    key: RowKey,
    spent: Micros,
    /// Reserved in the database plus what earlier items of the batch added.
    reserved: Micros,
    /// What the batch adds, written once at its end.
    added: Micros,
    /// The latest time of an item that reserved on it.
    last_at: u64,
    /// Whether an item reserved on it (then it is written, even when the amounts were 0).
    written: bool,
}

impl BatchRow {
    fn holds(&self, rc: &ReservedCap) -> bool {
        self.key.scope == rc.cap.scope
            && self.key.period == rc.cap.period
            && self.key.subject == rc.cap.subject
            && self.key.bucket == rc.bucket
    }
}

/// A spend row one settlement touches, and how much reservation it gives back.
struct OwnedRow {
    key: RowKey,
    release: Micros,
}

/// Identifies a spend row (its primary key).
#[derive(PartialEq, Eq, Hash)]
struct RowKey {
    scope: Scope,
    subject: String,
    period: Period,
    bucket: String,
}

/// What a batch of settlements adds to one spend row.
#[derive(Default)]
struct RowSums {
    spent: Micros,
    requests: u64,
    input_tokens: u64,
    output_tokens: u64,
    unpriced: u64,
    last_at: u64,
    release: Micros,
}

impl RowSums {
    fn add(&mut self, release: Micros, charge: &Charge, last_at: u64) {
        self.spent = self.spent.saturating_add(charge.micros.unwrap_or(0));
        self.requests += 1;
        self.input_tokens = self.input_tokens.saturating_add(charge.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(charge.output_tokens);
        self.unpriced += u64::from(charge.micros.is_none());
        self.last_at = self.last_at.max(last_at);
        self.release = self.release.saturating_add(release);
    }
}

/// The rows one settlement touches, each once (as `settle_inner` computes them).
#[allow(clippy::type_complexity)]
fn settle_plan(
    item: crate::Settlement,
) -> Result<(Vec<OwnedRow>, Vec<ReservedCap>, Charge, u64), Fail> {
    let crate::Settlement {
        reservation,
        subjects,
        charge,
        at: now,
    } = item;
    if charge.micros.is_some_and(|m| m < 0) {
        return Err(invalid("a charge cannot be negative"));
    }
    let last_at = unix_secs(now);
    let (at, amount, reserved) = match reservation {
        Some(r) => (r.at, r.amount, r.caps),
        None => (last_at, 0, Vec::new()),
    };
    let mut rows: Vec<OwnedRow> = Vec::with_capacity(reserved.len() + 15);
    for rc in &reserved {
        let row = OwnedRow {
            key: RowKey {
                scope: rc.cap.scope,
                subject: rc.cap.subject.clone(),
                period: rc.cap.period,
                bucket: rc.bucket.clone(),
            },
            release: amount,
        };
        if !rows.iter().any(|r| r.key == row.key) {
            rows.push(row);
        }
    }
    for (scope, subject) in subjects.known() {
        for period in Period::ALL {
            let row = OwnedRow {
                key: RowKey {
                    scope,
                    subject: subject.to_string(),
                    period,
                    bucket: bucket(period, at),
                },
                release: 0,
            };
            if !rows.iter().any(|r| r.key == row.key) {
                rows.push(row);
            }
        }
    }
    Ok((rows, reserved, charge, last_at))
}

impl SqliteStore {
    fn release_inner(&self, reservation: Reservation) -> Result<(), Fail> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for (i, rc) in reservation.caps.iter().enumerate() {
            if first_of_row(&reservation.caps, i) {
                tx.prepare_cached(
                    "UPDATE spend SET reserved_micros = max(reserved_micros - ?5, 0)
                     WHERE scope = ?1 AND subject = ?2 AND period = ?3 AND bucket = ?4",
                )?
                .execute(params![
                    rc.cap.scope.name(),
                    rc.cap.subject,
                    rc.cap.period.name(),
                    rc.bucket,
                    reservation.amount,
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn spend_inner(&self, filter: &SpendFilter) -> Result<Vec<SpendRow>, Fail> {
        // Only the conditions asked for, so the primary key (scope, subject, …) can serve them;
        // each of the eight shapes is its own cached statement.
        let mut sql = String::from(
            "SELECT scope, subject, period, bucket, spent_micros, reserved_micros, requests,
                    input_tokens, output_tokens, unpriced_requests, last_at
             FROM spend WHERE 1",
        );
        let mut args: Vec<&dyn rusqlite::ToSql> = Vec::new();
        let scope = filter.scope.map(Scope::name);
        let period = filter.period.map(Period::name);
        if let Some(scope) = &scope {
            sql.push_str(" AND scope = ?");
            args.push(scope);
        }
        if let Some(subject) = &filter.subject {
            sql.push_str(" AND subject = ?");
            args.push(subject);
        }
        if let Some(period) = &period {
            sql.push_str(" AND period = ?");
            args.push(period);
        }
        // 'total' sorts after every 'YYYY…' bucket, so DESC lists totals, then newest first.
        sql.push_str(" ORDER BY bucket DESC, spent_micros DESC, scope, subject, period LIMIT ?");
        let limit = if filter.limit == 0 {
            -1 // SQLite: a negative LIMIT means none
        } else {
            i64::try_from(filter.limit).unwrap_or(i64::MAX)
        };
        args.push(&limit);
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt
            .query_map(args.as_slice(), spend_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn clear_reservations_inner(&self) -> Result<u64, Fail> {
        let conn = lock(&self.writer);
        // One statement is atomic on its own.
        let buckets = conn.execute(
            "UPDATE spend SET reserved_micros = 0 WHERE reserved_micros <> 0",
            [],
        )?;
        Ok(buckets as u64)
    }

    fn kill_inner(
        &self,
        target: KillTarget,
        reason: &str,
        actor: &str,
        now: SystemTime,
    ) -> Result<KillRecord, Fail> {
        if target.id().is_some_and(str::is_empty) {
            return Err(invalid(format!("kill {}: empty id", target.kind())));
        }
        let record = {
            let conn = lock(&self.writer);
            // The no-op update makes RETURNING yield the existing row: the first kill stands.
            let (reason, actor, at) = conn
                .prepare_cached(
                    "INSERT INTO kills (kind, id, reason, actor, at) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (kind, id) DO UPDATE SET kind = kind
                     RETURNING reason, actor, at",
                )?
                .query_row(
                    params![
                        target.kind(),
                        target.id().unwrap_or(""),
                        reason,
                        actor,
                        to_sql_int(unix_secs(now))
                    ],
                    |r| Ok((r.get(0)?, r.get(1)?, from_sql_int(r.get(2)?))),
                )?;
            KillRecord {
                target,
                reason,
                actor,
                at,
            }
        };
        self.kills.apply(Some(record.clone()), None);
        Ok(record)
    }

    fn unkill_inner(&self, target: &KillTarget) -> Result<Option<KillRecord>, Fail> {
        let removed = {
            let conn = lock(&self.writer);
            conn.prepare_cached(
                "DELETE FROM kills WHERE kind = ?1 AND id = ?2 RETURNING reason, actor, at",
            )?
            .query_row(params![target.kind(), target.id().unwrap_or("")], |r| {
                Ok(KillRecord {
                    target: target.clone(),
                    reason: r.get(0)?,
                    actor: r.get(1)?,
                    at: from_sql_int(r.get(2)?),
                })
            })
            .optional()?
        };
        // Applied even when nothing was deleted here: another process may have unkilled it
        // already, and the mirror should not wait for its next check to agree.
        self.kills.apply(None, Some(target));
        Ok(removed)
    }
}

/// Whether `caps[i]` is the first to name its spend row: caps sharing a row share one
/// reservation, so a cap list with a per-key and a per-agent budget on the same agent row does
/// not reserve twice.
fn first_of_row(caps: &[ReservedCap], i: usize) -> bool {
    let c = &caps[i];
    !caps[..i].iter().any(|p| {
        p.cap.scope == c.cap.scope
            && p.cap.period == c.cap.period
            && p.cap.subject == c.cap.subject
            && p.bucket == c.bucket
    })
}

fn check_cap(cap: &Cap) -> Result<(), Fail> {
    if cap.limit_micros < 0 {
        return Err(invalid(format!("budget {}: negative limit", cap.name)));
    }
    match (cap.scope, cap.subject.is_empty()) {
        (Scope::Global, false) => Err(invalid(format!(
            "budget {}: a global cap has no subject",
            cap.name
        ))),
        (scope, true) if scope != Scope::Global => Err(invalid(format!(
            "budget {}: a {scope} cap needs a subject",
            cap.name
        ))),
        _ => Ok(()),
    }
}

/// The cap's row as of now in this connection (zeros if it was never written).
fn read_status(conn: &Connection, cap: &Cap, bucket: &str) -> Result<CapStatus, Fail> {
    let (spent, reserved) = conn
        .prepare_cached(
            "SELECT spent_micros, reserved_micros FROM spend
             WHERE scope = ?1 AND subject = ?2 AND period = ?3 AND bucket = ?4",
        )?
        .query_row(
            params![cap.scope.name(), cap.subject, cap.period.name(), bucket],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .unwrap_or((0, 0));
    Ok(CapStatus {
        name: cap.name.clone(),
        scope: cap.scope,
        subject: cap.subject.clone(),
        period: cap.period,
        bucket: bucket.to_owned(),
        limit_micros: cap.limit_micros,
        soft_micros: cap.soft_micros,
        spent_micros: spent,
        reserved_micros: reserved,
    })
}

fn conversion(idx: usize, what: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, what.into())
}

fn scope_col(row: &Row<'_>, idx: usize) -> rusqlite::Result<Scope> {
    let s: String = row.get(idx)?;
    Scope::parse(&s).ok_or_else(|| conversion(idx, format!("unknown scope {s:?}")))
}

fn period_col(row: &Row<'_>, idx: usize) -> rusqlite::Result<Period> {
    let s: String = row.get(idx)?;
    Period::parse(&s).ok_or_else(|| conversion(idx, format!("unknown period {s:?}")))
}

fn u32_col(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<u32>> {
    row.get::<_, Option<i64>>(idx)?
        .map(|v| u32::try_from(v).map_err(|_| conversion(idx, format!("{v} is not a u32"))))
        .transpose()
}

const KEY_COLUMNS: &str = "id, tenant, agent, name, models, rpm, tpm, budget_micros, budget_period,
     created_at, expires_at, revoked_at";

fn key_row(row: &Row<'_>) -> rusqlite::Result<KeyInfo> {
    let models: String = row.get(4)?;
    Ok(KeyInfo {
        id: row.get(0)?,
        tenant: row.get(1)?,
        agent: row.get(2)?,
        name: row.get(3)?,
        models: serde_json::from_str(&models)
            .map_err(|e| conversion(4, format!("model globs: {e}")))?,
        rpm: u32_col(row, 5)?,
        tpm: u32_col(row, 6)?,
        budget_micros: row.get(7)?,
        budget_period: period_col(row, 8)?,
        created_at: from_sql_int(row.get(9)?),
        expires_at: row.get::<_, Option<i64>>(10)?.map(from_sql_int),
        revoked_at: row.get::<_, Option<i64>>(11)?.map(from_sql_int),
    })
}

fn spend_row(row: &Row<'_>) -> rusqlite::Result<SpendRow> {
    Ok(SpendRow {
        scope: scope_col(row, 0)?,
        subject: row.get(1)?,
        period: period_col(row, 2)?,
        bucket: row.get(3)?,
        spent_micros: row.get(4)?,
        reserved_micros: row.get(5)?,
        requests: from_sql_int(row.get(6)?),
        input_tokens: from_sql_int(row.get(7)?),
        output_tokens: from_sql_int(row.get(8)?),
        unpriced_requests: from_sql_int(row.get(9)?),
        last_at: from_sql_int(row.get(10)?),
    })
}

/// Every kill, oldest first. Shared by [`Store::kills`] and the mirror's reload.
fn all_kills(conn: &Connection) -> Result<Vec<KillRecord>, Fail> {
    let mut stmt =
        conn.prepare_cached("SELECT kind, id, reason, actor, at FROM kills ORDER BY at, kind, id")?;
    let rows = stmt.query_map([], |r| {
        let kind: String = r.get(0)?;
        let id: String = r.get(1)?;
        let target = KillTarget::new(&kind, (kind != "all").then_some(id.as_str()))
            .ok_or_else(|| conversion(0, format!("unknown kill target {kind:?} {id:?}")))?;
        Ok(KillRecord {
            target,
            reason: r.get(2)?,
            actor: r.get(3)?,
            at: from_sql_int(r.get(4)?),
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

impl Store for SqliteStore {
    fn create_key(&self, new: NewKey, now: SystemTime) -> Result<CreatedKey, StoreError> {
        self.done(self.create_key_inner(new, now))
    }

    fn list_keys(&self) -> Result<Vec<KeyInfo>, StoreError> {
        let conn = self.reader();
        let r = (|| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {KEY_COLUMNS} FROM keys ORDER BY created_at, id"
            ))?;
            let keys = stmt
                .query_map([], key_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(keys)
        })();
        self.done(r)
    }

    fn revoke_key(&self, id: &str, now: SystemTime) -> Result<Option<KeyInfo>, StoreError> {
        let conn = lock(&self.writer);
        let r = conn
            .prepare_cached(&format!(
                "UPDATE keys SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1
                 RETURNING {KEY_COLUMNS}"
            ))
            .and_then(|mut stmt| {
                stmt.query_row(params![id, to_sql_int(unix_secs(now))], key_row)
                    .optional()
            });
        // After the commit: a lookup from here on reads the revocation, and one that read the
        // database before it does not keep what it read (the generation moved).
        self.keys.invalidate();
        self.done(r.map_err(Fail::from))
    }

    fn authenticate(&self, presented: &str, now: SystemTime) -> Result<KeyCheck, StoreError> {
        if !keys::looks_like_secret(presented) {
            return Ok(KeyCheck::Unknown);
        }
        // The lookup compares the stored MAC with HMAC(pepper, presented) in SQLite's index,
        // which is not constant-time. That is safe: the timing can only reveal how many leading
        // hex digits of the *MAC* of the attacker's own input match some stored MAC, and without
        // the pepper no one can steer a MAC's digits, so the signal carries nothing about any
        // stored secret. The secret itself is never compared or stored.
        let hash = self.hasher.hash(presented);
        let info = match self.keys.get(&hash) {
            Ok(info) => info,
            Err(generation) => {
                let conn = self.reader();
                let found = conn
                    .prepare_cached(&format!("SELECT {KEY_COLUMNS} FROM keys WHERE hash = ?1"))
                    .and_then(|mut stmt| stmt.query_row([&hash], key_row).optional());
                match self.done(found.map_err(Fail::from))? {
                    // Unknown keys are not remembered: a key created a moment ago by another
                    // process works at once, and guessing cannot grow the cache.
                    None => return Ok(KeyCheck::Unknown),
                    Some(info) => {
                        self.keys.put(hash, &info, generation);
                        info
                    }
                }
            }
        };
        let now = unix_secs(now);
        Ok(if info.revoked_at.is_some() {
            KeyCheck::Revoked(info)
        } else if info.expires_at.is_some_and(|e| now >= e) {
            KeyCheck::Expired(info)
        } else {
            KeyCheck::Valid(info)
        })
    }

    fn has_keys(&self) -> Result<bool, StoreError> {
        if self.has_keys.load(Ordering::Relaxed) {
            return Ok(true);
        }
        let conn = self.reader();
        let any: bool = self.done(
            conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM keys)")
                .and_then(|mut s| s.query_row([], |r| r.get(0)))
                .map_err(Fail::from),
        )?;
        if any {
            self.has_keys.store(true, Ordering::Relaxed);
        }
        Ok(any)
    }

    fn kill(
        &self,
        target: KillTarget,
        reason: &str,
        actor: &str,
        now: SystemTime,
    ) -> Result<KillRecord, StoreError> {
        self.done(self.kill_inner(target, reason, actor, now))
    }

    fn unkill(&self, target: &KillTarget) -> Result<Option<KillRecord>, StoreError> {
        self.done(self.unkill_inner(target))
    }

    fn kills(&self) -> Result<Vec<KillRecord>, StoreError> {
        let conn = self.reader();
        self.done(all_kills(&conn))
    }

    fn killed(&self, subjects: &Subjects) -> Option<KillRecord> {
        self.kills.killed(subjects)
    }

    fn reserve(
        &self,
        caps: &[Cap],
        amount: Micros,
        now: SystemTime,
    ) -> Result<ReserveOutcome, StoreError> {
        self.done(self.reserve_inner(caps, amount, now))
    }

    fn reserve_batch(
        &self,
        items: &[crate::ReserveRequest],
    ) -> Result<Vec<Result<ReserveOutcome, StoreError>>, StoreError> {
        let all = self.done(self.reserve_batch_inner(items))?;
        Ok(all.into_iter().map(|r| self.done(r)).collect())
    }

    fn settle(
        &self,
        reservation: Option<Reservation>,
        subjects: &Subjects,
        charge: &Charge,
        now: SystemTime,
    ) -> Result<Vec<CapStatus>, StoreError> {
        self.done(self.settle_inner(reservation, subjects, charge, now))
    }

    fn release(&self, reservation: Reservation) -> Result<(), StoreError> {
        self.done(self.release_inner(reservation))
    }

    fn settle_batch(
        &self,
        items: Vec<crate::Settlement>,
    ) -> Result<Vec<Vec<CapStatus>>, StoreError> {
        self.done(self.settle_batch_inner(items))
    }

    fn cap_status(&self, caps: &[Cap], now: SystemTime) -> Result<Vec<CapStatus>, StoreError> {
        let at = unix_secs(now);
        let conn = self.reader();
        let r = caps
            .iter()
            .map(|cap| read_status(&conn, cap, &bucket(cap.period, at)))
            .collect();
        self.done(r)
    }

    fn spend(&self, filter: &SpendFilter) -> Result<Vec<SpendRow>, StoreError> {
        self.done(self.spend_inner(filter))
    }

    fn clear_reservations(&self) -> Result<u64, StoreError> {
        self.done(self.clear_reservations_inner())
    }

    fn rate_acquire(&self, bucket: &str, rate: Rate, cost: u64, now: Instant) -> RateOutcome {
        self.rates.acquire(bucket, rate, cost, now)
    }

    fn rate_charge(&self, bucket: &str, rate: Rate, cost: u64, now: Instant) {
        self.rates.charge(bucket, rate, cost, now);
    }

    fn create_approval(&self, new: NewApproval, now: SystemTime) -> Result<Approval, StoreError> {
        self.done(self.create_approval_inner(new, now))
    }

    fn approval(&self, id: &str) -> Result<Option<Approval>, StoreError> {
        self.done(self.approval_inner(id, SystemTime::now()))
    }

    fn list_approvals(
        &self,
        filter: &ApprovalFilter,
        now: SystemTime,
    ) -> Result<Vec<Approval>, StoreError> {
        self.done(self.list_approvals_inner(filter, now))
    }

    fn decide_approval(
        &self,
        id: &str,
        decision: Decision,
        approver: &str,
        reason: Option<&str>,
        now: SystemTime,
    ) -> Result<DecideOutcome, StoreError> {
        self.done(self.decide_approval_inner(id, decision, approver, reason, now))
    }

    fn expire_approvals(&self, now: SystemTime) -> Result<Vec<Approval>, StoreError> {
        self.done(self.expire_approvals_inner(now))
    }

    fn set_approval_entry(&self, id: &str, entry: u64) -> Result<(), StoreError> {
        self.done(self.set_approval_entry_inner(id, entry))
    }
}
