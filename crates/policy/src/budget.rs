//! Budget definitions: a USD cap on what one scope (everyone, a tenant, an agent, a session, a
//! key) may spend, optionally for one subject only, over a period.
//!
//! This module owns validating a budget and saying which requests it applies to and which
//! period a moment falls in. It must not count spend: the state store (`warden-state`)
//! reserves the worst case atomically before a request and settles to the real cost after, so
//! that concurrent requests and several replicas never overspend.

use std::fmt;

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::Serialize;

use crate::facts::{BudgetScope, Facts, Scope};

/// The period a budget counts over. Periods are calendar days and months in UTC.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BudgetPeriod {
    /// Never resets.
    #[default]
    Total,
    /// Resets at 00:00 UTC every day.
    Day,
    /// Resets at 00:00 UTC on the first of every month.
    Month,
}

impl BudgetPeriod {
    /// The name used in config (`total`, `day`, `month`).
    pub fn name(self) -> &'static str {
        match self {
            BudgetPeriod::Total => "total",
            BudgetPeriod::Day => "day",
            BudgetPeriod::Month => "month",
        }
    }

    /// Parses `total`, `day` or `month`.
    pub fn parse(s: &str) -> Result<BudgetPeriod, String> {
        match s {
            "total" => Ok(BudgetPeriod::Total),
            "day" => Ok(BudgetPeriod::Day),
            "month" => Ok(BudgetPeriod::Month),
            other => Err(format!(
                "`{other}` is not a period; use total, day or month"
            )),
        }
    }

    /// A stable name for the period `now` falls in, for keying counters: `total`,
    /// `2026-11-21` (day) or `2026-11` (month).
    pub fn window_key(self, now: Timestamp) -> String {
        let date = utc_date(now);
        match self {
            BudgetPeriod::Total => "total".into(),
            BudgetPeriod::Day => date.to_string(),
            BudgetPeriod::Month => format!("{:04}-{:02}", date.year(), date.month()),
        }
    }

    /// When the period `now` falls in ends (the next one starts), or `None` for `total`.
    pub fn resets_at(self, now: Timestamp) -> Option<Timestamp> {
        let date = utc_date(now);
        let next = match self {
            BudgetPeriod::Total => return None,
            BudgetPeriod::Day => date.checked_add(1.day()).ok()?,
            BudgetPeriod::Month => date.first_of_month().checked_add(1.month()).ok()?,
        };
        TimeZone::UTC
            .to_timestamp(next.to_datetime(Time::midnight()))
            .ok()
    }
}

fn utc_date(now: Timestamp) -> Date {
    TimeZone::UTC.to_datetime(now).date()
}

impl fmt::Display for BudgetPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A validated budget (`[[budgets]]`). Amounts are micro-USD (see
/// [`usd_to_micros`](crate::usd_to_micros)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BudgetSpec {
    /// Unique name; refusals and warnings cite it.
    pub name: String,
    /// Whose spend counts together: one counter for everyone, or one per tenant, agent,
    /// session or key.
    pub per: BudgetScope,
    /// Only this subject (e.g. agent `reporter`) has the budget; others are not capped by it.
    pub id: Option<String>,
    /// Hard cap: a request that could take spend past it is refused (429 `budget_exceeded`).
    pub limit_micros: i64,
    /// Soft cap: past it, responses carry `x-warden-budget-warning`.
    pub soft_micros: Option<i64>,
    /// Approval threshold: past it, each request waits for a human (`warden approvals`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approve_micros: Option<i64>,
    /// When the spend resets.
    pub period: BudgetPeriod,
}

/// What is wrong with a budget: the field (`name`, `per`, `id`, `limit_usd`, `soft_usd`,
/// `period`) and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct BudgetError {
    /// The offending field, as named in config.
    pub field: &'static str,
    /// What is wrong and what is expected.
    pub message: String,
}

impl BudgetSpec {
    /// Checks one budget on its own (see [`validate_budgets`] for a list).
    pub fn validate(&self) -> Result<(), BudgetError> {
        let err = |field: &'static str, message: &str| {
            Err(BudgetError {
                field,
                message: message.into(),
            })
        };
        if self.name.trim().is_empty() || self.name.chars().any(char::is_control) {
            return err("name", "must be non-empty, without control characters");
        }
        match (&self.id, self.per) {
            (Some(_), Scope::Global) => {
                return err(
                    "id",
                    "a global budget has a single subject; remove `id`, or set `per` to tenant, agent, session or key",
                );
            }
            (Some(id), _) if id.is_empty() => return err("id", "must not be empty"),
            _ => {}
        }
        if self.limit_micros <= 0 {
            return err(
                "limit_usd",
                "must be more than 0; to refuse all traffic, use a deny rule",
            );
        }
        if let Some(soft) = self.soft_micros
            && (soft <= 0 || soft >= self.limit_micros)
        {
            return err(
                "soft_usd",
                "must be more than 0 and less than limit_usd (it warns before the hard cap)",
            );
        }
        if let Some(a) = self.approve_micros
            && (a <= 0 || a >= self.limit_micros)
        {
            return err(
                "approve_usd",
                "must be more than 0 and less than limit_usd (past it each request needs a human's approval, before the hard cap refuses)",
            );
        }
        Ok(())
    }

    /// The subject whose spend this request counts against under this budget, or `None` when
    /// the budget does not apply: the request lacks the identity the budget is kept per, or
    /// the budget is for another subject (`id`). Global budgets answer `"global"`.
    pub fn subject<'f>(&self, facts: &Facts<'f>) -> Option<&'f str> {
        let subject = self.per.subject(facts)?;
        match &self.id {
            Some(id) if id != subject => None,
            _ => Some(subject),
        }
    }
}

/// Checks every budget and that names are unique; the error carries the budget's index.
pub fn validate_budgets(budgets: &[BudgetSpec]) -> Result<(), (usize, BudgetError)> {
    for (i, b) in budgets.iter().enumerate() {
        b.validate().map_err(|e| (i, e))?;
        if let Some(first) = budgets[..i].iter().position(|o| o.name == b.name) {
            return Err((
                i,
                BudgetError {
                    field: "name",
                    message: format!(
                        "`{}` is already the name of budgets[{first}]; budget names must be unique",
                        b.name
                    ),
                },
            ));
        }
    }
    Ok(())
}
