use super::*;

/// The example key and note of the C2SP signed-note specification (`c2sp.org/signed-note`,
/// "Example", revision d4c16da).
const SPEC_VKEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
const SPEC_NOTE: &str = "This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

/// The example of Go's `golang.org/x/mod/sumdb/note` package documentation, which includes the
/// signer key, so signing must reproduce the note byte for byte (Ed25519 is deterministic).
const GO_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const GO_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const GO_NOTE_SIG: &str = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

#[test]
fn spec_example_note_verifies() {
    let verifier = NoteVerifier::from_vkey(SPEC_VKEY).unwrap();
    assert_eq!(verifier.name(), "example.com/foo");
    assert_eq!(verifier.key_id(), 0x530d903a);
    assert_eq!(verifier.to_vkey(), SPEC_VKEY);
    assert_eq!(
        verifier.open(SPEC_NOTE).unwrap(),
        "This is an example message.\n"
    );
    let tampered = SPEC_NOTE.replace("example message", "exemplary message");
    assert!(matches!(
        verifier.open(&tampered),
        Err(NoteError::BadSignature { .. })
    ));
}

#[test]
fn go_example_signs_byte_for_byte() {
    let signer = NoteSigner::from_skey(GO_SKEY).unwrap();
    assert_eq!(signer.to_skey(), GO_SKEY);
    assert_eq!(signer.verifier().to_vkey(), GO_VKEY);
    let note = signer.sign(GO_TEXT).unwrap();
    assert_eq!(note, format!("{GO_TEXT}\n{GO_NOTE_SIG}"));
    let verifier = NoteVerifier::from_vkey(GO_VKEY).unwrap();
    assert_eq!(verifier.open(&note).unwrap(), GO_TEXT);
}

#[test]
fn unknown_signatures_are_ignored_but_required_one_must_exist() {
    let verifier = NoteVerifier::from_vkey(GO_VKEY).unwrap();
    let other = NoteSigner::generate("someone.else/log").unwrap();
    // A note signed by the trusted key and another key verifies.
    let theirs = other.sign(GO_TEXT).unwrap();
    let their_line = theirs.rsplit_once("\n\n").unwrap().1;
    let both = format!("{GO_TEXT}\n{their_line}{GO_NOTE_SIG}");
    assert_eq!(verifier.open(&both).unwrap(), GO_TEXT);
    // Only the other key: not signed by us.
    assert!(matches!(
        verifier.open(&theirs),
        Err(NoteError::NotSigned { .. })
    ));
    // Same name, different id: ignored, so also not signed.
    let impostor = NoteSigner::generate("PeterNeumann").unwrap();
    assert!(matches!(
        verifier.open(&impostor.sign(GO_TEXT).unwrap()),
        Err(NoteError::NotSigned { .. })
    ));
}

#[test]
fn malformed_notes_are_rejected() {
    let verifier = NoteVerifier::from_vkey(GO_VKEY).unwrap();
    let good = format!("{GO_TEXT}\n{GO_NOTE_SIG}");
    for bad in [
        GO_TEXT.to_owned(),
        good.trim_end().to_owned(),
        good.replace('—', "-"),
        good.replace("PeterNeumann x08", "PeterNeumann  x08"),
        good.replace('\n', "\r\n"),
        format!("{GO_TEXT}\n— PeterNeumann !!!\n"),
    ] {
        assert!(verifier.open(&bad).is_err(), "accepted {bad:?}");
    }
}

#[test]
fn key_strings_are_validated() {
    for bad in [
        "",
        "PeterNeumann",
        "PeterNeumann+c74f20a3",
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+Apc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10",
    ] {
        assert!(NoteVerifier::from_vkey(bad).is_err(), "accepted {bad:?}");
    }
    assert!(NoteSigner::from_skey(GO_VKEY).is_err());
    assert!(NoteSigner::from_skey(&GO_SKEY.replace("c74f20a3", "c74f20a4")).is_err());
    // Uppercase hex ids are accepted on input; output is lowercase.
    let upper = GO_VKEY.replace("c74f20a3", "C74F20A3");
    assert_eq!(NoteVerifier::from_vkey(&upper).unwrap().to_vkey(), GO_VKEY);
}

#[test]
fn generated_keys_round_trip_and_sign() {
    let signer = NoteSigner::generate("warden.local/test").unwrap();
    let again = NoteSigner::from_skey(&signer.to_skey()).unwrap();
    assert_eq!(again.verifier(), signer.verifier());
    let vkey = signer.verifier().to_vkey();
    let verifier = NoteVerifier::from_vkey(&vkey).unwrap();
    let note = signer.sign("hello\nworld\n").unwrap();
    assert_eq!(verifier.open(&note).unwrap(), "hello\nworld\n");
    assert!(signer.sign("no newline").is_err());
    assert!(signer.sign("tab\there\n").is_err());
    assert!(NoteSigner::generate("bad name").is_err());
    assert!(!format!("{signer:?}").contains(&signer.to_skey()));
}

#[test]
fn key_files_are_private_and_round_trip() {
    let dir = std::env::temp_dir().join(format!("warden-ledger-note-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("signing.key");
    let _ = std::fs::remove_file(&path);
    let signer = NoteSigner::create_key_file(&path, "warden.local/keyfile").unwrap();
    assert!(NoteSigner::create_key_file(&path, "warden.local/keyfile").is_err());
    let read = NoteSigner::read_key_file(&path).unwrap();
    assert_eq!(read.verifier(), signer.verifier());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
