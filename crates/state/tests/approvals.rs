//! Approvals: the durable queue of tool calls held for a human, decided from any process.

mod common;

use std::sync::{Arc, Barrier};
use std::time::{Duration, SystemTime};

use common::{NOON, Scratch, at, noon};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use warden_state::{
    Approval, ApprovalFilter, ApprovalStatus, DecideOutcome, Decision, KeyCheck, KillTarget,
    NewApproval, SqliteStore, Store, StoreError,
};

fn held(tool: &str, ttl_secs: u64) -> NewApproval {
    NewApproval {
        tenant: Some("acme".into()),
        agent: Some("billing-bot".into()),
        session: Some("s-42".into()),
        key_id: Some("key_00112233aabbccdd".into()),
        provider: "openai".into(),
        model: "gpt-4o".into(),
        tool: tool.into(),
        arguments: r#"{"query":"DELETE FROM orders WHERE id = [REDACTED]"}"#.into(),
        rule: "sql-writes".into(),
        reason: "execute_sql deletes rows".into(),
        ttl: Duration::from_secs(ttl_secs),
    }
}

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

fn decided(outcome: DecideOutcome) -> Approval {
    match outcome {
        DecideOutcome::Decided(a) => a,
        other => panic!("expected Decided, got {other:?}"),
    }
}

fn already(outcome: DecideOutcome) -> Approval {
    match outcome {
        DecideOutcome::AlreadyDecided(a) => a,
        other => panic!("expected AlreadyDecided, got {other:?}"),
    }
}

fn ids(list: &[Approval]) -> Vec<&str> {
    list.iter().map(|a| a.id.as_str()).collect()
}

fn list(store: &SqliteStore, status: Option<ApprovalStatus>, now: SystemTime) -> Vec<Approval> {
    let filter = ApprovalFilter {
        status,
        limit: None,
    };
    store.list_approvals(&filter, now).unwrap()
}

#[test]
fn create_then_read_back_every_field() {
    let dir = Scratch::new("apr-roundtrip");
    let store = dir.open();
    // `approval` reads the system clock, so this one lives around the real now.
    let now = SystemTime::now();
    let created = store
        .create_approval(held("execute_sql", 3600), now)
        .unwrap();
    assert!(
        created.id.starts_with("apr_")
            && created.id.len() == 20
            && created.id[4..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{}",
        created.id
    );
    assert_eq!(created.status, ApprovalStatus::Pending);
    assert_eq!(created.tool, "execute_sql");
    assert_eq!(created.agent.as_deref(), Some("billing-bot"));
    assert_eq!(created.key_id.as_deref(), Some("key_00112233aabbccdd"));
    assert_eq!(
        created.arguments,
        r#"{"query":"DELETE FROM orders WHERE id = [REDACTED]"}"#
    );
    assert_eq!(
        created.expires_at,
        created.created_at + Duration::from_secs(3600)
    );
    // Millisecond precision: the record is what the database holds, not the caller's instant.
    assert!(now.duration_since(created.created_at).unwrap() < ms(1));
    assert_eq!(
        (
            created.entry,
            created.decided_at,
            &created.approver,
            &created.decision_reason
        ),
        (None, None, &None, &None)
    );

    assert_eq!(store.approval(&created.id).unwrap(), Some(created.clone()));
    assert_eq!(list(&store, None, now), std::slice::from_ref(&created));

    store.set_approval_entry(&created.id, 41).unwrap();
    store.set_approval_entry(&created.id, 42).unwrap();
    let with_entry = store.approval(&created.id).unwrap().unwrap();
    assert_eq!(with_entry.entry, Some(42));
    assert_eq!(
        Approval {
            entry: None,
            ..with_entry
        },
        created
    );

    // Exact ids only: no prefixes, no case folding.
    assert_eq!(store.approval(&created.id[..12]).unwrap(), None);
    assert_eq!(store.approval(&created.id.to_uppercase()).unwrap(), None);
    assert_eq!(store.approval("").unwrap(), None);
    assert!(matches!(
        store.set_approval_entry("apr_0000000000000000", 1),
        Err(StoreError::InvalidArgument(_))
    ));
    // Ids are random, not sequential.
    let other = store
        .create_approval(held("execute_sql", 3600), now)
        .unwrap();
    assert_ne!(other.id, created.id);
}

#[test]
fn the_clock_expires_reads_without_writing() {
    let dir = Scratch::new("apr-clock");
    let store = dir.open();
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    let stale = store.create_approval(held("t", 60), hour_ago).unwrap();
    let seen = store.approval(&stale.id).unwrap().unwrap();
    assert_eq!(seen.status, ApprovalStatus::Expired);
    assert_eq!(seen.decided_at, Some(stale.expires_at));
    assert_eq!(seen.decision_reason.as_deref(), Some("timed out"));
    assert_eq!(seen.approver, None);
    // The read did not sweep it: the sweep still reports it, once, identical to the read.
    assert_eq!(
        store.expire_approvals(SystemTime::now()).unwrap(),
        std::slice::from_ref(&seen)
    );
    assert_eq!(store.approval(&stale.id).unwrap(), Some(seen));
}

#[test]
fn listing_is_newest_first_and_filters_by_status_as_of_now() {
    let dir = Scratch::new("apr-list");
    let store = dir.open();
    // Deadlines: a NOON+60, b NOON+61, c NOON+62, d NOON+63.
    let made: Vec<Approval> = (0..4)
        .map(|i| {
            store
                .create_approval(held(&format!("tool-{i}"), 60), at(NOON + i))
                .unwrap()
        })
        .collect();
    let [a, b, c, d] = [&made[0], &made[1], &made[2], &made[3]];
    decided(
        store
            .decide_approval(&a.id, Decision::Approve, "alice", None, at(NOON + 10))
            .unwrap(),
    );
    decided(
        store
            .decide_approval(&b.id, Decision::Deny, "bob", Some("no"), at(NOON + 10))
            .unwrap(),
    );

    let now = at(NOON + 30);
    assert_eq!(ids(&list(&store, None, now)), [&d.id, &c.id, &b.id, &a.id]);
    assert_eq!(
        ids(&list(&store, Some(ApprovalStatus::Pending), now)),
        [&d.id, &c.id]
    );
    assert_eq!(
        ids(&list(&store, Some(ApprovalStatus::Approved), now)),
        [&a.id]
    );
    assert_eq!(
        ids(&list(&store, Some(ApprovalStatus::Denied), now)),
        [&b.id]
    );
    assert!(list(&store, Some(ApprovalStatus::Expired), now).is_empty());
    let limited = |limit| {
        let filter = ApprovalFilter {
            status: None,
            limit: Some(limit),
        };
        store.list_approvals(&filter, now).unwrap()
    };
    assert_eq!(ids(&limited(2)), [&d.id, &c.id]);
    assert!(limited(0).is_empty());
    assert_eq!(limited(99).len(), 4);

    // At NOON+62 c's deadline has come, though nothing swept it: listed and filtered as expired.
    let later = at(NOON + 62);
    assert_eq!(
        ids(&list(&store, Some(ApprovalStatus::Pending), later)),
        [&d.id]
    );
    let expired = list(&store, Some(ApprovalStatus::Expired), later);
    assert_eq!(ids(&expired), [&c.id]);
    assert_eq!(expired[0].decided_at, Some(c.expires_at));
    assert_eq!(expired[0].decision_reason.as_deref(), Some("timed out"));
    let all = list(&store, None, later);
    assert_eq!(
        all.iter().map(|a| a.status).collect::<Vec<_>>(),
        [
            ApprovalStatus::Pending,
            ApprovalStatus::Expired,
            ApprovalStatus::Denied,
            ApprovalStatus::Approved
        ]
    );
    // After the sweep the filters answer the same.
    store.expire_approvals(later).unwrap();
    assert_eq!(list(&store, Some(ApprovalStatus::Expired), later), expired);

    // Created in the same millisecond: the later insert still lists first.
    let e = store.create_approval(held("e", 60), at(NOON + 40)).unwrap();
    let f = store.create_approval(held("f", 60), at(NOON + 40)).unwrap();
    let top = list(&store, None, at(NOON + 40));
    assert_eq!(ids(&top[..2]), [&f.id, &e.id]);
}

#[test]
fn approve_and_deny_record_who_when_and_why() {
    let dir = Scratch::new("apr-decide");
    let store = dir.open();
    let one = store.create_approval(held("a", 300), noon()).unwrap();
    let two = store.create_approval(held("b", 300), noon()).unwrap();

    let approved = decided(
        store
            .decide_approval(
                &one.id,
                Decision::Approve,
                "alice",
                Some("checked the WHERE clause"),
                at(NOON + 5),
            )
            .unwrap(),
    );
    assert_eq!(approved.status, ApprovalStatus::Approved);
    assert_eq!(approved.approver.as_deref(), Some("alice"));
    assert_eq!(
        approved.decision_reason.as_deref(),
        Some("checked the WHERE clause")
    );
    assert_eq!(approved.decided_at, Some(at(NOON + 5)));
    assert_eq!(
        Approval {
            status: ApprovalStatus::Pending,
            decided_at: None,
            approver: None,
            decision_reason: None,
            ..approved.clone()
        },
        one
    );

    let denied = decided(
        store
            .decide_approval(&two.id, Decision::Deny, "bob", Some(""), at(NOON + 6))
            .unwrap(),
    );
    assert_eq!(denied.status, ApprovalStatus::Denied);
    assert_eq!(denied.approver.as_deref(), Some("bob"));
    assert_eq!(denied.decision_reason, None, "an empty reason is no reason");

    // Decisions are final, long after the deadline too.
    assert_eq!(
        list(&store, None, at(NOON + 10_000)),
        [denied.clone(), approved.clone()]
    );

    assert_eq!(
        store
            .decide_approval(
                "apr_0000000000000000",
                Decision::Approve,
                "alice",
                None,
                noon()
            )
            .unwrap(),
        DecideOutcome::NotFound
    );
    assert_eq!(
        store
            .decide_approval(&one.id[..10], Decision::Deny, "alice", None, noon())
            .unwrap(),
        DecideOutcome::NotFound
    );
    let three = store.create_approval(held("c", 300), noon()).unwrap();
    assert!(matches!(
        store.decide_approval(&three.id, Decision::Approve, "", None, noon()),
        Err(StoreError::InvalidArgument(_))
    ));
    assert_eq!(
        list(&store, Some(ApprovalStatus::Pending), noon()),
        [three],
        "a refused decision changes nothing"
    );
}

#[test]
fn deciding_twice_keeps_the_first_decision() {
    let dir = Scratch::new("apr-twice");
    let store = dir.open();
    let once = store.create_approval(held("t", 300), noon()).unwrap();
    let first = decided(
        store
            .decide_approval(&once.id, Decision::Approve, "alice", None, at(NOON + 1))
            .unwrap(),
    );
    for (decision, who) in [(Decision::Deny, "mallory"), (Decision::Approve, "bob")] {
        let second = already(
            store
                .decide_approval(&once.id, decision, who, Some("late"), at(NOON + 2))
                .unwrap(),
        );
        assert_eq!(second, first);
    }
    assert_eq!(list(&store, None, at(NOON + 3)), [first]);
}

#[test]
fn a_late_decision_finds_it_expired_and_it_stays_expired() {
    let dir = Scratch::new("apr-late");
    let store = dir.open();
    let late = store.create_approval(held("t", 60), noon()).unwrap();
    let just_in_time = store.create_approval(held("t", 60), noon()).unwrap();

    // One millisecond before the deadline is in time.
    let ok = decided(
        store
            .decide_approval(
                &just_in_time.id,
                Decision::Approve,
                "alice",
                None,
                at(NOON + 60) - ms(1),
            )
            .unwrap(),
    );
    assert_eq!(ok.status, ApprovalStatus::Approved);

    // The deadline itself is too late.
    let expired = already(
        store
            .decide_approval(&late.id, Decision::Approve, "alice", None, at(NOON + 60))
            .unwrap(),
    );
    assert_eq!(expired.status, ApprovalStatus::Expired);
    assert_eq!(expired.approver, None);
    assert_eq!(expired.decided_at, Some(late.expires_at));
    assert_eq!(expired.decision_reason.as_deref(), Some("timed out"));

    // Stored as expired: later decisions, reads and sweeps all agree, and the sweep does not
    // report it a second time.
    assert_eq!(
        already(
            store
                .decide_approval(&late.id, Decision::Approve, "bob", None, at(NOON + 61))
                .unwrap()
        ),
        expired
    );
    assert!(store.expire_approvals(at(NOON + 120)).unwrap().is_empty());
    assert_eq!(
        list(&store, Some(ApprovalStatus::Expired), at(NOON + 120)),
        std::slice::from_ref(&expired)
    );
    // Even with a clock that went backwards, it is not pending again.
    assert_eq!(
        already(
            store
                .decide_approval(&late.id, Decision::Approve, "bob", None, noon())
                .unwrap()
        ),
        expired
    );
}

#[test]
fn concurrent_deciders_in_two_processes_have_exactly_one_winner() {
    const ROUNDS: usize = 12;
    const PER_STORE: usize = 4;
    let dir = Scratch::new("apr-race");
    // Two handles on one directory: a gateway and a CLI.
    let stores = [Arc::new(dir.open()), Arc::new(dir.open())];
    let approvals: Vec<Approval> = (0..ROUNDS)
        .map(|_| stores[0].create_approval(held("t", 300), noon()).unwrap())
        .collect();

    for approval in &approvals {
        let barrier = Arc::new(Barrier::new(2 * PER_STORE));
        let handles: Vec<_> = (0..2 * PER_STORE)
            .map(|i| {
                let store = stores[i % 2].clone();
                let (barrier, id) = (barrier.clone(), approval.id.clone());
                let decision = if i % 4 < 2 {
                    Decision::Approve
                } else {
                    Decision::Deny
                };
                std::thread::spawn(move || {
                    barrier.wait();
                    let who = format!("op-{i}");
                    store
                        .decide_approval(&id, decision, &who, None, at(NOON + 1))
                        .unwrap()
                })
            })
            .collect();
        let outcomes: Vec<DecideOutcome> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let winners: Vec<&Approval> = outcomes
            .iter()
            .filter_map(|o| match o {
                DecideOutcome::Decided(a) => Some(a),
                _ => None,
            })
            .collect();
        assert_eq!(winners.len(), 1, "{outcomes:?}");
        let winner = winners[0];
        // Every loser saw the winner's decision, and both processes read it back.
        for o in &outcomes {
            match o {
                DecideOutcome::Decided(_) => {}
                DecideOutcome::AlreadyDecided(a) => assert_eq!(a, winner),
                DecideOutcome::NotFound => panic!("lost {}", approval.id),
            }
        }
        for store in &stores {
            let seen = list(store, None, at(NOON + 2));
            assert!(seen.contains(winner), "{seen:?}");
        }
    }
    assert!(
        list(&stores[1], Some(ApprovalStatus::Pending), at(NOON + 2)).is_empty(),
        "every approval was decided"
    );
}

#[test]
fn a_decision_from_another_process_is_seen_at_once() {
    let dir = Scratch::new("apr-cross");
    let gateway = dir.open();
    let cli = dir.open();
    let now = SystemTime::now();
    let waiting = gateway.create_approval(held("t", 3600), now).unwrap();
    assert_eq!(
        cli.list_approvals(&ApprovalFilter::default(), now).unwrap(),
        std::slice::from_ref(&waiting)
    );
    let approved = decided(
        cli.decide_approval(&waiting.id, Decision::Approve, "cli", None, now)
            .unwrap(),
    );
    assert_eq!(gateway.approval(&waiting.id).unwrap(), Some(approved));
}

#[test]
fn pending_approvals_survive_a_restart() {
    let dir = Scratch::new("apr-reopen");
    let now = SystemTime::now();
    let store = dir.open();
    let pending = store.create_approval(held("t", 3600), now).unwrap();
    let done = store.create_approval(held("u", 3600), now).unwrap();
    store.set_approval_entry(&done.id, 7).unwrap();
    let done = decided(
        store
            .decide_approval(&done.id, Decision::Deny, "alice", Some("no"), now)
            .unwrap(),
    );
    assert_eq!(done.entry, Some(7));
    drop(store);

    let store = dir.open();
    assert_eq!(store.approval(&pending.id).unwrap(), Some(pending.clone()));
    assert_eq!(store.approval(&done.id).unwrap(), Some(done.clone()));
    assert_eq!(
        list(&store, Some(ApprovalStatus::Pending), now),
        std::slice::from_ref(&pending)
    );
    // And it can still be decided after the restart.
    decided(
        store
            .decide_approval(&pending.id, Decision::Approve, "bob", None, now)
            .unwrap(),
    );
}

#[test]
fn expire_returns_exactly_the_overdue_pending_approvals() {
    let dir = Scratch::new("apr-expire");
    let store = dir.open();
    let a = store.create_approval(held("a", 10), noon()).unwrap();
    let b = store.create_approval(held("b", 20), at(NOON - 5)).unwrap(); // deadline NOON+15
    let c = store.create_approval(held("c", 30), noon()).unwrap();
    let d = store.create_approval(held("d", 20), noon()).unwrap(); // deadline NOON+20, exactly
    let e = store.create_approval(held("e", 5), noon()).unwrap();
    let approved = decided(
        store
            .decide_approval(&e.id, Decision::Approve, "alice", None, at(NOON + 1))
            .unwrap(),
    );

    assert!(store.expire_approvals(at(NOON + 9)).unwrap().is_empty());
    let swept = store.expire_approvals(at(NOON + 20)).unwrap();
    // Oldest deadline first; the deadline itself counts as overdue.
    assert_eq!(ids(&swept), [&a.id, &b.id, &d.id]);
    for (got, was) in swept.iter().zip([&a, &b, &d]) {
        assert_eq!(
            *got,
            Approval {
                status: ApprovalStatus::Expired,
                decided_at: Some(was.expires_at),
                decision_reason: Some("timed out".into()),
                ..(*was).clone()
            }
        );
    }
    // Once only.
    assert!(store.expire_approvals(at(NOON + 20)).unwrap().is_empty());
    let now = at(NOON + 21);
    assert_eq!(
        list(&store, Some(ApprovalStatus::Pending), now),
        std::slice::from_ref(&c)
    );
    assert_eq!(
        list(&store, Some(ApprovalStatus::Approved), now),
        [approved]
    );
    let mut stored = list(&store, Some(ApprovalStatus::Expired), now);
    stored.sort_by_key(|a| a.expires_at);
    assert_eq!(stored, swept);
    assert_eq!(
        ids(&store.expire_approvals(at(NOON + 30)).unwrap()),
        [&c.id]
    );
}

#[test]
fn oversized_text_is_truncated_and_bad_input_refused() {
    let dir = Scratch::new("apr-bounds");
    let store = dir.open();
    let huge = format!(r#"{{"blob":"{}"}}"#, "é".repeat(NewApproval::MAX_ARGUMENTS));
    let created = store
        .create_approval(
            NewApproval {
                tenant: Some(String::new()),
                session: None,
                key_id: Some(String::new()),
                tool: "t".repeat(10_000),
                arguments: huge.clone(),
                reason: "r".repeat(NewApproval::MAX_REASON + 1),
                ..held("x", 60)
            },
            noon(),
        )
        .unwrap();
    assert!(created.arguments.len() <= NewApproval::MAX_ARGUMENTS);
    assert!(
        created
            .arguments
            .ends_with(&format!("…[truncated from {} bytes]", huge.len())),
        "{}",
        &created.arguments[created.arguments.len() - 60..]
    );
    assert!(huge.starts_with(created.arguments.split('…').next().unwrap()));
    assert!(created.tool.len() <= NewApproval::MAX_LABEL);
    assert!(created.tool.ends_with("…[truncated from 10000 bytes]"));
    assert!(created.reason.len() <= NewApproval::MAX_REASON);
    assert!(created.reason.contains("[truncated from"));
    assert_eq!(
        (created.tenant.clone(), created.key_id.clone()),
        (None, None)
    );
    assert_eq!(list(&store, None, noon()), [created]);

    // A sub-millisecond ttl rounds up rather than expiring on creation.
    let tiny = store
        .create_approval(
            NewApproval {
                ttl: Duration::from_nanos(1),
                ..held("x", 0)
            },
            noon(),
        )
        .unwrap();
    assert_eq!(tiny.expires_at, noon() + ms(1));
    assert_eq!(list(&store, Some(ApprovalStatus::Pending), noon())[0], tiny);
    assert_eq!(
        ids(&list(&store, Some(ApprovalStatus::Expired), noon() + ms(1))),
        [&tiny.id]
    );

    let err = store.create_approval(held("x", 0), noon()).unwrap_err();
    assert!(matches!(err, StoreError::InvalidArgument(_)), "{err}");
    assert_eq!(list(&store, None, noon()).len(), 2, "nothing was stored");
}

/// The schema exactly as version 1 (the first release) created it.
const V1_SCHEMA: &str = "
    CREATE TABLE keys (
        id            TEXT PRIMARY KEY,
        hash          TEXT NOT NULL UNIQUE,
        tenant        TEXT,
        agent         TEXT,
        name          TEXT,
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
        id     TEXT NOT NULL,
        reason TEXT NOT NULL,
        actor  TEXT NOT NULL,
        at     INTEGER NOT NULL,
        PRIMARY KEY (kind, id)
    ) STRICT, WITHOUT ROWID;
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
    CREATE TABLE schema_version (version INTEGER NOT NULL) STRICT;
    INSERT INTO schema_version (version) VALUES (1);
";

#[test]
fn a_version_1_database_migrates_and_keeps_its_keys() {
    let dir = Scratch::new("apr-migrate");
    std::fs::create_dir_all(dir.path()).unwrap();
    let pepper = [7u8; 32];
    std::fs::write(dir.path().join("key-pepper"), pepper).unwrap();
    let secret = format!("wk_{}", "A1b2C3".repeat(7) + "x");
    assert_eq!(secret.len(), 46);
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&pepper).unwrap();
    mac.update(secret.as_bytes());
    let hash: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    {
        let db = rusqlite::Connection::open(dir.path().join("state.db")).unwrap();
        db.execute_batch(V1_SCHEMA).unwrap();
        db.execute(
            "INSERT INTO keys (id, hash, agent, models, budget_period, created_at)
             VALUES ('key_0011223344556677', ?1, 'billing-bot', '[]', 'total', ?2)",
            rusqlite::params![hash, NOON as i64],
        )
        .unwrap();
        db.execute(
            "INSERT INTO kills (kind, id, reason, actor, at) VALUES ('agent', 'rogue', 'loop', 'ops', ?1)",
            [NOON as i64],
        )
        .unwrap();
    }

    let store = dir.open();
    let keys = store.list_keys().unwrap();
    assert_eq!(ids_of_keys(&keys), ["key_0011223344556677"]);
    assert!(matches!(
        store.authenticate(&secret, noon()).unwrap(),
        KeyCheck::Valid(info) if info.agent.as_deref() == Some("billing-bot")
    ));
    assert_eq!(
        store.kills().unwrap()[0].target,
        KillTarget::Agent("rogue".into())
    );
    let created = store.create_approval(held("t", 60), noon()).unwrap();
    assert_eq!(list(&store, None, noon()), std::slice::from_ref(&created));
    drop(store);

    // Migrated once: the version is recorded and reopening changes nothing.
    let db = rusqlite::Connection::open(dir.path().join("state.db")).unwrap();
    let versions: Vec<i64> = db
        .prepare("SELECT version FROM schema_version")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(versions, [2]);
    drop(db);
    let store = dir.open();
    assert_eq!(list(&store, None, noon()), [created]);
    assert_eq!(store.list_keys().unwrap(), keys);
}

fn ids_of_keys(keys: &[warden_state::KeyInfo]) -> Vec<&str> {
    keys.iter().map(|k| k.id.as_str()).collect()
}
