//! The SQLite backend: WAL mode, migrations from `migrations/sqlite/` applied at
//! open.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{FromRow, SqlitePool};

use super::records::{
    AttemptRecord, ClaimedRun, Enqueued, RunDocument, RunFilter, RunStatus, RunSummary, StepDocument, StepState,
    StepStatus,
};
use super::{Durability, Error, timestamp};
use crate::trigger::Event;

/// The database of runs.
#[derive(Clone)]
pub struct Store {
    /// Readers.
    pool: SqlitePool,
    /// The one writing connection.
    writer: SqlitePool,
}

impl Store {
    /// Opens (creating if missing) the database at `url` and applies migrations.
    pub async fn open(url: &str, durability: Durability) -> Result<Self, Error> {
        if !url.starts_with("sqlite:") {
            return Err(Error::UnsupportedUrl { url: url.to_owned() });
        }
        let options = SqliteConnectOptions::from_str(url)
            .map_err(Error::Open)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // With WAL, NORMAL survives a process crash: a committed transaction is
            // in the WAL file (the OS has it) before the commit returns. FULL also
            // waits for the disk, so it survives a power loss.
            .synchronous(match durability {
                Durability::ProcessCrash => SqliteSynchronous::Normal,
                Durability::PowerLoss => SqliteSynchronous::Full,
            })
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        // One connection writes: SQLite takes one writer at a time anyway, and
        // queueing for this connection in sqlx is fair and wakes at once, where
        // several writing connections would sleep in SQLite's busy handler.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(Error::Open)?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(Error::Open)?;
        Ok(Self { pool, writer })
    }

    /// Closes every connection; SQLite then checkpoints the WAL into the file.
    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Stores an event as a queued run — or, when its dedup key was seen before,
    /// finds the first run with that key. When this returns the run (and its key)
    /// is committed, so a webhook may be acknowledged.
    pub async fn enqueue(&self, event: &Event) -> Result<Enqueued, Error> {
        let id = &event.run_id;
        let mut transaction = self.writer.begin().await?;
        if let Some(key) = &event.dedup_key {
            // A write first, so the transaction holds the write lock from here on:
            // two deliveries of one key cannot both pass this point.
            let inserted = sqlx::query(
                "INSERT INTO dedup (recipe, key, run_id, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (recipe, key) DO NOTHING",
            )
            .bind(&event.recipe)
            .bind(key)
            .bind(id)
            .bind(timestamp(event.received_at))
            .execute(&mut *transaction)
            .await?;
            if inserted.rows_affected() == 0 {
                let first: String = sqlx::query_scalar("SELECT run_id FROM dedup WHERE recipe = ?1 AND key = ?2")
                    .bind(&event.recipe)
                    .bind(key)
                    .fetch_one(&mut *transaction)
                    .await?;
                transaction.commit().await?;
                return Ok(Enqueued::Duplicate(first));
            }
        }
        sqlx::query(
            "INSERT INTO runs (id, recipe, recipe_version, trigger, status, received_at, payload, headers, query)
             VALUES (?1, ?2, ?3, ?4, 'queued', ?5, ?6, ?7, ?8)",
        )
        .bind(id)
        .bind(&event.recipe)
        .bind(&event.recipe_version)
        .bind(event.trigger)
        .bind(timestamp(event.received_at))
        .bind(event.payload.to_string())
        .bind(Value::Object(event.headers.clone()).to_string())
        .bind(Value::Object(event.query.clone()).to_string())
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(Enqueued::New(id.clone()))
    }

    /// Runs ready to run, oldest first, as `(run id, recipe id)`: queued ones, and
    /// retrying ones whose next attempt is due at `now`.
    pub async fn due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<(String, String)>, Error> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT id, recipe FROM runs
             WHERE status = 'queued' OR (status = 'retrying' AND next_attempt_at <= ?1)
             ORDER BY id LIMIT ?2",
        )
        .bind(timestamp(now))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// When the earliest waiting retry is due, if any run waits.
    pub async fn next_retry_at(&self) -> Result<Option<DateTime<Utc>>, Error> {
        let next: Option<String> =
            sqlx::query_scalar("SELECT MIN(next_attempt_at) FROM runs WHERE status = 'retrying'")
                .fetch_one(&self.pool)
                .await?;
        next.map(|text| {
            DateTime::parse_from_rfc3339(&text)
                .map(|time| time.to_utc())
                .map_err(|error| Error::Corrupt(format!("next_attempt_at `{text}`: {error}")))
        })
        .transpose()
    }

    /// Moves a due run to `running`; `None` if another claim took it first.
    pub async fn claim(&self, run_id: &str) -> Result<Option<ClaimedRun>, Error> {
        let row: Option<ClaimedRow> = sqlx::query_as(
            "UPDATE runs SET status = 'running', started_at = COALESCE(started_at, ?2), next_attempt_at = NULL
             WHERE id = ?1 AND status IN ('queued', 'retrying')
             RETURNING id, recipe, trigger, received_at, payload, headers, query",
        )
        .bind(run_id)
        .bind(timestamp(Utc::now()))
        .fetch_optional(&self.writer)
        .await?;
        row.map(ClaimedRow::into_claimed).transpose()
    }

    /// At start: runs left `running` by a process that stopped mid-run are queued
    /// again; they resume at the step that had not finished. Returns how many.
    pub async fn requeue_interrupted(&self) -> Result<u64, Error> {
        let done = sqlx::query("UPDATE runs SET status = 'queued' WHERE status = 'running'")
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected())
    }

    /// Parks a run until its next attempt is due.
    pub async fn retry_later(&self, run_id: &str, next_attempt_at: DateTime<Utc>) -> Result<(), Error> {
        sqlx::query("UPDATE runs SET status = 'retrying', next_attempt_at = ?2 WHERE id = ?1")
            .bind(run_id)
            .bind(timestamp(next_attempt_at))
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Records the request a step renders at its first attempt (sealed), before it
    /// is sent, so that every later attempt sends the same one.
    pub async fn start_step(&self, run_id: &str, position: usize, step_id: &str, request: &Value) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO steps (run_id, position, step_id, status, request) VALUES (?1, ?2, ?3, 'running', ?4)
             ON CONFLICT (run_id, position) DO UPDATE SET status = 'running', request = excluded.request",
        )
        .bind(run_id)
        .bind(position as i64)
        .bind(step_id)
        .bind(request.to_string())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Ends a step with its result for the steps after it (sealed).
    pub async fn finish_step(
        &self,
        run_id: &str,
        position: usize,
        step_id: &str,
        status: StepStatus,
        result: &Value,
    ) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO steps (run_id, position, step_id, status, result) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (run_id, position) DO UPDATE SET status = excluded.status, result = excluded.result",
        )
        .bind(run_id)
        .bind(position as i64)
        .bind(step_id)
        .bind(status.as_str())
        .bind(result.to_string())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// The steps a run has recorded, for resuming it.
    pub async fn step_states(&self, run_id: &str) -> Result<Vec<StepState>, Error> {
        let rows: Vec<StepStateRow> = sqlx::query_as(
            "SELECT s.position, s.status, s.request, s.result,
                    (SELECT COUNT(*) FROM attempts a WHERE a.run_id = s.run_id AND a.position = s.position) AS attempts
             FROM steps s WHERE s.run_id = ?1 ORDER BY s.position",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(StepStateRow::into_state).collect()
    }

    /// Records the state of the step at `position` (0-based) of a run.
    pub async fn set_step(
        &self,
        run_id: &str,
        position: usize,
        step_id: &str,
        status: StepStatus,
    ) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO steps (run_id, position, step_id, status) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (run_id, position) DO UPDATE SET status = excluded.status",
        )
        .bind(run_id)
        .bind(position as i64)
        .bind(step_id)
        .bind(status.as_str())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Records one attempt of the step at `position`.
    pub async fn record_attempt(&self, run_id: &str, position: usize, attempt: &AttemptRecord) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO attempts (run_id, position, n, started_at, duration_ms, request, response, error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .bind(run_id)
        .bind(position as i64)
        .bind(attempt.n)
        .bind(&attempt.started_at)
        .bind(i64::try_from(attempt.duration_ms).unwrap_or(i64::MAX))
        .bind(attempt.request.to_string())
        .bind(attempt.response.as_ref().map(Value::to_string))
        .bind(&attempt.error)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Ends a run.
    pub async fn finish_run(&self, run_id: &str, status: RunStatus, error: Option<&str>) -> Result<(), Error> {
        sqlx::query("UPDATE runs SET status = ?2, error = ?3, finished_at = ?4, next_attempt_at = NULL WHERE id = ?1")
            .bind(run_id)
            .bind(status.as_str())
            .bind(error)
            .bind(timestamp(Utc::now()))
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// One page of runs, newest first.
    pub async fn runs_page(&self, filter: &RunFilter) -> Result<Vec<RunSummary>, Error> {
        let rows: Vec<SummaryRow> = sqlx::query_as(
            "SELECT id, recipe, recipe_version, trigger, status, replay_of, received_at, started_at,
                    finished_at, next_attempt_at, error
             FROM runs
             WHERE (?1 IS NULL OR recipe = ?1) AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR id < ?3)
               AND (?4 IS NULL OR received_at >= ?4) AND (?5 IS NULL OR received_at < ?5)
             ORDER BY id DESC LIMIT ?6",
        )
        .bind(&filter.recipe)
        .bind(filter.status.map(RunStatus::as_str))
        .bind(&filter.before)
        .bind(&filter.since)
        .bind(&filter.until)
        .bind(filter.limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(SummaryRow::into_summary).collect()
    }

    /// The newest run of every recipe that has one.
    pub async fn last_runs(&self) -> Result<HashMap<String, RunSummary>, Error> {
        let rows: Vec<SummaryRow> = sqlx::query_as(
            "SELECT id, recipe, recipe_version, trigger, status, replay_of, received_at, started_at,
                    finished_at, next_attempt_at, error
             FROM runs WHERE id IN (SELECT MAX(id) FROM runs GROUP BY recipe)",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| row.into_summary().map(|summary| (summary.recipe.clone(), summary)))
            .collect()
    }

    /// How many runs of a recipe are in each status.
    pub async fn run_counts(&self, recipe: &str) -> Result<Vec<(RunStatus, u64)>, Error> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM runs WHERE recipe = ?1 GROUP BY status")
                .bind(recipe)
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|(status, count)| {
                Ok((
                    RunStatus::from_str(&status).map_err(Error::Corrupt)?,
                    count.max(0) as u64,
                ))
            })
            .collect()
    }

    /// The whole run document, or `None` if there is no such run.
    pub async fn run(&self, run_id: &str) -> Result<Option<RunDocument>, Error> {
        let row: Option<DocumentRow> = sqlx::query_as(
            "SELECT id, recipe, recipe_version, trigger, status, replay_of, received_at, started_at,
                    finished_at, next_attempt_at, error, payload, headers, query
             FROM runs WHERE id = ?1",
        )
        .bind(run_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let steps: Vec<StepRow> =
            sqlx::query_as("SELECT position, step_id, status FROM steps WHERE run_id = ?1 ORDER BY position")
                .bind(run_id)
                .fetch_all(&self.pool)
                .await?;
        let attempts: Vec<AttemptRow> = sqlx::query_as(
            "SELECT position, n, started_at, duration_ms, request, response, error
             FROM attempts WHERE run_id = ?1 ORDER BY position, n",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?;

        let mut documents = Vec::with_capacity(steps.len());
        for step in steps {
            let step_attempts = attempts
                .iter()
                .filter(|attempt| attempt.position == step.position)
                .map(AttemptRow::to_record)
                .collect::<Result<_, _>>()?;
            documents.push(StepDocument {
                id: step.step_id,
                status: StepStatus::from_str(&step.status).map_err(Error::Corrupt)?,
                attempts: step_attempts,
            });
        }
        Ok(Some(RunDocument {
            summary: row.summary.into_summary()?,
            payload: parse_json(&row.payload)?,
            headers: parse_json(&row.headers)?,
            query: parse_json(&row.query)?,
            steps: documents,
        }))
    }
}

fn parse_json(text: &str) -> Result<Value, Error> {
    serde_json::from_str(text)
        .map_err(|error| Error::Corrupt(format!("a stored JSON document does not parse: {error}")))
}

#[derive(FromRow)]
struct ClaimedRow {
    id: String,
    recipe: String,
    trigger: String,
    received_at: String,
    payload: String,
    headers: String,
    query: String,
}

impl ClaimedRow {
    fn into_claimed(self) -> Result<ClaimedRun, Error> {
        Ok(ClaimedRun {
            payload: parse_json(&self.payload)?,
            headers: parse_json(&self.headers)?,
            query: parse_json(&self.query)?,
            id: self.id,
            recipe: self.recipe,
            trigger: self.trigger,
            received_at: self.received_at,
        })
    }
}

#[derive(FromRow)]
struct SummaryRow {
    id: String,
    recipe: String,
    recipe_version: String,
    trigger: String,
    status: String,
    replay_of: Option<String>,
    received_at: String,
    started_at: Option<String>,
    finished_at: Option<String>,
    next_attempt_at: Option<String>,
    error: Option<String>,
}

impl SummaryRow {
    fn into_summary(self) -> Result<RunSummary, Error> {
        Ok(RunSummary {
            status: RunStatus::from_str(&self.status).map_err(Error::Corrupt)?,
            id: self.id,
            recipe: self.recipe,
            recipe_version: self.recipe_version,
            trigger: self.trigger,
            replay_of: self.replay_of,
            received_at: self.received_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            next_attempt_at: self.next_attempt_at,
            error: self.error,
        })
    }
}

#[derive(FromRow)]
struct DocumentRow {
    #[sqlx(flatten)]
    summary: SummaryRow,
    payload: String,
    headers: String,
    query: String,
}

#[derive(FromRow)]
struct StepStateRow {
    position: i64,
    status: String,
    request: Option<String>,
    result: Option<String>,
    attempts: i64,
}

impl StepStateRow {
    fn into_state(self) -> Result<StepState, Error> {
        Ok(StepState {
            position: usize::try_from(self.position)
                .map_err(|_| Error::Corrupt(format!("step position {}", self.position)))?,
            status: StepStatus::from_str(&self.status).map_err(Error::Corrupt)?,
            request: self.request.as_deref().map(parse_json).transpose()?,
            result: self.result.as_deref().map(parse_json).transpose()?,
            attempts: u32::try_from(self.attempts).unwrap_or(u32::MAX),
        })
    }
}

#[derive(FromRow)]
struct StepRow {
    position: i64,
    step_id: String,
    status: String,
}

#[derive(FromRow)]
struct AttemptRow {
    position: i64,
    n: i64,
    started_at: String,
    duration_ms: i64,
    request: String,
    response: Option<String>,
    error: Option<String>,
}

impl AttemptRow {
    fn to_record(&self) -> Result<AttemptRecord, Error> {
        Ok(AttemptRecord {
            n: u32::try_from(self.n).map_err(|_| Error::Corrupt(format!("attempt number {}", self.n)))?,
            started_at: self.started_at.clone(),
            duration_ms: u64::try_from(self.duration_ms).unwrap_or(0),
            request: parse_json(&self.request)?,
            response: self.response.as_deref().map(parse_json).transpose()?,
            error: self.error.clone(),
        })
    }
}
