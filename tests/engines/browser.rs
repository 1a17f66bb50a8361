//! Chromium driven over the DevTools protocol by the engine's own client: started, a fresh
//! browser context and page, a local page loaded and read back with its paint timeline. Needs Chromium
//! (`/usr/bin/chromium`, Debian's package, or `CHROMIUM_PATH`).

use std::path::PathBuf;
use std::time::Duration;

use engine::browser::lab;
use engine::browser::launch::launch;
use serde_json::json;
use testkit::site::Site;

const WAIT: Duration = Duration::from_secs(20);

fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM_PATH").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
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
    let read = cdp
        .call(Some(&session), "Runtime.evaluate", json!({"expression": lab::READ, "returnByValue": true}), WAIT)
        .await
        .unwrap();
    let timeline: lab::Timeline = serde_json::from_value(read["result"]["value"].clone()).expect("a timeline");
    let (fcp, lcp) = (timeline.fcp.expect("a first contentful paint"), timeline.lcp.expect("a largest one"));
    assert!(fcp > 0.0 && lcp >= fcp, "FCP {fcp} ms, LCP {lcp} ms");
    assert!(timeline.lcp_element.is_some(), "{timeline:?}");
    let unknown = cdp.call(Some(&session), "Page.noSuchMethod", json!({}), WAIT).await.unwrap_err();
    assert!(unknown.to_string().starts_with("Page.noSuchMethod failed:"), "{unknown}");
    cdp.call(None, "Target.disposeBrowserContext", json!({"browserContextId": context}), WAIT).await.unwrap();
    assert!(site.hits() >= 1, "the page came from the local site");
}
