//! In-memory notice of a run's end, for webhooks with `respond: wait`. The run is
//! durable first; this only spares the waiting request a poll of the store. After
//! a restart nobody waits any more, so nothing here needs to survive one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;
use tokio::sync::oneshot;

use crate::store::RunStatus;

/// How a run ended, as a waiting webhook answers it.
#[derive(Debug, Clone)]
pub struct RunEnd {
    pub status: RunStatus,
    pub error: Option<String>,
    /// `steps.<id>` of the last step that ran (not skipped), if any.
    pub last_step: Option<Value>,
}

/// Who waits for which run.
#[derive(Clone, Default)]
pub struct Completions(Arc<Mutex<HashMap<String, Vec<oneshot::Sender<RunEnd>>>>>);

impl Completions {
    /// Registers interest in a run's end; call before the run can start.
    pub fn subscribe(&self, run_id: &str) -> oneshot::Receiver<RunEnd> {
        let (sender, receiver) = oneshot::channel();
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(run_id.to_owned())
            .or_default()
            .push(sender);
        receiver
    }

    /// Forgets the waiters of a run (after a timeout, or a duplicate delivery).
    pub fn forget(&self, run_id: &str) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).remove(run_id);
    }

    pub(super) fn finished(&self, run_id: &str, end: &RunEnd) {
        let waiters = self.0.lock().unwrap_or_else(PoisonError::into_inner).remove(run_id);
        for waiter in waiters.into_iter().flatten() {
            // A waiter that timed out has dropped its receiver: nothing to tell.
            let _ = waiter.send(end.clone());
        }
    }
}
