//! `[protect]` as written, and its validation into a [`ProtectConfig`] of `warden_protect`
//! types: the compiled scanner (built-in detectors plus `[[protect.rules]]`) and the action
//! policy (mode, presets, privacy profile, per-type and per-tenant actions).
//!
//! As elsewhere in `config`, serde types mirror the file key for key and keep spans, so an
//! error names `file:line` and the dotted key (`protect.actions.emial`,
//! `protect.rules[0].pattern`). What detectors and actions *mean* lives in `warden-protect`;
//! this module never scans anything.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use toml::Spanned;
use warden_protect::detect::{CustomRule, ScanOptions, Scanner};
use warden_protect::policy::{Action, Mode, PolicySpec, ProtectPolicy, TenantSpec};

use super::ConfigError;

/// `[protect]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProtect {
    mode: Option<Spanned<String>>,
    presets: Option<Spanned<Vec<String>>>,
    profile: Option<Spanned<String>>,
    decode: Option<bool>,
    injection: Option<bool>,
    stream_window: Option<Spanned<i64>>,
    vault_ttl: Option<Spanned<String>>,
    #[serde(default)]
    actions: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    response: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    rules: Vec<RawProtectRule>,
    #[serde(default)]
    tenants: BTreeMap<Spanned<String>, RawTenant>,
}

/// One `[[protect.rules]]` entry: a user-defined detector.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProtectRule {
    name: Spanned<String>,
    pattern: Spanned<String>,
    validator: Option<Spanned<String>>,
    action: Option<Spanned<String>>,
    response_action: Option<Spanned<String>>,
}

/// `[protect.tenants.<name>]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTenant {
    mode: Option<Spanned<String>>,
    profile: Option<Spanned<String>>,
    #[serde(default)]
    actions: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    response: BTreeMap<Spanned<String>, Spanned<String>>,
}

/// The validated content-protection settings.
pub struct ProtectConfig {
    /// Built-in detectors plus the custom rules, compiled once.
    pub scanner: Arc<Scanner>,
    /// What happens to each type, per direction and tenant.
    pub policy: Arc<ProtectPolicy>,
    /// Most bytes of streamed text held back at once (`protect.stream_window`); the scanner's
    /// longest pattern by default.
    pub stream_window: usize,
    /// How long a tokenized value stays restorable (`protect.vault_ttl`).
    pub vault_ttl: Duration,
}

impl std::fmt::Debug for ProtectConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProtectConfig")
            .field("stream_window", &self.stream_window)
            .field("vault_ttl", &self.vault_ttl)
            .finish_non_exhaustive()
    }
}

/// Default `protect.vault_ttl`.
pub const DEFAULT_VAULT_TTL: Duration = Duration::from_secs(24 * 3600);

impl Default for ProtectConfig {
    /// Built-in detectors, the default policy (`secrets-block`, enforce).
    fn default() -> Self {
        let scanner = Scanner::builtin();
        let policy = ProtectPolicy::default_for(&scanner.kinds());
        ProtectConfig {
            stream_window: scanner.max_match_len(),
            scanner: Arc::new(scanner),
            policy: Arc::new(policy),
            vault_ttl: DEFAULT_VAULT_TTL,
        }
    }
}

impl ProtectConfig {
    /// The effective protection for `warden config check`: mode, detectors and the action per
    /// type in each direction, presets and profiles applied.
    pub fn render(&self) -> Value {
        let rows: Vec<Value> = self
            .policy
            .effective()
            .into_iter()
            .map(|r| serde_json::to_value(r).unwrap_or(Value::Null))
            .collect();
        json!({
            "mode": self.policy.mode(None).name(),
            "stream_window": self.stream_window,
            "vault_ttl_secs": self.vault_ttl.as_secs(),
            "types": rows,
        })
    }
}

type At<'a> = &'a dyn Fn(Range<usize>, &str, String) -> ConfigError;

fn action(v: &Spanned<String>, key: &str, at: At<'_>) -> Result<Action, ConfigError> {
    Action::parse(v.get_ref()).ok_or_else(|| {
        at(
            v.span(),
            key,
            format!(
                "`{}` is not an action; use allow, log, mask, tokenize, redact or block",
                v.get_ref()
            ),
        )
    })
}

fn mode(v: &Spanned<String>, key: &str, at: At<'_>) -> Result<Mode, ConfigError> {
    Mode::parse(v.get_ref()).ok_or_else(|| {
        at(
            v.span(),
            key,
            format!(
                "`{}` is not a mode; use off, report or enforce",
                v.get_ref()
            ),
        )
    })
}

fn actions(
    raw: &BTreeMap<Spanned<String>, Spanned<String>>,
    prefix: &str,
    at: At<'_>,
) -> Result<BTreeMap<String, Action>, ConfigError> {
    raw.iter()
        .map(|(k, v)| {
            let key = format!("{prefix}.{}", k.get_ref());
            Ok((k.get_ref().clone(), action(v, &key, at)?))
        })
        .collect()
}

/// Validates `[protect]`.
pub(super) fn build(raw: RawProtect, at: At<'_>) -> Result<ProtectConfig, ConfigError> {
    let options = ScanOptions {
        decode: raw.decode.unwrap_or(false),
        injection: raw.injection.unwrap_or(true),
    };
    let mut spec = PolicySpec {
        mode: raw
            .mode
            .as_ref()
            .map(|m| mode(m, "protect.mode", at))
            .transpose()?,
        presets: raw.presets.as_ref().map(|p| p.get_ref().clone()),
        profile: raw.profile.as_ref().map(|p| p.get_ref().clone()),
        actions: actions(&raw.actions, "protect.actions", at)?,
        response_actions: actions(&raw.response, "protect.response", at)?,
        tenants: BTreeMap::new(),
    };
    let mut custom = Vec::new();
    for (i, r) in raw.rules.iter().enumerate() {
        let key = |k: &str| format!("protect.rules[{i}].{k}");
        custom.push(CustomRule {
            name: r.name.get_ref().clone(),
            pattern: r.pattern.get_ref().clone(),
            validator: r.validator.as_ref().map(|v| v.get_ref().clone()),
        });
        let name = r.name.get_ref().clone();
        if let Some(a) = &r.action {
            spec.actions
                .insert(name.clone(), action(a, &key("action"), at)?);
        }
        if let Some(a) = &r.response_action {
            spec.response_actions
                .insert(name, action(a, &key("response_action"), at)?);
        }
    }
    for (name, t) in &raw.tenants {
        let prefix = format!("protect.tenants.{}", name.get_ref());
        spec.tenants.insert(
            name.get_ref().clone(),
            TenantSpec {
                mode: t
                    .mode
                    .as_ref()
                    .map(|m| mode(m, &format!("{prefix}.mode"), at))
                    .transpose()?,
                profile: t.profile.as_ref().map(|p| p.get_ref().clone()),
                actions: actions(&t.actions, &format!("{prefix}.actions"), at)?,
                response_actions: actions(&t.response, &format!("{prefix}.response"), at)?,
            },
        );
    }

    let scanner = Scanner::new(options, custom).map_err(|e| {
        // Point at the rule the error names, else at the first rule.
        let message = e.to_string();
        let span = raw
            .rules
            .iter()
            .enumerate()
            .find(|(_, r)| message.contains(&format!("`{}`", r.name.get_ref())))
            .map(|(i, r)| (i, r.pattern.span()))
            .unwrap_or((0, raw.rules.first().map_or(0..0, |r| r.pattern.span())));
        at(span.1, &format!("protect.rules[{}]", span.0), message)
    })?;
    let policy = ProtectPolicy::compile(spec, &scanner.kinds()).map_err(|e| {
        // The policy error names the key; point at the [protect] table's first line we have.
        let span = raw
            .mode
            .as_ref()
            .map(|m| m.span())
            .or_else(|| raw.presets.as_ref().map(|p| p.span()))
            .or_else(|| raw.profile.as_ref().map(|p| p.span()))
            .or_else(|| raw.actions.keys().next().map(|k| k.span()))
            .or_else(|| raw.response.keys().next().map(|k| k.span()))
            .or_else(|| raw.tenants.keys().next().map(|k| k.span()))
            .unwrap_or(0..0);
        at(span, "protect", e.to_string())
    })?;
    let stream_window = match &raw.stream_window {
        Some(w) => usize::try_from(*w.get_ref())
            .ok()
            .filter(|n| (16..=1 << 20).contains(n))
            .ok_or_else(|| {
                at(
                    w.span(),
                    "protect.stream_window",
                    "must be a number of bytes from 16 to 1048576".into(),
                )
            })?,
        None => scanner.max_match_len().max(16),
    };
    let vault_ttl = match &raw.vault_ttl {
        Some(v) => super::units::parse_duration(v.get_ref())
            .map_err(|m| at(v.span(), "protect.vault_ttl", m))?,
        None => DEFAULT_VAULT_TTL,
    };
    Ok(ProtectConfig {
        scanner: Arc::new(scanner),
        policy: Arc::new(policy),
        stream_window,
        vault_ttl,
    })
}
