//! Ordered policy rules: their specification ([`RuleSpec`]), compilation into a [`PolicySet`],
//! and first-match-wins evaluation into a [`Decision`].
//!
//! This module owns the meaning of a rule: which requests it matches and what it decides. It
//! must not count anything (rate limits and budgets are enforced by the gateway's state store
//! with the [`Limits`] a rule carries), read the clock (the caller passes `now`), or parse
//! requests (the gateway hands over [`Facts`]). Compilation validates everything once, so
//! evaluation cannot fail and allocates only the decision's reason.

use std::collections::HashMap;
use std::fmt;

use jiff::Timestamp;
use serde::Serialize;

use crate::facts::{Facts, LimitScope, Scope};
use crate::glob::Glob;
use crate::window::Window;

/// What a rule (or the default) decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Forward the request.
    Allow,
    /// Refuse it with the rule's status (403 unless set).
    Deny,
    /// Forward it, and mark the decision `log` in the ledger and logs for review.
    Log,
    /// Hold it until a human approves (`warden approvals approve`), then forward it; a denial
    /// or the approval timeout refuses it.
    Approve,
}

impl Action {
    /// The name used in config (`allow`, `deny`, `log`).
    pub fn name(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Deny => "deny",
            Action::Log => "log",
            Action::Approve => "approve",
        }
    }

    /// Parses an action name as written in config.
    pub fn parse(s: &str) -> Result<Action, String> {
        match s {
            "allow" => Ok(Action::Allow),
            "deny" => Ok(Action::Deny),
            "log" => Ok(Action::Log),
            "approve" => Ok(Action::Approve),
            other => Err(format!(
                "`{other}` is not an action; use allow, deny, log or approve"
            )),
        }
    }

    /// Whether the request can go ahead (`allow`, `log`, and `approve` once approved).
    pub fn forwards(self) -> bool {
        self != Action::Deny
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The status a deny answers with unless the rule sets one.
pub const DEFAULT_DENY_STATUS: u16 = 403;
/// The status recorded for decisions that forward the request.
const FORWARD_STATUS: u16 = 200;

/// One rule as configured (`[[rules]]`), before compilation.
#[derive(Clone, Debug)]
pub struct RuleSpec {
    /// Unique, non-empty name; decisions and logs cite it.
    pub name: String,
    /// What the rule decides when it matches.
    pub action: Action,
    /// HTTP status of a deny, 400..=599 (default 403). Only for `deny`.
    pub status: Option<u16>,
    /// Why, in words for the caller (a deny's error message) and the ledger.
    pub reason: Option<String>,
    /// Which requests the rule matches.
    pub matcher: MatchSpec,
    /// Limits that apply to the requests the rule matches (not for `deny`).
    pub limits: LimitSpec,
}

/// Which requests a rule matches. Every non-empty field must match (AND across fields); a field
/// matches when any of its globs does (OR within a list). Globs take `*` and `?`, and compare
/// case-sensitively except provider, method and header names. A request without a value for a
/// field (no model, no tenant, no such header) does not match a non-empty list.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MatchSpec {
    /// Provider names (`openai`, `anthropic`, `gemini`, `ollama`), case-insensitive.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub provider: Vec<String>,
    /// Operation names (`chat_completions`, `messages`, `embeddings`, …).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub route: Vec<String>,
    /// HTTP methods, case-insensitive.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub method: Vec<String>,
    /// Upstream hosts (`api.openai.com`, `127.0.0.1:8000`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub upstream_host: Vec<String>,
    /// Model names as the request gives them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub model: Vec<String>,
    /// Tenants.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tenant: Vec<String>,
    /// Agents.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub agent: Vec<String>,
    /// Virtual key ids.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub key: Vec<String>,
    /// Sessions.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub session: Vec<String>,
    /// Header name (case-insensitive) → accepted value globs (case-sensitive).
    #[serde(
        rename = "header",
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "headers_as_map"
    )]
    pub headers: Vec<(String, Vec<String>)>,
    /// Days of the week (`mon`..`sun`, full names or ranges like `mon-fri`); empty is every day.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub days: Vec<String>,
    /// Daily range `HH:MM-HH:MM`, end exclusive; may wrap past midnight (`22:00-06:00`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hours: Option<String>,
    /// IANA time zone of `days` and `hours` (default UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

/// Headers print as a table (`header = { "x-team" = ["red"] }`), as they are configured.
fn headers_as_map<S: serde::Serializer>(
    headers: &[(String, Vec<String>)],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(headers.iter().map(|(k, v)| (k, v)))
}

/// Limits a rule attaches to the requests it matches, as configured.
#[derive(Clone, Debug, Default)]
pub struct LimitSpec {
    /// `key`, `agent`, `tenant`, `session` or `global`: whose requests `rpm`, `tpm` and
    /// `concurrent` count together (default `agent`).
    pub per: Option<String>,
    /// Requests per minute.
    pub rpm: Option<u32>,
    /// Tokens per minute.
    pub tpm: Option<u32>,
    /// Requests in flight at once.
    pub concurrent: Option<u32>,
    /// Largest `max_tokens` (output tokens) a request may ask for.
    pub max_tokens: Option<u32>,
    /// Model allowlist (globs); empty allows every model.
    pub models: Vec<String>,
}

/// A rule compilation error: which rule (0-based index in `[[rules]]`), which field
/// (`match.hours`, `limits.rpm`, …) and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("rules[{rule}].{field}: {message}")]
pub struct RuleError {
    /// 0-based index of the rule in `[[rules]]`.
    pub rule: usize,
    /// The offending field, dotted as in the config file.
    pub field: &'static str,
    /// What is wrong and what is expected.
    pub message: String,
}

/// Compiled limits of a rule. Rate limits (`rpm`, `tpm`, `concurrent`) count per [`Scope`];
/// `max_tokens` and the model allowlist apply to each request on its own.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Limits {
    /// Whose requests the rate limits count together.
    pub per: LimitScope,
    /// Requests per minute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u32>,
    /// Tokens per minute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u32>,
    /// Requests in flight at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrent: Option<u32>,
    /// Largest output-token budget a request may ask for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    models: Vec<String>,
    #[serde(skip)]
    model_globs: Box<[Glob]>,
}

impl Limits {
    /// Whether `model` is on the allowlist. Always true without an allowlist, and for requests
    /// that name no model (model listings): the allowlist restricts which models are used.
    pub fn model_allowed(&self, model: Option<&str>) -> bool {
        match model {
            None => true,
            Some(m) => self.model_globs.is_empty() || self.model_globs.iter().any(|g| g.matches(m)),
        }
    }

    /// The model allowlist as configured (empty: every model).
    pub fn models(&self) -> &[String] {
        &self.models
    }

    /// Whether the rule sets no limit at all.
    pub fn is_empty(&self) -> bool {
        self.rpm.is_none()
            && self.tpm.is_none()
            && self.concurrent.is_none()
            && self.max_tokens.is_none()
            && self.models.is_empty()
    }

    /// Whether any limit counts requests or tokens across requests (and so needs the state store).
    pub fn has_rate_limits(&self) -> bool {
        self.rpm.is_some() || self.tpm.is_some() || self.concurrent.is_some()
    }
}

/// The request fields a rule can match, in evaluation order (cheap, always-present ones first).
pub(crate) const FIELD_NAMES: [&str; 9] = [
    "match.provider",
    "match.route",
    "match.method",
    "match.upstream_host",
    "match.model",
    "match.tenant",
    "match.agent",
    "match.key",
    "match.session",
];

/// Fields every request has a value for; for these (only), `*` constrains nothing.
pub(crate) const ALWAYS_PRESENT: usize = 4;

/// Fields compared ASCII case-insensitively.
const FOLDED: [bool; 9] = [true, false, true, false, false, false, false, false, false];

fn fact<'a>(facts: &Facts<'a>, field: usize) -> Option<&'a str> {
    match field {
        0 => Some(facts.provider),
        1 => Some(facts.route),
        2 => Some(facts.method),
        3 => Some(facts.upstream_host),
        4 => facts.model,
        5 => facts.tenant,
        6 => facts.agent,
        7 => facts.key,
        _ => facts.session,
    }
}

/// A list of globs, any of which may match.
pub(crate) type Field = Box<[Glob]>;

pub(crate) fn field_matches(field: &Field, value: Option<&str>) -> bool {
    value.is_some_and(|v| field.iter().any(|g| g.matches(v)))
}

/// What a rule needs to decide whether it matches, and nothing else: kept small and apart
/// from the rest of the rule so that scanning many rules stays within a few cache lines.
#[derive(Clone, Debug)]
pub(crate) struct Matcher {
    /// `(field index, globs)` for the fields the rule constrains, in evaluation order.
    checks: Box<[(usize, Field)]>,
    /// Lowercase header name → value globs.
    pub(crate) headers: Box<[(Box<str>, Field)]>,
    pub(crate) window: Option<Window>,
}

impl Matcher {
    fn matches(&self, facts: &Facts<'_>, now: Timestamp) -> bool {
        self.checks
            .iter()
            .all(|(i, field)| field_matches(field, fact(facts, *i)))
            && self
                .headers
                .iter()
                .all(|(name, field)| field_matches(field, (facts.header)(name)))
            // Last: converting `now` to local time is the most expensive check.
            && self.window.as_ref().is_none_or(|w| w.contains(now))
    }
}

/// A compiled rule.
#[derive(Clone, Debug)]
pub struct Rule {
    pub(crate) index: usize,
    pub(crate) name: String,
    pub(crate) action: Action,
    pub(crate) status: u16,
    pub(crate) reason: Option<String>,
    /// Every field's globs by index (for the linter, which compares field by field).
    pub(crate) fields: [Option<Field>; 9],
    pub(crate) matcher: Matcher,
    pub(crate) limits: Limits,
    spec: MatchSpec,
    /// The decision's reason, built once so a decision costs one string copy.
    decision_reason: String,
}

impl Rule {
    /// The rule's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// 0-based position in `[[rules]]`.
    pub fn index(&self) -> usize {
        self.index
    }

    /// What the rule decides.
    pub fn action(&self) -> Action {
        self.action
    }

    /// The status a deny answers with (403 unless set); 200 for `allow` and `log`.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The configured reason, if any.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// The limits attached to requests this rule matches.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The match specification as configured.
    pub fn matcher(&self) -> &MatchSpec {
        &self.spec
    }

    /// Whether the rule matches these facts at `now`.
    pub fn matches(&self, facts: &Facts<'_>, now: Timestamp) -> bool {
        self.matcher.matches(facts, now)
    }

    fn compile(index: usize, spec: RuleSpec) -> Result<Rule, RuleError> {
        let err = |field: &'static str, message: String| RuleError {
            rule: index,
            field,
            message,
        };
        let RuleSpec {
            name,
            action,
            status,
            reason,
            matcher,
            limits,
        } = spec;
        if name.trim().is_empty() {
            return Err(err("name", "must not be empty".into()));
        }
        if name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(err(
                "name",
                "must be at most 100 characters, without control characters".into(),
            ));
        }
        let status = match (action, status) {
            (Action::Deny, None) => DEFAULT_DENY_STATUS,
            (Action::Deny, Some(s)) if (400..=599).contains(&s) => s,
            (Action::Deny, Some(s)) => {
                return Err(err(
                    "status",
                    format!("{s} is not an error status; use 400..=599 (default 403)"),
                ));
            }
            (_, Some(_)) => {
                return Err(err(
                    "status",
                    format!("only a deny rule answers with a status; this rule is `{action}`"),
                ));
            }
            (_, None) => FORWARD_STATUS,
        };
        if reason
            .as_ref()
            .is_some_and(|r| r.trim().is_empty() || r.len() > 1000)
        {
            return Err(err(
                "reason",
                "must be non-empty and at most 1000 bytes".into(),
            ));
        }

        let lists = [
            &matcher.provider,
            &matcher.route,
            &matcher.method,
            &matcher.upstream_host,
            &matcher.model,
            &matcher.tenant,
            &matcher.agent,
            &matcher.key,
            &matcher.session,
        ];
        let mut fields: [Option<Field>; 9] = Default::default();
        for (i, list) in lists.into_iter().enumerate() {
            if !list.is_empty() {
                fields[i] = Some(globs(list, FOLDED[i]).map_err(|m| err(FIELD_NAMES[i], m))?);
            }
        }
        let mut headers: Vec<(Box<str>, Field)> = Vec::with_capacity(matcher.headers.len());
        for (name, values) in &matcher.headers {
            let lower = name.to_ascii_lowercase();
            if lower.is_empty() || !lower.bytes().all(is_token_byte) {
                return Err(err(
                    "match.header",
                    format!("`{name}` is not a header name"),
                ));
            }
            if headers.iter().any(|(n, _)| **n == *lower) {
                return Err(err(
                    "match.header",
                    format!("header `{lower}` is listed twice"),
                ));
            }
            if values.is_empty() {
                return Err(err(
                    "match.header",
                    format!(
                        "header `{lower}` has no values; use \"*\" to require only that it is present"
                    ),
                ));
            }
            let field = globs(values, false)
                .map_err(|m| err("match.header", format!("header `{lower}`: {m}")))?;
            headers.push((lower.into(), field));
        }
        let window = Window::new(
            &matcher.days,
            matcher.hours.as_deref(),
            matcher.timezone.as_deref(),
        )
        .map_err(|(field, m)| {
            let field = match field {
                "days" => "match.days",
                "hours" => "match.hours",
                _ => "match.timezone",
            };
            err(field, m)
        })?;

        let limits = compile_limits(action, limits).map_err(|(f, m)| err(f, m))?;
        let decision_reason = rule_reason(&name, action, reason.as_deref());
        Ok(Rule {
            index,
            name,
            action,
            status,
            reason,
            matcher: Matcher {
                checks: fields
                    .iter()
                    .enumerate()
                    .filter_map(|(i, f)| Some((i, f.clone()?)))
                    .collect(),
                headers: headers.into(),
                window,
            },
            fields,
            limits,
            spec: matcher,
            decision_reason,
        })
    }
}

/// RFC 9110 token characters: what a header name may contain.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn globs(list: &[String], fold: bool) -> Result<Field, String> {
    list.iter()
        .map(|p| Glob::new(p, fold).map_err(|m| format!("`{p}`: {m}")))
        .collect()
}

fn compile_limits(action: Action, l: LimitSpec) -> Result<Limits, (&'static str, String)> {
    let positive = |v: Option<u32>, field: &'static str| match v {
        Some(0) => Err((
            field,
            "must be at least 1; to refuse requests, use action = \"deny\"".to_string(),
        )),
        v => Ok(v),
    };
    let limits = Limits {
        per: match &l.per {
            Some(p) => Scope::parse(p).map_err(|m| ("limits.per", m))?,
            None => Scope::default(),
        },
        rpm: positive(l.rpm, "limits.rpm")?,
        tpm: positive(l.tpm, "limits.tpm")?,
        concurrent: positive(l.concurrent, "limits.concurrent")?,
        max_tokens: positive(l.max_tokens, "limits.max_tokens")?,
        model_globs: globs(&l.models, false).map_err(|m| ("limits.models", m))?,
        models: l.models,
    };
    if action == Action::Deny && !limits.is_empty() {
        return Err((
            "limits",
            "a deny rule refuses every request it matches, so its limits would never apply; remove them".into(),
        ));
    }
    if l.per.is_some() && !limits.has_rate_limits() {
        return Err((
            "limits.per",
            "scopes only rpm, tpm and concurrent; set one of them or remove `per`".into(),
        ));
    }
    Ok(limits)
}

fn rule_reason(name: &str, action: Action, reason: Option<&str>) -> String {
    let verb = match action {
        Action::Allow => "allows",
        Action::Deny => "denies",
        Action::Log => "allows and logs",
        Action::Approve => "holds for human approval",
    };
    match reason {
        Some(r) => format!("rule `{name}` {verb} this request: {r}"),
        None => format!("rule `{name}` {verb} this request"),
    }
}

impl Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct View<'a> {
            index: usize,
            name: &'a str,
            action: Action,
            #[serde(skip_serializing_if = "Option::is_none")]
            status: Option<u16>,
            #[serde(skip_serializing_if = "Option::is_none")]
            reason: Option<&'a str>,
            #[serde(rename = "match")]
            matcher: &'a MatchSpec,
            #[serde(skip_serializing_if = "Option::is_none")]
            limits: Option<&'a Limits>,
        }
        View {
            index: self.index,
            name: &self.name,
            action: self.action,
            status: (self.action == Action::Deny).then_some(self.status),
            reason: self.reason.as_deref(),
            matcher: &self.spec,
            limits: (!self.limits.is_empty()).then_some(&self.limits),
        }
        .serialize(s)
    }
}

/// The outcome of evaluating a policy for one request.
#[derive(Clone, Debug)]
pub struct Decision<'a> {
    /// The rule that matched, or `None` when the default applied.
    pub rule: Option<&'a Rule>,
    /// What to do.
    pub action: Action,
    /// The HTTP status of a deny (the rule's, else 403); 200 when the request goes ahead.
    pub status: u16,
    /// One sentence naming the rule (or the default) for the caller, the ledger and the logs,
    /// e.g. "rule `no-gpt4` denies this request: use gpt-4o-mini".
    pub reason: String,
}

impl<'a> Decision<'a> {
    /// The limits of the matching rule, if a rule matched.
    pub fn limits(&self) -> Option<&'a Limits> {
        self.rule.map(|r| &r.limits)
    }

    /// Whether the request is refused.
    pub fn is_deny(&self) -> bool {
        self.action == Action::Deny
    }
}

/// Compiled rules in order, and the action when none matches.
#[derive(Clone, Debug)]
pub struct PolicySet {
    rules: Vec<Rule>,
    /// The rules' matchers again, contiguous, for the evaluation scan.
    matchers: Box<[Matcher]>,
    default: Action,
    default_reason: String,
}

impl Default for PolicySet {
    /// No rules; everything is allowed.
    fn default() -> Self {
        PolicySet::compile(Vec::new(), Action::Allow).expect("an empty policy compiles")
    }
}

impl PolicySet {
    /// Validates and compiles `rules` (in order; the first match wins) with `default` for
    /// requests no rule matches. Rule names must be unique.
    pub fn compile(rules: Vec<RuleSpec>, default: Action) -> Result<PolicySet, RuleError> {
        let mut seen: HashMap<String, usize> = HashMap::with_capacity(rules.len());
        let mut compiled = Vec::with_capacity(rules.len());
        for (i, spec) in rules.into_iter().enumerate() {
            if let Some(first) = seen.get(&spec.name) {
                return Err(RuleError {
                    rule: i,
                    field: "name",
                    message: format!(
                        "`{}` is already the name of rules[{first}]; rule names must be unique",
                        spec.name
                    ),
                });
            }
            seen.insert(spec.name.clone(), i);
            compiled.push(Rule::compile(i, spec)?);
        }
        Ok(PolicySet {
            matchers: compiled.iter().map(|r| r.matcher.clone()).collect(),
            rules: compiled,
            default,
            default_reason: format!("no rule matched; policy.default is {default}"),
        })
    }

    /// Decides one request: the first matching rule's action, else the default.
    pub fn evaluate(&self, facts: &Facts<'_>, now: Timestamp) -> Decision<'_> {
        match self.first_match(facts, now) {
            Some(rule) => Decision {
                rule: Some(rule),
                action: rule.action,
                status: rule.status,
                reason: rule.decision_reason.clone(),
            },
            None => Decision {
                rule: None,
                action: self.default,
                status: if self.default == Action::Deny {
                    DEFAULT_DENY_STATUS
                } else {
                    FORWARD_STATUS
                },
                reason: self.default_reason.clone(),
            },
        }
    }

    /// The first rule that matches, without building a decision (no allocation).
    pub fn first_match(&self, facts: &Facts<'_>, now: Timestamp) -> Option<&Rule> {
        let i = self.matchers.iter().position(|m| m.matches(facts, now))?;
        Some(&self.rules[i])
    }

    /// Rules that can never fire, as warnings (see [`Lint`](crate::Lint)).
    pub fn lint(&self) -> Vec<crate::Lint> {
        crate::lint::lint(&self.rules)
    }

    /// The compiled rules, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The action for requests no rule matches.
    pub fn default_action(&self) -> Action {
        self.default
    }

    /// Whether there are no rules (every request gets the default).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}
