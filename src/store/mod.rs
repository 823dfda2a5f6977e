//! The store: every SQL statement of Ferry, behind methods named for what they
//! mean. Callers never see SQL or a backend; PostgreSQL is added later as a second
//! implementation of the same methods.

mod backend;
mod checkpoint;
mod claims;
mod interface;
mod packed;
pub mod retention;
mod run_rows;
pub mod space;
mod sqlite;
mod statements;
mod ticks;
mod writer;

pub use crate::status::{FinalStatus, RunStatus, StepStatus};
pub use crate::timestamp::timestamp;
pub use backend::Store;
pub use interface::{
    AttemptRecord, AttemptWrite, Cancelled, ClaimedRun, ElementDocument, Enqueued, QueueStats, Recorded, Reopened,
    RunChange, RunDocument, RunFilter, RunSummary, RunWrite, Start, StepDocument, StepKey, StepState, StepWrite,
};
pub use sqlite::{LAST_RUNS_SQL, QUEUE_STATS_SQL, RUN_COUNTS_SQL, SqliteStore, Unrecorded, runs_page_sql};
pub use ticks::{FirstPollRule, PollOutcome, Tick, TickOutcome, TickWork, TriggerState};

/// How long a connection waits for another process's lock before it fails.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The WAL file is cut back to this size when it starts over. Above what a
/// second of full load writes (see `checkpoint.rs`), so that a busy daemon reuses
/// the file's blocks rather than giving them back and taking them again.
const WAL_SIZE_LIMIT: i64 = 128 * 1024 * 1024;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database URL `{url}` is not supported; expected `sqlite://PATH` (PostgreSQL comes later)")]
    UnsupportedUrl { url: String },
    #[error("cannot open the database: {0}")]
    Open(#[source] sqlx::Error),
    #[error("cannot open the database file {}: {source}", path.display())]
    File {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot apply the database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// From the writer's connection.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
    #[error("the store is closed")]
    Closed,
    /// The batch the write was committed with failed as a whole.
    #[error("database error: {0}")]
    Write(String),
    /// The database cannot take writes for now (a full disk, an I/O error, a
    /// lock held too long): the same write may succeed later.
    #[error("the database cannot take writes now: {0}")]
    Unavailable(String),
}

impl Error {
    /// Whether the write may succeed later, unchanged: the storage, not the
    /// write, is at fault (see [`is_unavailable`]).
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Unavailable(_) => true,
            Error::Sqlite(error) => is_unavailable(error),
            Error::Database(sqlx::Error::Io(_)) => true,
            Error::Database(sqlx::Error::Database(error)) => error
                .code()
                .and_then(|code| code.parse::<i32>().ok())
                .is_some_and(|code| UNAVAILABLE_CODES.contains(&(code & 0xff))),
            _ => false,
        }
    }
}

/// SQLite's primary result codes of a storage that cannot take writes for now:
/// BUSY, LOCKED, IOERR, FULL, CANTOPEN.
const UNAVAILABLE_CODES: &[i32] = &[5, 6, 10, 13, 14];

/// Whether an error of the writer's connection comes from the storage: a full
/// disk, an I/O error, a lock held past the busy timeout.
pub(crate) fn is_unavailable(error: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode;
    matches!(
        error.sqlite_error_code(),
        Some(
            ErrorCode::DiskFull
                | ErrorCode::SystemIoFailure
                | ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::CannotOpen
        )
    )
}

/// What an acknowledged webhook survives (`FERRY_SYNC`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// `normal` (default): a crash of the process — WAL with `synchronous=NORMAL`.
    #[default]
    ProcessCrash,
    /// `full`: a power loss too — every commit waits for the disk.
    PowerLoss,
}

impl std::str::FromStr for Durability {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "normal" => Ok(Durability::ProcessCrash),
            "full" => Ok(Durability::PowerLoss),
            other => Err(format!("`{other}` is not a sync mode; expected `normal` or `full`")),
        }
    }
}
