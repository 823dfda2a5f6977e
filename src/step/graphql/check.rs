//! The checks of a `graphql` step: its request as an http step's, and its
//! `query` parsed as GraphQL, a problem placed where it is in the file.

use apollo_parser::cst::{self, CstNode};
use indexmap::IndexMap;
use serde_json::{Map, Value};
use serde_saphyr::Location;

use super::GraphqlStep;
use super::config::GraphqlConfig;
use crate::checks::{Checker, Diagnostic};
use crate::step::http::BodyTemplate;
use crate::step::http::check::validate_http;
use crate::step::http::config::HttpConfig;
use crate::template::ValueTemplate;

/// A `graphql` step's request, or `None` when it has problems (reported).
pub fn validate_graphql(
    checker: &mut Checker<'_>,
    label: &str,
    location: Location,
    config: &GraphqlConfig,
) -> Option<GraphqlStep> {
    let query = &config.query;
    let operation = config.operation.as_ref().map(|operation| operation.value.as_str());
    let query_clean = check_query(checker, label, query.referenced, &query.value, operation);

    let mut body = Map::new();
    // The query is text to send, never a template: a `{{` in it stays as written.
    body.insert("query".to_owned(), Value::from(query.value.replace("{{", "\\{{")));
    if let Some(variables) = &config.variables {
        if !matches!(variables.value, Value::Object(_) | Value::Null) {
            checker.report(
                variables.referenced,
                format!("{label} `variables` must be a map of names to values"),
            );
            return None;
        }
        body.insert("variables".to_owned(), variables.value.clone());
    }
    if let Some(operation) = operation {
        body.insert("operationName".to_owned(), Value::from(operation.replace("{{", "\\{{")));
    }
    let body = match ValueTemplate::compile(&Value::Object(body)) {
        Ok(tree) => tree,
        Err(error) => {
            let at = config
                .variables
                .as_ref()
                .map_or(location, |variables| variables.referenced);
            checker.report(at, format!("{label} `variables`: {error}"));
            return None;
        }
    };
    let mut variables_clean = true;
    let at = config
        .variables
        .as_ref()
        .map_or(location, |variables| variables.referenced);
    for (path, template) in body.templates() {
        // Also what the templates read of the payload is learnt here: a run
        // keeps only the parts of its payload that some template reads.
        variables_clean &= checker
            .checked(template.clone(), at, &format!("{label} `variables` at {path}"))
            .is_some();
    }

    let http = HttpConfig {
        method: None,
        url: config.url.clone(),
        query: IndexMap::new(),
        headers: config.headers.clone(),
        json: None,
        form: None,
        body: None,
        auth: config.auth.clone(),
        accept: Vec::new(),
        fail_when: config.fail_when.clone(),
    };
    let mut request = validate_http(checker, label, location, &http)?;
    request.method = reqwest::Method::POST;
    request.body = Some(BodyTemplate::Json(body));
    request.renders_alike = request.volatile_free();
    request.has_blocks = request.any_blocks();
    (query_clean && variables_clean).then_some(GraphqlStep { request })
}

/// Parses the query; reports its first syntax error where it is in the file,
/// and an operation that cannot be chosen.
fn check_query(checker: &mut Checker<'_>, label: &str, at: Location, query: &str, operation: Option<&str>) -> bool {
    let tree = apollo_parser::Parser::new(query).parse();
    if let Some(error) = tree.errors().next() {
        let (line, column) = line_and_column(query, error.index());
        // The query's line, quoted whole so that it is found in the file's
        // text (also inside a block scalar), with the caret on the error.
        let text = query.lines().nth(line - 1).unwrap_or_default();
        let indent = text.chars().take_while(|c| c.is_whitespace()).count();
        let token = error.data().chars().count().max(1);
        let near = match error.data() {
            "" => String::new(),
            data => format!(" near `{data}`"),
        };
        let message = format!(
            "{label} `query` is not valid GraphQL: {}{near} at line {line}, column {column} of the query",
            error.message()
        );
        let diagnostic = Diagnostic::new(checker.file, Some(at), message);
        checker.problems.push(match text.trim() {
            "" => diagnostic,
            quoted => diagnostic.about_part(quoted.to_owned(), (column - 1 - indent) as u64, token as u64),
        });
        return false;
    }
    let names: Vec<Option<String>> = tree
        .document()
        .definitions()
        .filter_map(|definition| match definition {
            cst::Definition::OperationDefinition(operation) => {
                Some(operation.name().map(|name| name.syntax().text().to_string()))
            }
            _ => None,
        })
        .collect();
    let named: Vec<&str> = names.iter().flatten().map(String::as_str).collect();
    match (operation, names.len()) {
        (_, 0) => {
            checker.report(
                at,
                format!("{label} `query` holds no operation (a `query`, `mutation` or `{{ … }}`)"),
            );
            false
        }
        (None, 1) => true,
        (None, _) => {
            checker.report(
                at,
                format!(
                    "{label} `query` holds {} operations; name the one to run with `operation` (one of {})",
                    names.len(),
                    named.join(", ")
                ),
            );
            false
        }
        (Some(wanted), _) if named.contains(&wanted) => true,
        (Some(wanted), _) => {
            checker.report(
                at,
                format!(
                    "{label} `operation: {wanted}` names no operation of `query`; it has {}",
                    named.join(", ")
                ),
            );
            false
        }
    }
}

/// The 1-based line and column (in characters) of a byte offset.
fn line_and_column(text: &str, index: usize) -> (usize, usize) {
    let before = text.get(..index).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |last| last.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::line_and_column;

    #[test]
    fn places_count_lines_and_characters() {
        assert_eq!(line_and_column("query {\n  é x", 13), (2, 5));
        assert_eq!(line_and_column("{ a }", 0), (1, 1));
    }
}
