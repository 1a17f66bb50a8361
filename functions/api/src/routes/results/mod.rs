//! `GET /results/{id}`: a job's per-URL results a page at a time (JSON, CSV or JSON Lines),
//! in submission order or sorted over the whole job (`sort`), and whole-job exports. Every
//! answer is bounded whatever the job's size: a page stops at `limit` rows or at `PAGE_BYTES`,
//! whichever comes first, and a whole-job export of a finished job is a link to its file
//! (`303`), written once by the exporter.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use domain::field::FieldFilter;
use domain::report::{ExportFormat, ResultRow, Summary};
use domain::{Job, JobStatus, LabelFilter, TaskFilter, UrlStatus, UrlTask};
use serde::Serialize;
use store::Jobs;

use super::progress::owned_job;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::exports::{self, WholeExport};
use crate::state::{Files, Queue, SharedState, Store};
use crate::{cursor, query};

mod sort;
use sort::{Sort, SortKey, SortOrder};

/// The most rows a page holds.
pub const MAX_LIMIT: usize = 1_000;
/// A page's rows stop at this size (their JSON), well inside the 6 MB a Lambda behind API
/// Gateway may answer, whatever the rows hold; `next_cursor` continues after the last one.
pub const PAGE_BYTES: usize = 4 * 1024 * 1024;

/// How `GET /results` answers: `json` (the default), `csv` or `jsonl`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Json,
    Csv,
    Jsonl,
}

impl Format {
    fn export(self) -> Option<ExportFormat> {
        match self {
            Format::Json => None,
            Format::Csv => Some(ExportFormat::Csv),
            Format::Jsonl => Some(ExportFormat::Jsonl),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Results {
    pub batch_job_id: String,
    pub status: JobStatus,
    pub results: Vec<ResultRow>,
    pub next_cursor: Option<String>,
    /// Complete once the job has finished (and its report is written); while it runs, the
    /// counts by status only.
    pub summary: Summary,
}

/// One page of rows, cut at `limit` rows or `PAGE_BYTES`.
pub struct RowPage {
    pub rows: Vec<ResultRow>,
    pub next_cursor: Option<String>,
}

/// The rows of `tasks` (each with its place in its listing) in order, until the next would
/// take the page past `PAGE_BYTES`: always at least one, so a page always moves on. The place
/// of the first task left out, if one was.
fn rows_within_bytes(job: &Job, tasks: impl IntoIterator<Item = (usize, UrlTask)>) -> (Vec<ResultRow>, Option<usize>) {
    let mut rows = Vec::new();
    let mut bytes = 0;
    for (place, task) in tasks {
        let row = ResultRow::new(task, job);
        bytes += row.to_json().len() + 1;
        if bytes > PAGE_BYTES && !rows.is_empty() {
            return (rows, Some(place));
        }
        rows.push(row);
    }
    (rows, None)
}

/// Reads one page of job's URLs from `after`, stopping at `limit` rows or `PAGE_BYTES`.
pub async fn row_page<S: Jobs>(
    store: &S,
    job: &Job,
    filter: &TaskFilter,
    limit: usize,
    after: Option<u32>,
) -> Result<RowPage, ApiError> {
    let page = store.list_tasks(&job.id, &job.stored_filter(filter), limit, after).await?;
    let items: Vec<UrlTask> = page.items.into_iter().filter(|task| job.shows(filter, task)).collect();
    let seqs: Vec<u32> = items.iter().map(|task| task.seq).collect();
    let (rows, left_out) = rows_within_bytes(job, items.into_iter().enumerate());
    // Cut short by size: the next page starts after the last row given.
    let next = match left_out {
        Some(place) => place.checked_sub(1).and_then(|last| seqs.get(last)).copied(),
        None => page.next.filter(|next| job.lists_after(filter, *next)),
    };
    Ok(RowPage { rows, next_cursor: next.map(|seq| cursor::encode(&seq.to_string())) })
}

/// `GET /results/{id}?status=&label=&sort=&order=&limit=&cursor=&format=json|csv|jsonl`:
/// per-URL results in submission order, or sorted over the whole job, and the job's summary.
/// CSV or JSON Lines without a `limit` is the whole job: a link to its file once the job has
/// finished, inline for a job of up to 1 000 URLs.
#[utoipa::path(get, path = "/results/{id}", tag = "jobs",
    params(
        ("id" = String, Path, description = "batch_job_id"),
        ("status" = Option<UrlStatus>, Query, description = "Only URLs in this status (a whole-job export of over 1000 URLs holds every URL: page through it with limit to filter)"),
        ("label" = Option<String>, Query, pattern = "^[^:]{1,100}(:.*)?$", description = "Only URLs with this label (`name`), or with this value of it (`name:value`); as status for whole-job exports"),
        ("field_overall_category" = inline(Option<domain::field::FieldFilter>), Query, description = "Only URLs with this Core Web Vitals verdict from field data: good, needs_improvement, poor, or unavailable (the job asked for field data and the Chrome UX Report had none, or too little for a verdict); as status for whole-job exports"),
        ("sort" = inline(Option<SortKey>), Query, description = "Pages in the order of this key over the whole job (after status and label), not of the page alone: `url`, `status` (queued, processing, succeeded, failed, cancelled), `position` (submission order) or a headline number. `score` is the performance score (PSI, browser engine); an http job's number is `delivery_score` (`desktop_*` with strategy both), and a key the job's engine never gives is refused. URLs without the number (not succeeded, or not measured) come last in either order; ties, and those, in submission order. Sort applies to pages: a sorted CSV or JSON Lines comes in pages (of 1000 rows without a limit: follow x-next-cursor), the whole-job files being in submission order. Default: submission order"),
        ("order" = inline(Option<SortOrder>), Query, description = "asc (the default, whatever the key: lowest number, URLs A to Z, queued first) or desc; without sort, of the URLs' positions (desc: the last submitted first)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "1 to 1000, default 100; CSV and JSON Lines without a limit are the whole job (sorted: pages of 1000). A page also stops at 4 MB: continue from next_cursor"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page (CSV and JSON Lines: the x-next-cursor header), with the same sort and order"),
        ("format" = Option<Format>, Query, description = "json (default), csv or jsonl"),
    ),
    responses(
        (status = 200, description = "Per-URL results and the job's summary; with format=csv, RFC 4180 CSV (header row, then one row per URL); with format=jsonl, one JSON object per line",
            content((Results = "application/json"), (String = "text/csv"), (String = "application/x-ndjson"))),
        (status = 303, description = "A finished job's whole-job export: the Location is a link to the file, valid for 15 minutes", body = crate::exports::ExportLinks),
        (status = 400, description = "A tampered cursor, or one of a listing in another order", body = crate::error::ErrorBody),
        (status = 401, description = "No or unknown API key", body = crate::error::ErrorBody),
        (status = 404, description = "No such job for this tenant", body = crate::error::ErrorBody),
        (status = 409, description = "A whole-job export of a running job of over 1000 URLs: it is written when the job finishes", body = crate::error::ErrorBody),
        (status = 422, description = "An invalid status, label, sort, order, limit or format; a sort key the job's engine never gives; sort on a whole-job export", body = crate::error::ErrorBody),
        (status = 503, description = "The job has just finished and its export is being written: try again after Retry-After seconds", body = crate::error::ErrorBody),
    ))]
pub async fn results<S, Q, E>(
    State(state): State<SharedState<S, Q, E>>,
    Caller(tenant): Caller,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError>
where
    S: Store,
    Q: Queue,
    E: Files,
{
    let param = |name: &str| params.get(name).map(String::as_str);
    let format = match param("format") {
        None | Some("json") => Format::Json,
        Some("csv") => Format::Csv,
        Some("jsonl") => Format::Jsonl,
        Some(other) => {
            return Err(ApiError::invalid_field("format", format!("{other:?} is not one of json, csv, jsonl")));
        }
    };
    let status = query::choice::<UrlStatus>("status", param("status"))?;
    let label = param("label").map(LabelFilter::parse).transpose().map_err(|e| ApiError::invalid_field("label", e))?;
    let field = query::choice::<FieldFilter>("field_overall_category", param("field_overall_category"))?;
    let filter = TaskFilter { status, label, field };
    let sort = Sort::parse(param("sort"), param("order"))?;
    // A whole-job export is in submission order: a sorted CSV or JSON Lines comes in pages,
    // of the most rows a page holds unless a limit says fewer.
    let whole = format.export().filter(|_| param("limit").is_none() && sort.is_none());
    let limit = match (whole, format.export()) {
        (Some(_), _) => MAX_LIMIT,
        (None, Some(_)) => query::limit(param("limit"), MAX_LIMIT, MAX_LIMIT)?,
        (None, None) => query::limit(param("limit"), 100, MAX_LIMIT)?,
    };
    // Where the page starts: the last URL of the previous page, or in a sorted listing the
    // offset into its order.
    let (after, offset) = match (&sort, param("cursor")) {
        (_, None) => (None, 0),
        (None, Some(cursor)) => (Some(sort::submission_cursor(cursor)?), 0),
        (Some(sort), cursor) => (None, sort.offset(cursor)?),
    };
    let job = owned_job(&state.store, &tenant, &id).await?;
    if let Some(sort) = &sort {
        sort.check_engine(job.settings.engine)?;
    }
    let read_report = async {
        if job.status.is_finished() { state.store.get_report(&job.id).await.map_err(ApiError::from) } else { Ok(None) }
    };
    let (report, page) = match (whole, sort) {
        // The digest is named by the report: one read after the other.
        (None, Some(sort)) => {
            let report = read_report.await?;
            let at = sort::PageAt { offset, limit };
            let page =
                sort::sorted_page(&state.store, &state.exports, &job, report.as_ref(), &filter, sort, at).await?;
            (report, page)
        }
        (Some(export), _) => {
            let report = read_report.await?;
            match exports::whole_export(&job, report.as_ref(), export, !filter.is_empty() || after.is_some())? {
                WholeExport::Link(file) => return exports::see_other(&state.exports, &job, file).await,
                WholeExport::Inline => {}
            }
            (report, row_page(&state.store, &job, &filter, limit, after).await?)
        }
        // A page and the report are read at once: a page's time is one read, not two.
        (None, None) => futures::try_join!(read_report, row_page(&state.store, &job, &filter, limit, after))?,
    };
    if let Some(export) = format.export() {
        return Ok(rows_response(&job, export, &page));
    }
    let summary = match report {
        Some(report) => report.summary,
        None => Summary::from_counters(&job.progress()),
    };
    Ok(Json(Results {
        batch_job_id: job.id.to_string(),
        status: job.status,
        results: page.rows,
        next_cursor: page.next_cursor,
        summary,
    })
    .into_response())
}

fn rows_response(job: &Job, format: ExportFormat, page: &RowPage) -> Response {
    let mut response = format.render(&page.rows).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{}\"", format.file_name(&job.id))) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    if let Some(value) = page.next_cursor.as_deref().and_then(|c| HeaderValue::from_str(c).ok()) {
        headers.insert("x-next-cursor", value);
    }
    response
}

#[cfg(test)]
mod tests;
