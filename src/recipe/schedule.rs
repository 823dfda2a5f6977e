//! When a `schedule` or `poll` trigger fires: a cron expression in a time zone, or
//! a fixed interval.
//!
//! Every fire time comes from the schedule itself, never from "now plus the
//! interval", so timers do not drift and a restart knows exactly which times
//! passed. Intervals are counted from the Unix epoch: `every: 1h` fires on the hour,
//! `every: 15m` at :00, :15, :30 and :45 (UTC), whenever the daemon started.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// A parsed schedule.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// Five fields, or six with seconds first (croner's OCPS semantics).
    Cron {
        expression: String,
        cron: Box<Cron>,
        timezone: Tz,
    },
    /// A fixed interval, aligned to the Unix epoch.
    Every(Duration),
}

/// Why a cron expression or time zone was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScheduleError {
    #[error(
        "cron `{expression}` is not valid: {reason}; expected 5 fields (minute hour day-of-month month day-of-week), or 6 with seconds first"
    )]
    Cron { expression: String, reason: String },
    #[error("cron `{expression}` never fires")]
    NeverFires { expression: String },
    #[error("`{name}` is not an IANA time zone (like `UTC`, `Europe/Berlin`, `America/New_York`){hint}")]
    Timezone { name: String, hint: String },
    #[error("`every` must be at least 1s")]
    TooShort,
}

impl Schedule {
    /// Parses a cron expression for `timezone` and makes sure it fires at all.
    pub fn cron(expression: &str, timezone: Tz) -> Result<Self, ScheduleError> {
        let cron = parse_cron(expression)?;
        let schedule = Schedule::Cron {
            expression: expression.to_owned(),
            cron: Box::new(cron),
            timezone,
        };
        // croner searches a bounded number of years, so this ends even for `* * 31 2 *`.
        if schedule.next_after(Utc::now()).is_none() {
            return Err(ScheduleError::NeverFires {
                expression: expression.to_owned(),
            });
        }
        Ok(schedule)
    }

    /// A fixed interval; below a second a schedule would be a busy loop.
    pub fn every(interval: Duration) -> Result<Self, ScheduleError> {
        if interval < Duration::from_secs(1) {
            return Err(ScheduleError::TooShort);
        }
        Ok(Schedule::Every(interval))
    }

    /// The first fire time strictly after `after`; `None` when there is none.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Cron { cron, timezone, .. } => cron
                .find_next_occurrence(&after.with_timezone(timezone), false)
                .ok()
                .map(|next| next.with_timezone(&Utc)),
            Schedule::Every(interval) => {
                let step = i64::try_from(interval.as_millis()).ok()?;
                let now = after.timestamp_millis();
                let next = now.div_euclid(step).checked_add(1)?.checked_mul(step)?;
                DateTime::from_timestamp_millis(next)
            }
        }
    }

    /// The last fire time at or before `at`; `None` when there is none.
    pub fn latest_at_or_before(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.previous(at, true)
    }

    /// The last fire time strictly before `before`; `None` when there is none.
    pub fn latest_before(&self, before: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.previous(before, false)
    }

    fn previous(&self, at: DateTime<Utc>, inclusive: bool) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Cron { cron, timezone, .. } => cron
                .find_previous_occurrence(&at.with_timezone(timezone), inclusive)
                .ok()
                .map(|previous| previous.with_timezone(&Utc)),
            Schedule::Every(interval) => {
                let step = i64::try_from(interval.as_millis()).ok()?;
                let millis = at.timestamp_millis();
                let floor = millis.div_euclid(step).checked_mul(step)?;
                let previous = if floor == millis && !inclusive {
                    floor.checked_sub(step)?
                } else {
                    floor
                };
                DateTime::from_timestamp_millis(previous)
            }
        }
    }

    /// The next `count` fire times after `after`, each with the offset of the
    /// schedule's time zone at that instant (UTC for intervals).
    pub fn next_fires(&self, after: DateTime<Utc>, count: usize) -> Vec<DateTime<FixedOffset>> {
        let mut fires = Vec::with_capacity(count);
        let mut cursor = after;
        while fires.len() < count {
            let Some(next) = self.next_after(cursor) else {
                break;
            };
            fires.push(self.local(next));
            cursor = next;
        }
        fires
    }

    /// An instant as the schedule's time zone shows it.
    pub fn local(&self, instant: DateTime<Utc>) -> DateTime<FixedOffset> {
        match self {
            Schedule::Cron { timezone, .. } => instant.with_timezone(timezone).fixed_offset(),
            Schedule::Every(_) => instant.fixed_offset(),
        }
    }
}

impl fmt::Display for Schedule {
    /// As written: `cron 0 9 * * MON-FRI (Europe/Berlin)`, `every 15m`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Cron {
                expression, timezone, ..
            } => write!(f, "cron {expression} ({timezone})"),
            Schedule::Every(interval) => write!(f, "every {}", format_interval(*interval)),
        }
    }
}

/// `90s` → `1m30s`; whole units only, as durations are written in recipes.
fn format_interval(interval: Duration) -> String {
    let mut millis = interval.as_millis();
    let mut text = String::new();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if millis >= size {
            text.push_str(&format!("{}{unit}", millis / size));
            millis %= size;
        }
    }
    text
}

/// Cron syntax as crontab users write it: 5 fields, or 6 with seconds first;
/// a year field is not accepted (it would make 6 fields ambiguous). Day of month
/// and day of week are ORed when both are restricted (POSIX); `+` before the day
/// of week ANDs them (OCPS 1.4). `0/10`-style steps are refused, as OCPS says.
pub fn parse_cron(expression: &str) -> Result<Cron, ScheduleError> {
    CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build()
        .parse(expression)
        .map_err(|error| ScheduleError::Cron {
            expression: expression.to_owned(),
            reason: error.to_string(),
        })
}

/// An IANA time zone name.
pub fn parse_timezone(name: &str) -> Result<Tz, ScheduleError> {
    Tz::from_str(name).map_err(|_| {
        let hint = crate::template::did_you_mean(name, chrono_tz::TZ_VARIANTS.iter().map(|zone| zone.name()))
            .map(|close| format!("; did you mean `{close}`?"))
            .unwrap_or_default();
        ScheduleError::Timezone {
            name: name.to_owned(),
            hint,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).expect("a valid test time").to_utc()
    }

    fn rfc3339(times: &[DateTime<FixedOffset>]) -> Vec<String> {
        times.iter().map(DateTime::to_rfc3339).collect()
    }

    #[test]
    fn intervals_are_aligned_to_the_epoch_and_do_not_drift() {
        let every = Schedule::every(Duration::from_secs(15 * 60)).expect("valid");
        assert_eq!(
            rfc3339(&every.next_fires(at("2026-03-01T10:07:12.5Z"), 3)),
            [
                "2026-03-01T10:15:00+00:00",
                "2026-03-01T10:30:00+00:00",
                "2026-03-01T10:45:00+00:00"
            ]
        );
        // A fire time itself is not "after" itself.
        assert_eq!(
            every.next_after(at("2026-03-01T10:15:00Z")),
            Some(at("2026-03-01T10:30:00Z"))
        );
        assert_eq!(
            every.latest_at_or_before(at("2026-03-01T10:15:00Z")),
            Some(at("2026-03-01T10:15:00Z"))
        );
        assert_eq!(
            Schedule::every(Duration::from_millis(500)).err(),
            Some(ScheduleError::TooShort)
        );
    }

    #[test]
    fn weekday_mornings_in_new_york_across_the_spring_change() {
        // 2026-03-08 is the second Sunday of March: EST (-05:00) becomes EDT (-04:00).
        let tz = parse_timezone("America/New_York").expect("known zone");
        let digest = Schedule::cron("30 8 * * MON-FRI", tz).expect("valid");
        assert_eq!(
            rfc3339(&digest.next_fires(at("2026-03-05T14:00:00Z"), 3)),
            [
                "2026-03-06T08:30:00-05:00",
                "2026-03-09T08:30:00-04:00",
                "2026-03-10T08:30:00-04:00"
            ]
        );
    }

    #[test]
    fn a_time_in_the_spring_gap_fires_once_at_the_first_valid_instant() {
        // Berlin skips 02:00–03:00 on 2026-03-29.
        let tz = parse_timezone("Europe/Berlin").expect("known zone");
        let nightly = Schedule::cron("30 2 * * *", tz).expect("valid");
        assert_eq!(
            rfc3339(&nightly.next_fires(at("2026-03-28T12:00:00Z"), 3)),
            [
                "2026-03-29T03:00:00+02:00",
                "2026-03-30T02:30:00+02:00",
                "2026-03-31T02:30:00+02:00"
            ]
        );
    }

    #[test]
    fn the_repeated_autumn_hour_fires_a_fixed_time_once_and_an_interval_twice() {
        // Berlin repeats 02:00–03:00 on 2026-10-25 (+02:00, then +01:00).
        let tz = parse_timezone("Europe/Berlin").expect("known zone");
        let fixed = Schedule::cron("30 2 * * *", tz).expect("valid");
        assert_eq!(
            rfc3339(&fixed.next_fires(at("2026-10-24T12:00:00Z"), 2)),
            ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]
        );
        let half_hourly = Schedule::cron("*/30 2 25 10 *", tz).expect("valid");
        assert_eq!(
            rfc3339(&half_hourly.next_fires(at("2026-10-24T12:00:00Z"), 4)),
            [
                "2026-10-25T02:00:00+02:00",
                "2026-10-25T02:30:00+02:00",
                "2026-10-25T02:00:00+01:00",
                "2026-10-25T02:30:00+01:00"
            ]
        );
    }

    #[test]
    fn six_fields_start_with_seconds() {
        let every_ten_seconds = Schedule::cron("*/10 * * * * *", Tz::UTC).expect("valid");
        assert_eq!(
            every_ten_seconds.next_after(at("2026-01-01T00:00:01Z")),
            Some(at("2026-01-01T00:00:10Z"))
        );
    }

    #[test]
    fn bad_expressions_and_zones_say_what_is_wrong() {
        let error = Schedule::cron("61 * * * *", Tz::UTC).expect_err("minute 61");
        assert!(
            error.to_string().starts_with("cron `61 * * * *` is not valid"),
            "{error}"
        );
        assert_eq!(
            Schedule::cron("* * 31 2 *", Tz::UTC).err(),
            Some(ScheduleError::NeverFires {
                expression: "* * 31 2 *".to_owned()
            })
        );
        let error = parse_timezone("Europe/Berln").expect_err("typo");
        assert!(error.to_string().contains("did you mean `Europe/Berlin`?"), "{error}");
    }
}
