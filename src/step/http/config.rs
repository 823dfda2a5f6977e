//! What a user writes under `http:` (a step's, or a poll's request).

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

/// `http:` of a step.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Default `GET`, or `POST` when a body is given.
    #[schemars(with = "Option<String>")]
    pub method: Option<Spanned<String>>,
    /// Template.
    #[schemars(with = "String")]
    pub url: Spanned<String>,
    /// Query parameters, in the order written; values are templates.
    #[serde(default)]
    #[schemars(with = "IndexMap<String, String>")]
    pub query: IndexMap<String, Spanned<String>>,
    /// Request headers; values are templates.
    #[serde(default)]
    #[schemars(with = "IndexMap<String, String>")]
    pub headers: IndexMap<String, Spanned<String>>,
    /// A JSON body: any YAML tree, every string leaf a template.
    #[schemars(with = "Option<serde_json::Value>")]
    pub json: Option<Spanned<serde_json::Value>>,
    /// A form body (sent urlencoded): values are templates.
    #[schemars(with = "Option<IndexMap<String, String>>")]
    pub form: Option<Spanned<IndexMap<String, Spanned<String>>>>,
    /// A text body: one template.
    #[schemars(with = "Option<String>")]
    pub body: Option<Spanned<String>>,
    /// Credentials, sent as the `Authorization` header (and never stored).
    #[schemars(with = "Option<AuthConfig>")]
    pub auth: Option<Spanned<AuthConfig>>,
    /// Non-2xx statuses that still count as success, e.g. `[200, 404]`.
    #[serde(default)]
    pub accept: Vec<u16>,
}

/// `auth:` of an http step: exactly one scheme.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthConfig {
    /// `Authorization: Bearer …`; a template.
    Bearer(#[schemars(with = "String")] Spanned<String>),
    /// `Authorization: Basic …`.
    Basic(BasicAuthConfig),
}

/// `auth: {basic: {username, password}}`; both are templates.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthConfig {
    #[schemars(with = "String")]
    pub username: Spanned<String>,
    #[schemars(with = "String")]
    pub password: Spanned<String>,
}
