//! What a user writes: the serde types of a recipe file, key for key as
//! `docs/recipes.md` describes them.
//!
//! These types only say what is *syntactically* allowed. `validate` turns
//! them into the runtime [`super::Recipe`], checking what types cannot express
//! (ids, templates, exactly one action per step) with file:line:col positions.

use indexmap::IndexMap;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_saphyr::{Location, Spanned};

use crate::environment::{PlainText, TemplateText};
use crate::step::KindConfig;

pub use crate::step::http::config::{AuthConfig, BasicAuthConfig, HttpConfig};

/// One recipe file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecipeFile {
    /// Recipe id, `[a-z0-9][a-z0-9_-]*`. Default: the file stem.
    #[schemars(with = "Option<String>")]
    pub id: Option<Spanned<String>>,
    /// Free text for people reading the recipe list.
    pub description: Option<PlainText>,
    /// `false` loads and validates the recipe but never fires it.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// Exactly one trigger.
    #[schemars(with = "TriggerConfig")]
    pub trigger: Spanned<TriggerConfig>,
    /// Template; the run goes on only if it renders truthy, else it is `skipped`.
    pub when: Option<TemplateText>,
    /// The steps, run in order.
    #[schemars(with = "Vec<StepConfig>")]
    pub steps: Spanned<Vec<Spanned<StepConfig>>>,
    /// Most runs of this recipe in flight at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
    /// The longest a run may take from its start, retries and delays included
    /// (`1h`). Default: no limit.
    #[serde(default)]
    pub timeout: Option<PlainText>,
    /// Steps to run when the run fails (after its retries), with `error`
    /// (`step`, `message`, `status`) and the trigger input in their templates.
    #[serde(default)]
    #[schemars(with = "Option<Vec<StepConfig>>")]
    pub on_failure: Option<Spanned<Vec<Spanned<StepConfig>>>>,
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
    Failure(Box<FailureConfig>),
}

/// `trigger: {failure: {recipes: ["*"]}}`: a run for every failed run of
/// those recipes (never of itself).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FailureConfig {
    /// The ids of the recipes whose failures start a run, or `["*"]` for all.
    #[schemars(with = "Vec<PlainText>")]
    pub recipes: Spanned<Vec<PlainText>>,
}

/// `trigger: {webhook: …}`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `POST /hooks/{path}`. Default: the recipe id.
    pub path: Option<PlainText>,
    /// Template over the request giving a delivery's identity: a second delivery
    /// with the same key starts no run and is answered with the first run's id.
    pub dedup: Option<TemplateText>,
    /// `accepted` (default): answer 202 once stored. `wait`: answer with the last
    /// step's status and body when the run ends.
    pub respond: Option<PlainText>,
    /// With `respond: wait`, how long to wait before answering 504. Default 30s.
    pub timeout: Option<PlainText>,
    /// How the sender proves who it is.
    #[schemars(with = "Option<VerifyConfig>")]
    pub verify: Option<Spanned<VerifyConfig>>,
    /// Most requests to this hook, from all senders together: `100/m`.
    pub rate: Option<PlainText>,
}

/// `verify:` of a webhook: a `scheme`, and exactly the keys that scheme takes.
/// The secret is a secret even when written in the recipe: it is redacted.
// Read once per load and turned into a `Verifier`: its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, JsonSchema)]
#[schemars(tag = "scheme", rename_all = "snake_case", deny_unknown_fields)]
pub enum VerifyConfig {
    /// `X-Hub-Signature-256`: HMAC-SHA256 of the body, hex.
    Github { secret: PlainText },
    /// `Stripe-Signature`: a timestamp and HMAC-SHA256 over both.
    Stripe {
        secret: PlainText,
        /// How far the timestamp may be from now. Default 5m.
        tolerance: Option<PlainText>,
    },
    /// `X-Slack-Signature` with `X-Slack-Request-Timestamp`.
    Slack {
        secret: PlainText,
        /// How far the timestamp may be from now. Default 5m.
        tolerance: Option<PlainText>,
    },
    /// `X-Shopify-Hmac-Sha256`: HMAC-SHA256 of the body, base64.
    Shopify { secret: PlainText },
    /// Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
    Standard {
        /// `whsec_…`, base64.
        secret: PlainText,
        /// How far the timestamp may be from now. Default 5m.
        tolerance: Option<PlainText>,
    },
    /// Any HMAC of the body in a header.
    Hmac {
        secret: PlainText,
        /// The header that carries the signature.
        header: PlainText,
        /// `sha1`, `sha256` (default) or `sha512`.
        algorithm: Option<PlainText>,
        /// `hex` (default) or `base64`.
        encoding: Option<PlainText>,
        /// Text before the MAC in the header, e.g. `sha256=`.
        prefix: Option<PlainText>,
    },
    /// A shared token in a header, compared in constant time.
    Token {
        secret: PlainText,
        /// The header that carries the token.
        header: PlainText,
    },
    /// HTTP Basic credentials.
    Basic { username: PlainText, password: PlainText },
}

impl<'de> Deserialize<'de> for VerifyConfig {
    /// Read by hand: serde's internally tagged enums read the map ahead into a
    /// buffer, which loses every value's place in the file.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        fn needed<E: de::Error>(keys: &mut IndexMap<String, PlainText>, key: &'static str) -> Result<PlainText, E> {
            keys.shift_remove(key).ok_or_else(|| E::missing_field(key))
        }
        let mut keys: IndexMap<String, PlainText> = IndexMap::deserialize(deserializer)?;
        let scheme = needed(&mut keys, "scheme")?;
        let take = |keys: &mut IndexMap<String, PlainText>, key: &str| keys.shift_remove(key);
        let config = match scheme.value.trim() {
            "github" => VerifyConfig::Github {
                secret: needed(&mut keys, "secret")?,
            },
            "shopify" => VerifyConfig::Shopify {
                secret: needed(&mut keys, "secret")?,
            },
            "stripe" => VerifyConfig::Stripe {
                secret: needed(&mut keys, "secret")?,
                tolerance: take(&mut keys, "tolerance"),
            },
            "slack" => VerifyConfig::Slack {
                secret: needed(&mut keys, "secret")?,
                tolerance: take(&mut keys, "tolerance"),
            },
            "standard" => VerifyConfig::Standard {
                secret: needed(&mut keys, "secret")?,
                tolerance: take(&mut keys, "tolerance"),
            },
            "hmac" => VerifyConfig::Hmac {
                secret: needed(&mut keys, "secret")?,
                header: needed(&mut keys, "header")?,
                algorithm: take(&mut keys, "algorithm"),
                encoding: take(&mut keys, "encoding"),
                prefix: take(&mut keys, "prefix"),
            },
            "token" => VerifyConfig::Token {
                secret: needed(&mut keys, "secret")?,
                header: needed(&mut keys, "header")?,
            },
            "basic" => VerifyConfig::Basic {
                username: needed(&mut keys, "username")?,
                password: needed(&mut keys, "password")?,
            },
            other => {
                return Err(de::Error::custom(format_args!("verify `scheme: {other}` is not known")));
            }
        };
        match keys.keys().next() {
            Some(key) => Err(de::Error::custom(format_args!(
                "verify `{key}` does not apply to `scheme: {}`",
                scheme.value
            ))),
            None => Ok(config),
        }
    }
}

/// `trigger: {schedule: …}`: exactly one of `cron` and `every`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// 5 fields, or 6 with seconds first.
    pub cron: Option<PlainText>,
    /// IANA name for `cron`. Default `UTC`.
    pub timezone: Option<PlainText>,
    /// A duration: `30s`, `15m`, `1h`.
    pub every: Option<PlainText>,
    /// `skip` (default) or `once`: fire times that passed while the daemon was down.
    pub missed: Option<PlainText>,
}

/// `trigger: {poll: …}`: an HTTP source fetched on `every` or `cron`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PollConfig {
    pub cron: Option<PlainText>,
    pub timezone: Option<PlainText>,
    pub every: Option<PlainText>,
    /// The request, as in an http step.
    #[schemars(with = "HttpConfig")]
    pub http: Spanned<HttpConfig>,
    /// Limit for one poll. Default 30s.
    pub timeout: Option<PlainText>,
    /// RFC 9535 JSONPath selecting the items, e.g. `$.features[*]`.
    pub items: Option<PlainText>,
    /// Template over `item` giving its identity. Default: a hash of the item.
    pub key: Option<TemplateText>,
    /// `skip` (default): the first poll only remembers the items; `emit`: runs them.
    pub first: Option<PlainText>,
    /// How to reach the next page of the answer: `{next: link}` (the `Link`
    /// header), `{next: "$.links.next"}` (a URL in the body) or
    /// `{cursor: "$.meta.next_cursor", param: cursor}`.
    #[schemars(with = "Option<PaginateConfig>")]
    pub paginate: Option<Spanned<PaginateConfig>>,
    /// Most pages one poll fetches. Default 10.
    pub max_pages: Option<u32>,
}

/// `paginate:` of a poll: `next` or `cursor` (with `param`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PaginateConfig {
    /// `link` (the `Link: <…>; rel="next"` header, RFC 8288), or a JSONPath to the
    /// next page's URL in the body.
    pub next: Option<PlainText>,
    /// A JSONPath to the next page's cursor in the body, sent back as `param`.
    pub cursor: Option<PlainText>,
    /// With `cursor`: the query parameter that carries it.
    pub param: Option<PlainText>,
}

/// One step: its own keys, and one key naming its kind (`http:`, `log:`, …)
/// whose value is that kind's config. The kinds are listed in
/// [`crate::step::KindConfig`]; this type only reads the key that names one.
#[derive(Debug)]
pub struct StepConfig {
    /// `[a-z][a-z0-9_]*`, unique in the recipe. Default: `step1`, `step2`, …
    pub id: Option<Spanned<String>>,
    /// Template; the step is `skipped` when it renders falsy.
    pub when: Option<TemplateText>,
    /// The kinds written, each at its key's place: validation wants exactly one.
    pub kinds: Vec<(Location, KindConfig)>,
    /// A `switch`'s branches: steps by case name.
    pub cases: Option<Spanned<Branches>>,
    /// A `switch`'s branch for a value no case names.
    pub default: Option<Spanned<Vec<Spanned<StepConfig>>>>,
    /// Per-attempt time limit, e.g. `30s`, `2m`. Default 30s.
    pub timeout: Option<PlainText>,
    /// Retries of a failed attempt.
    pub retry: Option<Spanned<RetryConfig>>,
    /// `true`: a failure (after retries) is recorded and the run goes on.
    pub continue_on_error: Option<bool>,
    /// Template giving a list: the step runs once per element.
    pub for_each: Option<TemplateText>,
    /// With `for_each`: the element's name in templates. Default `item`.
    pub item_name: Option<Spanned<String>>,
    /// With `for_each`: most elements in flight at once. Default 1.
    pub parallel: Option<Spanned<u32>>,
    /// With `for_each`: most elements a list may have. Default 1000.
    pub max_items: Option<Spanned<u32>>,
    /// With `for_each` and no kind: the steps each element runs, in order.
    pub steps: Option<Spanned<Vec<Spanned<StepConfig>>>>,
}

/// A `switch`'s `cases:`: each case's steps, by the value that chooses it.
pub type Branches = IndexMap<String, Spanned<Vec<Spanned<StepConfig>>>>;

/// A step's own keys, each with what it holds; the kinds' keys go between
/// `when` and `cases`, so the schema lists them where the docs do.
const STEP_KEYS: [(&str, &str); 12] = [
    (
        "id",
        "`[a-z][a-z0-9_]*`, unique in the recipe. Default: `step1`, `step2`, …",
    ),
    ("when", "Template; the step is `skipped` when it renders falsy."),
    ("cases", "With `switch`: the steps to run for each value, by value."),
    (
        "default",
        "With `switch`: the steps to run when no case names the value.",
    ),
    ("timeout", "Per-attempt time limit, e.g. `30s`, `2m`. Default 30s."),
    ("retry", "Retries of a failed attempt."),
    (
        "continue_on_error",
        "`true`: when the step fails (after its retries) the run goes on, and `steps.ID.error` says why. Default `false`.",
    ),
    (
        "for_each",
        "Template giving a list, e.g. `{{payload.line_items}}`: the step runs once per element, with `item` and `index` (from 0); its result is `steps.ID.items`.",
    ),
    (
        "as",
        "With `for_each`: the element's name in templates. Default `item`.",
    ),
    (
        "parallel",
        "With `for_each`: most elements in flight at once. Default 1: one after the other, in order.",
    ),
    (
        "max_items",
        "With `for_each`: most elements a list may have; a longer one fails the step, nothing sent. Default 1000.",
    ),
    (
        "steps",
        "With `for_each`, instead of a kind: the steps each element runs, in order; `steps.ID.items` holds each element's results by step id.",
    ),
];

impl<'de> Deserialize<'de> for StepConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(StepVisitor)
    }
}

struct StepVisitor;

impl<'de> Visitor<'de> for StepVisitor {
    type Value = StepConfig;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("a step: a map with one kind's key (`http`, `log`, …)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StepConfig, A::Error> {
        let mut step = StepConfig {
            id: None,
            when: None,
            kinds: Vec::new(),
            cases: None,
            default: None,
            timeout: None,
            retry: None,
            continue_on_error: None,
            for_each: None,
            item_name: None,
            parallel: None,
            max_items: None,
            steps: None,
        };
        fn once<T, E: de::Error>(slot: &mut Option<T>, value: T, key: &'static str) -> Result<(), E> {
            if slot.replace(value).is_some() {
                return Err(E::duplicate_field(key));
            }
            Ok(())
        }
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            match key.value.as_str() {
                "id" => once(&mut step.id, map.next_value()?, "id")?,
                "when" => once(&mut step.when, map.next_value()?, "when")?,
                "timeout" => once(&mut step.timeout, map.next_value()?, "timeout")?,
                "retry" => once(&mut step.retry, map.next_value()?, "retry")?,
                "continue_on_error" => once(&mut step.continue_on_error, map.next_value()?, "continue_on_error")?,
                "cases" => once(&mut step.cases, map.next_value()?, "cases")?,
                "default" => once(&mut step.default, map.next_value()?, "default")?,
                "for_each" => once(&mut step.for_each, map.next_value()?, "for_each")?,
                "as" => once(&mut step.item_name, map.next_value()?, "as")?,
                "parallel" => once(&mut step.parallel, map.next_value()?, "parallel")?,
                "max_items" => once(&mut step.max_items, map.next_value()?, "max_items")?,
                "steps" => once(&mut step.steps, map.next_value()?, "steps")?,
                other => match KindConfig::read(other, &mut map)? {
                    Some(kind) => step.kinds.push((key.referenced, kind)),
                    None => return Err(de::Error::custom(format_args!("unknown key `{other}` in a step"))),
                },
            }
        }
        Ok(step)
    }
}

impl StepConfig {
    /// Every key a step may have, in the order the docs list them.
    pub fn keys() -> Vec<&'static str> {
        let (own_first, own_last) = STEP_KEYS.split_at(2);
        own_first
            .iter()
            .map(|(key, _)| *key)
            .chain(KindConfig::KEYS)
            .chain(own_last.iter().map(|(key, _)| *key))
            .collect()
    }
}

impl JsonSchema for StepConfig {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "StepConfig".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let own = [
            generator.subschema_for::<Option<String>>(),
            generator.subschema_for::<Option<String>>(),
            generator.subschema_for::<Option<IndexMap<String, Vec<StepConfig>>>>(),
            generator.subschema_for::<Option<Vec<StepConfig>>>(),
            generator.subschema_for::<Option<String>>(),
            generator.subschema_for::<Option<RetryConfig>>(),
            generator.subschema_for::<Option<bool>>(),
            generator.subschema_for::<Option<String>>(),
            generator.subschema_for::<Option<String>>(),
            counted(generator),
            counted(generator),
            generator.subschema_for::<Option<Vec<StepConfig>>>(),
        ];
        let mut properties = serde_json::Map::new();
        let described = |mut schema: Schema, description: &str| {
            schema.insert("description".to_owned(), description.into());
            schema.to_value()
        };
        let mut own = STEP_KEYS.iter().zip(own);
        for ((key, description), schema) in own.by_ref().take(2) {
            properties.insert((*key).to_owned(), described(schema, description));
        }
        let kinds = KindConfig::schemas(generator);
        for (key, description, schema) in &kinds {
            properties.insert((*key).to_owned(), described(schema.clone(), description));
        }
        for ((key, description), schema) in own {
            properties.insert((*key).to_owned(), described(schema, description));
        }
        // A group (`for_each` with `steps`) has no kind.
        let exactly_one: Vec<serde_json::Value> = kinds
            .iter()
            .map(|(key, _, _)| *key)
            .chain(["steps"])
            .map(|key| serde_json::json!({"required": [key]}))
            .collect();
        schemars::json_schema!({
            "type": "object",
            "description": "One step: its own keys and exactly one kind's key, or `for_each` with `steps`.",
            "properties": properties,
            "additionalProperties": false,
            "oneOf": exactly_one,
        })
    }
}

/// `retry:` of a step.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts in all, the first included. Default 1: no retry.
    pub attempts: Option<u32>,
    /// The first delay; each next one doubles (with full jitter). Default 1s.
    pub backoff: Option<PlainText>,
    /// The longest delay, also the cap on a destination's `Retry-After`. Default 5m.
    pub max: Option<PlainText>,
    /// `true`: an attempt that the step's `fail_when` failed is tried again too.
    /// Default `false`: the destination answered, and would answer alike.
    pub fail_when: Option<bool>,
}

/// The schema of a count that is at least 1 (`parallel`, `max_items`).
fn counted(_generator: &mut SchemaGenerator) -> Schema {
    schemars::json_schema!({
        "type": ["integer", "null"],
        "format": "uint32",
        "minimum": 1,
    })
}
