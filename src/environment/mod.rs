//! `${NAME}` and `${NAME:-default}` in recipe strings, filled from the
//! environment at load time, with a record of which values are secrets.
//!
//! Interpolation runs after YAML parsing, on string values only, so a value is
//! literal text: a `:`, `#`, quote or `{{` in it changes nothing. `$${` writes a
//! literal `${`. Every value that came from the environment is a secret unless its
//! name is listed in `FERRY_PLAIN_VARS`; a default written in the recipe is not.
//!
//! A secret is used as it is or not at all: a `${NAME}` inside a `{{ … }}`
//! expression (a helper's argument, a condition) is refused, because what a helper
//! makes of a secret (`upper`, `base64`, a `slice`) is a value redaction cannot
//! find. So is a secret shorter than [`MIN_SEARCHED_LENGTH`] in a template field:
//! it could not be told apart from ordinary text wherever a destination echoes it.

use std::collections::HashMap;
use std::path::Path;

use crate::redact::{MIN_SEARCHED_LENGTH, Secret};

mod text;

pub use text::{Filled, PlainText, TemplateText, TemplateTree, filling};

/// The variables recipes may use.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    values: HashMap<String, String>,
    /// Names whose values a recipe test gave: test data, not secrets.
    test_values: std::collections::HashSet<String>,
}

impl Environment {
    /// The process environment.
    pub fn from_process() -> Self {
        Self {
            values: std::env::vars().collect(),
            test_values: Default::default(),
        }
    }

    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            values: pairs
                .into_iter()
                .map(|(name, value)| (name.into(), value.into()))
                .collect(),
            test_values: Default::default(),
        }
    }

    /// Sets the values a recipe test gives, over everything else. They are not
    /// secrets: they are written in the test, and reports show them.
    pub fn with_test_values(mut self, values: &std::collections::BTreeMap<String, String>) -> Self {
        for (name, value) in values {
            self.values.insert(name.clone(), value.clone());
            self.test_values.insert(name.clone());
        }
        self
    }

    /// Adds the `NAME=value` lines of an env file for names not set already: the
    /// real environment wins. Blank lines and `#` comments are skipped; a value may
    /// be wrapped in single or double quotes.
    pub fn with_env_file(mut self, path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("cannot read env file {}: {error}", path.display()))?;
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let line = line.strip_prefix("export ").unwrap_or(line);
            let Some((name, value)) = line.split_once('=') else {
                return Err(format!("{}:{}: expected `NAME=value`", path.display(), index + 1));
            };
            let name = name.trim();
            if !is_name(name) {
                return Err(format!(
                    "{}:{}: `{name}` is not a variable name",
                    path.display(),
                    index + 1
                ));
            }
            let value = value.trim();
            let value = [('"', '"'), ('\'', '\'')]
                .iter()
                .find_map(|(open, close)| value.strip_prefix(*open).and_then(|rest| rest.strip_suffix(*close)))
                .unwrap_or(value);
            self.values.entry(name.to_owned()).or_insert_with(|| value.to_owned());
        }
        Ok(self)
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Whether `FERRY_PLAIN_VARS` (comma-separated names, in this environment)
    /// marks a variable as not secret: its value is shown as it is.
    pub fn is_plain(&self, name: &str) -> bool {
        self.get(PLAIN_VARS)
            .is_some_and(|names| names.split(',').any(|plain| plain.trim() == name))
    }

    /// Whether a variable's value is redacted wherever runs show it.
    fn is_secret(&self, name: &str) -> bool {
        !self.test_values.contains(name) && !self.is_plain(name)
    }
}

/// The setting that lists variables whose values are not secret.
pub const PLAIN_VARS: &str = "FERRY_PLAIN_VARS";

/// How a filled string is used next.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    /// Compiled as a template afterwards: a `{{` in an environment value is
    /// escaped, so the value stays literal text.
    Template,
    /// Used as it is (a path, a method, a duration).
    Plain,
}

/// Replaces every `${NAME}` / `${NAME:-default}` in `text`; values taken from the
/// environment are added to `secrets`. A default may hold braces
/// (`${URL:-{{ferry.url}}/hooks/x}`): the reference ends at its matching `}`.
pub(crate) fn interpolate(
    text: &str,
    environment: &Environment,
    secrets: &mut Vec<Secret>,
    field: Field,
) -> Result<String, String> {
    if !text.contains('$') {
        return Ok(text.to_owned());
    }
    let mut output = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        output.push_str(&rest[..dollar]);
        let after = &rest[dollar..];
        if let Some(tail) = after.strip_prefix("$${") {
            output.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = matching_brace(tail).ok_or_else(|| format!("`${{` without a closing `}}` in `{text}`"))?;
            let inside = &tail[..end];
            let in_expression = field == Field::Template && ends_in_expression(&text[..text.len() - after.len()]);
            let (name, default) = match inside.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (inside, None),
            };
            if !is_name(name) {
                return Err(format!(
                    "`${{{inside}}}` is not a variable reference; expected `${{NAME}}` or `${{NAME:-default}}` (write `$${{` for a literal `${{`)"
                ));
            }
            if in_expression && !environment.is_plain(name) {
                return Err(format!(
                    "`${{{name}}}` is inside a `{{{{ … }}}}` expression: a helper or condition applied to a secret makes a value that cannot be redacted; use the secret as it is (in `auth`, a header, the URL or a body value), or list `{name}` in {PLAIN_VARS} if it is not secret"
                ));
            }
            match (environment.get(name).filter(|value| !value.is_empty()), default) {
                (Some(value), _)
                    if field == Field::Template
                        && environment.is_secret(name)
                        && value.chars().count() < MIN_SEARCHED_LENGTH =>
                {
                    return Err(format!(
                        "the value of `{name}` is shorter than {MIN_SEARCHED_LENGTH} characters: too short to be found and redacted where a destination echoes it; use a longer secret, or list `{name}` in {PLAIN_VARS} if it is not secret"
                    ));
                }
                (Some(value), _) => {
                    match field {
                        Field::Template => output.push_str(&value.replace("{{", "\\{{")),
                        Field::Plain => output.push_str(value),
                    }
                    let secret = Secret {
                        name: name.to_owned(),
                        value: value.to_owned(),
                    };
                    if !secrets.contains(&secret) && environment.is_secret(name) {
                        secrets.push(secret);
                    }
                }
                (None, Some(default)) => output.push_str(default),
                (None, None) => {
                    return Err(format!(
                        "environment variable `{name}` is not set; set it, or write `${{{name}:-default}}` to give a default"
                    ));
                }
            }
            rest = &tail[end + 1..];
        } else {
            output.push('$');
            rest = &after[1..];
        }
    }
    output.push_str(rest);
    Ok(output)
}

/// Whether `text` ends inside an unclosed `{{ … }}` (an escaped `\{{` opens
/// nothing).
fn ends_in_expression(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut inside = false;
    let mut at = 0;
    while at + 1 < bytes.len() {
        let pair = &bytes[at..at + 2];
        if !inside && pair == b"{{" && (at == 0 || bytes[at - 1] != b'\\') {
            inside = true;
            at += 2;
        } else if inside && pair == b"}}" {
            inside = false;
            at += 2;
        } else {
            at += 1;
        }
    }
    inside
}

/// The index of the `}` that closes a reference whose text starts at `text`.
fn matching_brace(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (index, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(index),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(first) if first == '_' || first.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> (Result<String, String>, Vec<Secret>) {
        let environment = Environment::from_pairs([("TOKEN", "s3cr3t: #{{x}}"), ("EMPTY", "")]);
        let mut secrets = Vec::new();
        (interpolate(text, &environment, &mut secrets, Field::Plain), secrets)
    }

    #[test]
    fn values_in_templates_are_escaped_and_defaults_may_hold_templates() {
        let environment = Environment::from_pairs([("TOKEN", "a{{b}}")]);
        let mut secrets = Vec::new();
        let filled = interpolate(
            "${TOKEN} ${URL:-{{ferry.url}}/hooks/x}",
            &environment,
            &mut secrets,
            Field::Template,
        );
        assert_eq!(filled.as_deref(), Ok("a\\{{b}} {{ferry.url}}/hooks/x"));
        let template = crate::template::Template::compile(&filled.expect("filled")).expect("compiles");
        let rendered = crate::template::Templates::new()
            .render_text(&template, &serde_json::json!({"ferry": {"url": "http://h"}}))
            .expect("renders");
        assert_eq!(rendered, "a{{b}} http://h/hooks/x");
    }

    #[test]
    fn values_are_literal_and_recorded_as_secrets() {
        let (result, secrets) = run("Bearer ${TOKEN}!");
        assert_eq!(result.as_deref(), Ok("Bearer s3cr3t: #{{x}}!"));
        assert_eq!(
            secrets,
            [Secret {
                name: "TOKEN".into(),
                value: "s3cr3t: #{{x}}".into()
            }]
        );
    }

    #[test]
    fn defaults_apply_when_unset_or_empty_and_are_not_secret() {
        let (result, secrets) = run("${MISSING:-a} ${EMPTY:-b}");
        assert_eq!(result.as_deref(), Ok("a b"));
        assert!(secrets.is_empty());
    }

    #[test]
    fn escapes_and_plain_dollars() {
        assert_eq!(run("$${TOKEN} costs $5").0.as_deref(), Ok("${TOKEN} costs $5"));
    }

    #[test]
    fn missing_and_malformed_references_are_errors() {
        assert!(run("${MISSING}").0.unwrap_err().contains("`MISSING` is not set"));
        assert!(run("${EMPTY}").0.unwrap_err().contains("`EMPTY` is not set"));
        assert!(run("${1X}").0.unwrap_err().contains("not a variable reference"));
        assert!(run("${TOKEN").0.unwrap_err().contains("without a closing"));
    }
}
