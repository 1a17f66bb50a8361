use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use domain::time::now_millis;
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::{Queue, SharedState, Store};

const MAX_DAYS: u32 = 3_650;
const LIST_PAGE: usize = 100;
/// Jobs deleted at once; each deletion is its own sequence of batched writes.
const DELETE_PARALLELISM: usize = 4;

#[derive(Serialize, utoipa::ToSchema)]
pub struct CleanupReport {
    pub dry_run: bool,
    pub older_than_days: u32,
    pub jobs_matched: usize,
    pub jobs_deleted: usize,
    pub items_deleted: usize,
    pub batch_job_ids: Vec<String>,
}

/// `DELETE /cleanup?older_than_days=&dry_run=`: deletes the caller's finished jobs that
/// finished more than `older_than_days` days ago, with all their results. `dry_run=true`
/// only reports what would go.
#[utoipa::path(delete, path = "/cleanup", tag = "jobs",
    params(
        ("older_than_days" = u32, Query, maximum = 3650, description = "Delete jobs that finished at least this many days ago (0 to 3650)"),
        ("dry_run" = Option<bool>, Query, description = "Only report what would be deleted"),
    ),
    responses(
        (status = 200, description = "What was (or would be) deleted", body = CleanupReport),
        (status = 401, description = "No or unknown API key", body = crate::error::ErrorBody),
        (status = 422, description = "A missing or invalid parameter", body = crate::error::ErrorBody),
    ))]
pub async fn cleanup<S, Q>(
    State(state): State<SharedState<S, Q>>,
    Caller(tenant): Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<CleanupReport>, ApiError>
where
    S: Store,
    Q: Queue,
{
    let days = match params.get("older_than_days") {
        None => return Err(ApiError::invalid_field("older_than_days", "is required: a whole number of days")),
        Some(text) => text.parse::<u32>().ok().filter(|d| *d <= MAX_DAYS).ok_or_else(|| {
            ApiError::invalid_field("older_than_days", format!("must be a whole number from 0 to {MAX_DAYS}"))
        })?,
    };
    let dry_run = match params.get("dry_run").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::invalid_field("dry_run", "must be true or false")),
    };
    let cutoff = now_millis() - i64::from(days) * 86_400_000;
    let mut matched = Vec::new();
    let mut after = None;
    loop {
        let page = state.store.list_jobs(&tenant, None, LIST_PAGE, after.as_ref()).await?;
        matched.extend(
            page.items
                .into_iter()
                .filter(|job| job.status.is_finished() && job.finished_at.unwrap_or(job.created_at) <= cutoff)
                .map(|job| job.id),
        );
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let (jobs_deleted, items_deleted) = if dry_run {
        (0, 0)
    } else {
        let store = &state.store;
        let counts: Vec<usize> = futures::stream::iter(matched.clone())
            .map(|id| async move { store.delete_job(&id).await })
            .buffer_unordered(DELETE_PARALLELISM)
            .try_collect()
            .await?;
        (counts.len(), counts.iter().sum())
    };
    tracing::info!(tenant = %tenant.0, days, dry_run, jobs = matched.len(), items_deleted, "cleanup");
    Ok(Json(CleanupReport {
        dry_run,
        older_than_days: days,
        jobs_matched: matched.len(),
        jobs_deleted,
        items_deleted,
        batch_job_ids: matched.iter().map(|id| id.to_string()).collect(),
    }))
}
