//! Every kind of tampering is detected by `verify_ledger`, with the right first bad index.
//!
//! Each test builds a ledger of 12 entries appended one at a time (one entry and one checkpoint
//! per batch), alters its files the way an attacker would — re-framing records so the damage is
//! not merely a checksum error, and, where noted, holding the signing key — and checks the
//! verifier's verdict.

mod common;

use std::path::Path;

use common::*;
use serde_json::{Value, json};
use warden_ledger::checkpoint::{Checkpoint, SignedCheckpoint};
use warden_ledger::log::LedgerOptions;
use warden_ledger::tree::Hash;
use warden_ledger::verify::{FailureKind, VerifyOptions, VerifyReport, verify_ledger};

const N: u64 = 12;

fn build(name: &str) -> TempDir {
    let dir = TempDir::new(name);
    sequential_ledger(&dir.ledger(), N, LedgerOptions::new(signer()));
    dir
}

fn verify(ledger: &Path) -> VerifyReport {
    verify_ledger(ledger, &VerifyOptions::new(signer().verifier())).unwrap()
}

#[track_caller]
fn assert_failure(report: &VerifyReport, index: u64, kind: FailureKind) {
    let failure = report
        .failure
        .as_ref()
        .unwrap_or_else(|| panic!("tampering went unnoticed: {report:?}"));
    assert_eq!(
        (failure.index, failure.kind),
        (index, kind),
        "got {failure}"
    );
    eprintln!("detected: {failure}");
}

/// Rewrites segment 0 through `f`, keeping the framing valid.
fn edit_segment(ledger: &Path, f: impl FnOnce(&mut Vec<Record>)) {
    let path = segment0(ledger);
    let (header, mut records) = read_file(&path, 16);
    f(&mut records);
    write_file(&path, &header, &records);
}

fn set_field(records: &mut [Record], index: u64, key: &str, value: Value) {
    let pos = entry_pos(records, index);
    let mut v = records[pos].json();
    v[key] = value;
    records[pos].payload = to_bytes(&v);
}

#[test]
fn an_untouched_ledger_verifies() {
    let dir = build("intact");
    let report = verify(&dir.ledger());
    assert!(report.is_intact(), "{:?}", report.failure);
    assert_eq!(report.entries, N);
    assert_eq!(report.verified_size, N);
    assert_eq!(report.checkpoints_checked, N);
    assert_eq!(report.checkpoints_file_checked, N);
    assert_eq!(report.sessions, 4);
    assert_eq!(report.uncommitted_entries, 0);
    assert_eq!(report.latest.as_ref().unwrap().size, N);
}

#[test]
fn a_flipped_byte_is_an_edit_at_that_entry() {
    let dir = build("flip");
    let path = segment0(&dir.ledger());
    let mut bytes = std::fs::read(&path).unwrap();
    let needle = br#""n":5,"#;
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    bytes[at + 4] = b'6';
    std::fs::write(&path, bytes).unwrap();
    assert_failure(&verify(&dir.ledger()), 5, FailureKind::Edited);
}

#[test]
fn a_reframed_edit_is_caught_by_the_tree() {
    let dir = build("edit");
    edit_segment(&dir.ledger(), |r| set_field(r, 7, "n", json!(700)));
    let report = verify(&dir.ledger());
    assert_failure(&report, 7, FailureKind::Edited);
    assert_eq!(report.verified_size, 7);
}

#[test]
fn an_edit_of_the_last_entry_is_caught() {
    let dir = build("edit-last");
    edit_segment(&dir.ledger(), |r| {
        set_field(r, N - 1, "route", json!("/elsewhere"))
    });
    assert_failure(&verify(&dir.ledger()), N - 1, FailureKind::Edited);
}

#[test]
fn a_deleted_entry_is_named() {
    // The entry and its checkpoint removed together.
    let dir = build("delete");
    edit_segment(&dir.ledger(), |r| {
        let pos = entry_pos(r, 4);
        r.drain(pos..pos + 2);
    });
    assert_failure(&verify(&dir.ledger()), 4, FailureKind::Deleted);

    // Only the entry removed.
    let dir = build("delete-entry-only");
    edit_segment(&dir.ledger(), |r| {
        let pos = entry_pos(r, 9);
        r.remove(pos);
    });
    assert_failure(&verify(&dir.ledger()), 9, FailureKind::Deleted);
}

#[test]
fn an_inserted_entry_is_named() {
    // A fabricated entry claiming index 6, chained correctly, before the real entry 6.
    let dir = build("insert");
    edit_segment(&dir.ledger(), |r| {
        let pos = entry_pos(r, 6);
        let mut fake = r[pos].json();
        fake["n"] = json!(666);
        r.insert(
            pos,
            Record {
                kind: ENTRY,
                payload: to_bytes(&fake),
            },
        );
    });
    assert_failure(&verify(&dir.ledger()), 6, FailureKind::Inserted);

    // A verbatim copy of entry 3 replayed after entry 8.
    let dir = build("insert-copy");
    edit_segment(&dir.ledger(), |r| {
        let copy = r[entry_pos(r, 3)].clone();
        let pos = entry_pos(r, 9);
        r.insert(pos, copy);
    });
    assert_failure(&verify(&dir.ledger()), 9, FailureKind::Inserted);

    // A verbatim copy of entry 8 right after itself.
    let dir = build("insert-dup");
    edit_segment(&dir.ledger(), |r| {
        let pos = entry_pos(r, 8);
        let copy = r[pos].clone();
        r.insert(pos + 1, copy);
    });
    assert_failure(&verify(&dir.ledger()), 9, FailureKind::Inserted);
}

#[test]
fn swapped_entries_are_a_reorder() {
    let dir = build("swap");
    edit_segment(&dir.ledger(), |r| {
        let (a, b) = (entry_pos(r, 3), entry_pos(r, 8));
        r.swap(a, b);
    });
    assert_failure(&verify(&dir.ledger()), 3, FailureKind::Reordered);
}

#[test]
fn a_broken_session_chain_is_named() {
    let dir = build("chain");
    edit_segment(&dir.ledger(), |r| set_field(r, 10, "prev", Value::Null));
    assert_failure(&verify(&dir.ledger()), 10, FailureKind::BrokenChain);
}

#[test]
fn truncation_is_caught_by_the_checkpoints_file() {
    let dir = build("truncate");
    edit_segment(&dir.ledger(), |r| {
        let pos = entry_pos(r, 8);
        r.truncate(pos);
    });
    let report = verify(&dir.ledger());
    assert_failure(&report, 8, FailureKind::Truncated);
    assert_eq!(report.verified_size, 8);
}

#[test]
fn truncation_is_caught_by_the_anchor() {
    let dir = TempDir::new("anchor");
    let anchor = dir.path().join("anchor.ckpt");
    let mut opts = LedgerOptions::new(signer());
    opts.anchor = Some(anchor.clone());
    sequential_ledger(&dir.ledger(), N, opts);
    let mut vopts = VerifyOptions::new(signer().verifier());
    vopts.anchor = Some(anchor.clone());
    let report = verify_ledger(&dir.ledger(), &vopts).unwrap();
    assert!(report.is_intact(), "{:?}", report.failure);
    assert_eq!(report.anchor_checked, N);

    // Cut the log and the checkpoints file consistently: only the anchor remembers.
    edit_segment(&dir.ledger(), |r| {
        let pos = entry_pos(r, 5);
        r.truncate(pos);
    });
    let cps = dir.ledger().join("checkpoints");
    let (header, mut records) = read_file(&cps, 8);
    records.truncate(5);
    write_file(&cps, &header, &records);
    assert!(
        verify(&dir.ledger()).is_intact(),
        "without the anchor it looks whole"
    );
    let report = verify_ledger(&dir.ledger(), &vopts).unwrap();
    assert_failure(&report, 5, FailureKind::Truncated);
    assert!(report.failure.unwrap().detail.contains("anchor"));
}

#[test]
fn a_forged_checkpoint_signature_is_caught() {
    let dir = build("forge");
    edit_segment(&dir.ledger(), |r| {
        // The checkpoint after entry 6 (size 7): change one byte of its signature.
        let pos = entry_pos(r, 6) + 1;
        assert_eq!(r[pos].kind, CHECKPOINT);
        let note = String::from_utf8(r[pos].payload.clone()).unwrap();
        let (text, sig) = note.rsplit_once(' ').unwrap();
        let mut sig = sig.to_owned().into_bytes();
        sig[10] = if sig[10] == b'A' { b'B' } else { b'A' };
        r[pos].payload = format!("{text} {}", String::from_utf8(sig).unwrap()).into_bytes();
    });
    assert_failure(&verify(&dir.ledger()), 6, FailureKind::BadSignature);
}

#[test]
fn a_checkpoint_signed_by_another_key_is_caught() {
    let dir = build("other-key");
    let mallory = warden_ledger::note::NoteSigner::generate("warden.local/it").unwrap();
    edit_segment(&dir.ledger(), |r| {
        let pos = entry_pos(r, 2) + 1;
        let cp = SignedCheckpoint::parse_unverified(std::str::from_utf8(&r[pos].payload).unwrap())
            .unwrap();
        let forged = cp.checkpoint().clone().sign(&mallory).unwrap();
        r[pos].payload = forged.note().as_bytes().to_vec();
    });
    assert_failure(&verify(&dir.ledger()), 2, FailureKind::BadSignature);
}

/// A validly signed checkpoint (the attacker holds the key) with a root that is not the log's.
fn forged_root(note: &[u8]) -> Vec<u8> {
    let cp = SignedCheckpoint::parse_unverified(std::str::from_utf8(note).unwrap()).unwrap();
    Checkpoint::new(cp.checkpoint().origin.clone(), cp.size(), Hash([9u8; 32]))
        .sign(&signer())
        .unwrap()
        .note()
        .as_bytes()
        .to_vec()
}

#[test]
fn inconsistent_checkpoints_are_caught() {
    // In the segment, mid-log: the next checkpoint agrees with the entries, so this one lies.
    let dir = build("inconsistent");
    edit_segment(&dir.ledger(), |r| {
        let pos = entry_pos(r, 4) + 1;
        r[pos].payload = forged_root(&r[pos].payload);
    });
    assert_failure(
        &verify(&dir.ledger()),
        4,
        FailureKind::InconsistentCheckpoints,
    );

    // In the segment, the last checkpoint: the checkpoints file's copy agrees with the entries.
    let dir = build("inconsistent-last");
    edit_segment(&dir.ledger(), |r| {
        let pos = r.len() - 1;
        r[pos].payload = forged_root(&r[pos].payload);
    });
    assert_failure(
        &verify(&dir.ledger()),
        N - 1,
        FailureKind::InconsistentCheckpoints,
    );

    // In the checkpoints file: a fork's checkpoint for a size the log also signed.
    let dir = build("inconsistent-file");
    let cps = dir.ledger().join("checkpoints");
    let (header, mut records) = read_file(&cps, 8);
    records[8].payload = forged_root(&records[8].payload);
    write_file(&cps, &header, &records);
    assert_failure(
        &verify(&dir.ledger()),
        8,
        FailureKind::InconsistentCheckpoints,
    );
}

#[test]
fn a_torn_tail_and_an_unfinished_batch_are_not_tampering() {
    let dir = build("torn");
    let path = segment0(&dir.ledger());
    let mut bytes = std::fs::read(&path).unwrap();
    let mut next = json!({"index": N, "kind": "exchange", "n": N, "prev": null, "session": "zz"});
    next["route"] = json!("/v1/x");
    let record = encode(&Record {
        kind: ENTRY,
        payload: to_bytes(&next),
    });
    bytes.extend_from_slice(&record);
    bytes.extend_from_slice(&record[..20]);
    std::fs::write(&path, bytes).unwrap();
    let report = verify(&dir.ledger());
    assert!(report.is_intact(), "{:?}", report.failure);
    assert_eq!(report.uncommitted_entries, 1);
    assert_eq!(report.torn_tail_bytes, 20);
    assert_eq!(report.verified_size, N);
}

#[test]
fn a_wrong_verifier_key_fails_every_checkpoint() {
    let dir = build("wrong-vkey");
    let other = warden_ledger::note::NoteSigner::generate("warden.local/it").unwrap();
    let report = verify_ledger(&dir.ledger(), &VerifyOptions::new(other.verifier())).unwrap();
    assert_failure(&report, 0, FailureKind::BadSignature);
}
