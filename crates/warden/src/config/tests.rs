use super::*;

fn load(text: &str) -> Result<Config, ConfigError> {
    Config::from_str(text, "warden.toml", &Overrides::default())
}

#[test]
fn defaults_without_a_file() {
    let c = load("").unwrap();
    assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
    assert_eq!(c.data_dir, PathBuf::from(".warden"));
    assert_eq!(c.limits.max_request_bytes, 32 << 20);
    assert_eq!(c.upstreams.len(), 4);
    assert_eq!(
        c.default_upstream(Provider::Anthropic).url.to_string(),
        "https://api.anthropic.com"
    );
}

#[test]
fn unknown_key_names_key_and_line() {
    let err = load("[server]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains("lisen"), "{err}");
}

#[test]
fn invalid_value_names_key_and_line() {
    let err = load("[limits]\n\nconnect_timeout = \"10 parsecs\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("warden.toml:3"), "{err}");
    assert!(err.contains("limits.connect_timeout"), "{err}");
}

#[test]
fn named_upstreams_and_defaults() {
    let c = load(
        "[upstreams.vllm]\nprovider = \"openai\"\nurl = \"http://127.0.0.1:8000/base/\"\n\
         [upstreams.openai]\nurl = \"http://127.0.0.1:9/\"\n",
    )
    .unwrap();
    let vllm = c.upstreams.iter().find(|u| u.name == "vllm").unwrap();
    assert!(!vllm.default);
    assert_eq!(vllm.url.path_prefix, "/base");
    assert_eq!(
        c.default_upstream(Provider::OpenAi).url.authority,
        "127.0.0.1:9"
    );
    assert_eq!(c.default_upstream(Provider::OpenAi).source, "warden.toml:5");
}

#[test]
fn two_defaults_for_one_provider_is_an_error() {
    let err = load(
        "[upstreams.a]\nprovider = \"openai\"\nurl = \"http://x\"\ndefault = true\n\
         [upstreams.b]\nprovider = \"openai\"\nurl = \"http://y\"\ndefault = true\n",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("upstreams.b.default"), "{err}");
}

#[test]
fn upstream_without_provider_is_an_error() {
    let err = load("[upstreams.vllm]\nurl = \"http://x\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("upstreams.vllm.provider"), "{err}");
}

#[test]
fn overrides_beat_the_file() {
    let o = Overrides {
        listen: Some("127.0.0.1:9999".into()),
        upstreams: vec![(
            "anthropic".into(),
            "http://127.0.0.1:7".into(),
            "--upstream".into(),
        )],
        ..Overrides::default()
    }
    .with_env_upstreams([
        (
            "WARDEN_UPSTREAM_ANTHROPIC".to_string(),
            "http://127.0.0.1:6".to_string(),
        ),
        (
            "WARDEN_UPSTREAM_GEMINI".to_string(),
            "http://127.0.0.1:5".to_string(),
        ),
        ("HOME".to_string(), "/root".to_string()),
    ]);
    let c = Config::from_str("[server]\nlisten = \"127.0.0.1:1\"\n", "f", &o).unwrap();
    assert_eq!(c.listen.port(), 9999);
    assert_eq!(
        c.default_upstream(Provider::Anthropic).url.authority,
        "127.0.0.1:7"
    );
    assert_eq!(
        c.default_upstream(Provider::Gemini).url.authority,
        "127.0.0.1:5"
    );
}

#[test]
fn unknown_override_upstream_is_an_error() {
    let o = Overrides {
        upstreams: vec![("nope".into(), "http://x".into(), "--upstream".into())],
        ..Overrides::default()
    };
    assert!(
        Config::from_str("", "f", &o)
            .unwrap_err()
            .to_string()
            .contains("no upstream named")
    );
}

#[test]
fn remote_listen_needs_allow_remote() {
    let err = load("[server]\nlisten = \"0.0.0.0:8474\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("--allow-remote"), "{err}");
    assert!(load("[server]\nlisten = \"0.0.0.0:8474\"\nallow_remote = true\n").is_ok());
}

#[test]
fn base_url_parsing() {
    assert!(BaseUrl::parse("ftp://x").is_err());
    assert!(BaseUrl::parse("http://user:pw@x").is_err());
    assert!(BaseUrl::parse("http://x?a=b").is_err());
    assert_eq!(
        BaseUrl::parse("HTTPS://api.x.com:8443/p/")
            .unwrap()
            .to_string(),
        "https://api.x.com:8443/p"
    );
}

#[test]
fn sample_config_is_valid() {
    let c = load(crate::cli::init::SAMPLE_CONFIG).unwrap();
    assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
}

#[test]
fn workers_default_to_one_per_core_and_are_validated() {
    let c = load("").unwrap();
    assert_eq!(c.workers, 0);
    assert!(c.worker_threads() >= 1);
    assert_eq!(load("[server]\nworkers = 3\n").unwrap().worker_threads(), 3);
    let err = load("[server]\nworkers = -2\n").unwrap_err().to_string();
    assert!(
        err.contains("server.workers") && err.contains("warden.toml:2"),
        "{err}"
    );
}

#[test]
fn audit_choices_are_validated_with_their_options() {
    let c = load("[audit]\ncapture = \"full\"\nstream = \"buffer\"\nrequest_entries = \"all\"\n")
        .unwrap();
    assert_eq!(c.audit.capture, Capture::Full);
    assert!(c.audit.stream_buffer && c.audit.request_entries_all);
    let err = load("[audit]\n\ncapture = \"everything\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("warden.toml:3")
            && err.contains("audit.capture")
            && err.contains("metadata, redacted, full"),
        "{err}"
    );
    let c = load("").unwrap();
    assert_eq!(c.audit.capture, Capture::Redacted);
    assert!(c.audit.enabled && !c.audit.stream_buffer);
}

#[test]
fn durability_defaults_to_fsync_and_write_takes_a_bounded_interval() {
    let c = load("").unwrap();
    assert_eq!(c.audit.durability, Durability::Fsync);
    let c = load(
        "[audit]
durability = \"write\"\n",
    )
    .unwrap();
    assert_eq!(c.audit.durability, Durability::Write);
    assert_eq!(c.audit.sync_interval, Duration::from_millis(50));
    let c = load(
        "[audit]
durability = \"write\"\nsync_interval = \"5ms\"\n",
    )
    .unwrap();
    assert_eq!(c.audit.sync_interval, Duration::from_millis(5));
    for (text, line, says) in [
        ("[audit]\ndurability = \"none\"\n", 2, "fsync, write"),
        // An interval without `write` would be silently ignored: refuse it.
        ("[audit]\nsync_interval = \"5ms\"\n", 2, "only applies with"),
        (
            "[audit]\ndurability = \"write\"\nsync_interval = \"2m\"\n",
            3,
            "at most 60s",
        ),
        (
            "[audit]\ndurability = \"write\"\nsync_interval = \"0s\"\n",
            3,
            "sync_interval",
        ),
    ] {
        let err = load(text).unwrap_err().to_string();
        assert!(
            err.contains(&format!("warden.toml:{line}")) && err.contains(says),
            "{text:?}: {err}"
        );
    }
}

fn judge(
    c: &Config,
    tool: &str,
    args: serde_json::Value,
    tenant: Option<&str>,
) -> warden_govern::Verdict {
    c.policy.tools.governor.judge(
        &warden_govern::ToolCall {
            name: tool,
            arguments: &args,
        },
        &warden_govern::Subject {
            tenant,
            agent: None,
            key: None,
        },
    )
}

#[test]
fn tool_rules_map_every_key_onto_the_governor() {
    let c = load(
        r#"
[tools]
on_deny = "replace"
approval_timeout = "90s"
approval_webhooks = ["http://127.0.0.1:9/hook"]

[[tools.rules]]
name = "prod-needs-approval"
tool = ["deploy*"]
tenant = "acme"
action = "approve"
when = [{ path = "$.env", equals = "prod" }]

[[tools.rules]]
name = "read-only-reports"
tool = "report_sql"
sql = { arg = "q", dialect = "postgres", policy = "read_only" }
action = "deny"
on_deny = "error"

[[tools.rules]]
name = "no-shell-for-free"
tool = "shell"
tenant = "free-*"
strip = true
"#,
    )
    .unwrap();
    let t = &c.policy.tools;
    assert_eq!(t.approvals.timeout, Duration::from_secs(90));
    assert_eq!(t.approvals.webhooks, ["http://127.0.0.1:9/hook"]);
    assert!(t.strips && t.enabled);
    assert_eq!(t.on_deny, warden_govern::OnDeny::Replace);

    let v = judge(
        &c,
        "deploy_api",
        serde_json::json!({"env": "prod"}),
        Some("acme"),
    );
    assert_eq!(
        (v.action, &*v.rule),
        (warden_govern::Action::Approve, "prod-needs-approval")
    );
    let v = judge(
        &c,
        "deploy_api",
        serde_json::json!({"env": "dev"}),
        Some("acme"),
    );
    assert_eq!(v.action, warden_govern::Action::Allow);
    let v = judge(
        &c,
        "deploy_api",
        serde_json::json!({"env": "prod"}),
        Some("other"),
    );
    assert_eq!(v.action, warden_govern::Action::Allow);

    let v = judge(
        &c,
        "report_sql",
        serde_json::json!({"q": "UPDATE t SET a = 1 WHERE id = 2"}),
        None,
    );
    assert_eq!(
        (v.action, &*v.rule),
        (warden_govern::Action::Deny, "read-only-reports")
    );
    let v = judge(
        &c,
        "report_sql",
        serde_json::json!({"q": "SELECT a FROM t"}),
        None,
    );
    assert_eq!(v.action, warden_govern::Action::Allow);

    let free = warden_govern::Subject {
        tenant: Some("free-1"),
        agent: None,
        key: None,
    };
    assert!(!t.governor.offers("shell", &free));
    assert!(t.governor.offers("get_weather", &free));
    // `warden config check` shows the rules and the preset.
    let shown = c.render();
    assert!(
        shown.contains("preset:sql") && shown.contains("prod-needs-approval"),
        "{shown}"
    );
}

#[test]
fn tool_rule_errors_name_the_key_and_line() {
    let err = load("[tools]\n\n[[tools.rules]]\nname = \"x\"\ntool = \"run_sql\"\nsql = { policy = \"readonly\" }\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("tools.rules[0].sql.policy"), "{err}");
    assert!(err.contains("warden.toml:"), "{err}");

    let err = load(
        "[[tools.rules]]\nname = \"x\"\nwhen = [{ path = \"$.a\", equals = 1, glob = \"b\" }]\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("tools.rules[0].when[0]") && err.contains("exactly one test"),
        "{err}"
    );

    let err = load("[[tools.rules]]\nname = \"x\"\nactoin = \"deny\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("actoin") && err.contains("line 3"), "{err}");

    let err = load("[tools]\napproval_timeout = \"0s\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("tools.approval_timeout"), "{err}");

    let err = load("[tools]\napproval_webhooks = [\"ftp://x\"]\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("tools.approval_webhooks[0]"), "{err}");
}
