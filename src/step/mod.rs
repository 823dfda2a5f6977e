//! The kinds of step: what each is once its recipe loaded, how it renders and
//! what its record keeps, one module per kind. [`Kind`] lists them; a new kind
//! is a module here and a variant there.

pub mod delay;
pub mod graphql;
pub mod group;
pub mod http;
pub mod log;
pub mod set;
pub mod switch;

use std::time::Duration;

use schemars::{Schema, SchemaGenerator};
use serde::Serialize;
use serde::de::MapAccess;
use serde_json::Value;
use serde_saphyr::Location;
use utoipa::ToSchema;

use crate::action::{AttemptError, HttpRequest, HttpResponse, Outcome};
use crate::checks::Checker;
use crate::environment::{TemplateText, TemplateTree};
use crate::redact::Redactor;
use crate::template::{Template, TemplateError, Templates};

/// What a step does: one of the kinds.
#[derive(Debug)]
pub enum Kind {
    /// Call an HTTP API.
    Http(Box<http::HttpTemplate>),
    /// Record a rendered line in the run.
    Log(Template),
    /// Send a GraphQL operation.
    Graphql(Box<graphql::GraphqlStep>),
    /// Name values for the steps after it.
    Set(set::SetStep),
    /// Choose which branch of steps runs.
    Switch(switch::SwitchStep),
    /// Run its steps for each element of a `for_each`.
    Group(group::GroupStep),
    /// Wait, the run held in the store.
    Delay(delay::DelayStep),
}

impl Kind {
    pub fn name(&self) -> KindName {
        match self {
            Kind::Group(_) => KindName::Group,
            Kind::Delay(_) => KindName::Delay,
            Kind::Http(_) => KindName::Http,
            Kind::Log(_) => KindName::Log,
            Kind::Graphql(_) => KindName::Graphql,
            Kind::Set(_) => KindName::Set,
            Kind::Switch(_) => KindName::Switch,
        }
    }
}

/// What a user writes for a step's kind: the value under its key (`http:`,
/// `log:`). Read by the step's config, checked into a [`Kind`].
#[derive(Debug)]
pub enum KindConfig {
    Http(Box<http::config::HttpConfig>),
    Log(TemplateText),
    Graphql(Box<graphql::config::GraphqlConfig>),
    Set(TemplateTree),
    Switch(TemplateText),
    Delay(delay::DelayConfig),
}

impl KindConfig {
    /// The keys that name a kind, in the order the docs list them.
    pub const KEYS: [&'static str; 6] = ["http", "log", "graphql", "set", "switch", "delay"];

    /// Reads the value of `key` as that kind's config, or `None` when no kind
    /// has that key.
    pub fn read<'de, A: MapAccess<'de>>(key: &str, map: &mut A) -> Result<Option<Self>, A::Error> {
        Ok(Some(match key {
            "http" => KindConfig::Http(map.next_value()?),
            "log" => KindConfig::Log(map.next_value()?),
            "graphql" => KindConfig::Graphql(map.next_value()?),
            "set" => KindConfig::Set(map.next_value()?),
            "switch" => KindConfig::Switch(map.next_value()?),
            "delay" => KindConfig::Delay(map.next_value()?),
            _ => return Ok(None),
        }))
    }

    /// The key it was written under.
    pub fn key(&self) -> &'static str {
        match self {
            KindConfig::Http(_) => KindName::Http,
            KindConfig::Log(_) => KindName::Log,
            KindConfig::Graphql(_) => KindName::Graphql,
            KindConfig::Set(_) => KindName::Set,
            KindConfig::Switch(_) => KindName::Switch,
            KindConfig::Delay(_) => KindName::Delay,
        }
        .as_str()
    }

    /// Each kind's key, what it does, and the schema of its value.
    pub fn schemas(generator: &mut SchemaGenerator) -> Vec<(&'static str, &'static str, Schema)> {
        vec![
            (
                "http",
                "Call an HTTP API.",
                generator.subschema_for::<http::config::HttpConfig>(),
            ),
            (
                "log",
                "Record a rendered line in the run.",
                generator.subschema_for::<String>(),
            ),
            (
                "graphql",
                "Send a GraphQL operation.",
                generator.subschema_for::<graphql::config::GraphqlConfig>(),
            ),
            (
                "set",
                "Name values (a map of templates) that later steps read as `steps.ID.NAME`.",
                generator.subschema_for::<serde_json::Map<String, Value>>(),
            ),
            (
                "switch",
                "A template whose value chooses which branch runs: `cases` by value, else `default`.",
                generator.subschema_for::<String>(),
            ),
            (
                "delay",
                "Wait before the next step: a duration (`10m`) or `{until: \"{{payload.remind_at}}\"}`. The run is `waiting`, held in the store.",
                generator.subschema_for::<delay::DelayConfig>(),
            ),
        ]
    }

    /// The kind's checks: what can run, or `None` when it has problems
    /// (reported). `label` names the step in messages; `location` is its key's.
    pub fn check(&self, checker: &mut Checker<'_>, label: &str, location: Location) -> Option<Kind> {
        match self {
            KindConfig::Http(config) => {
                http::check::validate_http(checker, label, location, config).map(|http| Kind::Http(Box::new(http)))
            }
            KindConfig::Log(line) => checker.template(line, &format!("{label} `log`")).map(Kind::Log),
            KindConfig::Graphql(config) => graphql::check::validate_graphql(checker, label, location, config)
                .map(|graphql| Kind::Graphql(Box::new(graphql))),
            KindConfig::Set(tree) => set::check(checker, label, location, tree).map(Kind::Set),
            KindConfig::Delay(config) => delay::check(checker, label, location, config).map(Kind::Delay),
            KindConfig::Switch(value) => checker.template(value, &format!("{label} `switch`")).map(|value| {
                Kind::Switch(switch::SwitchStep {
                    value,
                    cases: Vec::new(),
                    has_default: false,
                })
            }),
        }
    }
}

impl Kind {
    /// Gives a kind that has branches (`switch`) their names; `Err` with the
    /// kind's name when it takes none.
    pub fn with_branches(mut self, cases: Vec<String>, has_default: bool) -> Result<Self, KindName> {
        match &mut self {
            Kind::Switch(switch) => {
                switch.cases = cases;
                switch.has_default = has_default;
                Ok(self)
            }
            _ => Err(self.name()),
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
    Graphql,
    Set,
    Switch,
    /// A `for_each` with `steps`: its elements are its record.
    Group,
    Delay,
}

/// How an attempt reads in a run's history (the status page, `ferry runs show`).
pub struct AttemptView<'a> {
    /// `POST https://…`, or `log <the line>`.
    pub line: String,
    /// The request body sent, if the kind sends one.
    pub body: Option<&'a Value>,
}

impl KindName {
    pub const ALL: [KindName; 7] = [
        KindName::Http,
        KindName::Log,
        KindName::Graphql,
        KindName::Set,
        KindName::Switch,
        KindName::Group,
        KindName::Delay,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            KindName::Http => "http",
            KindName::Log => "log",
            KindName::Graphql => "graphql",
            KindName::Set => "set",
            KindName::Switch => "switch",
            KindName::Group => "group",
            KindName::Delay => "delay",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    /// How an attempt's recorded request reads.
    pub fn view(self, request: &Value) -> AttemptView<'_> {
        match self {
            KindName::Http | KindName::Graphql => AttemptView {
                line: format!(
                    "{} {}",
                    request["method"].as_str().unwrap_or_default(),
                    request["url"].as_str().unwrap_or_default()
                ),
                body: Some(&request["body"]),
            },
            KindName::Switch => AttemptView {
                line: format!(
                    "switch {} → {}",
                    request["switch"].as_str().unwrap_or_default(),
                    request["case"].as_str().unwrap_or("no case")
                ),
                body: None,
            },
            KindName::Set => AttemptView {
                line: format!("set {}", crate::json::text(&request["set"])),
                body: None,
            },
            KindName::Log => AttemptView {
                line: format!("log {}", request["log"].as_str().unwrap_or_default()),
                body: None,
            },
            KindName::Group => AttemptView {
                line: "group".to_owned(),
                body: None,
            },
            KindName::Delay => AttemptView {
                line: format!(
                    "delay {} → until {}",
                    request["delay"].as_str().unwrap_or_default(),
                    request["until"].as_str().unwrap_or_default()
                ),
                body: None,
            },
        }
    }
}

/// What a step's attempt may ask of the run it belongs to (the run loop answers).
pub trait Attempts: Send {
    /// Sends a rendered request within the step's `timeout`, or answers it
    /// without sending; says whether it went out.
    fn exchange(&mut self, request: &HttpRequest) -> impl Future<Output = (Outcome, bool)> + Send;

    /// Whether the run gathered anything not yet stored.
    fn has_unstored(&self) -> bool;

    /// Stores a request (sealed) with what the run gathered, before it is sent:
    /// a crash after sending then sends that request again rather than another.
    /// Fails `Unrecorded`, or `Cancelled` when the store says the run was
    /// cancelled meanwhile: the request is not sent.
    fn store_request(&mut self, sealed: Value) -> impl Future<Output = Result<(), AttemptFailure>> + Send;

    /// Renders a template that may take its whole work budget.
    fn render_heavy<T: Send>(&self, render: impl FnOnce() -> T + Send) -> impl Future<Output = T> + Send;

    /// A render went over its budget (`work` or `bytes`).
    fn over_budget(&self, budget: &'static str);

    /// What the step did in this attempt.
    fn turn(&mut self, turn: Turn<'_>);

    /// A `log` step's line, redacted.
    fn log(&mut self, line: &str);
}

/// What a step did in its turn.
pub enum Turn<'a> {
    /// Its `when` was false.
    Skipped,
    /// A `log` step's line, as rendered.
    Logged(&'a str),
    /// A `set` step's values, as rendered.
    Set(&'a Value),
    /// A `switch` step's value, and the case it chose (`None`: no branch runs).
    Switched { value: &'a str, case: Option<&'a str> },
    /// An `http` step's attempt.
    Http {
        request: &'a HttpRequest,
        /// `None` when no answer came.
        response: Option<&'a HttpResponse>,
        sent: bool,
        duration: Duration,
        error: Option<&'a AttemptError>,
    },
    /// Its templates did not render.
    NotRendered(&'a str),
    /// A `for_each` step's elements all ended (each had its own turn): how many.
    Looped(usize),
    /// A `delay` step: the time the run goes on at.
    Delayed(&'a str),
}

/// What one attempt starts from.
pub struct AttemptInput<'a> {
    pub templates: &'a Templates,
    /// The run's template context.
    pub context: &'a Value,
    /// The redactor of the recipe's secrets.
    pub redactor: &'a Redactor,
    /// `RUN.STEP`: the same for every attempt of the step.
    pub idempotency_key: String,
    /// The request stored at the first attempt, unsealed, when there is one.
    pub stored_request: Option<Value>,
}

/// How an attempt went.
pub struct Attempted {
    /// The request as the run's record keeps it (JSON text).
    pub record: String,
    pub outcome: Outcome,
    /// `steps.<id>` for the steps after it.
    pub result: Value,
    /// A request sent without being stored first: stored only if it is to be
    /// tried again.
    pub unstored: Option<HttpRequest>,
}

impl Attempted {
    /// An attempt whose templates did not render: its turn and its failure
    /// say why, redacted; nothing was sent.
    pub(crate) fn not_rendered(host: &mut impl Attempts, redactor: &Redactor, error: &TemplateError) -> Self {
        let error = redactor.text(&error.to_string()).into_owned();
        host.turn(Turn::NotRendered(&error));
        Attempted {
            record: crate::json::text(&Value::Null),
            outcome: Outcome::failed(AttemptError::Step(error)),
            result: Value::Null,
            unstored: None,
        }
    }
}

/// Why an attempt could not be made at all.
pub enum AttemptFailure {
    /// Its templates did not render (the message redacted).
    NotRendered(String),
    /// The stored request no longer reads as one.
    DamagedRequest,
    /// The request could not be stored before it was sent.
    Unrecorded(String),
    /// The run was cancelled (found when its request was stored): not sent.
    Cancelled,
}

impl Kind {
    /// One attempt of a step of this kind.
    pub async fn attempt(
        &self,
        input: AttemptInput<'_>,
        host: &mut impl Attempts,
    ) -> Result<Attempted, AttemptFailure> {
        match self {
            Kind::Http(http) => http.attempt(input, host).await,
            Kind::Log(template) => Ok(log::attempt(template, input, host).await),
            Kind::Graphql(graphql) => graphql.attempt(input, host).await,
            Kind::Set(set) => Ok(set.attempt(input, host).await),
            Kind::Switch(switch) => Ok(switch.attempt(input, host).await),
            // The run loop runs a group's steps; it never attempts the group.
            Kind::Group(_) => Err(AttemptFailure::NotRendered(
                "a group of steps has no request of its own".to_owned(),
            )),
            // The run loop runs a delay: it ends the run's turn.
            Kind::Delay(_) => Err(AttemptFailure::NotRendered("a delay sends nothing".to_owned())),
        }
    }
}

/// A render's result, with a render over its budget told to the host.
pub(crate) fn counted<T>(host: &impl Attempts, rendered: Result<T, TemplateError>) -> Result<T, TemplateError> {
    if let Err(TemplateError::OverBudget(over)) = &rendered {
        host.over_budget(over.name());
    }
    rendered
}
