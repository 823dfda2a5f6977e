use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    ferry::cli::logging::init();
    ferry::cli::Cli::parse().run()
}
