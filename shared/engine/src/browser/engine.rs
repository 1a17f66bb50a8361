//! `engine: browser`: each page loaded in headless Chromium under a form factor's conditions
//! (`conditions`), every request through the policy's proxy (`proxy`), its lab metrics read
//! from the page's own timeline (`lab`) and the network log (`network`), scored as Lighthouse
//! scores them (`score`).
//!
//! Each page gets a browser of its own, in a fresh profile removed after it: nothing of one
//! page (cookies, cache, storage, a service worker, a crashed renderer) reaches the next. A
//! fresh browser context per page in one long-lived browser would be cheaper on a multi-process
//! Chromium, but Lambda runs Chromium as one process (`--single-process`), where a second
//! context crashes it; starting the Lambda layer's headless shell takes about 50 ms, Debian's
//! Chromium about 0.5 s (`speedbatch-bench browser-engine`).

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use domain::{AddressPolicy, Analysis, ErrorKind, Strategy};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use url::Url;

use super::cdp::{Cdp, CdpError, Event};
use super::conditions::Conditions;
use super::lab::{self, Timeline};
use super::launch::launch;
use super::network::NetworkLog;
use super::proxy::{Proxy, Refusal};
use super::score::performance_score;
use crate::http::status_reason;
use crate::{Engine, EngineError};

/// Where a page's final screenshot is kept, under its job (`""`: a page of no job); what it
/// returns (a link, a file name) is the result's `screenshot`.
pub trait ScreenshotStore: Send + Sync {
    fn put(&self, job: &str, jpeg: Vec<u8>) -> impl Future<Output = Result<String, String>> + Send;
}

#[derive(Clone, Debug)]
pub struct BrowserSettings {
    /// Chromium's executable.
    pub binary: PathBuf,
    /// Switches the platform needs beyond the engine's own (Lambda: `--single-process`).
    pub switches: Vec<String>,
    /// The longest the browser may take to start.
    pub launch_wait: Duration,
    /// The longest a page may take to fire its load event before it is measured as it stands
    /// (Lighthouse: 45 s).
    pub max_load_wait: Duration,
    /// Network and main thread idle this long after the load event: the page has settled
    /// (Lighthouse: 1 s each).
    pub quiet: Duration,
    /// Every DevTools command's own limit.
    pub command_wait: Duration,
}

impl BrowserSettings {
    pub fn new(binary: PathBuf) -> Self {
        BrowserSettings {
            binary,
            switches: Vec::new(),
            launch_wait: Duration::from_secs(20),
            max_load_wait: Duration::from_secs(45),
            quiet: Duration::from_secs(1),
            command_wait: Duration::from_secs(15),
        }
    }
}

pub struct BrowserEngine<S> {
    policy: AddressPolicy,
    settings: BrowserSettings,
    screenshots: S,
}

/// A JPEG a quarter of the viewport's area at most: a glance at what loaded, not a record.
const SCREENSHOT_QUALITY: u32 = 55;
const SCREENSHOT_SCALE: f64 = 0.5;
/// How often the engine looks whether the page has settled.
const TICK: Duration = Duration::from_millis(200);

impl<S: ScreenshotStore> BrowserEngine<S> {
    pub fn new(policy: AddressPolicy, settings: BrowserSettings, screenshots: S) -> Self {
        BrowserEngine { policy, settings, screenshots }
    }

    /// Where this engine keeps its screenshots.
    pub fn screenshots(&self) -> &S {
        &self.screenshots
    }

    /// Measures `url` for `job` within `timeout`.
    pub async fn analyze_for(
        &self,
        job: &str,
        url: &str,
        strategy: Strategy,
        timeout: Duration,
    ) -> Result<Analysis, EngineError> {
        let url =
            Url::parse(url).map_err(|e| EngineError::new(ErrorKind::InvalidUrl, format!("not a valid URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(EngineError::new(ErrorKind::InvalidUrl, "only http and https pages are analysed"));
        }
        let deadline = Instant::now() + timeout;
        match tokio::time::timeout(timeout, self.measure(job, &url, strategy, deadline)).await {
            Ok(result) => result,
            Err(_) => Err(EngineError::new(ErrorKind::Timeout, format!("timed out after {} s", timeout.as_secs()))),
        }
    }

    async fn measure(
        &self,
        job: &str,
        url: &Url,
        strategy: Strategy,
        deadline: Instant,
    ) -> Result<Analysis, EngineError> {
        let proxy = Proxy::start(self.policy).await.map_err(|e| {
            EngineError::new(ErrorKind::EngineUnavailable, format!("the browser's proxy could not start: {e}"))
        })?;
        // Every request through the proxy, loopback too (Chromium sends it around a proxy
        // unless `<-loopback>` says otherwise).
        let mut switches = self.settings.switches.clone();
        switches.push(format!("--proxy-server={}", proxy.address()));
        switches.push("--proxy-bypass-list=<-loopback>".to_owned());
        let browser = launch(&self.settings.binary, &switches, self.settings.launch_wait).await.map_err(|err| {
            tracing::error!(error = %err, binary = %self.settings.binary.display(), "Chromium did not start");
            EngineError::new(ErrorKind::EngineUnavailable, "the browser could not be started")
        })?;
        let cdp = &browser.cdp;
        let wait = self.settings.command_wait;
        // The browser's own first tab: a new browser is the page's alone.
        let targets = cdp.call(None, "Target.getTargets", json!({}), wait).await.map_err(browser_failure)?;
        let tab = targets["targetInfos"]
            .as_array()
            .and_then(|list| list.iter().find(|t| t["type"] == "page"))
            .map(|t| t["targetId"].clone())
            .ok_or_else(|| EngineError::new(ErrorKind::EngineUnavailable, "the browser opened no tab"))?;
        let attached = cdp
            .call(None, "Target.attachToTarget", json!({"targetId": tab, "flatten": true}), wait)
            .await
            .map_err(browser_failure)?;
        let session = attached["sessionId"].as_str().unwrap_or_default().to_owned();
        let mut events = cdp.listen(Some(&session)).await;
        let page = Page { cdp, session: &session, proxy: &proxy, job };
        // The browser, its profile and the proxy go when this returns, whatever happened.
        self.load(&page, &mut events, url, strategy, deadline).await
    }

    async fn load(
        &self,
        page: &Page<'_>,
        events: &mut mpsc::UnboundedReceiver<Event>,
        url: &Url,
        strategy: Strategy,
        deadline: Instant,
    ) -> Result<Analysis, EngineError> {
        let wait = self.settings.command_wait;
        let conditions = Conditions::of(strategy);
        let (cdp, proxy, session) = (page.cdp, page.proxy, Some(page.session));
        let setup: [(&str, Value); 8] = [
            ("Page.enable", json!({})),
            ("Network.enable", json!({})),
            ("Page.addScriptToEvaluateOnNewDocument", json!({"source": lab::OBSERVER})),
            ("Emulation.setDeviceMetricsOverride", conditions.device_metrics()),
            ("Emulation.setUserAgentOverride", json!({"userAgent": conditions.user_agent})),
            ("Emulation.setTouchEmulationEnabled", json!({"enabled": conditions.mobile})),
            ("Network.emulateNetworkConditions", conditions.network()),
            ("Emulation.setCPUThrottlingRate", json!({"rate": conditions.cpu_slowdown})),
        ];
        for (method, params) in setup {
            cdp.call(session, method, params, wait).await.map_err(browser_failure)?;
        }
        let mut network = NetworkLog::default();
        let started = Instant::now();
        let navigated =
            cdp.call(session, "Page.navigate", json!({"url": url.as_str()}), wait).await.map_err(browser_failure)?;
        if let Some(error) = navigated["errorText"].as_str().filter(|e| !e.is_empty()) {
            return Err(navigation_failure(error, &proxy.refusals(), url));
        }
        network.expect_document(navigated["loaderId"].as_str().unwrap_or_default());

        // Settled: loaded, then the network and the main thread quiet for `quiet`; or out of time.
        let load_deadline = deadline.min(started + self.settings.max_load_wait);
        let mut loaded_at: Option<Instant> = None;
        let mut timeline = Timeline::default();
        let mut ticker = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                event = events.recv() => {
                    let Some(event) = event else { return Err(browser_failure(CdpError::Closed)) };
                    if event.method == "Page.loadEventFired" {
                        loaded_at.get_or_insert_with(Instant::now);
                    } else {
                        network.record(&event.method, &event.params, Instant::now());
                    }
                }
                _ = ticker.tick() => {
                    let now = Instant::now();
                    if now >= load_deadline {
                        break;
                    }
                    let Some(loaded) = loaded_at else { continue };
                    let quiet = self.settings.quiet;
                    if now - loaded < quiet || network.in_flight() > 0 || now - network.last_change < quiet {
                        continue;
                    }
                    timeline = lab::read(cdp, session, wait).await.map_err(browser_failure)?;
                    if timeline.main_thread_quiet(quiet.as_secs_f64() * 1000.0) {
                        break;
                    }
                }
            }
        }
        // Read again at the end (the last tick may have been a while ago, or never came).
        timeline = lab::read(cdp, session, wait).await.unwrap_or(timeline);
        let screenshot = self.screenshot(page, &conditions).await;
        let analysis = analysis(strategy, &conditions, &timeline, &network, &proxy.refusals(), loaded_at, screenshot);
        let Some(document) = &network.document else {
            return Err(EngineError::with_analysis(
                ErrorKind::Timeout,
                "the page's document did not arrive in time",
                analysis,
            ));
        };
        if document.from_proxy {
            let answered = Url::parse(&document.url).unwrap_or_else(|_| url.clone());
            return Err(navigation_failure("the proxy refused it", &proxy.refusals(), &answered));
        }
        match document.status {
            200..=299 => Ok(analysis),
            429 => Err(EngineError::with_analysis(ErrorKind::RateLimited, status_reason(429), analysis)),
            400..=499 => Err(EngineError::with_analysis(ErrorKind::Http4xx, status_reason(document.status), analysis)),
            status => Err(EngineError::with_analysis(ErrorKind::Http5xx, status_reason(status), analysis)),
        }
    }

    /// The viewport as it ended, stored; `None` (and a warning) if either step fails: a
    /// missing picture does not fail a measured page.
    async fn screenshot(&self, page: &Page<'_>, conditions: &Conditions) -> Option<String> {
        let (cdp, session) = (page.cdp, Some(page.session));
        let params = json!({
            "format": "jpeg",
            "quality": SCREENSHOT_QUALITY,
            "clip": {"x": 0, "y": 0, "width": conditions.width, "height": conditions.height, "scale": SCREENSHOT_SCALE},
        });
        let taken = cdp.call(session, "Page.captureScreenshot", params, self.settings.command_wait).await;
        let jpeg = match taken.map(|r| r["data"].as_str().map(decode_base64)) {
            Ok(Some(Some(jpeg))) => jpeg,
            other => {
                tracing::warn!(result = ?other.err(), "no screenshot of the page");
                return None;
            }
        };
        match self.screenshots.put(page.job, jpeg).await {
            Ok(name) => Some(name),
            Err(err) => {
                tracing::warn!(error = %err, "the page's screenshot was not stored");
                None
            }
        }
    }
}

impl<S: ScreenshotStore> Engine for BrowserEngine<S> {
    fn name(&self) -> &'static str {
        "browser"
    }

    async fn analyze(&self, url: &str, strategy: Strategy, timeout: Duration) -> Result<Analysis, EngineError> {
        self.analyze_for("", url, strategy, timeout).await
    }
}

/// The page being measured: its DevTools session, its proxy and its job.
struct Page<'a> {
    cdp: &'a Cdp,
    session: &'a str,
    proxy: &'a Proxy,
    job: &'a str,
}

/// The result's metrics: the lab metrics, the network's totals, what the proxy refused, the
/// conditions, and the score with its parts when every weighted metric was measured.
fn analysis(
    strategy: Strategy,
    conditions: &Conditions,
    timeline: &Timeline,
    network: &NetworkLog,
    refusals: &[Refusal],
    loaded_at: Option<Instant>,
    screenshot: Option<String>,
) -> Analysis {
    let round = |v: f64| (v * 10.0).round() / 10.0;
    let mut m = Map::new();
    let settled_at = timeline.now.max(timeline.last_busy());
    let lab: [(&str, Option<f64>); 5] = [
        ("fcp_ms", timeline.fcp.map(round)),
        // Lighthouse's LCP, which the score is checked against; Chrome's paint is beside it.
        ("lcp_ms", timeline.lcp.map(|painted| round(network.lighthouse_lcp(painted).unwrap_or(painted)))),
        ("tbt_ms", timeline.tbt(settled_at).map(round)),
        ("cls", timeline.fcp.map(|_| (timeline.cls() * 10_000.0).round() / 10_000.0)),
        ("speed_index_ms", timeline.speed_index().map(round)),
    ];
    let mut unavailable = Map::new();
    for (name, value) in lab {
        match value {
            Some(value) => {
                m.insert(name.into(), json!(value));
            }
            None => {
                unavailable.insert(name.into(), json!("the page painted no content"));
            }
        }
    }
    let score = performance_score(|name| m.get(name).and_then(Value::as_f64), strategy == Strategy::Desktop);
    if let Some((_, parts)) = &score {
        m.insert("score_parts".into(), json!(parts));
    }
    if let Some(document) = &network.document {
        m.insert("status_code".into(), json!(document.status));
        m.insert("final_url".into(), json!(document.url));
        if let Some(ttfb) = document.ttfb_ms {
            m.insert("ttfb_ms".into(), json!(ttfb));
        }
        if let Some(protocol) = &document.protocol {
            m.insert("http_version".into(), json!(protocol));
        }
    }
    m.insert("page_bytes".into(), json!(network.total_bytes()));
    m.insert("requests".into(), json!(network.total_requests()));
    m.insert("by_type".into(), network.by_type());
    m.insert("failed_requests".into(), json!(network.failed()));
    let tasks = &timeline.long_tasks;
    m.insert(
        "long_tasks".into(),
        json!({
            "count": tasks.len(),
            "longest_ms": round(tasks.iter().map(|t| t.1).fold(0.0, f64::max)),
            "total_ms": round(tasks.iter().map(|t| t.1).fold(0.0, |total, d| total + d)),
        }),
    );
    if let Some(painted) = timeline.lcp {
        m.insert("lcp_paint_ms".into(), json!(round(painted)));
    }
    if let Some(element) = &timeline.lcp_element {
        m.insert("lcp_element".into(), json!(element));
    }
    let blocked: Vec<&Refusal> = refusals.iter().filter(|r| r.kind == ErrorKind::Blocked).collect();
    m.insert("blocked_requests".into(), json!(blocked));
    if loaded_at.is_none() {
        m.insert("warnings".into(), json!(["the page did not finish loading in time: measured as it stood"]));
    }
    m.insert("conditions".into(), conditions.describe());
    if let Some(name) = screenshot {
        m.insert("screenshot".into(), json!(name));
    }
    if !unavailable.is_empty() {
        m.insert("unavailable".into(), Value::Object(unavailable));
    }
    Analysis { engine: "browser".into(), strategy, score: score.map(|(s, _)| s), metrics: m, cached_from: None }
}

/// The page at `url` could not be loaded: the proxy's reason when it stopped a request to the
/// page's host (refused or unreachable), else Chromium's network error. (The proxy also sees
/// the browser's own requests, which are not the page's.)
fn navigation_failure(error_text: &str, refusals: &[Refusal], url: &Url) -> EngineError {
    let origin = |u: &Url| (u.host_str().map(str::to_owned), u.port_or_known_default());
    let page = origin(url);
    if let Some(refusal) = refusals.iter().find(|r| Url::parse(&r.url).is_ok_and(|r| origin(&r) == page)) {
        return EngineError::new(refusal.kind, refusal.reason.clone());
    }
    let kind = match error_text {
        e if e.contains("NAME_NOT_RESOLVED") => ErrorKind::Dns,
        e if e.contains("TIMED_OUT") => ErrorKind::Timeout,
        e if e.contains("CONNECTION") || e.contains("CERT") || e.contains("SSL") || e.contains("TUNNEL") => {
            ErrorKind::Connection
        }
        e if e.contains("TOO_MANY_REDIRECTS") => ErrorKind::Redirect,
        _ => ErrorKind::Transfer,
    };
    EngineError::new(kind, format!("the browser could not load the page: {error_text}"))
}

/// The browser itself failed (not the page): retryable, and logged for the operator.
fn browser_failure(err: CdpError) -> EngineError {
    tracing::warn!(error = %err, "browser command failed");
    EngineError::new(ErrorKind::EngineUnavailable, format!("the browser failed: {err}"))
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut table = [255u8; 256];
    for (i, &c) in ALPHABET.iter().enumerate() {
        table[usize::from(c)] = i as u8;
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &c in text.as_bytes().iter().filter(|c| !c.is_ascii_whitespace() && **c != b'=') {
        let value = table[usize::from(c)];
        if value == 255 {
            return None;
        }
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_as_the_protocol_encodes_it() {
        assert_eq!(decode_base64("aGVsbG8gd29ybGQ=").unwrap(), b"hello world");
        assert_eq!(decode_base64("/9j/").unwrap(), [0xff, 0xd8, 0xff]);
        assert!(decode_base64("no!").is_none());
    }

    #[test]
    fn a_document_the_proxy_refused_fails_as_blocked_with_the_proxys_reason() {
        let refusals = [
            Refusal {
                url: "https://update.example:443/".into(),
                reason: "could not resolve update.example".into(),
                kind: ErrorKind::Dns,
            },
            Refusal {
                url: "http://10.0.0.1/".into(),
                reason: "10.0.0.1: private address blocked by policy".into(),
                kind: ErrorKind::Blocked,
            },
        ];
        let page = Url::parse("http://10.0.0.1/index.html").unwrap();
        let err = navigation_failure("net::ERR_TUNNEL_CONNECTION_FAILED", &refusals, &page);
        assert_eq!(
            (err.kind, err.reason.as_str()),
            (ErrorKind::Blocked, "10.0.0.1: private address blocked by policy")
        );
        // The browser's own request elsewhere is not the page's failure.
        let elsewhere = Url::parse("https://a.example/").unwrap();
        let err = navigation_failure("net::ERR_NAME_NOT_RESOLVED", &refusals, &elsewhere);
        assert_eq!(
            (err.kind, err.reason.as_str()),
            (ErrorKind::Dns, "the browser could not load the page: net::ERR_NAME_NOT_RESOLVED")
        );
    }

    #[test]
    fn a_page_that_painted_is_scored_and_one_that_did_not_says_what_is_missing() {
        let timeline = Timeline {
            fcp: Some(900.0),
            lcp: Some(1_500.0),
            long_tasks: vec![(1_000.0, 250.0)],
            now: 4_000.0,
            ..Timeline::default()
        };
        let network = NetworkLog::default();
        let painted =
            analysis(Strategy::Desktop, &Conditions::of(Strategy::Desktop), &timeline, &network, &[], None, None);
        assert!(painted.score.is_some_and(|s| s > 0.0 && s <= 100.0), "{painted:?}");
        assert_eq!(painted.metrics["tbt_ms"], 200.0);
        assert_eq!(painted.metrics["speed_index_ms"], 1_200.0);
        assert_eq!(painted.metrics["long_tasks"]["count"], 1);
        assert!(painted.metrics["warnings"].is_array(), "no load event: said so");
        let blank = analysis(
            Strategy::Mobile,
            &Conditions::of(Strategy::Mobile),
            &Timeline::default(),
            &network,
            &[],
            None,
            None,
        );
        assert_eq!(blank.score, None);
        assert!(blank.metrics["unavailable"]["lcp_ms"].is_string());
    }
}
