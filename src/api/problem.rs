//! RFC 9457 problem details: the one place that knows how errors look on the wire.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Seconds a sender waits before trying a write the storage refused.
const STORE_RETRY_AFTER: u32 = 10;

/// RFC 9457 problem details, as every error answer carries them.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ProblemDocument {
    /// `about:blank`: the status says what kind of problem it is.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// What was wrong, and where.
    pub detail: String,
}

/// An error answer: `application/problem+json` with `type`, `title`, `status`,
/// `detail`.
#[derive(Debug)]
pub struct Problem {
    status: StatusCode,
    detail: String,
    /// Seconds for a `Retry-After` header.
    retry_after: Option<u32>,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// `503` with `Retry-After`.
    pub fn unavailable(detail: impl Into<String>, retry_after_seconds: u32) -> Self {
        Self {
            retry_after: Some(retry_after_seconds),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, detail)
        }
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    /// A failure of ours; the detail is logged, the answer says only that it happened.
    /// A store error: `503` with `Retry-After` when the storage cannot take
    /// writes for now (a full disk, an I/O error), which senders retry; `500`
    /// otherwise.
    pub fn store_error(error: &crate::store::Error) -> Self {
        if error.is_unavailable() {
            Self::unavailable(
                format!("{error}; nothing was stored, try again later"),
                STORE_RETRY_AFTER,
            )
        } else {
            Self::internal(error)
        }
    }

    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "internal error while answering a request");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the server could not complete the request; see its log",
        )
    }
}

/// A store error answers for itself: `503` with `Retry-After` when the storage
/// refuses for now (a full disk, a shutdown), `500` otherwise.
impl From<crate::store::Error> for Problem {
    fn from(error: crate::store::Error) -> Self {
        Self::store_error(&error)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error");
        let body = ProblemDocument {
            kind: "about:blank".to_owned(),
            title: title.to_owned(),
            status: self.status.as_u16(),
            detail: self.detail,
        };
        let text = serde_json::to_string(&body).unwrap_or_default();
        let mut response = (self.status, text).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<Problem> for Response {
    fn from(problem: Problem) -> Self {
        problem.into_response()
    }
}
