//! The `state.db` schema, its migrations, and how every connection to it is configured.
//!
//! Owns the table definitions and the `schema_version` bookkeeping. It must not hold business
//! rules (what a reservation means lives in the parent module); a migration only reshapes data.
//!
//! Migrations are append-only: `MIGRATIONS[n]` takes the schema from version `n` to `n + 1`, and a
//! released entry is never edited. They run in one `BEGIN IMMEDIATE` transaction, so a gateway and
//! a CLI starting together cannot both migrate, and a crash mid-migration leaves the old schema.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};

use super::Fail;
use crate::StoreError;

/// How long a statement waits for another connection's write lock before failing with
/// `SQLITE_BUSY`. Write transactions here last microseconds, so hitting this means something
/// is wedged (a stuck process holding the file), not ordinary contention.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Statements kept prepared per connection: comfortably more than the distinct statements the
/// store issues, so the hot ones are never re-parsed.
const STATEMENT_CACHE: usize = 64;

const MIGRATIONS: &[&str] = &[
    // 1: keys, kills, spend.
    "
    CREATE TABLE keys (
        id            TEXT PRIMARY KEY,
        -- HMAC-SHA256(pepper, secret), lowercase hex; UNIQUE gives the lookup index.
        hash          TEXT NOT NULL UNIQUE,
        tenant        TEXT,
        agent         TEXT,
        name          TEXT,
        -- JSON array of model globs; [] means any model.
        models        TEXT NOT NULL,
        rpm           INTEGER,
        tpm           INTEGER,
        budget_micros INTEGER,
        budget_period TEXT NOT NULL,
        created_at    INTEGER NOT NULL,
        expires_at    INTEGER,
        revoked_at    INTEGER
    ) STRICT;

    CREATE TABLE kills (
        kind   TEXT NOT NULL,
        -- '' for kind 'all'.
        id     TEXT NOT NULL,
        reason TEXT NOT NULL,
        actor  TEXT NOT NULL,
        at     INTEGER NOT NULL,
        PRIMARY KEY (kind, id)
    ) STRICT, WITHOUT ROWID;

    -- One row per subject and period bucket; caps read the same rows reporting writes.
    CREATE TABLE spend (
        scope             TEXT NOT NULL,
        subject           TEXT NOT NULL,
        period            TEXT NOT NULL,
        bucket            TEXT NOT NULL,
        spent_micros      INTEGER NOT NULL DEFAULT 0,
        reserved_micros   INTEGER NOT NULL DEFAULT 0,
        requests          INTEGER NOT NULL DEFAULT 0,
        input_tokens      INTEGER NOT NULL DEFAULT 0,
        output_tokens     INTEGER NOT NULL DEFAULT 0,
        unpriced_requests INTEGER NOT NULL DEFAULT 0,
        last_at           INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (scope, subject, period, bucket)
    ) STRICT, WITHOUT ROWID;
    ",
    // 2: approvals.
    "
    -- Tool calls held for a human. Times are Unix milliseconds. A rowid table, so listing can
    -- break ties in creation order.
    CREATE TABLE approvals (
        id              TEXT PRIMARY KEY,
        created_at      INTEGER NOT NULL,
        expires_at      INTEGER NOT NULL,
        status          TEXT NOT NULL
                        CHECK (status IN ('pending', 'approved', 'denied', 'expired')),
        tenant          TEXT,
        agent           TEXT,
        session         TEXT,
        key_id          TEXT,
        provider        TEXT NOT NULL,
        model           TEXT NOT NULL,
        tool            TEXT NOT NULL,
        -- Redacted JSON text as the caller gave it (bounded, possibly truncated).
        arguments       TEXT NOT NULL,
        rule            TEXT NOT NULL,
        reason          TEXT NOT NULL,
        -- Ledger index of the request's entry, set after the entry is written.
        entry           INTEGER,
        decided_at      INTEGER,
        approver        TEXT,
        decision_reason TEXT
    ) STRICT;

    -- The expiry sweep and the pending list.
    CREATE INDEX approvals_status_expires ON approvals (status, expires_at);
    ",
];

/// The schema version this build writes.
pub(super) const VERSION: i64 = MIGRATIONS.len() as i64;

/// Opens a connection with the settings every connection shares. `writer` connections also
/// switch the file to WAL (a persistent property of the database, so readers inherit it);
/// readers are `query_only`, so a bug cannot make them write outside the writer's transactions.
pub(super) fn connect(path: &Path, writer: bool) -> Result<Connection, Fail> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    if writer {
        enable_wal(&conn, path)?;
    } else {
        conn.pragma_update(None, "query_only", true)?;
    }
    // In WAL mode NORMAL syncs at checkpoints, not at each commit: a power cut can lose the last
    // few commits (spend of the last requests), never corrupt the file. That trade is what
    // keeps reserve + settle in the tens of microseconds.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

/// Switches the file to WAL, which lets the gateway's readers (authenticate, kill refresh) run
/// while a write commits, and lets a CLI read without blocking the gateway.
///
/// SQLite answers a journal-mode change with `SQLITE_BUSY` at once, bypassing the busy handler,
/// while another connection has the file open in rollback mode: exactly what happens when a
/// gateway and a CLI open a brand-new data directory together. So this one step retries by hand,
/// within the same budget as the busy timeout. Once the file is in WAL mode the pragma is a
/// no-op that never conflicts.
fn enable_wal(conn: &Connection, path: &Path) -> Result<(), Fail> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)) {
            Ok(mode) if mode.eq_ignore_ascii_case("wal") => return Ok(()),
            Ok(mode) => {
                return Err(Fail::Store(StoreError::Corrupt(format!(
                    "{} refused WAL mode (journal_mode is {mode})",
                    path.display()
                ))));
            }
            Err(e)
                if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy)
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Brings the database to [`VERSION`], refusing one written by a newer build.
pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), Fail> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL) STRICT",
    )?;
    let found: i64 = tx.query_row(
        "SELECT coalesce(max(version), 0) FROM schema_version",
        [],
        |r| r.get(0),
    )?;
    if found < 0 {
        return Err(Fail::Store(StoreError::Corrupt(format!(
            "{} has schema version {found}",
            path.display()
        ))));
    }
    if found > VERSION {
        return Err(Fail::Store(StoreError::SchemaTooNew {
            path: path.to_owned(),
            found,
            supported: VERSION,
        }));
    }
    if found == VERSION {
        return Ok(());
    }
    for migration in &MIGRATIONS[found as usize..] {
        tx.execute_batch(migration)?;
    }
    tx.execute("DELETE FROM schema_version", [])?;
    tx.execute(
        "INSERT INTO schema_version (version) VALUES (?1)",
        [VERSION],
    )?;
    tx.commit()?;
    Ok(())
}
