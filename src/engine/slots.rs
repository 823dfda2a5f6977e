//! Room for runs in flight: the global worker limit and each recipe's
//! `concurrency`, shared by the dispatcher (runs claimed from the store) and the
//! intake (fresh runs handed over without a trip through the queue).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, TryAcquireError};

pub(super) struct Slots {
    workers: Arc<Semaphore>,
    per_recipe: Mutex<HashMap<String, u32>>,
    /// Told each time a slot frees, so that waiting runs can be claimed.
    freed: Notify,
}

/// One run's place; giving it back (dropping it) frees the place.
pub(super) struct Slot {
    /// Taken out when the slot is dropped, so the place is free before the
    /// dispatcher is told.
    worker: Option<OwnedSemaphorePermit>,
    recipe: String,
    slots: Arc<Slots>,
}

impl Slots {
    pub(super) fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            workers: Arc::new(Semaphore::new(limit)),
            per_recipe: Mutex::new(HashMap::new()),
            freed: Notify::new(),
        })
    }

    /// A place for a run of `recipe`, if both limits allow one now.
    pub(super) fn try_take(self: &Arc<Self>, recipe: &str, concurrency: u32) -> Option<Slot> {
        let mut per_recipe = self.per_recipe.lock().unwrap_or_else(PoisonError::into_inner);
        let running = per_recipe.get(recipe).copied().unwrap_or(0);
        if running >= concurrency {
            return None;
        }
        let worker = match self.workers.clone().try_acquire_owned() {
            Ok(worker) => worker,
            Err(TryAcquireError::NoPermits | TryAcquireError::Closed) => return None,
        };
        per_recipe.insert(recipe.to_owned(), running + 1);
        Some(Slot {
            worker: Some(worker),
            recipe: recipe.to_owned(),
            slots: Arc::clone(self),
        })
    }

    /// Free places under the global limit.
    pub(super) fn free(&self) -> usize {
        self.workers.available_permits()
    }

    /// Waits until a slot frees (or one freed since the last wait).
    pub(super) async fn freed(&self) {
        self.freed.notified().await;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut per_recipe = self.slots.per_recipe.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = per_recipe.get_mut(&self.recipe) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                per_recipe.remove(&self.recipe);
            }
        }
        drop(per_recipe);
        drop(self.worker.take());
        self.slots.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_limits_hold_and_dropping_a_slot_frees_it() {
        let slots = Slots::new(3);
        let first = slots.try_take("a", 2).expect("room");
        let _second = slots.try_take("a", 2).expect("room");
        assert!(slots.try_take("a", 2).is_none(), "recipe a is at its concurrency");
        let third = slots.try_take("b", 5).expect("room for b");
        assert!(slots.try_take("b", 5).is_none(), "the global limit is reached");
        drop(first);
        assert_eq!(slots.free(), 1);
        assert!(slots.try_take("a", 2).is_some(), "a's slot came back");
        drop(third);
        assert_eq!(slots.free(), 2, "the second slot is still held");
    }
}
