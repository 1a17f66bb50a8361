//! End-to-end: the template deployed to ministack by `make up`, driven over HTTP like a client.
//! The analyzer runs as a real Lambda process and measures a site this test serves.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::site::Site;
use testkit::stack::DeployedStack;

mod browser;
mod field;
mod history;
mod live;
mod monitors;

const API: &str = domain::paths::BASE_PATH;

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

    /// Submits a job that must be accepted; returns its id.
    async fn submit(&self, key: &str, body: Value) -> String {
        let (status, created) = self.call(reqwest::Method::POST, &format!("{API}/start"), Some(key), Some(body)).await;
        assert_eq!(status, 201, "{created}");
        created["batch_job_id"].as_str().expect("job id").to_owned()
    }

    /// Polls the job's progress, printing each change, until `done` says so (or `limit`).
    async fn progress_until(&self, key: &str, id: &str, limit: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        let mut last = String::new();
        loop {
            let (status, progress) =
                self.call(reqwest::Method::GET, &format!("{API}/progress/{id}"), Some(key), None).await;
            assert_eq!(status, 200, "{progress}");
            let line = format!(
                "{} {}% queued {} in progress {} succeeded {} failed {} cancelled {}",
                progress["status"].as_str().unwrap_or("?"),
                progress["progress_percent"],
                progress["queued"],
                progress["in_progress"],
                progress["succeeded"],
                progress["failed"],
                progress["cancelled"]
            );
            if line != last {
                eprintln!("[{:>5.1}s] {id}: {line}", started.elapsed().as_secs_f64());
                last = line;
            }
            if done(&progress) {
                return progress;
            }
            assert!(started.elapsed() < limit, "not done within {limit:?}: {progress}");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// A key of a tenant of its own, for a test that must not see the others' jobs.
    async fn new_tenant_key(&self, tenant: &str) -> String {
        use store::KeyStore;
        let sdk = testkit::emulator::sdk_config().await;
        let table = self.stack.values.get("TABLE_NAME").expect("TABLE_NAME in stack.env");
        let store = store::DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table, 30);
        let key = domain::auth::generate_key();
        let tenant = domain::Tenant(format!("{tenant}-{}", uuid::Uuid::new_v4().simple()));
        store.put_key_hash(&domain::auth::hash_key(&key), &tenant).await.expect("store a key");
        key
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_of_20_urls_completes_with_exact_counts() {
    let client = Client::new();
    let site = Site::start().await;
    let mut urls: Vec<String> = (1..=19).map(|n| site.url(&format!("/page/{n}"))).collect();
    urls.push(site.url("/missing"));
    let id = client.submit(client.key(), json!({"urls": urls, "name": "e2e"})).await;
    let progress = client.progress_until(client.key(), &id, Duration::from_secs(300), finished).await;
    assert_eq!(progress["status"], "completed_with_errors", "{progress}");
    assert_eq!(progress["total_urls"], 20);
    assert_eq!(progress["succeeded"], 19);
    assert_eq!(progress["failed"], 1);
    assert_eq!((progress["queued"].as_u64(), progress["in_progress"].as_u64()), (Some(0), Some(0)));
    assert_eq!(progress["progress_percent"], 100.0);
    assert!(progress["urls_per_minute"].as_f64().is_some_and(|r| r > 0.0), "{progress}");
    assert_eq!(site.hits(), 20, "every URL fetched exactly once");

    // The exporter writes the finished job's report and files off the tracker's path: until
    // then a page's summary is the counters'; then it is complete.
    let started = std::time::Instant::now();
    let results = loop {
        let (status, results) =
            client.call(reqwest::Method::GET, &format!("{API}/results/{id}"), Some(client.key()), None).await;
        assert_eq!(status, 200, "{results}");
        if results["summary"]["complete"] == true {
            break results;
        }
        assert_eq!(results["summary"]["by_status"]["succeeded"], 19, "the counters' summary meanwhile");
        assert!(started.elapsed() < Duration::from_secs(60), "no report within a minute: {results}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    eprintln!("report written {:.1}s after the job finished", started.elapsed().as_secs_f64());
    assert_eq!(results["results"].as_array().map(Vec::len), Some(20));
    assert_eq!(results["summary"]["by_status"]["succeeded"], 19);
    assert_eq!(results["summary"]["errors_by_kind"], json!({"http_4xx": 1}));

    // The whole-job CSV is a 303 to the file; the link needs no key.
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let answer = no_redirects
        .get(format!("{}{API}/results/{id}?format=csv", client.stack.api_url))
        .header("x-api-key", client.key())
        .send()
        .await
        .expect("CSV export");
    assert_eq!(answer.status(), 303);
    let link = answer.headers()["location"].to_str().unwrap().to_owned();
    let csv = reqwest::get(&link).await.expect("the export link");
    assert_eq!(csv.status(), 200);
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let disposition = csv.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert!(disposition.contains(&format!("speedbatch-{id}.csv")), "{disposition}");
    let csv = csv.text().await.unwrap();
    assert_eq!(csv.split("\r\n").filter(|line| !line.is_empty()).count(), 21, "a header and 20 rows");
    let (status, links) =
        client.call(reqwest::Method::GET, &format!("{API}/exports/{id}"), Some(client.key()), None).await;
    assert_eq!(status, 200, "{links}");
    let jsonl = reqwest::get(links["files"][1]["url"].as_str().unwrap()).await.unwrap().text().await.unwrap();
    assert_eq!(jsonl.lines().count(), 20, "one JSON object per URL");
    assert_eq!(links["files"][1]["format"], "jsonl");

    let (_, jobs) = client.call(reqwest::Method::GET, &format!("{API}/jobs?limit=100"), Some(client.key()), None).await;
    assert!(jobs["jobs"].as_array().unwrap().iter().any(|job| job["batch_job_id"] == id.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_form_factors_runs_and_reuse_on_the_deployed_stack() {
    let client = Client::new();
    let key = client.new_tenant_key("reuse").await;
    let site = Site::start().await;
    let urls: Vec<String> = (1..=3).map(|n| site.url(&format!("/page/{n}"))).collect();
    let first = client.submit(&key, json!({"urls": urls, "strategy": "both", "runs": 2})).await;
    let progress = client.progress_until(&key, &first, Duration::from_secs(300), finished).await;
    assert_eq!(progress["status"], "completed", "{progress}");
    assert_eq!((progress["strategy"].as_str(), progress["runs"].as_u64()), (Some("both"), Some(2)));
    assert_eq!(site.hits(), 3 * 2 * 2, "3 URLs x 2 form factors x 2 runs");
    let (_, results) = client.call(reqwest::Method::GET, &format!("{API}/results/{first}"), Some(&key), None).await;
    let row = &results["results"][0];
    assert_eq!(row["strategy"], "both");
    assert!(
        row["metrics"]["desktop_delivery_score"].is_number() && row["metrics"]["desktop"]["ttfb_ms"].is_number(),
        "{row}"
    );
    assert_eq!(row["metrics"]["runs"]["completed"], 2, "{row}");

    // The same URLs again, reusing what is under an hour old: no page is fetched.
    let second = client.submit(&key, json!({"urls": urls, "strategy": "both", "cache_ttl_seconds": 3600})).await;
    let progress = client.progress_until(&key, &second, Duration::from_secs(300), finished).await;
    assert_eq!(progress["succeeded"], 3, "{progress}");
    assert_eq!(site.hits(), 12, "every result reused");
    let (_, results) = client.call(reqwest::Method::GET, &format!("{API}/results/{second}"), Some(&key), None).await;
    for row in results["results"].as_array().unwrap() {
        assert_eq!(row["cached_from"]["batch_job_id"], first.as_str(), "{row}");
    }
}

fn finished(progress: &Value) -> bool {
    !matches!(progress["status"].as_str(), Some("pending" | "processing" | "cancelling"))
}

fn count(progress: &Value, field: &str) -> u64 {
    progress[field].as_u64().unwrap_or_else(|| panic!("{field} missing: {progress}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_300_url_job_with_batch_size_3_never_has_more_than_3_requests_at_the_target() {
    let client = Client::new();
    let site = Site::start().await;
    let urls: Vec<String> = (0..300).map(|n| site.url(&format!("/held/{n}"))).collect();
    let started = Instant::now();
    let id = client.submit(client.key(), json!({"urls": urls, "batch_size": 3, "priority": "high"})).await;
    let progress = client.progress_until(client.key(), &id, Duration::from_secs(600), finished).await;
    let elapsed = started.elapsed();
    eprintln!(
        "300 URLs, batch_size 3: {:.1} s, at most {} requests at the target at once",
        elapsed.as_secs_f64(),
        site.max_concurrent()
    );
    assert_eq!(progress["status"], "completed", "{progress}");
    assert_eq!(count(&progress, "succeeded"), 300);
    assert!((1..=3).contains(&site.max_concurrent()), "the window was exceeded: {}", site.max_concurrent());
    assert_eq!(site.hits(), 300, "every URL fetched exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_300_url_job_ends_cancelled_with_counts_that_add_up() {
    let client = Client::new();
    let site = Site::start().await;
    let urls: Vec<String> = (0..300).map(|n| site.url(&format!("/held/{n}"))).collect();
    let id = client.submit(client.key(), json!({"urls": urls, "batch_size": 5})).await;
    // Cancel mid-job: once some URLs are done and most are not.
    client.progress_until(client.key(), &id, Duration::from_secs(120), |p| count(p, "succeeded") >= 10).await;
    let (status, cancelling) =
        client.call(reqwest::Method::POST, &format!("{API}/cancel/{id}"), Some(client.key()), None).await;
    assert_eq!(status, 202, "{cancelling}");
    let progress =
        client.progress_until(client.key(), &id, Duration::from_secs(300), |p| p["status"] == "cancelled").await;
    let (done, cancelled) = (count(&progress, "succeeded") + count(&progress, "failed"), count(&progress, "cancelled"));
    assert_eq!(done + cancelled, 300, "{progress}");
    assert!(cancelled > 0 && done >= 10, "{progress}");
    assert_eq!((count(&progress, "queued"), count(&progress, "in_progress")), (0, 0), "{progress}");
    assert_eq!(site.hits() as u64, done, "no cancelled URL was fetched");
    let (status, _) = client.call(reqwest::Method::POST, &format!("{API}/cancel/{id}"), Some(client.key()), None).await;
    assert_eq!(status, 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completion_is_announced_on_the_bus_and_to_the_signed_callback() {
    let client = Client::new();
    let site = Site::start().await;
    let sdk = testkit::emulator::sdk_config().await;
    let (events, sqs) = (aws_sdk_eventbridge::Client::new(&sdk), aws_sdk_sqs::Client::new(&sdk));
    let bus = client.stack.values.get("EVENT_BUS_NAME").expect("EVENT_BUS_NAME in stack.env").clone();
    // A rule of the test's own routes Job Completed to a queue the test reads.
    let queue_name = testkit::emulator::unique_name("e2e-completed");
    let queue_url = sqs.create_queue().queue_name(&queue_name).send().await.unwrap().queue_url.unwrap();
    let rule = testkit::emulator::unique_name("e2e-completed");
    events
        .put_rule()
        .name(&rule)
        .event_bus_name(&bus)
        .event_pattern(json!({"source": ["speedbatch"], "detail-type": ["Job Completed"]}).to_string())
        .send()
        .await
        .expect("put rule");
    let target = aws_sdk_eventbridge::types::Target::builder()
        .id("queue")
        .arn(format!("arn:aws:sqs:us-east-1:000000000000:{queue_name}"))
        .build()
        .unwrap();
    events.put_targets().rule(&rule).event_bus_name(&bus).targets(target).send().await.expect("put targets");

    let key = client.new_tenant_key("e2e-events").await;
    let hook = site.url("/hook");
    let id =
        client.submit(&key, json!({"urls": [site.url("/page/1"), site.url("/missing")], "callback_url": hook})).await;
    let progress = client.progress_until(&key, &id, Duration::from_secs(120), finished).await;
    assert_eq!(progress["status"], "completed_with_errors");
    assert_eq!(progress["callback_url"], hook.as_str());

    let started = Instant::now();
    let event = loop {
        let received = sqs.receive_message().queue_url(&queue_url).wait_time_seconds(1).send().await.unwrap();
        let found = received
            .messages()
            .iter()
            .filter_map(|m| serde_json::from_str::<Value>(m.body()?).ok())
            .find(|e| e["detail"]["batch_job_id"] == id.as_str());
        if let Some(event) = found {
            break event;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no Job Completed event for {id}");
    };
    assert_eq!(event["source"], "speedbatch");
    assert_eq!(event["detail-type"], "Job Completed");
    assert_eq!(event["detail"]["status"], "completed_with_errors");
    assert_eq!((event["detail"]["succeeded"].as_u64(), event["detail"]["failed"].as_u64()), (Some(1), Some(1)));

    let started = Instant::now();
    while site.hooks().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(60), "the callback never came");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let hooks = site.hooks();
    assert_eq!(hooks.len(), 1, "one callback: the end of the job");
    let (status, secret) = client.call(reqwest::Method::GET, &format!("{API}/callback-secret"), Some(&key), None).await;
    assert_eq!(status, 200, "{secret}");
    let header = hooks[0].headers["x-speedbatch-signature"].to_str().unwrap();
    let timestamp: i64 = header.trim_start_matches("t=").split(',').next().unwrap().parse().unwrap();
    let expected = aws::notify::sign(secret["secret"].as_str().unwrap(), timestamp, &hooks[0].body);
    assert_eq!(header, expected, "signed with the tenant's secret");
    assert_eq!(hooks[0].headers["x-speedbatch-event"], "Job Completed");
    let body: Value = serde_json::from_slice(&hooks[0].body).unwrap();
    assert_eq!(body["detail"]["batch_job_id"], id.as_str());
    let (_, other) =
        client.call(reqwest::Method::GET, &format!("{API}/callback-secret"), Some(client.key()), None).await;
    assert_ne!(other["secret"], secret["secret"], "each tenant has its own secret");

    let _ = events.remove_targets().rule(&rule).event_bus_name(&bus).ids("queue").send().await;
    let _ = events.delete_rule().name(&rule).event_bus_name(&bus).send().await;
    let _ = sqs.delete_queue().queue_url(&queue_url).send().await;
}

fn millis(rfc3339: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339.as_str().expect("a time")).expect("RFC 3339").timestamp_millis()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_that_hang_hold_up_no_other_job() {
    let client = Client::new();
    let site = Site::start().await;
    let hostile = client.new_tenant_key("e2e-hanging-hooks").await;
    let hang = site.url("/hook/hang");
    let mut hanging = Vec::new();
    for n in 1..=3 {
        hanging.push(
            client.submit(&hostile, json!({"urls": [site.url(&format!("/page/{n}"))], "callback_url": hang})).await,
        );
    }
    for id in &hanging {
        let ended = client.progress_until(&hostile, id, Duration::from_secs(120), finished).await;
        assert_eq!(ended["status"], "completed");
    }
    // Their callbacks are being tried now (each attempt holds a connection for its 5 s budget):
    // another tenant's job must move as fast as ever.
    let key = client.new_tenant_key("e2e-bystander").await;
    let id = client.submit(&key, json!({"urls": [site.url("/page/4")]})).await;
    let done = client.progress_until(&key, &id, Duration::from_secs(120), finished).await;
    assert_eq!(done["status"], "completed");
    let (status, results) = client.call(reqwest::Method::GET, &format!("{API}/results/{id}"), Some(&key), None).await;
    assert_eq!(status, 200, "{results}");
    let last_url = results["results"].as_array().expect("rows").iter().map(|row| millis(&row["analyzed_at"])).max();
    let lag = millis(&done["finished_at"]) - last_url.expect("one URL");
    eprintln!("completed {lag} ms after its last URL, with 3 callbacks hanging");
    assert!(lag < 5_000, "completed {lag} ms after its last URL");

    // The hanging callbacks were tried, given up after their budget, and wait for a retry.
    for id in &hanging {
        let progress = client
            .progress_until(&hostile, id, Duration::from_secs(60), |p| p["callback"]["state"] == "retrying")
            .await;
        let callback = &progress["callback"];
        assert_eq!(callback["attempts"], 1, "{callback}");
        assert!(callback["last_error"].as_str().unwrap_or_default().contains("timed out"), "{callback}");
    }
}

#[tokio::test]
async fn health_needs_no_key_and_queue_status_does() {
    let client = Client::new();
    let (status, health) = client.call(reqwest::Method::GET, &format!("{API}/health"), None, None).await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "healthy");
    // The deployed stack has the browser analyzer (and no PSI key).
    let engine = &health["checks"]["engine"];
    assert_eq!((engine["browser_configured"].as_bool(), engine["psi_configured"].as_bool()), (Some(true), Some(false)));
    let (status, _) = client.call(reqwest::Method::GET, &format!("{API}/queue/status"), None, None).await;
    assert_eq!(status, 401);
    let (status, queues) =
        client.call(reqwest::Method::GET, &format!("{API}/queue/status"), Some(client.key()), None).await;
    assert_eq!(status, 200, "{queues}");
    let names: Vec<&str> = queues["queues"].as_array().unwrap().iter().filter_map(|q| q["priority"].as_str()).collect();
    assert_eq!(names, ["high", "normal", "low", "browser"], "the priority queues and the browser engine's");
    for queue in queues["queues"].as_array().unwrap() {
        assert!(queue["dead_letter"].is_u64(), "the deployment names its dead-letter queues: {queues}");
    }
    let (status, doc) = client.call(reqwest::Method::GET, domain::paths::OPENAPI_PATH, None, None).await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_previews_then_deletes_finished_jobs() {
    let client = Client::new();
    let site = Site::start().await;
    // Its own tenant: cleaning up must not delete the jobs other tests are watching.
    let key = client.new_tenant_key("e2e-cleanup").await;
    let id = client.submit(&key, json!({"urls": [site.url("/page/1")]})).await;
    client.progress_until(&key, &id, Duration::from_secs(120), |p| p["status"] == "completed").await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_over_its_limits_is_refused_with_429_naming_the_limit_until_there_is_room() {
    let client = Client::new();
    let site = Site::start().await;
    let key = client.new_tenant_key("limits").await;
    let (_, usage) = client.call(reqwest::Method::GET, &format!("{API}/usage"), Some(&key), None).await;
    let own =
        domain::tenancy::LimitOverrides { max_active_jobs: Some(1), max_urls_per_day: Some(12), ..Default::default() };
    let tenant = own_limits(&client, &key, &own).await;
    assert_eq!(usage["usage"], json!({"active_jobs": 0, "urls_today": 0}), "{usage}");
    let raw_start = |body: Value| {
        let request = client.http.post(format!("{}{API}/start", client.stack.api_url)).header("x-api-key", &key);
        async move {
            let response = request.json(&body).send().await.expect("the deployed API answers");
            let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
            (response.status().as_u16(), retry_after, response.json::<Value>().await.expect("JSON"))
        }
    };

    // One unfinished job is the limit: a second is refused while the first runs.
    let slow: Vec<String> = (1..=2).map(|n| site.url(&format!("/slow/{n}"))).collect();
    let first = client.submit(&key, json!({"urls": slow, "batch_size": 1})).await;
    let (status, retry_after, refused) = raw_start(json!({"urls": [site.url("/page/1")]})).await;
    assert_eq!((status, retry_after.as_deref()), (429, Some("30")), "{refused}");
    assert_eq!(refused["error"]["code"], "over_limit");
    assert_eq!(refused["error"]["details"]["limit"], "max_active_jobs", "{refused}");
    let (_, usage) = client.call(reqwest::Method::GET, &format!("{API}/usage"), Some(&key), None).await;
    assert_eq!(usage["limits"]["max_active_jobs"], 1);
    assert_eq!(usage["usage"], json!({"active_jobs": 1, "urls_today": 2}), "{usage}");

    // Once it finishes there is room again, for what is left of the day.
    client.progress_until(&key, &first, Duration::from_secs(120), finished).await;
    let pages: Vec<String> = (1..=10).map(|n| site.url(&format!("/page/{n}"))).collect();
    let second = client.submit(&key, json!({"urls": pages})).await;
    client.progress_until(&key, &second, Duration::from_secs(120), finished).await;
    let (status, retry_after, refused) = raw_start(json!({"urls": [site.url("/page/11")]})).await;
    assert_eq!(status, 429, "{refused}");
    assert_eq!(refused["error"]["details"]["limit"], "max_urls_per_day", "{refused}");
    let wait: u32 = retry_after.expect("Retry-After").parse().unwrap();
    assert!((1..=86_400).contains(&wait), "until midnight UTC: {wait}");
    // A job larger than a whole day is invalid, not a wait.
    let too_many: Vec<String> = (1..=13).map(|n| site.url(&format!("/page/{n}"))).collect();
    let (status, retry_after, refused) = raw_start(json!({"urls": too_many})).await;
    assert_eq!((status, retry_after), (422, None), "{refused}");
    let (_, usage) = client.call(reqwest::Method::GET, &format!("{API}/usage"), Some(&key), None).await;
    assert_eq!(usage["usage"], json!({"active_jobs": 0, "urls_today": 12}), "{usage} (tenant {tenant:?})");
}

/// Sets the own limits of `key`'s tenant in its item, as `make limits` does; its tenant.
async fn own_limits(client: &Client, key: &str, own: &domain::tenancy::LimitOverrides) -> domain::Tenant {
    use store::{KeyStore, Tenancy};
    let sdk = testkit::emulator::sdk_config().await;
    let table = client.stack.values.get("TABLE_NAME").expect("TABLE_NAME in stack.env");
    let store = store::DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table, 30);
    let tenant = store.tenant_for_key_hash(&domain::auth::hash_key(key)).await.unwrap().expect("the key's tenant");
    store.set_limit_overrides(&tenant, own).await.expect("set the tenant's limits");
    tenant
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_at_max_in_flight_has_its_urls_wait_across_its_jobs_and_then_finish() {
    let client = Client::new();
    let site = Site::start().await;
    let key = client.new_tenant_key("in-flight").await;
    let own = domain::tenancy::LimitOverrides { max_in_flight: Some(2), ..Default::default() };
    own_limits(&client, &key, &own).await;
    let (_, usage) = client.call(reqwest::Method::GET, &format!("{API}/usage"), Some(&key), None).await;
    assert_eq!(usage["limits"]["max_in_flight"], 2, "{usage}");

    // Two jobs whose windows would start 30 URLs at once, on a host with room for four.
    let mut ids = Vec::new();
    for job in 0..2 {
        let urls: Vec<String> = (0..15).map(|n| site.url(&format!("/held/{}", job * 15 + n))).collect();
        ids.push(client.submit(&key, json!({"urls": urls, "batch_size": 15})).await);
    }
    let mut most_waiting = 0;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let (_, status) = client.call(reqwest::Method::GET, &format!("{API}/queue/status"), Some(&key), None).await;
        most_waiting = most_waiting.max(status["waiting"]["tenant_cap"].as_u64().expect("waiting.tenant_cap"));
        let mut done = true;
        for id in &ids {
            let (_, progress) =
                client.call(reqwest::Method::GET, &format!("{API}/progress/{id}"), Some(&key), None).await;
            done &= finished(&progress);
        }
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "the jobs did not finish");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for id in &ids {
        let progress = client.progress_until(&key, id, Duration::from_secs(10), finished).await;
        assert_eq!((count(&progress, "succeeded"), count(&progress, "failed")), (15, 0), "{progress}");
    }
    eprintln!("30 URLs at max_in_flight 2: at most {} at once, up to {most_waiting} waiting", site.max_concurrent());
    assert!((1..=2).contains(&site.max_concurrent()), "the tenant had {} at once", site.max_concurrent());
    assert_eq!(site.hits(), 30, "every URL fetched exactly once");
    assert!(most_waiting > 0, "its URLs were seen waiting for the tenant's places");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_asking_for_a_pause_gets_no_request_until_it_ends_and_no_attempt_is_used() {
    let client = Client::new();
    let site = Site::start().await;
    let key = client.new_tenant_key("pause").await;
    // One place at the host: the URL told to wait holds it until the pause is written, so no
    // other URL can slip in between; the pause itself is what keeps the rest away.
    let urls: Vec<String> = (0..6).map(|n| site.url(&format!("/busy/{n}"))).collect();
    let id = client.submit(&key, json!({"urls": urls, "batch_size": 6, "host_concurrency": 1})).await;
    let progress = client.progress_until(&key, &id, Duration::from_secs(120), finished).await;
    assert_eq!((count(&progress, "succeeded"), count(&progress, "failed")), (6, 0), "{progress}");
    let visits = site.visits();
    let told = visits.iter().position(|v| v.status == 429).expect("the site asked for a pause");
    let next = visits.get(told + 1).expect("requests after the pause");
    let quiet = next.at.duration_since(visits[told].at);
    let pause = Duration::from_secs(testkit::site::BUSY_RETRY_AFTER_SECONDS);
    eprintln!("Retry-After: {} s; the next request came {:.2} s later", pause.as_secs(), quiet.as_secs_f64());
    // The pause is counted from when the analyzer heard the answer, a moment after the site
    // sent it: the clocks differ by that moment, never by a whole tenth of a second early.
    assert!(quiet >= pause - Duration::from_millis(100), "a request {quiet:?} after the 429");
    assert_eq!(visits.len(), 7, "six pages and the one that was told to wait: {visits:?}");
    let (_, results) = client.call(reqwest::Method::GET, &format!("{API}/results/{id}"), Some(&key), None).await;
    let attempts: Vec<u64> =
        results["results"].as_array().expect("results").iter().map(|r| r["attempts"].as_u64().unwrap_or(0)).collect();
    assert_eq!(attempts, [1; 6], "a pause the site asked for is no attempt: {results}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_at_one_host_keeps_to_its_places_and_another_tenant_is_not_held_up() {
    let client = Client::new();
    let victim = Site::start().await;
    let elsewhere = Site::start().await;
    let flood = client.new_tenant_key("flood").await;
    let quiet = client.new_tenant_key("quiet").await;
    let quiet_job = |tag: &'static str| {
        let urls: Vec<String> = (0..5).map(|n| elsewhere.url(&format!("/page/{n}?{tag}"))).collect();
        let (client, quiet) = (&client, &quiet);
        async move {
            let started = Instant::now();
            let id = client.submit(quiet, json!({"urls": urls})).await;
            let progress = client.progress_until(quiet, &id, Duration::from_secs(300), finished).await;
            assert_eq!(count(&progress, "succeeded"), 5, "{progress}");
            started.elapsed()
        }
    };
    let alone = quiet_job("alone").await;

    // One tenant: ten 300-URL jobs, all at one host, each with a window of 20.
    let started = Instant::now();
    let mut ids = Vec::new();
    for job in 0..10 {
        let urls: Vec<String> = (0..300).map(|n| victim.url(&format!("/held/{}", job * 300 + n))).collect();
        ids.push(client.submit(&flood, json!({"urls": urls, "batch_size": 20})).await);
    }
    // Another tenant's small job while the flood is at its height.
    client.progress_until(&flood, &ids[0], Duration::from_secs(300), |p| count(p, "succeeded") >= 20).await;
    let during = quiet_job("during").await;
    let (_, status) = client.call(reqwest::Method::GET, &format!("{API}/queue/status"), Some(&quiet), None).await;
    eprintln!("waiting during the flood: {}", status["waiting"]);
    assert!(status["waiting"]["host_busy"].as_u64().is_some_and(|n| n > 0), "{status}");
    for id in &ids {
        let progress = client.progress_until(&flood, id, Duration::from_secs(900), finished).await;
        assert_eq!(
            (progress["status"].as_str(), count(&progress, "succeeded")),
            (Some("completed"), 300),
            "{progress}"
        );
    }
    eprintln!(
        "3 000 URLs at one host: {:.1} s, at most {} at once; the other tenant's 5 URLs: {:.2} s alone, {:.2} s during the flood",
        started.elapsed().as_secs_f64(),
        victim.max_concurrent(),
        alone.as_secs_f64(),
        during.as_secs_f64()
    );
    let places = domain::politeness::HOST_CONCURRENCY.default as usize;
    assert!((1..=places).contains(&victim.max_concurrent()), "the host saw {} at once", victim.max_concurrent());
    assert_eq!(victim.hits(), 3_000, "every URL fetched exactly once");
    // A small job's time alone is mostly the emulator's polling: a floor of 2 s keeps the
    // comparison about the flood, not about noise.
    let allowed = alone.max(Duration::from_secs(2)) * 3;
    assert!(during <= allowed, "held up by the flood: {during:?} against {alone:?} alone");
}
