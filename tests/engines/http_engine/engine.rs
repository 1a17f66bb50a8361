//! The `http` engine as the analyzer calls it, on a local site: the document through redirects
//! and compression, its subresources, the delivery score and what is stored.

use std::time::Duration;

use domain::AddressPolicy;
use domain::{ErrorKind, Strategy};
use engine::http::{HttpEngine, HttpSettings};
use engine::{Engine, EngineError};
use http::header;
use serde_json::Value;
use testkit::origin::{self, TestCa};

const TIMEOUT: Duration = Duration::from_secs(30);

fn engine() -> HttpEngine {
    HttpEngine::new(AddressPolicy::LOCAL).unwrap()
}

fn rule<'a>(metrics: &'a serde_json::Map<String, Value>, id: &str) -> &'a Value {
    metrics["score_rules"].as_array().unwrap().iter().find(|r| r["id"] == id).unwrap()
}

#[tokio::test]
async fn a_redirected_compressed_page_is_measured_with_its_subresources_and_scored() {
    let server = origin::site("127.0.0.1", None).await;
    let start = server.url("/redirect?status=301&to=/page.gz");
    let analysis = engine().analyze(start.as_str(), Strategy::Mobile, TIMEOUT).await.unwrap();
    let m = &analysis.metrics;

    // The document: one redirect, then the gzip page, decoded for parsing, counted as sent.
    assert_eq!(m["status_code"], 200);
    assert_eq!(m["redirects"], 1);
    assert_eq!(m["final_url"], server.url("/page.gz").as_str());
    assert_eq!(m["compression"], "gzip");
    assert_eq!(m["http_version"], "HTTP/1.1");
    let gz = origin::gzip(origin::SUBRESOURCE_PAGE.as_bytes()).len() as u64;
    assert_eq!(m["document_bytes"], gz);
    assert_eq!(m["document_decoded_bytes"], origin::SUBRESOURCE_PAGE.len());
    let hops = m["hops"].as_array().unwrap();
    assert_eq!(hops.len(), 2);
    assert_eq!(hops[0]["status"], 301);
    assert_eq!(hops[1]["reused_connection"], true, "same origin: the redirect reuses the connection");
    for phase in ["ttfb_ms", "download_ms", "total_ms", "connect_ms"] {
        assert!(m[phase].as_f64().is_some_and(|ms| ms >= 0.0), "{phase}: {m:?}");
    }
    assert!(m["ttfb_ms"].as_f64() <= m["total_ms"].as_f64());
    assert!(m.get("dns_ms").is_none() && m.get("tls_ms").is_none(), "an IP literal over http: no such phase, not 0 ms");

    // Its subresources, fetched the way a browser asks for them.
    let sub = &m["subresources"];
    assert_eq!(sub["count"], 12);
    assert_eq!(sub["by_kind"]["stylesheet"]["count"], 2);
    assert_eq!(sub["by_kind"]["script"]["count"], 3);
    assert_eq!(sub["by_kind"]["font"]["bytes"], 20_000);
    assert_eq!(sub["by_kind"]["image"]["count"], 5);
    assert_eq!(sub["failed"], 1);
    assert_eq!(sub["failures"][0]["url"], server.url("/static/missing.png").as_str());
    assert_eq!(sub["failures"][0]["reason"], "HTTP 404 Not Found");
    assert_eq!(sub["slowest"]["url"], server.url("/static/hero.jpg").as_str());
    assert_eq!((sub["skipped"].as_u64(), sub["cut_off"].as_u64()), (Some(0), Some(0)));
    assert_eq!(m["render_blocking"], 2);
    assert_eq!(sub["render_blocking_bytes"], 8000);
    assert_eq!(m["requests"], 2 + 12);
    assert_eq!(
        m["page_bytes"].as_u64().unwrap(),
        hops.iter().map(|h| h["bytes"].as_u64().unwrap()).sum::<u64>() + sub["bytes"].as_u64().unwrap()
    );
    let seen = server.seen();
    let css = seen.iter().find(|s| s.path == "/static/main.css").unwrap();
    assert!(origin::header_of(css, header::ACCEPT).starts_with("text/css"));
    assert_eq!(origin::header_of(css, header::ACCEPT_ENCODING), "gzip, deflate, br");
    assert!(seen.iter().all(|s| origin::header_of(s, header::USER_AGENT).contains("Mobile")), "mobile user agent");
    assert_eq!(seen.iter().filter(|s| s.path.starts_with("/static/")).count(), 12, "each subresource fetched once");

    // Its delivery score (never a performance score), its band and its breakdown.
    assert_eq!(analysis.score, None, "the http engine gives no performance score");
    let score = m["delivery_score"].as_f64().unwrap();
    assert!(score > 0.0 && score < 100.0, "{score}");
    assert_eq!(m["delivery_band"], domain::delivery::DeliveryBand::of(score).as_str());
    assert_eq!(rule(m, "redirects")["value"], 1.0);
    assert_eq!(rule(m, "render-blocking-resources")["value"], 2.0);
    // 7 of 10 static resources are cached for less than 30 days.
    assert_eq!(rule(m, "cache-ttl")["value"], 70.0);
    assert_eq!(rule(m, "cache-ttl")["points"], 0.0);
    // main.css and app.js are uncompressed text over 1,400 B; the document is compressed.
    assert_eq!(rule(m, "text-compression")["value"], 8000.0);
    let earned: f64 = m["score_rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["weight"].as_f64().unwrap() * r["points"].as_f64().unwrap())
        .sum();
    assert!((earned - score).abs() < 0.2, "the breakdown adds up to the score: {earned} vs {score}");
}

#[tokio::test]
async fn desktop_is_asked_for_as_desktop_and_judged_by_desktop_budgets() {
    let server = origin::site("127.0.0.1", None).await;
    let mobile = engine().analyze(server.url("/page").as_str(), Strategy::Mobile, TIMEOUT).await.unwrap();
    let desktop = engine().analyze(server.url("/page").as_str(), Strategy::Desktop, TIMEOUT).await.unwrap();
    assert_eq!(desktop.strategy, Strategy::Desktop);
    assert!(server.seen().iter().any(|s| !origin::header_of(s, header::USER_AGENT).contains("Mobile")));
    assert_eq!(rule(&mobile.metrics, "render-blocking-resources")["good"], 1.0);
    assert_eq!(rule(&desktop.metrics, "render-blocking-resources")["good"], 2.0);
}

#[tokio::test]
async fn caching_headers_and_cookies_are_reported() {
    let server = origin::site("127.0.0.1", None).await;
    let analysis = engine().analyze(server.url("/cookies").as_str(), Strategy::Mobile, TIMEOUT).await.unwrap();
    // What the browser sends back: "session=abcdef" and "theme=dark".
    assert_eq!(analysis.metrics["cookie_bytes"], 14 + 10);
    assert_eq!(analysis.metrics["compression"], "none");
    assert_eq!(analysis.metrics["subresources"]["count"], 0);
    assert!(analysis.metrics.get("hops").is_none(), "hops are listed only when there were redirects");
}

#[tokio::test]
async fn with_no_time_left_subresources_are_skipped_without_a_request() {
    let server = origin::site("127.0.0.1", None).await;
    let settings = HttpSettings { budget: Duration::ZERO, ..HttpSettings::default() };
    let engine = HttpEngine::with_settings(AddressPolicy::LOCAL, settings).unwrap();
    let analysis = engine.analyze(server.url("/page").as_str(), Strategy::Mobile, TIMEOUT).await.unwrap();
    assert_eq!(analysis.metrics["subresources"]["skipped"], 12);
    assert_eq!(server.paths(), ["/page"]);
    // Nothing fetched is not "nothing to fetch": the page-level rules do not pretend to know.
    assert_eq!(analysis.metrics["render_blocking"], 2, "known from the markup");
    assert_eq!(rule(&analysis.metrics, "render-blocking-resources")["value"], Value::Null);
    assert_eq!(rule(&analysis.metrics, "total-byte-weight")["value"], Value::Null);
}

#[tokio::test]
async fn error_pages_fail_with_what_was_measured() {
    let server = origin::site("127.0.0.1", None).await;
    let err: EngineError =
        engine().analyze(server.url("/nowhere").as_str(), Strategy::Mobile, TIMEOUT).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Http4xx);
    assert_eq!(err.reason, "HTTP 404 Not Found");
    let measured = err.analysis.unwrap();
    assert_eq!(measured.metrics["status_code"], 404);
    assert!(measured.metrics.get("subresources").is_none(), "an error page's subresources are not fetched");

    let err = engine().analyze(server.url("/loop").as_str(), Strategy::Mobile, TIMEOUT).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Redirect);
    assert_eq!(err.reason, "more than 10 redirects");
    let err = engine().analyze(server.url("/no-location").as_str(), Strategy::Mobile, TIMEOUT).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Redirect);
}

#[tokio::test]
async fn https_pages_and_their_subresources_go_over_http2() {
    let ca = TestCa::generate();
    let server = origin::site("127.0.0.1", Some(ca.server_config(&[b"h2", b"http/1.1"]))).await;
    let settings = HttpSettings { probe: ca.probe_config(), ..HttpSettings::default() };
    let engine = HttpEngine::with_settings(AddressPolicy::LOCAL, settings).unwrap();
    let analysis = engine.analyze(server.url("/page").as_str(), Strategy::Mobile, TIMEOUT).await.unwrap();
    assert_eq!(analysis.metrics["http_version"], "HTTP/2");
    assert!(analysis.metrics["tls_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(analysis.metrics["subresources"]["count"], 12);
    assert_eq!(rule(&analysis.metrics, "http2")["value"], 0.0, "no request went over HTTP/1.x");
}

#[tokio::test]
async fn subresources_are_held_to_the_address_policy_too() {
    // The site is on 127.0.0.2, the one address the policy exempts, as in the SSRF table.
    let server = origin::site("127.0.0.2", None).await;
    let engine = HttpEngine::new(AddressPolicy::STRICT.exempting(server.addr.ip())).unwrap();
    let analysis = engine.analyze(server.url("/hostile").as_str(), Strategy::Mobile, TIMEOUT).await.unwrap();
    let sub = &analysis.metrics["subresources"];
    assert_eq!(sub["count"], 5);
    assert_eq!(sub["failed"], 4, "{sub}");
    for failure in sub["failures"].as_array().unwrap() {
        assert!(failure["reason"].as_str().unwrap().contains("blocked by policy"), "{failure}");
    }
    assert_eq!(server.paths(), ["/hostile", "/static/main.css"], "nothing else was requested of the site");
}
