//! WAL checkpoints off the writer's path.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses the
//! threshold, so one acknowledgement in thousands would wait for the WAL to be
//! copied into the database file. Instead the writer never checkpoints, and this
//! task runs a `PASSIVE` checkpoint from a reading connection: it copies what it
//! can without blocking the writer or readers, and the WAL is reused from its
//! start once a checkpoint has caught up (`journal_size_limit` cuts the file back).

use std::time::Duration;

use sqlx::SqlitePool;

/// How often the WAL is copied into the database file.
const EVERY: Duration = Duration::from_millis(500);

/// Checkpoints until the pool is closed.
pub(super) fn start(pool: SqlitePool) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if pool.is_closed() {
                return;
            }
            if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await {
                if pool.is_closed() {
                    return;
                }
                tracing::warn!(%error, "WAL checkpoint failed; the next one tries again");
            }
        }
    });
}
