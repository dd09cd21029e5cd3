//! Virtual keys, and the store plumbing around them: files, pepper, schema, sharing.

mod common;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::{NOON, Scratch, at, noon};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use warden_state::{KeyCheck, NewKey, Period, Rate, RateOutcome, SqliteStore, Store, StoreError};

fn new_key() -> NewKey {
    NewKey {
        tenant: Some("acme".into()),
        agent: Some("billing-bot".into()),
        name: Some("ci".into()),
        models: vec!["gpt-4o*".into(), "claude-*".into()],
        rpm: Some(60),
        tpm: Some(100_000),
        budget_micros: Some(5_000_000),
        budget_period: Period::Day,
        expires_at: None,
    }
}

#[test]
fn create_then_authenticate_revoke_and_expire() {
    let dir = Scratch::new("keys-lifecycle");
    let store = dir.open();
    let created = store.create_key(new_key(), noon()).unwrap();
    let info = created.info.clone();
    assert!(
        info.id.starts_with("key_") && info.id.len() == 20,
        "{}",
        info.id
    );
    assert!(created.secret.starts_with("wk_") && created.secret.len() >= 43);
    assert_eq!(info.created_at, NOON);
    assert_eq!(info.models, ["gpt-4o*", "claude-*"]);
    assert_eq!(info.budget_period, Period::Day);

    assert_eq!(
        store.authenticate(&created.secret, noon()).unwrap(),
        KeyCheck::Valid(info.clone())
    );

    // A well-formed secret that was never issued, and near misses of the real one.
    let other = store.create_key(NewKey::default(), noon()).unwrap();
    let mut forged = created.secret.clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'a' { b'b' } else { b'a' };
    let forged = String::from_utf8(forged).unwrap();
    for wrong in [
        forged.as_str(),
        &created.secret[..created.secret.len() - 1],
        "",
        "sk-proj-abc",
        &created.secret.to_uppercase(),
    ] {
        assert_eq!(
            store.authenticate(wrong, noon()).unwrap(),
            KeyCheck::Unknown,
            "{wrong:?}"
        );
    }

    // Revoking twice keeps the first time; unknown ids are None.
    let revoked = store.revoke_key(&info.id, at(NOON + 10)).unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(NOON + 10));
    let again = store.revoke_key(&info.id, at(NOON + 99)).unwrap().unwrap();
    assert_eq!(again.revoked_at, Some(NOON + 10));
    assert_eq!(
        store.revoke_key("key_0000000000000000", noon()).unwrap(),
        None
    );
    assert_eq!(
        store.authenticate(&created.secret, at(NOON + 11)).unwrap(),
        KeyCheck::Revoked(again)
    );
    // The other key is untouched.
    assert!(matches!(
        store.authenticate(&other.secret, noon()).unwrap(),
        KeyCheck::Valid(_)
    ));

    // Expiry is inclusive of its second.
    let expiring = store
        .create_key(
            NewKey {
                expires_at: Some(at(NOON + 60)),
                ..NewKey::default()
            },
            noon(),
        )
        .unwrap();
    assert_eq!(expiring.info.expires_at, Some(NOON + 60));
    assert!(matches!(
        store.authenticate(&expiring.secret, at(NOON + 59)).unwrap(),
        KeyCheck::Valid(_)
    ));
    assert_eq!(
        store.authenticate(&expiring.secret, at(NOON + 60)).unwrap(),
        KeyCheck::Expired(expiring.info.clone())
    );
    // Revocation outranks expiry.
    store.revoke_key(&expiring.info.id, at(NOON + 61)).unwrap();
    assert!(matches!(
        store.authenticate(&expiring.secret, at(NOON + 62)).unwrap(),
        KeyCheck::Revoked(_)
    ));
}

#[test]
fn invalid_keys_are_refused() {
    let dir = Scratch::new("keys-invalid");
    let store = dir.open();
    let past = NewKey {
        expires_at: Some(noon()),
        ..NewKey::default()
    };
    assert!(matches!(
        store.create_key(past, noon()),
        Err(StoreError::InvalidArgument(_))
    ));
    let negative = NewKey {
        budget_micros: Some(-1),
        ..NewKey::default()
    };
    assert!(matches!(
        store.create_key(negative, noon()),
        Err(StoreError::InvalidArgument(_))
    ));
    assert!(!store.has_keys().unwrap(), "a refused key must not count");
}

#[test]
fn empty_labels_are_stored_as_none_and_fields_round_trip() {
    let dir = Scratch::new("keys-fields");
    let store = dir.open();
    let created = store
        .create_key(
            NewKey {
                tenant: Some(String::new()),
                agent: Some(String::new()),
                name: Some(String::new()),
                ..new_key()
            },
            noon(),
        )
        .unwrap();
    assert_eq!(created.info.tenant, None);
    assert_eq!(created.info.agent, None);
    assert_eq!(created.info.name, None);
    let full = store.create_key(new_key(), at(NOON + 1)).unwrap();
    // Reopening proves the fields came from the database, not from memory.
    drop(store);
    let store = dir.open();
    assert_eq!(store.list_keys().unwrap(), [created.info, full.info]);
}

#[test]
fn secrets_and_hashes_never_leave_the_store() {
    let dir = Scratch::new("keys-leak");
    let store = dir.open();
    let created = store.create_key(new_key(), noon()).unwrap();
    assert!(!format!("{created:?}").contains(&created.secret));

    // What is stored is HMAC-SHA256(pepper, secret), nothing else.
    let pepper = std::fs::read(dir.path().join("key-pepper")).unwrap();
    assert_eq!(pepper.len(), 32);
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&pepper).unwrap();
    mac.update(created.secret.as_bytes());
    let want: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let db = rusqlite::Connection::open(dir.path().join("state.db")).unwrap();
    let stored: String = db
        .query_row("SELECT hash FROM keys", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, want);

    let listed = serde_json::to_string(&store.list_keys().unwrap()).unwrap();
    assert!(listed.contains(&created.info.id));
    assert!(!listed.contains(&created.secret), "{listed}");
    assert!(!listed.contains(&stored), "{listed}");

    // No file in the data dir holds the secret: not the database, not its WAL.
    let scan = || {
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes
                    .windows(created.secret.len())
                    .any(|w| w == created.secret.as_bytes()),
                "secret found in {}",
                path.display()
            );
        }
    };
    scan();
    drop(db);
    drop(store); // the last connection checkpoints the WAL into state.db
    scan();
}

#[cfg(unix)]
#[test]
fn pepper_is_private_and_stable_across_reopen() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = Scratch::new("keys-pepper");
    let store = dir.open();
    let created = store.create_key(NewKey::default(), noon()).unwrap();
    let path = dir.path().join("key-pepper");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    let before = std::fs::read(&path).unwrap();
    drop(store);
    let store = dir.open();
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert!(matches!(
        store.authenticate(&created.secret, noon()).unwrap(),
        KeyCheck::Valid(_)
    ));
    // No temporary files are left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("key-pepper"))
        .collect();
    assert_eq!(names, ["key-pepper"]);
}

#[test]
fn racing_first_opens_agree_on_one_pepper() {
    // A gateway and CLI commands starting together on a new data dir: every open must succeed
    // (creating the pepper, switching to WAL and migrating race each other) and all must end up
    // with the same pepper. A few rounds, since the interleavings differ each time.
    for round in 0..4 {
        let dir = Scratch::new(&format!("keys-race-{round}"));
        let path = dir.path().to_owned();
        let barrier = Arc::new(Barrier::new(12));
        let stores: Vec<SqliteStore> = (0..12)
            .map(|_| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    SqliteStore::open(&path)
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap().expect("concurrent open"))
            .collect();
        let created = stores[3].create_key(NewKey::default(), noon()).unwrap();
        for store in &stores {
            assert!(matches!(
                store.authenticate(&created.secret, noon()).unwrap(),
                KeyCheck::Valid(_)
            ));
        }
    }
}

#[test]
fn has_keys_switches_on_at_the_first_key_and_stays_on() {
    let dir = Scratch::new("keys-has");
    let store = dir.open();
    let other = dir.open(); // a second process on the same directory
    assert!(!store.has_keys().unwrap());
    assert!(!other.has_keys().unwrap());
    let created = store.create_key(NewKey::default(), noon()).unwrap();
    assert!(store.has_keys().unwrap());
    assert!(other.has_keys().unwrap());
    store.revoke_key(&created.info.id, noon()).unwrap();
    assert!(store.has_keys().unwrap());
    drop(store);
    assert!(dir.open().has_keys().unwrap());
}

#[test]
fn broken_files_are_reported_not_papered_over() {
    let dir = Scratch::new("keys-corrupt");
    drop(dir.open());
    std::fs::write(dir.path().join("key-pepper"), b"short").unwrap();
    let err = SqliteStore::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    assert!(err.to_string().contains("key-pepper"), "{err}");

    let dir = Scratch::new("keys-newer");
    drop(dir.open());
    let db = rusqlite::Connection::open(dir.path().join("state.db")).unwrap();
    db.execute("UPDATE schema_version SET version = 99", [])
        .unwrap();
    drop(db);
    let err = SqliteStore::open(dir.path()).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::SchemaTooNew {
                found: 99,
                supported: 2,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("state.db"), "{err}");
}

#[test]
fn the_store_is_shareable_and_rate_limits_through_the_trait() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<SqliteStore>();

    let dir = Scratch::new("keys-dyn");
    let store: Arc<dyn Store> = Arc::new(dir.open());
    let t0 = Instant::now();
    let rate = Rate::new(60).with_burst(1);
    assert_eq!(store.rate_acquire("k", rate, 1, t0), RateOutcome::Allowed);
    assert_eq!(
        store.rate_acquire("k", rate, 1, t0),
        RateOutcome::Limited {
            retry_after: Duration::from_secs(1)
        }
    );
    store.rate_charge("k", rate, 2, t0 + Duration::from_secs(1));
    assert_eq!(
        store.rate_acquire("k", rate, 1, t0 + Duration::from_secs(1)),
        RateOutcome::Limited {
            retry_after: Duration::from_secs(2)
        }
    );
}

#[test]
fn a_key_revoked_by_another_process_stops_working_within_key_refresh() {
    let dir = Scratch::new("keys-refresh");
    let open = |refresh: Duration| {
        let mut options = warden_state::Options::default();
        options.key_refresh = refresh;
        SqliteStore::open_with(dir.path(), options).unwrap()
    };
    let gateway = open(Duration::from_secs(3600));
    let eager = open(Duration::ZERO);
    let cli = dir.open();
    let key = gateway.create_key(new_key(), noon()).unwrap();
    let other = gateway.create_key(NewKey::default(), noon()).unwrap();
    assert!(matches!(
        gateway.authenticate(&key.secret, noon()).unwrap(),
        KeyCheck::Valid(_)
    ));

    cli.revoke_key(&key.info.id, noon()).unwrap();
    // Within the refresh interval the gateway answers from memory: that is the bound.
    assert!(matches!(
        gateway.authenticate(&key.secret, noon()).unwrap(),
        KeyCheck::Valid(_)
    ));
    // With no interval, the database decides every time.
    assert!(matches!(
        eager.authenticate(&key.secret, noon()).unwrap(),
        KeyCheck::Revoked(_)
    ));
    // A revocation through the gateway's own store forgets what it remembered.
    gateway.revoke_key(&other.info.id, noon()).unwrap();
    assert!(matches!(
        gateway.authenticate(&key.secret, noon()).unwrap(),
        KeyCheck::Revoked(_)
    ));
    assert!(matches!(
        gateway.authenticate(&other.secret, noon()).unwrap(),
        KeyCheck::Revoked(_)
    ));
}
