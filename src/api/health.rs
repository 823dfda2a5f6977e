//! `GET /api/v1/health`.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::AppState;

pub(super) async fn health(State(state): State<AppState>) -> Json<Value> {
    let database = match state.store.ping().await {
        Ok(()) => "ok".to_owned(),
        Err(error) => format!("error: {error}"),
    };
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "recipes": state.recipes.current().len(),
        "database": database,
    }))
}
