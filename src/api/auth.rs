//! Bearer tokens for the API: `Authorization: Bearer TOKEN`, checked against
//! `FERRY_API_TOKENS` (several, for rotation). Only SHA-256 digests of the tokens
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
    digests: Vec<[u8; 32]>,
}

impl std::fmt::Debug for ApiTokens {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "ApiTokens({} tokens)", self.digests.len())
    }
}

impl ApiTokens {
    /// Reads the value of `FERRY_API_TOKENS`: `None` when unset (the API is open),
    /// an error when set but holding no token (never an open API by accident).
    pub fn from_setting(value: Option<&str>) -> Result<Option<Self>, String> {
        let Some(value) = value else {
            return Ok(None);
        };
        let digests: Vec<[u8; 32]> = value
            .split(',')
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .map(digest)
            .collect();
        if digests.is_empty() {
            return Err(
                "FERRY_API_TOKENS is set but holds no token; unset it for an open API, or give comma-separated tokens"
                    .to_owned(),
            );
        }
        Ok(Some(Self { digests }))
    }

    /// Whether `token` is one of the accepted tokens. Every digest is compared,
    /// so the time taken does not tell which one matched or how much of it.
    pub fn accepts(&self, token: &str) -> bool {
        let presented = digest(token);
        self.digests
            .iter()
            .fold(subtle::Choice::from(0), |found, known| found | known.ct_eq(&presented))
            .into()
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
    match presented {
        Some(token) if tokens.accepts(token) => next.run(request).await,
        Some(_) => unauthorized("the bearer token is not valid"),
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
}
