//! `GET /metrics`: Prometheus text, through the `metrics` facade and its
//! Prometheus exporter (no listener of its own: axum serves the text).
//!
//! The facade's recorder is global to the process, so it is installed once and
//! every daemon of the process (tests start several) shares it.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::{AppState, Problem};

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder if no other is, and gives its handle.
pub fn recorder() -> Option<&'static PrometheusHandle> {
    RECORDER
        .get_or_init(|| {
            match PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("ferry_step_duration_seconds".to_owned()),
                    crate::observe::STEP_DURATION_BUCKETS,
                )
                .and_then(PrometheusBuilder::install_recorder)
            {
                Ok(handle) => Some(handle),
                Err(error) => {
                    tracing::warn!(%error, "metrics are not recorded");
                    None
                }
            }
        })
        .as_ref()
}

/// What happened to one request to `/hooks/*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HookOutcome(pub &'static str);

/// Counts a webhook request by its outcome.
pub fn count_hook(outcome: HookOutcome) {
    crate::observe::hook(outcome.0);
}

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
        Ok(stats) => crate::observe::queue(stats.queued, stats.retrying, stats.oldest_queued_age),
        Err(error) => tracing::warn!(%error, "cannot read the queue for /metrics"),
    }
    match recorder() {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
            handle.render(),
        )
            .into_response(),
        None => Problem::internal("metrics are not recorded in this process").into_response(),
    }
}
