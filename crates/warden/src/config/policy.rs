//! The policy sections of `warden.toml` as written (`[policy]`, `[[rules]]`, `[[budgets]]`,
//! `[pricing]`) and their validation into a [`PolicyConfig`] of `warden_policy` types.
//!
//! As in `raw.rs`, the serde types mirror the file key for key (unknown keys are errors) and
//! keep spans, so every value error names `file:line` and the dotted key
//! (`rules[2].match.hours`, `budgets[0].limit_usd`, `pricing.models[1].output_per_mtok`). What
//! rules, prices and budgets *mean* lives in `warden-policy`, which also does the semantic
//! checks; this module converts types, checks what only the file knows (provider names, empty
//! lists, duplicates) and points errors at the right line. It never evaluates a rule.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde_json::{Value, json};
use toml::Spanned;
use warden_policy::{
    Action, BUILTIN_PRICES_AS_OF, BudgetPeriod, BudgetSpec, LimitSpec, Lint, MatchSpec, PolicySet,
    Price, PriceSpec, PriceTable, RuleError, RuleSpec, Scope, UnknownModel, micros_to_usd,
    usd_to_micros,
};
use warden_protocol::Provider;

use super::ConfigError;

/// `[policy]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPolicySection {
    default: Option<Spanned<String>>,
}

/// One `[[rules]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    name: Spanned<String>,
    action: Spanned<String>,
    status: Option<Spanned<i64>>,
    reason: Option<Spanned<String>>,
    #[serde(rename = "match", default)]
    matcher: RawMatch,
    #[serde(default)]
    limits: RawRuleLimits,
}

/// `[rules.match]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatch {
    provider: Option<Spanned<OneOrMany>>,
    route: Option<Spanned<OneOrMany>>,
    method: Option<Spanned<OneOrMany>>,
    upstream_host: Option<Spanned<OneOrMany>>,
    model: Option<Spanned<OneOrMany>>,
    tenant: Option<Spanned<OneOrMany>>,
    agent: Option<Spanned<OneOrMany>>,
    key: Option<Spanned<OneOrMany>>,
    session: Option<Spanned<OneOrMany>>,
    header: Option<BTreeMap<Spanned<String>, Spanned<OneOrMany>>>,
    days: Option<Spanned<OneOrMany>>,
    hours: Option<Spanned<String>>,
    timezone: Option<Spanned<String>>,
}

/// `[rules.limits]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRuleLimits {
    per: Option<Spanned<String>>,
    rpm: Option<Spanned<i64>>,
    tpm: Option<Spanned<i64>>,
    concurrent: Option<Spanned<i64>>,
    max_tokens: Option<Spanned<i64>>,
    models: Option<Spanned<OneOrMany>>,
}

/// One `[[budgets]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBudget {
    name: Spanned<String>,
    per: Option<Spanned<String>>,
    id: Option<Spanned<String>>,
    limit_usd: Spanned<f64>,
    soft_usd: Option<Spanned<f64>>,
    approve_usd: Option<Spanned<f64>>,
    period: Option<Spanned<String>>,
}

/// `[pricing]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPricing {
    unknown_model: Option<Spanned<String>>,
    default: Option<RawPrice>,
    #[serde(default)]
    models: Vec<RawModelPrice>,
}

/// `[pricing.default]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrice {
    input_per_mtok: Spanned<f64>,
    output_per_mtok: Spanned<f64>,
    cached_input_per_mtok: Option<Spanned<f64>>,
}

/// One `[[pricing.models]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModelPrice {
    provider: Spanned<String>,
    model: Spanned<String>,
    input_per_mtok: Spanned<f64>,
    output_per_mtok: Spanned<f64>,
    cached_input_per_mtok: Option<Spanned<f64>>,
}

/// A string or an array of strings (`model = "gpt-4o"` or `model = ["gpt-4o", "o3"]`).
#[derive(Debug, Clone)]
pub(super) struct OneOrMany(pub(super) Vec<String>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany(vec![s.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(OneOrMany(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// The validated policy: rules, budgets, prices and the unknown-model policy.
#[derive(Debug, Clone)]
pub struct PolicyConfig {
    /// `[policy]` and `[[rules]]`, compiled.
    pub rules: warden_policy::PolicySet,
    /// `[[budgets]]`, in file order.
    pub budgets: Vec<warden_policy::BudgetSpec>,
    /// Built-in prices with `[[pricing.models]]` and `[pricing.default]` applied.
    pub prices: warden_policy::PriceTable,
    /// `pricing.unknown_model`.
    pub unknown_model: warden_policy::UnknownModel,
    /// `[protect]`: detectors and actions (swapped with the rest of the policy on reload).
    pub protect: std::sync::Arc<super::protect::ProtectConfig>,
    /// `[tools]`: tool-call rules and approvals (swapped with the rest of the policy on reload).
    pub tools: std::sync::Arc<super::tools::ToolsConfig>,
}

impl Default for PolicyConfig {
    /// No rules (everything allowed), no budgets, built-in prices, unknown models denied when a
    /// budget applies.
    fn default() -> Self {
        PolicyConfig {
            rules: PolicySet::default(),
            budgets: Vec::new(),
            prices: PriceTable::builtin(),
            unknown_model: UnknownModel::default(),
            protect: std::sync::Arc::new(super::protect::ProtectConfig::default()),
            tools: std::sync::Arc::new(super::tools::ToolsConfig::default()),
        }
    }
}

impl PolicyConfig {
    /// Rules that can never fire (shadowed or after a catch-all), to print as warnings.
    pub fn lints(&self) -> Vec<Lint> {
        self.rules.lint()
    }

    /// The effective policy for `warden config check`: rules with their matches and limits,
    /// lint warnings, budgets in USD and the pricing settings (overrides only; the built-in
    /// table is in `docs/pricing.md`). Absent values are omitted rather than null, so the view
    /// also renders as TOML.
    pub fn render(&self) -> Value {
        let price = |p: Price| {
            json!({
                "input_per_mtok": micros_to_usd(p.input_micros_per_mtok),
                "output_per_mtok": micros_to_usd(p.output_micros_per_mtok),
                "cached_input_per_mtok": micros_to_usd(p.cached_input_micros_per_mtok),
            })
        };
        let budgets: Vec<Value> = self
            .budgets
            .iter()
            .map(|b| {
                let mut v = json!({
                    "name": b.name,
                    "per": b.per.name(),
                    "limit_usd": micros_to_usd(b.limit_micros),
                    "period": b.period.name(),
                });
                if let Some(id) = &b.id {
                    v["id"] = json!(id);
                }
                if let Some(soft) = b.soft_micros {
                    v["soft_usd"] = json!(micros_to_usd(soft));
                }
                if let Some(a) = b.approve_micros {
                    v["approve_usd"] = json!(micros_to_usd(a));
                }
                v
            })
            .collect();
        let mut pricing = json!({
            "unknown_model": self.unknown_model.name(),
            "builtin_prices_as_of": BUILTIN_PRICES_AS_OF,
            "models": self.prices.overrides().map(|(provider, model, p)| {
                let mut v = price(p);
                v["provider"] = json!(provider);
                v["model"] = json!(model);
                v
            }).collect::<Vec<_>>(),
        });
        if let Some(d) = self.prices.default_price() {
            pricing["default"] = price(d);
        }
        json!({
            "policy": { "default": self.rules.default_action().name() },
            "rules": serde_json::to_value(self.rules.rules()).expect("rules serialize"),
            "lints": self.lints().iter().map(ToString::to_string).collect::<Vec<_>>(),
            "budgets": budgets,
            "pricing": pricing,
            "protect": self.protect.render(),
            "tools": self.tools.render(),
        })
    }
}

/// The error constructor of `raw::validate`: span, dotted key, message → `file:line` error.
type At<'a> = &'a dyn Fn(Range<usize>, &str, String) -> ConfigError;

/// Validates the policy sections into a [`PolicyConfig`].
pub(super) fn build(
    section: RawPolicySection,
    rules: Vec<RawRule>,
    budgets: Vec<RawBudget>,
    pricing: RawPricing,
    at: &dyn Fn(Range<usize>, &str, String) -> ConfigError,
) -> Result<PolicyConfig, ConfigError> {
    let default = match &section.default {
        Some(d) => match Action::parse(d.get_ref()) {
            Ok(a) => a,
            Err(m) => return Err(at(d.span(), "policy.default", m)),
        },
        None => Action::Allow,
    };
    let specs = rules
        .iter()
        .enumerate()
        .map(|(i, r)| rule_spec(i, r, at))
        .collect::<Result<Vec<_>, _>>()?;
    let compiled = PolicySet::compile(specs, default).map_err(|e| rule_error(&rules, e, at))?;
    Ok(PolicyConfig {
        rules: compiled,
        budgets: build_budgets(&budgets, at)?,
        prices: build_prices(&pricing, at)?,
        unknown_model: match &pricing.unknown_model {
            Some(u) => UnknownModel::parse(u.get_ref())
                .map_err(|m| at(u.span(), "pricing.unknown_model", m))?,
            None => UnknownModel::default(),
        },
        protect: std::sync::Arc::new(super::protect::ProtectConfig::default()),
        tools: std::sync::Arc::new(super::tools::ToolsConfig::default()),
    })
}

/// A list key: absent is empty; present must be non-empty.
fn list(v: &Option<Spanned<OneOrMany>>, key: &str, at: At<'_>) -> Result<Vec<String>, ConfigError> {
    match v {
        None => Ok(Vec::new()),
        Some(s) if s.get_ref().0.is_empty() => Err(at(
            s.span(),
            key,
            "is an empty list; remove the key to match any value".into(),
        )),
        Some(s) => Ok(s.get_ref().0.clone()),
    }
}

/// A positive count that fits in `u32` (`rpm`, `tpm`, `concurrent`, `max_tokens`).
fn count(v: &Option<Spanned<i64>>, key: &str, at: At<'_>) -> Result<Option<u32>, ConfigError> {
    let Some(v) = v else { return Ok(None) };
    u32::try_from(*v.get_ref())
        .ok()
        .filter(|n| *n > 0)
        .map(Some)
        .ok_or_else(|| {
            at(
                v.span(),
                key,
                format!("must be a whole number from 1 to {}", u32::MAX),
            )
        })
}

fn rule_spec(i: usize, r: &RawRule, at: At<'_>) -> Result<RuleSpec, ConfigError> {
    let key = |k: &str| format!("rules[{i}].{k}");
    let m = &r.matcher;
    let action = Action::parse(r.action.get_ref())
        .map_err(|msg| at(r.action.span(), &key("action"), msg))?;
    let status = match &r.status {
        Some(s) => Some(u16::try_from(*s.get_ref()).map_err(|_| {
            at(
                s.span(),
                &key("status"),
                "must be an HTTP error status, 400..=599".into(),
            )
        })?),
        None => None,
    };
    let provider = list(&m.provider, &key("match.provider"), at)?;
    // A misspelt provider would silently never match; wildcards are left alone.
    for p in &provider {
        if !p.contains(['*', '?']) && Provider::from_name(p).is_none() {
            let span = m.provider.as_ref().map_or(r.name.span(), |s| s.span());
            return Err(at(
                span,
                &key("match.provider"),
                format!("`{p}` is not a provider; use openai, anthropic, gemini or ollama"),
            ));
        }
    }
    let mut headers = Vec::new();
    for (name, values) in m.header.iter().flatten() {
        let hkey = key(&format!("match.header.{}", name.get_ref()));
        let ok = !name.get_ref().is_empty()
            && name
                .get_ref()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !ok {
            return Err(at(
                name.span(),
                &hkey,
                format!("`{}` is not a header name", name.get_ref()),
            ));
        }
        if headers
            .iter()
            .any(|(n, _): &(String, Vec<String>)| n.eq_ignore_ascii_case(name.get_ref()))
        {
            return Err(at(
                name.span(),
                &hkey,
                "is listed twice (header names are case-insensitive)".into(),
            ));
        }
        let values = list(&Some(values.clone()), &hkey, at)?;
        headers.push((name.get_ref().to_ascii_lowercase(), values));
    }
    Ok(RuleSpec {
        name: r.name.get_ref().clone(),
        action,
        status,
        reason: r.reason.as_ref().map(|s| s.get_ref().clone()),
        matcher: MatchSpec {
            provider,
            route: list(&m.route, &key("match.route"), at)?,
            method: list(&m.method, &key("match.method"), at)?,
            upstream_host: list(&m.upstream_host, &key("match.upstream_host"), at)?,
            model: list(&m.model, &key("match.model"), at)?,
            tenant: list(&m.tenant, &key("match.tenant"), at)?,
            agent: list(&m.agent, &key("match.agent"), at)?,
            key: list(&m.key, &key("match.key"), at)?,
            session: list(&m.session, &key("match.session"), at)?,
            headers,
            days: list(&m.days, &key("match.days"), at)?,
            hours: m.hours.as_ref().map(|h| h.get_ref().clone()),
            timezone: m.timezone.as_ref().map(|t| t.get_ref().clone()),
        },
        limits: LimitSpec {
            per: r.limits.per.as_ref().map(|p| p.get_ref().clone()),
            rpm: count(&r.limits.rpm, &key("limits.rpm"), at)?,
            tpm: count(&r.limits.tpm, &key("limits.tpm"), at)?,
            concurrent: count(&r.limits.concurrent, &key("limits.concurrent"), at)?,
            max_tokens: count(&r.limits.max_tokens, &key("limits.max_tokens"), at)?,
            models: list(&r.limits.models, &key("limits.models"), at)?,
        },
    })
}

/// Points a compile error at the line of the field it names.
fn rule_error(rules: &[RawRule], e: RuleError, at: At<'_>) -> ConfigError {
    let r = &rules[e.rule];
    let (m, l) = (&r.matcher, &r.limits);
    let list = |v: &Option<Spanned<OneOrMany>>| v.as_ref().map(Spanned::span);
    let string = |v: &Option<Spanned<String>>| v.as_ref().map(Spanned::span);
    let int = |v: &Option<Spanned<i64>>| v.as_ref().map(Spanned::span);
    let span = match e.field {
        "name" => Some(r.name.span()),
        "action" => Some(r.action.span()),
        "status" => int(&r.status),
        "reason" => string(&r.reason),
        "match.provider" => list(&m.provider),
        "match.route" => list(&m.route),
        "match.method" => list(&m.method),
        "match.upstream_host" => list(&m.upstream_host),
        "match.model" => list(&m.model),
        "match.tenant" => list(&m.tenant),
        "match.agent" => list(&m.agent),
        "match.key" => list(&m.key),
        "match.session" => list(&m.session),
        "match.header" => m
            .header
            .as_ref()
            .and_then(|h| h.values().next().map(Spanned::span)),
        "match.days" => list(&m.days),
        "match.hours" => string(&m.hours),
        "match.timezone" => string(&m.timezone),
        "limits.per" => string(&l.per),
        "limits.rpm" => int(&l.rpm),
        "limits.tpm" => int(&l.tpm),
        "limits.concurrent" => int(&l.concurrent),
        "limits.max_tokens" => int(&l.max_tokens),
        "limits.models" => list(&l.models),
        "limits" => int(&l.rpm)
            .or(int(&l.tpm))
            .or(int(&l.concurrent))
            .or(int(&l.max_tokens))
            .or(list(&l.models))
            .or(string(&l.per)),
        _ => None,
    };
    at(
        span.unwrap_or(r.name.span()),
        &format!("rules[{}].{}", e.rule, e.field),
        e.message,
    )
}

fn usd(v: &Spanned<f64>, key: &str, at: At<'_>) -> Result<i64, ConfigError> {
    usd_to_micros(*v.get_ref()).map_err(|m| at(v.span(), key, m))
}

fn build_budgets(raw: &[RawBudget], at: At<'_>) -> Result<Vec<BudgetSpec>, ConfigError> {
    let mut out: Vec<BudgetSpec> = Vec::with_capacity(raw.len());
    for (i, b) in raw.iter().enumerate() {
        let key = |k: &str| format!("budgets[{i}].{k}");
        let spec = BudgetSpec {
            name: b.name.get_ref().clone(),
            per: match &b.per {
                Some(p) => Scope::parse(p.get_ref()).map_err(|m| at(p.span(), &key("per"), m))?,
                None => Scope::Global,
            },
            id: b.id.as_ref().map(|s| s.get_ref().clone()),
            limit_micros: usd(&b.limit_usd, &key("limit_usd"), at)?,
            soft_micros: match &b.soft_usd {
                Some(s) => Some(usd(s, &key("soft_usd"), at)?),
                None => None,
            },
            approve_micros: match &b.approve_usd {
                Some(s) => Some(usd(s, &key("approve_usd"), at)?),
                None => None,
            },
            period: match &b.period {
                Some(p) => {
                    BudgetPeriod::parse(p.get_ref()).map_err(|m| at(p.span(), &key("period"), m))?
                }
                None => BudgetPeriod::Total,
            },
        };
        if let Err(e) = spec.validate() {
            let span = match e.field {
                "id" => b.id.as_ref().map(Spanned::span),
                "limit_usd" => Some(b.limit_usd.span()),
                "soft_usd" => b.soft_usd.as_ref().map(Spanned::span),
                "approve_usd" => b.approve_usd.as_ref().map(Spanned::span),
                "per" => b.per.as_ref().map(Spanned::span),
                "period" => b.period.as_ref().map(Spanned::span),
                _ => None,
            };
            return Err(at(span.unwrap_or(b.name.span()), &key(e.field), e.message));
        }
        if let Some(first) = out.iter().position(|o| o.name == spec.name) {
            return Err(at(
                b.name.span(),
                &key("name"),
                format!(
                    "`{}` is already the name of budgets[{first}]; budget names must be unique",
                    spec.name
                ),
            ));
        }
        out.push(spec);
    }
    Ok(out)
}

fn price(
    input: &Spanned<f64>,
    output: &Spanned<f64>,
    cached: &Option<Spanned<f64>>,
    prefix: &str,
    at: At<'_>,
) -> Result<Price, ConfigError> {
    let input_micros = usd(input, &format!("{prefix}.input_per_mtok"), at)?;
    Ok(Price {
        input_micros_per_mtok: input_micros,
        output_micros_per_mtok: usd(output, &format!("{prefix}.output_per_mtok"), at)?,
        // Without a cached price, cached tokens cost as much as other input.
        cached_input_micros_per_mtok: match cached {
            Some(c) => usd(c, &format!("{prefix}.cached_input_per_mtok"), at)?,
            None => input_micros,
        },
    })
}

fn build_prices(raw: &RawPricing, at: At<'_>) -> Result<PriceTable, ConfigError> {
    let default = match &raw.default {
        Some(d) => Some(price(
            &d.input_per_mtok,
            &d.output_per_mtok,
            &d.cached_input_per_mtok,
            "pricing.default",
            at,
        )?),
        None => None,
    };
    let mut overrides: Vec<PriceSpec> = Vec::with_capacity(raw.models.len());
    for (i, m) in raw.models.iter().enumerate() {
        let prefix = format!("pricing.models[{i}]");
        let provider = Provider::from_name(m.provider.get_ref()).ok_or_else(|| {
            at(
                m.provider.span(),
                &format!("{prefix}.provider"),
                format!(
                    "`{}` is not a provider; use openai, anthropic, gemini or ollama",
                    m.provider.get_ref()
                ),
            )
        })?;
        let model = m.model.get_ref().trim();
        if model.is_empty() {
            return Err(at(
                m.model.span(),
                &format!("{prefix}.model"),
                "must not be empty; use [pricing.default] for every unlisted model".into(),
            ));
        }
        if let Some(j) = overrides
            .iter()
            .position(|o| o.provider == provider.name() && o.model.eq_ignore_ascii_case(model))
        {
            return Err(at(
                m.model.span(),
                &format!("{prefix}.model"),
                format!("{provider} model `{model}` is already priced by pricing.models[{j}]"),
            ));
        }
        overrides.push(PriceSpec {
            provider: provider.name().to_string(),
            model: model.to_string(),
            price: price(
                &m.input_per_mtok,
                &m.output_per_mtok,
                &m.cached_input_per_mtok,
                &prefix,
                at,
            )?,
        });
    }
    Ok(PriceTable::builtin()
        .with_overrides(overrides)
        .with_default(default))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The four policy sections as they sit in `warden.toml`.
    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        #[serde(default)]
        policy: RawPolicySection,
        #[serde(default)]
        rules: Vec<RawRule>,
        #[serde(default)]
        budgets: Vec<RawBudget>,
        #[serde(default)]
        pricing: RawPricing,
    }

    fn line_of(text: &str, offset: usize) -> usize {
        text[..offset.min(text.len())].matches('\n').count() + 1
    }

    fn load(text: &str) -> Result<PolicyConfig, String> {
        let doc: Doc = toml::from_str(text).map_err(|e| e.to_string())?;
        let at = |span: Range<usize>, key: &str, message: String| ConfigError::Invalid {
            origin: format!("warden.toml:{}", line_of(text, span.start)),
            key: key.to_string(),
            message,
        };
        build(doc.policy, doc.rules, doc.budgets, doc.pricing, &at).map_err(|e| e.to_string())
    }

    /// Asserts that `text` fails with `warden.toml:<line>` and `<key>` in the message.
    fn fails(text: &str, line: usize, key: &str) -> String {
        let err = match load(text) {
            Ok(_) => panic!("expected an error for `{key}`"),
            Err(e) => e,
        };
        assert!(
            err.starts_with(&format!("warden.toml:{line}: `{key}`: ")),
            "expected line {line} and `{key}`, got: {err}"
        );
        err
    }

    const EXAMPLE: &str = r#"
[policy]
default = "deny"

[[rules]]
name = "no-gpt4-for-interns"
action = "deny"
status = 451
reason = "interns use the mini models"
match = { tenant = "interns", model = ["gpt-4*", "o3*"] }

[[rules]]
name = "night-log"
action = "log"
[rules.match]
agent = "batch-*"
days = ["mon-fri"]
hours = "22:00-06:00"
timezone = "Europe/Berlin"
header = { "X-Team" = ["red", "blue"] }

[[rules]]
name = "openai-chat"
action = "allow"
[rules.match]
provider = "openai"
route = ["chat_completions", "responses"]
[rules.limits]
per = "tenant"
rpm = 600
tpm = 200000
concurrent = 8
max_tokens = 4096
models = ["gpt-4o-mini", "gpt-4.1-*"]

[[budgets]]
name = "org-monthly"
limit_usd = 500
soft_usd = 400.5
period = "month"

[[budgets]]
name = "reporter-daily"
per = "agent"
id = "reporter"
limit_usd = 2.5
period = "day"

[pricing]
unknown_model = "deny"

[pricing.default]
input_per_mtok = 10
output_per_mtok = 30

[[pricing.models]]
provider = "openai"
model = "meta-llama/Llama-3.1-8B-Instruct"
input_per_mtok = 0.05
output_per_mtok = 0.10
cached_input_per_mtok = 0.05
"#;

    #[test]
    fn a_complete_example_loads() {
        let c = load(EXAMPLE).unwrap();
        let rules = c.rules.rules();
        assert_eq!(rules.len(), 3);
        assert_eq!(c.rules.default_action(), Action::Deny);
        assert_eq!(rules[0].status(), 451);
        assert_eq!(rules[0].matcher().model, ["gpt-4*", "o3*"]);
        assert_eq!(rules[1].action(), Action::Log);
        assert_eq!(
            rules[1].matcher().headers,
            [(
                "x-team".to_string(),
                vec!["red".to_string(), "blue".to_string()]
            )]
        );
        let limits = rules[2].limits();
        assert_eq!(limits.per, Scope::Tenant);
        assert_eq!(
            (limits.rpm, limits.tpm, limits.concurrent, limits.max_tokens),
            (Some(600), Some(200_000), Some(8), Some(4096))
        );
        assert!(limits.model_allowed(Some("gpt-4.1-mini")));
        assert!(!limits.model_allowed(Some("gpt-4o")));

        assert_eq!(c.budgets.len(), 2);
        assert_eq!(c.budgets[0].per, Scope::Global);
        assert_eq!(c.budgets[0].limit_micros, 500_000_000);
        assert_eq!(c.budgets[0].soft_micros, Some(400_500_000));
        assert_eq!(c.budgets[0].period, BudgetPeriod::Month);
        assert_eq!(c.budgets[1].id.as_deref(), Some("reporter"));
        assert_eq!(c.budgets[1].limit_micros, 2_500_000);

        assert_eq!(c.unknown_model, UnknownModel::Deny);
        let llama = c
            .prices
            .lookup("openai", "meta-llama/Llama-3.1-8B-Instruct")
            .unwrap();
        assert_eq!(llama.output_micros_per_mtok, 100_000);
        let unknown = c.prices.lookup("openai", "my-model").unwrap();
        assert_eq!(unknown.input_micros_per_mtok, 10_000_000);
        assert_eq!(unknown.cached_input_micros_per_mtok, 10_000_000);
        assert!(c.lints().is_empty());
    }

    #[test]
    fn the_example_in_docs_policy_md_loads() {
        let doc = include_str!("../../../../docs/policy.md");
        let start = doc
            .find("```toml\n# complete example")
            .expect("docs/policy.md has the complete example");
        let body = &doc[start + "```toml\n".len()..];
        let example = &body[..body.find("```").unwrap()];
        let c = load(example).unwrap_or_else(|e| panic!("docs/policy.md example: {e}"));
        assert!(c.lints().is_empty(), "{:?}", c.lints());

        // What the page says this file does.
        let tuesday_night = "2026-11-17T22:00:00Z".parse().unwrap(); // 23:00 in Berlin
        let mut facts =
            warden_policy::Facts::new("openai", "chat_completions", "POST", "api.openai.com");
        facts.tenant = Some("interns");
        facts.model = Some("gpt-4o");
        let d = c.rules.evaluate(&facts, tuesday_night);
        assert_eq!((d.action, d.status), (Action::Deny, 451));
        assert_eq!(
            d.reason,
            "rule `no-large-models-for-interns` denies this request: interns use gpt-4o-mini or claude-haiku-4-5"
        );
        facts.tenant = Some("acme");
        facts.agent = Some("batch-7");
        assert_eq!(c.rules.evaluate(&facts, tuesday_night).action, Action::Log);
        let header = |name: &str| (name == "x-team").then_some("red");
        facts.agent = Some("reporter-1");
        facts.header = &header;
        let d = c.rules.evaluate(&facts, tuesday_night);
        assert_eq!(d.rule.map(|r| r.name()), Some("red-reporters"));
        assert!(!d.limits().unwrap().model_allowed(Some("gpt-4o")));
        assert!(
            d.limits()
                .unwrap()
                .model_allowed(Some("gpt-4o-mini-2024-07-18"))
        );
        let budgets: Vec<_> = c.budgets.iter().filter_map(|b| b.subject(&facts)).collect();
        assert_eq!(budgets, ["global", "reporter-1", "acme"]);
        let saturday = "2026-11-21T12:00:00Z".parse().unwrap();
        let gemini = warden_policy::Facts::new("gemini", "generate_content", "POST", "x");
        assert_eq!(c.rules.evaluate(&gemini, saturday).action, Action::Deny);
    }

    #[test]
    fn nothing_configured_is_the_default() {
        let c = load("").unwrap();
        let d = PolicyConfig::default();
        assert!(c.rules.is_empty() && d.rules.is_empty());
        assert_eq!(c.rules.default_action(), Action::Allow);
        assert_eq!(d.rules.default_action(), Action::Allow);
        assert!(c.budgets.is_empty());
        assert_eq!(c.unknown_model, UnknownModel::Deny);
        assert_eq!(
            c.prices.lookup("openai", "gpt-4o"),
            d.prices.lookup("openai", "gpt-4o")
        );
        assert!(c.prices.lookup("openai", "gpt-4o").is_some());
        assert_eq!(c.prices.default_price(), None);
    }

    #[test]
    fn unknown_keys_are_syntax_errors_naming_key_and_line() {
        let err =
            load("[[rules]]\nname = \"a\"\naction = \"allow\"\n[rules.match]\nmodle = \"x\"\n")
                .unwrap_err();
        assert!(err.contains("line 5"), "{err}");
        assert!(err.contains("modle"), "{err}");
        let err = load("[[budgets]]\nname = \"b\"\nlimit_usd = 1\nlimit = 2\n").unwrap_err();
        assert!(err.contains("line 4") && err.contains("limit"), "{err}");
        let err = load("[pricing]\nunknown = \"deny\"\n").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn a_list_key_takes_a_string_or_strings_only() {
        let err = load("[[rules]]\nname = \"a\"\naction = \"allow\"\nmatch = { model = 4 }\n")
            .unwrap_err();
        assert!(err.contains("a string or an array of strings"), "{err}");
        assert!(err.contains("line 4"), "{err}");
        fails(
            "[[rules]]\nname = \"a\"\naction = \"allow\"\nmatch = { model = [] }\n",
            4,
            "rules[0].match.model",
        );
    }

    #[test]
    fn rule_errors_name_line_and_key() {
        let two = |second: &str| {
            format!(
                "[[rules]]\nname = \"first\"\naction = \"allow\"\n\n[[rules]]\nname = \"second\"\naction = \"deny\"\n{second}"
            )
        };
        fails(
            &two("[rules.match]\nhours = \"9-5\"\n"),
            9,
            "rules[1].match.hours",
        );
        fails(
            &two("[rules.match]\nhours = \"09:00-17:00\"\ntimezone = \"Mars/Base\"\n"),
            10,
            "rules[1].match.timezone",
        );
        fails(
            &two("[rules.match]\ndays = [\"mon\", \"xyz\"]\n"),
            9,
            "rules[1].match.days",
        );
        fails(
            &two("[rules.match]\nprovider = \"opneai\"\n"),
            9,
            "rules[1].match.provider",
        );
        fails(&two("status = 200\n"), 8, "rules[1].status");
        fails(&two("status = 70000\n"), 8, "rules[1].status");
        fails(&two("[rules.limits]\nrpm = 10\n"), 9, "rules[1].limits");
        fails(
            &two("[rules.match]\nmodel = \"\"\n"),
            9,
            "rules[1].match.model",
        );
        fails(
            &two("[rules.match.header]\n\"bad header\" = \"x\"\n"),
            9,
            "rules[1].match.header.bad header",
        );
        fails(
            "[[rules]]\nname = \"a\"\naction = \"permit\"\n",
            3,
            "rules[0].action",
        );
        fails(
            "[[rules]]\nname = \"a\"\naction = \"allow\"\nlimits = { rpm = 0 }\n",
            4,
            "rules[0].limits.rpm",
        );
        fails(
            "[[rules]]\nname = \"a\"\naction = \"allow\"\nlimits = { tpm = -5 }\n",
            4,
            "rules[0].limits.tpm",
        );
        fails(
            "[[rules]]\nname = \"a\"\naction = \"allow\"\nlimits = { per = \"team\", rpm = 5 }\n",
            4,
            "rules[0].limits.per",
        );
        fails(
            "[[rules]]\nname = \"a\"\naction = \"allow\"\nlimits = { per = \"key\" }\n",
            4,
            "rules[0].limits.per",
        );
        fails("[policy]\ndefault = \"maybe\"\n", 2, "policy.default");
    }

    #[test]
    fn rule_names_are_unique_and_non_empty() {
        let err = fails(
            "[[rules]]\nname = \"a\"\naction = \"allow\"\n[[rules]]\nname = \"a\"\naction = \"deny\"\n",
            5,
            "rules[1].name",
        );
        assert!(err.contains("rules[0]"), "{err}");
        fails(
            "[[rules]]\nname = \"\"\naction = \"allow\"\n",
            2,
            "rules[0].name",
        );
        let err = load("[[rules]]\naction = \"allow\"\n").unwrap_err();
        assert!(err.contains("missing field `name`"), "{err}");
    }

    #[test]
    fn budget_errors_name_line_and_key() {
        fails(
            "[[budgets]]\nname = \"a\"\nlimit_usd = -1\n",
            3,
            "budgets[0].limit_usd",
        );
        fails(
            "[[budgets]]\nname = \"a\"\nlimit_usd = 0\n",
            3,
            "budgets[0].limit_usd",
        );
        fails(
            "[[budgets]]\nname = \"a\"\nlimit_usd = 10\nsoft_usd = 10\n",
            4,
            "budgets[0].soft_usd",
        );
        fails(
            "[[budgets]]\nname = \"a\"\nlimit_usd = 10\nid = \"bot\"\n",
            4,
            "budgets[0].id",
        );
        fails(
            "[[budgets]]\nname = \"a\"\nlimit_usd = 10\nper = \"team\"\n",
            4,
            "budgets[0].per",
        );
        fails(
            "[[budgets]]\nname = \"a\"\nlimit_usd = 10\nperiod = \"week\"\n",
            4,
            "budgets[0].period",
        );
        fails(
            "[[budgets]]\nname = \"a\"\nlimit_usd = 1\n[[budgets]]\nname = \"a\"\nlimit_usd = 2\n",
            5,
            "budgets[1].name",
        );
        let err = load("[[budgets]]\nname = \"a\"\nlimit_usd = \"ten\"\n").unwrap_err();
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn pricing_errors_name_line_and_key() {
        let model = |body: &str| {
            format!(
                "[[pricing.models]]\nprovider = \"openai\"\nmodel = \"a\"\ninput_per_mtok = 1\noutput_per_mtok = 1\n\n[[pricing.models]]\n{body}"
            )
        };
        fails(
            &model(
                "provider = \"openai\"\nmodel = \"b\"\ninput_per_mtok = 1\noutput_per_mtok = -2\n",
            ),
            11,
            "pricing.models[1].output_per_mtok",
        );
        fails(
            &model(
                "provider = \"azure\"\nmodel = \"b\"\ninput_per_mtok = 1\noutput_per_mtok = 2\n",
            ),
            8,
            "pricing.models[1].provider",
        );
        fails(
            &model(
                "provider = \"OpenAI\"\nmodel = \"A\"\ninput_per_mtok = 1\noutput_per_mtok = 2\n",
            ),
            9,
            "pricing.models[1].model",
        );
        fails(
            &model(
                "provider = \"openai\"\nmodel = \" \"\ninput_per_mtok = 1\noutput_per_mtok = 2\n",
            ),
            9,
            "pricing.models[1].model",
        );
        fails(
            &model(
                "provider = \"openai\"\nmodel = \"b\"\ninput_per_mtok = 1\noutput_per_mtok = 2\ncached_input_per_mtok = nan\n",
            ),
            12,
            "pricing.models[1].cached_input_per_mtok",
        );
        fails(
            "[pricing.default]\ninput_per_mtok = 1e12\noutput_per_mtok = 1\n",
            2,
            "pricing.default.input_per_mtok",
        );
        fails(
            "[pricing]\nunknown_model = \"block\"\n",
            2,
            "pricing.unknown_model",
        );
        let err =
            load("[[pricing.models]]\nprovider = \"openai\"\nmodel = \"a\"\ninput_per_mtok = 1\n")
                .unwrap_err();
        assert!(err.contains("output_per_mtok"), "{err}");
    }

    #[test]
    fn overrides_replace_builtin_prices() {
        let c = load(
            "[pricing]\nunknown_model = \"allow\"\n[[pricing.models]]\nprovider = \"openai\"\nmodel = \"gpt-4o\"\ninput_per_mtok = 1\noutput_per_mtok = 2\n",
        )
        .unwrap();
        assert_eq!(c.unknown_model, UnknownModel::Allow);
        let p = c.prices.lookup("openai", "gpt-4o-2024-08-06").unwrap();
        assert_eq!(
            (
                p.input_micros_per_mtok,
                p.output_micros_per_mtok,
                p.cached_input_micros_per_mtok
            ),
            (1_000_000, 2_000_000, 1_000_000)
        );
    }

    #[test]
    fn render_shows_rules_lints_budgets_and_pricing() {
        let c = load(&format!(
            "{EXAMPLE}\n[[rules]]\nname = \"catch-all\"\naction = \"allow\"\n[[rules]]\nname = \"late\"\naction = \"deny\"\nmatch = {{ model = \"o3\" }}\n"
        ))
        .unwrap();
        let v = c.render();
        assert_eq!(v["policy"]["default"], "deny");
        assert_eq!(v["rules"][0]["name"], "no-gpt4-for-interns");
        assert_eq!(v["rules"][0]["status"], 451);
        assert_eq!(
            v["rules"][1]["match"]["header"]["x-team"],
            json!(["red", "blue"])
        );
        assert_eq!(v["rules"][2]["limits"]["per"], "tenant");
        assert_eq!(v["rules"][2]["limits"]["rpm"], 600);
        assert_eq!(v["lints"].as_array().unwrap().len(), 1);
        assert!(v["lints"][0].as_str().unwrap().contains("`late`"));
        assert_eq!(v["budgets"][0]["limit_usd"], 500.0);
        assert_eq!(v["budgets"][0]["soft_usd"], 400.5);
        assert!(
            v["budgets"][0].get("id").is_none(),
            "absent values are omitted"
        );
        assert_eq!(v["budgets"][1]["id"], "reporter");
        assert_eq!(v["pricing"]["unknown_model"], "deny");
        assert_eq!(v["pricing"]["default"]["input_per_mtok"], 10.0);
        assert_eq!(
            v["pricing"]["models"][0]["model"],
            "meta-llama/llama-3.1-8b-instruct"
        );
        // The view has no nulls, so it also renders as TOML for `warden config check`.
        toml::to_string_pretty(&v).expect("renders as TOML");
    }
}
