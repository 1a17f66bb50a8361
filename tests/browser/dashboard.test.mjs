// End-to-end test of the speedbatch dashboard in a real browser (Debian's Chromium driven by
// playwright-core), against a deployed API: the local stack written by `make up`.
//
//   node --test tests/browser/dashboard.test.mjs      (or scripts/browser-test.sh)
//
// The API comes from .local/stack.env (API_URL, API_KEY) at the repository root, or from the
// environment (SPEEDBATCH_API_URL, SPEEDBATCH_API_KEY). The test starts its own small web
// site on 127.0.0.1 for the analyzer to measure, so the local deployment must allow private
// targets (it does). Chromium: $CHROMIUM_PATH or /usr/bin/chromium. Screenshots and the
// downloaded CSV go to tests/browser/artifacts/.
//
// The steps build on each other (one job is submitted, watched, opened, downloaded; live
// progress is followed over the deployment's WebSocket, a stand-in one and a refused one; a
// monitor is run twice for its page, a URL's history, a distribution and a comparison); when a
// step fails, the steps that need its result are skipped and say why. Every wait is on a DOM
// (or site) condition with a generous limit; nothing asserts on timings. The live step needs
// the deployment's WebSocket API (WS_URL); without it, it fails and says so.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import { chromium } from 'playwright-core';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, '..', '..');
const STACK_ENV = join(REPO, '.local', 'stack.env');
const ARTIFACTS = join(HERE, 'artifacts');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

const PAGES = 10; // /page/1 … /page/10: the job that runs to the end
const SLOW_PAGES = 20; // /slow/1 … /slow/20: the job that is cancelled
const SLOW_MS = 2000; // how long each slow page takes
const INVALID = 'ftp://example.com/x'; // one input the dry run must reject
const JOB_WAIT_MS = 120_000; // a job reaching 100 %, a cancel taking effect
const UI_WAIT_MS = 30_000; // anything else the page has to do
const GATE_MAX_MS = 60_000; // the site never holds a page longer than this
const FINISHED = new Set(['completed', 'completed_with_errors', 'failed', 'cancelled']);
const API_PATH = '/api/v1/batch-processing/';
// The Core Web Vitals verdicts of real users as the page words them (format.js FIELD_VERDICT_WORDS).
const FIELD_VERDICT_WORDS = { good: 'Good', needs_improvement: 'Needs improvement', poor: 'Poor', unavailable: 'Unavailable' };
// The page's own files (routes/dashboard.rs serves these): the styles, app.js and the modules it imports.
const DASHBOARD_FILES = ['styles.css', 'app.js', 'live.js', 'charts.js', 'api.js', 'dom.js', 'format.js', 'links.js',
  'messages.js', 'tracker.js', 'job-row.js', 'figures.js', 'view-jobs.js', 'view-job.js', 'view-monitors.js',
  'view-history.js', 'view-distribution.js', 'view-compare.js'];

// ------------------------------------------------------------------ configuration

function parseEnvFile(text) {
  const vars = {};
  for (const line of text.split(/\r?\n/)) {
    const match = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (!match || line.trimStart().startsWith('#')) continue;
    vars[match[1]] = match[2].replace(/^(['"])(.*)\1$/, '$2');
  }
  return vars;
}

/** API base URL without a trailing slash, and the key. */
function readConfig() {
  let url = process.env.SPEEDBATCH_API_URL;
  let key = process.env.SPEEDBATCH_API_KEY;
  if (!url || !key) {
    if (!existsSync(STACK_ENV)) {
      throw new Error(`${STACK_ENV} does not exist and SPEEDBATCH_API_URL/SPEEDBATCH_API_KEY are not set: `
        + 'run "make up" first to deploy the local stack');
    }
    const vars = parseEnvFile(readFileSync(STACK_ENV, 'utf8'));
    url ||= vars.API_URL;
    key ||= vars.API_KEY;
  }
  if (!url) throw new Error(`no API_URL in ${STACK_ENV} (nor SPEEDBATCH_API_URL): run "make up"`);
  if (!key) throw new Error(`no API_KEY in ${STACK_ENV} (nor SPEEDBATCH_API_KEY): run "make up"`);
  if (!/^https?:\/\//.test(url)) throw new Error(`API_URL is not an http(s) address: ${url}`);
  return { apiBase: url.replace(/\/+$/, ''), apiKey: key };
}

// ------------------------------------------------------------------ the site to measure

// A 16x16 PNG (one colour), so every page has a real image to fetch.
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAIAAACQkWg2AAAAGElEQVR42mNk+M9AEmAc1TCqYVTDcNUAAHv2Hv8WZ5jOAAAAAElFTkSuQmCC',
  'base64');
const CSS = 'body{font:16px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:40rem;color:#222}'
  + 'h1{color:#0b57d0}img{display:block}\n';

function pageHtml(title, n) {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<link rel="stylesheet" href="/static/site.css">
</head>
<body>
<h1>${title}</h1>
<img src="/static/logo.png" width="16" height="16" alt="logo">
<p>Page ${n} of the speedbatch browser test site.</p>
</body>
</html>
`;
}

/**
 * Holds requests for some paths until opened, so the first job can be photographed while it
 * is part-way done. It opens by itself GATE_MAX_MS after it first holds a request.
 */
class Gate {
  constructor(paths) {
    this.paths = new Set(paths);
    this.isOpen = false;
    this.held = 0;
    this.waiters = [];
    this.timer = null;
  }

  pass(path) {
    if (this.isOpen || !this.paths.has(path)) return Promise.resolve();
    this.held += 1;
    this.timer ??= setTimeout(() => this.open(), GATE_MAX_MS);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  open() {
    this.isOpen = true;
    clearTimeout(this.timer);
    for (const resolve of this.waiters.splice(0)) resolve();
  }
}

/** The test's own web site on 127.0.0.1 at a free port. */
async function startSite() {
  // Pages 6..10 wait at the gate: with the default batch size of 5 the job shows 50 % until
  // the running screenshot is taken.
  const gate = new Gate(Array.from({ length: PAGES - 5 }, (_, i) => `/page/${i + 6}`));
  const hits = new Map();
  const timers = new Set();
  const send = (res, status, type, body) => {
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'public, max-age=3600' });
    res.end(body);
  };
  const server = http.createServer(async (req, res) => {
    const path = new URL(req.url, 'http://site').pathname;
    hits.set(path, (hits.get(path) || 0) + 1);
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain', 'method not allowed\n');
    let match;
    if ((match = /^\/page\/(\d+)$/.exec(path)) && +match[1] >= 1 && +match[1] <= PAGES) {
      await gate.pass(path);
      return send(res, 200, 'text/html; charset=utf-8', pageHtml(`Test page ${match[1]}`, match[1]));
    }
    if ((match = /^\/slow\/(\d+)$/.exec(path)) && +match[1] >= 1 && +match[1] <= SLOW_PAGES) {
      const timer = setTimeout(() => {
        timers.delete(timer);
        send(res, 200, 'text/html; charset=utf-8', pageHtml(`Slow page ${match[1]}`, match[1]));
      }, SLOW_MS);
      timers.add(timer);
      req.on('close', () => { clearTimeout(timer); timers.delete(timer); });
      return undefined;
    }
    if (path === '/static/site.css') return send(res, 200, 'text/css; charset=utf-8', CSS);
    if (path === '/static/logo.png') return send(res, 200, 'image/png', PNG);
    return send(res, 404, 'text/plain', 'not found\n');
  });
  await new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', ok);
  });
  const origin = `http://127.0.0.1:${server.address().port}`;
  return {
    origin,
    gate,
    hits,
    count: (prefix) => [...hits].filter(([p]) => p.startsWith(prefix)).reduce((sum, [, n]) => sum + n, 0),
    pageUrls: Array.from({ length: PAGES }, (_, i) => `${origin}/page/${i + 1}`),
    slowUrls: Array.from({ length: SLOW_PAGES }, (_, i) => `${origin}/slow/${i + 1}`),
    async close() {
      gate.open();
      for (const timer of timers) clearTimeout(timer);
      server.closeAllConnections();
      await new Promise((ok) => server.close(ok));
    },
  };
}

// ------------------------------------------------------------------ shared state

const cfg = { apiBase: '', apiKey: '' };
const state = {
  setupError: null,
  served: false, // GET <API_URL>/ is the dashboard
  keyAccepted: false,
  dryRunOk: false,
  job1: null, // id of the 10-page job
  job1Done: false,
  resultsShown: false,
  monitor: null, // { id, runs: [older, newer], urls }: a monitor run twice, for its page, history and compare
  monitorToDelete: null, // the monitor the test created, deleted when it ends
  screenshots: [],
};
let site;
let browser;
let context;
let page;
const pageErrors = [];
const consoleErrors = [];
const apiRequests = [];
const dryRunAnswers = []; // what the API answered to the page's dry runs, for failure messages

/** Skips the test (and says why) unless every named earlier result is there. */
function needs(t, ...keys) {
  if (state.setupError) {
    if (!state.setupReported) {
      state.setupReported = true;
      throw new Error(`setup failed: ${state.setupError.message}`);
    }
    t.skip('setup failed (see the first test)');
    return false;
  }
  const missing = keys.filter((k) => !state[k]);
  if (missing.length === 0) return true;
  t.skip(`needs an earlier step that did not pass (${missing.join(', ')})`);
  return false;
}

async function screenshot(t, name, { fullPage = true } = {}) {
  const path = join(ARTIFACTS, name);
  await page.screenshot({ path, fullPage });
  state.screenshots.push(path);
  t.diagnostic(`screenshot: ${relative(process.cwd(), path)}`);
  return path;
}

/** One line describing what the page shows, for failure messages. */
async function pageState() {
  if (!page || page.isClosed()) return '(no page)';
  try {
    return await page.evaluate(() => {
      const shown = (id) => {
        const node = document.getElementById(id);
        if (!node || !node.checkVisibility()) return null;
        const text = (node.value ?? node.textContent).trim().replace(/\s+/g, ' ');
        return text ? text.slice(0, 240) : null;
      };
      const parts = {
        view: location.hash || '(no hash)',
        error: shown('error-message'),
        notice: shown('notice-message'),
        key: shown('key-message'),
        'dry run': shown('dry-run'),
        'job status': shown('job-status'),
        counts: shown('job-counts'),
        results: shown('results-count'),
      };
      return Object.entries(parts).filter(([, v]) => v).map(([k, v]) => `${k}: ${v}`).join(' | ');
    });
  } catch (err) {
    return `(could not read the page: ${err.message.split('\n')[0]})`;
  }
}

/**
 * Polls probe() until it returns something truthy (and returns that). probe may throw to
 * fail at once. failOnError: stop as soon as the page's error banner is shown.
 */
async function waitFor(what, timeoutMs, probe, { failOnError = false } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastProblem = '';
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
      lastProblem = '';
    } catch (err) {
      if (err.fatal) throw err;
      lastProblem = ` (last probe error: ${err.message.split('\n')[0]})`;
    }
    if (failOnError) {
      const banner = await visibleErrorBanner().catch(() => null);
      if (banner) throw new Error(`the page shows an error while waiting for ${what}: ${banner}`);
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}${lastProblem}.\n`
        + `    the page shows: ${await pageState()}`);
    }
    await delay(250);
  }
}

function fatal(message) {
  return Object.assign(new Error(message), { fatal: true });
}

/** Runs fn in a page context: a small wrapper so probes read well. */
const dom = (fn, arg) => page.evaluate(fn, arg);

/** The error banner's message and details, or null when it is not shown. */
async function visibleErrorBanner() {
  return dom(() => {
    if (document.getElementById('error').hidden) return null;
    const words = (id) => document.getElementById(id).textContent.trim().replace(/\s+/g, ' ');
    return [words('error-message'), words('error-details')].filter(Boolean).join(' / ');
  });
}

async function openHome() {
  if (await page.locator('#view-job').isVisible()) {
    await page.locator('#view-job a[href="#/"]').click();
  } else {
    await page.evaluate(() => { location.hash = '#/'; });
  }
  await waitFor('the home view (new job form and jobs list)', UI_WAIT_MS, () => dom(() => {
    const shown = (id) => document.getElementById(id)?.checkVisibility();
    return shown('view-home') && shown('urls') && !shown('jobs-loading');
  }));
}

/** The job row in the jobs list: progress, status badge, counts. */
function jobRowState(id) {
  return dom((jobId) => {
    const row = [...document.querySelectorAll('#jobs [data-job-id]')].find((li) => li.dataset.jobId === jobId);
    if (!row) return null;
    const bar = row.querySelector('.job-progress');
    return {
      percent: bar ? Number(bar.getAttribute('aria-valuenow')) : NaN,
      status: row.querySelector('.badge')?.dataset.status || '',
      counts: row.querySelector('.job-counts')?.textContent.trim() || '',
    };
  }, id);
}

/** The job page's header and result rows. */
function jobPageState() {
  return dom(() => {
    const rows = [...document.querySelectorAll('#results tbody tr')].map((tr) => {
      const pill = tr.cells[2]?.querySelector('.score');
      const link = tr.cells[0]?.querySelector('a');
      return {
        url: link ? link.getAttribute('href') : tr.cells[0]?.textContent.trim(),
        status: tr.cells[1]?.querySelector('.badge')?.dataset.status || '',
        score: pill ? pill.firstChild.textContent.trim() : null,
        // PageSpeed's rating classes, which only a performance score may wear.
        rated: pill ? ['score-good', 'score-average', 'score-poor'].some((c) => pill.classList.contains(c)) : false,
        delivery: pill ? pill.classList.contains('score-delivery') : false,
      };
    });
    return {
      hash: location.hash,
      id: document.getElementById('job-id').textContent.trim(),
      status: document.getElementById('job-status').dataset.status || '',
      percent: Number(document.getElementById('job-progress').getAttribute('aria-valuenow')),
      counts: document.getElementById('job-counts').textContent.trim(),
      cancelShown: !document.getElementById('cancel').hidden,
      cancelEnabled: !document.getElementById('cancel').disabled,
      rows,
      resultsCount: document.getElementById('results-count').textContent.trim(),
      emptyShown: !document.getElementById('results-empty').hidden,
      emptyText: document.getElementById('results-empty').textContent.trim(),
    };
  });
}

/** The job page's field data, row by row: the verdict pill and the weekly LCP sparkline (its
 *  role and the name its title gives it), found by their columns' headers. */
function fieldRowsState() {
  return dom(() => {
    const headers = [...document.querySelectorAll('#results thead th')];
    const column = (words) => headers.findIndex((th) => th.textContent.replace(/[▲▼↕]/g, '').trim() === words);
    const [verdictAt, trendAt] = [column('Field (real users)'), column('Field LCP by week')];
    const verdictKey = (pill) => [...pill.classList].find((c) => c.startsWith('verdict-') && c !== 'verdict-small')?.slice('verdict-'.length) ?? null;
    return {
      headers: { verdict: verdictAt >= 0 && !headers[verdictAt].hidden, trend: trendAt >= 0 && !headers[trendAt].hidden },
      lab: headers.filter((th) => th.hasAttribute('data-lab-col') && !th.hidden).map((th) => th.textContent.replace(/[▲▼↕]/g, '').trim()),
      rows: [...document.querySelectorAll('#results tbody tr')].map((tr) => {
        const pill = tr.cells[verdictAt]?.querySelector('.field-verdict');
        const svg = tr.cells[trendAt]?.querySelector('svg');
        return {
          url: tr.cells[0]?.querySelector('a')?.getAttribute('href') ?? tr.cells[0]?.textContent.trim(),
          verdict: pill ? pill.textContent.trim() : null,
          verdictKey: pill ? verdictKey(pill) : null,
          sparkline: svg ? {
            role: svg.getAttribute('role'),
            name: document.getElementById(svg.getAttribute('aria-labelledby') || '')?.textContent.trim() ?? null,
            shown: svg.checkVisibility(),
            drawn: svg.querySelectorAll('polyline, circle').length > 0,
          } : null,
        };
      }),
    };
  });
}

/** Until the results table has the API's answer drawn (loadResults marks it busy meanwhile). */
function resultsSettled(what) {
  return waitFor(what, UI_WAIT_MS, () => dom(() => !document.getElementById('results').hasAttribute('aria-busy')), { failOnError: true });
}

/** Waits for the dry run of the URL list to settle; returns what the page shows. */
async function dryRunResult() {
  return waitFor('the dry run of the pasted URLs', UI_WAIT_MS, () => dom(() => {
    const box = document.getElementById('dry-run');
    if (['idle', 'pending'].includes(box.dataset.state)) return null;
    return {
      state: box.dataset.state,
      text: box.textContent.trim(),
      rejected: [...document.querySelectorAll('#rejected li')].map((li) => ({
        input: li.querySelector('code')?.textContent ?? '',
        text: li.textContent.trim(),
      })),
      rejectedBoxShown: document.getElementById('rejected-box').checkVisibility(),
      submitEnabled: !document.getElementById('submit').disabled,
      submitHint: document.getElementById('submit-hint').textContent.trim(),
    };
  }));
}

/** Clicks submit; returns the new job's id (from the #/jobs/<id> route) and the request body. */
async function submitJob() {
  const startRequest = page.waitForRequest((r) => r.method() === 'POST' && r.url().endsWith(`${API_PATH}start`)
    && r.postDataJSON()?.dry_run !== true, { timeout: UI_WAIT_MS });
  await page.locator('#submit').click();
  const body = (await startRequest).postDataJSON();
  const hash = await waitFor('the page to open the new job (#/jobs/<id>)', UI_WAIT_MS,
    () => dom(() => (/^#\/jobs\/[^/]+/.test(location.hash) ? location.hash : null)), { failOnError: true });
  const id = decodeURIComponent(hash.slice('#/jobs/'.length).replace(/\/$/, ''));
  const notice = await waitFor('the "job started" notice', UI_WAIT_MS, () => dom(() => (
    document.getElementById('notice').hidden ? null
      : document.getElementById('notice-message').textContent.trim().replace(/\s+/g, ' '))));
  return { id, body, notice };
}

/** Minimal RFC 4180 reader: quoted cells, doubled quotes, line breaks inside quotes. */
function parseCsv(text) {
  const records = [];
  let record = [];
  let cell = '';
  let quoted = false;
  const endCell = () => { record.push(cell); cell = ''; };
  const endRecord = () => { endCell(); records.push(record); record = []; };
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quoted) {
      if (c !== '"') cell += c;
      else if (text[i + 1] === '"') { cell += '"'; i += 1; } else quoted = false;
    } else if (c === '"') {
      quoted = true;
    } else if (c === ',') {
      endCell();
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i += 1;
      endRecord();
    } else {
      cell += c;
    }
  }
  if (cell !== '' || record.length > 0) endRecord();
  return records.filter((r) => !(r.length === 1 && r[0] === ''));
}

// ------------------------------------------------------------------ the API, live progress, views

/** A call to the API as a client makes it (not through the page): { status, headers, body }. */
async function api(path, { method = 'GET', body } = {}) {
  const response = await fetch(`${cfg.apiBase}${API_PATH}${path}`, {
    method,
    headers: { 'x-api-key': cfg.apiKey, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(UI_WAIT_MS),
  });
  const text = await response.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: response.status, headers: response.headers, body: json, text };
}

/** Starts a job through the API; returns its id. */
async function startJob(body) {
  const answer = await api('start', { method: 'POST', body: { engine: 'http', ...body } });
  assert.equal(answer.status, 201, `POST start answered ${answer.status}: ${answer.text.slice(0, 300)}`);
  return answer.body.batch_job_id;
}

/** Waits, through the API, for a job to finish; returns it. */
async function jobFinished(id) {
  return waitFor(`job ${id} to finish (through the API)`, JOB_WAIT_MS, async () => {
    const { status, body } = await api(`progress/${encodeURIComponent(id)}`);
    if (status !== 200) throw new Error(`GET progress answered ${status}`);
    return FINISHED.has(body.status) ? body : null;
  });
}

/** What the page at <API_URL>/ was told about the live-progress socket (its meta tag). */
async function servedSocketUrl() {
  const html = await (await fetch(`${cfg.apiBase}/`, { signal: AbortSignal.timeout(UI_WAIT_MS) })).text();
  const match = /<meta name="speedbatch-ws" content="([^"]*)">/.exec(html);
  if (!match) throw new Error(`GET ${cfg.apiBase}/ has no <meta name="speedbatch-ws">: it is not this dashboard`);
  return match[1].replace(/&amp;/g, '&');
}

/**
 * Another tab of the same browser for steps that change how the page is served (a stand-in
 * socket, a socket that refuses): its key is given as the key form leaves it, and its script
 * errors, CSP reports and requests are checked with the first tab's.
 */
async function extraPage({ socketUrl = null } = {}) {
  const tab = await context.newPage();
  tab.setDefaultTimeout(UI_WAIT_MS);
  tab.on('pageerror', (err) => pageErrors.push(err.message));
  tab.on('console', (msg) => { if (msg.type() === 'error') consoleErrors.push(msg.text()); });
  const apiOrigin = new URL(cfg.apiBase).origin;
  tab.on('request', (r) => { if (r.url().startsWith(apiOrigin)) apiRequests.push({ method: r.method(), url: r.url() }); });
  await tab.addInitScript((key) => sessionStorage.setItem('speedbatch.apiKey', key), cfg.apiKey);
  if (socketUrl !== null) {
    // The page as the API serves it (its headers included), told another socket: what a
    // deployment with that WS_URL would serve.
    await tab.route((url) => url.href === `${cfg.apiBase}/`, async (route) => {
      const response = await route.fetch();
      const body = (await response.text()).replace(/(<meta name="speedbatch-ws" content=")[^"]*(">)/, `$1${socketUrl}$2`);
      await route.fulfill({ response, body });
    });
  }
  return tab;
}

/** The job page's header as a tab shows it. */
function jobHeader(tab) {
  return tab.evaluate(() => ({
    hash: location.hash,
    id: document.getElementById('job-id').textContent.trim(),
    title: document.getElementById('job-title').textContent.trim(),
    status: document.getElementById('job-status').dataset.status || '',
    percent: Number(document.getElementById('job-progress').getAttribute('aria-valuenow')),
    counts: document.getElementById('job-counts').textContent.trim(),
    mode: document.getElementById('live-mode').dataset.mode,
  }));
}

/** A progress/{id} request (not the page's other calls). */
function isProgressOf(url, id) {
  return new URL(url).pathname.endsWith(`${API_PATH}progress/${encodeURIComponent(id)}`);
}

/** The views' tables, cell texts row by row ("The numbers as a table"). */
function tableTexts(tab, selector) {
  return tab.evaluate((sel) => {
    const table = document.querySelector(sel);
    if (!table) return null;
    return [...table.tBodies[0].rows].map((tr) => [...tr.cells].map((c) => c.textContent.trim().replace(/\s+/g, ' ')));
  }, selector);
}

/** The page's own way of writing a time metric (format.js formatMs): "850 ms", "2.03 s". */
function formatMs(ms) {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
}

/**
 * Screenshots of a view at 1280 and 360 px, viewport-sized (the phone one scrolled to `focus`,
 * its chart; the wide one to `wideFocus` if given, else the top); the phone one must not
 * scroll sideways.
 */
async function viewScreenshots(t, name, ready, focus = null, { wideFocus = null } = {}) {
  await page.setViewportSize({ width: 1280, height: 900 });
  await ready();
  await page.evaluate(() => window.scrollTo(0, 0));
  if (wideFocus) await page.locator(wideFocus).first().evaluate((node) => node.scrollIntoView({ block: 'start' }));
  await screenshot(t, `${name}.png`, { fullPage: false });
  await page.setViewportSize({ width: 360, height: 780 });
  await ready();
  if (focus) await page.locator(focus).first().evaluate((node) => node.scrollIntoView({ block: 'start' }));
  // Charts are drawn again at the new width (ResizeObserver): wait for one to fit.
  await waitFor(`the ${name} view drawn for 360 px`, UI_WAIT_MS, () => dom(() => [...document.querySelectorAll('svg.chart')]
    .filter((svg) => svg.checkVisibility()).every((svg) => Number(svg.getAttribute('width')) <= window.innerWidth)));
  const width = await dom(() => ({ page: document.documentElement.scrollWidth, viewport: window.innerWidth }));
  await screenshot(t, `phone-${name}.png`, { fullPage: false });
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.setViewportSize({ width: 1280, height: 900 });
  assert.ok(width.page <= width.viewport, `the ${name} view scrolls sideways at 360 px (${width.page} px wide)`);
}

/** A test that leaves a screenshot of the page behind when it fails. */
function step(name, { screenshotOnFailure = true, ...options }, fn) {
  test(name, { timeout: 3 * 60_000, ...options }, async (t) => {
    try {
      await fn(t);
    } catch (err) {
      if (screenshotOnFailure && page && !page.isClosed() && page.url() !== 'about:blank') {
        const file = `failed-${name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 60)}.png`;
        try { await screenshot(t, file); } catch { /* keep the test's own error */ }
      }
      throw err;
    }
  });
}

// ------------------------------------------------------------------ the test

describe('speedbatch dashboard in Chromium', () => {
  const stamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');

  before(async () => {
    try {
      Object.assign(cfg, readConfig());
      rmSync(ARTIFACTS, { recursive: true, force: true });
      mkdirSync(ARTIFACTS, { recursive: true });
      site = await startSite();
      if (!existsSync(CHROMIUM)) {
        throw new Error(`Chromium not found at ${CHROMIUM}: install Debian's chromium `
          + '(apt-get install chromium, or scripts/browser-test.sh) or set CHROMIUM_PATH');
      }
      const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
      browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: asRoot ? ['--no-sandbox'] : [] });
      context = await browser.newContext({
        viewport: { width: 1280, height: 900 },
        acceptDownloads: true,
        colorScheme: 'light',
        reducedMotion: 'reduce',
        locale: 'en-GB',
      });
      page = await context.newPage();
      page.setDefaultTimeout(UI_WAIT_MS);
      page.on('pageerror', (err) => pageErrors.push(err.message));
      page.on('console', (msg) => { if (msg.type() === 'error') consoleErrors.push(msg.text()); });
      const apiOrigin = new URL(cfg.apiBase).origin;
      page.on('request', (r) => { if (r.url().startsWith(apiOrigin)) apiRequests.push({ method: r.method(), url: r.url() }); });
      page.on('response', async (r) => {
        if (r.request().method() !== 'POST' || !r.url().endsWith(`${API_PATH}start`)) return;
        try {
          if (r.request().postDataJSON()?.dry_run !== true) return;
          dryRunAnswers.push(`${r.status()} ${(await r.text()).slice(0, 400)}`);
        } catch { /* not JSON, or the page went away */ }
      });
    } catch (err) {
      state.setupError = err;
    }
  });

  after(async () => {
    if (state.monitorToDelete) {
      try { await api(`monitors/${state.monitorToDelete}`, { method: 'DELETE' }); } catch (err) { console.error(`cleanup: ${err.message}`); }
    }
    for (const close of [() => context?.close(), () => browser?.close(), () => site?.close()]) {
      try { await close(); } catch (err) { console.error(`cleanup: ${err.message}`); }
    }
    if (state.screenshots.length) console.log(`screenshots: ${ARTIFACTS}/`);
  });

  step('the API serves the dashboard at its root', {}, async (t) => {
    needs(t);
    const url = `${cfg.apiBase}/`;
    let response;
    try {
      response = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(UI_WAIT_MS) });
    } catch (err) {
      throw new Error(`GET ${url} failed: ${err.cause?.message || err.message}; is the local stack up ("make up")?`);
    }
    const body = await response.text();
    assert.equal(response.status, 200, `GET ${url} answered ${response.status} (${body.slice(0, 120).trim()}): `
      + 'the deployed API does not serve the dashboard; redeploy the current code with "make up"');
    assert.match(response.headers.get('content-type') || '', /^text\/html/, `GET ${url}: not served as text/html`);
    assert.match(body, /id="api-key"/, `GET ${url} is HTML but not the dashboard (no #api-key)`);
    t.diagnostic(`dashboard served at ${url} (site under test at ${site.origin})`);
    state.served = true;
  });

  step('serves the page\'s own files with their types, under a strict policy', {}, async (t) => {
    if (!needs(t, 'served')) return;
    const answer = await fetch(`${cfg.apiBase}/`, { signal: AbortSignal.timeout(UI_WAIT_MS) });
    const policy = answer.headers.get('content-security-policy') || '';
    const html = await answer.text();
    assert.ok(policy, `GET ${cfg.apiBase}/ has no Content-Security-Policy`);
    for (const loose of ["'unsafe-inline'", "'unsafe-eval'", 'http:', 'https:', '*']) {
      assert.ok(!policy.split(/[;\s]+/).includes(loose), `the policy allows ${loose}: ${policy}`);
    }
    const directive = (name) => (new RegExp(`(?:^|;)\\s*${name} ([^;]*)`).exec(policy)?.[1] || '').trim().split(/\s+/);
    assert.deepEqual(directive('style-src'), ["'self'"], `style-src: ${policy}`);
    const scripts = directive('script-src');
    assert.ok(scripts.includes("'self'") && scripts.every((s) => s === "'self'" || /^'sha256-[A-Za-z0-9+/]+=*'$/.test(s)),
      `script-src: ${policy}`);
    const socket = /<meta name="speedbatch-ws" content="([^"]*)">/.exec(html)?.[1];
    assert.notEqual(socket, undefined, 'the page has no <meta name="speedbatch-ws">');
    if (socket) {
      const origin = new URL(socket.replace(/&amp;/g, '&'));
      assert.ok(directive('connect-src').includes(`${origin.protocol}//${origin.host}`), `connect-src lacks ${origin.host}: ${policy}`);
    }
    t.diagnostic(`live-progress socket: ${socket || '(none: the page polls)'}`);
    const types = Object.fromEntries(DASHBOARD_FILES.map((file) => [file, file.endsWith('.css') ? /^text\/css\b/ : /^text\/javascript\b/]));
    for (const [file, type] of Object.entries(types)) {
      const url = `${cfg.apiBase}/dashboard/${file}`;
      const response = await fetch(url, { signal: AbortSignal.timeout(UI_WAIT_MS) });
      assert.equal(response.status, 200, `GET ${url} answered ${response.status}: redeploy the current code with "make up"`);
      assert.match(response.headers.get('content-type') || '', type, `GET ${url}: ${response.headers.get('content-type')}`);
      assert.equal(response.headers.get('x-content-type-options'), 'nosniff', `GET ${url}: no nosniff`);
      assert.equal(response.headers.get('cache-control'), 'no-cache', `GET ${url}: Cache-Control`);
      const etag = response.headers.get('etag');
      assert.match(etag || '', /^"[^"]+"$/, `GET ${url}: no strong ETag`);
      await response.arrayBuffer();
      const again = await fetch(url, { headers: { 'if-none-match': etag }, signal: AbortSignal.timeout(UI_WAIT_MS) });
      assert.equal(again.status, 304, `GET ${url} with If-None-Match ${etag} answered ${again.status}`);
    }
    const unknown = await fetch(`${cfg.apiBase}/dashboard/index.html`, { signal: AbortSignal.timeout(UI_WAIT_MS) });
    assert.equal(unknown.status, 404, 'the page\'s template is served as a file');
  });

  step('asks for the API key (opened without the trailing slash) and lists the jobs', {}, async (t) => {
    if (!needs(t, 'served')) return;
    // The page finds the API relative to its own address, so it must work at <API_URL> as
    // well as at <API_URL>/. The local emulator answers <API_URL> without the slash itself
    // (404 NoSuchBucket) instead of passing it to the API; then the test serves the page
    // that the API gives at <API_URL>/ for that one address, headers included, and every
    // API call still goes to the real stack.
    const bare = await fetch(cfg.apiBase, { redirect: 'manual', signal: AbortSignal.timeout(UI_WAIT_MS) })
      .then(async (r) => {
        const text = await r.text();
        return { status: `${r.status} ${text.replace(/\s+/g, ' ').slice(0, 100)}`, html: /id="api-key"/.test(text) };
      })
      .catch((err) => ({ status: err.cause?.code || err.message, html: false }));
    if (!bare.html) {
      t.diagnostic(`GET ${cfg.apiBase} (no trailing slash) answered ${bare.status}, not the dashboard: `
        + 'the page for that address is taken from the API\'s answer at the trailing-slash address');
      await page.route((url) => url.href === cfg.apiBase, async (route) => {
        await route.fulfill({ response: await route.fetch({ url: `${cfg.apiBase}/` }) });
      });
    }
    await page.goto(cfg.apiBase, { waitUntil: 'domcontentloaded' });
    assert.equal(page.url(), cfg.apiBase, `the browser ended up at ${page.url()}, not ${cfg.apiBase}`);
    await page.locator('#api-key').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#main').isVisible(), false, 'the app is shown before a key was given');
    await page.locator('#api-key').fill(cfg.apiKey);
    await page.locator('#save-key').click();
    await waitFor('the key to be accepted and the jobs list to load', UI_WAIT_MS, async () => {
      const message = await dom(() => document.getElementById('key-message').textContent.trim());
      if (/not accepted|could not be checked/.test(message)) throw fatal(`the key was refused: ${message}`);
      return dom(() => {
        const shown = (id) => document.getElementById(id)?.checkVisibility();
        return document.getElementById('key-panel').hidden && shown('main') && shown('view-home')
          && !shown('jobs-loading')
          && (document.querySelectorAll('#jobs [data-job-id]').length > 0 || shown('jobs-empty'));
      });
    }, { failOnError: true });
    assert.equal(await visibleErrorBanner(), null, 'error banner after loading the jobs list');
    const rows = await page.locator('#jobs [data-job-id]').count();
    t.diagnostic(`jobs list shows ${rows} job(s)`);
    const listCall = apiRequests.find((r) => r.url.startsWith(`${cfg.apiBase}${API_PATH}jobs?`) && /limit=20/.test(r.url));
    assert.ok(listCall, `no GET ${cfg.apiBase}${API_PATH}jobs?limit=20 was made (the page must resolve the API `
      + `relative to ${cfg.apiBase} without a trailing slash); API calls seen: ${apiRequests.map((r) => r.url).join(', ')}`);
    state.keyAccepted = true;
  });

  step('checks the pasted URLs with a dry run and lists the invalid input with its reason', {}, async (t) => {
    if (!needs(t, 'keyAccepted')) return;
    await page.locator('#job-name').fill(`browser test ${stamp}`);
    await page.locator('#urls').fill([...site.pageUrls, INVALID].join('\n'));
    const dry = await dryRunResult();
    assert.equal(dry.state, 'ok', `the dry run did not succeed: ${dry.text}\n    the API answered: ${dryRunAnswers.at(-1)}`);
    assert.match(dry.text, new RegExp(`\\b${PAGES} URLs will be analysed`), `dry-run summary: ${dry.text}`);
    assert.match(dry.text, /\b1 input rejected/, `dry-run summary: ${dry.text}`);
    assert.ok(dry.rejectedBoxShown, 'the rejected inputs box (#rejected-box) is not shown');
    assert.equal(dry.rejected.length, 1, `#rejected lists ${dry.rejected.length} inputs: ${JSON.stringify(dry.rejected)}`);
    assert.equal(dry.rejected[0].input, INVALID, `#rejected lists ${JSON.stringify(dry.rejected[0].input)}, not ${INVALID}`);
    const reason = dry.rejected[0].text.slice(dry.rejected[0].text.indexOf(INVALID) + INVALID.length).replace(/^\s*—\s*/, '');
    assert.ok(reason.length > 0, `#rejected gives no reason for ${INVALID}: "${dry.rejected[0].text}"`);
    assert.ok(dry.submitEnabled, `#submit is still disabled after the dry run: ${dry.submitHint}`);
    t.diagnostic(`dry run: ${dry.text}; rejected: ${dry.rejected[0].text}`);
    state.dryRunOk = true;
  });

  step('submits the job and the jobs list shows it running', { timeout: GATE_MAX_MS + 2 * UI_WAIT_MS }, async (t) => {
    if (!needs(t, 'dryRunOk')) return;
    const { id, body, notice } = await submitJob();
    state.job1 = id;
    t.diagnostic(`job ${id}`);
    assert.equal(body.urls?.length, PAGES + 1, `submit sent ${body.urls?.length} URLs, expected the ${PAGES + 1} lines`);
    assert.match(notice, new RegExp(`started with ${PAGES} URLs`), `notice after submit: ${notice}`);
    assert.match(notice, /1 input rejected/, `notice after submit: ${notice}`);

    await openHome();
    // Pages 6..10 are held by the site, so the bar stops part-way until the screenshot is taken.
    let seen;
    try {
      seen = await waitFor(`job ${id} shown running (processing) in the jobs list with its progress bar part-way`, GATE_MAX_MS, async () => {
        const row = await jobRowState(id);
        if (!row) return null;
        if (FINISHED.has(row.status)) {
          throw fatal(`job ${id} finished (${row.status}: ${row.counts}) before the list showed it part-way`);
        }
        return row.status === 'processing' && row.percent > 0 && row.percent < 100 ? row : null;
      });
    } finally {
      if (!seen) site.gate.open(); // let the job go on for the next steps
    }
    if (site.gate.held === 0) t.diagnostic('the site held no page: the analyzer had not asked for pages 6-10 yet');
    await page.locator(`#jobs [data-job-id="${id}"]`).scrollIntoViewIfNeeded();
    await screenshot(t, 'running-job.png');
    site.gate.open();
    t.diagnostic(`running: ${seen.percent} % (${seen.status}): ${seen.counts}`);
  });

  step('the job\'s progress bar reaches 100 %', { timeout: JOB_WAIT_MS + UI_WAIT_MS }, async (t) => {
    if (!needs(t, 'job1')) return;
    site.gate.open();
    const id = state.job1;
    const row = await waitFor(`job ${id}'s progress bar in the jobs list to reach 100 %`, JOB_WAIT_MS, async () => {
      const r = await jobRowState(id);
      if (!r) throw new Error(`job ${id} is not in the jobs list`);
      return r.percent === 100 && FINISHED.has(r.status) ? r : null;
    });
    assert.equal(row.status, 'completed', `job ${id} ended ${row.status}: ${row.counts}`);
    assert.match(row.counts, new RegExp(`^${PAGES} succeeded, 0 failed, 0 cancelled`), `counts in the list: ${row.counts}`);
    t.diagnostic(`${row.counts}; the site answered ${site.count('/page/')} page and ${site.count('/static/')} asset requests`);
    state.job1Done = true;
  });

  step('opens the job\'s results: 10 succeeded rows with a numeric delivery score, not a PageSpeed-like one', {}, async (t) => {
    if (!needs(t, 'job1Done')) return;
    const id = state.job1;
    await page.locator(`#jobs [data-job-id="${id}"] a.job-name`).click();
    const shown = await waitFor(`job ${id}'s page with its ${PAGES} finished results`, UI_WAIT_MS, async () => {
      const s = await jobPageState();
      return s.id === id && FINISHED.has(s.status) && s.rows.length === PAGES
        && s.rows.every((r) => !['queued', 'processing'].includes(r.status)) ? s : null;
    }, { failOnError: true });
    assert.equal(shown.status, 'completed', `job page status: ${shown.status} (${shown.counts})`);
    assert.equal(shown.percent, 100, 'the job page\'s progress bar is not at 100 %');
    assert.equal(shown.cancelShown, false, '#cancel is still offered for a finished job');
    const notSucceeded = shown.rows.filter((r) => r.status !== 'succeeded');
    assert.deepEqual(notSucceeded, [], 'rows that did not succeed');
    const expected = new Set(site.pageUrls);
    const unknown = shown.rows.filter((r) => !expected.has(r.url));
    assert.deepEqual(unknown, [], 'rows whose URL is not one of the submitted pages');
    assert.equal(new Set(shown.rows.map((r) => r.url)).size, PAGES, 'a page is listed twice');
    const scores = shown.rows.map((r) => r.score).filter((s) => s !== null);
    assert.ok(scores.length > 0, 'no row shows a score');
    for (const s of scores) assert.ok(/^\d+$/.test(s) && +s >= 0 && +s <= 100, `score "${s}" is not a number from 0 to 100`);
    // The http engine's number is a delivery score: its own look, never PageSpeed's colours.
    const scored = shown.rows.filter((r) => r.score !== null);
    assert.deepEqual(scored.filter((r) => r.rated || !r.delivery), [], 'rows whose http score looks like a PageSpeed score');
    const label = await page.locator('#results th[data-sort-key="score"] .score-label').textContent();
    assert.equal(label.trim(), 'Delivery score', `the score column is headed "${label.trim()}"`);
    assert.match(shown.resultsCount, new RegExp(`Showing ${PAGES} of ${PAGES} URLs`), `#results-count: ${shown.resultsCount}`);
    t.diagnostic(`scores: ${shown.rows.map((r) => r.score ?? '—').join(', ')}`);
    await screenshot(t, 'results.png');
    state.resultsShown = true;
  });

  step('sorts by score from the keyboard and filters by status', {}, async (t) => {
    if (!needs(t, 'resultsShown')) return;
    const header = page.locator('#results th[data-sort-key="score"]');
    const button = header.locator('button');
    const sortedScores = async (dir) => {
      await waitFor(`the score column to be sorted ${dir}`, UI_WAIT_MS,
        async () => (await header.getAttribute('aria-sort')) === dir);
      return (await jobPageState()).rows.map((r) => (r.score === null ? null : Number(r.score)));
    };
    const check = (scores, dir) => {
      const numbers = scores.filter((s) => s !== null);
      assert.deepEqual(scores.slice(0, numbers.length), numbers, `rows without a score are not last: ${scores}`);
      const want = [...numbers].sort((a, b) => (dir === 'ascending' ? a - b : b - a));
      assert.deepEqual(numbers, want, `scores not ${dir}: ${scores}`);
    };

    // An http job's score column holds its delivery score: the API is asked for that order.
    const asked = page.waitForRequest((r) => r.url().includes(`${API_PATH}results/`) && new URL(r.url()).searchParams.has('sort'));
    await button.focus();
    await page.keyboard.press('Enter');
    const order = new URL((await asked).url()).searchParams;
    assert.deepEqual([order.get('sort'), order.get('order')], ['delivery_score', 'asc'], `asked ${(await asked).url()}`);
    check(await sortedScores('ascending'), 'ascending');
    assert.ok(await button.evaluate((b) => b === document.activeElement), 'focus left the Score header button after sorting');
    await page.keyboard.press('Space');
    check(await sortedScores('descending'), 'descending');
    const announced = (await page.locator('#announcer').textContent()).split('.').map((m) => m.trim());
    const sortNews = announced.filter((m) => m.startsWith('Sorted by'));
    assert.match(sortNews.at(-1) || '', /^Sorted by Delivery score\b.*descending$/, `screen-reader announcements: ${sortNews.join(' / ')}`);
    if (/[▲▼↕]/.test(sortNews.at(-1))) t.diagnostic(`note: the announcement includes the sort icon: "${sortNews.at(-1)}"`);

    const filterTo = async (value) => {
      const response = page.waitForResponse((r) => r.url().includes(`${API_PATH}results/`)
        && (new URL(r.url()).searchParams.get('status') || '') === value);
      await page.locator('#status-filter').selectOption(value);
      const answer = await response;
      assert.equal(answer.status(), 200, `GET results with status=${value} answered ${answer.status()}`);
    };
    await filterTo('failed');
    const failed = await waitFor('the "failed" filter to empty the table', UI_WAIT_MS, async () => {
      const s = await jobPageState();
      return s.rows.length === 0 && s.emptyShown ? s : null;
    }, { failOnError: true });
    assert.match(failed.emptyText, /No URLs with this status/, `#results-empty: ${failed.emptyText}`);

    await filterTo('succeeded');
    const succeeded = await waitFor(`the "succeeded" filter to show the ${PAGES} rows`, UI_WAIT_MS, async () => {
      const s = await jobPageState();
      return s.rows.length === PAGES ? s : null;
    }, { failOnError: true });
    assert.ok(succeeded.rows.every((r) => r.status === 'succeeded'), 'the succeeded filter shows other rows');
    check(succeeded.rows.map((r) => (r.score === null ? null : Number(r.score))), 'descending');

    await filterTo('');
    await waitFor(`all ${PAGES} rows again`, UI_WAIT_MS, async () => (await jobPageState()).rows.length === PAGES);
  });

  step('downloads the results as CSV', {}, async (t) => {
    if (!needs(t, 'resultsShown')) return;
    const [download] = await Promise.all([
      page.waitForEvent('download', { timeout: UI_WAIT_MS }),
      page.locator('#download-csv').click(),
    ]);
    const name = download.suggestedFilename();
    assert.match(name, /\.csv$/, `the download is named ${name}`);
    const path = join(ARTIFACTS, name);
    await download.saveAs(path);
    assert.equal(await download.failure(), null, 'the download failed');
    t.diagnostic(`CSV saved: ${relative(process.cwd(), path)}`);
    const records = parseCsv(readFileSync(path, 'utf8'));
    assert.ok(records.length > 0, 'the CSV is empty');
    const [head, ...rows] = records;
    for (const column of ['url', 'status', 'score', 'delivery_score', 'delivery_band']) {
      assert.ok(head.includes(column), `the CSV header has no "${column}" column: ${head.join(',')}`);
    }
    assert.equal(rows.length, PAGES, `the CSV has ${rows.length} data rows, expected ${PAGES}`);
    const at = (row, column) => row[head.indexOf(column)];
    assert.deepEqual(new Set(rows.map((r) => at(r, 'url'))), new Set(site.pageUrls), 'the CSV URLs are not the submitted pages');
    assert.ok(rows.every((r) => at(r, 'status') === 'succeeded'), `CSV statuses: ${rows.map((r) => at(r, 'status'))}`);
    assert.ok(rows.every((r) => /^\d+(\.\d+)?$/.test(at(r, 'delivery_score'))), `a delivery score missing from the CSV: ${rows.map((r) => at(r, 'delivery_score'))}`);
    assert.ok(rows.every((r) => at(r, 'score') === ''), `the http engine's rows carry a performance score in the CSV: ${rows.map((r) => at(r, 'score'))}`);
    assert.equal(await visibleErrorBanner(), null, 'error banner after the download');
  });

  step('cancels a running job through the confirmation dialog', { timeout: JOB_WAIT_MS + 4 * UI_WAIT_MS }, async (t) => {
    if (!needs(t, 'keyAccepted')) return;
    await openHome();
    await page.locator('#job-name').fill(`browser test cancel ${stamp}`);
    // The slow URLs come in through the file input.
    await page.locator('#url-file').setInputFiles({
      name: 'slow-urls.txt', mimeType: 'text/plain', buffer: Buffer.from(`${site.slowUrls.join('\n')}\n`),
    });
    await waitFor('the file\'s URLs to fill the list', UI_WAIT_MS,
      async () => (await page.locator('#urls').inputValue()).split('\n').filter(Boolean).length === SLOW_PAGES);
    await page.locator('#batch-size').fill('1');
    const dry = await dryRunResult();
    assert.match(dry.text, new RegExp(`\\b${SLOW_PAGES} URLs will be analysed`),
      `dry run: ${dry.text}\n    the API answered: ${dryRunAnswers.at(-1)}`);
    assert.ok(dry.submitEnabled, `#submit disabled: ${dry.submitHint}`);

    const { id, body, notice } = await submitJob();
    t.diagnostic(`job ${id}`);
    assert.notEqual(id, state.job1, 'the second submit opened the first job');
    assert.equal(body.batch_size, 1, `submit sent batch_size ${body.batch_size}`);
    assert.match(notice, new RegExp(`started with ${SLOW_PAGES} URLs`), `notice after submit: ${notice}`);

    await waitFor(`job ${id}'s page with the cancel button`, UI_WAIT_MS, async () => {
      const s = await jobPageState();
      if (s.id === id && FINISHED.has(s.status)) throw fatal(`job ${id} finished (${s.status}) before it could be cancelled`);
      return s.id === id && s.status && s.cancelShown && s.cancelEnabled;
    }, { failOnError: true });
    await page.locator('#cancel').click();
    const dialog = page.locator('#cancel-dialog');
    await dialog.waitFor({ state: 'visible' });
    assert.ok(await dialog.evaluate((d) => d.open), 'the cancel dialog is not open');
    assert.equal(await dom(() => document.activeElement?.id), 'keep-job', 'the safe choice is not focused first');
    await screenshot(t, 'cancel-dialog.png', { fullPage: false });

    await page.locator('#confirm-cancel').click();
    await dialog.waitFor({ state: 'hidden' });
    const statuses = new Set();
    const done = await waitFor(`job ${id} to be shown cancelled`, JOB_WAIT_MS, async () => {
      const s = await jobPageState();
      statuses.add(s.status);
      if (s.id === id && FINISHED.has(s.status) && s.status !== 'cancelled') {
        throw fatal(`job ${id} ended ${s.status} instead of cancelled: ${s.counts}`);
      }
      return s.id === id && s.status === 'cancelled' ? s : null;
    });
    t.diagnostic(`statuses seen after confirming: ${[...statuses].join(' → ')}; ${done.counts}`);
    const noticeNow = await page.locator('#notice-message').textContent();
    assert.match(noticeNow, /Cancellation requested/, `notice after cancelling: ${noticeNow}`);
    const cancelled = Number(/(\d+) cancelled/.exec(done.counts)?.[1]);
    assert.ok(cancelled > 0, `no URL is counted as cancelled: ${done.counts}`);
    assert.equal(done.cancelShown, false, '#cancel is still shown for a cancelled job');
    assert.equal(await visibleErrorBanner(), null, 'error banner after cancelling');
    t.diagnostic(`the site was asked for ${site.count('/slow/')} of the ${SLOW_PAGES} slow pages`);
    await screenshot(t, 'cancelled-job.png');
  });

  step('a submission over one of the tenant\'s limits is explained in words', {}, async (t) => {
    if (!needs(t, 'keyAccepted')) return;
    await openHome();
    // The API's own 429 for a tenant at its job limit is checked against the deployed stack
    // (tests/e2e); here the page is handed one, to read what the dashboard makes of it.
    const refusal = { error: { code: 'over_limit',
      message: 'your tenant already has 20 unfinished jobs and may have at most 20 at once; submit this one when one of them finishes (or cancel one)',
      details: { limit: 'max_active_jobs', allowed: 20, used: 20, requested: 1, retry_after_seconds: 30 } } };
    const isStart = (url) => url.href.endsWith(`${API_PATH}start`);
    await page.route(isStart, async (route) => {
      if (route.request().postDataJSON()?.dry_run) return route.continue();
      return route.fulfill({ status: 429, headers: { 'content-type': 'application/json', 'retry-after': '30' },
        body: JSON.stringify(refusal) });
    });
    try {
      await page.locator('#urls').fill(site.pageUrls[0]);
      await waitFor('the dry run of one URL', UI_WAIT_MS, () => dom(() => {
        const box = document.getElementById('dry-run');
        return box.dataset.state === 'ok' && /\b1 URL\b/.test(box.textContent) && !document.getElementById('submit').disabled;
      }));
      await page.locator('#submit').click();
      const banner = await waitFor('the error banner', UI_WAIT_MS, visibleErrorBanner);
      t.diagnostic(`banner: ${banner}`);
      assert.match(banner, /may have at most 20 at once/, `banner: ${banner}`);
      assert.match(banner, /Unfinished jobs: 20 used of 20\./, `banner: ${banner}`);
      assert.match(banner, /You can submit again in 30 seconds\./, `banner: ${banner}`);
    } finally {
      await page.unroute(isStart);
      await page.locator('#urls').fill('');
    }
  });

  step('live: a running job\'s progress comes over the WebSocket, and progress is not requested while it is subscribed', { timeout: JOB_WAIT_MS + 3 * UI_WAIT_MS }, async (t) => {
    if (!needs(t, 'keyAccepted')) return;
    // Needs the deployment's WebSocket API (SPEC §6.5); the next two steps check the page's
    // side of the protocol against a stand-in and without a socket.
    const socketUrl = await servedSocketUrl();
    if (!socketUrl) {
      throw new Error('the page is given no WebSocket URL (<meta name="speedbatch-ws"> is empty): the deployment '
        + 'has no WS_URL, so live progress cannot be checked (SPEC §6.5)');
    }
    // A tab of its own, whose page comes from the API itself: the first tab's page was
    // fulfilled by the test (the address without the slash), and Chromium's local-network-access
    // checks take such a page for a public one and refuse it a socket to 127.0.0.1 (it then
    // polls, which is the fallback working, but not what this step is about).
    const tab = await extraPage();
    try {
      // One slow page at a time: the job runs long enough for the page to subscribe first.
      const id = await startJob({ name: `browser test live ${stamp}`, urls: site.slowUrls.slice(0, 10), batch_size: 1 });
      t.diagnostic(`job ${id}, socket ${socketUrl}`);
      const sockets = [];
      const sent = [];
      const frames = [];
      const progressRequests = [];
      let subscribed = false; // a subscription covering the job is confirmed on an open socket
      tab.on('websocket', (ws) => {
        sockets.push(ws.url());
        ws.on('framesent', (f) => { try { sent.push(JSON.parse(f.payload)); } catch { /* not JSON */ } });
        ws.on('framereceived', (f) => {
          let frame;
          try { frame = JSON.parse(f.payload); } catch { return; }
          if (frame.type === 'subscribed' && [undefined, id, '*'].includes(frame.batch_job_id)) subscribed = true;
          if (frame.type === 'progress' && frame.job?.batch_job_id === id) frames.push(frame.job);
        });
        ws.on('close', () => { subscribed = false; });
      });
      tab.on('request', (r) => { if (isProgressOf(r.url(), id)) progressRequests.push({ whileSubscribed: subscribed }); });
      await tab.goto(`${cfg.apiBase}/#/jobs/${encodeURIComponent(id)}`, { waitUntil: 'domcontentloaded' });
      const modes = new Set();
      const done = await waitFor(`job ${id} shown finished at 100 %`, JOB_WAIT_MS, async () => {
        const shown = await jobHeader(tab);
        if (!FINISHED.has(shown.status)) modes.add(shown.mode);
        return shown.id === id && shown.percent === 100 && FINISHED.has(shown.status) ? shown : null;
      });
      t.diagnostic(`${frames.length} progress frames; modes while running: ${[...modes].join(', ')}; `
        + `${progressRequests.length} progress request(s)`);
      assert.equal(done.status, 'completed', `job ${id}: ${done.counts}`);
      assert.ok(sockets.length > 0, 'the page opened no WebSocket');
      assert.ok(sockets.every((url) => !url.includes(cfg.apiKey)), 'the API key is in the WebSocket URL');
      const subscribe = sent.find((m) => m.action === 'subscribe' && [id, '*'].includes(m.batch_job_id));
      assert.ok(subscribe, `no subscribe message for the job: ${JSON.stringify(sent).replaceAll(cfg.apiKey, '<key>')}`);
      assert.equal(subscribe.api_key, cfg.apiKey, 'the subscribe message does not carry the key');
      assert.ok(frames.length > 0, 'no progress frame for the job came over the socket');
      assert.ok(modes.has('live'), `the page never said it was live: ${[...modes].join(', ')}`);
      const polled = progressRequests.filter((r) => r.whileSubscribed);
      assert.equal(polled.length, 0, `${polled.length} progress request(s) while the socket was subscribed`);
    } finally {
      await tab.close();
    }
  });

  step('live, with a stand-in socket: frames drive the job page without polling, a finished job never goes back, a refused subscription is polled', { timeout: 4 * UI_WAIT_MS }, async (t) => {
    if (!needs(t, 'keyAccepted')) return;
    const SOCKET = 'ws://127.0.0.1:9/speedbatch-stand-in';
    const [LIVE, REFUSED] = ['01a00000-0000-7000-8000-0000000000a1', '01a00000-0000-7000-8000-0000000000b2'];
    const fake = (id, changes = {}) => ({
      batch_job_id: id, name: `stand-in ${id.slice(-2)}`, status: 'processing', priority: 'normal', strategy: 'mobile',
      engine: 'http', batch_size: 5, timeout_seconds: 300, max_retries: 3, total_urls: 10, queued: 8, in_progress: 2,
      succeeded: 0, failed: 0, cancelled: 0, progress_percent: 0, created_at: new Date().toISOString(),
      started_at: new Date().toISOString(), finished_at: null, urls_per_minute: null, eta_seconds: null, ...changes,
    });
    const jobs = new Map([[LIVE, { job: fake(LIVE), etag: '"a1-0"', requests: [], subscribed: false }],
      [REFUSED, { job: fake(REFUSED), etag: '"b2-0"', requests: [], subscribed: false }]]);
    const tab = await extraPage({ socketUrl: SOCKET });
    try {
      // The two jobs exist only here: their progress and results are answered by the test.
      await tab.route((url) => url.pathname.includes(`${API_PATH}progress/01a00000-`), async (route) => {
        const entry = jobs.get(decodeURIComponent(route.request().url().split('/progress/')[1]));
        const tag = route.request().headers()['if-none-match'] || null;
        entry.requests.push({ tag, subscribed: entry.subscribed });
        const headers = { etag: entry.etag, 'cache-control': 'no-cache' };
        if (tag === entry.etag) return route.fulfill({ status: 304, headers });
        return route.fulfill({ status: 200, headers, contentType: 'application/json', body: JSON.stringify(entry.job) });
      });
      await tab.route((url) => url.pathname.includes(`${API_PATH}results/01a00000-`), (route) => route.fulfill({
        status: 200, contentType: 'application/json',
        body: JSON.stringify({ batch_job_id: 'x', status: 'processing', results: [], next_cursor: null, summary: { by_status: { queued: 10 } } }),
      }));
      let socket = null;
      const sent = [];
      await tab.routeWebSocket(SOCKET, (ws) => {
        socket = ws;
        ws.onMessage((message) => {
          const msg = JSON.parse(String(message));
          sent.push(msg);
          if (msg.batch_job_id === REFUSED) {
            ws.send(JSON.stringify({ type: 'error', code: 'too_many_subscriptions', message: 'one job per connection here' }));
            return;
          }
          if (jobs.has(msg.batch_job_id)) jobs.get(msg.batch_job_id).subscribed = true;
          ws.send(JSON.stringify({ type: 'subscribed', batch_job_id: msg.batch_job_id }));
        });
      });
      const push = (id, changes) => socket.send(JSON.stringify({ type: 'progress', job: fake(id, changes) }));

      await tab.goto(`${cfg.apiBase}/#/jobs/${LIVE}`, { waitUntil: 'domcontentloaded' });
      await waitFor('the page to subscribe to the job and say it is live', UI_WAIT_MS,
        async () => sent.some((m) => m.batch_job_id === LIVE) && (await jobHeader(tab)).mode === 'live');
      assert.deepEqual(sent[0], { action: 'subscribe', api_key: cfg.apiKey, batch_job_id: LIVE }, 'the subscribe message');
      push(LIVE, { succeeded: 4, queued: 4, in_progress: 2, progress_percent: 40 });
      await waitFor('40 % from a frame', UI_WAIT_MS, async () => (await jobHeader(tab)).percent === 40);
      const finished = { status: 'completed', succeeded: 10, queued: 0, in_progress: 0, progress_percent: 100, finished_at: new Date().toISOString() };
      push(LIVE, finished);
      await waitFor('the job shown completed from a frame', UI_WAIT_MS, async () => (await jobHeader(tab)).status === 'completed');
      // A running state after the final one must not take the job back; the renamed final
      // state after it shows that both were read (frames are handled in order).
      push(LIVE, { succeeded: 8, queued: 0, in_progress: 2, progress_percent: 80 });
      push(LIVE, { ...finished, name: 'stand-in a1, renamed' });
      const last = await waitFor('the frame after the stale one', UI_WAIT_MS, async () => {
        const shown = await jobHeader(tab);
        return shown.title === 'stand-in a1, renamed' ? shown : null;
      });
      assert.deepEqual([last.status, last.percent], ['completed', 100], 'a stale frame took the finished job back');
      const reads = jobs.get(LIVE).requests;
      assert.equal(reads.length, 1, `progress was requested ${reads.length} times for a job the socket covered`);
      assert.equal(reads[0].subscribed, false, 'the one read came after the subscription');

      // Refused: that job is polled with its ETag, and the page says so.
      await tab.evaluate((id) => { location.hash = `#/jobs/${id}`; }, REFUSED);
      const entry = jobs.get(REFUSED);
      await waitFor('the refused job polled with If-None-Match', UI_WAIT_MS, async () => entry.requests.filter((r) => r.tag === '"b2-0"').length >= 2);
      assert.equal((await jobHeader(tab)).mode, 'polling', 'the page does not say it is polling');
      entry.job = fake(REFUSED, finished);
      entry.etag = '"b2-1"';
      await waitFor('the polled job shown completed', UI_WAIT_MS, async () => {
        const shown = await jobHeader(tab);
        return shown.id === REFUSED && shown.status === 'completed' && shown.percent === 100;
      });
      t.diagnostic(`refused job: ${entry.requests.length} progress requests, ${entry.requests.filter((r) => r.tag).length} with If-None-Match`);
    } finally {
      await tab.close();
    }
  });

  step('fallback: with the WebSocket refused, the page polls progress with If-None-Match and reaches 100 %', { timeout: JOB_WAIT_MS + 3 * UI_WAIT_MS }, async (t) => {
    if (!needs(t, 'keyAccepted')) return;
    const SOCKET = 'ws://127.0.0.1:9/speedbatch-refused';
    const tab = await extraPage({ socketUrl: SOCKET });
    try {
      let attempts = 0;
      await tab.routeWebSocket(SOCKET, (ws) => { attempts += 1; ws.close({ code: 1011, reason: 'refused by the test' }); });
      const id = await startJob({ name: `browser test fallback ${stamp}`, urls: site.slowUrls.slice(0, 6), batch_size: 2 });
      t.diagnostic(`job ${id}`);
      const sentTags = [];
      const givenTags = new Set();
      const statuses = [];
      tab.on('request', (r) => { if (isProgressOf(r.url(), id)) sentTags.push(r.headers()['if-none-match'] || null); });
      tab.on('response', (r) => {
        if (!isProgressOf(r.url(), id)) return;
        statuses.push(r.status());
        if (r.headers().etag) givenTags.add(r.headers().etag);
      });
      await tab.goto(`${cfg.apiBase}/#/jobs/${encodeURIComponent(id)}`, { waitUntil: 'domcontentloaded' });
      const modes = new Set();
      const done = await waitFor(`job ${id} shown finished at 100 %`, JOB_WAIT_MS, async () => {
        const shown = await jobHeader(tab);
        if (!FINISHED.has(shown.status)) modes.add(shown.mode);
        return shown.id === id && shown.percent === 100 && FINISHED.has(shown.status) ? shown : null;
      });
      t.diagnostic(`${sentTags.length} progress requests (${statuses.filter((s) => s === 304).length} answered 304), `
        + `${attempts} socket attempt(s), modes: ${[...modes].join(', ')}`);
      assert.equal(done.status, 'completed', `job ${id}: ${done.counts}`);
      assert.ok(attempts >= 1, 'the page never tried the socket it was given');
      assert.ok(modes.has('polling'), `the page never said it was polling: ${[...modes].join(', ')}`);
      assert.ok(sentTags.length >= 2, `only ${sentTags.length} progress request(s): the page did not poll`);
      const conditional = sentTags.filter((tag) => tag && givenTags.has(tag));
      assert.ok(conditional.length >= 1, `no progress request carried If-None-Match with an ETag the API gave: ${JSON.stringify(sentTags)}`);
    } finally {
      await tab.close();
    }
  });

  step('sorting asks the API to order the whole job, and a refused order is explained in its words', {}, async (t) => {
    if (!needs(t, 'resultsShown')) return;
    const id = state.job1;
    await page.evaluate((job) => { location.hash = `#/jobs/${encodeURIComponent(job)}`; }, id);
    await waitFor(`job ${id}'s ${PAGES} results`, UI_WAIT_MS, async () => {
      const s = await jobPageState();
      return s.id === id && s.rows.length === PAGES;
    }, { failOnError: true });
    const refusal = { error: { code: 'validation_failed', message: 'sort: "lcp_ms" is not something this job\'s results can be sorted by',
      details: [{ field: 'sort', message: '"lcp_ms" is not something this job\'s results can be sorted by' }] } };
    const refused = (url) => url.pathname.includes(`${API_PATH}results/`) && url.searchParams.get('sort') === 'lcp_ms';
    await page.route(refused, (route) => route.fulfill({ status: 400, contentType: 'application/json', body: JSON.stringify(refusal) }));
    try {
      await page.locator('#results th[data-sort-key="lcp_ms"] button').click();
      const banner = await waitFor('the error banner', UI_WAIT_MS, visibleErrorBanner);
      assert.match(banner, /is not something this job's results can be sorted by/, `banner: ${banner}`);
      assert.equal(await page.locator('#results th[data-sort-key="lcp_ms"]').getAttribute('aria-sort'), 'none', 'a refused order is shown as the order');
    } finally {
      await page.unroute(refused);
    }
    await page.locator('#error-dismiss').click();
    const asked = page.waitForRequest((r) => r.url().includes(`${API_PATH}results/`) && new URL(r.url()).searchParams.get('sort') === 'ttfb_ms');
    await page.locator('#results th[data-sort-key="ttfb_ms"] button').click();
    const request = await asked;
    assert.equal(new URL(request.url()).searchParams.get('order'), 'asc', `asked ${request.url()}`);
    await waitFor('the TTFB column shown ascending', UI_WAIT_MS, async () => (await page.locator('#results th[data-sort-key="ttfb_ms"]').getAttribute('aria-sort')) === 'ascending');
    const ttfb = await dom(() => [...document.querySelectorAll('#results tbody tr')].map((tr) => tr.cells[3].textContent.trim()));
    const ms = ttfb.filter((text) => text !== '—').map((text) => (text.endsWith(' ms') ? Number(text.slice(0, -3)) : Number(text.slice(0, -2)) * 1000));
    assert.deepEqual(ms, [...ms].sort((a, b) => a - b), `TTFB not ascending: ${ttfb.join(', ')}`);
    t.diagnostic(`${(await page.locator('#results-count').textContent()).trim()}`);
  });

  step('a monitor with budgets is run twice (set up through the API)', { timeout: 2 * JOB_WAIT_MS + UI_WAIT_MS }, async (t) => {
    if (!needs(t, 'keyAccepted')) return;
    // Three quick pages and three slow ones (2 s to the first byte): the slow ones are over the
    // TTFB budget in every run.
    const urls = [...site.pageUrls.slice(0, 3), ...site.slowUrls.slice(0, 3)];
    const created = await api('monitors', { method: 'POST', body: {
      name: `browser test monitor ${stamp}`, urls, schedule: 'rate(1 day)', enabled: false, engine: 'http', batch_size: 6,
      budgets: [{ metric: 'ttfb_ms', max: 1000 }, { metric: 'delivery_score', min: 50 }],
    } });
    assert.equal(created.status, 201, `POST monitors answered ${created.status}: ${created.text.slice(0, 300)}`);
    const id = created.body.monitor_id;
    state.monitorToDelete = id;
    const runs = [];
    for (let i = 0; i < 2; i += 1) {
      const run = await api(`monitors/${id}/run`, { method: 'POST' });
      assert.equal(run.status, 202, `POST monitors/${id}/run answered ${run.status}: ${run.text.slice(0, 300)}`);
      runs.push(run.body.batch_job_id);
      const job = await jobFinished(run.body.batch_job_id);
      assert.equal(job.status, 'completed', `run ${i + 1} (${job.batch_job_id}) ended ${job.status}`);
    }
    t.diagnostic(`monitor ${id}, runs ${runs.join(', ')}`);
    state.monitor = { id, runs, urls };
  });

  step('the monitor page shows its settings, its runs and where its URLs stand against the budgets', { timeout: JOB_WAIT_MS + 3 * UI_WAIT_MS }, async (t) => {
    if (!needs(t, 'monitor')) return;
    const { id, runs } = state.monitor;
    // Budgets are checked after each run: the slow pages are over the TTFB budget.
    const standings = await waitFor('the API to list the slow pages over the TTFB budget', JOB_WAIT_MS, async () => {
      const { status, body, text } = await api(`monitors/${id}/budgets?state=any&limit=100`);
      if (status !== 200) throw new Error(`GET monitors/${id}/budgets answered ${status}: ${text.slice(0, 200)}`);
      return body.standings.filter((s) => s.metric === 'ttfb_ms' && s.state === 'breached').length >= 3 ? body.standings : null;
    });
    await openHome();
    const link = page.locator(`#monitors [data-monitor-id="${id}"] a.job-name`);
    await link.waitFor({ state: 'visible' });
    await link.click();
    const ready = () => waitFor('the monitor page with its runs and budget state', UI_WAIT_MS, () => dom((runIds) => {
      const shown = [...document.querySelectorAll('#monitor-runs [data-job-id]')].map((li) => li.dataset.jobId);
      return runIds.every((r) => shown.includes(r)) && document.querySelector('#monitor-standings table') !== null;
    }, runs), { failOnError: true });
    await ready();
    const facts = await dom(() => Object.fromEntries([...document.querySelectorAll('#monitor-facts > div')]
      .map((d) => [d.querySelector('dt').textContent.trim(), d.querySelector('dd').textContent.trim()])));
    assert.equal(facts.Schedule, 'every day', `schedule: ${facts.Schedule}`);
    assert.equal(facts.Runs, '2', `runs: ${facts.Runs}`);
    const budgets = await dom(() => [...document.querySelectorAll('#monitor-budgets li')].map((li) => li.textContent.trim()));
    assert.deepEqual(budgets, ['Time to first byte at most 1.00 s', 'Delivery score at least 50'], 'the budgets');
    const rows = await tableTexts(page, '#monitor-standings table');
    assert.equal(rows.length, standings.length, `${rows.length} standings shown, the API lists ${standings.length}`);
    standings.forEach((s, i) => {
      const [url, , shownState, value] = rows[i];
      assert.equal(url, s.url, `row ${i + 1}`);
      assert.equal(shownState, s.state === 'breached' ? 'Over budget' : 'Back within', `row ${i + 1} (${s.url})`);
      if (s.metric.endsWith('_ms')) assert.equal(value, formatMs(s.value), `row ${i + 1} (${s.url}): the value`);
    });
    const run = await dom((newer) => document.querySelector(`#monitor-runs [data-job-id="${newer}"] .job-extra`)?.textContent, runs[1]);
    assert.match(run || '', /Compare with the run before/, `the newer run offers no comparison: ${run}`);
    await viewScreenshots(t, 'monitor', ready, '#standings-heading');
  });

  step('a job\'s score distribution matches its results, in the delivery score\'s own colours', {}, async (t) => {
    if (!needs(t, 'job1Done')) return;
    const id = state.job1;
    await page.evaluate((job) => { location.hash = `#/jobs/${encodeURIComponent(job)}`; }, id);
    await waitFor(`job ${id}'s page`, UI_WAIT_MS, async () => (await jobPageState()).id === id && (await jobPageState()).rows.length === PAGES);
    await page.locator('#distribution-link').click();
    const ready = () => waitFor('the distribution chart and table', UI_WAIT_MS,
      () => dom(() => document.querySelector('#distribution-charts table.distribution-table') !== null
        && document.querySelector('#distribution-charts svg.chart') !== null), { failOnError: true });
    await ready();
    const { body } = await api(`results/${encodeURIComponent(id)}?status=succeeded&limit=1000`);
    const values = body.results.map((r) => r.metrics?.delivery_score).filter(Number.isFinite);
    const bins = Array(10).fill(0);
    for (const v of values) bins[Math.min(9, Math.floor(Math.round(v) / 10))] += 1;
    const rows = await tableTexts(page, '#distribution-charts table.distribution-table');
    assert.deepEqual(rows.map((r) => r[0]), ['0–9', '10–19', '20–29', '30–39', '40–49', '50–59', '60–69', '70–79', '80–89', '90–100']);
    assert.deepEqual(rows.map((r) => Number(r[1])), bins, 'URLs per bin in the table');
    const bars = await dom(() => [...document.querySelectorAll('#distribution-charts svg .chart-bar')]
      .map((g) => ({ count: Number(g.dataset.count), cls: g.getAttribute('class') })));
    assert.deepEqual(bars.map((b) => b.count), bins, 'URLs per bar in the chart');
    assert.deepEqual(bars.filter((b) => !b.cls.includes('bar-delivery') || /bar-(good|average|poor)/.test(b.cls)), [],
      'a delivery score drawn in PageSpeed\'s bands');
    const heading = await dom(() => document.querySelector('#distribution-charts figure h3').textContent.trim());
    assert.equal(heading, 'Delivery score');
    const summary = await dom(() => document.querySelector('#distribution-charts .chart-summary').textContent);
    assert.match(summary, new RegExp(`^${values.length} URLs with a delivery score`), `summary: ${summary}`);
    await viewScreenshots(t, 'distribution', ready, '#distribution-charts figure');
  });

  step('a result row leads to the URL\'s history: each metric charted with its monitor\'s budget line', {}, async (t) => {
    if (!needs(t, 'monitor')) return;
    const { id: monitor, runs } = state.monitor;
    const url = site.slowUrls[0];
    await page.evaluate((job) => { location.hash = `#/jobs/${encodeURIComponent(job)}`; }, runs[1]);
    await waitFor('the newer run\'s results', UI_WAIT_MS, async () => (await jobPageState()).rows.length === state.monitor.urls.length, { failOnError: true });
    await page.locator('#results tbody tr').filter({ has: page.locator(`a[href="${url}"]`) }).locator('a.history-link').click();
    const ready = () => waitFor('the TTFB history chart and its table', UI_WAIT_MS,
      () => dom(() => document.querySelector('#history-charts figure[data-metric="ttfb_ms"] table') !== null
        && document.querySelector('#history-charts figure[data-metric="ttfb_ms"] svg.chart') !== null), { failOnError: true });
    await ready();
    const hash = new URLSearchParams((await dom(() => location.hash)).split('?')[1]);
    assert.deepEqual([hash.get('url'), hash.get('monitor')], [url, monitor], 'the history link names the URL and its monitor');
    // The page's default period: the last 90 days.
    const from = new Date(Date.now() - 90 * 86400e3).toISOString();
    const { body } = await api(`history?${new URLSearchParams({ url, metric: 'ttfb_ms', limit: '1000', from })}`);
    const rows = await tableTexts(page, '#history-charts figure[data-metric="ttfb_ms"] table');
    assert.deepEqual(rows.map((r) => r[1]), body.points.map((p) => formatMs(p.value)), 'TTFB values in the table');
    assert.deepEqual(rows.map((r) => r[3]), body.points.map((p) => p.batch_job_id.slice(0, 8)), 'jobs in the table');
    const points = await dom(() => document.querySelectorAll('#history-charts figure[data-metric="ttfb_ms"] svg .chart-point').length);
    assert.equal(points, body.points.length, 'points in the chart');
    const budgetLines = await dom(() => Object.fromEntries(['ttfb_ms', 'delivery_score'].map((m) => [m,
      [...document.querySelectorAll(`#history-charts figure[data-metric="${m}"] svg line.budget-line`)].map((l) => Number(l.dataset.value))])));
    assert.deepEqual(budgetLines, { ttfb_ms: [1000], delivery_score: [50] }, 'the budget lines drawn');
    const over = body.points.filter((p) => p.value > 1000).length;
    const summary = await dom(() => document.querySelector('#history-charts figure[data-metric="ttfb_ms"] .chart-summary').textContent);
    assert.match(summary, new RegExp(`; ${over} of ${body.points.length} results? outside it`), `summary: ${summary}`);
    await viewScreenshots(t, 'history', ready, '#history-charts figure');
  });

  step('two runs ticked in the list are compared: the API\'s verdicts and counts, regressions first', { timeout: 3 * UI_WAIT_MS }, async (t) => {
    if (!needs(t, 'monitor')) return;
    const [older, newer] = state.monitor.runs;
    const expected = await waitFor('the API to compare the two runs', UI_WAIT_MS, async () => {
      const answer = await api(`compare?base=${older}&head=${newer}&limit=100`);
      if (answer.status === 503) return null; // a digest being written
      if (answer.status !== 200) throw fatal(`GET compare answered ${answer.status}: ${answer.text.slice(0, 300)}`);
      return answer.body;
    });
    await openHome();
    for (const job of [newer, older]) await page.locator(`#jobs [data-job-id="${job}"] input.compare-pick`).check();
    await page.locator('#compare-go').click();
    const ready = () => waitFor('the comparison', UI_WAIT_MS, () => dom(() => document.querySelector('#compare-results table') !== null
      && document.querySelector('#compare-summary svg.chart') !== null), { failOnError: true });
    await ready();
    const hash = new URLSearchParams((await dom(() => location.hash)).split('?')[1]);
    assert.deepEqual([hash.get('base'), hash.get('head')], [older, newer], 'the older run is the base');
    const counts = await tableTexts(page, '#compare-summary table.verdict-table');
    assert.deepEqual(counts, ['regressed', 'improved', 'new', 'gone', 'unchanged']
      .map((v) => [v.charAt(0).toUpperCase() + v.slice(1), String(expected.counts[v] ?? 0)]), 'URLs per verdict');
    const shown = await dom(() => [...document.querySelectorAll('#compare-results tbody tr')].map((tr) => ({
      url: tr.cells[0].querySelector('a').getAttribute('href'),
      verdict: tr.cells[1].querySelector('.badge').dataset.verdict,
      scores: [...tr.cells[2].querySelectorAll('.score')].map((s) => s.firstChild.textContent.trim()),
      deltas: [...tr.cells[3].querySelectorAll('li')].map((li) => ({ metric: li.dataset.metric, cls: li.className })),
    })));
    assert.deepEqual(shown.map((r) => [r.url, r.verdict]), expected.urls.map((u) => [u.url, u.verdict]), 'URLs and verdicts, in the API\'s order');
    const number = (side) => {
      const value = side ? (side.score ?? side.delivery_score) : null;
      return Number.isFinite(value) ? String(Math.round(value)) : null;
    };
    expected.urls.forEach((u, i) => {
      assert.deepEqual(shown[i].scores, [number(u.base), number(u.head)].filter(Boolean), `${u.url}: base and head scores`);
      const changes = (u.changes || []).filter((c) => c.metric !== 'score' && c.metric !== 'delivery_score');
      const want = changes.map((c) => ({ metric: c.metric, cls: c.verdict === 'regressed' ? 'delta-worse' : c.verdict === 'improved' ? 'delta-better' : 'delta-same' }));
      const byMetric = (a, b) => a.metric.localeCompare(b.metric);
      assert.deepEqual([...shown[i].deltas].sort(byMetric), want.sort(byMetric), `${u.url}: changes and their colours`);
    });
    t.diagnostic(`verdicts: ${JSON.stringify(expected.counts)}`);
    await viewScreenshots(t, 'compare', ready, '#compare-summary figure');
  });

  step('field data (Chrome UX Report): a field-only job shows real users\' verdicts, weekly LCP and the API\'s filter and counts', { timeout: JOB_WAIT_MS + 6 * UI_WAIT_MS }, async (t) => {
    if (!needs(t)) return;
    // Runs on its own too (--test-name-pattern): then it gives the page the key itself.
    if (!state.keyAccepted) {
      await page.goto(`${cfg.apiBase}/#/`, { waitUntil: 'domcontentloaded' });
      await page.locator('#api-key').fill(cfg.apiKey);
      await page.locator('#save-key').click();
      await waitFor('the key to be accepted', UI_WAIT_MS, async () => {
        const message = await dom(() => document.getElementById('key-message').textContent.trim());
        if (/not accepted|could not be checked/.test(message)) throw fatal(`the key was refused: ${message}`);
        return dom(() => document.getElementById('key-panel').hidden && document.getElementById('main').checkVisibility());
      }, { failOnError: true });
    }

    // The form: engine none measures field data only, so its box is ticked and locked; another
    // engine gives it back as it was.
    await openHome();
    const engine = page.locator('#engine');
    const fieldData = page.locator('#field-data');
    const engineBefore = await engine.inputValue();
    await page.locator('#field-history').setChecked(false);
    await fieldData.setChecked(false);
    await engine.selectOption('none');
    assert.deepEqual([await fieldData.isChecked(), await fieldData.isDisabled()], [true, true],
      'engine none leaves the field data box [ticked, disabled] as');
    assert.equal(await page.locator('#field-history').isDisabled(), false, 'engine none locks the history box');
    await engine.selectOption(engineBefore === 'none' ? 'auto' : engineBefore);
    assert.deepEqual([await fieldData.isChecked(), await fieldData.isDisabled()], [false, false],
      'another engine leaves the field data box [ticked, disabled] as');

    // The job, through the API: the fake Chrome UX Report gives every URL a record of its own
    // (a weekly history with it), none to a no-field-data host, poor everything to slow-field.
    const run = randomUUID().slice(0, 8);
    const urls = [`https://shop-${run}.example/a`, `https://slow-field-${run}.example/`, `https://no-field-data-${run}.example/x`];
    const id = await startJob({ name: `browser test field ${stamp}`, urls, engine: 'none', field_history: true });
    t.diagnostic(`job ${id}: ${urls.join(' ')}`);
    const finished = await jobFinished(id);
    assert.equal(finished.status, 'completed', `job ${id} ended ${finished.status}`);
    // Its summary (field_verdicts included) is complete once the job's report is written.
    const report = await waitFor(`job ${id}'s complete summary (through the API)`, UI_WAIT_MS, async () => {
      const { status, body, text } = await api(`results/${encodeURIComponent(id)}?limit=100`);
      if (status !== 200) throw fatal(`GET results/${id} answered ${status}: ${text.slice(0, 300)}`);
      return body.summary?.complete === true ? body : null;
    });
    const expected = report.results;
    assert.equal(expected.length, urls.length, `the API lists ${expected.length} results`);
    const apiVerdict = (row) => {
      const m = row.metrics || {};
      return m.field_status === 'available' && FIELD_VERDICT_WORDS[m.field_overall_category] && m.field_overall_category !== 'unavailable'
        ? m.field_overall_category : 'unavailable';
    };
    const hasHistory = (row) => Array.isArray(row.metrics?.field_history?.lcp_ms) && row.metrics.field_history.lcp_ms.some(Number.isFinite);
    const rowOf = (host) => {
      const row = expected.find((r) => new URL(r.url).hostname.startsWith(`${host}-${run}`));
      assert.ok(row, `no result for the ${host} URL: ${expected.map((r) => r.url).join(', ')}`);
      return row;
    };
    t.diagnostic(`the API's verdicts: ${expected.map((r) => `${r.url} ${apiVerdict(r)}${hasHistory(r) ? ' (history)' : ''}`).join(', ')}; `
      + `summary: ${JSON.stringify(report.summary.field_verdicts)}`);

    // The job page: field columns instead of lab ones, each row's verdict in words.
    await page.evaluate((job) => { location.hash = `#/jobs/${encodeURIComponent(job)}`; }, id);
    const ready = () => waitFor(`job ${id}'s page with its ${urls.length} field results`, UI_WAIT_MS, async () => {
      const s = await jobPageState();
      if (s.id !== id || !FINISHED.has(s.status) || s.rows.length !== urls.length) return null;
      const field = await fieldRowsState();
      return field.rows.every((r) => r.verdict !== null) ? field : null;
    }, { failOnError: true });
    const shown = await ready();
    assert.deepEqual(shown.headers, { verdict: true, trend: true }, 'the "Field (real users)" and "Field LCP by week" columns shown');
    assert.deepEqual(shown.lab, [], 'lab columns shown for a job that loaded no page');
    const byUrl = new Map(shown.rows.map((r) => [r.url, r]));
    assert.deepEqual([...byUrl.keys()].sort(), expected.map((r) => r.url).sort(), 'the rows\' URLs');
    assert.equal(byUrl.get(rowOf('slow-field').url).verdict, 'Poor', 'the slow-field row\'s verdict');
    assert.equal(byUrl.get(rowOf('no-field-data').url).verdict, 'Unavailable', 'the no-field-data row\'s verdict');
    for (const row of expected) {
      const r = byUrl.get(row.url);
      assert.deepEqual([r.verdictKey, r.verdict], [apiVerdict(row), FIELD_VERDICT_WORDS[apiVerdict(row)]], `${row.url}: the verdict`);
      if (hasHistory(row)) {
        assert.ok(r.sparkline, `${row.url} has a weekly history but no sparkline`);
        assert.equal(r.sparkline.role, 'img', `${row.url}: the sparkline's role`);
        assert.match(r.sparkline.name || '', /^Field LCP over \d+ weeks: .+ → .+$/, `${row.url}: the sparkline's title`);
        assert.ok(r.sparkline.shown && r.sparkline.drawn, `${row.url}: the sparkline is not drawn: ${JSON.stringify(r.sparkline)}`);
      } else {
        assert.equal(r.sparkline, null, `${row.url} has no weekly history but a sparkline`);
      }
    }
    assert.ok(hasHistory(rowOf('shop')), `the shop URL got no weekly history: ${JSON.stringify(rowOf('shop').metrics)}`);
    // What a screen reader is told: the accessible name comes from the SVG's title.
    const named = page.locator('#results tbody').getByRole('img', { name: /^Field LCP over/ });
    assert.equal(await named.count(), expected.filter(hasHistory).length, 'sparklines named "Field LCP over …"');

    // Lab and field, told apart in one sentence.
    const note = await dom(() => ({ shown: document.getElementById('field-note').checkVisibility(), text: document.getElementById('field-note').textContent.trim() }));
    assert.ok(note.shown, 'the lab-vs-field note (#field-note) is not shown');
    assert.match(note.text, /real Chrome users experienced over the last 28 days/, `#field-note: ${note.text}`);

    // The summary's verdict counts are the API's.
    const counts = await dom(() => [...document.querySelectorAll('#summary .field-verdicts li')].map((li) => ({
      verdict: [...li.querySelector('.field-verdict').classList].find((c) => c.startsWith('verdict-'))?.slice('verdict-'.length),
      words: li.querySelector('.field-verdict').textContent.trim(),
      count: li.querySelector('strong').textContent.trim(),
    })));
    const verdicts = report.summary.field_verdicts || {};
    assert.deepEqual(counts, Object.entries(FIELD_VERDICT_WORDS).map(([verdict, words]) => ({ verdict, words, count: String(verdicts[verdict] ?? 0) })),
      `the summary's verdict counts (the API's: ${JSON.stringify(verdicts)})`);

    // "Sort by" offers real users' p75s, and the API orders the whole job by them.
    const sorts = await dom(() => [...document.querySelectorAll('#results-sort option')].map((o) => o.value));
    for (const key of ['field_lcp_ms', 'field_inp_ms', 'field_cls', 'field_fcp_ms', 'field_ttfb_ms']) {
      assert.ok(sorts.includes(key), `"Sort by" has no ${key}: ${sorts.join(', ')}`);
    }
    assert.ok(!sorts.includes('ttfb_ms') && !sorts.includes('score'), `"Sort by" offers lab orders for a job that loaded no page: ${sorts.join(', ')}`);
    const sorted = page.waitForResponse((r) => r.url().includes(`${API_PATH}results/`) && new URL(r.url()).searchParams.get('sort') === 'field_lcp_ms');
    await page.locator('#results-sort').selectOption('field_lcp_ms');
    assert.equal(new URL((await sorted).url()).searchParams.get('order'), 'asc', `asked ${(await sorted).url()}`);
    await resultsSettled('the rows in real users\' LCP order');
    const inOrder = await api(`results/${encodeURIComponent(id)}?limit=100&sort=field_lcp_ms&order=asc`);
    assert.deepEqual((await fieldRowsState()).rows.map((r) => r.url), inOrder.body.results.map((r) => r.url), 'rows sorted by field LCP, in the API\'s order');
    await page.locator('#results-sort').selectOption('');
    await resultsSettled('the rows in the order submitted');

    // The verdict filter: "Poor" leaves the rows the API lists as poor.
    assert.ok(await page.locator('#field-filter').isVisible(), 'no "Field verdict" filter');
    const filtered = page.waitForResponse((r) => r.url().includes(`${API_PATH}results/`)
      && new URL(r.url()).searchParams.get('field_overall_category') === 'poor');
    await page.getByLabel('Field verdict', { exact: true }).selectOption({ label: 'Poor' });
    assert.equal((await filtered).status(), 200, 'GET results with field_overall_category=poor');
    await resultsSettled('the "Poor" filter\'s rows');
    const poor = await api(`results/${encodeURIComponent(id)}?field_overall_category=poor&limit=100`);
    assert.equal(poor.status, 200, `GET results/${id}?field_overall_category=poor answered ${poor.status}: ${poor.text.slice(0, 300)}`);
    const poorShown = (await fieldRowsState()).rows;
    assert.deepEqual(poorShown.map((r) => r.url).sort(), poor.body.results.map((r) => r.url).sort(), 'the rows the "Poor" filter leaves');
    assert.ok(poorShown.every((r) => r.verdict === 'Poor'), `rows under "Poor" with another verdict: ${JSON.stringify(poorShown)}`);
    assert.ok(poorShown.some((r) => r.url === rowOf('slow-field').url), 'the slow-field row is not under "Poor"');
    const total = verdicts.poor ?? 0;
    assert.equal((await page.locator('#results-count').textContent()).trim(), `Showing ${poorShown.length} of ${total} URLs`, '#results-count under "Poor"');
    await page.locator('#field-filter').selectOption('');
    await resultsSettled('every row again');
    await ready();

    // Wide: the summary's verdicts and the table together; phone: the filters, the note, the rows.
    await viewScreenshots(t, 'field', ready, '#results-heading', { wideFocus: '#summary-heading' });
  });

  step('fits a 360 px wide phone screen', {}, async (t) => {
    if (!needs(t, 'keyAccepted')) return;
    await page.setViewportSize({ width: 360, height: 780 });
    // The trailing-slash form this time; the key is still in this tab's session storage.
    await page.goto(`${cfg.apiBase}/#/`, { waitUntil: 'domcontentloaded' });
    await waitFor('the home view at 360 px', UI_WAIT_MS, () => dom(() => {
      const shown = (id) => document.getElementById(id)?.checkVisibility();
      return shown('view-home') && !shown('jobs-loading') && document.querySelectorAll('#jobs [data-job-id]').length > 0;
    }), { failOnError: true });
    const overflow = () => dom(() => ({ page: document.documentElement.scrollWidth, viewport: window.innerWidth }));
    let width = await overflow();
    assert.ok(width.page <= width.viewport, `the home view scrolls sideways at 360 px (${width.page} px wide)`);
    await screenshot(t, 'phone-home.png');
    if (state.resultsShown) {
      await page.goto(`${cfg.apiBase}/#/jobs/${encodeURIComponent(state.job1)}`, { waitUntil: 'domcontentloaded' });
      await waitFor('the first job\'s results at 360 px', UI_WAIT_MS,
        async () => (await jobPageState()).rows.length === PAGES, { failOnError: true });
      width = await overflow();
      assert.ok(width.page <= width.viewport, `the job page scrolls sideways at 360 px (${width.page} px wide)`);
      await screenshot(t, 'phone-job.png');
    }
    const calls = apiRequests.filter((r) => r.url.startsWith(`${cfg.apiBase}/api/`));
    assert.ok(calls.length > 0, 'no API call from the page opened with the trailing slash');
  });

  step('no script errors or CSP violations, and the API key never appears in a URL', { screenshotOnFailure: false }, (t) => {
    if (!needs(t, 'keyAccepted')) return;
    // A finished job's CSV comes from the exports bucket through a presigned link (it needs no
    // key, and must not carry one): the only request allowed outside the API.
    const exportLinks = apiRequests.filter((r) => r.method === 'GET' && /\/exports\/[0-9a-f-]+\.csv\?/.test(r.url)
      && r.url.includes('X-Amz-Signature='));
    assert.ok(exportLinks.every((r) => !r.url.includes(cfg.apiKey)), 'the API key appears in an export link');
    const outside = apiRequests.filter((r) => r.url !== cfg.apiBase && !r.url.startsWith(`${cfg.apiBase}/`)
      && !r.url.startsWith(`${cfg.apiBase}#`) && !exportLinks.includes(r));
    assert.deepEqual(outside, [], `requests outside ${cfg.apiBase}/`);
    const wrongPath = apiRequests.filter((r) => !exportLinks.includes(r)).filter((r) => {
      const rest = r.url.slice(cfg.apiBase.length);
      return !(rest === '' || rest.startsWith('/#') || rest === '/' || rest.startsWith(API_PATH)
        || DASHBOARD_FILES.some((file) => rest === `/dashboard/${file}`));
    });
    assert.deepEqual(wrongPath, [], 'requests that are neither the page, its files nor the API');
    assert.ok(apiRequests.every((r) => !r.url.includes(cfg.apiKey)), 'the API key appears in a request URL');
    const summary = (messages) => [...new Set(messages)]
      .map((m) => `\n    ${messages.filter((x) => x === m).length}× ${m.length > 300 ? `${m.slice(0, 300)}…` : m}`).join('');
    const other = consoleErrors.filter((m) => !/Content Security Policy/i.test(m));
    if (other.length) t.diagnostic(`console errors (not failures; the browser logs every non-2xx answer): ${summary(other)}`);
    assert.equal(pageErrors.length, 0, `uncaught script errors in the page:${summary(pageErrors)}`);
    const csp = consoleErrors.filter((m) => /Content Security Policy/i.test(m));
    assert.equal(csp.length, 0, `the page broke its Content-Security-Policy (what was blocked does not work):${summary(csp)}`);
  });
});
