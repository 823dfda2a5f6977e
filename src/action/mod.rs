//! Actions execute one rendered step and classify what happened. They know
//! nothing of recipes' syntax or of the store.

pub mod destination;
mod error;
pub mod http;
mod retry_after;
mod sender;

pub use destination::{DestinationPolicy, Destinations};
pub use error::{AttemptError, Refused};
pub use http::{HttpRequest, HttpResponse, JsonBody, RequestBody};
pub use retry_after::parse_retry_after;

/// How one attempt ended.
#[derive(Debug)]
pub enum Outcome {
    /// The step did its job; `response` is there for `http`.
    Succeeded { response: Option<HttpResponse> },
    /// The attempt failed; `response` is there when an answer came. The error
    /// says whether another attempt may succeed.
    Failed {
        response: Option<HttpResponse>,
        error: AttemptError,
    },
}

impl Outcome {
    /// A failure without an answer.
    pub fn failed(error: impl Into<AttemptError>) -> Self {
        Outcome::Failed {
            response: None,
            error: error.into(),
        }
    }
}
