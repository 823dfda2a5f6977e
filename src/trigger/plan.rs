//! Which fire times a schedule trigger acts on, given the mark of its last tick
//! and the clock. Pure, so the rules are tested without waiting.

use chrono::{DateTime, Utc};

use crate::recipe::{Missed, Schedule};

/// What to do from now on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// A missed fire time to tick for at once (`missed: once`).
    pub catch_up: Option<DateTime<Utc>>,
    /// The next fire time to wait for; `None` when the schedule never fires again.
    pub next: Option<DateTime<Utc>>,
}

/// `mark` is the schedule time of the last tick (none before the first). A fire
/// time after the mark that is already past was missed — the daemon was down or
/// busy — and `missed` decides: `skip` drops them all, `once` ticks once for the
/// latest of them. Without a mark nothing was missed: a new recipe starts with
/// its next fire time.
pub fn plan(schedule: &Schedule, mark: Option<DateTime<Utc>>, now: DateTime<Utc>, missed: Missed) -> Plan {
    let next = schedule.next_after(now);
    let Some(mark) = mark else {
        return Plan { catch_up: None, next };
    };
    let Some(first_after_mark) = schedule.next_after(mark) else {
        return Plan {
            catch_up: None,
            next: None,
        };
    };
    if first_after_mark > now {
        return Plan {
            catch_up: None,
            next: Some(first_after_mark),
        };
    }
    let catch_up = match missed {
        Missed::Skip => None,
        Missed::Once => schedule.latest_at_or_before(now).filter(|latest| *latest > mark),
    };
    Plan { catch_up, next }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).expect("a valid test time").to_utc()
    }

    fn hourly() -> Schedule {
        Schedule::every(Duration::from_secs(3600)).expect("valid")
    }

    #[test]
    fn a_new_recipe_waits_for_its_next_time() {
        let plan = plan(&hourly(), None, at("2026-05-01T10:20:00Z"), Missed::Once);
        assert_eq!(
            plan,
            Plan {
                catch_up: None,
                next: Some(at("2026-05-01T11:00:00Z"))
            }
        );
    }

    #[test]
    fn nothing_missed_continues_after_the_mark() {
        let plan = plan(
            &hourly(),
            Some(at("2026-05-01T10:00:00Z")),
            at("2026-05-01T10:59:59Z"),
            Missed::Once,
        );
        assert_eq!(plan.catch_up, None);
        assert_eq!(plan.next, Some(at("2026-05-01T11:00:00Z")));
    }

    #[test]
    fn downtime_skips_or_catches_up_once_with_the_latest_missed_time() {
        let mark = Some(at("2026-05-01T07:00:00Z"));
        let now = at("2026-05-01T10:20:00Z");
        let skipped = plan(&hourly(), mark, now, Missed::Skip);
        assert_eq!(skipped.catch_up, None);
        assert_eq!(skipped.next, Some(at("2026-05-01T11:00:00Z")));
        let once = plan(&hourly(), mark, now, Missed::Once);
        assert_eq!(once.catch_up, Some(at("2026-05-01T10:00:00Z")));
        assert_eq!(once.next, Some(at("2026-05-01T11:00:00Z")));
    }

    #[test]
    fn the_marked_time_itself_is_never_caught_up() {
        // Restarted exactly on a fire time that was already ticked.
        let plan = plan(
            &hourly(),
            Some(at("2026-05-01T10:00:00Z")),
            at("2026-05-01T10:00:00Z"),
            Missed::Once,
        );
        assert_eq!(plan.catch_up, None);
        assert_eq!(plan.next, Some(at("2026-05-01T11:00:00Z")));
    }
}
