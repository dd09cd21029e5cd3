//! Hot-path costs of the embedded store: what each request pays.
//!
//! `cargo bench -p warden-state --bench store`; medians are in
//! `target/criterion/<name>/new/estimates.json`.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use warden_state::{
    Cap, Charge, KillTarget, NewKey, Options, Period, Rate, ReserveOutcome, ReserveRequest, Scope,
    SqliteStore, Store, Subjects,
};

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("warden-state-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn subjects() -> Subjects {
    Subjects {
        tenant: Some("acme".into()),
        agent: Some("billing-bot".into()),
        session: Some("session-1".into()),
        key_id: Some("key_0123456789abcdef".into()),
    }
}

fn store(c: &mut Criterion) {
    let dir = scratch("store");
    let store = SqliteStore::open(&dir).unwrap();
    let now = SystemTime::now();

    // A gateway's typical request: two caps (agent per day, key total), the estimate reserved,
    // then settled into 15 reporting rows (5 subjects x 3 periods), one of which is a cap row.
    let caps = [
        Cap {
            name: "agents-daily".into(),
            scope: Scope::Agent,
            subject: "billing-bot".into(),
            period: Period::Day,
            limit_micros: i64::MAX / 2,
            soft_micros: None,
        },
        Cap {
            name: "key budget".into(),
            scope: Scope::Key,
            subject: "key_0123456789abcdef".into(),
            period: Period::Total,
            limit_micros: i64::MAX / 2,
            soft_micros: None,
        },
    ];
    let subjects = subjects();
    let charge = Charge {
        micros: Some(1_234),
        input_tokens: 900,
        output_tokens: 120,
        model: Some("gpt-4o".into()),
    };
    c.bench_function("reserve_settle", |b| {
        b.iter(|| {
            let ReserveOutcome::Reserved(r) = store.reserve(&caps, 20_000, now).unwrap() else {
                unreachable!()
            };
            black_box(store.settle(Some(r), &subjects, &charge, now).unwrap());
        })
    });

    // Reserving alone (one transaction each) against a batch of 32 in one transaction, as the
    // gateway's reserver writes them under load; per reservation. Never settled: the caps are
    // far from their limits.
    let mut group = c.benchmark_group("reserve");
    group.throughput(Throughput::Elements(1));
    group.bench_function("one_transaction_each", |b| {
        b.iter(|| black_box(store.reserve(&caps, 20_000, now).unwrap()))
    });
    let batch: Vec<ReserveRequest> = (0..32)
        .map(|_| ReserveRequest {
            caps: caps.to_vec(),
            amount: 20_000,
            at: now,
        })
        .collect();
    group.throughput(Throughput::Elements(32));
    group.bench_function("batch_of_32", |b| {
        b.iter(|| black_box(store.reserve_batch(&batch).unwrap()))
    });
    group.finish();

    // Authentication among a thousand keys: remembered (the gateway's case) and read from the
    // database every time.
    let mut secret = String::new();
    for i in 0..1_000 {
        let created = store.create_key(NewKey::default(), now).unwrap();
        if i == 500 {
            secret = created.secret;
        }
    }
    c.bench_function("authenticate", |b| {
        b.iter(|| black_box(store.authenticate(black_box(&secret), now).unwrap()))
    });
    let mut options = Options::default();
    options.key_refresh = Duration::ZERO;
    let uncached = SqliteStore::open_with(&dir, options).unwrap();
    c.bench_function("authenticate_from_database", |b| {
        b.iter(|| black_box(uncached.authenticate(black_box(&secret), now).unwrap()))
    });
    drop(uncached);

    // The kill check every request makes: nothing killed, then a miss among 100 kills.
    c.bench_function("killed_none", |b| {
        b.iter(|| black_box(store.killed(black_box(&subjects))))
    });
    for i in 0..100 {
        store
            .kill(
                KillTarget::Agent(format!("agent-{i}")),
                "bench",
                "bench",
                now,
            )
            .unwrap();
    }
    c.bench_function("killed_miss_of_100", |b| {
        b.iter(|| black_box(store.killed(black_box(&subjects))))
    });

    // 10 ns per unit and a minute of burst: every call updates the bucket, none is refused.
    let rate = Rate::new(6_000_000_000);
    let t0 = Instant::now();
    c.bench_function("rate_acquire", |b| {
        b.iter(|| black_box(store.rate_acquire("rule:1:agent:billing-bot:rpm", rate, 1, t0)))
    });

    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = store
}
criterion_main!(benches);
