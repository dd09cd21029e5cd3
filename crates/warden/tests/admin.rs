//! The admin API and the live-state commands driven end to end: the real `warden` binary over
//! loopback, its admin token, virtual keys, the kill switch (live and offline), config reload
//! (API and SIGHUP), `config check` lints, and USD budgets from the config file.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::*;
use http::Method;
use serde_json::Value;

const CHAT: &str = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#;
const CHAT_4O: &str = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#;

/// Runs the `warden` CLI in `cwd` (so no stray `./warden.toml` is picked up), with none of the
/// environment that would point it elsewhere.
fn cli(args: &[&str], cwd: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env_remove("WARDEN_LISTEN")
        .env_remove("WARDEN_DATA_DIR")
        .env_remove("WARDEN_GATEWAY")
        .env_remove("WARDEN_ADMIN_TOKEN")
        .env_remove("WARDEN_CONFIG")
        .env_remove("WARDEN_AUTH_MODE")
        .output()
        .expect("run warden")
}

/// `cli` with `--data-dir DIR` appended.
fn cli_in(args: &[&str], data_dir: &Path) -> Output {
    let mut all: Vec<&str> = args.to_vec();
    let dir = data_dir.to_str().unwrap();
    all.extend(["--data-dir", dir]);
    cli(&all, &temp_dir("cwd"))
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts the command succeeded, showing its output otherwise.
fn ok(o: Output) -> Output {
    assert!(
        o.status.success(),
        "exit {}: stdout {} stderr {}",
        o.status,
        stdout(&o),
        stderr(&o)
    );
    o
}

/// The admin token the gateway wrote into its data dir.
fn token(gw: &Proc) -> String {
    std::fs::read_to_string(gw.data_dir.join("admin.token"))
        .expect("admin.token exists")
        .trim()
        .to_string()
}

/// One admin API call with the gateway's own token.
async fn admin(gw: &Proc, method: Method, path: &str, body: &str) -> Reply {
    let bearer = format!("Bearer {}", token(gw));
    let mut headers = vec![("authorization", bearer.as_str())];
    if !body.is_empty() {
        headers.push(("content-type", "application/json"));
    }
    send(
        method,
        &format!("{}{path}", gw.url()),
        &headers,
        body.to_string(),
    )
    .await
}

/// An OpenAI chat request to the gateway.
async fn chat(gw: &Proc, headers: &[(&str, &str)], body: &str) -> Reply {
    post_json(&format!("{}/v1/chat/completions", gw.url()), headers, body).await
}

/// `error.code` and `error.message` of an OpenAI-shaped (or admin) error.
fn err(r: &Reply) -> (String, String) {
    let v = r.json();
    (
        v["error"]["code"].as_str().unwrap_or_default().to_string(),
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

/// Every entry of the data dir's ledger, via `warden audit export --format json`.
fn ledger(data_dir: &Path) -> Vec<Value> {
    let out = ok(cli_in(&["audit", "export", "--format", "json"], data_dir));
    stdout(&out)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The ledger's operator events named `event`.
fn events<'a>(entries: &'a [Value], event: &str) -> Vec<&'a Value> {
    entries
        .iter()
        .filter(|e| e["kind"] == "event" && e["event"] == event)
        .collect()
}

#[tokio::test]
async fn admin_routes_need_the_token_from_the_data_dir() {
    let mock = mock();
    let gw = gateway(&mock.url(), &[]);
    let url = format!("{}/admin/status", gw.url());

    let r = send(Method::GET, &url, &[], "").await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(err(&r).0, "unauthorized", "{}", r.text());
    assert!(err(&r).1.contains("admin.token"), "{}", r.text());

    let wrong = format!("Bearer wat_{}", "0".repeat(64));
    let r = send(Method::GET, &url, &[("authorization", &wrong)], "").await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(err(&r).0, "unauthorized");
    // A prefix of the real token is as wrong as any other.
    let prefix = format!("Bearer {}", &token(&gw)[..20]);
    let r = send(Method::GET, &url, &[("authorization", &prefix)], "").await;
    assert_eq!(r.status, 401, "{}", r.text());

    let path = gw.data_dir.join("admin.token");
    let t = token(&gw);
    assert!(t.starts_with("wat_"), "{t}");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "admin.token mode {:o}", mode & 0o777);
    }

    let r = admin(&gw, Method::GET, "/admin/status", "").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let s = r.json();
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"), "{s}");
    assert_eq!(s["auth"]["mode"], "auto", "{s}");
    assert_eq!(s["auth"]["keys_required"], false, "{s}");
    assert!(s["ledger"]["size"].is_u64(), "{s}");
    assert!(
        s["ledger"]["size"].as_u64().unwrap() >= 1,
        "the start is recorded: {s}"
    );

    let r = admin(&gw, Method::GET, "/admin/nope", "").await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(err(&r).0, "not_found", "{}", r.text());
    // Unknown routes are behind the token too: no route discovery without it.
    let r = send(Method::GET, &format!("{}/admin/nope", gw.url()), &[], "").await;
    assert_eq!(r.status, 401, "{}", r.text());
}

#[tokio::test]
async fn status_reports_the_address_the_gateway_listens_on() {
    let mock = mock();
    let gw = gateway(&mock.url(), &[]);
    let s = admin(&gw, Method::GET, "/admin/status", "").await.json();
    assert_eq!(s["listen"], gw.addr.to_string(), "{s}");
}

#[tokio::test]
async fn metrics_are_public_openmetrics_text() {
    let mock = mock();
    let gw = gateway(&mock.url(), &[]);
    let r = send(Method::GET, &format!("{}/metrics", gw.url()), &[], "").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let ct = r.headers["content-type"].to_str().unwrap();
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    let text = r.text();
    assert!(text.contains("warden_build_info"), "{text}");
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
}

#[tokio::test]
async fn virtual_keys_through_the_admin_api() {
    let mock = mock();
    let gw = gateway(&mock.url(), &[]);

    let r = admin(
        &gw,
        Method::POST,
        "/admin/keys",
        r#"{"tenant":"acme","agent":"bot","budget_usd":2.5,"period":"day","models":["gpt-4o*"]}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let created = r.json();
    let key = created["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("wk_"), "{created}");
    assert_eq!(created["auth_switched"], true, "{created}");
    let id = created["info"]["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("key_"), "{created}");
    assert_eq!(created["info"]["budget_micros"], 2_500_000, "{created}");
    assert_eq!(created["info"]["budget_period"], "day", "{created}");

    let r = admin(&gw, Method::GET, "/admin/keys", "").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let listed = r.json();
    let keys = listed["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{listed}");
    assert_eq!(keys[0]["id"], id.as_str());
    assert_eq!(keys[0]["tenant"], "acme");
    assert_eq!(keys[0]["models"], serde_json::json!(["gpt-4o*"]));
    assert!(!r.text().contains(&key), "the key leaked: {}", r.text());
    assert!(!r.text().contains("wk_"), "a key leaked: {}", r.text());

    let bearer = format!("Bearer {key}");
    let r = chat(&gw, &[("authorization", &bearer)], CHAT).await;
    assert_eq!(r.status, 200, "{}", r.text());

    let r = chat(
        &gw,
        &[("authorization", &bearer)],
        r#"{"model":"claude-3-haiku","messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let (code, message) = err(&r);
    assert_eq!(code, "policy_denied", "{}", r.text());
    assert!(
        message.contains("gpt-4o*") && message.contains("claude-3-haiku"),
        "{message}"
    );

    let before = mock_stats(&mock).await["requests"].as_u64().unwrap();
    let r = chat(&gw, &[], CHAT).await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(err(&r).0, "invalid_api_key", "{}", r.text());
    // A provider key is not a virtual key either.
    let r = chat(
        &gw,
        &[("authorization", "Bearer sk-real-provider-key")],
        CHAT,
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(err(&r).0, "invalid_api_key", "{}", r.text());
    assert_eq!(
        mock_stats(&mock).await["requests"].as_u64().unwrap(),
        before,
        "a refused request reached the upstream"
    );

    let r = admin(&gw, Method::DELETE, &format!("/admin/keys/{id}"), "").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["revoked"]["id"], id.as_str());
    assert!(r.json()["revoked"]["revoked_at"].is_u64(), "{}", r.text());

    let r = chat(&gw, &[("authorization", &bearer)], CHAT).await;
    assert_eq!(r.status, 401, "{}", r.text());
    let (code, message) = err(&r);
    assert_eq!(code, "invalid_api_key");
    assert!(message.contains("revoked"), "{message}");

    let r = admin(&gw, Method::DELETE, "/admin/keys/key_0000000000000000", "").await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(err(&r).0, "unknown_key", "{}", r.text());

    let entries = ledger(&gw.data_dir);
    let made = events(&entries, "key_created");
    assert_eq!(made.len(), 1, "{entries:?}");
    assert_eq!(made[0]["key"]["id"], id.as_str());
    assert_eq!(events(&entries, "key_revoked").len(), 1, "{entries:?}");
    let all = serde_json::to_string(&entries).unwrap();
    assert!(!all.contains(&key), "the ledger holds the key");
}

#[tokio::test]
async fn kill_and_unkill_from_the_cli_act_on_the_running_gateway() {
    let mock = mock();
    let gw = gateway(&mock.url(), &[]);
    let bot = [("x-warden-agent", "bot")];
    let r = chat(&gw, &bot, CHAT).await;
    assert_eq!(r.status, 200, "{}", r.text());

    let out = cli_in(&["kill", "--agent", "bot"], &gw.data_dir);
    assert!(!out.status.success(), "kill without --reason succeeded");
    assert!(stderr(&out).contains("--reason"), "{}", stderr(&out));
    let r = chat(&gw, &bot, CHAT).await;
    assert_eq!(r.status, 200, "a kill without a reason took effect");

    ok(cli_in(
        &["kill", "--agent", "bot", "--reason", "runaway test loop"],
        &gw.data_dir,
    ));
    let before = mock_stats(&mock).await["requests"].as_u64().unwrap();
    let r = chat(&gw, &bot, CHAT).await;
    assert_eq!(r.status, 403, "{}", r.text());
    let (code, message) = err(&r);
    assert_eq!(code, "killed", "{}", r.text());
    assert!(message.contains("runaway test loop"), "{message}");
    assert!(message.contains("warden unkill --agent bot"), "{message}");
    assert_eq!(
        mock_stats(&mock).await["requests"].as_u64().unwrap(),
        before
    );
    // Other agents are unaffected.
    let r = chat(&gw, &[("x-warden-agent", "other")], CHAT).await;
    assert_eq!(r.status, 200, "{}", r.text());

    let out = ok(cli_in(&["status", "--json"], &gw.data_dir));
    let s: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(s["gateway"], gw.url(), "{s}");
    let kills = s["kills"].as_array().unwrap();
    assert_eq!(kills.len(), 1, "{s}");
    assert_eq!(kills[0]["target"]["kind"], "agent", "{s}");
    assert_eq!(kills[0]["target"]["id"], "bot", "{s}");
    assert_eq!(kills[0]["reason"], "runaway test loop", "{s}");

    ok(cli_in(&["unkill", "--agent", "bot"], &gw.data_dir));
    let r = chat(&gw, &bot, CHAT).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let out = ok(cli_in(&["status", "--json"], &gw.data_dir));
    let s: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(s["kills"], serde_json::json!([]), "{s}");
    // Lifting what is not killed is an error.
    let out = cli_in(&["unkill", "--agent", "bot"], &gw.data_dir);
    assert!(!out.status.success(), "{}", stdout(&out));

    let entries = ledger(&gw.data_dir);
    let kill = events(&entries, "kill");
    assert_eq!(kill.len(), 1, "{entries:?}");
    assert!(
        kill[0]["actor"].as_str().unwrap().starts_with("cli"),
        "{}",
        kill[0]
    );
    assert_eq!(kill[0]["reason"], "runaway test loop");
    assert_eq!(kill[0]["target"]["id"], "bot");
    let unkill = events(&entries, "unkill");
    assert_eq!(unkill.len(), 1, "{entries:?}");
    assert!(
        unkill[0]["actor"].as_str().unwrap().starts_with("cli"),
        "{}",
        unkill[0]
    );
}

#[tokio::test]
async fn offline_keys_and_kill_apply_when_the_gateway_starts() {
    let data = temp_dir("offline");

    let out = ok(cli_in(&["keys", "create", "--agent", "x"], &data));
    let text = stdout(&out);
    let key = text.lines().next().unwrap_or_default().trim().to_string();
    assert!(key.starts_with("wk_"), "{text}");
    let id = stderr(&out)
        .split_whitespace()
        .find(|w| w.starts_with("key_"))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no key id in {}", stderr(&out)));
    assert!(!data.join("gateway.json").exists(), "a gateway was started");

    let out = ok(cli_in(&["keys", "list"], &data));
    let list = stdout(&out);
    assert!(list.contains(&id), "{list}");
    assert!(list.contains("active"), "{list}");
    assert!(!list.contains(&key) && !list.contains("wk_"), "{list}");

    let out = ok(cli_in(&["kill", "--all", "--reason", "maint"], &data));
    assert!(stdout(&out).contains("next start"), "{}", stdout(&out));

    let out = ok(cli_in(&["status", "--json"], &data));
    let s: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(s["gateway"].is_null(), "{s}");
    assert_eq!(s["kills"][0]["target"]["kind"], "all", "{s}");
    assert_eq!(s["auth"]["active_keys"], 1, "{s}");

    let mock = mock();
    let gw = gateway_in(&data, &mock.url(), &[]);
    let bearer = format!("Bearer {key}");
    let r = chat(&gw, &[("authorization", &bearer)], CHAT).await;
    assert_eq!(r.status, 403, "{}", r.text());
    let (code, message) = err(&r);
    assert_eq!(code, "killed", "{}", r.text());
    assert!(message.contains("maint"), "{message}");
    let r = chat(
        &gw,
        &[("authorization", &bearer), ("x-warden-agent", "someone")],
        CHAT_4O,
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(err(&r).0, "killed");
    let r = post_json(
        &format!("{}/v1/messages", gw.url()),
        &[("x-api-key", &key), ("anthropic-version", "2023-06-01")],
        r#"{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(
        r.json()["error"]["type"],
        "permission_error",
        "{}",
        r.text()
    );
    assert_eq!(mock_stats(&mock).await["requests"], 0);

    // The key made offline is in force: without it the gateway asks for one.
    let r = chat(&gw, &[], CHAT).await;
    assert_eq!(r.status, 401, "{}", r.text());

    // The offline actions are in the same ledger the gateway now appends to.
    let entries = ledger(&data);
    assert_eq!(events(&entries, "key_created").len(), 1, "{entries:?}");
    let kill = events(&entries, "kill");
    assert_eq!(kill.len(), 1, "{entries:?}");
    assert_eq!(kill[0]["reason"], "maint");
    assert!(kill[0]["actor"].as_str().unwrap().starts_with("cli"));
    assert!(!events(&entries, "start").is_empty(), "{entries:?}");
}

const RULE_4O: &str = r#"
[[rules]]
name = "block-4o"
action = "deny"
reason = "nope"
match.model = "gpt-4o"
"#;

/// Polls (at most 200 times, 10 s) until `done` holds for a chat request's reply.
async fn poll_until(gw: &Proc, body: &str, done: impl Fn(&Reply) -> bool) -> Reply {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = None;
    for _ in 0..200 {
        let r = chat(gw, &[], body).await;
        if done(&r) {
            return r;
        }
        last = Some(r);
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "condition not reached; last reply: {:?}",
        last.map(|r| (r.status, r.text()))
    );
}

#[tokio::test]
async fn reload_applies_valid_configs_and_keeps_the_old_one_on_errors() {
    let mock = mock();
    let dir = temp_dir("reload");
    let cfg = dir.join("warden.toml");
    std::fs::write(&cfg, "# no rules yet\n").unwrap();
    let gw = gateway(&mock.url(), &["--config", cfg.to_str().unwrap()]);

    let r = chat(&gw, &[], CHAT_4O).await;
    assert_eq!(r.status, 200, "{}", r.text());

    std::fs::write(&cfg, RULE_4O.trim_start()).unwrap();
    let r = admin(&gw, Method::POST, "/admin/reload", "").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["rules"], 1, "{v}");
    assert_eq!(v["restart_required"], false, "{v}");
    let sha = v["config_sha256"].as_str().unwrap().to_string();

    let r = chat(&gw, &[], CHAT_4O).await;
    assert_eq!(r.status, 403, "{}", r.text());
    let (code, message) = err(&r);
    assert_eq!(code, "policy_denied");
    assert!(
        message.contains("block-4o") && message.contains("nope"),
        "{message}"
    );
    let r = chat(&gw, &[], CHAT).await;
    assert_eq!(r.status, 200, "{}", r.text());

    // An invalid value: refused with file, line and key; the old rules stay.
    std::fs::write(&cfg, RULE_4O.trim_start().replace("\"deny\"", "\"maybe\"")).unwrap();
    let r = admin(&gw, Method::POST, "/admin/reload", "").await;
    assert_eq!(r.status, 422, "{}", r.text());
    let (code, message) = err(&r);
    assert_eq!(code, "reload_failed", "{}", r.text());
    assert!(message.contains("warden.toml:3"), "{message}");
    assert!(message.contains("rules[0].action"), "{message}");
    let r = chat(&gw, &[], CHAT_4O).await;
    assert_eq!(r.status, 403, "the old rule was dropped: {}", r.text());
    let r = chat(&gw, &[], CHAT).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let s = admin(&gw, Method::GET, "/admin/status", "").await.json();
    assert_eq!(s["policy"]["rules"], 1, "{s}");

    let entries = ledger(&gw.data_dir);
    let reloads = events(&entries, "reload");
    assert_eq!(
        reloads.len(),
        1,
        "only applied reloads are recorded: {entries:?}"
    );
    assert_eq!(reloads[0]["config_sha256"], sha.as_str());
    assert_eq!(reloads[0]["actor"], "admin-api");

    // SIGHUP re-reads the file too.
    std::fs::write(&cfg, "# rules removed\n").unwrap();
    let pid = gw.child.id().to_string();
    let hup = Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    assert!(hup.success());
    poll_until(&gw, CHAT_4O, |r| r.status == 200).await;
    let s = admin(&gw, Method::GET, "/admin/status", "").await.json();
    assert_eq!(s["policy"]["rules"], 0, "{s}");
    let entries = ledger(&gw.data_dir);
    let reloads = events(&entries, "reload");
    assert_eq!(reloads.len(), 2, "{entries:?}");
    assert_eq!(reloads[1]["actor"], "SIGHUP");
}

#[test]
fn config_check_names_a_shadowed_rule() {
    let dir = temp_dir("lint");
    let cfg = dir.join("warden.toml");
    std::fs::write(
        &cfg,
        r#"[[rules]]
name = "no-gpt"
action = "deny"
match.model = "gpt-*"

[[rules]]
name = "allow-4o"
action = "allow"
match.model = "gpt-4o"
"#,
    )
    .unwrap();
    let out = ok(cli(&["config", "check", cfg.to_str().unwrap()], &dir));
    let text = format!("{}{}", stdout(&out), stderr(&out));
    let line = text
        .lines()
        .find(|l| l.contains("`allow-4o`") && l.contains("never applies"))
        .unwrap_or_else(|| panic!("no lint names the shadowed rule:\n{text}"));
    assert!(line.contains("`no-gpt`"), "{line}");

    // The same rules in the other order shadow nothing.
    std::fs::write(
        &cfg,
        r#"[[rules]]
name = "allow-4o"
action = "allow"
match.model = "gpt-4o"

[[rules]]
name = "no-gpt"
action = "deny"
match.model = "gpt-*"
"#,
    )
    .unwrap();
    let out = ok(cli(&["config", "check", cfg.to_str().unwrap()], &dir));
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!text.contains("never applies"), "{text}");
}

#[tokio::test]
async fn budgets_from_the_config_cap_each_tenant() {
    let mock = mock();
    // $10 per million tokens = 10 micro-USD a token. The mock bills 20 + 1 tokens (210 µ$)
    // and the gateway reserves (input estimate + max_tokens) × price before forwarding, so a
    // handful of requests fit under the $0.001 (1000 µ$) cap before the reservation would
    // cross it.
    let gw = gateway_with_config(
        &mock.url(),
        r#"
[[budgets]]
name = "team"
per = "tenant"
limit_usd = 0.001
period = "day"

[[pricing.models]]
provider = "openai"
model = "pricey-1"
input_per_mtok = 10
output_per_mtok = 10
"#,
    );
    let body = r#"{"model":"pricey-1","max_tokens":1,"messages":[{"role":"user","content":"hi"}]}"#;
    let scenario = r#"{"text":"ok","usage":{"input":20,"output":1}}"#;
    let t1 = [("x-warden-tenant", "t1"), ("x-mock-scenario", scenario)];

    let mut allowed = 0;
    let mut refused = None;
    for _ in 0..50 {
        let r = chat(&gw, &t1, body).await;
        if r.status == 200 {
            allowed += 1;
            continue;
        }
        refused = Some(r);
        break;
    }
    let r = refused.expect("the budget never refused a request");
    assert!(allowed >= 1, "the first request was already refused");
    assert_eq!(r.status, 429, "{}", r.text());
    let (code, message) = err(&r);
    assert_eq!(code, "budget_exceeded", "{}", r.text());
    assert!(message.contains("`team`"), "{message}");
    // It stays refused.
    let r = chat(&gw, &t1, body).await;
    assert_eq!(r.status, 429, "{}", r.text());

    let t2 = [("x-warden-tenant", "t2"), ("x-mock-scenario", scenario)];
    let r = chat(&gw, &t2, body).await;
    assert_eq!(r.status, 200, "caps are per tenant: {}", r.text());

    let r = admin(&gw, Method::GET, "/admin/spend?scope=tenant", "").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let rows: Vec<&Value> = v["spend"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|row| row["subject"] == "t1")
        .collect();
    assert!(!rows.is_empty(), "{v}");
    for row in &rows {
        let spent = row["spent_micros"].as_i64().unwrap();
        assert!(spent > 0 && spent <= 1000, "{row}");
        assert_eq!(row["requests"], allowed, "{row}");
        assert_eq!(row["reserved_micros"], 0, "{row}");
    }
    assert!(
        rows.iter().any(|row| row["period"] == "day"),
        "no day row for t1: {v}"
    );

    // A model without a price cannot be held to a budget, so it is refused.
    let r = chat(
        &gw,
        &t1,
        r#"{"model":"mystery-model","max_tokens":1,"messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let (code, message) = err(&r);
    assert_eq!(code, "policy_denied", "{}", r.text());
    assert!(
        message.contains("mystery-model") && message.contains("pricing"),
        "{message}"
    );
    assert!(message.contains("team"), "{message}");
}

#[tokio::test]
async fn soft_caps_warn_in_a_header_and_in_the_ledger() {
    let mock = mock();
    // 10 micro-USD a token; each request reserves about 30 tokens and spends 21 (210 µ$), so
    // the $0.0005 soft cap is passed on the second or third request, well before the $1 cap.
    let gw = gateway_with_config(
        &mock.url(),
        r#"
[[budgets]]
name = "team"
per = "tenant"
limit_usd = 1
soft_usd = 0.0005
period = "month"

[[pricing.models]]
provider = "openai"
model = "pricey-1"
input_per_mtok = 10
output_per_mtok = 10
"#,
    );
    let body = r#"{"model":"pricey-1","max_tokens":1,"messages":[{"role":"user","content":"hi"}]}"#;
    let scenario = r#"{"text":"ok","usage":{"input":20,"output":1}}"#;
    let headers = [("x-warden-tenant", "t1"), ("x-mock-scenario", scenario)];
    let first = chat(&gw, &headers, body).await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert!(first.headers.get("x-warden-budget-warning").is_none());
    let mut warned = None;
    for _ in 0..10 {
        let r = chat(&gw, &headers, body).await;
        assert_eq!(r.status, 200, "the soft cap never refuses: {}", r.text());
        if let Some(w) = r.headers.get("x-warden-budget-warning") {
            warned = Some((w.to_str().unwrap().to_string(), r.entry_index()));
            break;
        }
    }
    let (warning, index) = warned.expect("no x-warden-budget-warning after passing the soft cap");
    assert!(
        warning.contains("team") && warning.contains("soft cap"),
        "{warning}"
    );
    let entries = ledger(&gw.data_dir);
    let entry = entries
        .iter()
        .find(|e| e["index"] == index)
        .expect("the warned exchange is in the ledger");
    assert_eq!(
        entry["decision"]["budget_warnings"][0],
        warning.as_str(),
        "{entry}"
    );
}

#[test]
fn a_gateway_beyond_loopback_without_virtual_keys_refuses_to_start() {
    let dir = common::temp_dir("remote");
    // The check runs before the gateway binds, so this never listens beyond loopback.
    let out = Command::new(common::BIN)
        .args([
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--allow-remote",
            "--data-dir",
        ])
        .arg(&dir)
        .current_dir(&dir)
        .env_remove("WARDEN_AUTH_MODE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("beyond loopback") && err.contains("warden keys create"),
        "{err}"
    );
    assert!(!dir.join("gateway.json").exists());
}
