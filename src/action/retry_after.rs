//! `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date in any of the
//! three formats recipients must accept. An invalid value is ignored (the step's
//! own backoff applies); a date in the past means "now"; a huge value is capped by
//! the caller with the step's `max`.

use std::time::{Duration, SystemTime};

/// The delay a `Retry-After` value asks for, seen at `now`; `None` when invalid.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|byte| byte.is_ascii_digit()) {
        // More digits than u64 holds is still "a very long time": saturate, then cap.
        return Some(Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX)));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> SystemTime {
        chrono::DateTime::parse_from_rfc3339(rfc3339).expect("time").into()
    }

    /// RFC 9110 §10.2.3 and §5.6.7: delay seconds and the three date forms, and values that are neither.
    #[test]
    fn rfc_9110_examples_and_invalid_values() {
        let cases: [(&str, &str, Option<u64>); 9] = [
            ("120", "1999-12-31T23:57:59Z", Some(120)),
            ("Fri, 31 Dec 1999 23:59:59 GMT", "1999-12-31T23:57:59Z", Some(120)),
            ("Sun, 06 Nov 1994 08:49:37 GMT", "1994-11-06T08:48:37Z", Some(60)),
            ("Sunday, 06-Nov-94 08:49:37 GMT", "1994-11-06T08:48:37Z", Some(60)),
            ("Sun Nov  6 08:49:37 1994", "1994-11-06T08:48:37Z", Some(60)),
            ("Sun, 06 Nov 1994 08:49:37 GMT", "1994-11-06T09:00:00Z", Some(0)),
            ("-5", "1994-11-06T09:00:00Z", None),
            ("1.5", "1994-11-06T09:00:00Z", None),
            ("soon", "1994-11-06T09:00:00Z", None),
        ];
        for (header, now, expected) in cases {
            assert_eq!(
                parse_retry_after(header, at(now)).map(|delay| delay.as_secs()),
                expected,
                "{header}"
            );
        }
        let huge = parse_retry_after("99999999999999999999999", at("1994-11-06T09:00:00Z")).expect("valid digits");
        assert!(huge > Duration::from_secs(99_999_999_999));
    }
}
