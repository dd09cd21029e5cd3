//! Rule matching, decisions, compilation errors and time windows, through the public API.

use std::collections::HashMap;

use warden_policy::{
    Action, Facts, LimitSpec, MatchSpec, PolicySet, RuleError, RuleSpec, Scope, Timestamp,
};

fn spec(name: &str, action: Action, matcher: MatchSpec) -> RuleSpec {
    RuleSpec {
        name: name.into(),
        action,
        status: None,
        reason: None,
        matcher,
        limits: LimitSpec::default(),
    }
}

fn compile(rules: Vec<RuleSpec>) -> PolicySet {
    PolicySet::compile(rules, Action::Allow).unwrap()
}

fn compile_err(rule: RuleSpec) -> RuleError {
    PolicySet::compile(vec![rule], Action::Allow).unwrap_err()
}

fn v(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// A Wednesday, midday UTC.
fn noon() -> Timestamp {
    at("2026-11-18T12:00:00Z")
}

/// Every fact set, with one header (`x-team: Red`).
fn with_facts<R>(f: impl FnOnce(&mut Facts<'_>) -> R) -> R {
    let headers: HashMap<&str, &str> = HashMap::from([("x-team", "Red")]);
    let header = |name: &str| headers.get(name).copied();
    let mut facts = Facts::new("openai", "chat_completions", "POST", "api.openai.com");
    facts.model = Some("gpt-4o-mini");
    facts.tenant = Some("acme");
    facts.agent = Some("reporter");
    facts.key = Some("key-1");
    facts.session = Some("s-42");
    facts.header = &header;
    f(&mut facts)
}

fn matches(matcher: MatchSpec) -> bool {
    let set = compile(vec![spec("r", Action::Deny, matcher)]);
    with_facts(|f| set.evaluate(f, noon()).rule.is_some())
}

fn matches_with(matcher: MatchSpec, edit: impl FnOnce(&mut Facts<'_>)) -> bool {
    let set = compile(vec![spec("r", Action::Deny, matcher)]);
    with_facts(|f| {
        edit(f);
        set.evaluate(f, noon()).rule.is_some()
    })
}

#[test]
fn each_field_matches_its_own_fact() {
    type Setter = fn(&mut MatchSpec, Vec<String>);
    let fields: [(&str, &str, Setter); 9] = [
        ("provider", "openai", |m, v| m.provider = v),
        ("route", "chat_completions", |m, v| m.route = v),
        ("method", "POST", |m, v| m.method = v),
        ("upstream_host", "api.openai.com", |m, v| {
            m.upstream_host = v
        }),
        ("model", "gpt-4o-mini", |m, v| m.model = v),
        ("tenant", "acme", |m, v| m.tenant = v),
        ("agent", "reporter", |m, v| m.agent = v),
        ("key", "key-1", |m, v| m.key = v),
        ("session", "s-42", |m, v| m.session = v),
    ];
    for (field, value, set) in fields {
        let mut hit = MatchSpec::default();
        set(&mut hit, v(&[value]));
        assert!(matches(hit), "{field} = {value} should match");
        let mut miss = MatchSpec::default();
        set(&mut miss, v(&["something-else"]));
        assert!(!matches(miss), "{field} = something-else should not match");
        let mut glob = MatchSpec::default();
        set(&mut glob, v(&["nope", "*"]));
        assert!(matches(glob), "{field}: any pattern of the list may match");
    }
}

#[test]
fn globs_star_and_question_mark() {
    let model = |p: &[&str]| {
        matches(MatchSpec {
            model: v(p),
            ..Default::default()
        })
    };
    assert!(model(&["gpt-*"]));
    assert!(model(&["*-mini"]));
    assert!(model(&["gpt-4?-mini"]));
    assert!(model(&["*4o*"]));
    assert!(
        !model(&["gpt-4o"]),
        "a literal matches the whole value only"
    );
    assert!(!model(&["gpt-4?"]));
    assert!(!model(&["GPT-*"]), "models compare case-sensitively");
}

#[test]
fn provider_method_and_header_names_ignore_case_but_values_do_not() {
    assert!(matches(MatchSpec {
        provider: v(&["OpenAI"]),
        method: v(&["post"]),
        ..Default::default()
    }));
    assert!(matches(MatchSpec {
        headers: vec![("X-Team".into(), v(&["Red"]))],
        ..Default::default()
    }));
    assert!(!matches(MatchSpec {
        headers: vec![("x-team".into(), v(&["red"]))],
        ..Default::default()
    }));
    assert!(!matches(MatchSpec {
        agent: v(&["Reporter"]),
        ..Default::default()
    }));
}

#[test]
fn headers_match_values_and_missing_headers_never_match() {
    assert!(matches(MatchSpec {
        headers: vec![("x-team".into(), v(&["Blue", "R*"]))],
        ..Default::default()
    }));
    assert!(matches(MatchSpec {
        headers: vec![("x-team".into(), v(&["*"]))],
        ..Default::default()
    }));
    assert!(!matches(MatchSpec {
        headers: vec![("x-cost-center".into(), v(&["*"]))],
        ..Default::default()
    }));
    // Two headers: both must match.
    assert!(!matches(MatchSpec {
        headers: vec![
            ("x-team".into(), v(&["Red"])),
            ("x-env".into(), v(&["prod"]))
        ],
        ..Default::default()
    }));
}

#[test]
fn a_missing_fact_does_not_match_a_non_empty_list() {
    assert!(!matches_with(
        MatchSpec {
            model: v(&["*"]),
            ..Default::default()
        },
        |f| f.model = None
    ));
    assert!(!matches_with(
        MatchSpec {
            tenant: v(&["*"]),
            ..Default::default()
        },
        |f| f.tenant = None
    ));
    assert!(!matches_with(
        MatchSpec {
            session: v(&["*"]),
            ..Default::default()
        },
        |f| f.session = None
    ));
    // A field the rule does not mention never matters.
    assert!(matches_with(
        MatchSpec {
            agent: v(&["reporter"]),
            ..Default::default()
        },
        |f| {
            f.model = None;
            f.tenant = None;
            f.key = None;
        }
    ));
}

#[test]
fn every_listed_field_must_match() {
    assert!(matches(MatchSpec {
        provider: v(&["openai"]),
        model: v(&["gpt-*"]),
        agent: v(&["reporter", "writer"]),
        ..Default::default()
    }));
    assert!(!matches(MatchSpec {
        provider: v(&["openai"]),
        model: v(&["gpt-*"]),
        agent: v(&["writer"]),
        ..Default::default()
    }));
}

#[test]
fn first_match_wins_and_the_default_applies_otherwise() {
    let set = PolicySet::compile(
        vec![
            spec(
                "log-anthropic",
                Action::Log,
                MatchSpec {
                    provider: v(&["anthropic"]),
                    ..Default::default()
                },
            ),
            spec(
                "allow-reporter",
                Action::Allow,
                MatchSpec {
                    agent: v(&["reporter"]),
                    ..Default::default()
                },
            ),
            spec(
                "deny-mini",
                Action::Deny,
                MatchSpec {
                    model: v(&["*-mini"]),
                    ..Default::default()
                },
            ),
        ],
        Action::Deny,
    )
    .unwrap();
    assert_eq!(set.rules().len(), 3);
    assert!(!set.is_empty());
    assert_eq!(set.default_action(), Action::Deny);
    with_facts(|f| {
        let d = set.evaluate(f, noon());
        assert_eq!(d.rule.unwrap().name(), "allow-reporter");
        assert_eq!(d.rule.unwrap().index(), 1);
        assert_eq!(d.action, Action::Allow);
        assert_eq!(d.status, 200);
        assert_eq!(d.reason, "rule `allow-reporter` allows this request");

        f.agent = Some("other");
        let d = set.evaluate(f, noon());
        assert_eq!(d.rule.unwrap().name(), "deny-mini");
        assert_eq!((d.action, d.status), (Action::Deny, 403));

        f.provider = "anthropic";
        let d = set.evaluate(f, noon());
        assert_eq!(d.action, Action::Log);
        assert_eq!(
            d.reason,
            "rule `log-anthropic` allows and logs this request"
        );

        f.provider = "openai";
        f.model = Some("gpt-4o");
        let d = set.evaluate(f, noon());
        assert!(d.rule.is_none());
        assert_eq!((d.action, d.status), (Action::Deny, 403));
        assert_eq!(d.reason, "no rule matched; policy.default is deny");
    });

    let empty = PolicySet::compile(Vec::new(), Action::Allow).unwrap();
    assert!(empty.is_empty());
    with_facts(|f| {
        let d = empty.evaluate(f, noon());
        assert_eq!((d.action, d.status), (Action::Allow, 200));
        assert_eq!(d.reason, "no rule matched; policy.default is allow");
    });
}

#[test]
fn deny_status_and_reason_name_the_rule() {
    let mut rule = spec(
        "no-gpt4",
        Action::Deny,
        MatchSpec {
            model: v(&["gpt-4*"]),
            ..Default::default()
        },
    );
    rule.status = Some(451);
    rule.reason = Some("GPT-4 class models need approval".into());
    let set = compile(vec![rule]);
    with_facts(|f| {
        let d = set.evaluate(f, noon());
        assert!(d.is_deny());
        assert_eq!(d.status, 451);
        assert_eq!(
            d.reason,
            "rule `no-gpt4` denies this request: GPT-4 class models need approval"
        );
        assert_eq!(
            d.rule.unwrap().reason(),
            Some("GPT-4 class models need approval")
        );
    });
}

#[test]
fn limits_attach_to_the_matching_rule() {
    let mut rule = spec("capped", Action::Allow, MatchSpec::default());
    rule.limits = LimitSpec {
        per: Some("tenant".into()),
        rpm: Some(60),
        tpm: Some(100_000),
        concurrent: Some(4),
        max_tokens: Some(2048),
        models: v(&["gpt-4o-mini", "claude-*-haiku*"]),
    };
    let set = compile(vec![rule]);
    with_facts(|f| {
        let d = set.evaluate(f, noon());
        let limits = d.limits().unwrap();
        assert_eq!(limits.per, Scope::Tenant);
        assert_eq!(limits.per.subject(f), Some("acme"));
        assert_eq!(
            (limits.rpm, limits.tpm, limits.concurrent, limits.max_tokens),
            (Some(60), Some(100_000), Some(4), Some(2048))
        );
        assert!(limits.model_allowed(Some("gpt-4o-mini")));
        assert!(limits.model_allowed(Some("claude-3-5-haiku-latest")));
        assert!(!limits.model_allowed(Some("gpt-4o")));
        assert!(limits.model_allowed(None), "model listings name no model");
        assert!(limits.has_rate_limits());
    });

    let mut plain = spec("plain", Action::Allow, MatchSpec::default());
    plain.limits.rpm = Some(10);
    let set = compile(vec![plain]);
    let limits = set.rules()[0].limits();
    assert_eq!(
        limits.per,
        Scope::Agent,
        "limits count per agent by default"
    );
    assert!(limits.model_allowed(Some("anything")));
}

#[test]
fn compile_errors_name_rule_and_field() {
    let base = || spec("r", Action::Allow, MatchSpec::default());
    let cases: Vec<(RuleSpec, &str)> = vec![
        (
            RuleSpec {
                status: Some(403),
                ..base()
            },
            "status",
        ),
        (
            RuleSpec {
                action: Action::Deny,
                status: Some(200),
                ..base()
            },
            "status",
        ),
        (
            RuleSpec {
                name: " ".into(),
                ..base()
            },
            "name",
        ),
        (
            RuleSpec {
                reason: Some(String::new()),
                ..base()
            },
            "reason",
        ),
        (
            RuleSpec {
                matcher: MatchSpec {
                    model: v(&[""]),
                    ..Default::default()
                },
                ..base()
            },
            "match.model",
        ),
        (
            RuleSpec {
                matcher: MatchSpec {
                    hours: Some("9-5".into()),
                    ..Default::default()
                },
                ..base()
            },
            "match.hours",
        ),
        (
            RuleSpec {
                matcher: MatchSpec {
                    days: v(&["someday"]),
                    ..Default::default()
                },
                ..base()
            },
            "match.days",
        ),
        (
            RuleSpec {
                matcher: MatchSpec {
                    hours: Some("09:00-17:00".into()),
                    timezone: Some("Europe/Atlantis".into()),
                    ..Default::default()
                },
                ..base()
            },
            "match.timezone",
        ),
        (
            RuleSpec {
                matcher: MatchSpec {
                    timezone: Some("UTC".into()),
                    ..Default::default()
                },
                ..base()
            },
            "match.timezone",
        ),
        (
            RuleSpec {
                matcher: MatchSpec {
                    headers: vec![("bad header".into(), v(&["x"]))],
                    ..Default::default()
                },
                ..base()
            },
            "match.header",
        ),
        (
            RuleSpec {
                matcher: MatchSpec {
                    headers: vec![("x-a".into(), v(&[]))],
                    ..Default::default()
                },
                ..base()
            },
            "match.header",
        ),
        (
            RuleSpec {
                limits: LimitSpec {
                    rpm: Some(0),
                    ..Default::default()
                },
                ..base()
            },
            "limits.rpm",
        ),
        (
            RuleSpec {
                limits: LimitSpec {
                    per: Some("planet".into()),
                    rpm: Some(1),
                    ..Default::default()
                },
                ..base()
            },
            "limits.per",
        ),
        (
            RuleSpec {
                limits: LimitSpec {
                    per: Some("key".into()),
                    max_tokens: Some(100),
                    ..Default::default()
                },
                ..base()
            },
            "limits.per",
        ),
        (
            RuleSpec {
                action: Action::Deny,
                limits: LimitSpec {
                    rpm: Some(5),
                    ..Default::default()
                },
                ..base()
            },
            "limits",
        ),
        (
            RuleSpec {
                limits: LimitSpec {
                    models: v(&[""]),
                    ..Default::default()
                },
                ..base()
            },
            "limits.models",
        ),
    ];
    for (rule, field) in cases {
        let e = compile_err(rule);
        assert_eq!(e.rule, 0);
        assert_eq!(e.field, field, "{e}");
        assert!(
            e.to_string().starts_with(&format!("rules[0].{field}: ")),
            "{e}"
        );
    }
}

#[test]
fn duplicate_names_are_refused_at_the_later_rule() {
    let e = PolicySet::compile(
        vec![
            spec("a", Action::Allow, MatchSpec::default()),
            spec("b", Action::Allow, MatchSpec::default()),
            spec("a", Action::Deny, MatchSpec::default()),
        ],
        Action::Allow,
    )
    .unwrap_err();
    assert_eq!((e.rule, e.field), (2, "name"));
    assert!(e.message.contains("rules[0]"), "{}", e.message);
}

fn window(days: &[&str], hours: Option<&str>, tz: Option<&str>) -> PolicySet {
    compile(vec![spec(
        "w",
        Action::Deny,
        MatchSpec {
            days: v(days),
            hours: hours.map(Into::into),
            timezone: tz.map(Into::into),
            ..Default::default()
        },
    )])
}

fn in_window(set: &PolicySet, now: &str) -> bool {
    let facts = Facts::new("openai", "chat_completions", "POST", "api.openai.com");
    set.evaluate(&facts, at(now)).rule.is_some()
}

#[test]
fn business_hours_in_a_named_zone() {
    let set = window(&["mon-fri"], Some("09:00-17:30"), Some("Asia/Tokyo"));
    // Tokyo is UTC+9 all year. 2026-11-18 is a Wednesday.
    assert!(
        in_window(&set, "2026-11-18T00:00:00Z"),
        "09:00 JST, start inclusive"
    );
    assert!(in_window(&set, "2026-11-18T08:29:00Z"), "17:29 JST");
    assert!(
        !in_window(&set, "2026-11-18T08:30:00Z"),
        "17:30 JST, end exclusive"
    );
    assert!(!in_window(&set, "2026-11-17T23:59:00Z"), "08:59 JST");
    // Friday 23:00 UTC is Saturday 08:00 in Tokyo: the weekday is the local one.
    assert!(
        !in_window(&set, "2026-11-21T01:00:00Z"),
        "Saturday 10:00 JST"
    );
    assert!(in_window(&set, "2026-11-20T01:00:00Z"), "Friday 10:00 JST");
}

#[test]
fn days_alone_and_hours_alone() {
    let weekend = window(&["sat", "sun"], None, None);
    assert!(in_window(&weekend, "2026-11-21T00:00:00Z"));
    assert!(in_window(&weekend, "2026-11-22T23:59:59Z"));
    assert!(!in_window(&weekend, "2026-11-23T00:00:00Z"));
    let hours = window(&[], Some("12:00-13:00"), None);
    assert!(in_window(&hours, "2026-11-18T12:30:00Z"));
    assert!(in_window(&hours, "2026-11-22T12:00:00Z"), "every day");
    assert!(!in_window(&hours, "2026-11-18T13:00:00Z"));
}

#[test]
fn hours_follow_local_time_across_a_dst_change() {
    // US daylight saving time starts Sunday 2026-03-08 at 02:00 local (EST → EDT).
    let set = window(&["sun"], Some("09:00-10:00"), Some("America/New_York"));
    // The Sunday before: 09:30 EST is 14:30 UTC.
    assert!(in_window(&set, "2026-03-01T14:30:00Z"));
    assert!(!in_window(&set, "2026-03-01T13:30:00Z"), "08:30 EST");
    // The transition day: 09:30 EDT is 13:30 UTC, an hour earlier in UTC.
    assert!(in_window(&set, "2026-03-08T13:30:00Z"));
    assert!(!in_window(&set, "2026-03-08T14:30:00Z"), "10:30 EDT");

    // Across the skipped hour: 01:00-04:00 local is only two real hours that night.
    let night = window(&["sun"], Some("01:00-04:00"), Some("America/New_York"));
    assert!(in_window(&night, "2026-03-08T06:59:00Z"), "01:59 EST");
    assert!(
        in_window(&night, "2026-03-08T07:00:00Z"),
        "03:00 EDT: 02:xx never happens"
    );
    assert!(!in_window(&night, "2026-03-08T08:00:00Z"), "04:00 EDT");

    // Europe falls back on Sunday 2026-10-25 at 03:00 CEST → 02:00 CET; 02:30 happens twice.
    let berlin = window(&["sun"], Some("02:00-03:00"), Some("Europe/Berlin"));
    assert!(in_window(&berlin, "2026-10-25T00:30:00Z"), "02:30 CEST");
    assert!(
        in_window(&berlin, "2026-10-25T01:30:00Z"),
        "02:30 CET, the second time"
    );
    assert!(!in_window(&berlin, "2026-10-25T02:00:00Z"), "03:00 CET");
}

#[test]
fn a_window_that_wraps_midnight_belongs_to_the_day_it_starts() {
    let set = window(&["fri"], Some("22:00-06:00"), Some("Europe/Berlin"));
    // November: Berlin is UTC+1. 2026-11-20 is a Friday.
    assert!(in_window(&set, "2026-11-20T21:00:00Z"), "Friday 22:00");
    assert!(
        in_window(&set, "2026-11-21T02:00:00Z"),
        "Saturday 03:00, Friday's night"
    );
    assert!(
        !in_window(&set, "2026-11-21T05:00:00Z"),
        "Saturday 06:00, end exclusive"
    );
    assert!(
        !in_window(&set, "2026-11-20T02:00:00Z"),
        "Friday 03:00 is Thursday's night"
    );
    assert!(!in_window(&set, "2026-11-21T21:30:00Z"), "Saturday 22:30");
    assert!(!in_window(&set, "2026-11-20T20:59:00Z"), "Friday 21:59");

    let every_night = window(&[], Some("22:00-06:00"), None);
    assert!(in_window(&every_night, "2026-11-18T23:00:00Z"));
    assert!(in_window(&every_night, "2026-11-18T05:59:00Z"));
    assert!(!in_window(&every_night, "2026-11-18T12:00:00Z"));
}

#[test]
fn windows_combine_with_other_fields() {
    let set = compile(vec![spec(
        "night-writers",
        Action::Deny,
        MatchSpec {
            agent: v(&["writer"]),
            hours: Some("22:00-06:00".into()),
            ..Default::default()
        },
    )]);
    let run = |agent: &str, now: &str| {
        let mut facts = Facts::new("openai", "chat_completions", "POST", "h");
        facts.agent = Some(agent);
        set.evaluate(&facts, at(now)).is_deny()
    };
    assert!(run("writer", "2026-11-18T23:00:00Z"));
    assert!(!run("writer", "2026-11-18T12:00:00Z"));
    assert!(!run("reader", "2026-11-18T23:00:00Z"));
}

#[test]
fn rules_serialize_for_config_check() {
    let mut rule = spec(
        "r",
        Action::Deny,
        MatchSpec {
            model: v(&["gpt-4o"]),
            ..Default::default()
        },
    );
    rule.reason = Some("why".into());
    let mut allow = spec("a", Action::Allow, MatchSpec::default());
    allow.limits.rpm = Some(5);
    let set = compile(vec![rule, allow]);
    assert_eq!(
        serde_json::to_value(set.rules()).unwrap(),
        serde_json::json!([
            {"index": 0, "name": "r", "action": "deny", "status": 403, "reason": "why",
             "match": {"model": ["gpt-4o"]}},
            {"index": 1, "name": "a", "action": "allow", "match": {},
             "limits": {"per": "agent", "rpm": 5}}
        ])
    );
}
