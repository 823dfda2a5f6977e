//! Actions execute one rendered step and classify what happened. They know
//! nothing of recipes' syntax or of the store.

pub mod destination;
pub mod http;
pub mod log;
mod retry_after;
mod sender;

use std::time::Duration;

pub use destination::{DestinationPolicy, Destinations};
pub use http::{HttpRequest, HttpResponse, JsonBody, RequestBody};
pub use retry_after::parse_retry_after;

/// How one attempt ended.
#[derive(Debug)]
pub enum Outcome {
    /// The step did its job; `response` is there for `http`.
    Succeeded { response: Option<HttpResponse> },
    /// The attempt failed; `response` is there when an answer came.
    Failed {
        response: Option<HttpResponse>,
        error: String,
        /// Whether another attempt may succeed: connection errors, timeouts, 429, 5xx.
        retryable: bool,
        /// What the destination asked for with `Retry-After` (on 429 and 503).
        retry_after: Option<Duration>,
    },
}

impl Outcome {
    /// A failure that no retry will mend (a bad URL, a template error).
    pub fn fatal(error: String) -> Self {
        Outcome::Failed {
            response: None,
            error,
            retryable: false,
            retry_after: None,
        }
    }
}
