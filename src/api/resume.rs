//! Resume in place: `POST /api/v1/runs/{id}/resume` queues a failed (or timed
//! out) or cancelled run again, to go on from the step that did not finish. The
//! steps that ended keep their results and are not sent again; the unfinished
//! one is sent with its own `Idempotency-Key` (its stored request when it had
//! one). Replay, by contrast, starts a new run with the same input.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::{AppState, Problem, ProblemDocument};
use crate::store::{Reopened, RunStatus};

/// The answer to a resume.
#[derive(Serialize, ToSchema)]
pub(super) struct ResumedRun {
    run_id: String,
    /// Always `queued`: it goes on when there is room.
    status: RunStatus,
    /// What it was: `failed` or `cancelled`.
    was: RunStatus,
}

#[utoipa::path(post, path = "/api/v1/runs/{id}/resume", tag = "runs",
    params(("id" = String, Path, description = "The run to go on with")),
    responses(
        (status = 202, description = "The run is queued again and goes on from the step that did not finish", body = ResumedRun),
        (status = 401, description = "Missing or wrong token", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, description = "A read-only token", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "No such run", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "The run did not fail and was not cancelled", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 503, description = "Shutting down: try again after Retry-After", body = ProblemDocument, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(super) async fn resume_run(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<ResumedRun>), Problem> {
    resume_one(&state, &id)
        .await
        .map(|resumed| (StatusCode::ACCEPTED, Json(resumed)))
}

/// Queues run `id` again in place, or says why it cannot be.
pub(super) async fn resume_one(state: &AppState, id: &str) -> Result<ResumedRun, Problem> {
    state.refuse_when_stopping()?;
    match state.engine.resume(id).await? {
        Some(Reopened::Was(was)) => Ok(ResumedRun {
            run_id: id.to_owned(),
            status: RunStatus::Queued,
            was,
        }),
        Some(Reopened::Not(status)) => Err(Problem::new(
            StatusCode::CONFLICT,
            format!("run `{id}` is {status}; only a failed or cancelled run resumes (replay starts any run again)"),
        )),
        None => Err(Problem::not_found(format!("there is no run `{id}`"))),
    }
}
