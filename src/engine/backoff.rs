//! When the next attempt of a failed step runs: exponential backoff with full
//! jitter, capped by the step's `max`; a destination's `Retry-After` wins (also
//! capped by `max`), so a server that says when to come back is listened to.

use std::time::Duration;

use crate::recipe::RetryPolicy;

/// The wait before attempt `next` (2 for the first retry). `jitter` is a number in
/// `[0, 1)`, passed in so that tests are deterministic.
pub fn delay_before(policy: &RetryPolicy, next: u32, retry_after: Option<Duration>, jitter: f64) -> Duration {
    if let Some(asked) = retry_after {
        return asked.min(policy.max);
    }
    let doublings = next.saturating_sub(2).min(31);
    let ceiling = policy.backoff.saturating_mul(1u32 << doublings).min(policy.max);
    ceiling.mul_f64(jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            attempts: 10,
            backoff: Duration::from_secs(2),
            max: Duration::from_secs(60),
            fail_when: false,
        }
    }

    #[test]
    fn the_ceiling_doubles_from_backoff_up_to_max() {
        let ceilings: Vec<u64> = (2..=8)
            .map(|next| delay_before(&policy(), next, None, 1.0).as_secs())
            .collect();
        assert_eq!(ceilings, [2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(
            delay_before(&policy(), 40, None, 1.0),
            Duration::from_secs(60),
            "no overflow"
        );
    }

    #[test]
    fn full_jitter_spreads_between_zero_and_the_ceiling() {
        assert_eq!(delay_before(&policy(), 3, None, 0.0), Duration::ZERO);
        assert_eq!(delay_before(&policy(), 3, None, 0.5), Duration::from_secs(2));
    }

    #[test]
    fn retry_after_wins_and_is_capped_by_max() {
        assert_eq!(
            delay_before(&policy(), 2, Some(Duration::from_secs(7)), 0.0),
            Duration::from_secs(7)
        );
        assert_eq!(
            delay_before(&policy(), 2, Some(Duration::from_secs(99_999)), 0.0),
            Duration::from_secs(60)
        );
    }
}
