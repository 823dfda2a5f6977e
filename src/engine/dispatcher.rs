//! Claims queued runs and starts a runner for each, within the global worker
//! limit and each recipe's `concurrency`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{Semaphore, watch};
use tokio::task::{Id, JoinError, JoinSet};
use tokio::time::Instant;
use tracing::Instrument as _;

use super::{Engine, runner};

/// How many queued runs one look at the store considers.
const CLAIM_BATCH: u32 = 256;
/// The dispatcher looks at the store at least this often, even without a wake-up
/// (runs queued by another process, or a missed notification).
const IDLE_POLL: Duration = Duration::from_secs(1);
/// While runs wait for a worker, the dispatcher claims when this share of the
/// workers is free (or after [`BACKLOG_POLL`]) rather than for each one that frees:
/// every look at the store costs a read and a write, whatever it claims.
const REFILL_SHARE: usize = 8;
const BACKLOG_POLL: Duration = Duration::from_millis(20);

pub(super) async fn dispatch(engine: Arc<Engine>, mut shutdown: watch::Receiver<bool>, grace: Duration) {
    let workers = Arc::new(Semaphore::new(engine.worker_limit));
    let mut in_flight = InFlight::default();
    let refill = (engine.worker_limit / REFILL_SHARE).max(1);
    let mut backlog = false;
    let mut next_look = Instant::now();

    while !*shutdown.borrow() {
        while let Some(finished) = in_flight.runners.try_join_next_with_id() {
            in_flight.release(finished);
        }
        let free = workers.available_permits();
        if free > 0 && (!backlog || free >= refill || Instant::now() >= next_look) {
            backlog = claim_ready(&engine, &workers, &mut in_flight).await;
            let pause = until_next_retry(&engine).await;
            next_look = Instant::now() + if backlog { pause.min(BACKLOG_POLL) } else { pause };
        }
        tokio::select! {
            () = engine.wake.notified() => {}
            Some(finished) = in_flight.runners.join_next_with_id() => in_flight.release(finished),
            _ = shutdown.changed() => {}
            () = tokio::time::sleep_until(next_look) => {}
        }
    }
    let drained = tokio::time::timeout(grace, async {
        while let Some(finished) = in_flight.runners.join_next_with_id().await {
            in_flight.release(finished);
        }
    })
    .await;
    if drained.is_err() {
        let unfinished = in_flight.runners.len();
        in_flight.runners.abort_all();
        while in_flight.runners.join_next().await.is_some() {}
        // Their attempts may or may not have reached the destination: they run again
        // at the next start, with the same Idempotency-Key (at least once).
        match engine.store.requeue_interrupted().await {
            Ok(requeued) => tracing::warn!(
                unfinished,
                requeued,
                "grace period over: runs in flight handed back to the queue"
            ),
            Err(error) => tracing::error!(%error, "cannot hand runs back to the queue; the next start will"),
        }
    }
}

/// The runners in flight and how many belong to each recipe.
#[derive(Default)]
struct InFlight {
    runners: JoinSet<()>,
    recipe_of: HashMap<Id, String>,
    per_recipe: HashMap<String, u32>,
}

impl InFlight {
    fn count(&self, recipe_id: &str) -> u32 {
        self.per_recipe.get(recipe_id).copied().unwrap_or(0)
    }

    fn start(&mut self, recipe_id: String, runner: impl Future<Output = ()> + Send + 'static) {
        let task = self.runners.spawn(runner);
        *self.per_recipe.entry(recipe_id.clone()).or_default() += 1;
        self.recipe_of.insert(task.id(), recipe_id);
    }

    fn release(&mut self, finished: Result<(Id, ()), JoinError>) {
        let id = match finished {
            Ok((id, ())) => id,
            Err(error) => {
                // A panicking runner is a bug; its run stays `running` until recovery.
                tracing::error!(%error, "a runner task failed");
                error.id()
            }
        };
        let Some(recipe_id) = self.recipe_of.remove(&id) else {
            return;
        };
        if let Some(count) = self.per_recipe.get_mut(&recipe_id) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_recipe.remove(&recipe_id);
            }
        }
    }
}

/// How long the dispatcher may sleep: until the earliest waiting retry is due,
/// and at most [`IDLE_POLL`].
async fn until_next_retry(engine: &Engine) -> Duration {
    match engine.store.next_retry_at().await {
        Ok(Some(due)) => (due - Utc::now()).to_std().unwrap_or(Duration::ZERO).min(IDLE_POLL),
        Ok(None) => IDLE_POLL,
        Err(error) => {
            tracing::error!(%error, "cannot read the retry times");
            IDLE_POLL
        }
    }
}

/// Claims due runs within the limits and starts them; says whether due runs were
/// left waiting.
async fn claim_ready(engine: &Arc<Engine>, workers: &Arc<Semaphore>, in_flight: &mut InFlight) -> bool {
    let candidates = match engine.store.due(Utc::now(), CLAIM_BATCH).await {
        Ok(candidates) => candidates,
        Err(error) => {
            tracing::error!(%error, "cannot read the queue");
            return false;
        }
    };
    let seen = candidates.len();
    // Choose within the limits first, then claim them all in one write.
    let recipes = engine.recipes.current();
    let mut chosen = Vec::new();
    let mut permits = HashMap::new();
    let mut planned: HashMap<String, u32> = HashMap::new();
    for (run_id, recipe_id) in candidates {
        let limit = recipes.get(&recipe_id).map_or(1, |recipe| recipe.concurrency);
        let planned = planned.entry(recipe_id.clone()).or_default();
        if in_flight.count(&recipe_id) + *planned >= limit {
            continue;
        }
        let Ok(permit) = workers.clone().try_acquire_owned() else {
            break;
        };
        *planned += 1;
        permits.insert(run_id.clone(), (permit, recipe_id));
        chosen.push(run_id);
    }
    let left_waiting = chosen.len() < seen;
    let runs = match engine.store.claim(chosen).await {
        Ok(runs) => runs,
        Err(error) => {
            tracing::error!(%error, "cannot claim runs");
            return left_waiting;
        }
    };
    for run in runs {
        // Runs another claim took first are not returned; their permits go back.
        let Some((permit, recipe_id)) = permits.remove(&run.id) else {
            continue;
        };
        let engine = engine.clone();
        // Every line the run logs carries its recipe and id.
        let span = tracing::info_span!("run", recipe = %run.recipe, run_id = %run.id);
        in_flight.start(
            recipe_id,
            async move {
                runner::execute(&engine, run).await;
                drop(permit);
            }
            .instrument(span),
        );
    }
    left_waiting
}
