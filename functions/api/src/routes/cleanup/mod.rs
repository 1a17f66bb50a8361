use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Query, State};
use domain::compare::Digest;
use domain::report::ExportFormat;
use domain::time::now_millis;
use domain::{EngineKind, JobId};
use serde::Serialize;

use crate::auth::Caller;
use crate::cursor;
use crate::error::ApiError;
use crate::state::{Files, Queue, SharedState, Store};

const MAX_DAYS: u32 = 3_650;
const LIST_PAGE: usize = 100;
/// Jobs one request looks at: the answer and the work stay bounded however many jobs a
/// tenant has; `next_cursor` continues.
pub const EXAMINE_MAX: usize = 200;
/// No deletion starts after this, well inside the API's 29 s: a 10 000-URL job is 400
/// batched writes.
const DELETE_BUDGET: Duration = Duration::from_secs(15);
/// Jobs deleted at once; each deletion is its own sequence of batched writes.
const DELETE_PARALLELISM: usize = 4;

#[derive(Serialize, utoipa::ToSchema)]
pub struct CleanupReport {
    pub dry_run: bool,
    pub older_than_days: u32,
    /// Jobs this request looked at (at most 200).
    pub jobs_examined: usize,
    pub jobs_matched: usize,
    pub jobs_deleted: usize,
    /// Stored items deleted: each job's own, its URLs' (fifty to a list until each changes:
    /// then one more each) and its report.
    pub items_deleted: usize,
    /// The jobs matched by this request (at most 200).
    pub batch_job_ids: Vec<String>,
    /// More jobs to look at: send the same request with `cursor` set to this.
    pub next_cursor: Option<String>,
}

/// `DELETE /cleanup?older_than_days=&dry_run=&cursor=`: deletes the caller's finished jobs
/// that finished more than `older_than_days` days ago, with all their results and export
/// files, looking at up to 200 jobs per request. `dry_run=true` only reports what would go.
#[utoipa::path(delete, path = "/cleanup", tag = "jobs",
    params(
        ("older_than_days" = u32, Query, maximum = 3650, description = "Delete jobs that finished at least this many days ago (0 to 3650)"),
        ("dry_run" = Option<bool>, Query, description = "Only report what would be deleted"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous answer: continue where it stopped"),
    ),
    responses(
        (status = 200, description = "What was (or would be) deleted among the jobs this request looked at", body = CleanupReport),
        (status = 400, description = "A tampered cursor", body = crate::error::ErrorBody),
        (status = 401, description = "No or unknown API key", body = crate::error::ErrorBody),
        (status = 422, description = "A missing or invalid parameter", body = crate::error::ErrorBody),
    ))]
pub async fn cleanup<S, Q, E>(
    State(state): State<SharedState<S, Q, E>>,
    Caller(tenant): Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<CleanupReport>, ApiError>
where
    S: Store,
    Q: Queue,
    E: Files,
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
    let start = params.get("cursor").map(|c| cursor::decode(c, JobId::parse)).transpose()?;
    let cutoff = now_millis() - i64::from(days) * 86_400_000;
    // The jobs looked at, in listing order (newest first), and which of them match.
    let mut examined: Vec<JobId> = Vec::new();
    // With whether the browser engine measured it (it has screenshots to delete).
    let mut matched: Vec<(JobId, bool)> = Vec::new();
    let mut after = start.clone();
    let mut more = false;
    while examined.len() < EXAMINE_MAX {
        let limit = LIST_PAGE.min(EXAMINE_MAX - examined.len());
        let page = state.store.list_jobs(&tenant, None, limit, after.as_ref()).await?;
        for job in page.items {
            if job.status.is_finished() && job.finished_at.unwrap_or(job.created_at) <= cutoff {
                matched.push((job.id.clone(), job.settings.engine == EngineKind::Browser));
            }
            examined.push(job.id);
        }
        after = page.next;
        more = after.is_some();
        if !more {
            break;
        }
    }
    // Where the next request starts: after the last job looked at, or, when the time budget
    // stopped the deletions, after the job listed just before the first one left.
    let mut resume = more.then(|| examined.last().cloned()).flatten();
    let (mut jobs_deleted, mut items_deleted) = (0, 0);
    if !dry_run {
        let started = Instant::now();
        let (store, files) = (&state.store, &state.exports);
        for chunk in matched.chunks(DELETE_PARALLELISM) {
            if started.elapsed() > DELETE_BUDGET {
                let position = examined.iter().position(|id| id == &chunk[0].0).unwrap_or(0);
                resume = position.checked_sub(1).map(|before| examined[before].clone()).or(start.clone());
                break;
            }
            let counts = futures::future::try_join_all(chunk.iter().map(|(id, browser)| async move {
                let items = store.delete_job(id).await?;
                // Its export files and screenshots go too (the bucket's expiry would take them
                // later). Only a browser job has screenshots: a listing for any other would
                // find nothing.
                let mut keys: Vec<String> = ExportFormat::ALL.iter().map(|f| f.object_key(id)).collect();
                keys.push(Digest::object_key(id));
                files.delete(&keys).await?;
                if *browser {
                    files.delete_under(&domain::screenshots::job_prefix(id.as_str())).await?;
                }
                Ok::<usize, domain::Error>(items)
            }))
            .await?;
            jobs_deleted += counts.len();
            items_deleted += counts.iter().sum::<usize>();
        }
    }
    tracing::info!(tenant = %tenant.0, days, dry_run, examined = examined.len(), matched = matched.len(), jobs_deleted, items_deleted, "cleanup");
    Ok(Json(CleanupReport {
        dry_run,
        older_than_days: days,
        jobs_examined: examined.len(),
        jobs_matched: matched.len(),
        jobs_deleted,
        items_deleted,
        batch_job_ids: matched.iter().map(|(id, _)| id.to_string()).collect(),
        next_cursor: resume.map(|id| cursor::encode(id.as_str())),
    }))
}

#[cfg(test)]
mod tests;
