//! What Ferry counts: every name and label in one place. `GET /metrics` renders
//! them (see `api::metrics`).
//!
//! Each daemon has a recorder of its own, not the `metrics` facade's global one:
//! a process that runs two daemons (the tests, the relay benchmark) counts each
//! one's work apart, and nothing is counted before a daemon exists.

use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Level, Metadata, Recorder as _, SharedString, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusRecorder};

use crate::status::FinalStatus;

/// Step duration buckets, in seconds: from a fast local call to a slow API.
const STEP_DURATION_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// How often recorded durations are folded into their histograms, scraped or not.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// What each series is: `/metrics` prints it as the series' `# HELP`.
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Every series Ferry records, with its help text and unit.
const SERIES: &[(Kind, &str, Option<Unit>, &str)] = &[
    (
        Kind::Counter,
        "ferry_runs_total",
        None,
        "Runs that ended, by recipe and final status.",
    ),
    (
        Kind::Counter,
        "ferry_step_attempts_total",
        None,
        "Step attempts, by recipe and outcome.",
    ),
    (
        Kind::Histogram,
        "ferry_step_duration_seconds",
        Some(Unit::Seconds),
        "How long each step attempt took, by recipe.",
    ),
    (
        Kind::Counter,
        "ferry_poll_failures_total",
        None,
        "Polls whose source did not answer, or not with items, by recipe.",
    ),
    (
        Kind::Counter,
        "ferry_webhook_requests_total",
        None,
        "Webhook requests, by outcome.",
    ),
    (
        Kind::Counter,
        "ferry_renders_over_budget_total",
        None,
        "Renders stopped by FERRY_RENDER_MAX_WORK or FERRY_RENDER_MAX_BYTES, by recipe and budget.",
    ),
    (
        Kind::Gauge,
        "ferry_disk_free_bytes",
        Some(Unit::Bytes),
        "Free bytes on the volume beside the database.",
    ),
    (
        Kind::Counter,
        "ferry_store_write_failures_total",
        None,
        "Commits the storage refused since the daemon started.",
    ),
    (
        Kind::Counter,
        "ferry_recipe_files_parsed_total",
        None,
        "Recipe files read and parsed by loads and reloads of the recipes folder.",
    ),
    (
        Kind::Counter,
        "ferry_connections_shed_total",
        None,
        "Slow connections closed because the places for slow clients were full.",
    ),
    (
        Kind::Gauge,
        "ferry_webhook_body_bytes_held",
        Some(Unit::Bytes),
        "Webhook body bytes held in memory until stored (FERRY_MAX_BODY_MEMORY).",
    ),
    (
        Kind::Gauge,
        "ferry_queue_depth",
        None,
        "Runs queued, waiting for a slot.",
    ),
    (
        Kind::Gauge,
        "ferry_runs_retrying",
        None,
        "Runs waiting for their next attempt.",
    ),
    (
        Kind::Gauge,
        "ferry_runs_waiting",
        None,
        "Runs a delay step holds until its time.",
    ),
    (
        Kind::Gauge,
        "ferry_oldest_queued_seconds",
        Some(Unit::Seconds),
        "Age of the oldest queued run; 0 when none waits.",
    ),
];

static METADATA: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// One daemon's metrics; clones share them.
#[derive(Clone)]
pub struct Metrics {
    recorder: Arc<PrometheusRecorder>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let builder = PrometheusBuilder::new();
        let recorder = match builder.set_buckets_for_metric(
            Matcher::Full("ferry_step_duration_seconds".to_owned()),
            STEP_DURATION_BUCKETS,
        ) {
            Ok(builder) => builder.build_recorder(),
            // Only an empty bucket list is refused, and ours is not empty.
            Err(error) => {
                tracing::warn!(%error, "step durations are recorded as summaries");
                PrometheusBuilder::new().build_recorder()
            }
        };
        for (kind, name, unit, help) in SERIES {
            let (key, help) = (KeyName::from_const_str(name), SharedString::const_str(help));
            match kind {
                Kind::Counter => recorder.describe_counter(key, *unit, help),
                Kind::Gauge => recorder.describe_gauge(key, *unit, help),
                Kind::Histogram => recorder.describe_histogram(key, *unit, help),
            }
        }
        Self {
            recorder: Arc::new(recorder),
        }
    }

    /// Folds recorded durations into their histograms every few seconds, until
    /// every clone of these metrics is dropped (the facade's global recorder has
    /// a thread for this; a recorder of our own needs it done).
    pub fn start_upkeep(&self) {
        let recorder: Weak<PrometheusRecorder> = Arc::downgrade(&self.recorder);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(UPKEEP_EVERY).await;
                match recorder.upgrade() {
                    Some(recorder) => recorder.handle().run_upkeep(),
                    None => return,
                }
            }
        });
    }

    /// Prometheus text of everything counted so far.
    pub fn render(&self) -> String {
        self.recorder.handle().render()
    }

    fn counter(&self, name: &'static str, labels: Vec<Label>) -> Counter {
        self.recorder
            .register_counter(&Key::from_parts(name, labels), &METADATA)
    }

    fn gauge(&self, name: &'static str) -> Gauge {
        self.recorder.register_gauge(&Key::from_name(name), &METADATA)
    }

    /// Runs by recipe and final status (for a run whose recipe is no longer loaded;
    /// see [`RecipeMetrics`]).
    pub fn run_ended(&self, recipe: &str, status: &'static str) {
        self.counter(
            "ferry_runs_total",
            vec![Label::new("recipe", recipe.to_owned()), Label::new("status", status)],
        )
        .increment(1);
    }

    /// A poll that failed (the source did not answer, or not with items).
    pub fn poll_failed(&self, recipe: &str) {
        self.counter(
            "ferry_poll_failures_total",
            vec![Label::new("recipe", recipe.to_owned())],
        )
        .increment(1);
    }

    /// Webhook requests by outcome: `accepted`, `duplicate`, `answered` (`respond:
    /// wait`), `unauthorized`, `rate_limited`, `too_large`, `not_found`,
    /// `bad_request`, `timeout`, `unavailable`.
    pub fn hook(&self, outcome: &'static str) {
        self.counter("ferry_webhook_requests_total", vec![Label::new("outcome", outcome)])
            .increment(1);
    }

    /// A render that went over its budget: `budget` is `work` or `bytes`.
    pub fn render_over_budget(&self, recipe: &str, budget: &'static str) {
        self.counter(
            "ferry_renders_over_budget_total",
            vec![Label::new("recipe", recipe.to_owned()), Label::new("budget", budget)],
        )
        .increment(1);
    }

    /// The storage at a scrape: free bytes beside the database, and commits it
    /// refused since the start.
    pub fn storage(&self, free_bytes: Option<u64>, refused_commits: u64) {
        if let Some(free) = free_bytes {
            self.gauge("ferry_disk_free_bytes").set(free as f64);
        }
        self.counter("ferry_store_write_failures_total", Vec::new())
            .absolute(refused_commits);
    }

    /// Recipe files read and parsed by the loads of the recipes folder (a
    /// reload parses only the files that changed).
    pub fn recipe_files_parsed(&self, files: usize) {
        self.counter("ferry_recipe_files_parsed_total", Vec::new())
            .increment(files as u64);
    }

    /// A slow connection closed because the slow places were full.
    pub fn connection_shed(&self) {
        self.counter("ferry_connections_shed_total", Vec::new()).increment(1);
    }

    /// Webhook body bytes held in memory at a scrape (see `FERRY_MAX_BODY_MEMORY`).
    pub fn body_bytes_held(&self, bytes: usize) {
        self.gauge("ferry_webhook_body_bytes_held").set(bytes as f64);
    }

    /// The queue as the store sees it at a scrape.
    pub fn queue(&self, queue: Queue) {
        self.gauge("ferry_queue_depth").set(queue.queued as f64);
        self.gauge("ferry_runs_retrying").set(queue.retrying as f64);
        self.gauge("ferry_runs_waiting").set(queue.waiting as f64);
        self.gauge("ferry_oldest_queued_seconds")
            .set(queue.oldest_queued_age.map_or(0.0, |age| age.as_secs_f64()));
    }
}

/// The queue at a scrape: runs queued, retrying and waiting, and the age of
/// the oldest queued one.
#[derive(Debug, Clone, Copy, Default)]
pub struct Queue {
    pub queued: u64,
    pub retrying: u64,
    pub waiting: u64,
    pub oldest_queued_age: Option<Duration>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn outcome(succeeded: bool) -> &'static str {
    if succeeded { "succeeded" } else { "failed" }
}

/// A loaded recipe's series, each registered with the daemon's recorder at its
/// first use and kept: looking a series up by its labels at every run and
/// attempt was a visible share of a webhook's instructions. A recipe is loaded before
/// the daemon's engine exists, so the recorder comes with each use.
pub struct RecipeMetrics {
    recipe: String,
    runs: [OnceLock<Counter>; 3],
    attempts: [OnceLock<Counter>; 2],
    durations: OnceLock<Histogram>,
}

impl RecipeMetrics {
    pub fn new(recipe: &str) -> Self {
        Self {
            recipe: recipe.to_owned(),
            runs: Default::default(),
            attempts: Default::default(),
            durations: OnceLock::new(),
        }
    }

    /// Counts a run that ended, by its final status.
    pub fn run_ended(&self, metrics: &Metrics, status: FinalStatus) {
        let (index, status) = match status {
            FinalStatus::Succeeded => (0, "succeeded"),
            FinalStatus::Failed => (1, "failed"),
            FinalStatus::Skipped => (2, "skipped"),
        };
        self.runs[index]
            .get_or_init(|| {
                metrics.counter(
                    "ferry_runs_total",
                    vec![Label::new("recipe", self.recipe.clone()), Label::new("status", status)],
                )
            })
            .increment(1);
    }

    /// Counts a step attempt by outcome (`succeeded` or `failed`), and records
    /// its duration.
    pub fn attempt(&self, metrics: &Metrics, succeeded: bool, duration: Duration) {
        self.attempts[usize::from(!succeeded)]
            .get_or_init(|| {
                metrics.counter(
                    "ferry_step_attempts_total",
                    vec![
                        Label::new("recipe", self.recipe.clone()),
                        Label::new("outcome", outcome(succeeded)),
                    ],
                )
            })
            .increment(1);
        self.durations
            .get_or_init(|| {
                let key = Key::from_parts(
                    "ferry_step_duration_seconds",
                    vec![Label::new("recipe", self.recipe.clone())],
                );
                metrics.recorder.register_histogram(&key, &METADATA)
            })
            .record(duration.as_secs_f64());
    }
}

impl std::fmt::Debug for RecipeMetrics {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RecipeMetrics")
            .field("recipe", &self.recipe)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every series this file records has help text: a name written in a
    /// `counter`/`gauge` call but missing from [`SERIES`] would reach `/metrics`
    /// without `# HELP` (promtool's complaint).
    #[test]
    fn every_series_recorded_here_is_described() {
        let source = include_str!("observe.rs");
        let described: Vec<&str> = SERIES.iter().map(|(_, name, _, _)| *name).collect();
        let recorded: Vec<&str> = source
            .split('"')
            .skip(1)
            .step_by(2)
            .filter(|text| text.starts_with("ferry_") && !text.contains(' '))
            .collect();
        assert!(recorded.len() >= described.len(), "{recorded:?}");
        for name in recorded {
            assert!(described.contains(&name), "`{name}` has no help text in SERIES");
        }
    }

    #[test]
    fn the_rendered_text_has_help_for_each_series() {
        let metrics = Metrics::new();
        metrics.hook("accepted");
        metrics.queue(Queue {
            queued: 1,
            ..Queue::default()
        });
        let text = metrics.render();
        assert!(
            text.contains("# HELP ferry_webhook_requests_total Webhook requests, by outcome."),
            "{text}"
        );
        assert!(text.contains("# HELP ferry_oldest_queued_seconds "), "{text}");
    }
}
