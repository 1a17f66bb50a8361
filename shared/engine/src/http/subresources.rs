//! What a page's HTML references, and fetching it concurrently within a time budget.
//!
//! Extraction mirrors what a browser's preload scanner would request on first load: scripts,
//! stylesheets, images, preloads, icons, iframes and video posters. Render-blocking follows
//! Lighthouse's `render-blocking-resources` audit: classic synchronous scripts and stylesheets
//! whose media matches the screen, in the document's head.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use http::Version;
use http::header::{self, HeaderMap};
use lol_html::html_content::Element;
use lol_html::{HtmlRewriter, Settings, element, end_tag};
use serde::Serialize;
use tokio::time::Instant;
use url::Url;

/// The list is capped so a page with thousands of images cannot turn one analysis into a
/// crawl; browsers lazy-load most of those anyway.
pub const MAX_SUBRESOURCES: usize = 150;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ResourceKind {
    Script,
    Stylesheet,
    Image,
    Font,
    Iframe,
    Other,
}

impl ResourceKind {
    /// The types Lighthouse's `uses-long-cache-ttl` audit expects to be cached for long.
    pub fn is_static(self) -> bool {
        matches!(self, Self::Script | Self::Stylesheet | Self::Image | Self::Font)
    }

    /// Text types that compress well (Lighthouse `uses-text-compression`).
    pub fn is_text(self) -> bool {
        matches!(self, Self::Script | Self::Stylesheet)
    }

    pub fn accept(self) -> &'static str {
        // What Chrome sends per destination, so servers negotiate formats as for a browser.
        match self {
            Self::Stylesheet => "text/css,*/*;q=0.1",
            Self::Image => "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
            Self::Iframe => "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            Self::Script | Self::Font | Self::Other => "*/*",
        }
    }
}

/// Which markup referenced the resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Initiator {
    Script,
    Stylesheet,
    Image,
    Preload,
    Icon,
    Iframe,
    VideoPoster,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScriptLoading {
    /// Classic script without `async`/`defer`: the parser waits for it.
    Sync,
    Async,
    Defer,
    /// `type=module` without `async`, deferred by default.
    Module,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Subresource {
    pub url: Url,
    pub kind: ResourceKind,
    pub initiator: Initiator,
    /// Referenced before the body started, i.e. where the browser puts it: in `<head>`.
    pub in_head: bool,
    pub script_loading: Option<ScriptLoading>,
    pub media: Option<String>,
    pub render_blocking: bool,
}

/// Subresources referenced by `html`, in document order, resolved against `base` (or the
/// document's `<base href>`), `http`/`https` only, deduplicated and capped at
/// [`MAX_SUBRESOURCES`]. An `<img>` with a `srcset` contributes its first candidate instead of
/// `src`: a browser that supports `srcset` fetches a candidate, not both.
pub fn extract(html: &[u8], base: &Url) -> Vec<Subresource> {
    let mut state = ScanState { in_head: true, ..ScanState::default() };
    // Content of <noscript> (scripting is on in a browser) and <template> is never fetched.
    // End-tag handlers must be 'static, hence the shared counter.
    let inert = Rc::new(Cell::new(0usize));
    {
        let inert_handler = Rc::clone(&inert);
        let settings = Settings::new().append_element_content_handler(element!("*", |el: &mut Element| {
            scan_element(el, &mut state, &inert_handler);
            Ok(())
        }));
        let mut rewriter = HtmlRewriter::new(settings, |_: &[u8]| {});
        // Broken markup yields what was found before the error, as a browser would render it.
        if rewriter.write(html).is_ok() {
            let _ = rewriter.end();
        }
    }
    resolve(state, base)
}

#[derive(Default)]
struct ScanState {
    base_href: Option<String>,
    in_head: bool,
    found: Vec<Found>,
}

struct Found {
    href: String,
    kind: ResourceKind,
    initiator: Initiator,
    in_head: bool,
    script_loading: Option<ScriptLoading>,
    media: Option<String>,
    render_blocking: bool,
}

/// Elements the HTML parser keeps in `<head>`; any other start tag opens the body.
const HEAD_TAGS: &[&str] = &[
    "html", "head", "base", "basefont", "bgsound", "link", "meta", "noframes", "script", "style", "template", "title",
    "noscript",
];

const HTML_NAMESPACE: &str = "http://www.w3.org/1999/xhtml";

fn scan_element(el: &mut Element<'_, '_>, state: &mut ScanState, inert: &Rc<Cell<usize>>) {
    let tag = el.tag_name();
    if tag == "noscript" || tag == "template" {
        let counter = Rc::clone(inert);
        if el
            .on_end_tag(end_tag!(move |_| {
                counter.set(counter.get().saturating_sub(1));
                Ok(())
            }))
            .is_ok()
        {
            inert.set(inert.get() + 1);
        }
    }
    if inert.get() > 0 || el.namespace_uri() != HTML_NAMESPACE {
        return;
    }
    if !HEAD_TAGS.contains(&tag.as_str()) {
        state.in_head = false;
    }
    let in_head = state.in_head;
    let attr = |name: &str| el.get_attribute(name).filter(|v| !v.trim().is_empty());
    let push = |href: String, kind, initiator| Found {
        href,
        kind,
        initiator,
        in_head,
        script_loading: None,
        media: None,
        render_blocking: false,
    };

    let found = match tag.as_str() {
        "base" => {
            if state.base_href.is_none() {
                state.base_href = attr("href");
            }
            None
        }
        "script" => attr("src").and_then(|src| {
            let loading = script_loading(el)?;
            let mut found = push(src, ResourceKind::Script, Initiator::Script);
            found.script_loading = Some(loading);
            found.render_blocking = in_head && loading == ScriptLoading::Sync;
            Some(found)
        }),
        "link" => attr("href").and_then(|href| {
            let rel = el.get_attribute("rel").unwrap_or_default().to_ascii_lowercase();
            let rel: Vec<&str> = rel.split_ascii_whitespace().collect();
            if rel.contains(&"stylesheet") {
                if rel.contains(&"alternate") {
                    return None;
                }
                let media = el.get_attribute("media");
                let mut found = push(href, ResourceKind::Stylesheet, Initiator::Stylesheet);
                found.render_blocking =
                    in_head && !el.has_attribute("disabled") && media.as_deref().is_none_or(media_matches_screen);
                found.media = media;
                Some(found)
            } else if rel.contains(&"preload") {
                let kind = match el.get_attribute("as")?.trim().to_ascii_lowercase().as_str() {
                    "script" => ResourceKind::Script,
                    "style" => ResourceKind::Stylesheet,
                    "font" => ResourceKind::Font,
                    "image" => ResourceKind::Image,
                    "document" => ResourceKind::Iframe,
                    _ => ResourceKind::Other,
                };
                Some(push(href, kind, Initiator::Preload))
            } else if rel.contains(&"modulepreload") {
                Some(push(href, ResourceKind::Script, Initiator::Preload))
            } else if rel.contains(&"icon") {
                Some(push(href, ResourceKind::Image, Initiator::Icon))
            } else {
                None
            }
        }),
        "img" => attr("srcset")
            .and_then(|srcset| first_srcset_candidate(&srcset).map(str::to_owned))
            .or_else(|| attr("src"))
            .map(|src| push(src, ResourceKind::Image, Initiator::Image)),
        "iframe" => attr("src").map(|src| push(src, ResourceKind::Iframe, Initiator::Iframe)),
        "video" => attr("poster").map(|src| push(src, ResourceKind::Image, Initiator::VideoPoster)),
        _ => None,
    };
    if let Some(found) = found {
        state.found.push(found);
    }
}

/// None for scripts a modern browser does not fetch: `nomodule` fallbacks and data blocks
/// such as `type="text/template"`.
fn script_loading(el: &Element<'_, '_>) -> Option<ScriptLoading> {
    if el.has_attribute("nomodule") {
        return None;
    }
    let kind = el.get_attribute("type").unwrap_or_default().trim().to_ascii_lowercase();
    let is_async = el.has_attribute("async");
    if kind == "module" {
        return Some(if is_async { ScriptLoading::Async } else { ScriptLoading::Module });
    }
    let essence = kind.split(';').next().unwrap_or_default().trim();
    let javascript = essence.is_empty()
        || matches!(
            essence,
            "text/javascript"
                | "application/javascript"
                | "application/x-javascript"
                | "text/ecmascript"
                | "application/ecmascript"
                | "text/jscript"
        );
    if !javascript {
        return None;
    }
    Some(if is_async {
        ScriptLoading::Async
    } else if el.has_attribute("defer") {
        ScriptLoading::Defer
    } else {
        ScriptLoading::Sync
    })
}

/// Whether a `media` attribute can match a screen. Media features are assumed to match (we
/// have no viewport), so only media types decide: `print`, `speech` and unknown types do not
/// match, `screen` and `all` do.
pub fn media_matches_screen(media: &str) -> bool {
    let media = media.trim().to_ascii_lowercase();
    if media.is_empty() {
        return true;
    }
    media.split(',').any(|query| {
        let mut words = query.split_ascii_whitespace();
        let (negated, media_type) = match words.next() {
            None => return false,
            Some("not") => (true, words.next()),
            Some("only") => (false, words.next()),
            Some(first) => (false, Some(first)),
        };
        let matches = match media_type {
            None => false,
            Some(t) if t.starts_with('(') => true,
            Some("all" | "screen") => true,
            Some(_) => false,
        };
        matches != negated
    })
}

/// The URL of the first `srcset` candidate (HTML's srcset parsing: commas around candidates,
/// whitespace before descriptors).
pub fn first_srcset_candidate(srcset: &str) -> Option<&str> {
    let rest = srcset.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == ',');
    let end = rest.find(|c: char| c.is_ascii_whitespace()).unwrap_or(rest.len());
    let url = rest[..end].trim_end_matches(',');
    (!url.is_empty()).then_some(url)
}

fn resolve(state: ScanState, document: &Url) -> Vec<Subresource> {
    // <base href> applies to the whole document, even to URLs seen before it.
    let base =
        state.base_href.as_deref().and_then(|href| document.join(href.trim()).ok()).unwrap_or_else(|| document.clone());

    let mut list: Vec<Subresource> = Vec::new();
    for found in state.found {
        let Ok(mut url) = base.join(found.href.trim()) else { continue };
        if !matches!(url.scheme(), "http" | "https") {
            continue;
        }
        url.set_fragment(None);
        let candidate = Subresource {
            url,
            kind: found.kind,
            initiator: found.initiator,
            in_head: found.in_head,
            script_loading: found.script_loading,
            media: found.media,
            render_blocking: found.render_blocking,
        };
        match list.iter().position(|known| known.url == candidate.url) {
            // The browser fetches a URL once; a preload is consumed by the element that uses
            // it, whose kind and blocking behaviour are the ones that count.
            Some(index) => {
                let known = &mut list[index];
                let blocking = known.render_blocking || candidate.render_blocking;
                if known.initiator == Initiator::Preload && candidate.initiator != Initiator::Preload {
                    *known = candidate;
                }
                known.render_blocking = blocking;
            }
            None if list.len() < MAX_SUBRESOURCES => list.push(candidate),
            None => {}
        }
    }
    list
}

// ---------------------------------------------------------------------------------------------
// Fetching

/// What one subresource fetch returned. `transfer_bytes` are body bytes as sent (compressed),
/// which is what the page costs on the wire.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub status: u16,
    pub transfer_bytes: u64,
    pub http_version: Version,
    pub headers: HeaderMap,
}

/// Fetches one subresource (the engine's policy-enforcing client; tests script it). `Err`
/// is a plain-words reason.
pub trait Fetch: Sync {
    fn fetch(&self, resource: &Subresource) -> impl Future<Output = Result<Fetched, String>> + Send;
}

/// Bodies larger than this are counted up to here and abandoned (a video behind a poster URL
/// should not stall the report).
pub const MAX_SUBRESOURCE_BYTES: u64 = 32 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FetchState {
    /// A response with status < 400.
    Ok,
    /// Status ≥ 400 or an error.
    Failed,
    /// Never started: the budget was spent.
    Skipped,
    /// Started but still running when the budget ran out.
    CutOff,
}

#[derive(Debug, Clone)]
pub struct ResourceResult {
    pub url: Url,
    pub kind: ResourceKind,
    pub render_blocking: bool,
    pub state: FetchState,
    pub status: Option<u16>,
    pub transfer_bytes: u64,
    pub duration_ms: Option<f64>,
    pub http_version: Option<&'static str>,
    pub content_encoding: Option<String>,
    /// Explicit freshness lifetime from `Cache-Control`/`Expires`; None when neither is sent.
    pub cache_ttl_secs: Option<u64>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub count: usize,
    pub transfer_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub url: Url,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Slowest {
    pub url: Url,
    pub duration_ms: f64,
}

#[derive(Debug, Clone)]
pub struct SubresourceReport {
    /// Requests made (responses and errors, cut-off ones included) and bytes received, by kind.
    pub by_kind: BTreeMap<ResourceKind, Totals>,
    pub total: Totals,
    pub failures: Vec<Failure>,
    /// Every render-blocking resource in the list counts, fetched or not; bytes are of those
    /// that were fetched.
    pub render_blocking: Totals,
    pub skipped: usize,
    pub cut_off: usize,
    pub slowest: Option<Slowest>,
    /// One entry per input resource, in input order.
    pub resources: Vec<ResourceResult>,
}

/// Fetches `list` with at most `concurrency` requests in flight. No fetch starts once `budget`
/// is spent, and fetches still running then are abandoned, so the call returns within about
/// `budget`.
pub async fn fetch_all<F: Fetch>(
    list: &[Subresource],
    concurrency: usize,
    budget: Duration,
    fetcher: &F,
) -> SubresourceReport {
    let deadline = Instant::now() + budget;
    // Futures are built up front (named async fns rather than a closure over borrowed items,
    // which keeps the returned future `Send`); each checks the deadline when first polled,
    // i.e. when `buffer_unordered` actually starts it.
    let pending: Vec<_> =
        list.iter().enumerate().map(|(index, resource)| fetch_indexed(index, resource, deadline, fetcher)).collect();
    let mut results: Vec<(usize, ResourceResult)> =
        futures::stream::iter(pending).buffer_unordered(concurrency.max(1)).collect().await;
    results.sort_by_key(|(index, _)| *index);
    summarize(results.into_iter().map(|(_, result)| result).collect())
}

async fn fetch_indexed<F: Fetch>(
    index: usize,
    resource: &Subresource,
    deadline: Instant,
    fetcher: &F,
) -> (usize, ResourceResult) {
    (index, fetch_one(resource, deadline, fetcher).await)
}

async fn fetch_one<F: Fetch>(resource: &Subresource, deadline: Instant, fetcher: &F) -> ResourceResult {
    let mut result = ResourceResult {
        url: resource.url.clone(),
        kind: resource.kind,
        render_blocking: resource.render_blocking,
        state: FetchState::Skipped,
        status: None,
        transfer_bytes: 0,
        duration_ms: None,
        http_version: None,
        content_encoding: None,
        cache_ttl_secs: None,
        error: None,
    };
    let started = Instant::now();
    if started >= deadline {
        return result;
    }
    let outcome = tokio::time::timeout_at(deadline, fetcher.fetch(resource)).await;
    result.duration_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
    match outcome {
        Err(_) => result.state = FetchState::CutOff,
        Ok(Err(reason)) => {
            result.state = FetchState::Failed;
            result.error = Some(reason);
        }
        Ok(Ok(fetched)) => {
            result.status = Some(fetched.status);
            result.transfer_bytes = fetched.transfer_bytes;
            result.http_version = Some(super::probe::version_name(fetched.http_version));
            result.content_encoding = fetched
                .headers
                .get(header::CONTENT_ENCODING)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().to_ascii_lowercase())
                .filter(|v| !v.is_empty() && v != "identity");
            result.cache_ttl_secs = cache_ttl_secs(&fetched.headers, SystemTime::now());
            if fetched.status >= 400 {
                result.state = FetchState::Failed;
                result.error = Some(super::status_reason(fetched.status));
            } else {
                result.state = FetchState::Ok;
            }
        }
    }
    result
}

fn summarize(resources: Vec<ResourceResult>) -> SubresourceReport {
    let mut report = SubresourceReport {
        by_kind: BTreeMap::new(),
        total: Totals::default(),
        failures: Vec::new(),
        render_blocking: Totals::default(),
        skipped: 0,
        cut_off: 0,
        slowest: None,
        resources: Vec::new(),
    };
    for result in &resources {
        if result.render_blocking {
            report.render_blocking.count += 1;
            report.render_blocking.transfer_bytes += result.transfer_bytes;
        }
        match result.state {
            FetchState::Skipped => {
                report.skipped += 1;
                continue;
            }
            FetchState::CutOff => report.cut_off += 1,
            FetchState::Failed => report.failures.push(Failure {
                url: result.url.clone(),
                reason: result.error.clone().unwrap_or_else(|| "failed".to_owned()),
            }),
            FetchState::Ok => {}
        }
        let totals = report.by_kind.entry(result.kind).or_default();
        totals.count += 1;
        totals.transfer_bytes += result.transfer_bytes;
        report.total.count += 1;
        report.total.transfer_bytes += result.transfer_bytes;
        if let Some(duration_ms) = result.duration_ms.filter(|_| result.state != FetchState::CutOff)
            && report.slowest.as_ref().is_none_or(|s| duration_ms > s.duration_ms)
        {
            report.slowest = Some(Slowest { url: result.url.clone(), duration_ms });
        }
    }
    report.resources = resources;
    report
}

/// The explicit freshness lifetime a browser cache would give the response: `no-store` and
/// `no-cache` give 0, then `max-age`, then `Expires` minus `Date` (or `now`); an unparsable
/// `Expires` means already expired. None when no explicit lifetime is sent.
pub fn cache_ttl_secs(headers: &HeaderMap, now: SystemTime) -> Option<u64> {
    let directives: Vec<String> = headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|d| d.trim().to_ascii_lowercase())
        .collect();
    if directives.iter().any(|d| d == "no-store" || d == "no-cache") {
        return Some(0);
    }
    for directive in &directives {
        if let Some(value) = directive.strip_prefix("max-age=") {
            return Some(value.trim_matches('"').parse::<u64>().unwrap_or(0));
        }
    }
    let expires = headers.get(header::EXPIRES)?;
    let Some(expires) = expires.to_str().ok().and_then(|v| httpdate::parse_http_date(v).ok()) else {
        return Some(0);
    };
    let date = headers
        .get(header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
        .unwrap_or(now);
    Some(expires.duration_since(date).map(|d| d.as_secs()).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::HeaderValue;

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
        let report = fetch_all(&list, 2, Duration::from_secs(10), &fetcher).await;
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
        let report = fetch_all(&list, 1, Duration::from_millis(500), &fetcher).await;
        assert_eq!(*fetcher.started.lock().unwrap(), ["/ms-400-200-1", "/ms-400-200-2"]);
        assert_eq!(report.skipped, 2);
        assert_eq!(report.cut_off, 1);
        assert_eq!(report.resources[1].state, FetchState::CutOff);
        assert_eq!(report.resources[2].state, FetchState::Skipped);
        assert_eq!(report.total, Totals { count: 2, transfer_bytes: 1 });
        assert_eq!(report.render_blocking, Totals { count: 2, transfer_bytes: 0 });
        assert_eq!(report.slowest.unwrap().url.path(), "/ms-400-200-1");

        let none = fetch_all(&list, 4, Duration::ZERO, &fetcher).await;
        assert_eq!(none.skipped, 4);
        assert_eq!(none.total.count, 0);
        assert!(none.slowest.is_none());
    }
}
