//! Rate limits on `/hooks/*`, per client address (governor's keyed GCRA).
//!
//! Two budgets: a generous one per client address that every request spends (a
//! provider's burst must never be throttled), and a strict one that only failures
//! spend — failed verification, unknown hook paths — so that guessing secrets or
//! scanning for hooks is throttled after a few tries, while legitimate traffic is
//! not. Failures are counted per (address, [`Scope`]): one recipe's attacker, or a
//! scanner, closes nothing else, which matters behind a proxy where every sender
//! shares one address. Only guessable credentials (`token`, `basic`) are locked:
//! a valid HMAC signature passes whatever failed before it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, RateLimiter};

use super::Problem;
use crate::recipe::Rate;

/// The default of `FERRY_HOOK_RATE_PER_IP`.
pub const DEFAULT_HOOK_RATE: &str = "1000/s";
/// The default of `FERRY_HOOK_FAIL_RATE_PER_IP`.
pub const DEFAULT_HOOK_FAIL_RATE: &str = "10/s";

/// How often forgotten clients are dropped from the limiters' memory.
const HOUSEKEEPING: Duration = Duration::from_secs(60);

/// The limits of `/hooks/*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HookLimitSettings {
    /// Every request; `None` is `off`.
    pub per_ip: Option<Rate>,
    /// Requests that fail verification or name no hook; `None` is `off`.
    pub failures_per_ip: Option<Rate>,
    /// Whether the client is the last address of `X-Forwarded-For` (behind a proxy
    /// that appends it) rather than the connection's peer.
    pub trust_forwarded_for: bool,
}

impl Default for HookLimitSettings {
    fn default() -> Self {
        Self {
            per_ip: DEFAULT_HOOK_RATE.parse().ok(),
            failures_per_ip: DEFAULT_HOOK_FAIL_RATE.parse().ok(),
            trust_forwarded_for: false,
        }
    }
}

/// Parses a setting: a rate, or `off`.
pub fn parse_rate_setting(text: &str) -> Result<Option<Rate>, String> {
    if text.trim().eq_ignore_ascii_case("off") {
        Ok(None)
    } else {
        text.parse().map(Some)
    }
}

/// A rate setting as the command line takes it: a rate, or `off` (`None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateSetting(pub Option<Rate>);

impl std::str::FromStr for RateSetting {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_rate_setting(text).map(RateSetting)
    }
}

/// What a failure was against: one recipe's verification, or hook paths that
/// name no recipe.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    Recipe(Arc<str>),
    UnknownPaths,
}

/// A client's failures against one scope.
type FailureKey = (IpAddr, Scope);

/// One keyed budget.
struct Budget<K: std::hash::Hash + Eq + Clone> {
    name: &'static str,
    rate: Rate,
    limiter: DefaultKeyedRateLimiter<K>,
}

impl<K: std::hash::Hash + Eq + Clone> Budget<K> {
    fn new(name: &'static str, rate: Rate) -> Self {
        Self {
            name,
            rate,
            limiter: RateLimiter::keyed(rate.quota()),
        }
    }
}

/// The hooks' limiters, shared by every request.
pub struct HookLimits {
    general: Option<Budget<IpAddr>>,
    failures: Option<Budget<FailureKey>>,
    /// Clients over their failure budget for a scope, and until when.
    blocked: Mutex<HashMap<FailureKey, Instant>>,
    trust_forwarded_for: bool,
}

/// A refusal: `429` with `Retry-After` and the `RateLimit` headers.
#[derive(Debug)]
pub struct Throttled {
    policy: &'static str,
    rate: Rate,
    wait: Duration,
}

impl HookLimits {
    /// The limits, with a task that forgets idle clients while they are in use.
    pub fn start(settings: HookLimitSettings) -> Arc<Self> {
        let limits = Arc::new(Self {
            general: settings.per_ip.map(|rate| Budget::new("hooks", rate)),
            failures: settings.failures_per_ip.map(|rate| Budget::new("hooks-failures", rate)),
            blocked: Mutex::new(HashMap::new()),
            trust_forwarded_for: settings.trust_forwarded_for,
        });
        tokio::spawn(housekeeping(Arc::downgrade(&limits)));
        limits
    }

    /// The client's address: the peer, or the last `X-Forwarded-For` entry when
    /// trusted (the one the proxy in front added).
    pub fn client(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        if self.trust_forwarded_for
            && let Some(forwarded) = headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|value| value.to_str().ok())
                .flat_map(|value| value.split(','))
                .filter_map(|entry| entry.trim().parse::<IpAddr>().ok())
                .next_back()
        {
            return forwarded;
        }
        peer.ip()
    }

    /// Spends one request of the client's budget.
    pub fn admit(&self, client: IpAddr) -> Result<(), Throttled> {
        match &self.general {
            Some(general) => check(general, &client),
            None => Ok(()),
        }
    }

    /// Refuses a client that is over its failure budget for this scope, until the
    /// budget refills; asked before a guessable credential is compared, so a
    /// locked-out guesser learns nothing, even when the guess is right.
    pub fn locked(&self, client: IpAddr, scope: &Scope) -> Result<(), Throttled> {
        let Some(failures) = &self.failures else {
            return Ok(());
        };
        let Ok(mut blocked) = self.blocked.lock() else {
            return Ok(());
        };
        let key = (client, scope.clone());
        let Some(until) = blocked.get(&key).copied() else {
            return Ok(());
        };
        let now = Instant::now();
        if until > now {
            return Err(Throttled {
                policy: failures.name,
                rate: failures.rate,
                wait: until - now,
            });
        }
        blocked.remove(&key);
        Ok(())
    }

    /// Spends one failure of the client's budget for this scope; past it, the
    /// client is refused there until the budget refills (this answer included).
    pub fn failed(&self, client: IpAddr, scope: &Scope) -> Result<(), Throttled> {
        let Some(failures) = &self.failures else {
            return Ok(());
        };
        let key = (client, scope.clone());
        let throttled = check(failures, &key);
        if let Err(refusal) = &throttled
            && let Ok(mut blocked) = self.blocked.lock()
        {
            blocked.insert(key, Instant::now() + refusal.wait);
        }
        throttled
    }

    fn forget_idle(&self) {
        if let Some(general) = &self.general {
            general.limiter.retain_recent();
            general.limiter.shrink_to_fit();
        }
        if let Some(failures) = &self.failures {
            failures.limiter.retain_recent();
            failures.limiter.shrink_to_fit();
        }
        if let Ok(mut blocked) = self.blocked.lock() {
            let now = Instant::now();
            blocked.retain(|_, until| *until > now);
        }
    }
}

fn check<K: std::hash::Hash + Eq + Clone>(budget: &Budget<K>, key: &K) -> Result<(), Throttled> {
    budget.limiter.check_key(key).map_err(|not_until| Throttled {
        policy: budget.name,
        rate: budget.rate,
        wait: not_until.wait_time_from(DefaultClock::default().now()),
    })
}

async fn housekeeping(limits: Weak<HookLimits>) {
    loop {
        tokio::time::sleep(HOUSEKEEPING).await;
        let Some(limits) = limits.upgrade() else {
            return;
        };
        limits.forget_idle();
    }
}

impl Throttled {
    /// A limit that is not per client: a recipe's own `rate`.
    pub fn recipe(rate: Rate, wait: Duration) -> Self {
        Self {
            policy: "recipe",
            rate,
            wait,
        }
    }
}

impl IntoResponse for Throttled {
    fn into_response(self) -> Response {
        // Whole seconds, rounded up: a client that waits this long gets through.
        let seconds = self.wait.as_secs() + u64::from(self.wait.subsec_nanos() > 0);
        let seconds = seconds.max(1);
        let mut response = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many requests ({} allowed); try again in {seconds} s", self.rate),
        )
        .into_response();
        let headers = response.headers_mut();
        let policy = format!(
            "\"{}\";q={};w={}",
            self.policy,
            self.rate.count,
            self.rate.window_seconds()
        );
        let remaining = format!("\"{}\";r=0;t={seconds}", self.policy);
        for (name, value) in [
            (header::RETRY_AFTER.as_str(), seconds.to_string()),
            ("ratelimit-policy", policy),
            ("ratelimit", remaining),
        ] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(per_ip: &str, failures: &str) -> HookLimitSettings {
        HookLimitSettings {
            per_ip: parse_rate_setting(per_ip).expect("rate"),
            failures_per_ip: parse_rate_setting(failures).expect("rate"),
            trust_forwarded_for: false,
        }
    }

    #[tokio::test]
    async fn a_burst_within_the_budget_passes_and_the_next_is_refused() {
        let limits = HookLimits::start(settings("5/m", "off"));
        let client: IpAddr = "192.0.2.1".parse().expect("address");
        for _ in 0..5 {
            assert!(limits.admit(client).is_ok());
        }
        let refused = limits.admit(client).expect_err("the sixth");
        assert_eq!(refused.policy, "hooks");
        assert!(refused.wait > Duration::from_secs(5), "{refused:?}");
        // Another client has its own budget.
        assert!(limits.admit("192.0.2.2".parse().expect("address")).is_ok());
    }

    #[tokio::test]
    async fn failures_lock_the_client_out_of_that_scope_only_until_they_refill() {
        let limits = HookLimits::start(settings("off", "2/m"));
        let client: IpAddr = "198.51.100.7".parse().expect("address");
        let attacked = Scope::Recipe("attacked".into());
        assert!(limits.failed(client, &attacked).is_ok());
        assert!(limits.failed(client, &attacked).is_ok());
        assert!(limits.failed(client, &attacked).is_err());
        let refused = limits.locked(client, &attacked).expect_err("locked");
        assert_eq!(refused.policy, "hooks-failures");
        assert!(
            limits.admit(client).is_ok(),
            "the general budget is not spent by failures"
        );
        assert!(limits.locked(client, &Scope::Recipe("other".into())).is_ok());
        assert!(limits.locked(client, &Scope::UnknownPaths).is_ok());
        assert!(
            limits
                .locked("198.51.100.8".parse().expect("address"), &attacked)
                .is_ok()
        );
    }

    #[test]
    fn forwarded_for_counts_only_when_trusted() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9, 10.0.0.2"));
        let peer: SocketAddr = "127.0.0.1:5000".parse().expect("address");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let untrusted = HookLimits::start(HookLimitSettings::default());
            assert_eq!(untrusted.client(peer, &headers), peer.ip());
            let trusted = HookLimits::start(HookLimitSettings {
                trust_forwarded_for: true,
                ..HookLimitSettings::default()
            });
            assert_eq!(
                trusted.client(peer, &headers),
                "10.0.0.2".parse::<IpAddr>().expect("address")
            );
        });
    }
}
