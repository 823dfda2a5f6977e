//! Bearer tokens for the API: `Authorization: Bearer TOKEN`, checked against
//! `FERRY_API_TOKENS` (several, for rotation) and `FERRY_API_READ_TOKENS` (which
//! may read but not start or replay runs). Only SHA-256 digests of the tokens
//! are kept, and they are compared in constant time. Tokens are never read from
//! the query string: URLs end up in logs and browser history.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::Problem;

/// The accepted tokens, as digests.
#[derive(Clone)]
pub struct ApiTokens {
    full: Vec<[u8; 32]>,
    read_only: Vec<[u8; 32]>,
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Everything.
    Full,
    /// `GET` and `HEAD` only.
    Read,
}

impl std::fmt::Debug for ApiTokens {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "ApiTokens({} tokens, {} read-only)",
            self.full.len(),
            self.read_only.len()
        )
    }
}

impl ApiTokens {
    /// Reads the value of `FERRY_API_TOKENS`: `None` when unset (the API is open),
    /// an error when set but holding no token (never an open API by accident).
    pub fn from_setting(value: Option<&str>) -> Result<Option<Self>, String> {
        Self::from_settings(value, None)
    }

    /// Reads `FERRY_API_TOKENS` and `FERRY_API_READ_TOKENS`: `None` when both are
    /// unset (the API is open); an error when one is set but holds no token.
    pub fn from_settings(full: Option<&str>, read_only: Option<&str>) -> Result<Option<Self>, String> {
        if full.is_none() && read_only.is_none() {
            return Ok(None);
        }
        let parse = |name: &str, value: Option<&str>| -> Result<Vec<[u8; 32]>, String> {
            let Some(value) = value else {
                return Ok(Vec::new());
            };
            let digests: Vec<[u8; 32]> = value
                .split(',')
                .map(str::trim)
                .filter(|token| !token.is_empty())
                .map(digest)
                .collect();
            if digests.is_empty() {
                return Err(format!(
                    "{name} is set but holds no token; unset it, or give comma-separated tokens"
                ));
            }
            Ok(digests)
        };
        Ok(Some(Self {
            full: parse("FERRY_API_TOKENS", full)?,
            read_only: parse("FERRY_API_READ_TOKENS", read_only)?,
        }))
    }

    /// Whether `token` is one of the accepted tokens (of either kind).
    pub fn accepts(&self, token: &str) -> bool {
        self.access(token).is_some()
    }

    /// What `token` may do, if it is accepted. Every digest is compared, so the
    /// time taken does not tell which one matched or how much of it.
    pub fn access(&self, token: &str) -> Option<Access> {
        let presented = digest(token);
        let matches = |digests: &[[u8; 32]]| -> bool {
            digests
                .iter()
                .fold(subtle::Choice::from(0), |found, known| found | known.ct_eq(&presented))
                .into()
        };
        let (full, read) = (matches(&self.full), matches(&self.read_only));
        if full {
            Some(Access::Full)
        } else if read {
            Some(Access::Read)
        } else {
            None
        }
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Middleware for the routes that need a token.
pub(super) async fn require_token(State(tokens): State<Option<ApiTokens>>, request: Request, next: Next) -> Response {
    let Some(tokens) = tokens else {
        return next.run(request).await;
    };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")))
        .map(str::trim);
    let reads = matches!(*request.method(), axum::http::Method::GET | axum::http::Method::HEAD);
    match presented.map(|token| tokens.access(token)) {
        Some(Some(Access::Full)) => next.run(request).await,
        Some(Some(Access::Read)) if reads => next.run(request).await,
        Some(Some(Access::Read)) => Problem::new(
            axum::http::StatusCode::FORBIDDEN,
            "this token may only read (FERRY_API_READ_TOKENS); starting or replaying runs needs one of FERRY_API_TOKENS",
        )
        .into_response(),
        Some(None) => unauthorized("the bearer token is not valid"),
        None => unauthorized("this route needs `Authorization: Bearer TOKEN`"),
    }
}

fn unauthorized(detail: &str) -> Response {
    let mut response = Problem::new(axum::http::StatusCode::UNAUTHORIZED, detail).into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_is_open_empty_is_an_error_and_every_token_is_accepted() {
        assert!(ApiTokens::from_setting(None).expect("unset is fine").is_none());
        assert!(ApiTokens::from_setting(Some("")).is_err());
        assert!(ApiTokens::from_setting(Some(" , ,")).is_err());
        let tokens = ApiTokens::from_setting(Some("old-token, new-token"))
            .expect("valid")
            .expect("some");
        assert!(tokens.accepts("old-token"));
        assert!(tokens.accepts("new-token"));
        assert!(!tokens.accepts("new-toke"));
        assert!(!tokens.accepts(""));
    }

    #[test]
    fn read_only_tokens_read() {
        let tokens = ApiTokens::from_settings(Some("writer"), Some("reader-1,reader-2"))
            .expect("valid")
            .expect("some");
        assert_eq!(tokens.access("writer"), Some(Access::Full));
        assert_eq!(tokens.access("reader-2"), Some(Access::Read));
        assert_eq!(tokens.access("reader"), None);
        let readers_only = ApiTokens::from_settings(None, Some("reader"))
            .expect("valid")
            .expect("some");
        assert_eq!(readers_only.access("reader"), Some(Access::Read));
        assert!(ApiTokens::from_settings(None, Some(" ")).is_err());
    }
}
