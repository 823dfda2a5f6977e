//! The rows of runs as the writer writes them, and the SQL that writes them:
//! new runs, their steps, attempts and changes, claims, the interrupted runs
//! queued again at start, and the probe write. Each runs inside the writer's
//! batch transaction.
//!
//! Values arrive already serialised (by the caller's task, not the writer's
//! thread), and the claim's rows go back unparsed for the same reason.

use rusqlite::{Connection, OptionalExtension, Row, Statement, params};

use super::Error;
use super::interface::{Enqueued, Recorded, Start};
use super::packed::{Packed, stored_bytes};
use super::statements::{INSERT_RUN, Statements};
use super::writer::Write;
use crate::event::Event;

/// A run to insert, with its trigger input as JSON text.
pub(super) struct NewRun {
    pub id: String,
    pub recipe: String,
    pub recipe_version: String,
    pub trigger: &'static str,
    pub received_at: String,
    pub payload: Packed,
    pub headers: Packed,
    pub query: Packed,
    pub dedup_key: Option<String>,
    pub replay_of: Option<String>,
    pub status: &'static str,
    pub started_at: Option<String>,
}

impl NewRun {
    /// Serialises and packs an event (in the caller's task, not the writer's).
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
            payload: Packed::new(
                event
                    .payload_text
                    .clone()
                    .unwrap_or_else(|| crate::json::text(&event.payload)),
            ),
            headers: Packed::new(crate::json::text(&event.headers)),
            query: Packed::new(crate::json::text(&event.query)),
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
    pub steps: Vec<StepUpsert>,
    pub attempts: Vec<NewAttempt>,
    pub change: Option<ChangeRow>,
    /// The version of the recipe the run runs with, when it differs from the
    /// one it was queued under (the recipe was reloaded in between).
    pub recipe_version: Option<String>,
    /// Runs queued with these changes.
    pub new_runs: Vec<NewRun>,
}

impl RunRows {
    /// A write in the middle of a run (before a request) asks whether the run
    /// was cancelled meanwhile; one that moves the run on need not (its change
    /// is refused for a cancelled run).
    fn asks_cancelled(&self) -> bool {
        self.change.is_none()
    }
}

/// The write of a run's changes: a failed one gives its rows back, so that the
/// engine can try them again.
pub(super) struct RecordWrite {
    pub rows: RunRows,
    pub recorded: Recorded,
    pub reply: tokio::sync::oneshot::Sender<Result<Recorded, (Error, RunRows)>>,
}

impl Write for RecordWrite {
    fn apply(&mut self, statements: &mut Statements) -> rusqlite::Result<()> {
        self.recorded = record(statements, &self.rows)?;
        Ok(())
    }

    fn committed(self: Box<Self>) {
        // A caller that stopped waiting is not an error.
        let _ = self.reply.send(Ok(self.recorded));
    }

    fn failed(self: Box<Self>, error: Error) {
        let _ = self.reply.send(Err((error, self.rows)));
    }
}

/// A step's new status; `request` and `result` are kept when `None`.
pub(super) struct StepUpsert {
    pub position: i64,
    /// -1 for the step itself (see migration 0015).
    pub element: i64,
    pub step_id: String,
    pub kind: &'static str,
    pub status: &'static str,
    pub request: Option<String>,
    pub result: Option<String>,
    /// A step of the recipe's `on_failure`.
    pub on_failure: bool,
}

pub(super) struct NewAttempt {
    pub position: i64,
    pub element: i64,
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

pub(super) struct ClaimedRow {
    pub id: String,
    pub recipe: String,
    pub recipe_version: String,
    pub trigger: String,
    pub received_at: String,
    /// As stored (see `packed.rs`).
    pub payload: Vec<u8>,
    pub headers: Vec<u8>,
    pub query: Vec<u8>,
    pub started_at: Option<String>,
}

pub(super) struct StepStateRow {
    pub run_id: String,
    pub position: i64,
    pub element: i64,
    pub status: String,
    pub request: Option<String>,
    pub result: Option<String>,
    pub attempts: i64,
    pub attempts_before: i64,
}

/// Inserts a new run with `insert` (a statement of [`INSERT_RUN`]); a run whose
/// dedup key was taken before (or earlier in this batch) is not inserted and
/// answers the first run with that key.
pub(super) fn insert_run(connection: &Connection, insert: &mut Statement, run: &NewRun) -> rusqlite::Result<Enqueued> {
    if let Some(key) = &run.dedup_key {
        let took_key = connection
            .prepare_cached(
                "INSERT INTO dedup (recipe, key, run_id, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (recipe, key) DO NOTHING",
            )?
            .execute(params![run.recipe, key, run.id, run.received_at])?;
        if took_key == 0 {
            let first: String = connection
                .prepare_cached("SELECT run_id FROM dedup WHERE recipe = ?1 AND key = ?2")?
                .query_row(params![run.recipe, key], |row| row.get(0))?;
            return Ok(Enqueued::Duplicate(first));
        }
    }
    insert.execute(params![
        run.id,
        run.recipe,
        run.recipe_version,
        run.trigger,
        run.status,
        run.received_at,
        run.started_at,
        run.payload,
        run.headers,
        run.query,
        run.replay_of,
    ])?;
    Ok(Enqueued::New(run.id.clone()))
}

/// [`insert_run`] with the statement from the connection's cache.
pub(super) fn insert_run_cached(connection: &Connection, run: &NewRun) -> rusqlite::Result<Enqueued> {
    insert_run(connection, &mut *connection.prepare_cached(INSERT_RUN)?, run)
}

/// A run's steps, attempts and change.
pub(super) fn record(statements: &mut Statements, rows: &RunRows) -> rusqlite::Result<Recorded> {
    for step in &rows.steps {
        statements.upsert_step.execute(params![
            rows.run_id,
            step.position,
            step.element,
            step.step_id,
            step.status,
            step.request,
            step.result,
            step.kind,
            step.on_failure
        ])?;
    }
    for attempt in &rows.attempts {
        statements.insert_attempt.execute(params![
            rows.run_id,
            attempt.position,
            attempt.element,
            attempt.n,
            attempt.started_at,
            attempt.duration_ms,
            attempt.request,
            attempt.response,
            attempt.error,
        ])?;
    }
    if let Some(version) = &rows.recipe_version {
        statements
            .connection
            .prepare_cached("UPDATE runs SET recipe_version = ?1 WHERE id = ?2")?
            .execute(params![version, rows.run_id])?;
    }
    if let Some(change) = &rows.change {
        statements.change_run.execute(params![
            rows.run_id,
            change.status,
            change.error,
            change.finished_at,
            change.next_attempt_at
        ])?;
    }
    for run in &rows.new_runs {
        insert_run(statements.connection, &mut statements.insert_run, run)?;
    }
    if rows.asks_cancelled() && status_of(statements.connection, &rows.run_id)?.as_deref() == Some("cancelled") {
        return Ok(Recorded::Cancelled);
    }
    Ok(Recorded::Stored)
}

/// Moves the runs that are still due to `running` and reads the steps they have
/// recorded (none for a run that never started).
pub(super) fn claim_runs(connection: &Connection, claim: &Claim) -> rusqlite::Result<ClaimRows> {
    let mut claimed = ClaimRows {
        runs: Vec::with_capacity(claim.ids.len()),
        steps: Vec::new(),
    };
    let mut take = connection.prepare_cached(
        "UPDATE runs SET status = 'running', started_at = COALESCE(started_at, ?2), next_attempt_at = NULL
         WHERE id = ?1 AND (status = 'queued' OR status = 'retrying' OR status = 'waiting')
         RETURNING id, recipe, recipe_version, trigger, received_at, payload, headers, query, started_at",
    )?;
    let mut steps = connection.prepare_cached(
        "SELECT s.run_id, s.position, s.element, s.status, s.request, s.result,
                (SELECT COUNT(*) FROM attempts a
                 WHERE a.run_id = s.run_id AND a.position = s.position AND a.element = s.element),
                s.attempts_before
         FROM steps s WHERE s.run_id = ?1 ORDER BY s.position, s.element",
    )?;
    for id in &claim.ids {
        let Some(run) = take.query_row(params![id, claim.now], claimed_row).optional()? else {
            continue;
        };
        for step in steps.query_map(params![id], step_state_row)? {
            claimed.steps.push(step?);
        }
        claimed.runs.push(run);
    }
    Ok(claimed)
}

fn claimed_row(row: &Row) -> rusqlite::Result<ClaimedRow> {
    Ok(ClaimedRow {
        id: row.get(0)?,
        recipe: row.get(1)?,
        recipe_version: row.get(2)?,
        trigger: row.get(3)?,
        received_at: row.get(4)?,
        payload: row.get_ref(5).and_then(|value| Ok(stored_bytes(value)?))?,
        headers: row.get_ref(6).and_then(|value| Ok(stored_bytes(value)?))?,
        query: row.get_ref(7).and_then(|value| Ok(stored_bytes(value)?))?,
        started_at: row.get(8)?,
    })
}

fn step_state_row(row: &Row) -> rusqlite::Result<StepStateRow> {
    Ok(StepStateRow {
        run_id: row.get(0)?,
        position: row.get(1)?,
        element: row.get(2)?,
        status: row.get(3)?,
        request: row.get(4)?,
        result: row.get(5)?,
        attempts: row.get(6)?,
        attempts_before: row.get(7)?,
    })
}

/// Run `id`'s status, if there is such a run.
pub(super) fn status_of(connection: &Connection, id: &str) -> rusqlite::Result<Option<String>> {
    connection
        .prepare_cached("SELECT status FROM runs WHERE id = ?1")?
        .query_row(params![id], |row| row.get(0))
        .optional()
}

/// Ends run `id` as `cancelled` if it has not ended: `(its status before,
/// whether it changed)`, or `None` for no such run.
pub(super) fn cancel(connection: &Connection, id: &str, now: &str) -> rusqlite::Result<Option<(String, bool)>> {
    let Some(before) = status_of(connection, id)? else {
        return Ok(None);
    };
    let changed = connection
        .prepare_cached(
            "UPDATE runs SET status = 'cancelled', finished_at = ?2, next_attempt_at = NULL
             WHERE id = ?1 AND (status = 'queued' OR status = 'running' OR status = 'retrying' OR status = 'waiting')",
        )?
        .execute(params![id, now])?;
    Ok(Some((before, changed == 1)))
}

/// Queues run `id` again if it failed or was cancelled, with a new start (its
/// `timeout` counts afresh): `(its status before, whether it changed)`, or
/// `None` for no such run.
pub(super) fn resume(connection: &Connection, id: &str) -> rusqlite::Result<Option<(String, bool)>> {
    let Some(before) = status_of(connection, id)? else {
        return Ok(None);
    };
    let changed = connection
        .prepare_cached(
            "UPDATE runs SET status = 'queued', error = NULL, finished_at = NULL, next_attempt_at = NULL,
                 started_at = NULL
             WHERE id = ?1 AND (status = 'failed' OR status = 'cancelled')",
        )?
        .execute(params![id])?;
    if changed == 1 {
        // The steps that failed the run are tried again (not those whose
        // failure the run went past, `continue_on_error`), with their retries
        // afresh, and `on_failure` runs afresh should the run fail again.
        connection
            .prepare_cached(
                "UPDATE steps SET status = 'retrying', result = NULL,
                     attempts_before = (SELECT COUNT(*) FROM attempts a
                         WHERE a.run_id = steps.run_id AND a.position = steps.position
                           AND a.element = steps.element)
                 WHERE run_id = ?1 AND on_failure = 0 AND status = 'failed'
                   AND (result IS NULL OR json_extract(result, '$.failed') = 1)",
            )?
            .execute(params![id])?;
        connection
            .prepare_cached(
                "DELETE FROM attempts WHERE run_id = ?1
                 AND position IN (SELECT position FROM steps WHERE run_id = ?1 AND on_failure = 1)",
            )?
            .execute(params![id])?;
        connection
            .prepare_cached("DELETE FROM steps WHERE run_id = ?1 AND on_failure = 1")?
            .execute(params![id])?;
    }
    Ok(Some((before, changed == 1)))
}

/// At start: runs left `running` by a process that stopped mid-run are queued again.
pub(super) fn requeue_interrupted(connection: &Connection) -> rusqlite::Result<u64> {
    let requeued = connection
        .prepare_cached("UPDATE runs SET status = 'queued' WHERE status = 'running'")?
        .execute([])?;
    Ok(requeued as u64)
}

/// Writes the probe row: a webhook's size, to learn whether writes work again.
pub(super) fn probe(connection: &Connection) -> rusqlite::Result<()> {
    connection
        .prepare_cached(
            "INSERT INTO write_probe (id, at, room) VALUES (1, ?1, zeroblob(65536))
             ON CONFLICT (id) DO UPDATE SET at = excluded.at, room = excluded.room",
        )?
        .execute([super::timestamp(chrono::Utc::now())])?;
    Ok(())
}
