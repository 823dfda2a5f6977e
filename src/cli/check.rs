//! `ferry check [PATH…]`: exit 0 when every recipe loads, 1 when one does not,
//! 2 for a usage problem (a PATH that does not exist).

use std::process::ExitCode;

use serde_json::json;

use super::{CheckArgs, Format};
use crate::recipe::check_paths;

pub(super) fn run(args: CheckArgs) -> ExitCode {
    super::exit_2_on_error(|| check(args))
}

fn check(args: CheckArgs) -> Result<ExitCode, String> {
    let environment = super::environment(args.env_file.as_deref())?;
    let paths = if args.paths.is_empty() {
        vec![args.recipes]
    } else {
        args.paths
    };
    let report = check_paths(&paths, &environment)?;

    let all = report
        .problems
        .iter()
        .map(|problem| ("error", problem))
        .chain(report.warnings.iter().map(|warning| ("warning", warning)));
    let mut printer = super::diagnostics::DiagnosticPrinter::default();
    for (severity, problem) in all {
        match args.format {
            Format::Text => printer.print(severity, problem),
            Format::Json => {
                let (message, hint) = problem.message_and_hint();
                println!(
                    "{}",
                    json!({
                        "file": problem.file.display().to_string(),
                        "line": problem.line,
                        "col": problem.column,
                        "severity": severity,
                        "message": message,
                        "hint": hint,
                    })
                );
            }
        }
    }
    if report.recipes == 0 && report.problems.is_empty() {
        eprintln!("warning: no recipes found in {}", display_paths(&paths));
    }
    let summary = format!("{} recipes, {} problems", report.recipes, report.problems.len());
    // In JSON mode stdout carries only JSON lines, for editors and CI annotations.
    match args.format {
        Format::Text => println!("{summary}"),
        Format::Json => eprintln!("{summary}"),
    }
    Ok(if report.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn display_paths(paths: &[std::path::PathBuf]) -> String {
    paths
        .iter()
        .map(|path| path.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
