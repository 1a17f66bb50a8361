use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::{Job, JobId, Tenant};
use sha2::{Digest, Sha256};
use store::Lookup;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::{Files, Queue, SharedState, Store};
use domain::JobView;

/// The caller's job `id`. Another tenant's job is indistinguishable from a missing one.
pub async fn owned_job<S: Lookup>(store: &S, tenant: &Tenant, id: &str) -> Result<Job, ApiError> {
    let not_found = || ApiError::NotFound(format!("no job {id:?}"));
    let job_id = JobId::parse(id).ok_or_else(not_found)?;
    store.get_job(&job_id).await?.filter(|job| &job.tenant == tenant).ok_or_else(not_found)
}

/// `GET /progress/{id}`: the job's live counters, with a strong ETag so pollers get a
/// bodiless 304 until something changes.
#[utoipa::path(get, path = "/progress/{id}", tag = "jobs",
    params(("id" = String, Path, description = "batch_job_id"), ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier answer")),
    responses(
        (status = 200, description = "The job's counters, rate and ETA", body = JobView),
        (status = 304, description = "Unchanged since the ETag given"),
        (status = 401, description = "No or unknown API key", body = crate::error::ErrorBody),
        (status = 404, description = "No such job for this tenant", body = crate::error::ErrorBody),
    ))]
pub async fn progress<S, Q, E>(
    State(state): State<SharedState<S, Q, E>>,
    Caller(tenant): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError>
where
    S: Store,
    Q: Queue,
    E: Files,
{
    let job = owned_job(&state.store, &tenant, &id).await?;
    let view = JobView::new(&job);
    let body = serde_json::to_vec(&view).map_err(|e| ApiError::Internal(domain::Error::Corrupt(e.to_string())))?;
    let etag = format!("\"{}\"", hex::encode(&Sha256::digest(&body)[..16]));
    let etag_header =
        HeaderValue::from_str(&etag).map_err(|e| ApiError::Internal(domain::Error::Corrupt(e.to_string())))?;
    let matches = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|candidate| matches!(candidate.trim(), "*") || candidate.trim() == etag);
    let cache = [(header::ETAG, etag_header), (header::CACHE_CONTROL, HeaderValue::from_static("no-cache"))];
    if matches {
        return Ok((StatusCode::NOT_MODIFIED, cache).into_response());
    }
    Ok((cache, Json(view)).into_response())
}
