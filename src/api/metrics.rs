//! `GET /metrics`: Prometheus text of this daemon's metrics (see `observe`),
//! served by axum (the exporter has no listener of its own here).

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::AppState;

/// What happened to one request to `/hooks/*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HookOutcome(pub &'static str);

/// The outcome of a hook answer, from its status unless the handler marked it.
pub fn hook_outcome(response: &Response) -> HookOutcome {
    if let Some(marked) = response.extensions().get::<HookOutcome>() {
        return *marked;
    }
    HookOutcome(match response.status().as_u16() {
        202 => "accepted",
        401 => "unauthorized",
        404 => "not_found",
        408 => "timeout",
        413 => "too_large",
        429 => "rate_limited",
        503 => "unavailable",
        400..=499 => "bad_request",
        _ => "answered",
    })
}

#[utoipa::path(get, path = "/metrics", tag = "daemon",
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain"),
        (status = 401, description = "Missing or wrong token", body = super::ProblemDocument, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(super) async fn render(State(state): State<AppState>) -> Response {
    // The queue's gauges are read from the store at each scrape.
    match state.store.queue_stats().await {
        Ok(stats) => state.metrics.queue(crate::observe::Queue {
            queued: stats.queued,
            retrying: stats.retrying,
            waiting: stats.waiting,
            oldest_queued_age: stats.oldest_queued_age,
        }),
        Err(error) => tracing::warn!(%error, "cannot read the queue for /metrics"),
    }
    let free = crate::store::space::free_space(state.store.file()).map(|(free, _)| free);
    state.metrics.storage(free, state.store.write_refusals());
    state.metrics.body_bytes_held(state.body_memory.held());
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(),
    )
        .into_response()
}
