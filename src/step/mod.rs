//! The kinds of step: what each is once its recipe loaded, how it renders and
//! what its record keeps, one module per kind. [`Kind`] lists them; a new kind
//! is a module here and a variant there.

pub mod http;
pub mod log;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::template::Template;

/// What a step does: one of the kinds.
#[derive(Debug)]
pub enum Kind {
    /// Call an HTTP API.
    Http(Box<http::HttpTemplate>),
    /// Record a rendered line in the run.
    Log(Template),
}

impl Kind {
    pub fn name(&self) -> KindName {
        match self {
            Kind::Http(_) => KindName::Http,
            Kind::Log(_) => KindName::Log,
        }
    }
}

/// A step's kind as runs record it: the run document says it for each step, so
/// that its attempts are read as what they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KindName {
    Http,
    Log,
}

/// How an attempt reads in a run's history (the status page, `ferry runs show`).
pub struct AttemptView<'a> {
    /// `POST https://…`, or `log <the line>`.
    pub line: String,
    /// The request body sent, if the kind sends one.
    pub body: Option<&'a Value>,
}

impl KindName {
    pub const ALL: [KindName; 2] = [KindName::Http, KindName::Log];

    pub fn as_str(self) -> &'static str {
        match self {
            KindName::Http => "http",
            KindName::Log => "log",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    /// How an attempt's recorded request reads.
    pub fn view(self, request: &Value) -> AttemptView<'_> {
        match self {
            KindName::Http => AttemptView {
                line: format!(
                    "{} {}",
                    request["method"].as_str().unwrap_or_default(),
                    request["url"].as_str().unwrap_or_default()
                ),
                body: Some(&request["body"]),
            },
            KindName::Log => AttemptView {
                line: format!("log {}", request["log"].as_str().unwrap_or_default()),
                body: None,
            },
        }
    }
}
