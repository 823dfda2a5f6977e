//! The engine: the life of a run after it is stored. A new run with room starts
//! at once (the intake); the others wait in the store, where the dispatcher claims
//! them within the global worker limit and each recipe's `concurrency`; the runner
//! evaluates `when`, renders and executes the steps in order, and records every
//! attempt.

mod backlog;
mod backoff;
mod completions;
mod dispatcher;
pub mod failure_trigger;
mod intake;
pub mod rehearse;
pub(crate) mod run_loop;
pub(crate) mod runner;
mod slots;

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use crate::action::Destinations;
use crate::observe::Metrics;
use crate::recipe::LiveRecipes;
use crate::store::{self, Store};
use crate::template::Templates;

pub use completions::{Completions, RunEnd};

/// Most runs in flight at once across all recipes. A run in flight mostly waits
/// (for its commits, for its destination), so this is set by memory, not cores:
/// a smaller limit let the relay benchmark's runs queue faster than they ran.
pub const DEFAULT_WORKER_LIMIT: usize = crate::recipe::DEFAULT_CONCURRENCY as usize;

/// Everything a run needs, shared by the dispatcher and its runners.
pub struct Engine {
    store: Store,
    recipes: LiveRecipes,
    templates: Arc<Templates>,
    destinations: Destinations,
    /// `ferry.url` in templates.
    public_url: String,
    wake: Arc<Notify>,
    backlog: Arc<backlog::Backlog>,
    slots: Arc<slots::Slots>,
    /// Every runner task, whether the dispatcher or the intake started it: a
    /// shutdown waits for them (and aborts them after the grace period).
    runners: Mutex<JoinSet<()>>,
    completions: Completions,
    metrics: Metrics,
    /// Renders with blocks in progress at once: one per core (see `render_apart`).
    heavy_renders: tokio::sync::Semaphore,
    /// Runs cancelled while they ran here: their run loop starts no further
    /// attempt (the store already says `cancelled`).
    cancelled: Mutex<std::collections::HashMap<String, CancelledBy>>,
}

/// How a run running here was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CancelledBy {
    /// Through this daemon (the API, a page's button): counted then.
    Here,
    /// In the database, by another process (`ferry runs cancel`): found when
    /// the run stored its next request, and counted when it lets go.
    Store,
}

/// A panicking runner is a bug; its run stays `running` until the next start
/// queues it again.
fn report_panic(ended: Result<(), tokio::task::JoinError>) {
    if let Err(error) = ended
        && error.is_panic()
    {
        tracing::error!(%error, "a runner task failed");
    }
}

/// Tells the dispatcher that a run was queued, so it need not wait for its next
/// look at the store.
#[derive(Clone)]
pub struct Waker {
    wake: Arc<Notify>,
    backlog: Arc<backlog::Backlog>,
}

impl Waker {
    pub fn wake(&self) {
        self.backlog.note_queued();
        self.wake.notify_one();
    }
}

impl Engine {
    pub fn new(
        store: Store,
        recipes: LiveRecipes,
        templates: Arc<Templates>,
        destinations: Destinations,
        public_url: String,
        metrics: Metrics,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            recipes,
            templates,
            destinations,
            public_url,
            wake: Arc::new(Notify::new()),
            backlog: Arc::new(backlog::Backlog::new()),
            slots: slots::Slots::new(DEFAULT_WORKER_LIMIT),
            runners: Mutex::new(JoinSet::new()),
            completions: Completions::default(),
            metrics,
            heavy_renders: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            ),
            cancelled: Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// Cancels a run: the store ends it as `cancelled` if it had not ended, and
    /// a run running here starts no further attempt (the one in flight ends
    /// and is recorded). `None`: no such run.
    pub async fn cancel(&self, run_id: &str) -> Result<Option<store::Cancelled>, store::Error> {
        // Marked first: the run may reach its next attempt while the store writes.
        self.mark_cancelled(run_id, CancelledBy::Here);
        let cancelled = self.store.cancel(run_id).await;
        let running = matches!(cancelled, Ok(Some(store::Cancelled::Was(store::RunStatus::Running))));
        if !running {
            self.forget_cancel(run_id);
        }
        if let Ok(Some(store::Cancelled::Was(_))) = &cancelled {
            let recipe = self
                .store
                .run(run_id)
                .await
                .ok()
                .flatten()
                .map(|run| run.summary.recipe);
            if let Some(recipe) = recipe {
                self.metrics.run_ended(&recipe, store::RunStatus::Cancelled.as_str());
            }
        }
        cancelled
    }

    /// Queues a failed or cancelled run again, to go on in place: its ended
    /// steps are not run again, the one that did not finish is sent with its
    /// own `Idempotency-Key`.
    pub async fn resume(&self, run_id: &str) -> Result<Option<store::Reopened>, store::Error> {
        let reopened = self.store.resume(run_id).await?;
        if let Some(store::Reopened::Was(_)) = reopened {
            self.waker().wake();
        }
        Ok(reopened)
    }

    /// A run running here starts no further attempt: cancelled through this
    /// daemon, or found cancelled in the store (by `ferry runs cancel`, or
    /// another process on the database).
    pub(crate) fn mark_cancelled(&self, run_id: &str, by: CancelledBy) {
        self.cancelled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(run_id.to_owned(), by);
    }

    /// Whether a run was cancelled while it ran here, and how.
    pub(crate) fn cancelled_by(&self, run_id: &str) -> Option<CancelledBy> {
        let cancelled = self.cancelled.lock().unwrap_or_else(PoisonError::into_inner);
        if cancelled.is_empty() {
            return None;
        }
        cancelled.get(run_id).copied()
    }

    /// Whether a run was cancelled while it ran here.
    pub(crate) fn is_cancelled(&self, run_id: &str) -> bool {
        self.cancelled_by(run_id).is_some()
    }

    /// A cancelled run's runner let go of it.
    pub(crate) fn forget_cancel(&self, run_id: &str) {
        let mut cancelled = self.cancelled.lock().unwrap_or_else(PoisonError::into_inner);
        if !cancelled.is_empty() {
            cancelled.remove(run_id);
        }
    }

    /// Runs a render that may take its whole work budget (templates with loops,
    /// tens of milliseconds at the default) off the async workers, one per core at a time:
    /// webhooks and other runs go on meanwhile, and the memory such renders hold
    /// is a few budgets, not one per run in flight. A one-thread runtime (the
    /// short-lived commands) renders in place.
    pub(crate) async fn render_apart<T>(&self, render: impl FnOnce() -> T) -> T {
        let _permit = self.heavy_renders.acquire().await.ok();
        match tokio::runtime::Handle::current().runtime_flavor() {
            tokio::runtime::RuntimeFlavor::CurrentThread => render(),
            _ => tokio::task::block_in_place(render),
        }
    }

    /// How many runs of a recipe may be in flight (1 for a recipe no longer loaded:
    /// its runs fail at once).
    fn concurrency_of(&self, recipes: &crate::recipe::RecipeSet, recipe_id: &str) -> u32 {
        recipes.get(recipe_id).map_or(1, |recipe| recipe.concurrency)
    }

    /// Starts a runner task, first collecting those that ended.
    fn spawn_runner(&self, runner: impl Future<Output = ()> + Send + 'static) {
        let mut runners = self.runners.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(ended) = runners.try_join_next() {
            report_panic(ended);
        }
        // Boxed: a runner's future is several kilobytes, and the task moves what
        // it is given whole a few times on its way in and out; a box moves as a
        // pointer (fewer bytes copied per webhook, counted with callgrind).
        runners.spawn(Box::pin(runner));
    }

    /// The runner tasks started so far, taken out to be waited for.
    fn take_runners(&self) -> JoinSet<()> {
        std::mem::take(&mut *self.runners.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Where webhooks with `respond: wait` learn that their run ended.
    pub fn completions(&self) -> Completions {
        self.completions.clone()
    }

    pub fn waker(&self) -> Waker {
        Waker {
            wake: self.wake.clone(),
            backlog: self.backlog.clone(),
        }
    }

    /// Claims and runs due runs until `shutdown` turns true, then lets the runs in
    /// flight finish for at most `grace`; those still running then are handed back
    /// to the queue (the next start resumes them).
    pub async fn dispatch(self: Arc<Self>, shutdown: watch::Receiver<bool>, grace: std::time::Duration) {
        dispatcher::dispatch(self, shutdown, grace).await;
    }
}
