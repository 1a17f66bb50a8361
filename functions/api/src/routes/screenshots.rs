use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::progress::owned_job;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::exports;
use crate::state::{Files, Queue, SharedState, Store};
use aws::exports::LINK_TTL;
use domain::screenshots::object_key;

/// `GET /screenshots/{job}/{file}`: a browser result's final screenshot (`metrics.screenshot`
/// is `{job}/{file}`), for the tenant of the job that measured it: a redirect to the image.
#[utoipa::path(get, path = "/screenshots/{job}/{file}", tag = "jobs",
    params(
        ("job" = String, Path, description = "The job that measured the page (the first part of metrics.screenshot)"),
        ("file" = String, Path, pattern = "^[A-Za-z0-9_-]{1,64}\\.jpg$", description = "The screenshot's file (the rest of metrics.screenshot)"),
    ),
    responses(
        (status = 303, description = "The Location is a link to the JPEG, valid for 15 minutes"),
        (status = 401, description = "No or unknown API key", body = crate::error::ErrorBody),
        (status = 404, description = "No such job for this tenant, or no such screenshot name", body = crate::error::ErrorBody),
    ))]
pub async fn screenshot<S, Q, E>(
    State(state): State<SharedState<S, Q, E>>,
    Caller(tenant): Caller,
    Path((job, file)): Path<(String, String)>,
) -> Result<Response, ApiError>
where
    S: Store,
    Q: Queue,
    E: Files,
{
    let name = format!("{job}/{file}");
    if domain::screenshots::job_of(&name) != Some(job.as_str()) {
        return Err(ApiError::NotFound(format!("{name:?} is not a screenshot's name (job/id.jpg)")));
    }
    let job = owned_job(&state.store, &tenant, &job).await?;
    let link = state.exports.link(&object_key(&name), &format!("{}-{file}", job.id), LINK_TTL).await?;
    Ok((StatusCode::SEE_OTHER, [(header::LOCATION, exports::location(&link)?)]).into_response())
}

#[cfg(test)]
mod tests {
    use axum::http::{StatusCode, header};
    use domain::{CleanUrl, Job, JobSettings, Tenant};
    use store::prelude::*;

    use crate::test_app::{app, get, store, tenant};

    async fn job_of(store: &store::MemoryStore, tenant: Tenant) -> Job {
        let job = Job::new(tenant, "n".into(), JobSettings::default(), 1, 0);
        let url = CleanUrl::parse("https://site.example/", Default::default()).unwrap();
        store.create_job(&job, &[url]).await.unwrap();
        job
    }

    #[tokio::test]
    async fn a_screenshot_is_a_link_for_its_jobs_tenant_and_nothing_for_anyone_else() {
        let store = store().await;
        let (mine, theirs) = (job_of(&store, tenant()).await, job_of(&store, Tenant("other".into())).await);
        let app = app(store);
        let answer = get(&app, &format!("/screenshots/{}/0193-ab.jpg", mine.id)).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER);
        let location = answer.headers[header::LOCATION].to_str().unwrap();
        assert!(location.starts_with(&format!("memory://screenshots/{}/0193-ab.jpg", mine.id)), "{location}");
        assert_eq!(get(&app, &format!("/screenshots/{}/0193-ab.jpg", theirs.id)).await.status, StatusCode::NOT_FOUND);
        for bad in ["0193-ab.png", "..%2Fexports.jpg", "a%20b.jpg"] {
            let answer = get(&app, &format!("/screenshots/{}/{bad}", mine.id)).await;
            assert_eq!(answer.status, StatusCode::NOT_FOUND, "{bad}");
            assert!(answer.text().contains("not a screenshot's name"), "{bad}: {}", answer.text());
        }
    }
}
