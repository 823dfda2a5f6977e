//! `ferry run RECIPE [--payload FILE|-] [--dry-run]`: one run in the foreground,
//! printing each step's request and answer (secrets redacted).

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use serde_json::{Map, Value, json};

use super::RunArgs;
use crate::action::{DestinationPolicy, Destinations};
use crate::engine::rehearse::{Exchange, HttpTurn, StepTrace, TriggerInput, Turn, rehearse};
use crate::recipe::{Recipe, Trigger, load_folder, load_source};
use crate::store::FinalStatus;
use crate::template::{Templates, did_you_mean};

pub(super) fn run(args: RunArgs) -> ExitCode {
    super::exit_2_on_error(|| run_once(args))
}

fn run_once(args: RunArgs) -> Result<ExitCode, String> {
    let environment = super::environment(args.env_file.as_deref())?;
    let recipe = match find_recipe(&args.recipe, &args.recipes, &environment) {
        Ok(recipe) => recipe,
        Err((code, message)) => {
            eprintln!("{message}");
            return Ok(ExitCode::from(code));
        }
    };
    let payload = args.payload.as_deref().map(read_payload).transpose()?;
    let destinations = Destinations::new(DestinationPolicy {
        deny_private: args.deny_private_destinations,
    })
    .map_err(|error| format!("cannot build the HTTP client: {error}"))?;
    let runtime = super::runtime()?;

    let kind = recipe.trigger.kind();
    let payload = payload.unwrap_or_else(|| match &recipe.trigger {
        Trigger::Schedule { .. } => {
            let now = crate::store::timestamp(chrono::Utc::now());
            json!({"scheduled_at": now, "fired_at": now})
        }
        Trigger::Failure(_) => crate::engine::failure_trigger::example(&args.public_url),
        _ => json!({}),
    });
    let input = TriggerInput {
        kind,
        payload,
        headers: Map::new(),
        query: Map::new(),
    };
    let exchange = if args.dry_run {
        println!(
            "{} (dry run: nothing is sent; every step is answered 200 {{}})",
            recipe.id
        );
        Exchange::DryRun
    } else {
        println!("{}", recipe.id);
        Exchange::Network(&destinations)
    };
    let templates = Templates::new();
    let rehearsal = runtime.block_on(rehearse(
        &recipe,
        &templates,
        &args.public_url,
        input,
        &exchange,
        &mut |step| print_step(&recipe, step),
    ));
    let status = crate::store::RunStatus::from(rehearsal.status);
    match &rehearsal.error {
        Some(error) => println!("run {status}: {}", recipe.redactor.text(error)),
        None => println!("run {status}"),
    }
    Ok(if rehearsal.status == FinalStatus::Failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// A path to a recipe file, or the id of a recipe in the recipes folder.
fn find_recipe(wanted: &str, folder: &Path, environment: &crate::recipe::Environment) -> Result<Recipe, (u8, String)> {
    let as_path = Path::new(wanted);
    let diagnostics = |problems: Vec<crate::recipe::Diagnostic>| {
        let mut printer = super::diagnostics::DiagnosticPrinter::default();
        problems.iter().for_each(|problem| printer.print("error", problem));
        (1, format!("{} problem(s)", problems.len()))
    };
    if as_path.is_file() {
        let text = std::fs::read_to_string(as_path)
            .map_err(|error| (2, format!("error: cannot read {}: {error}", as_path.display())))?;
        return load_source(as_path, &text, environment).map_err(diagnostics);
    }
    let set = load_folder(folder, environment).map_err(|error| {
        (
            2,
            format!("error: cannot read the folder {}: {error}", folder.display()),
        )
    })?;
    if let Some(recipe) = set.get(wanted) {
        let text = std::fs::read_to_string(&recipe.file)
            .map_err(|error| (2, format!("error: cannot read {}: {error}", recipe.file.display())))?;
        return load_source(&recipe.file, &text, environment).map_err(diagnostics);
    }
    let failed: Vec<_> = set
        .problems()
        .filter(|problem| problem.file.file_stem().and_then(|stem| stem.to_str()) == Some(wanted))
        .cloned()
        .collect();
    if !failed.is_empty() {
        return Err(diagnostics(failed));
    }
    let hint = did_you_mean(wanted, set.recipes().map(|recipe| recipe.id.as_str()))
        .map(|name| format!("; did you mean `{name}`?"))
        .unwrap_or_default();
    Err((
        2,
        format!(
            "error: no recipe `{wanted}` in {} and no such file{hint}",
            folder.display()
        ),
    ))
}

/// The payload from a JSON file, or from stdin for `-`.
fn read_payload(source: &Path) -> Result<Value, String> {
    let text = if source == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|error| format!("cannot read the payload from stdin: {error}"))?;
        text
    } else {
        std::fs::read_to_string(source).map_err(|error| format!("cannot read {}: {error}", source.display()))?
    };
    serde_json::from_str(&text).map_err(|error| format!("the payload in {} is not JSON: {error}", source.display()))
}

fn print_step(recipe: &Recipe, step: &StepTrace) {
    let redactor = &recipe.redactor;
    let name = match step.element {
        Some(index) => format!("{} item {index}", step.id),
        None => step.id.clone(),
    };
    match &step.turn {
        Turn::Skipped
            if recipe
                .steps
                .iter()
                .any(|known| known.id == step.id && known.guard.is_some()) =>
        {
            println!(
                "step {}: skipped (its branch was not taken, or its `when` is false)",
                name
            )
        }
        Turn::Skipped => println!("step {}: skipped (its `when` is false)", name),
        Turn::Switched { value, case } => match case {
            Some(case) => println!("step {}: switch {} → case {case}", name, redactor.text(value)),
            None => println!(
                "step {}: switch {} → no case (nothing runs)",
                name,
                redactor.text(value)
            ),
        },
        Turn::Logged(line) => println!("step {}: log {}", name, redactor.text(line)),
        Turn::Set(values) => println!("step {}: set {}", name, redactor.text(&crate::json::text(values))),
        Turn::Looped(count) => println!("step {name}: for_each ended: {count} items"),
        Turn::Delayed(until) => println!("step {name}: delay until {until} (not waited here)"),
        Turn::NotRendered(error) => println!("step {}: cannot render: {}", name, redactor.text(error)),
        Turn::Http(http) => {
            let HttpTurn {
                request,
                response,
                sent,
                duration,
                error,
            } = http.as_ref();
            let record = crate::step::http::record::request_record(redactor, request);
            println!(
                "step {}: {} {}",
                name,
                record["method"].as_str().unwrap_or_default(),
                record["url"].as_str().unwrap_or_default()
            );
            if let Some(headers) = record["headers"].as_object() {
                for (name, value) in headers {
                    println!("  {name}: {}", value.as_str().unwrap_or_default());
                }
            }
            print_body(&record["body"]);
            if !sent {
                println!("  (not sent)");
                return;
            }
            match response {
                Some(response) => {
                    let record = crate::step::http::record::response_record(redactor, response);
                    println!("  -> {} in {} ms", response.status, duration.as_millis());
                    print_body(&record["body"]);
                }
                None => println!("  -> no answer in {} ms", duration.as_millis()),
            }
            if let Some(error) = error {
                println!("  error: {}", redactor.text(error));
            }
        }
    }
}

fn print_body(body: &Value) {
    let text = match body {
        Value::Null => return,
        Value::String(text) => text.clone(),
        json => serde_json::to_string_pretty(json).unwrap_or_default(),
    };
    for line in text.lines() {
        println!("  | {line}");
    }
}
