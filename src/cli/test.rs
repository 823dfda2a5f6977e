//! `ferry test [PATH…]`: runs recipe tests offline; exit 1 on any failure.

use std::process::ExitCode;

use super::TestArgs;
use super::diagnostics::DiagnosticPrinter;
use crate::recipe_test::{FileReport, TestContext, find_test_files, run_file};
use crate::template::Templates;

pub(super) fn run(args: TestArgs) -> ExitCode {
    super::exit_2_on_error(|| test(args))
}

fn test(args: TestArgs) -> Result<ExitCode, String> {
    let environment = super::environment(args.env_file.as_deref())?;
    let paths = if args.paths.is_empty() {
        vec![args.recipes]
    } else {
        args.paths
    };
    let (files, untested) = find_test_files(&paths)?;
    let runtime = super::runtime()?;
    let templates = Templates::new();
    let context = TestContext {
        templates: &templates,
        environment: &environment,
        public_url: &args.public_url,
    };
    let mut printer = DiagnosticPrinter::default();
    let mut cases = 0;
    let mut failed = 0;
    for file in &files {
        let report = runtime.block_on(run_file(&context, file));
        print_report(&report, &mut printer);
        cases += report.cases.len();
        failed += report.cases.iter().filter(|case| !case.passed()).count();
        if !report.problems.is_empty() && report.cases.is_empty() {
            failed += 1;
        }
    }
    for recipe in &untested {
        eprintln!(
            "warning: {} has no tests (expected a .test.yaml beside it)",
            recipe.display()
        );
    }
    if files.is_empty() {
        eprintln!("warning: no recipe tests found");
    }
    println!("{} files, {cases} cases, {failed} failed", files.len());
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_report(report: &FileReport, printer: &mut DiagnosticPrinter) {
    println!("{}", report.file.display());
    for problem in &report.problems {
        printer.print("error", problem);
    }
    for case in &report.cases {
        if case.passed() {
            println!("  ok    {}", case.name);
            continue;
        }
        println!("  FAIL  {}  ({}:{})", case.name, report.file.display(), case.at.line);
        for failure in &case.failures {
            println!("        {}", failure.place);
            println!("          expected: {}", failure.expected);
            println!("          actual:   {}", failure.actual);
        }
    }
}
