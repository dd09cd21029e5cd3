//! The `warden` command line: help, init, config check, serve's flags and environment, demo.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn run(args: &[&str], dir: &std::path::Path) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("WARDEN_LISTEN")
        .env_remove("WARDEN_DATA_DIR")
        .output()
        .expect("run warden")
}

#[test]
fn every_command_has_help() {
    let dir = temp_dir("help");
    let out = run(&["--help"], &dir);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in ["serve", "demo", "mock-upstream", "init", "config", "audit"] {
        assert!(text.contains(cmd), "--help lacks {cmd}: {text}");
        let args: Vec<&str> = if cmd == "config" {
            vec!["config", "check", "--help"]
        } else if cmd == "audit" {
            vec!["audit", "verify", "--help"]
        } else {
            vec![cmd, "--help"]
        };
        let out = run(&args, &dir);
        assert!(out.status.success(), "{cmd} --help failed");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage"));
    }
}

#[test]
fn init_writes_a_config_that_checks_clean() {
    let dir = temp_dir("init");
    let out = run(&["init"], &dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.join("warden.toml").is_file());
    assert!(dir.join(".warden").is_dir());
    // A second init refuses to clobber the file.
    let again = run(&["init"], &dir);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    let out = run(&["config", "check"], &dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("warden.toml: OK"), "{text}");
    assert!(text.contains("listen = \"127.0.0.1:8474\""), "{text}");
    assert!(text.contains("https://api.anthropic.com"), "{text}");
    // init also made the ledger signing key, owner-only.
    let key = dir.join(".warden/ledger/signing.key");
    assert!(key.is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let pubkey = run(&["audit", "pubkey"], &dir);
    assert!(
        pubkey.status.success(),
        "{}",
        String::from_utf8_lossy(&pubkey.stderr)
    );
    let vkey = String::from_utf8_lossy(&pubkey.stdout).trim().to_string();
    // name+hexid+base64: the base64 part may itself contain `+`.
    let parts: Vec<&str> = vkey.splitn(3, '+').collect();
    assert!(
        vkey.starts_with("warden.local/") && parts.len() == 3,
        "{vkey}"
    );
    assert!(
        parts[1].len() == 8 && parts[1].bytes().all(|b| b.is_ascii_hexdigit()),
        "{vkey}"
    );
}

#[test]
fn config_check_names_the_bad_key_and_line() {
    let dir = temp_dir("check");
    std::fs::write(
        dir.join("bad.toml"),
        "[server]\nlisten = \"127.0.0.1:8474\"\n\n[limits]\ntimeout = \"5s\"\n",
    )
    .unwrap();
    let out = run(&["config", "check", "bad.toml"], &dir);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 5") && err.contains("timeout"), "{err}");

    std::fs::write(
        dir.join("bad2.toml"),
        "[upstreams.openai]\nurl = \"ftp://example.com\"\n",
    )
    .unwrap();
    let out = run(&["config", "check", "bad2.toml"], &dir);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad2.toml:2") && err.contains("upstreams.openai.url"),
        "{err}"
    );
}

#[test]
fn config_check_shows_environment_overrides() {
    let dir = temp_dir("envcheck");
    let out = Command::new(BIN)
        .args(["config", "check"])
        .current_dir(&dir)
        .env("WARDEN_UPSTREAM_OPENAI", "http://127.0.0.1:9999")
        .env("WARDEN_LISTEN", "127.0.0.1:7000")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("http://127.0.0.1:9999"), "{text}");
    assert!(text.contains("WARDEN_UPSTREAM_OPENAI"), "{text}");
    assert!(text.contains("127.0.0.1:7000"), "{text}");
}

#[test]
fn serve_refuses_non_loopback_without_allow_remote() {
    let dir = temp_dir("remote");
    let out = Command::new(BIN)
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-remote"));
}

#[tokio::test]
async fn serve_runs_from_environment_alone() {
    let mock = mock();
    let dir = temp_dir("envserve");
    let port = dead_port();
    let mut child = Command::new(BIN)
        .arg("serve")
        .current_dir(&dir)
        .env("WARDEN_LISTEN", format!("127.0.0.1:{port}"))
        .env("WARDEN_DATA_DIR", dir.join("state"))
        .env("WARDEN_UPSTREAM_OPENAI", mock.url())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let info = dir.join("state").join("gateway.json");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !info.exists() {
        assert!(Instant::now() < deadline, "gateway.json never appeared");
        std::thread::sleep(Duration::from_millis(25));
    }
    let r = post_json(
        &format!("http://127.0.0.1:{port}/v1/chat/completions"),
        &[("x-mock-scenario", r#"{"text":"from env"}"#)],
        r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["choices"][0]["message"]["content"], "from env");
}

#[test]
fn demo_runs_every_provider_with_no_key_and_no_network() {
    let dir = temp_dir("demo");
    let out = Command::new(BIN)
        .arg("demo")
        .current_dir(&dir)
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "openai via openai",
        "anthropic via anthropic",
        "gemini via gemini",
        "ollama via ollama",
        "tool call get_weather",
        "reasoning",
        "refused by Warden",
        "21 exchanges",
        "tool governance: execute_sql → deny by rule preset:sql (removed from the answer",
        "tool governance: execute_sql → allow by rule default (delivered to the agent)",
        "content_blocked",
        "aws_access_key_id",
        "Contact [EMAIL] or [PHONE].",
        "The token is [GITHUB_TOKEN] ok.",
        "policy_denied",
        "interns use gpt-4o-mini",
        "budget_exceeded",
        "batch-daily",
        "killed",
        "looping on the same tool call",
        "recorded: ledger entry",
        "receipt in-band before the terminal event",
        "Verified offline with the public key",
    ] {
        assert!(
            text.contains(needle),
            "demo output lacks {needle:?}:\n{text}"
        );
    }
}
