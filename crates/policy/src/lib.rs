/*!
Warden's policy decisions: which requests go ahead, under which limits, and what they cost.

The gateway identifies a request, hands this crate the [`Facts`] it found (provider, operation,
model, tenant, agent, key, session, headers) and the current time, and gets back a [`Decision`].
Everything here is pure computation: no I/O, no clock, no async runtime, no provider JSON.
Counting (rate limits, budget reservations) belongs to the state store; this crate supplies the
validated specifications it counts against.

- [`PolicySet`] holds the ordered `[[rules]]`: compiled once ([`PolicySet::compile`]), evaluated
  per request ([`PolicySet::evaluate`]) with the first match winning, and checked for rules
  that can never fire ([`PolicySet::lint`]). Rules may be limited to time windows in an IANA
  time zone (the zone database is compiled in).
- [`PriceTable`] prices models in integer micro-USD per 1M tokens: built-in list prices,
  configured overrides, base-name resolution of dated model names, and free local models.
  [`Price::cost_micros`] and [`worst_case_micros`] round up, never down.
- [`BudgetSpec`] is a validated spend cap per scope and period.

```
use warden_policy::{Action, Facts, LimitSpec, MatchSpec, PolicySet, PriceTable, RuleSpec, Usage};

let rules = PolicySet::compile(
    vec![RuleSpec {
        name: "no-gpt-4o".into(),
        action: Action::Deny,
        status: None,
        reason: Some("use gpt-4o-mini".into()),
        matcher: MatchSpec { model: vec!["gpt-4o".into()], ..Default::default() },
        limits: LimitSpec::default(),
    }],
    Action::Allow,
)?;
let mut facts = Facts::new("openai", "chat_completions", "POST", "api.openai.com");
facts.model = Some("gpt-4o");
let decision = rules.evaluate(&facts, "2026-11-21T12:00:00Z".parse()?);
assert_eq!(decision.action, Action::Deny);
assert_eq!(decision.status, 403);
assert_eq!(decision.reason, "rule `no-gpt-4o` denies this request: use gpt-4o-mini");

let price = PriceTable::builtin().lookup("openai", "gpt-4o-2024-08-06").unwrap();
let usage = Usage { input_tokens: 1_000, output_tokens: 500, cached_input_tokens: 0 };
assert_eq!(price.cost_micros(&usage), 2_500 + 5_000); // $0.0075
# Ok::<(), Box<dyn std::error::Error>>(())
```
*/
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod budget;
mod facts;
mod glob;
mod lint;
mod pricing;
mod rules;
mod window;

pub use budget::{BudgetError, BudgetPeriod, BudgetSpec, validate_budgets};
pub use facts::{BudgetScope, Facts, LimitScope, Scope};
pub use glob::glob_match;
pub use jiff::Timestamp;
pub use lint::Lint;
pub use pricing::{
    BUILTIN_PRICES_AS_OF, Price, PriceBasis, PriceMatch, PriceSpec, PriceTable, UnknownModel,
    Usage, micros_to_usd, usd_to_micros, worst_case_micros,
};
pub use rules::{
    Action, DEFAULT_DENY_STATUS, Decision, LimitSpec, Limits, MatchSpec, PolicySet, Rule,
    RuleError, RuleSpec,
};
