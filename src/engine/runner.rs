//! The daemon's runs: a claimed run goes through the run loop (see
//! `run_loop/`) with the daemon as its host — requests sent for real, a failed
//! attempt waiting in the store for its retry, everything recorded in the store.
//! A fresh one-step run costs two writes — its insert, its end — each a share of
//! a group commit.

use std::time::Duration;

use serde_json::Value;

use super::run_loop::{self, Host, Progress, RunState};
use super::{CancelledBy, Engine, RunEnd, failure_trigger};
use crate::action::{self, HttpRequest, Outcome};
use crate::recipe::{Recipe, Step};
use crate::step::Turn;
use crate::store::{self, ClaimedRun, FinalStatus, Recorded, RunChange, RunWrite};

/// The daemon as the run loop's host.
struct Daemon<'e> {
    engine: &'e Engine,
}

impl Host for Daemon<'_> {
    async fn exchange(&self, step: &Step, request: &HttpRequest) -> (Outcome, bool) {
        (
            action::http::execute(&self.engine.destinations, request, step.timeout).await,
            true,
        )
    }

    async fn store(&self, write: RunWrite) -> Result<(), store::Error> {
        let run_id = write.run_id.clone();
        if record_until_stored(self.engine, write).await? == Recorded::Cancelled {
            // Cancelled in the database, not through this daemon: from now on
            // the run loop sees it as it sees a cancel through the API.
            self.engine.mark_cancelled(&run_id, CancelledBy::Store);
        }
        Ok(())
    }

    async fn render_heavy<T: Send>(&self, render: impl FnOnce() -> T + Send) -> T {
        self.engine.render_apart(render).await
    }

    fn retries(&self) -> bool {
        true
    }

    fn over_budget(&self, recipe: &Recipe, budget: &'static str) {
        self.engine.metrics.render_over_budget(&recipe.id, budget);
    }

    fn attempted(&self, recipe: &Recipe, succeeded: bool, elapsed: Duration) {
        recipe.metrics.attempt(&self.engine.metrics, succeeded, elapsed);
    }

    fn log(&self, run_id: &str, step: &Step, line: &str) {
        crate::step::log::execute(run_id, &step.id, line);
    }

    fn turn(&self, _step: &Step, _element: Option<u32>, _turn: Turn<'_>) {}

    fn cancelled(&self, run_id: &str) -> bool {
        self.engine.is_cancelled(run_id)
    }
}

pub(super) async fn execute(engine: &Engine, run: ClaimedRun) {
    let run_id = run.id.clone();
    run_and_record(engine, run).await;
    engine.forget_cancel(&run_id);
}

async fn run_and_record(engine: &Engine, mut run: ClaimedRun) {
    let mut write = RunWrite::new(&run.id);
    let mut context = context_of(engine, &mut run);
    let recipe = engine.recipes.current().get(&run.recipe).cloned();
    let progress = match &recipe {
        Some(recipe) => {
            if recipe.version != run.recipe_version {
                // Reloaded since the run was queued: the record names the version that runs.
                write.recipe_version = Some(recipe.version.clone());
            }
            let state = RunState {
                run_id: &run.id,
                context: &mut context,
                stored: &run.steps,
                deadline: deadline_of(recipe, run.started_at.as_deref()),
            };
            run_loop::run_recipe(&Daemon { engine }, &engine.templates, recipe, state, &mut write).await
        }
        None => Err(run_loop::RunError::NotLoaded(run.recipe.clone())),
    };
    if let Some(by) = engine.cancelled_by(&run.id) {
        // The store ended it as `cancelled`: what it did until then is
        // recorded, and its status stays.
        if by == CancelledBy::Store {
            engine
                .metrics
                .run_ended(&run.recipe, store::RunStatus::Cancelled.as_str());
        }
        write.change = None;
        if let Err(store_error) = record_until_stored(engine, write).await {
            tracing::error!(run = %run.id, error = %store_error, "cannot record a cancelled run's last attempt");
        }
        tracing::info!(run = %run.id, recipe = %run.recipe, "run cancelled");
        let end = RunEnd {
            status: store::RunStatus::Cancelled,
            error: None,
            last_step: None,
        };
        engine.completions.finished(&run.id, &end);
        return;
    }
    let (final_status, error, last_step, failure) = match progress {
        Ok(Progress::WaitsForRetry(due) | Progress::Waits(due)) => {
            write.change = Some(match progress {
                Ok(Progress::Waits(_)) => RunChange::WaitUntil(due),
                _ => RunChange::RetryAt(due),
            });
            if let Err(store_error) = record_until_stored(engine, write).await {
                // The run stays `running` in the store and is picked up again at recovery.
                tracing::error!(run = %run.id, error = %store_error, "cannot record a retry");
            }
            return;
        }
        Ok(Progress::Ended(status, last_step)) => (status, None, last_step, None),
        Err(error) => (FinalStatus::Failed, Some(error.to_string()), None, Some(error)),
    };
    let status = store::RunStatus::from(final_status);
    match &recipe {
        Some(recipe) => recipe.metrics.run_ended(&engine.metrics, final_status),
        None => engine.metrics.run_ended(&run.recipe, status.as_str()),
    }
    tracing::info!(run = %run.id, recipe = %run.recipe, %status, error = error.as_deref(), "run ended");
    write.change = Some(RunChange::End(final_status, error.clone()));
    if let (Some(failure), Some(message)) = (&failure, &error) {
        write.new_runs = failure_runs(engine, &run, failure, message, &mut context).await;
    }
    let wakes = !write.new_runs.is_empty();
    if let Err(store_error) = record_until_stored(engine, write).await {
        // The run stays `running` in the store and is picked up again at recovery.
        tracing::error!(run = %run.id, error = %store_error, "cannot record the end of a run");
        return;
    }
    if wakes {
        engine.waker().wake();
    }
    engine.completions.finished(
        &run.id,
        &RunEnd {
            status,
            error,
            last_step,
        },
    );
}

/// The runs of the recipes whose `failure` trigger watches this failed run's
/// recipe, each with the envelope as its payload.
async fn failure_runs(
    engine: &Engine,
    run: &ClaimedRun,
    failure: &run_loop::RunError,
    message: &str,
    context: &mut Value,
) -> Vec<crate::event::Event> {
    let recipes = engine.recipes.current();
    if recipes.failure_watchers(&run.recipe).next().is_none() {
        return Vec::new();
    }
    // The input as stored: the run's templates were given only what they read
    // of it. Stored, it is already redacted with the recipe's secrets.
    let input = match engine.store.payload(&run.id).await {
        Ok(Some(stored)) => stored,
        unread => {
            let error = unread.err().map(|error| error.to_string());
            tracing::warn!(run = %run.id, error, "cannot read the failed run's input; its failure runs get what its templates read of it");
            context["payload"].take()
        }
    };
    let named = failure.as_context();
    let failed = failure_trigger::FailedRun {
        id: &run.id,
        recipe: &run.recipe,
        error: message,
        failed_step: named["step"].as_str().map(str::to_owned),
        status: named["status"].as_u64().and_then(|status| u16::try_from(status).ok()),
        input,
    };
    failure_trigger::events(&recipes, &failed, &run.trigger, &engine.public_url)
}

/// When the recipe's `timeout` ends a run that started at `started_at` (now
/// when it is starting).
fn deadline_of(recipe: &crate::recipe::Recipe, started_at: Option<&str>) -> Option<chrono::DateTime<chrono::Utc>> {
    let timeout = recipe.timeout.as_ref()?;
    let started = started_at
        .and_then(|text| chrono::DateTime::parse_from_rfc3339(text).ok())
        .map_or_else(chrono::Utc::now, |time| time.to_utc());
    started.checked_add_signed(chrono::Duration::from_std(timeout.limit).ok()?)
}

/// What the run's templates see. The trigger input moves into it rather than
/// being copied: a payload can be large.
fn context_of(engine: &Engine, run: &mut ClaimedRun) -> Value {
    let trigger = crate::event::trigger_context(&run.recipe, &run.trigger, &run.received_at, &run.id);
    run_loop::run_context(
        trigger,
        &engine.public_url,
        std::mem::take(&mut run.payload),
        std::mem::take(&mut run.headers),
        std::mem::take(&mut run.query),
    )
}

/// The first wait before a record the storage refused is tried again; it
/// doubles up to [`STORE_RETRY_MAX`].
const STORE_RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(200);
const STORE_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(5);

/// Stores a run's changes, waiting out a storage that refuses writes (a full
/// disk, an I/O error): the run keeps its slot meanwhile and is recorded as soon
/// as writes work again, without a restart. A shutdown ends the wait (the run is
/// then resumed at the next start).
async fn record_until_stored(engine: &Engine, write: RunWrite) -> Result<Recorded, store::Error> {
    let mut outcome = engine.store.record(write).await;
    let mut pause = STORE_RETRY_FIRST;
    loop {
        match outcome {
            Ok(recorded) => return Ok(recorded),
            Err(unrecorded) if unrecorded.may_succeed_later() => {
                if pause == STORE_RETRY_FIRST {
                    tracing::warn!(error = %unrecorded, "cannot record a run; trying again until the storage takes it");
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(STORE_RETRY_MAX);
                outcome = engine.store.record_again(unrecorded).await;
            }
            Err(unrecorded) => return Err(unrecorded.error),
        }
    }
}
