//! Fetching a page's subresources concurrently within a time budget, and what they add up to.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use http::Version;
use http::header::{self, HeaderMap};
use serde::Serialize;
use tokio::time::Instant;
use url::Url;

use super::{ResourceKind, Subresource};

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

/// Fetches `list` with at most `concurrency` requests in flight, and at most one to
/// `polite_host` (the page's own host, whose place the analysis holds: its subresources count
/// toward it, so a page is one connection to its site at a time, as [`domain::politeness`]
/// promises the site). No fetch starts once `budget` is spent, and fetches still running then
/// are abandoned, so the call returns within about `budget`.
pub async fn fetch_all<F: Fetch>(
    list: &[Subresource],
    concurrency: usize,
    budget: Duration,
    fetcher: &F,
    polite_host: Option<&str>,
) -> SubresourceReport {
    let deadline = Instant::now() + budget;
    let one_at_a_time = tokio::sync::Semaphore::new(1);
    // Futures are built up front (named async fns rather than a closure over borrowed items,
    // which keeps the returned future `Send`); each checks the deadline when first polled,
    // i.e. when `buffer_unordered` actually starts it.
    let pending: Vec<_> = list
        .iter()
        .enumerate()
        .map(|(index, resource)| {
            let own_host =
                polite_host.is_some() && domain::politeness::host_key(resource.url.as_str()).as_deref() == polite_host;
            fetch_indexed(index, resource, deadline, fetcher, own_host.then_some(&one_at_a_time))
        })
        .collect();
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
    one_at_a_time: Option<&tokio::sync::Semaphore>,
) -> (usize, ResourceResult) {
    // Never closed, so a permit always comes; without one the fetch goes ahead regardless.
    let _turn = match one_at_a_time {
        Some(semaphore) => semaphore.acquire().await.ok(),
        None => None,
    };
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
            result.http_version = Some(crate::http::probe::version_name(fetched.http_version));
            result.content_encoding = fetched
                .headers
                .get(header::CONTENT_ENCODING)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().to_ascii_lowercase())
                .filter(|v| !v.is_empty() && v != "identity");
            result.cache_ttl_secs = cache_ttl_secs(&fetched.headers, SystemTime::now());
            if fetched.status >= 400 {
                result.state = FetchState::Failed;
                result.error = Some(crate::http::status_reason(fetched.status));
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
