//! The HTTP surface: `/hooks/*` and `/api/v1/*`. Handlers are thin: they extract,
//! call the store or the engine, and map the result; errors become
//! [`Problem`]s.

mod auth;
mod body_memory;
mod cancel;
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
mod resume;
mod runs;
pub mod server;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::routing::{get, post};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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
    // Each documented route is registered from its handler's own annotation
    // (`routes!` reads the method and path of `#[utoipa::path]`): the document
    // and the router are made from one list and cannot drift apart.
    let protected = OpenApiRouter::new()
        .routes(routes!(recipes::list))
        .routes(routes!(recipes::show))
        .routes(routes!(manual_runs::start))
        .routes(routes!(runs::list))
        .routes(routes!(runs::show))
        .routes(routes!(replay::replay_run))
        .routes(routes!(replay::replay_recipe))
        .routes(routes!(cancel::cancel_run))
        .routes(routes!(cancel::cancel_recipe))
        .routes(routes!(resume::resume_run))
        .routes(routes!(metrics::render))
        .route_layer(axum::middleware::from_fn_with_state(
            state.tokens.clone(),
            auth::require_token,
        ));
    let (api, document) = OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(health::health))
        .merge(protected)
        .split_for_parts();
    Router::new()
        // A webhook path may hold `/`: the route is a wildcard, which the
        // document cannot express, so it is documented as `/hooks/{path}` by
        // `openapi::hooks` beside this registration. The handler reads the body
        // itself, within FERRY_MAX_BODY and a time limit.
        .route("/hooks/{*path}", post(hooks::receive))
        .route("/", get(pages::index))
        .route("/runs/{id}", get(pages::run))
        .route("/runs/{id}/replay", post(pages::replay))
        .route("/runs/{id}/cancel", post(pages::cancel))
        .route("/runs/{id}/resume", post(pages::resume))
        .route("/login", get(pages::login_form).post(pages::login))
        .merge(api)
        .merge(openapi::docs(openapi::with_hooks(document)))
        // After every route: axum adds the `Allow` header of the route to it.
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .with_state(state)
}

async fn not_found(request: Request) -> Problem {
    Problem::not_found(format!("there is no route {}", request.uri().path()))
}

/// A route that does not take this method: axum adds the route's `Allow` header.
async fn method_not_allowed(request: Request) -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "{} is not allowed on {}; the Allow header says which methods are",
            request.method(),
            request.uri().path()
        ),
    )
}
