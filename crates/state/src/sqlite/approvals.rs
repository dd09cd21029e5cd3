//! The SQL behind approvals: the queue of tool calls held for a human.
//!
//! Owns the `approvals` table's reads and writes and the size bounds on what goes into it. It
//! must not cache anything (another process, the CLI, decides while the gateway waits, so every
//! read asks SQLite) and must not decide anything on its own except expiry: an approval past its
//! deadline is expired, never approved.
//!
//! Times are Unix milliseconds in the table. Reads report a pending row past its deadline as
//! expired exactly as [`Store::expire_approvals`](crate::Store::expire_approvals) would store it
//! (decided at its deadline, reason `"timed out"`), so a record looks the same before and after
//! the sweep. Reads do not write that expiry back: the sweep is what reports each timeout once.

use std::time::SystemTime;

use rusqlite::{Connection, ErrorCode, OptionalExtension as _, Row, TransactionBehavior, params};

use super::{Fail, SqliteStore, conversion, from_sql_int, invalid, lock, to_sql_int};
use crate::keys;
use crate::time::{from_unix_millis, unix_millis};
use crate::{
    Approval, ApprovalFilter, ApprovalStatus, DecideOutcome, Decision, NewApproval, StoreError,
};

/// Prefix of every approval id.
const ID_PREFIX: &str = "apr_";

/// The decision reason of an approval nobody decided in time.
const TIMED_OUT: &str = "timed out";

const COLUMNS: &str = "id, created_at, expires_at, status, tenant, agent, session, key_id,
     provider, model, tool, arguments, rule, reason, entry, decided_at, approver, decision_reason";

/// Marks overdue pending rows expired. The caller appends the `WHERE` that picks the rows.
const EXPIRE: &str = "UPDATE approvals
     SET status = 'expired', decided_at = expires_at, decision_reason = 'timed out'";

/// `s` if it fits in `max` bytes, else its longest prefix (at a character boundary) that leaves
/// room for a `…[truncated from N bytes]` marker, plus the marker.
fn bounded(s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let marker = format!("…[truncated from {} bytes]", s.len());
    let mut keep = max.saturating_sub(marker.len());
    while !s.is_char_boundary(keep) {
        keep -= 1;
    }
    let mut out = String::with_capacity(keep + marker.len());
    out.push_str(&s[..keep]);
    out.push_str(&marker);
    out
}

/// An optional label: `None` when empty, else bounded.
fn label(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
        .map(|s| bounded(s, NewApproval::MAX_LABEL))
}

fn status_col(row: &Row<'_>, idx: usize) -> rusqlite::Result<ApprovalStatus> {
    let s: String = row.get(idx)?;
    ApprovalStatus::parse(&s).ok_or_else(|| conversion(idx, format!("unknown status {s:?}")))
}

fn time_col(row: &Row<'_>, idx: usize) -> rusqlite::Result<SystemTime> {
    Ok(from_unix_millis(from_sql_int(row.get(idx)?)))
}

/// A row as stored, before any expiry view is applied.
fn approval_row(row: &Row<'_>) -> rusqlite::Result<Approval> {
    Ok(Approval {
        id: row.get(0)?,
        created_at: time_col(row, 1)?,
        expires_at: time_col(row, 2)?,
        status: status_col(row, 3)?,
        tenant: row.get(4)?,
        agent: row.get(5)?,
        session: row.get(6)?,
        key_id: row.get(7)?,
        provider: row.get(8)?,
        model: row.get(9)?,
        tool: row.get(10)?,
        arguments: row.get(11)?,
        rule: row.get(12)?,
        reason: row.get(13)?,
        entry: row.get::<_, Option<i64>>(14)?.map(from_sql_int),
        decided_at: row
            .get::<_, Option<i64>>(15)?
            .map(|ms| from_unix_millis(from_sql_int(ms))),
        approver: row.get(16)?,
        decision_reason: row.get(17)?,
    })
}

/// Whether a pending approval's deadline has come at `now_ms`.
fn overdue(a: &Approval, now_ms: u64) -> bool {
    a.status == ApprovalStatus::Pending && now_ms >= unix_millis(a.expires_at)
}

/// The approval as of `now_ms`: an overdue pending one reads exactly as the sweep stores it.
fn as_of(mut a: Approval, now_ms: u64) -> Approval {
    if overdue(&a, now_ms) {
        a.status = ApprovalStatus::Expired;
        a.decided_at = Some(a.expires_at);
        a.decision_reason = Some(TIMED_OUT.to_owned());
    }
    a
}

fn read_one(conn: &Connection, id: &str) -> Result<Option<Approval>, Fail> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM approvals WHERE id = ?1"))?
        .query_row([id], approval_row)
        .optional()?)
}

impl SqliteStore {
    pub(super) fn create_approval_inner(
        &self,
        new: NewApproval,
        now: SystemTime,
    ) -> Result<Approval, Fail> {
        if new.ttl.is_zero() {
            return Err(invalid("an approval's ttl must be positive"));
        }
        let created_ms = unix_millis(now);
        let ttl_ms = u64::try_from(new.ttl.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
        // Clamped to what the INTEGER column holds, so the record returned is the one stored.
        let expires_ms = created_ms
            .saturating_add(ttl_ms)
            .min(i64::MAX.unsigned_abs());
        let mut approval = Approval {
            id: String::new(),
            created_at: from_unix_millis(created_ms),
            expires_at: from_unix_millis(expires_ms),
            status: ApprovalStatus::Pending,
            tenant: label(new.tenant),
            agent: label(new.agent),
            session: label(new.session),
            key_id: label(new.key_id),
            provider: bounded(new.provider, NewApproval::MAX_LABEL),
            model: bounded(new.model, NewApproval::MAX_LABEL),
            tool: bounded(new.tool, NewApproval::MAX_LABEL),
            arguments: bounded(new.arguments, NewApproval::MAX_ARGUMENTS),
            rule: bounded(new.rule, NewApproval::MAX_LABEL),
            reason: bounded(new.reason, NewApproval::MAX_REASON),
            entry: None,
            decided_at: None,
            approver: None,
            decision_reason: None,
        };
        let conn = lock(&self.writer);
        // 64 random bits: a clash is (astronomically) a collision, and drawing again is the fix.
        for _ in 0..3 {
            approval.id = keys::random_id(ID_PREFIX)?;
            let inserted = conn
                .prepare_cached(
                    "INSERT INTO approvals (id, created_at, expires_at, status, tenant, agent,
                         session, key_id, provider, model, tool, arguments, rule, reason)
                     VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                )?
                .execute(params![
                    approval.id,
                    to_sql_int(created_ms),
                    to_sql_int(expires_ms),
                    approval.tenant,
                    approval.agent,
                    approval.session,
                    approval.key_id,
                    approval.provider,
                    approval.model,
                    approval.tool,
                    approval.arguments,
                    approval.rule,
                    approval.reason,
                ]);
            match inserted {
                Ok(_) => return Ok(approval),
                Err(e) if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(Fail::Store(StoreError::Corrupt(
            "three random approval ids in a row collided with existing approvals".into(),
        )))
    }

    pub(super) fn approval_inner(
        &self,
        id: &str,
        now: SystemTime,
    ) -> Result<Option<Approval>, Fail> {
        let now_ms = unix_millis(now);
        let conn = self.reader();
        Ok(read_one(&conn, id)?.map(|a| as_of(a, now_ms)))
    }

    pub(super) fn list_approvals_inner(
        &self,
        filter: &ApprovalFilter,
        now: SystemTime,
    ) -> Result<Vec<Approval>, Fail> {
        let now_ms = unix_millis(now);
        let now_sql = to_sql_int(now_ms);
        let mut sql = format!("SELECT {COLUMNS} FROM approvals");
        let mut args: Vec<&dyn rusqlite::ToSql> = Vec::new();
        // The filter applies to the status as of `now`, which for pending rows depends on the
        // deadline; each status is its own cached statement.
        let status = filter.status.map(ApprovalStatus::name);
        match filter.status {
            None => {}
            Some(ApprovalStatus::Pending) => {
                sql.push_str(" WHERE status = 'pending' AND expires_at > ?");
                args.push(&now_sql);
            }
            Some(ApprovalStatus::Expired) => {
                sql.push_str(
                    " WHERE status = 'expired' OR (status = 'pending' AND expires_at <= ?)",
                );
                args.push(&now_sql);
            }
            Some(ApprovalStatus::Approved | ApprovalStatus::Denied) => {
                sql.push_str(" WHERE status = ?");
                args.push(&status);
            }
        }
        sql.push_str(" ORDER BY created_at DESC, rowid DESC LIMIT ?");
        let limit = filter
            .limit
            .map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
        args.push(&limit);
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt
            .query_map(args.as_slice(), approval_row)?
            .map(|r| r.map(|a| as_of(a, now_ms)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    pub(super) fn decide_approval_inner(
        &self,
        id: &str,
        decision: Decision,
        approver: &str,
        reason: Option<&str>,
        now: SystemTime,
    ) -> Result<DecideOutcome, Fail> {
        if approver.is_empty() {
            return Err(invalid("an approval decision needs an approver"));
        }
        let approver = bounded(approver.to_owned(), NewApproval::MAX_LABEL);
        let reason = reason
            .filter(|r| !r.is_empty())
            .map(|r| bounded(r.to_owned(), NewApproval::MAX_REASON));
        let now_ms = unix_millis(now);

        let mut conn = lock(&self.writer);
        // IMMEDIATE: the status read and the update it justifies happen under the write lock, so
        // a decider in another process cannot slip in between.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(current) = read_one(&tx, id)? else {
            return Ok(DecideOutcome::NotFound);
        };
        if current.status != ApprovalStatus::Pending {
            return Ok(DecideOutcome::AlreadyDecided(current));
        }
        let outcome = if overdue(&current, now_ms) {
            let expired = tx
                .prepare_cached(&format!("{EXPIRE} WHERE id = ?1 RETURNING {COLUMNS}"))?
                .query_row([id], approval_row)?;
            DecideOutcome::AlreadyDecided(expired)
        } else {
            let decided = tx
                .prepare_cached(&format!(
                    "UPDATE approvals
                     SET status = ?2, decided_at = ?3, approver = ?4, decision_reason = ?5
                     WHERE id = ?1 RETURNING {COLUMNS}"
                ))?
                .query_row(
                    params![
                        id,
                        decision.status().name(),
                        to_sql_int(now_ms),
                        approver,
                        reason
                    ],
                    approval_row,
                )?;
            DecideOutcome::Decided(decided)
        };
        tx.commit()?;
        Ok(outcome)
    }

    pub(super) fn expire_approvals_inner(&self, now: SystemTime) -> Result<Vec<Approval>, Fail> {
        let conn = lock(&self.writer);
        // One statement is atomic on its own; the (status, expires_at) index finds the rows.
        let mut expired = conn
            .prepare_cached(&format!(
                "{EXPIRE} WHERE status = 'pending' AND expires_at <= ?1 RETURNING {COLUMNS}"
            ))?
            .query_map([to_sql_int(unix_millis(now))], approval_row)?
            .collect::<Result<Vec<_>, _>>()?;
        // RETURNING order is unspecified.
        expired.sort_by(|a, b| {
            (a.expires_at, a.created_at, &a.id).cmp(&(b.expires_at, b.created_at, &b.id))
        });
        Ok(expired)
    }

    pub(super) fn set_approval_entry_inner(&self, id: &str, entry: u64) -> Result<(), Fail> {
        let conn = lock(&self.writer);
        let changed = conn
            .prepare_cached("UPDATE approvals SET entry = ?2 WHERE id = ?1")?
            .execute(params![id, to_sql_int(entry)])?;
        if changed == 0 {
            return Err(invalid(format!("no approval {id:?}")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_text_keeps_short_strings_and_marks_cuts() {
        assert_eq!(bounded("short".into(), 16), "short");
        assert_eq!(bounded("x".repeat(16), 16), "x".repeat(16));
        let cut = bounded("x".repeat(100), 40);
        assert!(cut.len() <= 40, "{cut}");
        assert!(cut.ends_with("…[truncated from 100 bytes]"), "{cut}");
        assert!(cut.starts_with("xxxxxxxxxx"), "{cut}");
        // Never splits a character: 'é' is two bytes, so an odd cut point moves back one.
        for max in 40..60 {
            let cut = bounded("é".repeat(100), max);
            assert!(cut.len() <= max, "{max}: {cut}");
            assert!(cut.starts_with('é'), "{max}: {cut}");
        }
    }

    #[test]
    fn labels_drop_empty_strings() {
        assert_eq!(label(Some(String::new())), None);
        assert_eq!(label(None), None);
        assert_eq!(label(Some("bot".into())), Some("bot".into()));
    }
}
