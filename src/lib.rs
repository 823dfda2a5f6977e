//! Ferry: a self-hosted automation runner. YAML recipes say *when* something
//! happens (a webhook), *if* a condition holds, *call* these HTTP APIs; the daemon
//! runs them and records every run in SQLite.
//!
//! The modules follow an event's path: `recipe` → `trigger` → `engine` (with
//! `template` and `action`) → `store` → `api`; `cli` parses commands and `daemon`
//! wires the parts together. The words they share sit below them all: `event`,
//! `status`, `timestamp`, `verify`, `redact`, `headers`, `json`. No two modules
//! import each other (`tests/module_graph.rs` checks it).

pub mod action;
pub mod api;
pub mod checks;
pub mod cli;
pub mod daemon;
pub mod duration;
pub mod engine;
pub mod environment;
pub mod event;
pub mod headers;
mod json;
pub mod observe;
pub mod recipe;
pub mod recipe_test;
pub mod redact;
pub mod status;
pub mod step;
pub mod store;
pub mod template;
pub mod timestamp;
pub mod trigger;
pub mod verify;
