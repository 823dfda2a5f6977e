//! `ferry runs` and `ferry runs show ID`: run history read from the database
//! directly, so it works while the daemon is down.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::str::FromStr;

use serde_json::Value;

use super::{RunsArgs, RunsCommand};
use crate::recipe::{Environment, RecipeSet};
use crate::store::{AttemptRecord, Cancelled, Reopened, RunDocument, RunFilter, RunStatus, RunSummary, Store};

pub(super) fn run(args: RunsArgs) -> ExitCode {
    super::exit_2_on_error(|| super::runtime()?.block_on(show(args)))
}

async fn show(args: RunsArgs) -> Result<ExitCode, String> {
    if let Some(path) = args.database_url.strip_prefix("sqlite://")
        && !path.is_empty()
        && !std::path::Path::new(path.split('?').next().unwrap_or(path)).exists()
    {
        return Err(format!(
            "there is no database at {path} (set --database or FERRY_DATABASE_URL)"
        ));
    }
    let store = Store::open(&args.database_url, crate::store::Durability::default())
        .await
        .map_err(|error| format!("cannot open {}: {error}", args.database_url))?;
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let outcome = match args.command {
        Some(RunsCommand::Show { run_id }) => {
            // Secrets in the trigger input are shown redacted, as the API shows them.
            let recipes = Environment::from_process();
            let recipes = crate::recipe::load_folder(&args.recipes, &recipes).unwrap_or_default();
            match store.run(&run_id).await.map_err(|error| error.to_string())? {
                Some(run) => {
                    print!("{}", describe_run(&run, &recipes, colour));
                    Ok(ExitCode::SUCCESS)
                }
                None => Err(format!("there is no run `{run_id}`")),
            }
        }
        Some(RunsCommand::Cancel { run_id }) => match store.cancel(&run_id).await.map_err(|error| error.to_string())? {
            Some(Cancelled::Was(RunStatus::Running)) => {
                println!("{run_id}: cancelled (it was running)");
                eprintln!(
                    "note: a daemon running it finishes and records the attempt in flight, and finds the cancel before it sends another request"
                );
                Ok(ExitCode::SUCCESS)
            }
            Some(Cancelled::Was(was)) => {
                println!("{run_id}: cancelled (it was {was})");
                Ok(ExitCode::SUCCESS)
            }
            Some(Cancelled::Ended(status)) => Err(format!(
                "run `{run_id}` has ended ({status}); only a queued, running, retrying or waiting run can be cancelled"
            )),
            None => Err(format!("there is no run `{run_id}`")),
        },
        Some(RunsCommand::Resume { run_id }) => match store.resume(&run_id).await.map_err(|error| error.to_string())? {
            Some(Reopened::Was(was)) => {
                println!("{run_id}: queued to go on (it was {was})");
                Ok(ExitCode::SUCCESS)
            }
            Some(Reopened::Not(status)) => Err(format!(
                "run `{run_id}` is {status}; only a failed or cancelled run resumes (replay starts any run again)"
            )),
            None => Err(format!("there is no run `{run_id}`")),
        },
        None => {
            let status = args
                .status
                .as_deref()
                .map(RunStatus::from_str)
                .transpose()
                .map_err(|error| format!("--status: {error}"))?;
            let filter = RunFilter {
                recipe: args.recipe,
                status,
                limit: args.limit,
                ..RunFilter::default()
            };
            let runs = store.runs_page(&filter).await.map_err(|error| error.to_string())?;
            print!("{}", table(&runs, colour));
            Ok(ExitCode::SUCCESS)
        }
    };
    store.close().await;
    outcome
}

fn paint(text: &str, status: &str, colour: bool) -> String {
    if !colour {
        return text.to_owned();
    }
    let code = match status {
        "succeeded" => "32",
        "failed" => "31",
        "retrying" | "running" | "queued" | "waiting" => "33",
        _ => "2",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// One line per run, newest first.
fn table(runs: &[RunSummary], colour: bool) -> String {
    let mut out = format!(
        "{:<36}  {:<24}  {:<9}  {:<24}  {}\n",
        "RUN", "RECIPE", "STATUS", "RECEIVED", "ERROR"
    );
    for run in runs {
        let status = run.status.as_str();
        let padded = format!("{status:<9}");
        out.push_str(&format!(
            "{:<36}  {:<24}  {}  {:<24}  {}\n",
            run.id,
            run.recipe,
            paint(&padded, status, colour),
            run.received_at,
            run.error.as_deref().unwrap_or("").lines().next().unwrap_or("")
        ));
    }
    if runs.is_empty() {
        out.push_str("(no runs)\n");
    }
    out
}

/// A run with its steps and every attempt's request and answer.
fn describe_run(run: &RunDocument, recipes: &RecipeSet, colour: bool) -> String {
    let summary = &run.summary;
    let redact = |value: &Value| match recipes.get(&summary.recipe) {
        Some(recipe) => recipe.redactor.value(value),
        None => value.clone(),
    };
    let status = summary.status.as_str();
    let mut out = format!(
        "run {}  {}  recipe {} (version {})  trigger {}\n",
        summary.id,
        paint(status, status, colour),
        summary.recipe,
        summary.recipe_version,
        summary.trigger
    );
    out.push_str(&format!(
        "received {}  started {}  finished {}\n",
        summary.received_at,
        summary.started_at.as_deref().unwrap_or("-"),
        summary.finished_at.as_deref().unwrap_or("-")
    ));
    if let Some(original) = &summary.replay_of {
        out.push_str(&format!("replay of {original}\n"));
    }
    if let Some(error) = &summary.error {
        out.push_str(&format!("error: {error}\n"));
    }
    out.push_str(&format!("payload: {}\n", redact(&run.payload)));
    describe_steps(&mut out, &run.steps, colour);
    if !run.on_failure.is_empty() {
        out.push_str("\non_failure:\n");
        describe_steps(&mut out, &run.on_failure, colour);
    }
    out
}

/// Each step with its attempts, and a loop's elements with theirs.
fn describe_steps(out: &mut String, steps: &[crate::store::StepDocument], colour: bool) {
    for step in steps {
        let status = step.status.as_str();
        out.push_str(&format!("\nstep {}  {}\n", step.id, paint(status, status, colour)));
        print_attempts(out, step.kind, &step.attempts, "");
        for element in step.items.iter().flatten() {
            let status = element.status.as_str();
            out.push_str(&format!(
                "  item {}  {}\n",
                element.index,
                paint(status, status, colour)
            ));
            print_attempts(out, step.kind, &element.attempts, "  ");
        }
    }
}

/// A step's (or a loop element's) attempts, each line after `indent`.
fn print_attempts(out: &mut String, kind: crate::step::KindName, attempts: &[AttemptRecord], indent: &str) {
    for attempt in attempts {
        out.push_str(&format!(
            "{indent}  attempt {}  {}  {} ms\n",
            attempt.n, attempt.started_at, attempt.duration_ms
        ));
        let view = kind.view(&attempt.request);
        match view.body {
            Some(body) => out.push_str(&format!("{indent}    -> {}\n{}", view.line, indented(body))),
            None => out.push_str(&format!("{indent}    {}\n", view.line)),
        }
        if let Some(response) = &attempt.response {
            out.push_str(&format!(
                "{indent}    <- {}\n{}",
                response["status"],
                indented(&response["body"])
            ));
        }
        if let Some(error) = &attempt.error {
            out.push_str(&format!("{indent}    error: {error}\n"));
        }
    }
}

/// A body, pretty-printed and indented under its line.
fn indented(body: &Value) -> String {
    let text = match body {
        Value::Null => return String::new(),
        Value::String(text) => text.clone(),
        json => serde_json::to_string_pretty(json).unwrap_or_default(),
    };
    text.lines().map(|line| format!("       {line}\n")).collect()
}
