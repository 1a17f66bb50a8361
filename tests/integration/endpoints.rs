//! The listing, cancellation, caching and status endpoints against ministack.

use axum::body::Body;
use axum::http::Request;
use domain::JobStatus;
use serde_json::json;
use store::prelude::*;
use testkit::site::Site;

use tower::ServiceExt;

use crate::harness::Harness;

const API: &str = domain::paths::BASE_PATH;

#[tokio::test]
async fn jobs_are_listed_newest_first_in_pages_for_their_tenant_only() {
    let h = Harness::new().await;
    let alice = h.key_for("alice").await;
    let bob = h.key_for("bob").await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(
            h.start(&alice, json!({"urls": [format!("http://127.0.0.1:9/{n}")], "name": format!("job {n}")})).await,
        );
    }
    h.start(&bob, json!({"urls": ["http://127.0.0.1:9/bob"]})).await;
    ids.reverse();

    let first = h.request("GET", &format!("{API}/jobs?limit=2"), Some(&alice), None).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let names: Vec<&str> = first.body["jobs"].as_array().unwrap().iter().map(|j| j["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["job 4", "job 3"]);
    let cursor = first.body["next_cursor"].as_str().expect("more pages").to_owned();
    let second = h.request("GET", &format!("{API}/jobs?limit=2&cursor={cursor}"), Some(&alice), None).await;
    let third_cursor = second.body["next_cursor"].as_str().unwrap().to_owned();
    let third = h.request("GET", &format!("{API}/jobs?limit=2&cursor={third_cursor}"), Some(&alice), None).await;
    let all: Vec<String> = [&first, &second, &third]
        .iter()
        .flat_map(|page| {
            page.body["jobs"].as_array().unwrap().iter().map(|j| j["batch_job_id"].as_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(all, ids.iter().map(|id| id.to_string()).collect::<Vec<_>>());
    assert!(third.body["next_cursor"].is_null());

    let everything = h.request("GET", &format!("{API}/jobs"), Some(&bob), None).await;
    assert_eq!(everything.body["jobs"].as_array().unwrap().len(), 1, "bob sees only his own job");

    h.env.store().request_cancel(&ids[0], 1).await.unwrap();
    let cancelling = h.request("GET", &format!("{API}/jobs?status=cancelling"), Some(&alice), None).await;
    let found: Vec<&str> =
        cancelling.body["jobs"].as_array().unwrap().iter().map(|j| j["batch_job_id"].as_str().unwrap()).collect();
    assert_eq!(found, [ids[0].as_str()]);

    let tampered =
        h.request("GET", &format!("{API}/jobs?cursor={}x", &cursor[..cursor.len() - 1]), Some(&alice), None).await;
    assert_eq!(tampered.status, 400, "{}", tampered.body);
    assert_eq!(tampered.body["error"]["code"], "malformed_request");
    let bad_limit = h.request("GET", &format!("{API}/jobs?limit=101"), Some(&alice), None).await;
    assert_eq!(bad_limit.status, 422);
    assert_eq!(bad_limit.body["error"]["details"][0]["field"], "limit");
    let bad_status = h.request("GET", &format!("{API}/jobs?status=done"), Some(&alice), None).await;
    assert_eq!(bad_status.status, 422);
    h.env.cleanup().await;
}

#[tokio::test]
async fn a_cancelled_job_starts_nothing_more_and_its_counts_add_up() {
    let h = Harness::new().await;
    let site = Site::start().await;
    let key = h.key_for("acme").await;
    let other = h.key_for("other").await;
    let urls: Vec<String> = (0..10).map(|n| site.url(&format!("/page/{n}"))).collect();
    let id = h.start(&key, json!({"urls": urls})).await;
    let queue = &h.env.queues.normal;
    // Three URLs are analysed before the cancel arrives.
    let mut done = 0;
    while done < 3 {
        let event = h.receive(queue, 3 - done).await;
        done += event.records.len() as i32;
        h.analyze(queue, event).await;
    }
    let path = format!("{API}/cancel/{id}");
    assert_eq!(h.request("POST", &path, Some(&other), None).await.status, 404, "not another tenant's to cancel");
    let cancelled = h.request("POST", &path, Some(&key), None).await;
    assert_eq!(cancelled.status, 202, "{}", cancelled.body);
    assert_eq!(cancelled.body["status"], "cancelling");
    assert_eq!(h.request("POST", &path, Some(&key), None).await.status, 202, "cancelling again is harmless");
    // The tracker sees the job cancelling and cancels its queued URLs in bulk.
    h.track(id.as_str()).await;
    let job = h.env.store().get_job(&id).await.unwrap().unwrap();
    assert_eq!((job.counters.queued, job.counters.cancelled), (0, 7));
    // Their messages still arrive, and change nothing.
    h.drain(queue).await;
    assert_eq!(site.hits(), 3, "no URL started after the cancel");
    h.track(id.as_str()).await;
    let progress = h.request("GET", &format!("{API}/progress/{id}"), Some(&key), None).await;
    let body = &progress.body;
    assert_eq!(body["status"], "cancelled", "{body}");
    assert_eq!(
        (body["succeeded"].as_u64(), body["cancelled"].as_u64(), body["failed"].as_u64()),
        (Some(3), Some(7), Some(0))
    );
    let finished = h.request("POST", &path, Some(&key), None).await;
    assert_eq!(finished.status, 409);
    assert_eq!(finished.body["error"]["code"], "conflict");
    h.env.cleanup().await;
}

#[tokio::test]
async fn progress_answers_304_until_the_job_changes() {
    let h = Harness::new().await;
    let site = Site::start().await;
    let key = h.key_for("acme").await;
    let id = h.start(&key, json!({"urls": [site.url("/page/1"), site.url("/page/2")]})).await;
    let path = format!("{API}/progress/{id}");
    let get = |etag: Option<String>| {
        let mut request = Request::builder().uri(&path).header("x-api-key", &key);
        if let Some(etag) = etag {
            request = request.header("if-none-match", etag);
        }
        request.body(Body::empty()).unwrap()
    };
    let response = h.router.clone().oneshot(get(None)).await.unwrap();
    assert_eq!(response.status(), 200);
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "a strong ETag: {etag}");
    let unchanged = h.router.clone().oneshot(get(Some(etag.clone()))).await.unwrap();
    assert_eq!(unchanged.status(), 304);
    assert!(axum::body::to_bytes(unchanged.into_body(), 1024).await.unwrap().is_empty());
    h.drain(&h.env.queues.normal).await;
    let changed = h.router.clone().oneshot(get(Some(etag.clone()))).await.unwrap();
    assert_eq!(changed.status(), 200, "the counters moved");
    assert_ne!(changed.headers()["etag"].to_str().unwrap(), etag);
    h.env.cleanup().await;
}

#[tokio::test]
async fn health_and_queue_status_report_the_dependencies() {
    let h = Harness::new().await;
    let key = h.key_for("acme").await;
    let doc = h.request("GET", domain::paths::OPENAPI_PATH, None, None).await;
    assert_eq!(doc.status, 200, "the OpenAPI document needs no key");
    assert!(doc.body["paths"][domain::paths::endpoint("/start")]["post"].is_object());
    // JobView flattens the settings and counters: allOf with references to them.
    let schemas = &doc.body["components"]["schemas"];
    let job_view = schemas["JobView"].to_string();
    for part in ["batch_job_id", "progress_percent", "eta_seconds", "schemas/JobSettings", "schemas/Counters"] {
        assert!(job_view.contains(part), "JobView documents {part}: {job_view}");
    }
    // JobSettings flattens its field-data choices: allOf with FieldAsk's reference.
    let settings = schemas["JobSettings"].to_string();
    for part in ["\"priority\"", "\"batch_size\"", "schemas/FieldAsk"] {
        assert!(settings.contains(part), "JobSettings documents {part}: {settings}");
    }
    assert!(schemas["FieldAsk"]["properties"]["field_data"].is_object(), "named as the API takes it");
    assert!(schemas["Counters"]["properties"]["total_urls"].is_object(), "counters are named as the API shows them");
    let health = h.request("GET", &format!("{API}/health"), None, None).await;
    assert_eq!(health.status, 200, "{}", health.body);
    assert_eq!(health.body["status"], "healthy");
    assert_eq!(health.body["checks"]["dynamodb"]["status"], "ok");
    assert_eq!(health.body["checks"]["sqs"]["status"], "ok");
    assert!(health.body["checks"]["dynamodb"]["latency_ms"].is_number());
    assert!(!health.body.to_string().contains(&h.env.table), "no resource names in a public answer");

    h.start(&key, json!({"urls": ["http://127.0.0.1:9/a", "http://127.0.0.1:9/b"], "priority": "low"})).await;
    h.env.sqs.send_message().queue_url(&h.env.dead_letters.low).message_body("poison").send().await.unwrap();
    assert_eq!(h.request("GET", &format!("{API}/queue/status"), None, None).await.status, 401);
    let status = h.request("GET", &format!("{API}/queue/status"), Some(&key), None).await;
    assert_eq!(status.status, 200, "{}", status.body);
    let low = &status.body["queues"][2];
    assert_eq!(low["priority"], "low");
    assert_eq!(
        (low["visible"].as_u64(), low["in_flight"].as_u64(), low["dead_letter"].as_u64()),
        (Some(2), Some(0), Some(1))
    );
    assert_eq!(status.body["queues"][0]["visible"], 0);

    h.env.dynamo.delete_table().table_name(&h.env.table).send().await.unwrap();
    let down = h.request("GET", &format!("{API}/health"), None, None).await;
    assert_eq!(down.status, 503);
    assert_eq!(down.body["status"], "unhealthy");
    h.env.cleanup().await;
}

#[tokio::test]
async fn finished_jobs_stay_finished() {
    let h = Harness::new().await;
    let site = Site::start().await;
    let key = h.key_for("acme").await;
    let id = h.start(&key, json!({"urls": [site.url("/page/1")]})).await;
    h.drain(&h.env.queues.normal).await;
    h.track(id.as_str()).await;
    assert_eq!(h.env.store().get_job(&id).await.unwrap().unwrap().status, JobStatus::Completed);
    let response = h.request("POST", &format!("{API}/cancel/{id}"), Some(&key), None).await;
    assert_eq!(response.status, 409);
    assert_eq!(
        response.body["error"]["message"],
        format!("job {id} has already finished (completed) and cannot be cancelled")
    );
    h.env.cleanup().await;
}

#[tokio::test]
async fn results_come_in_pages_with_a_summary_and_as_csv() {
    let h = Harness::new().await;
    let site = Site::start().await;
    let key = h.key_for("acme").await;
    let urls = [site.url("/page/1"), site.url("/page/2"), site.url("/missing"), site.url("/page/3?q=a,b")];
    let id = h.start(&key, json!({"urls": urls})).await;
    h.drain(&h.env.queues.normal).await;
    h.track(id.as_str()).await;
    let path = format!("{API}/results/{id}");

    // Finished, not yet exported: the summary is the counters' (no read of the URLs).
    let early = h.request("GET", &path, Some(&key), None).await;
    assert_eq!(early.body["summary"]["complete"], false, "{}", early.body);
    assert_eq!(early.body["summary"]["by_status"]["failed"], 1);
    assert_eq!(early.body["summary"]["errors_by_kind"], json!({}));
    let exported = h.exporter.export(&id, domain::time::now_millis()).await.unwrap();
    assert!(matches!(exported, exporter::Exported::Written { urls: 4, .. }), "{exported:?}");

    let all = h.request("GET", &path, Some(&key), None).await;
    assert_eq!(all.body["summary"]["complete"], true, "{}", all.body);
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(all.body["status"], "completed_with_errors");
    let rows = all.body["results"].as_array().unwrap();
    assert_eq!(rows.iter().map(|r| r["url"].as_str().unwrap()).collect::<Vec<_>>(), urls);
    assert_eq!(rows[2]["status"], "failed");
    assert_eq!(rows[2]["error"], "HTTP 404 Not Found");
    assert_eq!(rows[2]["error_kind"], "http_4xx");
    assert_eq!(rows[0]["engine"], "http");
    assert_eq!(rows[0]["strategy"], "mobile");
    assert_eq!(rows[0]["attempts"], 1);
    assert_eq!(rows[0]["metrics"]["status_code"], 200);
    assert!(rows[0]["analyzed_at"].as_str().unwrap().ends_with('Z'));
    let summary = &all.body["summary"];
    assert_eq!(summary["by_status"]["succeeded"], 3);
    assert_eq!(summary["by_status"]["failed"], 1);
    assert_eq!(summary["errors_by_kind"], json!({"http_4xx": 1}));
    assert_eq!(summary["metrics"]["ttfb_ms"]["count"], 3);
    assert!(
        summary["metrics"]["ttfb_ms"]["p50"].as_f64().unwrap()
            <= summary["metrics"]["ttfb_ms"]["p95"].as_f64().unwrap()
    );
    assert!(all.body["next_cursor"].is_null());

    let first = h.request("GET", &format!("{path}?limit=3"), Some(&key), None).await;
    assert_eq!(first.body["results"].as_array().unwrap().len(), 3);
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let rest = h.request("GET", &format!("{path}?limit=3&cursor={cursor}"), Some(&key), None).await;
    assert_eq!(rest.body["results"][0]["url"], urls[3]);
    assert!(rest.body["next_cursor"].is_null());
    let failed = h.request("GET", &format!("{path}?status=failed"), Some(&key), None).await;
    assert_eq!(failed.body["results"].as_array().unwrap().len(), 1);

    // The whole-job CSV of a finished job is its file in the bucket, through a presigned link.
    let response = h
        .router
        .clone()
        .oneshot(
            Request::builder().uri(format!("{path}?format=csv")).header("x-api-key", &key).body(Body::empty()).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let link = response.headers()["location"].to_str().unwrap().to_owned();
    let file = reqwest::get(&link).await.unwrap();
    assert_eq!(file.status(), 200, "{link}");
    assert_eq!(file.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(file.headers()["content-disposition"].to_str().unwrap().contains(&format!("speedbatch-{id}.csv")));
    let csv = file.text().await.unwrap();
    let page = Request::builder().uri(format!("{path}?format=csv&limit=1000")).header("x-api-key", &key);
    let (_, _, inline) = h.send_raw(page.body(Body::empty()).unwrap()).await;
    let inline = String::from_utf8(inline).unwrap();
    assert_eq!(csv, inline, "the file and a page of every URL are the same rows");
    let lines: Vec<&str> = csv.split("\r\n").collect();
    assert_eq!(lines.len(), 6, "header, four rows, and the empty string after the last CRLF: {csv}");
    assert!(
        lines[0].starts_with("url,status,attempts,error,error_kind,engine,strategy,score,analyzed_at,"),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("ttfb_ms"));
    assert!(
        lines[3].starts_with(&format!("{},failed,1,HTTP 404 Not Found,http_4xx,http,mobile,", urls[2])),
        "{}",
        lines[3]
    );
    assert!(lines[4].starts_with(&format!("\"{}\",succeeded", urls[3])), "a comma in the URL is quoted: {}", lines[4]);

    let other = h.key_for("other").await;
    assert_eq!(h.request("GET", &path, Some(&other), None).await.status, 404);
    assert_eq!(h.request("GET", &format!("{path}?format=xml"), Some(&key), None).await.status, 422);
    assert_eq!(h.request("GET", &format!("{path}?cursor=abc"), Some(&key), None).await.status, 400);

    // Cleaning the job up takes its files with it.
    let cleaned = h.request("DELETE", &format!("{API}/cleanup?older_than_days=0"), Some(&key), None).await;
    assert_eq!(cleaned.body["jobs_deleted"], 1, "{}", cleaned.body);
    assert_eq!(reqwest::get(&link).await.unwrap().status(), 404, "the file is gone");
    h.env.cleanup().await;
}

#[tokio::test]
async fn cleanup_deletes_only_the_callers_finished_jobs() {
    let h = Harness::new().await;
    let site = Site::start().await;
    let alice = h.key_for("alice").await;
    let bob = h.key_for("bob").await;
    let finished = h.start(&alice, json!({"urls": [site.url("/page/1"), site.url("/page/2")]})).await;
    h.drain(&h.env.queues.normal).await;
    h.track(finished.as_str()).await;
    let second = h.start(&alice, json!({"urls": [site.url("/page/3")]})).await;
    let bobs = h.start(&bob, json!({"urls": [site.url("/page/4")]})).await;
    let queue = &h.env.queues.normal;
    let event = h.receive(queue, 10).await;
    h.analyze(queue, event).await;
    h.track(bobs.as_str()).await;
    h.track(second.as_str()).await;
    let pending = h.start(&alice, json!({"urls": [site.url("/page/5")]})).await;

    let missing = h.request("DELETE", &format!("{API}/cleanup"), Some(&alice), None).await;
    assert_eq!(missing.status, 422);
    assert_eq!(missing.body["error"]["details"][0]["field"], "older_than_days");
    let dry = h.request("DELETE", &format!("{API}/cleanup?older_than_days=0&dry_run=true"), Some(&alice), None).await;
    assert_eq!(dry.status, 200, "{}", dry.body);
    assert_eq!(dry.body["dry_run"], true);
    assert_eq!(dry.body["jobs_matched"], 2);
    assert_eq!(dry.body["items_deleted"], 0);
    assert!(h.env.store().get_job(&finished).await.unwrap().is_some(), "a dry run deletes nothing");
    let not_old = h.request("DELETE", &format!("{API}/cleanup?older_than_days=1"), Some(&alice), None).await;
    assert_eq!(not_old.body["jobs_matched"], 0, "nothing finished a day ago");

    let done = h.request("DELETE", &format!("{API}/cleanup?older_than_days=0"), Some(&alice), None).await;
    assert_eq!(done.body["jobs_deleted"], 2);
    assert_eq!(done.body["items_deleted"], 2 + 2 + 3, "two job items, their lists of URLs and three results");
    assert!(h.env.store().get_job(&finished).await.unwrap().is_none());
    assert_eq!(h.request("GET", &format!("{API}/progress/{finished}"), Some(&alice), None).await.status, 404);
    assert!(h.env.store().get_job(&pending).await.unwrap().is_some(), "an unfinished job stays");
    assert!(h.env.store().get_job(&bobs).await.unwrap().is_some(), "bob's job is not alice's to delete");
    h.env.cleanup().await;
}

#[tokio::test]
async fn a_sitemap_or_index_expands_into_the_job() {
    let h = Harness::new().await;
    let site = Site::start().await;
    let key = h.key_for("acme").await;
    let path = format!("{API}/start");
    let start = |body: serde_json::Value| h.request("POST", &path, Some(&key), Some(body));

    let plain = start(json!({"sitemap_url": site.url("/sitemap.xml")})).await;
    assert_eq!(plain.status, 201, "{}", plain.body);
    assert_eq!(plain.body["accepted"], 3);
    assert_eq!(plain.body["duplicates_removed"], 1);
    assert_eq!(plain.body["sitemap"]["documents"], 1);
    assert_eq!(plain.body["sitemap"]["urls_found"], 4);
    assert_eq!(plain.body["sitemap"]["truncated"], false);

    // An index of a sitemap, a gzipped sitemap and itself: each fetched once.
    let before = site.hits();
    let index = start(json!({"sitemap_url": site.url("/sitemap-index.xml"), "priority": "low"})).await;
    assert_eq!(index.status, 201, "{}", index.body);
    assert_eq!(index.body["accepted"], 5);
    assert_eq!(index.body["sitemap"]["documents"], 3);
    assert_eq!(site.hits() - before, 3);
    let queued: Vec<String> = h
        .receive(&h.env.queues.low, 10)
        .await
        .records
        .iter()
        .map(|r| {
            serde_json::from_str::<serde_json::Value>(r.body.as_deref().unwrap()).unwrap()["url"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(queued.contains(&site.url("/page/4")), "URLs of the gzipped sitemap are in the job: {queued:?}");

    let deep = start(json!({"sitemap_url": site.url("/deep/0")})).await;
    assert_eq!(deep.status, 422);
    assert!(deep.body["error"]["message"].as_str().unwrap().contains("nest deeper than 2 levels"), "{}", deep.body);
    let bomb = start(json!({"sitemap_url": site.url("/bomb.xml.gz")})).await;
    assert_eq!(bomb.status, 422);
    assert!(bomb.body["error"]["message"].as_str().unwrap().contains("larger than 52428800 bytes"), "{}", bomb.body);
    let missing = start(json!({"sitemap_url": site.url("/missing")})).await;
    assert_eq!(missing.status, 422);
    assert_eq!(missing.body["error"]["details"][0]["field"], "sitemap_url");
    assert!(missing.body["error"]["message"].as_str().unwrap().ends_with("answered HTTP 404"), "{}", missing.body);
    let not_xml = start(json!({"sitemap_url": site.url("/page/1")})).await;
    assert_eq!(not_xml.status, 422);
    assert!(not_xml.body["error"]["message"].as_str().unwrap().contains("is not a sitemap"), "{}", not_xml.body);
    h.env.cleanup().await;
}

#[tokio::test]
async fn a_dry_run_cleans_and_judges_the_urls_and_creates_nothing() {
    let h = Harness::new().await;
    let key = h.key_for("acme").await;
    let body = json!({"urls": ["Example.com/a/", "example.com/a", "ftp://x.com", "https://b.com"], "dry_run": true});
    let answer = h.request("POST", &domain::paths::endpoint("/start"), Some(&key), Some(body)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["dry_run"], true);
    assert_eq!(answer.body["accepted"], 2);
    assert_eq!(answer.body["urls"], json!(["https://example.com/a", "https://b.com"]));
    assert_eq!(answer.body["duplicates_removed"], 1);
    assert_eq!(answer.body["rejected"][0]["input"], "ftp://x.com");
    assert!(answer.body.get("batch_job_id").is_none());
    let jobs = h.request("GET", &domain::paths::endpoint("/jobs"), Some(&key), None).await;
    assert_eq!(jobs.body["jobs"], json!([]), "nothing was created");
    assert!(h.receive(&h.env.queues.normal, 10).await.records.is_empty(), "nothing was queued");

    // All rejected: the same 422 a real submission gets.
    let body = json!({"urls": ["ftp://x.com"], "dry_run": true});
    let refused = h.request("POST", &domain::paths::endpoint("/start"), Some(&key), Some(body)).await;
    assert_eq!(refused.status, 422);
    assert_eq!(refused.body["error"]["details"]["accepted"], 0);
    h.env.cleanup().await;
}

#[tokio::test]
async fn the_dashboard_is_served_without_a_key_under_a_strict_policy() {
    let h = Harness::new().await;
    let request = Request::builder().uri("/").body(Body::empty()).unwrap();
    let (status, headers, body) = h.send_raw(request).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let page = String::from_utf8(body).unwrap();
    assert!(page.to_lowercase().starts_with("<!doctype html>"), "{}", &page[..80]);
    assert!(!page.contains("src=\"http") && !page.contains("href=\"http"), "nothing loaded from elsewhere");
    assert!(page.contains(domain::paths::BASE_PATH.trim_start_matches('/')), "API paths are relative to the page");
    let policy = headers["content-security-policy"].to_str().unwrap();
    // Its own files and the one inline loader (by hash); nothing inline besides.
    assert!(policy.starts_with("default-src 'none'; script-src 'self' 'sha256-"), "{policy}");
    assert!(policy.contains("style-src 'self';") && !policy.contains("unsafe"), "{policy}");
    assert!(policy.contains("connect-src 'self'") && policy.contains("frame-ancestors 'none'"), "{policy}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let request = Request::builder().uri("/dashboard/app.js").body(Body::empty()).unwrap();
    let (status, headers, body) = h.send_raw(request).await;
    assert_eq!(status, 200);
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/javascript"), "{headers:?}");
    assert!(String::from_utf8(body).unwrap().contains("import "), "the entry module");
    h.env.cleanup().await;
}
