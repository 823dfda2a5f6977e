//! The kinds of step: what each is once its recipe loaded, how it renders and
//! what its record keeps, one module per kind. [`Kind`] lists them; a new kind
//! is a module here and a variant there.

pub mod http;
pub mod log;

use crate::template::Template;

/// What a step does: one of the kinds.
#[derive(Debug)]
pub enum Kind {
    /// Call an HTTP API.
    Http(Box<http::HttpTemplate>),
    /// Record a rendered line in the run.
    Log(Template),
}
