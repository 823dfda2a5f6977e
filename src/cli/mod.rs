//! Command-line parsing and printing. The logic lives in the library; each
//! subcommand here only turns arguments into calls and results into output.

mod check;
mod diagnostics;
pub mod logging;
mod run;
mod runs;
mod serve;
mod test;

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
    /// Validate recipes (files or folders; default: the recipes folder).
    Check(CheckArgs),
    /// Run recipe tests (`NAME.test.yaml` beside `NAME.yaml`) offline.
    Test(TestArgs),
    /// Run one recipe once in the foreground, printing each step.
    Run(RunArgs),
    /// Run history from the database (works with the daemon stopped).
    Runs(RunsArgs),
    /// Print the JSON Schema of recipe files, for editors
    /// (`# yaml-language-server: $schema=ferry-recipe.schema.json`).
    Schema,
}

#[derive(Debug, clap::Args)]
struct RunsArgs {
    #[command(subcommand)]
    command: Option<RunsCommand>,
    /// Only this recipe's runs.
    #[arg(long)]
    recipe: Option<String>,
    /// Only runs in this status (queued, running, retrying, waiting, succeeded,
    /// failed, skipped, cancelled).
    #[arg(long)]
    status: Option<String>,
    /// How many runs, newest first.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=500))]
    limit: u32,
    /// Database URL.
    #[arg(
        long = "database",
        env = "FERRY_DATABASE_URL",
        default_value = "sqlite://ferry.db",
        global = true
    )]
    database_url: String,
    /// Folder of recipe files (their secrets are redacted from what is shown).
    #[arg(long, env = "FERRY_RECIPES", default_value = "./recipes", global = true)]
    recipes: PathBuf,
}

#[derive(Debug, Subcommand)]
enum RunsCommand {
    /// One run with its steps, every attempt's request and answer, and its error.
    Show { run_id: String },
    /// Ends a queued, retrying or waiting run as `cancelled`, in the database.
    /// A run a daemon is running is cancelled through that daemon (`POST
    /// /api/v1/runs/ID/cancel`, or the status page), which stops its next attempt.
    Cancel { run_id: String },
    /// Queues a failed or cancelled run again, in the database, to go on from
    /// the step that did not finish (a running daemon takes it at its next look
    /// at the queue).
    Resume { run_id: String },
}

#[derive(Debug, clap::Args)]
struct TestArgs {
    /// Test files, recipe files or folders.
    paths: Vec<PathBuf>,
    /// The recipes folder, tested when no PATH is given.
    #[arg(long, env = "FERRY_RECIPES", default_value = "./recipes")]
    recipes: PathBuf,
    /// Read `NAME=value` lines for `${NAME}` first; the real environment wins.
    #[arg(long, value_name = "FILE")]
    env_file: Option<PathBuf>,
    /// `ferry.url` in templates. Fixed rather than taken from FERRY_PUBLIC_URL, so
    /// that a test's expectations do not depend on the machine.
    #[arg(long, default_value = DEFAULT_TEST_URL)]
    public_url: String,
}

/// `ferry.url` in `ferry test` and `ferry run`: the daemon's default.
const DEFAULT_TEST_URL: &str = "http://127.0.0.1:8080";

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// A recipe id in the recipes folder, or a path to a recipe file.
    recipe: String,
    /// The trigger input as a JSON file, or `-` for stdin (default `{}`).
    #[arg(long, value_name = "FILE")]
    payload: Option<PathBuf>,
    /// Render and print the requests without sending them.
    #[arg(long)]
    dry_run: bool,
    /// Folder of recipe files.
    #[arg(long, env = "FERRY_RECIPES", default_value = "./recipes")]
    recipes: PathBuf,
    /// Read `NAME=value` lines for `${NAME}` first; the real environment wins.
    #[arg(long, value_name = "FILE")]
    env_file: Option<PathBuf>,
    /// `ferry.url` in templates.
    #[arg(long, env = "FERRY_PUBLIC_URL", default_value = DEFAULT_TEST_URL)]
    public_url: String,
    /// Refuse loopback, private and other non-public destinations.
    #[arg(long, env = "FERRY_DENY_PRIVATE_DESTINATIONS", default_value_t = false)]
    deny_private_destinations: bool,
}

#[derive(Debug, clap::Args)]
struct CheckArgs {
    /// Recipe files or folders.
    paths: Vec<PathBuf>,
    /// The recipes folder, checked when no PATH is given.
    #[arg(long, env = "FERRY_RECIPES", default_value = "./recipes")]
    recipes: PathBuf,
    /// Read `NAME=value` lines for `${NAME}` first; the real environment wins.
    #[arg(long, value_name = "FILE")]
    env_file: Option<PathBuf>,
    /// `text` (diagnostics on stderr) or `json` (one JSON object per line on stdout).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Text,
    Json,
}

/// Runs a subcommand whose usage and configuration errors (a PATH that does not
/// exist, a bad env file) print `error: …` and exit 2, as the interface says.
fn exit_2_on_error(command: impl FnOnce() -> Result<ExitCode, String>) -> ExitCode {
    command().unwrap_or_else(|error| {
        eprintln!("error: {error}");
        ExitCode::from(2)
    })
}

/// The one-thread runtime of the short-lived subcommands.
fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the async runtime: {error}"))
}

/// The environment for `${NAME}`, with an env file's values under it.
fn environment(env_file: Option<&std::path::Path>) -> Result<crate::recipe::Environment, String> {
    let environment = crate::recipe::Environment::from_process();
    match env_file {
        Some(path) => environment.with_env_file(path),
        None => Ok(environment),
    }
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
    /// Read `NAME=value` lines for `${NAME}` first; the real environment wins.
    #[arg(long, value_name = "FILE")]
    env_file: Option<PathBuf>,
    /// On Ctrl-C / SIGTERM, how long runs in flight may take to finish.
    #[arg(long, env = "FERRY_SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_grace)]
    shutdown_grace: std::time::Duration,
    /// `normal`: acknowledged webhooks survive a crash of the process; `full`: a power
    /// loss too (every commit waits for the disk).
    #[arg(long, env = "FERRY_SYNC", default_value = "normal")]
    sync: crate::store::Durability,
    /// Webhooks waiting to be stored at once; more are answered 503 with Retry-After.
    #[arg(long, env = "FERRY_MAX_PENDING_WEBHOOKS", default_value_t = crate::daemon::DEFAULT_MAX_PENDING_WEBHOOKS)]
    max_pending_webhooks: usize,
    /// The largest webhook body: `1MiB`, `512KiB`, `10MB`, or bytes. Larger ones get 413.
    #[arg(long, env = "FERRY_MAX_BODY", default_value = "1MiB", value_parser = parse_size)]
    max_body: usize,
    /// Webhook body bytes held in memory at once, across requests, until each is
    /// stored; more get 503 with Retry-After.
    #[arg(long, env = "FERRY_MAX_BODY_MEMORY", default_value = "32MiB", value_parser = parse_size)]
    max_body_memory: usize,
    /// Webhooks per client address (`1000/s`, `60/m`, or `off`).
    #[arg(long, env = "FERRY_HOOK_RATE_PER_IP", default_value = crate::api::DEFAULT_HOOK_RATE)]
    hook_rate_per_ip: crate::api::RateSetting,
    /// Failed verifications and unknown hook paths per client address (or `off`).
    #[arg(long, env = "FERRY_HOOK_FAIL_RATE_PER_IP", default_value = crate::api::DEFAULT_HOOK_FAIL_RATE)]
    hook_fail_rate_per_ip: crate::api::RateSetting,
    /// Take the client address from the last `X-Forwarded-For` entry (only behind a
    /// proxy that sets it).
    #[arg(long, env = "FERRY_TRUST_FORWARDED_FOR", default_value_t = false)]
    trust_forwarded_for: bool,
    /// Refuse to send steps and polls to loopback, private, link-local (cloud
    /// metadata), CGNAT and other non-public addresses, checked on the resolved
    /// address of every request and redirect.
    #[arg(long, env = "FERRY_DENY_PRIVATE_DESTINATIONS", default_value_t = false)]
    deny_private_destinations: bool,
    /// Open HTTP connections at most; more wait to be accepted.
    #[arg(long, env = "FERRY_MAX_CONNECTIONS", default_value_t = crate::api::server::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// Finished runs older than this are deleted (`30d`, `12h`, …), or `off`.
    #[arg(long, env = "FERRY_RETENTION", default_value = "30d", value_parser = parse_retention)]
    retention: Retention,
    /// More callers' headers to store as `[redacted]`, comma-separated, beyond the
    /// built-in credential names (`Authorization`, `Cookie`, and names with `auth`,
    /// `token`, `secret`, `key`, `signature`, … in them).
    #[arg(long, env = "FERRY_REDACT_HEADERS", value_delimiter = ',', value_name = "NAMES")]
    redact_headers: Vec<String>,
    /// Work units one render may cost (a step's request, a condition, a log
    /// line): a helper call, a loop iteration and its elements, 16 bytes a helper
    /// allocates are a unit each.
    #[arg(long, env = "FERRY_RENDER_MAX_WORK", default_value_t = crate::template::budget::DEFAULT_WORK)]
    render_max_work: u64,
    /// The text one render may produce, all of a step's leaves together (`4MiB`).
    #[arg(long, env = "FERRY_RENDER_MAX_BYTES", default_value = "4MiB", value_parser = parse_size)]
    render_max_bytes: usize,
    /// The step results one run keeps for its templates (`steps.*`, every
    /// element of a `for_each` included), all together, as JSON (`16MiB`): a
    /// step whose result would pass it fails.
    #[arg(long, env = "FERRY_RUN_MAX_RESULTS", default_value = "16MiB", value_parser = parse_size)]
    run_max_results: usize,
    /// Free space beside the database below which a warning is logged (`2GiB`);
    /// default: 1 GiB or a tenth of the file system, whichever is smaller.
    #[arg(long, env = "FERRY_DISK_LOW", value_parser = parse_size)]
    disk_low: Option<usize>,
}

/// `FERRY_RETENTION`: a duration, or `off` to keep every run.
#[derive(Debug, Clone, Copy)]
struct Retention(Option<std::time::Duration>);

fn parse_retention(text: &str) -> Result<Retention, String> {
    if text.trim().eq_ignore_ascii_case("off") {
        return Ok(Retention(None));
    }
    match crate::recipe::parse_duration(text)? {
        duration if duration.is_zero() => {
            Err("a retention of zero would delete runs as they end; use `off` or a duration".to_owned())
        }
        duration => Ok(Retention(Some(duration))),
    }
}

/// `1MiB`, `512KiB`, `10MB`, `2kB` or a number of bytes.
fn parse_size(text: &str) -> Result<usize, String> {
    let trimmed = text.trim();
    let split = trimmed.find(|c: char| !c.is_ascii_digit()).unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let expected = || format!("`{text}` is not a size; expected bytes, or a number with KiB, MiB, GiB, kB, MB or GB");
    let number: usize = number.parse().map_err(|_| expected())?;
    let factor = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1024,
        "MiB" => 1024 * 1024,
        "GiB" => 1024 * 1024 * 1024,
        "kB" | "KB" => 1000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return Err(expected()),
    };
    number.checked_mul(factor).filter(|size| *size > 0).ok_or_else(expected)
}

fn parse_grace(text: &str) -> Result<std::time::Duration, String> {
    crate::recipe::parse_duration(text)
}

impl Cli {
    /// Runs the parsed command; the exit code follows the interface spec.
    pub fn run(self) -> ExitCode {
        match self.command {
            Command::Serve(args) => serve::run(args),
            Command::Check(args) => check::run(args),
            Command::Test(args) => test::run(args),
            Command::Run(args) => run::run(args),
            Command::Runs(args) => runs::run(args),
            Command::Schema => {
                use std::io::Write as _;
                let printed = writeln!(std::io::stdout().lock(), "{:#}", crate::recipe::recipe_schema());
                match printed {
                    // A reader that stopped reading (`| head`) is not a failure.
                    Ok(()) => ExitCode::SUCCESS,
                    Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                    Err(error) => {
                        eprintln!("error: printing the schema: {error}");
                        ExitCode::FAILURE
                    }
                }
            }
        }
    }
}
