//! WAL checkpoints, mostly off the writer's path.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses the
//! threshold, so one acknowledgement in thousands would wait for the WAL to be
//! copied into the database file. Instead the writer's commits never checkpoint,
//! and this task runs a `PASSIVE` checkpoint from a reading connection: it copies
//! what it can without blocking the writer or readers.
//!
//! Under a steady load that alone never catches up: the writer commits while the
//! copy runs, so the WAL is never wholly copied, is never reused from its start,
//! and grows by every commit (by gigabytes under the relay benchmark, paid in
//! file-system block allocation on every write). So every second, after a
//! few background copies, the writer copies the frames committed since, between
//! two of its batches, and waits for the readers still on the WAL (a `RESTART`
//! checkpoint); its next commit starts the WAL from the beginning
//! (`journal_size_limit` cuts the file back beyond 128 MiB).
//!
//! That checkpoint syncs the WAL and the database file while the writes wait, so
//! this task syncs both just before it: the database file directly, the WAL by
//! one more copy. The writer then syncs only the last few milliseconds' worth.

use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::SqlitePool;

use super::writer::Writer;

/// How often the WAL is copied into the database file, when something was
/// committed. Small, frequent checkpoints: rarer ones lengthened the relay
/// benchmark's p99 acknowledgement (the p50 did not move).
const EVERY: Duration = Duration::from_millis(100);

/// How often the writer copies the last frames so that the WAL starts over. It
/// holds the writes of that moment back while it syncs: a few milliseconds
/// every second, now that this task syncs first (several times longer before,
/// most of it the database file's `fsync`; longer still when rarer).
const RESTART_EVERY: Duration = Duration::from_secs(1);

/// A WAL this large starts over at once, not at the next second: large webhook
/// bodies write hundreds of megabytes a second, and a WAL that grows to gigabytes
/// takes the disk with it (as it did under many concurrent 1 MiB bodies).
const RESTART_AT_SIZE: u64 = 64 * 1024 * 1024;

/// Copies in a row before the writer's: each copies what was committed during
/// the one before, leaving the writer less (under load a copy takes tens of
/// milliseconds).
const PASSES_BEFORE_RESTART: usize = 3;

/// A copy this quick left little behind it: no need for another.
const QUICK_PASS: Duration = Duration::from_millis(3);

/// Checkpoints until the pool is closed; `commits` counts the writer's commits.
/// `database_file` is the database file, for syncing it off the writer's path.
pub(super) fn start(
    pool: SqlitePool,
    writer: Writer,
    commits: Arc<AtomicU64>,
    database_file: &'static File,
    wal: std::path::PathBuf,
) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut checkpointed = 0;
        let mut restarted = Instant::now();
        loop {
            ticks.tick().await;
            if pool.is_closed() {
                return;
            }
            // An idle daemon does not wake its database ten times a second.
            let committed = commits.load(Ordering::Relaxed);
            if committed == checkpointed {
                continue;
            }
            let large = std::fs::metadata(&wal).is_ok_and(|wal| wal.len() >= RESTART_AT_SIZE);
            let restart = large || restarted.elapsed() >= RESTART_EVERY;
            let passes = if restart { PASSES_BEFORE_RESTART } else { 1 };
            if !copy(&pool, passes).await {
                continue;
            }
            checkpointed = committed;
            if restart {
                // The copies so far wrote pages of the database file that nothing
                // synced: the writer's restart would wait for all of them (ten
                // times longer under the relay benchmark's load than after this).
                let synced = tokio::task::spawn_blocking(|| database_file.sync_data()).await;
                if let Ok(Err(error)) = synced {
                    tracing::warn!(%error, "syncing the database file; the writer's restart syncs it");
                }
                // And what was committed meanwhile: this copy syncs the WAL first.
                if !copy(&pool, 1).await {
                    continue;
                }
                writer.catch_up();
                restarted = Instant::now();
            }
        }
    });
}

/// Up to `passes` `PASSIVE` copies in a row, each of what was committed during
/// the one before, stopping after a quick one; whether they worked.
async fn copy(pool: &SqlitePool, passes: usize) -> bool {
    for _ in 0..passes {
        let started = Instant::now();
        match sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(pool).await {
            Ok(_) if started.elapsed() < QUICK_PASS => break,
            Ok(_) => {}
            Err(_) if pool.is_closed() => return false,
            Err(error) => {
                tracing::warn!(%error, "WAL checkpoint failed; the next one tries again");
                return false;
            }
        }
    }
    true
}
