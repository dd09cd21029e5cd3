//! Request and stream counters shared by every connection, observable by tests.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters observable by tests (also served as JSON at `GET /mock/stats`).
///
/// Every counter is a relaxed atomic: readers want totals, not an ordering between counters.
#[derive(Debug, Default)]
pub struct MockStats {
    requests: AtomicU64,
    streams_started: AtomicU64,
    streams_completed: AtomicU64,
    streams_cancelled: AtomicU64,
}

/// A point-in-time copy of [`MockStats`].
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Requests received on provider routes (everything but `/mock/...`), errors included.
    pub requests: u64,
    /// Streaming responses whose body was created.
    pub streams_started: u64,
    /// Streams whose last chunk was handed to the connection.
    pub streams_completed: u64,
    /// Streams whose body was dropped before the last chunk was sent: the client went away.
    pub streams_cancelled: u64,
}

impl MockStats {
    /// Reads every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            streams_started: self.streams_started.load(Ordering::Relaxed),
            streams_completed: self.streams_completed.load(Ordering::Relaxed),
            streams_cancelled: self.streams_cancelled.load(Ordering::Relaxed),
        }
    }

    /// Zeroes every counter (what `POST /mock/reset` does).
    pub fn reset(&self) {
        self.requests.store(0, Ordering::Relaxed);
        self.streams_started.store(0, Ordering::Relaxed);
        self.streams_completed.store(0, Ordering::Relaxed);
        self.streams_cancelled.store(0, Ordering::Relaxed);
    }

    pub(crate) fn record_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_stream_started(&self) {
        self.streams_started.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_stream_completed(&self) {
        self.streams_completed.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_stream_cancelled(&self) {
        self.streams_cancelled.fetch_add(1, Ordering::Relaxed);
    }
}
