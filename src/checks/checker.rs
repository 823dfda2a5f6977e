//! Collecting a recipe file's problems, each with its place, so that all of
//! them are reported at once.

use std::path::Path;
use std::time::Duration;

use serde_saphyr::{Location, Spanned};

use super::Diagnostic;
use crate::duration::parse_duration;
use crate::redact::{BasicPair, Secret};
use crate::template::{EarlierSteps, PayloadReads, Template, check, payload_reads};

impl<'a> Checker<'a> {
    /// A checker of `file` whose templates may start a path with `roots`.
    pub fn new(file: &'a Path, roots: &'static [&'static str]) -> Self {
        Self {
            file,
            problems: Vec::new(),
            roots,
            loop_names: Vec::new(),
            warnings: Vec::new(),
            earlier_steps: Vec::new(),
            earlier_loops: Vec::new(),
            payload: PayloadReads::default(),
            secrets: Vec::new(),
            basic_pairs: Vec::new(),
        }
    }
}

/// Collects the problems of one file so that all of them are reported at once.
pub struct Checker<'a> {
    pub file: &'a Path,
    pub problems: Vec<Diagnostic>,
    /// The names the templates being checked may start a path with.
    pub roots: &'static [&'static str],
    /// Names a `for_each` adds to the roots of its step's templates (`item`,
    /// `index`).
    pub loop_names: Vec<String>,
    pub warnings: Vec<Diagnostic>,
    /// Ids of the steps that run before the templates being checked.
    pub earlier_steps: Vec<String>,
    /// Those of them that are `for_each` steps.
    pub earlier_loops: Vec<String>,
    /// What the templates checked so far read of the payload.
    pub payload: PayloadReads,
    /// The secrets the file uses: those its `${NAME}`s took from the
    /// environment, and those the checks found (a verify secret).
    pub secrets: Vec<Secret>,
    /// Basic credentials holding a secret, whose base64 is redacted too.
    pub basic_pairs: Vec<BasicPair>,
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

    /// Records a value written in the recipe as a secret, unless it is one
    /// already: it is redacted wherever runs show it.
    pub fn keep_secret(&mut self, name: &str, value: &str) {
        if value.is_empty() || self.secrets.iter().any(|secret| secret.value == value) {
            return;
        }
        self.secrets.push(Secret {
            name: name.to_owned(),
            value: value.to_owned(),
        });
    }

    /// Basic credentials: when they hold a secret, the base64 of
    /// `user:password` is redacted too (a destination may echo the
    /// `Authorization` it received), which takes both parts known at load time.
    pub fn basic_pair(&mut self, username: &str, password: &str, location: Location, what: &str) {
        let Some(secret) = self
            .secrets
            .iter()
            .find(|secret| username.contains(&secret.value) || password.contains(&secret.value))
        else {
            return;
        };
        if username.contains("{{") || password.contains("{{") {
            let message = format!(
                "{what} holds the secret `{}` beside a template: the credentials' base64 cannot be known to redact it; write both parts without `{{{{ … }}}}`",
                secret.name
            );
            self.report(location, message);
            return;
        }
        let pair = BasicPair {
            username: username.to_owned(),
            password: password.to_owned(),
            name: secret.name.clone(),
        };
        if !self.basic_pairs.contains(&pair) {
            self.basic_pairs.push(pair);
        }
    }

    /// A duration that must be more than zero; `default` when absent or wrong.
    pub fn positive_duration(&mut self, text: Option<&Spanned<String>>, what: &str, default: Duration) -> Duration {
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
        let roots: Vec<&str> = self
            .roots
            .iter()
            .copied()
            .chain(self.loop_names.iter().map(String::as_str))
            .collect();
        let loops: Vec<&str> = self.earlier_loops.iter().map(String::as_str).collect();
        let earlier = EarlierSteps {
            ids: &earlier,
            loops: &loops,
        };
        let problems = check(&template, &roots, earlier);
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
