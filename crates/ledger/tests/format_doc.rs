//! The worked example in docs/ledger.md is what the code produces, byte for byte.

use serde_json::json;
use warden_ledger::checkpoint::Checkpoint;
use warden_ledger::jcs::canonicalize;
use warden_ledger::note::NoteSigner;
use warden_ledger::receipt::Receipt;
use warden_ledger::tree::{leaf_hash, node_hash};

const FORMAT: &str = include_str!("../../../docs/ledger.md");

struct Example {
    vkey: String,
    skey: String,
    entries: [Vec<u8>; 2],
    leaves: [String; 2],
    root_hex: String,
    note: String,
    receipt: String,
}

fn example() -> Example {
    let signer = NoteSigner::from_seed("warden.local/example", [1u8; 32]).unwrap();
    let e0 = canonicalize(
        &json!({"index": 0, "kind": "event", "event": "start", "prev": null, "session": null}),
    )
    .unwrap();
    let l0 = leaf_hash(&e0);
    let e1 = canonicalize(&json!({"index": 1, "kind": "exchange", "model": "gpt-4o", "status": 200, "prev": null, "session": "s1"})).unwrap();
    let l1 = leaf_hash(&e1);
    let root = node_hash(&l0, &l1);
    let signed = Checkpoint::new("warden.local/example", 2, root)
        .sign(&signer)
        .unwrap();
    let receipt = Receipt::new(1, vec![l0], &signed);
    Example {
        vkey: signer.verifier().to_vkey(),
        skey: signer.to_skey(),
        entries: [e0, e1],
        leaves: [l0.to_hex(), l1.to_hex()],
        root_hex: root.to_hex(),
        note: signed.note().to_owned(),
        receipt: receipt.to_text(),
    }
}

/// Every value of the example appears verbatim in docs/ledger.md.
#[test]
fn format_md_worked_example_matches_the_code() {
    let e = example();
    let mut needles = vec![
        format!("verifier key: {}", e.vkey),
        format!("signer key:   {}", e.skey),
        format!("leaf 0: {}", e.leaves[0]),
        format!("leaf 1: {}", e.leaves[1]),
        format!("root:   {}", e.root_hex),
        format!("```\n{}```", e.note),
        format!("```\n{}```", e.receipt),
    ];
    for entry in &e.entries {
        needles.push(String::from_utf8(entry.clone()).unwrap());
    }
    for needle in needles {
        assert!(FORMAT.contains(&needle), "docs/ledger.md lacks:\n{needle}");
    }
    // And the receipt verifies.
    let verifier = warden_ledger::note::NoteVerifier::from_vkey(&e.vkey).unwrap();
    let receipt = Receipt::parse(&e.receipt).unwrap();
    assert_eq!(receipt.verify(&e.entries[1], &verifier).unwrap().size, 2);
}

/// The stored-hash formula as docs/ledger.md writes it.
#[test]
fn format_md_stored_hash_formula() {
    fn stored_hash_index(level: u8, n: u64) -> u64 {
        let mut n = n;
        for _ in 0..level {
            n = 2 * n + 1;
        }
        let mut i = 0;
        while n > 0 {
            i += n;
            n >>= 1;
        }
        i + u64::from(level)
    }
    for level in 0..8u8 {
        for n in 0..100 {
            assert_eq!(
                stored_hash_index(level, n),
                warden_ledger::tree::stored_hash_index(level, n)
            );
        }
    }
}
