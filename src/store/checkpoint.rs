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
//! and grows by every commit (1.2 GB in six seconds of the relay benchmark, paid
//! in file-system block allocation on every write). So every second, after a
//! few background copies, the writer copies the frames committed since, between
//! two of its batches, and waits for the readers still on the WAL (a `RESTART`
//! checkpoint); its next commit starts the WAL from the beginning
//! (`journal_size_limit` cuts the file back beyond 128 MiB).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::SqlitePool;

use super::writer::Writer;

/// How often the WAL is copied into the database file, when something was
/// committed. Small, frequent checkpoints: at 500 ms the relay benchmark's p99
/// acknowledgement was 39–41 ms, at 100 ms 25–27 ms (the p50 did not move).
const EVERY: Duration = Duration::from_millis(100);

/// How often the writer copies the last frames so that the WAL starts over. It
/// holds the writes of that moment back while it syncs: under the relay
/// benchmark's load 30–50 ms every second, 120–135 ms every 5 s (its `fsync`s
/// wait behind the write-back of the WAL written meanwhile). At that load the WAL
/// reaches about 100 MB in a second.
const RESTART_EVERY: Duration = Duration::from_secs(1);

/// Copies in a row before the writer's: each copies what was committed during
/// the one before, leaving the writer less (under load a copy takes 20–40 ms).
const PASSES_BEFORE_RESTART: usize = 3;

/// A copy this quick left little behind it: no need for another.
const QUICK_PASS: Duration = Duration::from_millis(3);

/// Checkpoints until the pool is closed; `commits` counts the writer's commits.
pub(super) fn start(pool: SqlitePool, writer: Writer, commits: Arc<AtomicU64>) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut checkpointed = 0;
        let mut restarted = Instant::now();
        'ticks: loop {
            ticks.tick().await;
            if pool.is_closed() {
                return;
            }
            // An idle daemon does not wake its database ten times a second.
            let committed = commits.load(Ordering::Relaxed);
            if committed == checkpointed {
                continue;
            }
            let restart = restarted.elapsed() >= RESTART_EVERY;
            let passes = if restart { PASSES_BEFORE_RESTART } else { 1 };
            for _ in 0..passes {
                let started = Instant::now();
                match sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await {
                    Ok(_) if started.elapsed() < QUICK_PASS => break,
                    Ok(_) => {}
                    Err(_) if pool.is_closed() => return,
                    Err(error) => {
                        tracing::warn!(%error, "WAL checkpoint failed; the next one tries again");
                        continue 'ticks;
                    }
                }
            }
            checkpointed = committed;
            if restart {
                writer.catch_up();
                restarted = Instant::now();
            }
        }
    });
}
