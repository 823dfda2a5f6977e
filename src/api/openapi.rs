//! The OpenAPI 3.1 document, generated from the handlers' annotations so that it
//! documents exactly the routes this build has, and the interactive docs page
//! (Swagger UI, vendored into the binary: no CDN, no download at build time).

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::routing::get;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::{Config, SwaggerUi};

use super::hooks;

/// What the document says besides its routes, which the router adds.
#[derive(OpenApi)]
#[openapi(
    info(title = "Ferry", description = "Webhooks in, HTTP calls out, every run recorded."),
    modifiers(&BearerScheme),
    // Named only by a query parameter, which does not register its schema.
    components(schemas(super::cancel::UnfinishedStatus)),
    tags(
        (name = "webhooks", description = "Trigger recipes"),
        (name = "runs", description = "Run history"),
        (name = "recipes", description = "Loaded recipes"),
        (name = "daemon", description = "The daemon itself"),
    )
)]
struct ApiDoc;

/// The webhook door, registered as a wildcard route (see `api::router`).
#[derive(OpenApi)]
#[openapi(paths(hooks::receive))]
struct HooksDoc;

/// The document's frame: title, tags, the bearer scheme, this build's version.
pub(super) fn base() -> utoipa::openapi::OpenApi {
    let mut document = ApiDoc::openapi();
    document.info.version = env!("CARGO_PKG_VERSION").to_owned();
    document
}

/// The document with the webhook door in it.
pub(super) fn with_hooks(mut document: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    document.merge(HooksDoc::openapi());
    document
}

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

/// The docs page at `/api/docs/`, and the document it shows, serialised once
/// (a few tens of kilobytes).
pub(super) fn docs<S: Clone + Send + Sync + 'static>(document: utoipa::openapi::OpenApi) -> Router<S> {
    let text: Arc<str> = serde_json::to_string(&document).unwrap_or_default().into();
    let serve = move || {
        let text = Arc::clone(&text);
        async move { ([(header::CONTENT_TYPE, "application/json")], text.to_string()) }
    };
    Router::from(SwaggerUi::new("/api/docs").config(Config::from(DOCUMENT_PATH))).route(DOCUMENT_PATH, get(serve))
}
