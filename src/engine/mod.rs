//! The engine: the life of a run after it is stored. The dispatcher claims queued
//! runs within the global worker limit and each recipe's `concurrency`; the runner
//! evaluates `when`, renders and executes the steps in order, and records every
//! attempt.

mod backoff;
mod completions;
mod dispatcher;
pub mod rehearse;
pub(crate) mod render;
pub(crate) mod runner;

use std::sync::Arc;

use tokio::sync::{Notify, watch};

use crate::action::Destinations;
use crate::recipe::LiveRecipes;
use crate::store::Store;
use crate::template::Templates;

pub use completions::{Completions, RunEnd};

/// Most runs in flight at once across all recipes. A run in flight mostly waits
/// (for its commits, for its destination), so this is set by memory, not cores:
/// at 64 the benchmark's runs queued faster than they ran, at 256 they keep up.
pub const DEFAULT_WORKER_LIMIT: usize = 256;

/// Everything a run needs, shared by the dispatcher and its runners.
pub struct Engine {
    store: Store,
    recipes: LiveRecipes,
    templates: Arc<Templates>,
    destinations: Destinations,
    /// `ferry.url` in templates.
    public_url: String,
    wake: Arc<Notify>,
    worker_limit: usize,
    completions: Completions,
}

/// Tells the dispatcher that a run was queued, so it need not wait for its next
/// look at the store.
#[derive(Clone)]
pub struct Waker(Arc<Notify>);

impl Waker {
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

impl Engine {
    pub fn new(
        store: Store,
        recipes: LiveRecipes,
        templates: Arc<Templates>,
        destinations: Destinations,
        public_url: String,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            recipes,
            templates,
            destinations,
            public_url,
            wake: Arc::new(Notify::new()),
            worker_limit: DEFAULT_WORKER_LIMIT,
            completions: Completions::default(),
        })
    }

    /// Where webhooks with `respond: wait` learn that their run ended.
    pub fn completions(&self) -> Completions {
        self.completions.clone()
    }

    pub fn waker(&self) -> Waker {
        Waker(self.wake.clone())
    }

    /// Claims and runs due runs until `shutdown` turns true, then lets the runs in
    /// flight finish for at most `grace`; those still running then are handed back
    /// to the queue (the next start resumes them).
    pub async fn dispatch(self: Arc<Self>, shutdown: watch::Receiver<bool>, grace: std::time::Duration) {
        dispatcher::dispatch(self, shutdown, grace).await;
    }
}
