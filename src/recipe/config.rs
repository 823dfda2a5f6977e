//! What a user writes: the serde types of a recipe file, key for key as
//! `docs/recipes.md` describes them.
//!
//! These types only say what is *syntactically* allowed. `validate` turns
//! them into the runtime [`super::Recipe`], checking what types cannot express
//! (ids, templates, exactly one action per step) with file:line:col positions.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

pub use crate::step::http::config::{AuthConfig, BasicAuthConfig, HttpConfig};

/// One recipe file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecipeFile {
    /// Recipe id, `[a-z0-9][a-z0-9_-]*`. Default: the file stem.
    #[schemars(with = "Option<String>")]
    pub id: Option<Spanned<String>>,
    /// Free text for people reading the recipe list.
    #[schemars(with = "Option<String>")]
    pub description: Option<Spanned<String>>,
    /// `false` loads and validates the recipe but never fires it.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// Exactly one trigger.
    #[schemars(with = "TriggerConfig")]
    pub trigger: Spanned<TriggerConfig>,
    /// Template; the run goes on only if it renders truthy, else it is `skipped`.
    #[schemars(with = "Option<String>")]
    pub when: Option<Spanned<String>>,
    /// The steps, run in order.
    #[schemars(with = "Vec<StepConfig>")]
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
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TriggerConfig {
    Webhook(Box<WebhookConfig>),
    Schedule(Box<ScheduleConfig>),
    Poll(Box<PollConfig>),
}

/// `trigger: {webhook: …}`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `POST /hooks/{path}`. Default: the recipe id.
    #[schemars(with = "Option<String>")]
    pub path: Option<Spanned<String>>,
    /// Template over the request giving a delivery's identity: a second delivery
    /// with the same key starts no run and is answered with the first run's id.
    #[schemars(with = "Option<String>")]
    pub dedup: Option<Spanned<String>>,
    /// `accepted` (default): answer 202 once stored. `wait`: answer with the last
    /// step's status and body when the run ends.
    #[schemars(with = "Option<String>")]
    pub respond: Option<Spanned<String>>,
    /// With `respond: wait`, how long to wait before answering 504. Default 30s.
    #[schemars(with = "Option<String>")]
    pub timeout: Option<Spanned<String>>,
    /// How the sender proves who it is.
    #[schemars(with = "Option<VerifyConfig>")]
    pub verify: Option<Spanned<VerifyConfig>>,
    /// Most requests to this hook, from all senders together: `100/m`.
    #[schemars(with = "Option<String>")]
    pub rate: Option<Spanned<String>>,
}

/// `verify:` of a webhook: a `scheme` and the keys that scheme takes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyConfig {
    /// `github`, `stripe`, `slack`, `shopify`, `standard`, `hmac`, `token`, `basic`.
    #[schemars(with = "String")]
    pub scheme: Spanned<String>,
    /// The shared secret (every scheme but `basic`).
    #[schemars(with = "Option<String>")]
    pub secret: Option<Spanned<String>>,
    /// `hmac` and `token`: the header that carries the signature or token.
    #[schemars(with = "Option<String>")]
    pub header: Option<Spanned<String>>,
    /// `hmac`: `sha1`, `sha256` (default) or `sha512`.
    #[schemars(with = "Option<String>")]
    pub algorithm: Option<Spanned<String>>,
    /// `hmac`: `hex` (default) or `base64`.
    #[schemars(with = "Option<String>")]
    pub encoding: Option<Spanned<String>>,
    /// `hmac`: text before the MAC in the header, e.g. `sha256=`.
    #[schemars(with = "Option<String>")]
    pub prefix: Option<Spanned<String>>,
    /// `basic`.
    #[schemars(with = "Option<String>")]
    pub username: Option<Spanned<String>>,
    /// `basic`.
    #[schemars(with = "Option<String>")]
    pub password: Option<Spanned<String>>,
    /// `stripe`, `slack`, `standard`: how far the timestamp may be from now. Default 5m.
    #[schemars(with = "Option<String>")]
    pub tolerance: Option<Spanned<String>>,
}

/// `trigger: {schedule: …}`: exactly one of `cron` and `every`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// 5 fields, or 6 with seconds first.
    #[schemars(with = "Option<String>")]
    pub cron: Option<Spanned<String>>,
    /// IANA name for `cron`. Default `UTC`.
    #[schemars(with = "Option<String>")]
    pub timezone: Option<Spanned<String>>,
    /// A duration: `30s`, `15m`, `1h`.
    #[schemars(with = "Option<String>")]
    pub every: Option<Spanned<String>>,
    /// `skip` (default) or `once`: fire times that passed while the daemon was down.
    #[schemars(with = "Option<String>")]
    pub missed: Option<Spanned<String>>,
}

/// `trigger: {poll: …}`: an HTTP source fetched on `every` or `cron`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PollConfig {
    #[schemars(with = "Option<String>")]
    pub cron: Option<Spanned<String>>,
    #[schemars(with = "Option<String>")]
    pub timezone: Option<Spanned<String>>,
    #[schemars(with = "Option<String>")]
    pub every: Option<Spanned<String>>,
    /// The request, as in an http step.
    #[schemars(with = "HttpConfig")]
    pub http: Spanned<HttpConfig>,
    /// Limit for one poll. Default 30s.
    #[schemars(with = "Option<String>")]
    pub timeout: Option<Spanned<String>>,
    /// RFC 9535 JSONPath selecting the items, e.g. `$.features[*]`.
    #[schemars(with = "Option<String>")]
    pub items: Option<Spanned<String>>,
    /// Template over `item` giving its identity. Default: a hash of the item.
    #[schemars(with = "Option<String>")]
    pub key: Option<Spanned<String>>,
    /// `skip` (default): the first poll only remembers the items; `emit`: runs them.
    #[schemars(with = "Option<String>")]
    pub first: Option<Spanned<String>>,
}

/// One step. Exactly one action key (`http` or `log`) must be present; serde
/// cannot say "exactly one of" without `flatten`, which defeats
/// `deny_unknown_fields`, so validation checks it.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepConfig {
    /// `[a-z][a-z0-9_]*`, unique in the recipe. Default: `step1`, `step2`, …
    #[schemars(with = "Option<String>")]
    pub id: Option<Spanned<String>>,
    /// Template; the step is `skipped` when it renders falsy.
    #[schemars(with = "Option<String>")]
    pub when: Option<Spanned<String>>,
    /// Call an HTTP API.
    pub http: Option<HttpConfig>,
    /// Record a rendered line in the run.
    #[schemars(with = "Option<String>")]
    pub log: Option<Spanned<String>>,
    /// Per-attempt time limit, e.g. `30s`, `2m`. Default 30s.
    #[schemars(with = "Option<String>")]
    pub timeout: Option<Spanned<String>>,
    /// Retries of a failed attempt.
    #[schemars(with = "Option<RetryConfig>")]
    pub retry: Option<Spanned<RetryConfig>>,
}

/// `retry:` of a step.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts in all, the first included. Default 1: no retry.
    pub attempts: Option<u32>,
    /// The first delay; each next one doubles (with full jitter). Default 1s.
    #[schemars(with = "Option<String>")]
    pub backoff: Option<Spanned<String>>,
    /// The longest delay, also the cap on a destination's `Retry-After`. Default 5m.
    #[schemars(with = "Option<String>")]
    pub max: Option<Spanned<String>>,
}
