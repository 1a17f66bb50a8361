use std::collections::{BTreeSet, HashMap};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use domain::settings::MAX_URLS;
use domain::time::rfc3339;
use domain::{ErrorKind, Job, JobStatus, Strategy, UrlStatus, UrlTask};
use serde::Serialize;
use serde_json::{Map, Value};
use store::Jobs;

use super::progress::owned_job;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::{Queue, SharedState, Store};
use crate::summary::{Summary, summarize};
use crate::{csv, cursor, query};

/// Tasks read per Query while summarising a whole job.
const SUMMARY_PAGE: usize = 1_000;

#[derive(Serialize, utoipa::ToSchema)]
pub struct ResultRow {
    pub url: String,
    pub status: UrlStatus,
    pub attempts: u32,
    pub error: Option<String>,
    pub error_kind: Option<ErrorKind>,
    pub engine: Option<String>,
    pub strategy: Strategy,
    pub score: Option<f64>,
    /// The engine's measurements by name; an absent metric was not available.
    #[schema(value_type = Object)]
    pub metrics: Map<String, Value>,
    pub analyzed_at: Option<String>,
    /// Present when the result is an earlier one reused (`cache_ttl_seconds`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cached_from: Option<CachedRow>,
}

/// Where a reused result comes from: the job that analysed the URL, and when.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CachedRow {
    pub batch_job_id: String,
    pub analyzed_at: String,
}

impl ResultRow {
    fn new(task: UrlTask, job: &Job) -> Self {
        let (engine, strategy, score, metrics, cached_from) = match task.analysis {
            Some(a) => {
                let cached = a
                    .cached_from
                    .map(|c| CachedRow { batch_job_id: c.job_id.to_string(), analyzed_at: rfc3339(c.analyzed_at) });
                (Some(a.engine), a.strategy, a.score, a.metrics, cached)
            }
            None => (None, job.settings.strategy, None, Map::new(), None),
        };
        ResultRow {
            url: task.url,
            status: task.status,
            attempts: task.attempts,
            error: task.error,
            error_kind: task.error_kind,
            engine,
            strategy,
            score,
            metrics,
            analyzed_at: task.analyzed_at.map(rfc3339),
            cached_from,
        }
    }
}

/// How `GET /results` answers: `json` (the default) or `csv`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Json,
    Csv,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Results {
    pub batch_job_id: String,
    pub status: JobStatus,
    pub results: Vec<ResultRow>,
    pub next_cursor: Option<String>,
    pub summary: Summary,
}

async fn summary_of<S: Jobs>(store: &S, job: &Job) -> Result<Summary, ApiError> {
    let mut tasks = Vec::new();
    let mut after = None;
    loop {
        let page = store.list_tasks(&job.id, None, SUMMARY_PAGE, after).await?;
        tasks.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(summarize(&tasks)),
        }
    }
}

/// `GET /results/{id}?status=&limit=&cursor=&format=json|csv`: per-URL results in
/// submission order and the job's summary. CSV without a `limit` is the whole job.
#[utoipa::path(get, path = "/results/{id}", tag = "jobs",
    params(
        ("id" = String, Path, description = "batch_job_id"),
        ("status" = Option<UrlStatus>, Query, description = "Only URLs in this status"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "1 to 1000, default 100; CSV without a limit is the whole job"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page (CSV: the x-next-cursor header)"),
        ("format" = Option<Format>, Query, description = "json (default) or csv"),
    ),
    responses(
        (status = 200, description = "Per-URL results and the job's summary; with format=csv, the rows as RFC 4180 CSV (header row, then one row per URL)",
            content((Results = "application/json"), (String = "text/csv"))),
        (status = 400, description = "A tampered cursor", body = crate::error::ErrorBody),
        (status = 401, description = "No or unknown API key", body = crate::error::ErrorBody),
        (status = 404, description = "No such job for this tenant", body = crate::error::ErrorBody),
        (status = 422, description = "An invalid status, limit or format", body = crate::error::ErrorBody),
    ))]
pub async fn results<S, Q>(
    State(state): State<SharedState<S, Q>>,
    Caller(tenant): Caller,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError>
where
    S: Store,
    Q: Queue,
{
    let param = |name: &str| params.get(name).map(String::as_str);
    let csv = match param("format") {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => return Err(ApiError::invalid_field("format", format!("{other:?} is not one of json, csv"))),
    };
    let status = query::choice::<UrlStatus>("status", param("status"))?;
    let limit = match (param("limit"), csv) {
        (None, true) => MAX_URLS,
        (limit, _) => query::limit(limit, 100, 1_000)?,
    };
    let after = param("cursor").map(|c| cursor::decode(c, |s| s.parse::<u32>().ok())).transpose()?;
    let job = owned_job(&state.store, &tenant, &id).await?;
    let page = state.store.list_tasks(&job.id, status, limit, after).await?;
    let next_cursor = page.next.map(|seq| cursor::encode(&seq.to_string()));
    let rows: Vec<ResultRow> = page.items.into_iter().map(|task| ResultRow::new(task, &job)).collect();
    if csv {
        return Ok(csv_response(&job, &rows, next_cursor));
    }
    let summary = summary_of(&state.store, &job).await?;
    Ok(Json(Results { batch_job_id: job.id.to_string(), status: job.status, results: rows, next_cursor, summary })
        .into_response())
}

fn csv_response(job: &Job, rows: &[ResultRow], next_cursor: Option<String>) -> Response {
    let metric_names: BTreeSet<&str> = rows.iter().flat_map(|row| row.metrics.keys().map(String::as_str)).collect();
    let fixed = [
        "url",
        "status",
        "attempts",
        "error",
        "error_kind",
        "engine",
        "strategy",
        "score",
        "analyzed_at",
        "cached_from",
    ];
    let mut body = csv::record(fixed.iter().copied().chain(metric_names.iter().copied()));
    for row in rows {
        let mut fields = vec![
            row.url.clone(),
            row.status.to_string(),
            row.attempts.to_string(),
            row.error.clone().unwrap_or_default(),
            row.error_kind.map(|k| k.to_string()).unwrap_or_default(),
            row.engine.clone().unwrap_or_default(),
            row.strategy.to_string(),
            row.score.map(|s| s.to_string()).unwrap_or_default(),
            row.analyzed_at.clone().unwrap_or_default(),
            row.cached_from.as_ref().map(|c| c.batch_job_id.clone()).unwrap_or_default(),
        ];
        fields.extend(metric_names.iter().map(|name| match row.metrics.get(*name) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(text)) => text.clone(),
            Some(other) => other.to_string(),
        }));
        body.push_str(&csv::record(fields));
    }
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"speedbatch-{}.csv\"", job.id)) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    if let Some(value) = next_cursor.and_then(|c| HeaderValue::from_str(&c).ok()) {
        headers.insert("x-next-cursor", value);
    }
    response
}
