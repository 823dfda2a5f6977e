//! Watching the recipes folder: file events, debounced, become the set of
//! changed paths the daemon's reload task looks at.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use notify_debouncer_full::notify::{EventKind, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use tokio::sync::Notify;

use super::Changed;

/// Editors write a file in several steps (truncate, write, rename): events
/// within this window become one reload.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// Watches the folder while it lives.
pub struct FolderWatch {
    _debouncer: Debouncer<notify_debouncer_full::notify::RecommendedWatcher, RecommendedCache>,
}

/// The changes not yet taken by the reload task: bursts that arrive while a
/// reload runs are gathered into the next one.
#[derive(Clone)]
pub struct ChangeFeed {
    pending: Arc<Mutex<Changed>>,
    signal: Arc<Notify>,
}

impl ChangeFeed {
    fn new() -> Self {
        Self {
            pending: Arc::new(Mutex::new(Changed::Files(Default::default()))),
            signal: Arc::new(Notify::new()),
        }
    }

    fn push(&self, changed: Changed) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending.absorb(changed);
        drop(pending);
        self.signal.notify_one();
    }

    /// Waits for changes and takes all of them.
    pub async fn next(&self) -> Changed {
        loop {
            self.signal.notified().await;
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            let changed = std::mem::replace(&mut *pending, Changed::Files(Default::default()));
            if !changed.is_empty() {
                return changed;
            }
        }
    }
}

/// Starts watching `folder`; each burst of changes is added to the feed. When
/// the watcher says it lost events (a full kernel queue) or fails, the next
/// reload looks at the whole folder.
pub fn watch_folder(folder: &Path) -> Result<(FolderWatch, ChangeFeed), String> {
    let feed = ChangeFeed::new();
    let sender = feed.clone();
    let mut debouncer = new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| match result {
        Ok(events) => {
            let mut changed = Changed::Files(Default::default());
            for event in events
                .iter()
                .filter(|event| !matches!(event.kind, EventKind::Access(_)))
            {
                if event.need_rescan() {
                    changed = Changed::Everything;
                } else {
                    changed.absorb(Changed::Files(event.paths.iter().cloned().collect()));
                }
            }
            if !changed.is_empty() {
                sender.push(changed);
            }
        }
        Err(errors) => {
            for error in errors {
                tracing::warn!(%error, "watching the recipes folder");
            }
            sender.push(Changed::Everything);
        }
    })
    .map_err(|error| format!("cannot watch {}: {error}", folder.display()))?;
    debouncer
        .watch(folder, RecursiveMode::NonRecursive)
        .map_err(|error| format!("cannot watch {}: {error}", folder.display()))?;
    Ok((FolderWatch { _debouncer: debouncer }, feed))
}
