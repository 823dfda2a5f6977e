//! Cancels: `POST /api/v1/runs/{id}/cancel` ends a run that has not ended as
//! `cancelled` — a queued, retrying or waiting one at once; a running one when
//! the attempt in flight ends (recorded), no further attempt starting.
//! `POST /api/v1/recipes/{id}/cancel` does so for a recipe's unfinished runs.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::{AppState, Problem, ProblemDocument};
use crate::store::{Cancelled, RunStatus};

/// Most runs one bulk cancel ends; call again for more.
const MAX_BULK: usize = 1000;

/// The answer to a cancel.
#[derive(Serialize, ToSchema)]
pub(super) struct CancelledRun {
    run_id: String,
    /// Always `cancelled`.
    status: RunStatus,
    /// What it was before: `queued`, `running`, `retrying` or `waiting`.
    was: RunStatus,
}

/// The statuses a run can be cancelled in (the `status` a bulk cancel takes).
#[derive(Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum UnfinishedStatus {
    Queued,
    Running,
    Retrying,
    Waiting,
}

impl UnfinishedStatus {
    const ALL: [UnfinishedStatus; 4] = [
        UnfinishedStatus::Queued,
        UnfinishedStatus::Running,
        UnfinishedStatus::Retrying,
        UnfinishedStatus::Waiting,
    ];
}

impl From<UnfinishedStatus> for RunStatus {
    fn from(status: UnfinishedStatus) -> Self {
        match status {
            UnfinishedStatus::Queued => RunStatus::Queued,
            UnfinishedStatus::Running => RunStatus::Running,
            UnfinishedStatus::Retrying => RunStatus::Retrying,
            UnfinishedStatus::Waiting => RunStatus::Waiting,
        }
    }
}

/// The answer to a bulk cancel.
#[derive(Serialize, ToSchema)]
pub(super) struct BulkCancelled {
    /// The runs cancelled, newest first.
    run_ids: Vec<String>,
    /// `true` when more runs matched than one request cancels (1000).
    truncated: bool,
}

#[utoipa::path(post, path = "/api/v1/runs/{id}/cancel", tag = "runs",
    params(("id" = String, Path, description = "The run to cancel")),
    responses(
        (status = 200, description = "The run is `cancelled`; a running one starts no further attempt", body = CancelledRun),
        (status = 401, description = "Missing or wrong token", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, description = "A read-only token", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "No such run", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "The run has ended", body = ProblemDocument, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(super) async fn cancel_run(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<CancelledRun>, Problem> {
    cancel_one(&state, &id).await.map(Json)
}

/// Cancels run `id`, or says why it cannot be.
pub(super) async fn cancel_one(state: &AppState, id: &str) -> Result<CancelledRun, Problem> {
    match state.engine.cancel(id).await? {
        Some(Cancelled::Was(was)) => Ok(CancelledRun {
            run_id: id.to_owned(),
            status: RunStatus::Cancelled,
            was,
        }),
        Some(Cancelled::Ended(status)) => Err(Problem::new(
            StatusCode::CONFLICT,
            format!(
                "run `{id}` has ended ({status}); only a queued, running, retrying or waiting run can be cancelled"
            ),
        )),
        None => Err(Problem::not_found(format!("there is no run `{id}`"))),
    }
}

#[utoipa::path(post, path = "/api/v1/recipes/{id}/cancel", tag = "recipes",
    params(
        ("id" = String, Path, description = "Recipe id (loaded or not)"),
        ("status" = Option<UnfinishedStatus>, Query, description = "Which runs: `queued`, `running`, `retrying` or `waiting` (default: all four)"),
        ("since" = Option<String>, Query, format = DateTime, description = "Received at or after (RFC 3339)"),
        ("until" = Option<String>, Query, format = DateTime, description = "Received before (RFC 3339)"),
    ),
    responses(
        (status = 200, description = "The runs cancelled (at most 1000)", body = BulkCancelled),
        (status = 400, description = "A bad filter, or a status that has ended", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong token", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, description = "A read-only token", body = ProblemDocument, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(super) async fn cancel_recipe(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<BulkCancelled>, Problem> {
    let mut filter = super::runs::parse_filter(query.as_deref())?;
    if filter.recipe.as_ref().is_some_and(|recipe| *recipe != id) {
        return Err(Problem::bad_request("`recipe` is given by the path"));
    }
    let statuses = match filter.status {
        Some(status) if status.is_final() => {
            return Err(Problem::bad_request(format!(
                "`status={status}` has ended; cancel `queued`, `running`, `retrying` or `waiting` runs"
            )));
        }
        Some(status) => vec![status],
        None => UnfinishedStatus::ALL.map(RunStatus::from).to_vec(),
    };
    filter.recipe = Some(id);
    filter.limit = 500;
    let mut run_ids = Vec::new();
    let mut truncated = false;
    'statuses: for status in statuses {
        let mut filter = filter.clone();
        filter.status = Some(status);
        loop {
            let page = state.store.runs_page(&filter).await?;
            let full = page.len() == filter.limit as usize;
            filter.before = page.last().map(|run| run.id.clone());
            for run in page {
                if run_ids.len() == MAX_BULK {
                    truncated = true;
                    break 'statuses;
                }
                if let Some(Cancelled::Was(_)) = state.engine.cancel(&run.id).await? {
                    run_ids.push(run.id);
                }
            }
            if !full {
                break;
            }
        }
    }
    Ok(Json(BulkCancelled { run_ids, truncated }))
}
