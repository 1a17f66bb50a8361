//! End-to-end: the template deployed to ministack by `make up`, driven over HTTP like a client.
//! The analyzer runs as a real Lambda process and measures a site this test serves.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::site::Site;
use support::stack::DeployedStack;

const API: &str = "/api/v1/batch-processing";

struct Client {
    http: reqwest::Client,
    stack: DeployedStack,
}

impl Client {
    fn new() -> Client {
        Client { http: reqwest::Client::new(), stack: DeployedStack::load() }
    }

    async fn call(&self, method: reqwest::Method, path: &str, key: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let mut request =
            self.http.request(method, format!("{}{path}", self.stack.api_url)).timeout(Duration::from_secs(60));
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the deployed API answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("a body");
        let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
        (status, body)
    }

    fn key(&self) -> &str {
        &self.stack.api_key
    }

    /// A key of a tenant of its own, for a test that must not see the others' jobs.
    async fn new_tenant_key(&self, tenant: &str) -> String {
        use shared::auth::KeyStore;
        let sdk = support::aws::sdk_config().await;
        let table = self.stack.values.get("TABLE_NAME").expect("TABLE_NAME in stack.env");
        let store = shared::store::DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table, 30);
        let key = shared::auth::generate_key();
        let tenant = shared::domain::Tenant(format!("{tenant}-{}", uuid::Uuid::new_v4().simple()));
        store.put_key_hash(&shared::auth::hash_key(&key), &tenant).await.expect("store a key");
        key
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_of_20_urls_completes_with_exact_counts() {
    let client = Client::new();
    let site = Site::start().await;
    let mut urls: Vec<String> = (1..=19).map(|n| site.url(&format!("/page/{n}"))).collect();
    urls.push(site.url("/missing"));
    let (status, created) = client
        .call(
            reqwest::Method::POST,
            &format!("{API}/start"),
            Some(client.key()),
            Some(json!({"urls": urls, "name": "e2e"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["accepted"], 20);
    let id = created["batch_job_id"].as_str().expect("job id").to_owned();

    let started = Instant::now();
    let mut last = String::new();
    let progress = loop {
        let (status, progress) =
            client.call(reqwest::Method::GET, &format!("{API}/progress/{id}"), Some(client.key()), None).await;
        assert_eq!(status, 200, "{progress}");
        let line = format!(
            "{} {}% queued {} in progress {} succeeded {} failed {}",
            progress["status"].as_str().unwrap_or("?"),
            progress["progress_percent"],
            progress["queued"],
            progress["in_progress"],
            progress["succeeded"],
            progress["failed"]
        );
        if line != last {
            eprintln!("[{:>5.1}s] {line}", started.elapsed().as_secs_f64());
            last = line;
        }
        let finished = !matches!(progress["status"].as_str(), Some("pending" | "processing"));
        if finished {
            break progress;
        }
        assert!(started.elapsed() < Duration::from_secs(300), "job did not finish in 5 minutes: {progress}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(progress["status"], "completed_with_errors", "{progress}");
    assert_eq!(progress["total_urls"], 20);
    assert_eq!(progress["succeeded"], 19);
    assert_eq!(progress["failed"], 1);
    assert_eq!((progress["queued"].as_u64(), progress["in_progress"].as_u64()), (Some(0), Some(0)));
    assert_eq!(progress["progress_percent"], 100.0);
    assert!(progress["urls_per_minute"].as_f64().is_some_and(|r| r > 0.0), "{progress}");
    assert_eq!(site.hits(), 20, "every URL fetched exactly once");

    let (status, results) =
        client.call(reqwest::Method::GET, &format!("{API}/results/{id}"), Some(client.key()), None).await;
    assert_eq!(status, 200, "{results}");
    assert_eq!(results["results"].as_array().map(Vec::len), Some(20));
    assert_eq!(results["summary"]["by_status"]["succeeded"], 19);
    assert_eq!(results["summary"]["errors_by_kind"], json!({"http_4xx": 1}));
    let csv = client
        .http
        .get(format!("{}{API}/results/{id}?format=csv", client.stack.api_url))
        .header("x-api-key", client.key())
        .send()
        .await
        .expect("CSV export");
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().await.unwrap();
    assert_eq!(csv.split("\r\n").filter(|line| !line.is_empty()).count(), 21, "a header and 20 rows");

    let (_, jobs) = client.call(reqwest::Method::GET, &format!("{API}/jobs?limit=100"), Some(client.key()), None).await;
    assert!(jobs["jobs"].as_array().unwrap().iter().any(|job| job["batch_job_id"] == id.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_job_ends_cancelled_with_counts_that_add_up() {
    let client = Client::new();
    let site = Site::start().await;
    let urls: Vec<String> = (0..60).map(|n| site.url(&format!("/slow/{n}"))).collect();
    let (status, created) = client
        .call(reqwest::Method::POST, &format!("{API}/start"), Some(client.key()), Some(json!({"urls": urls})))
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["batch_job_id"].as_str().unwrap().to_owned();
    let (status, cancelling) =
        client.call(reqwest::Method::POST, &format!("{API}/cancel/{id}"), Some(client.key()), None).await;
    assert_eq!(status, 202, "{cancelling}");
    let started = Instant::now();
    let progress = loop {
        let (_, progress) =
            client.call(reqwest::Method::GET, &format!("{API}/progress/{id}"), Some(client.key()), None).await;
        if progress["status"] == "cancelled" {
            break progress;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "never reached cancelled: {progress}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let count = |field: &str| progress[field].as_u64().unwrap();
    assert_eq!(count("succeeded") + count("failed") + count("cancelled"), 60, "{progress}");
    assert!(count("cancelled") > 0, "{progress}");
    assert_eq!(site.hits() as u64, count("succeeded") + count("failed"), "no cancelled URL was fetched");
    let (status, _) = client.call(reqwest::Method::POST, &format!("{API}/cancel/{id}"), Some(client.key()), None).await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn health_needs_no_key_and_queue_status_does() {
    let client = Client::new();
    let (status, health) = client.call(reqwest::Method::GET, &format!("{API}/health"), None, None).await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "healthy");
    let (status, _) = client.call(reqwest::Method::GET, &format!("{API}/queue/status"), None, None).await;
    assert_eq!(status, 401);
    let (status, queues) =
        client.call(reqwest::Method::GET, &format!("{API}/queue/status"), Some(client.key()), None).await;
    assert_eq!(status, 200, "{queues}");
    assert_eq!(queues["queues"].as_array().map(Vec::len), Some(3));
    assert!(queues["queues"][0]["dead_letter"].is_u64(), "the deployment names its dead-letter queues: {queues}");
    let (status, doc) = client.call(reqwest::Method::GET, "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_previews_then_deletes_finished_jobs() {
    let client = Client::new();
    let site = Site::start().await;
    // Its own tenant: cleaning up must not delete the jobs other tests are watching.
    let key = client.new_tenant_key("e2e-cleanup").await;
    let (_, created) = client
        .call(reqwest::Method::POST, &format!("{API}/start"), Some(&key), Some(json!({"urls": [site.url("/page/1")]})))
        .await;
    let id = created["batch_job_id"].as_str().unwrap().to_owned();
    let started = Instant::now();
    loop {
        let (_, progress) = client.call(reqwest::Method::GET, &format!("{API}/progress/{id}"), Some(&key), None).await;
        if progress["status"] == "completed" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "{progress}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (status, preview) = client
        .call(reqwest::Method::DELETE, &format!("{API}/cleanup?older_than_days=0&dry_run=true"), Some(&key), None)
        .await;
    assert_eq!(status, 200, "{preview}");
    assert!(preview["batch_job_ids"].as_array().unwrap().iter().any(|j| j == id.as_str()), "{preview}");
    let (status, done) =
        client.call(reqwest::Method::DELETE, &format!("{API}/cleanup?older_than_days=0"), Some(&key), None).await;
    assert_eq!(status, 200, "{done}");
    assert!(done["items_deleted"].as_u64().unwrap() >= 2, "{done}");
    let (status, _) = client.call(reqwest::Method::GET, &format!("{API}/progress/{id}"), Some(&key), None).await;
    assert_eq!(status, 404, "the cleaned job is gone");
}

#[tokio::test]
async fn the_deployed_api_refuses_bad_requests_with_json_errors() {
    let client = Client::new();
    let (status, body) =
        client.call(reqwest::Method::POST, &format!("{API}/start"), None, Some(json!({"urls": ["a.com"]}))).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "unauthorized");
    let (status, body) = client
        .call(
            reqwest::Method::POST,
            &format!("{API}/start"),
            Some(client.key()),
            Some(json!({"urls": ["ftp://a.com"]})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["details"]["rejected"][0]["reason"], "only http and https URLs can be analysed, not ftp:");
    let (status, body) = client
        .call(
            reqwest::Method::GET,
            &format!("{API}/progress/0190c2d5-0000-7000-8000-000000000000"),
            Some(client.key()),
            None,
        )
        .await;
    assert_eq!(status, 404, "{body}");
}
