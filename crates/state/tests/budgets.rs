//! Budgets and spend: atomic reservation under contention, settlement, periods, reporting.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

use common::{NOON, Scratch, at, noon};
use warden_state::{
    Cap, CapStatus, Charge, Micros, Period, Reservation, ReserveOutcome, ReserveRequest, Scope,
    SpendFilter, SpendRow, SqliteStore, Store, StoreError, Subjects,
};

const DOLLAR: Micros = 1_000_000;

fn cap(name: &str, scope: Scope, subject: &str, period: Period, limit: Micros) -> Cap {
    Cap {
        name: name.into(),
        scope,
        subject: subject.into(),
        period,
        limit_micros: limit,
        soft_micros: None,
    }
}

fn bot() -> Subjects {
    Subjects {
        tenant: Some("acme".into()),
        agent: Some("bot".into()),
        session: Some("s1".into()),
        key_id: Some("key_0123456789abcdef".into()),
    }
}

fn priced(micros: Micros) -> Charge {
    Charge {
        micros: Some(micros),
        input_tokens: 100,
        output_tokens: 10,
        model: Some("gpt-4o".into()),
    }
}

fn reserved(outcome: ReserveOutcome) -> Reservation {
    match outcome {
        ReserveOutcome::Reserved(r) => r,
        ReserveOutcome::Exceeded(st) => panic!("unexpectedly exceeded: {st:?}"),
    }
}

fn exceeded(outcome: ReserveOutcome) -> CapStatus {
    match outcome {
        ReserveOutcome::Exceeded(st) => st,
        ReserveOutcome::Reserved(r) => panic!("unexpectedly reserved: {r:?}"),
    }
}

fn row(store: &SqliteStore, scope: Scope, subject: &str, period: Period, bucket: &str) -> SpendRow {
    let rows = store
        .spend(&SpendFilter {
            scope: Some(scope),
            subject: Some(subject.into()),
            period: Some(period),
            limit: 0,
        })
        .unwrap();
    rows.into_iter()
        .find(|r| r.bucket == bucket)
        .unwrap_or_else(|| panic!("no row {scope} {subject:?} {period} {bucket}"))
}

/// A small deterministic PRNG (xorshift64*), so the tests need no extra crate.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// 64 threads, spread over `stores` (one per simulated process), each reserving $0.02 and
/// settling a random actual cost at most that, until refused. Meanwhile a watcher checks that
/// spent + reserved never exceeds the cap in any committed state.
///
/// With `batch` above 1 every thread reserves that many estimates per call, with
/// [`Store::reserve_batch`] (one transaction), and settles each one it got.
fn hammer_one_dollar_cap(stores: Vec<Arc<SqliteStore>>, batch: usize) {
    const ESTIMATE: Micros = 20_000;
    const THREADS: usize = 64;
    let the_cap = Cap {
        soft_micros: Some(DOLLAR * 8 / 10),
        ..cap("agents-daily", Scope::Agent, "bot", Period::Day, DOLLAR)
    };
    let start = Arc::new(Barrier::new(THREADS + 1));
    let done = Arc::new(AtomicBool::new(false));

    let watcher = {
        let (store, the_cap, done) = (stores[0].clone(), the_cap.clone(), done.clone());
        std::thread::spawn(move || {
            let mut samples = 0u64;
            // Bounded by the workers finishing; each sample is one quick read.
            while !done.load(Ordering::Relaxed) {
                let st = &store
                    .cap_status(std::slice::from_ref(&the_cap), noon())
                    .unwrap()[0];
                assert!(
                    st.spent_micros + st.reserved_micros <= DOLLAR,
                    "over-committed: {st:?}"
                );
                samples += 1;
            }
            samples
        })
    };

    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = stores[t % stores.len()].clone();
            let (the_cap, start) = (the_cap.clone(), start.clone());
            std::thread::spawn(move || {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (t as u64 + 1));
                let mut settled: Micros = 0;
                start.wait();
                // Every settle adds at least 1 micro-USD, so this ends within 1e6 rounds; in
                // practice about a hundred in total.
                loop {
                    let outcomes = if batch > 1 {
                        let one = ReserveRequest {
                            caps: vec![the_cap.clone()],
                            amount: ESTIMATE,
                            at: noon(),
                        };
                        let all = store.reserve_batch(&vec![one; batch]).unwrap();
                        all.into_iter().map(Result::unwrap).collect()
                    } else {
                        vec![
                            store
                                .reserve(std::slice::from_ref(&the_cap), ESTIMATE, noon())
                                .unwrap(),
                        ]
                    };
                    let mut refused = None;
                    for outcome in outcomes {
                        match outcome {
                            ReserveOutcome::Reserved(r) => {
                                let actual = 1 + rng.below(ESTIMATE as u64) as Micros;
                                let after = store
                                    .settle(Some(r), &bot(), &priced(actual), noon())
                                    .unwrap();
                                assert_eq!(after.len(), 1);
                                settled += actual;
                            }
                            ReserveOutcome::Exceeded(st) => refused = Some(st),
                        }
                    }
                    if let Some(st) = refused {
                        return (settled, st);
                    }
                }
            })
        })
        .collect();
    start.wait();
    let results: Vec<_> = workers.into_iter().map(|h| h.join().unwrap()).collect();
    done.store(true, Ordering::Relaxed);
    assert!(watcher.join().unwrap() > 0);

    let total: Micros = results.iter().map(|(s, _)| s).sum();
    assert!(total <= DOLLAR, "settled {total} > $1");
    for (_, st) in &results {
        assert_eq!(st.name, "agents-daily");
        assert_eq!((st.scope, st.subject.as_str()), (Scope::Agent, "bot"));
        assert_eq!((st.period, st.bucket.as_str()), (Period::Day, "2026-11-21"));
        assert_eq!((st.limit_micros, st.soft_micros), (DOLLAR, Some(800_000)));
        assert!(
            st.spent_micros + st.reserved_micros + ESTIMATE > DOLLAR,
            "{st:?}"
        );
        assert!(st.spent_micros <= DOLLAR);
    }

    // Nothing is left reserved and the books balance, in every scope the exchanges touched.
    let store = &stores[0];
    let st = &store
        .cap_status(std::slice::from_ref(&the_cap), noon())
        .unwrap()[0];
    assert_eq!((st.spent_micros, st.reserved_micros), (total, 0));
    assert_eq!(
        row(store, Scope::Global, "", Period::Total, "total").spent_micros,
        total
    );

    // Use up the rest deterministically: the last refusal comes exactly when less than one
    // estimate is left, and reports the settled state.
    let mut spent = total;
    while spent + ESTIMATE <= DOLLAR {
        let r = reserved(
            store
                .reserve(std::slice::from_ref(&the_cap), ESTIMATE, noon())
                .unwrap(),
        );
        store
            .settle(Some(r), &bot(), &priced(ESTIMATE), noon())
            .unwrap();
        spent += ESTIMATE;
    }
    let last = exceeded(
        store
            .reserve(std::slice::from_ref(&the_cap), ESTIMATE, noon())
            .unwrap(),
    );
    assert_eq!((last.spent_micros, last.reserved_micros), (spent, 0));
    assert!(last.soft_reached());
    assert!(last.remaining_micros() < ESTIMATE);
}

#[test]
fn sixty_four_threads_cannot_overspend_one_cap() {
    let dir = Scratch::new("budget-threads");
    hammer_one_dollar_cap(vec![Arc::new(dir.open())], 1);
}

#[test]
fn sixty_four_threads_reserving_in_batches_cannot_overspend_one_cap() {
    let dir = Scratch::new("budget-batches");
    hammer_one_dollar_cap(vec![Arc::new(dir.open()), Arc::new(dir.open())], 3);
}

#[test]
fn two_processes_cannot_overspend_one_cap() {
    let dir = Scratch::new("budget-processes");
    // Two independent stores on one file: separate connections, locks and caches, exactly
    // what a gateway and a second process sharing the data dir have.
    hammer_one_dollar_cap(vec![Arc::new(dir.open()), Arc::new(dir.open())], 1);
}

#[test]
fn exceeded_names_the_first_cap_crossed_and_reserves_nothing() {
    let dir = Scratch::new("budget-first");
    let store = dir.open();
    let caps = [
        cap(
            "global-monthly",
            Scope::Global,
            "",
            Period::Month,
            100 * DOLLAR,
        ),
        cap("tenant-daily", Scope::Tenant, "acme", Period::Day, DOLLAR),
        cap(
            "key-total",
            Scope::Key,
            "key_0123456789abcdef",
            Period::Total,
            DOLLAR / 2,
        ),
    ];
    let r = reserved(store.reserve(&caps, 400_000, noon()).unwrap());
    assert_eq!(r.amount(), 400_000);
    // 400k reserved; another 200k fits tenant-daily (600k <= 1M) but not key-total (600k > 500k).
    let st = exceeded(store.reserve(&caps, 200_000, noon()).unwrap());
    assert_eq!(st.name, "key-total");
    assert_eq!(st.bucket, "total");
    assert_eq!((st.spent_micros, st.reserved_micros), (0, 400_000));
    // The refused attempt left every cap as it was.
    let now: Vec<_> = store
        .cap_status(&caps, noon())
        .unwrap()
        .into_iter()
        .map(|s| (s.name, s.reserved_micros))
        .collect();
    assert_eq!(
        now,
        [
            ("global-monthly".to_owned(), 400_000),
            ("tenant-daily".to_owned(), 400_000),
            ("key-total".to_owned(), 400_000),
        ]
    );
    store.release(r).unwrap();
    let after = store.cap_status(&caps, noon()).unwrap();
    assert!(
        after
            .iter()
            .all(|s| s.reserved_micros == 0 && s.spent_micros == 0)
    );
    // Release counts nothing: no request happened.
    let global = row(&store, Scope::Global, "", Period::Month, "2026-11");
    assert_eq!((global.requests, global.spent_micros), (0, 0));
}

#[test]
fn zero_estimates_are_refused_once_a_cap_is_used_up() {
    let dir = Scratch::new("budget-zero");
    let store = dir.open();
    let zero = cap("frozen", Scope::Agent, "bot", Period::Total, 0);
    exceeded(store.reserve(&[zero], 0, noon()).unwrap());

    let one = cap("one-dollar", Scope::Agent, "bot", Period::Total, DOLLAR);
    let r = reserved(
        store
            .reserve(std::slice::from_ref(&one), 0, noon())
            .unwrap(),
    );
    store
        .settle(Some(r), &bot(), &priced(DOLLAR), noon())
        .unwrap();
    let st = exceeded(store.reserve(&[one], 0, noon()).unwrap());
    assert_eq!(st.spent_micros, DOLLAR);
}

#[test]
fn caps_on_the_same_row_reserve_once() {
    let dir = Scratch::new("budget-same-row");
    let store = dir.open();
    let caps = [
        cap("agents-daily", Scope::Agent, "bot", Period::Day, DOLLAR),
        cap(
            "bot-daily-strict",
            Scope::Agent,
            "bot",
            Period::Day,
            DOLLAR / 2,
        ),
    ];
    let r = reserved(store.reserve(&caps, 300_000, noon()).unwrap());
    let st = store.cap_status(&caps, noon()).unwrap();
    assert_eq!(st[0].reserved_micros, 300_000);
    assert_eq!(st[1].reserved_micros, 300_000);
    // The stricter cap is the one that refuses.
    assert_eq!(
        exceeded(store.reserve(&caps, 300_000, noon()).unwrap()).name,
        "bot-daily-strict"
    );
    let after = store
        .settle(Some(r), &bot(), &priced(250_000), noon())
        .unwrap();
    assert_eq!(after.len(), 2);
    for st in after {
        assert_eq!((st.spent_micros, st.reserved_micros), (250_000, 0));
    }
}

#[test]
fn settle_records_every_subject_in_every_period_once() {
    let dir = Scratch::new("budget-subjects");
    let store = dir.open();
    let agent_daily = cap("agents-daily", Scope::Agent, "bot", Period::Day, DOLLAR);
    let r = reserved(store.reserve(&[agent_daily], 50_000, noon()).unwrap());
    let charge = Charge {
        micros: Some(12_345),
        input_tokens: 1_000,
        output_tokens: 200,
        model: None,
    };
    let after = store
        .settle(Some(r), &bot(), &charge, at(NOON + 7))
        .unwrap();
    assert_eq!(
        (after[0].spent_micros, after[0].reserved_micros),
        (12_345, 0)
    );

    let rows = store.spend(&SpendFilter::default()).unwrap();
    assert_eq!(rows.len(), 15, "5 subjects x 3 periods: {rows:#?}");
    for r in &rows {
        assert_eq!(r.spent_micros, 12_345, "{r:?}");
        assert_eq!(r.reserved_micros, 0);
        assert_eq!(
            (r.requests, r.input_tokens, r.output_tokens),
            (1, 1_000, 200)
        );
        assert_eq!(r.unpriced_requests, 0);
        assert_eq!(r.last_at, NOON + 7);
        let want = match r.period {
            Period::Total => "total",
            Period::Day => "2026-11-21",
            Period::Month => "2026-11",
        };
        assert_eq!(r.bucket, want);
    }
    for (scope, subject) in [
        (Scope::Global, ""),
        (Scope::Tenant, "acme"),
        (Scope::Agent, "bot"),
        (Scope::Session, "s1"),
        (Scope::Key, "key_0123456789abcdef"),
    ] {
        for period in Period::ALL {
            assert_eq!(
                rows.iter()
                    .filter(|r| r.scope == scope && r.subject == subject && r.period == period)
                    .count(),
                1,
                "{scope} {subject} {period}"
            );
        }
    }

    // Unknown price: counted, charged nothing. Unknown subjects: global only.
    let unpriced = Charge {
        micros: None,
        input_tokens: 5,
        output_tokens: 6,
        model: None,
    };
    store
        .settle(None, &Subjects::default(), &unpriced, noon())
        .unwrap();
    let global = row(&store, Scope::Global, "", Period::Total, "total");
    assert_eq!(
        (
            global.spent_micros,
            global.requests,
            global.unpriced_requests
        ),
        (12_345, 2, 1)
    );
    assert_eq!((global.input_tokens, global.output_tokens), (1_005, 206));
    assert_eq!(
        row(&store, Scope::Agent, "bot", Period::Total, "total").requests,
        1
    );
}

#[test]
fn day_and_month_buckets_roll_over_in_utc() {
    let dir = Scratch::new("budget-rollover");
    let store = dir.open();
    let before = 1_796_083_199; // 2026-11-30T23:59:59Z
    let after = before + 1; // 2026-12-01T00:00:00Z
    let subj = Subjects {
        agent: Some("bot".into()),
        ..Subjects::default()
    };
    store.settle(None, &subj, &priced(100), at(before)).unwrap();
    store.settle(None, &subj, &priced(10), at(after)).unwrap();
    let spent = |period, bucket| row(&store, Scope::Agent, "bot", period, bucket).spent_micros;
    assert_eq!(spent(Period::Day, "2026-11-30"), 100);
    assert_eq!(spent(Period::Day, "2026-12-01"), 10);
    assert_eq!(spent(Period::Month, "2026-11"), 100);
    assert_eq!(spent(Period::Month, "2026-12"), 10);
    assert_eq!(spent(Period::Total, "total"), 110);

    // A new day starts a fresh daily cap; the monthly one carries on within the month.
    let daily = cap("d", Scope::Agent, "bot", Period::Day, 100);
    let monthly = cap("m", Scope::Agent, "bot", Period::Month, 105);
    exceeded(
        store
            .reserve(std::slice::from_ref(&daily), 1, at(before))
            .unwrap(),
    );
    let r = reserved(
        store
            .reserve(&[daily.clone(), monthly.clone()], 90, at(after))
            .unwrap(),
    );
    assert_eq!(
        exceeded(store.reserve(&[monthly], 6, at(after)).unwrap()).name,
        "m"
    );

    // An exchange reserved before midnight and settled after counts on the day it started,
    // in the cap's bucket and in reporting alike, each once.
    let r2 = reserved(store.reserve(&[], 0, at(before)).unwrap());
    store
        .settle(Some(r2), &subj, &priced(1), at(after + 5))
        .unwrap();
    assert_eq!(spent(Period::Day, "2026-11-30"), 101);
    assert_eq!(
        row(&store, Scope::Agent, "bot", Period::Day, "2026-11-30").last_at,
        after + 5
    );
    store
        .settle(Some(r), &subj, &priced(90), at(after + 5))
        .unwrap();
    assert_eq!(spent(Period::Day, "2026-12-01"), 100);
    assert_eq!(
        store.cap_status(&[daily], at(after)).unwrap()[0].reserved_micros,
        0
    );
}

#[test]
fn clear_reservations_frees_dead_money() {
    let dir = Scratch::new("budget-clear");
    let the_cap = cap("c", Scope::Tenant, "acme", Period::Month, DOLLAR);
    {
        // A gateway that reserves and then dies without settling.
        let store = dir.open();
        for _ in 0..3 {
            drop(reserved(
                store
                    .reserve(std::slice::from_ref(&the_cap), 300_000, noon())
                    .unwrap(),
            ));
        }
        exceeded(
            store
                .reserve(std::slice::from_ref(&the_cap), 300_000, noon())
                .unwrap(),
        );
    }
    let store = dir.open();
    assert_eq!(
        store
            .cap_status(std::slice::from_ref(&the_cap), noon())
            .unwrap()[0]
            .reserved_micros,
        900_000
    );
    // Three reservations, all on the one bucket.
    assert_eq!(store.clear_reservations().unwrap(), 1);
    assert_eq!(store.clear_reservations().unwrap(), 0);
    let st = &store
        .cap_status(std::slice::from_ref(&the_cap), noon())
        .unwrap()[0];
    assert_eq!((st.spent_micros, st.reserved_micros), (0, 0));
    reserved(store.reserve(&[the_cap], DOLLAR, noon()).unwrap());
}

#[test]
fn settling_after_a_clear_never_goes_negative() {
    let dir = Scratch::new("budget-negative");
    let store = dir.open();
    let the_cap = cap("c", Scope::Agent, "bot", Period::Total, DOLLAR);
    let r = reserved(
        store
            .reserve(std::slice::from_ref(&the_cap), 500, noon())
            .unwrap(),
    );
    store.clear_reservations().unwrap();
    store.settle(Some(r), &bot(), &priced(400), noon()).unwrap();
    let st = &store.cap_status(&[the_cap], noon()).unwrap()[0];
    assert_eq!((st.spent_micros, st.reserved_micros), (400, 0));
}

#[test]
fn invalid_amounts_and_caps_are_refused() {
    let dir = Scratch::new("budget-invalid");
    let store = dir.open();
    let ok = cap("c", Scope::Agent, "bot", Period::Day, DOLLAR);
    let bad = [
        store
            .reserve(std::slice::from_ref(&ok), -1, noon())
            .map(|_| ()),
        store
            .reserve(&[cap("g", Scope::Global, "x", Period::Day, 1)], 1, noon())
            .map(|_| ()),
        store
            .reserve(&[cap("a", Scope::Agent, "", Period::Day, 1)], 1, noon())
            .map(|_| ()),
        store
            .reserve(&[cap("n", Scope::Agent, "bot", Period::Day, -5)], 1, noon())
            .map(|_| ()),
        store.settle(None, &bot(), &priced(-1), noon()).map(|_| ()),
    ];
    for result in bad {
        assert!(
            matches!(result, Err(StoreError::InvalidArgument(_))),
            "{result:?}"
        );
    }
    assert!(store.spend(&SpendFilter::default()).unwrap().is_empty());
}

#[test]
fn spend_filters_orders_and_limits() {
    let dir = Scratch::new("budget-filter");
    let store = dir.open();
    for (agent, micros, day) in [("a", 10, 0), ("b", 30, 0), ("a", 5, 1), ("c", 20, 1)] {
        let subj = Subjects {
            agent: Some(agent.into()),
            ..Subjects::default()
        };
        store
            .settle(None, &subj, &priced(micros), at(NOON + day * 86_400))
            .unwrap();
    }
    let agents_daily = store
        .spend(&SpendFilter {
            scope: Some(Scope::Agent),
            period: Some(Period::Day),
            ..SpendFilter::default()
        })
        .unwrap();
    let got: Vec<_> = agents_daily
        .iter()
        .map(|r| (r.subject.as_str(), r.bucket.as_str(), r.spent_micros))
        .collect();
    // Newest bucket first, biggest spender first within it.
    assert_eq!(
        got,
        [
            ("c", "2026-11-22", 20),
            ("a", "2026-11-22", 5),
            ("b", "2026-11-21", 30),
            ("a", "2026-11-21", 10),
        ]
    );
    let totals = store
        .spend(&SpendFilter {
            subject: Some("a".into()),
            limit: 1,
            ..SpendFilter::default()
        })
        .unwrap();
    assert_eq!(totals.len(), 1);
    assert_eq!(
        (totals[0].bucket.as_str(), totals[0].spent_micros),
        ("total", 15)
    );
    let all = store.spend(&SpendFilter::default()).unwrap();
    // Global: total, two days, one month; a: the same; b and c: total, one day, one month.
    assert_eq!(all.len(), 4 + 4 + 3 + 3);
    assert_eq!(all[0].bucket, "total");
    // Round-trips as the admin API's JSON.
    let json = serde_json::to_string(&all).unwrap();
    let back: Vec<SpendRow> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, all);
}

#[test]
fn a_settled_batch_counts_exactly_like_settling_one_by_one() {
    let one = Scratch::new("batch-one");
    let many = Scratch::new("batch-many");
    let (a, b) = (one.open(), many.open());
    let caps = [cap(
        "agent-total",
        Scope::Agent,
        "bot",
        Period::Total,
        10 * DOLLAR,
    )];
    let mut items = Vec::new();
    for (i, store) in [&a, &b].into_iter().enumerate() {
        let r1 = reserved(store.reserve(&caps, 300_000, noon()).unwrap());
        let r2 = reserved(store.reserve(&caps, 200_000, noon()).unwrap());
        let list = vec![
            warden_state::Settlement {
                reservation: Some(r1),
                subjects: bot(),
                charge: priced(120_000),
                at: noon(),
            },
            warden_state::Settlement {
                reservation: Some(r2),
                subjects: bot(),
                charge: priced(80_000),
                at: noon(),
            },
            warden_state::Settlement {
                reservation: None,
                subjects: Subjects {
                    agent: Some("other".into()),
                    ..Subjects::default()
                },
                charge: priced(5_000),
                at: noon(),
            },
            // Unpriced, and later: counted in `unpriced_requests`, and `last_at` moves on.
            warden_state::Settlement {
                reservation: None,
                subjects: bot(),
                charge: Charge {
                    micros: None,
                    input_tokens: 7,
                    output_tokens: 3,
                    model: None,
                },
                at: noon() + std::time::Duration::from_secs(60),
            },
        ];
        if i == 0 {
            for s in list {
                store
                    .settle(s.reservation, &s.subjects, &s.charge, s.at)
                    .unwrap();
            }
        } else {
            items = store.settle_batch(list).unwrap();
        }
    }
    assert_eq!(items.len(), 4);
    for item in &items[..2] {
        assert_eq!(
            (item[0].spent_micros, item[0].reserved_micros),
            (200_000, 0),
            "statuses are read after the batch"
        );
    }
    assert!(items[2].is_empty() && items[3].is_empty());
    // Every row, every column: summing a batch per row changes nothing.
    let (all_a, all_b) = (
        a.spend(&SpendFilter::default()).unwrap(),
        b.spend(&SpendFilter::default()).unwrap(),
    );
    assert_eq!(all_a, all_b);
    // One by one goes through the same code with batches of one, so pin the sums too.
    let session = row(&b, Scope::Session, "s1", Period::Total, "total");
    assert_eq!(
        (
            session.spent_micros,
            session.requests,
            session.input_tokens,
            session.output_tokens,
            session.unpriced_requests,
            session.last_at,
        ),
        (200_000, 3, 207, 23, 1, NOON + 60)
    );
    for (scope, subject, period, bucket) in [
        (Scope::Agent, "bot", Period::Total, "total"),
        (Scope::Tenant, "acme", Period::Day, "2026-11-21"),
        (Scope::Agent, "other", Period::Month, "2026-11"),
        (Scope::Global, "", Period::Total, "total"),
    ] {
        let (x, y) = (
            row(&a, scope, subject, period, bucket),
            row(&b, scope, subject, period, bucket),
        );
        assert_eq!(
            (x.spent_micros, x.reserved_micros, x.requests),
            (y.spent_micros, y.reserved_micros, y.requests),
            "{scope} {subject}"
        );
    }
    assert_eq!(
        row(&b, Scope::Agent, "bot", Period::Total, "total").reserved_micros,
        0
    );
    assert_eq!(
        row(&b, Scope::Global, "", Period::Total, "total").spent_micros,
        205_000
    );
}

#[test]
fn a_reserved_batch_judges_exactly_like_reserving_one_by_one() {
    let one = Scratch::new("reserve-one");
    let many = Scratch::new("reserve-many");
    let (a, b) = (one.open(), many.open());
    let day = cap("agent-daily", Scope::Agent, "bot", Period::Day, DOLLAR);
    // The same spend row as `day`, a lower limit: caps on one row share one reservation.
    let strict = cap("agent-strict", Scope::Agent, "bot", Period::Day, 900_000);
    let tenant = cap(
        "acme-total",
        Scope::Tenant,
        "acme",
        Period::Total,
        1_500_000,
    );
    let other = cap("other-daily", Scope::Agent, "other", Period::Day, DOLLAR);
    let req = |caps: &[&Cap], amount: Micros, secs: u64| ReserveRequest {
        caps: caps.iter().map(|c| (*c).clone()).collect(),
        amount,
        at: at(NOON + secs),
    };
    let mut broken = tenant.clone();
    broken.subject = String::new();
    let items = vec![
        req(&[&day, &tenant], 400_000, 0),
        req(&[&day, &strict, &tenant], 400_000, 1),
        // strict: 800k used + 200k > 900k: refused on the second cap, nothing reserved.
        req(&[&day, &strict, &tenant], 200_000, 2),
        // …while 100k still fits under both.
        req(&[&day, &strict], 100_000, 3),
        req(&[&other, &tenant], 600_000, 4),
        // tenant: 1.4M used, 200k more crosses 1.5M.
        req(&[&other, &tenant], 200_000, 5),
        req(&[&other], -1, 6),
        req(&[&broken], 10, 7),
        // A zero estimate is refused once a cap is used up (strict is at 900k of 900k)…
        req(&[&strict], 0, 8),
        // …and reserves (and writes) nothing on a cap that has room.
        req(&[&other], 0, 9),
        // Tomorrow: a new day bucket, in the same batch.
        req(&[&day], 50_000, 86_400),
    ];
    let singles: Vec<Result<ReserveOutcome, StoreError>> = items
        .iter()
        .map(|r| a.reserve(&r.caps, r.amount, r.at))
        .collect();
    let batch = b.reserve_batch(&items).unwrap();
    assert_eq!(batch.len(), items.len());

    let summary = |r: &Result<ReserveOutcome, StoreError>| match r {
        Ok(ReserveOutcome::Reserved(r)) => format!("reserved {}", r.amount()),
        Ok(ReserveOutcome::Exceeded(st)) => format!("exceeded {st:?}"),
        Err(StoreError::InvalidArgument(m)) => format!("invalid {m}"),
        Err(e) => panic!("store error: {e}"),
    };
    let (x, y): (Vec<String>, Vec<String>) = (
        singles.iter().map(summary).collect(),
        batch.iter().map(summary).collect(),
    );
    assert_eq!(x, y);
    // The cases above are what they say they are, so the comparison is not between two
    // equally wrong answers.
    let Ok(ReserveOutcome::Exceeded(strict_refusal)) = &batch[2] else {
        panic!("item 2 was not refused: {}", y[2]);
    };
    assert_eq!(
        (
            strict_refusal.name.as_str(),
            strict_refusal.spent_micros,
            strict_refusal.reserved_micros
        ),
        ("agent-strict", 0, 800_000)
    );
    assert!(y[3].starts_with("reserved 100000"), "{}", y[3]);
    assert!(y[5].contains("acme-total") && y[5].contains("reserved_micros: 1400000"));
    assert!(y[6].starts_with("invalid") && y[7].starts_with("invalid"));
    assert!(y[8].contains("agent-strict") && y[9] == "reserved 0");
    assert_eq!(y[10], "reserved 50000");

    // Every row, every column (reserved sums, last_at): the same books.
    let (all_a, all_b) = (
        a.spend(&SpendFilter::default()).unwrap(),
        b.spend(&SpendFilter::default()).unwrap(),
    );
    assert_eq!(all_a, all_b);
    assert_eq!(
        row(&b, Scope::Agent, "bot", Period::Day, "2026-11-21").reserved_micros,
        900_000
    );
    assert_eq!(
        row(&b, Scope::Agent, "other", Period::Day, "2026-11-21").last_at,
        NOON + 9
    );
    assert_eq!(
        row(&b, Scope::Agent, "bot", Period::Day, "2026-11-22").reserved_micros,
        50_000
    );
}
