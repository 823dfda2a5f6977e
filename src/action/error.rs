//! Why an attempt failed, typed: each kind says itself whether another attempt
//! may succeed, rather than the caller reading it from the message.

use std::net::IpAddr;
use std::time::Duration;

/// Why one attempt of a step failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AttemptError {
    /// The request could not be built: a bad URL, scheme or header. Sending it
    /// again builds it the same way.
    #[error("{0}")]
    Build(String),
    /// The destination policy refuses the address; it stays refused.
    #[error(transparent)]
    Refused(#[from] Refused),
    /// The whole answer did not arrive in time.
    #[error("no answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// The connection could not be made or broke (with its causes, which hold
    /// the useful part: "connection refused").
    #[error("{0}")]
    Transport(String),
    /// The answer was larger than the daemon reads.
    #[error("the answer of {method} {url} is larger than {limit_mib} MiB")]
    TooLarge {
        method: String,
        url: String,
        limit_mib: usize,
    },
    /// An answer whose status is not a success (nor `accept`ed).
    #[error("{message}")]
    Status {
        status: u16,
        /// `HTTP 503 Service Unavailable from POST http://…`.
        message: String,
        /// What the destination asked for with `Retry-After` (on 429 and 503).
        retry_after: Option<Duration>,
    },
    /// The step itself could not run: a template that failed, a budget spent.
    #[error("{0}")]
    Step(String),
    /// A success status whose answer says the request failed (a GraphQL
    /// `errors` list): the destination understood the request and refused it.
    #[error("{0}")]
    Answer(String),
    /// The step's `fail_when` held for the answer. Not retried unless the
    /// step's `retry.fail_when` says so (the run loop decides).
    #[error("{0}")]
    Condition(String),
}

impl AttemptError {
    /// Whether another attempt may succeed: a timeout, a broken connection, a
    /// 429 or a 5xx. A request the destination understood and refused, one that
    /// cannot be built, or an address the policy refuses will fail again.
    pub fn retryable(&self) -> bool {
        match self {
            AttemptError::Timeout(_) | AttemptError::Transport(_) => true,
            AttemptError::Status { status, .. } => *status == 429 || *status >= 500,
            AttemptError::Build(_)
            | AttemptError::Refused(_)
            | AttemptError::TooLarge { .. }
            | AttemptError::Step(_)
            | AttemptError::Answer(_)
            | AttemptError::Condition(_) => false,
        }
    }

    /// How long the destination asked to wait before the next attempt.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            AttemptError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// An address the destination policy (`FERRY_DENY_PRIVATE_DESTINATIONS`)
/// refuses; also what the policy's resolver fails with, so that it is found
/// again among a connection error's causes.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}destination {address} is not a public address (FERRY_DENY_PRIVATE_DESTINATIONS)", resolved_from.as_ref().map(|host| format!("`{host}` resolves to {address}: ")).unwrap_or_default())]
pub struct Refused {
    pub address: IpAddr,
    /// The host name that resolved to it, when the URL held a name.
    pub resolved_from: Option<String>,
}

/// An error with its causes, which hold the useful part ("connection refused").
pub(super) fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_says_whether_a_retry_may_mend_it() {
        let status = |status| AttemptError::Status {
            status,
            message: format!("HTTP {status}"),
            retry_after: None,
        };
        assert!(status(503).retryable());
        assert!(status(429).retryable());
        assert!(!status(404).retryable());
        assert!(!status(400).retryable());
        assert!(AttemptError::Timeout(Duration::from_secs(1)).retryable());
        assert!(AttemptError::Transport("connection refused".into()).retryable());
        let refused = AttemptError::from(Refused {
            address: "10.0.0.1".parse().expect("an address"),
            resolved_from: Some("internal.example".into()),
        });
        assert!(!refused.retryable());
        assert_eq!(
            refused.to_string(),
            "`internal.example` resolves to 10.0.0.1: destination 10.0.0.1 is not a public address (FERRY_DENY_PRIVATE_DESTINATIONS)"
        );
        assert!(!AttemptError::Build("bad".into()).retryable());
        assert!(!AttemptError::Step("template".into()).retryable());
        assert!(!AttemptError::Answer("not found".into()).retryable());
    }
}
