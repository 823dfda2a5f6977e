//! One task per schedule or poll recipe: wait for the next fire time, tick, repeat.
//!
//! A tick is stored with its schedule time as the recipe's mark (see
//! `store::ticks`); a task that starts reads the mark and the clock and plans
//! from there, so no time fires twice and missed times follow `missed`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Event;
use super::plan::plan;
use super::poll::{PollContext, poll};
use crate::engine::Waker;
use crate::recipe::{Missed, Recipe, RecipeSet, Trigger};
use crate::store::{Store, Tick, TickOutcome, TickWork, timestamp};
use crate::template::Templates;

/// How long a task waits before reading its mark again after a store error.
const STORE_RETRY: Duration = Duration::from_secs(1);

/// What the tasks share.
#[derive(Clone)]
pub struct TimerContext {
    pub store: Store,
    pub waker: Waker,
    pub templates: Arc<Templates>,
    pub destinations: crate::action::Destinations,
    pub public_url: String,
    pub metrics: crate::observe::Metrics,
}

/// The running tasks: one per enabled schedule or poll recipe, at the version it
/// was started with.
pub struct Timers {
    context: TimerContext,
    running: HashMap<String, Running>,
}

struct Running {
    version: String,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Timers {
    pub fn new(context: TimerContext) -> Self {
        Self {
            context,
            running: HashMap::new(),
        }
    }

    /// Starts, restarts and stops tasks so that exactly the enabled schedule and
    /// poll recipes of `recipes` run, each at its current version. A task that
    /// stops finishes first (a tick under way is cut before its write, so the
    /// mark stays and the new task ticks that time instead).
    pub async fn sync(&mut self, recipes: &RecipeSet) {
        let ids: Vec<String> = self
            .running
            .keys()
            .cloned()
            .chain(recipes.recipes().map(|recipe| recipe.id.clone()))
            .collect();
        self.follow(recipes, ids).await;
    }

    /// As `sync`, for the recipes a reload changed only: the cost of a reload
    /// follows what changed, not how many recipes there are.
    pub async fn follow(&mut self, recipes: &RecipeSet, ids: impl IntoIterator<Item = String>) {
        for id in ids {
            let wanted = recipes
                .get(&id)
                .filter(|recipe| recipe.enabled && recipe.trigger.schedule().is_some());
            if let Some(running) = self.running.get(&id)
                && wanted.is_some_and(|recipe| recipe.version == running.version)
            {
                continue;
            }
            if let Some(running) = self.running.remove(&id) {
                running.finish().await;
            }
            let Some(recipe) = wanted else { continue };
            let (stop, stopped) = watch::channel(false);
            let task = tokio::spawn(run(self.context.clone(), Arc::clone(recipe), stopped));
            self.running.insert(
                id,
                Running {
                    version: recipe.version.clone(),
                    stop,
                    task,
                },
            );
        }
    }

    /// Stops every task and waits for them.
    pub async fn stop_all(&mut self) {
        for (_, running) in self.running.drain() {
            running.finish().await;
        }
    }
}

impl Running {
    async fn finish(self) {
        let _ = self.stop.send(true);
        if let Err(error) = self.task.await {
            tracing::error!(%error, "a schedule or poll task failed");
        }
    }
}

async fn run(context: TimerContext, recipe: Arc<Recipe>, mut stop: watch::Receiver<bool>) {
    let Some(schedule) = recipe.trigger.schedule() else {
        return;
    };
    let missed = match &recipe.trigger {
        Trigger::Schedule { missed, .. } => *missed,
        // A poll looks at the source as it is now: one poll stands for all missed.
        Trigger::Poll(_) | Trigger::Webhook { .. } | Trigger::Failure(_) => Missed::Once,
    };
    let mut mark = loop {
        match context.store.trigger_state(&recipe.id).await {
            Ok(state) => break state.last_scheduled_at.and_then(|text| parse_time(&text)),
            Err(error) => {
                tracing::error!(recipe = %recipe.id, %error, "cannot read the trigger's last tick; trying again");
                if wait(&mut stop, STORE_RETRY).await.is_err() {
                    return;
                }
            }
        }
    };
    loop {
        let planned = plan(schedule, mark, Utc::now(), missed);
        if let Some(late) = planned.catch_up {
            tracing::info!(recipe = %recipe.id, scheduled_at = %timestamp(late), "firing once for missed times");
            if tick_unless_stopped(&context, &recipe, late, &mut stop).await.is_err() {
                return;
            }
        }
        let Some(next) = planned.next else {
            tracing::info!(recipe = %recipe.id, "the schedule has no more fire times");
            return;
        };
        let delay = (next - Utc::now()).to_std().unwrap_or_default();
        if wait(&mut stop, delay).await.is_err() {
            return;
        }
        if tick_unless_stopped(&context, &recipe, next, &mut stop).await.is_err() {
            return;
        }
        mark = Some(next);
    }
}

/// Sleeps for `delay`; `Err` when told to stop first.
async fn wait(stop: &mut watch::Receiver<bool>, delay: Duration) -> Result<(), ()> {
    if *stop.borrow() {
        return Err(());
    }
    tokio::select! {
        () = tokio::time::sleep(delay) => Ok(()),
        _ = stop.wait_for(|stop| *stop) => Err(()),
    }
}

/// A tick that a shutdown cuts short (a poll may wait 30 s for its source). Cut
/// before its write, the mark stays where it was and the next start ticks again;
/// once sent, the write commits whether or not anyone waits for it.
async fn tick_unless_stopped(
    context: &TimerContext,
    recipe: &Recipe,
    scheduled_at: DateTime<Utc>,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), ()> {
    tokio::select! {
        () = tick(context, recipe, scheduled_at) => Ok(()),
        _ = stop.wait_for(|stop| *stop) => Err(()),
    }
}

/// Fires or polls once for `scheduled_at`.
async fn tick(context: &TimerContext, recipe: &Recipe, scheduled_at: DateTime<Utc>) {
    let work = match &recipe.trigger {
        Trigger::Schedule { schedule, .. } => {
            let fired_at = Utc::now();
            TickWork::Fire(Box::new(Event {
                run_id: uuid::Uuid::now_v7().to_string(),
                recipe: recipe.id.clone(),
                recipe_version: recipe.version.clone(),
                trigger: "schedule",
                payload: json!({
                    "scheduled_at": schedule.local(scheduled_at).to_rfc3339(),
                    "fired_at": timestamp(fired_at),
                }),
                payload_text: None,
                headers: Map::new(),
                query: Map::new(),
                received_at: fired_at,
                dedup_key: None,
                replay_of: None,
            }))
        }
        Trigger::Poll(poll_trigger) => {
            let last_success_at = match context.store.trigger_state(&recipe.id).await {
                Ok(state) => state.last_success_at,
                Err(error) => {
                    tracing::error!(recipe = %recipe.id, %error, "cannot read the last poll; skipping this one");
                    return;
                }
            };
            let poll_context = PollContext {
                templates: &context.templates,
                destinations: &context.destinations,
                public_url: &context.public_url,
            };
            poll(
                &poll_context,
                recipe,
                poll_trigger,
                scheduled_at,
                last_success_at.as_deref(),
            )
            .await
        }
        Trigger::Webhook { .. } | Trigger::Failure(_) => return,
    };
    if let TickWork::PollFailed(error) = &work {
        context.metrics.poll_failed(&recipe.id);
        tracing::warn!(recipe = %recipe.id, %error, "poll failed; trying again at the next tick");
    }
    let tick = Tick {
        recipe: recipe.id.clone(),
        scheduled_at,
        fired_at: Utc::now(),
        work,
    };
    match context.store.tick(tick).await {
        Ok(TickOutcome::Done { runs }) => {
            if !runs.is_empty() {
                tracing::debug!(recipe = %recipe.id, runs = runs.len(), "trigger started runs");
                context.waker.wake();
            }
        }
        Ok(TickOutcome::AlreadyDone) => {
            tracing::debug!(recipe = %recipe.id, scheduled_at = %timestamp(scheduled_at), "already ticked for this time");
        }
        Err(error) => tracing::error!(recipe = %recipe.id, %error, "cannot record the trigger's tick"),
    }
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).ok().map(|time| time.to_utc())
}
