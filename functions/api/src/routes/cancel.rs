use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use domain::time::now_millis;
use store::Cancel;

use super::progress::owned_job;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::{Files, Queue, SharedState, Store};
use domain::JobView;

/// `POST /cancel/{id}`: stops a job. No URL of it starts afterwards; the pipeline marks the
/// queued ones `cancelled` and the job ends `cancelled`. 202: the stop is under way.
#[utoipa::path(post, path = "/cancel/{id}", tag = "jobs",
    params(("id" = String, Path, description = "batch_job_id")),
    responses(
        (status = 202, description = "The job is cancelling: no further URL starts", body = JobView),
        (status = 401, description = "No or unknown API key", body = crate::error::ErrorBody),
        (status = 404, description = "No such job for this tenant", body = crate::error::ErrorBody),
        (status = 409, description = "The job has already finished", body = crate::error::ErrorBody),
    ))]
pub async fn cancel<S, Q, E>(
    State(state): State<SharedState<S, Q, E>>,
    Caller(tenant): Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<JobView>), ApiError>
where
    S: Store,
    Q: Queue,
    E: Files,
{
    let job = owned_job(&state.store, &tenant, &id).await?;
    match state.store.request_cancel(&job.id, now_millis()).await? {
        Cancel::Requested => {
            let job = owned_job(&state.store, &tenant, &id).await?;
            tracing::info!(job_id = %job.id, "cancellation requested");
            Ok((StatusCode::ACCEPTED, Json(JobView::new(&job))))
        }
        Cancel::AlreadyFinished(status) => {
            Err(ApiError::Conflict(format!("job {id} has already finished ({status}) and cannot be cancelled")))
        }
    }
}
