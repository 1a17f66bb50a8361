//! Speed over time on the deployed stack: a URL's history across jobs, and two jobs compared
//! when some pages got slower between them and were then fixed.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::site::Site;

use super::{API, Client, finished};

/// How much slower the slowed pages get: far beyond every noise threshold.
const SLOWER: Duration = Duration::from_millis(800);

/// Runs one job of `urls` to its end; returns its id.
async fn run(client: &Client, key: &str, urls: &[String]) -> String {
    // A small window keeps the unchanged pages' own timings quiet on a 2-core machine.
    let id = client.submit(key, json!({"urls": urls, "engine": "http", "batch_size": 2})).await;
    let progress = client.progress_until(key, &id, Duration::from_secs(300), finished).await;
    assert_eq!(progress["status"], "completed", "{progress}");
    id
}

/// The comparison of `base` and `head`, once both digests are written (the exporter writes
/// them within seconds of each job's end: `503` until then).
async fn compare(client: &Client, key: &str, base: &str, head: &str) -> Value {
    let started = Instant::now();
    loop {
        let (status, body) =
            client.call(reqwest::Method::GET, &format!("{API}/compare?base={base}&head={head}"), Some(key), None).await;
        if status == 200 {
            return body;
        }
        assert_eq!(status, 503, "{body}");
        assert!(started.elapsed() < Duration::from_secs(60), "digests not written in a minute: {body}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Each URL's page number with its verdict, in the answer's order.
fn verdicts(comparison: &Value) -> Vec<(String, String)> {
    comparison["urls"]
        .as_array()
        .expect("urls")
        .iter()
        .map(|u| {
            let page = u["url"].as_str().unwrap_or("?").rsplit('/').next().unwrap_or("?").to_owned();
            (page, u["verdict"].as_str().unwrap_or("?").to_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_made_slower_regress_and_recover_and_each_url_keeps_its_history() {
    let client = Client::new();
    let key = client.new_tenant_key("history").await;
    let site = Site::start().await;
    let urls: Vec<String> = (0..4).map(|n| site.url(&format!("/tunable/{n}"))).collect();

    let fast = run(&client, &key, &urls).await;
    site.set_delay(1, SLOWER);
    site.set_delay(3, SLOWER);
    let slow = run(&client, &key, &urls).await;
    site.set_delay(1, Duration::ZERO);
    site.set_delay(3, Duration::ZERO);
    let fixed = run(&client, &key, &urls).await;

    let worse = compare(&client, &key, &fast, &slow).await;
    eprintln!("fast → slow: {}", worse["counts"]);
    let expected = |verdict: &str| {
        vec![
            ("1".to_owned(), verdict.to_owned()),
            ("3".to_owned(), verdict.to_owned()),
            ("0".to_owned(), "unchanged".to_owned()),
            ("2".to_owned(), "unchanged".to_owned()),
        ]
    };
    assert_eq!(verdicts(&worse), expected("regressed"), "exactly the slowed pages regressed: {worse}");
    let reasons = worse["urls"][0]["reasons"].to_string();
    assert!(reasons.contains("ttfb_ms +"), "the slower server is named: {reasons}");
    let better = compare(&client, &key, &slow, &fixed).await;
    assert_eq!(verdicts(&better), expected("improved"), "{better}");

    // The tenant's day counts the three jobs' URLs once each (their reports are written: the
    // comparisons read them).
    let (status, analytics) = client.call(reqwest::Method::GET, &format!("{API}/analytics"), Some(&key), None).await;
    assert_eq!(status, 200, "{analytics}");
    let today = analytics["days"].as_array().and_then(|days| days.last()).cloned().unwrap_or_default();
    assert_eq!((today["analysed"].as_u64(), today["success_rate"].as_f64()), (Some(12), Some(1.0)), "{today}");
    // The http engine's number is a delivery score: a metric of its own, never `score`.
    assert_eq!((&today["score"], &today["metrics"]["delivery_score"]["count"]), (&Value::Null, &json!(12)), "{today}");
    assert!(
        today["metrics"]["ttfb_ms"]["p95"].as_f64().is_some_and(|p95| p95 >= 700.0),
        "two slow pages of 12: {today}"
    );

    // One URL in three jobs: three points, oldest first, the slow run in the middle.
    let (status, history) = client
        .call(reqwest::Method::GET, &format!("{API}/history?url={}&metric=ttfb_ms", urls[1]), Some(&key), None)
        .await;
    assert_eq!(status, 200, "{history}");
    let points = history["points"].as_array().expect("points");
    let jobs: Vec<&str> = points.iter().map(|p| p["batch_job_id"].as_str().unwrap_or("?")).collect();
    assert_eq!(jobs, [fast.as_str(), slow.as_str(), fixed.as_str()], "{history}");
    let ttfb: Vec<f64> = points.iter().map(|p| p["value"].as_f64().unwrap_or(f64::NAN)).collect();
    eprintln!("ttfb_ms of /tunable/1 over the three jobs: {ttfb:?}");
    assert!(ttfb[1] >= SLOWER.as_millis() as f64 && ttfb[0] < 400.0 && ttfb[2] < 400.0, "{ttfb:?}");
    assert_eq!(history["next_cursor"], Value::Null);

    // Another tenant sees no history of it, and cannot compare these jobs.
    let other = client.new_tenant_key("history-other").await;
    let (_, theirs) =
        client.call(reqwest::Method::GET, &format!("{API}/history?url={}", urls[1]), Some(&other), None).await;
    assert_eq!(theirs["points"], json!([]), "{theirs}");
    let (status, _) =
        client.call(reqwest::Method::GET, &format!("{API}/compare?base={fast}&head={slow}"), Some(&other), None).await;
    assert_eq!(status, 404);
}
