//! Policy evaluation and price lookup costs.
//!
//! `evaluate/50-rules-last-matches` is the worst realistic case for a policy: 49 rules that each
//! get a look before the 50th matches. The rules mix the shapes operators write (models, agents,
//! tenants, headers, time windows), so the number reflects real per-rule checks rather than one
//! field compared 50 times.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use warden_policy::{
    Action, Facts, LimitSpec, MatchSpec, PolicySet, PriceTable, RuleSpec, Timestamp,
};

fn rules() -> PolicySet {
    let mut specs = Vec::new();
    for i in 0..49 {
        let matcher = match i % 5 {
            0 => MatchSpec {
                model: vec![format!("model-{i}-*")],
                ..Default::default()
            },
            1 => MatchSpec {
                provider: vec!["anthropic".into()],
                agent: vec![format!("agent-{i}")],
                ..Default::default()
            },
            2 => MatchSpec {
                tenant: vec![format!("tenant-{i}"), format!("tenant-{i}-*")],
                route: vec!["chat_completions".into()],
                ..Default::default()
            },
            3 => MatchSpec {
                headers: vec![("x-team".into(), vec![format!("team-{i}")])],
                ..Default::default()
            },
            _ => MatchSpec {
                agent: vec![format!("night-{i}")],
                days: vec!["mon-fri".into()],
                hours: Some("22:00-06:00".into()),
                timezone: Some("Europe/Berlin".into()),
                ..Default::default()
            },
        };
        specs.push(RuleSpec {
            name: format!("rule-{i}"),
            action: if i % 2 == 0 {
                Action::Deny
            } else {
                Action::Log
            },
            status: None,
            reason: None,
            matcher,
            limits: LimitSpec::default(),
        });
    }
    specs.push(RuleSpec {
        name: "reporters".into(),
        action: Action::Allow,
        status: None,
        reason: None,
        matcher: MatchSpec {
            provider: vec!["openai".into()],
            model: vec!["gpt-4o*".into()],
            agent: vec!["reporter-*".into()],
            ..Default::default()
        },
        limits: LimitSpec {
            rpm: Some(60),
            ..Default::default()
        },
    });
    PolicySet::compile(specs, Action::Deny).expect("bench rules compile")
}

fn bench(c: &mut Criterion) {
    let set = rules();
    let now: Timestamp = "2026-11-20T23:30:00Z".parse().unwrap();
    let header = |name: &str| (name == "x-team").then_some("team-none");
    let mut facts = Facts::new("openai", "chat_completions", "POST", "api.openai.com");
    facts.model = Some("gpt-4o-mini");
    facts.agent = Some("reporter-7");
    facts.tenant = Some("acme");
    facts.header = &header;
    assert_eq!(set.evaluate(&facts, now).rule.unwrap().name(), "reporters");

    c.bench_function("evaluate/50-rules-last-matches", |b| {
        b.iter(|| set.evaluate(black_box(&facts), black_box(now)).action)
    });
    c.bench_function("first_match/50-rules-last-matches", |b| {
        b.iter(|| set.first_match(black_box(&facts), black_box(now)).is_some())
    });

    let prices = PriceTable::builtin();
    c.bench_function("price/exact", |b| {
        b.iter(|| prices.lookup(black_box("openai"), black_box("gpt-4o-mini")))
    });
    c.bench_function("price/dated-variant", |b| {
        b.iter(|| {
            prices.lookup(
                black_box("anthropic"),
                black_box("claude-sonnet-4-5-20250929"),
            )
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
