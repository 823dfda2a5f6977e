//! The `http` step: its request before rendering, the rendering (`render.rs`),
//! and what a run's record keeps of the request and its answer (`record.rs`).

mod attempt;
pub mod check;
pub mod config;
pub mod record;
pub mod render;

use crate::template::{Template, ValueTemplate};

/// An `http` step before rendering.
#[derive(Debug)]
pub struct HttpTemplate {
    pub method: reqwest::Method,
    pub url: Template,
    pub query: Vec<(String, Template)>,
    pub headers: Vec<(String, Template)>,
    pub body: Option<BodyTemplate>,
    pub auth: Option<AuthTemplate>,
    /// Non-2xx statuses that count as success.
    pub accept: Vec<u16>,
    /// A condition over the step's answer (`response`) that fails the attempt.
    pub fail_when: Option<Template>,
    /// Whether rendering the request again over the same context gives the
    /// same request (see [`HttpTemplate::volatile_free`]).
    pub renders_alike: bool,
    /// Whether a template of it loops or branches (`{{#each}}`, `{{#if}}`…):
    /// such a render can take its whole work budget, and is done off the async
    /// workers (see `Engine::render_apart`).
    pub has_blocks: bool,
    /// The URL, parsed when the recipe loads, when it is plain text (no
    /// template, no `query`): not parsed again for every request.
    pub fixed_url: Option<reqwest::Url>,
}

impl HttpTemplate {
    /// The URL when it renders to the same text every time and parses.
    pub fn parse_plain_url(&self) -> Option<reqwest::Url> {
        let source = self.url.source();
        if source.contains("{{") || !self.query.is_empty() {
            return None;
        }
        reqwest::Url::parse(source).ok()
    }

    /// Whether none of its templates calls `now` or `uuid`, so that rendering it
    /// again over the same context gives the same request. Credentials do not
    /// count: they are rendered for every attempt and never stored.
    pub fn volatile_free(&self) -> bool {
        self.stored_templates().iter().all(|template| !template.is_volatile())
    }

    /// Whether any of its templates has a block (see [`Self::has_blocks`]).
    pub fn any_blocks(&self) -> bool {
        let auth: Vec<&Template> = match &self.auth {
            Some(AuthTemplate::Bearer(token)) => vec![token],
            Some(AuthTemplate::Basic { username, password }) => vec![username, password],
            None => Vec::new(),
        };
        self.stored_templates()
            .into_iter()
            .chain(auth)
            .any(Template::has_blocks)
    }

    /// Every template but the credentials'.
    fn stored_templates(&self) -> Vec<&Template> {
        let body: Vec<&Template> = match &self.body {
            Some(BodyTemplate::Json(tree)) => tree.templates().into_iter().map(|(_, template)| template).collect(),
            Some(BodyTemplate::Form(fields)) => fields.iter().map(|(_, template)| template).collect(),
            Some(BodyTemplate::Text(template)) => vec![template],
            None => Vec::new(),
        };
        std::iter::once(&self.url)
            .chain(self.query.iter().map(|(_, template)| template))
            .chain(self.headers.iter().map(|(_, template)| template))
            .chain(body)
            .collect()
    }
}

/// At most one body per request.
#[derive(Debug)]
pub enum BodyTemplate {
    Json(ValueTemplate),
    Form(Vec<(String, Template)>),
    Text(Template),
}

/// Credentials of an http step.
#[derive(Debug)]
pub enum AuthTemplate {
    Bearer(Template),
    Basic { username: Template, password: Template },
}
