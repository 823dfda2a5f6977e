//! Ferry: a self-hosted automation runner. YAML recipes say *when* something
//! happens (a webhook), *if* a condition holds, *call* these HTTP APIs; the daemon
//! runs them and records every run in SQLite.
//!
//! The modules follow an event's path: `recipe` → `trigger` → `engine` (with
//! `template` and `action`) → `store` → `api`; `cli` parses commands and `daemon`
//! wires the parts together.

pub mod action;
pub mod api;
pub mod cli;
pub mod daemon;
pub mod engine;
pub mod headers;
mod json;
pub mod observe;
pub mod recipe;
pub mod recipe_test;
pub mod redact;
pub mod store;
pub mod template;
pub mod trigger;
