//! What checking a recipe file shares with the step kinds that check their own
//! keys: a problem with its place in the file ([`Diagnostic`]), and the
//! [`Checker`] that collects them.

mod checker;
mod diagnostic;

pub use checker::Checker;
pub use diagnostic::{Diagnostic, Position};
