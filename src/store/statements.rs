//! The writer's connection with the statements every webhook needs, prepared
//! once for the writer's life, and the batch transaction's begin and end.

use rusqlite::{Connection, Statement};

pub(super) const INSERT_RUN: &str =
    "INSERT INTO runs (id, recipe, recipe_version, trigger, status, received_at, started_at,
         payload, headers, query, replay_of)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
const UPSERT_STEP: &str =
    "INSERT INTO steps (run_id, position, element, step_id, status, request, result, kind, on_failure)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
     ON CONFLICT (run_id, position, element) DO UPDATE SET status = excluded.status,
         request = COALESCE(excluded.request, steps.request),
         result = COALESCE(excluded.result, steps.result)";
const INSERT_ATTEMPT: &str =
    "INSERT INTO attempts (run_id, position, element, n, started_at, duration_ms, request, response, error)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
const CHANGE_RUN: &str = "UPDATE runs SET status = ?2, error = ?3, finished_at = ?4, next_attempt_at = ?5
     WHERE id = ?1 AND status <> 'cancelled'";

/// The writer's connection with the statements of every webhook, prepared once
/// for the writer's life. Taken from rusqlite's statement cache instead, each
/// cost a hash of its SQL and a reinsertion per webhook (counted with
/// callgrind). Rarer writes use the cache.
pub(super) struct Statements<'c> {
    pub connection: &'c Connection,
    begin: Statement<'c>,
    commit: Statement<'c>,
    rollback: Statement<'c>,
    pub insert_run: Statement<'c>,
    pub upsert_step: Statement<'c>,
    pub insert_attempt: Statement<'c>,
    pub change_run: Statement<'c>,
}

impl<'c> Statements<'c> {
    pub(super) fn prepare(connection: &'c Connection) -> rusqlite::Result<Self> {
        Ok(Self {
            connection,
            begin: connection.prepare("BEGIN IMMEDIATE")?,
            commit: connection.prepare("COMMIT")?,
            rollback: connection.prepare("ROLLBACK")?,
            insert_run: connection.prepare(INSERT_RUN)?,
            upsert_step: connection.prepare(UPSERT_STEP)?,
            insert_attempt: connection.prepare(INSERT_ATTEMPT)?,
            change_run: connection.prepare(CHANGE_RUN)?,
        })
    }

    /// Starts the batch's transaction. Immediate: the write lock is taken at
    /// the start, so a commit never fails on a lock a reader's upgrade holds.
    pub(super) fn begin(&mut self) -> rusqlite::Result<()> {
        self.begin.execute([]).map(drop)
    }

    pub(super) fn commit(&mut self) -> rusqlite::Result<()> {
        self.commit.execute([]).map(drop)
    }

    /// Ends a transaction that failed, if one is open. What failed is the
    /// caller's to report; a failed rollback leaves the transaction to SQLite,
    /// which ends it on the next BEGIN's error.
    pub(super) fn roll_back(&mut self) {
        if !self.connection.is_autocommit() {
            let _ = self.rollback.execute([]);
        }
    }
}
