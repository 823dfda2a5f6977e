//! Triggers turn the outside world into [`Event`]s; the store makes each one a
//! queued run. Triggers never run steps.

mod pages;
mod plan;
pub mod poll;
pub mod timers;
pub mod webhook;

pub use plan::{Plan, plan};

pub use crate::event::Event;
