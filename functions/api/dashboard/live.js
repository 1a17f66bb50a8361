// Live job progress: a WebSocket subscription where the deployment offers one (SPEC §6.5),
// polling GET progress/{id} with If-None-Match for every job the socket does not cover.
//
// The two never overlap for a job: a job is polled only while no open socket has confirmed a
// subscription that covers it (its id, or "*"). So a socket that cannot connect, closes before
// confirming, or refuses a subscription leaves its jobs to the poller, and the poller steps
// back as soon as a socket confirms again.

/** How often an uncovered job is asked for (the route answers 304 while nothing changed). */
export const POLL_MS = 1000;
const MAX_POLL_MS = 30000;
/** Reconnect backoff: doubles from the first to the last, with jitter so tabs spread out. */
const RECONNECT_FIRST_MS = 1000;
const RECONNECT_MAX_MS = 60000;
/** A socket that stayed up this long earns a fresh backoff when it closes (API Gateway closes
 *  idle connections after 10 minutes and every connection after 2 hours). */
const STABLE_MS = 30000;
/** A subscribe left unanswered this long means the socket does not work: close it. */
const REPLY_TIMEOUT_MS = 5000;
/** A socket nobody needs is closed after this long (a new watch may follow a navigation). */
const IDLE_CLOSE_MS = 30000;
/** Error codes that say nothing about the connection, only about the one subscription. */
const SUBSCRIPTION_ERRORS = new Set(['not_found', 'too_many_subscriptions', 'bad_request']);

const FINISHED = new Set(['completed', 'completed_with_errors', 'failed', 'cancelled']);

export function isFinished(job) {
  return Boolean(job) && FINISHED.has(job.status);
}

/**
 * One WebSocket to the live-progress API, with its subscriptions. Subscribes one target at a
 * time: the protocol's error frames need not name the job, so the answer always belongs to the
 * one subscription in flight.
 */
export class LiveSocket {
  /**
   * url: the WebSocket URL ('' when the deployment has none). apiKey(): the key to subscribe
   * with (sent in the first message, never in the URL). onProgress(job): a progress frame.
   * onChange(): coverage changed (connected, subscribed, closed).
   */
  constructor({ url, apiKey, onProgress, onChange }) {
    this.url = url;
    this.apiKey = apiKey;
    this.onProgress = onProgress;
    this.onChange = onChange;
    this.socket = null;
    this.state = url ? 'idle' : 'off'; // off | idle | connecting | open | waiting
    this.wanted = new Set();
    this.subs = new Map(); // target -> 'pending' | 'subscribed' | 'refused'
    this.queue = [];
    this.inFlight = null;
    this.replyTimer = null;
    this.reconnectTimer = null;
    this.idleTimer = null;
    this.backoff = RECONNECT_FIRST_MS;
    this.openedAt = 0;
    this.lastProblem = '';
    // Whether the last socket worked (confirmed a subscription): null before any try. Says
    // how updates would come while the page follows no job.
    this.healthy = null;
    this.confirmed = false;
  }

  get available() {
    return this.state !== 'off';
  }

  /** Whether an open socket has confirmed a subscription that covers job `id`. */
  covers(id) {
    if (this.state !== 'open') return false;
    return this.subs.get('*') === 'subscribed' || this.subs.get(id) === 'subscribed';
  }

  /** Whether subscribing may still succeed (the page then waits instead of saying "polling"). */
  pending() {
    return this.state === 'connecting' || (this.state === 'open' && (this.inFlight !== null || this.queue.length > 0));
  }

  /** The targets ('*' or job ids) the page needs now; the socket follows. */
  setWanted(targets) {
    if (!this.available) return;
    this.wanted = new Set(targets);
    if (this.wanted.size === 0) {
      if (!this.idleTimer && (this.socket || this.reconnectTimer)) {
        this.idleTimer = setTimeout(() => this.close('idle'), IDLE_CLOSE_MS);
      }
      return;
    }
    clearTimeout(this.idleTimer);
    this.idleTimer = null;
    if (this.state === 'idle') this.connect();
    else if (this.state === 'open') this.enqueueMissing();
  }

  connect() {
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    if (!this.apiKey()) { this.state = 'idle'; return; }
    let socket;
    try {
      socket = new WebSocket(this.url);
    } catch (err) {
      // A malformed URL throws at once; treat it like a refused connection.
      this.lastProblem = `the live-updates address could not be used (${err.message})`;
      this.healthy = false;
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    this.state = 'connecting';
    this.confirmed = false;
    this.subs.clear();
    this.queue = [];
    this.inFlight = null;
    socket.addEventListener('open', () => {
      if (this.socket !== socket) return;
      this.state = 'open';
      this.openedAt = Date.now();
      this.enqueueMissing();
      this.onChange();
    });
    socket.addEventListener('message', (event) => {
      if (this.socket === socket) this.receive(event.data);
    });
    socket.addEventListener('close', (event) => {
      if (this.socket !== socket) return;
      this.lastProblem = event.code === 1000 || event.code === 1001 ? 'the live connection closed'
        : `the live connection closed (code ${event.code}${event.reason ? `: ${event.reason}` : ''})`;
      // Closed before it ever confirmed a subscription: it does not work (yet).
      if (!this.confirmed) this.healthy = false;
      this.dropSocket();
      this.scheduleReconnect();
    });
    this.onChange();
  }

  enqueueMissing() {
    for (const target of this.wanted) {
      if (!this.subs.has(target)) {
        this.subs.set(target, 'pending');
        this.queue.push(target);
      }
    }
    this.sendNext();
  }

  sendNext() {
    if (this.inFlight !== null || this.state !== 'open') return;
    const target = this.queue.shift();
    if (target === undefined) return;
    this.inFlight = target;
    try {
      this.socket.send(JSON.stringify({ action: 'subscribe', api_key: this.apiKey(), batch_job_id: target }));
    } catch {
      this.fail('the live connection could not send');
      return;
    }
    this.replyTimer = setTimeout(() => this.fail('the live service did not answer a subscription'), REPLY_TIMEOUT_MS);
  }

  receive(data) {
    let frame;
    try { frame = JSON.parse(data); } catch { return; } // not ours
    if (!frame || typeof frame !== 'object') return;
    if (frame.type === 'progress') {
      const job = frame.job;
      if (job && typeof job === 'object' && typeof job.batch_job_id === 'string') this.onProgress(job);
      return;
    }
    if (frame.type !== 'subscribed' && frame.type !== 'error') return;
    const target = typeof frame.batch_job_id === 'string' && this.subs.has(frame.batch_job_id)
      ? frame.batch_job_id : this.inFlight;
    if (target === this.inFlight) {
      clearTimeout(this.replyTimer);
      this.inFlight = null;
    }
    if (frame.type === 'subscribed') {
      if (target !== null) this.subs.set(target, 'subscribed');
      this.confirmed = true;
      this.healthy = true;
    } else if (SUBSCRIPTION_ERRORS.has(frame.code)) {
      // This job only: it is polled (and a job that is really gone answers 404 there).
      if (target !== null) this.subs.set(target, 'refused');
    } else {
      // unauthorized or anything unknown: this connection cannot be trusted with any job.
      this.fail(`the live service refused: ${frame.message || frame.code || 'no reason given'}`);
      return;
    }
    this.onChange();
    this.sendNext();
  }

  /** Gives the socket up (its jobs are polled) and tries again later. */
  fail(problem) {
    this.lastProblem = problem;
    this.healthy = false;
    const socket = this.socket;
    this.dropSocket();
    try { socket?.close(4000, 'client gave up'); } catch { /* already closed */ }
    this.scheduleReconnect();
  }

  dropSocket() {
    clearTimeout(this.replyTimer);
    if (this.state === 'open' && Date.now() - this.openedAt >= STABLE_MS) this.backoff = RECONNECT_FIRST_MS;
    this.socket = null;
    this.subs.clear();
    this.queue = [];
    this.inFlight = null;
    this.state = 'waiting';
    this.onChange();
  }

  scheduleReconnect() {
    this.state = 'waiting';
    if (this.wanted.size === 0) { this.state = 'idle'; this.onChange(); return; }
    const jitter = 0.8 + Math.random() * 0.4;
    const delay = Math.round(this.backoff * jitter);
    this.backoff = Math.min(this.backoff * 2, RECONNECT_MAX_MS);
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
    this.onChange();
  }

  /** Closes the socket and forgets everything (a forgotten key, an idle page). */
  close(reason = 'reset') {
    clearTimeout(this.idleTimer);
    clearTimeout(this.reconnectTimer);
    this.idleTimer = null;
    this.reconnectTimer = null;
    const socket = this.socket;
    this.socket = null;
    clearTimeout(this.replyTimer);
    this.subs.clear();
    this.queue = [];
    this.inFlight = null;
    if (this.available) this.state = 'idle';
    if (reason === 'reset') {
      this.wanted.clear();
      this.backoff = RECONNECT_FIRST_MS;
    }
    try { socket?.close(1000, reason); } catch { /* already closed */ }
    this.onChange();
  }
}

/**
 * Keeps watched jobs fresh: from the socket where it covers them, else by polling, once a
 * second while any uncovered job is unfinished. List rows and views share one entry per job,
 * so a job is never asked for twice.
 */
export class JobTracker {
  /**
   * fetchProgress(id, etag) -> { status, data, etag }: GET progress/{id}; it throws errors
   * with .status (404 drops the job; others back off). onStatus(job, before): a job changed
   * status. onMode(): the way updates arrive may have changed.
   */
  constructor({ fetchProgress, live, canPoll, onStatus, onMode }) {
    this.fetchProgress = fetchProgress;
    this.live = live;
    this.canPoll = canPoll;
    this.onStatus = onStatus;
    this.onMode = onMode;
    this.entries = new Map(); // id -> { job, etag, listeners: Map<listener, target>, inFlight }
    this.timer = null;
    this.delay = POLL_MS;
    this.paused = false;
    this.covered = new Set();
    this.ticking = false;
  }

  /**
   * Follows job `id`; listener(job, before) on every change. target: the subscription that
   * covers it ('*' for lists of jobs, which one subscription serves, else the job's id).
   */
  watch(id, listener, job = null, { target = id } = {}) {
    let entry = this.entries.get(id);
    if (!entry) {
      entry = { job, etag: null, listeners: new Map(), inFlight: null };
      this.entries.set(id, entry);
    } else if (job && !entry.job) {
      entry.job = job;
    }
    entry.listeners.set(listener, target);
    this.refresh();
    return () => {
      entry.listeners.delete(listener);
      if (entry.listeners.size === 0 && this.entries.get(id) === entry) this.entries.delete(id);
      this.refresh();
    };
  }

  /** The last state seen of a watched job, or null. */
  current(id) {
    return this.entries.get(id)?.job || null;
  }

  /** Whether the socket covers job `id` now (no poll is needed for it). */
  isLive(id) {
    return Boolean(this.live?.covers(id));
  }

  /** A job got some other way (a cancel's answer, a progress frame). */
  update(job, { etag = null } = {}) {
    const entry = this.entries.get(job.batch_job_id);
    if (entry) this.apply(entry, job, etag);
  }

  apply(entry, job, etag) {
    const before = entry.job;
    // Frames are in order per job, but a poll answered late, or a frame after a poll, must not
    // take a finished job back to running.
    if (isFinished(before) && !isFinished(job)) return;
    entry.job = job;
    entry.etag = etag; // a state from the socket has no ETag: the next poll asks in full
    if (before && before.status !== job.status) this.onStatus(job, before);
    for (const listener of [...entry.listeners.keys()]) listener(job, before);
    this.refresh();
  }

  /** Fetches a watched job now; concurrent callers share one request. */
  fetchNow(id) {
    const entry = this.entries.get(id);
    if (!entry) return Promise.resolve(null);
    if (entry.inFlight) return entry.inFlight;
    entry.inFlight = (async () => {
      try {
        const { status, data, etag } = await this.fetchProgress(id, entry.etag);
        if (status !== 304 && this.entries.get(id) === entry) this.apply(entry, data, etag);
        return entry.job;
      } finally {
        entry.inFlight = null;
      }
    })();
    return entry.inFlight;
  }

  /** Unfinished watched jobs: what needs following at all. */
  activeIds() {
    return [...this.entries].filter(([, e]) => e.listeners.size && !isFinished(e.job)).map(([id]) => id);
  }

  /** The subscriptions the unfinished watched jobs need. */
  wantedTargets() {
    const targets = new Set();
    for (const id of this.activeIds()) {
      for (const target of this.entries.get(id).listeners.values()) targets.add(target);
    }
    return targets;
  }

  /** Unfinished watched jobs no socket covers: what the poller asks for. */
  pollIds() {
    return this.activeIds().filter((id) => !this.isLive(id));
  }

  /** How updates arrive now: 'live', 'connecting' or 'polling'. With nothing to follow, whether
   *  live updates are there to be had. */
  mode() {
    if (!this.live?.available) return 'polling';
    const active = this.activeIds();
    if (active.length === 0) return this.live.healthy === false ? 'polling' : 'live';
    if (active.every((id) => this.isLive(id))) return 'live';
    return this.live.pending() ? 'connecting' : 'polling';
  }

  /** Recomputes what the socket should subscribe and what the poller asks for. */
  refresh() {
    if (this.live) this.live.setWanted(this.paused ? [] : this.wantedTargets());
    const covered = new Set(this.activeIds().filter((id) => this.isLive(id)));
    // A job the socket just stopped covering may have changed meanwhile: ask at once.
    const lost = [...this.covered].some((id) => !covered.has(id) && this.entries.has(id));
    this.covered = covered;
    if (lost) { this.pause(false); this.schedule(0); } else this.schedule();
    this.onMode();
  }

  schedule(delay = this.delay) {
    // While a round is out, its end schedules the next one (with its backoff).
    if (this.timer || this.ticking || this.paused || !this.canPoll()) return;
    if (this.pollIds().length === 0) return;
    this.timer = setTimeout(() => this.tick(), delay);
  }

  async tick() {
    this.timer = null;
    this.ticking = true;
    let failure = null;
    try {
      await eachLimited(this.pollIds(), 4, async (id) => {
        if (this.isLive(id)) return; // the socket took over while others were asked
        try {
          await this.fetchNow(id);
        } catch (err) {
          if (err.status === 404) this.entries.delete(id); // the job is gone; stop asking
          else failure = err;
        }
      });
    } finally {
      this.ticking = false;
    }
    if (failure) {
      if (failure.status === 401) return; // the key panel takes over
      // Back off on throttling and outages instead of hammering the API.
      this.delay = Math.min(Math.max(this.delay * 2, (failure.retryAfter || 0) * 1000), MAX_POLL_MS);
    } else {
      this.delay = POLL_MS;
    }
    this.schedule();
  }

  /** Stops polling (a background tab); stopSocket also lets the socket go idle. */
  pause(stopSocket = true) {
    clearTimeout(this.timer);
    this.timer = null;
    if (stopSocket) {
      this.paused = true;
      this.live?.setWanted([]);
    }
  }

  resume() {
    this.pause(false);
    this.paused = false;
    this.refresh();
    this.schedule(0);
  }

  stopAll() {
    this.pause(false);
    this.entries.clear();
    this.covered.clear();
    this.live?.close('reset');
    this.onMode();
  }
}

/** Runs fn over items with at most `limit` calls in flight. */
export async function eachLimited(items, limit, fn) {
  const queue = [...items];
  const workers = Array.from({ length: Math.min(limit, queue.length) }, async () => {
    while (queue.length) await fn(queue.shift());
  });
  await Promise.all(workers);
}
