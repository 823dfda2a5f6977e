//! The SQL of the writer's batches: every write of a batch, grouped by kind, as
//! one multi-row statement per table (sqlx's cost is per statement, not per row).
//!
//! Values arrive already serialised (by the caller's task, not the writer's), and
//! the claim's rows go back unparsed for the same reason.

use std::collections::HashSet;

use sqlx::{FromRow, QueryBuilder, Sqlite, SqliteConnection};

use super::records::{Enqueued, Start};
use super::ticks::{TickOutcome, apply_tick};
use super::writer::Op;
use crate::trigger::Event;

/// Most rows in one statement (a power of two; at most 11 columns, far below
/// SQLite's 32 766 bound variables).
const MAX_ROWS: usize = 256;

/// A run to insert, with its trigger input as JSON text.
pub(super) struct NewRun {
    pub id: String,
    pub recipe: String,
    pub recipe_version: String,
    pub trigger: &'static str,
    pub received_at: String,
    pub payload: String,
    pub headers: String,
    pub query: String,
    pub dedup_key: Option<String>,
    pub replay_of: Option<String>,
    pub status: &'static str,
    pub started_at: Option<String>,
}

impl NewRun {
    /// Serialises an event (in the caller's task, not the writer's).
    pub(super) fn from_event(event: &Event, start: Start) -> Self {
        let received_at = super::timestamp(event.received_at);
        let (status, started_at) = match start {
            Start::Queued => ("queued", None),
            Start::Running => ("running", Some(received_at.clone())),
        };
        Self {
            id: event.run_id.clone(),
            recipe: event.recipe.clone(),
            recipe_version: event.recipe_version.clone(),
            trigger: event.trigger,
            received_at,
            payload: crate::json::text(&event.payload),
            headers: crate::json::text(&event.headers),
            query: crate::json::text(&event.query),
            dedup_key: event.dedup_key.clone(),
            replay_of: event.replay_of.clone(),
            status,
            started_at,
        }
    }
}

/// Changes to one run, committed together.
pub(super) struct RunRows {
    pub run_id: String,
    pub steps: Vec<StepRow>,
    pub attempts: Vec<AttemptRow>,
    pub change: Option<ChangeRow>,
    /// The version of the recipe the run runs with, when it differs from the
    /// one it was queued under (the recipe was reloaded in between).
    pub recipe_version: Option<String>,
}

/// A step's new status; `request` and `result` are kept when `None`.
pub(super) struct StepRow {
    pub position: i64,
    pub step_id: String,
    pub status: &'static str,
    pub request: Option<String>,
    pub result: Option<String>,
}

pub(super) struct AttemptRow {
    pub position: i64,
    pub n: i64,
    pub started_at: String,
    pub duration_ms: i64,
    pub request: String,
    pub response: Option<String>,
    pub error: Option<String>,
}

/// A run's new status and the columns that go with it.
pub(super) struct ChangeRow {
    pub status: &'static str,
    pub error: Option<String>,
    pub finished_at: Option<String>,
    pub next_attempt_at: Option<String>,
}

/// Runs to move to `running`, if they are still due.
pub(super) struct Claim {
    pub ids: Vec<String>,
    pub now: String,
}

/// What a claim took: the runs, and the steps of those that had started before.
pub(super) struct ClaimRows {
    pub runs: Vec<ClaimedRow>,
    pub steps: Vec<StepStateRow>,
}

#[derive(FromRow)]
pub(super) struct ClaimedRow {
    pub id: String,
    pub recipe: String,
    pub recipe_version: String,
    pub trigger: String,
    pub received_at: String,
    pub payload: String,
    pub headers: String,
    pub query: String,
}

#[derive(FromRow)]
pub(super) struct StepStateRow {
    pub run_id: String,
    pub position: i64,
    pub status: String,
    pub request: Option<String>,
    pub result: Option<String>,
    pub attempts: i64,
}

/// The outcomes of a batch, per kind in the order of its writes.
#[derive(Default)]
pub(super) struct Outcomes {
    pub enqueued: Vec<Enqueued>,
    pub claimed: Vec<ClaimRows>,
    pub requeued: u64,
    pub ticks: Vec<TickOutcome>,
    pub pruned: Vec<u64>,
}

/// Applies a batch inside the caller's transaction.
pub(super) async fn apply(connection: &mut SqliteConnection, ops: &[Op]) -> Result<Outcomes, sqlx::Error> {
    let mut outcomes = Outcomes::default();
    let new_runs: Vec<&NewRun> = ops
        .iter()
        .filter_map(|op| match op {
            Op::Enqueue(run, _) => Some(run),
            _ => None,
        })
        .collect();
    if !new_runs.is_empty() {
        outcomes.enqueued = insert_runs(connection, &new_runs).await?;
    }
    let records: Vec<&RunRows> = ops
        .iter()
        .filter_map(|op| match op {
            Op::Record(rows, _) => Some(rows),
            _ => None,
        })
        .collect();
    if !records.is_empty() {
        record(connection, &records).await?;
    }
    for op in ops {
        match op {
            Op::Claim(claim, _) => outcomes.claimed.push(claim_runs(connection, claim).await?),
            Op::Tick(tick, _) => outcomes.ticks.push(apply_tick(connection, tick).await?),
            Op::RequeueInterrupted(_) => {
                let done = sqlx::query("UPDATE runs SET status = 'queued' WHERE status = 'running'")
                    .execute(&mut *connection)
                    .await?;
                outcomes.requeued += done.rows_affected();
            }
            Op::Prune(before, limit, _) => {
                outcomes
                    .pruned
                    .push(super::retention::prune(connection, before, *limit).await?);
            }
            Op::Enqueue(..) | Op::Record(..) => {}
        }
    }
    Ok(outcomes)
}

/// Cuts rows into pieces of power-of-two sizes, largest first: a batch of any
/// size runs as a few statements from a small set of texts, which the
/// connection prepares once and keeps (37 rows: 32 + 4 + 1).
pub(super) fn pieces<T>(mut rows: &[T]) -> Vec<&[T]> {
    let mut pieces = Vec::new();
    while !rows.is_empty() {
        let size = MAX_ROWS.min(1 << rows.len().ilog2());
        let (piece, rest) = rows.split_at(size);
        pieces.push(piece);
        rows = rest;
    }
    pieces
}

/// Inserts new runs; a run whose dedup key was taken before (or earlier in this
/// batch) is not inserted and answers the first run with that key.
pub(super) async fn insert_runs(
    connection: &mut SqliteConnection,
    runs: &[&NewRun],
) -> Result<Vec<Enqueued>, sqlx::Error> {
    let keyed: Vec<&NewRun> = runs.iter().copied().filter(|run| run.dedup_key.is_some()).collect();
    let mut took_key = HashSet::new();
    for chunk in pieces(&keyed) {
        let mut query = QueryBuilder::<Sqlite>::new("INSERT INTO dedup (recipe, key, run_id, created_at) ");
        query.push_values(chunk, |mut row, run| {
            row.push_bind(run.recipe.clone())
                .push_bind(run.dedup_key.clone())
                .push_bind(run.id.clone())
                .push_bind(run.received_at.clone());
        });
        query.push(" ON CONFLICT (recipe, key) DO NOTHING RETURNING run_id");
        let taken: Vec<String> = query.build_query_scalar().fetch_all(&mut *connection).await?;
        took_key.extend(taken);
    }

    let mut outcomes = Vec::with_capacity(runs.len());
    let mut fresh = Vec::with_capacity(runs.len());
    for &run in runs {
        match &run.dedup_key {
            Some(key) if !took_key.contains(&run.id) => {
                let first: String = sqlx::query_scalar("SELECT run_id FROM dedup WHERE recipe = ?1 AND key = ?2")
                    .bind(&run.recipe)
                    .bind(key)
                    .fetch_one(&mut *connection)
                    .await?;
                outcomes.push(Enqueued::Duplicate(first));
            }
            _ => {
                fresh.push(run);
                outcomes.push(Enqueued::New(run.id.clone()));
            }
        }
    }
    for chunk in pieces(&fresh) {
        let mut query = QueryBuilder::<Sqlite>::new(
            "INSERT INTO runs (id, recipe, recipe_version, trigger, status, received_at, started_at, payload, headers, query, replay_of) ",
        );
        query.push_values(chunk, |mut row, run| {
            row.push_bind(run.id.clone())
                .push_bind(run.recipe.clone())
                .push_bind(run.recipe_version.clone())
                .push_bind(run.trigger)
                .push_bind(run.status)
                .push_bind(run.received_at.clone())
                .push_bind(run.started_at.clone())
                .push_bind(run.payload.clone())
                .push_bind(run.headers.clone())
                .push_bind(run.query.clone())
                .push_bind(run.replay_of.clone());
        });
        query.build().execute(&mut *connection).await?;
    }
    Ok(outcomes)
}

/// Steps, attempts and run changes of several runs: one statement per table.
async fn record(connection: &mut SqliteConnection, records: &[&RunRows]) -> Result<(), sqlx::Error> {
    let steps: Vec<(&str, &StepRow)> = records
        .iter()
        .flat_map(|rows| rows.steps.iter().map(|step| (rows.run_id.as_str(), step)))
        .collect();
    for chunk in pieces(&steps) {
        let mut query =
            QueryBuilder::<Sqlite>::new("INSERT INTO steps (run_id, position, step_id, status, request, result) ");
        query.push_values(chunk, |mut row, (run_id, step)| {
            row.push_bind(run_id.to_string())
                .push_bind(step.position)
                .push_bind(step.step_id.clone())
                .push_bind(step.status)
                .push_bind(step.request.clone())
                .push_bind(step.result.clone());
        });
        query.push(
            " ON CONFLICT (run_id, position) DO UPDATE SET status = excluded.status,
                request = COALESCE(excluded.request, steps.request),
                result = COALESCE(excluded.result, steps.result)",
        );
        query.build().execute(&mut *connection).await?;
    }

    let attempts: Vec<(&str, &AttemptRow)> = records
        .iter()
        .flat_map(|rows| rows.attempts.iter().map(|attempt| (rows.run_id.as_str(), attempt)))
        .collect();
    for chunk in pieces(&attempts) {
        let mut query = QueryBuilder::<Sqlite>::new(
            "INSERT INTO attempts (run_id, position, n, started_at, duration_ms, request, response, error) ",
        );
        query.push_values(chunk, |mut row, (run_id, attempt)| {
            row.push_bind(run_id.to_string())
                .push_bind(attempt.position)
                .push_bind(attempt.n)
                .push_bind(attempt.started_at.clone())
                .push_bind(attempt.duration_ms)
                .push_bind(attempt.request.clone())
                .push_bind(attempt.response.clone())
                .push_bind(attempt.error.clone());
        });
        query.build().execute(&mut *connection).await?;
    }

    for rows in records {
        if let Some(version) = &rows.recipe_version {
            sqlx::query("UPDATE runs SET recipe_version = ?1 WHERE id = ?2")
                .bind(version)
                .bind(&rows.run_id)
                .execute(&mut *connection)
                .await?;
        }
    }

    let changes: Vec<(&str, &ChangeRow)> = records
        .iter()
        .filter_map(|rows| rows.change.as_ref().map(|change| (rows.run_id.as_str(), change)))
        .collect();
    for chunk in pieces(&changes) {
        // The columns of a VALUES list are named column1, column2, … in SQLite.
        let mut query = QueryBuilder::<Sqlite>::new(
            "UPDATE runs SET status = changes.column2, error = changes.column3,
                finished_at = changes.column4, next_attempt_at = changes.column5
             FROM (",
        );
        query.push_values(chunk, |mut row, (run_id, change)| {
            row.push_bind(run_id.to_string())
                .push_bind(change.status)
                .push_bind(change.error.clone())
                .push_bind(change.finished_at.clone())
                .push_bind(change.next_attempt_at.clone());
        });
        query.push(") AS changes WHERE runs.id = changes.column1");
        query.build().execute(&mut *connection).await?;
    }
    Ok(())
}

/// Moves the runs that are still due to `running` and reads the steps they have
/// recorded (none for a run that never started).
async fn claim_runs(connection: &mut SqliteConnection, claim: &Claim) -> Result<ClaimRows, sqlx::Error> {
    let mut claimed = ClaimRows {
        runs: Vec::new(),
        steps: Vec::new(),
    };
    for chunk in pieces(&claim.ids) {
        let mut query =
            QueryBuilder::<Sqlite>::new("UPDATE runs SET status = 'running', started_at = COALESCE(started_at, ");
        query.push_bind(claim.now.clone());
        query.push("), next_attempt_at = NULL WHERE status IN ('queued', 'retrying') AND id IN ");
        push_list(&mut query, chunk);
        query.push(" RETURNING id, recipe, recipe_version, trigger, received_at, payload, headers, query");
        let runs: Vec<ClaimedRow> = query.build_query_as().fetch_all(&mut *connection).await?;
        claimed.runs.extend(runs);
    }
    let ids: Vec<&String> = claimed.runs.iter().map(|run| &run.id).collect();
    for chunk in pieces(&ids) {
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT s.run_id, s.position, s.status, s.request, s.result,
                    (SELECT COUNT(*) FROM attempts a WHERE a.run_id = s.run_id AND a.position = s.position) AS attempts
             FROM steps s WHERE s.run_id IN ",
        );
        push_list(&mut query, chunk.iter().copied());
        query.push(" ORDER BY s.run_id, s.position");
        let steps: Vec<StepStateRow> = query.build_query_as().fetch_all(&mut *connection).await?;
        claimed.steps.extend(steps);
    }
    Ok(claimed)
}

/// `(?, ?, …)` with each id bound.
pub(super) fn push_list<'a>(query: &mut QueryBuilder<Sqlite>, ids: impl IntoIterator<Item = &'a String>) {
    query.push("(");
    let mut list = query.separated(", ");
    for id in ids {
        list.push_bind(id.clone());
    }
    list.push_unseparated(")");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_are_powers_of_two_largest_first_and_cover_every_row() {
        let rows: Vec<usize> = (0..600).collect();
        for count in [0, 1, 2, 3, 37, 256, 257, 600] {
            let sizes: Vec<usize> = pieces(&rows[..count]).iter().map(|piece| piece.len()).collect();
            assert_eq!(sizes.iter().sum::<usize>(), count, "{count}: {sizes:?}");
            assert!(
                sizes.iter().all(|size| size.is_power_of_two() && *size <= MAX_ROWS),
                "{sizes:?}"
            );
            assert!(sizes.windows(2).all(|pair| pair[0] >= pair[1]), "{sizes:?}");
        }
        let sizes: Vec<usize> = pieces(&rows[..37]).iter().map(|piece| piece.len()).collect();
        assert_eq!(sizes, [32, 4, 1]);
        let flattened: Vec<usize> = pieces(&rows[..600]).concat();
        assert_eq!(flattened, rows);
    }
}
