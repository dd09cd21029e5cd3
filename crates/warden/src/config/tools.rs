//! `[tools]` and `[[tools.rules]]` as written, and their validation into a [`ToolsConfig`]: the
//! compiled `warden_govern::Governor` plus the approval-queue settings.
//!
//! As elsewhere in `config`, serde types mirror the file key for key and keep spans, so an
//! error names `file:line` and the dotted key (`tools.rules[2].sql.policy`). What the rules
//! *mean* lives in `warden-govern` (`docs/tools.md`); this module never judges a call.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use toml::Spanned;
use warden_govern::{
    Action, ArgCondition, CondOp, GovernSpec, Governor, OnDeny, PathSpec, RuleSpec, ShellSpec,
    SqlSpec, UrlSpec,
};

use super::ConfigError;
use super::policy::OneOrMany;
use crate::approve::ApprovalSettings;

/// Default `tools.approval_timeout`.
pub const DEFAULT_APPROVAL_TIMEOUT: Duration = Duration::from_secs(300);

/// `[tools]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTools {
    preset: Option<bool>,
    default: Option<Spanned<String>>,
    on_unparsable: Option<Spanned<String>>,
    on_deny: Option<Spanned<String>>,
    approval_timeout: Option<Spanned<String>>,
    approval_webhooks: Option<Spanned<Vec<String>>>,
    approval_link_base: Option<Spanned<String>>,
    #[serde(default)]
    rules: Vec<Spanned<RawRule>>,
}

/// One `[[tools.rules]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Spanned<String>,
    tool: Option<Spanned<OneOrMany>>,
    tenant: Option<Spanned<OneOrMany>>,
    agent: Option<Spanned<OneOrMany>>,
    key: Option<Spanned<OneOrMany>>,
    action: Option<Spanned<String>>,
    on_deny: Option<Spanned<String>>,
    strip: Option<bool>,
    #[serde(default)]
    when: Vec<Spanned<RawCond>>,
    sql: Option<Spanned<RawSql>>,
    shell: Option<Spanned<RawShell>>,
    path: Option<Spanned<RawPath>>,
    url: Option<Spanned<RawUrl>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCond {
    path: String,
    equals: Option<toml::Value>,
    glob: Option<String>,
    regex: Option<String>,
    min: Option<toml::Value>,
    max: Option<toml::Value>,
    exists: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSql {
    arg: Option<String>,
    dialect: Option<String>,
    policy: Option<String>,
    #[serde(default)]
    deny_statements: Vec<String>,
    #[serde(default)]
    deny_tables: Vec<String>,
    unparsable: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShell {
    arg: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    allow_programs: Vec<String>,
    #[serde(default)]
    deny_programs: Vec<String>,
    #[serde(default)]
    allow_recursive_delete: Vec<String>,
    builtin: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPath {
    arg: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    allow_roots: Vec<String>,
    #[serde(default)]
    deny_roots: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUrl {
    arg: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    allow_domains: Vec<String>,
    #[serde(default)]
    deny_domains: Vec<String>,
    deny_private: Option<bool>,
}

/// The validated tool-call governance settings.
pub struct ToolsConfig {
    /// The compiled rules and preset.
    pub governor: Arc<Governor>,
    /// Whether any call can be judged other than `allow` by the default (false only with the
    /// preset off, no rules and `default = "allow"`), so the gateway can skip the stage.
    pub enabled: bool,
    /// Whether any rule strips tool definitions from requests.
    pub strips: bool,
    /// The approval queue's settings.
    pub approvals: ApprovalSettings,
    /// How the preset's and the default's denials are carried out (`tools.on_deny`); a rule's
    /// own `on_deny` wins for its verdicts.
    pub on_deny: OnDeny,
    preset: bool,
    default_action: Action,
    on_unparsable: Action,
}

impl std::fmt::Debug for ToolsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolsConfig")
            .field("enabled", &self.enabled)
            .field("approvals", &self.approvals)
            .finish_non_exhaustive()
    }
}

impl Default for ToolsConfig {
    /// The built-in preset on, everything else allowed.
    fn default() -> Self {
        let spec = GovernSpec::default();
        ToolsConfig {
            enabled: true,
            strips: false,
            on_deny: OnDeny::Error,
            preset: spec.preset,
            default_action: spec.default_action,
            on_unparsable: spec.on_unparsable,
            governor: Arc::new(Governor::compile(spec).expect("the default tool rules compile")),
            approvals: ApprovalSettings {
                timeout: DEFAULT_APPROVAL_TIMEOUT,
                webhooks: Vec::new(),
                link_base: None,
            },
        }
    }
}

impl ToolsConfig {
    /// The effective tool rules for `warden config check`, preset included.
    pub fn render(&self) -> Value {
        json!({
            "preset": self.preset,
            "default": self.default_action.name(),
            "on_unparsable": self.on_unparsable.name(),
            "on_deny": self.on_deny.name(),
            "approval_timeout_secs": self.approvals.timeout.as_secs(),
            "approval_webhooks": self.approvals.webhooks.len(),
            "rules": self.governor.describe(),
        })
    }
}

type At<'a> = &'a dyn Fn(Range<usize>, &str, String) -> ConfigError;

fn action(v: &str, span: Range<usize>, key: &str, at: At<'_>) -> Result<Action, ConfigError> {
    v.parse::<Action>().map_err(|_| {
        at(
            span,
            key,
            format!("`{v}` is not a tool action; use allow, log, deny or approve"),
        )
    })
}

fn list(v: &Option<Spanned<OneOrMany>>) -> Vec<String> {
    v.as_ref()
        .map(|s| s.get_ref().0.clone())
        .unwrap_or_default()
}

fn one_or_args(arg: &Option<String>, args: &[String]) -> Vec<String> {
    let mut out: Vec<String> = arg.iter().cloned().collect();
    out.extend(args.iter().cloned());
    out
}

/// Validates `[tools]`.
pub(super) fn build(raw: RawTools, at: At<'_>) -> Result<ToolsConfig, ConfigError> {
    let mut spec = GovernSpec::default();
    if let Some(p) = raw.preset {
        spec.preset = p;
    }
    if let Some(d) = &raw.default {
        spec.default_action = action(d.get_ref(), d.span(), "tools.default", at)?;
    }
    if let Some(d) = &raw.on_unparsable {
        spec.on_unparsable = action(d.get_ref(), d.span(), "tools.on_unparsable", at)?;
    }
    let on_deny = match &raw.on_deny {
        Some(o) => o.get_ref().parse::<OnDeny>().map_err(|_| {
            at(
                o.span(),
                "tools.on_deny",
                format!("`{}` is not a deny mode; use error or replace", o.get_ref()),
            )
        })?,
        None => OnDeny::Error,
    };
    let mut spans = Vec::with_capacity(raw.rules.len());
    let mut strips = false;
    for (i, spanned) in raw.rules.iter().enumerate() {
        let span = spanned.span();
        let r = spanned.get_ref();
        let key = |k: &str| format!("tools.rules[{i}].{k}");
        let mut rule = RuleSpec {
            name: r.name.get_ref().clone(),
            tool: list(&r.tool),
            tenant: list(&r.tenant),
            agent: list(&r.agent),
            key: list(&r.key),
            strip: r.strip.unwrap_or(false),
            ..RuleSpec::default()
        };
        strips |= rule.strip;
        rule.action = match &r.action {
            Some(a) => action(a.get_ref(), a.span(), &key("action"), at)?,
            None => Action::Deny,
        };
        if let Some(o) = &r.on_deny {
            rule.on_deny = o.get_ref().parse::<OnDeny>().map_err(|_| {
                at(
                    o.span(),
                    &key("on_deny"),
                    format!("`{}` is not a deny mode; use error or replace", o.get_ref()),
                )
            })?;
        }
        for (j, c) in r.when.iter().enumerate() {
            let k = key(&format!("when[{j}]"));
            rule.when.push(condition(c.get_ref(), c.span(), &k, at)?);
        }
        if let Some(s) = &r.sql {
            let s_ref = s.get_ref();
            let mut sql = SqlSpec {
                arg: s_ref.arg.clone(),
                deny_statements: s_ref.deny_statements.clone(),
                deny_tables: s_ref.deny_tables.clone(),
                ..SqlSpec::default()
            };
            if let Some(d) = &s_ref.dialect {
                sql.dialect = d
                    .parse()
                    .map_err(|e: String| at(s.span(), &key("sql.dialect"), e))?;
            }
            if let Some(p) = &s_ref.policy {
                sql.policy = Some(
                    p.parse()
                        .map_err(|e: String| at(s.span(), &key("sql.policy"), e))?,
                );
            }
            if let Some(u) = &s_ref.unparsable {
                sql.unparsable = Some(action(u, s.span(), &key("sql.unparsable"), at)?);
            }
            rule.sql = Some(sql);
        }
        if let Some(s) = &r.shell {
            let s = s.get_ref();
            rule.shell = Some(ShellSpec {
                args: one_or_args(&s.arg, &s.args),
                allow_programs: s.allow_programs.clone(),
                deny_programs: s.deny_programs.clone(),
                allow_recursive_delete: s.allow_recursive_delete.clone(),
                builtin: s.builtin.unwrap_or(true),
            });
        }
        if let Some(p) = &r.path {
            let p = p.get_ref();
            rule.path = Some(PathSpec {
                args: one_or_args(&p.arg, &p.args),
                allow_roots: p.allow_roots.clone(),
                deny_roots: p.deny_roots.clone(),
            });
        }
        if let Some(u) = &r.url {
            let u = u.get_ref();
            rule.url = Some(UrlSpec {
                args: one_or_args(&u.arg, &u.args),
                allow_domains: u.allow_domains.clone(),
                deny_domains: u.deny_domains.clone(),
                deny_private: u.deny_private.unwrap_or(true),
            });
        }
        spans.push(span);
        spec.rules.push(rule);
    }
    let enabled = spec.preset || !spec.rules.is_empty() || spec.default_action != Action::Allow;
    let (preset, default_action, on_unparsable) =
        (spec.preset, spec.default_action, spec.on_unparsable);
    let governor = Governor::compile(spec).map_err(|e| {
        let span = spans.get(e.index).cloned().unwrap_or(0..0);
        at(span, &format!("tools.{}", e.field), e.message.clone())
    })?;

    let timeout = match &raw.approval_timeout {
        Some(t) => super::units::parse_duration(t.get_ref())
            .map_err(|m| at(t.span(), "tools.approval_timeout", m))?,
        None => DEFAULT_APPROVAL_TIMEOUT,
    };
    if timeout.is_zero() {
        let span = raw.approval_timeout.as_ref().map_or(0..0, Spanned::span);
        return Err(at(
            span,
            "tools.approval_timeout",
            "must be longer than zero (a call nobody can approve is a deny: use action = \"deny\")"
                .into(),
        ));
    }
    let mut webhooks = Vec::new();
    if let Some(w) = &raw.approval_webhooks {
        for (i, url) in w.get_ref().iter().enumerate() {
            let ok = url
                .parse::<http::Uri>()
                .ok()
                .filter(|u| matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some());
            if ok.is_none() {
                return Err(at(
                    w.span(),
                    &format!("tools.approval_webhooks[{i}]"),
                    format!("`{url}` is not an http(s) URL"),
                ));
            }
            webhooks.push(url.clone());
        }
    }
    Ok(ToolsConfig {
        governor: Arc::new(governor),
        enabled,
        strips,
        on_deny,
        preset,
        default_action,
        on_unparsable,
        approvals: ApprovalSettings {
            timeout,
            webhooks,
            link_base: raw.approval_link_base.map(|l| l.into_inner()),
        },
    })
}

fn condition(
    c: &RawCond,
    span: Range<usize>,
    key: &str,
    at: At<'_>,
) -> Result<ArgCondition, ConfigError> {
    let number = |v: &Option<toml::Value>, k: &str| -> Result<Option<f64>, ConfigError> {
        match v {
            None => Ok(None),
            Some(toml::Value::Integer(i)) => Ok(Some(*i as f64)),
            Some(toml::Value::Float(f)) => Ok(Some(*f)),
            Some(other) => Err(at(
                span.clone(),
                &format!("{key}.{k}"),
                format!("must be a number, not {}", other.type_str()),
            )),
        }
    };
    let mut ops = Vec::new();
    if let Some(v) = &c.equals {
        let json = serde_json::to_value(v).map_err(|e| {
            at(
                span.clone(),
                &format!("{key}.equals"),
                format!("cannot be compared as JSON: {e}"),
            )
        })?;
        ops.push(CondOp::Equals(json));
    }
    if let Some(g) = &c.glob {
        ops.push(CondOp::Glob(g.clone()));
    }
    if let Some(r) = &c.regex {
        ops.push(CondOp::Regex(r.clone()));
    }
    let (min, max) = (number(&c.min, "min")?, number(&c.max, "max")?);
    if min.is_some() || max.is_some() {
        ops.push(CondOp::Range { min, max });
    }
    if let Some(e) = c.exists {
        ops.push(CondOp::Exists(e));
    }
    if ops.len() != 1 {
        return Err(at(
            span,
            key,
            "needs exactly one test: equals, glob, regex, min/max or exists".into(),
        ));
    }
    Ok(ArgCondition {
        path: c.path.clone(),
        op: ops.pop().expect("one op"),
    })
}
