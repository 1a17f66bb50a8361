//! `POST /start`: validate and clean the submission (`request`), record the job, fan the
//! first window of URLs out.

pub(crate) mod request;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::settings::MAX_URLS;
use domain::tenancy;
use domain::time::{now_millis, rfc3339};
use domain::{CleanUrl, Job, JobView, Rejected, Tags, clean_batch, timeouts};
use net::sitemap::{self, Expanded, SitemapLimits};
pub use request::{START_FIELDS, StartRequest};
use request::{Source, validate};
use serde::Serialize;
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::{Files, Queue, SharedState, Store};

/// API Gateway's largest request body.
pub const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

/// The new job as `progress` shows it (with its `effective_timeout_seconds`), and what became
/// of the input.
#[derive(Serialize, utoipa::ToSchema)]
pub struct StartResponse {
    #[serde(flatten)]
    job: JobView,
    accepted: usize,
    rejected: Vec<Rejected>,
    duplicates_removed: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    sitemap: Option<SitemapReport>,
}

/// A dry run's answer: the submission as it would be taken, with nothing created.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DryRunResponse {
    dry_run: bool,
    accepted: usize,
    /// The accepted URLs, cleaned, in submission order.
    urls: Vec<String>,
    rejected: Vec<Rejected>,
    duplicates_removed: usize,
    effective_timeout_seconds: u32,
    /// The URL analyses the job would count against the tenant's daily limit (URLs x runs x
    /// form factors).
    analyses: u64,
    /// The limit the job would run into if it were submitted now; absent when it fits.
    #[serde(skip_serializing_if = "Option::is_none")]
    over_limit: Option<domain::tenancy::OverLimit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sitemap: Option<SitemapReport>,
}

/// What a `sitemap_url` expanded to.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SitemapReport {
    url: String,
    documents: usize,
    urls_found: usize,
    /// The sitemap listed more URLs than a job takes (10 000); the first ones were taken.
    truncated: bool,
}

/// A request's body as a JSON object, or why it is not one.
pub(crate) fn json_object(body: Result<Bytes, BytesRejection>) -> Result<serde_json::Map<String, Value>, ApiError> {
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge { limit: MAX_BODY_BYTES },
        _ => ApiError::Malformed(rejection.body_text()),
    })?;
    let body: Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::Malformed(format!("the body is not valid JSON: {e}")))?;
    match body {
        Value::Object(body) => Ok(body),
        _ => Err(ApiError::Malformed("the body must be a JSON object".into())),
    }
}

/// `urls` cleaned as a job takes them (a job's or a monitor's); none accepted is a 422 that
/// says what became of each.
pub(crate) fn cleaned(
    urls: &[(String, Tags)],
    policy: domain::AddressPolicy,
) -> Result<domain::CleanedBatch, ApiError> {
    let batch = clean_batch(urls.iter().map(|(url, tags)| (url.as_str(), tags.clone())), policy);
    if batch.accepted.is_empty() {
        return Err(ApiError::Invalid {
            message: "no URL was accepted".into(),
            details: json!({
                "accepted": 0,
                "rejected": batch.rejected,
                "duplicates_removed": batch.duplicates_removed,
            }),
        });
    }
    Ok(batch)
}

pub(crate) async fn expand_sitemap(
    settings: &crate::state::ApiSettings,
    sitemap_url: &str,
) -> Result<Expanded, ApiError> {
    let clean = CleanUrl::parse(sitemap_url, settings.policy)
        .map_err(|reason| ApiError::invalid_field("sitemap_url", reason.to_string()))?;
    let url = url::Url::parse(clean.as_str())
        .map_err(|e| ApiError::invalid_field("sitemap_url", format!("not a valid URL: {e}")))?;
    let limits = SitemapLimits { max_urls: MAX_URLS, ..SitemapLimits::default() };
    sitemap::expand(&settings.http, settings.policy, url, limits)
        .await
        .map_err(|e| ApiError::invalid_field("sitemap_url", e.to_string()))
}

#[utoipa::path(post, path = "/start", tag = "jobs", request_body = StartRequest,
    responses(
        (status = 201, description = "The job was created and its URLs queued", body = StartResponse,
            links(
                ("progress" = (operation_id = "progress", parameters(("id" = "$response.body#/batch_job_id")),
                    description = "Watch the new job")),
                ("results" = (operation_id = "results", parameters(("id" = "$response.body#/batch_job_id")),
                    description = "The new job's results so far")),
                ("cancel" = (operation_id = "cancel", parameters(("id" = "$response.body#/batch_job_id")),
                    description = "Stop the new job")),
            )),
        (status = 200, description = "A dry run: what would be accepted and rejected; nothing created", body = DryRunResponse),
        (status = 400, description = "The body is not a JSON object", body = crate::error::ErrorBody),
        (status = 401, description = "No or unknown API key", body = crate::error::ErrorBody),
        (status = 413, description = "The body is over 6 MB", body = crate::error::ErrorBody),
        (status = 422, description = "Invalid fields, an unreadable sitemap, no URL accepted, or a job larger than the tenant's daily limit", body = crate::error::ErrorBody),
        (status = 429, description = "Over one of the tenant's limits (unfinished jobs, URL analyses today): `details.limit` names it, `Retry-After` says when to try again",
            body = crate::error::ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before submitting again"))),
    ))]
pub async fn start<S, Q, E>(
    State(state): State<SharedState<S, Q, E>>,
    Caller(tenant): Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError>
where
    S: Store,
    Q: Queue,
    E: Files,
{
    let body = json_object(body)?;
    let settings = &state.settings;
    let submission = validate(body, settings.policy, settings.offered())?;
    let (urls, sitemap) = match submission.source {
        Source::Urls(urls) => (urls, None),
        Source::Sitemap(sitemap_url) => {
            let expanded = expand_sitemap(settings, &sitemap_url).await?;
            let report = SitemapReport {
                url: sitemap_url,
                documents: expanded.documents,
                urls_found: expanded.urls.len(),
                truncated: expanded.truncated,
            };
            (expanded.urls.into_iter().map(|url| (url, Tags::default())).collect(), Some(report))
        }
    };
    let batch = cleaned(&urls, settings.policy)?;
    let now = now_millis();
    let deployment = settings.deployment();
    let total = batch.accepted.len() as u64;
    let (limits, fits) =
        submit::admission(&state.store, &deployment, &tenant, &submission.settings, total, now).await?;
    if submission.dry_run {
        let response = DryRunResponse {
            dry_run: true,
            accepted: batch.accepted.len(),
            urls: batch.accepted.iter().map(|url| url.url.as_str().to_owned()).collect(),
            rejected: batch.rejected,
            duplicates_removed: batch.duplicates_removed,
            effective_timeout_seconds: timeouts::effective(
                submission.settings.timeout_seconds,
                settings.max_url_timeout_seconds,
            ),
            analyses: tenancy::analyses(&submission.settings, total),
            over_limit: fits.err(),
            sitemap,
        };
        return Ok((StatusCode::OK, Json(response)).into_response());
    }
    fits.map_err(ApiError::OverLimit)?;
    let name = submission.name.unwrap_or_else(|| format!("batch {}", rfc3339(now)));
    let job = Job::new(tenant, name, submission.settings, total, now);
    let job = submit::create(&state.store, &state.queue, &deployment, job, &batch.accepted, &limits)
        .await?
        .map_err(ApiError::OverLimit)?;
    let response = StartResponse {
        job: JobView::new(&job),
        accepted: batch.accepted.len(),
        rejected: batch.rejected,
        duplicates_removed: batch.duplicates_removed,
        sitemap,
    };
    Ok((StatusCode::CREATED, Json(response)).into_response())
}
