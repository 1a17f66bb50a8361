//! Field data on the deployed stack: its analyzers call the fake Chrome UX Report this process
//! serves at the stack's `CRUX_ENDPOINT`, with the key `make up` put in SSM. A field-only job
//! over URLs with their own record, only their origin's, and none; both form factors and the
//! weekly history; the verdict filter, the summary's counts and the CSV's history columns; and
//! field data beside the http engine's lab result for a page this test serves.

use std::time::Duration;

use serde_json::{Value, json};
use testkit::fake_crux::local::for_local_stack;
use testkit::fake_crux::{Endpoint, FormFactor, Identifier};
use testkit::site::Site;

use super::{API, Client, finished};

/// The results of a finished job once its report is written (its summary complete).
async fn report(client: &Client, id: &str, query: &str) -> Value {
    let started = std::time::Instant::now();
    loop {
        let path = format!("{API}/results/{id}?{query}");
        let (status, results) = client.call(reqwest::Method::GET, &path, Some(client.key()), None).await;
        assert_eq!(status, 200, "{results}");
        if results["summary"]["complete"] == true {
            return results;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no report within a minute: {results}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn rows(results: &Value) -> Vec<&Value> {
    results["results"].as_array().expect("results").iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_only_job_reads_records_origins_and_history_and_filters_by_verdict() {
    let client = Client::new();
    let fake = for_local_stack(&client.stack).expect("the local stack's fake CrUX");
    // Hosts of this run alone: the fake's counters are the whole process's.
    let run = uuid::Uuid::new_v4().simple().to_string();
    let host = |name: &str| format!("https://{name}-{run}.example");
    // As the service cleans them: a site's root has no trailing slash.
    let urls = [
        host("shop"),
        format!("{}/item/7", host("shop")),
        format!("{}/origin-only/1", host("small")),
        format!("{}/x", host("no-field-data")),
        host("slow-field"),
    ];
    let body = json!({"urls": urls, "engine": "none", "strategy": "both", "field_history": true, "name": "e2e field"});
    let id = client.submit(client.key(), body).await;
    let progress = client.progress_until(client.key(), &id, Duration::from_secs(300), finished).await;
    assert_eq!(
        (progress["status"].as_str(), progress["succeeded"].as_u64()),
        (Some("completed"), Some(5)),
        "{progress}"
    );

    let results = report(&client, &id, "").await;
    let by_url = |url: &str| rows(&results).into_iter().find(|row| row["url"] == url).expect("a row per URL").clone();
    let own = by_url(&urls[0]);
    assert_eq!((own["engine"].as_str(), own["score"].as_f64()), (Some("none"), None));
    let m = &own["metrics"];
    assert_eq!((m["field_status"].as_str(), m["field_source"].as_str()), (Some("available"), Some("url")), "{m}");
    assert_eq!(m["field_history"]["weeks"].as_array().map(Vec::len), Some(40));
    assert_eq!(m["desktop"]["field_source"], "url", "{m}");
    assert_eq!(by_url(&urls[2])["metrics"]["field_source"], "origin");
    assert_eq!(by_url(&urls[3])["metrics"]["field_status"], "unavailable");
    assert_eq!(by_url(&urls[4])["metrics"]["field_overall_category"], "poor");
    let verdicts = &results["summary"]["field_verdicts"];
    let verdict_of = |url: &str| by_url(url)["metrics"]["field_overall_category"].as_str().map(str::to_owned);
    let poor_urls: Vec<&str> =
        urls.iter().map(String::as_str).filter(|url| verdict_of(url).as_deref() == Some("poor")).collect();
    assert_eq!(verdicts["poor"].as_u64(), Some(poor_urls.len() as u64), "{verdicts}");
    assert_eq!(verdicts["unavailable"].as_u64(), Some(1), "{verdicts}");
    let counted: u64 = verdicts.as_object().unwrap().values().filter_map(Value::as_u64).sum();
    assert_eq!(counted, 5, "every URL counted once: {verdicts}");

    let poor = report(&client, &id, "field_overall_category=poor").await;
    assert_eq!(rows(&poor).iter().map(|row| row["url"].as_str().unwrap()).collect::<Vec<_>>(), poor_urls);
    assert!(poor_urls.contains(&urls[4].as_str()), "slow everywhere: {poor_urls:?}");
    let (status, refused) = client
        .call(
            reqwest::Method::GET,
            &format!("{API}/results/{id}?field_overall_category=slow"),
            Some(client.key()),
            None,
        )
        .await;
    assert_eq!(status, 422, "{refused}");

    // One record request per URL and form factor where the URL has its own; the origin's after
    // its 404; a history only where a record was found; nothing refused.
    let stats = fake.stats();
    let count = |endpoint, identifier: Identifier, form_factor| stats.count(endpoint, &identifier, Some(form_factor));
    for form_factor in [FormFactor::Phone, FormFactor::Desktop] {
        assert_eq!(count(Endpoint::QueryRecord, Identifier::Url(urls[1].clone()), form_factor), 1);
        assert_eq!(count(Endpoint::QueryHistoryRecord, Identifier::Url(urls[1].clone()), form_factor), 1);
        assert_eq!(count(Endpoint::QueryRecord, Identifier::Origin(host("small")), form_factor), 1);
        assert_eq!(count(Endpoint::QueryHistoryRecord, Identifier::Origin(host("small")), form_factor), 1);
        assert_eq!(count(Endpoint::QueryHistoryRecord, Identifier::Origin(host("no-field-data")), form_factor), 0);
    }
    assert_eq!(stats.status(429), 0, "the limiter kept the quota: {stats:?}");

    // The CSV carries the weekly series as columns.
    let csv = client
        .http
        .get(format!("{}{API}/results/{id}?format=csv&limit=10", client.stack.api_url))
        .header("x-api-key", client.key())
        .send()
        .await
        .expect("a CSV page")
        .text()
        .await
        .expect("its text");
    let header = csv.lines().next().unwrap_or_default();
    assert!(header.contains("field_history_lcp_ms") && header.contains("field_overall_category"), "{header}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_data_rides_beside_the_http_engine_on_a_served_page() {
    let client = Client::new();
    let fake = for_local_stack(&client.stack).expect("the local stack's fake CrUX");
    let site = Site::start().await;
    // CrUX never saw this local site: its field data is unavailable, the lab result stands.
    fake.add_origin_without_data(site.url("").trim_end_matches('/'));
    let body = json!({"urls": [site.url("/page/1")], "engine": "http", "field_data": true});
    let id = client.submit(client.key(), body).await;
    let progress = client.progress_until(client.key(), &id, Duration::from_secs(300), finished).await;
    assert_eq!(progress["status"], "completed", "{progress}");
    let results = report(&client, &id, "").await;
    let m = &rows(&results)[0]["metrics"];
    assert!(m["delivery_score"].is_number(), "{m}");
    assert_eq!(m["field_status"], "unavailable", "{m}");
    assert_eq!(site.hits(), 1);
}
