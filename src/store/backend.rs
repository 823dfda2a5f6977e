//! The store's interface: every operation the engine, the triggers, the API and
//! the commands ask of the store, in one place. SQLite (`sqlite.rs` and the
//! files beside it) is its one backend today; a second backend is a variant
//! here and a module beside `sqlite.rs`, and nothing outside `store` changes.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::sqlite::{SqliteStore, Unrecorded};
use super::{
    Cancelled, ClaimedRun, Durability, Enqueued, Error, QueueStats, Recorded, Reopened, RunDocument, RunFilter,
    RunSummary, RunWrite, Start, Tick, TickOutcome, TriggerState,
};
use crate::event::Event;
use crate::recipe::{ClaimChanges, Claims};
use crate::status::RunStatus;

/// The database of runs.
#[derive(Clone)]
pub enum Store {
    Sqlite(SqliteStore),
}

impl Store {
    /// Opens (creating if missing) the database at `url` and applies migrations.
    pub async fn open(url: &str, durability: Durability) -> Result<Self, Error> {
        Ok(Store::Sqlite(SqliteStore::open(url, durability).await?))
    }

    /// Why writes fail, while they do (a full disk, an I/O error): `None` when
    /// they work.
    pub async fn write_failure(&self) -> Option<String> {
        match self {
            Store::Sqlite(store) => store.write_failure().await,
        }
    }

    /// Whether it was closed (the daemon's background tasks then stop).
    pub fn is_closed(&self) -> bool {
        match self {
            Store::Sqlite(store) => store.is_closed(),
        }
    }

    /// Commits the storage refused since the start.
    pub fn write_refusals(&self) -> u64 {
        match self {
            Store::Sqlite(store) => store.write_refusals(),
        }
    }

    /// Where the data lives on this machine, for the free space beside it.
    pub fn file(&self) -> &std::path::Path {
        match self {
            Store::Sqlite(store) => store.file(),
        }
    }

    /// Lets the writes queued so far commit, then closes.
    pub async fn close(&self) {
        match self {
            Store::Sqlite(store) => store.close().await,
        }
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), Error> {
        match self {
            Store::Sqlite(store) => store.ping().await,
        }
    }

    /// How many runs are queued and retrying, and the oldest queued one's age.
    pub async fn queue_stats(&self) -> Result<QueueStats, Error> {
        match self {
            Store::Sqlite(store) => store.queue_stats().await,
        }
    }

    /// Stores an event as a run, queued or already running — or, for a dedup
    /// key seen before, finds the first run with it. Committed when it returns.
    pub async fn enqueue(&self, event: &Event, start: Start) -> Result<Enqueued, Error> {
        match self {
            Store::Sqlite(store) => store.enqueue(event, start).await,
        }
    }

    /// Runs ready to run, as `(run id, recipe id)`: retries due, then queued runs.
    pub async fn due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<(String, String)>, Error> {
        match self {
            Store::Sqlite(store) => store.due(now, limit).await,
        }
    }

    /// When the next retry is due.
    pub async fn next_retry_at(&self) -> Result<Option<DateTime<Utc>>, Error> {
        match self {
            Store::Sqlite(store) => store.next_retry_at().await,
        }
    }

    /// Moves the runs still due to `running` and gives them with what they
    /// recorded; `parse_payload` builds a payload as its recipe reads it.
    pub async fn claim(
        &self,
        run_ids: Vec<String>,
        parse_payload: impl Fn(&str, &str) -> serde_json::Result<Value>,
    ) -> Result<Vec<ClaimedRun>, Error> {
        match self {
            Store::Sqlite(store) => store.claim(run_ids, parse_payload).await,
        }
    }

    /// Ends a run that has not ended as `cancelled`; says what it was, or
    /// `Ended` with the status of a run that had ended, or `None` for no such run.
    pub async fn cancel(&self, run_id: &str) -> Result<Option<Cancelled>, Error> {
        match self {
            Store::Sqlite(store) => store.cancel(run_id).await,
        }
    }

    /// Queues a failed or cancelled run again, to go on from the step that did
    /// not finish; says what it was, or `Not` with a status that does not
    /// resume, or `None` for no such run.
    pub async fn resume(&self, run_id: &str) -> Result<Option<Reopened>, Error> {
        match self {
            Store::Sqlite(store) => store.resume(run_id).await,
        }
    }

    /// At start: runs left `running` by a stopped process are queued again.
    pub async fn requeue_interrupted(&self) -> Result<u64, Error> {
        match self {
            Store::Sqlite(store) => store.requeue_interrupted().await,
        }
    }

    /// Stores changes to a run; what could not be stored comes back.
    pub async fn record(&self, write: RunWrite) -> Result<Recorded, Unrecorded> {
        match self {
            Store::Sqlite(store) => store.record(write).await,
        }
    }

    /// Tries a record that failed again.
    pub async fn record_again(&self, unrecorded: Unrecorded) -> Result<Recorded, Unrecorded> {
        match self {
            Store::Sqlite(store) => store.record_again(unrecorded).await,
        }
    }

    /// One page of runs, newest first.
    pub async fn runs_page(&self, filter: &RunFilter) -> Result<Vec<RunSummary>, Error> {
        match self {
            Store::Sqlite(store) => store.runs_page(filter).await,
        }
    }

    /// The newest run of each of these recipes.
    pub async fn last_runs(&self, recipes: &[&str]) -> Result<HashMap<String, RunSummary>, Error> {
        match self {
            Store::Sqlite(store) => store.last_runs(recipes).await,
        }
    }

    /// A recipe's runs by status.
    pub async fn run_counts(&self, recipe: &str) -> Result<Vec<(RunStatus, u64)>, Error> {
        match self {
            Store::Sqlite(store) => store.run_counts(recipe).await,
        }
    }

    /// A run's trigger input as stored, whole (a run's templates get only
    /// what they read of it).
    pub async fn payload(&self, run_id: &str) -> Result<Option<Value>, Error> {
        match self {
            Store::Sqlite(store) => store.payload(run_id).await,
        }
    }

    /// A run with every attempt of every step.
    pub async fn run(&self, run_id: &str) -> Result<Option<RunDocument>, Error> {
        match self {
            Store::Sqlite(store) => store.run(run_id).await,
        }
    }

    /// The claims of recipe names and paths, as last stored.
    pub async fn recipe_claims(&self) -> Result<Claims, Error> {
        match self {
            Store::Sqlite(store) => store.recipe_claims().await,
        }
    }

    /// Replaces the stored claims.
    pub async fn save_recipe_claims(&self, claims: &Claims) -> Result<(), Error> {
        match self {
            Store::Sqlite(store) => store.save_recipe_claims(claims).await,
        }
    }

    /// Stores what a reload changed in the claims.
    pub async fn update_recipe_claims(&self, changes: &ClaimChanges) -> Result<(), Error> {
        match self {
            Store::Sqlite(store) => store.update_recipe_claims(changes).await,
        }
    }

    /// Deletes finished runs older than `retention`; says how many.
    pub async fn prune_older_than(&self, retention: Duration) -> Result<u64, Error> {
        match self {
            Store::Sqlite(store) => store.prune_older_than(retention).await,
        }
    }

    /// What a schedule or poll recipe's trigger last did.
    pub async fn trigger_state(&self, recipe: &str) -> Result<TriggerState, Error> {
        match self {
            Store::Sqlite(store) => store.trigger_state(recipe).await,
        }
    }

    /// A schedule's or poll's fire time, with the runs it starts, once.
    pub async fn tick(&self, tick: Tick) -> Result<TickOutcome, Error> {
        match self {
            Store::Sqlite(store) => store.tick(tick).await,
        }
    }
}
