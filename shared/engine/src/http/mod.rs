//! The browserless engine: what a browser's network panel would show for a page's first load,
//! without a browser. `probe` fetches the document hop by hop with per-phase timings,
//! `subresources` fetches what its HTML references, and `score` turns both into 0–100 by the
//! rules documented in the README.

pub mod probe;
pub mod score;
pub mod subresources;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use http::header::{self, HeaderMap, HeaderValue};
use serde_json::{Map, Value, json};
use url::Url;

use self::probe::{AddressCheck, Probe, ProbeConfig, ProbeError};
use self::score::{FormFactor, ScoreBreakdown, ScoreInput};
use self::subresources::{Fetch, Fetched, MAX_SUBRESOURCE_BYTES, Subresource, SubresourceReport};
use crate::{Engine, EngineError};
use domain::AddressPolicy;
use domain::{Analysis, ErrorKind, Strategy};
use net::safe_client::{check_literal_host, describe, safe_client_trusting};

const DESKTOP_USER_AGENT: &str = concat!(
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) speedbatch/",
    env!("CARGO_PKG_VERSION"),
    " (page speed analysis)"
);
const MOBILE_USER_AGENT: &str = concat!(
    "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Mobile speedbatch/",
    env!("CARGO_PKG_VERSION"),
    " (page speed analysis)"
);

/// Failures listed by URL in a result; the rest are only counted, so a page with hundreds of
/// broken images cannot make its result item large (item size is write cost).
const LISTED_FAILURES: usize = 5;

/// How subresources are fetched.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    pub probe: ProbeConfig,
    /// Requests in flight at once: a browser opens six connections per host.
    pub concurrency: usize,
    /// The longest time spent on subresources; what is not fetched by then is counted as
    /// skipped. Capped further by the URL's own timeout.
    pub budget: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings { probe: ProbeConfig::default(), concurrency: 6, budget: Duration::from_secs(15) }
    }
}

#[derive(Clone, Debug)]
pub struct HttpEngine {
    policy: AddressPolicy,
    settings: HttpSettings,
    /// For subresources: pooled connections, the same address policy on every connection
    /// and redirect, and no decompression, so bytes are counted as transferred.
    client: reqwest::Client,
}

impl AddressCheck for AddressPolicy {
    fn check(&self, ip: IpAddr) -> Result<(), String> {
        AddressPolicy::check(self, ip).map_err(|blocked| blocked.to_string())
    }
}

impl HttpEngine {
    pub fn new(policy: AddressPolicy) -> Result<Self, reqwest::Error> {
        HttpEngine::with_settings(policy, HttpSettings::default())
    }

    pub fn with_settings(policy: AddressPolicy, settings: HttpSettings) -> Result<Self, reqwest::Error> {
        let client = safe_client_trusting(policy, &settings.probe.extra_root_certs)?;
        Ok(HttpEngine { policy, settings, client })
    }

    async fn measure(&self, url: Url, strategy: Strategy, deadline: Instant) -> Result<Analysis, EngineError> {
        let form_factor = if strategy == Strategy::Desktop { FormFactor::Desktop } else { FormFactor::Mobile };
        let user_agent = match form_factor {
            FormFactor::Desktop => DESKTOP_USER_AGENT,
            FormFactor::Mobile => MOBILE_USER_AGENT,
        };
        let config = ProbeConfig { user_agent: user_agent.into(), ..self.settings.probe.clone() };
        // The page's host: its place is held for the whole analysis, subresources included.
        let site = domain::politeness::host_key(url.as_str());
        let document = probe::probe(&url, &config, &self.policy).await.map_err(probe_error)?;
        let final_url = document.final_url().cloned().unwrap_or(url);
        let status = document.hops.last().map_or(0, |hop| hop.status);

        let subresources = if (200..300).contains(&status) && is_html(&document.headers) {
            let list = subresources::extract(&document.body, &final_url);
            let budget = self.settings.budget.min(deadline.saturating_duration_since(Instant::now()));
            let fetcher = Subfetch { client: &self.client, policy: self.policy, user_agent };
            Some(subresources::fetch_all(&list, self.settings.concurrency, budget, &fetcher, site.as_deref()).await)
        } else {
            None
        };
        // Nothing fetched (no time left) is not "nothing to fetch": then the page-level rules
        // do not count, rather than scoring a page as if it had no weight.
        let fetched = subresources.as_ref().filter(|r| r.total.count > 0 || r.skipped == 0);
        let breakdown = score::score(&ScoreInput::from_reports(&document, fetched), form_factor);
        let mut analysis = Analysis {
            engine: "http".into(),
            strategy,
            score: Some(breakdown.score),
            metrics: metrics(&document, &final_url, subresources.as_ref(), &breakdown),
            cached_from: None,
        };
        // Its number is a delivery score, named so (`domain::delivery`), never `score`.
        domain::delivery::name_delivery_score(&mut analysis);
        match status {
            200..=299 => Ok(analysis),
            300..=399 => {
                let location = document.hops.last().and_then(|hop| hop.location.clone()).unwrap_or_default();
                Err(EngineError::with_analysis(
                    ErrorKind::Redirect,
                    format!("{} without a usable Location ({location:?})", status_reason(status)),
                    analysis,
                ))
            }
            429 | 503 => {
                let kind = if status == 429 { ErrorKind::RateLimited } else { ErrorKind::Http5xx };
                let asked = retry_after(&document.headers, chrono::Utc::now());
                let reason = match asked {
                    Some(wait) => format!("{} (Retry-After: {} s)", status_reason(status), wait.as_secs()),
                    None => status_reason(status),
                };
                Err(EngineError { retry_after: asked, ..EngineError::with_analysis(kind, reason, analysis) })
            }
            400..=499 => Err(EngineError::with_analysis(ErrorKind::Http4xx, status_reason(status), analysis)),
            _ => Err(EngineError::with_analysis(ErrorKind::Http5xx, status_reason(status), analysis)),
        }
    }
}

impl Engine for HttpEngine {
    fn name(&self) -> &'static str {
        "http"
    }

    async fn analyze(&self, url: &str, strategy: Strategy, timeout: Duration) -> Result<Analysis, EngineError> {
        let url =
            Url::parse(url).map_err(|e| EngineError::new(ErrorKind::InvalidUrl, format!("not a valid URL: {e}")))?;
        let deadline = Instant::now() + timeout;
        match tokio::time::timeout(timeout, self.measure(url, strategy, deadline)).await {
            Ok(result) => result,
            Err(_) => Err(EngineError::new(ErrorKind::Timeout, format!("timed out after {} s", timeout.as_secs()))),
        }
    }
}

/// The wait a response's `Retry-After` asks for: seconds, or an HTTP date from `now` (a date
/// in the past is no wait). Anything unreadable is no ask at all.
fn retry_after(headers: &HeaderMap, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let text = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(text).ok()?;
    Some((at.with_timezone(&chrono::Utc) - now).to_std().unwrap_or_default())
}

pub(crate) fn probe_error(error: ProbeError) -> EngineError {
    let kind = match &error {
        ProbeError::Blocked { .. } => ErrorKind::Blocked,
        ProbeError::Dns { .. } => ErrorKind::Dns,
        ProbeError::Connect { .. } | ProbeError::Tls { .. } => ErrorKind::Connection,
        ProbeError::Timeout { .. } => ErrorKind::Timeout,
        ProbeError::Protocol { .. } | ProbeError::Body { .. } => ErrorKind::Transfer,
        ProbeError::TooManyRedirects { .. } => ErrorKind::Redirect,
        ProbeError::InvalidUrl { .. } => ErrorKind::InvalidUrl,
    };
    EngineError::new(kind, error.to_string())
}

pub(crate) fn status_reason(status: u16) -> String {
    match http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()) {
        Some(reason) => format!("HTTP {status} {reason}"),
        None => format!("HTTP {status}"),
    }
}

/// Subresources are only looked for in HTML; a PDF or an image is measured as a document.
fn is_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.to_ascii_lowercase().contains("html"))
}

struct Subfetch<'a> {
    client: &'a reqwest::Client,
    policy: AddressPolicy,
    user_agent: &'static str,
}

impl Fetch for Subfetch<'_> {
    async fn fetch(&self, resource: &Subresource) -> Result<Fetched, String> {
        // An IP literal never reaches the client's checking resolver: it is checked here (and
        // in every redirect by the client's redirect policy).
        check_literal_host(&resource.url, self.policy).map_err(|blocked| blocked.to_string())?;
        let mut response = self
            .client
            .get(resource.url.clone())
            .header(header::USER_AGENT, self.user_agent)
            .header(header::ACCEPT, resource.kind.accept())
            .header(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip, deflate, br"))
            .send()
            .await
            .map_err(|e| describe(&e).1)?;
        let status = response.status().as_u16();
        let http_version = response.version();
        let headers = response.headers().clone();
        let mut transfer_bytes = 0u64;
        while let Some(chunk) = response.chunk().await.map_err(|e| describe(&e).1)? {
            transfer_bytes += chunk.len() as u64;
            if transfer_bytes >= MAX_SUBRESOURCE_BYTES {
                break;
            }
        }
        Ok(Fetched { status, transfer_bytes, http_version, headers })
    }
}

fn round(ms: f64) -> f64 {
    (ms * 10.0).round() / 10.0
}

/// What is stored for the URL. Numbers at the top level are what the job summary takes
/// percentiles of; the hops, subresources and the score's rules are nested beside them.
fn metrics(
    document: &Probe,
    final_url: &Url,
    subresources: Option<&SubresourceReport>,
    breakdown: &ScoreBreakdown,
) -> Map<String, Value> {
    let mut m = Map::new();
    let last = document.hops.last();
    // A phase no hop went through (no DNS for an IP literal, no TLS over http) is absent, not
    // 0 ms: it would pull a day's or a job's percentiles of that phase down.
    let sum = |f: fn(&probe::Hop) -> Option<f64>| {
        let times: Vec<f64> = document.hops.iter().filter_map(f).collect();
        (!times.is_empty()).then(|| round(times.iter().sum()))
    };
    m.insert("status_code".into(), json!(last.map_or(0, |hop| hop.status)));
    m.insert("final_url".into(), json!(final_url.as_str()));
    m.insert("redirects".into(), json!(document.hops.len().saturating_sub(1)));
    m.insert("http_version".into(), json!(last.map_or("", |hop| hop.http_version)));
    // Set-up phases over every connection the document needed; the response phases are the
    // final document's.
    for (name, phase) in [
        ("dns_ms", sum(|hop| hop.dns_ms)),
        ("connect_ms", sum(|hop| hop.connect_ms)),
        ("tls_ms", sum(|hop| hop.tls_ms)),
    ] {
        if let Some(ms) = phase {
            m.insert(name.into(), json!(ms));
        }
    }
    m.insert("ttfb_ms".into(), json!(round(last.map_or(0.0, |hop| hop.ttfb_ms))));
    m.insert("download_ms".into(), json!(round(last.map_or(0.0, |hop| hop.download_ms))));
    m.insert("total_ms".into(), json!(round(document.hops.iter().fold(0.0, |total, hop| total + hop.total_ms))));
    m.insert("document_bytes".into(), json!(document.wire_bytes));
    m.insert("document_decoded_bytes".into(), json!(document.decoded_bytes));
    if document.truncated {
        m.insert("truncated".into(), json!(true));
    }
    if document.incomplete {
        m.insert("incomplete".into(), json!(true));
    }
    let header = |name: header::HeaderName| {
        let values: Vec<&str> = document.headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
        (!values.is_empty()).then(|| values.join(", "))
    };
    m.insert("compression".into(), json!(document.content_encoding.as_deref().unwrap_or("none")));
    for (key, name) in [
        ("content_type", header::CONTENT_TYPE),
        ("cache_control", header::CACHE_CONTROL),
        ("etag", header::ETAG),
        ("last_modified", header::LAST_MODIFIED),
        ("expires", header::EXPIRES),
    ] {
        if let Some(value) = header(name) {
            m.insert(key.into(), json!(value));
        }
    }
    // What the cookies set here will cost every later request to the site.
    let cookies: usize = document.headers.get_all(header::SET_COOKIE).iter().map(|v| cookie_pair(v).len()).sum();
    m.insert("cookie_bytes".into(), json!(cookies));
    if document.hops.len() > 1 {
        m.insert("hops".into(), json!(document.hops.iter().map(hop_json).collect::<Vec<_>>()));
    }
    if let Some(report) = subresources {
        let document_bytes: u64 = document.hops.iter().map(|hop| hop.wire_bytes).sum();
        m.insert("page_bytes".into(), json!(document_bytes + report.total.transfer_bytes));
        m.insert("requests".into(), json!(document.hops.len() + report.total.count));
        m.insert("render_blocking".into(), json!(report.render_blocking.count));
        m.insert("subresources".into(), subresources_json(report));
    }
    m.insert(
        "score_rules".into(),
        Value::Array(
            breakdown
                .rules
                .iter()
                .map(|rule| {
                    let mut r = json!({
                        "id": rule.id, "weight": rule.weight, "good": rule.good, "poor": rule.poor,
                        "points": (rule.points * 1000.0).round() / 1000.0,
                    });
                    if rule.applicable {
                        r["value"] = json!(round(rule.value));
                    } else {
                        r["value"] = Value::Null;
                    }
                    r
                })
                .collect(),
        ),
    );
    m
}

/// `name=value` of a `Set-Cookie`: the part the browser sends back.
fn cookie_pair(value: &HeaderValue) -> &[u8] {
    let bytes = value.as_bytes();
    let end = bytes.iter().position(|&b| b == b';').unwrap_or(bytes.len());
    &bytes[..end]
}

fn hop_json(hop: &probe::Hop) -> Value {
    json!({
        "url": hop.url.as_str(),
        "status": hop.status,
        "http_version": hop.http_version,
        "reused_connection": hop.reused_connection,
        "dns_ms": hop.dns_ms.map(round),
        "connect_ms": hop.connect_ms.map(round),
        "tls_ms": hop.tls_ms.map(round),
        "ttfb_ms": round(hop.ttfb_ms),
        "download_ms": round(hop.download_ms),
        "total_ms": round(hop.total_ms),
        "bytes": hop.wire_bytes,
    })
}

fn subresources_json(report: &SubresourceReport) -> Value {
    let by_kind: Map<String, Value> = report
        .by_kind
        .iter()
        .map(|(kind, totals)| {
            let name = serde_json::to_value(kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
            (name, json!({"count": totals.count, "bytes": totals.transfer_bytes}))
        })
        .collect();
    let failures: Vec<Value> = report
        .failures
        .iter()
        .take(LISTED_FAILURES)
        .map(|f| json!({"url": f.url.as_str(), "reason": f.reason}))
        .collect();
    let mut value = json!({
        "count": report.total.count,
        "bytes": report.total.transfer_bytes,
        "by_kind": by_kind,
        "failed": report.failures.len(),
        "failures": failures,
        "render_blocking_bytes": report.render_blocking.transfer_bytes,
        "skipped": report.skipped,
        "cut_off": report.cut_off,
    });
    if let Some(slowest) = &report.slowest {
        value["slowest"] = json!({"url": slowest.url.as_str(), "ms": round(slowest.duration_ms)});
    }
    value
}

#[cfg(test)]
mod retry_after_tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        HeaderMap::from_iter([(header::RETRY_AFTER, HeaderValue::from_str(value).unwrap())])
    }

    #[test]
    fn reads_seconds_or_a_date_and_ignores_the_rest() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-04T12:00:00Z").unwrap().with_timezone(&chrono::Utc);
        assert_eq!(retry_after(&headers("5"), now), Some(Duration::from_secs(5)));
        assert_eq!(retry_after(&headers("Fri, 04 Dec 2026 12:00:30 GMT"), now), Some(Duration::from_secs(30)));
        assert_eq!(retry_after(&headers("Fri, 04 Dec 2026 11:00:00 GMT"), now), Some(Duration::ZERO), "past");
        assert_eq!(retry_after(&headers("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }
}
