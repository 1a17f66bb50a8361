//! The browser engine on real Chromium: its DevTools client driving a fresh context, and the
//! engine measuring local pages under Lighthouse's conditions, with every request held to the
//! address policy. Needs Chromium (`/usr/bin/chromium`, Debian's package, or `CHROMIUM_PATH`).

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use domain::{AddressPolicy, ErrorKind, Strategy};
use engine::Engine;
use engine::browser::launch::launch;
use engine::browser::{BrowserEngine, BrowserSettings, lab};
use serde_json::json;
use testkit::browser::watched_port;
use testkit::screenshots::Folder;
use testkit::site::Site;

const WAIT: Duration = Duration::from_secs(20);

fn chromium() -> PathBuf {
    let path = testkit::browser::chromium();
    assert!(path.exists(), "Chromium is needed at {} (apt-get install chromium, or set CHROMIUM_PATH)", path.display());
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_is_loaded_in_its_own_context_and_read_back() {
    let site = Site::start().await;
    let browser = launch(&chromium(), &[], WAIT).await.expect("Chromium starts and listens");
    let cdp = &browser.cdp;
    let context = cdp.call(None, "Target.createBrowserContext", json!({"disposeOnDetach": true}), WAIT).await.unwrap();
    let context = context["browserContextId"].as_str().unwrap().to_owned();
    let target = cdp
        .call(None, "Target.createTarget", json!({"url": "about:blank", "browserContextId": context}), WAIT)
        .await
        .unwrap();
    let attached = cdp
        .call(None, "Target.attachToTarget", json!({"targetId": target["targetId"], "flatten": true}), WAIT)
        .await
        .unwrap();
    let session = attached["sessionId"].as_str().unwrap().to_owned();
    let mut events = cdp.listen(Some(&session)).await;
    cdp.call(Some(&session), "Page.enable", json!({}), WAIT).await.unwrap();
    cdp.call(Some(&session), "Page.addScriptToEvaluateOnNewDocument", json!({"source": lab::OBSERVER}), WAIT)
        .await
        .unwrap();
    cdp.call(Some(&session), "Page.navigate", json!({"url": site.url("/page/1")}), WAIT).await.unwrap();
    let loaded = tokio::time::timeout(WAIT, async {
        while let Some(event) = events.recv().await {
            if event.method == "Page.loadEventFired" {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(loaded, Ok(true), "the page's load event");
    let title = cdp
        .call(Some(&session), "Runtime.evaluate", json!({"expression": "document.title", "returnByValue": true}), WAIT)
        .await
        .unwrap();
    assert!(title["result"]["value"].as_str().is_some_and(|t| !t.is_empty()), "{title}");
    // The page's own timeline, as the observer installed before its scripts collected it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let timeline = lab::read(cdp, Some(&session), WAIT).await.expect("the page answers the read");
    let (fcp, lcp) = (timeline.fcp.expect("a first contentful paint"), timeline.lcp.expect("a largest one"));
    assert!(fcp > 0.0 && lcp >= fcp, "FCP {fcp} ms, LCP {lcp} ms");
    assert!(timeline.lcp_element.is_some(), "{timeline:?}");
    let unknown = cdp.call(Some(&session), "Page.noSuchMethod", json!({}), WAIT).await.unwrap_err();
    assert!(unknown.to_string().starts_with("Page.noSuchMethod failed:"), "{unknown}");
    cdp.call(None, "Target.disposeBrowserContext", json!({"browserContextId": context}), WAIT).await.unwrap();
    assert!(site.hits() >= 1, "the page came from the local site");
}

fn engine(policy: AddressPolicy) -> BrowserEngine<Folder> {
    BrowserEngine::new(policy, BrowserSettings::new(chromium()), Folder::new())
}

const PAGE_TIME: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_is_measured_with_lighthouses_lab_metrics_score_and_screenshot() {
    let site = Site::start().await;
    let engine = engine(AddressPolicy::LOCAL);
    for strategy in [Strategy::Mobile, Strategy::Desktop] {
        let analysis = engine.analyze(&site.url("/lab/busy"), strategy, PAGE_TIME).await.expect("measured");
        let m = &analysis.metrics;
        assert_eq!((analysis.engine.as_str(), analysis.strategy), ("browser", strategy));
        let score = analysis.score.expect("a performance score");
        assert!((0.0..=100.0).contains(&score), "{score}");
        for metric in ["fcp_ms", "lcp_ms", "tbt_ms", "cls", "speed_index_ms", "ttfb_ms"] {
            assert!(m[metric].is_number(), "{metric} in {m:?}");
        }
        // The 300 ms task after the first paint blocks for at least its 250 ms beyond the first 50.
        assert!(m["tbt_ms"].as_f64().unwrap() >= 250.0, "{m:?}");
        assert!(m["long_tasks"]["count"].as_u64().unwrap() >= 1, "{m:?}");
        assert_eq!(m["lcp_element"]["selector"], "img#hero", "the late image is the largest paint: {m:?}");
        assert_eq!(m["status_code"], 200);
        assert_eq!(m["by_type"]["document"]["requests"], 1);
        assert_eq!(m["by_type"]["image"]["requests"], 1);
        assert!(m["page_bytes"].as_u64().unwrap() > 1_000, "{m:?}");
        assert_eq!(m["blocked_requests"], json!([]));
        let parts = m["score_parts"].as_array().unwrap();
        assert_eq!(parts.len(), 5, "five weighted metrics");
        let shot = engine_screenshot(&engine, m);
        assert_eq!(&shot[..3], [0xff, 0xd8, 0xff], "a JPEG");
        assert!(shot.len() < 200_000, "small: {} bytes", shot.len());
    }
}

fn engine_screenshot(engine: &BrowserEngine<Folder>, metrics: &serde_json::Map<String, serde_json::Value>) -> Vec<u8> {
    let name = metrics["screenshot"].as_str().expect("a screenshot's name");
    std::fs::read(engine.screenshots().dir.join(name)).expect("the screenshot was stored")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pages_scripts_cannot_reach_metadata_or_loopback_addresses_and_the_result_says_so() {
    // The page is served from 127.0.0.2, the one address the strict policy lets through.
    let site_ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let site = Site::start_on(site_ip).await;
    let (port, seen) = watched_port().await;
    // As locally, and with the switches Lambda needs (one process: the proxy must hold there too).
    for switches in [&[][..], &["--single-process", "--no-zygote"][..]] {
        let settings = BrowserSettings {
            switches: switches.iter().map(|s| (*s).to_owned()).collect(),
            ..BrowserSettings::new(chromium())
        };
        let engine = BrowserEngine::new(AddressPolicy::STRICT.exempting(site_ip), settings, Folder::new());
        refused_and_reported(&engine, &site, port, &seen).await;
    }
}

async fn refused_and_reported(engine: &BrowserEngine<Folder>, site: &Site, port: u16, seen: &AtomicUsize) {
    let metadata = "http://169.254.169.254/latest/meta-data/";
    let loopback = format!("http://127.0.0.1:{port}/secret");
    let page = format!(
        "{}?to={}&to={}&to={}",
        site.url("/lab/fetches"),
        url::form_urlencoded::byte_serialize(metadata.as_bytes()).collect::<String>(),
        url::form_urlencoded::byte_serialize(loopback.as_bytes()).collect::<String>(),
        url::form_urlencoded::byte_serialize(format!("http://localhost:{port}/other").as_bytes()).collect::<String>(),
    );
    let analysis = engine.analyze(&page, Strategy::Desktop, PAGE_TIME).await.expect("the page itself is measured");
    let blocked: Vec<String> = analysis.metrics["blocked_requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["url"].as_str().unwrap().to_owned())
        .collect();
    for target in [metadata.to_owned(), loopback.clone(), format!("http://localhost:{port}/other")] {
        assert!(blocked.contains(&target), "{target} reported blocked: {blocked:?}");
    }
    let reasons = analysis.metrics["blocked_requests"].to_string();
    assert!(reasons.contains("blocked by policy"), "{reasons}");
    assert_eq!(seen.load(Ordering::SeqCst), 0, "nothing reached the loopback listener");

    // A document at a refused address is not loaded at all.
    let refused = engine.analyze(&format!("http://127.0.0.1:{port}/"), Strategy::Mobile, PAGE_TIME).await;
    let err = refused.expect_err("refused");
    assert_eq!(err.kind, ErrorKind::Blocked, "{err:?}");
    assert!(err.reason.contains("blocked by policy"), "{}", err.reason);
    assert_eq!(seen.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_page_fails_as_a_4xx_with_what_was_measured() {
    let site = Site::start().await;
    let err =
        engine(AddressPolicy::LOCAL).analyze(&site.url("/missing"), Strategy::Mobile, PAGE_TIME).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Http4xx);
    assert_eq!(err.reason, "HTTP 404 Not Found");
    assert_eq!(err.analysis.expect("measured anyway").metrics["status_code"], 404);
}
