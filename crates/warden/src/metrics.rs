//! Prometheus metrics: the registry of every `warden_*` family, label bounding, and the text
//! exposition served on the gateway's listener at `/metrics`.
//!
//! This module owns the metric names, types, labels and buckets — a public contract, documented
//! in `docs/metrics.md` — and the [`LabelLimiter`]s that keep label cardinality bounded. The
//! pipeline reports facts through a few calls ([`Metrics::exchange`], [`Metrics::inflight`],
//! [`Metrics::kill`], …); the ledger reports its batches through
//! [`Metrics::ledger_observer`].
//!
//! It must not decide anything (policy, budgets and kills live elsewhere; this only counts what
//! they decided), must not block or do I/O on the request path (every update is a few atomic
//! operations and, for labelled families, a read-locked map lookup), and must never put a
//! session id, request content, API key or any other per-request identifier in a label: label
//! values are tenants, agents, models and small enumerations, each through a limiter.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use warden_ledger::log::{BatchObserver, BatchStats};

/// The label value for a tenant, agent, model (or any label) the caller did not know.
pub const NONE: &str = "none";
/// The label value every value past a limiter's bound is folded into.
pub const OTHER: &str = "other";
/// Label values are cut to this many characters.
pub const MAX_LABEL_CHARS: usize = 64;

/// Upstream latency buckets (seconds): 1 ms to 60 s. A model call ranges from a cached
/// embedding to a minutes-long generation; past 60 s only `+Inf` matters.
const UPSTREAM_BUCKETS: [f64; 15] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Gateway overhead buckets (seconds): 10 µs to 100 ms. The gateway's own share of a request
/// should sit well under a millisecond; the upper buckets exist to show when it does not.
const OVERHEAD_BUCKETS: [f64; 13] = [
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05, 0.1,
];
/// Ledger write + fdatasync buckets (seconds): 50 µs (NVMe with a write cache) to 1 s (a disk
/// in trouble).
const FSYNC_BUCKETS: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0,
];

/// How many distinct values each label dimension admits before folding the rest into
/// [`OTHER`]. Each limit bounds one dimension; a family's series count is at most the product
/// of its dimensions' limits, and in practice far less (agents belong to tenants).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabelLimits {
    /// Tenants (`tenant`). Default 200.
    pub tenant: usize,
    /// Agents (`agent`). Default 500.
    pub agent: usize,
    /// Models (`model`), shared by every family with a `model` label. Default 200.
    pub model: usize,
    /// Budget names (`budget`). Default 200.
    pub budget: usize,
    /// Budget subjects (`subject`: a tenant, agent or key the budget applies to). Default 500.
    pub subject: usize,
    /// Each small enumeration the gateway itself chooses (`provider`, `decision`, `code`,
    /// `scope`, `reason`). Default 64: far above the real number of values, so it only matters
    /// if a caller passes something unintended.
    pub enumeration: usize,
}

impl Default for LabelLimits {
    fn default() -> LabelLimits {
        LabelLimits {
            tenant: 200,
            agent: 500,
            model: 200,
            budget: 200,
            subject: 500,
            enumeration: 64,
        }
    }
}

/// Cuts a label value to [`MAX_LABEL_CHARS`] characters and replaces control characters with
/// `_`; an empty value becomes [`NONE`]. Borrows when nothing changes (the usual case).
///
/// Escaping `\`, `"` and newlines for the exposition is the encoder's job; this only keeps
/// values short and printable, since they come from callers' headers and request bodies.
pub fn sanitize(raw: &str) -> Cow<'_, str> {
    if raw.is_empty() {
        return Cow::Borrowed(NONE);
    }
    // A string of at most MAX_LABEL_CHARS bytes has at most that many chars.
    let too_long = raw.len() > MAX_LABEL_CHARS && raw.chars().nth(MAX_LABEL_CHARS).is_some();
    if !too_long && !raw.chars().any(char::is_control) {
        return Cow::Borrowed(raw);
    }
    Cow::Owned(
        raw.chars()
            .take(MAX_LABEL_CHARS)
            .map(|c| if c.is_control() { '_' } else { c })
            .collect(),
    )
}

/// Admits the first `max` distinct (sanitized) values of one label dimension and maps every
/// later one to [`OTHER`], so a caller inventing tenants, agents or models cannot grow the
/// metric series without bound.
///
/// Admission is permanent: a family never forgets a series, so evicting a value from the
/// limiter would not free anything, only let the series count grow past the bound. [`NONE`]
/// and [`OTHER`] pass without taking a slot.
#[derive(Debug)]
pub struct LabelLimiter {
    max: usize,
    admitted: RwLock<HashSet<String>>,
}

impl LabelLimiter {
    /// A limiter admitting `max` distinct values.
    pub fn new(max: usize) -> LabelLimiter {
        LabelLimiter {
            max,
            admitted: RwLock::new(HashSet::new()),
        }
    }

    /// The label value to use for `raw`: sanitized, or [`OTHER`] once `max` other values were
    /// admitted.
    pub fn admit(&self, raw: &str) -> String {
        let value = sanitize(raw);
        if value == NONE || value == OTHER {
            return value.into_owned();
        }
        {
            // Fast path: a value seen before (almost every call) takes only the read lock.
            let admitted = self.admitted.read().unwrap_or_else(|p| p.into_inner());
            if admitted.contains(value.as_ref()) {
                return value.into_owned();
            }
            if admitted.len() >= self.max {
                return OTHER.to_owned();
            }
        }
        let mut admitted = self.admitted.write().unwrap_or_else(|p| p.into_inner());
        // Re-check under the write lock: another thread may have filled the last slot.
        if admitted.contains(value.as_ref()) || admitted.len() < self.max {
            admitted.insert(value.clone().into_owned());
            value.into_owned()
        } else {
            OTHER.to_owned()
        }
    }

    /// [`admit`](Self::admit) for an optional value; `None` is [`NONE`].
    pub fn admit_opt(&self, raw: Option<&str>) -> String {
        self.admit(raw.unwrap_or(NONE))
    }

    /// Distinct values admitted so far.
    pub fn admitted(&self) -> usize {
        self.admitted
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

/// One finished exchange, as [`Metrics::exchange`] records it. Every string is a label value
/// and goes through a [`LabelLimiter`]; missing ones become [`NONE`]. There is deliberately no
/// session field: sessions are unbounded and never labels.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExchangeMetrics<'a> {
    /// The provider (`openai`, `anthropic`, `gemini`, `ollama`, …).
    pub provider: &'a str,
    /// The requested model, if the request was parsed far enough to know it.
    pub model: Option<&'a str>,
    /// The HTTP status answered to the client.
    pub status: u16,
    /// What the gateway decided: `allow`, `log`, `deny`, `killed`, `rate_limited`,
    /// `budget_exceeded`, `unauthenticated`, `content_blocked`, `error`, `not_found`.
    pub decision: &'a str,
    /// The refusal's error code, if the gateway refused (`policy_denied`, `invalid_api_key`, …).
    pub refusal_code: Option<&'a str>,
    /// The tenant, if known.
    pub tenant: Option<&'a str>,
    /// The agent, if known.
    pub agent: Option<&'a str>,
    /// From sending the request upstream to the end of the upstream response (`None`: the
    /// request never went upstream).
    pub upstream_latency: Option<Duration>,
    /// Time spent in Warden, excluding the upstream.
    pub overhead: Option<Duration>,
    /// Input (prompt) tokens, excluding cached ones.
    pub input_tokens: u64,
    /// Output (completion) tokens.
    pub output_tokens: u64,
    /// Input tokens served from the provider's prompt cache.
    pub cached_input_tokens: u64,
    /// The exchange's cost in US dollars, if priced. Negative or non-finite costs are ignored
    /// (a counter only goes up).
    pub cost_usd: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    provider: String,
    model: String,
    status: u16,
    decision: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ProviderLabels {
    provider: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TokenLabels {
    tenant: String,
    agent: String,
    model: String,
    direction: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CostLabels {
    tenant: String,
    agent: String,
    model: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BudgetLabels {
    budget: String,
    scope: String,
    subject: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ScopeLabels {
    scope: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CodeLabels {
    code: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct FindingLabels {
    direction: &'static str,
    r#type: String,
    action: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ToolCallLabels {
    rule: String,
    action: &'static str,
    result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

type F64Counter = Counter<f64, AtomicU64>;
type F64Gauge = Gauge<f64, AtomicU64>;
type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn upstream_histogram() -> Histogram {
    Histogram::new(UPSTREAM_BUCKETS)
}

fn overhead_histogram() -> Histogram {
    Histogram::new(OVERHEAD_BUCKETS)
}

/// One limiter per label dimension; a dimension shared by several families (e.g. `model`)
/// shares its limiter, so a value is folded into `other` the same way everywhere.
#[derive(Debug)]
struct Limiters {
    provider: LabelLimiter,
    model: LabelLimiter,
    tenant: LabelLimiter,
    agent: LabelLimiter,
    decision: LabelLimiter,
    code: LabelLimiter,
    kill_scope: LabelLimiter,
    reason: LabelLimiter,
    budget: LabelLimiter,
    budget_scope: LabelLimiter,
    subject: LabelLimiter,
}

impl Limiters {
    fn new(l: LabelLimits) -> Limiters {
        let e = l.enumeration;
        Limiters {
            provider: LabelLimiter::new(e),
            model: LabelLimiter::new(l.model),
            tenant: LabelLimiter::new(l.tenant),
            agent: LabelLimiter::new(l.agent),
            decision: LabelLimiter::new(e),
            code: LabelLimiter::new(e),
            kill_scope: LabelLimiter::new(e),
            reason: LabelLimiter::new(e),
            budget: LabelLimiter::new(l.budget),
            budget_scope: LabelLimiter::new(e),
            subject: LabelLimiter::new(l.subject),
        }
    }
}

/// Every Warden metric, registered once; share it as `Arc<Metrics>`.
///
/// The families are cheap handles onto shared atomics (the registry holds clones of the same
/// handles), so updates never touch the registry and [`render`](Self::render) reads a
/// consistent-enough snapshot without stopping writers.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    limiters: Limiters,
    requests: Family<RequestLabels, Counter>,
    upstream_latency: HistogramFamily<ProviderLabels>,
    overhead: HistogramFamily<ProviderLabels>,
    tokens: Family<TokenLabels, Counter>,
    cost: Family<CostLabels, F64Counter>,
    budget_remaining: Family<BudgetLabels, F64Gauge>,
    kills: Family<ScopeLabels, Counter>,
    kills_active: Gauge,
    refusals: Family<CodeLabels, Counter>,
    inflight: Gauge,
    streams_cut: Family<ReasonLabels, Counter>,
    protect_findings: Family<FindingLabels, Counter>,
    tool_calls: Family<ToolCallLabels, Counter>,
    ledger_batch_entries: Histogram,
    ledger_fsync: Histogram,
    ledger_entries: Counter,
    ledger_bytes: Counter,
    ledger_tree_size: Gauge,
    ledger_healthy: Gauge,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// The `Content-Type` of [`render`](Self::render)'s output.
    pub const CONTENT_TYPE: &'static str =
        "application/openmetrics-text; version=1.0.0; charset=utf-8";

    /// Registers every family with the default [`LabelLimits`] and sets `warden_build_info`.
    pub fn new() -> Metrics {
        Metrics::with_limits(LabelLimits::default())
    }

    /// [`new`](Self::new) with other label bounds.
    pub fn with_limits(limits: LabelLimits) -> Metrics {
        let m = Metrics {
            registry: Registry::default(),
            limiters: Limiters::new(limits),
            requests: Family::default(),
            upstream_latency: Family::new_with_constructor(upstream_histogram),
            overhead: Family::new_with_constructor(overhead_histogram),
            tokens: Family::default(),
            cost: Family::default(),
            budget_remaining: Family::default(),
            kills: Family::default(),
            kills_active: Gauge::default(),
            refusals: Family::default(),
            inflight: Gauge::default(),
            streams_cut: Family::default(),
            protect_findings: Family::default(),
            tool_calls: Family::default(),
            ledger_batch_entries: Histogram::new(exponential_buckets(1.0, 2.0, 11)),
            ledger_fsync: Histogram::new(FSYNC_BUCKETS),
            ledger_entries: Counter::default(),
            ledger_bytes: Counter::default(),
            ledger_tree_size: Gauge::default(),
            ledger_healthy: Gauge::default(),
        };
        m.register()
    }

    /// Registers clones of every handle. Counter names omit `_total` and unit-carrying names
    /// omit the unit: the encoder appends both (and emits the OpenMetrics `# UNIT` line).
    fn register(mut self) -> Metrics {
        let r = &mut self.registry;
        r.register(
            "warden_requests",
            "Exchanges finished, by provider, model, HTTP status and gateway decision",
            self.requests.clone(),
        );
        r.register_with_unit(
            "warden_upstream_latency",
            "Time from sending a request upstream to the end of its response",
            Unit::Seconds,
            self.upstream_latency.clone(),
        );
        r.register_with_unit(
            "warden_gateway_overhead",
            "Time spent in Warden for one exchange, excluding the upstream",
            Unit::Seconds,
            self.overhead.clone(),
        );
        r.register(
            "warden_tokens",
            "Tokens metered, by tenant, agent, model and direction (input, output, cached_input)",
            self.tokens.clone(),
        );
        r.register_with_unit(
            "warden_cost",
            "Metered cost in US dollars, by tenant, agent and model",
            Unit::Other("usd".into()),
            self.cost.clone(),
        );
        r.register_with_unit(
            "warden_budget_remaining",
            "Remaining amount of a budget in US dollars, as last reported",
            Unit::Other("usd".into()),
            self.budget_remaining.clone(),
        );
        r.register(
            "warden_kills",
            "Kill switches engaged, by scope",
            self.kills.clone(),
        );
        r.register(
            "warden_kills_active",
            "Kill switches currently engaged",
            self.kills_active.clone(),
        );
        r.register(
            "warden_refusals",
            "Requests the gateway refused itself, by error code",
            self.refusals.clone(),
        );
        r.register(
            "warden_inflight_requests",
            "Requests being handled now",
            self.inflight.clone(),
        );
        r.register(
            "warden_streams_cut",
            "Streaming responses cut mid-stream by the gateway, by reason (kill, budget)",
            self.streams_cut.clone(),
        );
        r.register(
            "warden_protect_findings",
            "Values content protection found, by direction, type and the action taken",
            self.protect_findings.clone(),
        );
        r.register(
            "warden_tool_calls",
            "Tool calls models asked for, by deciding rule, its action and what the agent got",
            self.tool_calls.clone(),
        );
        r.register(
            "warden_ledger_batch_entries",
            "Entries per committed ledger batch (group commit)",
            self.ledger_batch_entries.clone(),
        );
        r.register_with_unit(
            "warden_ledger_fsync",
            "Time to write one ledger batch and fdatasync it",
            Unit::Seconds,
            self.ledger_fsync.clone(),
        );
        r.register(
            "warden_ledger_entries",
            "Entries committed to the ledger by this process",
            self.ledger_entries.clone(),
        );
        r.register(
            "warden_ledger_bytes",
            "Bytes written to ledger segments by this process (entries and checkpoints)",
            self.ledger_bytes.clone(),
        );
        r.register(
            "warden_ledger_tree_size",
            "Entries in the ledger (the latest checkpoint's size)",
            self.ledger_tree_size.clone(),
        );
        r.register(
            "warden_ledger_healthy",
            "1 while the ledger accepts appends, 0 before it is open or after a write failure",
            self.ledger_healthy.clone(),
        );
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        r.register("warden_build_info", "Warden's version; always 1", build);
        self
    }

    /// The exposition in OpenMetrics text format ([`CONTENT_TYPE`](Self::CONTENT_TYPE)),
    /// ending with `# EOF`.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 << 10);
        // Writing to a String cannot fail, and every registered metric encodes infallibly.
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("encoding metrics into a String");
        out
    }

    /// Records one finished exchange: `warden_requests_total`, the latency and overhead
    /// histograms, tokens, cost and (for a refusal) `warden_refusals_total`.
    pub fn exchange(&self, e: &ExchangeMetrics<'_>) {
        let l = &self.limiters;
        let provider = l.provider.admit(e.provider);
        let model = l.model.admit_opt(e.model);
        self.requests
            .get_or_create(&RequestLabels {
                provider: provider.clone(),
                model: model.clone(),
                status: e.status,
                decision: l.decision.admit(e.decision),
            })
            .inc();
        if let Some(d) = e.upstream_latency {
            self.upstream_latency
                .get_or_create(&ProviderLabels {
                    provider: provider.clone(),
                })
                .observe(d.as_secs_f64());
        }
        if let Some(d) = e.overhead {
            self.overhead
                .get_or_create(&ProviderLabels { provider })
                .observe(d.as_secs_f64());
        }
        if let Some(code) = e.refusal_code {
            self.refusals
                .get_or_create(&CodeLabels {
                    code: l.code.admit(code),
                })
                .inc();
        }
        let priced = e.cost_usd.filter(|c| c.is_finite() && *c > 0.0);
        let tokens = [
            ("input", e.input_tokens),
            ("output", e.output_tokens),
            ("cached_input", e.cached_input_tokens),
        ];
        if priced.is_none() && tokens.iter().all(|(_, n)| *n == 0) {
            // A refusal or an unmetered call: don't admit its tenant and agent into the
            // limiters for nothing.
            return;
        }
        let tenant = l.tenant.admit_opt(e.tenant);
        let agent = l.agent.admit_opt(e.agent);
        // Zero counts create no series: the families hold only what was actually used.
        for (direction, n) in tokens {
            if n > 0 {
                self.tokens
                    .get_or_create(&TokenLabels {
                        tenant: tenant.clone(),
                        agent: agent.clone(),
                        model: model.clone(),
                        direction,
                    })
                    .inc_by(n);
            }
        }
        if let Some(usd) = priced {
            self.cost
                .get_or_create(&CostLabels {
                    tenant,
                    agent,
                    model,
                })
                .inc_by(usd);
        }
    }

    /// Counts a request in `warden_inflight_requests` until the guard drops (hold it for the
    /// whole exchange, including a streamed body).
    pub fn inflight(&self) -> InflightGuard {
        self.inflight.inc();
        InflightGuard {
            gauge: self.inflight.clone(),
        }
    }

    /// Counts a kill switch engaged at `scope` (`global`, `tenant`, `agent`, `session`, …: the
    /// scope, never the killed id).
    pub fn kill(&self, scope: &str) {
        self.kills
            .get_or_create(&ScopeLabels {
                scope: self.limiters.kill_scope.admit(scope),
            })
            .inc();
    }

    /// Sets `warden_kills_active` to the number of kill switches now engaged.
    pub fn set_kills_active(&self, n: i64) {
        self.kills_active.set(n);
    }

    /// Counts values content protection found (`direction` is `request` or `response`).
    pub fn protect_finding(
        &self,
        direction: &'static str,
        kind: &str,
        action: &'static str,
        n: u64,
    ) {
        self.protect_findings
            .get_or_create(&FindingLabels {
                direction,
                r#type: self.limiters.reason.admit(kind),
                action,
            })
            .inc_by(n);
    }

    /// Counts one judged tool call: the deciding rule (`preset:sql`, a configured name,
    /// `default`), its action and the result (`delivered`, `removed`, `refused`).
    pub fn tool_call(&self, rule: &str, action: &'static str, result: &'static str) {
        self.tool_calls
            .get_or_create(&ToolCallLabels {
                rule: self.limiters.reason.admit(rule),
                action,
                result,
            })
            .inc();
    }

    /// Counts a stream the gateway cut (`kill`, `budget`).
    pub fn stream_cut(&self, reason: &str) {
        self.streams_cut
            .get_or_create(&ReasonLabels {
                reason: self.limiters.reason.admit(reason),
            })
            .inc();
    }

    /// Sets `warden_budget_remaining_usd` for one budget and subject. Non-finite values are
    /// ignored.
    pub fn budget_remaining(&self, budget: &str, scope: &str, subject: &str, usd: f64) {
        if !usd.is_finite() {
            return;
        }
        let l = &self.limiters;
        self.budget_remaining
            .get_or_create(&BudgetLabels {
                budget: l.budget.admit(budget),
                scope: l.budget_scope.admit(scope),
                subject: l.subject.admit(subject),
            })
            .set(usd);
    }

    /// Sets `warden_ledger_healthy`: call with `true` once the ledger is open and with
    /// `false` when it turns unhealthy. It starts at 0 so a gateway that never reports reads as
    /// unhealthy rather than falsely healthy.
    pub fn ledger_healthy(&self, ok: bool) {
        self.ledger_healthy.set(i64::from(ok));
    }

    /// The observer to put in `LedgerOptions::observer`: it feeds the `warden_ledger_*`
    /// batch, fsync, entry, byte and tree-size metrics from the ledger's writer thread.
    pub fn ledger_observer(self: &Arc<Self>) -> Arc<dyn BatchObserver> {
        Arc::new(LedgerObserver {
            metrics: self.clone(),
        })
    }
}

/// Decrements `warden_inflight_requests` when dropped. Owns its handle (no borrow of
/// [`Metrics`]), so it can move into a spawned task or a response body.
#[derive(Debug)]
#[must_use = "the request stops counting as in flight when the guard drops"]
pub struct InflightGuard {
    gauge: Gauge,
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// Adapts [`Metrics`] to the ledger's observer trait, so `batch_committed` is not part of
/// `Metrics`' own API.
struct LedgerObserver {
    metrics: Arc<Metrics>,
}

impl BatchObserver for LedgerObserver {
    // Runs on the ledger's writer thread before the batch's callers are answered: only atomic
    // updates on unlabelled metrics here, no locks and no allocation.
    fn batch_committed(&self, stats: &BatchStats) {
        let m = &self.metrics;
        m.ledger_batch_entries.observe(stats.entries as f64);
        m.ledger_fsync.observe(stats.sync.as_secs_f64());
        m.ledger_entries.inc_by(stats.entries as u64);
        m.ledger_bytes.inc_by(stats.bytes);
        m.ledger_tree_size
            .set(i64::try_from(stats.tree_size).unwrap_or(i64::MAX));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// One sample line of the exposition.
    #[derive(Debug, Clone, PartialEq)]
    struct Sample {
        name: String,
        labels: BTreeMap<String, String>,
        value: f64,
    }

    /// A strict-enough parser of the text exposition: `name{k="v",…} value` lines, with the
    /// format's escapes in label values. Panics on anything it does not understand, so a
    /// format change fails the tests loudly.
    fn parse(text: &str) -> Vec<Sample> {
        let mut samples = Vec::new();
        for line in text.lines() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("sample has a value");
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                v => v
                    .parse()
                    .unwrap_or_else(|_| panic!("bad value in {line:?}")),
            };
            let (name, labels) = match series.split_once('{') {
                None => (series.to_owned(), BTreeMap::new()),
                Some((name, rest)) => {
                    let body = rest.strip_suffix('}').expect("labels end with }");
                    (name.to_owned(), parse_labels(body, line))
                }
            };
            samples.push(Sample {
                name,
                labels,
                value,
            });
        }
        samples
    }

    fn parse_labels(body: &str, line: &str) -> BTreeMap<String, String> {
        let mut labels = BTreeMap::new();
        let mut chars = body.chars().peekable();
        while chars.peek().is_some() {
            let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
            assert_eq!(chars.next(), Some('"'), "label value is quoted in {line:?}");
            let mut value = String::new();
            loop {
                match chars.next().expect("label value ends") {
                    '"' => break,
                    '\\' => match chars.next() {
                        Some('n') => value.push('\n'),
                        Some(c) => value.push(c),
                        None => panic!("dangling escape in {line:?}"),
                    },
                    c => value.push(c),
                }
            }
            assert!(labels.insert(key, value).is_none(), "duplicate label");
            match chars.next() {
                None => break,
                Some(',') => {}
                Some(c) => panic!("unexpected {c:?} in {line:?}"),
            }
        }
        labels
    }

    /// The value of the one sample called `name` with exactly `labels`.
    fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut found = samples
            .iter()
            .filter(|s| s.name == name && s.labels == want);
        let first = found.next().map(|s| s.value);
        assert!(found.next().is_none(), "{name} {labels:?} appears twice");
        first
    }

    fn chat(agent: &str) -> ExchangeMetrics<'_> {
        ExchangeMetrics {
            provider: "openai",
            model: Some("gpt-4o"),
            status: 200,
            decision: "allow",
            tenant: Some("acme"),
            agent: Some(agent),
            upstream_latency: Some(Duration::from_millis(120)),
            overhead: Some(Duration::from_micros(300)),
            input_tokens: 100,
            output_tokens: 20,
            cached_input_tokens: 0,
            cost_usd: Some(0.25),
            ..ExchangeMetrics::default()
        }
    }

    #[test]
    fn metrics_is_shareable() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<Metrics>();
        assert_send_sync::<InflightGuard>();
    }

    #[test]
    fn render_is_openmetrics_text_with_build_info() {
        let text = Metrics::new().render();
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(Metrics::CONTENT_TYPE.starts_with("application/openmetrics-text"));
        let s = parse(&text);
        let version = env!("CARGO_PKG_VERSION");
        assert_eq!(
            value(&s, "warden_build_info", &[("version", version)]),
            Some(1.0)
        );
        // Unlabelled families are present from the start, at zero.
        for name in [
            "warden_inflight_requests",
            "warden_kills_active",
            "warden_ledger_entries_total",
            "warden_ledger_bytes_total",
            "warden_ledger_tree_size",
            "warden_ledger_healthy",
            "warden_ledger_batch_entries_count",
            "warden_ledger_fsync_seconds_count",
        ] {
            assert_eq!(value(&s, name, &[]), Some(0.0), "{name}");
        }
        // A labelled family is exposed from its first series on (the encoder skips empty ones).
        assert!(!text.contains("warden_requests"));
        let busy = busy_metrics().render();
        assert!(busy.contains("# TYPE warden_upstream_latency_seconds histogram\n"));
        assert!(busy.contains("# UNIT warden_upstream_latency_seconds seconds\n"));
        assert!(busy.contains("# TYPE warden_cost_usd counter\n"));
        assert!(busy.contains("# UNIT warden_cost_usd usd\n"));
    }

    #[test]
    fn exchanges_update_requests_latency_tokens_cost_and_refusals() {
        let m = Metrics::new();
        m.exchange(&chat("bot-1"));
        m.exchange(&ExchangeMetrics {
            cached_input_tokens: 50,
            cost_usd: Some(0.5),
            upstream_latency: Some(Duration::from_secs(2)),
            ..chat("bot-1")
        });
        m.exchange(&ExchangeMetrics {
            provider: "anthropic",
            model: Some("claude-sonnet-4"),
            status: 403,
            decision: "deny",
            refusal_code: Some("policy_denied"),
            tenant: Some("acme"),
            agent: Some("bot-2"),
            overhead: Some(Duration::from_micros(40)),
            ..ExchangeMetrics::default()
        });
        let s = parse(&m.render());

        let req = |provider, model, status, decision| {
            value(
                &s,
                "warden_requests_total",
                &[
                    ("provider", provider),
                    ("model", model),
                    ("status", status),
                    ("decision", decision),
                ],
            )
        };
        assert_eq!(req("openai", "gpt-4o", "200", "allow"), Some(2.0));
        assert_eq!(
            req("anthropic", "claude-sonnet-4", "403", "deny"),
            Some(1.0)
        );
        assert_eq!(
            value(&s, "warden_refusals_total", &[("code", "policy_denied")]),
            Some(1.0)
        );

        // Upstream latency: 0.12 s and 2 s for openai; the refused call never went upstream.
        let up = "warden_upstream_latency_seconds";
        let openai = [("provider", "openai")];
        assert_eq!(value(&s, &format!("{up}_count"), &openai), Some(2.0));
        assert!((value(&s, &format!("{up}_sum"), &openai).unwrap() - 2.12).abs() < 1e-9);
        let bucket = |le| {
            value(
                &s,
                &format!("{up}_bucket"),
                &[("provider", "openai"), ("le", le)],
            )
        };
        assert_eq!(bucket("0.1"), Some(0.0));
        assert_eq!(bucket("0.25"), Some(1.0));
        assert_eq!(bucket("2.5"), Some(2.0));
        assert_eq!(bucket("+Inf"), Some(2.0));
        assert_eq!(
            value(&s, &format!("{up}_count"), &[("provider", "anthropic")]),
            None
        );
        let over = "warden_gateway_overhead_seconds_count";
        assert_eq!(value(&s, over, &[("provider", "openai")]), Some(2.0));
        assert_eq!(value(&s, over, &[("provider", "anthropic")]), Some(1.0));

        let tok = |direction| {
            value(
                &s,
                "warden_tokens_total",
                &[
                    ("tenant", "acme"),
                    ("agent", "bot-1"),
                    ("model", "gpt-4o"),
                    ("direction", direction),
                ],
            )
        };
        assert_eq!(tok("input"), Some(200.0));
        assert_eq!(tok("output"), Some(40.0));
        assert_eq!(tok("cached_input"), Some(50.0));
        let cost = value(
            &s,
            "warden_cost_usd_total",
            &[("tenant", "acme"), ("agent", "bot-1"), ("model", "gpt-4o")],
        );
        assert_eq!(cost, Some(0.75));
        // The refused exchange used no tokens and cost nothing: no series for bot-2.
        assert!(
            s.iter()
                .all(|x| x.labels.get("agent").map(String::as_str) != Some("bot-2"))
        );
    }

    #[test]
    fn missing_labels_are_none_and_bad_costs_are_ignored() {
        let m = Metrics::new();
        m.exchange(&ExchangeMetrics {
            provider: "ollama",
            status: 200,
            decision: "log",
            output_tokens: 7,
            cost_usd: Some(f64::NAN),
            ..ExchangeMetrics::default()
        });
        m.exchange(&ExchangeMetrics {
            provider: "ollama",
            status: 200,
            decision: "log",
            cost_usd: Some(-1.0),
            ..ExchangeMetrics::default()
        });
        let s = parse(&m.render());
        assert_eq!(
            value(
                &s,
                "warden_tokens_total",
                &[
                    ("tenant", "none"),
                    ("agent", "none"),
                    ("model", "none"),
                    ("direction", "output")
                ]
            ),
            Some(7.0)
        );
        assert!(!s.iter().any(|x| x.name == "warden_cost_usd_total"));
        assert_eq!(
            value(
                &s,
                "warden_requests_total",
                &[
                    ("provider", "ollama"),
                    ("model", "none"),
                    ("status", "200"),
                    ("decision", "log")
                ]
            ),
            Some(2.0)
        );
    }

    #[test]
    fn limiter_maps_the_501st_agent_to_other() {
        let limiter = LabelLimiter::new(500);
        for i in 0..500 {
            assert_eq!(limiter.admit(&format!("agent-{i}")), format!("agent-{i}"));
        }
        assert_eq!(limiter.admit("agent-500"), OTHER);
        assert_eq!(limiter.admit("agent-9999"), OTHER);
        // Values admitted earlier stay admitted; none and other take no slot.
        assert_eq!(limiter.admit("agent-0"), "agent-0");
        assert_eq!(limiter.admit(""), NONE);
        assert_eq!(limiter.admit_opt(None), NONE);
        assert_eq!(limiter.admitted(), 500);

        // Through Metrics, with the default agent bound of 500.
        let m = Metrics::new();
        let names: Vec<String> = (0..510).map(|i| format!("agent-{i}")).collect();
        for name in &names {
            m.exchange(&chat(name));
        }
        let s = parse(&m.render());
        let input_for = |agent| {
            value(
                &s,
                "warden_tokens_total",
                &[
                    ("tenant", "acme"),
                    ("agent", agent),
                    ("model", "gpt-4o"),
                    ("direction", "input"),
                ],
            )
        };
        assert_eq!(input_for("agent-499"), Some(100.0));
        assert_eq!(input_for("agent-500"), None);
        assert_eq!(input_for("other"), Some(1000.0)); // the last 10 agents
        let agents: HashSet<&str> = s
            .iter()
            .filter_map(|x| x.labels.get("agent").map(String::as_str))
            .collect();
        assert_eq!(agents.len(), 501);
    }

    #[test]
    fn limits_are_configurable() {
        let m = Metrics::with_limits(LabelLimits {
            tenant: 1,
            model: 1,
            ..LabelLimits::default()
        });
        for (tenant, model) in [("a", "m1"), ("b", "m2")] {
            m.exchange(&ExchangeMetrics {
                tenant: Some(tenant),
                model: Some(model),
                ..chat("bot")
            });
        }
        let s = parse(&m.render());
        let tenants: HashSet<&str> = s
            .iter()
            .filter_map(|x| x.labels.get("tenant").map(String::as_str))
            .collect();
        assert_eq!(tenants, HashSet::from(["a", "other"]));
        let models: HashSet<&str> = s
            .iter()
            .filter_map(|x| x.labels.get("model").map(String::as_str))
            .collect();
        assert_eq!(models, HashSet::from(["m1", "other"]));
    }

    #[test]
    fn sanitize_truncates_and_replaces_control_characters() {
        assert_eq!(sanitize("acme"), "acme");
        assert!(matches!(sanitize("acme"), Cow::Borrowed(_)));
        assert_eq!(sanitize(""), NONE);
        assert_eq!(sanitize("a\nb\u{7}c\td"), "a_b_c_d");
        let long = "é".repeat(100);
        assert_eq!(sanitize(&long).chars().count(), MAX_LABEL_CHARS);
        // Exactly 64 multi-byte chars: more than 64 bytes but not too long.
        let exact = "é".repeat(64);
        assert!(matches!(sanitize(&exact), Cow::Borrowed(_)));

        // Quotes, backslashes and (replaced) newlines survive a render/parse round trip.
        let m = Metrics::new();
        m.exchange(&ExchangeMetrics {
            tenant: Some("we\"ird\\ten\nant"),
            ..chat("bot")
        });
        let s = parse(&m.render());
        assert!(
            s.iter()
                .any(|x| x.labels.get("tenant").map(String::as_str) == Some("we\"ird\\ten_ant"))
        );
    }

    /// The label keys of every family, as documented in docs/metrics.md. A session id (or any
    /// other unbounded key) can only become a label by changing this list.
    const LABEL_KEYS: &[(&str, &[&str])] = &[
        (
            "warden_requests_total",
            &["decision", "model", "provider", "status"],
        ),
        ("warden_upstream_latency_seconds", &["le", "provider"]),
        ("warden_gateway_overhead_seconds", &["le", "provider"]),
        (
            "warden_tokens_total",
            &["agent", "direction", "model", "tenant"],
        ),
        ("warden_cost_usd_total", &["agent", "model", "tenant"]),
        (
            "warden_budget_remaining_usd",
            &["budget", "scope", "subject"],
        ),
        ("warden_kills_total", &["scope"]),
        ("warden_kills_active", &[]),
        ("warden_refusals_total", &["code"]),
        ("warden_inflight_requests", &[]),
        ("warden_streams_cut_total", &["reason"]),
        ("warden_ledger_batch_entries", &["le"]),
        ("warden_ledger_fsync_seconds", &["le"]),
        ("warden_ledger_entries_total", &[]),
        ("warden_ledger_bytes_total", &[]),
        ("warden_ledger_tree_size", &[]),
        ("warden_ledger_healthy", &[]),
        ("warden_build_info", &["version"]),
    ];

    /// Every family exercised once.
    fn busy_metrics() -> Arc<Metrics> {
        let m = Arc::new(Metrics::new());
        m.exchange(&ExchangeMetrics {
            refusal_code: Some("budget_exceeded"),
            ..chat("bot")
        });
        m.kill("session");
        m.stream_cut("kill");
        m.budget_remaining("monthly", "tenant", "acme", 12.5);
        m.ledger_observer().batch_committed(&BatchStats {
            entries: 3,
            bytes: 900,
            sync: Duration::from_micros(200),
            tree_size: 3,
        });
        m
    }

    #[test]
    fn sessions_never_appear_and_label_keys_are_the_documented_ones() {
        let m = busy_metrics();
        let text = m.render();
        for sample in parse(&text) {
            let family = LABEL_KEYS
                .iter()
                .find(|(name, _)| {
                    sample.name == *name
                        || ["_bucket", "_sum", "_count"]
                            .iter()
                            .any(|sfx| sample.name == format!("{name}{sfx}"))
                })
                .unwrap_or_else(|| panic!("undocumented sample {sample:?}"));
            let mut keys: Vec<&str> = sample.labels.keys().map(String::as_str).collect();
            keys.sort_unstable();
            if sample.name.ends_with("_bucket") {
                assert_eq!(keys, family.1, "{sample:?}");
            } else {
                let expected: Vec<&str> = family.1.iter().copied().filter(|k| *k != "le").collect();
                assert_eq!(keys, expected, "{sample:?}");
            }
            assert!(!sample.labels.contains_key("session"));
        }
        // Kill scope "session" is a scope name, not an id; no `session` label key exists.
        assert!(!text.contains("session="));
    }

    #[test]
    fn ledger_observer_updates_the_ledger_families() {
        let m = Arc::new(Metrics::new());
        let observer = m.ledger_observer();
        observer.batch_committed(&BatchStats {
            entries: 1,
            bytes: 300,
            sync: Duration::from_micros(80),
            tree_size: 1,
        });
        observer.batch_committed(&BatchStats {
            entries: 40,
            bytes: 12_000,
            sync: Duration::from_millis(3),
            tree_size: 41,
        });
        let s = parse(&m.render());
        assert_eq!(value(&s, "warden_ledger_entries_total", &[]), Some(41.0));
        assert_eq!(value(&s, "warden_ledger_bytes_total", &[]), Some(12_300.0));
        assert_eq!(value(&s, "warden_ledger_tree_size", &[]), Some(41.0));
        let batch = "warden_ledger_batch_entries";
        assert_eq!(value(&s, &format!("{batch}_count"), &[]), Some(2.0));
        assert_eq!(value(&s, &format!("{batch}_sum"), &[]), Some(41.0));
        let le = |name: &str, le| value(&s, &format!("{name}_bucket"), &[("le", le)]);
        assert_eq!(le(batch, "1.0"), Some(1.0));
        assert_eq!(le(batch, "32.0"), Some(1.0));
        assert_eq!(le(batch, "64.0"), Some(2.0));
        assert_eq!(le(batch, "1024.0"), Some(2.0));
        let fsync = "warden_ledger_fsync_seconds";
        assert_eq!(value(&s, &format!("{fsync}_count"), &[]), Some(2.0));
        assert_eq!(le(fsync, "0.0001"), Some(1.0));
        assert_eq!(le(fsync, "0.0025"), Some(1.0));
        assert_eq!(le(fsync, "0.005"), Some(2.0));
    }

    #[test]
    fn gauges_and_small_counters() {
        let m = Metrics::new();
        let a = m.inflight();
        let b = m.inflight();
        assert_eq!(
            value(&parse(&m.render()), "warden_inflight_requests", &[]),
            Some(2.0)
        );
        drop(a);
        drop(b);
        m.kill("tenant");
        m.kill("tenant");
        m.kill("global");
        m.set_kills_active(2);
        m.stream_cut("budget");
        m.budget_remaining("monthly", "tenant", "acme", 99.5);
        m.budget_remaining("monthly", "tenant", "acme", 42.25);
        m.budget_remaining("monthly", "tenant", "acme", f64::INFINITY);
        m.ledger_healthy(true);
        let s = parse(&m.render());
        assert_eq!(value(&s, "warden_inflight_requests", &[]), Some(0.0));
        assert_eq!(
            value(&s, "warden_kills_total", &[("scope", "tenant")]),
            Some(2.0)
        );
        assert_eq!(
            value(&s, "warden_kills_total", &[("scope", "global")]),
            Some(1.0)
        );
        assert_eq!(value(&s, "warden_kills_active", &[]), Some(2.0));
        assert_eq!(
            value(&s, "warden_streams_cut_total", &[("reason", "budget")]),
            Some(1.0)
        );
        assert_eq!(
            value(
                &s,
                "warden_budget_remaining_usd",
                &[
                    ("budget", "monthly"),
                    ("scope", "tenant"),
                    ("subject", "acme")
                ]
            ),
            Some(42.25)
        );
        assert_eq!(value(&s, "warden_ledger_healthy", &[]), Some(1.0));
        m.ledger_healthy(false);
        let s = parse(&m.render());
        assert_eq!(value(&s, "warden_ledger_healthy", &[]), Some(0.0));
    }

    #[test]
    fn every_family_is_documented() {
        let doc = include_str!("../../../docs/metrics.md");
        let text = busy_metrics().render();
        let mut families = 0;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap();
                // OpenMetrics names a counter family without its `_total` sample suffix.
                let exposed = if rest.ends_with(" counter") {
                    format!("{name}_total")
                } else {
                    name.to_owned()
                };
                assert!(
                    doc.contains(&format!("`{exposed}`")),
                    "{exposed} is not in docs/metrics.md"
                );
                assert!(LABEL_KEYS.iter().any(|(n, _)| *n == exposed), "{exposed}");
                families += 1;
            }
        }
        assert_eq!(families, LABEL_KEYS.len());
    }
}
