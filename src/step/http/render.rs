//! Rendering a step's templates into the concrete request an action executes.

use base64::Engine as _;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde_json::Value;

use super::{AuthTemplate, BodyTemplate, HttpTemplate};
use crate::action::{HttpRequest, JsonBody, RequestBody};
use crate::template::{TemplateError, Templates};

/// Renders an `http` step. `idempotency_key` is stable for the step of the run, so
/// that a retry or a re-run after a crash is recognisable by the destination.
/// All its templates are one render: they share one budget.
pub fn http_request(
    templates: &Templates,
    step: &HttpTemplate,
    context: &Value,
    idempotency_key: &str,
) -> Result<HttpRequest, TemplateError> {
    templates.budgeted(|| render_request(templates, step, context, idempotency_key))
}

fn render_request(
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
            Some(RequestBody::Json(JsonBody::new(templates.render_tree(tree, context)?)))
        }
        Some(BodyTemplate::Form(fields)) => {
            if !has_header(&headers, CONTENT_TYPE.as_str()) {
                headers.push((
                    CONTENT_TYPE.as_str().to_owned(),
                    "application/x-www-form-urlencoded".to_owned(),
                ));
            }
            let mut form = form_urlencoded::Serializer::new(String::new());
            for (name, value) in fields {
                form.append_pair(name, &templates.render_text(value, context)?);
            }
            Some(RequestBody::Text(form.finish()))
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

    let mut request = HttpRequest {
        method: step.method.clone(),
        url,
        parsed_url: step.fixed_url.clone(),
        headers,
        body,
        accept: step.accept.clone(),
        credential_headers: Vec::new(),
    };
    add_auth(templates, step, context, &mut request)?;
    Ok(request)
}

/// Adds the `Authorization` header of `auth:`. Rendered at every attempt rather
/// than stored: credentials never reach the store.
pub fn add_auth(
    templates: &Templates,
    step: &HttpTemplate,
    context: &Value,
    request: &mut HttpRequest,
) -> Result<(), TemplateError> {
    let Some(auth) = &step.auth else {
        return Ok(());
    };
    let value = match auth {
        AuthTemplate::Bearer(token) => format!("Bearer {}", templates.render_text(token, context)?),
        AuthTemplate::Basic { username, password } => {
            let pair = format!(
                "{}:{}",
                templates.render_text(username, context)?,
                templates.render_text(password, context)?
            );
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
        }
    };
    let name = AUTHORIZATION.as_str().to_owned();
    request.headers.retain(|(header, _)| *header != name);
    request.headers.push((name.clone(), value));
    request.credential_headers.push(name);
    Ok(())
}
