//! The store: every SQL statement of Ferry, behind methods named for what they
//! mean. Callers never see SQL or a backend; PostgreSQL is added later as a second
//! implementation of the same methods.

mod records;
mod sqlite;

pub use records::{
    AttemptRecord, ClaimedRun, Enqueued, RunDocument, RunFilter, RunStatus, RunSummary, StepDocument, StepState,
    StepStatus,
};
pub use sqlite::Store;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database URL `{url}` is not supported; expected `sqlite://PATH` (PostgreSQL comes later)")]
    UnsupportedUrl { url: String },
    #[error("cannot open the database: {0}")]
    Open(#[source] sqlx::Error),
    #[error("cannot apply the database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
}

/// Timestamps are stored and served as RFC 3339 UTC with milliseconds: fixed
/// width, so text order is time order.
pub fn timestamp(time: chrono::DateTime<chrono::Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
