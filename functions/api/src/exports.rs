//! Whole-job exports as the API hands them out: a link to a finished job's file (written once
//! by the exporter), inline rows for a small job, or why neither is possible yet. One
//! decision for `GET /results` (which redirects) and `GET /exports` (which lists the links).

use aws::exports::{ExportFiles, LINK_TTL};
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::Job;
use domain::compare::Digest;
use domain::report::{ExportFile, ExportFormat, JobReport};
use serde::Serialize;

use crate::error::ApiError;

/// A whole-job export of a job up to this many URLs may be answered inline: one page of
/// rows, bounded like any page.
pub const INLINE_MAX_URLS: u64 = 1_000;
/// How long a client should wait for a just-finished job's files.
const WRITING_RETRY_SECONDS: u32 = 5;

/// How a whole-job export is answered.
#[derive(Debug, PartialEq)]
pub enum WholeExport<'a> {
    /// The finished job's file: a `303` to a link.
    Link(&'a ExportFile),
    /// A job small enough to answer with its rows.
    Inline,
}

/// What a request for job's whole export in `format` gets; `narrowed` when it filters by
/// status or starts from a cursor (the files hold every URL).
pub fn whole_export<'a>(
    job: &Job,
    report: Option<&'a JobReport>,
    format: ExportFormat,
    narrowed: bool,
) -> Result<WholeExport<'a>, ApiError> {
    if let Some(file) = report.and_then(|r| r.export(format)).filter(|_| !narrowed) {
        return Ok(WholeExport::Link(file));
    }
    if job.counters.total <= INLINE_MAX_URLS {
        return Ok(WholeExport::Inline);
    }
    if narrowed {
        return Err(ApiError::invalid_field(
            "limit",
            format!(
                "is required to filter by status or continue from a cursor: the whole-job export of a job over {INLINE_MAX_URLS} URLs is one file of every URL"
            ),
        ));
    }
    not_yet(job)
}

/// Why a job over `INLINE_MAX_URLS` has no file to link to.
fn not_yet<T>(job: &Job) -> Result<T, ApiError> {
    if job.status.is_finished() {
        Err(ApiError::NotReady {
            message: "the job has just finished and its export files are being written: try again in a few seconds"
                .into(),
            retry_after_seconds: WRITING_RETRY_SECONDS,
        })
    } else {
        Err(ApiError::Conflict(format!(
            "the job is still running: the whole-job export of a job over {INLINE_MAX_URLS} URLs is written when it finishes; meanwhile page through the results with limit and cursor"
        )))
    }
}

/// A link to one export file.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ExportLink {
    pub format: ExportFormat,
    /// A presigned link: no API key needed, valid for `expires_in_seconds`.
    pub url: String,
    pub bytes: u64,
    pub rows: u64,
}

/// A finished job's export files.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ExportLinks {
    pub batch_job_id: String,
    pub expires_in_seconds: u64,
    pub files: Vec<ExportLink>,
}

async fn link<F: ExportFiles>(files: &F, job: &Job, file: &ExportFile) -> Result<ExportLink, ApiError> {
    let url = files.link(&file.key, &file.format.file_name(&job.id), LINK_TTL).await?;
    Ok(ExportLink { format: file.format, url, bytes: file.bytes, rows: file.rows })
}

/// A presigned link as a `Location` header.
pub fn location(link: &str) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(link).map_err(|_| {
        ApiError::from(domain::Error::Exports {
            operation: "presign",
            message: "a link that is no header value".into(),
        })
    })
}

/// `303 See Other` to the file, with the link in the body as well.
pub async fn see_other<F: ExportFiles>(files: &F, job: &Job, file: &ExportFile) -> Result<Response, ApiError> {
    let link = link(files, job, file).await?;
    let location = location(&link.url)?;
    let body =
        ExportLinks { batch_job_id: job.id.to_string(), expires_in_seconds: LINK_TTL.as_secs(), files: vec![link] };
    let mut response = (StatusCode::SEE_OTHER, Json(body)).into_response();
    response.headers_mut().insert(header::LOCATION, location);
    Ok(response)
}

/// Links to every file of a finished job whose report is written.
pub async fn links<F: ExportFiles>(files: &F, job: &Job, report: Option<&JobReport>) -> Result<ExportLinks, ApiError> {
    let Some(report) = report.filter(|r| !r.exports.is_empty()) else { return not_yet(job) };
    let mut links = Vec::with_capacity(report.exports.len());
    for file in &report.exports {
        links.push(link(files, job, file).await?);
    }
    Ok(ExportLinks { batch_job_id: job.id.to_string(), expires_in_seconds: LINK_TTL.as_secs(), files: links })
}

/// A finished job's digest (`key`, named by its report): `None` once it has expired with the
/// job's exports (RetentionDays), which the job's own item may outlive by the hours DynamoDB
/// takes to act on its TTL.
pub async fn read_digest<F: ExportFiles>(files: &F, job: &Job, key: &str) -> Result<Option<Digest>, ApiError> {
    let Some(body) = files.object_body(key).await? else { return Ok(None) };
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| ApiError::Internal(domain::Error::Corrupt(format!("job {}'s digest is unreadable: {e}", job.id))))
}
