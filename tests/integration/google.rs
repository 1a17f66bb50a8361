//! A deployment with Google's APIs, each pointed at its local fake: the API and an analyzer
//! sharing the test's table, with PageSpeed Insights and the Chrome UX Report each within its
//! own DynamoDB quota item, as the analyzer's `main` builds them.

use std::time::Duration;

use api::{ApiSettings, AppState};
use domain::AddressPolicy;
use domain::JobId;
use domain::quota::QuotaLimits;
use engine::crux::{CruxClient, FieldEngine};
use engine::psi::{ApiKey, KeyProvider};
use engine::{EngineSet, HttpEngine, PsiEngine};
use store::DynamoQuota;
use store::prelude::*;
use testkit::fake_crux::FakeCrux;
use testkit::fake_psi::FakePsi;

use crate::harness::Harness;

pub const PSI_KEY: &str = "AIzaSy-test-key-0123456789";
pub const CRUX_KEY: &str = "crux-test-key";

pub type GoogleAnalyzer =
    analyzer::Analyzer<store::DynamoStore, aws::queue::SqsQueue, EngineSet<DynamoQuota, testkit::screenshots::Folder>>;

/// Which of Google's APIs the deployment has, each a fake and the quota our limiter keeps for it.
pub struct Google<'a> {
    pub psi: Option<(&'a FakePsi, QuotaLimits)>,
    pub crux: Option<(&'a FakeCrux, QuotaLimits)>,
}

/// The API and the analyzer of a deployment with the keys `google` gives.
pub fn deployment(h: &Harness, google: Google<'_>) -> (axum::Router, GoogleAnalyzer) {
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
            psi_available: google.psi.is_some(),
            crux_available: google.crux.is_some(),
            tenant_limits: domain::tenancy::Limits::DEFAULT,
            ws_url: None,
        },
    });
    let quota = |name: &str, limits| DynamoQuota::new(h.env.dynamo.clone(), &h.env.table, name, limits);
    let psi = google.psi.map(|(fake, limits)| {
        PsiEngine::new(&fake.endpoint(), KeyProvider::Fixed(ApiKey::new(PSI_KEY)), quota("psi", limits)).unwrap()
    });
    let crux = google.crux.map(|(fake, limits)| {
        let client = CruxClient::new(&fake.api_url(), KeyProvider::Fixed(ApiKey::new(CRUX_KEY))).unwrap();
        FieldEngine::new(client, quota("crux", limits))
    });
    let analyzer = analyzer::Analyzer {
        store: h.env.store(),
        queue: h.env.queue(),
        engine: EngineSet { http: HttpEngine::new(AddressPolicy::LOCAL).unwrap(), psi, browser: None, crux },
        queues: h.env.queues.clone(),
        // Every URL of these tests is on the test's one local site: room for a whole window.
        host_concurrency: domain::politeness::HOST_CONCURRENCY.max,
    };
    (router, analyzer)
}

/// Submits `body` as `tenant`: the job's id and its URL count.
pub async fn submit(h: &Harness, router: &axum::Router, tenant: &str, body: serde_json::Value) -> (JobId, u64) {
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
    (Harness::job_id(&body), body["total_urls"].as_u64().unwrap())
}

/// Runs `instances` analyzers side by side over the normal queue, as Lambda's poller would,
/// until every URL of `jobs` has an outcome (or `limit` passes).
pub async fn drain(h: &Harness, analyzer: &GoogleAnalyzer, jobs: &[(JobId, u64)], instances: usize, limit: Duration) {
    let finished = || async {
        h.count_results().await;
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
