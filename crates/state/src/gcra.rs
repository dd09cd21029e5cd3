//! Rate limiting by GCRA (the generic cell rate algorithm), kept in process memory.
//!
//! Owns the limiter arithmetic ([`decide`]) and the per-bucket state ([`RateTable`]). It must not
//! persist anything or use fixed windows: a bucket is one "theoretical arrival time" (TAT), so a
//! limiter admits at most `burst` at once and `per_minute` sustained, with no doubled burst at a
//! window boundary.
//!
//! The state lives in memory on purpose: it is hot (touched on every request, sometimes twice) and
//! short-lived (a bucket forgets everything once its TAT is in the past). The cost is that a
//! restart forgets debts, which admits at most one extra burst per bucket. Several replicas each
//! keep their own state, so sharing one limit across replicas needs the Redis implementation of
//! [`Store`](crate::Store), which can run the same arithmetic in an atomic script.
//!
//! # The arithmetic
//!
//! With emission interval `T = 60 s / per_minute` (the time one unit of cost "occupies") and
//! tolerance `tau = T * burst`, a bucket's *debt* is how far its TAT lies ahead of now. A cost `c`
//! conforms when `debt + c*T <= tau`; admitting it adds `c*T` to the debt. When it does not
//! conform the caller waits exactly `debt + c*T - tau`, after which it would conform.
//!
//! A cost larger than `burst` could never conform under that rule and would starve forever, so
//! it is checked as if it were `burst` (it needs an empty bucket) but charged in full: the bucket
//! goes into debt and later requests wait until the big one is paid off, keeping the sustained
//! rate exact.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::{Rate, RateOutcome};

const NANOS_PER_MINUTE: u128 = 60_000_000_000;
/// Debt is capped so that absurd costs cannot overflow `Instant` arithmetic; ten years of debt
/// is already "never" for any caller.
const MAX_DEBT_NANOS: u128 = 10 * 366 * 86_400 * 1_000_000_000;
/// What a zero rate answers: there is no wait after which it admits, so say "a minute" rather
/// than an unbounded value a client might sleep on.
const ZERO_RATE_WAIT: Duration = Duration::from_secs(60);

const SHARDS: usize = 16;
/// Bound on remembered buckets across all shards before sweeping. Sweeping is exact, not an
/// approximation: a bucket whose TAT has passed behaves exactly like one never seen.
const MAX_BUCKETS: usize = 100_000;
const SHARD_SWEEP_AT: usize = MAX_BUCKETS / SHARDS;

/// The GCRA decision for a bucket with `debt` nanoseconds outstanding: `Ok(new debt)` when `cost`
/// is admitted, `Err(wait)` with the nanoseconds until it would be.
pub(crate) fn decide(debt: u128, rate: Rate, cost: u64) -> Result<u128, u128> {
    if rate.per_minute == 0 {
        return Err(ZERO_RATE_WAIT.as_nanos());
    }
    // A burst of 0 would admit nothing ever; one unit at a time is the least a limiter can mean.
    let burst = rate.burst.max(1);
    let span = |units: u64| NANOS_PER_MINUTE * u128::from(units) / u128::from(rate.per_minute);
    let tolerance = span(burst);
    let needed = debt + span(cost.min(burst));
    if needed <= tolerance {
        Ok((debt + span(cost)).min(MAX_DEBT_NANOS))
    } else {
        Err(needed - tolerance)
    }
}

/// Outstanding debt after the fact: `cost` is added without any check.
fn charge(debt: u128, rate: Rate, cost: u64) -> u128 {
    if rate.per_minute == 0 {
        return debt;
    }
    (debt + NANOS_PER_MINUTE * u128::from(cost) / u128::from(rate.per_minute)).min(MAX_DEBT_NANOS)
}

fn nanos(d: u128) -> Duration {
    Duration::from_nanos(u64::try_from(d).unwrap_or(u64::MAX))
}

/// Per-bucket TATs, sharded so concurrent requests for different buckets rarely share a lock.
#[derive(Debug)]
pub(crate) struct RateTable {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
}

#[derive(Debug)]
struct Shard {
    tats: HashMap<String, Instant>,
    /// Size at which the next insert sweeps; doubles when a sweep frees little, so a table full of
    /// genuinely indebted buckets is not rescanned on every insert.
    sweep_at: usize,
}

impl Default for RateTable {
    fn default() -> Self {
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    tats: HashMap::new(),
                    sweep_at: SHARD_SWEEP_AT,
                })
            })
            .collect();
        Self {
            shards,
            hasher: RandomState::new(),
        }
    }
}

impl RateTable {
    fn with_bucket<R>(&self, bucket: &str, now: Instant, f: impl FnOnce(u128) -> (u128, R)) -> R {
        let idx = (self.hasher.hash_one(bucket) % SHARDS as u64) as usize;
        // A panic elsewhere while holding this lock cannot leave a TAT half-written.
        let mut shard = self.shards[idx]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let debt = shard
            .tats
            .get(bucket)
            .map_or(0, |tat| tat.saturating_duration_since(now).as_nanos());
        let (new_debt, out) = f(debt);
        if new_debt != debt {
            // Unreachable overflow for a debt capped at ten years; keeping `now` just forgets it.
            let tat = now.checked_add(nanos(new_debt)).unwrap_or(now);
            shard.set(bucket, tat, now);
        }
        out
    }

    pub(crate) fn acquire(&self, bucket: &str, rate: Rate, cost: u64, now: Instant) -> RateOutcome {
        self.with_bucket(bucket, now, |debt| match decide(debt, rate, cost) {
            Ok(new_debt) => (new_debt, RateOutcome::Allowed),
            Err(wait) => (
                debt,
                RateOutcome::Limited {
                    retry_after: nanos(wait),
                },
            ),
        })
    }

    pub(crate) fn charge(&self, bucket: &str, rate: Rate, cost: u64, now: Instant) {
        self.with_bucket(bucket, now, |debt| (charge(debt, rate, cost), ()));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap().tats.len())
            .sum()
    }
}

impl Shard {
    fn set(&mut self, bucket: &str, tat: Instant, now: Instant) {
        if let Some(slot) = self.tats.get_mut(bucket) {
            *slot = tat;
            return;
        }
        if self.tats.len() >= self.sweep_at {
            self.tats.retain(|_, t| *t > now);
            self.sweep_at = SHARD_SWEEP_AT.max(self.tats.len() * 2);
        }
        self.tats.insert(bucket.to_owned(), tat);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u128 = 1_000_000_000;

    fn allowed(o: RateOutcome) -> bool {
        matches!(o, RateOutcome::Allowed)
    }

    #[test]
    fn sixty_per_minute_burst_one_admits_one_then_waits_a_second() {
        let t = RateTable::default();
        let rate = Rate::new(60).with_burst(1);
        let t0 = Instant::now();
        assert!(allowed(t.acquire("b", rate, 1, t0)));
        assert_eq!(
            t.acquire("b", rate, 1, t0),
            RateOutcome::Limited {
                retry_after: Duration::from_secs(1)
            }
        );
        let half = t0 + Duration::from_millis(400);
        assert_eq!(
            t.acquire("b", rate, 1, half),
            RateOutcome::Limited {
                retry_after: Duration::from_millis(600)
            }
        );
        // Exactly when told to come back, it conforms.
        assert!(allowed(t.acquire(
            "b",
            rate,
            1,
            t0 + Duration::from_secs(1)
        )));
        // Other buckets are independent.
        assert!(allowed(t.acquire("other", rate, 1, t0)));
    }

    #[test]
    fn sustained_rate_over_ten_seconds_is_the_configured_rate() {
        let t = RateTable::default();
        let rate = Rate::new(60).with_burst(1);
        let t0 = Instant::now();
        // Hammer every 10 ms for 10 s (t = 0 .. 9.99 s): exactly one admission per second.
        let admitted = (0..1_000)
            .filter(|i| allowed(t.acquire("b", rate, 1, t0 + Duration::from_millis(i * 10))))
            .count();
        assert_eq!(admitted, 10);
    }

    #[test]
    fn burst_is_admitted_at_once_and_then_refills_at_the_rate() {
        let rate = Rate::new(600).with_burst(5); // T = 100 ms, tau = 500 ms
        let mut debt = 0;
        for _ in 0..5 {
            debt = decide(debt, rate, 1).expect("within burst");
        }
        assert_eq!(debt, 5 * SEC / 10);
        assert_eq!(decide(debt, rate, 1), Err(SEC / 10));
        // No window boundary to game: after a full refill, the burst is again exactly 5.
        let t = RateTable::default();
        let t0 = Instant::now();
        let burst_at = |at: Instant| {
            (0..20)
                .filter(|_| allowed(t.acquire("b", rate, 1, at)))
                .count()
        };
        assert_eq!(burst_at(t0), 5);
        assert_eq!(burst_at(t0 + Duration::from_millis(250)), 2);
        assert_eq!(burst_at(t0 + Duration::from_secs(60)), 5);
    }

    #[test]
    fn weighted_costs_consume_proportionally() {
        // 6000 tokens per minute: 100 per second; burst 1000.
        let rate = Rate::new(6_000).with_burst(1_000);
        let debt = decide(0, rate, 400).unwrap();
        assert_eq!(debt, 4 * SEC);
        let debt = decide(debt, rate, 600).unwrap();
        assert_eq!(debt, 10 * SEC);
        // 1 more token needs 10 ms to drain.
        assert_eq!(decide(debt, rate, 1), Err(SEC / 100));
        // A zero cost is a pure "is it in debt beyond tolerance" check.
        assert_eq!(decide(debt, rate, 0), Ok(debt));
    }

    #[test]
    fn cost_larger_than_burst_needs_an_empty_bucket_and_is_charged_in_full() {
        let rate = Rate::new(60).with_burst(2); // T = 1 s, tau = 2 s
        assert_eq!(decide(0, rate, 5), Ok(5 * SEC));
        // Any debt at all makes it wait until the bucket is empty.
        assert_eq!(decide(SEC / 2, rate, 5), Err(SEC / 2));
        // After the big one, a normal request waits until the overdraft is paid back.
        assert_eq!(decide(5 * SEC, rate, 1), Err(4 * SEC));
    }

    #[test]
    fn charge_pushes_into_debt_so_the_next_acquire_waits() {
        let t = RateTable::default();
        let rate = Rate::new(60).with_burst(10);
        let t0 = Instant::now();
        assert!(allowed(t.acquire("tpm", rate, 1, t0)));
        t.charge("tpm", rate, 30, t0);
        // Debt 31 s against a tolerance of 10 s: 21 s (+1 s for this unit) to wait.
        assert_eq!(
            t.acquire("tpm", rate, 1, t0),
            RateOutcome::Limited {
                retry_after: Duration::from_secs(22)
            }
        );
        assert!(allowed(t.acquire(
            "tpm",
            rate,
            1,
            t0 + Duration::from_secs(22)
        )));
    }

    #[test]
    fn degenerate_rates() {
        assert_eq!(decide(0, Rate::new(0), 1), Err(ZERO_RATE_WAIT.as_nanos()));
        // Burst 0 behaves as burst 1.
        assert_eq!(decide(0, Rate::new(60).with_burst(0), 1), Ok(SEC));
        assert_eq!(decide(SEC, Rate::new(60).with_burst(0), 1), Err(SEC));
        // Debt saturates instead of overflowing.
        assert_eq!(decide(0, Rate::new(1), u64::MAX), Ok(MAX_DEBT_NANOS));
        let t = RateTable::default();
        t.charge("x", Rate::new(1), u64::MAX, Instant::now());
        assert!(!allowed(t.acquire("x", Rate::new(1), 1, Instant::now())));
    }

    #[test]
    fn sweeping_drops_only_passed_buckets_and_backs_off_when_all_are_live() {
        let mut s = Shard {
            tats: HashMap::new(),
            sweep_at: SHARD_SWEEP_AT,
        };
        let t0 = Instant::now();
        let live = t0 + Duration::from_secs(1);
        for i in 0..SHARD_SWEEP_AT {
            s.set(&format!("a{i}"), live, t0);
        }
        // Full, but every bucket is still in debt: nothing may go, and the next sweep waits
        // until the shard has doubled instead of rescanning on every insert.
        s.set("b", live, t0);
        assert_eq!(s.tats.len(), SHARD_SWEEP_AT + 1);
        assert_eq!(s.sweep_at, 2 * SHARD_SWEEP_AT);
        // Two seconds on, all of those have passed; fill up to the new threshold.
        let later = t0 + Duration::from_secs(2);
        for i in 0..SHARD_SWEEP_AT - 1 {
            s.set(&format!("c{i}"), later + Duration::from_secs(1), later);
        }
        assert_eq!(s.tats.len(), 2 * SHARD_SWEEP_AT);
        s.set("d", later + Duration::from_secs(1), later);
        assert_eq!(s.tats.len(), SHARD_SWEEP_AT);
        assert!(s.tats.keys().all(|k| !k.starts_with('a') && k != "b"));
        // Updating an existing bucket never sweeps or grows.
        s.set("d", later, later);
        assert_eq!(s.tats.len(), SHARD_SWEEP_AT);
    }

    #[test]
    fn limited_and_free_acquires_store_nothing() {
        let t = RateTable::default();
        let t0 = Instant::now();
        assert!(allowed(t.acquire("free", Rate::new(60), 0, t0)));
        assert!(!allowed(t.acquire("zero", Rate::new(0), 1, t0)));
        assert_eq!(t.len(), 0);
    }
}
