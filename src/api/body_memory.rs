//! The memory webhook bodies may hold at once, across requests: each body takes
//! its bytes from one budget as they arrive and gives them back once it is
//! stored. Past the budget a webhook gets `503` with `Retry-After`, which senders
//! retry, instead of every large body in flight piling up in memory.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The default of `FERRY_MAX_BODY_MEMORY`: 32 MiB. A body in memory costs
/// about four times its size on the way to the store (its bytes, its parsed
/// payload, its JSON text, the writer's copy), so the budget is well below
/// what the daemon may hold (docs/benchmarks.md has the peaks measured).
pub const DEFAULT_BODY_MEMORY: usize = 32 * 1024 * 1024;

/// Permits are KiB: a budget of gigabytes stays within a semaphore's range.
const UNIT: usize = 1024;

/// The budget, shared by every webhook.
#[derive(Clone)]
pub struct BodyMemory {
    units: Arc<Semaphore>,
    limit: usize,
}

/// What one body holds of the budget; given back when dropped.
pub struct HeldBytes {
    bytes: usize,
    permit: Option<OwnedSemaphorePermit>,
}

impl HeldBytes {
    /// The bytes taken so far.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.bytes == 0
    }
}

impl BodyMemory {
    pub fn new(limit: usize) -> Self {
        let units = limit.div_ceil(UNIT).clamp(1, Semaphore::MAX_PERMITS);
        Self {
            units: Arc::new(Semaphore::new(units)),
            limit,
        }
    }

    /// Nothing held yet.
    pub fn none(&self) -> HeldBytes {
        HeldBytes { bytes: 0, permit: None }
    }

    /// Takes `bytes` more for `held`; `false` when the budget has no room.
    pub fn take(&self, held: &mut HeldBytes, bytes: usize) -> bool {
        let total = held.bytes.saturating_add(bytes);
        let have = held.permit.as_ref().map_or(0, |permit| permit.num_permits());
        let need = total.div_ceil(UNIT).saturating_sub(have);
        if need > 0 {
            let Ok(more) = u32::try_from(need) else {
                return false;
            };
            let Ok(permit) = self.units.clone().try_acquire_many_owned(more) else {
                return false;
            };
            match &mut held.permit {
                Some(existing) => existing.merge(permit),
                None => held.permit = Some(permit),
            }
        }
        held.bytes = total;
        true
    }

    /// Bytes held by bodies now.
    pub fn held(&self) -> usize {
        let total = self.limit.div_ceil(UNIT).clamp(1, Semaphore::MAX_PERMITS);
        total.saturating_sub(self.units.available_permits()) * UNIT
    }

    /// The budget, as the setting says it.
    pub fn describe(&self) -> String {
        const MIB: usize = 1024 * 1024;
        if self.limit.is_multiple_of(MIB) {
            format!("{} MiB", self.limit / MIB)
        } else {
            format!("{} bytes", self.limit)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_take_from_one_budget_and_give_back_when_dropped() {
        let memory = BodyMemory::new(10 * UNIT);
        let mut first = memory.none();
        assert!(memory.take(&mut first, 3000));
        assert!(memory.take(&mut first, 3000), "6000 bytes: 6 units");
        let mut second = memory.none();
        assert!(memory.take(&mut second, 4 * UNIT));
        assert_eq!(memory.held(), 10 * UNIT);
        assert!(!memory.take(&mut second, 1), "the budget is spent");
        drop(first);
        assert_eq!(memory.held(), 4 * UNIT);
        assert!(memory.take(&mut second, 5 * UNIT));
    }
}
