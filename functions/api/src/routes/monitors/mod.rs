//! Monitors: `POST /monitors`, `GET /monitors`, `GET|PATCH|DELETE /monitors/{id}`,
//! `POST /monitors/{id}/run` and `GET /monitors/{id}/budgets` (in `budgets`). A monitor keeps a job's definition and a schedule; the scheduler
//! function runs it when its time comes, and each run is an ordinary job carrying its id.

pub mod budgets;
mod request;

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use domain::budget::Budget;
use domain::monitor::{Monitor, MonitorId, SkipReason, Skipped};
use domain::time::{now_millis, rfc3339};
use domain::{Job, JobId, JobSettings, JobUrl, Rejected, Tenant};
use request::Definition;

pub use request::MONITOR_FIELDS;
use serde::Serialize;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::start::request::Source;
use crate::routes::start::{cleaned, json_object};
use crate::state::{Files, Queue, SharedState, Store};
use crate::{cursor, query};

/// Times a change is tried again after the monitor moved under it (a run started).
const CHANGE_ATTEMPTS: usize = 3;

/// A monitor as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MonitorView {
    pub monitor_id: String,
    pub name: String,
    pub schedule: String,
    pub enabled: bool,
    /// When it runs next (UTC); absent while disabled.
    pub next_run_at: Option<String>,
    /// Each run's job settings.
    #[serde(flatten)]
    pub settings: JobSettings,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sitemap_url: Option<String>,
    /// Its own URLs (0 for a sitemap monitor, whose URLs are read at every run).
    pub url_count: u32,
    pub budgets: Vec<Budget>,
    pub created_at: String,
    pub updated_at: String,
    /// The last run's job.
    pub last_job_id: Option<String>,
    pub last_run_at: Option<String>,
    pub runs: u64,
    /// Ticks that did not run (the previous run was still going, or the tenant was over a
    /// limit), and the last one.
    pub skipped_runs: u64,
    pub last_skip: Option<SkipView>,
}

/// A tick that did not run: when it was due and when it was skipped (UTC, as every time the
/// API gives), and why.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SkipView {
    pub tick: String,
    pub at: String,
    pub reason: SkipReason,
}

impl SkipView {
    fn new(skipped: &Skipped) -> SkipView {
        SkipView { tick: rfc3339(skipped.tick), at: rfc3339(skipped.at), reason: skipped.reason }
    }
}

impl MonitorView {
    pub fn new(monitor: &Monitor) -> MonitorView {
        MonitorView {
            monitor_id: monitor.id.to_string(),
            name: monitor.name.clone(),
            schedule: monitor.schedule.clone(),
            enabled: monitor.enabled,
            next_run_at: monitor.next_run_at.map(rfc3339),
            settings: monitor.settings.clone(),
            sitemap_url: monitor.sitemap_url.clone(),
            url_count: monitor.url_count,
            budgets: monitor.budgets.clone(),
            created_at: rfc3339(monitor.created_at),
            updated_at: rfc3339(monitor.updated_at),
            last_job_id: monitor.running_job.as_ref().map(ToString::to_string),
            last_run_at: monitor.last_run_at.map(rfc3339),
            runs: monitor.runs,
            skipped_runs: monitor.skipped_runs,
            last_skip: monitor.last_skip.as_ref().map(SkipView::new),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedMonitor {
    #[serde(flatten)]
    pub monitor: MonitorView,
    pub accepted: usize,
    pub rejected: Vec<Rejected>,
    pub duplicates_removed: usize,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MonitorList {
    pub monitors: Vec<MonitorView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RunStarted {
    pub monitor_id: String,
    pub batch_job_id: String,
}

/// The caller's monitor `id`; another tenant's is no monitor.
pub(crate) async fn owned<S: store::Monitors>(store: &S, tenant: &Tenant, id: &str) -> Result<Monitor, ApiError> {
    let not_found = || ApiError::NotFound(format!("no monitor {id:?}"));
    let id = MonitorId::parse(id).ok_or_else(not_found)?;
    store.get_monitor(tenant, &id).await?.ok_or_else(not_found)
}

/// The definition's URLs cleaned as `/start` cleans them: `None` for a sitemap (read at each
/// run) or a change that keeps the URLs.
struct Cleaned {
    urls: Option<Vec<JobUrl>>,
    sitemap_url: Option<String>,
    rejected: Vec<Rejected>,
    duplicates_removed: usize,
}

fn clean(source: Option<Source>, policy: domain::AddressPolicy) -> Result<Cleaned, ApiError> {
    match source {
        None => Ok(Cleaned { urls: None, sitemap_url: None, rejected: Vec::new(), duplicates_removed: 0 }),
        Some(Source::Sitemap(url)) => {
            let clean = domain::CleanUrl::parse(&url, policy)
                .map_err(|reason| ApiError::invalid_field("sitemap_url", reason.to_string()))?;
            Ok(Cleaned {
                urls: None,
                sitemap_url: Some(clean.into_string()),
                rejected: Vec::new(),
                duplicates_removed: 0,
            })
        }
        Some(Source::Urls(urls)) => {
            let batch = cleaned(&urls, policy)?;
            Ok(Cleaned {
                urls: Some(batch.accepted),
                sitemap_url: None,
                rejected: batch.rejected,
                duplicates_removed: batch.duplicates_removed,
            })
        }
    }
}

/// `POST /monitors`: a new monitor; its first run is its schedule's first tick.
#[utoipa::path(post, path = "/monitors", tag = "monitors", request_body(content = serde_json::Value, description = "`name`, `urls` or `sitemap_url`, `schedule` (rate(N minutes|hours|days), at least 15 minutes, or an AWS cron(...) in UTC), the job settings of /start, `budgets` ([{metric, max|min, labels?}]), `enabled` (default true)"),
    responses(
        (status = 201, description = "The monitor, with what became of its URLs", body = CreatedMonitor),
        (status = 400, description = "The body is not a JSON object", body = crate::error::ErrorBody),
        (status = 401, description = "No or unknown API key", body = crate::error::ErrorBody),
        (status = 422, description = "Invalid fields (every one named), or no URL accepted", body = crate::error::ErrorBody),
    ))]
pub async fn create<S, Q, E>(
    State(state): State<SharedState<S, Q, E>>,
    Caller(tenant): Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<CreatedMonitor>), ApiError>
where
    S: Store,
    Q: Queue,
    E: Files,
{
    let body = json_object(body)?;
    let settings = &state.settings;
    let Definition { name, source, settings: job, schedule, budgets, enabled } =
        request::new_monitor(&body, settings.policy, settings.offered())?;
    let cleaned = clean(source, settings.policy)?;
    let urls = cleaned.urls.unwrap_or_default();
    let now = now_millis();
    let name = name.unwrap_or_else(|| format!("monitor {}", rfc3339(now)));
    let (parsed, text) = schedule;
    let monitor =
        Monitor::new(tenant, name, (&parsed, text), job, cleaned.sitemap_url, urls.len() as u32, budgets, enabled, now);
    state.store.create_monitor(&monitor, &urls).await?;
    let created = CreatedMonitor {
        monitor: MonitorView::new(&monitor),
        accepted: urls.len(),
        rejected: cleaned.rejected,
        duplicates_removed: cleaned.duplicates_removed,
    };
    Ok((StatusCode::CREATED, Json(created)))
}

/// `GET /monitors?limit=&cursor=`: the caller's monitors, newest first.
#[utoipa::path(get, path = "/monitors", tag = "monitors",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "1 to 100, default 20"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses(
        (status = 200, description = "The tenant's monitors, newest first", body = MonitorList),
        (status = 400, description = "A tampered cursor", body = crate::error::ErrorBody),
        (status = 401, description = "No or unknown API key", body = crate::error::ErrorBody),
        (status = 422, description = "An invalid limit", body = crate::error::ErrorBody),
    ))]
pub async fn list<S, Q, E>(
    State(state): State<SharedState<S, Q, E>>,
    Caller(tenant): Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<MonitorList>, ApiError>
where
    S: Store,
    Q: Queue,
    E: Files,
{
    let limit = query::limit(params.get("limit").map(String::as_str), 20, 100)?;
    let after = params.get("cursor").map(|c| cursor::decode(c, MonitorId::parse)).transpose()?;
    let page = state.store.list_monitors(&tenant, limit, after.as_ref()).await?;
    Ok(Json(MonitorList {
        monitors: page.items.iter().map(MonitorView::new).collect(),
        next_cursor: page.next.map(|id| cursor::encode(id.as_str())),
    }))
}

/// `GET /monitors/{id}`.
#[utoipa::path(get, path = "/monitors/{id}", tag = "monitors",
    params(("id" = String, Path, description = "monitor_id")),
    responses(
        (status = 200, description = "The monitor, its schedule and how its runs went", body = MonitorView),
        (status = 401, description = "No or unknown API key", body = crate::error::ErrorBody),
        (status = 404, description = "No such monitor for this tenant", body = crate::error::ErrorBody),
    ))]
pub async fn show<S, Q, E>(
    State(state): State<SharedState<S, Q, E>>,
    Caller(tenant): Caller,
    Path(id): Path<String>,
) -> Result<Json<MonitorView>, ApiError>
where
    S: Store,
    Q: Queue,
    E: Files,
{
    Ok(Json(MonitorView::new(&owned(&state.store, &tenant, &id).await?)))
}

/// `PATCH /monitors/{id}`: the fields given replace the monitor's (URLs or a sitemap replace
/// the other); a new schedule, or enabling it, counts its runs from now.
#[utoipa::path(patch, path = "/monitors/{id}", tag = "monitors",
    params(("id" = String, Path, description = "monitor_id")),
    request_body(content = serde_json::Value, description = "Any of the fields of POST /monitors"),
    responses(
        (status = 200, description = "The monitor as changed", body = MonitorView),
        (status = 400, description = "The body is not a JSON object", body = crate::error::ErrorBody),
        (status = 401, description = "No or unknown API key", body = crate::error::ErrorBody),
        (status = 404, description = "No such monitor for this tenant", body = crate::error::ErrorBody),
        (status = 409, description = "The monitor kept changing under the request (runs starting): try again", body = crate::error::ErrorBody),
        (status = 422, description = "Invalid fields (every one named), or no URL accepted", body = crate::error::ErrorBody),
    ))]
pub async fn change<S, Q, E>(
    State(state): State<SharedState<S, Q, E>>,
    Caller(tenant): Caller,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<MonitorView>, ApiError>
where
    S: Store,
    Q: Queue,
    E: Files,
{
    let change = json_object(body)?;
    let settings = &state.settings;
    for _ in 0..CHANGE_ATTEMPTS {
        let kept = owned(&state.store, &tenant, &id).await?;
        let Definition { name, source, settings: job, schedule, budgets, enabled } =
            request::changed(&kept, &change, settings.policy, settings.offered())?;
        let cleaned = clean(source, settings.policy)?;
        let now = now_millis();
        let (parsed, text) = schedule;
        let mut monitor = kept.clone();
        let restart = text != kept.schedule || (enabled && !kept.enabled);
        if restart {
            monitor.anchor = now;
        }
        monitor.schedule = text;
        monitor.enabled = enabled;
        monitor.next_run_at = match (enabled, restart) {
            (false, _) => None,
            (true, true) => parsed.next_after(now, now),
            (true, false) => kept.next_run_at,
        };
        monitor.name = name.unwrap_or(kept.name.clone());
        monitor.settings = job;
        monitor.budgets = budgets;
        monitor.updated_at = now;
        if cleaned.urls.is_some() || cleaned.sitemap_url.is_some() {
            monitor.sitemap_url = cleaned.sitemap_url.clone();
            monitor.url_count = cleaned.urls.as_ref().map_or(0, |u| u.len() as u32);
        }
        let urls = match (&cleaned.urls, &cleaned.sitemap_url) {
            (Some(urls), _) => Some(urls.as_slice()),
            (None, Some(_)) => Some(&[][..]),
            (None, None) => None,
        };
        if state.store.replace_monitor(&monitor, kept.version, urls).await? {
            monitor.version = kept.version + 1;
            return Ok(Json(MonitorView::new(&monitor)));
        }
    }
    Err(ApiError::Conflict(format!("monitor {id} kept changing while it was being changed: try again")))
}

/// `DELETE /monitors/{id}`: the monitor and its URLs; its runs' jobs stay.
#[utoipa::path(delete, path = "/monitors/{id}", tag = "monitors",
    params(("id" = String, Path, description = "monitor_id")),
    responses(
        (status = 204, description = "Deleted: it runs no more"),
        (status = 401, description = "No or unknown API key", body = crate::error::ErrorBody),
        (status = 404, description = "No such monitor for this tenant", body = crate::error::ErrorBody),
    ))]
pub async fn delete<S, Q, E>(
    State(state): State<SharedState<S, Q, E>>,
    Caller(tenant): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError>
where
    S: Store,
    Q: Queue,
    E: Files,
{
    let monitor = owned(&state.store, &tenant, &id).await?;
    if !state.store.delete_monitor(&tenant, &monitor.id).await? {
        return Err(ApiError::NotFound(format!("no monitor {id:?}")));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /monitors/{id}/run`: a run now, outside the schedule (which does not move).
#[utoipa::path(post, path = "/monitors/{id}/run", tag = "monitors",
    params(("id" = String, Path, description = "monitor_id")),
    responses(
        (status = 202, description = "The run's job was created and its URLs queued", body = RunStarted),
        (status = 401, description = "No or unknown API key", body = crate::error::ErrorBody),
        (status = 404, description = "No such monitor for this tenant", body = crate::error::ErrorBody),
        (status = 409, description = "The previous run is still going: runs never overlap", body = crate::error::ErrorBody),
        (status = 422, description = "The monitor's sitemap could not be read, or its run is larger than the tenant's daily limit", body = crate::error::ErrorBody),
        (status = 429, description = "Over one of the tenant's limits", body = crate::error::ErrorBody),
    ))]
pub async fn run<S, Q, E>(
    State(state): State<SharedState<S, Q, E>>,
    Caller(tenant): Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<RunStarted>), ApiError>
where
    S: Store,
    Q: Queue,
    E: Files,
{
    let monitor = owned(&state.store, &tenant, &id).await?;
    if let Some(previous) = &monitor.running_job
        && state.store.get_job(previous).await?.is_some_and(|job| !job.status.is_finished())
    {
        return Err(ApiError::Conflict(format!(
            "the previous run (job {previous}) is still going: runs never overlap"
        )));
    }
    let urls = submit::run_urls(&state.store, &state.settings.http, state.settings.policy, &monitor)
        .await?
        .map_err(|no_urls| ApiError::invalid_field("sitemap_url", no_urls.to_string()))?;
    let now = now_millis();
    let name = format!("{} {}", monitor.name, rfc3339(now));
    let job = Job::new(tenant, name, monitor.settings.clone(), urls.len() as u64, now)
        .of_monitor(monitor.id.clone(), JobId::generate());
    let deployment = state.settings.deployment();
    let job =
        submit::submit(&state.store, &state.queue, &deployment, job, &urls, now).await?.map_err(ApiError::OverLimit)?;
    // The job exists whatever happens next; a monitor that changed meanwhile is read again.
    let mut recorded = state.store.record_run_now(&monitor, &job.id, now).await?;
    for _ in 1..CHANGE_ATTEMPTS {
        if recorded {
            break;
        }
        let fresh = owned(&state.store, &monitor.tenant, monitor.id.as_str()).await?;
        recorded = state.store.record_run_now(&fresh, &job.id, now).await?;
    }
    if !recorded {
        tracing::warn!(monitor_id = %monitor.id, job_id = %job.id, "a run by hand could not be recorded on its monitor");
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(RunStarted { monitor_id: monitor.id.to_string(), batch_job_id: job.id.to_string() }),
    ))
}

#[cfg(test)]
mod tests;
