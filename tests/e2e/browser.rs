//! The browser engine on the deployed stacks: a 20-URL job measured in headless Chromium by
//! the browser analyzer (its own queue and function), its screenshots linked to their tenant
//! only; and, on the strict chaos stack, a page whose scripts reach for the metadata service
//! and loopback, refused before any connection.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{Value, json};
use testkit::browser::watched_port;
use testkit::site::Site;
use testkit::stack::DeployedStack;

use super::{API, Client, finished};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_20_url_browser_job_completes_with_lab_metrics_and_screenshots_for_its_tenant_only() {
    let client = Client::new();
    let key = client.new_tenant_key("browser").await;
    let site = Site::start().await;
    let mut urls: Vec<String> = (1..=18).map(|n| site.url(&format!("/page/{n}"))).collect();
    urls.push(site.url("/lab/busy"));
    urls.push(site.url("/missing"));
    let id = client.submit(&key, json!({"urls": urls, "engine": "browser", "strategy": "desktop"})).await;
    let progress = client.progress_until(&key, &id, Duration::from_secs(600), finished).await;
    assert_eq!(progress["status"], "completed_with_errors", "{progress}");
    assert_eq!((progress["succeeded"].as_u64(), progress["failed"].as_u64()), (Some(19), Some(1)), "{progress}");
    assert_eq!(progress["engine"], "browser", "{progress}");

    let (status, results) =
        client.call(reqwest::Method::GET, &format!("{API}/results/{id}?limit=100"), Some(&key), None).await;
    assert_eq!(status, 200, "{results}");
    let rows = results["results"].as_array().unwrap();
    let busy = rows.iter().find(|r| r["url"].as_str().is_some_and(|u| u.ends_with("/lab/busy"))).unwrap();
    assert_eq!(busy["engine"], "browser");
    assert!(busy["score"].as_f64().is_some_and(|s| (0.0..=100.0).contains(&s)), "{busy}");
    for metric in ["fcp_ms", "lcp_ms", "tbt_ms", "cls", "speed_index_ms", "ttfb_ms", "page_bytes", "requests"] {
        assert!(busy["metrics"][metric].is_number(), "{metric}: {busy}");
    }
    assert_eq!(busy["metrics"]["lcp_element"]["selector"], "img#hero", "{busy}");
    let missing = rows.iter().find(|r| r["status"] == "failed").unwrap();
    assert_eq!(
        (missing["error_kind"].as_str(), missing["metrics"]["status_code"].as_u64()),
        (Some("http_4xx"), Some(404))
    );

    // The screenshot: a redirect to the JPEG for the job's tenant, nothing for another.
    let path = busy["metrics"]["screenshot"].as_str().expect("a screenshot's link").to_owned();
    assert!(path.starts_with(&format!("{API}/screenshots/{id}/")), "kept under its job: {path}");
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let link = format!("{}{path}", client.stack.api_url);
    let answer = no_redirects.get(&link).header("x-api-key", &key).send().await.unwrap();
    assert_eq!(answer.status(), 303);
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    let image = reqwest::get(&location).await.unwrap().bytes().await.unwrap();
    assert_eq!(&image[..3], [0xff, 0xd8, 0xff], "a JPEG");
    let other = no_redirects.get(&link).header("x-api-key", client.key()).send().await.unwrap();
    assert_eq!(other.status(), 404, "another tenant's job: no such job");
    let made_up = format!("{}{API}/screenshots/{id}/..%2F..%2Fexports.jpg", client.stack.api_url);
    assert_eq!(no_redirects.get(&made_up).header("x-api-key", &key).send().await.unwrap().status(), 404);

    // Cleaning the job up takes its screenshots from the bucket (the still valid link finds
    // nothing), not only the job's rows.
    let (status, cleaned) =
        client.call(reqwest::Method::DELETE, &format!("{API}/cleanup?older_than_days=0"), Some(&key), None).await;
    assert_eq!((status, cleaned["jobs_deleted"].as_u64()), (200, Some(1)), "{cleaned}");
    assert_eq!(reqwest::get(&location).await.unwrap().status(), 404, "the screenshot went with its job");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pages_requests_to_metadata_and_loopback_are_refused_and_reported_on_the_strict_stack() {
    let strict = DeployedStack::chaos().unwrap_or_else(|e| panic!("{e}"));
    let client = Client { http: reqwest::Client::new(), stack: strict };
    // The strict stack lets through one non-public address, 127.0.0.2, where this page is.
    let site = Site::start_on(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))).await;
    let (port, seen) = watched_port().await;
    let metadata = "http://169.254.169.254/latest/meta-data/".to_owned();
    let loopback = format!("http://127.0.0.1:{port}/secret");
    let encode = |u: &str| url::form_urlencoded::byte_serialize(u.as_bytes()).collect::<String>();
    let page = format!("{}?to={}&to={}", site.url("/lab/fetches"), encode(&metadata), encode(&loopback));
    let id = client.submit(client.key(), json!({"urls": [page], "engine": "browser", "strategy": "mobile"})).await;
    let progress = client.progress_until(client.key(), &id, Duration::from_secs(300), finished).await;
    assert_eq!(progress["status"], "completed", "the page itself is measured: {progress}");
    let (_, results) =
        client.call(reqwest::Method::GET, &format!("{API}/results/{id}"), Some(client.key()), None).await;
    let blocked: &Value = &results["results"][0]["metrics"]["blocked_requests"];
    let urls: Vec<&str> = blocked.as_array().unwrap().iter().filter_map(|r| r["url"].as_str()).collect();
    assert!(urls.contains(&metadata.as_str()) && urls.contains(&loopback.as_str()), "{blocked}");
    assert!(blocked.to_string().contains("blocked by policy"), "{blocked}");
    assert_eq!(seen.load(Ordering::SeqCst), 0, "nothing reached the loopback listener");
}

/// The Lambda layer's Chromium (what `make build` unpacked from @sparticuz/chromium) measures
/// a page as Debian's does, with Lambda's switches: a version whose headless shell reported no
/// paints, or a layer without its fonts (no text paints), would fail here before deploying.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lambda_layers_chromium_measures_every_lab_metric() {
    use engine::Engine;
    use engine::browser::{BrowserEngine, BrowserSettings};
    let chromium = testkit::stack::local_dir().join("layer-chromium");
    assert!(chromium.is_file(), "{} is missing: make build unpacks the layer", chromium.display());
    let settings = BrowserSettings {
        switches: vec!["--single-process".into(), "--no-zygote".into()],
        ..BrowserSettings::new(chromium)
    };
    let engine = BrowserEngine::new(domain::AddressPolicy::LOCAL, settings, testkit::screenshots::Folder::new());
    let site = Site::start().await;
    let analysis = engine
        .analyze(&site.url("/lab/busy"), domain::Strategy::Desktop, Duration::from_secs(90))
        .await
        .expect("measured");
    let m = &analysis.metrics;
    for metric in ["fcp_ms", "lcp_ms", "tbt_ms", "cls", "speed_index_ms", "ttfb_ms"] {
        assert!(m[metric].is_number(), "{metric}: {m:?}");
    }
    assert!(analysis.score.is_some(), "{m:?}");
    assert_eq!(m["lcp_element"]["selector"], "img#hero", "{m:?}");
    assert!(m["tbt_ms"].as_f64().unwrap() >= 250.0, "the 300 ms task after the first paint: {m:?}");
}
