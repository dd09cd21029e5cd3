//! Cost of judging one tool call with the default configuration (preset on, no user rules).
//!
//! - `non-matching-tool`: a tool no convention covers — the price every other call pays;
//!   it should be a few case-insensitive substring scans and nothing else.
//! - `sql-select`: a SELECT with a join and a WHERE through `execute_sql` (parse + visit).
//! - `shell-pipeline`: a realistic four-stage pipeline with quoting and a substitution.
//! - `url`: a fetch of a public https URL (WHATWG parse + address classification).
//! - `rules-20-then-preset`: 20 user rules with globs and conditions that all miss, then the
//!   preset's SQL check.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use warden_govern::{
    Action, ArgCondition, CondOp, GovernSpec, Governor, RuleSpec, Subject, ToolCall,
};

fn bench(c: &mut Criterion) {
    let g = Governor::compile(GovernSpec::default()).unwrap();
    let who = Subject {
        tenant: Some("acme"),
        agent: Some("coder-1"),
        key: Some("vk_123"),
    };
    let cases = [
        (
            "non-matching-tool",
            "get_weather",
            json!({"city": "Paris", "units": "metric"}),
        ),
        (
            "sql-select",
            "execute_sql",
            json!({"query": "SELECT u.id, u.name, count(o.id) FROM users u JOIN orders o ON o.user_id = u.id WHERE u.created_at > '2024-01-01' GROUP BY u.id, u.name ORDER BY 3 DESC LIMIT 20"}),
        ),
        (
            "shell-pipeline",
            "run_shell_command",
            json!({"command": "cd \"$(git rev-parse --show-toplevel)\" && grep -rn 'TODO' src | sort | head -n 20 > /tmp/todo.txt"}),
        ),
        (
            "url",
            "web_fetch",
            json!({"url": "https://docs.rs/serde_json/latest/serde_json/enum.Value.html"}),
        ),
    ];
    let mut group = c.benchmark_group("judge");
    for (name, tool, args) in &cases {
        let call = ToolCall {
            name: tool,
            arguments: args,
        };
        group.bench_function(*name, |b| {
            b.iter(|| black_box(g.judge(black_box(&call), &who)))
        });
    }

    let rules = (0..20)
        .map(|i| RuleSpec {
            name: format!("rule-{i}"),
            tool: vec![format!("tool_{i}_*"), "execute_sql".into()],
            agent: vec![format!("agent-{i}")],
            action: Action::Deny,
            when: vec![ArgCondition {
                path: "$.query".into(),
                op: CondOp::Glob(format!("*table_{i}*")),
            }],
            ..RuleSpec::default()
        })
        .collect();
    let g20 = Governor::compile(GovernSpec {
        rules,
        ..GovernSpec::default()
    })
    .unwrap();
    let (_, tool, args) = &cases[1];
    let call = ToolCall {
        name: tool,
        arguments: args,
    };
    group.bench_function("rules-20-then-preset", |b| {
        b.iter(|| black_box(g20.judge(black_box(&call), &who)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
