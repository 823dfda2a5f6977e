//! Ferry's integration tests, one module per capability, in one test binary.
//!
//! One binary rather than one per file: each linked test binary is tens of megabytes
//! with line tables, and forty of them filled CI's disk and spent minutes linking.

// Tests and benchmarks stop at the first thing that is not as expected.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod answers;
mod api_auth;
mod backpressure;
mod branches;
mod budgets;
mod cancel;
mod check;
mod crash_recovery;
mod cron_cases;
mod dedup;
mod delays;
mod destinations;
mod disk_full;
mod docs_examples;
mod docs_yaml;
mod engine_limits;
mod examples;
mod failure_paths;
mod failure_trigger;
mod for_each;
mod fuzz;
mod graphql;
mod group_commit;
mod hostile_clients;
mod hot_reload;
mod identity;
mod ingress_limits;
mod large_bodies;
mod leaks;
mod lockout;
mod metrics;
mod migrations;
mod module_graph;
mod openapi;
mod poll;
mod poll_keys;
mod poll_pages;
mod recipe_authoring;
mod recipe_loading;
mod recipes_api;
mod replay;
mod respond_wait;
mod retention;
mod retry;
mod run_metrics;
mod run_queries;
mod runs_api;
mod runs_cli;
mod schedule;
mod schema;
mod secrets;
mod shutdown;
mod signature_vectors;
mod slow_clients;
mod ssrf_cases;
mod status_page;
mod step_failure;
mod stored_input;
mod template_cases;
mod verify;
mod webhook;
