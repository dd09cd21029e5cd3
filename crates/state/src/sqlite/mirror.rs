//! The in-memory mirror of the `kills` table that answers [`Store::killed`](crate::Store::killed).
//!
//! Owns the mirror and the rule for keeping it fresh. It must not be on the request path's
//! critical section with SQLite: a request reads the mirror under a read lock, and at most one
//! request per refresh interval spends a few microseconds asking SQLite whether anything changed.
//!
//! # Propagation
//!
//! - A kill or unkill made through this `SqliteStore` is in the mirror before the call returns.
//! - A kill made by another process (or another `SqliteStore` on the same directory) is seen by
//!   the first [`killed`](crate::Store::killed) call at least `refresh` after the previous check:
//!   in a gateway under traffic that is within `refresh` (250 ms by default) of the commit. The
//!   check is `PRAGMA data_version` on a dedicated connection, which changes whenever any other
//!   connection commits, so an unchanged database costs one tiny query and no reload.
//!
//! If that check fails (the disk went away), the last mirror keeps answering: kills that were
//! known stay in force, and the next check tries again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError, RwLock, TryLockError};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::Fail;
use crate::{KillRecord, KillTarget, Subjects};

/// Active kills, indexed so a lookup borrows the request's strings instead of building a
/// [`KillTarget`] per subject.
#[derive(Debug, Default)]
struct KillSet {
    all: Option<KillRecord>,
    tenant: HashMap<String, KillRecord>,
    agent: HashMap<String, KillRecord>,
    session: HashMap<String, KillRecord>,
    key: HashMap<String, KillRecord>,
}

impl KillSet {
    fn map(&mut self, target: &KillTarget) -> Option<&mut HashMap<String, KillRecord>> {
        match target {
            KillTarget::All => None,
            KillTarget::Tenant(_) => Some(&mut self.tenant),
            KillTarget::Agent(_) => Some(&mut self.agent),
            KillTarget::Session(_) => Some(&mut self.session),
            KillTarget::Key(_) => Some(&mut self.key),
        }
    }

    fn insert(&mut self, record: KillRecord) {
        match (
            record.target.id().map(str::to_owned),
            self.map(&record.target),
        ) {
            (Some(id), Some(map)) => {
                map.insert(id, record);
            }
            _ => self.all = Some(record),
        }
    }

    fn remove(&mut self, target: &KillTarget) {
        match (target.id(), self.map(target)) {
            (Some(id), Some(map)) => {
                map.remove(id);
            }
            _ => self.all = None,
        }
    }

    fn find(&self, s: &Subjects) -> Option<&KillRecord> {
        fn look<'a>(
            map: &'a HashMap<String, KillRecord>,
            id: &Option<String>,
        ) -> Option<&'a KillRecord> {
            id.as_deref()
                .filter(|id| !id.is_empty())
                .and_then(|id| map.get(id))
        }
        self.all
            .as_ref()
            .or_else(|| look(&self.tenant, &s.tenant))
            .or_else(|| look(&self.agent, &s.agent))
            .or_else(|| look(&self.session, &s.session))
            .or_else(|| look(&self.key, &s.key_id))
    }
}

/// The dedicated connection that watches for other writers, and the version it last saw.
struct Watch {
    conn: Connection,
    data_version: i64,
}

pub(super) struct KillMirror {
    set: RwLock<KillSet>,
    /// Also serializes every mirror update, so a refresh that read the table before a local
    /// kill committed cannot overwrite the mirror after that kill was applied.
    watch: Mutex<Watch>,
    refresh: Duration,
    epoch: Instant,
    /// Nanoseconds after `epoch` when the next check is due; claimed by compare-exchange so
    /// that exactly one request per interval does the check.
    next_check: AtomicU64,
}

impl std::fmt::Debug for KillMirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KillMirror")
            .field("refresh", &self.refresh)
            .finish_non_exhaustive()
    }
}

impl KillMirror {
    pub(super) fn new(conn: Connection, refresh: Duration) -> Result<Self, Fail> {
        let mut watch = Watch {
            conn,
            data_version: 0,
        };
        let set = load(&mut watch)?;
        Ok(Self {
            set: RwLock::new(set),
            watch: Mutex::new(watch),
            refresh,
            epoch: Instant::now(),
            next_check: AtomicU64::new(0),
        })
    }

    /// The first kill matching `subjects`, refreshing from the database first if a check is due.
    pub(super) fn killed(&self, subjects: &Subjects) -> Option<KillRecord> {
        self.maybe_refresh();
        let set = self.set.read().unwrap_or_else(PoisonError::into_inner);
        set.find(subjects).cloned()
    }

    fn maybe_refresh(&self) {
        let now = self.nanos_since_epoch();
        let due = self.next_check.load(Ordering::Relaxed);
        if now < due {
            return;
        }
        let next = now.saturating_add(u64::try_from(self.refresh.as_nanos()).unwrap_or(u64::MAX));
        if self
            .next_check
            .compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return; // another request claimed this check
        }
        // Never wait on the watch lock here: whoever holds it is already updating the mirror.
        let mut watch = match self.watch.try_lock() {
            Ok(w) => w,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        // On failure the previous mirror stays authoritative; see the module docs.
        let _ = self.refresh_locked(&mut watch, false);
    }

    /// Reloads the mirror now, whether or not the database reports a change.
    pub(super) fn reload(&self) -> Result<(), Fail> {
        let mut watch = self.watch.lock().unwrap_or_else(PoisonError::into_inner);
        self.refresh_locked(&mut watch, true)
    }

    fn refresh_locked(&self, watch: &mut Watch, force: bool) -> Result<(), Fail> {
        let version = data_version(&watch.conn)?;
        if !force && version == watch.data_version {
            return Ok(());
        }
        let set = load(watch)?;
        *self.set.write().unwrap_or_else(PoisonError::into_inner) = set;
        Ok(())
    }

    /// Applies a change this process just committed. Runs under the watch lock; see `watch`.
    pub(super) fn apply(&self, record: Option<KillRecord>, removed: Option<&KillTarget>) {
        let _watch = self.watch.lock().unwrap_or_else(PoisonError::into_inner);
        let mut set = self.set.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(target) = removed {
            set.remove(target);
        }
        if let Some(record) = record {
            set.insert(record);
        }
    }

    fn nanos_since_epoch(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

fn data_version(conn: &Connection) -> Result<i64, Fail> {
    Ok(conn
        .prepare_cached("PRAGMA data_version")?
        .query_row([], |r| r.get(0))?)
}

/// Reads the whole table. The version is read first: a commit landing between the two reads
/// then shows up as a changed version at the next check, instead of being missed.
fn load(watch: &mut Watch) -> Result<KillSet, Fail> {
    let version = data_version(&watch.conn)?;
    let mut set = KillSet::default();
    for record in super::all_kills(&watch.conn)? {
        set.insert(record);
    }
    watch.data_version = version;
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(target: KillTarget) -> KillRecord {
        KillRecord {
            target,
            reason: "r".into(),
            actor: "a".into(),
            at: 1,
        }
    }

    #[test]
    fn find_prefers_the_broadest_kill_and_ignores_empty_subjects() {
        let mut set = KillSet::default();
        let s = Subjects {
            tenant: Some("acme".into()),
            agent: Some("bot".into()),
            session: Some(String::new()),
            key_id: None,
        };
        assert!(set.find(&s).is_none());
        set.insert(rec(KillTarget::Agent("bot".into())));
        set.insert(rec(KillTarget::Session(String::new())));
        assert_eq!(
            set.find(&s).unwrap().target,
            KillTarget::Agent("bot".into())
        );
        set.insert(rec(KillTarget::Tenant("acme".into())));
        assert_eq!(
            set.find(&s).unwrap().target,
            KillTarget::Tenant("acme".into())
        );
        set.insert(rec(KillTarget::All));
        assert_eq!(
            set.find(&Subjects::default()).unwrap().target,
            KillTarget::All
        );
        set.remove(&KillTarget::All);
        set.remove(&KillTarget::Tenant("acme".into()));
        assert_eq!(
            set.find(&s).unwrap().target,
            KillTarget::Agent("bot".into())
        );
        assert!(set.find(&Subjects::default()).is_none());
    }
}
