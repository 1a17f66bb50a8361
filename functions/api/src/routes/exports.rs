use axum::Json;
use axum::extract::{Path, State};

use super::progress::owned_job;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::exports::{self, ExportLinks};
use crate::state::{Files, Queue, SharedState, Store};

/// `GET /exports/{id}`: links to a finished job's whole-job files (CSV and JSON Lines), for
/// clients that cannot follow `GET /results`'s redirect themselves (a browser page sending an
/// API key).
#[utoipa::path(get, path = "/exports/{id}", tag = "jobs",
    params(("id" = String, Path, description = "batch_job_id")),
    responses(
        (status = 200, description = "Presigned links to the job's files, valid for expires_in_seconds", body = ExportLinks),
        (status = 401, description = "No or unknown API key", body = crate::error::ErrorBody),
        (status = 404, description = "No such job for this tenant", body = crate::error::ErrorBody),
        (status = 409, description = "The job is still running: its files are written when it finishes", body = crate::error::ErrorBody),
        (status = 503, description = "The job has just finished and its files are being written: try again after Retry-After seconds", body = crate::error::ErrorBody),
    ))]
pub async fn exports<S, Q, E>(
    State(state): State<SharedState<S, Q, E>>,
    Caller(tenant): Caller,
    Path(id): Path<String>,
) -> Result<Json<ExportLinks>, ApiError>
where
    S: Store,
    Q: Queue,
    E: Files,
{
    let job = owned_job(&state.store, &tenant, &id).await?;
    let report = if job.status.is_finished() { state.store.get_report(&job.id).await? } else { None };
    Ok(Json(exports::links(&state.exports, &job, report.as_ref()).await?))
}
