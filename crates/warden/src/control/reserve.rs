//! Budget reservations on the request path, combined: requests that ask to reserve while
//! another reservation is being written wait for it, then go together in one store transaction.
//!
//! Owns the queue and the rule for who writes it. It must not judge anything itself: every
//! verdict comes from [`Store::reserve`] or [`Store::reserve_batch`], which judge a batch
//! exactly as one call per request in queue order would, so combining changes how many
//! transactions the store runs, never whether a cap holds.
//!
//! # Who writes
//!
//! There is no thread of its own. The first request to arrive while nothing is being written
//! becomes the writer, on its own task. It yields to the scheduler once, so the tasks already
//! ready on its worker reach their own reservations and queue behind it, then writes its own
//! and the queued ones in one transaction. Alone on the gateway (concurrency 1) a reservation
//! costs one store call and a trip through the scheduler, with no hand-off between threads.
//! Requests that arrive while it writes queue and wait; it then writes the queue as one batch,
//! then the next queue, and so on until the queue is empty. After
//! [`INLINE_ROUNDS`] batches it hands the rest to a blocking thread, so a steady stream of
//! requests cannot keep one runtime worker writing reservations while its own tasks wait.
//!
//! # Nothing is lost
//!
//! - A waiting request that goes away (its client hung up) before its answer arrives does
//!   not leave money reserved: an answer that is never received gives its reservation back
//!   when it is dropped.
//! - If writing panics, the queue is emptied and every waiting request gets an error, and the
//!   next request starts writing again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;
use warden_state::{ReserveOutcome, ReserveRequest, Store};

/// Batches one writer runs on its runtime worker before handing the queue to a blocking
/// thread.
const INLINE_ROUNDS: usize = 4;

/// The combining queue of budget reservations (see the module doc).
pub struct Reserver {
    store: Arc<dyn Store>,
    queue: Mutex<Queue>,
    /// Transactions that carried queued reservations (a writer's own, alone, is not counted).
    batches: AtomicU64,
}

#[derive(Default)]
struct Queue {
    /// Someone is writing: new requests wait in `waiting`.
    busy: bool,
    waiting: Vec<Waiting>,
}

struct Waiting {
    request: ReserveRequest,
    reply: oneshot::Sender<Answer>,
}

/// A reservation's answer on its way to the request that asked. Dropped unread (the request
/// went away), it gives the reservation back.
struct Answer {
    outcome: Option<Result<ReserveOutcome, String>>,
    store: Arc<dyn Store>,
}

impl Answer {
    fn take(mut self) -> Result<ReserveOutcome, String> {
        self.outcome
            .take()
            .unwrap_or_else(|| Err("a budget reservation was answered twice".into()))
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        if let Some(Ok(ReserveOutcome::Reserved(r))) = self.outcome.take()
            && let Err(e) = self.store.release(r)
        {
            tracing::error!(
                "cannot give back the budget reservation of a request that went away: {e}"
            );
        }
    }
}

/// Held by whoever writes. If that ends early (the writer panicked, or its request was dropped
/// while it waited for others to queue), the queue is not left `busy` with nobody writing it.
struct Writing<'a> {
    reserver: &'a Arc<Reserver>,
    armed: bool,
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut q = self.reserver.lock();
        if std::thread::panicking() || q.waiting.is_empty() {
            q.busy = false;
            // Dropping the senders answers every waiter with an error.
            q.waiting.clear();
            return;
        }
        drop(q);
        // Cancelled with others waiting: someone has to write for them.
        self.reserver.hand_off();
    }
}

impl Reserver {
    /// A queue in front of `store`.
    pub fn new(store: Arc<dyn Store>) -> Arc<Reserver> {
        Arc::new(Reserver {
            store,
            queue: Mutex::new(Queue::default()),
            batches: AtomicU64::new(0),
        })
    }

    /// How many transactions carried queued reservations (see the module doc).
    pub fn batches(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        // The queue is consistent at every unlock: a panic elsewhere cannot break it.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// [`Store::reserve`], combined with whatever else is reserving. `Err` carries the store's
    /// failure as a message for the client.
    pub async fn reserve(
        self: &Arc<Self>,
        request: ReserveRequest,
    ) -> Result<ReserveOutcome, String> {
        // `Err`: nobody is writing, so this request writes (the lock is released first).
        let queued = {
            let mut q = self.lock();
            if q.busy {
                let (reply, answer) = oneshot::channel();
                q.waiting.push(Waiting { request, reply });
                Ok(answer)
            } else {
                q.busy = true;
                Err(request)
            }
        };
        let answer = match queued {
            Ok(answer) => answer,
            Err(request) => return self.write_first(request).await,
        };
        match answer.await {
            Ok(answer) => answer.take(),
            Err(_) => Err(
                "the budget reservation was abandoned because writing it failed; retry the request"
                    .into(),
            ),
        }
    }

    /// The writer's part: its own reservation, together with those that queued meanwhile,
    /// then the queue until it is empty.
    async fn write_first(
        self: &Arc<Self>,
        request: ReserveRequest,
    ) -> Result<ReserveOutcome, String> {
        let mut writing = Writing {
            reserver: self,
            armed: true,
        };
        // Let the tasks that are ready on this worker reach their own reservations first: they
        // queue behind this one and share its transaction. Alone, this costs a trip through
        // the scheduler, not a thread wake-up.
        tokio::task::yield_now().await;
        let queued = std::mem::take(&mut self.lock().waiting);
        let mine = self
            .write(Some(request), queued)
            .unwrap_or_else(|| Err("a budget reservation went unanswered".into()));
        self.drain(INLINE_ROUNDS);
        writing.armed = false;
        mine
    }

    /// Writes the queue in batches until it is empty, at most `rounds` batches here; then a
    /// blocking thread goes on (the queue stays `busy` throughout, so nothing is written
    /// twice or by two writers).
    fn drain(self: &Arc<Self>, rounds: usize) {
        for _ in 0..rounds {
            let batch = {
                let mut q = self.lock();
                if q.waiting.is_empty() {
                    q.busy = false;
                    return;
                }
                std::mem::take(&mut q.waiting)
            };
            self.write(None, batch);
        }
        self.hand_off();
    }

    /// Leaves the queue (still `busy`) to a blocking thread that drains it.
    fn hand_off(self: &Arc<Self>) {
        let me = self.clone();
        let drain = move || {
            let writing = Writing {
                reserver: &me,
                armed: true,
            };
            me.drain(usize::MAX);
            let mut writing = writing;
            writing.armed = false;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn_blocking(drain);
            }
            Err(_) => drain(),
        }
    }

    /// One transaction for `own` (answered as the return value) and then `batch` (answered on
    /// their channels), judged in that order. Counted as a batch when anyone queued.
    fn write(
        &self,
        own: Option<ReserveRequest>,
        batch: Vec<Waiting>,
    ) -> Option<Result<ReserveOutcome, String>> {
        if !batch.is_empty() {
            self.batches.fetch_add(1, Ordering::Relaxed);
        }
        let has_own = own.is_some();
        let mut requests = Vec::with_capacity(batch.len() + 1);
        requests.extend(own);
        let mut replies = Vec::with_capacity(batch.len());
        for w in batch {
            requests.push(w.request);
            replies.push(w.reply);
        }
        let outcomes: Vec<Result<ReserveOutcome, String>> =
            match self.store.reserve_batch(&requests) {
                Ok(all) => all
                    .into_iter()
                    .map(|r| r.map_err(|e| e.to_string()))
                    .collect(),
                Err(e) => {
                    let e = e.to_string();
                    requests.iter().map(|_| Err(e.clone())).collect()
                }
            };
        let mut outcomes = outcomes.into_iter();
        let mine = if has_own { outcomes.next() } else { None };
        for (reply, outcome) in replies.into_iter().zip(outcomes) {
            // A request that went away gets nothing; the returned answer drops and gives back
            // what it reserved.
            let _ = reply.send(Answer {
                outcome: Some(outcome),
                store: self.store.clone(),
            });
        }
        mine
    }
}

#[cfg(test)]
mod tests;
