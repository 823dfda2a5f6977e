//! Rates as settings and recipes write them: `1000/s`, `60/m`, `5/h`.

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

/// So many requests per period; a burst of the whole count is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: NonZeroU32,
    pub period: Duration,
}

impl Rate {
    /// governor's quota: the whole count as a burst, refilled evenly.
    pub fn quota(&self) -> governor::Quota {
        let interval = (self.period / self.count.get()).max(Duration::from_nanos(1));
        governor::Quota::with_period(interval)
            .unwrap_or_else(|| governor::Quota::per_second(self.count))
            .allow_burst(self.count)
    }

    /// The period in whole seconds, for `RateLimit-Policy` (at least 1).
    pub fn window_seconds(&self) -> u64 {
        self.period.as_secs().max(1)
    }
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let expected =
            || format!("`{text}` is not a rate; expected a count per `s`, `m` or `h`, like `1000/s` or `60/m`");
        let (count, unit) = text.trim().split_once('/').ok_or_else(expected)?;
        let count: u32 = count.trim().parse().map_err(|_| expected())?;
        let count = NonZeroU32::new(count).ok_or_else(|| format!("`{text}`: the count must be at least 1"))?;
        let period = match unit.trim() {
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return Err(expected()),
        };
        Ok(Rate { count, period })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.period.as_secs() {
            3600 => "h",
            60 => "m",
            _ => "s",
        };
        write!(f, "{}/{unit}", self.count)
    }
}

/// A recipe's own `rate`: one budget for all its senders together.
pub struct RecipeRate {
    pub rate: Rate,
    pub limiter: governor::DefaultDirectRateLimiter,
}

impl RecipeRate {
    pub fn new(rate: Rate) -> Self {
        Self {
            rate,
            limiter: governor::RateLimiter::direct(rate.quota()),
        }
    }

    /// Spends one request; `Err` with how long until the next one may pass.
    pub fn check(&self) -> Result<(), Duration> {
        use governor::clock::Clock as _;
        self.limiter
            .check()
            .map_err(|not_until| not_until.wait_time_from(governor::clock::DefaultClock::default().now()))
    }
}

impl fmt::Debug for RecipeRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecipeRate({})", self.rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_print_as_written() {
        for text in ["1000/s", "60/m", "5/h"] {
            assert_eq!(text.parse::<Rate>().map(|rate| rate.to_string()), Ok(text.to_owned()));
        }
        assert!("0/s".parse::<Rate>().is_err());
        assert!("10/d".parse::<Rate>().is_err());
        assert!("fast".parse::<Rate>().is_err());
    }
}
