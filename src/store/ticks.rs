//! What schedule and poll triggers remember: the mark of their last tick, a
//! poll's outcome, and the item keys a poll has seen.
//!
//! A tick is one write: the mark moves to its schedule time and its runs are
//! inserted in the same transaction, and only if the mark was before that time.
//! So a tick is done exactly once, however the daemon stops and starts.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use sqlx::FromRow;
use utoipa::ToSchema;

use super::run_rows::{NewRun, insert_run_cached};
use super::{Error, SqliteStore, Start, timestamp};
use crate::event::Event;

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

impl SqliteStore {
    /// What the recipe's trigger remembers; the default when it never ticked.
    pub async fn trigger_state(&self, recipe: &str) -> Result<TriggerState, Error> {
        let row: Option<StateRow> = sqlx::query_as(
            "SELECT last_scheduled_at, last_fired_at, last_success_at, last_poll_at, last_poll_error,
                    last_poll_items, last_poll_new, poll_failures
             FROM trigger_state WHERE recipe = ?1",
        )
        .bind(recipe)
        .fetch_optional(&self.reads)
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
        self.writer
            .write(move |statements| apply_tick(statements.connection, &rows))
            .await
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
pub(super) fn apply_tick(connection: &Connection, tick: &TickRows) -> rusqlite::Result<TickOutcome> {
    let previous: Option<(String, Option<String>)> = connection
        .prepare_cached("SELECT last_scheduled_at, last_success_at FROM trigger_state WHERE recipe = ?1")?
        .query_row(params![tick.recipe], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    if let Some((mark, _)) = &previous
        && *mark >= tick.scheduled_at
    {
        return Ok(TickOutcome::AlreadyDone);
    }
    let never_succeeded = previous.as_ref().is_none_or(|(_, success)| success.is_none());
    connection
        .prepare_cached(
            "INSERT INTO trigger_state (recipe, last_scheduled_at, last_fired_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (recipe) DO UPDATE SET last_scheduled_at = excluded.last_scheduled_at,
                 last_fired_at = excluded.last_fired_at",
        )?
        .execute(params![tick.recipe, tick.scheduled_at, tick.fired_at])?;

    let runs = match &tick.work {
        WorkRows::Fire(run) => {
            insert_run_cached(connection, run)?;
            vec![run.id.clone()]
        }
        WorkRows::PollFailed(error) => {
            connection
                .prepare_cached(
                    "UPDATE trigger_state SET last_poll_at = ?2, last_poll_error = ?3, last_poll_items = NULL,
                         last_poll_new = NULL, poll_failures = poll_failures + 1
                     WHERE recipe = ?1",
                )?
                .execute(params![tick.recipe, tick.fired_at, error])?;
            Vec::new()
        }
        WorkRows::Polled { items, first } => {
            let new_keys = remember_keys(connection, &tick.recipe, &tick.fired_at, items)?;
            let remember_only = never_succeeded && *first == FirstPollRule::Remember;
            let mut started = HashSet::new();
            let fresh: Vec<&NewRun> = items
                .iter()
                // One run per new key, even when the source lists an item twice.
                .filter(|(key, _)| new_keys.contains(key) && started.insert(key.as_str()))
                .map(|(_, run)| run)
                .collect();
            if !remember_only {
                for run in &fresh {
                    insert_run_cached(connection, run)?;
                }
            }
            connection
                .prepare_cached(
                    "UPDATE trigger_state SET last_success_at = ?2, last_poll_at = ?2, last_poll_error = NULL,
                         last_poll_items = ?3, last_poll_new = ?4, poll_failures = 0
                     WHERE recipe = ?1",
                )?
                .execute(params![
                    tick.recipe,
                    tick.fired_at,
                    items.len() as i64,
                    fresh.len() as i64
                ])?;
            forget_old_keys(connection, &tick.recipe, &tick.fired_at)?;
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
fn remember_keys(
    connection: &Connection,
    recipe: &str,
    now: &str,
    items: &[(String, NewRun)],
) -> rusqlite::Result<HashSet<String>> {
    let mut insert = connection.prepare_cached(
        "INSERT INTO poll_seen (recipe, key, seen_at) VALUES (?1, ?2, ?3) ON CONFLICT (recipe, key) DO NOTHING",
    )?;
    let mut touch = connection.prepare_cached("UPDATE poll_seen SET seen_at = ?3 WHERE recipe = ?1 AND key = ?2")?;
    let mut new_keys = HashSet::new();
    for (key, _) in items {
        if new_keys.contains(key) {
            continue;
        }
        if insert.execute(params![recipe, key, now])? == 1 {
            new_keys.insert(key.clone());
        } else {
            touch.execute(params![recipe, key, now])?;
        }
    }
    Ok(new_keys)
}

/// Forgets keys older than [`KEEP_SEEN_DAYS`] beyond the newest [`KEEP_SEEN_KEYS`].
fn forget_old_keys(connection: &Connection, recipe: &str, now: &str) -> rusqlite::Result<()> {
    let oldest_kept: Option<String> = connection
        .prepare_cached("SELECT seen_at FROM poll_seen WHERE recipe = ?1 ORDER BY seen_at DESC LIMIT 1 OFFSET ?2")?
        .query_row(params![recipe, KEEP_SEEN_KEYS - 1], |row| row.get(0))
        .optional()?;
    let Some(oldest_kept) = oldest_kept else {
        return Ok(());
    };
    let month_ago = DateTime::parse_from_rfc3339(now)
        .map(|now| timestamp(now.to_utc() - chrono::Duration::days(KEEP_SEEN_DAYS)))
        .unwrap_or_default();
    let cutoff = oldest_kept.min(month_ago);
    connection
        .prepare_cached("DELETE FROM poll_seen WHERE recipe = ?1 AND seen_at < ?2")?
        .execute(params![recipe, cutoff])?;
    Ok(())
}
