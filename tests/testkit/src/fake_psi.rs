//! A local fake of the PageSpeed Insights API v5 (`runPagespeed`).
//!
//! Tests and benchmarks must never call Google, yet they need PSI's real
//! behaviour: multi-second analyses, project quotas answered with 429, invalid
//! keys, Lighthouse failures and transient backend errors. [`FakePsi`] serves
//! all of that from 127.0.0.1, and records what it saw so a benchmark can
//! report throughput as a share of the quota.
//!
//! # Request handling, in order
//! 1. Every request is counted in [`FakePsiStats::requests`] (and in
//!    `per_url` when it carries a `url`).
//! 2. API key: when [`FakePsiConfig::api_key`] is set, a missing or different
//!    `key` gets 400 `API_KEY_INVALID` at once. Google cannot attribute such
//!    a request to a project, so it **does not count against the quota**.
//! 3. Quota: see below. A 429 is answered at once and does not count.
//! 4. Everything past the quota check "reached the API" and counts against the
//!    quota, like at Google — whether it then succeeds, is an invalid argument,
//!    or gets an injected error. These are the *accepted* requests
//!    ([`FakePsi::accepted_timestamps`], [`FakePsiStats::max_in_window`]).
//! 5. Argument validation (`url`, `strategy`, `category`): 400
//!    `INVALID_ARGUMENT`, answered at once.
//! 6. Analysis: sleeps `latency + jitter + slow-MS`, then answers with either
//!    the injected error the URL asks for or the Lighthouse result.
//!
//! # Quota windows
//! Windows are **fixed** and aligned to server start (the same instant as
//! [`FakePsi::started_at`]): window `i` of a quota covers
//! `[i * window, (i + 1) * window)`. A benchmark can therefore map every
//! accepted timestamp to its window exactly. A request is admitted only if
//! every configured quota has room; when several are exhausted, the first one
//! in configuration order is reported. `kind` only picks the names Google uses
//! in the error (so a 1 s window can still be reported as "per minute" in a
//! scaled-down benchmark).
//!
//! # Injected behaviour, chosen by the requested URL
//! | URL contains | answer |
//! |---|---|
//! | `flaky-N` | the first N accepted requests for that exact URL get `server-error`, later ones proceed normally |
//! | `server-error` | 500 `INTERNAL` "Internal error encountered." |
//! | `dns-failure` | 500 Lighthouse `DNS_FAILURE` |
//! | `errored-document-NNN` | 500 Lighthouse `ERRORED_DOCUMENT_REQUEST` with status code NNN (404 and 503 are the usual ones) |
//! | `failed-document` | 500 Lighthouse `FAILED_DOCUMENT_REQUEST` (`net::ERR_TIMED_OUT`) |
//! | `slow-MS` | MS extra milliseconds of latency (combines with the others) |
//! | `no-field-data` | success without CrUX metrics in either loading experience |
//! | `origin-only` | success whose `loadingExperience` is the origin's data with `origin_fallback: true` |
//!
//! A `url` that is not `http(s)://host...` (optionally prefixed `url:` or
//! `origin:`, as Google's pattern allows) gets 400
//! `Invalid value at 'url' (TYPE_STRING), "<url>"`.

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};
use tokio::task::JoinHandle;

/// Path of the one endpoint the fake serves, as on `pagespeedonline.googleapis.com`.
pub const RUN_PAGESPEED_PATH: &str = "/pagespeedonline/v5/runPagespeed";

const SERVICE: &str = "pagespeedonline.googleapis.com";
const PROJECT_NUMBER: &str = "000000000000";
const JSON_CONTENT_TYPE: &str = "application/json; charset=UTF-8";

/// Which of Google's per-project quotas a [`QuotaWindow`] stands for. It
/// decides the names in the 429 body, not the window length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuotaKind {
    PerMinute,
    Per100Seconds,
    PerDay,
}

impl QuotaKind {
    /// The limit name Google puts in the error message, e.g. `Queries per minute`.
    pub fn limit_name(self) -> &'static str {
        match self {
            QuotaKind::PerMinute => "Queries per minute",
            QuotaKind::Per100Seconds => "Queries per 100 seconds",
            QuotaKind::PerDay => "Queries per day",
        }
    }

    /// The `quota_limit` value Google puts in the `ErrorInfo` metadata.
    pub fn quota_limit_id(self) -> &'static str {
        match self {
            QuotaKind::PerMinute => "defaultPerMinutePerProject",
            QuotaKind::Per100Seconds => "defaultPer100SecondsPerProject",
            QuotaKind::PerDay => "defaultPerDayPerProject",
        }
    }

    /// The real length of this kind of window.
    pub fn nominal_window(self) -> Duration {
        match self {
            QuotaKind::PerMinute => Duration::from_secs(60),
            QuotaKind::Per100Seconds => Duration::from_secs(100),
            QuotaKind::PerDay => Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// At most `limit` accepted requests per fixed `window` (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaWindow {
    pub limit: u32,
    pub window: Duration,
    pub kind: QuotaKind,
}

impl QuotaWindow {
    /// A quota with the real window length of `kind`.
    pub fn nominal(kind: QuotaKind, limit: u32) -> Self {
        QuotaWindow { limit, window: kind.nominal_window(), kind }
    }
}

/// How a [`FakePsi`] behaves. Build with [`FakePsiConfig::new`] and struct
/// update syntax: `FakePsiConfig { latency, ..FakePsiConfig::new(path) }`.
#[derive(Clone, Debug)]
pub struct FakePsiConfig {
    /// A Lighthouse result (LHR) JSON file, read once at start.
    pub lighthouse_fixture: PathBuf,
    /// Fixed part of every analysis' duration.
    pub latency: Duration,
    /// Uniform extra in `[0, jitter)` added to every analysis.
    pub jitter: Duration,
    /// Quotas enforced together; empty means unlimited.
    pub quota: Vec<QuotaWindow>,
    /// When set, requests must carry exactly this `key`.
    pub api_key: Option<String>,
    /// Seed of the jitter generator; `None` picks one per server.
    pub seed: Option<u64>,
}

impl FakePsiConfig {
    /// No latency, no quota, no key.
    pub fn new(lighthouse_fixture: impl Into<PathBuf>) -> Self {
        FakePsiConfig {
            lighthouse_fixture: lighthouse_fixture.into(),
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            quota: Vec::new(),
            api_key: None,
            seed: None,
        }
    }
}

/// What the fake has seen since start or the last [`FakePsi::reset_stats`].
///
/// Outcome counters are recorded when the answer is produced, so once every
/// response has been received,
/// `requests == succeeded + rejected_quota + rejected_key + invalid_argument
/// + errors_injected + internal_errors`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FakePsiStats {
    /// Every request to the endpoint.
    pub requests: u64,
    /// Requests that passed the quota check and so counted against it.
    pub accepted: u64,
    /// 200 answers.
    pub succeeded: u64,
    /// 429 answers.
    pub rejected_quota: u64,
    /// 400 `API_KEY_INVALID` answers.
    pub rejected_key: u64,
    /// 400 `INVALID_ARGUMENT` answers for a bad `url`, `strategy` or `category`.
    pub invalid_argument: u64,
    /// 500 answers asked for by the URL (`dns-failure`, `flaky-N`, ...).
    pub errors_injected: u64,
    /// 500 answers caused by a problem in the fake itself; should stay 0.
    pub internal_errors: u64,
    /// For each configured quota, in order: the most accepted requests seen in
    /// any one of its windows.
    pub max_in_window: Vec<u32>,
    /// Requests per `url` parameter, whatever their outcome.
    pub per_url: HashMap<String, u32>,
    /// The most requests in progress at once.
    pub max_concurrent: u32,
}

/// A running fake PSI server; stops when dropped.
pub struct FakePsi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl FakePsi {
    /// Starts the fake on 127.0.0.1 with an OS-chosen port, on the current
    /// tokio runtime.
    ///
    /// # Panics
    /// When [`FakePsi::try_start`] fails: test setup cannot go on without it.
    pub fn start(config: FakePsiConfig) -> FakePsi {
        match Self::try_start(config) {
            Ok(fake) => fake,
            Err(err) => panic!("fake PSI server could not start: {err}"),
        }
    }

    /// Like [`FakePsi::start`], but reports a missing runtime, an unreadable
    /// or malformed fixture, a zero-length quota window or a bind failure.
    pub fn try_start(config: FakePsiConfig) -> io::Result<FakePsi> {
        let runtime = tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
        if let Some(q) = config.quota.iter().find(|q| q.window.is_zero()) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("quota window of {q:?} has zero length")));
        }
        let fixture = Fixture::load(&config.lighthouse_fixture)?;

        let std_listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let listener = {
            let _context = runtime.enter();
            tokio::net::TcpListener::from_std(std_listener)?
        };

        let shared = Arc::new(Shared::new(config, fixture, addr));
        let app = Router::new().route(RUN_PAGESPEED_PATH, get(run_pagespeed)).with_state(Arc::clone(&shared));
        let task = runtime.spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                eprintln!("fake PSI server on {addr} stopped: {err}");
            }
        });
        Ok(FakePsi { addr, shared, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Full URL of `runPagespeed`, to use in place of Google's.
    pub fn endpoint(&self) -> String {
        format!("http://{}{}", self.addr, RUN_PAGESPEED_PATH)
    }

    /// The instant quota windows and accepted timestamps are measured from.
    pub fn started_at(&self) -> Instant {
        self.shared.started_at
    }

    pub fn stats(&self) -> FakePsiStats {
        let mut stats = self.shared.lock().stats.clone();
        stats.max_concurrent = self.shared.peak_in_flight.load(Ordering::SeqCst);
        stats
    }

    /// Arrival time, since [`FakePsi::started_at`], of every accepted request
    /// (see the module docs), in arrival order.
    pub fn accepted_timestamps(&self) -> Vec<Duration> {
        self.shared.lock().accepted_at.clone()
    }

    /// Clears [`FakePsi::stats`] and [`FakePsi::accepted_timestamps`]. Quota
    /// enforcement and `flaky-N` counts are untouched, as Google would not
    /// forget them either; `max_in_window` restarts from the accepted requests
    /// seen after the reset.
    pub fn reset_stats(&self) {
        let mut state = self.shared.lock();
        state.stats = FakePsiStats { max_in_window: vec![0; self.shared.quotas.len()], ..FakePsiStats::default() };
        state.stat_windows = vec![WindowCount::default(); self.shared.quotas.len()];
        state.accepted_at.clear();
        let in_flight = self.shared.in_flight.load(Ordering::SeqCst);
        self.shared.peak_in_flight.store(in_flight, Ordering::SeqCst);
    }
}

impl Drop for FakePsi {
    fn drop(&mut self) {
        // Aborting the accept loop drops the listener and axum's shutdown
        // watch receiver, so open connections finish their current request
        // and close instead of lingering past the test.
        self.task.abort();
    }
}

impl std::fmt::Debug for FakePsi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakePsi").field("endpoint", &self.endpoint()).finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------
// Server state

struct Shared {
    started_at: Instant,
    latency: Duration,
    jitter: Duration,
    api_key: Option<String>,
    quotas: Vec<QuotaWindow>,
    fixture: Fixture,
    rng: AtomicU64,
    in_flight: AtomicU32,
    peak_in_flight: AtomicU32,
    state: Mutex<MutableState>,
}

struct MutableState {
    /// Enforcement counts, one per quota; never reset.
    quota_windows: Vec<WindowCount>,
    /// Same windows, counted since the last stats reset, for `max_in_window`.
    stat_windows: Vec<WindowCount>,
    flaky_seen: HashMap<String, u64>,
    accepted_at: Vec<Duration>,
    stats: FakePsiStats,
}

#[derive(Clone, Copy, Debug, Default)]
struct WindowCount {
    index: u128,
    count: u32,
}

impl WindowCount {
    fn roll_to(&mut self, index: u128) {
        if self.index != index {
            *self = WindowCount { index, count: 0 };
        }
    }
}

impl Shared {
    fn new(config: FakePsiConfig, fixture: Fixture, addr: SocketAddr) -> Self {
        let seed = config.seed.unwrap_or_else(|| {
            let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
            (nanos as u64) ^ (u64::from(addr.port()) << 48)
        });
        let n = config.quota.len();
        Shared {
            started_at: Instant::now(),
            latency: config.latency,
            jitter: config.jitter,
            api_key: config.api_key,
            quotas: config.quota,
            fixture,
            rng: AtomicU64::new(seed),
            in_flight: AtomicU32::new(0),
            peak_in_flight: AtomicU32::new(0),
            state: Mutex::new(MutableState {
                quota_windows: vec![WindowCount::default(); n],
                stat_windows: vec![WindowCount::default(); n],
                flaky_seen: HashMap::new(),
                accepted_at: Vec::new(),
                stats: FakePsiStats { max_in_window: vec![0; n], ..FakePsiStats::default() },
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, MutableState> {
        // Nothing panics while holding the lock; should that ever change,
        // counters are still consistent enough to keep serving.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Uniform in `[0, jitter)`; splitmix64 on an atomic keeps it lock-free
    /// and reproducible for a given seed and request order.
    fn jitter_sample(&self) -> Duration {
        if self.jitter.is_zero() {
            return Duration::ZERO;
        }
        let state = self.rng.fetch_add(GOLDEN_GAMMA, Ordering::Relaxed).wrapping_add(GOLDEN_GAMMA);
        self.jitter.mul_f64(unit_interval(splitmix64(state)))
    }

    /// Everything up to the analysis, under one lock so that admission,
    /// counting and `flaky-N` bookkeeping agree.
    fn decide(&self, params: &Params, arrived: Duration) -> Decision {
        let mut guard = self.lock();
        let state = &mut *guard;
        state.stats.requests += 1;
        if let Some(url) = &params.url {
            *state.stats.per_url.entry(url.clone()).or_default() += 1;
        }

        if let Some(expected) = &self.api_key
            && params.key.as_deref() != Some(expected.as_str())
        {
            state.stats.rejected_key += 1;
            return Decision::Immediate(api_key_invalid());
        }

        let mut exhausted = None;
        for (quota, window) in self.quotas.iter().zip(state.quota_windows.iter_mut()) {
            window.roll_to(window_index(arrived, quota.window));
            if exhausted.is_none() && window.count >= quota.limit {
                exhausted = Some(quota.kind);
            }
        }
        if let Some(kind) = exhausted {
            state.stats.rejected_quota += 1;
            return Decision::Immediate(quota_exceeded(kind));
        }
        for ((quota, window), stat) in
            self.quotas.iter().zip(state.quota_windows.iter_mut()).zip(state.stat_windows.iter_mut())
        {
            window.count += 1;
            stat.roll_to(window_index(arrived, quota.window));
            stat.count += 1;
        }
        for (max, stat) in state.stats.max_in_window.iter_mut().zip(&state.stat_windows) {
            *max = (*max).max(stat.count);
        }
        state.stats.accepted += 1;
        state.accepted_at.push(arrived);

        let request = match AnalysisRequest::from_params(params) {
            Ok(request) => request,
            Err(error) => {
                state.stats.invalid_argument += 1;
                return Decision::Immediate(error);
            }
        };

        let delay = self.latency + marker_number(&request.url, "slow-").map_or(Duration::ZERO, Duration::from_millis);
        let raw_url = params.url.clone().unwrap_or_default();
        let failure = injected_failure(&request.url, || {
            let seen = state.flaky_seen.entry(raw_url).or_default();
            *seen += 1;
            *seen
        });
        Decision::Analyse { delay, request, failure }
    }

    fn record(&self, outcome: Outcome) {
        let mut state = self.lock();
        match outcome {
            Outcome::Succeeded => state.stats.succeeded += 1,
            Outcome::Injected => state.stats.errors_injected += 1,
            Outcome::Internal => state.stats.internal_errors += 1,
        }
    }

    async fn handle(&self, query: &str) -> Response {
        let arrived = self.started_at.elapsed();
        let params = Params::parse(query);
        let (delay, request, failure) = match self.decide(&params, arrived) {
            Decision::Immediate(error) => return error.into_response(),
            Decision::Analyse { delay, request, failure } => (delay, request, failure),
        };

        tokio::time::sleep(delay + self.jitter_sample()).await;

        if let Some(error) = failure {
            self.record(Outcome::Injected);
            return error.into_response();
        }
        let now = SystemTime::now();
        match self.fixture.render(&request, &rfc3339_utc(now)) {
            Ok(body) => {
                self.record(Outcome::Succeeded);
                json_response(StatusCode::OK, body)
            }
            Err(err) => {
                self.record(Outcome::Internal);
                internal_error(&format!("fake PSI could not serialize the result: {err}")).into_response()
            }
        }
    }
}

enum Decision {
    /// Answered without analysis: bad key, quota, invalid argument.
    Immediate(ApiError),
    Analyse {
        delay: Duration,
        request: AnalysisRequest,
        failure: Option<ApiError>,
    },
}

enum Outcome {
    Succeeded,
    Injected,
    Internal,
}

/// Counts in-flight requests; a `Drop` guard so that a client hanging up
/// mid-analysis (the handler future is dropped) still decrements.
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.peak_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn run_pagespeed(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    let _in_flight = InFlight::enter(&shared);
    shared.handle(query.as_deref().unwrap_or("")).await
}

fn window_index(elapsed: Duration, window: Duration) -> u128 {
    // `window` is checked non-zero at start.
    elapsed.as_nanos() / window.as_nanos().max(1)
}

// ---------------------------------------------------------------------------
// Request parsing

/// Query parameters the fake cares about; others (`locale`, `utm_*`,
/// `captchaToken`, `fields`, ...) are accepted and ignored, as at Google.
#[derive(Debug, Default, PartialEq, Eq)]
struct Params {
    url: Option<String>,
    strategy: Option<String>,
    categories: Vec<String>,
    key: Option<String>,
}

impl Params {
    /// Parsed by hand because `category` repeats and axum's `Query` into a
    /// struct keeps only one value; the first `url`, `strategy` and `key` win.
    fn parse(query: &str) -> Params {
        let mut params = Params::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value);
            match percent_decode(name).as_str() {
                "url" => {
                    params.url.get_or_insert(value);
                }
                "strategy" => {
                    params.strategy.get_or_insert(value);
                }
                "key" => {
                    params.key.get_or_insert(value);
                }
                "category" => params.categories.push(value),
                _ => {}
            }
        }
        params
    }
}

/// `application/x-www-form-urlencoded` decoding; malformed escapes are kept
/// literally rather than rejected, which is what lenient servers do.
fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Strategy {
    Mobile,
    Desktop,
}

impl Strategy {
    fn as_str(self) -> &'static str {
        match self {
            Strategy::Mobile => "mobile",
            Strategy::Desktop => "desktop",
        }
    }
}

/// A validated request, ready for analysis.
#[derive(Debug)]
struct AnalysisRequest {
    /// The page URL, without a `url:`/`origin:` prefix.
    url: String,
    strategy: Strategy,
    /// Lighthouse category ids, deduplicated, in request order.
    categories: Vec<&'static str>,
}

impl AnalysisRequest {
    fn from_params(params: &Params) -> Result<AnalysisRequest, ApiError> {
        let raw_url = params.url.as_deref().unwrap_or("");
        let url = page_url(raw_url).ok_or_else(|| invalid_value("url", "TYPE_STRING", raw_url))?.to_owned();

        // PSI analyses mobile unless told otherwise.
        let strategy = match params.strategy.as_deref() {
            None | Some("") => Strategy::Mobile,
            Some(s) if s.eq_ignore_ascii_case("mobile") => Strategy::Mobile,
            Some(s) if s.eq_ignore_ascii_case("desktop") => Strategy::Desktop,
            Some(s) if s.eq_ignore_ascii_case("STRATEGY_UNSPECIFIED") => Strategy::Mobile,
            Some(other) => return Err(invalid_value("strategy", "TYPE_ENUM", other)),
        };

        let mut categories = Vec::new();
        let mut any_given = false;
        for raw in &params.categories {
            let normalized = raw.to_ascii_uppercase().replace('-', "_");
            let id = match normalized.as_str() {
                "PERFORMANCE" => "performance",
                "ACCESSIBILITY" => "accessibility",
                "BEST_PRACTICES" => "best-practices",
                "SEO" => "seo",
                // Still in the API's enum, but Lighthouse 12+ has no PWA
                // category, so there is nothing to return for it.
                "PWA" => {
                    any_given = true;
                    continue;
                }
                "CATEGORY_UNSPECIFIED" | "" => continue,
                _ => return Err(invalid_value("category", "TYPE_ENUM", raw)),
            };
            any_given = true;
            if !categories.contains(&id) {
                categories.push(id);
            }
        }
        if !any_given {
            categories.push("performance");
        }
        Ok(AnalysisRequest { url, strategy, categories })
    }
}

/// The page to analyse, if `raw` matches Google's `(?i)(url:|origin:)?http(s)?://.*`
/// with a non-empty host and no whitespace (which Lighthouse could not load).
fn page_url(raw: &str) -> Option<&str> {
    let url = strip_prefix_ignore_case(raw, "url:").or_else(|| strip_prefix_ignore_case(raw, "origin:")).unwrap_or(raw);
    let rest = strip_prefix_ignore_case(url, "https://").or_else(|| strip_prefix_ignore_case(url, "http://"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || url.chars().any(char::is_whitespace) {
        return None;
    }
    Some(url)
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

/// `scheme://authority` of a URL already accepted by [`page_url`].
fn origin_of(url: &str) -> &str {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let end = url[authority_start..].find(['/', '?', '#']).map_or(url.len(), |i| authority_start + i);
    &url[..end]
}

/// The number after the first `marker` in `url` that is followed by digits.
fn marker_number(url: &str, marker: &str) -> Option<u64> {
    url.match_indices(marker).find_map(|(i, _)| {
        let digits: &str = &url[i + marker.len()..];
        let end = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len());
        digits[..end].parse().ok()
    })
}

/// The injected error `url` asks for, if any. `next_flaky_count` is called
/// only for `flaky-N` URLs and returns how many accepted requests that exact
/// URL has had, this one included.
fn injected_failure(url: &str, next_flaky_count: impl FnOnce() -> u64) -> Option<ApiError> {
    if let Some(failures) = marker_number(url, "flaky-")
        && next_flaky_count() <= failures
    {
        return Some(backend_internal_error());
    }
    if url.contains("server-error") {
        return Some(backend_internal_error());
    }
    if url.contains("dns-failure") {
        return Some(lighthouse_error(
            "Lighthouse returned error: DNS_FAILURE. DNS servers could not resolve the provided domain.",
        ));
    }
    if let Some(status) = marker_number(url, "errored-document-") {
        return Some(lighthouse_error(&format!(
            "Lighthouse returned error: ERRORED_DOCUMENT_REQUEST. {UNABLE_TO_LOAD} (Status code: {status})"
        )));
    }
    if url.contains("failed-document") {
        return Some(lighthouse_error(&format!(
            "Lighthouse returned error: FAILED_DOCUMENT_REQUEST. {UNABLE_TO_LOAD} (Details: net::ERR_TIMED_OUT)"
        )));
    }
    None
}

const UNABLE_TO_LOAD: &str = "Lighthouse was unable to reliably load the page you requested. Make sure you are \
     testing the correct URL and that the server is properly responding to all requests.";

// ---------------------------------------------------------------------------
// Error bodies, in Google's JSON error format

struct ApiError {
    status: StatusCode,
    body: Value,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_response(self.status, self.body.to_string())
    }
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, JSON_CONTENT_TYPE)], body).into_response()
}

fn api_key_invalid() -> ApiError {
    let message = "API key not valid. Please pass a valid API key.";
    ApiError {
        status: StatusCode::BAD_REQUEST,
        body: json!({"error": {
            "code": 400,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": "badRequest"}],
            "status": "INVALID_ARGUMENT",
            "details": [{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": SERVICE},
            }],
        }}),
    }
}

fn quota_exceeded(kind: QuotaKind) -> ApiError {
    let message = format!(
        "Quota exceeded for quota metric 'Queries' and limit '{}' of service '{SERVICE}' for consumer \
         'project_number:{PROJECT_NUMBER}'.",
        kind.limit_name()
    );
    ApiError {
        status: StatusCode::TOO_MANY_REQUESTS,
        body: json!({"error": {
            "code": 429,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": "rateLimitExceeded"}],
            "status": "RESOURCE_EXHAUSTED",
            "details": [{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "RATE_LIMIT_EXCEEDED",
                "domain": "googleapis.com",
                "metadata": {
                    "quota_limit": kind.quota_limit_id(),
                    "quota_metric": format!("{SERVICE}/default"),
                    "service": SERVICE,
                    "consumer": format!("projects/{PROJECT_NUMBER}"),
                },
            }],
        }}),
    }
}

fn invalid_value(field: &str, type_name: &str, value: &str) -> ApiError {
    // The value is quoted the way Google quotes it: as a JSON string literal.
    let quoted = Value::from(value).to_string();
    let message = format!("Invalid value at '{field}' ({type_name}), {quoted}");
    ApiError {
        status: StatusCode::BAD_REQUEST,
        body: json!({"error": {
            "code": 400,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": "badRequest"}],
            "status": "INVALID_ARGUMENT",
            "details": [{
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": field, "description": message}],
            }],
        }}),
    }
}

fn lighthouse_error(message: &str) -> ApiError {
    ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        body: json!({"error": {
            "code": 500,
            "message": message,
            "errors": [{"message": message, "domain": "lighthouse", "reason": "lighthouseUserError"}],
            "status": "INTERNAL",
        }}),
    }
}

fn backend_internal_error() -> ApiError {
    internal_error("Internal error encountered.")
}

fn internal_error(message: &str) -> ApiError {
    ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        body: json!({"error": {
            "code": 500,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": "backendError"}],
            "status": "INTERNAL",
        }}),
    }
}

// ---------------------------------------------------------------------------
// Success body

/// The fixture, split once at start into pre-serialized pieces so that a
/// response is assembled by concatenation: benchmarks fire many requests and
/// the fake must not be what saturates the two cores.
struct Fixture {
    /// `"key":value` for top-level LHR fields that never change.
    constant_fields: Vec<String>,
    config_settings: Map<String, Value>,
    /// Category id -> (serialized category, ids of its audits present in the fixture).
    categories: HashMap<String, (String, Vec<String>)>,
    /// Audit id -> serialized audit.
    audits: HashMap<String, String>,
    approx_len: usize,
}

/// Fields rewritten for every request.
const PER_REQUEST_FIELDS: [&str; 8] = [
    "requestedUrl",
    "finalUrl",
    "finalDisplayedUrl",
    "mainDocumentUrl",
    "fetchTime",
    "configSettings",
    "categories",
    "audits",
];

impl Fixture {
    fn load(path: &std::path::Path) -> io::Result<Fixture> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| io::Error::new(e.kind(), format!("reading Lighthouse fixture {}: {e}", path.display())))?;
        Self::from_json(&text).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidData, format!("Lighthouse fixture {}: {e}", path.display()))
        })
    }

    fn from_json(text: &str) -> Result<Fixture, String> {
        let mut lhr = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err("not a JSON object".into()),
            Err(e) => return Err(format!("invalid JSON: {e}")),
        };
        let Some(Value::Object(audits)) = lhr.remove("audits") else {
            return Err("no `audits` object".into());
        };
        let Some(Value::Object(categories)) = lhr.remove("categories") else {
            return Err("no `categories` object".into());
        };
        let config_settings = match lhr.remove("configSettings") {
            Some(Value::Object(map)) => map,
            _ => Map::new(),
        };
        for field in PER_REQUEST_FIELDS {
            lhr.remove(field);
        }

        let to_json = |v: &Value| serde_json::to_string(v).map_err(|e| e.to_string());
        let mut audit_json = HashMap::with_capacity(audits.len());
        for (id, audit) in &audits {
            audit_json.insert(id.clone(), to_json(audit)?);
        }
        let mut category_json = HashMap::with_capacity(categories.len());
        for (id, category) in &categories {
            // Like Lighthouse with `onlyCategories`, a response carries only
            // the audits its categories reference.
            let audit_ids = category
                .get("auditRefs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|r| r.get("id").and_then(Value::as_str))
                .filter(|id| audits.contains_key(*id))
                .map(str::to_owned)
                .collect();
            category_json.insert(id.clone(), (to_json(category)?, audit_ids));
        }
        let mut constant_fields = Vec::with_capacity(lhr.len());
        for (key, value) in &lhr {
            constant_fields.push(format!("{}:{}", to_json(&Value::from(key.as_str()))?, to_json(value)?));
        }

        let approx_len = constant_fields.iter().map(String::len).sum::<usize>()
            + audit_json.values().map(String::len).sum::<usize>()
            + category_json.values().map(|(json, _)| json.len()).sum::<usize>()
            + 16 * 1024;
        Ok(Fixture { constant_fields, config_settings, categories: category_json, audits: audit_json, approx_len })
    }

    fn config_settings_for(&self, request: &AnalysisRequest) -> Map<String, Value> {
        let mut settings = self.config_settings.clone();
        let form_factor = request.strategy.as_str();
        settings.insert("formFactor".into(), form_factor.into());
        settings.insert("emulatedFormFactor".into(), form_factor.into());
        settings.insert("onlyCategories".into(), request.categories.to_vec().into());
        // Lighthouse's desktop preset, so that a desktop result is not
        // visibly a mobile run with a different label.
        if request.strategy == Strategy::Desktop {
            settings.insert(
                "screenEmulation".into(),
                json!({"mobile": false, "width": 1350, "height": 940, "deviceScaleFactor": 1, "disabled": false}),
            );
            settings.insert(
                "throttling".into(),
                json!({"rttMs": 40, "throughputKbps": 10240, "requestLatencyMs": 0,
                       "downloadThroughputKbps": 0, "uploadThroughputKbps": 0, "cpuSlowdownMultiplier": 1}),
            );
        }
        settings
    }

    fn render(&self, request: &AnalysisRequest, timestamp: &str) -> Result<String, serde_json::Error> {
        let url = serde_json::to_string(&request.url)?;
        let timestamp = serde_json::to_string(timestamp)?;
        let (loading, origin_loading) = loading_experiences(&request.url);

        let mut out = String::with_capacity(self.approx_len);
        out.push_str(r#"{"captchaResult":"CAPTCHA_NOT_NEEDED","kind":"pagespeedonline#result","id":"#);
        out.push_str(&url);
        out.push_str(r#","loadingExperience":"#);
        out.push_str(&serde_json::to_string(&loading)?);
        out.push_str(r#","originLoadingExperience":"#);
        out.push_str(&serde_json::to_string(&origin_loading)?);

        out.push_str(r#","lighthouseResult":{"#);
        for field in ["requestedUrl", "finalUrl", "finalDisplayedUrl", "mainDocumentUrl"] {
            out.push('"');
            out.push_str(field);
            out.push_str("\":");
            out.push_str(&url);
            out.push(',');
        }
        out.push_str(r#""fetchTime":"#);
        out.push_str(&timestamp);
        out.push_str(r#","configSettings":"#);
        out.push_str(&serde_json::to_string(&self.config_settings_for(request))?);

        out.push_str(r#","categories":{"#);
        let mut audit_ids = BTreeSet::new();
        let kept = request.categories.iter().filter_map(|id| Some((*id, self.categories.get(*id)?)));
        for (i, (id, (json, audits))) in kept.enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&serde_json::to_string(id)?);
            out.push(':');
            out.push_str(json);
            audit_ids.extend(audits.iter().map(String::as_str));
        }
        out.push_str(r#"},"audits":{"#);
        let audits = audit_ids.into_iter().filter_map(|id| Some((id, self.audits.get(id)?)));
        for (i, (id, json)) in audits.enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&serde_json::to_string(id)?);
            out.push(':');
            out.push_str(json);
        }
        out.push('}');
        for field in &self.constant_fields {
            out.push(',');
            out.push_str(field);
        }
        out.push_str(r#"},"analysisUTCTimestamp":"#);
        out.push_str(&timestamp);
        out.push('}');
        Ok(out)
    }
}

// ---------------------------------------------------------------------------
// Field data (CrUX), deterministic per URL so runs are reproducible

/// (name, p75 at or below which it is FAST, at or below which AVERAGE, plausible p75 range).
const FIELD_METRICS: [(&str, u64, u64, u64, u64); 5] = [
    ("LARGEST_CONTENTFUL_PAINT_MS", 2500, 4000, 900, 6000),
    // CrUX reports CLS multiplied by 100.
    ("CUMULATIVE_LAYOUT_SHIFT_SCORE", 10, 25, 0, 40),
    ("INTERACTION_TO_NEXT_PAINT", 200, 500, 60, 700),
    ("FIRST_CONTENTFUL_PAINT_MS", 1800, 3000, 600, 4500),
    ("EXPERIMENTAL_TIME_TO_FIRST_BYTE", 800, 1800, 200, 2600),
];

/// The metrics Google derives `overall_category` from (the Core Web Vitals).
const CORE_WEB_VITALS: [&str; 3] =
    ["LARGEST_CONTENTFUL_PAINT_MS", "CUMULATIVE_LAYOUT_SHIFT_SCORE", "INTERACTION_TO_NEXT_PAINT"];

fn loading_experiences(url: &str) -> (Value, Value) {
    if url.contains("no-field-data") {
        return (json!({"initial_url": url}), json!({"initial_url": url}));
    }
    let origin = origin_of(url);
    let (origin_metrics, origin_overall) = crux_record(origin);
    let origin_loading = json!({
        "id": origin,
        "metrics": origin_metrics,
        "overall_category": origin_overall,
        "initial_url": url,
    });
    let loading = if url.contains("origin-only") {
        json!({
            "id": origin,
            "metrics": origin_loading["metrics"],
            "overall_category": origin_overall,
            "initial_url": url,
            "origin_fallback": true,
        })
    } else {
        let (metrics, overall) = crux_record(url);
        json!({"id": url, "metrics": metrics, "overall_category": overall, "initial_url": url})
    };
    (loading, origin_loading)
}

/// Metrics and overall category for `key`, stable across runs.
fn crux_record(key: &str) -> (Value, &'static str) {
    let seed = fnv1a(key);
    let mut metrics = Map::new();
    let mut overall = "FAST";
    for (i, &(name, good, poor, lo, hi)) in FIELD_METRICS.iter().enumerate() {
        let metric = crux_metric(seed ^ (i as u64 + 1).wrapping_mul(GOLDEN_GAMMA), good, poor, lo, hi);
        if CORE_WEB_VITALS.contains(&name) && severity(metric.category) > severity(overall) {
            overall = metric.category;
        }
        let [good_share, ni_share, poor_share] = metric.proportions;
        metrics.insert(
            name.into(),
            json!({
                "percentile": metric.p75,
                "distributions": [
                    {"min": 0, "max": good, "proportion": good_share},
                    {"min": good, "max": poor, "proportion": ni_share},
                    {"min": poor, "proportion": poor_share},
                ],
                "category": metric.category,
            }),
        );
    }
    (Value::Object(metrics), overall)
}

fn severity(category: &str) -> u8 {
    match category {
        "FAST" => 0,
        "AVERAGE" => 1,
        _ => 2,
    }
}

/// A p75 in `[lo, hi]` and good/needs-improvement/poor proportions consistent
/// with it: FAST means at least 75% good, SLOW means under 75% not poor.
struct CruxMetric {
    p75: u64,
    /// Good, needs-improvement, poor; rounded to 4 decimals like CrUX.
    proportions: [f64; 3],
    category: &'static str,
}

fn crux_metric(seed: u64, good: u64, poor: u64, lo: u64, hi: u64) -> CruxMetric {
    let h0 = unit_interval(splitmix64(seed));
    let h1 = unit_interval(splitmix64(seed.wrapping_add(1)));
    let h2 = unit_interval(splitmix64(seed.wrapping_add(2)));
    let p75 = lo + ((hi - lo) as f64 * h0).round() as u64;
    let (category, good_share, ni_share) = if p75 <= good {
        let g = 0.75 + 0.2 * h1;
        ("FAST", g, (1.0 - g) * (0.5 + 0.3 * h2))
    } else if p75 <= poor {
        let g = 0.40 + 0.34 * h1;
        ("AVERAGE", g, (0.76 - g) + 0.12 * h2)
    } else {
        let g = 0.25 + 0.3 * h1;
        ("SLOW", g, (0.74 - g) * (0.3 + 0.6 * h2))
    };
    let round4 = |x: f64| (x * 10_000.0).round() / 10_000.0;
    let g = round4(good_share);
    let ni = round4(ni_share);
    let p = round4((1.0 - g - ni).max(0.0));
    CruxMetric { p75, proportions: [g, ni, p], category }
}

// ---------------------------------------------------------------------------
// Small utilities

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

fn splitmix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Maps 64 random bits to `[0, 1)`.
fn unit_interval(bits: u64) -> f64 {
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xCBF2_9CE4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3))
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, the form of PSI's `analysisUTCTimestamp`.
fn rfc3339_utc(t: SystemTime) -> String {
    let since_epoch = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = since_epoch.as_secs();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since_epoch.subsec_millis()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The real Lighthouse 13 result the fake serves (a copy of `../shared/fixtures`, kept in the
/// repository so a checkout anywhere finds it).
pub fn lighthouse_fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/lighthouse/sample_v2.json")
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            keys(&body["lighthouseResult"]["categories"]),
            BTreeSet::from(["best-practices".into(), "seo".into()])
        );

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
                "Lighthouse returned error: DNS_FAILURE. DNS servers could not resolve the provided domain."
                    .to_string(),
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
        let fake =
            FakePsi::start(FakePsiConfig { latency, jitter: Duration::from_millis(50), seed: Some(7), ..config() });
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
        let mut refused = false;
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(addr).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(refused, "server still accepting on {addr} after drop");
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
}
