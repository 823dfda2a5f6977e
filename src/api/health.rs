//! `GET /api/v1/health`.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;

/// Whether the daemon and its database answer.
#[derive(Serialize, ToSchema)]
pub(super) struct Health {
    /// Always `ok` when the daemon answers.
    status: &'static str,
    version: &'static str,
    /// Recipes loaded.
    recipes: usize,
    /// `ok`, or `error: …`.
    database: String,
}

#[utoipa::path(get, path = "/api/v1/health", tag = "daemon",
    responses((status = 200, description = "The daemon answers", body = Health)))]
pub(super) async fn health(State(state): State<AppState>) -> Json<Health> {
    let database = match state.store.ping().await {
        Ok(()) => "ok".to_owned(),
        Err(error) => format!("error: {error}"),
    };
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        recipes: state.recipes.current().len(),
        database,
    })
}
