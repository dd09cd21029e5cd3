/*!
Warden's verifiable, append-only transparency log: RFC 8785 canonical entries, an RFC 6962 Merkle
tree, C2SP signed checkpoints and receipts, group-committed to disk, with no network or
async-runtime dependency.

Everything Warden records goes through this crate, and everything an auditor needs to check it is
in this crate alone: an auditor's tool can depend on `warden-ledger` without the gateway.

- [`log`] is the durable store. [`Ledger::open`] recovers a directory and starts its writer
  thread; [`Ledger::append`] (callback) and [`Ledger::append_blocking`] record an [`EntryDraft`]
  and answer, only after the batch holding it is `fdatasync`'d with its signed checkpoint, with an
  [`Appended`] carrying the entry bytes and its receipt. [`LedgerReader`] reads entries,
  checkpoints and proofs, also from another process.
- [`verify`] checks a whole directory offline in one streaming pass ([`verify_ledger`]) and
  checks receipts ([`verify_receipt`], [`verify_receipt_against`] for rollback detection).
- [`jcs`] canonicalizes JSON (RFC 8785); [`tree`] hashes and proves (RFC 6962 / RFC 9162);
  [`note`], [`checkpoint`] and [`receipt`] are the C2SP signed-note, tlog-checkpoint and tlog-proof
  formats.

The on-disk format is specified in `docs/ledger.md` (Part B) at the repository root.

```
use warden_ledger::{EntryDraft, Ledger, LedgerOptions, NoteSigner, VerifyOptions, verify_ledger, verify_receipt};

# let dir = std::env::temp_dir().join(format!("warden-ledger-doc-{}", std::process::id()));
# let _ = std::fs::remove_dir_all(&dir);
let signer = NoteSigner::generate("warden.local/example")?;
let vkey = signer.verifier().to_vkey(); // what `warden audit pubkey` prints
let ledger = Ledger::open(&dir, LedgerOptions::new(signer))?;

let body = serde_json::json!({"kind": "exchange", "model": "gpt-4o", "status": 200});
let draft = EntryDraft::new(Some("session-1".into()), body.as_object().unwrap().clone());
let appended = ledger.append_blocking(draft)?; // durable when this returns
assert_eq!(appended.index(), 0);
assert_eq!(
    appended.entry(),
    br#"{"index":0,"kind":"exchange","model":"gpt-4o","prev":null,"session":"session-1","status":200}"#
);

// The client keeps the receipt (base64 in `x-warden-receipt`) and checks it offline.
let check = verify_receipt(&appended.receipt_base64(), appended.entry(), &vkey)?;
assert_eq!(check.checkpoint.size, 1);

// An auditor checks the whole directory with the public key alone.
ledger.close()?;
let report = verify_ledger(&dir, &VerifyOptions::from_vkey(&vkey)?)?;
assert!(report.is_intact());
# std::fs::remove_dir_all(&dir)?;
# Ok::<(), Box<dyn std::error::Error>>(())
```
*/
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod checkpoint;
mod hex;
pub mod jcs;
pub mod log;
pub mod note;
pub mod receipt;
pub mod tree;
pub mod verify;

pub use checkpoint::{Checkpoint, SignedCheckpoint};
pub use log::{
    Appended, BatchObserver, BatchStats, Durability, EntryDraft, Ledger, LedgerError,
    LedgerOptions, LedgerReader, RecoveryReport,
};
pub use note::{NoteSigner, NoteVerifier};
pub use receipt::Receipt;
pub use tree::Hash;
pub use verify::{
    FailureKind, VerifyOptions, VerifyReport, verify_ledger, verify_receipt, verify_receipt_against,
};
