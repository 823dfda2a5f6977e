//! Claims queued and due runs from the store and starts a runner for each, within
//! the global worker limit and each recipe's `concurrency` (see `slots.rs`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;
use tokio::time::Instant;

use super::intake::run_in_slot;
use super::{DEFAULT_WORKER_LIMIT, Engine};

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
/// After the store fails to give or claim runs, the first pause before the next
/// look; it doubles up to [`FAILING_MAX`].
const FAILING_FIRST: Duration = Duration::from_millis(100);
const FAILING_MAX: Duration = Duration::from_secs(5);

pub(super) async fn dispatch(engine: Arc<Engine>, mut shutdown: watch::Receiver<bool>, grace: Duration) {
    let refill = (DEFAULT_WORKER_LIMIT / REFILL_SHARE).max(1);
    // Whether the store may hold runs that are due: at start it may (runs left
    // by the last process), then after every wake-up (a run was queued).
    let mut look = true;
    let mut backlog = false;
    let mut next_look = Instant::now();

    // While the store fails, how long to wait before the next look: wake-ups
    // do not hurry it, so a failing store is not asked a thousand times a second.
    let mut failing: Option<Duration> = None;

    while !*shutdown.borrow() {
        let free = engine.slots.free();
        let time_to_look = Instant::now() >= next_look;
        let may_look = failing.is_none() || time_to_look;
        if free > 0 && may_look && (time_to_look || (look && (!backlog || free >= refill))) {
            match claim_ready(&engine).await {
                Ok(left_waiting) => {
                    if failing.take().is_some() {
                        tracing::info!("the queue can be claimed again");
                    }
                    backlog = left_waiting;
                    look = backlog;
                    let pause = until_next_retry(&engine).await;
                    next_look = Instant::now() + if backlog { pause.min(BACKLOG_POLL) } else { pause };
                }
                Err(error) => {
                    let pause = match failing {
                        None => {
                            tracing::error!(%error, "cannot claim runs; trying again with growing pauses");
                            FAILING_FIRST
                        }
                        Some(pause) => (pause * 2).min(FAILING_MAX),
                    };
                    failing = Some(pause);
                    look = true;
                    next_look = Instant::now() + pause;
                }
            }
        }
        tokio::select! {
            () = engine.wake.notified() => look = true,
            // Runs wait for room: a freed slot may let the next ones in.
            () = engine.slots.freed(), if backlog => {}
            _ = shutdown.changed() => {}
            () = tokio::time::sleep_until(next_look) => {}
        }
    }
    let unfinished = drain(&engine, Instant::now() + grace).await;
    if unfinished > 0 {
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

/// Waits for every runner until `deadline`, then aborts those left; gives how
/// many were aborted.
async fn drain(engine: &Engine, deadline: Instant) -> usize {
    let mut unfinished = 0;
    // Runners the intake started while earlier ones were waited for are taken in
    // the next round.
    loop {
        let mut runners = engine.take_runners();
        if runners.is_empty() {
            return unfinished;
        }
        let ended = tokio::time::timeout_at(deadline, async {
            while let Some(ended) = runners.join_next().await {
                super::report_panic(ended);
            }
        })
        .await;
        if ended.is_err() {
            unfinished += runners.len();
            runners.abort_all();
            while runners.join_next().await.is_some() {}
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
/// left waiting, or why the store could not say.
async fn claim_ready(engine: &Arc<Engine>) -> Result<bool, crate::store::Error> {
    let mark = engine.backlog.mark();
    let candidates = engine.store.due(Utc::now(), CLAIM_BATCH).await?;
    let seen = candidates.len();
    // Choose within the limits first, then claim them all in one write.
    let recipes = engine.recipes.current();
    let mut chosen = Vec::new();
    let mut slots = HashMap::new();
    for (run_id, recipe_id) in candidates {
        let concurrency = engine.concurrency_of(&recipes, &recipe_id);
        let Some(slot) = engine.slots.try_take(&recipe_id, concurrency) else {
            if engine.slots.free() == 0 {
                break;
            }
            continue;
        };
        slots.insert(run_id.clone(), slot);
        chosen.push(run_id);
    }
    let left_waiting = chosen.len() < seen;
    // Slots taken for runs that could not be claimed go back as `slots` drops.
    // Built as far as each recipe's templates read it, as a fresh run's is.
    let parse_payload = |recipe: &str, text: &str| match recipes.get(recipe) {
        Some(recipe) => recipe.payload_reads.parse(text.as_bytes()),
        None => serde_json::from_str(text),
    };
    let runs = engine.store.claim(chosen, parse_payload).await?;
    if !left_waiting && seen < CLAIM_BATCH as usize {
        // Every due run is taken: new runs may skip the queue again.
        engine.backlog.cleared_at(mark);
    }
    for run in runs {
        // Runs another claim took first are not returned; their slots go back.
        let Some(slot) = slots.remove(&run.id) else {
            continue;
        };
        let runner_engine = engine.clone();
        engine.spawn_runner(async move { run_in_slot(&runner_engine, run, slot).await });
    }
    Ok(left_waiting)
}
