//! Helpers shared by the integration tests: scratch directories and fixed clocks.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use warden_state::{Options, SqliteStore};

/// A directory under the system temp dir, removed on drop.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Self {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "warden-state-{name}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        Scratch(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn open(&self) -> SqliteStore {
        SqliteStore::open(&self.0).expect("open store")
    }

    /// A store that checks for other processes' kills on every `killed` call.
    pub fn open_eager(&self) -> SqliteStore {
        let mut options = Options::default();
        options.kill_refresh = Duration::ZERO;
        SqliteStore::open_with(&self.0, options).expect("open store")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// 2026-11-21T12:00:00Z, the tests' "now".
pub const NOON: u64 = 1_795_262_400;

pub fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

pub fn noon() -> SystemTime {
    at(NOON)
}
