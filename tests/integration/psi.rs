//! Jobs on the `psi` engine against the local fake of PageSpeed Insights: a whole job run
//! inside the quota the fake enforces, with no URL ending on a 429, and every run of every form
//! factor taking its own place in the quota. (The engine alone: `tests/engines/psi.rs`.)

use std::time::Duration;

use domain::quota::QuotaLimits;
use domain::{JobId, Strategy};
use serde_json::json;
use store::prelude::*;
use testkit::fake_psi::{FakePsi, FakePsiConfig, QuotaKind, QuotaWindow, lighthouse_fixture};

use crate::google::{Google, GoogleAnalyzer, deployment, drain, submit};
use crate::harness::Harness;

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

/// Submits `body` and runs the analyzer over the normal queue until every URL has an outcome.
async fn run_job(h: &Harness, router: axum::Router, analyzer: &GoogleAnalyzer, body: serde_json::Value) -> JobId {
    let job = submit(h, &router, "psi", body).await;
    drain(h, analyzer, std::slice::from_ref(&job), 1, Duration::from_secs(300)).await;
    job.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_psi_job_runs_inside_the_quota_and_no_url_ends_on_a_429() {
    let h = Harness::new().await;
    let (fake, limits) = five_per_second(Duration::from_millis(50));
    let (router, analyzer) = deployment(&h, Google { psi: Some((&fake, limits)), crux: None });
    let urls: Vec<String> = (0..20).map(|n| format!("https://example.com/page-{n}")).collect();
    let id = run_job(&h, router, &analyzer, json!({"urls": urls, "batch_size": 20})).await;

    let job = h.env.store().get_job(&id).await.unwrap().unwrap();
    assert_eq!(job.settings.engine, domain::EngineKind::Psi, "auto resolves to psi where there is a key");
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
    let (router, analyzer) = deployment(&h, Google { psi: Some((&fake, limits)), crux: None });
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
    let (router, analyzer) = deployment(&h, Google { psi: Some((&fake, limits)), crux: None });
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
