//! The cron cases of `tests/data/cron_cases.json` (a copy of `shared/data/`) (from the croner and croniter
//! test suites) against Ferry's schedules: every `ocps/croner` case must pass;
//! a `croniter` case must pass or be listed, with its reason, in
//! `docs/schedules.md` (the differences table).

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use ferry::recipe::{Schedule, ScheduleError, parse_timezone};
use serde_json::Value;

const CASES: &str = include_str!("data/cron_cases.json");
const SCHEDULES_DOC: &str = include_str!("../docs/schedules.md");

/// The outcome of one case, or why it does not hold.
fn run_case(case: &Value) -> Result<(), String> {
    let expression = case["expression"].as_str().ok_or("no expression")?;
    let expected = &case["expected"];
    if let Some(equivalent) = expected["equivalent"].as_str() {
        let start = DateTime::parse_from_rfc3339("2026-01-01T00:00:00+00:00")
            .map_err(|error| error.to_string())?
            .to_utc();
        let nickname = Schedule::cron(expression, Tz::UTC).map_err(|error| error.to_string())?;
        let spelled = Schedule::cron(equivalent, Tz::UTC).map_err(|error| error.to_string())?;
        let (left, right) = (nickname.next_fires(start, 5), spelled.next_fires(start, 5));
        return if left == right && left.len() == 5 {
            Ok(())
        } else {
            Err(format!("{expression} gives {left:?}, {equivalent} gives {right:?}"))
        };
    }

    let options = &case["options"];
    if options["implement_cron_bug"].as_bool() == Some(true) {
        return Err("Vixie cron's `*/N` day-of-month quirk is not implemented".to_owned());
    }
    let and_mode = options["day_or"].as_bool() == Some(false) || options["dom_and_dow"].as_bool() == Some(true);
    // AND of day of month and day of week is written with OCPS's `+` in recipes.
    let expression = if and_mode {
        let mut fields: Vec<String> = expression.split_whitespace().map(str::to_owned).collect();
        if let Some(dow) = fields.last_mut() {
            *dow = format!("+{dow}");
        }
        fields.join(" ")
    } else {
        expression.to_owned()
    };
    let zone = match case["timezone"].as_str() {
        Some(name) => parse_timezone(name).map_err(|error| error.to_string())?,
        None => Tz::UTC,
    };
    let parsed = Schedule::cron(&expression, zone);

    match expected["error"].as_str() {
        Some("invalid_expression") => {
            return match parsed {
                Err(ScheduleError::Cron { .. }) => Ok(()),
                other => Err(format!("expected `{expression}` to be refused, got {other:?}")),
            };
        }
        Some("no_next_fire") => {
            return match parsed {
                Err(ScheduleError::NeverFires { .. }) => Ok(()),
                other => Err(format!("expected `{expression}` never to fire, got {other:?}")),
            };
        }
        Some(other) => return Err(format!("unknown expected error `{other}`")),
        None => {}
    }
    let schedule = parsed.map_err(|error| error.to_string())?;
    let start = start_instant(case["start"].as_str().ok_or("no start")?, zone)?;
    let wanted: Vec<DateTime<FixedOffset>> = expected
        .as_array()
        .ok_or("expected is not a list")?
        .iter()
        .map(|time| {
            let text = time.as_str().ok_or("a fire time is not text")?;
            DateTime::parse_from_rfc3339(text).map_err(|error| format!("`{text}`: {error}"))
        })
        .collect::<Result<_, String>>()?;
    let fires = match case["direction"].as_str() {
        Some("prev") => {
            let mut fires = Vec::new();
            let mut cursor = start.to_utc();
            while fires.len() < wanted.len() {
                let Some(previous) = schedule.latest_before(cursor) else {
                    break;
                };
                fires.push(schedule.local(previous));
                cursor = previous;
            }
            fires
        }
        _ => schedule.next_fires(start.to_utc(), wanted.len()),
    };
    // Same instants and the same offsets (the time zone's at each instant).
    let shown = |times: &[DateTime<FixedOffset>]| times.iter().map(DateTime::to_rfc3339).collect::<Vec<_>>();
    if shown(&fires) == shown(&wanted) {
        Ok(())
    } else {
        Err(format!("got {:?}, expected {:?}", shown(&fires), shown(&wanted)))
    }
}

/// A start with an offset is an instant; without one, wall-clock time in `zone`.
fn start_instant(text: &str, zone: Tz) -> Result<DateTime<FixedOffset>, String> {
    if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
        return Ok(instant);
    }
    let naive =
        NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").map_err(|error| format!("`{text}`: {error}"))?;
    zone.from_local_datetime(&naive)
        .earliest()
        .map(|time| time.fixed_offset())
        .ok_or_else(|| format!("`{text}` does not exist in {zone}"))
}

/// The case ids listed in the differences table of `docs/schedules.md`.
fn documented_differences() -> Vec<&'static str> {
    SCHEDULES_DOC
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once('`').map(|(id, _)| id))
        .collect()
}

#[test]
fn every_ocps_case_passes_and_every_croniter_case_passes_or_is_documented() {
    let data: Value = serde_json::from_str(CASES).expect("cron_cases.json is JSON");
    let cases = data["cases"].as_array().expect("a list of cases");
    assert!(cases.len() >= 80, "only {} cases", cases.len());
    let documented = documented_differences();
    let mut failures = Vec::new();
    let mut passed = 0;
    let mut differences = Vec::new();
    for case in cases {
        let id = case["id"].as_str().expect("every case has an id");
        let profile = case["profile"].as_str().expect("every case has a profile");
        match (run_case(case), profile) {
            (Ok(()), _) => passed += 1,
            (Err(reason), "croniter") if documented.contains(&id) => differences.push(format!("{id}: {reason}")),
            (Err(reason), _) => failures.push(format!("{profile} case `{id}`: {reason}")),
        }
    }
    println!(
        "{passed} cases pass; {} documented differences:\n{}",
        differences.len(),
        differences.join("\n")
    );
    assert!(
        failures.is_empty(),
        "{} cases fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // A difference that is listed but no longer differs would be a stale document.
    for id in &documented {
        let case = cases.iter().find(|case| case["id"] == *id);
        let case = case.unwrap_or_else(|| panic!("docs/schedules.md lists `{id}`, which is not a case"));
        assert!(
            run_case(case).is_err(),
            "docs/schedules.md lists `{id}` as a difference, but it passes"
        );
    }
}
