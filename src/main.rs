use std::process::ExitCode;

use clap::Parser;

/// glibc's malloc took a large share of the daemon's CPU under webhook load
/// (`perf`, docs/benchmarks.md): many small, short-lived allocations freed on
/// other threads than the one that made them. mimalloc's per-thread heaps do
/// that far more cheaply.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    ferry::cli::logging::init();
    ferry::cli::Cli::parse().run()
}
