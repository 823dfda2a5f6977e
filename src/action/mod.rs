//! Actions execute one rendered step and classify what happened. They know
//! nothing of recipes' syntax or of the store.

pub mod http;
pub mod log;

pub use http::{HttpRequest, HttpResponse, RequestBody};

/// How one attempt ended.
#[derive(Debug)]
pub enum Outcome {
    /// The step did its job; `response` is there for `http`.
    Succeeded { response: Option<HttpResponse> },
    /// The attempt failed; `response` is there when an answer came.
    Failed {
        response: Option<HttpResponse>,
        error: String,
    },
}
