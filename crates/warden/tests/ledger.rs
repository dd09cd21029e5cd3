//! The audit ledger through the real binary: receipts on every released response (headers for
//! buffered ones, in-band for SSE streams), offline verification with `warden audit`, tamper
//! detection, and fail-closed behaviour when the ledger cannot write.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use http::Method;

const CHAT: &str = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#;

fn audit(data_dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("audit")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("WARDEN_SIGNING_KEY")
        .env_remove("WARDEN_VERIFIER_KEY")
        .output()
        .expect("run warden audit")
}

/// The entry at `index`, parsed from its exact bytes.
fn entry_json(data_dir: &Path, index: u64) -> serde_json::Value {
    serde_json::from_slice(&audit(data_dir, &["show", &index.to_string(), "--raw"]).stdout).unwrap()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Checks a receipt offline against the entry bytes and the public key only.
fn verify_offline(data_dir: &Path, receipt_b64: &str, index: u64) -> std::process::Output {
    let work = temp_dir("receipt");
    let entry = audit(data_dir, &["show", &index.to_string(), "--raw"]);
    assert!(entry.status.success());
    assert_ne!(entry.stdout.last(), Some(&b'\n'), "--raw adds no newline");
    std::fs::write(work.join("entry"), &entry.stdout).unwrap();
    std::fs::write(work.join("receipt"), receipt_b64).unwrap();
    let vkey = stdout(&audit(data_dir, &["pubkey"])).trim().to_string();
    Command::new(BIN)
        .args(["audit", "verify-receipt"])
        .arg(work.join("receipt"))
        .arg("--entry")
        .arg(work.join("entry"))
        .args(["--pubkey", &vkey, "--data-dir"])
        .arg(work.join("no-ledger-here"))
        .output()
        .unwrap()
}

#[tokio::test]
async fn buffered_responses_carry_receipts_that_verify_offline() {
    let mock = mock();
    let gw = gateway(&mock.url(), &[]);
    let mut last = None;
    for (path, body) in [
        ("/v1/chat/completions", CHAT.to_string()),
        (
            "/v1/messages",
            r#"{"model":"claude-haiku-4-5","max_tokens":9,"messages":[{"role":"user","content":"hi"}]}"#.into(),
        ),
        (
            "/v1beta/models/gemini-2.5-flash:generateContent",
            r#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}"#.into(),
        ),
    ] {
        let r = post_json(&format!("{}{path}", gw.url()), &[], &body).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let index = r.entry_index();
        if let Some(prev) = last {
            assert!(index > prev, "entries are sequenced");
        }
        last = Some(index);
        let receipt = r.headers["x-warden-receipt"].to_str().unwrap().to_string();
        let out = verify_offline(&gw.data_dir, &receipt, index);
        assert!(out.status.success(), "{path}: {}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
        assert!(stdout(&out).contains(&format!("entry {index} is in the log")));
    }
    // The same receipt does not verify a different entry.
    let r = post_json(&format!("{}/v1/chat/completions", gw.url()), &[], CHAT).await;
    let index = r.entry_index();
    let receipt = r.headers["x-warden-receipt"].to_str().unwrap().to_string();
    let out = verify_offline(&gw.data_dir, &receipt, index - 1);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
}

#[tokio::test]
async fn refusals_are_recorded_with_receipts_too() {
    let mock = mock();
    let gw = gateway(&mock.url(), &[]);
    let r = post_json(
        &format!("{}/v1/chat/completions", gw.url()),
        &[],
        "{not json",
    )
    .await;
    assert_eq!(r.status, 400);
    let index = r.entry_index();
    let entry = entry_json(&gw.data_dir, index);
    assert_eq!(entry["outcome"]["result"], "refused");
    assert_eq!(entry["outcome"]["code"], "invalid_request");
    assert_eq!(entry["kind"], "exchange");
}

/// Splits an SSE body into (comment receipt, the event right after it).
fn receipt_before(body: &str, terminal: &str) -> String {
    let at = body
        .find(": warden-receipt ")
        .unwrap_or_else(|| panic!("no receipt comment in {body}"));
    let rest = &body[at + ": warden-receipt ".len()..];
    let (receipt, after) = rest.split_once("\n\n").unwrap();
    assert!(
        after.starts_with(terminal),
        "receipt must come right before {terminal:?}, got {after:?}"
    );
    receipt.to_string()
}

#[tokio::test]
async fn streams_carry_the_request_entry_in_headers_and_the_receipt_before_the_terminal_event() {
    let mock = mock();
    let gw = gateway(&mock.url(), &[]);
    let stream_chat =
        r#"{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let r = post_json(
        &format!("{}/v1/chat/completions", gw.url()),
        &[("x-warden-session", "st-1")],
        stream_chat,
    )
    .await;
    assert_eq!(r.status, 200);
    let request_entry = r.entry_index();
    let receipt = receipt_before(&r.text(), "data: [DONE]");
    let text = String::from_utf8(base64_decode(&receipt)).unwrap();
    let index: u64 = text
        .lines()
        .nth(1)
        .unwrap()
        .strip_prefix("index ")
        .unwrap()
        .parse()
        .unwrap();
    assert!(index > request_entry);
    let out = verify_offline(&gw.data_dir, &receipt, index);
    assert!(out.status.success(), "{}", stdout(&out));
    // The completion entry points at its request entry, and both are in the session's chain.
    let done = entry_json(&gw.data_dir, index);
    assert_eq!(done["request_entry"], request_entry);
    assert_eq!(done["session"], "st-1");
    assert!(
        done["prev"].is_string(),
        "second entry of the session chains to the first"
    );

    let r = post_json(
        &format!("{}/v1/messages", gw.url()),
        &[],
        r#"{"model":"claude-sonnet-4-5","max_tokens":9,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;
    receipt_before(&r.text(), "event: message_stop");

    // Gemini's SDK reads non-data lines as JSON and NDJSON has no comments: no in-band receipt,
    // the stream is byte-for-byte what the upstream sent.
    for (path, body) in [
        (
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
            r#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}"#,
        ),
        (
            "/api/chat",
            r#"{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}"#,
        ),
    ] {
        let r = post_json(&format!("{}{path}", gw.url()), &[], body).await;
        assert_eq!(r.status, 200);
        assert!(r.headers.contains_key("x-warden-entry"));
        assert!(!r.text().contains("warden-receipt"), "{path}");
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let out = Command::new("base64")
        .arg("-d")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    out.stdin.as_ref().unwrap().write_all(s.as_bytes()).unwrap();
    out.wait_with_output().unwrap().stdout
}

#[tokio::test]
async fn audit_show_export_and_verify_detect_an_edited_entry() {
    let mock = mock();
    let gw = gateway(&mock.url(), &[]);
    for session in ["a", "b", "a"] {
        let r = post_json(
            &format!("{}/v1/chat/completions", gw.url()),
            &[("x-warden-session", session), ("x-warden-tenant", "acme")],
            CHAT,
        )
        .await;
        assert_eq!(r.status, 200);
    }
    let data = gw.data_dir.clone();
    drop(gw);

    let listed = stdout(&audit(&data, &["show", "--session", "a", "--json"]));
    assert_eq!(listed.lines().count(), 2, "{listed}");
    let csv = stdout(&audit(
        &data,
        &["export", "--format", "csv", "--tenant", "acme"],
    ));
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("index,time,kind,session,tenant,agent,provider")
    );
    assert_eq!(lines.count(), 3);

    let ok = audit(&data, &["verify"]);
    assert!(ok.status.success(), "{}", stdout(&ok));
    assert!(stdout(&ok).contains("intact"));

    // An auditor's copy of the ledger folder, elsewhere, verifies with the public key alone.
    let vkey = stdout(&audit(&data, &["pubkey"])).trim().to_string();
    let copy = temp_dir("ledger-copy");
    let cp = Command::new("cp")
        .arg("-r")
        .arg(data.join("ledger"))
        .arg(&copy)
        .status()
        .unwrap();
    assert!(cp.success());
    std::fs::remove_file(copy.join("ledger/signing.key")).unwrap();
    let out = Command::new(BIN)
        .args(["audit", "verify"])
        .arg(copy.join("ledger"))
        .args(["--pubkey", &vkey, "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["intact"], true);
    assert_eq!(report["entries"], 4);
    // A different key does not vouch for this log.
    let other = Command::new(BIN)
        .args(["audit", "verify"])
        .arg(copy.join("ledger"))
        .args([
            "--pubkey",
            "warden.local/other+00000000+AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=",
        ])
        .output()
        .unwrap();
    assert_ne!(other.status.code(), Some(0));

    // Flip one byte of the second exchange's model name on disk.
    let seg_dir = data.join("ledger").join("segments");
    let seg = std::fs::read_dir(&seg_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&seg).unwrap();
    let needle = b"\"session\":\"b\"";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("entry on disk");
    bytes[at + 12] = b'c';
    std::fs::write(&seg, &bytes).unwrap();
    let bad = audit(&data, &["verify"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stdout(&bad));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("TAMPERED") && err.contains("first bad entry 2"),
        "{err}"
    );
}

#[tokio::test]
async fn a_ledger_that_cannot_write_fails_closed() {
    let mock = mock();
    let dir = temp_dir("fullgw");
    // A file-size limit makes every ledger write past it fail (EFBIG), like a full disk;
    // SIGXFSZ is ignored so the write fails instead of killing the process.
    let log = dir.join("stderr.log");
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f 48; exec {BIN} serve --listen 127.0.0.1:0 --data-dir {} --upstream openai={}",
            dir.display(),
            mock.url()
        ))
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let info = dir.join("gateway.json");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !info.exists() {
        assert!(
            Instant::now() < deadline,
            "{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&info).unwrap()).unwrap();
    let url = format!("http://{}", v["listen"].as_str().unwrap());
    let mut refused = None;
    for i in 0..2000 {
        let r = post_json(
            &format!("{url}/v1/chat/completions"),
            &[("x-warden-session", &format!("s-{i}"))],
            CHAT,
        )
        .await;
        match r.status.as_u16() {
            200 => assert!(
                refused.is_none(),
                "a response was released after the ledger failed"
            ),
            503 => {
                assert_eq!(
                    r.json()["error"]["code"],
                    "audit_unavailable",
                    "{}",
                    r.text()
                );
                assert!(!r.headers.contains_key("x-warden-receipt"));
                refused.get_or_insert(i);
            }
            s => panic!("unexpected status {s}: {}", r.text()),
        }
        if refused.is_some_and(|first| i >= first + 3) {
            break;
        }
    }
    assert!(refused.is_some(), "the ledger never filled up");
    let ready = send(Method::GET, &format!("{url}/readyz"), &[], "").await;
    assert_eq!(ready.status, 503);
    // Streams fail closed too: refused before anything is forwarded.
    let before = mock_stats(&mock).await["requests"].as_u64().unwrap();
    let r = post_json(
        &format!("{url}/v1/chat/completions"),
        &[],
        r#"{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;
    assert_eq!(r.status, 503);
    assert_eq!(
        mock_stats(&mock).await["requests"].as_u64().unwrap(),
        before
    );
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("cannot record"), "{text}");
}

/// Starts `warden serve` on an existing data dir (so restarts reuse the ledger), with the
/// `warden.toml` in it if there is one.
fn serve_on(dir: &Path, upstream: &str) -> (std::process::Child, String) {
    let _ = std::fs::remove_file(dir.join("gateway.json"));
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir);
    if dir.join("warden.toml").exists() {
        cmd.arg("--config").arg(dir.join("warden.toml"));
    }
    let child = cmd
        .arg("--upstream")
        .arg(format!("openai={upstream}"))
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("stderr.log"))
                .unwrap(),
        )
        .spawn()
        .unwrap();
    let info = dir.join("gateway.json");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !info.exists() {
        assert!(Instant::now() < deadline, "gateway did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&info).unwrap()).unwrap();
    (child, format!("http://{}", v["listen"].as_str().unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_released_entry() {
    sigkill_rounds(temp_dir("crash")).await;
}

/// `durability = "write"` releases a response before its entry's fdatasync; the entry is in the
/// kernel's page cache by then, so a crash of the process (not of the host) still loses none.
/// The interval is long enough that no timed sync runs during the test: what survives the kills
/// survives by the write alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_durability_loses_no_released_entry_to_a_process_crash() {
    let dir = temp_dir("crash-write");
    std::fs::write(
        dir.join("warden.toml"),
        "[audit]\ndurability = \"write\"\nsync_interval = \"60s\"\n",
    )
    .unwrap();
    sigkill_rounds(dir).await;
}

/// Three rounds of load, each ended by SIGKILL; then every receipt a client got must verify.
async fn sigkill_rounds(dir: std::path::PathBuf) {
    let mock = mock();
    let mut receipts: Vec<(u64, String)> = Vec::new();
    for round in 0..3 {
        let (mut child, url) = serve_on(&dir, &mock.url());
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut tasks = Vec::new();
        for t in 0..8 {
            let (url, stop) = (url.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                let c = client();
                for i in 0..500 {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let req = http::Request::post(format!("{url}/v1/chat/completions"))
                        .header("content-type", "application/json")
                        .header("x-warden-session", format!("r{round}-t{t}-{}", i % 3))
                        .body(http_body_util::Full::new(bytes::Bytes::from(CHAT)))
                        .unwrap();
                    // Connection errors are expected once the gateway is killed.
                    let Ok(Ok(resp)) =
                        tokio::time::timeout(Duration::from_secs(10), c.request(req)).await
                    else {
                        break;
                    };
                    if resp.status() != 200 {
                        continue;
                    }
                    let (entry, receipt) = (
                        resp.headers().get("x-warden-entry").cloned(),
                        resp.headers().get("x-warden-receipt").cloned(),
                    );
                    // Only a response whose body fully arrived counts as released.
                    let complete = http_body_util::BodyExt::collect(resp.into_body())
                        .await
                        .is_ok();
                    if let (true, Some(e), Some(r)) = (complete, entry, receipt) {
                        got.push((
                            e.to_str().unwrap().parse::<u64>().unwrap(),
                            r.to_str().unwrap().to_string(),
                        ));
                    }
                }
                got
            }));
        }
        tokio::time::sleep(Duration::from_millis(300 + 150 * round)).await;
        // SIGKILL: no shutdown path runs.
        child.kill().unwrap();
        child.wait().unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in tasks {
            receipts.extend(t.await.unwrap());
        }
    }
    assert!(
        receipts.len() > 50,
        "too little load to mean anything: {}",
        receipts.len()
    );
    eprintln!("{} released responses across 3 SIGKILLs", receipts.len());

    // Restart once: recovery cuts any torn tail; then everything a client got must verify.
    let (mut child, _url) = serve_on(&dir, &mock.url());
    child.kill().unwrap();
    child.wait().unwrap();
    let v = audit(&dir, &["verify"]);
    assert!(
        v.status.success(),
        "{}{}",
        stdout(&v),
        String::from_utf8_lossy(&v.stderr)
    );
    let vkey = stdout(&audit(&dir, &["pubkey"])).trim().to_string();
    let work = temp_dir("crash-receipts");
    for (n, (index, receipt)) in receipts.iter().enumerate() {
        let path = work.join(format!("r{n}"));
        std::fs::write(&path, receipt).unwrap();
        let out = Command::new(BIN)
            .args(["audit", "verify-receipt"])
            .arg(&path)
            .args(["--pubkey", &vkey, "--data-dir"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "receipt for entry {index} does not verify after crashes: {}{}",
            stdout(&out),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test]
async fn buffer_mode_holds_whole_streams_and_puts_the_receipt_in_headers() {
    let mock = mock();
    let gw = gateway_with_config(&mock.url(), "[audit]\nstream = \"buffer\"\n");
    let req = http::Request::post(format!("{}/v1/chat/completions", gw.url()))
        .header("content-type", "application/json")
        .header("x-mock-scenario", r#"{"words":6,"chunk_delay_ms":30}"#)
        .body(http_body_util::Full::new(bytes::Bytes::from(
            r#"{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
        )))
        .unwrap();
    let resp = client().request(req).await.unwrap();
    // The headers arrive only once the whole stream is recorded, so they hold its receipt.
    assert_eq!(resp.status(), 200);
    let index: u64 = resp.headers()["x-warden-entry"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let receipt = resp.headers()["x-warden-receipt"]
        .to_str()
        .unwrap()
        .to_string();
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let text = String::from_utf8_lossy(&body);
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    assert!(!text.contains("warden-receipt"));
    let entry = entry_json(&gw.data_dir, index);
    assert_eq!(entry["stream"], true);
    assert_eq!(
        entry["request_entry"],
        serde_json::Value::Null,
        "no request entry in buffer mode"
    );
    assert_eq!(entry["finish_reason"], "stop");
    // Warden asked for usage the client did not: the entry has it, the client's body does not.
    assert!(entry["usage"]["input_tokens"].as_u64().is_some(), "{entry}");
    assert!(!text.contains("prompt_tokens"), "{text}");
    assert!(
        verify_offline(&gw.data_dir, &receipt, index)
            .status
            .success()
    );
}

#[tokio::test]
async fn request_entries_all_records_buffered_requests_before_forwarding() {
    let mock = mock();
    let gw = gateway_with_config(
        &mock.url(),
        "[audit]\nrequest_entries = \"all\"\ncapture = \"full\"\n",
    );
    let r = post_json(
        &format!("{}/v1/chat/completions", gw.url()),
        &[("x-mock-scenario", r#"{"text":"full capture","tool_calls":[{"name":"lookup","arguments":{"q":"x"}}]}"#)],
        r#"{"model":"gpt-4o","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"find x"}]}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    let index = r.entry_index();
    let entry = entry_json(&gw.data_dir, index);
    let request_entry = entry["request_entry"]
        .as_u64()
        .expect("request entry recorded first");
    assert!(request_entry < index);
    let req = entry_json(&gw.data_dir, request_entry);
    assert_eq!(req["kind"], "request");
    // Full capture keeps the content; metadata capture (the default) keeps only digests.
    assert_eq!(req["content"]["system"][0], "be brief");
    assert_eq!(
        entry["content"]["messages"][0]["content"][0]["text"],
        "find x"
    );
    assert_eq!(entry["tool_calls"][0]["arguments"], r#"{"q":"x"}"#);
}

#[tokio::test]
async fn metadata_capture_keeps_no_content() {
    let mock = mock();
    let gw = gateway_with_config(&mock.url(), "[audit]\ncapture = \"metadata\"\n");
    let r = post_json(
        &format!("{}/v1/chat/completions", gw.url()),
        &[("x-mock-scenario", r#"{"text":"secret answer","tool_calls":[{"name":"lookup","arguments":{"q":"secret"}}]}"#)],
        r#"{"model":"gpt-4o","messages":[{"role":"user","content":"secret question"}]}"#,
    )
    .await;
    let index = r.headers["x-warden-entry"].to_str().unwrap().to_string();
    let raw = audit(&gw.data_dir, &["show", &index, "--raw"]).stdout;
    let text = String::from_utf8_lossy(&raw);
    assert!(!text.contains("secret"), "{text}");
    let entry: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(entry["tool_calls"][0]["name"], "lookup");
    assert_eq!(
        entry["tool_calls"][0]["arguments_sha256"]
            .as_str()
            .unwrap()
            .len(),
        64
    );
}

#[tokio::test]
async fn anchor_command_publishes_signed_checkpoints_off_the_ledger() {
    let mock = mock();
    let out = temp_dir("anchor").join("published.txt");
    let gw = gateway_with_config(
        &mock.url(),
        &format!(
            "[audit]\nanchor_command = [\"sh\", \"-c\", \"echo size=$WARDEN_CHECKPOINT_SIZE >> {0}; cat >> {0}\"]\nanchor_interval = \"100ms\"\n",
            out.display()
        ),
    );
    for _ in 0..3 {
        assert_eq!(
            post_json(&format!("{}/v1/chat/completions", gw.url()), &[], CHAT)
                .await
                .status,
            200
        );
    }
    // The start event and three exchanges: a checkpoint of size 4 must reach the anchor, and
    // what was published is the signed checkpoint, verifiable with the public key alone. The
    // anchor's `cat` may still be writing when we read, so a note is judged only once it is
    // whole (a cut note fails to open; the deadline bounds the wait).
    let vkey = stdout(&audit(&gw.data_dir, &["pubkey"])).trim().to_string();
    let verifier = warden_ledger::note::NoteVerifier::from_vkey(&vkey).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let cp = loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        let opened = text.rfind("size=4\n").map(|at| {
            warden_ledger::checkpoint::SignedCheckpoint::open(
                &text[at + "size=4\n".len()..],
                &verifier,
            )
        });
        match opened {
            Some(Ok(cp)) => break cp,
            Some(Err(e)) if Instant::now() >= deadline => {
                panic!("the published size-4 note never verified: {e:?}\n{text}")
            }
            None if Instant::now() >= deadline => {
                panic!("anchor never saw size 4: {text}\n{}", gw.log_text())
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    assert_eq!(cp.size(), 4);
}

/// A fake C2SP tlog-witness: records every `add-checkpoint` body; answers the first with
/// `409` and size 1 (as a witness that already cosigned the start event would), the rest with a
/// cosignature line.
fn fake_witness() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/witness", listener.local_addr().unwrap());
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = bodies.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().take(20) {
            let Ok(conn) = conn else { return };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let (mut path, mut len) = (String::new(), 0usize);
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if path.is_empty() {
                    path = line.split(' ').nth(1).unwrap_or_default().to_string();
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            let first = {
                let mut b = seen.lock().unwrap();
                b.push(format!("{path}\n{}", String::from_utf8_lossy(&body)));
                b.len() == 1
            };
            let (status, ctype, text) = if first {
                ("409 Conflict", "text/x.tlog.size", "1\n".to_string())
            } else {
                (
                    "200 OK",
                    "text/plain",
                    "\u{2014} witness.test AAAAAQ==\n".to_string(),
                )
            };
            let mut out = conn;
            let _ = write!(
                out,
                "HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                text.len()
            );
        }
    });
    (url, bodies)
}

#[tokio::test]
async fn checkpoints_are_submitted_to_a_tlog_witness_with_consistency_proofs() {
    let mock = mock();
    let (url, bodies) = fake_witness();
    let gw = gateway_with_config(
        &mock.url(),
        &format!("[audit]\nanchor_witness = \"{url}\"\nanchor_interval = \"100ms\"\n"),
    );
    for _ in 0..3 {
        let r = post_json(&format!("{}/v1/chat/completions", gw.url()), &[], CHAT).await;
        assert_eq!(r.status, 200);
    }
    // The witness said it has size 1: the next submission starts there, with a proof; later
    // ones start from what the witness cosigned, up to the latest size (4).
    let deadline = Instant::now() + Duration::from_secs(15);
    let all = loop {
        let all = bodies.lock().unwrap().clone();
        if all.iter().any(|b| b.contains("\nwarden.local/vm\n4\n")) {
            break all;
        }
        assert!(
            Instant::now() < deadline,
            "no submission of size 4: {all:?}\n{}",
            gw.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        all[0].starts_with("/witness/add-checkpoint\nold 0\n\n"),
        "{}",
        all[0]
    );
    let body = all
        .iter()
        .find(|b| b.starts_with("/witness/add-checkpoint\nold 1\n"))
        .expect("a submission from the size the witness reported");
    // Body: `old 1`, proof lines, an empty line, the signed checkpoint.
    let rest = body
        .strip_prefix("/witness/add-checkpoint\nold 1\n")
        .unwrap();
    let (proof, note) = rest.split_once("\n\n").unwrap();
    let proof: Vec<warden_ledger::tree::Hash> = proof
        .lines()
        .map(|l| warden_ledger::tree::Hash::from_base64(l).expect("base64 hash"))
        .collect();
    let vkey = stdout(&audit(&gw.data_dir, &["pubkey"])).trim().to_string();
    let verifier = warden_ledger::note::NoteVerifier::from_vkey(&vkey).unwrap();
    let cp = warden_ledger::checkpoint::SignedCheckpoint::open(note, &verifier)
        .expect("a valid signed note");
    assert!(cp.size() > 1 && !proof.is_empty());
    // The proof really proves the one-entry tree is a prefix of the submitted tree.
    let entry0 = audit(&gw.data_dir, &["show", "0", "--raw"]).stdout;
    let old_root = warden_ledger::tree::leaf_hash(&entry0);
    warden_ledger::tree::verify_consistency(1, cp.size(), &old_root, &cp.root(), &proof)
        .expect("consistent");
    // The witness's cosignatures are kept next to the ledger.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let kept =
            std::fs::read_to_string(gw.data_dir.join("ledger/cosignatures")).unwrap_or_default();
        if kept.contains("size 4\n\u{2014} witness.test AAAAAQ==") {
            assert!(kept.contains(&format!("size {}\n", cp.size())), "{kept}");
            break;
        }
        assert!(Instant::now() < deadline, "cosignature not kept: {kept:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn long_content_goes_to_content_addressed_blobs() {
    let mock = mock();
    let gw = gateway_with_config(
        &mock.url(),
        "[audit]\ncapture = \"full\"\nblob_threshold = \"1KiB\"\n",
    );
    let long = "the quick brown fox ".repeat(200); // 4,000 bytes
    let body = serde_json::json!({
        "model": "gpt-4o",
        "messages": [{"role": "system", "content": "short system prompt"}, {"role": "user", "content": long}],
    })
    .to_string();
    let r = post_json(&format!("{}/v1/chat/completions", gw.url()), &[], &body).await;
    assert_eq!(r.status, 200);
    let entry = entry_json(&gw.data_dir, r.entry_index());
    assert_eq!(
        entry["content"]["system"][0], "short system prompt",
        "short text stays inline"
    );
    let blob = &entry["content"]["messages"][0]["content"][0]["text"];
    assert_eq!(blob["bytes"], 4000);
    let name = blob["blob"].as_str().unwrap();
    let path = gw.data_dir.join("ledger/blobs").join(&name[..2]).join(name);
    let stored = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(stored, long.as_bytes());
    // The entry commits to the blob's SHA-256, which is also its name.
    let out = Command::new("sha256sum").arg(&path).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with(name));
    assert!(audit(&gw.data_dir, &["verify"]).status.success());
}

#[tokio::test]
async fn a_client_that_hangs_up_before_a_buffered_answer_is_recorded_and_charged_its_worst_case() {
    use tokio::io::AsyncWriteExt;
    let mock = mock();
    let gw = gateway_with_config(
        &mock.url(),
        "[[budgets]]\nname = \"agent-daily\"\nper = \"agent\"\nlimit_usd = 10\nperiod = \"day\"\n",
    );
    // The upstream answers after 3 s; the client hangs up after it has sent the request.
    let body =
        r#"{"model":"gpt-4o-mini","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}"#;
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\nx-warden-agent: hangs-up\r\nx-mock-scenario: {{\"delay_ms\":3000}}\r\ncontent-length: {}\r\n\r\n{body}",
        gw.addr,
        body.len()
    );
    let mut conn = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    conn.write_all(request.as_bytes()).await.unwrap();
    // Until the upstream has the request: the exchange is past its reservation.
    let deadline = Instant::now() + Duration::from_secs(10);
    while mock_stats(&mock).await["requests"].as_u64().unwrap_or(0) == 0 {
        assert!(
            Instant::now() < deadline,
            "the request never reached the mock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(conn);

    // Entry 0 is the gateway's start; the abandoned exchange is entry 1, well before the
    // upstream would have answered.
    let deadline = Instant::now() + Duration::from_secs(10);
    let entry = loop {
        let shown = audit(&gw.data_dir, &["show", "1", "--raw"]);
        if shown.status.success() {
            break serde_json::from_slice::<serde_json::Value>(&shown.stdout).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "no entry for the abandoned exchange: {}",
            gw.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(entry["outcome"]["result"], "client_cancelled", "{entry}");
    assert_eq!(entry["agent"], "hangs-up", "{entry}");
    let worst = entry["decision"]["reserved_micros"].as_i64().unwrap();
    assert!(worst > 0, "{entry}");
    // The provider has the request and may bill all of it; nobody learns how much, so the
    // worst case reserved is what it costs (hanging up is no way around a budget).
    assert_eq!(entry["cost"]["usd_micros"], worst, "{entry}");
    assert_eq!(entry["cost"]["estimated"], true, "{entry}");

    // Its reservation is settled into spend, not held until a restart.
    let token = std::fs::read_to_string(gw.data_dir.join("admin.token")).unwrap();
    let bearer = format!("Bearer {}", token.trim());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = send(
            Method::GET,
            &format!(
                "{}/admin/spend?scope=agent&subject=hangs-up&period=day",
                gw.url()
            ),
            &[("authorization", bearer.as_str())],
            "",
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let rows = r.json()["spend"].clone();
        if rows[0]["requests"] == 1 {
            assert_eq!(rows[0]["reserved_micros"], 0, "{rows}");
            assert_eq!(rows[0]["spent_micros"], worst, "{rows}");
            break;
        }
        assert!(Instant::now() < deadline, "never settled: {rows}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
