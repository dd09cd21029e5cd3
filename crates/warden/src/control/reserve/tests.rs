use std::time::{Duration, SystemTime};

use warden_state::{Cap, Period, Scope, SqliteStore};

use super::*;

const DOLLAR: i64 = 1_000_000;

struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn store(tag: &str) -> (Scratch, Arc<dyn Store>) {
    let dir = std::env::temp_dir().join(format!("warden-reserve-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = SqliteStore::open(&dir).expect("store");
    (Scratch(dir), Arc::new(store))
}

fn daily() -> Cap {
    Cap {
        name: "agent-daily".into(),
        scope: Scope::Agent,
        subject: "bot".into(),
        period: Period::Day,
        limit_micros: DOLLAR,
        soft_micros: None,
    }
}

fn request(amount: i64) -> ReserveRequest {
    ReserveRequest {
        caps: vec![daily()],
        amount,
        at: SystemTime::now(),
    }
}

fn reserved_now(store: &dyn Store) -> i64 {
    store
        .cap_status(&[daily()], SystemTime::now())
        .expect("status")[0]
        .reserved_micros
}

/// Waits (bounded) until `n` requests are queued behind the writer.
async fn queued(reserver: &Reserver, n: usize) {
    for _ in 0..2_000 {
        if reserver.lock().waiting.len() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!(
        "expected {n} queued reservations, have {}",
        reserver.lock().waiting.len()
    );
}

fn verdict(outcome: &Result<ReserveOutcome, String>) -> String {
    match outcome {
        Ok(ReserveOutcome::Reserved(r)) => format!("reserved {}", r.amount()),
        Ok(ReserveOutcome::Exceeded(st)) => format!("exceeded at {}", st.reserved_micros),
        Err(e) => format!("error {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alone_a_request_writes_its_own_reservation_without_a_batch() {
    let (_dir, store) = store("alone");
    let reserver = Reserver::new(store.clone());
    let outcome = reserver.reserve(request(300_000)).await;
    assert_eq!(verdict(&outcome), "reserved 300000");
    assert_eq!(reserver.batches(), 0);
    assert!(!reserver.lock().busy);
    assert_eq!(reserved_now(store.as_ref()), 300_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_that_queue_are_written_as_one_batch_judged_in_order() {
    let (_dir, store) = store("batch");
    let reserver = Reserver::new(store.clone());
    // Someone is writing: everything that arrives now queues.
    reserver.lock().busy = true;
    let mut tasks = Vec::new();
    for amount in [300_000, 300_000, 300_000, 300_000, 100_000] {
        let r = reserver.clone();
        tasks.push(tokio::spawn(
            async move { r.reserve(request(amount)).await },
        ));
        // One at a time, so the queue order is the order above.
        queued(&reserver, tasks.len()).await;
    }
    reserver.drain(INLINE_ROUNDS);
    let mut verdicts = Vec::new();
    for t in tasks {
        verdicts.push(verdict(&t.await.expect("task")));
    }
    assert_eq!(
        verdicts,
        [
            "reserved 300000",
            "reserved 300000",
            "reserved 300000",
            "exceeded at 900000",
            "reserved 100000"
        ]
    );
    assert_eq!(reserver.batches(), 1);
    assert!(!reserver.lock().busy);
    assert_eq!(reserved_now(store.as_ref()), DOLLAR);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_went_away_while_queued_leaves_nothing_reserved() {
    let (_dir, store) = store("gone");
    let reserver = Reserver::new(store.clone());
    reserver.lock().busy = true;
    let r = reserver.clone();
    let gone = tokio::spawn(async move { r.reserve(request(400_000)).await });
    queued(&reserver, 1).await;
    let r = reserver.clone();
    let stays = tokio::spawn(async move { r.reserve(request(250_000)).await });
    queued(&reserver, 2).await;
    gone.abort();
    assert!(gone.await.expect_err("aborted").is_cancelled());
    reserver.drain(INLINE_ROUNDS);
    assert_eq!(
        verdict(&stays.await.expect("task")),
        "reserved 250000",
        "the one that stayed was judged after the one that went away"
    );
    // The batch reserved both; the answer nobody read gave its 400,000 back.
    assert_eq!(reserved_now(store.as_ref()), 250_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_tasks_reserve_exactly_what_the_cap_allows() {
    let (_dir, store) = store("many");
    let reserver = Reserver::new(store.clone());
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let r = reserver.clone();
            tokio::spawn(async move {
                let mut got = 0u32;
                // At most 50 can fit in total; each task stops at its first refusal.
                loop {
                    match r.reserve(request(20_000)).await {
                        Ok(ReserveOutcome::Reserved(_)) => got += 1,
                        Ok(ReserveOutcome::Exceeded(_)) => return got,
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("task");
    }
    // Reservations are never settled here, so exactly $1 / $0.02 of them fit.
    assert_eq!(total, 50);
    assert_eq!(reserved_now(store.as_ref()), DOLLAR);
    assert!(!reserver.lock().busy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_dropped_before_writing_hands_the_queue_on() {
    let (_dir, store) = store("handoff");
    let reserver = Reserver::new(store.clone());
    // The state a writer is in while it yields for others to queue: busy, and one waiting.
    reserver.lock().busy = true;
    let r = reserver.clone();
    let waiting = tokio::spawn(async move { r.reserve(request(150_000)).await });
    queued(&reserver, 1).await;
    // The writer's request is dropped there (its client hung up).
    drop(Writing {
        reserver: &reserver,
        armed: true,
    });
    let outcome = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the waiting request was answered")
        .expect("task");
    assert_eq!(verdict(&outcome), "reserved 150000");
    assert_eq!(reserved_now(store.as_ref()), 150_000);
    // And the next request finds nobody writing, so it writes.
    for _ in 0..2_000 {
        if !reserver.lock().busy {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(
        verdict(&reserver.reserve(request(50_000)).await),
        "reserved 50000"
    );
}
