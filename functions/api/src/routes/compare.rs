//! `GET /compare?base=&head=`: two finished jobs URL by URL, each URL's verdict judged beyond
//! run-to-run noise (`domain::compare`). Each answer reads the two jobs' digests (one S3
//! object each, written once when the job finished), never the jobs' URLs.

use std::collections::{BTreeMap, HashMap};

use aws::exports::ExportFiles;
use axum::Json;
use axum::extract::{Query, State};
use domain::compare::{Digest, UrlComparison, Verdict, compare as compare_digests, counts};
use domain::{Job, Tenant};
use serde::Serialize;
use store::Reports;

use super::progress::owned_job;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::{Files, Queue, SharedState, Store};
use crate::{cursor, query};

/// The most URLs a page holds (a compared URL is under 2 KB of JSON).
pub const MAX_LIMIT: usize = 1_000;
const RETRY_SECONDS: u32 = 5;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Comparison {
    pub base: String,
    pub head: String,
    /// URLs per verdict, over both jobs' URLs (every verdict named).
    pub counts: BTreeMap<String, u64>,
    /// Regressed first, then improved, new, gone and unchanged; by URL within each.
    pub urls: Vec<UrlComparison>,
    pub next_cursor: Option<String>,
}

/// `GET /compare?base=&head=&verdict=&limit=&cursor=`.
#[utoipa::path(get, path = "/compare", tag = "history",
    params(
        ("base" = String, Query, min_length = 1, description = "The earlier job's batch_job_id"),
        ("head" = String, Query, min_length = 1, description = "The later job's batch_job_id"),
        ("verdict" = Option<Verdict>, Query, description = "Only URLs with this verdict"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "1 to 1000, default 100"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses(
        (status = 200, description = "Each URL of either job with its verdict, the numbers behind it and their changes", body = Comparison),
        (status = 400, description = "A tampered cursor", body = crate::error::ErrorBody),
        (status = 401, description = "No or unknown API key", body = crate::error::ErrorBody),
        (status = 404, description = "No such job for this tenant", body = crate::error::ErrorBody),
        (status = 409, description = "A job has not finished, or finished before comparisons were kept", body = crate::error::ErrorBody),
        (status = 422, description = "A missing job id, an invalid verdict or limit, or jobs whose numbers cannot be compared (another engine or strategy)", body = crate::error::ErrorBody),
        (status = 503, description = "A job has just finished and its digest is being written: try again after Retry-After seconds", body = crate::error::ErrorBody),
    ))]
pub async fn compare<S, Q, E>(
    State(state): State<SharedState<S, Q, E>>,
    Caller(tenant): Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Comparison>, ApiError>
where
    S: Store,
    Q: Queue,
    E: Files,
{
    let param = |name: &str| params.get(name).map(String::as_str);
    let base_id = query::required("base", param("base"))?;
    let head_id = query::required("head", param("head"))?;
    let verdict = query::choice::<Verdict>("verdict", param("verdict"))?;
    let limit = query::limit(param("limit"), 100, MAX_LIMIT)?;
    let offset = param("cursor").map(|c| cursor::decode(c, |s| s.parse::<usize>().ok())).transpose()?.unwrap_or(0);
    let (base, head) =
        futures::try_join!(finished_job(&state.store, &tenant, base_id), finished_job(&state.store, &tenant, head_id))?;
    if base.settings.engine != head.settings.engine || base.settings.strategy != head.settings.strategy {
        return Err(ApiError::invalid_field(
            "head",
            format!(
                "was analysed with engine {} and strategy {}, base with {} and {}: their numbers cannot be compared",
                head.settings.engine, head.settings.strategy, base.settings.engine, base.settings.strategy
            ),
        ));
    }
    let (base_digest, head_digest) =
        futures::try_join!(digest(&state.store, &state.exports, &base), digest(&state.store, &state.exports, &head))?;
    let compared = compare_digests(&base_digest, &head_digest);
    let counts = counts(&compared);
    let selected: Vec<UrlComparison> =
        compared.into_iter().filter(|url| verdict.is_none_or(|v| url.verdict == v)).skip(offset).collect();
    let more = selected.len() > limit;
    let urls: Vec<UrlComparison> = selected.into_iter().take(limit).collect();
    let next_cursor = more.then(|| cursor::encode(&(offset + limit).to_string()));
    Ok(Json(Comparison { base: base.id.to_string(), head: head.id.to_string(), counts, urls, next_cursor }))
}

/// The caller's job `id`, finished: a running job's URLs have no verdict yet.
async fn finished_job<S: Store>(store: &S, tenant: &Tenant, id: &str) -> Result<Job, ApiError> {
    let job = owned_job(store, tenant, id).await?;
    if !job.status.is_finished() {
        return Err(ApiError::Conflict(format!("job {id} is {}: compare it once it has finished", job.status)));
    }
    Ok(job)
}

async fn digest<S: Reports, E: ExportFiles>(store: &S, files: &E, job: &Job) -> Result<Digest, ApiError> {
    let report = store.get_report(&job.id).await?.ok_or_else(|| ApiError::NotReady {
        message: format!(
            "job {} has just finished and its results are being written: try again in a few seconds",
            job.id
        ),
        retry_after_seconds: RETRY_SECONDS,
    })?;
    let key = report.digest.ok_or_else(|| {
        ApiError::Conflict(format!("job {} finished before comparisons were kept: run it again to compare it", job.id))
    })?;
    crate::exports::read_digest(files, job, &key).await?.ok_or_else(|| {
        ApiError::Conflict(format!("job {}'s results have expired with its exports: it cannot be compared", job.id))
    })
}

#[cfg(test)]
mod tests {

    use aws::exports::{ExportFiles, MemoryExports};
    use domain::compare::Digest;
    use domain::lifecycle::Outcome;
    use domain::report::{JobReport, Summary};
    use domain::{Analysis, CleanUrl, EngineKind, ErrorKind, Job, JobSettings, JobStatus, Tenant};
    use serde_json::{Value, json};
    use store::MemoryStore;
    use store::prelude::*;

    use crate::test_app::{RESPONSE_MAX, app_with_exports, get, store, tenant};

    /// Per URL: its path and its ttfb_ms, or `None` for a failure.
    type Pages<'a> = &'a [(&'a str, Option<f64>)];

    /// A finished job of `tenant` over `pages`, with its digest and report as the exporter
    /// leaves them (unless `report` is false).
    async fn finished(
        store: &MemoryStore,
        files: &MemoryExports,
        tenant: &Tenant,
        pages: Pages<'_>,
        report: bool,
    ) -> Job {
        let urls: Vec<CleanUrl> = pages
            .iter()
            .map(|(path, _)| CleanUrl::parse(&format!("https://site.example/{path}"), Default::default()).unwrap())
            .collect();
        let settings = JobSettings { engine: EngineKind::Http, ..JobSettings::default() };
        let job = Job::new(tenant.clone(), "c".into(), settings, pages.len() as u64, 0);
        store.create_job(&job, &urls).await.unwrap();
        for (seq, (_, ttfb)) in pages.iter().enumerate() {
            let seq = seq as u32;
            let outcome = match ttfb {
                Some(ms) => Outcome::Succeeded(Analysis {
                    engine: "http".into(),
                    strategy: domain::Strategy::Mobile,
                    score: Some(90.0),
                    metrics: json!({"ttfb_ms": ms}).as_object().unwrap().clone(),
                    cached_from: None,
                }),
                None => Outcome::Failed { kind: ErrorKind::Timeout, reason: "slow".into(), analysis: None },
            };
            store.record_outcome(&job.id, seq, &outcome, None, 2).await.unwrap();
        }
        store.count_recorded(2).await.unwrap();
        let job = store.get_job(&job.id).await.unwrap().unwrap();
        store.transition_job(&job, JobStatus::Completed, 3).await.unwrap();
        if report {
            let tasks = store.list_tasks(&job.id, &Default::default(), 1_000, None).await.unwrap().items;
            let key = Digest::object_key(&job.id);
            files.put(&key, serde_json::to_vec(&Digest::of(&tasks)).unwrap(), "application/json").await.unwrap();
            let report =
                JobReport { summary: Summary::default(), exports: Vec::new(), digest: Some(key), written_at: 4 };
            store.put_report(&job.id, &report, None).await.unwrap();
        }
        store.get_job(&job.id).await.unwrap().unwrap()
    }

    fn verdicts(body: &Value) -> Vec<(String, String)> {
        body["urls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| {
                (
                    u["url"].as_str().unwrap().replace("https://site.example/", ""),
                    u["verdict"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn each_url_gets_a_verdict_beyond_noise_regressions_first() {
        let (store, files) = (store().await, MemoryExports::default());
        let base =
            &[("a", Some(20.0)), ("slow", Some(20.0)), ("broke", Some(20.0)), ("gone", Some(20.0)), ("fixed", None)];
        let head =
            &[("a", Some(60.0)), ("slow", Some(900.0)), ("broke", None), ("new", Some(20.0)), ("fixed", Some(20.0))];
        let base = finished(&store, &files, &tenant(), base, true).await;
        let head = finished(&store, &files, &tenant(), head, true).await;
        let app = app_with_exports(store, files);

        let answer = get(&app, &format!("/compare?base={}&head={}", base.id, head.id)).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        let body = answer.json();
        let expected = [
            ("broke", "regressed"),
            ("slow", "regressed"),
            ("fixed", "improved"),
            ("new", "new"),
            ("gone", "gone"),
            ("a", "unchanged"),
        ];
        assert_eq!(
            verdicts(&body),
            expected.map(|(u, v)| (u.to_owned(), v.to_owned())),
            "ttfb +40 ms is within its 50 ms noise"
        );
        assert_eq!(body["counts"], json!({"regressed": 2, "improved": 1, "new": 1, "gone": 1, "unchanged": 1}));
        let slow = &body["urls"][1];
        assert_eq!(slow["reasons"], json!(["ttfb_ms +880 (noise 50)"]));
        assert_eq!(
            slow["changes"][1],
            json!({"metric": "ttfb_ms", "base": 20.0, "head": 900.0, "change": 880.0, "threshold": 50.0, "verdict": "regressed"})
        );
        assert_eq!(body["urls"][0]["reasons"], json!(["failed: timeout"]));

        let only =
            get(&app, &format!("/compare?base={}&head={}&verdict=regressed&limit=1", base.id, head.id)).await.json();
        assert_eq!(verdicts(&only), [("broke".to_owned(), "regressed".to_owned())]);
        let next = only["next_cursor"].as_str().unwrap();
        let rest =
            get(&app, &format!("/compare?base={}&head={}&verdict=regressed&limit=1&cursor={next}", base.id, head.id))
                .await
                .json();
        assert_eq!(
            (verdicts(&rest), &rest["next_cursor"]),
            (vec![("slow".to_owned(), "regressed".to_owned())], &json!(null))
        );
        assert_eq!(rest["counts"]["unchanged"], 1, "counts cover both jobs whatever the page");
    }

    #[tokio::test]
    async fn jobs_that_cannot_be_compared_say_why() {
        let (store, files) = (store().await, MemoryExports::default());
        let pages = &[("a", Some(20.0))];
        let done = finished(&store, &files, &tenant(), pages, true).await;
        let unreported = finished(&store, &files, &tenant(), pages, false).await;
        let theirs = finished(&store, &files, &Tenant("other".into()), pages, true).await;
        let running = Job::new(tenant(), "r".into(), JobSettings::default(), 1, 0);
        store
            .create_job(&running, &[CleanUrl::parse("https://site.example/a", Default::default()).unwrap()])
            .await
            .unwrap();
        let old = finished(&store, &files, &tenant(), pages, false).await;
        let report = JobReport { summary: Summary::default(), exports: Vec::new(), digest: None, written_at: 4 };
        store.put_report(&old.id, &report, None).await.unwrap();
        let expired = finished(&store, &files, &tenant(), pages, false).await;
        let report = JobReport { digest: Some(Digest::object_key(&expired.id)), ..report };
        store.put_report(&expired.id, &report, None).await.unwrap();
        let app = app_with_exports(store, files);
        let ask = |base: &Job, head: &Job| format!("/compare?base={}&head={}", base.id, head.id);

        assert_eq!(get(&app, &ask(&done, &theirs)).await.status, 404, "another tenant's job is no job");
        let answer = get(&app, &ask(&done, &running)).await;
        assert_eq!(answer.status, 409);
        assert!(answer.json()["error"]["message"].as_str().unwrap().contains("is pending"), "{}", answer.text());
        let answer = get(&app, &ask(&unreported, &done)).await;
        assert_eq!(
            (answer.status.as_u16(), answer.headers.get("retry-after").map(|v| v.to_str().unwrap())),
            (503, Some("5"))
        );
        assert_eq!(get(&app, &ask(&old, &done)).await.status, 409, "finished before digests were kept");
        let answer = get(&app, &ask(&done, &expired)).await;
        assert_eq!(answer.status, 409, "its digest expired with its exports: {}", answer.text());
        assert!(answer.text().contains("expired"), "{}", answer.text());
        for (query, field) in [
            (format!("/compare?head={}", done.id), "base"),
            (format!("{}&verdict=worse", ask(&done, &done)), "verdict"),
        ] {
            let answer = get(&app, &query).await;
            assert_eq!(
                (answer.status.as_u16(), answer.json()["error"]["details"][0]["field"].clone()),
                (422, json!(field))
            );
        }
    }

    #[tokio::test]
    async fn a_page_of_a_large_comparison_stays_far_inside_the_response_limit() {
        let (store, files) = (store().await, MemoryExports::default());
        let paths: Vec<String> = (0..1_000).map(|i| format!("{i:04}/{}", "p".repeat(1_500))).collect();
        let base: Vec<(&str, Option<f64>)> = paths.iter().map(|p| (p.as_str(), Some(20.0))).collect();
        let head: Vec<(&str, Option<f64>)> = paths.iter().map(|p| (p.as_str(), Some(900.0))).collect();
        let base = finished(&store, &files, &tenant(), &base, true).await;
        let head = finished(&store, &files, &tenant(), &head, true).await;
        let app = app_with_exports(store, files);
        let answer = get(&app, &format!("/compare?base={}&head={}&limit=1000", base.id, head.id)).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.json()["urls"].as_array().unwrap().len(), 1_000);
        assert!(answer.body.len() < RESPONSE_MAX / 2, "{} bytes for 1000 URLs of 1.5 KB", answer.body.len());
    }
}
