//! Collecting a recipe file's problems, each with its place, so that all of
//! them are reported at once.

use std::path::Path;
use std::time::Duration;

use serde_saphyr::{Location, Spanned};

use super::Diagnostic;
use crate::duration::parse_duration;
use crate::template::{PayloadReads, Template, check, payload_reads};

impl<'a> Checker<'a> {
    /// A checker of `file` whose templates may start a path with `roots`.
    pub fn new(file: &'a Path, roots: &'static [&'static str]) -> Self {
        Self {
            file,
            problems: Vec::new(),
            roots,
            warnings: Vec::new(),
            earlier_steps: Vec::new(),
            payload: PayloadReads::default(),
        }
    }
}

/// Collects the problems of one file so that all of them are reported at once.
pub struct Checker<'a> {
    pub file: &'a Path,
    pub problems: Vec<Diagnostic>,
    /// The names the templates being checked may start a path with.
    pub roots: &'static [&'static str],
    pub warnings: Vec<Diagnostic>,
    /// Ids of the steps that run before the templates being checked.
    pub earlier_steps: Vec<String>,
    /// What the templates checked so far read of the payload.
    pub payload: PayloadReads,
}

impl Checker<'_> {
    pub fn report(&mut self, location: Location, message: impl Into<String>) {
        self.problems.push(Diagnostic::new(self.file, Some(location), message));
    }

    pub fn template(&mut self, text: &Spanned<String>, what: &str) -> Option<Template> {
        match Template::compile(&text.value) {
            Ok(template) => self.checked(template, text.referenced, what),
            Err(error) => {
                self.report(text.referenced, format!("{what}: {error}"));
                None
            }
        }
    }

    /// A duration that must be more than zero; `default` when absent or wrong.
    pub fn positive_duration(&mut self, text: &Option<Spanned<String>>, what: &str, default: Duration) -> Duration {
        let Some(text) = text else {
            return default;
        };
        match parse_duration(&text.value) {
            Ok(duration) if !duration.is_zero() => duration,
            Ok(_) => {
                self.report(text.referenced, format!("{what} must be more than zero"));
                default
            }
            Err(message) => {
                self.report(text.referenced, format!("{what}: {message}"));
                default
            }
        }
    }

    /// Reports what can be known statically about a compiled template.
    pub fn checked(&mut self, template: Template, location: Location, what: &str) -> Option<Template> {
        let earlier: Vec<&str> = self.earlier_steps.iter().map(String::as_str).collect();
        let problems = check(&template, self.roots, &earlier);
        self.payload.merge(&payload_reads(&template));
        let clean = problems.is_empty();
        for problem in problems {
            self.problems.push(
                Diagnostic::new(self.file, Some(location), format!("{what}: {}", problem.message))
                    .about(problem.culprit),
            );
        }
        clean.then_some(template)
    }
}
