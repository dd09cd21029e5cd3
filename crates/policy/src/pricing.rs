//! Model prices and cost arithmetic: the built-in list-price table, configured overrides, model
//! name resolution (dated and variant names map to their base model), and costs in integer
//! micro-USD that round up so a caller is never under-charged.
//!
//! This module owns what a token costs. It must not count spend or decide whether a request
//! may proceed: budgets are enforced by the state store, and the unknown-model policy
//! ([`UnknownModel`]) is applied by the gateway with the lookup result from here. Prices are
//! never floating point once parsed; configuration in USD is converted once by
//! [`usd_to_micros`].

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

use serde::Serialize;

/// The date the built-in table was compiled. Providers change prices; see `docs/pricing.md`.
pub const BUILTIN_PRICES_AS_OF: &str = "2026-11-21";

/// Providers whose models run locally and cost nothing unless an override says otherwise.
const LOCAL_PROVIDERS: [&str; 1] = ["ollama"];

/// Characters after which a longer model name may be priced as its prefix: `gpt-4o-2024-08-06`
/// as `gpt-4o`, `claude-sonnet-4-5@20250929` (Vertex) as `claude-sonnet-4-5`, `llama3:8b` as
/// `llama3`. `.` is deliberately absent, so `gpt-4.1` is never priced as `gpt-4`.
const BOUNDARIES: [char; 3] = ['-', '@', ':'];

/// Largest USD amount accepted anywhere in config (a price per 1M tokens or a budget).
const MAX_USD: f64 = 1e9;

/// The price of a model in micro-USD (1 USD = 1,000,000) per one million tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Price {
    /// Input (prompt) tokens that were not served from a cache.
    pub input_micros_per_mtok: i64,
    /// Output tokens, reasoning tokens included (providers bill them as output).
    pub output_micros_per_mtok: i64,
    /// Input tokens served from the provider's prompt cache.
    pub cached_input_micros_per_mtok: i64,
}

/// Token counts of one exchange, as billed.
///
/// `input_tokens` is the **non-cached** input: callers whose provider reports total prompt
/// tokens including cache hits (OpenAI `prompt_tokens`, Gemini `promptTokenCount`) subtract
/// `cached_input_tokens` first, so no token is billed twice. Anthropic's `input_tokens`
/// already excludes cache reads; its cache-creation tokens belong in `input_tokens`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Usage {
    /// Input tokens not served from a cache.
    pub input_tokens: u64,
    /// Output tokens, reasoning tokens included.
    pub output_tokens: u64,
    /// Input tokens served from the prompt cache.
    pub cached_input_tokens: u64,
}

impl Price {
    /// Free: local models.
    pub const ZERO: Price = Price {
        input_micros_per_mtok: 0,
        output_micros_per_mtok: 0,
        cached_input_micros_per_mtok: 0,
    };

    /// A price from USD per 1M tokens. Without a cached-input price, cached tokens cost as
    /// much as other input (never less than the provider could charge).
    pub fn from_usd_per_mtok(
        input: f64,
        output: f64,
        cached_input: Option<f64>,
    ) -> Result<Price, String> {
        let input_micros = usd_to_micros(input).map_err(|m| format!("input price {m}"))?;
        Ok(Price {
            input_micros_per_mtok: input_micros,
            output_micros_per_mtok: usd_to_micros(output)
                .map_err(|m| format!("output price {m}"))?,
            cached_input_micros_per_mtok: match cached_input {
                Some(c) => usd_to_micros(c).map_err(|m| format!("cached input price {m}"))?,
                None => input_micros,
            },
        })
    }

    /// The cost of `usage` in micro-USD: each component is `ceil(tokens × price / 1,000,000)`,
    /// rounded up separately so that no component is ever under-charged, then summed
    /// (saturating at `i64::MAX`). Negative prices count as zero.
    pub fn cost_micros(&self, usage: &Usage) -> i64 {
        let part = |tokens: u64, per_mtok: i64| -> u128 {
            let price = u128::try_from(per_mtok).unwrap_or(0);
            (u128::from(tokens) * price).div_ceil(1_000_000)
        };
        let total = part(usage.input_tokens, self.input_micros_per_mtok)
            + part(usage.output_tokens, self.output_micros_per_mtok)
            + part(usage.cached_input_tokens, self.cached_input_micros_per_mtok);
        i64::try_from(total).unwrap_or(i64::MAX)
    }

    /// Whether every component is zero.
    pub fn is_zero(&self) -> bool {
        *self == Price::ZERO
    }
}

/// The most a request can cost before it runs: every input token at the higher of the input
/// and cached-input prices (a cache hit is not guaranteed) and `max_output_tokens` of output.
/// Budgets reserve this much up front and settle to the real cost afterwards.
pub fn worst_case_micros(price: &Price, input_tokens_estimate: u64, max_output_tokens: u64) -> i64 {
    let worst_input = Price {
        input_micros_per_mtok: price
            .input_micros_per_mtok
            .max(price.cached_input_micros_per_mtok),
        ..*price
    };
    worst_input.cost_micros(&Usage {
        input_tokens: input_tokens_estimate,
        output_tokens: max_output_tokens,
        cached_input_tokens: 0,
    })
}

/// Converts a USD amount from config to micro-USD, rounding to the nearest micro-USD (config
/// values are decimal and have at most six places that matter). Refuses negative, non-finite
/// and absurd (over 1e9 USD) amounts.
pub fn usd_to_micros(usd: f64) -> Result<i64, String> {
    if !usd.is_finite() {
        return Err("must be a finite number".into());
    }
    if usd < 0.0 {
        return Err("must not be negative".into());
    }
    if usd > MAX_USD {
        return Err("must be at most 1000000000 (USD)".into());
    }
    // Exact: 1e9 × 1e6 = 1e15 < 2^53, so the product and the cast lose nothing.
    Ok((usd * 1e6).round() as i64)
}

/// Micro-USD as USD, for display only (never for arithmetic).
pub fn micros_to_usd(micros: i64) -> f64 {
    micros as f64 / 1e6
}

/// A configured price for one provider's model (`[[pricing.models]]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PriceSpec {
    /// Provider name (`openai`, `anthropic`, `gemini`, `ollama`).
    pub provider: String,
    /// Model name; longer names with this prefix (at `-`, `@` or `:`) resolve to it too.
    pub model: String,
    /// The price.
    pub price: Price,
}

/// What the gateway does with a request whose model has no price (`pricing.unknown_model`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownModel {
    /// Refuse it when a budget applies to the request (its cost could not be counted), unless
    /// `pricing.default` gives unknown models a price. Without a budget it goes ahead, and its
    /// cost is recorded as unknown.
    #[default]
    Deny,
    /// Let it through; its cost is recorded as unknown and counts nothing against budgets.
    Allow,
}

impl UnknownModel {
    /// The name used in config (`deny`, `allow`).
    pub fn name(self) -> &'static str {
        match self {
            UnknownModel::Deny => "deny",
            UnknownModel::Allow => "allow",
        }
    }

    /// Parses `deny` or `allow`.
    pub fn parse(s: &str) -> Result<UnknownModel, String> {
        match s {
            "deny" => Ok(UnknownModel::Deny),
            "allow" => Ok(UnknownModel::Allow),
            other => Err(format!("`{other}` is not one of: deny, allow")),
        }
    }

    /// Whether a request whose price lookup found nothing (no entry and no `pricing.default`)
    /// must be refused, given whether any budget applies to it.
    pub fn refuses(self, budget_applies: bool) -> bool {
        self == UnknownModel::Deny && budget_applies
    }
}

impl fmt::Display for UnknownModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a price was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PriceBasis<'t> {
    /// A table entry (built in or configured) for this model name, or for its base name
    /// (`gpt-4o` for `gpt-4o-2024-08-06`).
    Model(&'t str),
    /// A local provider (Ollama): free.
    Local,
    /// No entry; `pricing.default` applies.
    Default,
}

/// A resolved price and where it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PriceMatch<'t> {
    /// The price.
    pub price: Price,
    /// Why this price.
    pub basis: PriceBasis<'t>,
}

/// FNV-1a. The table's keys come from this crate and the operator's config, never from
/// requests (a request's model is only looked up), so an unkeyed hash cannot be flooded with
/// collisions, and it is several times faster than SipHash on names this short.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

type Map<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;

/// Prices by provider and model: the built-in list prices, configured overrides on top, and an
/// optional default for models that have neither.
#[derive(Clone, Debug, Default)]
pub struct PriceTable {
    /// Provider → lowercase model name → price.
    models: Map<Box<str>, Map<Box<str>, Price>>,
    /// `(provider, model)` of entries that came from configuration.
    overridden: Vec<(Box<str>, Box<str>)>,
    default: Option<Price>,
}

impl PriceTable {
    /// The built-in table (see `docs/pricing.md` and [`BUILTIN_PRICES_AS_OF`]).
    pub fn builtin() -> PriceTable {
        let mut t = PriceTable::default();
        for (provider, model, input, output, cached) in BUILTIN {
            t.insert(
                provider,
                model,
                Price {
                    input_micros_per_mtok: *input,
                    output_micros_per_mtok: *output,
                    cached_input_micros_per_mtok: *cached,
                },
            );
        }
        t
    }

    /// An empty table: every lookup misses (falls to the default), except local providers.
    pub fn empty() -> PriceTable {
        PriceTable::default()
    }

    fn insert(&mut self, provider: &str, model: &str, price: Price) {
        self.models
            .entry(provider.into())
            .or_default()
            .insert(normalize(model).into_owned().into(), price);
    }

    /// Adds or replaces entries; each replaces only the entry with exactly its provider and
    /// model name (an override for `gpt-4o` does not touch `gpt-4o-2024-05-13`).
    pub fn with_overrides(mut self, overrides: Vec<PriceSpec>) -> PriceTable {
        for o in overrides {
            self.insert(&o.provider, &o.model, o.price);
            let key = (o.provider.into(), normalize(&o.model).into_owned().into());
            if !self.overridden.contains(&key) {
                self.overridden.push(key);
            }
        }
        self
    }

    /// Sets the price of models that have no entry (`[pricing.default]`).
    pub fn with_default(mut self, default: Option<Price>) -> Self {
        self.default = default;
        self
    }

    /// The configured default price, if any.
    pub fn default_price(&self) -> Option<Price> {
        self.default
    }

    /// The price of `provider`'s `model`, or the configured default; `None` when the model is
    /// unknown and there is no default (see [`UnknownModel`]).
    pub fn lookup(&self, provider: &str, model: &str) -> Option<Price> {
        self.resolve(provider, model).map(|m| m.price)
    }

    /// Like [`lookup`](Self::lookup), saying which entry priced the model.
    ///
    /// Order: a leading `models/` (Gemini's resource name) is dropped and the name compared
    /// ASCII case-insensitively; then the exact name; then the longest prefix of the name that
    /// ends just before a `-`, `@` or `:` and has an entry; then free for a local provider
    /// (Ollama); then the default.
    pub fn resolve(&self, provider: &str, model: &str) -> Option<PriceMatch<'_>> {
        if let Some(table) = self.models.get(provider) {
            let name = normalize(model);
            if let Some((key, price)) = table.get_key_value(&*name) {
                return Some(PriceMatch {
                    price: *price,
                    basis: PriceBasis::Model(key),
                });
            }
            for (i, _) in name.rmatch_indices(BOUNDARIES) {
                if let Some((key, price)) = table.get_key_value(&name[..i]) {
                    return Some(PriceMatch {
                        price: *price,
                        basis: PriceBasis::Model(key),
                    });
                }
            }
        }
        if LOCAL_PROVIDERS.contains(&provider) {
            return Some(PriceMatch {
                price: Price::ZERO,
                basis: PriceBasis::Local,
            });
        }
        self.default.map(|price| PriceMatch {
            price,
            basis: PriceBasis::Default,
        })
    }

    /// Every entry as `(provider, model, price)`, sorted by provider then model.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str, Price)> {
        let mut all: Vec<(&str, &str, Price)> = self
            .models
            .iter()
            .flat_map(|(p, t)| t.iter().map(move |(m, price)| (&**p, &**m, *price)))
            .collect();
        all.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        all.into_iter()
    }

    /// The entries that came from configuration, as `(provider, model, price)`, in the order
    /// they were given.
    pub fn overrides(&self) -> impl Iterator<Item = (&str, &str, Price)> {
        self.overridden.iter().filter_map(|(p, m)| {
            let price = self.models.get(p)?.get(m)?;
            Some((&**p, &**m, *price))
        })
    }
}

/// Drops Gemini's `models/` resource prefix and lowercases (without allocating when the name
/// is already lowercase, as provider model names are).
fn normalize(model: &str) -> Cow<'_, str> {
    let m = model.trim();
    let m = m.strip_prefix("models/").unwrap_or(m);
    if m.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(m.to_ascii_lowercase())
    } else {
        Cow::Borrowed(m)
    }
}

/// USD per 1M tokens → micro-USD per 1M tokens, at compile time, for the table below.
const fn usd(dollars: f64) -> i64 {
    // Every built-in price has at most six decimal places, so rounding is exact.
    let m = dollars * 1e6;
    (m + 0.5) as i64
}

/// List prices (standard tier, short context, text) as of [`BUILTIN_PRICES_AS_OF`]:
/// `(provider, model, input, output, cached input)`, micro-USD per 1M tokens.
/// Where a provider publishes no cached-input price, cached input costs the input price.
/// Keep `docs/pricing.md` in step with this table.
#[rustfmt::skip]
const BUILTIN: &[(&str, &str, i64, i64, i64)] = &[
    // OpenAI
    ("openai", "gpt-5.5",                   usd(5.00),   usd(30.00),  usd(0.50)),
    ("openai", "gpt-5.5-pro",               usd(30.00),  usd(180.00), usd(30.00)),
    ("openai", "gpt-5.4",                   usd(2.50),   usd(15.00),  usd(0.25)),
    ("openai", "gpt-5.4-mini",              usd(0.75),   usd(4.50),   usd(0.075)),
    ("openai", "gpt-5.4-nano",              usd(0.20),   usd(1.25),   usd(0.02)),
    ("openai", "gpt-5.4-pro",               usd(30.00),  usd(180.00), usd(30.00)),
    ("openai", "gpt-5.2",                   usd(1.75),   usd(14.00),  usd(0.175)),
    ("openai", "gpt-5.2-pro",               usd(21.00),  usd(168.00), usd(21.00)),
    ("openai", "gpt-5.1",                   usd(1.25),   usd(10.00),  usd(0.125)),
    ("openai", "gpt-5",                     usd(1.25),   usd(10.00),  usd(0.125)),
    ("openai", "gpt-5-mini",                usd(0.25),   usd(2.00),   usd(0.025)),
    ("openai", "gpt-5-nano",                usd(0.05),   usd(0.40),   usd(0.005)),
    ("openai", "gpt-5-pro",                 usd(15.00),  usd(120.00), usd(15.00)),
    ("openai", "gpt-4.1",                   usd(2.00),   usd(8.00),   usd(0.50)),
    ("openai", "gpt-4.1-mini",              usd(0.40),   usd(1.60),   usd(0.10)),
    ("openai", "gpt-4.1-nano",              usd(0.10),   usd(0.40),   usd(0.025)),
    ("openai", "gpt-4o",                    usd(2.50),   usd(10.00),  usd(1.25)),
    ("openai", "gpt-4o-2024-05-13",         usd(5.00),   usd(15.00),  usd(5.00)),
    ("openai", "gpt-4o-mini",               usd(0.15),   usd(0.60),   usd(0.075)),
    // Audio-capable chat models at their audio-token rates, the higher ones.
    ("openai", "gpt-4o-audio-preview",      usd(40.00),  usd(80.00),  usd(40.00)),
    ("openai", "gpt-4o-mini-audio-preview", usd(10.00),  usd(20.00),  usd(10.00)),
    ("openai", "chatgpt-4o-latest",         usd(5.00),   usd(15.00),  usd(5.00)),
    ("openai", "o1",                        usd(15.00),  usd(60.00),  usd(7.50)),
    ("openai", "o1-mini",                   usd(1.10),   usd(4.40),   usd(0.55)),
    ("openai", "o1-pro",                    usd(150.00), usd(600.00), usd(150.00)),
    ("openai", "o3",                        usd(2.00),   usd(8.00),   usd(0.50)),
    ("openai", "o3-mini",                   usd(1.10),   usd(4.40),   usd(0.55)),
    ("openai", "o3-pro",                    usd(20.00),  usd(80.00),  usd(20.00)),
    ("openai", "o3-deep-research",          usd(10.00),  usd(40.00),  usd(2.50)),
    ("openai", "o4-mini",                   usd(1.10),   usd(4.40),   usd(0.275)),
    ("openai", "o4-mini-deep-research",     usd(2.00),   usd(8.00),   usd(0.50)),
    ("openai", "text-embedding-3-small",    usd(0.02),   usd(0.00),   usd(0.02)),
    ("openai", "text-embedding-3-large",    usd(0.13),   usd(0.00),   usd(0.13)),
    ("openai", "text-embedding-ada-002",    usd(0.10),   usd(0.00),   usd(0.10)),
    // Anthropic (cache reads are "cached input"; cache writes are billed as input).
    ("anthropic", "claude-opus-4-7",        usd(5.00),   usd(25.00),  usd(0.50)),
    ("anthropic", "claude-opus-4-6",        usd(5.00),   usd(25.00),  usd(0.50)),
    ("anthropic", "claude-opus-4-5",        usd(5.00),   usd(25.00),  usd(0.50)),
    ("anthropic", "claude-opus-4-1",        usd(15.00),  usd(75.00),  usd(1.50)),
    ("anthropic", "claude-opus-4",          usd(15.00),  usd(75.00),  usd(1.50)),
    ("anthropic", "claude-sonnet-4-6",      usd(3.00),   usd(15.00),  usd(0.30)),
    ("anthropic", "claude-sonnet-4-5",      usd(3.00),   usd(15.00),  usd(0.30)),
    ("anthropic", "claude-sonnet-4",        usd(3.00),   usd(15.00),  usd(0.30)),
    ("anthropic", "claude-haiku-4-5",       usd(1.00),   usd(5.00),   usd(0.10)),
    ("anthropic", "claude-3-7-sonnet",      usd(3.00),   usd(15.00),  usd(0.30)),
    ("anthropic", "claude-3-5-sonnet",      usd(3.00),   usd(15.00),  usd(0.30)),
    ("anthropic", "claude-3-5-haiku",       usd(0.80),   usd(4.00),   usd(0.08)),
    ("anthropic", "claude-3-opus",          usd(15.00),  usd(75.00),  usd(1.50)),
    ("anthropic", "claude-3-haiku",         usd(0.25),   usd(1.25),   usd(0.03)),
    // Google Gemini (prompts up to 200K tokens; text, image and video input).
    ("gemini", "gemini-3.1-pro-preview",        usd(2.00),  usd(12.00), usd(0.20)),
    ("gemini", "gemini-3-pro-preview",          usd(2.00),  usd(12.00), usd(0.20)),
    ("gemini", "gemini-3-flash-preview",        usd(0.50),  usd(3.00),  usd(0.05)),
    ("gemini", "gemini-2.5-pro",                usd(1.25),  usd(10.00), usd(0.125)),
    ("gemini", "gemini-2.5-flash",              usd(0.30),  usd(2.50),  usd(0.03)),
    ("gemini", "gemini-2.5-flash-lite",         usd(0.10),  usd(0.40),  usd(0.01)),
    ("gemini", "gemini-2.5-flash-image",        usd(0.30),  usd(30.00), usd(0.03)),
    ("gemini", "gemini-2.5-flash-preview-tts",  usd(0.50),  usd(10.00), usd(0.50)),
    ("gemini", "gemini-2.5-pro-preview-tts",    usd(1.00),  usd(20.00), usd(1.00)),
    ("gemini", "gemini-2.0-flash",              usd(0.10),  usd(0.40),  usd(0.025)),
    ("gemini", "gemini-2.0-flash-lite",         usd(0.075), usd(0.30),  usd(0.075)),
    ("gemini", "gemini-embedding-001",          usd(0.15),  usd(0.00),  usd(0.15)),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_names_are_normalized_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for (p, m, i, o, c) in BUILTIN {
            assert_eq!(normalize(m), *m, "{m} must be stored normalized");
            assert!(seen.insert((p, m)), "duplicate {p}/{m}");
            assert!(*i >= 0 && *o >= 0 && *c >= 0);
            assert!(c <= i, "{m}: cached input must not cost more than input");
        }
    }

    #[test]
    fn const_usd_is_exact() {
        assert_eq!(usd(0.075), 75_000);
        assert_eq!(usd(0.005), 5_000);
        assert_eq!(usd(600.0), 600_000_000);
        assert_eq!(usd(0.0), 0);
    }
}
