//! What a user writes under `graphql:`.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::environment::{PlainText, TemplateText, TemplateTree};
use crate::step::http::config::AuthConfig;

/// `graphql:` of a step: one operation, sent as `POST {query, variables}`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GraphqlConfig {
    /// The endpoint. Template.
    pub url: TemplateText,
    /// The operation, in GraphQL. Not a template: data goes in `variables`.
    pub query: PlainText,
    /// The operation's variables: any YAML tree, every string leaf a template
    /// (a leaf that is one `{{…}}` keeps its type, as in an http step's `json`).
    pub variables: Option<TemplateTree>,
    /// Which operation of `query` to run, when it holds several.
    pub operation: Option<PlainText>,
    /// Request headers; values are templates.
    #[serde(default)]
    pub headers: IndexMap<String, TemplateText>,
    /// Credentials, as in an http step.
    #[schemars(with = "Option<AuthConfig>")]
    pub auth: Option<Spanned<AuthConfig>>,
    /// Template over this step's answer (`response.body` is its `data`):
    /// truthy fails the attempt, as in an http step.
    pub fail_when: Option<TemplateText>,
}
