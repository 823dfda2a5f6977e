//! The SQLite backend: WAL mode, migrations from `migrations/sqlite/` applied at
//! open.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::sqlite::{SqliteAutoVacuum, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{ConnectOptions, Connection, FromRow, SqlitePool};

use super::interface::{
    AttemptRecord, Cancelled, ClaimedRun, ElementDocument, Enqueued, QueueStats, Recorded, Reopened, RunChange,
    RunDocument, RunFilter, RunSummary, RunWrite, StepDocument, StepKey, StepState,
};
use super::run_rows::{self, ChangeRow, Claim, NewAttempt, NewRun, RecordWrite, RunRows, StepStateRow, StepUpsert};
use super::writer::{WriteHealth, WriteState, Writer};
use super::{Durability, Error, FinalStatus, Start, timestamp};
use crate::event::Event;
use crate::json::text as json_text;
use crate::status::{RunStatus, StepStatus};

/// The database of runs in SQLite: one file, one writer thread, two pools
/// of readers.
#[derive(Clone)]
pub struct SqliteStore {
    /// Readers for the engine and the store's upkeep (due runs, checkpoints,
    /// retention, health).
    pub(super) pool: SqlitePool,
    /// Readers for the API and the status page, apart: however many clients
    /// list runs at once, they wait for these and leave `pool` to the engine.
    pub(super) reads: SqlitePool,
    /// The task that owns the one writing connection.
    pub(super) writer: Writer,
    /// Whether its last commit worked.
    health: Arc<WriteHealth>,
    /// The database file, for the free space beside it.
    file: std::path::PathBuf,
}

/// The queue's depth: summed from the kept counts (one row per recipe), and
/// the oldest queued run: the first in the index of unfinished runs (ids grow
/// with the time they are made, at or just after the run was received).
pub const QUEUE_STATS_SQL: &str = "SELECT (SELECT COALESCE(SUM(runs), 0) FROM run_counts WHERE status = 'queued'),
        (SELECT COALESCE(SUM(runs), 0) FROM run_counts WHERE status = 'retrying'),
        (SELECT COALESCE(SUM(runs), 0) FROM run_counts WHERE status = 'waiting'),
        (SELECT received_at FROM runs WHERE status = 'queued' ORDER BY id LIMIT 1)";

/// A recipe's runs by status, as the triggers keep them.
pub const RUN_COUNTS_SQL: &str = "SELECT status, runs FROM run_counts WHERE recipe = ?1 AND runs > 0";

/// The newest run of each recipe in a JSON array of ids: one index seek each.
pub const LAST_RUNS_SQL: &str =
    "SELECT runs.id, runs.recipe, runs.recipe_version, runs.trigger, runs.status, runs.replay_of,
            runs.received_at, runs.started_at, runs.finished_at, runs.next_attempt_at, runs.error
     FROM json_each(?1) AS wanted
     JOIN runs ON runs.id = (SELECT newest.id FROM runs AS newest
                             WHERE newest.recipe = wanted.value ORDER BY newest.id DESC LIMIT 1)";

/// Connections of the engine's readers.
const ENGINE_READERS: u32 = 4;

/// Connections of the API's readers: on two cores, more would only queue on the
/// CPU beside the engine.
const API_READERS: u32 = 3;

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` and applies migrations.
    pub async fn open(url: &str, durability: Durability) -> Result<Self, Error> {
        if !url.starts_with("sqlite:") {
            return Err(Error::UnsupportedUrl { url: url.to_owned() });
        }
        let options = SqliteConnectOptions::from_str(url)
            .map_err(Error::Open)?
            .create_if_missing(true)
            // A commit writes each page it touched whole, and every batch touches
            // the last page of each table and index: small pages write less WAL
            // per webhook than large ones. It takes effect when the
            // file is created.
            .page_size(4096)
            // Pruned runs' pages can be given back to the file system (see
            // `retention.rs`); an older file is converted once below.
            .auto_vacuum(SqliteAutoVacuum::Incremental)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(super::BUSY_TIMEOUT);
        let options = connection_pragmas(durability)
            .into_iter()
            .fold(options, |options, (name, value)| options.pragma(name, value));
        // Migrations and the one-time conversions run on a connection of sqlx's,
        // which is closed before the writer opens its own.
        let mut connection = options.clone().connect().await.map_err(Error::Open)?;
        sqlx::migrate!("./migrations/sqlite").run(&mut connection).await?;
        let auto_vacuum: i64 = sqlx::query_scalar("PRAGMA auto_vacuum")
            .fetch_one(&mut connection)
            .await?;
        if auto_vacuum != 2 {
            // A file made before retention existed: incremental vacuum needs one
            // full VACUUM to take effect (it rewrites the file; once).
            tracing::info!("converting the database for incremental vacuum (once)");
            sqlx::query("PRAGMA auto_vacuum = INCREMENTAL")
                .execute(&mut connection)
                .await?;
            sqlx::query("VACUUM").execute(&mut connection).await?;
        }
        // A migration that rebuilt tables (0007) left the old ones' pages free:
        // they go back to the file system now, not at the first prune.
        super::retention::release_free_pages(&mut connection).await?;
        connection.close().await.map_err(Error::Open)?;
        let writing = open_writer(options.get_filename(), durability)?;
        // For syncing the file from the checkpoint task (see `checkpoint.rs`).
        // Never closed: closing any descriptor of a file drops every POSIX lock
        // this process holds on it, SQLite's included; one descriptor per open
        // store is kept until the process exits instead.
        let database_file: &'static std::fs::File = Box::leak(Box::new(
            std::fs::File::open(options.get_filename()).map_err(|source| Error::File {
                path: options.get_filename().to_path_buf(),
                source,
            })?,
        ));
        let file = options.get_filename().to_path_buf();
        let pool = SqlitePoolOptions::new()
            .max_connections(ENGINE_READERS)
            .connect_with(options.clone())
            .await
            .map_err(Error::Open)?;
        let reads = SqlitePoolOptions::new()
            .max_connections(API_READERS)
            .connect_with(options)
            .await
            .map_err(Error::Open)?;
        let commits = Arc::new(AtomicU64::new(0));
        let health = Arc::new(WriteHealth::default());
        let writer = Writer::start(writing, commits.clone(), health.clone())?;
        let mut wal = file.clone().into_os_string();
        wal.push("-wal");
        super::checkpoint::start(pool.clone(), writer.clone(), commits, database_file, wal.into());
        Ok(Self {
            pool,
            reads,
            writer,
            health,
            file,
        })
    }

    /// Why writes fail, while they do (a full disk, an I/O error): `None` when
    /// they work. After a refused commit, asks the storage with a probe write
    /// of a webhook's size once the refusal is a few seconds old.
    pub async fn write_failure(&self) -> Option<String> {
        match self.health.state() {
            WriteState::Working => None,
            WriteState::Refusing(why) => Some(why),
            WriteState::Unsure => match self
                .writer
                .write(|statements| run_rows::probe(statements.connection))
                .await
            {
                Ok(()) => {
                    self.health.recovered();
                    None
                }
                Err(error) => Some(error.to_string()),
            },
        }
    }

    /// Whether the store was closed.
    pub fn is_closed(&self) -> bool {
        self.pool.is_closed()
    }

    /// Commits the storage refused since the start (a full disk, I/O errors).
    pub fn write_refusals(&self) -> u64 {
        self.health.refusals()
    }

    /// The database file.
    pub fn file(&self) -> &std::path::Path {
        &self.file
    }

    /// Closes every connection; SQLite then checkpoints the WAL into the file.
    pub async fn close(&self) {
        self.reads.close().await;
        self.pool.close().await;
        self.writer.close().await;
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// How many runs wait, and how long the oldest queued one has waited.
    /// Counted by triggers (`run_counts`, migration 0012): a few row reads
    /// however long the queue is; the oldest is the first entry of the
    /// unfinished runs' index.
    pub async fn queue_stats(&self) -> Result<QueueStats, Error> {
        let (queued, retrying, waiting, oldest): (i64, i64, i64, Option<String>) =
            sqlx::query_as(QUEUE_STATS_SQL).fetch_one(&self.pool).await?;
        let oldest_queued_age = oldest
            .and_then(|text| DateTime::parse_from_rfc3339(&text).ok())
            .and_then(|time| (Utc::now() - time.to_utc()).to_std().ok());
        Ok(QueueStats {
            queued: u64::try_from(queued).unwrap_or(0),
            retrying: u64::try_from(retrying).unwrap_or(0),
            waiting: u64::try_from(waiting).unwrap_or(0),
            oldest_queued_age,
        })
    }

    /// Stores an event as a run, queued or already running (see [`Start`]) — or,
    /// when its dedup key was seen before, finds the first run with that key. When
    /// this returns the run (and its key) is committed, so a webhook may be
    /// acknowledged.
    pub async fn enqueue(&self, event: &Event, start: Start) -> Result<Enqueued, Error> {
        let run = NewRun::from_event(event, start);
        self.writer
            .write(move |statements| run_rows::insert_run(statements.connection, &mut statements.insert_run, &run))
            .await
    }

    /// Runs ready to run, as `(run id, recipe id)`: retrying and waiting ones
    /// whose time is due at `now` (earliest first), then queued ones (oldest first).
    pub async fn due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<(String, String)>, Error> {
        // Two index walks that stop at `limit`; one query with `OR` would read
        // and sort every queued run, however long the queue. `INDEXED BY`: the
        // planner has no statistics to prefer the partial index by itself.
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT id, recipe FROM (SELECT id, recipe FROM runs INDEXED BY runs_waiting
                 WHERE (status = 'retrying' OR status = 'waiting') AND next_attempt_at <= ?1
                 ORDER BY next_attempt_at LIMIT ?2)
             UNION ALL
             SELECT id, recipe FROM (SELECT id, recipe FROM runs WHERE status = 'queued' ORDER BY id LIMIT ?2)",
        )
        .bind(timestamp(now))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// When the earliest retry or delay is due, if any run waits.
    pub async fn next_retry_at(&self) -> Result<Option<DateTime<Utc>>, Error> {
        let next: Option<String> = sqlx::query_scalar(
            "SELECT MIN(next_attempt_at) FROM runs INDEXED BY runs_waiting
             WHERE status = 'retrying' OR status = 'waiting'",
        )
        .fetch_one(&self.pool)
        .await?;
        next.map(|text| {
            DateTime::parse_from_rfc3339(&text)
                .map(|time| time.to_utc())
                .map_err(|error| Error::Corrupt(format!("next_attempt_at `{text}`: {error}")))
        })
        .transpose()
    }

    /// Moves the given runs to `running` if they are still due, and returns those
    /// it took with what they need to run or resume. `parse_payload` builds a
    /// run's payload from its stored text, given its recipe (as far as the
    /// recipe's templates read it).
    pub async fn claim(
        &self,
        run_ids: Vec<String>,
        parse_payload: impl Fn(&str, &str) -> serde_json::Result<Value>,
    ) -> Result<Vec<ClaimedRun>, Error> {
        if run_ids.is_empty() {
            return Ok(Vec::new());
        }
        let claim = Claim {
            ids: run_ids,
            now: timestamp(Utc::now()),
        };
        let rows = self
            .writer
            .write(move |statements| run_rows::claim_runs(statements.connection, &claim))
            .await?;
        let mut steps: HashMap<String, Vec<StepState>> = HashMap::new();
        for row in rows.steps {
            steps.entry(row.run_id.clone()).or_default().push(step_state(row)?);
        }
        rows.runs
            .into_iter()
            .map(|row| {
                let payload = parse_payload(&row.recipe, &super::packed::unpack(&row.payload)?)
                    .map_err(|error| Error::Corrupt(format!("a stored JSON document does not parse: {error}")))?;
                Ok(ClaimedRun {
                    payload,
                    headers: parse_stored(&row.headers)?,
                    query: parse_stored(&row.query)?,
                    steps: steps.remove(&row.id).unwrap_or_default(),
                    id: row.id,
                    recipe: row.recipe,
                    recipe_version: row.recipe_version,
                    trigger: row.trigger,
                    received_at: row.received_at,
                    started_at: row.started_at,
                })
            })
            .collect()
    }

    /// Queues a failed or cancelled run again, to go on from where it stopped
    /// (see [`Store::resume`]).
    pub async fn resume(&self, run_id: &str) -> Result<Option<Reopened>, Error> {
        let run_id = run_id.to_owned();
        self.writer
            .write(move |statements| run_rows::resume(statements.connection, &run_id))
            .await?
            .map(|(was, changed)| {
                let status = RunStatus::from_str(&was).map_err(Error::Corrupt)?;
                Ok(if changed {
                    Reopened::Was(status)
                } else {
                    Reopened::Not(status)
                })
            })
            .transpose()
    }

    /// Ends a run that has not ended as `cancelled` (see [`Store::cancel`]).
    pub async fn cancel(&self, run_id: &str) -> Result<Option<Cancelled>, Error> {
        let run_id = run_id.to_owned();
        let now = timestamp(Utc::now());
        self.writer
            .write(move |statements| run_rows::cancel(statements.connection, &run_id, &now))
            .await?
            .map(|(was, changed)| {
                let status = RunStatus::from_str(&was).map_err(Error::Corrupt)?;
                Ok(if changed {
                    Cancelled::Was(status)
                } else {
                    Cancelled::Ended(status)
                })
            })
            .transpose()
    }

    /// At start: runs left `running` by a process that stopped mid-run are queued
    /// again; they resume at the step that had not finished. Returns how many.
    pub async fn requeue_interrupted(&self) -> Result<u64, Error> {
        self.writer
            .write(|statements| run_rows::requeue_interrupted(statements.connection))
            .await
    }

    /// Stores changes to a run: its steps, their attempts, where it goes next.
    /// What could not be stored comes back, to be tried again.
    pub async fn record(&self, write: RunWrite) -> Result<Recorded, Unrecorded> {
        // A step's result is kept for the steps after it when the run resumes; a
        // run that succeeded (or was skipped) never resumes, so the results of
        // its last write are not stored (what the step received is in its
        // attempt's record). A failed run may be resumed in place: it keeps them.
        let ends = matches!(
            write.change,
            Some(RunChange::End(FinalStatus::Succeeded | FinalStatus::Skipped, _))
        );
        let rows = RunRows {
            recipe_version: write.recipe_version,
            new_runs: write
                .new_runs
                .iter()
                .map(|event| NewRun::from_event(event, Start::Queued))
                .collect(),
            steps: write
                .steps
                .into_iter()
                .map(|step| StepUpsert {
                    position: step.key.position as i64,
                    element: element_column(step.key),
                    step_id: step.step_id,
                    on_failure: step.on_failure,
                    kind: step.kind.as_str(),
                    status: step.status.as_str(),
                    request: step.request.as_ref().map(json_text),
                    result: step.result.as_ref().filter(|_| !ends).map(json_text),
                })
                .collect(),
            attempts: write
                .attempts
                .into_iter()
                .map(|(key, attempt)| NewAttempt {
                    position: key.position as i64,
                    element: element_column(key),
                    n: i64::from(attempt.n),
                    started_at: attempt.started_at,
                    duration_ms: i64::try_from(attempt.duration_ms).unwrap_or(i64::MAX),
                    request: attempt.request,
                    response: attempt.response,
                    error: attempt.error,
                })
                .collect(),
            change: write.change.map(|change| match change {
                RunChange::WaitUntil(due) => ChangeRow {
                    status: RunStatus::Waiting.as_str(),
                    error: None,
                    finished_at: None,
                    next_attempt_at: Some(timestamp(due)),
                },
                RunChange::RetryAt(due) => ChangeRow {
                    status: RunStatus::Retrying.as_str(),
                    error: None,
                    finished_at: None,
                    next_attempt_at: Some(timestamp(due)),
                },
                RunChange::End(status, error) => ChangeRow {
                    status: RunStatus::from(status).as_str(),
                    error,
                    finished_at: Some(timestamp(Utc::now())),
                    next_attempt_at: None,
                },
            }),
            run_id: write.run_id,
        };
        self.record_rows(rows).await
    }

    /// Tries a record that failed again.
    pub async fn record_again(&self, unrecorded: Unrecorded) -> Result<Recorded, Unrecorded> {
        match unrecorded.rows {
            Some(rows) => self.record_rows(rows).await,
            None => Err(unrecorded),
        }
    }

    async fn record_rows(&self, rows: RunRows) -> Result<Recorded, Unrecorded> {
        let (reply, outcome) = tokio::sync::oneshot::channel();
        self.writer
            .send(Box::new(RecordWrite {
                rows,
                recorded: Recorded::Stored,
                reply,
            }))
            .await;
        match outcome.await {
            Ok(Ok(recorded)) => Ok(recorded),
            Ok(Err((error, rows))) => Err(Unrecorded {
                error,
                rows: Some(rows),
            }),
            Err(_) => Err(Unrecorded {
                error: Error::Closed,
                rows: None,
            }),
        }
    }

    /// One page of runs, newest first. The statement is made for the filters
    /// given (see [`runs_page_sql`]), so that each uses its index.
    pub async fn runs_page(&self, filter: &RunFilter) -> Result<Vec<RunSummary>, Error> {
        let (sql, binds) = runs_page_sql(filter);
        // Made of fixed terms and a status enum's literal; every value is bound.
        let mut query = sqlx::query_as::<_, SummaryRow>(sqlx::AssertSqlSafe(sql));
        for bind in binds {
            query = query.bind(bind);
        }
        let rows = query.bind(filter.limit).fetch_all(&self.reads).await?;
        rows.into_iter().map(SummaryRow::into_summary).collect()
    }

    /// The newest run of each of these recipes that has one: one statement,
    /// one index seek per recipe inside it (a round trip per recipe would cost
    /// more than the seeks with thousands of recipes).
    pub async fn last_runs(&self, recipes: &[&str]) -> Result<HashMap<String, RunSummary>, Error> {
        let wanted = serde_json::to_string(recipes).map_err(|error| Error::Corrupt(error.to_string()))?;
        let rows: Vec<SummaryRow> = sqlx::query_as(LAST_RUNS_SQL)
            .bind(wanted)
            .fetch_all(&self.reads)
            .await?;
        rows.into_iter()
            .map(|row| row.into_summary().map(|summary| (summary.recipe.clone(), summary)))
            .collect()
    }

    /// How many runs of a recipe are in each status: the counts the triggers
    /// keep (migration 0012), not a count of the table.
    pub async fn run_counts(&self, recipe: &str) -> Result<Vec<(RunStatus, u64)>, Error> {
        let rows: Vec<(String, i64)> = sqlx::query_as(RUN_COUNTS_SQL)
            .bind(recipe)
            .fetch_all(&self.reads)
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

    /// A run's trigger input as stored (whole, its recipe's secrets redacted),
    /// or `None` if there is no such run.
    pub async fn payload(&self, run_id: &str) -> Result<Option<Value>, Error> {
        let stored: Option<Vec<u8>> = sqlx::query_scalar("SELECT payload FROM runs WHERE id = ?1")
            .bind(run_id)
            .fetch_optional(&self.reads)
            .await?;
        stored.as_deref().map(parse_stored).transpose()
    }

    /// The whole run document, or `None` if there is no such run.
    pub async fn run(&self, run_id: &str) -> Result<Option<RunDocument>, Error> {
        let row: Option<DocumentRow> = sqlx::query_as(
            "SELECT id, recipe, recipe_version, trigger, status, replay_of, received_at, started_at,
                    finished_at, next_attempt_at, error, payload, headers, query
             FROM runs WHERE id = ?1",
        )
        .bind(run_id)
        .fetch_optional(&self.reads)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let steps: Vec<StepRow> = sqlx::query_as(
            "SELECT position, element, step_id, status, kind, on_failure FROM steps WHERE run_id = ?1
             ORDER BY position, element",
        )
        .bind(run_id)
        .fetch_all(&self.reads)
        .await?;
        let attempts: Vec<AttemptRow> = sqlx::query_as(
            "SELECT position, element, n, started_at, duration_ms, request, response, error
             FROM attempts WHERE run_id = ?1 ORDER BY position, element, n",
        )
        .bind(run_id)
        .fetch_all(&self.reads)
        .await?;

        let attempts_of = |step: &StepRow| -> Result<Vec<AttemptRecord>, Error> {
            attempts
                .iter()
                .filter(|attempt| attempt.position == step.position && attempt.element == step.element)
                .map(AttemptRow::to_record)
                .collect()
        };
        let mut documents: Vec<StepDocument> = Vec::with_capacity(steps.len());
        let mut on_failure = Vec::with_capacity(steps.len());
        for step in &steps {
            let status = StepStatus::from_str(&step.status).map_err(Error::Corrupt)?;
            if step.element >= 0 {
                // Rows are ordered: the loop's own row comes before its elements.
                let element = ElementDocument {
                    index: u32::try_from(step.element)
                        .map_err(|_| Error::Corrupt(format!("loop element {}", step.element)))?,
                    status,
                    attempts: attempts_of(step)?,
                };
                match documents.last_mut() {
                    Some(document) if document.id == step.step_id => {
                        document.items.get_or_insert_with(Vec::new).push(element);
                    }
                    _ => return Err(Error::Corrupt(format!("loop element of step `{}` alone", step.step_id))),
                }
                continue;
            }
            let kind = crate::step::KindName::parse(&step.kind)
                .ok_or_else(|| Error::Corrupt(format!("step kind `{}`", step.kind)))?;
            documents.push(StepDocument {
                id: step.step_id.clone(),
                kind,
                status,
                attempts: attempts_of(step)?,
                items: None,
            });
            on_failure.push(step.on_failure);
        }
        // `on_failure`'s steps come after the run's (their positions follow).
        let first_on_failure = on_failure.iter().position(|is| *is).unwrap_or(documents.len());
        let on_failure = documents.split_off(first_on_failure);
        Ok(Some(RunDocument {
            summary: row.summary.into_summary()?,
            payload: parse_stored(&row.payload)?,
            headers: parse_stored(&row.headers)?,
            query: parse_stored(&row.query)?,
            steps: documents,
            on_failure,
        }))
    }
}

/// Settings of every connection, the pool's and the writer's.
fn connection_pragmas(durability: Durability) -> [(&'static str, String); 4] {
    [
        // With WAL, NORMAL survives a process crash: a committed transaction is
        // in the WAL file (the OS has it) before the commit returns. FULL also
        // waits for the disk, so it survives a power loss.
        (
            "synchronous",
            match durability {
                Durability::ProcessCrash => "NORMAL",
                Durability::PowerLoss => "FULL",
            }
            .to_owned(),
        ),
        // No connection checkpoints in its commits: a background task does
        // (see `checkpoint.rs`); the WAL file is cut back after.
        ("wal_autocheckpoint", "0".to_owned()),
        ("journal_size_limit", super::WAL_SIZE_LIMIT.to_string()),
        ("foreign_keys", "ON".to_owned()),
    ]
}

/// The writer's connection, with the settings of the pool's (see [`Store::open`]).
fn open_writer(path: &std::path::Path, durability: Durability) -> Result<rusqlite::Connection, Error> {
    let connection = rusqlite::Connection::open(path)?;
    connection.busy_timeout(super::BUSY_TIMEOUT)?;
    // WAL is a setting of the file, made when the pool's connections opened it.
    for (name, value) in connection_pragmas(durability) {
        connection.pragma_update(None, name, value)?;
    }
    // Every statement of the writer, prepared once.
    connection.set_prepared_statement_cache_capacity(64);
    Ok(connection)
}

/// A stored document, compressed or not.
fn parse_stored(bytes: &[u8]) -> Result<Value, Error> {
    parse_json(&super::packed::unpack(bytes)?)
}

fn parse_json(text: &str) -> Result<Value, Error> {
    serde_json::from_str(text)
        .map_err(|error| Error::Corrupt(format!("a stored JSON document does not parse: {error}")))
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
    /// As stored (see `packed.rs`).
    payload: Vec<u8>,
    headers: Vec<u8>,
    query: Vec<u8>,
}

/// How the store writes a step key's element (see migration 0015).
fn element_column(key: StepKey) -> i64 {
    key.element.map_or(-1, i64::from)
}

fn step_state(row: StepStateRow) -> Result<StepState, Error> {
    let position =
        usize::try_from(row.position).map_err(|_| Error::Corrupt(format!("step position {}", row.position)))?;
    let element = match row.element {
        -1 => None,
        element => Some(u32::try_from(element).map_err(|_| Error::Corrupt(format!("loop element {element}")))?),
    };
    Ok(StepState {
        key: StepKey { position, element },
        status: StepStatus::from_str(&row.status).map_err(Error::Corrupt)?,
        request: row.request.as_deref().map(parse_json).transpose()?,
        result: row.result.as_deref().map(parse_json).transpose()?,
        attempts: u32::try_from(row.attempts).unwrap_or(u32::MAX),
        attempts_before: u32::try_from(row.attempts_before).unwrap_or(0),
    })
}

#[derive(FromRow)]
struct StepRow {
    position: i64,
    element: i64,
    on_failure: bool,
    step_id: String,
    status: String,
    kind: String,
}

#[derive(FromRow)]
struct AttemptRow {
    position: i64,
    element: i64,
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

/// A run's changes that were not stored, and why: kept whole, so that they can
/// be stored as soon as the storage takes writes again.
pub struct Unrecorded {
    pub error: Error,
    rows: Option<RunRows>,
}

impl Unrecorded {
    /// Whether trying again may work: the storage, not the write, refused it.
    pub fn may_succeed_later(&self) -> bool {
        self.rows.is_some() && self.error.is_unavailable()
    }
}

impl std::fmt::Debug for Unrecorded {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Unrecorded")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Display for Unrecorded {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(formatter)
    }
}

/// How far a run's id (a UUIDv7, whose first 48 bits are the time it was made)
/// may be from its `received_at`: a poll's runs are received when it started and
/// made when its answer came.
const ID_TIME_MARGIN_MS: i64 = 60 * 60 * 1000;

/// The statement of a run listing and its text binds (the limit is bound last):
/// one statement per combination of filters, each term one an index can use.
/// A status is written as a literal so that the partial indexes on rare
/// statuses (`failed`, `skipped`, the unfinished ones) apply; `since` and `until`
/// also bound the id, which orders by time.
pub fn runs_page_sql(filter: &RunFilter) -> (String, Vec<String>) {
    let mut terms: Vec<String> = Vec::new();
    let mut binds: Vec<String> = Vec::new();
    let bind = |term: &str, value: String, binds: &mut Vec<String>| {
        binds.push(value);
        term.replace('?', &format!("?{}", binds.len()))
    };
    if let Some(recipe) = &filter.recipe {
        terms.push(bind("recipe = ?", recipe.clone(), &mut binds));
    }
    if let Some(status) = filter.status {
        terms.push(format!("status = '{}'", status.as_str()));
    }
    if let Some(before) = &filter.before {
        terms.push(bind("id < ?", before.clone(), &mut binds));
    }
    if let Some(since) = &filter.since {
        terms.push(bind("received_at >= ?", since.clone(), &mut binds));
        if let Some(bound) = id_bound(since, -ID_TIME_MARGIN_MS) {
            terms.push(bind("id >= ?", bound, &mut binds));
        }
    }
    if let Some(until) = &filter.until {
        terms.push(bind("received_at < ?", until.clone(), &mut binds));
        if let Some(bound) = id_bound(until, ID_TIME_MARGIN_MS) {
            terms.push(bind("id < ?", bound, &mut binds));
        }
    }
    let conditions = if terms.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", terms.join(" AND "))
    };
    let sql = format!(
        "SELECT id, recipe, recipe_version, trigger, status, replay_of, received_at, started_at,
                finished_at, next_attempt_at, error
         FROM runs {conditions} ORDER BY id DESC LIMIT ?{}",
        binds.len() + 1
    );
    (sql, binds)
}

/// The smallest UUIDv7 text made at `timestamp` moved by `shift_ms`: ids compare
/// as text in the order of the times they were made.
fn id_bound(timestamp: &str, shift_ms: i64) -> Option<String> {
    let time = chrono::DateTime::parse_from_rfc3339(timestamp).ok()?;
    let millis = u64::try_from(time.timestamp_millis().saturating_add(shift_ms)).unwrap_or(0);
    let millis = millis.min((1 << 48) - 1);
    Some(format!("{:08x}-{:04x}", millis >> 16, millis & 0xffff))
}
