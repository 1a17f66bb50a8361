use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use domain::{JobId, JobStatus};
use serde::Serialize;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::{Files, Queue, SharedState, Store};
use crate::{cursor, query};
use domain::JobView;

#[derive(Serialize, utoipa::ToSchema)]
pub struct JobList {
    pub jobs: Vec<JobView>,
    pub next_cursor: Option<String>,
}

/// `GET /jobs?limit=&cursor=&status=`: the caller's jobs, newest first.
#[utoipa::path(get, path = "/jobs", tag = "jobs",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "1 to 100, default 20"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
        ("status" = Option<JobStatus>, Query, description = "Only jobs in this status"),
        ("monitor_id" = Option<String>, Query, description = "Only the runs of this monitor, newest first (not with status)"),
    ),
    responses(
        (status = 200, description = "The tenant's jobs, newest first", body = JobList),
        (status = 400, description = "A tampered cursor", body = crate::error::ErrorBody),
        (status = 401, description = "No or unknown API key", body = crate::error::ErrorBody),
        (status = 404, description = "No such monitor for this tenant", body = crate::error::ErrorBody),
        (status = 422, description = "An invalid limit or status, or status with monitor_id", body = crate::error::ErrorBody),
    ))]
pub async fn jobs<S, Q, E>(
    State(state): State<SharedState<S, Q, E>>,
    Caller(tenant): Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<JobList>, ApiError>
where
    S: Store,
    Q: Queue,
    E: Files,
{
    let limit = query::limit(params.get("limit").map(String::as_str), 20, 100)?;
    let status = query::choice::<JobStatus>("status", params.get("status").map(String::as_str))?;
    let after = params.get("cursor").map(|c| cursor::decode(c, JobId::parse)).transpose()?;
    let page = match params.get("monitor_id") {
        Some(_) if status.is_some() => {
            return Err(ApiError::invalid_field("status", "cannot be combined with monitor_id"));
        }
        Some(id) => {
            let monitor = super::monitors::owned(&state.store, &tenant, id).await?;
            let runs = state.store.monitor_runs(&tenant, &monitor.id, limit, after.as_ref()).await?;
            // A run whose job was deleted (cleanup, retention) is left out.
            store::Page { items: state.store.get_jobs(&runs.items).await?, next: runs.next }
        }
        None => state.store.list_jobs(&tenant, status, limit, after.as_ref()).await?,
    };
    Ok(Json(JobList {
        jobs: page.items.iter().map(JobView::new).collect(),
        next_cursor: page.next.map(|id| cursor::encode(id.as_str())),
    }))
}
