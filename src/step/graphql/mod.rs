//! The `graphql` step: one GraphQL operation sent over HTTP as
//! `POST {query, variables}`. A `200` whose body has a non-empty `errors` list
//! fails the attempt with the first error's message, and is not retried: the
//! server understood the request and refused it. `data` is what later steps
//! read as `steps.<id>.body`. Sending, retries, statuses and credentials are an
//! http step's.

pub mod check;
pub mod config;

use serde_json::Value;

use super::http::HttpTemplate;
use super::{AttemptFailure, AttemptInput, Attempted, Attempts};
use crate::action::{AttemptError, HttpResponse};

/// A `graphql` step once loaded: the http request it sends.
#[derive(Debug)]
pub struct GraphqlStep {
    pub request: HttpTemplate,
}

impl GraphqlStep {
    pub(super) async fn attempt(
        &self,
        input: AttemptInput<'_>,
        host: &mut impl Attempts,
    ) -> Result<Attempted, AttemptFailure> {
        self.request.attempt_judged(input, host, judge).await
    }
}

/// A successful answer read as GraphQL: its `errors` fail the attempt, its
/// `data` is the step's body.
fn judge(response: &HttpResponse) -> Result<Value, AttemptError> {
    let body = &response.body;
    if let Some(errors) = body
        .get("errors")
        .and_then(Value::as_array)
        .filter(|errors| !errors.is_empty())
    {
        let message = errors[0]
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("an error without a message");
        let more = match errors.len() {
            1 => String::new(),
            count => format!(" (and {} more)", count - 1),
        };
        return Err(AttemptError::Answer(format!("GraphQL error: {message}{more}")));
    }
    // An answer without `data` (a dry run's `{}`) is no data, not a failure.
    let data = body.get("data").cloned().unwrap_or(Value::Null);
    Ok(Value::Object(
        [
            ("status".to_owned(), Value::from(response.status)),
            ("headers".to_owned(), Value::Object(response.headers.clone())),
            ("body".to_owned(), data),
        ]
        .into_iter()
        .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(body: Value) -> HttpResponse {
        HttpResponse {
            status: 200,
            headers: serde_json::Map::new(),
            text: body.to_string(),
            body,
        }
    }

    #[test]
    fn errors_fail_with_the_first_message_and_data_is_the_body() {
        let failed = judge(&answer(
            serde_json::json!({"errors": [{"message": "no such user"}, {"message": "x"}]}),
        ));
        let error = failed.expect_err("errors fail");
        assert_eq!(error.to_string(), "GraphQL error: no such user (and 1 more)");
        assert!(!error.retryable());
        let result = judge(&answer(serde_json::json!({"data": {"user": {"id": 7}}, "errors": []}))).expect("data");
        assert_eq!(result["body"], serde_json::json!({"user": {"id": 7}}));
        assert_eq!(
            judge(&answer(Value::from("<html>"))).expect("no data")["body"],
            Value::Null
        );
    }
}
