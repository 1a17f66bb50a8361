//! Every answer of `GET /results` and `GET /exports` is bounded, whatever the job holds.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use domain::lifecycle::Outcome;
use domain::report::{ExportFile, ExportFormat, JobReport, Summary};
use domain::{Analysis, CleanUrl, Job, JobSettings, JobStatus, Strategy};
use serde_json::json;
use store::MemoryStore;
use store::prelude::*;
use tower::ServiceExt;

use crate::BASE_PATH;
use crate::test_app::{Answer, KEY, RESPONSE_MAX, app, every_page, get, post_json, store, tenant};

/// A job of `n` URLs; the first `measured` succeed with a `blob_bytes`-long metric each.
async fn job(store: &MemoryStore, n: u32, measured: u32, blob_bytes: usize) -> Job {
    let urls: Vec<CleanUrl> =
        (0..n).map(|i| CleanUrl::parse(&format!("https://site.example/{i}"), Default::default()).unwrap()).collect();
    let job = Job::new(tenant(), "n".into(), JobSettings::default(), u64::from(n), 0);
    store.create_job(&job, &urls).await.unwrap();
    for seq in 0..measured {
        let metrics = json!({"ttfb_ms": seq, "blob": "x".repeat(blob_bytes)});
        let analysis = Analysis {
            engine: "http".into(),
            strategy: Strategy::Mobile,
            score: Some(90.0),
            metrics: metrics.as_object().unwrap().clone(),
            cached_from: None,
        };
        store.record_outcome(&job.id, seq, &Outcome::Succeeded(analysis), None, 2).await.unwrap();
    }
    store.count_recorded(2).await.unwrap();
    store.get_job(&job.id).await.unwrap().unwrap()
}

/// A finished job of `n` URLs with its report written, as the exporter leaves it.
async fn exported(store: &MemoryStore, n: u32) -> Job {
    let job = job(store, n, n, 10).await;
    assert!(
        store
            .transition_job(&Job { status: JobStatus::Pending, ..job.clone() }, JobStatus::Completed, 3)
            .await
            .unwrap()
    );
    let exports = ExportFormat::ALL
        .iter()
        .map(|f| ExportFile { format: *f, key: f.object_key(&job.id), bytes: 1_000, rows: u64::from(n) })
        .collect();
    let mut summary = Summary { complete: true, ..Summary::default() };
    summary.by_status.insert("succeeded".into(), u64::from(n));
    store.put_report(&job.id, &JobReport { summary, exports, digest: None, written_at: 4 }, None).await.unwrap();
    store.get_job(&job.id).await.unwrap().unwrap()
}

/// The rows' `ttfb_ms` (each job URL's own number) across `pages`, each page within a
/// Lambda's response.
fn ttfbs_within_budget(pages: &[Answer]) -> Vec<u64> {
    let mut seen = Vec::new();
    for (n, answer) in pages.iter().enumerate() {
        assert!(answer.body.len() <= RESPONSE_MAX, "page {n} is {} bytes", answer.body.len());
        let rows = answer.json()["results"].as_array().unwrap().clone();
        seen.extend(rows.iter().map(|r| r["metrics"]["ttfb_ms"].as_u64().unwrap()));
    }
    seen
}

#[tokio::test]
async fn sorted_pages_stop_at_the_same_byte_budget_and_continue_at_the_next_place() {
    let store = store().await;
    let job = job(&store, 1_000, 1_000, 8_000).await;
    let app = app(store);
    let pages = every_page(&app, "GET", &format!("/results/{}?limit=1000&sort=ttfb_ms&order=desc", job.id)).await;
    let seen = ttfbs_within_budget(&pages);
    assert_eq!(seen, (0..1_000).rev().collect::<Vec<u64>>(), "every URL once, in the sort's order");
    assert_eq!(pages.len(), 2, "8 MB in pages of at most 4 MB of rows");
}

#[tokio::test]
async fn pages_stop_at_their_byte_budget_and_continue_where_they_stopped() {
    let store = store().await;
    // 1 000 rows of about 8 KB: 8 MB in all, more than a Lambda may answer.
    let job = job(&store, 1_000, 1_000, 8_000).await;
    let app = app(store);
    let pages = every_page(&app, "GET", &format!("/results/{}?limit=1000", job.id)).await;
    let seen = ttfbs_within_budget(&pages);
    assert_eq!(seen, (0..1_000).collect::<Vec<u64>>(), "every URL once, in order");
    assert_eq!(pages.len(), 2, "8 MB in pages of at most 4 MB of rows");

    // A small job's whole CSV is inline, and bounded the same way.
    let answer = get(&app, &format!("/results/{}?format=csv", job.id)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.body.len() <= RESPONSE_MAX, "{} bytes", answer.body.len());
    assert!(answer.headers.contains_key("x-next-cursor"), "cut at the budget: the header says where to go on");
}

#[tokio::test]
async fn a_finished_jobs_whole_exports_are_links_to_its_files() {
    let store = store().await;
    let job = exported(&store, 1_500).await;
    let app = app(store);
    for (format, key) in [("csv", "csv"), ("jsonl", "jsonl")] {
        let answer = get(&app, &format!("/results/{}?format={format}", job.id)).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{format}");
        let location = answer.headers[header::LOCATION].to_str().unwrap();
        assert!(location.starts_with(&format!("memory://exports/{}.{key}", job.id)), "{location}");
        assert!(location.contains(&format!("name=speedbatch-{}.{key}", job.id)), "{location}");
        assert!(location.ends_with("ttl=900"), "links last 15 minutes: {location}");
        assert_eq!(answer.json()["files"][0]["url"], location);
    }
    let links = get(&app, &format!("/exports/{}", job.id)).await;
    assert_eq!(links.status, StatusCode::OK);
    let links = links.json();
    let formats: Vec<&str> = links["files"].as_array().unwrap().iter().map(|f| f["format"].as_str().unwrap()).collect();
    assert_eq!(formats, ["csv", "jsonl"]);

    // A page of a finished job takes its summary from the report: complete, no whole read.
    let page = get(&app, &format!("/results/{}?limit=10", job.id)).await.json();
    assert_eq!(page["summary"]["complete"], true);
    assert_eq!(page["summary"]["by_status"]["succeeded"], 1_500);
    assert_eq!(page["results"].as_array().unwrap().len(), 10);

    // A page with a limit stays inline, in any format.
    let csv = get(&app, &format!("/results/{}?format=csv&limit=5", job.id)).await;
    assert_eq!(
        (csv.status, csv.headers[header::CONTENT_TYPE].to_str().unwrap()),
        (StatusCode::OK, "text/csv; charset=utf-8")
    );
    let jsonl = get(&app, &format!("/results/{}?format=jsonl&limit=5", job.id)).await;
    assert_eq!(String::from_utf8(jsonl.body).unwrap().lines().count(), 5);
}

#[tokio::test]
async fn a_large_job_without_files_says_why_and_when() {
    let store = store().await;
    let running = job(&store, 1_500, 10, 10).await;
    let finished = job(&store, 1_500, 0, 10).await;
    let small = job(&store, 20, 20, 10).await;
    store.request_cancel(&finished.id, 5).await.unwrap();
    store.cancel_queued(&finished.id, 6, Duration::from_secs(5)).await.unwrap();
    assert!(
        store
            .transition_job(&Job { status: JobStatus::Cancelling, ..finished.clone() }, JobStatus::Cancelled, 7)
            .await
            .unwrap()
    );
    let app = app(store);

    let answer = get(&app, &format!("/results/{}?format=csv", running.id)).await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert!(answer.json()["error"]["message"].as_str().unwrap().contains("still running"));
    let answer = get(&app, &format!("/exports/{}", running.id)).await;
    assert_eq!(answer.status, StatusCode::CONFLICT);

    let answer = get(&app, &format!("/results/{}?format=jsonl", finished.id)).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.headers[header::RETRY_AFTER], "5");
    assert_eq!(answer.json()["error"]["code"], "not_ready");

    let answer = get(&app, &format!("/results/{}?format=csv&status=failed", running.id)).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer.json()["error"]["details"][0]["field"], "limit");

    // A running job's summary is its counters, at no cost.
    let page = get(&app, &format!("/results/{}?limit=1", running.id)).await.json();
    assert_eq!(page["summary"]["complete"], false);
    assert_eq!(page["summary"]["by_status"]["succeeded"], 10);
    assert_eq!(page["summary"]["by_status"]["queued"], 1_490);

    // A small job is answered inline whatever its state.
    let answer = get(&app, &format!("/results/{}?format=csv", small.id)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(String::from_utf8(answer.body).unwrap().split("\r\n").filter(|l| !l.is_empty()).count(), 21);
    let answer = get(&app, &format!("/results/{}?format=bogus", small.id)).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_key_that_cannot_be_one_is_refused_without_a_read() {
    let store = store().await;
    let job = job(&store, 1, 0, 10).await;
    // An outage makes any read fail with 500: a 401 proves none was made.
    store.set_unavailable(true);
    let app = app(store);
    for key in ["sb_guess", "x".repeat(10_000).as_str(), &KEY.replacen("sb_", "pk_", 1), &format!("{KEY}0")] {
        let request = Request::builder()
            .uri(format!("{BASE_PATH}/results/{}", job.id))
            .header("x-api-key", key)
            .body(Body::empty())
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{}", &key[..key.len().min(20)]);
    }
    assert_eq!(
        get(&app, &format!("/results/{}", job.id)).await.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "a real key is looked up"
    );
}

#[tokio::test]
async fn a_urls_reference_and_labels_come_back_in_every_format_and_filter_the_rows() {
    let app = app(store().await);
    let urls = json!([
        {"url": "https://a.example/", "ref": "B-17", "labels": {"city": "Lyon"}},
        {"url": "https://b.example/", "labels": {"city": "Paris", "vip": true}},
        "https://c.example/",
    ]);
    let created = post_json(&app, "/start", &json!({"urls": urls})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let id = created.json()["batch_job_id"].as_str().unwrap().to_owned();

    let rows = get(&app, &format!("/results/{id}")).await.json()["results"].clone();
    assert_eq!((rows[0]["ref"].as_str(), rows[0]["labels"]["city"].as_str()), (Some("B-17"), Some("Lyon")));
    assert_eq!(rows[1]["labels"], json!({"city": "Paris", "vip": "true"}));
    assert!(rows[2].get("ref").is_none() && rows[2].get("labels").is_none(), "{}", rows[2]);

    let urls_with = |query: &str| {
        let app = app.clone();
        let uri = format!("/results/{id}?{query}");
        async move {
            let body = get(&app, &uri).await.json();
            body["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["url"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(urls_with("label=city").await, ["https://a.example", "https://b.example"]);
    assert_eq!(urls_with("label=city:Paris").await, ["https://b.example"]);
    assert_eq!(urls_with("label=vip&status=succeeded").await, Vec::<String>::new());

    let csv = get(&app, &format!("/results/{id}?format=csv")).await.text();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("url,ref,label.city,label.vip,status,"), "{csv}");
    assert!(lines[1].starts_with("https://a.example,B-17,Lyon,,queued,"), "{csv}");
    assert!(lines[3].starts_with("https://c.example,,,,queued,"), "{csv}");

    let bad = get(&app, &format!("/results/{id}?label=:Lyon")).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text().contains("label"), "{}", bad.text());
}
