//! Durations as recipes write them: `250ms`, `30s`, `5m`, `2h`, `1d`, or
//! combinations such as `1m30s`.

use std::time::Duration;

/// Parses a duration; the error says what was expected.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let expected =
        || format!("`{text}` is not a duration; expected a number with a unit, like `500ms`, `30s`, `5m`, `2h`, `1d`");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(expected());
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(expected());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| expected())?;
        rest = &rest[digits..];
        let unit_length = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit_millis: u64 = match &rest[..unit_length] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(expected()),
        };
        rest = &rest[unit_length..];
        let millis = number.checked_mul(unit_millis).ok_or_else(expected)?;
        total = total.checked_add(Duration::from_millis(millis)).ok_or_else(expected)?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_combinations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
    }

    #[test]
    fn rejects_bad_input_with_a_message() {
        for bad in ["", "s", "10", "10x", "-1s", "99999999999999999999d"] {
            let error = parse_duration(bad).expect_err(bad);
            assert!(error.contains("is not a duration"), "{error}");
        }
    }
}
