//! Retention: finished runs older than `FERRY_RETENTION` are deleted in small
//! batches, each one write among the others (the writer interleaves them, so
//! webhooks are never held up by a long delete), and the freed pages are given
//! back to the file system with SQLite's incremental vacuum.

use std::time::Duration;

use chrono::Utc;
use rusqlite::{Connection, params};
use sqlx::SqliteConnection;

use super::{SqliteStore, timestamp};

/// Runs deleted per write: small enough that a batch takes milliseconds.
pub(super) const BATCH: u32 = 200;

/// Free pages kept for new rows rather than returned to the file system.
const KEPT_FREE_PAGES: i64 = 256;

/// Deletes up to `limit` finished runs that ended before `before`, with their
/// steps and attempts (cascaded) and dedup keys. A replay of a deleted run keeps
/// running history of its own; its `replay_of` is cleared.
pub(super) fn prune(connection: &Connection, before: &str, limit: u32) -> rusqlite::Result<u64> {
    let ids: Vec<String> = connection
        .prepare_cached(
            "SELECT id FROM runs WHERE finished_at IS NOT NULL AND finished_at < ?1
             AND status IN ('succeeded', 'failed', 'skipped', 'cancelled') ORDER BY finished_at LIMIT ?2",
        )?
        .query_map(params![before, limit], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    if ids.is_empty() {
        return Ok(0);
    }
    let list = crate::json::text(&ids);
    for statement in [
        "UPDATE runs SET replay_of = NULL WHERE replay_of IN (SELECT value FROM json_each(?1))",
        "DELETE FROM dedup WHERE run_id IN (SELECT value FROM json_each(?1))",
        "DELETE FROM runs WHERE id IN (SELECT value FROM json_each(?1))",
    ] {
        connection.prepare_cached(statement)?.execute(params![list])?;
    }
    Ok(ids.len() as u64)
}

impl SqliteStore {
    /// Deletes finished runs older than `retention`, batch by batch; gives how many.
    pub async fn prune_older_than(&self, retention: Duration) -> Result<u64, super::Error> {
        let cutoff = Utc::now() - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
        let before = timestamp(cutoff);
        let mut pruned = 0;
        loop {
            let before = before.clone();
            let deleted = self
                .writer
                .write(move |statements| prune(statements.connection, &before, BATCH))
                .await?;
            pruned += deleted;
            if deleted < u64::from(BATCH) {
                break;
            }
            // Let the other writes through between batches.
            tokio::task::yield_now().await;
        }
        if pruned > 0 {
            self.release_free_pages().await?;
        }
        Ok(pruned)
    }

    /// [`release_free_pages`] on one of the pool's connections.
    async fn release_free_pages(&self) -> Result<(), super::Error> {
        let mut connection = self.pool.acquire().await?;
        release_free_pages(&mut connection).await?;
        Ok(())
    }
}

/// Returns free pages beyond a reserve to the file system.
pub(super) async fn release_free_pages(connection: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    let free: i64 = sqlx::query_scalar("PRAGMA freelist_count")
        .fetch_one(&mut *connection)
        .await?;
    if free > KEPT_FREE_PAGES {
        // A pragma takes no bound parameters; the count is a number we computed.
        let statement = format!("PRAGMA incremental_vacuum({})", free - KEPT_FREE_PAGES);
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&mut *connection)
            .await?;
    }
    Ok(())
}

/// Prunes every `every` until the store closes.
pub fn start(store: super::Store, retention: Duration) {
    // Often enough that a short retention is kept, rarely enough to cost nothing.
    let every = (retention / 10).clamp(Duration::from_millis(200), Duration::from_secs(60));
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if store.is_closed() {
                return;
            }
            match store.prune_older_than(retention).await {
                Ok(0) => {}
                Ok(pruned) => tracing::debug!(runs = pruned, "pruned runs past the retention"),
                Err(super::Error::Closed) => return,
                Err(error) => tracing::warn!(%error, "pruning old runs failed; trying again later"),
            }
        }
    });
}
