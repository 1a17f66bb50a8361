//! Field data on a deployment with a Chrome UX Report key, pointed at the local fake: a
//! field-only job (engine `none`) over URLs with their own record, only their origin's, and
//! none; both form factors and the weekly history; the limiter keeping the fleet inside the
//! API's quota; the API's own 429 as a wait that ends in a result; results filtered by the
//! Core Web Vitals verdict; field data beside the http engine's lab result. (The engine alone:
//! `tests/engines/crux.rs`.)

use std::time::Duration;

use domain::quota::QuotaLimits;
use domain::{EngineKind, JobId, Strategy, UrlStatus};
use serde_json::{Value, json};
use store::prelude::*;
use testkit::fake_crux::{CruxQuota, Endpoint, FakeCrux, FakeCruxConfig};
use tower::ServiceExt;

use crate::google::{CRUX_KEY, Google, GoogleAnalyzer, deployment, drain, submit};
use crate::harness::Harness;

/// Google's quota of 150 a minute with time running 60 times faster, as the fake keeps it and
/// as our limiter keeps it (at 98 %).
fn crux_at_150_per_second() -> (FakeCrux, QuotaLimits) {
    let fake = FakeCrux::start(FakeCruxConfig {
        api_key: Some(CRUX_KEY.into()),
        quota: Some(CruxQuota::per_minute(150).time_scaled(60)),
        latency: Duration::from_millis(5),
        ..FakeCruxConfig::new()
    });
    (fake, QuotaLimits { per_window: 150, window: Duration::from_secs(1), per_day: u32::MAX, utilisation: 0.98 })
}

async fn get(h: &Harness, router: &axum::Router, tenant: &str, uri: &str) -> (u16, Value) {
    let request = axum::http::Request::builder()
        .uri(domain::paths::endpoint(uri))
        .header("x-api-key", h.key_for(tenant).await)
        .body(axum::body::Body::empty())
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn run(h: &Harness, analyzer: &GoogleAnalyzer, router: &axum::Router, body: Value) -> JobId {
    let job = submit(h, router, "field", body).await;
    drain(h, analyzer, std::slice::from_ref(&job), 2, Duration::from_secs(300)).await;
    job.0
}

fn urls_of(results: &Value) -> Vec<&str> {
    results["results"].as_array().unwrap().iter().map(|row| row["url"].as_str().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_only_job_reads_each_urls_record_or_its_origins_and_none_is_unavailable() {
    let h = Harness::new().await;
    let (fake, limits) = crux_at_150_per_second();
    let (router, analyzer) = deployment(&h, Google { psi: None, crux: Some((&fake, limits)) });
    // 0-3 their own record, 4-5 only their origin's, 6 nothing at all, 7 poor everywhere.
    let urls = [
        "https://shop.example/a",
        "https://shop.example/b",
        "https://blog.example/",
        "https://news.example/today",
        "https://small.example/origin-only/1",
        "https://tiny.example/origin-only/2",
        "https://no-field-data.example/x",
        "https://slow-field.example/",
    ];
    let body = json!({"urls": urls, "engine": "none", "strategy": "both", "field_history": true, "batch_size": 8});
    let id = run(&h, &analyzer, &router, body).await;

    let job = h.env.store().get_job(&id).await.unwrap().unwrap();
    assert_eq!((job.counters.succeeded, job.counters.failed), (8, 0), "no data is no failure: {:?}", job.counters);
    assert_eq!(job.settings.engine, EngineKind::FieldOnly);
    let stats = fake.stats();
    // Per form factor: own record 1 + history 1; origin only 2 + 1; nothing 2.
    let expected = 2 * (5 * 2 + 2 * 3 + 2);
    assert_eq!((stats.requests, stats.status(429)), (expected, 0), "{stats:?}");
    assert_eq!(stats.endpoint(Endpoint::QueryHistoryRecord), 2 * 7, "a history only where there is a record");

    let (store, id) = (&h.env.store(), &id);
    let task = |seq| async move { store.get_task(id, seq).await.unwrap().unwrap().analysis.unwrap() };
    let own = task(0).await;
    assert_eq!((own.engine.as_str(), own.score, own.strategy), ("none", None, Strategy::Both));
    let m = &own.metrics;
    assert_eq!((m["field_status"].as_str(), m["field_source"].as_str()), (Some("available"), Some("url")));
    assert!(m["field_lcp_ms"].is_number() && m["field_lcp_ms_category"].is_string(), "{m:?}");
    assert_eq!(m["field_history"]["weeks"].as_array().unwrap().len(), 40);
    assert_eq!(m["desktop"]["field_source"], "url", "desktop's own record: {m:?}");
    assert!(m["desktop_field_overall_category"].is_string());
    assert_eq!(task(4).await.metrics["field_source"], "origin");
    let none = task(6).await;
    assert_eq!(none.metrics["field_status"], "unavailable");
    assert!(none.metrics.get("field_lcp_ms").is_none(), "unavailable, never zero");
    assert_eq!(task(7).await.metrics["field_overall_category"], "poor");

    // The verdict filters the results.
    let (status, all) = get(&h, &router, "field", &format!("/results/{id}")).await;
    assert_eq!(status, 200);
    let with_verdict = |verdict: Option<&str>| -> Vec<&str> {
        let rows = all["results"].as_array().unwrap().iter();
        rows.filter(|row| row["metrics"]["field_overall_category"].as_str() == verdict)
            .map(|row| row["url"].as_str().unwrap())
            .collect()
    };
    let (status, poor) = get(&h, &router, "field", &format!("/results/{id}?field_overall_category=poor")).await;
    assert_eq!((status, urls_of(&poor)), (200, with_verdict(Some("poor"))), "{poor}");
    assert!(urls_of(&poor).contains(&"https://slow-field.example"), "{poor}");
    let (_, unavailable) =
        get(&h, &router, "field", &format!("/results/{id}?field_overall_category=unavailable")).await;
    assert_eq!(urls_of(&unavailable), vec![urls[6]]);
    assert_eq!(with_verdict(None), vec![urls[6]], "a verdict for every URL with data");
    let (status, bad) = get(&h, &router, "field", &format!("/results/{id}?field_overall_category=fast")).await;
    assert_eq!(status, 422, "{bad}");
    assert!(bad.to_string().contains("good, needs_improvement, poor, unavailable"), "{bad}");
    h.env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_apis_429_is_waited_out_and_every_url_still_ends_with_its_data() {
    let h = Harness::new().await;
    // The API keeps 20 a minute while our limiter believes in 300 a second: someone else's
    // use of the key, which the limiter cannot see. Half the URLs meet a 429, wait the minute
    // out on the queue and then get their data.
    let fake = FakeCrux::start(FakeCruxConfig {
        api_key: Some(CRUX_KEY.into()),
        quota: Some(CruxQuota::per_minute(20)),
        ..FakeCruxConfig::new()
    });
    let generous = QuotaLimits { per_window: 300, window: Duration::from_secs(1), per_day: u32::MAX, utilisation: 1.0 };
    let (router, analyzer) = deployment(&h, Google { psi: None, crux: Some((&fake, generous)) });
    let urls: Vec<String> = (0..40).map(|n| format!("https://site-{n}.example/")).collect();
    let id = run(&h, &analyzer, &router, json!({"urls": urls, "engine": "none", "batch_size": 20})).await;

    let job = h.env.store().get_job(&id).await.unwrap().unwrap();
    let stats = fake.stats();
    eprintln!("40 field-only URLs, the API at 20 a minute: {stats:?}");
    assert!(stats.status(429) >= 20, "the test meant to meet the API's quota: {stats:?}");
    assert_eq!(stats.status(200), 40, "every URL's record, once");
    assert_eq!((job.counters.succeeded, job.counters.failed), (40, 0), "{:?}", job.counters);
    let tasks = h.env.store().list_tasks(&id, &domain::TaskFilter::default(), 1_000, None).await.unwrap().items;
    assert!(tasks.iter().all(|t| t.status == UrlStatus::Succeeded && t.attempts == 1), "a 429 is no attempt");
    assert!(tasks.iter().all(|t| t.analysis.as_ref().unwrap().metrics["field_status"] == "available"));
    h.env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_data_sits_beside_the_http_engines_lab_result() {
    let h = Harness::new().await;
    let (fake, limits) = crux_at_150_per_second();
    let site = testkit::site::Site::start().await;
    let page = site.url("/page/1");
    // The local site's origin has no field data (CrUX never saw 127.0.0.1).
    fake.add_origin_without_data(site.url("").trim_end_matches('/'));
    let (router, analyzer) = deployment(&h, Google { psi: None, crux: Some((&fake, limits)) });
    let id = run(&h, &analyzer, &router, json!({"urls": [page], "engine": "http", "field_data": true})).await;
    let analysis = h.env.store().get_task(&id, 0).await.unwrap().unwrap().analysis.unwrap();
    assert_eq!(analysis.engine, "http");
    assert!(analysis.metrics["delivery_score"].is_number(), "{:?}", analysis.metrics);
    assert_eq!(analysis.metrics["field_status"], "unavailable");

    // A deployment without a key refuses field data, saying why.
    let (router, _) = deployment(&h, Google { psi: None, crux: None });
    let request = axum::http::Request::builder()
        .method("POST")
        .uri(domain::paths::endpoint("/start"))
        .header("x-api-key", h.key_for("field").await)
        .body(axum::body::Body::from(json!({"urls": ["a.example"], "field_data": true}).to_string()))
        .unwrap();
    let response = router.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 422);
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    assert!(String::from_utf8_lossy(&body).contains("no Chrome UX Report key"));
    h.env.cleanup().await;
}
