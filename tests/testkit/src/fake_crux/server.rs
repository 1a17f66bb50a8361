//! The fake's state: the quota window, statistics, the two endpoints' handler.

use super::*;

pub(super) struct Shared {
    pub(super) started_at: Instant,
    pub(super) latency: Duration,
    pub(super) jitter: Duration,
    pub(super) api_key: Option<String>,
    pub(super) quota: Option<CruxQuota>,
    pub(super) last_date: CruxDate,
    pub(super) rng: AtomicU64,
    pub(super) in_flight: AtomicU32,
    pub(super) peak_in_flight: AtomicU32,
    pub(super) state: Mutex<MutableState>,
}

pub(super) struct MutableState {
    /// Enforcement; never reset.
    pub(super) quota_window: QuotaCounter,
    /// The same window counted since the last stats reset, for `max_in_window`.
    pub(super) stat_window: QuotaCounter,
    /// Arrival of every accepted request, in arrival order.
    pub(super) accepted_at: Vec<Duration>,
    /// Normalized origins (and so all their URLs) without data.
    pub(super) origins_without_data: HashSet<String>,
    pub(super) stats: FakeCruxStats,
}

/// Accepted requests in the current window.
#[derive(Clone, Debug)]
pub(super) enum QuotaCounter {
    /// Windows `[i * window, (i + 1) * window)` from server start.
    Fixed { index: u128, count: u32 },
    /// Arrivals within the last `window`.
    Sliding(VecDeque<Duration>),
}

impl QuotaCounter {
    pub(super) fn new(kind: WindowKind) -> Self {
        match kind {
            WindowKind::Fixed => QuotaCounter::Fixed { index: 0, count: 0 },
            WindowKind::Sliding => QuotaCounter::Sliding(VecDeque::new()),
        }
    }

    /// How many accepted requests count against one arriving at `now`.
    pub(super) fn current(&mut self, now: Duration, window: Duration) -> u32 {
        match self {
            QuotaCounter::Fixed { index, count } => {
                let current = window_index(now, window);
                if *index != current {
                    *index = current;
                    *count = 0;
                }
                *count
            }
            QuotaCounter::Sliding(arrivals) => {
                while arrivals.front().is_some_and(|first| now.saturating_sub(*first) >= window) {
                    arrivals.pop_front();
                }
                u32::try_from(arrivals.len()).unwrap_or(u32::MAX)
            }
        }
    }

    /// Counts a request accepted at `now`; returns the window's new count.
    pub(super) fn add(&mut self, now: Duration, window: Duration) -> u32 {
        self.current(now, window);
        match self {
            QuotaCounter::Fixed { count, .. } => {
                *count += 1;
                *count
            }
            QuotaCounter::Sliding(arrivals) => {
                arrivals.push_back(now);
                u32::try_from(arrivals.len()).unwrap_or(u32::MAX)
            }
        }
    }
}

pub(super) fn window_index(elapsed: Duration, window: Duration) -> u128 {
    // `window` is checked non-zero at start.
    elapsed.as_nanos() / window.as_nanos().max(1)
}

pub(super) enum Decision {
    /// Answered at once: bad key, quota, invalid argument.
    Immediate(ApiError),
    Lookup {
        request: CruxRequest,
        origin_hidden: bool,
        delay: Duration,
        failure: bool,
    },
}

impl Shared {
    pub(super) fn new(config: FakeCruxConfig, addr: SocketAddr) -> Self {
        let seed = config.seed.unwrap_or_else(|| {
            let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
            (nanos as u64) ^ (u64::from(addr.port()) << 48)
        });
        let kind = config.quota.map_or(WindowKind::Fixed, |q| q.kind);
        let origins_without_data = config.origins_without_data.iter().map(|o| hidden_origin_key(o)).collect();
        Shared {
            started_at: Instant::now(),
            latency: config.latency,
            jitter: config.jitter,
            api_key: config.api_key,
            quota: config.quota,
            last_date: config.last_date,
            rng: AtomicU64::new(seed),
            in_flight: AtomicU32::new(0),
            peak_in_flight: AtomicU32::new(0),
            state: Mutex::new(MutableState {
                quota_window: QuotaCounter::new(kind),
                stat_window: QuotaCounter::new(kind),
                accepted_at: Vec::new(),
                origins_without_data,
                stats: FakeCruxStats::default(),
            }),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, MutableState> {
        // Nothing panics while holding the lock; should that change, the counters are still
        // consistent enough to keep serving.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn window_kind(&self) -> WindowKind {
        self.quota.map_or(WindowKind::Fixed, |q| q.kind)
    }

    /// Uniform in `[0, jitter)`; splitmix64 on an atomic keeps it lock-free and reproducible
    /// for a given seed and request order.
    pub(super) fn jitter_sample(&self) -> Duration {
        if self.jitter.is_zero() {
            return Duration::ZERO;
        }
        let state = self.rng.fetch_add(GOLDEN_GAMMA, Ordering::Relaxed).wrapping_add(GOLDEN_GAMMA);
        self.jitter.mul_f64(unit_interval(splitmix64(state)))
    }

    /// Everything before the lookup, under one lock so that admission and counting agree.
    pub(super) fn decide(
        &self,
        endpoint: Endpoint,
        key: Option<&str>,
        parsed: Result<CruxRequest, ApiError>,
        arrived: Duration,
    ) -> Decision {
        let mut guard = self.lock();
        let state = &mut *guard;
        state.stats.requests += 1;
        *state.stats.by_endpoint.entry(endpoint).or_default() += 1;
        if let Ok(request) = &parsed {
            *state.stats.queries.entry(request.query()).or_default() += 1;
        }

        if let Some(expected) = &self.api_key
            && key != Some(expected.as_str())
        {
            state.stats.rejected_key += 1;
            *state.stats.by_status.entry(400).or_default() += 1;
            return Decision::Immediate(api_key_invalid());
        }

        if let Some(quota) = &self.quota {
            if state.quota_window.current(arrived, quota.window) >= quota.limit {
                *state.stats.by_status.entry(429).or_default() += 1;
                return Decision::Immediate(quota_exceeded(quota.limit));
            }
            state.quota_window.add(arrived, quota.window);
            let in_window = state.stat_window.add(arrived, quota.window);
            state.stats.max_in_window = state.stats.max_in_window.max(in_window);
        }
        state.stats.accepted += 1;
        state.accepted_at.push(arrived);

        let request = match parsed {
            Ok(request) => request,
            Err(error) => {
                *state.stats.by_status.entry(400).or_default() += 1;
                return Decision::Immediate(error);
            }
        };
        let origin_hidden = state.origins_without_data.contains(&request.identifier.origin);
        let sent = request.identifier.sent_text();
        let delay = self.latency + marker_number(sent, SLOW_MS).map_or(Duration::ZERO, Duration::from_millis);
        let failure = sent.contains(SERVER_ERROR);
        Decision::Lookup { request, origin_hidden, delay, failure }
    }

    fn record_status(&self, status: u16) {
        *self.lock().stats.by_status.entry(status).or_default() += 1;
    }

    pub(super) async fn handle(
        &self,
        endpoint: Endpoint,
        query: Option<&str>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Response {
        let _in_flight = InFlight::enter(self);
        let arrived = self.started_at.elapsed();
        // Google takes the key from `?key=` or from the `X-Goog-Api-Key` header.
        let key = query
            .and_then(|q| query_param(q, "key"))
            .or_else(|| headers.get("x-goog-api-key").and_then(|v| v.to_str().ok()).map(str::to_owned));
        let parsed = CruxRequest::parse(endpoint, body);
        let (request, origin_hidden, delay, failure) = match self.decide(endpoint, key.as_deref(), parsed, arrived) {
            Decision::Immediate(error) => return error.into_response(),
            Decision::Lookup { request, origin_hidden, delay, failure } => (request, origin_hidden, delay, failure),
        };

        tokio::time::sleep(delay + self.jitter_sample()).await;

        if failure {
            self.record_status(500);
            return internal_error().into_response();
        }
        let body = Subject::find(&request, origin_hidden).and_then(|subject| match endpoint {
            Endpoint::QueryRecord => subject.record(self.last_date),
            Endpoint::QueryHistoryRecord => subject.history(self.last_date),
        });
        match body {
            Some(body) => {
                self.record_status(200);
                json_response(StatusCode::OK, body.to_string())
            }
            None => {
                self.record_status(404);
                not_found().into_response()
            }
        }
    }
}

/// How an origin given to [`FakeCruxConfig::origins_without_data`] is matched: normalized
/// like a request's origin when it is one, else taken as it is.
pub(super) fn hidden_origin_key(origin: &str) -> String {
    normalize_origin(origin).unwrap_or_else(|| origin.to_owned())
}

/// Counts in-flight requests; a `Drop` guard so that a client hanging up mid-lookup (the
/// handler future is dropped) still decrements.
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

pub(super) async fn query_record(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.handle(Endpoint::QueryRecord, query.as_deref(), &headers, &body).await
}

pub(super) async fn query_history_record(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.handle(Endpoint::QueryHistoryRecord, query.as_deref(), &headers, &body).await
}
