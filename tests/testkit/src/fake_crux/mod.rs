//! A local fake of the Chrome UX Report API (`records:queryRecord`) and the CrUX History API
//! (`records:queryHistoryRecord`).
//!
//! Tests never call Google, yet field data needs the API's real behaviour: records for a URL
//! or only for its origin, 404 for pages without data, a per-minute quota answered with 429,
//! invalid keys and bodies. [`FakeCrux`] serves all of that from 127.0.0.1 with the real
//! response shapes, and counts what it saw so tests can assert on the calls made.
//!
//! ```ignore
//! let crux = FakeCrux::start(FakeCruxConfig { api_key: Some("k".into()), ..FakeCruxConfig::new() });
//! // POST {crux.record_endpoint()}?key=k  {"url": "https://example.com/", "formFactor": "PHONE"}
//! assert_eq!(crux.stats().for_url("https://example.com/"), 1);
//! ```
//!
//! # Request handling, in order
//! 1. Every request is counted ([`FakeCruxStats::requests`], `by_endpoint`), and in
//!    [`FakeCruxStats::queries`] when its body is valid.
//! 2. API key: when [`FakeCruxConfig::api_key`] is set, a missing or different key (`?key=`, or
//!    the `X-Goog-Api-Key` header) gets 400 `API_KEY_INVALID` at once. It does **not** count
//!    against the quota: Google cannot tell whose project it is.
//! 3. Quota (see below), one budget for both endpoints. A 429 is answered at once and does not
//!    count.
//! 4. Everything past the quota check counts against it, like at Google, whatever comes next:
//!    these are the *accepted* requests ([`FakeCrux::accepted_timestamps`]).
//! 5. Body validation: 400 `INVALID_ARGUMENT` at once (see below).
//! 6. Lookup: sleeps `latency + jitter (+ crux-slow-MS)`, then answers 200 with the record, or
//!    404 `NOT_FOUND` "chrome ux report data not found".
//!
//! # Request bodies
//! JSON with exactly one of `url` or `origin`, optional `formFactor` (`PHONE`, `DESKTOP`,
//! `TABLET`, or `ALL_FORM_FACTORS` = absent = all together), optional `metrics` (names to
//! return; unknown names are ignored, and when nothing asked for is there the answer is 404),
//! and for the history `collectionPeriodCount` (1 to 40, default 25; a number or a decimal
//! string, as proto3 JSON allows). Proto field names (`form_factor`, ...) are accepted too;
//! `effectiveConnectionType` is accepted and ignored; `null` and `""` mean unset, as in proto3.
//! Refused with 400: not JSON, an unknown field (Google's `Unknown name "x": Cannot find field.`;
//! `collectionPeriodCount` is unknown to queryRecord), a wrong type, an unknown form factor
//! (Google's exact `Invalid value at 'form_factor' (type.googleapis.com/google.chrome.uxreport.v1.FormFactor), "MOBILE"`),
//! both or neither identifier, a count out of range, a URL that is not `http(s)://host...`, an
//! origin with a path. The messages of the last four are the fake's own wording (Google does
//! not document them); status, code and envelope are Google's.
//!
//! # URL normalization
//! Like CrUX (observed: `https://github.com/marketplace?type=actions` is keyed
//! `https://github.com/marketplace`, `https://www.gov.uk` is keyed `https://www.gov.uk/`), a URL
//! is keyed by its lowercased scheme and host (without a default port) and its path, with
//! **the whole query and the fragment dropped** and `/` for an empty path. When that changes the URL, the answer carries
//! `urlNormalizationDetails {originalUrl, normalizedUrl}` and `record.key.url` is the normalized
//! one. An origin is lowercased and loses a default port and one trailing `/` (Google answers
//! `"origin": "https://glitch.com/"` with the key `https://glitch.com`), without
//! `urlNormalizationDetails`.
//!
//! # Data
//! Deterministic per normalized identifier and form factor (a hash; nothing depends on the
//! server, the seed or time), plausible, DESKTOP faster than PHONE for the timings, histogram
//! densities that agree with the p75; see `data.rs`. A record carries the five histogram
//! metrics (LCP, INP, CLS, FCP, TTFB; CLS bins and p75 as strings with two decimals), plus
//! `navigation_types` and `largest_contentful_paint_resource_type` (`fractions`),
//! `largest_contentful_paint_image_time_to_first_byte` (`percentiles` only), and
//! `form_factors` when no form factor was asked for. `collectionPeriod` is the 28 days ending
//! [`FakeCruxConfig::last_date`]. A history has the same metrics as `histogramTimeseries`
//! (`densities` arrays), `percentilesTimeseries.p75s` and `fractionTimeseries`, and
//! `collectionPeriods`: 28-day periods a week apart, oldest first, the newest ending on
//! `last_date`. Its newest week is exactly the queryRecord answer; older weeks wander a few
//! percent a week from it. Asking for fewer weeks gives the newest ones of the longer series.
//!
//! # Behaviour chosen by the identifier
//! Markers are looked for in the identifier **as sent** (URL or origin). A URL's origin request
//! carries only the origin, so a marker reaches the origin only when it is in the host (or
//! list the origin in [`FakeCruxConfig::origins_without_data`], e.g. for a local site on
//! `127.0.0.1`).
//!
//! | identifier contains | answer |
//! |---|---|
//! | `no-field-data` | 404 (URL or origin); in the host, e.g. `https://no-field-data.example/a`, the URL and its origin both 404 |
//! | `origin-only` | 404 for a URL; its origin (without the marker) has a record |
//! | `no-inp` | a record and history without `interaction_to_next_paint` |
//! | `slow-field` | every histogram metric's p75 poor, in every form factor and week |
//! | `sparse-history` | history weeks more than 10 weeks before the newest have `null` p75s and `"NaN"` densities/fractions |
//! | `crux-slow-MS` | MS extra milliseconds of latency |
//! | `crux-server-error` | 500 `INTERNAL` "Internal error encountered." (after the latency; counts against the quota) |
//!
//! An origin in [`FakeCruxConfig::origins_without_data`] (or added with
//! [`FakeCrux::add_origin_without_data`]) has no data, and neither has any URL on it.
//!
//! # Quota and time scaling
//! [`CruxQuota`]: at most `limit` accepted requests per `window`, counted across both
//! endpoints; Google's is 150 per minute per project, the default. [`WindowKind::Fixed`]
//! (default) windows are aligned to server start ([`FakeCrux::started_at`]): window `i` covers
//! `[i * window, (i + 1) * window)`, so a benchmark can map each accepted timestamp to its
//! window. [`WindowKind::Sliding`] admits a request when fewer than `limit` were accepted in the
//! `window` before it. **Time scaling**: the window is only a length, so a bench runs the quota
//! `k` times faster with `CruxQuota::per_minute(150).time_scaled(k)` (150 per `60 s / k`); the
//! 429 still names "Queries per minute", as Google's would. `quota: None` is unlimited.

mod data;
mod errors;
pub mod local;
mod request;
mod server;
#[cfg(test)]
mod tests;
mod util;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Map, Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use self::data::*;
use self::errors::*;
use self::request::*;
use self::server::*;
use self::util::*;
use crate::google_fake::*;

/// Path of `records:queryRecord`, as on `chromeuxreport.googleapis.com`.
pub const QUERY_RECORD_PATH: &str = "/v1/records:queryRecord";
/// Path of `records:queryHistoryRecord`.
pub const QUERY_HISTORY_RECORD_PATH: &str = "/v1/records:queryHistoryRecord";
/// Google's CrUX quota: queries per minute per project, both endpoints together.
pub const GOOGLE_QUOTA_PER_MINUTE: u32 = 150;
/// Weeks in a history when `collectionPeriodCount` is not given.
pub const DEFAULT_COLLECTION_PERIODS: u32 = 25;
/// The most weeks a history may ask for.
pub const MAX_COLLECTION_PERIODS: u32 = 40;

/// The identifier markers (see the module docs).
pub const NO_FIELD_DATA: &str = "no-field-data";
pub const ORIGIN_ONLY: &str = "origin-only";
pub const NO_INP: &str = "no-inp";
pub const SLOW_FIELD: &str = "slow-field";
pub const SPARSE_HISTORY: &str = "sparse-history";
/// Followed by milliseconds: `crux-slow-250`.
pub const SLOW_MS: &str = "crux-slow-";
pub const SERVER_ERROR: &str = "crux-server-error";

pub(super) const SERVICE: &str = "chromeuxreport.googleapis.com";
pub(super) const PROJECT_NUMBER: &str = "000000000000";

/// Far more than a test ever opens at once: a short accept queue drops SYNs under a burst,
/// and the client then waits a retransmission (1 s and more) that no real server would cost.
/// (`std`'s and tokio's `bind` listen with 128.) The kernel caps it at `net.core.somaxconn`.
const BACKLOG: u32 = 4096;

/// The two endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Endpoint {
    QueryRecord,
    QueryHistoryRecord,
}

impl Endpoint {
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::QueryRecord => QUERY_RECORD_PATH,
            Endpoint::QueryHistoryRecord => QUERY_HISTORY_RECORD_PATH,
        }
    }
}

/// CrUX's form factors; "all form factors" is `None` wherever one is optional.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FormFactor {
    Phone,
    Desktop,
    Tablet,
}

impl FormFactor {
    /// The API's name: `PHONE`, `DESKTOP`, `TABLET`.
    pub fn as_str(self) -> &'static str {
        match self {
            FormFactor::Phone => "PHONE",
            FormFactor::Desktop => "DESKTOP",
            FormFactor::Tablet => "TABLET",
        }
    }
}

/// What a request looked up, exactly as its body spelled it (before normalization).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Identifier {
    Url(String),
    Origin(String),
}

/// One kind of request, as counted in [`FakeCruxStats::queries`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Query {
    pub endpoint: Endpoint,
    pub identifier: Identifier,
    /// `None`: all form factors (absent or `ALL_FORM_FACTORS`).
    pub form_factor: Option<FormFactor>,
}

/// How a [`CruxQuota`]'s window moves (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WindowKind {
    /// Back-to-back windows aligned to server start.
    #[default]
    Fixed,
    /// The `window` before each request.
    Sliding,
}

/// At most `limit` accepted requests per `window`, both endpoints together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CruxQuota {
    pub limit: u32,
    pub window: Duration,
    pub kind: WindowKind,
}

impl CruxQuota {
    /// `limit` per real minute, fixed windows.
    pub fn per_minute(limit: u32) -> Self {
        CruxQuota { limit, window: Duration::from_secs(60), kind: WindowKind::Fixed }
    }

    /// The same quota with time running `factor` times faster: the window divided by `factor`
    /// (`per_minute(150).time_scaled(60)` is 150 per second).
    pub fn time_scaled(self, factor: u32) -> Self {
        CruxQuota { window: self.window / factor.max(1), ..self }
    }

    pub fn sliding(self) -> Self {
        CruxQuota { kind: WindowKind::Sliding, ..self }
    }
}

impl Default for CruxQuota {
    /// Google's: 150 per minute.
    fn default() -> Self {
        CruxQuota::per_minute(GOOGLE_QUOTA_PER_MINUTE)
    }
}

/// A calendar date, as CrUX writes one (`{"year", "month", "day"}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct CruxDate {
    pub year: i32,
    pub month: u32,
    pub day: u32,
}

/// How a [`FakeCrux`] behaves. Build with struct update syntax:
/// `FakeCruxConfig { latency, ..FakeCruxConfig::new() }`.
#[derive(Clone, Debug)]
pub struct FakeCruxConfig {
    /// When set, requests must carry exactly this key; `None` accepts any key or none.
    pub api_key: Option<String>,
    /// `None`: unlimited. Default: Google's 150 per minute.
    pub quota: Option<CruxQuota>,
    /// Fixed part of every lookup's duration (200 and 404 answers; errors are immediate).
    pub latency: Duration,
    /// Uniform extra in `[0, jitter)` added to every lookup.
    pub jitter: Duration,
    /// Seed of the jitter generator, for a reproducible sequence of delays; `None` picks one
    /// per server. (The data never depends on it.)
    pub seed: Option<u64>,
    /// Last day of the current collection period (and of the newest history week).
    pub last_date: CruxDate,
    /// Origins CrUX knows nothing about (nor any URL on them): `scheme://host[:port]`.
    pub origins_without_data: Vec<String>,
    /// The port on 127.0.0.1 to listen on; 0 (the default) lets the OS choose. A deployed
    /// stack calls the fake at a fixed address ([`local::for_local_stack`]).
    pub port: u16,
}

impl FakeCruxConfig {
    /// Any key, Google's quota, no latency, periods ending 2026-11-28.
    pub fn new() -> Self {
        FakeCruxConfig {
            api_key: None,
            quota: Some(CruxQuota::default()),
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            seed: None,
            last_date: CruxDate { year: 2026, month: 11, day: 28 },
            origins_without_data: Vec::new(),
            port: 0,
        }
    }
}

impl Default for FakeCruxConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// What the fake has seen since start or the last [`FakeCrux::reset_stats`].
///
/// Statuses are counted when the answer is produced, so once every response has been
/// received, `requests` is the sum of `by_status`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FakeCruxStats {
    /// Every request to either endpoint.
    pub requests: u64,
    pub by_endpoint: BTreeMap<Endpoint, u64>,
    /// Answers by HTTP status: 200, 404, 429, 400 (key or body), 500 (`crux-server-error`).
    pub by_status: BTreeMap<u16, u64>,
    /// The 400s that were `API_KEY_INVALID` (the rest of `by_status[400]` are bad bodies).
    pub rejected_key: u64,
    /// Requests that passed the key and quota checks and so counted against the quota.
    pub accepted: u64,
    /// The most accepted requests in one quota window (0 without a quota).
    pub max_in_window: u32,
    /// The most requests in progress at once.
    pub max_concurrent: u32,
    /// Requests with a valid body, whatever their outcome, by endpoint, identifier as sent
    /// and form factor.
    pub queries: BTreeMap<Query, u32>,
}

impl FakeCruxStats {
    /// Answers with HTTP `status`.
    pub fn status(&self, status: u16) -> u64 {
        self.by_status.get(&status).copied().unwrap_or(0)
    }

    pub fn endpoint(&self, endpoint: Endpoint) -> u64 {
        self.by_endpoint.get(&endpoint).copied().unwrap_or(0)
    }

    /// Valid requests for exactly this endpoint, identifier and form factor.
    pub fn count(&self, endpoint: Endpoint, identifier: &Identifier, form_factor: Option<FormFactor>) -> u32 {
        let query = Query { endpoint, identifier: identifier.clone(), form_factor };
        self.queries.get(&query).copied().unwrap_or(0)
    }

    /// Valid requests for `identifier` on both endpoints, in every form factor.
    pub fn for_identifier(&self, identifier: &Identifier) -> u32 {
        self.queries.iter().filter(|(q, _)| q.identifier == *identifier).map(|(_, n)| n).sum()
    }

    /// [`FakeCruxStats::for_identifier`] of `Identifier::Url(url)`, `url` as sent.
    pub fn for_url(&self, url: &str) -> u32 {
        self.for_identifier(&Identifier::Url(url.to_owned()))
    }

    /// [`FakeCruxStats::for_identifier`] of `Identifier::Origin(origin)`, `origin` as sent.
    pub fn for_origin(&self, origin: &str) -> u32 {
        self.for_identifier(&Identifier::Origin(origin.to_owned()))
    }
}

/// A running fake CrUX server; shuts down gracefully when dropped.
pub struct FakeCrux {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    _task: JoinHandle<()>,
}

impl FakeCrux {
    /// Starts the fake on 127.0.0.1 with an OS-chosen port, on the current tokio runtime.
    ///
    /// # Panics
    /// When [`FakeCrux::try_start`] fails: test setup cannot go on without it.
    pub fn start(config: FakeCruxConfig) -> FakeCrux {
        match Self::try_start(config) {
            Ok(fake) => fake,
            Err(err) => panic!("fake CrUX server could not start: {err}"),
        }
    }

    /// Like [`FakeCrux::start`], but reports a missing runtime, a zero-length quota window or
    /// a bind failure.
    pub fn try_start(config: FakeCruxConfig) -> io::Result<FakeCrux> {
        let runtime = tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
        if let Some(quota) = config.quota.filter(|q| q.window.is_zero()) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{quota:?} has a zero-length window")));
        }

        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.bind((Ipv4Addr::LOCALHOST, config.port).into())?;
        let listener = {
            let _context = runtime.enter();
            socket.listen(BACKLOG)?
        };
        let addr = listener.local_addr()?;

        let shared = Arc::new(Shared::new(config, addr));
        let app = Router::new()
            .route(QUERY_RECORD_PATH, post(query_record))
            .route(QUERY_HISTORY_RECORD_PATH, post(query_history_record))
            .with_state(Arc::clone(&shared));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = runtime.spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                // A dropped sender stops the server as well as a sent signal.
                let _ = stopped.await;
            });
            if let Err(err) = serve.await {
                eprintln!("fake CrUX server on {addr} stopped: {err}");
            }
        });
        Ok(FakeCrux { addr, shared, stop: Some(stop), _task: task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, in place of `https://chromeuxreport.googleapis.com`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/v1`, in place of `https://chromeuxreport.googleapis.com/v1` (the
    /// form of the engine's `CRUX_ENDPOINT`, to which `/records:queryRecord` is appended).
    pub fn api_url(&self) -> String {
        format!("{}/v1", self.base_url())
    }

    /// Full URL of `endpoint`, without the key.
    pub fn endpoint(&self, endpoint: Endpoint) -> String {
        format!("{}{}", self.base_url(), endpoint.path())
    }

    /// Full URL of `records:queryRecord`.
    pub fn record_endpoint(&self) -> String {
        self.endpoint(Endpoint::QueryRecord)
    }

    /// Full URL of `records:queryHistoryRecord`.
    pub fn history_endpoint(&self) -> String {
        self.endpoint(Endpoint::QueryHistoryRecord)
    }

    /// The instant quota windows and accepted timestamps are measured from.
    pub fn started_at(&self) -> Instant {
        self.shared.started_at
    }

    pub fn stats(&self) -> FakeCruxStats {
        let mut stats = self.shared.lock().stats.clone();
        stats.max_concurrent = self.shared.peak_in_flight.load(Ordering::SeqCst);
        stats
    }

    /// Arrival time, since [`FakeCrux::started_at`], of every accepted request (both
    /// endpoints), in arrival order.
    pub fn accepted_timestamps(&self) -> Vec<Duration> {
        self.shared.lock().accepted_at.clone()
    }

    /// From now on, `origin` (`scheme://host[:port]`) and every URL on it have no data.
    pub fn add_origin_without_data(&self, origin: &str) {
        self.shared.lock().origins_without_data.insert(hidden_origin_key(origin));
    }

    /// Clears [`FakeCrux::stats`] and [`FakeCrux::accepted_timestamps`]. Quota enforcement is
    /// untouched, as Google would not forget it either; `max_in_window` restarts from the
    /// requests accepted after the reset.
    pub fn reset_stats(&self) {
        let mut state = self.shared.lock();
        state.stats = FakeCruxStats::default();
        state.stat_window = QuotaCounter::new(self.shared.window_kind());
        state.accepted_at.clear();
        let in_flight = self.shared.in_flight.load(Ordering::SeqCst);
        self.shared.peak_in_flight.store(in_flight, Ordering::SeqCst);
    }
}

impl Drop for FakeCrux {
    fn drop(&mut self) {
        // Graceful: the accept loop stops and drops the listener at once; open connections
        // finish the request they are serving and close.
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl std::fmt::Debug for FakeCrux {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeCrux").field("base_url", &self.base_url()).finish_non_exhaustive()
    }
}
