//! New runs into the engine. A run that has room the moment it arrives, with no
//! run waiting in the queue before it, is stored as `running` and handed straight
//! to a runner: it skips the queue, and with it a read of the queue, a claim and a
//! parse of its payload back from the store. Any other run is stored as `queued`
//! for the dispatcher.

use std::sync::Arc;

use tracing::Instrument as _;

use super::slots::Slot;
use super::{Engine, runner};
use crate::event::Event;
use crate::store::{self, ClaimedRun, Enqueued, Start};

impl Engine {
    /// Stores an event as a run and starts it (or queues it when its recipe or the
    /// engine is at its limit). Returns once the run is committed — so a webhook
    /// may be acknowledged — or, for a repeated dedup key, the first run.
    pub async fn accept(self: &Arc<Self>, event: Event) -> Result<Enqueued, store::Error> {
        let concurrency = self.concurrency_of(&self.recipes.current(), &event.recipe);
        // Runs that wait in the queue go first: the new one waits behind them.
        let slot = if self.backlog.may_hold_runs() {
            None
        } else {
            self.slots.try_take(&event.recipe, concurrency)
        };
        let Some(slot) = slot else {
            // Noted before it is stored, so that no run is handed over ahead of it.
            self.backlog.note_queued();
            let stored = self.store.enqueue(&event, Start::Queued).await;
            if matches!(stored, Ok(Enqueued::New(_))) {
                self.wake.notify_one();
            }
            return stored;
        };
        // Stored and started by a task of its own: if the caller goes away (the
        // sender hung up), a committed run still runs rather than waiting,
        // `running`, for the next start.
        let (stored_reply, stored) = tokio::sync::oneshot::channel();
        let engine = Arc::clone(self);
        self.spawn_runner(async move {
            let outcome = engine.store.enqueue(&event, Start::Running).await;
            let fresh = matches!(outcome, Ok(Enqueued::New(_)));
            let _ = stored_reply.send(outcome);
            if fresh {
                run_in_slot(&engine, ClaimedRun::fresh(event), slot).await;
            }
        });
        stored.await.unwrap_or(Err(store::Error::Closed))
    }
}

/// Runs a run in its slot, every line it logs carrying its recipe and id.
pub(super) async fn run_in_slot(engine: &Engine, run: ClaimedRun, slot: Slot) {
    let span = tracing::info_span!("run", recipe = %run.recipe, run_id = %run.id);
    runner::execute(engine, run).instrument(span).await;
    drop(slot);
}
