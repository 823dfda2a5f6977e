//! Recipes: the YAML files users write, loaded into validated [`Recipe`]s.
//!
//! Loading reads the recipes folder and nothing else. A recipe that fails to load
//! becomes a [`Diagnostic`] with file:line:col and never stops the others.

pub mod claims;
pub mod config;
mod load;
mod rate;
pub mod reload;
mod schedule;
mod schema;
mod tree;
mod validate;
pub mod watch;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::redact::Redactor;
use crate::step::http::HttpTemplate;
use crate::template::Template;
use crate::verify::Verifier;

pub use crate::checks::{Diagnostic, Position};
pub use crate::duration::parse_duration;
pub use crate::environment::Environment;
pub use crate::redact::Secret;
pub use claims::{ClaimChanges, ClaimKind, Claims};
pub use load::{CheckReport, check_paths, load_folder, load_source};
pub use rate::{Rate, RecipeRate};
pub use reload::{Changed, Reloaded, load_folder_claimed, reload_folder};
pub use schedule::{Schedule, ScheduleError, parse_cron, parse_timezone};
pub use schema::recipe_schema;

/// A recipe's `concurrency` when it sets none: the engine's worker limit, so a
/// recipe delivers at the engine's speed by default. A run that finds no slot
/// waits in the store and costs a trip through it; at 4, a default recipe fed 32
/// connections delivered a seventh of what the engine could. Users protect a
/// slow destination with an explicit `concurrency`.
pub const DEFAULT_CONCURRENCY: u32 = 256;

/// A recipe that loaded and validated: it can fire.
#[derive(Debug)]
pub struct Recipe {
    pub id: String,
    pub description: Option<String>,
    pub enabled: bool,
    /// Content hash of the file, recorded with every run.
    pub version: String,
    /// The file's text as loaded (`${NAME}` references, not their values).
    pub source: String,
    pub file: PathBuf,
    pub trigger: Trigger,
    pub when: Option<Template>,
    pub steps: Vec<Step>,
    pub concurrency: u32,
    /// `timeout`: the longest a run may take from its start.
    pub timeout: Option<RunTimeout>,
    /// What its templates read of a payload: a webhook's body is parsed into
    /// that much (see `template::PayloadReads`).
    pub payload_reads: crate::template::PayloadReads,
    /// Replaces the values this recipe took from the environment.
    pub redactor: Redactor,
    /// Where the id is written (the file start when it comes from the file name).
    pub id_at: Position,
    /// Where the trigger is written (its `path` when there is one).
    pub trigger_at: Position,
    /// What loads but deserves a second look (`ferry check` prints them).
    pub warnings: Vec<Diagnostic>,
    /// The series its runs and attempts are counted in.
    pub metrics: crate::observe::RecipeMetrics,
}

/// What starts a run.
// One per recipe: the webhook's size costs nothing worth a box and its noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Trigger {
    /// `POST /hooks/{path}`.
    Webhook {
        path: String,
        /// Renders a delivery's identity from `payload`, `headers` and `query`.
        dedup: Option<Template>,
        respond: Respond,
        /// Checked over the raw body before anything is parsed.
        verify: Option<Box<Verifier>>,
        /// One budget for all senders of this hook.
        rate: Option<Box<RecipeRate>>,
    },
    /// At the times of a cron expression or an interval.
    Schedule { schedule: Schedule, missed: Missed },
    /// Fetches an HTTP source on a schedule; each new item starts a run.
    Poll(Box<PollTrigger>),
    /// A run for every failed run of the recipes it watches.
    Failure(Watched),
}

/// Whose failed runs a `failure` trigger starts runs for. Never its own, and
/// never those a `failure` trigger started (one failing alert recipe must not
/// wake another, and that one the first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Watched {
    /// `["*"]`: every recipe.
    All,
    /// These recipe ids.
    Only(Vec<WatchedId>),
}

/// A recipe id a `failure` trigger lists, and where it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedId {
    pub id: String,
    pub at: Position,
}

impl Watched {
    pub fn includes(&self, recipe: &str) -> bool {
        match self {
            Watched::All => true,
            Watched::Only(ids) => ids.iter().any(|watched| watched.id == recipe),
        }
    }

    /// As the recipe lists them: the ids, or `["*"]`.
    pub fn names(&self) -> Vec<String> {
        match self {
            Watched::All => vec!["*".to_owned()],
            Watched::Only(ids) => ids.iter().map(|watched| watched.id.clone()).collect(),
        }
    }
}

impl Trigger {
    /// The kind's name as the API shows it.
    pub fn kind(&self) -> &'static str {
        match self {
            Trigger::Webhook { .. } => "webhook",
            Trigger::Schedule { .. } => "schedule",
            Trigger::Poll(_) => "poll",
            Trigger::Failure(_) => "failure",
        }
    }

    /// When the trigger fires on its own; `None` for webhooks and failures.
    pub fn schedule(&self) -> Option<&Schedule> {
        match self {
            Trigger::Webhook { .. } | Trigger::Failure(_) => None,
            Trigger::Schedule { schedule, .. } => Some(schedule),
            Trigger::Poll(poll) => Some(&poll.schedule),
        }
    }
}

/// What a schedule does about fire times that passed while the daemon was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missed {
    /// Nothing: the next fire is the next time to come.
    Skip,
    /// One run for the latest time missed, however many were.
    Once,
}

/// A `poll` trigger.
#[derive(Debug)]
pub struct PollTrigger {
    pub schedule: Schedule,
    /// The request, rendered with `trigger` (`last_success_at`, …) and `ferry`.
    pub request: HttpTemplate,
    /// Limit for one poll.
    pub timeout: Duration,
    /// Selects the items in the answer; `None`: the body if it is an array, else
    /// the body as one item.
    pub items: Option<ItemsPath>,
    /// Renders an item's identity from `item`; `None`: a hash of the item.
    pub key: Option<Template>,
    pub first: FirstPoll,
    /// How the answer's next page is found; `None`: one page.
    pub paginate: Option<Pagination>,
    /// Most pages one poll fetches.
    pub max_pages: u32,
}

/// Where a polled answer says its next page is.
#[derive(Debug)]
pub enum Pagination {
    /// The `Link` header's `rel="next"` (RFC 8288).
    Link,
    /// A URL in the body.
    NextUrl(ItemsPath),
    /// A cursor in the body, sent back as the query parameter `param`.
    Cursor { path: ItemsPath, param: String },
}

/// A poll's `max_pages` when it sets none.
pub const DEFAULT_MAX_PAGES: u32 = 10;

/// An RFC 9535 JSONPath with the text it was written as.
#[derive(Debug)]
pub struct ItemsPath {
    pub source: String,
    pub path: serde_json_path::JsonPath,
}

/// What the first successful poll of a recipe does with the items already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstPoll {
    /// Remembers them without starting runs.
    Skip,
    /// Starts a run for each.
    Emit,
}

/// When a webhook is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Respond {
    /// `202` as soon as the run is stored.
    Accepted,
    /// With the last step's status and body when the run ends; `504` after `timeout`.
    Wait { timeout: Duration },
}

/// One step of a recipe.
#[derive(Debug)]
pub struct Step {
    pub id: String,
    pub when: Option<Template>,
    /// A step of a `switch`'s branch runs only when that switch chose its case.
    pub guard: Option<Guard>,
    pub kind: crate::step::Kind,
    /// Limit for one attempt.
    pub timeout: Duration,
    pub retry: RetryPolicy,
    /// `for_each`: the step runs once per element of a list.
    pub each: Option<ForEach>,
    /// The id of the group (a `for_each` with `steps`) whose elements run this
    /// step; the run loop runs it only there.
    pub within: Option<String>,
    /// `continue_on_error`: when it fails (after its retries), the run goes on.
    pub continue_on_error: bool,
    /// A step of the recipe's `on_failure`: it runs only when the run failed.
    pub on_failure: bool,
}

/// A step's `for_each`: it runs once per element of the list its template
/// gives, each element with its own request, attempts and result.
#[derive(Debug)]
pub struct ForEach {
    /// Renders the list (`null` is an empty one).
    pub over: Template,
    /// The element's name in the step's templates: `item` unless `as` says.
    pub name: String,
    /// Most elements in flight at once (1: one after the other).
    pub parallel: u32,
    /// Most elements the list may have; a longer one fails the step, nothing sent.
    pub max_items: u32,
}

/// What `on_failure`'s templates read about the failure: `error.step`,
/// `error.message`, `error.status`.
pub const ON_FAILURE_ROOT: &str = "error";

/// A `for_each`'s `max_items` when it sets none.
pub const DEFAULT_MAX_ITEMS: u32 = 1000;

/// A `for_each`'s element name when `as` sets none.
pub const DEFAULT_ITEM_NAME: &str = "item";

/// A recipe's `timeout`: how long, and how it was written (for the run's error).
#[derive(Debug, Clone)]
pub struct RunTimeout {
    pub limit: Duration,
    pub written: String,
}

/// Which `switch` choice runs a step of a branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guard {
    /// The id of the `switch` step.
    pub switch: String,
    /// The case (`default` for the default branch).
    pub case: String,
}

/// How often and how patiently a failed step is tried again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = no retry).
    pub attempts: u32,
    /// The first delay; each next one doubles, with full jitter.
    pub backoff: Duration,
    /// The longest delay, and the cap on `Retry-After`.
    pub max: Duration,
    /// Whether an attempt that `fail_when` failed is tried again.
    pub fail_when: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 1,
            backoff: Duration::from_secs(1),
            max: Duration::from_secs(300),
            fail_when: false,
        }
    }
}

/// Every recipe of the folder that loaded, and the problems of those that did not.
///
/// The maps are persistent (`imbl`): a reload starts from a copy of the set in
/// force in O(1) and changes only what the changed files touch.
#[derive(Debug, Default, Clone)]
pub struct RecipeSet {
    recipes: imbl::OrdMap<String, Arc<Recipe>>,
    hooks: imbl::OrdMap<String, String>,
    /// By file, in the order each file's were found.
    problems: imbl::OrdMap<PathBuf, Vec<Diagnostic>>,
    /// Who owns each id and webhook path after this load.
    claims: Claims,
    /// Each file's outcome, for the next load to reuse when the file is unchanged.
    files: imbl::OrdMap<PathBuf, load::FileLoad>,
    /// Files that loaded but declare an id or a path another file owns: tried
    /// again when a name is freed.
    refused: imbl::OrdSet<PathBuf>,
    /// How many files the load that made this set read and parsed.
    parsed: usize,
}

impl RecipeSet {
    pub fn get(&self, id: &str) -> Option<&Arc<Recipe>> {
        self.recipes.get(id)
    }

    /// The enabled recipe whose webhook answers at `path`.
    pub fn by_hook_path(&self, path: &str) -> Option<&Arc<Recipe>> {
        self.hooks
            .get(path)
            .and_then(|id| self.recipes.get(id))
            .filter(|recipe| recipe.enabled)
    }

    pub fn recipes(&self) -> impl Iterator<Item = &Arc<Recipe>> {
        self.recipes.values()
    }

    /// A warning for each id a `failure` trigger lists that no recipe of the set
    /// has: a typo, or a recipe still to come — either way its failures would
    /// start nothing. A warning, not an error: the list may name a recipe
    /// before it is written.
    pub fn watch_warnings(&self) -> Vec<Diagnostic> {
        let mut warnings = Vec::new();
        for recipe in self.recipes.values() {
            let Trigger::Failure(Watched::Only(ids)) = &recipe.trigger else {
                continue;
            };
            for watched in ids.iter().filter(|watched| !self.recipes.contains_key(&watched.id)) {
                let hint = crate::template::did_you_mean(&watched.id, self.recipes.keys().map(String::as_str))
                    .map(|close| format!("; did you mean `{close}`?"))
                    .unwrap_or_default();
                let mut warning = Diagnostic::at(
                    &recipe.file,
                    watched.at,
                    format!(
                        "failure `recipes` names `{}`, which no recipe loaded here has: its failures would start nothing{hint}",
                        watched.id
                    ),
                );
                warning.pinpoint(&recipe.source);
                warnings.push(warning);
            }
        }
        warnings
    }

    /// The enabled recipes whose `failure` trigger a failed run of `failed`
    /// starts a run of (never `failed` itself). Looked up only when a run
    /// fails, so a scan of the set is cheap enough.
    pub fn failure_watchers<'s>(&'s self, failed: &'s str) -> impl Iterator<Item = &'s Arc<Recipe>> {
        self.recipes.values().filter(move |recipe| {
            recipe.enabled
                && recipe.id != failed
                && matches!(&recipe.trigger, Trigger::Failure(watched) if watched.includes(failed))
        })
    }

    pub fn len(&self) -> usize {
        self.recipes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.recipes.is_empty()
    }

    /// How many files the load that made this set read and parsed (a reload
    /// parses only the files that changed).
    pub fn parsed(&self) -> usize {
        self.parsed
    }

    /// Who owns each recipe id and webhook path.
    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    /// Why the recipes that are not here failed to load, file by file.
    pub fn problems(&self) -> impl Iterator<Item = &Diagnostic> {
        self.problems.values().flatten()
    }

    /// Whether any file failed to load.
    pub fn has_problems(&self) -> bool {
        !self.problems.is_empty()
    }

    /// Every recipe of the folder by id, loaded or not, in id order: a loaded
    /// recipe with the problems of its file's newer version (a reload kept the
    /// older one), a file that did not load with its problems only.
    pub fn listing(&self) -> Vec<Listed<'_>> {
        let mut failed = self.failed();
        let mut listed: Vec<Listed<'_>> = self
            .recipes()
            .map(|recipe| Listed {
                id: recipe.id.clone(),
                recipe: Some(recipe),
                problems: failed.remove(&recipe.id).unwrap_or_default(),
            })
            .collect();
        listed.extend(failed.into_iter().map(|(id, problems)| Listed {
            id,
            recipe: None,
            problems,
        }));
        listed.sort_by(|left, right| left.id.cmp(&right.id));
        listed
    }

    /// The files that did not load, by the id their name gives, with their problems.
    pub fn failed(&self) -> BTreeMap<String, Vec<&Diagnostic>> {
        let mut failed: BTreeMap<String, Vec<&Diagnostic>> = BTreeMap::new();
        for problem in self.problems() {
            let id = problem
                .file
                .file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
                .unwrap_or_default();
            failed.entry(id).or_default().push(problem);
        }
        failed
    }
}

/// One entry of [`RecipeSet::listing`].
pub struct Listed<'a> {
    pub id: String,
    /// `None`: the file did not load.
    pub recipe: Option<&'a Arc<Recipe>>,
    pub problems: Vec<&'a Diagnostic>,
}

impl Listed<'_> {
    /// The problems as one `file:line:col: message` per line, if any.
    pub fn error(&self) -> Option<String> {
        (!self.problems.is_empty()).then(|| {
            let lines: Vec<String> = self.problems.iter().map(ToString::to_string).collect();
            lines.join("\n")
        })
    }
}

/// The recipe set in force, shared by the API and the engine. Readers take a
/// snapshot (`current`) so that one request or run sees one consistent set even
/// when a reload swaps it.
#[derive(Clone, Default)]
pub struct LiveRecipes(Arc<std::sync::RwLock<Arc<RecipeSet>>>);

impl LiveRecipes {
    pub fn new(set: RecipeSet) -> Self {
        Self(Arc::new(std::sync::RwLock::new(Arc::new(set))))
    }

    pub fn current(&self) -> Arc<RecipeSet> {
        // A poisoned lock only means a writer panicked mid-swap of an `Arc`; the
        // value inside is still a whole set.
        self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    pub fn replace(&self, set: RecipeSet) {
        *self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(set);
    }
}
