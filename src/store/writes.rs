//! The SQL of the writer's batches: each write of a batch in turn, one cached
//! prepared statement per row, inside the batch's one transaction.
//!
//! Values arrive already serialised (by the caller's task, not the writer's
//! thread), and the claim's rows go back unparsed for the same reason.

use rusqlite::{Connection, OptionalExtension, Row, Statement, params};

use super::packed::{Packed, stored_bytes};
use super::records::{Enqueued, Start};
use super::ticks::{TickOutcome, apply_tick};
use super::writer::Op;
use crate::trigger::Event;

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
}

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

const INSERT_RUN: &str = "INSERT INTO runs (id, recipe, recipe_version, trigger, status, received_at, started_at,
         payload, headers, query, replay_of)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
const UPSERT_STEP: &str = "INSERT INTO steps (run_id, position, step_id, status, request, result)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
     ON CONFLICT (run_id, position) DO UPDATE SET status = excluded.status,
         request = COALESCE(excluded.request, steps.request),
         result = COALESCE(excluded.result, steps.result)";
const INSERT_ATTEMPT: &str =
    "INSERT INTO attempts (run_id, position, n, started_at, duration_ms, request, response, error)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
const CHANGE_RUN: &str =
    "UPDATE runs SET status = ?2, error = ?3, finished_at = ?4, next_attempt_at = ?5 WHERE id = ?1";

/// The writer's connection with the statements of every webhook, prepared once
/// for the writer's life. Taken from rusqlite's statement cache instead, each
/// cost a hash of its SQL and a reinsertion per webhook (counted with
/// callgrind). Rarer writes use the cache.
pub(super) struct Statements<'c> {
    pub connection: &'c Connection,
    begin: Statement<'c>,
    commit: Statement<'c>,
    rollback: Statement<'c>,
    insert_run: Statement<'c>,
    upsert_step: Statement<'c>,
    insert_attempt: Statement<'c>,
    change_run: Statement<'c>,
}

impl<'c> Statements<'c> {
    pub(super) fn prepare(connection: &'c Connection) -> rusqlite::Result<Self> {
        Ok(Self {
            connection,
            // Immediate: the write lock is taken at the start, so a commit never
            // fails on a lock a reader's upgrade holds.
            begin: connection.prepare("BEGIN IMMEDIATE")?,
            commit: connection.prepare("COMMIT")?,
            rollback: connection.prepare("ROLLBACK")?,
            insert_run: connection.prepare(INSERT_RUN)?,
            upsert_step: connection.prepare(UPSERT_STEP)?,
            insert_attempt: connection.prepare(INSERT_ATTEMPT)?,
            change_run: connection.prepare(CHANGE_RUN)?,
        })
    }

    /// Applies a batch in one transaction; nothing of it stays when it fails.
    pub(super) fn commit(&mut self, ops: &[Op]) -> rusqlite::Result<Outcomes> {
        self.begin.execute([])?;
        let outcomes = apply(self, ops).and_then(|outcomes| {
            self.commit.execute([])?;
            Ok(outcomes)
        });
        if outcomes.is_err() && !self.connection.is_autocommit() {
            // What failed is the caller's to report; a failed rollback leaves
            // the transaction to SQLite, which ends it on the next BEGIN's error.
            let _ = self.rollback.execute([]);
        }
        outcomes
    }
}

/// Applies a batch inside the writer's transaction, each write in the order it came.
fn apply(statements: &mut Statements, ops: &[Op]) -> rusqlite::Result<Outcomes> {
    let connection = statements.connection;
    let mut outcomes = Outcomes::default();
    for op in ops {
        match op {
            Op::Enqueue(run, _) => outcomes
                .enqueued
                .push(insert_run(connection, &mut statements.insert_run, run)?),
            Op::Record(rows, _) => record(statements, rows)?,
            Op::Claim(claim, _) => outcomes.claimed.push(claim_runs(connection, claim)?),
            Op::Tick(tick, _) => outcomes.ticks.push(apply_tick(connection, tick)?),
            Op::RequeueInterrupted(_) => {
                let requeued = connection
                    .prepare_cached("UPDATE runs SET status = 'queued' WHERE status = 'running'")?
                    .execute([])?;
                outcomes.requeued += requeued as u64;
            }
            Op::Prune(before, limit, _) => outcomes
                .pruned
                .push(super::retention::prune(connection, before, *limit)?),
            Op::SaveClaims(write, _) => super::claims::write(connection, write)?,
            Op::Probe(_) => {
                connection
                    .prepare_cached(
                        "INSERT INTO write_probe (id, at, room) VALUES (1, ?1, zeroblob(65536))
                         ON CONFLICT (id) DO UPDATE SET at = excluded.at, room = excluded.room",
                    )?
                    .execute([super::timestamp(chrono::Utc::now())])?;
            }
        }
    }
    Ok(outcomes)
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
fn record(statements: &mut Statements, rows: &RunRows) -> rusqlite::Result<()> {
    for step in &rows.steps {
        statements.upsert_step.execute(params![
            rows.run_id,
            step.position,
            step.step_id,
            step.status,
            step.request,
            step.result
        ])?;
    }
    for attempt in &rows.attempts {
        statements.insert_attempt.execute(params![
            rows.run_id,
            attempt.position,
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
    Ok(())
}

/// Moves the runs that are still due to `running` and reads the steps they have
/// recorded (none for a run that never started).
fn claim_runs(connection: &Connection, claim: &Claim) -> rusqlite::Result<ClaimRows> {
    let mut claimed = ClaimRows {
        runs: Vec::with_capacity(claim.ids.len()),
        steps: Vec::new(),
    };
    let mut take = connection.prepare_cached(
        "UPDATE runs SET status = 'running', started_at = COALESCE(started_at, ?2), next_attempt_at = NULL
         WHERE id = ?1 AND (status = 'queued' OR status = 'retrying')
         RETURNING id, recipe, recipe_version, trigger, received_at, payload, headers, query",
    )?;
    let mut steps = connection.prepare_cached(
        "SELECT s.run_id, s.position, s.status, s.request, s.result,
                (SELECT COUNT(*) FROM attempts a WHERE a.run_id = s.run_id AND a.position = s.position)
         FROM steps s WHERE s.run_id = ?1 ORDER BY s.position",
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
    })
}

fn step_state_row(row: &Row) -> rusqlite::Result<StepStateRow> {
    Ok(StepStateRow {
        run_id: row.get(0)?,
        position: row.get(1)?,
        status: row.get(2)?,
        request: row.get(3)?,
        result: row.get(4)?,
        attempts: row.get(5)?,
    })
}
