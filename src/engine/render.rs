//! Rendering a step's templates into the concrete request an action executes.

use reqwest::header::CONTENT_TYPE;
use serde_json::Value;

use crate::action::{HttpRequest, RequestBody};
use crate::recipe::{BodyTemplate, HttpTemplate};
use crate::template::{TemplateError, Templates};

/// Renders an `http` step. `idempotency_key` is stable for the step of the run, so
/// that a retry or a re-run after a crash is recognisable by the destination.
pub(super) fn http_request(
    templates: &Templates,
    step: &HttpTemplate,
    context: &Value,
    idempotency_key: &str,
) -> Result<HttpRequest, TemplateError> {
    let mut url = templates.render_text(&step.url, context)?;
    if !step.query.is_empty() {
        let mut parsed = reqwest::Url::parse(&url).map_err(|error| {
            TemplateError::Render(format!("`url` rendered to `{url}`, which is not a valid URL: {error}"))
        })?;
        {
            let mut pairs = parsed.query_pairs_mut();
            for (name, value) in &step.query {
                pairs.append_pair(name, &templates.render_text(value, context)?);
            }
        }
        url = parsed.into();
    }

    let mut headers = Vec::with_capacity(step.headers.len() + 2);
    for (name, value) in &step.headers {
        headers.push((name.to_ascii_lowercase(), templates.render_text(value, context)?));
    }
    let has_header = |headers: &[(String, String)], wanted: &str| headers.iter().any(|(name, _)| name == wanted);

    let body = match &step.body {
        Some(BodyTemplate::Json(tree)) => {
            if !has_header(&headers, CONTENT_TYPE.as_str()) {
                headers.push((CONTENT_TYPE.as_str().to_owned(), "application/json".to_owned()));
            }
            Some(RequestBody::Json(templates.render_tree(tree, context)?))
        }
        Some(BodyTemplate::Text(template)) => {
            if !has_header(&headers, CONTENT_TYPE.as_str()) {
                headers.push((CONTENT_TYPE.as_str().to_owned(), "text/plain; charset=utf-8".to_owned()));
            }
            Some(RequestBody::Text(templates.render_text(template, context)?))
        }
        None => None,
    };
    if step.method != reqwest::Method::GET && !has_header(&headers, "idempotency-key") {
        headers.push(("idempotency-key".to_owned(), idempotency_key.to_owned()));
    }

    Ok(HttpRequest {
        method: step.method.clone(),
        url,
        headers,
        body,
        accept: step.accept.clone(),
    })
}
