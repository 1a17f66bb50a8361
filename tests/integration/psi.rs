//! Jobs on the `psi` engine against the local fake of PageSpeed Insights: a whole job run
//! inside the quota the fake enforces, with no URL ending on a 429, and every run of every form
//! factor taking its own place in the quota. (The engine alone: `tests/engines/psi.rs`.)

use std::time::Duration;

use api::{ApiSettings, AppState};
use domain::AddressPolicy;
use domain::quota::QuotaLimits;
use domain::{JobId, Strategy};
use engine::psi::{ApiKey, KeyProvider};
use engine::{EngineSet, HttpEngine, PsiEngine};
use serde_json::json;
use store::DynamoQuota;
use store::prelude::*;
use testkit::fake_psi::{FakePsi, FakePsiConfig, QuotaKind, QuotaWindow, lighthouse_fixture};

use crate::harness::Harness;

const KEY: &str = "AIzaSy-test-key-0123456789";

type PsiAnalyzer =
    analyzer::Analyzer<store::DynamoStore, aws::queue::SqsQueue, EngineSet<DynamoQuota, testkit::screenshots::Folder>>;

/// The API and the analyzer of a deployment with a PSI key, pointed at `fake`, sharing one
/// DynamoDB quota of `limits`.
fn psi_deployment(h: &Harness, fake: &FakePsi, limits: QuotaLimits) -> (axum::Router, PsiAnalyzer) {
    let router = api::app(AppState {
        store: h.env.store(),
        queue: h.env.queue(),
        exports: aws::exports::MemoryExports::default(),
        settings: ApiSettings {
            queues: h.env.queues.clone(),
            dead_letters: None,
            policy: AddressPolicy::LOCAL,
            max_url_timeout_seconds: 840,
            http: net::safe_client::safe_client(AddressPolicy::LOCAL).unwrap(),
            psi_available: true,
            tenant_limits: domain::tenancy::Limits::DEFAULT,
            ws_url: None,
        },
    });
    let analyzer = analyzer::Analyzer {
        store: h.env.store(),
        queue: h.env.queue(),
        engine: EngineSet {
            http: HttpEngine::new(AddressPolicy::LOCAL).unwrap(),
            psi: Some(
                PsiEngine::new(
                    &fake.endpoint(),
                    KeyProvider::Fixed(ApiKey::new(KEY)),
                    DynamoQuota::new(h.env.dynamo.clone(), &h.env.table, "psi", limits),
                )
                .unwrap(),
            ),
            browser: None,
        },
        queues: h.env.queues.clone(),
        // Every URL of these tests is on the test's one local site: room for a whole window.
        host_concurrency: domain::politeness::HOST_CONCURRENCY.max,
    };
    (router, analyzer)
}

/// A fake that allows 5 requests per second, answering after `latency`, and the quota our
/// limiter keeps for it (spaced at 98 % of that).
fn five_per_second(latency: Duration) -> (FakePsi, QuotaLimits) {
    let fake = FakePsi::start(FakePsiConfig {
        latency,
        quota: vec![QuotaWindow { limit: 5, window: Duration::from_secs(1), kind: QuotaKind::Per100Seconds }],
        ..FakePsiConfig::new(lighthouse_fixture())
    });
    (fake, QuotaLimits { per_window: 5, window: Duration::from_secs(1), per_day: 1_000, utilisation: 0.98 })
}

/// Submits `body` as `tenant`: the job's id and its URL count.
async fn submit(h: &Harness, router: &axum::Router, tenant: &str, body: serde_json::Value) -> (JobId, u64) {
    use tower::ServiceExt;
    let request = axum::http::Request::builder()
        .method("POST")
        .uri(domain::paths::endpoint("/start"))
        .header("x-api-key", h.key_for(tenant).await)
        .body(axum::body::Body::from(body.to_string()))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body: serde_json::Value =
        serde_json::from_slice(&axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap()).unwrap();
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["engine"], "psi", "auto resolves to psi where there is a key");
    (Harness::job_id(&body), body["total_urls"].as_u64().unwrap())
}

/// Runs `instances` analyzers side by side over the normal queue, as Lambda's poller would,
/// until every URL of `jobs` has an outcome (or `limit` passes).
async fn drain(h: &Harness, analyzer: &PsiAnalyzer, jobs: &[(JobId, u64)], instances: usize, limit: Duration) {
    let finished = || async {
        for (id, total) in jobs {
            let job = h.env.store().get_job(id).await.unwrap().unwrap();
            if job.counters.succeeded + job.counters.failed < *total {
                return false;
            }
        }
        true
    };
    let give_up = tokio::time::Instant::now() + limit;
    let instance = || async {
        let queue = &h.env.queues.normal;
        while tokio::time::Instant::now() < give_up {
            let event = h.receive(queue, 10).await;
            if event.records.is_empty() {
                if finished().await {
                    return;
                }
                continue;
            }
            let deadline = std::time::SystemTime::now() + Duration::from_secs(900);
            let result = analyzer.handle(event.clone(), deadline).await;
            let failed: Vec<&str> = result.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
            for record in &event.records {
                if !failed.contains(&record.message_id.as_deref().unwrap_or_default()) {
                    let handle = record.receipt_handle.clone().unwrap_or_default();
                    h.env.sqs.delete_message().queue_url(queue).receipt_handle(handle).send().await.unwrap();
                }
            }
        }
    };
    futures::future::join_all((0..instances).map(|_| instance())).await;
}

/// Submits `body` and runs the analyzer over the normal queue until every URL has an outcome.
async fn run_job(h: &Harness, router: axum::Router, analyzer: &PsiAnalyzer, body: serde_json::Value) -> JobId {
    let job = submit(h, &router, "psi", body).await;
    drain(h, analyzer, std::slice::from_ref(&job), 1, Duration::from_secs(300)).await;
    job.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_psi_job_runs_inside_the_quota_and_no_url_ends_on_a_429() {
    let h = Harness::new().await;
    let (fake, limits) = five_per_second(Duration::from_millis(50));
    let (router, analyzer) = psi_deployment(&h, &fake, limits);
    let urls: Vec<String> = (0..20).map(|n| format!("https://example.com/page-{n}")).collect();
    let id = run_job(&h, router, &analyzer, json!({"urls": urls, "batch_size": 20})).await;

    let job = h.env.store().get_job(&id).await.unwrap().unwrap();
    let stats = fake.stats();
    eprintln!("20 PSI URLs at 5/s: {stats:?}");
    assert_eq!((job.counters.succeeded, job.counters.failed), (20, 0), "{:?}", job.counters);
    assert_eq!(stats.rejected_quota, 0, "the limiter kept every request inside the fake's quota");
    assert!(stats.max_in_window[0] <= 5);
    let task = h.env.store().get_task(&id, 0).await.unwrap().unwrap();
    assert_eq!(task.analysis.unwrap().score, Some(32.0));
    h.env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_form_factors_several_runs_and_extra_categories_each_take_their_quota() {
    let h = Harness::new().await;
    let (fake, limits) = five_per_second(Duration::from_millis(20));
    let (router, analyzer) = psi_deployment(&h, &fake, limits);
    let urls = ["https://example.com/a", "https://example.com/b"];
    let body = json!({"urls": urls, "strategy": "both", "runs": 2, "categories": ["seo"], "batch_size": 2});
    let id = run_job(&h, router, &analyzer, body).await;

    let job = h.env.store().get_job(&id).await.unwrap().unwrap();
    assert_eq!((job.counters.succeeded, job.counters.failed), (2, 0), "{:?}", job.counters);
    let stats = fake.stats();
    assert_eq!(stats.accepted, 2 * 2 * 2, "2 URLs x 2 form factors x 2 runs: {stats:?}");
    assert_eq!(stats.rejected_quota, 0, "every run took its own place in the quota");
    let analysis = h.env.store().get_task(&id, 1).await.unwrap().unwrap().analysis.unwrap();
    assert_eq!(analysis.strategy, Strategy::Both);
    let m = &analysis.metrics;
    assert!(m["score_seo"].is_number(), "the extra category was asked for and read: {m:?}");
    assert!(m["desktop_score"].is_number() && m["desktop"]["score_seo"].is_number(), "{m:?}");
    assert_eq!(m["runs"]["completed"], 2);
    assert_eq!(m["desktop"]["runs"]["completed"], 2);
    assert_eq!(m["score_spread"], 0.0, "the fake answers every run alike");
    h.env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tenants_waiting_for_psi_get_even_shares_whatever_their_backlog() {
    let h = Harness::new().await;
    let (fake, limits) = five_per_second(Duration::from_millis(50));
    let (router, analyzer) = psi_deployment(&h, &fake, limits);
    // Tenant a submits four jobs first, b one: a has four times b's URLs in flight (each job
    // 20 at a time). Each page is on a host of its own, so only the quota holds them back.
    let urls = |prefix: &str, count: usize| -> Vec<String> {
        (0..count).map(|n| format!("https://{prefix}-{n}.example.com/")).collect()
    };
    let mut jobs = Vec::new();
    for n in 0..4 {
        let body = json!({"urls": urls(&format!("a{n}"), 50), "batch_size": 20});
        jobs.push(submit(&h, &router, "tenant-a", body).await);
    }
    jobs.push(submit(&h, &router, "tenant-b", json!({"urls": urls("b", 100), "batch_size": 20})).await);
    // Enough instances to receive every URL in flight, as Lambda scales out for a backlog: the
    // quota shares what both tenants ask for. (A fleet too small to receive them all would
    // serve them in queue order, by backlog: on AWS, SQS fair queues see to that part.)
    drain(&h, &analyzer, &jobs, 10, Duration::from_secs(300)).await;

    for (id, total) in &jobs {
        let job = h.env.store().get_job(id).await.unwrap().unwrap();
        assert_eq!((job.counters.succeeded, job.counters.failed), (*total, 0), "{:?}", job.counters);
    }
    let stats = fake.stats();
    assert_eq!(stats.rejected_quota, 0, "inside the fake's quota throughout: {stats:?}");
    // While both had all their URLs in flight waiting: from b's first request (past the
    // places a had booked before b came) until b's job had released its last URL (its 80th
    // request; after that b has fewer and fewer URLs asking).
    let ahead = engine::psi::booking_ahead(domain::Priority::Normal);
    let (b_count, contested) = fake.share_of("https://b-", ahead, 100 - 20).unwrap();
    let a_count = contested - b_count;
    let share = b_count as f64 / contested as f64;
    eprintln!(
        "a 4 x 50 URLs, b 100, 20 in flight per job, 5 PSI requests/s: while both waited a got {a_count}, \
         b {b_count} (b's share {share:.3})"
    );
    assert!((0.45..=0.55).contains(&share), "b's share {share:.3} ({a_count} vs {b_count})");
    h.env.cleanup().await;
}
