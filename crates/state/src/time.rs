//! Wall-clock helpers: Unix seconds and UTC civil dates for spend buckets, Unix milliseconds for
//! approvals.
//!
//! Owns the conversion from a `SystemTime` to the strings that name a spend period bucket
//! (`"total"`, `"2026-11-21"`, `"2026-11"`), and to and from the millisecond integers approvals
//! are stored and serialized as. It must not read the clock itself: every caller passes `now`,
//! so tests can cross midnight or a month end deterministically.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::Period;

const SECS_PER_DAY: u64 = 86_400;

/// Whole seconds since the Unix epoch, rounded down; times before 1970 count as 0, since no
/// state Warden keeps predates it and a negative timestamp would only corrupt ordering.
pub(crate) fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Whole milliseconds since the Unix epoch, rounded down; times before 1970 count as 0 (as in
/// [`unix_secs`]).
pub(crate) fn unix_millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The moment `ms` Unix milliseconds after the epoch (the epoch itself if the platform cannot
/// represent it).
pub(crate) fn from_unix_millis(ms: u64) -> SystemTime {
    UNIX_EPOCH
        .checked_add(Duration::from_millis(ms))
        .unwrap_or(UNIX_EPOCH)
}

/// Serde for a `SystemTime` field as integer Unix milliseconds.
pub(crate) mod millis {
    use std::time::SystemTime;

    use serde::{Deserialize as _, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(super::unix_millis(*t))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        u64::deserialize(d).map(super::from_unix_millis)
    }
}

/// Serde for an `Option<SystemTime>` field as integer Unix milliseconds or null.
pub(crate) mod opt_millis {
    use std::time::SystemTime;

    use serde::{Deserialize as _, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(
        t: &Option<SystemTime>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_some(&super::unix_millis(*t)),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<SystemTime>, D::Error> {
        Option::<u64>::deserialize(d).map(|ms| ms.map(super::from_unix_millis))
    }
}

/// The proleptic Gregorian (year, month 1..=12, day 1..=31) of a count of days since
/// 1970-01-01, after Howard Hinnant's `civil_from_days`. Written here rather than pulled from a
/// date crate because it is the only calendar arithmetic the store needs.
pub(crate) fn civil_from_days(days: u64) -> (u64, u32, u32) {
    // Shift the epoch to 0000-03-01 so that leap days fall at the end of each (March-based)
    // year and every 400-year era has the same 146 097 days.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097; // day of era, 0..=146_096
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of March-based year, 0..=365
    let mp = (5 * doy + 2) / 153; // March = 0 .. February = 11
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// The bucket of `period` that contains `secs` (Unix seconds, UTC).
pub(crate) fn bucket(period: Period, secs: u64) -> String {
    match period {
        Period::Total => "total".to_owned(),
        Period::Day => {
            let (y, m, d) = civil_from_days(secs / SECS_PER_DAY);
            format!("{y:04}-{m:02}-{d:02}")
        }
        Period::Month => {
            let (y, m, _) = civil_from_days(secs / SECS_PER_DAY);
            format!("{y:04}-{m:02}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_match_known_days() {
        // Reference values from `date -u -d @SECS`.
        let cases = [
            (0, (1970, 1, 1)),
            (59, (1970, 3, 1)),
            (11_016, (2000, 2, 29)),
            (11_017, (2000, 3, 1)),
            (19_782, (2024, 2, 29)),
            (20_778, (2026, 11, 21)),
            (47_481, (2099, 12, 31)),
            (47_482, (2100, 1, 1)),
            (47_541, (2100, 3, 1)), // 2100 is not a leap year: Feb 28 is followed by Mar 1
        ];
        for (days, want) in cases {
            assert_eq!(civil_from_days(days), want, "days {days}");
        }
    }

    #[test]
    fn civil_dates_are_contiguous_for_centuries() {
        // Walking day by day must advance the date by exactly one calendar day each time,
        // which pins month lengths and every leap-year rule without a table of answers.
        let mut prev = civil_from_days(0);
        for days in 1..(400 * 366) {
            let cur = civil_from_days(days);
            let (py, pm, pd) = prev;
            let next_day = (py, pm, pd + 1);
            let next_month = if pm == 12 {
                (py + 1, 1, 1)
            } else {
                (py, pm + 1, 1)
            };
            assert!(cur == next_day || cur == next_month, "{prev:?} -> {cur:?}");
            if cur == next_month {
                let leap = (py % 4 == 0 && py % 100 != 0) || py % 400 == 0;
                let len = match pm {
                    2 if leap => 29,
                    2 => 28,
                    4 | 6 | 9 | 11 => 30,
                    _ => 31,
                };
                assert_eq!(pd, len, "length of {py}-{pm}");
            }
            prev = cur;
        }
    }

    #[test]
    fn buckets_name_the_utc_period() {
        let t = 1_795_305_599; // 2026-11-21T23:59:59Z
        assert_eq!(bucket(Period::Total, t), "total");
        assert_eq!(bucket(Period::Day, t), "2026-11-21");
        assert_eq!(bucket(Period::Day, t + 1), "2026-11-22");
        assert_eq!(bucket(Period::Month, t), "2026-11");
        assert_eq!(bucket(Period::Month, 1_796_083_200), "2026-12"); // 2026-12-01T00:00:00Z
        assert_eq!(bucket(Period::Month, 1_796_083_199), "2026-11");
    }

    #[test]
    fn unix_secs_floors_and_clamps() {
        assert_eq!(unix_secs(UNIX_EPOCH + Duration::from_millis(1_999)), 1);
        assert_eq!(unix_secs(UNIX_EPOCH - Duration::from_secs(5)), 0);
    }

    #[test]
    fn unix_millis_floors_clamps_and_round_trips() {
        let t = UNIX_EPOCH + Duration::from_nanos(1_795_262_400_123_999_999);
        assert_eq!(unix_millis(t), 1_795_262_400_123);
        assert_eq!(
            from_unix_millis(unix_millis(t)),
            UNIX_EPOCH + Duration::from_millis(1_795_262_400_123)
        );
        assert_eq!(unix_millis(UNIX_EPOCH - Duration::from_secs(5)), 0);
    }
}
