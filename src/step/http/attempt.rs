//! One attempt of an `http` step: the request rendered at the first attempt
//! (or the one stored then, its credentials rendered again), stored first when
//! a crash could not render it alike, sent, and its answer made the step's
//! result.

use std::time::Instant;

use serde_json::Value;

use super::HttpTemplate;
use super::record::RequestRecord;
use super::render;
use crate::action::{AttemptError, HttpRequest, HttpResponse, Outcome};
use crate::step::{AttemptFailure, AttemptInput, Attempted, Attempts, Turn, counted};
use crate::template::Templates;

impl HttpTemplate {
    pub(crate) async fn attempt(
        &self,
        input: AttemptInput<'_>,
        host: &mut impl Attempts,
    ) -> Result<Attempted, AttemptFailure> {
        self.attempt_judged(input, host, |response| Ok(step_result(response)))
            .await
    }

    /// An attempt whose successful answer `judge` reads: it gives the step's
    /// result, or fails the attempt (a kind that speaks a protocol over HTTP
    /// reads failures from the body of a success). The turn shows the verdict.
    pub(crate) async fn attempt_judged(
        &self,
        input: AttemptInput<'_>,
        host: &mut impl Attempts,
        judge: impl FnOnce(&HttpResponse) -> Result<Value, AttemptError>,
    ) -> Result<Attempted, AttemptFailure> {
        let AttemptInput {
            templates,
            context,
            redactor,
            idempotency_key,
            stored_request,
        } = input;
        let (request, stored) = match stored_request {
            // Rendered once, at the first attempt: the same request every time.
            Some(stored) => {
                let mut request = HttpRequest::from_sealed(&stored).ok_or(AttemptFailure::DamagedRequest)?;
                // Credentials are never stored: they are rendered again.
                if let Err(error) = render::add_auth(templates, self, context, &mut request) {
                    return Err(not_rendered(host, redactor, &error.to_string()));
                }
                (request, true)
            }
            None => {
                let render = || render::http_request(templates, self, context, &idempotency_key);
                let rendered = if self.has_blocks {
                    host.render_heavy(render).await
                } else {
                    render()
                };
                let request = match counted(host, rendered) {
                    Ok(request) => request,
                    Err(error) => {
                        return Err(not_rendered(host, redactor, &error.to_string()));
                    }
                };
                if !host.has_unstored() && self.renders_alike {
                    // Nothing the run gathered is unstored, and what is stored
                    // renders this same request again: after a crash it is
                    // rendered and sent again as it was, without a write first.
                    (request, false)
                } else {
                    // Stored before it is sent (with what the run gathered
                    // before it): a crash after sending re-sends this request.
                    let sealed = redactor.seal(&request.to_sealable());
                    host.store_request(sealed).await?;
                    (request, true)
                }
            }
        };
        let started = Instant::now();
        let (outcome, sent) = host.exchange(&request).await;
        let (outcome, result) = match outcome {
            Outcome::Succeeded {
                response: Some(response),
            } => match judge(&response).and_then(|result| self.condition(templates, context, result)) {
                Ok(result) => (
                    Outcome::Succeeded {
                        response: Some(response),
                    },
                    result,
                ),
                Err(error) => (
                    Outcome::Failed {
                        response: Some(response),
                        error,
                    },
                    Value::Null,
                ),
            },
            other => (other, Value::Null),
        };
        let (response, error) = match &outcome {
            Outcome::Succeeded { response } => (response.as_ref(), None),
            Outcome::Failed { response, error } => (response.as_ref(), Some(error)),
        };
        host.turn(Turn::Http {
            request: &request,
            response,
            sent,
            duration: started.elapsed(),
            error,
        });
        let record = RequestRecord {
            redactor,
            request: &request,
        }
        .to_text();
        Ok(Attempted {
            record,
            outcome,
            result,
            unstored: (!stored).then_some(request),
        })
    }
}

impl HttpTemplate {
    /// The step's result, unless its `fail_when` holds for it (the answer is
    /// `response` beside the run's context).
    fn condition(&self, templates: &Templates, context: &Value, result: Value) -> Result<Value, AttemptError> {
        let Some(condition) = &self.fail_when else {
            return Ok(result);
        };
        let mut with_response = context.clone();
        if let Value::Object(fields) = &mut with_response {
            fields.insert("response".to_owned(), result);
        }
        let holds = templates
            .is_true(condition, &with_response)
            .map_err(|error| AttemptError::Step(format!("`fail_when` did not render: {error}")))?;
        if holds {
            return Err(AttemptError::Condition(format!(
                "`fail_when` holds: {}",
                condition.source()
            )));
        }
        Ok(with_response
            .as_object_mut()
            .and_then(|fields| fields.remove("response"))
            .unwrap_or(Value::Null))
    }
}

/// A request whose templates did not render: the turn and the failure say why,
/// redacted.
fn not_rendered(host: &mut impl Attempts, redactor: &crate::redact::Redactor, error: &str) -> AttemptFailure {
    let error = redactor.text(error).into_owned();
    host.turn(Turn::NotRendered(&error));
    AttemptFailure::NotRendered(error)
}

/// `steps.<id>` after an http step: the whole answer.
pub(crate) fn step_result(response: &HttpResponse) -> Value {
    Value::Object(
        [
            ("status".to_owned(), Value::from(response.status)),
            ("headers".to_owned(), Value::Object(response.headers.clone())),
            ("body".to_owned(), response.body.clone()),
        ]
        .into_iter()
        .collect(),
    )
}
