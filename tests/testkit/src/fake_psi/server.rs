//! The fake's state: quota windows, statistics, the one endpoint's handler and its decisions.

use super::*;

pub(super) struct Shared {
    pub(super) started_at: Instant,
    pub(super) latency: Duration,
    pub(super) jitter: Duration,
    pub(super) api_key: Option<String>,
    pub(super) quotas: Vec<QuotaWindow>,
    pub(super) fixture: Fixture,
    pub(super) rng: AtomicU64,
    pub(super) in_flight: AtomicU32,
    pub(super) peak_in_flight: AtomicU32,
    pub(super) state: Mutex<MutableState>,
}

pub(super) struct MutableState {
    /// Enforcement counts, one per quota; never reset.
    pub(super) quota_windows: Vec<WindowCount>,
    /// Same windows, counted since the last stats reset, for `max_in_window`.
    pub(super) stat_windows: Vec<WindowCount>,
    pub(super) flaky_seen: HashMap<String, u64>,
    /// Arrival and page of every accepted request, in arrival order.
    pub(super) accepted_at: Vec<(Duration, String)>,
    pub(super) stats: FakePsiStats,
}

#[derive(Clone, Copy, Debug, Default)]
pub(super) struct WindowCount {
    pub(super) index: u128,
    pub(super) count: u32,
}

impl WindowCount {
    pub(super) fn roll_to(&mut self, index: u128) {
        if self.index != index {
            *self = WindowCount { index, count: 0 };
        }
    }
}

impl Shared {
    pub(super) fn new(config: FakePsiConfig, fixture: Fixture, addr: SocketAddr) -> Self {
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

    pub(super) fn lock(&self) -> MutexGuard<'_, MutableState> {
        // Nothing panics while holding the lock; should that ever change,
        // counters are still consistent enough to keep serving.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Uniform in `[0, jitter)`; splitmix64 on an atomic keeps it lock-free
    /// and reproducible for a given seed and request order.
    pub(super) fn jitter_sample(&self) -> Duration {
        if self.jitter.is_zero() {
            return Duration::ZERO;
        }
        let state = self.rng.fetch_add(GOLDEN_GAMMA, Ordering::Relaxed).wrapping_add(GOLDEN_GAMMA);
        self.jitter.mul_f64(unit_interval(splitmix64(state)))
    }

    /// Everything up to the analysis, under one lock so that admission,
    /// counting and `flaky-N` bookkeeping agree.
    pub(super) fn decide(&self, params: &Params, arrived: Duration) -> Decision {
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
        state.accepted_at.push((arrived, params.url.clone().unwrap_or_default()));

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

    pub(super) fn record(&self, outcome: Outcome) {
        let mut state = self.lock();
        match outcome {
            Outcome::Succeeded => state.stats.succeeded += 1,
            Outcome::Injected => state.stats.errors_injected += 1,
            Outcome::Internal => state.stats.internal_errors += 1,
        }
    }

    pub(super) async fn handle(&self, query: &str) -> Response {
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

pub(super) enum Decision {
    /// Answered without analysis: bad key, quota, invalid argument.
    Immediate(ApiError),
    Analyse {
        delay: Duration,
        request: AnalysisRequest,
        failure: Option<ApiError>,
    },
}

pub(super) enum Outcome {
    Succeeded,
    Injected,
    Internal,
}

/// Counts in-flight requests; a `Drop` guard so that a client hanging up
/// mid-analysis (the handler future is dropped) still decrements.
pub(super) struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    pub(super) fn enter(shared: &'a Shared) -> Self {
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

pub(super) async fn run_pagespeed(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    let _in_flight = InFlight::enter(&shared);
    shared.handle(query.as_deref().unwrap_or("")).await
}

pub(super) fn window_index(elapsed: Duration, window: Duration) -> u128 {
    // `window` is checked non-zero at start.
    elapsed.as_nanos() / window.as_nanos().max(1)
}
