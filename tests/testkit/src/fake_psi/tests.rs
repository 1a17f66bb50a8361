//! The fake against its own contract: quotas, keys, injected failures, bodies.

use super::*;
use axum::http::header;

fn fixture_path() -> PathBuf {
    super::lighthouse_fixture()
}

fn config() -> FakePsiConfig {
    FakePsiConfig::new(fixture_path())
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn request_url(fake: &FakePsi, params: &[(&str, &str)]) -> String {
    let query: Vec<String> = params.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
    format!("{}?{}", fake.endpoint(), query.join("&"))
}

async fn get(client: &reqwest::Client, fake: &FakePsi, params: &[(&str, &str)]) -> (u16, Value) {
    let response = client.get(request_url(fake, params)).send().await.expect("request to fake PSI");
    let status = response.status().as_u16();
    let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
    let body = response.json::<Value>().await.expect("JSON body");
    assert_eq!(content_type.as_ref().and_then(|v| v.to_str().ok()), Some(JSON_CONTENT_TYPE));
    (status, body)
}

async fn status_of(client: &reqwest::Client, fake: &FakePsi, url: &str) -> u16 {
    let response = client.get(request_url(fake, &[("url", url)])).send().await.expect("request to fake PSI");
    let status = response.status().as_u16();
    response.bytes().await.expect("body");
    status
}

/// Sleeps until just after the next window boundary of `window`.
async fn sleep_into_next_window(fake: &FakePsi, window: Duration) {
    let elapsed = fake.started_at().elapsed();
    let next = window.as_nanos() * (window_index(elapsed, window) + 1);
    let next = Duration::from_nanos(next as u64);
    tokio::time::sleep(next - elapsed + Duration::from_millis(30)).await;
}

fn assert_all_in_first_window(fake: &FakePsi, window: Duration) {
    let stamps = fake.accepted_timestamps();
    assert!(
        stamps.iter().all(|t| *t < window),
        "test precondition: requests must land in the first {window:?} window, got {stamps:?}"
    );
}

fn keys(value: &Value) -> BTreeSet<String> {
    value.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

fn quota_body(limit_name: &str, quota_limit: &str) -> Value {
    let message = format!(
        "Quota exceeded for quota metric 'Queries' and limit '{limit_name}' of service \
         'pagespeedonline.googleapis.com' for consumer 'project_number:000000000000'."
    );
    json!({"error": {
        "code": 429,
        "message": message,
        "errors": [{"message": message, "domain": "global", "reason": "rateLimitExceeded"}],
        "status": "RESOURCE_EXHAUSTED",
        "details": [{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "RATE_LIMIT_EXCEEDED",
            "domain": "googleapis.com",
            "metadata": {
                "quota_limit": quota_limit,
                "quota_metric": "pagespeedonline.googleapis.com/default",
                "service": "pagespeedonline.googleapis.com",
                "consumer": "projects/000000000000",
            },
        }],
    }})
}

#[tokio::test]
async fn success_has_psi_shape_url_strategy_and_only_requested_categories() {
    let fake = FakePsi::start(config());
    let client = reqwest::Client::new();
    let page = r#"https://example.com/shop?q=caf%C3%A9&x=1&t="quoted""#;
    let (status, body) = get(
        &client,
        &fake,
        &[("url", page), ("strategy", "desktop"), ("category", "accessibility"), ("category", "best-practices")],
    )
    .await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["kind"], "pagespeedonline#result");
    assert_eq!(body["captchaResult"], "CAPTCHA_NOT_NEEDED");
    assert_eq!(body["id"], page);
    let stamp = body["analysisUTCTimestamp"].as_str().expect("timestamp");
    assert_eq!(stamp.len(), "2026-01-02T03:04:05.678Z".len(), "{stamp}");
    assert!(stamp.starts_with("20") && stamp.ends_with('Z') && &stamp[10..11] == "T", "{stamp}");

    let lhr = &body["lighthouseResult"];
    for field in ["requestedUrl", "finalUrl", "finalDisplayedUrl", "mainDocumentUrl"] {
        assert_eq!(lhr[field], page, "{field}");
    }
    assert_eq!(lhr["configSettings"]["formFactor"], "desktop");
    assert_eq!(lhr["configSettings"]["emulatedFormFactor"], "desktop");
    assert_eq!(lhr["configSettings"]["screenEmulation"]["mobile"], false);
    assert_eq!(lhr["lighthouseVersion"], "13.4.1");
    assert_eq!(keys(&lhr["categories"]), BTreeSet::from(["accessibility".into(), "best-practices".into()]));
    assert!(lhr["categories"]["accessibility"]["score"].is_number());

    // Audits follow the categories, as with Lighthouse's onlyCategories.
    let audits = keys(&lhr["audits"]);
    for category in ["accessibility", "best-practices"] {
        for audit_ref in lhr["categories"][category]["auditRefs"].as_array().expect("auditRefs") {
            let id = audit_ref["id"].as_str().expect("audit id");
            assert!(audits.contains(id), "missing audit {id}");
        }
    }
    assert!(!audits.contains("largest-contentful-paint"), "performance audit leaked");

    let field = &body["loadingExperience"];
    assert_eq!(field["id"], page);
    assert_eq!(field["initial_url"], page);
    assert_eq!(keys(&field["metrics"]), FIELD_METRICS.iter().map(|m| m.0.to_string()).collect::<BTreeSet<_>>());
    for (name, metric) in field["metrics"].as_object().expect("metrics") {
        assert!(metric["percentile"].is_u64(), "{name}");
        assert_eq!(metric["distributions"].as_array().map(Vec::len), Some(3), "{name}");
        assert!(["FAST", "AVERAGE", "SLOW"].contains(&metric["category"].as_str().unwrap_or("")), "{name}");
    }
    assert!(["FAST", "AVERAGE", "SLOW"].contains(&field["overall_category"].as_str().unwrap_or("")));
    assert!(field.get("origin_fallback").is_none());
    assert_eq!(body["originLoadingExperience"]["id"], "https://example.com");
}

#[tokio::test]
async fn defaults_are_mobile_and_performance_only() {
    let fake = FakePsi::start(config());
    let client = reqwest::Client::new();
    let (status, body) = get(&client, &fake, &[("url", "https://example.com/")]).await;
    assert_eq!(status, 200);
    let lhr = &body["lighthouseResult"];
    assert_eq!(lhr["configSettings"]["formFactor"], "mobile");
    assert_eq!(lhr["configSettings"]["emulatedFormFactor"], "mobile");
    assert_eq!(keys(&lhr["categories"]), BTreeSet::from(["performance".to_string()]));
    assert!(lhr["audits"].get("largest-contentful-paint").is_some());
    assert!(lhr["audits"].get("color-contrast").is_none(), "accessibility audit leaked");
}

#[tokio::test]
async fn enum_values_are_accepted_in_api_spelling_and_bad_ones_rejected() {
    let fake = FakePsi::start(config());
    let client = reqwest::Client::new();
    let url = "https://example.com/";
    let (status, body) = get(
        &client,
        &fake,
        &[("url", url), ("strategy", "DESKTOP"), ("category", "BEST_PRACTICES"), ("category", "SEO")],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["lighthouseResult"]["configSettings"]["formFactor"], "desktop");
    assert_eq!(keys(&body["lighthouseResult"]["categories"]), BTreeSet::from(["best-practices".into(), "seo".into()]));

    let (status, body) = get(&client, &fake, &[("url", url), ("category", "speed")]).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(body["error"]["message"], "Invalid value at 'category' (TYPE_ENUM), \"speed\"");
    let (status, body) = get(&client, &fake, &[("url", url), ("strategy", "tablet")]).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["message"], "Invalid value at 'strategy' (TYPE_ENUM), \"tablet\"");
}

#[tokio::test]
async fn field_data_variants() {
    let fake = FakePsi::start(config());
    let client = reqwest::Client::new();

    let url = "https://example.org/no-field-data/page";
    let (status, body) = get(&client, &fake, &[("url", url)]).await;
    assert_eq!(status, 200);
    assert_eq!(body["loadingExperience"], json!({"initial_url": url}));
    assert!(body["originLoadingExperience"].get("metrics").is_none());

    let url = "https://example.org/origin-only/page";
    let (status, body) = get(&client, &fake, &[("url", url)]).await;
    assert_eq!(status, 200);
    let field = &body["loadingExperience"];
    assert_eq!(field["origin_fallback"], true);
    assert_eq!(field["id"], "https://example.org");
    assert_eq!(field["metrics"], body["originLoadingExperience"]["metrics"]);
}

#[tokio::test]
async fn quota_rejects_beyond_limit_then_recovers_in_next_window() {
    let window = Duration::from_secs(1);
    let fake = FakePsi::start(FakePsiConfig {
        quota: vec![QuotaWindow { limit: 3, window, kind: QuotaKind::PerMinute }],
        ..config()
    });
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    let mut rejections = Vec::new();
    for i in 0..5 {
        let (status, body) = get(&client, &fake, &[("url", &format!("https://example.com/{i}"))]).await;
        statuses.push(status);
        if status == 429 {
            rejections.push(body);
        }
    }
    assert_all_in_first_window(&fake, window);
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    let expected = quota_body("Queries per minute", "defaultPerMinutePerProject");
    assert_eq!(rejections, [expected.clone(), expected]);

    sleep_into_next_window(&fake, window).await;
    assert_eq!(status_of(&client, &fake, "https://example.com/later").await, 200);
    let stats = fake.stats();
    assert_eq!((stats.accepted, stats.succeeded, stats.rejected_quota), (4, 4, 2));
    assert_eq!(stats.max_in_window, [3]);
}

#[tokio::test]
async fn quota_error_names_match_the_kind() {
    for (kind, limit_name, quota_limit) in [
        (QuotaKind::PerMinute, "Queries per minute", "defaultPerMinutePerProject"),
        (QuotaKind::Per100Seconds, "Queries per 100 seconds", "defaultPer100SecondsPerProject"),
        (QuotaKind::PerDay, "Queries per day", "defaultPerDayPerProject"),
    ] {
        let fake = FakePsi::start(FakePsiConfig { quota: vec![QuotaWindow::nominal(kind, 1)], ..config() });
        let client = reqwest::Client::new();
        assert_eq!(status_of(&client, &fake, "https://example.com/").await, 200);
        let (status, body) = get(&client, &fake, &[("url", "https://example.com/")]).await;
        assert_eq!(status, 429);
        assert_eq!(body, quota_body(limit_name, quota_limit), "{kind:?}");
    }
}

#[tokio::test]
async fn rejected_requests_do_not_count_against_any_quota() {
    let short = Duration::from_secs(1);
    let fake = FakePsi::start(FakePsiConfig {
        quota: vec![
            QuotaWindow { limit: 2, window: short, kind: QuotaKind::PerMinute },
            QuotaWindow { limit: 3, window: Duration::from_secs(60), kind: QuotaKind::PerDay },
        ],
        ..config()
    });
    let client = reqwest::Client::new();
    let url = "https://example.com/";
    let mut first = Vec::new();
    for _ in 0..3 {
        first.push(status_of(&client, &fake, url).await);
    }
    assert_all_in_first_window(&fake, short);
    assert_eq!(first, [200, 200, 429]);

    // Had the 429 counted, the day quota (3) would already be spent.
    sleep_into_next_window(&fake, short).await;
    assert_eq!(status_of(&client, &fake, url).await, 200);
    let (status, body) = get(&client, &fake, &[("url", url)]).await;
    assert_eq!(status, 429);
    assert_eq!(body, quota_body("Queries per day", "defaultPerDayPerProject"));

    let stats = fake.stats();
    assert_eq!((stats.accepted, stats.rejected_quota), (3, 2));
    assert_eq!(stats.max_in_window, [2, 3]);
    assert_eq!(fake.accepted_timestamps().len(), 3);
}

#[tokio::test]
async fn bad_key_is_rejected_and_does_not_use_quota() {
    let fake = FakePsi::start(FakePsiConfig {
        api_key: Some("right-key".into()),
        quota: vec![QuotaWindow::nominal(QuotaKind::PerMinute, 1)],
        ..config()
    });
    let client = reqwest::Client::new();
    let url = "https://example.com/";
    let message = "API key not valid. Please pass a valid API key.";
    let expected = json!({"error": {
        "code": 400,
        "message": message,
        "errors": [{"message": message, "domain": "global", "reason": "badRequest"}],
        "status": "INVALID_ARGUMENT",
        "details": [{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "pagespeedonline.googleapis.com"},
        }],
    }});
    assert_eq!(get(&client, &fake, &[("url", url)]).await, (400, expected.clone()));
    assert_eq!(get(&client, &fake, &[("url", url), ("key", "wrong-key")]).await, (400, expected));
    let (status, _) = get(&client, &fake, &[("url", url), ("key", "right-key")]).await;
    assert_eq!(status, 200, "the two bad-key requests must not have used the quota of 1");
    let stats = fake.stats();
    assert_eq!((stats.requests, stats.rejected_key, stats.accepted, stats.succeeded), (3, 2, 1, 1));
}

#[tokio::test]
async fn injected_errors_have_googles_status_and_message() {
    let fake = FakePsi::start(config());
    let client = reqwest::Client::new();
    let unable = "Lighthouse was unable to reliably load the page you requested. Make sure you are testing the \
                  correct URL and that the server is properly responding to all requests.";
    let cases = [
        (
            "https://dns-failure.example/",
            500,
            "INTERNAL",
            "Lighthouse returned error: DNS_FAILURE. DNS servers could not resolve the provided domain.".to_string(),
        ),
        (
            "https://example.com/errored-document-404",
            500,
            "INTERNAL",
            format!("Lighthouse returned error: ERRORED_DOCUMENT_REQUEST. {unable} (Status code: 404)"),
        ),
        (
            "https://example.com/errored-document-503/x",
            500,
            "INTERNAL",
            format!("Lighthouse returned error: ERRORED_DOCUMENT_REQUEST. {unable} (Status code: 503)"),
        ),
        (
            "https://example.com/failed-document",
            500,
            "INTERNAL",
            format!("Lighthouse returned error: FAILED_DOCUMENT_REQUEST. {unable} (Details: net::ERR_TIMED_OUT)"),
        ),
        ("https://example.com/server-error", 500, "INTERNAL", "Internal error encountered.".to_string()),
        (
            "ftp://invalid.example/",
            400,
            "INVALID_ARGUMENT",
            r#"Invalid value at 'url' (TYPE_STRING), "ftp://invalid.example/""#.to_string(),
        ),
        (
            "not a url at all",
            400,
            "INVALID_ARGUMENT",
            r#"Invalid value at 'url' (TYPE_STRING), "not a url at all""#.to_string(),
        ),
        ("https://", 400, "INVALID_ARGUMENT", r#"Invalid value at 'url' (TYPE_STRING), "https://""#.to_string()),
    ];
    for (url, code, status_name, message) in &cases {
        let (status, body) = get(&client, &fake, &[("url", url)]).await;
        assert_eq!(status, *code, "{url}: {body}");
        assert_eq!(body["error"]["code"], *code, "{url}");
        assert_eq!(body["error"]["status"], *status_name, "{url}");
        assert_eq!(body["error"]["message"], message.as_str(), "{url}");
        assert_eq!(body["error"]["errors"][0]["message"], message.as_str(), "{url}");
    }
    let (status, body) = get(&client, &fake, &[("strategy", "mobile")]).await;
    assert_eq!(status, 400, "missing url: {body}");
    assert_eq!(body["error"]["message"], r#"Invalid value at 'url' (TYPE_STRING), """#);

    let stats = fake.stats();
    assert_eq!((stats.errors_injected, stats.invalid_argument, stats.succeeded), (5, 4, 0));
}

#[tokio::test]
async fn flaky_url_fails_n_times_then_succeeds() {
    let fake = FakePsi::start(config());
    let client = reqwest::Client::new();
    let url = "https://example.com/flaky-2/page";
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(status_of(&client, &fake, url).await);
    }
    assert_eq!(statuses, [500, 500, 200, 200]);
    // The count is per exact URL.
    assert_eq!(status_of(&client, &fake, "https://example.com/flaky-2/other").await, 500);
    let (_, body) = get(&client, &fake, &[("url", "https://example.com/flaky-1/x")]).await;
    assert_eq!(body["error"]["message"], "Internal error encountered.");
}

#[tokio::test]
async fn latency_jitter_and_slow_urls_delay_answers() {
    let latency = Duration::from_millis(150);
    let fake = FakePsi::start(FakePsiConfig { latency, jitter: Duration::from_millis(50), seed: Some(7), ..config() });
    let client = reqwest::Client::new();

    let started = Instant::now();
    assert_eq!(status_of(&client, &fake, "https://example.com/").await, 200);
    assert!(started.elapsed() >= latency, "{:?}", started.elapsed());

    let started = Instant::now();
    assert_eq!(status_of(&client, &fake, "https://example.com/slow-300").await, 200);
    assert!(started.elapsed() >= latency + Duration::from_millis(300), "{:?}", started.elapsed());

    let started = Instant::now();
    assert_eq!(status_of(&client, &fake, "https://example.com/slow-200/dns-failure").await, 500);
    assert!(started.elapsed() >= latency + Duration::from_millis(200), "{:?}", started.elapsed());
}

#[tokio::test]
async fn stats_are_exact_and_reset() {
    let fake = FakePsi::start(FakePsiConfig {
        api_key: Some("k".into()),
        quota: vec![QuotaWindow::nominal(QuotaKind::PerMinute, 100)],
        ..config()
    });
    let client = reqwest::Client::new();
    let a = "https://example.com/a";
    let dns = "https://example.com/dns-failure";
    let bad = "ftp://example.com/";
    let b = "https://example.com/b";
    let flaky = "https://example.com/flaky-1";
    let mut statuses = Vec::new();
    for (url, key) in [(a, "k"), (a, "k"), (dns, "k"), (bad, "k"), (b, "nope"), (flaky, "k"), (flaky, "k")] {
        let response = client.get(request_url(&fake, &[("url", url), ("key", key)])).send().await.expect("send");
        statuses.push(response.status().as_u16());
        response.bytes().await.expect("body");
    }
    assert_eq!(statuses, [200, 200, 500, 400, 400, 500, 200]);

    let stats = fake.stats();
    let expected = FakePsiStats {
        requests: 7,
        accepted: 6,
        succeeded: 3,
        rejected_quota: 0,
        rejected_key: 1,
        invalid_argument: 1,
        errors_injected: 2,
        internal_errors: 0,
        max_in_window: vec![6],
        per_url: HashMap::from([(a.into(), 2), (dns.into(), 1), (bad.into(), 1), (b.into(), 1), (flaky.into(), 2)]),
        max_concurrent: 1,
    };
    assert_eq!(stats, expected);
    let stamps = fake.accepted_timestamps();
    assert_eq!(stamps.len(), 6);
    assert!(stamps.windows(2).all(|w| w[0] <= w[1]), "{stamps:?}");

    fake.reset_stats();
    assert_eq!(fake.stats(), FakePsiStats { max_in_window: vec![0], ..FakePsiStats::default() });
    assert!(fake.accepted_timestamps().is_empty());
    // flaky-1 already failed once; a reset must not make it fail again.
    let response = client.get(request_url(&fake, &[("url", flaky), ("key", "k")])).send().await.expect("send");
    assert_eq!(response.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_concurrent_counts_requests_in_flight() {
    let latency = Duration::from_secs(1);
    let fake = FakePsi::start(FakePsiConfig { latency, ..config() });
    let client = reqwest::Client::new();
    let started = Instant::now();
    let requests = (0..4).map(|i| {
        let url = request_url(&fake, &[("url", &format!("https://example.com/{i}"))]);
        let client = client.clone();
        tokio::spawn(async move { client.get(url).send().await.map(|r| r.status().as_u16()) })
    });
    for handle in requests.collect::<Vec<_>>() {
        assert_eq!(handle.await.expect("join").expect("send"), 200);
    }
    assert!(started.elapsed() >= latency);
    assert_eq!(fake.stats().max_concurrent, 4);
}

#[tokio::test]
async fn dropping_the_fake_stops_the_server() {
    let fake = FakePsi::start(config());
    let addr = fake.addr();
    assert!(tokio::net::TcpStream::connect(addr).await.is_ok());
    drop(fake);
    assert!(crate::google_fake::stops_accepting(addr).await, "server still accepting on {addr} after drop");
}

#[tokio::test]
async fn try_start_reports_bad_setup() {
    let missing = FakePsi::try_start(FakePsiConfig::new("/nonexistent/lhr.json"));
    assert_eq!(missing.map(|_| ()).map_err(|e| e.kind()), Err(io::ErrorKind::NotFound));

    let path = std::env::temp_dir().join(format!("fake-psi-bad-{}.json", std::process::id()));
    std::fs::write(&path, "{\"audits\": {}}").expect("write temp fixture");
    let no_categories = FakePsi::try_start(FakePsiConfig::new(&path));
    std::fs::remove_file(&path).ok();
    assert_eq!(no_categories.map(|_| ()).map_err(|e| e.kind()), Err(io::ErrorKind::InvalidData));

    let zero_window = FakePsi::try_start(FakePsiConfig {
        quota: vec![QuotaWindow { limit: 1, window: Duration::ZERO, kind: QuotaKind::PerMinute }],
        ..config()
    });
    assert_eq!(zero_window.map(|_| ()).map_err(|e| e.kind()), Err(io::ErrorKind::InvalidInput));
}

#[test]
fn try_start_needs_a_runtime() {
    assert!(FakePsi::try_start(config()).is_err());
}

#[test]
fn query_parsing_keeps_repeated_categories_and_decodes() {
    let params = Params::parse(
        "url=https%3A%2F%2Fa.example%2F%3Fq%3D1+2&category=seo&category=PERFORMANCE&key=k&url=ignored&strategy=desktop&locale=de",
    );
    assert_eq!(
        params,
        Params {
            url: Some("https://a.example/?q=1 2".into()),
            strategy: Some("desktop".into()),
            categories: vec!["seo".into(), "PERFORMANCE".into()],
            key: Some("k".into()),
        }
    );
    assert_eq!(percent_decode("100%"), "100%");
    assert_eq!(percent_decode("%zz%4"), "%zz%4");
    assert_eq!(percent_decode("%C3%A9"), "é");
}

#[test]
fn url_validation_and_origin() {
    assert_eq!(page_url("HTTPS://Example.com"), Some("HTTPS://Example.com"));
    assert_eq!(page_url("url:https://example.com/x"), Some("https://example.com/x"));
    assert_eq!(page_url("origin:http://example.com"), Some("http://example.com"));
    for bad in ["", "example.com", "ftp://example.com", "https://", "https:///path", "https://a b.com"] {
        assert_eq!(page_url(bad), None, "{bad}");
    }
    assert_eq!(origin_of("https://example.com:8443/a?b#c"), "https://example.com:8443");
    assert_eq!(origin_of("http://example.com?x"), "http://example.com");
    assert_eq!(marker_number("https://x/slow-250/flaky-3", "slow-"), Some(250));
    assert_eq!(marker_number("https://x/slow-/slow-9", "slow-"), Some(9));
    assert_eq!(marker_number("https://x/slowly", "slow-"), None);
}

#[test]
fn timestamps_are_rfc3339_utc() {
    assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    let leap_day = UNIX_EPOCH + Duration::from_millis(951_782_400_123);
    assert_eq!(rfc3339_utc(leap_day), "2000-02-29T00:00:00.123Z");
    let later = UNIX_EPOCH + Duration::from_secs(1_776_961_133);
    assert_eq!(rfc3339_utc(later), "2026-04-23T16:18:53.000Z");
}

#[test]
fn field_metrics_are_consistent_and_stable() {
    for i in 0..500 {
        let url = format!("https://site{i}.example/page");
        let (metrics, overall) = crux_record(&url);
        assert_eq!(crux_record(&url).0, metrics, "not deterministic");
        let mut worst = "FAST";
        for &(name, good, poor, _, _) in &FIELD_METRICS {
            let metric = &metrics[name];
            let p75 = metric["percentile"].as_u64().expect("percentile");
            let category = metric["category"].as_str().expect("category");
            let expected = if p75 <= good {
                "FAST"
            } else if p75 <= poor {
                "AVERAGE"
            } else {
                "SLOW"
            };
            assert_eq!(category, expected, "{url} {name} p75={p75}");
            let shares: Vec<f64> =
                (0..3).map(|j| metric["distributions"][j]["proportion"].as_f64().unwrap_or(-1.0)).collect();
            assert!(shares.iter().all(|s| (0.0..=1.0).contains(s)), "{url} {name} {shares:?}");
            assert!((shares.iter().sum::<f64>() - 1.0).abs() < 1e-3, "{url} {name} {shares:?}");
            match category {
                "FAST" => assert!(shares[0] >= 0.75),
                "AVERAGE" => assert!(shares[0] < 0.75 && shares[0] + shares[1] >= 0.75),
                _ => assert!(shares[0] + shares[1] < 0.75),
            }
            if CORE_WEB_VITALS.contains(&name) && severity(category) > severity(worst) {
                worst = category;
            }
        }
        assert_eq!(overall, worst, "{url}");
    }
}
