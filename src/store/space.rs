//! Free space beside the database: a warning before it is gone. A full disk
//! refuses writes (webhooks then get `503` and runs wait to be recorded); the
//! warning comes while there is still room, so an operator can act first.

use super::Store;
use std::path::Path;
use std::time::Duration;

/// How often the free space is looked at.
const EVERY: Duration = Duration::from_secs(10);

/// The default threshold: 1 GiB, or a tenth of the file system when that is
/// smaller (a small volume is not low from its first byte).
const DEFAULT_LOW: u64 = 1024 * 1024 * 1024;

/// Bytes free for the daemon's user, and the size, of the file system that
/// holds `file`; `None` where that cannot be asked.
pub fn free_space(file: &Path) -> Option<(u64, u64)> {
    let folder = match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let stats = rustix::fs::statvfs(folder).ok()?;
    let block = stats.f_frsize.max(1);
    Some((
        stats.f_bavail.saturating_mul(block),
        stats.f_blocks.saturating_mul(block),
    ))
}

/// The threshold below which free space is low: `low`, or the default for a
/// file system of `total` bytes.
pub fn low_threshold(low: Option<u64>, total: u64) -> u64 {
    low.unwrap_or_else(|| DEFAULT_LOW.min(total / 10))
}

/// Warns in the log when free space falls below the threshold, and says when it
/// is back, until the store closes.
pub fn start(store: Store, low: Option<u64>) {
    tokio::spawn(async move {
        let mut was_low = false;
        loop {
            if let Some((free, total)) = free_space(store.file()) {
                let threshold = low_threshold(low, total);
                let is_low = free < threshold;
                if is_low && !was_low {
                    tracing::warn!(
                        free_bytes = free,
                        threshold_bytes = threshold,
                        database = %store.file().display(),
                        "free disk space beside the database is low; when it is gone, webhooks get 503 until space is freed"
                    );
                } else if was_low && !is_low {
                    tracing::info!(
                        free_bytes = free,
                        "free disk space beside the database is back above the threshold"
                    );
                }
                was_low = is_low;
            }
            tokio::time::sleep(EVERY).await;
            if store.is_closed() {
                return;
            }
        }
    });
}
