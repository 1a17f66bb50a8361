//! Extraction against hand-written documents, cache lifetimes, and fetching under a paused
//! clock.

use std::time::Duration;

use http::Version;
use http::header::{self, HeaderMap, HeaderValue};

use super::*;

fn url(s: &str) -> Url {
    Url::parse(s).unwrap()
}

fn find<'a>(list: &'a [Subresource], suffix: &str) -> &'a Subresource {
    list.iter()
        .find(|r| r.url.as_str().ends_with(suffix))
        .unwrap_or_else(|| panic!("{suffix} not in {:#?}", list.iter().map(|r| r.url.as_str()).collect::<Vec<_>>()))
}

#[test]
fn scripts_are_classified_by_loading_and_position() {
    let html = br#"<!doctype html><html><head>
        <script src="/sync.js"></script>
        <script async src="/async.js"></script>
        <script defer src="/defer.js"></script>
        <script type="module" src="/module.js"></script>
        <script type="module" async src="/module-async.js"></script>
        <script nomodule src="/legacy.js"></script>
        <script type="text/template" src="/tpl.html"></script>
        <script type="application/javascript; charset=utf-8" src="/typed.js"></script>
        <script>inline()</script>
      </head><body>
        <script src="/body-sync.js"></script>
      </body></html>"#;
    let list = extract(html, &url("https://site.test/page"));
    let urls: Vec<&str> = list.iter().map(|r| r.url.path()).collect();
    assert_eq!(
        urls,
        ["/sync.js", "/async.js", "/defer.js", "/module.js", "/module-async.js", "/typed.js", "/body-sync.js"]
    );
    let sync = find(&list, "/sync.js");
    assert!(sync.in_head && sync.render_blocking);
    assert_eq!(sync.script_loading, Some(ScriptLoading::Sync));
    assert_eq!(find(&list, "/async.js").script_loading, Some(ScriptLoading::Async));
    assert_eq!(find(&list, "/defer.js").script_loading, Some(ScriptLoading::Defer));
    assert_eq!(find(&list, "/module.js").script_loading, Some(ScriptLoading::Module));
    assert_eq!(find(&list, "/module-async.js").script_loading, Some(ScriptLoading::Async));
    assert!(find(&list, "/typed.js").render_blocking);
    for non_blocking in ["/async.js", "/defer.js", "/module.js", "/module-async.js"] {
        assert!(!find(&list, non_blocking).render_blocking, "{non_blocking}");
    }
    let body = find(&list, "/body-sync.js");
    assert!(!body.in_head && !body.render_blocking);
    assert!(list.iter().all(|r| r.kind == ResourceKind::Script));
}

#[test]
fn stylesheets_block_unless_media_cannot_match_or_disabled() {
    let html = br#"<head>
        <link rel="stylesheet" href="/a.css">
        <link rel="stylesheet" href="/print.css" media="print">
        <link rel="stylesheet" href="/screen.css" media="screen and (min-width: 900px)">
        <link rel="stylesheet" href="/mixed.css" media="print, screen">
        <link rel="stylesheet" href="/notprint.css" media="not print">
        <link rel="alternate stylesheet" href="/alt.css">
        <link rel="stylesheet" href="/off.css" disabled>
        <link rel="preload" as="style" href="/later.css">
        </head><body><link rel="stylesheet" href="/body.css"></body>"#;
    let list = extract(html, &url("https://site.test/"));
    let blocking = |s: &str| find(&list, s).render_blocking;
    assert!(blocking("/a.css"));
    assert!(!blocking("/print.css"));
    assert!(blocking("/screen.css"));
    assert!(blocking("/mixed.css"));
    assert!(blocking("/notprint.css"));
    assert!(!blocking("/off.css"));
    assert!(!blocking("/later.css"));
    assert!(!blocking("/body.css"));
    assert!(!list.iter().any(|r| r.url.path() == "/alt.css"));
    assert_eq!(find(&list, "/print.css").media.as_deref(), Some("print"));
    assert_eq!(find(&list, "/later.css").kind, ResourceKind::Stylesheet);
    assert_eq!(find(&list, "/later.css").initiator, Initiator::Preload);
}

#[test]
fn media_queries() {
    assert!(media_matches_screen(""));
    assert!(media_matches_screen("all"));
    assert!(media_matches_screen("Screen"));
    assert!(media_matches_screen("(max-width: 600px)"));
    assert!(media_matches_screen("only screen and (min-width: 1px)"));
    assert!(!media_matches_screen("print"));
    assert!(!media_matches_screen("speech"));
    assert!(!media_matches_screen("not all"));
    assert!(!media_matches_screen("not screen"));
    assert!(!media_matches_screen("tv"));
    assert!(media_matches_screen("print, (min-width: 0)"));
}

#[test]
fn images_preloads_icons_frames_posters() {
    let html = br#"<html><head>
        <link rel="preload" as="font" href="/f.woff2" crossorigin>
        <link rel="preload" as="image" href="/hero.avif">
        <link rel="preload" as="fetch" href="/data.json">
        <link rel="modulepreload" href="/m.js">
        <link rel="shortcut icon" href="/favicon.ico">
        <link rel="canonical" href="/canonical">
        </head><body>
        <img src="/plain.png">
        <img src="/fallback.jpg" srcset=" /small.jpg 480w, /large.jpg 1080w">
        <img srcset="/only,comma.jpg, /two.jpg 2x">
        <img src="data:image/gif;base64,R0lGOD">
        <iframe src="https://other.test/embed#x"></iframe>
        <video poster="poster.jpg"></video>
        <a href="/not-a-resource"></a>
        <svg><image href="/svg-image.png"></image><script href="/svg.js"></script></svg>
        </body></html>"#;
    let list = extract(html, &url("https://site.test/dir/page.html"));
    assert_eq!(find(&list, "/f.woff2").kind, ResourceKind::Font);
    assert_eq!(find(&list, "/hero.avif").kind, ResourceKind::Image);
    assert_eq!(find(&list, "/data.json").kind, ResourceKind::Other);
    assert_eq!(find(&list, "/m.js").kind, ResourceKind::Script);
    assert_eq!(find(&list, "/favicon.ico").initiator, Initiator::Icon);
    assert_eq!(find(&list, "/plain.png").kind, ResourceKind::Image);
    assert_eq!(find(&list, "/small.jpg").kind, ResourceKind::Image);
    assert_eq!(find(&list, "/only,comma.jpg").initiator, Initiator::Image);
    assert_eq!(find(&list, "other.test/embed").kind, ResourceKind::Iframe);
    assert_eq!(find(&list, "/dir/poster.jpg").initiator, Initiator::VideoPoster);
    for absent in
        ["/fallback.jpg", "/large.jpg", "/two.jpg", "/canonical", "/not-a-resource", "/svg-image.png", "/svg.js"]
    {
        assert!(!list.iter().any(|r| r.url.path() == absent), "{absent} listed");
    }
    assert!(list.iter().all(|r| r.url.scheme() == "https"));
    assert!(list.iter().all(|r| !r.render_blocking));
    assert!(list.iter().all(|r| r.url.fragment().is_none()));
}

#[test]
fn base_href_applies_to_the_whole_document() {
    let html = br#"<head><link rel="stylesheet" href="early.css"><base href="https://cdn.test/assets/"><base href="https://ignored.test/"></head>
        <body><img src="pic.png"><img src="/root.png"></body>"#;
    let list = extract(html, &url("https://site.test/a/b"));
    let urls: Vec<&str> = list.iter().map(|r| r.url.as_str()).collect();
    assert_eq!(
        urls,
        ["https://cdn.test/assets/early.css", "https://cdn.test/assets/pic.png", "https://cdn.test/root.png"]
    );
}

#[test]
fn non_http_urls_are_dropped_and_duplicates_merged() {
    let html = br#"<head>
        <link rel="preload" as="script" href="/app.js">
        <script src="/app.js"></script>
        <script src="javascript:void(0)"></script>
        <script src="  "></script>
        </head><body>
        <img src="/a.png#one"><img src="/a.png#two"><img src="blob:https://site.test/x">
        <iframe src="about:blank"></iframe><img src="ftp://site.test/x.png">
        <noscript><img src="/pixel.gif"></noscript>
        <template><img src="/template.png"></template>
        <img src="/after.png">
        </body>"#;
    let list = extract(html, &url("https://site.test/"));
    let urls: Vec<&str> = list.iter().map(|r| r.url.path()).collect();
    assert_eq!(urls, ["/app.js", "/a.png", "/after.png"]);
    let app = &list[0];
    assert_eq!(app.initiator, Initiator::Script);
    assert!(app.render_blocking);
}

#[test]
fn implicit_body_ends_the_head() {
    let html = br#"<title>x</title><script src="/a.js"></script><p>text</p><script src="/b.js"></script>"#;
    let list = extract(html, &url("http://site.test/"));
    assert!(find(&list, "/a.js").render_blocking);
    assert!(!find(&list, "/b.js").render_blocking);
}

#[test]
fn the_list_is_capped() {
    let mut html = String::from("<body>");
    for i in 0..400 {
        html.push_str(&format!("<img src=\"/i{i}.png\">"));
    }
    let list = extract(html.as_bytes(), &url("http://site.test/"));
    assert_eq!(list.len(), MAX_SUBRESOURCES);
    assert_eq!(list[0].url.path(), "/i0.png");
}

#[test]
fn srcset_first_candidate() {
    assert_eq!(first_srcset_candidate("a.jpg 1x, b.jpg 2x"), Some("a.jpg"));
    assert_eq!(first_srcset_candidate("  , a.jpg, b.jpg"), Some("a.jpg"));
    assert_eq!(first_srcset_candidate("a.jpg,, b.jpg"), Some("a.jpg"));
    // The spec keeps commas inside the URL token; only trailing ones end a candidate.
    assert_eq!(first_srcset_candidate("a.jpg,b.jpg"), Some("a.jpg,b.jpg"));
    assert_eq!(first_srcset_candidate("data:image/png;base64,AAA= 1x"), Some("data:image/png;base64,AAA="));
    assert_eq!(first_srcset_candidate("  "), None);
}

#[test]
fn cache_lifetimes() {
    let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
    let headers = |pairs: &[(&'static str, &'static str)]| {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    };
    assert_eq!(
        cache_ttl_secs(&headers(&[("cache-control", "public, max-age=31536000, immutable")]), now),
        Some(31_536_000)
    );
    assert_eq!(cache_ttl_secs(&headers(&[("cache-control", "max-age=600, no-cache")]), now), Some(0));
    assert_eq!(cache_ttl_secs(&headers(&[("cache-control", "no-store")]), now), Some(0));
    assert_eq!(
        cache_ttl_secs(
            &headers(&[("expires", "Sun, 06 Nov 1994 09:49:37 GMT"), ("date", "Sun, 06 Nov 1994 08:49:37 GMT")]),
            now
        ),
        Some(3600)
    );
    assert_eq!(cache_ttl_secs(&headers(&[("expires", "Sun, 06 Nov 1994 10:49:37 GMT")]), now), Some(7200));
    assert_eq!(cache_ttl_secs(&headers(&[("expires", "0")]), now), Some(0));
    assert_eq!(cache_ttl_secs(&headers(&[("expires", "Sun, 06 Nov 1994 07:49:37 GMT")]), now), Some(0));
    assert_eq!(cache_ttl_secs(&headers(&[("cache-control", "max-age=60"), ("expires", "0")]), now), Some(60));
    assert_eq!(cache_ttl_secs(&headers(&[("etag", "\"x\"")]), now), None);
}

// ---- fetch_all with a scripted fetcher on paused time: deterministic budget and concurrency

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Scripted {
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    started: Mutex<Vec<String>>,
}

impl Scripted {
    fn new() -> Self {
        Self { in_flight: AtomicUsize::new(0), max_in_flight: AtomicUsize::new(0), started: Mutex::new(Vec::new()) }
    }
}

impl Fetch for Scripted {
    fn fetch(&self, resource: &Subresource) -> impl Future<Output = Result<Fetched, String>> + Send {
        let path = resource.url.path().to_owned();
        async move {
            self.started.lock().unwrap().push(path.clone());
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            // Path like /ms-<delay>-<status>-<bytes>
            let parts: Vec<&str> = path.trim_start_matches('/').split('-').collect();
            let delay: u64 = parts[1].parse().unwrap();
            tokio::time::sleep(Duration::from_millis(delay)).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            if parts[2] == "err" {
                return Err("connection refused".to_owned());
            }
            let mut headers = HeaderMap::new();
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=60"));
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("br"));
            Ok(Fetched {
                status: parts[2].parse().unwrap(),
                transfer_bytes: parts[3].parse().unwrap(),
                http_version: Version::HTTP_2,
                headers,
            })
        }
    }
}

fn resource(path: &str, kind: ResourceKind, render_blocking: bool) -> Subresource {
    Subresource {
        url: url(&format!("https://site.test{path}")),
        kind,
        initiator: Initiator::Image,
        in_head: render_blocking,
        script_loading: None,
        media: None,
        render_blocking,
    }
}

#[tokio::test(start_paused = true)]
async fn concurrency_is_bounded_and_totals_add_up() {
    let list = vec![
        resource("/ms-100-200-1000", ResourceKind::Script, true),
        resource("/ms-300-200-2000", ResourceKind::Stylesheet, true),
        resource("/ms-50-404-10", ResourceKind::Image, false),
        resource("/ms-20-err-0", ResourceKind::Font, false),
        resource("/ms-10-200-5", ResourceKind::Image, false),
        resource("/ms-10-200-7", ResourceKind::Other, false),
    ];
    let fetcher = Scripted::new();
    let report = fetch_all(&list, 2, Duration::from_secs(10), &fetcher, None).await;
    assert_eq!(fetcher.max_in_flight.load(Ordering::SeqCst), 2);
    assert_eq!(report.total, Totals { count: 6, transfer_bytes: 3022 });
    assert_eq!(report.by_kind[&ResourceKind::Script], Totals { count: 1, transfer_bytes: 1000 });
    assert_eq!(report.by_kind[&ResourceKind::Stylesheet], Totals { count: 1, transfer_bytes: 2000 });
    assert_eq!(report.by_kind[&ResourceKind::Image], Totals { count: 2, transfer_bytes: 15 });
    assert_eq!(report.by_kind[&ResourceKind::Font], Totals { count: 1, transfer_bytes: 0 });
    assert_eq!(report.by_kind[&ResourceKind::Other], Totals { count: 1, transfer_bytes: 7 });
    assert_eq!(report.render_blocking, Totals { count: 2, transfer_bytes: 3000 });
    assert_eq!(report.skipped, 0);
    assert_eq!(report.cut_off, 0);
    let failures: Vec<(&str, &str)> = report.failures.iter().map(|f| (f.url.path(), f.reason.as_str())).collect();
    assert_eq!(failures, [("/ms-50-404-10", "HTTP 404 Not Found"), ("/ms-20-err-0", "connection refused")]);
    let slowest = report.slowest.unwrap();
    assert_eq!(slowest.url.path(), "/ms-300-200-2000");
    assert!(slowest.duration_ms >= 300.0);
    let first = &report.resources[0];
    assert_eq!(first.state, FetchState::Ok);
    assert_eq!(first.http_version, Some("HTTP/2"));
    assert_eq!(first.cache_ttl_secs, Some(60));
    assert_eq!(first.content_encoding.as_deref(), Some("br"));
    assert_eq!(
        report.resources.iter().map(|r| r.url.path()).collect::<Vec<_>>(),
        list.iter().map(|r| r.url.path()).collect::<Vec<_>>()
    );
}

#[tokio::test(start_paused = true)]
async fn no_fetch_starts_after_the_budget_and_running_ones_are_cut_off() {
    // One at a time: 400 ms, then 400 ms (cut off at 500 ms), then nothing starts.
    let list = vec![
        resource("/ms-400-200-1", ResourceKind::Image, false),
        resource("/ms-400-200-2", ResourceKind::Image, true),
        resource("/ms-10-200-3", ResourceKind::Image, false),
        resource("/ms-10-200-4", ResourceKind::Script, true),
    ];
    let fetcher = Scripted::new();
    let report = fetch_all(&list, 1, Duration::from_millis(500), &fetcher, None).await;
    assert_eq!(*fetcher.started.lock().unwrap(), ["/ms-400-200-1", "/ms-400-200-2"]);
    assert_eq!(report.skipped, 2);
    assert_eq!(report.cut_off, 1);
    assert_eq!(report.resources[1].state, FetchState::CutOff);
    assert_eq!(report.resources[2].state, FetchState::Skipped);
    assert_eq!(report.total, Totals { count: 2, transfer_bytes: 1 });
    assert_eq!(report.render_blocking, Totals { count: 2, transfer_bytes: 0 });
    assert_eq!(report.slowest.unwrap().url.path(), "/ms-400-200-1");

    let none = fetch_all(&list, 4, Duration::ZERO, &fetcher, None).await;
    assert_eq!(none.skipped, 4);
    assert_eq!(none.total.count, 0);
    assert!(none.slowest.is_none());
}

#[tokio::test(start_paused = true)]
async fn the_pages_own_host_gets_one_request_at_a_time_and_others_go_alongside() {
    let mut list: Vec<Subresource> =
        (1..=4).map(|n| resource(&format!("/ms-100-200-{n}"), ResourceKind::Image, false)).collect();
    let mut elsewhere = resource("/ms-100-200-9", ResourceKind::Image, false);
    elsewhere.url = url("https://cdn.test/ms-100-200-9");
    list.push(elsewhere);
    let fetcher = Scripted::new();
    let started = tokio::time::Instant::now();
    let report = fetch_all(&list, 4, Duration::from_secs(10), &fetcher, Some("site.test")).await;
    assert_eq!(report.total.count, 5);
    assert_eq!(started.elapsed(), Duration::from_millis(400), "the site's four one after another");
    assert_eq!(fetcher.max_in_flight.load(Ordering::SeqCst), 2, "the CDN's beside them");
    let free = Scripted::new();
    let started = tokio::time::Instant::now();
    fetch_all(&list, 4, Duration::from_secs(10), &free, None).await;
    assert_eq!(started.elapsed(), Duration::from_millis(200), "without a polite host: four at once, then one");
}
