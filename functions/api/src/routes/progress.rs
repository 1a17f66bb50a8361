use axum::Json;
use axum::extract::{Path, State};
use shared::auth::KeyStore;
use shared::domain::JobId;
use shared::queue::TaskQueue;
use shared::store::JobStore;
use shared::time::now_millis;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::SharedState;
use crate::views::JobView;

/// `GET /progress/{id}`: the job's live counters. Another tenant's job is indistinguishable
/// from a missing one.
pub async fn progress<S, Q>(
    State(state): State<SharedState<S, Q>>,
    Caller(tenant): Caller,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError>
where
    S: JobStore + KeyStore + 'static,
    Q: TaskQueue + 'static,
{
    let not_found = || ApiError::NotFound(format!("no job {id:?}"));
    let job_id = JobId::parse(&id).ok_or_else(not_found)?;
    let job = state.store.get_job(&job_id).await?.filter(|job| job.tenant == tenant).ok_or_else(not_found)?;
    Ok(Json(JobView::new(&job, now_millis())))
}
