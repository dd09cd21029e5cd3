//! Time windows of rules: weekdays, a daily `HH:MM-HH:MM` range (which may wrap past midnight)
//! and an IANA time zone.
//!
//! This module owns parsing a window and deciding whether an instant falls in it. It never
//! reads the clock (the caller passes `now`) and never reads the host's time zone files: zones
//! come from the IANA database compiled into `jiff`, so a rule means the same on every host.
//!
//! A window is compiled to the set of minutes of the local week it covers (Monday 00:00 is
//! minute 0), so matching is one bit test after converting `now` to local wall-clock time, and
//! the linter can compare two windows exactly. A daily range that wraps midnight belongs to the
//! day it starts on: `days = ["fri"]`, `hours = "22:00-06:00"` covers Friday 22:00 to Saturday
//! 06:00, not Friday 00:00-06:00.

use jiff::Timestamp;
use jiff::civil::Weekday;
use jiff::tz::TimeZone;

const DAY: usize = 24 * 60;
const WEEK: usize = 7 * DAY;
const WORDS: usize = WEEK.div_ceil(64);

/// The three-letter day names, Monday first, as `days` takes them.
pub(crate) const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const FULL_NAMES: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// A compiled time window.
#[derive(Clone, Debug)]
pub(crate) struct Window {
    tz: TimeZone,
    tz_name: Box<str>,
    /// One bit per minute of the local week.
    minutes: Box<[u64; WORDS]>,
}

/// Where a window definition is wrong: the field (`days`, `hours`, `timezone`) and why.
pub(crate) type WindowError = (&'static str, String);

impl Window {
    /// Compiles a window. `days` empty means every day, `hours` `None` the whole day and
    /// `timezone` `None` UTC. Returns `Ok(None)` when neither days nor hours are given.
    pub(crate) fn new(
        days: &[String],
        hours: Option<&str>,
        timezone: Option<&str>,
    ) -> Result<Option<Window>, WindowError> {
        if days.is_empty() && hours.is_none() {
            if timezone.is_some() {
                return Err((
                    "timezone",
                    "has no effect without `days` or `hours`; add them or remove it".into(),
                ));
            }
            return Ok(None);
        }
        let mut day_set = [days.is_empty(); 7];
        for d in days {
            for i in parse_days(d).map_err(|m| ("days", m))? {
                day_set[i] = true;
            }
        }
        let (start, end) = match hours {
            Some(h) => parse_hours(h).map_err(|m| ("hours", m))?,
            None => (0, DAY),
        };
        let (tz, tz_name) = match timezone {
            Some(name) => {
                let tz = TimeZone::get(name).map_err(|_| {
                    (
                        "timezone",
                        format!(
                            "`{name}` is not an IANA time zone; use a name like `Europe/Berlin`, `America/New_York` or `UTC`"
                        ),
                    )
                })?;
                (tz, name.into())
            }
            None => (TimeZone::UTC, "UTC".into()),
        };
        let mut minutes = Box::new([0u64; WORDS]);
        // A wrapping range runs from `start` on its day to `end` on the next one.
        let len = if end > start {
            end - start
        } else {
            DAY - start + end
        };
        for (day, on) in day_set.iter().enumerate() {
            if *on {
                for m in 0..len {
                    let bit = (day * DAY + start + m) % WEEK;
                    minutes[bit / 64] |= 1 << (bit % 64);
                }
            }
        }
        Ok(Some(Window {
            tz,
            tz_name,
            minutes,
        }))
    }

    /// Whether `now` falls in the window, in the window's time zone.
    pub(crate) fn contains(&self, now: Timestamp) -> bool {
        let local = self.tz.to_datetime(now);
        let day = match local.weekday() {
            Weekday::Monday => 0,
            Weekday::Tuesday => 1,
            Weekday::Wednesday => 2,
            Weekday::Thursday => 3,
            Weekday::Friday => 4,
            Weekday::Saturday => 5,
            Weekday::Sunday => 6,
        };
        let bit = day * DAY + local.hour() as usize * 60 + local.minute() as usize;
        self.minutes[bit / 64] & (1 << (bit % 64)) != 0
    }

    /// Whether the window covers the whole week (and so constrains nothing).
    pub(crate) fn is_always(&self) -> bool {
        (0..WEEK).all(|bit| self.minutes[bit / 64] & (1 << (bit % 64)) != 0)
    }

    /// Whether every instant in `other` is also in `self`; `false` when unsure (windows in
    /// two differently named zones are never compared, even if the zones agree today).
    pub(crate) fn covers(&self, other: &Window) -> bool {
        if self.is_always() {
            return true;
        }
        self.tz_name == other.tz_name
            && self
                .minutes
                .iter()
                .zip(other.minutes.iter())
                .all(|(a, b)| b & !a == 0)
    }
}

/// Parses `mon`, `monday`, or a range `mon-fri` (which may wrap: `fri-mon`), any case.
fn parse_days(s: &str) -> Result<Vec<usize>, String> {
    let day = |d: &str| -> Result<usize, String> {
        let d = d.trim().to_ascii_lowercase();
        DAY_NAMES
            .iter()
            .position(|n| *n == d)
            .or_else(|| FULL_NAMES.iter().position(|n| *n == d))
            .ok_or_else(|| {
                format!("`{s}` is not a day; use mon, tue, wed, thu, fri, sat, sun or a range like mon-fri")
            })
    };
    match s.split_once('-') {
        None => Ok(vec![day(s)?]),
        Some((a, b)) => {
            let (a, b) = (day(a)?, day(b)?);
            let mut out = vec![a];
            let mut d = a;
            while d != b {
                d = (d + 1) % 7;
                out.push(d);
            }
            Ok(out)
        }
    }
}

/// Parses `HH:MM-HH:MM` into minutes of the day, end exclusive; `24:00` is allowed as an end.
fn parse_hours(s: &str) -> Result<(usize, usize), String> {
    let bad = || {
        format!(
            "`{s}` is not a daily range; use HH:MM-HH:MM in 24-hour time, e.g. \"09:00-17:30\" or \"22:00-06:00\" (wraps past midnight)"
        )
    };
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let time = |t: &str| -> Option<usize> {
        let (h, m) = t.trim().split_once(':')?;
        if h.len() != 2 || m.len() != 2 {
            return None;
        }
        let (h, m): (usize, usize) = (h.parse().ok()?, m.parse().ok()?);
        (h <= 24 && m < 60 && (h < 24 || m == 0)).then_some(h * 60 + m)
    };
    let (start, end) = (time(a).ok_or_else(bad)?, time(b).ok_or_else(bad)?);
    if start == DAY {
        return Err(format!("`{s}`: a range cannot start at 24:00; use 00:00"));
    }
    if start == end {
        return Err(format!(
            "`{s}` is empty (start equals end); to match the whole day, remove `hours`"
        ));
    }
    Ok((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn w(days: &[&str], hours: Option<&str>, tz: Option<&str>) -> Window {
        let days: Vec<String> = days.iter().map(|d| d.to_string()).collect();
        Window::new(&days, hours, tz).unwrap().unwrap()
    }

    #[test]
    fn parses_days_and_ranges() {
        assert_eq!(parse_days("Mon").unwrap(), vec![0]);
        assert_eq!(parse_days("sunday").unwrap(), vec![6]);
        assert_eq!(parse_days("mon-fri").unwrap(), vec![0, 1, 2, 3, 4]);
        assert_eq!(parse_days("fri-mon").unwrap(), vec![4, 5, 6, 0]);
        assert!(parse_days("funday").is_err());
    }

    #[test]
    fn parses_hours() {
        assert_eq!(parse_hours("09:00-17:30").unwrap(), (540, 1050));
        assert_eq!(parse_hours("22:00-06:00").unwrap(), (1320, 360));
        assert_eq!(parse_hours("00:00-24:00").unwrap(), (0, DAY));
        for bad in [
            "9:00-17:00",
            "09:00",
            "25:00-26:00",
            "09:60-10:00",
            "10:00-10:00",
            "24:00-01:00",
            "24:30-01:00",
        ] {
            assert!(parse_hours(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn timezone_alone_is_an_error_and_unknown_zones_are_refused() {
        assert_eq!(
            Window::new(&[], None, Some("UTC")).unwrap_err().0,
            "timezone"
        );
        let e = Window::new(&[], Some("09:00-17:00"), Some("Mars/Olympus")).unwrap_err();
        assert_eq!(e.0, "timezone");
        assert!(Window::new(&[], None, None).unwrap().is_none());
    }

    #[test]
    fn whole_week_window_is_always() {
        assert!(w(&[], Some("00:00-24:00"), None).is_always());
        assert!(w(&["mon-sun"], None, Some("Asia/Tokyo")).is_always());
        assert!(!w(&["mon-sat"], None, None).is_always());
    }

    #[test]
    fn covers_compares_minutes_in_the_same_zone() {
        let wide = w(&["mon-fri"], Some("08:00-18:00"), Some("Europe/Berlin"));
        let narrow = w(&["tue"], Some("09:00-17:00"), Some("Europe/Berlin"));
        assert!(wide.covers(&narrow));
        assert!(!narrow.covers(&wide));
        let elsewhere = w(&["tue"], Some("09:00-17:00"), Some("Europe/Paris"));
        assert!(
            !wide.covers(&elsewhere),
            "different zone names are never compared"
        );
        let night = w(&["fri"], Some("22:00-06:00"), None);
        let sat_morning = w(&["sat"], Some("01:00-05:00"), None);
        assert!(night.covers(&sat_morning));
    }

    #[test]
    fn sunday_night_wraps_into_monday() {
        let night = w(&["sun"], Some("22:00-06:00"), None);
        // 2026-11-23 is a Monday.
        assert!(night.contains(at("2026-11-23T05:59:00Z")));
        assert!(!night.contains(at("2026-11-23T06:00:00Z")));
        assert!(night.contains(at("2026-11-22T22:00:00Z")));
        assert!(!night.contains(at("2026-11-22T05:00:00Z")));
    }
}
