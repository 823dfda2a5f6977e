//! The render budget: how much work and output one render may cost.
//!
//! A render is everything one step renders (all the leaves of its request), one
//! condition, one log line. Its work is counted in units — one per helper call,
//! one per iteration of an `each` plus one per element of the block it renders,
//! one per 16 bytes a helper allocates — and its output in bytes. Both are
//! checked while rendering, before a helper allocates, so a template that would
//! take seconds or gigabytes fails at the limit with an error naming it, and the
//! memory it held is bounded by the limits, not by what it asked for.
//!
//! The budget in force lives in a thread-local for the duration of one render:
//! handlebars calls helpers through its own signatures, which carry no state of
//! ours. A render never awaits, so the thread is the render.

use std::cell::RefCell;

/// The default of `FERRY_RENDER_MAX_WORK`.
pub const DEFAULT_WORK: u64 = 1_000_000;

/// The default of `FERRY_RENDER_MAX_BYTES`: 4 MiB.
pub const DEFAULT_BYTES: usize = 4 * 1024 * 1024;

/// The default of `FERRY_RUN_MAX_RESULTS`: 16 MiB, one answer's most.
pub const DEFAULT_RESULTS: usize = 16 * 1024 * 1024;

/// Bytes a helper allocates per unit of work.
const BYTES_PER_UNIT: usize = 16;

/// The limits of one render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenderBudget {
    /// Work units.
    pub work: u64,
    /// Bytes of rendered output, all leaves together.
    pub bytes: usize,
    /// What the templates of one run read: the bytes (as JSON) of the step
    /// results the run keeps for them, all steps and elements together.
    pub results: usize,
}

impl Default for RenderBudget {
    fn default() -> Self {
        Self {
            work: DEFAULT_WORK,
            bytes: DEFAULT_BYTES,
            results: DEFAULT_RESULTS,
        }
    }
}

/// What a render went over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverBudget {
    Work(u64),
    Bytes(usize),
}

/// A helper that went over the budget fails the render with the budget's words.
impl From<OverBudget> for handlebars::RenderError {
    fn from(over: OverBudget) -> Self {
        handlebars::RenderErrorReason::Other(over.to_string()).into()
    }
}

impl OverBudget {
    /// The budget's name in metrics: `work` or `bytes`.
    pub fn name(self) -> &'static str {
        match self {
            OverBudget::Work(_) => "work",
            OverBudget::Bytes(_) => "bytes",
        }
    }
}

impl std::fmt::Display for OverBudget {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OverBudget::Work(limit) => write!(
                formatter,
                "the templates went over their render budget of {limit} work units (FERRY_RENDER_MAX_WORK)"
            ),
            OverBudget::Bytes(limit) => write!(
                formatter,
                "the rendered text is larger than the render budget of {} (FERRY_RENDER_MAX_BYTES)",
                describe_bytes(*limit)
            ),
        }
    }
}

fn describe_bytes(bytes: usize) -> String {
    const MIB: usize = 1024 * 1024;
    const KIB: usize = 1024;
    if bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// What the render in progress has spent.
struct Spending {
    limits: RenderBudget,
    work: u64,
    bytes: usize,
    /// The first limit crossed: later charges fail the same way.
    over: Option<OverBudget>,
}

thread_local! {
    static SPENDING: RefCell<Option<Spending>> = const { RefCell::new(None) };
}

/// Runs `render` under one budget. A render inside another shares the outer
/// budget: a step's leaves are one render.
pub fn within<T>(limits: RenderBudget, render: impl FnOnce() -> T) -> T {
    let nested = SPENDING.with(|spending| spending.borrow().is_some());
    if nested {
        return render();
    }
    SPENDING.with(|spending| {
        *spending.borrow_mut() = Some(Spending {
            limits,
            work: 0,
            bytes: 0,
            over: None,
        });
    });
    // Cleared on the way out, also when `render` panics.
    struct Clear;
    impl Drop for Clear {
        fn drop(&mut self) {
            SPENDING.with(|spending| spending.borrow_mut().take());
        }
    }
    let _clear = Clear;
    render()
}

fn charge(charge: impl FnOnce(&mut Spending) -> Option<OverBudget>) -> Result<(), OverBudget> {
    SPENDING.with(|spending| {
        let mut spending = spending.borrow_mut();
        // Outside `within` (a test calling a helper directly) nothing is counted.
        let Some(spending) = spending.as_mut() else {
            return Ok(());
        };
        if let Some(over) = spending.over {
            return Err(over);
        }
        match charge(spending) {
            Some(over) => {
                spending.over = Some(over);
                Err(over)
            }
            None => Ok(()),
        }
    })
}

/// Spends work units.
pub(super) fn spend_work(units: u64) -> Result<(), OverBudget> {
    charge(|spending| {
        spending.work = spending.work.saturating_add(units);
        (spending.work > spending.limits.work).then_some(OverBudget::Work(spending.limits.work))
    })
}

/// Spends the work of allocating `bytes`; asked before the allocation.
pub(super) fn spend_allocation(bytes: usize) -> Result<(), OverBudget> {
    spend_work((bytes / BYTES_PER_UNIT) as u64)
}

/// Spends output bytes.
pub(super) fn spend_output(bytes: usize) -> Result<(), OverBudget> {
    charge(|spending| {
        spending.bytes = spending.bytes.saturating_add(bytes);
        (spending.bytes > spending.limits.bytes).then_some(OverBudget::Bytes(spending.limits.bytes))
    })
}

/// The limit the render in progress went over, if it did.
pub(super) fn over() -> Option<OverBudget> {
    SPENDING.with(|spending| spending.borrow().as_ref().and_then(|spending| spending.over))
}

/// What a render has spent so far: `(work, bytes)`; `None` outside a render.
pub fn spent() -> Option<(u64, usize)> {
    SPENDING.with(|spending| {
        spending
            .borrow()
            .as_ref()
            .map(|spending| (spending.work, spending.bytes))
    })
}

/// About how many bytes a JSON value takes in memory: what cloning or printing it
/// costs.
pub(super) fn size_of(value: &serde_json::Value) -> usize {
    use serde_json::Value;
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => 8,
        Value::String(text) => 24 + text.len(),
        Value::Array(items) => 24 + items.iter().map(size_of).sum::<usize>(),
        Value::Object(fields) => {
            24 + fields
                .iter()
                .map(|(key, value)| 24 + key.len() + size_of(value))
                .sum::<usize>()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_count_inside_a_render_and_the_first_limit_crossed_sticks() {
        let limits = RenderBudget {
            work: 10,
            bytes: 100,
            ..RenderBudget::default()
        };
        within(limits, || {
            assert_eq!(spend_work(10), Ok(()));
            assert_eq!(spend_output(100), Ok(()));
            assert_eq!(spend_work(1), Err(OverBudget::Work(10)));
            assert_eq!(spend_output(0), Err(OverBudget::Work(10)), "over stays over");
            // A nested render shares the budget.
            within(RenderBudget::default(), || assert!(spend_work(0).is_err()));
        });
        assert_eq!(spent(), None);
        assert_eq!(spend_work(u64::MAX), Ok(()), "outside a render nothing counts");
        within(limits, || {
            assert_eq!(spend_allocation(16 * 10), Ok(()));
            assert_eq!(spend_output(101), Err(OverBudget::Bytes(100)));
        });
    }

    #[test]
    fn the_error_names_the_budget_and_its_setting() {
        assert_eq!(
            OverBudget::Bytes(4 * 1024 * 1024).to_string(),
            "the rendered text is larger than the render budget of 4 MiB (FERRY_RENDER_MAX_BYTES)"
        );
        assert!(
            OverBudget::Work(5)
                .to_string()
                .contains("5 work units (FERRY_RENDER_MAX_WORK)")
        );
    }
}
