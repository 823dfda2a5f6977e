//! Watching the recipes folder: file events, debounced, become one "look again"
//! signal for the daemon's reload task.

use std::path::Path;
use std::time::Duration;

use notify_debouncer_full::notify::{EventKind, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use tokio::sync::mpsc;

/// Editors write a file in several steps (truncate, write, rename): events
/// within this window become one reload.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// Watches the folder while it lives.
pub struct FolderWatch {
    _debouncer: Debouncer<notify_debouncer_full::notify::RecommendedWatcher, RecommendedCache>,
}

/// Starts watching `folder`; each burst of changes sends one `()` (a signal
/// already waiting absorbs the next: one reload sees every change before it).
pub fn watch_folder(folder: &Path) -> Result<(FolderWatch, mpsc::Receiver<()>), String> {
    let (sender, changes) = mpsc::channel(1);
    let mut debouncer = new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| match result {
        Ok(events) => {
            if events.iter().any(|event| !matches!(event.kind, EventKind::Access(_))) {
                let _ = sender.try_send(());
            }
        }
        Err(errors) => {
            for error in errors {
                tracing::warn!(%error, "watching the recipes folder");
            }
        }
    })
    .map_err(|error| format!("cannot watch {}: {error}", folder.display()))?;
    debouncer
        .watch(folder, RecursiveMode::NonRecursive)
        .map_err(|error| format!("cannot watch {}: {error}", folder.display()))?;
    Ok((FolderWatch { _debouncer: debouncer }, changes))
}
