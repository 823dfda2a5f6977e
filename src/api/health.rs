//! `GET /api/v1/health`: `200` while the database answers and takes writes,
//! `503` when it does not (a load balancer or systemd watchdog then knows this
//! instance cannot take webhooks). While writes fail (a full disk), each request
//! tries a write of a webhook's size once the last refusal is a few seconds old,
//! so that health turns back as soon as writes work.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use crate::store::QueueStats;

/// Whether the daemon and its database answer.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Health {
    /// `ok`, or `unavailable` when the database does not answer or refuses writes.
    status: &'static str,
    version: &'static str,
    /// Recipes loaded.
    recipes: usize,
    /// `ok`, or `error: …`.
    database: String,
    /// Runs waiting; `null` when the database does not answer.
    queue: Option<QueueDocument>,
}

/// The queue at the moment of the request.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct QueueDocument {
    /// Runs queued to start.
    queued: u64,
    /// Runs waiting for their next attempt.
    retrying: u64,
    /// Runs a `delay` step holds until its time.
    waiting: u64,
    /// How long the oldest queued run has waited, in seconds (0 with none).
    oldest_queued_seconds: f64,
}

#[utoipa::path(get, path = "/api/v1/health", tag = "daemon",
    responses(
        (status = 200, description = "The daemon and its database answer", body = Health),
        (status = 503, description = "The database does not answer, or refuses writes", body = Health),
    ))]
pub(super) async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let database = match state.store.ping().await {
        Ok(()) => match state.store.write_failure().await {
            Some(why) => Err(format!("writes fail: {why}")),
            None => Ok(()),
        },
        Err(error) => Err(error.to_string()),
    };
    let database = match database {
        Ok(()) => state.store.queue_stats().await.map_err(|error| error.to_string()),
        Err(error) => Err(error),
    };
    answer(database, state.recipes.current().len())
}

fn answer(database: Result<QueueStats, String>, recipes: usize) -> (StatusCode, Json<Health>) {
    let (code, status, database, queue) = match database {
        Ok(stats) => (
            StatusCode::OK,
            "ok",
            "ok".to_owned(),
            Some(QueueDocument {
                queued: stats.queued,
                retrying: stats.retrying,
                waiting: stats.waiting,
                oldest_queued_seconds: stats.oldest_queued_age.map_or(0.0, |age| age.as_secs_f64()),
            }),
        ),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("error: {error}"),
            None,
        ),
    };
    let health = Health {
        status,
        version: env!("CARGO_PKG_VERSION"),
        recipes,
        database,
        queue,
    };
    (code, Json(health))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_database_is_503_and_says_why() {
        let (code, Json(health)) = answer(Err("unable to open database file".to_owned()), 3);
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(health.status, "unavailable");
        assert_eq!(health.database, "error: unable to open database file");
        assert!(health.queue.is_none());
    }

    #[test]
    fn a_reachable_database_shows_the_queue() {
        let stats = QueueStats {
            queued: 2,
            retrying: 1,
            waiting: 4,
            oldest_queued_age: Some(std::time::Duration::from_millis(1500)),
        };
        let (code, Json(health)) = answer(Ok(stats), 3);
        assert_eq!(code, StatusCode::OK);
        let queue = health.queue.expect("queue");
        assert_eq!(
            (queue.queued, queue.retrying, queue.waiting, queue.oldest_queued_seconds),
            (2, 1, 4, 1.5)
        );
    }
}
