//! The HTTP surface: `/hooks/*` and `/api/v1/*`. Handlers are thin: they extract,
//! call the store or the engine, and map the result; errors become
//! [`Problem`]s.

mod auth;
mod body_memory;
pub mod connections;
mod health;
mod hooks;
mod manual_runs;
pub mod metrics;
mod openapi;
mod pages;
mod problem;
mod rate_limit;
mod recipes;
mod replay;
mod runs;
pub mod server;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};

use crate::engine::{Completions, Engine};
use crate::recipe::LiveRecipes;
use crate::store::Store;
use crate::template::Templates;

pub use auth::ApiTokens;
pub use body_memory::{BodyMemory, DEFAULT_BODY_MEMORY};
pub use problem::{Problem, ProblemDocument};
pub use rate_limit::{
    DEFAULT_HOOK_FAIL_RATE, DEFAULT_HOOK_RATE, HookLimitSettings, HookLimits, RateSetting, Scope, Throttled,
    parse_rate_setting,
};

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub recipes: LiveRecipes,
    /// Where new runs go: started at once when there is room, queued otherwise.
    pub engine: Arc<Engine>,
    /// This daemon's base URL.
    pub public_url: String,
    /// `None`: the API is open.
    pub tokens: Option<ApiTokens>,
    /// False once a shutdown has begun: webhooks are then refused with 503.
    pub accepting: Arc<AtomicBool>,
    /// Webhooks being stored at once, at most: when the store falls behind, more
    /// are refused with 503 and Retry-After instead of piling up in memory.
    pub pending: Arc<tokio::sync::Semaphore>,
    /// The handlebars registry (the engine shares it).
    pub templates: Arc<Templates>,
    /// Where `respond: wait` webhooks learn that their run ended.
    pub completions: Completions,
    /// Rate limits of `/hooks/*`.
    pub limits: Arc<HookLimits>,
    /// The largest webhook body, in bytes.
    pub max_body: usize,
    /// The memory webhook bodies may hold at once.
    pub body_memory: BodyMemory,
    /// Callers' headers stored as `[redacted]` beyond the built-in list
    /// (`FERRY_REDACT_HEADERS`), lower-cased.
    pub redact_headers: Arc<[String]>,
    /// This daemon's metrics (`GET /metrics`).
    pub metrics: crate::observe::Metrics,
}

impl AppState {
    /// `503` once a shutdown has begun: nothing new is started then.
    fn refuse_when_stopping(&self) -> Result<(), Problem> {
        if self.accepting.load(std::sync::atomic::Ordering::SeqCst) {
            Ok(())
        } else {
            Err(Problem::unavailable("the daemon is shutting down", 5))
        }
    }

    /// Stores an event as a run and starts it (or queues it); gives the run id.
    async fn start_run(&self, event: crate::event::Event) -> Result<String, Problem> {
        match self.engine.accept(event).await? {
            crate::store::Enqueued::New(run_id) | crate::store::Enqueued::Duplicate(run_id) => Ok(run_id),
        }
    }
}

/// Every route of the daemon.
pub fn router(state: AppState) -> Router {
    let protected = Router::new()
        .route("/api/v1/recipes", get(recipes::list).fallback(method_not_allowed))
        .route("/api/v1/recipes/{id}", get(recipes::show).fallback(method_not_allowed))
        .route(
            "/api/v1/recipes/{id}/runs",
            post(manual_runs::start).fallback(method_not_allowed),
        )
        .route("/api/v1/runs", get(runs::list).fallback(method_not_allowed))
        .route("/api/v1/runs/{id}", get(runs::show).fallback(method_not_allowed))
        .route(
            "/api/v1/runs/{id}/replay",
            post(replay::replay_run).fallback(method_not_allowed),
        )
        .route(
            "/api/v1/recipes/{id}/replay",
            post(replay::replay_recipe).fallback(method_not_allowed),
        )
        .route("/metrics", get(metrics::render).fallback(method_not_allowed))
        .route_layer(axum::middleware::from_fn_with_state(
            state.tokens.clone(),
            auth::require_token,
        ));
    Router::new()
        .route(
            "/hooks/{*path}",
            // The handler reads the body itself, within FERRY_MAX_BODY and a time limit.
            post(hooks::receive).fallback(method_not_allowed),
        )
        .route("/api/v1/health", get(health::health).fallback(method_not_allowed))
        .route("/", get(pages::index).fallback(method_not_allowed))
        .route("/runs/{id}", get(pages::run).fallback(method_not_allowed))
        .route("/runs/{id}/replay", post(pages::replay).fallback(method_not_allowed))
        .route(
            "/login",
            get(pages::login_form).post(pages::login).fallback(method_not_allowed),
        )
        .merge(protected)
        .merge(openapi::docs())
        .fallback(not_found)
        .with_state(state)
}

async fn not_found(request: Request) -> Problem {
    Problem::not_found(format!("there is no route {}", request.uri().path()))
}

/// The `Allow` header comes from the route: axum adds it to the 405 it would send,
/// but a route-level fallback replaces that answer, so it is computed here.
async fn method_not_allowed(request: Request) -> impl IntoResponse {
    let path = request.uri().path();
    let takes_posts = path.starts_with("/hooks/")
        || (path.starts_with("/api/v1/recipes/") && (path.ends_with("/runs") || path.ends_with("/replay")))
        || (path.starts_with("/api/v1/runs/") && path.ends_with("/replay"));
    let takes_posts = takes_posts || (path.starts_with("/runs/") && path.ends_with("/replay"));
    let allow = match path {
        "/login" => "GET, HEAD, POST",
        _ if takes_posts => "POST",
        _ => "GET, HEAD",
    };
    (
        [(header::ALLOW, allow)],
        Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{} is not allowed on {path}; use {allow}", request.method()),
        ),
    )
}
