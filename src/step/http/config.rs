//! What a user writes under `http:` (a step's, or a poll's request).

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::environment::{PlainText, TemplateText, TemplateTree};

/// `http:` of a step.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Default `GET`, or `POST` when a body is given.
    pub method: Option<PlainText>,
    /// Template.
    pub url: TemplateText,
    /// Query parameters, in the order written; values are templates.
    #[serde(default)]
    pub query: IndexMap<String, TemplateText>,
    /// Request headers; values are templates.
    #[serde(default)]
    pub headers: IndexMap<String, TemplateText>,
    /// A JSON body: any YAML tree, every string leaf a template.
    pub json: Option<TemplateTree>,
    /// A form body (sent urlencoded): values are templates.
    #[schemars(with = "Option<IndexMap<String, String>>")]
    pub form: Option<Spanned<IndexMap<String, TemplateText>>>,
    /// A text body: one template.
    pub body: Option<TemplateText>,
    /// Credentials, sent as the `Authorization` header (and never stored).
    #[schemars(with = "Option<AuthConfig>")]
    pub auth: Option<Spanned<AuthConfig>>,
    /// Non-2xx statuses that still count as success, e.g. `[200, 404]`.
    #[serde(default)]
    pub accept: Vec<u16>,
    /// Template over this step's answer (`response.status`, `response.headers`,
    /// `response.body`): truthy fails the attempt, e.g. `{{not response.body.ok}}`.
    pub fail_when: Option<TemplateText>,
}

/// `auth:` of an http step: exactly one scheme.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthConfig {
    /// `Authorization: Bearer …`; a template.
    Bearer(TemplateText),
    /// `Authorization: Basic …`.
    Basic(BasicAuthConfig),
}

/// `auth: {basic: {username, password}}`; both are templates.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthConfig {
    pub username: TemplateText,
    pub password: TemplateText,
}
