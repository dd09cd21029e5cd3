//! What to do about each detected type: the [`Mode`], the [`Action`] per type and direction, the
//! presets and privacy profiles that fill those in, and per-tenant overrides.
//!
//! This module owns the resolution rules and nothing else: it never sees a value, only type
//! names and families, and it never logs. Everything is resolved once in
//! [`ProtectPolicy::compile`] into flat tables, so [`ProtectPolicy::action`] (called once per
//! detection on the request path) is a couple of hash lookups.
//!
//! # Resolution of one type
//!
//! 1. Start from `allow`.
//! 2. Apply the presets in the order listed. A preset can only strengthen.
//! 3. Apply explicit `actions`: the family key (`pii`, `secret`, `injection`, `custom`) first,
//!    then the type key. Explicit config may set any action, including one weaker than a
//!    preset's: what the operator wrote wins over a bundle they picked.
//! 4. Response direction only: `response_actions` is applied the same way on top, so any
//!    `response_actions` entry (even a family one) overrides any `actions` entry for responses.
//! 5. Apply the privacy profile as a floor (strengthen-only: it never weakens what steps 1–4
//!    produced).
//! 6. Response direction only: `tokenize` becomes `redact`. A placeholder in a response would
//!    reach the caller, who has no way to detokenize it; the vault restores placeholders in
//!    responses *to* the caller, it does not issue new ones.
//!
//! A tenant override starts from the base result of steps 1–4, applies the tenant's `actions`
//! and `response_actions` the same way (steps 3–4), then applies **both** the base profile and
//! the tenant's profile as floors, then step 6. The base profile is therefore a floor for every
//! tenant: a tenant's explicit `allow` cannot undo a gateway-wide `gdpr`.
//! A tenant's `mode`, when set, replaces the base mode for that tenant.
//!
//! A type the policy was not compiled with (e.g. a custom rule added later) resolves by its
//! family alone.
//!
//! # Presets
//!
//! | preset | PII | `credit_card_test` | secrets (request / response) | injection | custom |
//! |---|---|---|---|---|---|
//! | `secrets-block` (default) | log | log | block / redact | log | log |
//! | `pii-redact` | redact | log | — | — | — |
//! | `pii-tokenize` | tokenize (response: redact) | log | — | — | — |
//! | `strict` | redact | redact | block / block | block | redact |
//!
//! "—" leaves the type as it is. `presets` unset means `["secrets-block"]`; setting it replaces
//! that default, so list `secrets-block` too if you still want it (`presets = []` means none).
//! `log` means detected and recorded (type, count, path — never the value) but untouched.
//! `credit_card_test` (the well-known test numbers such as 4111 1111 1111 1111) is logged rather
//! than redacted by the PII presets because it is not personal data and redacting it breaks
//! payment-integration work; `strict` redacts it anyway.
//!
//! # Privacy profiles (floors, strengthen-only)
//!
//! Engineering defaults, not legal advice. A profile raises a type to at least the listed action;
//! it never lowers anything.
//!
//! | profile | type | request | response |
//! |---|---|---|---|
//! | `gdpr` | `email`, `phone`, `ipv4`, `ipv6`, `iban` | tokenize | mask |
//! | `gdpr` | `credit_card` | redact | mask |
//! | `gdpr` | national ids: `fr_nir`, `es_dni`, `es_nie`, `it_codice_fiscale`, `de_steuer_id`, `nl_bsn`, `uk_nino`, and also `us_ssn`, `kr_rrn`, `jp_my_number`, `sg_nric`, `in_aadhaar` | redact | redact |
//! | `us` | `us_ssn` | block | redact |
//! | `us` | `credit_card` | mask | mask |
//! | `kr` | `kr_rrn` | block | redact |
//! | `kr` | `phone`, `email` | redact | mask |
//! | `kr` | `credit_card` | redact | mask |
//!
//! Why these: `gdpr` pseudonymises direct identifiers (tokenize keeps them away from the model
//! provider while the caller still gets them back, GDPR Art. 4(5)) and removes national
//! identification numbers outright (Art. 87) whatever the issuing state, since the data subject
//! can be of any nationality. `us` covers the two hard rules: SSNs (state SSN-protection laws)
//! and card numbers (PCI DSS allows at most the last four digits to be shown, which is exactly
//! what `mask` keeps). `kr` follows PIPA: resident registration numbers may not be processed
//! without a specific legal basis (Art. 24-2), so they are blocked; contact data is redacted.
//! Response floors are milder where the reader of a response is the caller itself.
//! `tokenize` without a vault falls back to `redact` in [`crate::transform`].

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::Category;

/// What is done to one detected value.
///
/// Declaration order is strength order (`Ord`), used by "strengthen-only" rules:
/// - `allow` < `log`: logging records that something was found.
/// - `log` < `mask`: mask changes the text.
/// - `mask` < `tokenize`: a mask still reveals part of the value (last digits, the domain) to
///   whoever reads the text; a placeholder reveals nothing.
/// - `tokenize` < `redact`: a placeholder is reversible for the caller (the vault restores it in
///   the response); a redaction label is gone for everyone.
/// - `redact` < `block`: block refuses the whole message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Nothing happens; the detection is still reported as a finding with action `allow`.
    Allow,
    /// Recorded (type, position, count), text untouched.
    Log,
    /// Replaced by a partial mask that keeps a small, non-identifying part (e.g. last 4 digits).
    Mask,
    /// Replaced by a vault placeholder such as `⟦EMAIL_1⟧`, restored in the response.
    Tokenize,
    /// Replaced by a label such as `[EMAIL]`.
    Redact,
    /// The whole message is refused.
    Block,
}

impl Action {
    /// Every action, weakest first.
    pub const ALL: [Action; 6] = [
        Action::Allow,
        Action::Log,
        Action::Mask,
        Action::Tokenize,
        Action::Redact,
        Action::Block,
    ];

    /// The action's name in config and findings.
    pub fn name(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Log => "log",
            Action::Mask => "mask",
            Action::Tokenize => "tokenize",
            Action::Redact => "redact",
            Action::Block => "block",
        }
    }

    /// Parses a config value (exact, lower case).
    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == s)
    }

    /// Whether this action changes the text or refuses it (as opposed to allow/log).
    pub fn rewrites(self) -> bool {
        self >= Action::Mask
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether protection runs at all, and whether it acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Nothing is scanned: the gateway skips this crate entirely.
    Off,
    /// Detect and record only; the configured actions are reported but not applied.
    Report,
    /// Detect and apply the configured actions.
    Enforce,
}

impl Mode {
    /// Every mode.
    pub const ALL: [Mode; 3] = [Mode::Off, Mode::Report, Mode::Enforce];

    /// The mode's name in config.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Report => "report",
            Mode::Enforce => "enforce",
        }
    }

    /// Parses a config value (exact, lower case).
    pub fn parse(s: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.name() == s)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which way the text flows: from the caller to the model, or back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client → model (messages, tool results, system prompts).
    Request,
    /// Model → client (output text, reasoning, tool-call arguments).
    Response,
}

impl Direction {
    fn index(self) -> usize {
        match self {
            Direction::Request => 0,
            Direction::Response => 1,
        }
    }
}

/// The `[protect]` policy as configured, before validation.
#[derive(Debug, Clone, Default)]
pub struct PolicySpec {
    /// `None` = enforce.
    pub mode: Option<Mode>,
    /// `None` = `["secrets-block"]`; `Some(vec![])` = no preset.
    pub presets: Option<Vec<String>>,
    /// `gdpr`, `us` or `kr`: a strengthen-only floor.
    pub profile: Option<String>,
    /// Key: a type name or a family name. Applies to requests, and to responses unless
    /// `response_actions` says otherwise.
    pub actions: BTreeMap<String, Action>,
    /// Key: a type name or a family name. Responses only; overrides `actions`.
    pub response_actions: BTreeMap<String, Action>,
    /// Per-tenant overrides, by tenant id.
    pub tenants: BTreeMap<String, TenantSpec>,
}

/// One tenant's overrides on top of the base policy.
#[derive(Debug, Clone, Default)]
pub struct TenantSpec {
    /// `None` = the base mode.
    pub mode: Option<Mode>,
    /// An extra floor; the base profile still applies.
    pub profile: Option<String>,
    /// Same keys and meaning as [`PolicySpec::actions`].
    pub actions: BTreeMap<String, Action>,
    /// Same keys and meaning as [`PolicySpec::response_actions`].
    pub response_actions: BTreeMap<String, Action>,
}

/// A policy that cannot be compiled. Messages name the offending key and the valid choices.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// An `actions` / `response_actions` key that is neither a known type nor a family.
    #[error(
        "unknown type `{key}` in {section}{hint} (known: {known}; or a family: pii, secret, injection, custom)"
    )]
    UnknownType {
        /// The key as written.
        key: String,
        /// Where it was found, e.g. `protect.actions` or `protect.tenants.acme.response_actions`.
        section: String,
        /// Comma-separated known type names.
        known: String,
        /// `; did you mean `email`?` or empty.
        hint: String,
    },
    /// A preset name that does not exist.
    #[error("unknown preset `{name}` in protect.presets{hint} (known: {known})")]
    UnknownPreset {
        /// The name as written.
        name: String,
        /// Comma-separated preset names.
        known: String,
        /// `; did you mean …?` or empty.
        hint: String,
    },
    /// A profile name that does not exist.
    #[error("unknown privacy profile `{name}` in {section}{hint} (known: {known})")]
    UnknownProfile {
        /// The name as written.
        name: String,
        /// `protect.profile` or `protect.tenants.<id>.profile`.
        section: String,
        /// Comma-separated profile names.
        known: String,
        /// `; did you mean …?` or empty.
        hint: String,
    },
}

/// Preset names and one-line descriptions.
pub const PRESETS: &[(&str, &str)] = &[
    (
        "secrets-block",
        "default: block secrets in requests, redact them in responses; log PII, injection and custom matches",
    ),
    (
        "pii-redact",
        "redact personal data (test card numbers are only logged)",
    ),
    (
        "pii-tokenize",
        "replace personal data with placeholders restored in the response (redact in responses; test card numbers are only logged)",
    ),
    (
        "strict",
        "redact personal data and custom matches, block secrets and prompt injection in both directions",
    ),
];

/// Privacy profile names and one-line descriptions.
pub const PROFILES: &[(&str, &str)] = &[
    (
        "gdpr",
        "EU GDPR floor: tokenize email/phone/IP/IBAN, redact card numbers and national ids",
    ),
    (
        "us",
        "US floor: block SSNs (redact in responses), mask card numbers",
    ),
    (
        "kr",
        "Korea PIPA floor: block resident registration numbers, redact phone, email and card numbers",
    ),
];

/// One row of the effective policy, for `warden config check` and the docs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EffectiveRow {
    /// `None` for the base policy; a tenant id for a row where that tenant differs from the base.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The type name.
    #[serde(
        rename = "type",
        serialize_with = "crate::transform::serialize_arc_str"
    )]
    pub kind: Arc<str>,
    /// The type's family.
    pub category: Category,
    /// Action on requests.
    pub request: Action,
    /// Action on responses.
    pub response: Action,
}

/// `[request, response]`.
type Pair = [Action; 2];

const CATEGORIES: [Category; 4] = [
    Category::Pii,
    Category::Secret,
    Category::Injection,
    Category::Custom,
];

fn category_index(c: Category) -> usize {
    match c {
        Category::Pii => 0,
        Category::Secret => 1,
        Category::Injection => 2,
        Category::Custom => 3,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Preset {
    SecretsBlock,
    PiiRedact,
    PiiTokenize,
    Strict,
}

impl Preset {
    fn parse(s: &str) -> Option<Preset> {
        Some(match s {
            "secrets-block" => Preset::SecretsBlock,
            "pii-redact" => Preset::PiiRedact,
            "pii-tokenize" => Preset::PiiTokenize,
            "strict" => Preset::Strict,
            _ => return None,
        })
    }

    /// `kind` is `None` when resolving a family fallback for types unknown at compile time.
    fn action(self, kind: Option<&str>, category: Category, dir: Direction) -> Action {
        let test_card = kind == Some("credit_card_test");
        match (self, category) {
            (Preset::SecretsBlock, Category::Secret) => match dir {
                Direction::Request => Action::Block,
                Direction::Response => Action::Redact,
            },
            (Preset::SecretsBlock, _) => Action::Log,
            (Preset::PiiRedact, Category::Pii) if test_card => Action::Log,
            (Preset::PiiRedact, Category::Pii) => Action::Redact,
            (Preset::PiiTokenize, Category::Pii) if test_card => Action::Log,
            (Preset::PiiTokenize, Category::Pii) => Action::Tokenize,
            (Preset::PiiRedact | Preset::PiiTokenize, _) => Action::Allow,
            (Preset::Strict, Category::Pii | Category::Custom) => Action::Redact,
            (Preset::Strict, Category::Secret | Category::Injection) => Action::Block,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Profile {
    Gdpr,
    Us,
    Kr,
}

const NATIONAL_IDS: &[&str] = &[
    "fr_nir",
    "es_dni",
    "es_nie",
    "it_codice_fiscale",
    "de_steuer_id",
    "nl_bsn",
    "uk_nino",
    "us_ssn",
    "kr_rrn",
    "jp_my_number",
    "sg_nric",
    "in_aadhaar",
];

impl Profile {
    fn parse(s: &str) -> Option<Profile> {
        Some(match s {
            "gdpr" => Profile::Gdpr,
            "us" => Profile::Us,
            "kr" => Profile::Kr,
            _ => return None,
        })
    }

    /// The floor for one type; `[request, response]`. Profiles name types, not families, so a
    /// family fallback (`kind == None`) gets no floor.
    fn floor(self, kind: Option<&str>) -> Pair {
        use Action::*;
        let Some(kind) = kind else {
            return [Allow, Allow];
        };
        match self {
            Profile::Gdpr => match kind {
                "email" | "phone" | "ipv4" | "ipv6" | "iban" => [Tokenize, Mask],
                "credit_card" => [Redact, Mask],
                k if NATIONAL_IDS.contains(&k) => [Redact, Redact],
                _ => [Allow, Allow],
            },
            Profile::Us => match kind {
                "us_ssn" => [Block, Redact],
                "credit_card" => [Mask, Mask],
                _ => [Allow, Allow],
            },
            Profile::Kr => match kind {
                "kr_rrn" => [Block, Redact],
                "phone" | "email" | "credit_card" => [Redact, Mask],
                _ => [Allow, Allow],
            },
        }
    }
}

fn floor_of(profiles: &[Profile], kind: Option<&str>) -> Pair {
    profiles.iter().fold([Action::Allow; 2], |acc, p| {
        let f = p.floor(kind);
        [acc[0].max(f[0]), acc[1].max(f[1])]
    })
}

/// Steps 3–4 of the resolution: explicit entries, family key first, then type key; response
/// entries last so they override for responses.
fn explicit(
    mut current: Pair,
    kind: Option<&str>,
    category: Category,
    actions: &BTreeMap<String, Action>,
    response_actions: &BTreeMap<String, Action>,
) -> Pair {
    let lookup = |map: &BTreeMap<String, Action>| {
        let by_type = kind.and_then(|k| map.get(k)).copied();
        by_type.or_else(|| map.get(category.name()).copied())
    };
    if let Some(a) = lookup(actions) {
        current = [a, a];
    }
    if let Some(a) = lookup(response_actions) {
        current[1] = a;
    }
    current
}

/// Steps 5–6.
fn finish(pre: Pair, floor: Pair) -> Pair {
    let response = match pre[1].max(floor[1]) {
        Action::Tokenize => Action::Redact,
        a => a,
    };
    [pre[0].max(floor[0]), response]
}

#[derive(Debug)]
struct Table {
    mode: Mode,
    /// Indexed like `ProtectPolicy::kinds`.
    by_kind: Vec<Pair>,
    /// For types the policy was not compiled with, by family.
    by_category: [Pair; 4],
    rewrites: [bool; 2],
}

impl Table {
    fn compute_rewrites(&mut self) {
        for dir in 0..2 {
            self.rewrites[dir] = self.mode == Mode::Enforce
                && self
                    .by_kind
                    .iter()
                    .chain(self.by_category.iter())
                    .any(|pair| pair[dir].rewrites());
        }
    }
}

/// A compiled policy: immutable, `Send + Sync`, cheap to query per detection.
#[derive(Debug)]
pub struct ProtectPolicy {
    kinds: Vec<(Arc<str>, Category)>,
    index: HashMap<Arc<str>, usize>,
    base: Table,
    tenants: HashMap<String, Table>,
}

impl ProtectPolicy {
    /// Validates `spec` against the scanner's known types and resolves every type, direction and
    /// tenant up front.
    pub fn compile(
        spec: PolicySpec,
        kinds: &[(Arc<str>, Category)],
    ) -> Result<ProtectPolicy, PolicyError> {
        let mut index = HashMap::with_capacity(kinds.len());
        let mut uniq: Vec<(Arc<str>, Category)> = Vec::with_capacity(kinds.len());
        for (k, c) in kinds {
            if !index.contains_key(k) {
                index.insert(k.clone(), uniq.len());
                uniq.push((k.clone(), *c));
            }
        }
        let kinds = uniq;

        let preset_names = spec
            .presets
            .unwrap_or_else(|| vec!["secrets-block".to_owned()]);
        let mut presets = Vec::with_capacity(preset_names.len());
        for name in &preset_names {
            match Preset::parse(name) {
                Some(p) => presets.push(p),
                None => {
                    let names: Vec<&str> = PRESETS.iter().map(|p| p.0).collect();
                    return Err(PolicyError::UnknownPreset {
                        name: name.clone(),
                        hint: hint(name, names.iter().copied()),
                        known: names.join(", "),
                    });
                }
            }
        }
        let base_profile = parse_profile(spec.profile.as_deref(), "protect.profile")?;
        check_keys(&spec.actions, "protect.actions", &kinds)?;
        check_keys(&spec.response_actions, "protect.response_actions", &kinds)?;

        let preset_pair = |kind: Option<&str>, category: Category| -> Pair {
            let mut pair = [Action::Allow; 2];
            for p in &presets {
                for dir in [Direction::Request, Direction::Response] {
                    let i = dir.index();
                    pair[i] = pair[i].max(p.action(kind, category, dir));
                }
            }
            pair
        };
        // Base result before profiles: tenants build on this, not on the floored result, so a
        // tenant's explicit entry replaces the base's explicit entry while floors still apply.
        let base_pre = |kind: Option<&str>, category: Category| -> Pair {
            explicit(
                preset_pair(kind, category),
                kind,
                category,
                &spec.actions,
                &spec.response_actions,
            )
        };
        let base_floors: Vec<Profile> = base_profile.into_iter().collect();

        let build = |mode: Mode, floors: &[Profile], overlay: Option<&TenantSpec>| -> Table {
            let resolve = |kind: Option<&str>, category: Category| -> Pair {
                let mut pre = base_pre(kind, category);
                if let Some(t) = overlay {
                    pre = explicit(pre, kind, category, &t.actions, &t.response_actions);
                }
                finish(pre, floor_of(floors, kind))
            };
            let mut table = Table {
                mode,
                by_kind: kinds.iter().map(|(k, c)| resolve(Some(k), *c)).collect(),
                by_category: CATEGORIES.map(|c| resolve(None, c)),
                rewrites: [false; 2],
            };
            table.compute_rewrites();
            table
        };

        let base_mode = spec.mode.unwrap_or(Mode::Enforce);
        let base = build(base_mode, &base_floors, None);

        let mut tenants = HashMap::with_capacity(spec.tenants.len());
        for (id, t) in &spec.tenants {
            let section = format!("protect.tenants.{id}");
            let tenant_profile =
                parse_profile(t.profile.as_deref(), &format!("{section}.profile"))?;
            check_keys(&t.actions, &format!("{section}.actions"), &kinds)?;
            check_keys(
                &t.response_actions,
                &format!("{section}.response_actions"),
                &kinds,
            )?;
            let mut floors = base_floors.clone();
            floors.extend(tenant_profile);
            let table = build(t.mode.unwrap_or(base_mode), &floors, Some(t));
            tenants.insert(id.clone(), table);
        }

        Ok(ProtectPolicy {
            kinds,
            index,
            base,
            tenants,
        })
    }

    /// The default policy: enforce, `secrets-block`, no profile, no overrides.
    pub fn default_for(kinds: &[(Arc<str>, Category)]) -> ProtectPolicy {
        ProtectPolicy::compile(PolicySpec::default(), kinds)
            .expect("the default spec names no types, presets or profiles that could be unknown")
    }

    fn table(&self, tenant: Option<&str>) -> &Table {
        tenant
            .and_then(|t| self.tenants.get(t))
            .unwrap_or(&self.base)
    }

    /// The mode for `tenant` (the base mode for `None` or a tenant without overrides).
    pub fn mode(&self, tenant: Option<&str>) -> Mode {
        self.table(tenant).mode
    }

    /// The configured action for one detection. Independent of the mode: in report mode the
    /// caller reports this action without applying it.
    pub fn action(
        &self,
        direction: Direction,
        tenant: Option<&str>,
        kind: &str,
        category: Category,
    ) -> Action {
        let table = self.table(tenant);
        let pair = match self.index.get(kind) {
            // A type registered under another family (should not happen) resolves by the family
            // the detector reports, which is what the operator sees in findings.
            Some(&i) if self.kinds[i].1 == category => table.by_kind[i],
            _ => table.by_category[category_index(category)],
        };
        pair[direction.index()]
    }

    /// Whether any type, for any tenant, can be masked, tokenized, redacted or blocked in this
    /// direction under enforce mode. When false the gateway can stream without hold-back.
    pub fn rewrites(&self, direction: Direction) -> bool {
        let i = direction.index();
        self.base.rewrites[i] || self.tenants.values().any(|t| t.rewrites[i])
    }

    /// The resolved actions: one row per known type for the base policy, then, per tenant (in
    /// id order), the rows where that tenant differs from the base.
    pub fn effective(&self) -> Vec<EffectiveRow> {
        let mut rows: Vec<EffectiveRow> = self
            .kinds
            .iter()
            .zip(&self.base.by_kind)
            .map(|((kind, category), pair)| EffectiveRow {
                tenant: None,
                kind: kind.clone(),
                category: *category,
                request: pair[0],
                response: pair[1],
            })
            .collect();
        let mut ids: Vec<&String> = self.tenants.keys().collect();
        ids.sort();
        for id in ids {
            let table = &self.tenants[id];
            for (i, (kind, category)) in self.kinds.iter().enumerate() {
                let pair = table.by_kind[i];
                if pair != self.base.by_kind[i] {
                    rows.push(EffectiveRow {
                        tenant: Some(id.clone()),
                        kind: kind.clone(),
                        category: *category,
                        request: pair[0],
                        response: pair[1],
                    });
                }
            }
        }
        rows
    }
}

fn parse_profile(name: Option<&str>, section: &str) -> Result<Option<Profile>, PolicyError> {
    let Some(name) = name else { return Ok(None) };
    Profile::parse(name).map(Some).ok_or_else(|| {
        let names: Vec<&str> = PROFILES.iter().map(|p| p.0).collect();
        PolicyError::UnknownProfile {
            name: name.to_owned(),
            section: section.to_owned(),
            hint: hint(name, names.iter().copied()),
            known: names.join(", "),
        }
    })
}

fn check_keys(
    map: &BTreeMap<String, Action>,
    section: &str,
    kinds: &[(Arc<str>, Category)],
) -> Result<(), PolicyError> {
    for key in map.keys() {
        let known = CATEGORIES.iter().any(|c| c.name() == key)
            || kinds.iter().any(|(k, _)| &**k == key.as_str());
        if !known {
            let names = kinds.iter().map(|(k, _)| &**k);
            return Err(PolicyError::UnknownType {
                key: key.clone(),
                section: section.to_owned(),
                hint: hint(
                    key,
                    names.clone().chain(CATEGORIES.iter().map(|c| c.name())),
                ),
                known: names.collect::<Vec<_>>().join(", "),
            });
        }
    }
    Ok(())
}

/// `; did you mean `x`?` for the closest candidate within a small edit distance, else empty.
fn hint<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> String {
    let limit = (word.chars().count() / 3).clamp(2, 3);
    candidates
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| format!("; did you mean `{c}`?"))
        .unwrap_or_default()
}

/// Damerau-free Levenshtein distance over chars; inputs are short config keys.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds() -> Vec<(Arc<str>, Category)> {
        let pii = [
            "email",
            "phone",
            "credit_card",
            "credit_card_test",
            "iban",
            "us_ssn",
            "ipv4",
            "kr_rrn",
            "fr_nir",
        ];
        let secret = ["github_token", "aws_access_key_id", "jwt"];
        let inj = ["injection_override", "injection_role"];
        pii.iter()
            .map(|k| (Arc::from(*k), Category::Pii))
            .chain(secret.iter().map(|k| (Arc::from(*k), Category::Secret)))
            .chain(inj.iter().map(|k| (Arc::from(*k), Category::Injection)))
            .chain([(Arc::from("employee_id"), Category::Custom)])
            .collect()
    }

    fn compile(spec: PolicySpec) -> ProtectPolicy {
        ProtectPolicy::compile(spec, &kinds()).expect("valid spec")
    }

    fn acts(pairs: &[(&str, Action)]) -> BTreeMap<String, Action> {
        pairs.iter().map(|(k, a)| (k.to_string(), *a)).collect()
    }

    use Action::*;
    use Category as C;
    use Direction::{Request as Req, Response as Resp};

    #[test]
    fn strength_order_and_names() {
        assert!(Allow < Log && Log < Mask && Mask < Tokenize && Tokenize < Redact);
        assert!(Redact < Block);
        for a in Action::ALL {
            assert_eq!(Action::parse(a.name()), Some(a));
        }
        for m in Mode::ALL {
            assert_eq!(Mode::parse(m.name()), Some(m));
        }
        assert_eq!(Action::parse("Redact"), None);
        assert_eq!(Mode::parse("dry-run"), None);
        assert_eq!(serde_json::to_string(&Tokenize).unwrap(), "\"tokenize\"");
        assert_eq!(serde_json::to_string(&Mode::Report).unwrap(), "\"report\"");
    }

    #[test]
    fn default_is_secrets_block_enforce() {
        let p = ProtectPolicy::default_for(&kinds());
        assert_eq!(p.mode(None), Mode::Enforce);
        assert_eq!(p.action(Req, None, "github_token", C::Secret), Block);
        assert_eq!(p.action(Resp, None, "github_token", C::Secret), Redact);
        assert_eq!(p.action(Req, None, "email", C::Pii), Log);
        assert_eq!(p.action(Resp, None, "email", C::Pii), Log);
        assert_eq!(p.action(Req, None, "injection_role", C::Injection), Log);
        assert_eq!(p.action(Req, None, "employee_id", C::Custom), Log);
        // A type unknown at compile time resolves by family.
        assert_eq!(p.action(Req, None, "new_secret", C::Secret), Block);
        assert_eq!(p.action(Req, None, "new_rule", C::Custom), Log);
        assert!(p.rewrites(Req));
        assert!(p.rewrites(Resp));
    }

    #[test]
    fn no_presets_means_allow() {
        let p = compile(PolicySpec {
            presets: Some(vec![]),
            ..Default::default()
        });
        for (k, c) in kinds() {
            assert_eq!(p.action(Req, None, &k, c), Allow);
            assert_eq!(p.action(Resp, None, &k, c), Allow);
        }
        assert!(!p.rewrites(Req));
        assert!(!p.rewrites(Resp));
    }

    #[test]
    fn presets_only_strengthen_in_any_order() {
        for order in [
            vec!["strict", "secrets-block"],
            vec!["secrets-block", "strict"],
        ] {
            let p = compile(PolicySpec {
                presets: Some(order.iter().map(|s| s.to_string()).collect()),
                ..Default::default()
            });
            assert_eq!(p.action(Resp, None, "github_token", C::Secret), Block);
            assert_eq!(
                p.action(Req, None, "injection_override", C::Injection),
                Block
            );
            assert_eq!(p.action(Req, None, "email", C::Pii), Redact);
            assert_eq!(p.action(Req, None, "credit_card_test", C::Pii), Redact);
            assert_eq!(p.action(Req, None, "employee_id", C::Custom), Redact);
        }
        let p = compile(PolicySpec {
            presets: Some(vec!["pii-tokenize".into(), "pii-redact".into()]),
            ..Default::default()
        });
        assert_eq!(p.action(Req, None, "email", C::Pii), Redact);
        assert_eq!(p.action(Req, None, "credit_card_test", C::Pii), Log);
        // Listing presets replaces the default: secrets are not blocked here.
        assert_eq!(p.action(Req, None, "github_token", C::Secret), Allow);
    }

    #[test]
    fn pii_tokenize_becomes_redact_in_responses() {
        let p = compile(PolicySpec {
            presets: Some(vec!["secrets-block".into(), "pii-tokenize".into()]),
            ..Default::default()
        });
        assert_eq!(p.action(Req, None, "email", C::Pii), Tokenize);
        assert_eq!(p.action(Resp, None, "email", C::Pii), Redact);
        assert_eq!(p.action(Req, None, "credit_card_test", C::Pii), Log);
        assert_eq!(p.action(Req, None, "github_token", C::Secret), Block);
    }

    #[test]
    fn explicit_wins_over_presets_type_over_family() {
        let p = compile(PolicySpec {
            actions: acts(&[
                ("secret", Log),
                ("github_token", Redact),
                ("pii", Mask),
                ("email", Tokenize),
            ]),
            ..Default::default()
        });
        // Weaker than the preset, but explicit.
        assert_eq!(p.action(Req, None, "aws_access_key_id", C::Secret), Log);
        assert_eq!(p.action(Req, None, "github_token", C::Secret), Redact);
        assert_eq!(p.action(Resp, None, "github_token", C::Secret), Redact);
        assert_eq!(p.action(Req, None, "phone", C::Pii), Mask);
        assert_eq!(p.action(Req, None, "email", C::Pii), Tokenize);
        assert_eq!(p.action(Resp, None, "email", C::Pii), Redact);
        assert_eq!(p.action(Req, None, "unlisted_pii", C::Pii), Mask);
    }

    #[test]
    fn response_actions_override_actions_for_responses_only() {
        let p = compile(PolicySpec {
            actions: acts(&[("email", Redact), ("phone", Block)]),
            response_actions: acts(&[("pii", Log), ("phone", Mask)]),
            ..Default::default()
        });
        assert_eq!(p.action(Req, None, "email", C::Pii), Redact);
        assert_eq!(p.action(Resp, None, "email", C::Pii), Log);
        assert_eq!(p.action(Req, None, "phone", C::Pii), Block);
        assert_eq!(p.action(Resp, None, "phone", C::Pii), Mask);
        let p = compile(PolicySpec {
            response_actions: acts(&[("email", Tokenize)]),
            ..Default::default()
        });
        assert_eq!(p.action(Resp, None, "email", C::Pii), Redact);
    }

    #[test]
    fn profile_is_strengthen_only() {
        let p = compile(PolicySpec {
            profile: Some("gdpr".into()),
            actions: acts(&[("email", Allow), ("phone", Block), ("iban", Mask)]),
            ..Default::default()
        });
        assert_eq!(p.action(Req, None, "email", C::Pii), Tokenize);
        assert_eq!(p.action(Resp, None, "email", C::Pii), Mask);
        assert_eq!(p.action(Req, None, "phone", C::Pii), Block);
        assert_eq!(p.action(Resp, None, "phone", C::Pii), Block);
        assert_eq!(p.action(Req, None, "iban", C::Pii), Tokenize);
        assert_eq!(p.action(Req, None, "fr_nir", C::Pii), Redact);
        assert_eq!(p.action(Req, None, "credit_card", C::Pii), Redact);
        assert_eq!(p.action(Req, None, "github_token", C::Secret), Block);

        let us = compile(PolicySpec {
            profile: Some("us".into()),
            ..Default::default()
        });
        assert_eq!(us.action(Req, None, "us_ssn", C::Pii), Block);
        assert_eq!(us.action(Resp, None, "us_ssn", C::Pii), Redact);
        assert_eq!(us.action(Req, None, "credit_card", C::Pii), Mask);
        assert_eq!(us.action(Req, None, "email", C::Pii), Log);

        let kr = compile(PolicySpec {
            profile: Some("kr".into()),
            presets: Some(vec!["pii-tokenize".into()]),
            ..Default::default()
        });
        assert_eq!(kr.action(Req, None, "kr_rrn", C::Pii), Block);
        assert_eq!(kr.action(Req, None, "phone", C::Pii), Redact);
        assert_eq!(kr.action(Resp, None, "phone", C::Pii), Redact);
        assert_eq!(kr.action(Req, None, "iban", C::Pii), Tokenize);
    }

    #[test]
    fn tenants_override_on_top_of_base_and_keep_base_floor() {
        let mut tenants = BTreeMap::new();
        tenants.insert(
            "acme".to_string(),
            TenantSpec {
                mode: Some(Mode::Report),
                profile: Some("us".into()),
                actions: acts(&[("email", Allow), ("github_token", Log), ("pii", Redact)]),
                response_actions: acts(&[("phone", Log)]),
            },
        );
        tenants.insert("quiet".to_string(), TenantSpec::default());
        let p = compile(PolicySpec {
            profile: Some("gdpr".into()),
            actions: acts(&[("ipv4", Log)]),
            tenants,
            ..Default::default()
        });
        assert_eq!(p.mode(None), Mode::Enforce);
        assert_eq!(p.mode(Some("acme")), Mode::Report);
        assert_eq!(p.mode(Some("quiet")), Mode::Enforce);
        assert_eq!(p.mode(Some("nobody")), Mode::Enforce);
        // Tenant explicit `allow` cannot undo the base gdpr floor.
        assert_eq!(p.action(Req, Some("acme"), "email", C::Pii), Tokenize);
        assert_eq!(p.action(Req, Some("acme"), "github_token", C::Secret), Log);
        assert_eq!(p.action(Req, Some("acme"), "us_ssn", C::Pii), Block);
        assert_eq!(
            p.action(Req, Some("acme"), "credit_card_test", C::Pii),
            Redact
        );
        assert_eq!(p.action(Resp, Some("acme"), "phone", C::Pii), Mask);
        // The tenant's layer sits on top of the base's: its family entry beats the base's
        // type entry.
        assert_eq!(p.action(Req, None, "ipv4", C::Pii), Tokenize);
        assert_eq!(p.action(Req, Some("acme"), "ipv4", C::Pii), Redact);
        assert_eq!(p.action(Req, Some("quiet"), "us_ssn", C::Pii), Redact);
        assert_eq!(p.action(Req, Some("nobody"), "us_ssn", C::Pii), Redact);
        assert_eq!(p.action(Req, None, "github_token", C::Secret), Block);

        let rows = p.effective();
        assert_eq!(
            rows.iter().filter(|r| r.tenant.is_none()).count(),
            kinds().len()
        );
        assert!(rows.iter().all(|r| r.tenant.as_deref() != Some("quiet")));
        let gh = rows
            .iter()
            .find(|r| r.tenant.as_deref() == Some("acme") && &*r.kind == "github_token")
            .unwrap();
        assert_eq!((gh.request, gh.response), (Log, Log));
        let json = serde_json::to_value(gh).unwrap();
        assert_eq!(json["type"], "github_token");
        assert_eq!(json["category"], "secret");
        assert_eq!(json["request"], "log");
    }

    #[test]
    fn rewrites_considers_mode_and_tenants() {
        let quiet = PolicySpec {
            presets: Some(vec![]),
            actions: acts(&[("pii", Log)]),
            ..Default::default()
        };
        assert!(!compile(quiet.clone()).rewrites(Req));
        let report = PolicySpec {
            mode: Some(Mode::Report),
            ..Default::default()
        };
        let p = compile(report);
        assert!(!p.rewrites(Req) && !p.rewrites(Resp));
        let mut with_tenant = quiet.clone();
        with_tenant.tenants.insert(
            "t".into(),
            TenantSpec {
                response_actions: acts(&[("email", Mask)]),
                ..Default::default()
            },
        );
        let p = compile(with_tenant);
        assert!(!p.rewrites(Req));
        assert!(p.rewrites(Resp));
        let mut off_tenant = quiet;
        off_tenant.tenants.insert(
            "t".into(),
            TenantSpec {
                mode: Some(Mode::Off),
                actions: acts(&[("email", Block)]),
                ..Default::default()
            },
        );
        assert!(!compile(off_tenant).rewrites(Req));
    }

    #[test]
    fn unknown_names_are_errors_with_choices() {
        let err = ProtectPolicy::compile(
            PolicySpec {
                actions: acts(&[("emial", Redact)]),
                ..Default::default()
            },
            &kinds(),
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("unknown type `emial` in protect.actions"),
            "{msg}"
        );
        assert!(msg.contains("did you mean `email`?"), "{msg}");
        assert!(msg.contains("known: email, phone,"), "{msg}");
        assert!(msg.contains("pii, secret, injection, custom"), "{msg}");

        let mut tenants = BTreeMap::new();
        tenants.insert(
            "acme".to_string(),
            TenantSpec {
                response_actions: acts(&[("zzzzzz", Log)]),
                ..Default::default()
            },
        );
        let msg = ProtectPolicy::compile(
            PolicySpec {
                tenants,
                ..Default::default()
            },
            &kinds(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            msg.contains("protect.tenants.acme.response_actions"),
            "{msg}"
        );
        assert!(!msg.contains("did you mean"), "{msg}");

        let msg = ProtectPolicy::compile(
            PolicySpec {
                presets: Some(vec!["pii-redcat".into()]),
                ..Default::default()
            },
            &kinds(),
        )
        .unwrap_err()
        .to_string();
        assert!(msg.contains("unknown preset `pii-redcat`"), "{msg}");
        assert!(msg.contains("did you mean `pii-redact`?"), "{msg}");
        assert!(
            msg.contains("secrets-block, pii-redact, pii-tokenize, strict"),
            "{msg}"
        );

        let msg = ProtectPolicy::compile(
            PolicySpec {
                profile: Some("hipaa".into()),
                ..Default::default()
            },
            &kinds(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            msg.contains("unknown privacy profile `hipaa` in protect.profile"),
            "{msg}"
        );
        assert!(msg.contains("gdpr, us, kr"), "{msg}");

        // Family keys and custom rule names are accepted.
        compile(PolicySpec {
            actions: acts(&[
                ("custom", Redact),
                ("employee_id", Block),
                ("injection", Block),
            ]),
            ..Default::default()
        });
    }

    #[test]
    fn duplicate_and_empty_kind_lists() {
        let mut k = kinds();
        k.push((Arc::from("email"), C::Pii));
        let p = ProtectPolicy::compile(PolicySpec::default(), &k).unwrap();
        assert_eq!(p.effective().len(), kinds().len());
        let p = ProtectPolicy::default_for(&[]);
        assert_eq!(p.action(Req, None, "email", C::Pii), Log);
        assert_eq!(p.action(Req, None, "github_token", C::Secret), Block);
        assert!(p.effective().is_empty());
    }

    #[test]
    fn policy_is_send_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<ProtectPolicy>();
    }
}
