//! The OpenAPI 3.1 document, generated from the handlers' annotations so that it
//! documents exactly the routes this build has, and the interactive docs page
//! (Swagger UI, vendored into the binary: no CDN, no download at build time).

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::{Config, SwaggerUi};

use super::{health, hooks, manual_runs, metrics, recipes, replay, runs};

#[derive(OpenApi)]
#[openapi(
    info(title = "Ferry", description = "Webhooks in, HTTP calls out, every run recorded."),
    paths(
        hooks::receive,
        health::health,
        recipes::list,
        recipes::show,
        manual_runs::start,
        metrics::render,
        runs::list,
        runs::show,
        replay::replay_run,
        replay::replay_recipe,
    ),
    modifiers(&BearerScheme),
    tags(
        (name = "webhooks", description = "Trigger recipes"),
        (name = "runs", description = "Run history"),
        (name = "recipes", description = "Loaded recipes"),
        (name = "daemon", description = "The daemon itself"),
    )
)]
struct ApiDoc;

/// Declares the bearer scheme, so that "Authorize" in the docs page works.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Where the document is served.
const DOCUMENT_PATH: &str = "/api/v1/openapi.json";

/// The docs page at `/api/docs/`, and the document it shows.
pub(super) fn docs<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::from(SwaggerUi::new("/api/docs").config(Config::from(DOCUMENT_PATH))).route(DOCUMENT_PATH, get(document))
}

/// `GET /api/v1/openapi.json`, built when asked for rather than held from the
/// start: few daemons are ever asked, and every one would carry it idle.
async fn document() -> Json<utoipa::openapi::OpenApi> {
    let mut document = ApiDoc::openapi();
    document.info.version = env!("CARGO_PKG_VERSION").to_owned();
    Json(document)
}
