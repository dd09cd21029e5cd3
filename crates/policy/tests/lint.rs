//! The linter: shadowed and unreachable rules, and no false positives.

use warden_policy::{Action, LimitSpec, Lint, MatchSpec, PolicySet, RuleSpec};

fn v(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn rule(name: &str, matcher: MatchSpec) -> RuleSpec {
    RuleSpec {
        name: name.into(),
        action: Action::Deny,
        status: None,
        reason: None,
        matcher,
        limits: LimitSpec::default(),
    }
}

fn lint(rules: Vec<RuleSpec>) -> Vec<Lint> {
    PolicySet::compile(rules, Action::Allow).unwrap().lint()
}

fn shadowed(rule: usize, by: usize) -> impl Fn(&Lint) -> bool {
    move |l| matches!(l, Lint::Shadowed { rule: r, by: b, .. } if *r == rule && *b == by)
}

#[test]
fn broader_model_glob_shadows_a_later_specific_rule() {
    let lints = lint(vec![
        rule(
            "all-gpt",
            MatchSpec {
                provider: v(&["openai"]),
                model: v(&["gpt-*"]),
                ..Default::default()
            },
        ),
        rule(
            "gpt-4o",
            MatchSpec {
                provider: v(&["openai"]),
                model: v(&["gpt-4o"]),
                ..Default::default()
            },
        ),
    ]);
    assert_eq!(lints.len(), 1, "{lints:?}");
    assert!(shadowed(1, 0)(&lints[0]));
    let text = lints[0].to_string();
    assert!(
        text.contains("rule `gpt-4o` (rules[1]) never applies"),
        "{text}"
    );
    assert!(text.contains("`all-gpt` (rules[0])"), "{text}");
    assert_eq!(lints[0].rule(), 1);
}

#[test]
fn an_earlier_rule_with_an_extra_constraint_does_not_shadow() {
    let lints = lint(vec![
        rule(
            "gpt-for-reporter",
            MatchSpec {
                model: v(&["gpt-*"]),
                agent: v(&["reporter"]),
                ..Default::default()
            },
        ),
        rule(
            "gpt-4o",
            MatchSpec {
                model: v(&["gpt-4o"]),
                ..Default::default()
            },
        ),
    ]);
    assert!(lints.is_empty(), "{lints:?}");
}

#[test]
fn narrower_lists_and_globs_are_not_reported() {
    let lints = lint(vec![
        rule(
            "gpt-4o-only",
            MatchSpec {
                model: v(&["gpt-4o"]),
                ..Default::default()
            },
        ),
        rule(
            "gpt-any",
            MatchSpec {
                model: v(&["gpt-*"]),
                ..Default::default()
            },
        ),
        rule(
            "two-models",
            MatchSpec {
                model: v(&["gpt-4o", "o3"]),
                ..Default::default()
            },
        ),
    ]);
    // `two-models` also matches o3, which neither earlier rule matches.
    assert!(lints.is_empty(), "{lints:?}");
}

#[test]
fn list_coverage_is_element_wise() {
    let lints = lint(vec![
        rule(
            "families",
            MatchSpec {
                model: v(&["gpt-*", "claude-*"]),
                ..Default::default()
            },
        ),
        rule(
            "two",
            MatchSpec {
                model: v(&["claude-haiku-4-5", "gpt-4o*"]),
                tenant: v(&["acme"]),
                ..Default::default()
            },
        ),
    ]);
    assert_eq!(lints.len(), 1);
    assert!(shadowed(1, 0)(&lints[0]));
}

#[test]
fn rules_after_a_catch_all_are_unreachable() {
    let lints = lint(vec![
        rule(
            "anthropic",
            MatchSpec {
                provider: v(&["anthropic"]),
                ..Default::default()
            },
        ),
        rule("everything", MatchSpec::default()),
        rule(
            "late",
            MatchSpec {
                model: v(&["gpt-4o"]),
                ..Default::default()
            },
        ),
        rule(
            "later",
            MatchSpec {
                agent: v(&["x"]),
                ..Default::default()
            },
        ),
    ]);
    assert_eq!(lints.len(), 2, "{lints:?}");
    for (lint, rule) in lints.iter().zip([2, 3]) {
        assert!(
            matches!(lint, Lint::Unreachable { rule: r, after: 1, .. } if *r == rule),
            "{lint:?}"
        );
    }
    let text = lints[0].to_string();
    assert!(text.contains("is unreachable"), "{text}");
    assert!(
        text.contains("`everything` (rules[1]) matches every request"),
        "{text}"
    );
}

#[test]
fn a_star_on_an_always_present_field_is_a_catch_all_but_not_on_an_optional_one() {
    let lints = lint(vec![
        rule(
            "any-provider",
            MatchSpec {
                provider: v(&["*"]),
                ..Default::default()
            },
        ),
        rule("after", MatchSpec::default()),
    ]);
    assert!(
        matches!(lints[..], [Lint::Unreachable { rule: 1, .. }]),
        "{lints:?}"
    );

    // `model = "*"` does not match requests without a model, so a later rule without a model
    // constraint can still fire.
    let lints = lint(vec![
        rule(
            "any-model",
            MatchSpec {
                model: v(&["*"]),
                ..Default::default()
            },
        ),
        rule(
            "listing",
            MatchSpec {
                route: v(&["list_models"]),
                ..Default::default()
            },
        ),
        rule(
            "gpt",
            MatchSpec {
                model: v(&["gpt-4o"]),
                ..Default::default()
            },
        ),
    ]);
    assert_eq!(lints.len(), 1, "{lints:?}");
    assert!(shadowed(2, 0)(&lints[0]));
}

#[test]
fn a_time_window_or_header_on_the_earlier_rule_prevents_a_report() {
    let lints = lint(vec![
        rule(
            "office-hours",
            MatchSpec {
                model: v(&["gpt-*"]),
                days: v(&["mon-fri"]),
                hours: Some("09:00-17:00".into()),
                ..Default::default()
            },
        ),
        rule(
            "team-red",
            MatchSpec {
                model: v(&["gpt-*"]),
                headers: vec![("x-team".into(), v(&["red"]))],
                ..Default::default()
            },
        ),
        rule(
            "gpt-4o",
            MatchSpec {
                model: v(&["gpt-4o"]),
                ..Default::default()
            },
        ),
        // Matches everything, but is last: nothing to report about it.
        rule("rest", MatchSpec::default()),
    ]);
    assert!(lints.is_empty(), "{lints:?}");
}

#[test]
fn windows_and_headers_are_compared_when_both_rules_have_them() {
    let lints = lint(vec![
        rule(
            "weekdays",
            MatchSpec {
                days: v(&["mon-fri"]),
                hours: Some("08:00-18:00".into()),
                timezone: Some("Europe/Berlin".into()),
                headers: vec![("x-team".into(), v(&["*"]))],
                ..Default::default()
            },
        ),
        rule(
            "tuesday-morning",
            MatchSpec {
                days: v(&["tue"]),
                hours: Some("09:00-12:00".into()),
                timezone: Some("Europe/Berlin".into()),
                headers: vec![
                    ("x-team".into(), v(&["red"])),
                    ("x-env".into(), v(&["prod"])),
                ],
                ..Default::default()
            },
        ),
        rule(
            "tuesday-morning-paris",
            MatchSpec {
                days: v(&["tue"]),
                hours: Some("09:00-12:00".into()),
                timezone: Some("Europe/Paris".into()),
                headers: vec![("x-team".into(), v(&["red"]))],
                ..Default::default()
            },
        ),
        rule(
            "saturday",
            MatchSpec {
                days: v(&["sat"]),
                timezone: Some("Europe/Berlin".into()),
                headers: vec![("x-team".into(), v(&["red"]))],
                ..Default::default()
            },
        ),
    ]);
    // Paris is never compared with Berlin, even though they share an offset: conservative.
    assert_eq!(lints.len(), 1, "{lints:?}");
    assert!(shadowed(1, 0)(&lints[0]));
}

#[test]
fn a_whole_week_window_constrains_nothing() {
    let lints = lint(vec![
        rule(
            "always",
            MatchSpec {
                days: v(&["mon-sun"]),
                timezone: Some("Asia/Tokyo".into()),
                ..Default::default()
            },
        ),
        rule("after", MatchSpec::default()),
    ]);
    assert!(
        matches!(
            lints[..],
            [Lint::Unreachable {
                rule: 1,
                after: 0,
                ..
            }]
        ),
        "{lints:?}"
    );
}

#[test]
fn identical_rules_shadow_and_case_folded_fields_compare_folded() {
    let lints = lint(vec![
        rule(
            "post-openai",
            MatchSpec {
                provider: v(&["OpenAI"]),
                method: v(&["post"]),
                ..Default::default()
            },
        ),
        rule(
            "same",
            MatchSpec {
                provider: v(&["openai"]),
                method: v(&["POST"]),
                agent: v(&["a"]),
                ..Default::default()
            },
        ),
    ]);
    assert_eq!(lints.len(), 1, "{lints:?}");
    assert!(shadowed(1, 0)(&lints[0]));
}

#[test]
fn lints_serialize_with_their_kind() {
    let lints = lint(vec![
        rule("all", MatchSpec::default()),
        rule("never", MatchSpec::default()),
    ]);
    assert_eq!(
        serde_json::to_value(&lints).unwrap(),
        serde_json::json!([{"kind": "unreachable", "rule": 1, "name": "never", "after": 0, "after_name": "all"}])
    );
}

/// Generated policies: every reported lint is checked against a grid of requests and times, so
/// the linter never claims a rule is dead when some request would reach it.
#[test]
fn reported_lints_hold_on_every_generated_request() {
    let mut seed: u64 = 0x5eed;
    let mut next = move |n: usize| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((seed >> 33) as usize) % n
    };
    let models = ["gpt-4o", "gpt-4o-mini", "o3", "claude-haiku-4-5"];
    let model_globs = [
        "gpt-*", "gpt-4o", "*-mini", "gpt-4o*", "o?", "*", "claude-*",
    ];
    let agent_globs = ["a*", "ab", "*", "b"];
    let providers = ["openai", "anthropic"];
    let hours = ["09:00-17:00", "08:00-18:00", "22:00-06:00", "00:00-24:00"];
    let days = ["mon-fri", "sat", "tue", "mon-sun"];
    let times = [
        "2026-11-17T10:00:00Z",
        "2026-11-17T23:00:00Z",
        "2026-11-21T07:00:00Z",
        "2026-11-21T12:00:00Z",
        "2026-11-22T03:00:00Z",
        "2026-11-18T17:30:00Z",
    ];
    let mut reported = 0;
    for round in 0..300 {
        let mut rules = Vec::new();
        for i in 0..4 {
            let mut m = MatchSpec::default();
            if next(2) == 0 {
                m.model = (0..1 + next(2))
                    .map(|_| model_globs[next(7)].to_string())
                    .collect();
            }
            if next(3) == 0 {
                m.agent = vec![agent_globs[next(4)].to_string()];
            }
            if next(3) == 0 {
                m.provider = vec![providers[next(2)].to_string()];
            }
            if next(4) == 0 {
                m.headers = vec![("x-team".into(), vec![["red", "*"][next(2)].to_string()])];
            }
            if next(4) == 0 {
                m.hours = Some(hours[next(4)].to_string());
                if next(2) == 0 {
                    m.days = vec![days[next(4)].to_string()];
                }
            }
            rules.push(rule(&format!("r{round}-{i}"), m));
        }
        let set = PolicySet::compile(rules, Action::Allow).unwrap();
        for l in set.lint() {
            reported += 1;
            let (dead, by) = match l {
                Lint::Shadowed { rule, by, .. } => (rule, by),
                Lint::Unreachable { rule, after, .. } => (rule, after),
            };
            let (dead, by) = (&set.rules()[dead], &set.rules()[by]);
            for model in models.iter().map(Some).chain([None]) {
                for agent in ["ab", "b", "x"].iter().map(Some).chain([None]) {
                    for provider in providers {
                        for team in [Some("red"), Some("blue"), None] {
                            let header = |name: &str| (name == "x-team").then_some(team).flatten();
                            let mut f = warden_policy::Facts::new(
                                provider,
                                "chat_completions",
                                "POST",
                                "h",
                            );
                            f.model = model.copied();
                            f.agent = agent.copied();
                            f.header = &header;
                            for t in times {
                                let now = t.parse().unwrap();
                                assert!(
                                    !dead.matches(&f, now) || by.matches(&f, now),
                                    "{l}: but {f:?} at {t} reaches it"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(
        reported > 50,
        "generated policies should produce lints, got {reported}"
    );
}
