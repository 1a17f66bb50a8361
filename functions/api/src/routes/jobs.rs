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
        ("monitor_id" = Option<String>, Query, description = "Only the runs of this monitor, newest first; with status, those of its runs in it (a page may then hold fewer than limit: follow next_cursor)"),
    ),
    responses(
        (status = 200, description = "The tenant's jobs, newest first", body = JobList),
        (status = 400, description = "A tampered cursor", body = crate::error::ErrorBody),
        (status = 401, description = "No or unknown API key", body = crate::error::ErrorBody),
        (status = 404, description = "No such monitor for this tenant", body = crate::error::ErrorBody),
        (status = 422, description = "An invalid limit or status", body = crate::error::ErrorBody),
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
        Some(id) => {
            let monitor = super::monitors::owned(&state.store, &tenant, id).await?;
            runs_of(&state.store, &tenant, &monitor.id, status, limit, after).await?
        }
        None => state.store.list_jobs(&tenant, status, limit, after.as_ref()).await?,
    };
    Ok(Json(JobList {
        jobs: page.items.iter().map(JobView::new).collect(),
        next_cursor: page.next.map(|id| cursor::encode(id.as_str())),
    }))
}

/// The most pages of a monitor's runs one request reads looking for runs in a status: a
/// monitor keeps every run, so a rare status must not make one request read them all.
const RUN_PAGES_READ: usize = 5;

/// A monitor's runs, newest first, and with `status` only those in it: pages of runs are
/// read until `limit` are found or [`RUN_PAGES_READ`] were read; the cursor goes on after the
/// last run looked at. A run whose job was deleted (cleanup, retention) is left out.
async fn runs_of<S: Store>(
    store: &S,
    tenant: &domain::Tenant,
    monitor: &domain::monitor::MonitorId,
    status: Option<JobStatus>,
    limit: usize,
    mut after: Option<JobId>,
) -> Result<store::Page<domain::Job, JobId>, ApiError> {
    let mut jobs = Vec::new();
    for _ in 0..RUN_PAGES_READ {
        let runs = store.monitor_runs(tenant, monitor, limit - jobs.len(), after.as_ref()).await?;
        jobs.extend(
            store.get_jobs(&runs.items).await?.into_iter().filter(|job| status.is_none_or(|s| job.status == s)),
        );
        after = runs.next;
        if status.is_none() || jobs.len() == limit || after.is_none() {
            break;
        }
    }
    Ok(store::Page { items: jobs, next: after })
}
