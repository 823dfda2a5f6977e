//! What a user writes: the serde types of a recipe file, key for key as
//! `docs/recipes.md` describes them.
//!
//! These types only say what is *syntactically* allowed. `validate` turns
//! them into the runtime [`super::Recipe`], checking what types cannot express
//! (ids, templates, exactly one action per step) with file:line:col positions.

use indexmap::IndexMap;
use serde::Deserialize;
use serde_saphyr::Spanned;

/// One recipe file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipeFile {
    /// Recipe id, `[a-z0-9][a-z0-9_-]*`. Default: the file stem.
    pub id: Option<Spanned<String>>,
    /// Free text for people reading the recipe list.
    pub description: Option<Spanned<String>>,
    /// `false` loads and validates the recipe but never fires it.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// Exactly one trigger.
    pub trigger: Spanned<TriggerConfig>,
    /// Template; the run goes on only if it renders truthy, else it is `skipped`.
    pub when: Option<Spanned<String>>,
    /// The steps, run in order.
    pub steps: Spanned<Vec<Spanned<StepConfig>>>,
    /// Most runs of this recipe in flight at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
}

fn default_enabled() -> bool {
    true
}

fn default_concurrency() -> u32 {
    super::DEFAULT_CONCURRENCY
}

/// Exactly one of the trigger kinds, written as `trigger: {webhook: …}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TriggerConfig {
    Webhook(Box<WebhookConfig>),
    Schedule(Box<ScheduleConfig>),
    Poll(Box<PollConfig>),
}

/// `trigger: {webhook: …}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `POST /hooks/{path}`. Default: the recipe id.
    pub path: Option<Spanned<String>>,
    /// Template over the request giving a delivery's identity: a second delivery
    /// with the same key starts no run and is answered with the first run's id.
    pub dedup: Option<Spanned<String>>,
    /// `accepted` (default): answer 202 once stored. `wait`: answer with the last
    /// step's status and body when the run ends.
    pub respond: Option<Spanned<String>>,
    /// With `respond: wait`, how long to wait before answering 504. Default 30s.
    pub timeout: Option<Spanned<String>>,
    /// How the sender proves who it is.
    pub verify: Option<Spanned<VerifyConfig>>,
    /// Most requests to this hook, from all senders together: `100/m`.
    pub rate: Option<Spanned<String>>,
}

/// `verify:` of a webhook: a `scheme` and the keys that scheme takes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyConfig {
    /// `github`, `stripe`, `slack`, `shopify`, `standard`, `hmac`, `token`, `basic`.
    pub scheme: Spanned<String>,
    /// The shared secret (every scheme but `basic`).
    pub secret: Option<Spanned<String>>,
    /// `hmac` and `token`: the header that carries the signature or token.
    pub header: Option<Spanned<String>>,
    /// `hmac`: `sha1`, `sha256` (default) or `sha512`.
    pub algorithm: Option<Spanned<String>>,
    /// `hmac`: `hex` (default) or `base64`.
    pub encoding: Option<Spanned<String>>,
    /// `hmac`: text before the MAC in the header, e.g. `sha256=`.
    pub prefix: Option<Spanned<String>>,
    /// `basic`.
    pub username: Option<Spanned<String>>,
    /// `basic`.
    pub password: Option<Spanned<String>>,
    /// `stripe`, `slack`, `standard`: how far the timestamp may be from now. Default 5m.
    pub tolerance: Option<Spanned<String>>,
}

/// `trigger: {schedule: …}`: exactly one of `cron` and `every`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// 5 fields, or 6 with seconds first.
    pub cron: Option<Spanned<String>>,
    /// IANA name for `cron`. Default `UTC`.
    pub timezone: Option<Spanned<String>>,
    /// A duration: `30s`, `15m`, `1h`.
    pub every: Option<Spanned<String>>,
    /// `skip` (default) or `once`: fire times that passed while the daemon was down.
    pub missed: Option<Spanned<String>>,
}

/// `trigger: {poll: …}`: an HTTP source fetched on `every` or `cron`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollConfig {
    pub cron: Option<Spanned<String>>,
    pub timezone: Option<Spanned<String>>,
    pub every: Option<Spanned<String>>,
    /// The request, as in an http step.
    pub http: Spanned<HttpConfig>,
    /// Limit for one poll. Default 30s.
    pub timeout: Option<Spanned<String>>,
    /// RFC 9535 JSONPath selecting the items, e.g. `$.features[*]`.
    pub items: Option<Spanned<String>>,
    /// Template over `item` giving its identity. Default: a hash of the item.
    pub key: Option<Spanned<String>>,
    /// `skip` (default): the first poll only remembers the items; `emit`: runs them.
    pub first: Option<Spanned<String>>,
}

/// One step. Exactly one action key (`http` or `log`) must be present; serde
/// cannot say "exactly one of" without `flatten`, which defeats
/// `deny_unknown_fields`, so validation checks it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepConfig {
    /// `[a-z][a-z0-9_]*`, unique in the recipe. Default: `step1`, `step2`, …
    pub id: Option<Spanned<String>>,
    /// Template; the step is `skipped` when it renders falsy.
    pub when: Option<Spanned<String>>,
    /// Call an HTTP API.
    pub http: Option<HttpConfig>,
    /// Record a rendered line in the run.
    pub log: Option<Spanned<String>>,
    /// Per-attempt time limit, e.g. `30s`, `2m`. Default 30s.
    pub timeout: Option<Spanned<String>>,
    /// Retries of a failed attempt.
    pub retry: Option<Spanned<RetryConfig>>,
}

/// `retry:` of a step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts in all, the first included. Default 1: no retry.
    pub attempts: Option<u32>,
    /// The first delay; each next one doubles (with full jitter). Default 1s.
    pub backoff: Option<Spanned<String>>,
    /// The longest delay, also the cap on a destination's `Retry-After`. Default 5m.
    pub max: Option<Spanned<String>>,
}

/// `http:` of a step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Default `GET`, or `POST` when a body is given.
    pub method: Option<Spanned<String>>,
    /// Template.
    pub url: Spanned<String>,
    /// Query parameters, in the order written; values are templates.
    #[serde(default)]
    pub query: IndexMap<String, Spanned<String>>,
    /// Request headers; values are templates.
    #[serde(default)]
    pub headers: IndexMap<String, Spanned<String>>,
    /// A JSON body: any YAML tree, every string leaf a template.
    pub json: Option<Spanned<serde_json::Value>>,
    /// A form body (sent urlencoded): values are templates.
    pub form: Option<Spanned<IndexMap<String, Spanned<String>>>>,
    /// A text body: one template.
    pub body: Option<Spanned<String>>,
    /// Credentials, sent as the `Authorization` header (and never stored).
    pub auth: Option<Spanned<AuthConfig>>,
    /// Non-2xx statuses that still count as success, e.g. `[200, 404]`.
    #[serde(default)]
    pub accept: Vec<u16>,
}

/// `auth:` of an http step: exactly one scheme.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthConfig {
    /// `Authorization: Bearer …`; a template.
    Bearer(Spanned<String>),
    /// `Authorization: Basic …`.
    Basic(BasicAuthConfig),
}

/// `auth: {basic: {username, password}}`; both are templates.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthConfig {
    pub username: Spanned<String>,
    pub password: Spanned<String>,
}
