//! Whether runs may be waiting in the store's queue. A fresh run is handed
//! straight to a runner only when none can be: it never overtakes runs that
//! arrived before it, which the dispatcher claims oldest first (a recipe with
//! `concurrency: 1` runs its events in the order they came).

use std::sync::atomic::{AtomicU64, Ordering};

pub(super) struct Backlog {
    /// Bumped each time a run is queued in the store.
    queued: AtomicU64,
    /// The value `queued` had when the dispatcher last found the queue empty.
    cleared: AtomicU64,
}

impl Backlog {
    /// At start the queue may hold runs that a stopped process left.
    pub(super) fn new() -> Self {
        Self {
            queued: AtomicU64::new(1),
            cleared: AtomicU64::new(0),
        }
    }

    pub(super) fn note_queued(&self) {
        self.queued.fetch_add(1, Ordering::SeqCst);
    }

    /// Taken before the dispatcher reads the queue: runs queued after it may
    /// be missed by that read.
    pub(super) fn mark(&self) -> u64 {
        self.queued.load(Ordering::SeqCst)
    }

    /// The read that began at `mark` found nothing left waiting.
    pub(super) fn cleared_at(&self, mark: u64) {
        self.cleared.fetch_max(mark, Ordering::SeqCst);
    }

    pub(super) fn may_hold_runs(&self) -> bool {
        self.queued.load(Ordering::SeqCst) != self.cleared.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_queued_during_a_read_keeps_the_backlog() {
        let backlog = Backlog::new();
        assert!(backlog.may_hold_runs(), "a new process may have runs left");
        let mark = backlog.mark();
        backlog.cleared_at(mark);
        assert!(!backlog.may_hold_runs());

        let mark = backlog.mark();
        backlog.note_queued(); // while the dispatcher reads
        backlog.cleared_at(mark);
        assert!(backlog.may_hold_runs(), "the run queued during the read may be unseen");
        let mark = backlog.mark();
        backlog.cleared_at(mark);
        assert!(!backlog.may_hold_runs());
    }
}
