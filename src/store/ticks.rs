//! What schedule and poll triggers remember: the mark of their last tick, a
//! poll's outcome, and the item keys a poll has seen.
//!
//! A tick is one write: the mark moves to its schedule time and its runs are
//! inserted in the same transaction, and only if the mark was before that time.
//! So a tick is done exactly once, however the daemon stops and starts.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{FromRow, QueryBuilder, Sqlite, SqliteConnection};
use utoipa::ToSchema;

use super::writer::Op;
use super::writes::{NewRun, insert_runs, pieces, push_list};
use super::{Error, Start, Store, timestamp};
use crate::trigger::Event;

/// Item keys a poll keeps at least: this many of the newest…
const KEEP_SEEN_KEYS: i64 = 10_000;
/// …and every key seen within this many days.
const KEEP_SEEN_DAYS: i64 = 30;

/// One tick of a schedule or poll trigger.
#[derive(Debug)]
pub struct Tick {
    pub recipe: String,
    /// The schedule time this tick is for.
    pub scheduled_at: DateTime<Utc>,
    /// When it really happened.
    pub fired_at: DateTime<Utc>,
    pub work: TickWork,
}

/// What a tick starts.
#[derive(Debug)]
pub enum TickWork {
    /// A schedule's one run.
    Fire(Box<Event>),
    /// A poll's items, each with its key, in the order the source gave them.
    Polled {
        items: Vec<(String, Event)>,
        first: FirstPollRule,
    },
    /// A poll that failed: recorded; the next tick tries again.
    PollFailed(String),
}

/// What the first successful poll of a recipe does with the items it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstPollRule {
    Remember,
    Run,
}

/// How a tick went.
#[derive(Debug, PartialEq, Eq)]
pub enum TickOutcome {
    /// The mark was already at or past this schedule time: nothing was done.
    AlreadyDone,
    /// The runs started (none for a failed poll or a first poll that remembers).
    Done { runs: Vec<String> },
}

/// What a recipe's trigger remembers, as the API shows it.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct TriggerState {
    /// The schedule time of the last tick.
    pub last_scheduled_at: Option<String>,
    /// When the last tick really happened.
    pub last_fired_at: Option<String>,
    /// Polls: when the last poll that worked happened (`trigger.last_success_at`).
    pub last_success_at: Option<String>,
    /// Polls: how the last poll went.
    pub last_poll: Option<PollOutcome>,
}

/// How a poll went.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PollOutcome {
    pub at: String,
    /// `ok` or `failed`.
    pub status: &'static str,
    pub error: Option<String>,
    /// Items in the answer (`ok` only).
    pub items: Option<i64>,
    /// Items not seen before (`ok` only).
    pub new_items: Option<i64>,
    /// Failed polls in a row, up to this one.
    pub failures_in_a_row: i64,
}

#[derive(FromRow)]
struct StateRow {
    last_scheduled_at: String,
    last_fired_at: String,
    last_success_at: Option<String>,
    last_poll_at: Option<String>,
    last_poll_error: Option<String>,
    last_poll_items: Option<i64>,
    last_poll_new: Option<i64>,
    poll_failures: i64,
}

impl Store {
    /// What the recipe's trigger remembers; the default when it never ticked.
    pub async fn trigger_state(&self, recipe: &str) -> Result<TriggerState, Error> {
        let row: Option<StateRow> = sqlx::query_as(
            "SELECT last_scheduled_at, last_fired_at, last_success_at, last_poll_at, last_poll_error,
                    last_poll_items, last_poll_new, poll_failures
             FROM trigger_state WHERE recipe = ?1",
        )
        .bind(recipe)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(state_of).unwrap_or_default())
    }

    /// Records a tick and starts its runs, unless that schedule time was done
    /// before. When this returns, both are committed.
    pub async fn tick(&self, tick: Tick) -> Result<TickOutcome, Error> {
        let rows = TickRows {
            recipe: tick.recipe,
            scheduled_at: timestamp(tick.scheduled_at),
            fired_at: timestamp(tick.fired_at),
            work: match tick.work {
                TickWork::Fire(event) => WorkRows::Fire(Box::new(NewRun::from_event(&event, Start::Queued))),
                TickWork::Polled { items, first } => WorkRows::Polled {
                    items: items
                        .into_iter()
                        .map(|(key, event)| (key, NewRun::from_event(&event, Start::Queued)))
                        .collect(),
                    first,
                },
                TickWork::PollFailed(error) => WorkRows::PollFailed(error),
            },
        };
        self.writer.write(|reply| Op::Tick(rows, reply)).await
    }
}

fn state_of(row: StateRow) -> TriggerState {
    let last_poll = row.last_poll_at.map(|at| PollOutcome {
        at,
        status: if row.last_poll_error.is_some() { "failed" } else { "ok" },
        items: row.last_poll_error.is_none().then_some(row.last_poll_items).flatten(),
        new_items: row.last_poll_error.is_none().then_some(row.last_poll_new).flatten(),
        error: row.last_poll_error,
        failures_in_a_row: row.poll_failures,
    });
    TriggerState {
        last_scheduled_at: Some(row.last_scheduled_at),
        last_fired_at: Some(row.last_fired_at),
        last_success_at: row.last_success_at,
        last_poll,
    }
}

/// A tick as the writer applies it.
pub(super) struct TickRows {
    recipe: String,
    scheduled_at: String,
    fired_at: String,
    work: WorkRows,
}

enum WorkRows {
    Fire(Box<NewRun>),
    Polled {
        items: Vec<(String, NewRun)>,
        first: FirstPollRule,
    },
    PollFailed(String),
}

/// Applies one tick inside the writer's transaction.
pub(super) async fn apply_tick(connection: &mut SqliteConnection, tick: &TickRows) -> Result<TickOutcome, sqlx::Error> {
    let previous: Option<(String, Option<String>)> =
        sqlx::query_as("SELECT last_scheduled_at, last_success_at FROM trigger_state WHERE recipe = ?1")
            .bind(&tick.recipe)
            .fetch_optional(&mut *connection)
            .await?;
    if let Some((mark, _)) = &previous
        && *mark >= tick.scheduled_at
    {
        return Ok(TickOutcome::AlreadyDone);
    }
    let never_succeeded = previous.as_ref().is_none_or(|(_, success)| success.is_none());
    sqlx::query(
        "INSERT INTO trigger_state (recipe, last_scheduled_at, last_fired_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (recipe) DO UPDATE SET last_scheduled_at = excluded.last_scheduled_at,
             last_fired_at = excluded.last_fired_at",
    )
    .bind(&tick.recipe)
    .bind(&tick.scheduled_at)
    .bind(&tick.fired_at)
    .execute(&mut *connection)
    .await?;

    let runs = match &tick.work {
        WorkRows::Fire(run) => {
            insert_runs(connection, &[run]).await?;
            vec![run.id.clone()]
        }
        WorkRows::PollFailed(error) => {
            sqlx::query(
                "UPDATE trigger_state SET last_poll_at = ?2, last_poll_error = ?3, last_poll_items = NULL,
                     last_poll_new = NULL, poll_failures = poll_failures + 1
                 WHERE recipe = ?1",
            )
            .bind(&tick.recipe)
            .bind(&tick.fired_at)
            .bind(error)
            .execute(&mut *connection)
            .await?;
            Vec::new()
        }
        WorkRows::Polled { items, first } => {
            let new_keys = remember_keys(connection, &tick.recipe, &tick.fired_at, items).await?;
            let remember_only = never_succeeded && *first == FirstPollRule::Remember;
            let mut started = HashSet::new();
            let fresh: Vec<&NewRun> = items
                .iter()
                // One run per new key, even when the source lists an item twice.
                .filter(|(key, _)| new_keys.contains(key) && started.insert(key.as_str()))
                .map(|(_, run)| run)
                .collect();
            if !remember_only {
                insert_runs(connection, &fresh).await?;
            }
            sqlx::query(
                "UPDATE trigger_state SET last_success_at = ?2, last_poll_at = ?2, last_poll_error = NULL,
                     last_poll_items = ?3, last_poll_new = ?4, poll_failures = 0
                 WHERE recipe = ?1",
            )
            .bind(&tick.recipe)
            .bind(&tick.fired_at)
            .bind(items.len() as i64)
            .bind(fresh.len() as i64)
            .execute(&mut *connection)
            .await?;
            forget_old_keys(connection, &tick.recipe, &tick.fired_at).await?;
            if remember_only {
                Vec::new()
            } else {
                fresh.iter().map(|run| run.id.clone()).collect()
            }
        }
    };
    Ok(TickOutcome::Done { runs })
}

/// Stores the keys; returns those not seen before. Keys seen again are marked
/// seen now, so that pruning keeps them while the source still lists them.
async fn remember_keys(
    connection: &mut SqliteConnection,
    recipe: &str,
    now: &str,
    items: &[(String, NewRun)],
) -> Result<HashSet<String>, sqlx::Error> {
    let keys: Vec<&String> = items.iter().map(|(key, _)| key).collect();
    let mut new_keys = HashSet::new();
    for chunk in pieces(&keys) {
        let mut query = QueryBuilder::<Sqlite>::new("INSERT INTO poll_seen (recipe, key, seen_at) ");
        query.push_values(chunk, |mut row, key| {
            row.push_bind(recipe.to_owned())
                .push_bind((*key).clone())
                .push_bind(now.to_owned());
        });
        query.push(" ON CONFLICT (recipe, key) DO NOTHING RETURNING key");
        let inserted: Vec<String> = query.build_query_scalar().fetch_all(&mut *connection).await?;
        new_keys.extend(inserted);
    }
    let seen_again: Vec<&String> = keys.into_iter().filter(|key| !new_keys.contains(*key)).collect();
    for chunk in pieces(&seen_again) {
        let mut query = QueryBuilder::<Sqlite>::new("UPDATE poll_seen SET seen_at = ");
        query.push_bind(now.to_owned());
        query.push(" WHERE recipe = ");
        query.push_bind(recipe.to_owned());
        query.push(" AND key IN ");
        push_list(&mut query, chunk.iter().copied());
        query.build().execute(&mut *connection).await?;
    }
    Ok(new_keys)
}

/// Forgets keys older than [`KEEP_SEEN_DAYS`] beyond the newest [`KEEP_SEEN_KEYS`].
async fn forget_old_keys(connection: &mut SqliteConnection, recipe: &str, now: &str) -> Result<(), sqlx::Error> {
    let oldest_kept: Option<String> =
        sqlx::query_scalar("SELECT seen_at FROM poll_seen WHERE recipe = ?1 ORDER BY seen_at DESC LIMIT 1 OFFSET ?2")
            .bind(recipe)
            .bind(KEEP_SEEN_KEYS - 1)
            .fetch_optional(&mut *connection)
            .await?;
    let Some(oldest_kept) = oldest_kept else {
        return Ok(());
    };
    let month_ago = DateTime::parse_from_rfc3339(now)
        .map(|now| timestamp(now.to_utc() - chrono::Duration::days(KEEP_SEEN_DAYS)))
        .unwrap_or_default();
    let cutoff = oldest_kept.min(month_ago);
    sqlx::query("DELETE FROM poll_seen WHERE recipe = ?1 AND seen_at < ?2")
        .bind(recipe)
        .bind(cutoff)
        .execute(&mut *connection)
        .await?;
    Ok(())
}
