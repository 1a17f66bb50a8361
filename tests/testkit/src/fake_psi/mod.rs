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

mod errors;
mod field;
mod report;
mod request;
mod server;
#[cfg(test)]
mod tests;
mod util;

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};
use tokio::task::JoinHandle;

use self::errors::*;
use self::field::*;
use self::report::*;
use self::request::*;
use self::server::*;
use self::util::*;
use crate::google_fake::*;

/// Path of the one endpoint the fake serves, as on `pagespeedonline.googleapis.com`.
pub const RUN_PAGESPEED_PATH: &str = "/pagespeedonline/v5/runPagespeed";

pub(super) const SERVICE: &str = "pagespeedonline.googleapis.com";
pub(super) const PROJECT_NUMBER: &str = "000000000000";

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
        self.shared.lock().accepted_at.iter().map(|(at, _)| *at).collect()
    }

    /// How many of the requests accepted while pages starting with `prefix` were asked for
    /// (from `skip` after the first such request to the `upto`th) were for such pages, and
    /// how many there were in all: one tenant's share of a quota it waited for beside others.
    /// `skip` leaves out the places the others had booked before it came; `upto` ends the
    /// count where its backlog starts to run out.
    pub fn share_of(&self, prefix: &str, skip: Duration, upto: usize) -> Option<(usize, usize)> {
        let log = &self.shared.lock().accepted_at;
        let of = |url: &String| url.starts_with(prefix);
        let first = log.iter().find(|(_, url)| of(url))?.0 + skip;
        let last = log.iter().filter(|(_, url)| of(url)).take(upto.max(1)).last()?.0;
        let contested: Vec<_> = log.iter().filter(|(at, _)| (first..=last).contains(at)).collect();
        Some((contested.iter().filter(|(_, url)| of(url)).count(), contested.len()))
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

/// repository so a checkout anywhere finds it).
/// The real Lighthouse 13 result the fake serves (a copy of `../shared/fixtures`, kept in the
/// The real Lighthouse 13 result the fake serves (a copy of `../shared/fixtures`, kept in the
/// repository so a checkout anywhere finds it).
pub fn lighthouse_fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/lighthouse/sample_v2.json")
}
