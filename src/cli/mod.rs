//! Command-line parsing and printing. The logic lives in the library; each
//! subcommand here only turns arguments into calls and results into output.

pub mod logging;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Ferry runs YAML recipes: when a webhook arrives, call HTTP APIs, and record
/// every run.
#[derive(Debug, Parser)]
#[command(name = "ferry", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon: load the recipes, serve webhooks and the API, run the steps.
    Serve(ServeArgs),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Folder of recipe files.
    #[arg(long, env = "FERRY_RECIPES", default_value = "./recipes")]
    recipes: PathBuf,
    /// Database URL.
    #[arg(long = "database", env = "FERRY_DATABASE_URL", default_value = "sqlite://ferry.db")]
    database_url: String,
    /// Address to listen on.
    #[arg(long, env = "FERRY_BIND", default_value = "127.0.0.1:8080")]
    bind: String,
    /// The base URL others reach this daemon at (default: http:// + the bound address).
    #[arg(long, env = "FERRY_PUBLIC_URL")]
    public_url: Option<String>,
}

impl Cli {
    /// Runs the parsed command; the exit code follows the interface spec.
    pub fn run(self) -> ExitCode {
        match self.command {
            Command::Serve(args) => serve::run(args),
        }
    }
}
