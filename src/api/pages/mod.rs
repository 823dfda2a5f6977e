//! The status page: server-rendered HTML, no JavaScript and no CDN. `/` lists
//! the recipes and recent runs (filterable by recipe and status), `/runs/{id}`
//! shows a run's steps and attempts with a replay button. With API tokens set,
//! a login form keeps the token in an `HttpOnly`, `SameSite=Strict` cookie.

use std::sync::OnceLock;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::Utc;
use handlebars::Handlebars;
use serde_json::{Value, json};

use super::AppState;
use super::auth::Access;
use crate::store::{RunFilter, RunStatus};

const COOKIE: &str = "ferry_token";

/// The page templates; handlebars' HTML escaping stays on here (unlike recipes).
fn templates() -> &'static Handlebars<'static> {
    static TEMPLATES: OnceLock<Handlebars<'static>> = OnceLock::new();
    TEMPLATES.get_or_init(|| {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(false);
        for (name, source) in [
            ("layout", include_str!("layout.hbs")),
            ("index", include_str!("index.hbs")),
            ("run", include_str!("run.hbs")),
            // Partials of `run`: one step (of the run or of `on_failure`), one
            // attempt (of a step or of a loop's element).
            ("step", include_str!("step.hbs")),
            ("attempt", include_str!("attempt.hbs")),
            ("login", include_str!("login.hbs")),
        ] {
            if let Err(error) = registry.register_template_string(name, source) {
                tracing::error!(%error, template = name, "a status page template does not compile");
            }
        }
        registry
    })
}

fn page(status: StatusCode, title: &str, template: &str, data: &Value) -> Response {
    let registry = templates();
    let body = match registry.render(template, data) {
        Ok(body) => body,
        Err(error) => {
            tracing::error!(%error, template, "rendering the status page");
            return (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be rendered").into_response();
        }
    };
    let layout = json!({"title": title, "body": body, "version": env!("CARGO_PKG_VERSION")});
    match registry.render("layout", &layout) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(error) => {
            tracing::error!(%error, "rendering the status page layout");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be rendered").into_response()
        }
    }
}

/// What the visitor may do: everything when the API is open; else what the
/// token in their cookie allows (`None`: they must sign in).
fn access(state: &AppState, headers: &HeaderMap) -> Option<Access> {
    let Some(tokens) = &state.tokens else {
        return Some(Access::Full);
    };
    let token = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(COOKIE).and_then(|rest| rest.strip_prefix('=')));
    token.and_then(|token| tokens.access(token))
}

fn sign_in() -> Response {
    Redirect::to("/login").into_response()
}

/// `GET /`.
pub(super) async fn index(State(state): State<AppState>, RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    if access(&state, &headers).is_none() {
        return sign_in();
    }
    let mut recipe_filter = None;
    let mut status_filter = None;
    let mut recipes_after = None;
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match name.as_ref() {
            "recipe" if !value.is_empty() => recipe_filter = Some(value.into_owned()),
            "status" if !value.is_empty() => status_filter = value.parse::<RunStatus>().ok(),
            "recipes_after" if !value.is_empty() => recipes_after = Some(value.into_owned()),
            _ => {}
        }
    }
    let recipes = state.recipes.current();
    let mut listing = recipes.listing();
    let every_recipe = listing.len();
    // A page of recipes, so that 10 000 of them cost what 100 do.
    if let Some(after) = &recipes_after {
        listing.retain(|entry| entry.id > *after);
    }
    let more_recipes = (listing.len() > RECIPES_PER_PAGE).then(|| {
        let last = &listing[RECIPES_PER_PAGE - 1].id;
        let mut link = form_urlencoded::Serializer::new(String::new());
        link.append_pair("recipes_after", last);
        if let Some(recipe) = &recipe_filter {
            link.append_pair("recipe", recipe);
        }
        if let Some(status) = status_filter {
            link.append_pair("status", status.as_str());
        }
        format!("/?{}", link.finish())
    });
    listing.truncate(RECIPES_PER_PAGE);
    let ids: Vec<&str> = listing.iter().map(|entry| entry.id.as_str()).collect();
    let mut last_runs = state.store.last_runs(&ids).await.unwrap_or_default();
    let listed: Vec<Value> = listing
        .into_iter()
        .map(|entry| {
            let next_fire = entry
                .recipe
                .and_then(|recipe| recipe.trigger.schedule())
                .and_then(|schedule| schedule.next_fires(Utc::now(), 1).into_iter().next())
                .map(|time| time.to_rfc3339());
            json!({
                "id": entry.id,
                "kind": entry.recipe.map(|recipe| recipe.trigger.kind()),
                "enabled": entry.recipe.is_some_and(|recipe| recipe.enabled),
                "last_run": last_runs.remove(&entry.id),
                "next_fire": next_fire,
                "error": entry.error(),
            })
        })
        .collect();
    let filter = RunFilter {
        recipe: recipe_filter.clone(),
        status: status_filter,
        limit: 50,
        ..RunFilter::default()
    };
    let runs = match state.store.runs_page(&filter).await {
        Ok(runs) => runs,
        Err(error) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the database does not answer: {error}"),
            )
                .into_response();
        }
    };
    // Every recipe is an option while they fit one page; beyond, the filter is
    // a text field.
    let recipe_options: Vec<Value> = if every_recipe <= RECIPES_PER_PAGE {
        listed
            .iter()
            .map(|recipe| json!({"value": recipe["id"], "selected": recipe_filter.as_deref() == recipe["id"].as_str()}))
            .collect()
    } else {
        Vec::new()
    };
    let status_options: Vec<Value> = RunStatus::ALL
        .iter()
        .map(|status| json!({"value": status.as_str(), "selected": Some(*status) == status_filter}))
        .collect();
    let data = json!({
        "recipes": listed,
        "more_recipes": more_recipes,
        "recipe_select": every_recipe <= RECIPES_PER_PAGE,
        "recipe_filter": recipe_filter,
        "runs": runs,
        "recipe_options": recipe_options,
        "status_options": status_options,
    });
    page(StatusCode::OK, "Status", "index", &data)
}

/// Recipes on one status page.
const RECIPES_PER_PAGE: usize = 100;

/// `GET /runs/{id}`.
pub(super) async fn run(State(state): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if access(&state, &headers).is_none() {
        return sign_in();
    }
    let run = match state.store.run(&id).await {
        Ok(Some(run)) => run,
        Ok(None) => return (StatusCode::NOT_FOUND, Html(format!("no run {}", escape(&id)))).into_response(),
        Err(error) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the database does not answer: {error}"),
            )
                .into_response();
        }
    };
    // The trigger input is redacted with the recipe's secrets, as the API does.
    let redact = |value: &Value| match state.recipes.current().get(&run.summary.recipe) {
        Some(recipe) => recipe.redactor.value(value),
        None => value.clone(),
    };
    let attempts = |kind: crate::step::KindName, attempts: &[crate::store::AttemptRecord]| -> Vec<Value> {
        attempts
            .iter()
            .map(|attempt| {
                let request = &attempt.request;
                json!({
                    "n": attempt.n,
                    "started_at": attempt.started_at,
                    "duration_ms": attempt.duration_ms,
                    "request_line": kind.view(request).line,
                    "request_headers": pretty(&request["headers"]),
                    "request_body": pretty(&request["body"]),
                    "response_status": attempt.response.as_ref().map(|response| response["status"].clone()),
                    "response_body": attempt.response.as_ref().map(|response| pretty(&response["body"])),
                    "error": attempt.error,
                })
            })
            .collect()
    };
    let view = |step: &crate::store::StepDocument| {
        let items: Vec<Value> = step
            .items
            .iter()
            .flatten()
            .map(|element| {
                json!({
                    "index": element.index,
                    "status": element.status.as_str(),
                    "attempts": attempts(step.kind, &element.attempts),
                })
            })
            .collect();
        json!({
            "id": step.id,
            "status": step.status.as_str(),
            "attempts": attempts(step.kind, &step.attempts),
            "items": items,
        })
    };
    let steps: Vec<Value> = run.steps.iter().map(view).collect();
    let on_failure: Vec<Value> = run.on_failure.iter().map(view).collect();
    // A failure trigger's run links to the run it tells of.
    let failed_run = (run.summary.trigger == "failure")
        .then(|| &run.payload["run"])
        .filter(|failed| failed["id"].is_string() && failed["recipe"].is_string());
    let data = json!({
        "failed_run": failed_run,
        "cancellable": !run.summary.status.is_final(),
        "resumable": matches!(run.summary.status, RunStatus::Failed | RunStatus::Cancelled),
        "run": run.summary,
        "payload": pretty(&redact(&run.payload)),
        "steps": steps,
        "on_failure": on_failure,
    });
    page(StatusCode::OK, &format!("Run {id}"), "run", &data)
}

/// `POST /runs/{id}/replay`: then the new run's page.
pub(super) async fn replay(State(state): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Err(refused) = may_change(&state, &headers, "replaying") {
        return *refused;
    }
    match super::replay::replay_one(&state, &id).await {
        Ok(run_id) => Redirect::to(&format!("/runs/{run_id}")).into_response(),
        Err(problem) => problem.into_response(),
    }
}

/// `POST /runs/{id}/cancel`: then the run's page again.
pub(super) async fn cancel(State(state): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Err(refused) = may_change(&state, &headers, "cancelling") {
        return *refused;
    }
    match super::cancel::cancel_one(&state, &id).await {
        Ok(_) => Redirect::to(&format!("/runs/{id}")).into_response(),
        Err(problem) => problem.into_response(),
    }
}

/// `POST /runs/{id}/resume`: then the run's page again.
pub(super) async fn resume(State(state): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Err(refused) = may_change(&state, &headers, "resuming") {
        return *refused;
    }
    match super::resume::resume_one(&state, &id).await {
        Ok(_) => Redirect::to(&format!("/runs/{id}")).into_response(),
        Err(problem) => problem.into_response(),
    }
}

/// Whether the caller may change runs (`doing` names what, for the refusal):
/// a sign-in page without a token, 403 with a read-only one.
fn may_change(state: &AppState, headers: &HeaderMap, doing: &str) -> Result<(), Box<Response>> {
    let refused = match access(state, headers) {
        None => sign_in(),
        Some(Access::Read) => (
            StatusCode::FORBIDDEN,
            Html(format!(
                "this token may only read; {doing} needs one of FERRY_API_TOKENS"
            )),
        )
            .into_response(),
        Some(Access::Full) => return Ok(()),
    };
    Err(Box::new(refused))
}

/// `GET /login`.
pub(super) async fn login_form() -> Response {
    page(StatusCode::OK, "Sign in", "login", &json!({}))
}

/// `POST /login`: a valid token goes into the cookie.
pub(super) async fn login(State(state): State<AppState>, body: axum::body::Bytes) -> Response {
    let token = form_urlencoded::parse(&body)
        .find(|(name, _)| name == "token")
        .map(|(_, value)| value.trim().to_owned())
        .unwrap_or_default();
    let valid = state
        .tokens
        .as_ref()
        .is_none_or(|tokens| tokens.access(&token).is_some());
    if !valid || token.contains([';', ',', ' ']) {
        return page(
            StatusCode::UNAUTHORIZED,
            "Sign in",
            "login",
            &json!({"message": "That token is not valid."}),
        );
    }
    let mut response = Redirect::to("/").into_response();
    if let Ok(cookie) = HeaderValue::from_str(&format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/")) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

fn pretty(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        Value::Object(map) if map.is_empty() => String::new(),
        json => serde_json::to_string_pretty(json).unwrap_or_default(),
    }
}

fn escape(text: &str) -> String {
    handlebars::html_escape(text)
}
