//! Decide stage: the kill switch, policy rules and their limits (model allowlist, `max_tokens`
//! ceiling, requests and tokens per minute, concurrency), the virtual key's own limits, and the
//! USD budget pre-flight (reserve the worst case atomically before forwarding).
//!
//! Its counterpart [`settle`] runs when the exchange ends, allowed or not: it prices the real
//! usage, settles the reservation, charges token rates, and returns the cost for the record.
//! This module judges from facts the earlier stages found; it never parses provider JSON and
//! never answers the client itself (refusals go back as [`GatewayError`]s).

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use http::HeaderMap;
use serde::Serialize;
use warden_policy::{Action, Facts, Price, Usage};
use warden_protocol::ExchangeResponse;
use warden_state::{Cap, Charge, Rate, RateOutcome, Reservation, ReserveOutcome, Scope, Subjects};

use super::Flight;
use super::refuse::GatewayError;
use crate::control::{ConcurrencyGuard, Control};

/// Output tokens reserved for a request that names no `max_tokens` and no rule sets a ceiling.
pub const DEFAULT_OUTPUT_RESERVE: u64 = 4096;

/// What the decide stage concluded, as recorded in the exchange's ledger entry.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Verdict {
    /// `allow`, `log`, `deny`, `killed`, `rate_limited`, `budget_exceeded`, `unauthenticated`.
    pub action: &'static str,
    /// The rule that matched, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Why, for a refusal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Worst-case cost reserved against budgets, micro-USD.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reserved_micros: Option<i64>,
    /// Soft budget caps this request crossed (also sent as `x-warden-budget-warning`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub budget_warnings: Vec<String>,
    /// The human decision on a request held for approval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<super::govern::ApprovalRow>,
}

/// A request that must wait for a human before it is forwarded: a policy rule with
/// `action = "approve"`, or a budget past its `approve_usd`.
#[derive(Debug, Clone)]
pub struct Hold {
    /// `rules` name, or `budget:<name>`.
    pub rule: String,
    /// Why, shown to the approver.
    pub reason: String,
}

/// What one exchange cost, as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct Cost {
    /// Micro-USD; `None` when the model has no known price.
    pub micros: Option<i64>,
    /// Whether token counts were estimated (the response carried no usage).
    pub estimated: bool,
}

/// What an admitted request holds until it ends.
#[derive(Default)]
pub struct Admission {
    reservation: Option<Reservation>,
    price: Option<Price>,
    tpm: Vec<(String, Rate)>,
    input_estimate: u64,
    /// Caps of this request (for running-cost checks on streams).
    pub caps: Vec<Cap>,
    /// Worst-case cost reserved, micro-USD.
    pub reserved: i64,
    /// Reservations added while a stream ran past its first one.
    extra: Vec<Reservation>,
    _concurrency: Vec<ConcurrencyGuard>,
}

impl Admission {
    /// The price in force for this request's model, if known.
    pub fn price(&self) -> Option<Price> {
        self.price
    }

    /// Input tokens estimated at admission.
    pub fn input_estimate(&self) -> u64 {
        self.input_estimate
    }

    /// Whether a stream's running cost has to be watched (a budget applies and the price is
    /// known).
    pub fn watches_cost(&self) -> bool {
        self.reservation.is_some() && self.price.is_some()
    }

    /// The running cost of a stream that has produced `output_bytes` of output so far (about
    /// 4 bytes per token), micro-USD.
    pub fn running_micros(&self, output_bytes: usize) -> i64 {
        self.price.map_or(0, |p| {
            p.cost_micros(&Usage {
                input_tokens: self.input_estimate,
                output_tokens: (output_bytes as u64).div_ceil(4),
                cached_input_tokens: 0,
            })
        })
    }

    /// Keeps a running stream covered: when its running cost passes what is reserved, reserves
    /// more against the same caps, atomically. `Err` carries the message for the client when a
    /// hard cap would be crossed (the stream must be cut).
    pub fn cover(&mut self, control: &Control, running: i64) -> Result<(), String> {
        if running <= self.reserved {
            return Ok(());
        }
        // Extend in steps, so a long stream costs a handful of store calls, not one per chunk.
        let needed = running - self.reserved;
        let step = needed.max(self.reserved / 4).max(1_000);
        let mut outcome = control.store.reserve(&self.caps, step, SystemTime::now());
        let mut step = step;
        if matches!(outcome, Ok(ReserveOutcome::Exceeded(_))) && step > needed {
            // Near the cap: take only what this stream needs now.
            step = needed;
            outcome = control.store.reserve(&self.caps, step, SystemTime::now());
        }
        match outcome {
            Ok(ReserveOutcome::Reserved(r)) => {
                self.extra.push(r);
                self.reserved += step;
                Ok(())
            }
            Ok(ReserveOutcome::Exceeded(s)) => Err(format!(
                "budget `{}` ({}) would be exceeded: this stream has cost about {} so far and {} of {} was already spent or reserved; the stream was stopped",
                s.name,
                cap_where(&s),
                usd(running),
                usd(s.spent_micros + s.reserved_micros),
                usd(s.limit_micros)
            )),
            Err(e) => Err(format!(
                "Warden cannot reach its state store to keep this stream within its budget, so it stopped it: {e}"
            )),
        }
    }
}

/// The subjects of an identity, for kills and spend.
pub fn subjects(flight: &Flight) -> Subjects {
    let id = &flight.identity;
    Subjects {
        tenant: id.tenant.clone(),
        agent: id.agent.clone(),
        session: id.session.clone(),
        key_id: id.key.clone(),
    }
}

/// The kill switch: refuses a killed caller before its body is read.
pub fn kill_check(control: &Control, flight: &mut Flight) -> Result<(), GatewayError> {
    let Some(kill) = control.store.killed(&subjects(flight)) else {
        return Ok(());
    };
    flight.verdict.action = "killed";
    flight.verdict.reason = Some(kill.reason.clone());
    Err(GatewayError::killed(&kill))
}

/// Rules, limits, rates and budgets for a parsed request.
pub async fn decide(
    control: &Arc<Control>,
    flight: &mut Flight,
    headers: &HeaderMap,
    body_len: usize,
) -> Result<(), GatewayError> {
    let policy = control.policy();
    let model = flight.model().map(str::to_string);
    let upstream_host = flight
        .target
        .upstream
        .url
        .authority
        .rsplit_once(':')
        .map_or(flight.target.upstream.url.authority.as_str(), |(h, _)| h)
        .to_string();
    let id = flight.identity.clone();
    // Judged in a block: the header lookup is not `Sync`, and the budget stage below awaits.
    let decision = {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let facts = Facts {
            provider: flight.target.route.provider.name(),
            route: flight.target.route.operation.name(),
            method: flight.method.as_str(),
            upstream_host: &upstream_host,
            model: model.as_deref(),
            tenant: id.tenant.as_deref(),
            agent: id.agent.as_deref(),
            key: id.key.as_deref(),
            session: id.session.as_deref(),
            header: &header,
        };
        policy.rules.evaluate(&facts, jiff::Timestamp::now())
    };
    flight.verdict.rule = decision.rule.map(|r| r.name().to_string());
    let rule_name = flight.verdict.rule.clone().unwrap_or_default();
    match decision.action {
        Action::Deny => {
            flight.verdict.action = "deny";
            flight.verdict.reason = Some(decision.reason.clone());
            return Err(GatewayError::policy_denied(
                decision.status,
                decision.reason,
            ));
        }
        Action::Log => {
            flight.verdict.action = "log";
            tracing::info!(target: "warden::policy", rule = %rule_name, model = model.as_deref().unwrap_or("-"), agent = id.agent.as_deref().unwrap_or("-"), "rule matched (action log)");
        }
        Action::Allow => flight.verdict.action = "allow",
        Action::Approve => {
            flight.verdict.action = "approve";
            flight.hold = Some(Hold {
                rule: rule_name.clone(),
                reason: decision.reason.clone(),
            });
        }
    }

    let requested_max = flight.request.as_ref().and_then(|r| r.max_tokens);
    let input_estimate = estimate_input_tokens(body_len);
    let mut admission = Admission {
        input_estimate,
        ..Admission::default()
    };
    let now = Instant::now();

    // The matching rule's limits.
    let mut ceiling: Option<u64> = None;
    if let Some(rule) = decision.rule {
        let limits = rule.limits();
        if !limits.model_allowed(model.as_deref()) {
            return Err(deny(
                flight,
                format!(
                    "model `{}` is not allowed by rule `{rule_name}` (allowed: {})",
                    model.as_deref().unwrap_or("(none)"),
                    limits.models().join(", ")
                ),
            ));
        }
        if let Some(max) = limits.max_tokens {
            let max = u64::from(max);
            if requested_max.is_some_and(|m| m > max) {
                return Err(deny(
                    flight,
                    format!(
                        "max_tokens {} exceeds rule `{rule_name}`'s ceiling of {max}; ask for at most {max}",
                        requested_max.unwrap_or_default()
                    ),
                ));
            }
            ceiling = Some(max);
        }
        let scope = limits.per.name();
        let subject = scope_subject(&id, scope);
        let base = format!("rule:{rule_name}:{scope}:{subject}");
        if let Some(rpm) = limits.rpm {
            rate(
                control,
                flight,
                &format!("{base}:rpm"),
                u64::from(rpm),
                1,
                now,
                &format!("rule `{rule_name}` allows {rpm} requests per minute per {scope}"),
            )?;
        }
        if let Some(tpm) = limits.tpm {
            let bucket = format!("{base}:tpm");
            let r = Rate {
                per_minute: u64::from(tpm),
                burst: u64::from(tpm),
            };
            rate(
                control,
                flight,
                &bucket,
                u64::from(tpm),
                input_estimate.min(u64::from(tpm)),
                now,
                &format!("rule `{rule_name}` allows {tpm} tokens per minute per {scope}"),
            )?;
            admission.tpm.push((bucket, r));
        }
        if let Some(n) = limits.concurrent {
            match control.enter(format!("{base}:concurrent"), n) {
                Some(g) => admission._concurrency.push(g),
                None => {
                    flight.verdict.action = "rate_limited";
                    let msg = format!(
                        "rule `{rule_name}` allows {n} concurrent requests per {scope} and all are in use; retry when one finishes"
                    );
                    flight.verdict.reason = Some(msg.clone());
                    return Err(GatewayError::rate_limited(msg, 1));
                }
            }
        }
    }

    // The virtual key's own limits.
    if let Some(key) = flight.key.clone() {
        if !key.models.is_empty()
            && !model
                .as_deref()
                .is_some_and(|m| key.models.iter().any(|g| warden_policy::glob_match(g, m)))
        {
            return Err(deny(
                flight,
                format!(
                    "virtual key {} may not use model `{}` (allowed: {})",
                    key.id,
                    model.as_deref().unwrap_or("(none)"),
                    key.models.join(", ")
                ),
            ));
        }
        if let Some(rpm) = key.rpm {
            rate(
                control,
                flight,
                &format!("key:{}:rpm", key.id),
                u64::from(rpm),
                1,
                now,
                &format!("virtual key {} allows {rpm} requests per minute", key.id),
            )?;
        }
        if let Some(tpm) = key.tpm {
            let bucket = format!("key:{}:tpm", key.id);
            rate(
                control,
                flight,
                &bucket,
                u64::from(tpm),
                input_estimate.min(u64::from(tpm)),
                now,
                &format!("virtual key {} allows {tpm} tokens per minute", key.id),
            )?;
            admission.tpm.push((
                bucket,
                Rate {
                    per_minute: u64::from(tpm),
                    burst: u64::from(tpm),
                },
            ));
        }
    }

    // Budgets: reserve the worst case before forwarding.
    let caps = caps(&policy.budgets, flight);
    let price = model
        .as_deref()
        .and_then(|m| policy.prices.lookup(flight.target.route.provider.name(), m));
    admission.price = price;
    if !caps.is_empty() {
        let Some(price) = price else {
            if policy.unknown_model == warden_policy::UnknownModel::Deny {
                return Err(deny(
                    flight,
                    format!(
                        "budget `{}` applies to this request but Warden has no price for model `{}`; add it under [[pricing.models]] or set [pricing.default] (or pricing.unknown_model = \"allow\")",
                        caps[0].name,
                        model.as_deref().unwrap_or("(none)")
                    ),
                ));
            }
            admission.caps = caps;
            flight.admission = Some(admission);
            return Ok(());
        };
        let max_out = requested_max.or(ceiling).unwrap_or(DEFAULT_OUTPUT_RESERVE);
        let worst = warden_policy::worst_case_micros(&price, input_estimate, max_out);
        match control
            .reserve(&caps, worst, SystemTime::now())
            .await
            .map_err(GatewayError::state_unavailable)?
        {
            ReserveOutcome::Reserved(r) => {
                admission.reservation = Some(r);
                admission.reserved = worst;
                flight.verdict.reserved_micros = Some(worst);
            }
            ReserveOutcome::Exceeded(status) => {
                flight.verdict.action = "budget_exceeded";
                let msg = format!(
                    "budget `{}` ({}): {} spent of {}{}, and this request could cost up to {} (input plus max_tokens at list price), which would cross it",
                    status.name,
                    cap_where(&status),
                    usd(status.spent_micros),
                    usd(status.limit_micros),
                    if status.reserved_micros > 0 {
                        format!(
                            " ({} more reserved by requests in flight)",
                            usd(status.reserved_micros)
                        )
                    } else {
                        String::new()
                    },
                    usd(worst),
                );
                flight.verdict.reason = Some(msg.clone());
                return Err(GatewayError::budget_exceeded(msg));
            }
        }
        // Soft caps: warn once the spend (reserved included) passes them. Read only when a cap
        // has one: it is a store read on the request path.
        let soft = caps.iter().any(|c| c.soft_micros.is_some());
        let approve_at = |name: &str| {
            policy
                .budgets
                .iter()
                .find(|b| b.name == name)
                .and_then(|b| b.approve_micros)
        };
        let approve = caps.iter().any(|c| approve_at(&c.name).is_some());
        if (soft || approve)
            && let Ok(statuses) = control.store.cap_status(&caps, SystemTime::now())
        {
            for s in &statuses {
                // Past the approval threshold, a human decides whether this request goes on
                // (the hard cap still refuses what would cross it). Settled spend only: the
                // reservations include this request's own.
                if let Some(at) = approve_at(&s.name)
                    && s.spent_micros >= at
                    && flight.hold.is_none()
                {
                    flight.hold = Some(Hold {
                        rule: format!("budget:{}", s.name),
                        reason: format!(
                            "budget `{}` ({}) has {} spent of {}, past its approval threshold {}",
                            s.name,
                            cap_where(s),
                            usd(s.spent_micros),
                            usd(s.limit_micros),
                            usd(at)
                        ),
                    });
                }
                if let Some(soft) = s.soft_micros
                    && s.spent_micros + s.reserved_micros >= soft
                {
                    flight.verdict.budget_warnings.push(format!(
                        "budget {} ({}): {} of {} spent, soft cap {}",
                        s.name,
                        cap_where(s),
                        usd(s.spent_micros),
                        usd(s.limit_micros),
                        usd(soft)
                    ));
                }
            }
        }
        admission.caps = caps;
    }
    flight.admission = Some(admission);
    Ok(())
}

/// Prices the real usage, settles the reservation and token rates, and returns the cost.
///
/// `abandoned`: the client went away before the exchange ended. When that was after the
/// request was forwarded but before the upstream answered, the provider has the request and
/// may bill all of it, and nobody will learn how much: the worst case reserved for it is
/// charged (the input estimate at list price when no budget reserved one), so hanging up
/// cannot be a way around a budget.
pub fn settle(
    control: &Control,
    flight: &mut Flight,
    response: Option<&ExchangeResponse>,
    abandoned: bool,
) -> Option<Cost> {
    let admission = flight.admission.take();
    let upstream_answered = flight.upstream_status.is_some();
    let unanswered = abandoned && !upstream_answered && flight.started.is_some();
    let (usage, estimated) = usage_of(flight, response, admission.as_ref());
    let price = admission.as_ref().and_then(|a| a.price).or_else(|| {
        let policy = control.policy();
        flight
            .model()
            .and_then(|m| policy.prices.lookup(flight.target.route.provider.name(), m))
    });
    let worst = admission.as_ref().map_or(0, |a| a.reserved);
    let micros = if upstream_answered {
        price.map(|p| p.cost_micros(&usage))
    } else if unanswered && worst > 0 {
        Some(worst)
    } else if unanswered {
        price.map(|p| p.cost_micros(&usage))
    } else {
        Some(0)
    };
    let charge = Charge {
        micros,
        input_tokens: usage.input_tokens + usage.cached_input_tokens,
        output_tokens: usage.output_tokens,
        model: flight.model().map(str::to_string),
    };
    let mut reservation = None;
    let mut extra = Vec::new();
    if let Some(mut a) = admission {
        reservation = a.reservation.take();
        extra = std::mem::take(&mut a.extra);
        let now = Instant::now();
        let total = usage.input_tokens + usage.cached_input_tokens + usage.output_tokens;
        for (bucket, rate) in &a.tpm {
            // Admission charged the input estimate; the difference is settled now.
            let extra = total.saturating_sub(a.input_estimate);
            if extra > 0 {
                control.store.rate_charge(bucket, *rate, extra, now);
            }
        }
    }
    if !upstream_answered && !unanswered && reservation.is_none() {
        return None;
    }
    control.settle(crate::control::Settlement {
        reservation,
        extra,
        subjects: subjects(flight),
        charge,
        at: SystemTime::now(),
    });
    (upstream_answered || unanswered).then_some(Cost { micros, estimated })
}

/// Token counts of the exchange: the response's usage, else an estimate (4 bytes per token).
fn usage_of(
    flight: &Flight,
    response: Option<&ExchangeResponse>,
    admission: Option<&Admission>,
) -> (Usage, bool) {
    let reported = response.map(|r| &r.usage);
    let input = reported.and_then(|u| u.input_tokens);
    let output = reported.and_then(|u| u.output_tokens);
    let cached = reported.and_then(|u| u.cached_input_tokens).unwrap_or(0);
    let estimated = input.is_none() || output.is_none();
    let input = input.unwrap_or_else(|| admission.map_or(0, |a| a.input_estimate));
    let output = output.unwrap_or_else(|| {
        response.map_or(0, |r| {
            let chars = r.output_text.len()
                + r.reasoning.len()
                + r.tool_calls
                    .iter()
                    .map(|c| c.arguments.len() + c.name.len())
                    .sum::<usize>();
            (chars as u64).div_ceil(4)
        })
    });
    let _ = flight;
    (
        Usage {
            input_tokens: input.saturating_sub(cached),
            output_tokens: output,
            cached_input_tokens: cached.min(input),
        },
        estimated,
    )
}

/// Input tokens estimated from the body size: generous (3 bytes per token), so reservations
/// err on the side of holding the cap.
pub fn estimate_input_tokens(body_len: usize) -> u64 {
    (body_len as u64).div_ceil(3)
}

fn deny(flight: &mut Flight, message: String) -> GatewayError {
    flight.verdict.action = "deny";
    flight.verdict.reason = Some(message.clone());
    GatewayError::policy_denied(403, message)
}

fn rate(
    control: &Control,
    flight: &mut Flight,
    bucket: &str,
    per_minute: u64,
    cost: u64,
    now: Instant,
    what: &str,
) -> Result<(), GatewayError> {
    let r = Rate {
        per_minute,
        burst: per_minute,
    };
    match control.store.rate_acquire(bucket, r, cost.max(1), now) {
        RateOutcome::Allowed => Ok(()),
        RateOutcome::Limited { retry_after } => {
            let secs = retry_after.as_secs_f64().ceil().max(1.0) as u64;
            flight.verdict.action = "rate_limited";
            let msg = format!("rate limit reached: {what}; retry in {secs} s");
            flight.verdict.reason = Some(msg.clone());
            Err(GatewayError::rate_limited(msg, secs))
        }
    }
}

fn scope_subject(id: &super::identify::Identity, scope: &str) -> String {
    let v = match scope {
        "key" => id.key.as_deref(),
        "agent" => id.agent.as_deref(),
        "tenant" => id.tenant.as_deref(),
        "session" => id.session.as_deref(),
        _ => Some("all"),
    };
    v.unwrap_or("-").to_string()
}

/// The budget caps that apply to this request: configured budgets whose scope the caller has
/// (and whose `id`, if set, is the caller's), plus the virtual key's own budget.
fn caps(budgets: &[warden_policy::BudgetSpec], flight: &Flight) -> Vec<Cap> {
    let id = &flight.identity;
    let mut caps = Vec::new();
    for b in budgets {
        let scope = match b.per {
            warden_policy::BudgetScope::Global => Scope::Global,
            warden_policy::BudgetScope::Tenant => Scope::Tenant,
            warden_policy::BudgetScope::Agent => Scope::Agent,
            warden_policy::BudgetScope::Session => Scope::Session,
            warden_policy::BudgetScope::Key => Scope::Key,
        };
        let subject = match scope {
            Scope::Global => Some(String::new()),
            Scope::Tenant => id.tenant.clone(),
            Scope::Agent => id.agent.clone(),
            Scope::Session => id.session.clone(),
            Scope::Key => id.key.clone(),
        };
        let Some(subject) = subject else { continue };
        if b.id.as_ref().is_some_and(|only| *only != subject) {
            continue;
        }
        caps.push(Cap {
            name: b.name.clone(),
            scope,
            subject,
            period: match b.period {
                warden_policy::BudgetPeriod::Total => warden_state::Period::Total,
                warden_policy::BudgetPeriod::Day => warden_state::Period::Day,
                warden_policy::BudgetPeriod::Month => warden_state::Period::Month,
            },
            limit_micros: b.limit_micros,
            soft_micros: b.soft_micros,
        });
    }
    if let Some(key) = &flight.key
        && let Some(limit) = key.budget_micros
    {
        caps.push(Cap {
            name: format!("key {}", key.id),
            scope: Scope::Key,
            subject: key.id.clone(),
            period: key.budget_period,
            limit_micros: limit,
            soft_micros: None,
        });
    }
    caps
}

/// Whose spend a cap counts and in which period: `agent reporter, 2026-11-21`.
fn cap_where(s: &warden_state::CapStatus) -> String {
    let subject = if s.subject.is_empty() {
        "all"
    } else {
        &s.subject
    };
    format!("{} {subject}, {}", s.scope.name(), s.bucket)
}

/// `$1.234567` from micro-USD.
pub fn usd(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let m = micros.unsigned_abs();
    let cents_or_more = format!("{}.{:06}", m / 1_000_000, m % 1_000_000);
    // Trim to at least two decimals: $0.50, $0.000123.
    let trimmed = cents_or_more.trim_end_matches('0');
    let (whole, frac) = trimmed.split_once('.').unwrap_or((trimmed, ""));
    let frac = if frac.len() < 2 {
        format!("{frac:0<2}")
    } else {
        frac.to_string()
    };
    format!("{sign}${whole}.{frac}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usd_formats_micro_dollars() {
        assert_eq!(usd(1_000_000), "$1.00");
        assert_eq!(usd(500_000), "$0.50");
        assert_eq!(usd(123), "$0.000123");
        assert_eq!(usd(12_345_678), "$12.345678");
        assert_eq!(usd(0), "$0.00");
    }

    #[test]
    fn input_estimate_is_generous() {
        assert_eq!(estimate_input_tokens(0), 0);
        assert_eq!(estimate_input_tokens(300), 100);
        assert_eq!(estimate_input_tokens(301), 101);
    }
}
