//! Monitors on the deployed stack: a `rate(15 minutes)` monitor runs when its time comes,
//! with the scheduler invoked as its EventBridge rule would invoke it but at a chosen time
//! (never a 15-minute wait); runs never overlap; each run is an ordinary job of the monitor.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::site::Site;

use super::{API, Client, finished};

const MINUTE: i64 = 60_000;

/// A sweep runs every tenant's due monitors: the tests that move the scheduler's clock take
/// turns, so one's sweep does not run the other's monitor at a time it does not expect.
static CLOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl Client {
    /// Deletes monitor `id`, which must answer 204.
    async fn delete_monitor(&self, key: &str, id: &str) {
        let deleted = self
            .http
            .delete(format!("{}{API}/monitors/{id}", self.stack.api_url))
            .header("x-api-key", key)
            .send()
            .await;
        assert_eq!(deleted.expect("the API answers").status().as_u16(), 204);
    }

    /// The scheduler's sweep as the minute's rule sends it, with `time` as its clock.
    async fn sweep_at(&self, time: i64) -> Value {
        let function = self.stack.value("SCHEDULER_FUNCTION").expect("SCHEDULER_FUNCTION in stack.env");
        let endpoint = self.stack.value("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL in stack.env");
        let event = json!({
            "version": "0", "id": uuid::Uuid::new_v4().to_string(), "detail-type": "Scheduled Event",
            "source": "aws.events", "account": "000000000000", "time": domain::time::rfc3339(time),
            "region": "us-east-1", "resources": [], "detail": {}
        });
        let url = format!("{endpoint}/2015-03-31/functions/{function}/invocations");
        let response = self.http.post(url).json(&event).send().await.expect("the scheduler is invoked");
        assert!(response.status().is_success(), "{}", response.status());
        response.json().await.expect("the sweep's answer")
    }

    async fn monitor(&self, key: &str, id: &str) -> Value {
        let (status, monitor) = self.call(reqwest::Method::GET, &format!("{API}/monitors/{id}"), Some(key), None).await;
        assert_eq!(status, 200, "{monitor}");
        monitor
    }

    /// The monitor once `done` says so.
    async fn monitor_until(&self, key: &str, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let monitor = self.monitor(key, id).await;
            if done(&monitor) {
                return monitor;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "the monitor did not get there: {monitor}");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

fn millis(value: &Value) -> i64 {
    domain::time::parse_rfc3339(value.as_str().expect("a time")).expect("RFC 3339")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monitor_runs_on_its_schedule_without_overlap_and_each_run_is_a_job() {
    let _clock = CLOCK.lock().await;
    let client = Client::new();
    let key = client.new_tenant_key("monitor").await;
    let site = Site::start().await;
    let urls: Vec<String> = (0..4).map(|n| site.url(&format!("/tunable/{n}"))).collect();
    let body =
        json!({"name": "home pages", "urls": urls, "schedule": "rate(15 minutes)", "engine": "http", "batch_size": 2});
    let (status, created) =
        client.call(reqwest::Method::POST, &format!("{API}/monitors"), Some(&key), Some(body)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["monitor_id"].as_str().expect("monitor_id").to_owned();
    let first_tick = millis(&created["next_run_at"]);
    assert_eq!(first_tick - millis(&created["created_at"]), 15 * MINUTE);

    // A minute before its time nothing runs; at its time it runs once.
    client.sweep_at(first_tick - MINUTE).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(client.monitor(&key, &id).await["runs"], 0, "not due yet");
    client.sweep_at(first_tick + 20_000).await;
    let ran = client.monitor_until(&key, &id, |m| m["runs"] == 1).await;
    assert_eq!(
        millis(&ran["next_run_at"]),
        first_tick + 15 * MINUTE,
        "the next tick on the grid, not 15 minutes after the late start"
    );
    let first = ran["last_job_id"].as_str().expect("the run's job").to_owned();
    let progress = client.progress_until(&key, &first, Duration::from_secs(120), finished).await;
    assert_eq!((progress["status"].as_str(), progress["monitor_id"].as_str()), (Some("completed"), Some(id.as_str())));

    // The next tick while that run's pages hang: it runs; the one after finds it going and
    // is skipped, recorded on the monitor.
    for n in 0..4 {
        site.set_delay(n, Duration::from_secs(8));
    }
    client.sweep_at(first_tick + 15 * MINUTE + 1_000).await;
    let ran = client.monitor_until(&key, &id, |m| m["runs"] == 2).await;
    let second = ran["last_job_id"].as_str().expect("the run's job").to_owned();
    assert_ne!(second, first);
    client.sweep_at(first_tick + 30 * MINUTE + 1_000).await;
    let skipped = client.monitor_until(&key, &id, |m| m["skipped_runs"] == 1).await;
    assert_eq!(
        (skipped["runs"].as_u64(), skipped["last_skip"]["reason"].as_str()),
        (Some(2), Some("previous_running"))
    );
    assert_eq!(millis(&skipped["next_run_at"]), first_tick + 45 * MINUTE);
    assert_eq!(millis(&skipped["last_skip"]["tick"]), first_tick + 30 * MINUTE, "times are RFC 3339, as every time");
    for n in 0..4 {
        site.set_delay(n, Duration::ZERO);
    }
    client.progress_until(&key, &second, Duration::from_secs(120), finished).await;

    // After an outage (nothing swept for an hour), the missed tick runs once.
    client.sweep_at(first_tick + 105 * MINUTE).await;
    let caught_up = client.monitor_until(&key, &id, |m| m["runs"] == 3).await;
    assert_eq!(millis(&caught_up["next_run_at"]), first_tick + 120 * MINUTE, "one run, then back on the grid");

    // Each run is a job of the monitor, newest first.
    let (_, runs) = client.call(reqwest::Method::GET, &format!("{API}/jobs?monitor_id={id}"), Some(&key), None).await;
    let jobs: Vec<&str> =
        runs["jobs"].as_array().expect("jobs").iter().map(|j| j["batch_job_id"].as_str().unwrap_or("?")).collect();
    assert_eq!(jobs.len(), 3, "{runs}");
    assert_eq!(&jobs[1..], [second.as_str(), first.as_str()]);

    // By hand, outside the schedule: a job now, the schedule unmoved.
    let third = caught_up["last_job_id"].as_str().expect("a job").to_owned();
    client.progress_until(&key, &third, Duration::from_secs(120), finished).await;
    let (status, run) = client.call(reqwest::Method::POST, &format!("{API}/monitors/{id}/run"), Some(&key), None).await;
    assert_eq!(status, 202, "{run}");
    let after = client.monitor(&key, &id).await;
    assert_eq!((after["runs"].as_u64(), &after["next_run_at"]), (Some(4), &caught_up["next_run_at"]));
    client.delete_monitor(&key, &id).await;
}

/// The report of `job` is written (its digest and its budgets' check with it).
async fn exported(client: &Client, key: &str, job: &str) {
    let started = Instant::now();
    loop {
        let (_, results) =
            client.call(reqwest::Method::GET, &format!("{API}/results/{job}?limit=1"), Some(key), None).await;
        if results["summary"]["complete"] == true {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "job {job} was not exported: {results}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_made_slower_regress_and_their_budget_breaks_and_recovers_once() {
    let _clock = CLOCK.lock().await;
    let client = Client::new();
    let key = client.new_tenant_key("budgets").await;
    let site = Site::start().await;
    // Page 1 is watched by the budget; pages 1 and 3 get slower for the second run.
    let urls: Vec<Value> = (0..4)
        .map(|n| {
            let url = site.url(&format!("/tunable/{n}"));
            if n == 1 { json!({"url": url, "labels": {"watch": "yes"}}) } else { json!(url) }
        })
        .collect();
    let body = json!({"urls": urls, "schedule": "rate(15 minutes)", "engine": "http", "batch_size": 2,
                      "callback_url": site.url("/hook"),
                      "budgets": [{"metric": "ttfb_ms", "max": 500, "labels": "watch"}]});
    let (status, created) =
        client.call(reqwest::Method::POST, &format!("{API}/monitors"), Some(&key), Some(body)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["monitor_id"].as_str().expect("monitor_id").to_owned();
    let tick = millis(&created["next_run_at"]);

    // A rule of the test's own routes this monitor's budget events to a queue it reads.
    let sdk = testkit::emulator::sdk_config().await;
    let (events, sqs) = (aws_sdk_eventbridge::Client::new(&sdk), aws_sdk_sqs::Client::new(&sdk));
    let bus = client.stack.values.get("EVENT_BUS_NAME").expect("EVENT_BUS_NAME in stack.env").clone();
    let queue_name = testkit::emulator::unique_name("e2e-budgets");
    let queue_url = sqs.create_queue().queue_name(&queue_name).send().await.expect("queue").queue_url.expect("its URL");
    let rule = testkit::emulator::unique_name("e2e-budgets");
    let pattern = json!({"source": ["speedbatch"], "detail-type": ["Budget Breached", "Budget Recovered"], "detail": {"monitor_id": [id]}});
    events.put_rule().name(&rule).event_bus_name(&bus).event_pattern(pattern.to_string()).send().await.expect("rule");
    let target = aws_sdk_eventbridge::types::Target::builder()
        .id("queue")
        .arn(format!("arn:aws:sqs:us-east-1:000000000000:{queue_name}"))
        .build()
        .expect("target");
    events.put_targets().rule(&rule).event_bus_name(&bus).targets(target).send().await.expect("targets");
    let drain = || async {
        let mut seen = Vec::new();
        for _ in 0..3 {
            let received = sqs
                .receive_message()
                .queue_url(&queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .expect("receive");
            for message in received.messages() {
                let event: Value = serde_json::from_str(message.body().unwrap_or("{}")).unwrap_or_default();
                seen.push((
                    event["detail-type"].as_str().unwrap_or("?").to_owned(),
                    event["detail"]["url"].as_str().unwrap_or("?").to_owned(),
                ));
            }
        }
        seen
    };

    let mut jobs = Vec::new();
    for (run, delay) in [(0, 0), (1, 800), (2, 0)] {
        site.set_delay(1, Duration::from_millis(delay));
        site.set_delay(3, Duration::from_millis(delay));
        client.sweep_at(tick + run * 15 * MINUTE + 1_000).await;
        let ran = client.monitor_until(&key, &id, |m| m["runs"] == run + 1).await;
        let job = ran["last_job_id"].as_str().expect("the run's job").to_owned();
        client.progress_until(&key, &job, Duration::from_secs(120), finished).await;
        exported(&client, &key, &job).await;
        // The monitor's page of budgets: the watched page over its budget after the slow run only.
        let (status, page) =
            client.call(reqwest::Method::GET, &format!("{API}/monitors/{id}/budgets"), Some(&key), None).await;
        assert_eq!(status, 200, "{page}");
        let over: Vec<(&str, &str)> = page["standings"]
            .as_array()
            .expect("standings")
            .iter()
            .map(|s| (s["url"].as_str().unwrap_or("?"), s["batch_job_id"].as_str().unwrap_or("?")))
            .collect();
        let expected: Vec<(String, &str)> =
            if run == 1 { vec![(site.url("/tunable/1"), job.as_str())] } else { Vec::new() };
        assert_eq!(
            over,
            expected.iter().map(|(u, j)| (u.as_str(), *j)).collect::<Vec<_>>(),
            "over budget after run {run}: {page}"
        );
        jobs.push(job);
    }
    let (status, worse) = client
        .call(reqwest::Method::GET, &format!("{API}/compare?base={}&head={}", jobs[0], jobs[1]), Some(&key), None)
        .await;
    assert_eq!(status, 200, "{worse}");
    let regressed: Vec<&str> = worse["urls"]
        .as_array()
        .expect("urls")
        .iter()
        .filter(|u| u["verdict"] == "regressed")
        .map(|u| u["url"].as_str().unwrap_or("?").rsplit('/').next().unwrap_or("?"))
        .collect();
    assert_eq!(regressed, ["1", "3"], "exactly the slowed pages: {worse}");

    let watched = site.url("/tunable/1");
    let mut seen = drain().await;
    seen.sort();
    assert_eq!(
        seen,
        [("Budget Breached".to_owned(), watched.clone()), ("Budget Recovered".to_owned(), watched.clone())],
        "one event when it broke, one when it recovered, none while it held or for unwatched pages"
    );
    // The monitor's callback heard the same two changes, signed like a job's, beside each run's end.
    let started = Instant::now();
    let budget_hooks = loop {
        let hooks = site.hooks();
        let events: Vec<String> =
            hooks.iter().map(|h| h.headers["x-speedbatch-event"].to_str().unwrap_or("?").to_owned()).collect();
        if events.len() >= 5 {
            assert_eq!(events.iter().filter(|e| *e == "Job Completed").count(), 3, "{events:?}");
            break hooks.into_iter().filter(|h| h.headers["x-speedbatch-event"] != "Job Completed").collect::<Vec<_>>();
        }
        assert!(started.elapsed() < Duration::from_secs(60), "callbacks so far: {events:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut called: Vec<(String, String)> = budget_hooks
        .iter()
        .map(|h| {
            let body: Value = serde_json::from_slice(&h.body).unwrap_or_default();
            (
                body["detail-type"].as_str().unwrap_or("?").to_owned(),
                body["detail"]["url"].as_str().unwrap_or("?").to_owned(),
            )
        })
        .collect();
    called.sort();
    assert_eq!(called, seen, "the callback hears what the bus does");
    // Its delivery is kept on the standing it announced (recorded just after the POST is answered).
    let started = Instant::now();
    loop {
        let (_, back) = client
            .call(reqwest::Method::GET, &format!("{API}/monitors/{id}/budgets?state=within"), Some(&key), None)
            .await;
        assert_eq!(back["standings"][0]["url"], watched.as_str(), "{back}");
        if back["standings"][0]["callback"]["state"] == "delivered" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the Budget Recovered delivery not recorded: {back}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    client.delete_monitor(&key, &id).await;
}
