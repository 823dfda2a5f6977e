//! How times are written in the store and in answers.

use chrono::{DateTime, Datelike as _, SecondsFormat, Timelike as _, Utc};

/// Timestamps are stored and served as RFC 3339 UTC with milliseconds
/// (`2026-12-06T18:00:00.123Z`): fixed width, so text order is time order.
///
/// Written digit by digit into a fixed template: a webhook writes four of them,
/// and chrono's general formatter took many more instructions. Times
/// that do not fit the template (years outside 0–9999, a leap second) are left
/// to chrono.
pub fn timestamp(time: DateTime<Utc>) -> String {
    let naive = time.naive_utc();
    let millis = time.timestamp_subsec_millis();
    let Ok(year) = u32::try_from(naive.year()) else {
        return time.to_rfc3339_opts(SecondsFormat::Millis, true);
    };
    if year > 9999 || millis > 999 {
        return time.to_rfc3339_opts(SecondsFormat::Millis, true);
    }
    let mut text = *b"0000-00-00T00:00:00.000Z";
    let fields = [
        (0..4, year),
        (5..7, naive.month()),
        (8..10, naive.day()),
        (11..13, naive.hour()),
        (14..16, naive.minute()),
        (17..19, naive.second()),
        (20..23, millis),
    ];
    for (digits, mut value) in fields {
        for digit in text[digits].iter_mut().rev() {
            // `value % 10` is below 10: the cast cannot truncate.
            *digit = b'0' + (value % 10) as u8;
            value /= 10;
        }
    }
    String::from_utf8(text.to_vec()).unwrap_or_else(|_| time.to_rfc3339_opts(SecondsFormat::Millis, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn writes_what_chrono_writes(micros in -70_000_000_000_000_000_i64..300_000_000_000_000_000) {
            let time = DateTime::<Utc>::from_timestamp_micros(micros).expect("in chrono's range");
            prop_assert_eq!(timestamp(time), time.to_rfc3339_opts(SecondsFormat::Millis, true));
        }
    }

    #[test]
    fn is_fixed_width() {
        let time = DateTime::<Utc>::from_timestamp_millis(1_000).expect("a time");
        assert_eq!(timestamp(time), "1970-01-01T00:00:01.000Z");
    }
}
