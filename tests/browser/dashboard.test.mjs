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
// The steps build on each other (one job is submitted, watched, opened, downloaded); when a
// step fails, the steps that need its result are skipped and say why. Every wait is on a DOM
// (or site) condition with a generous limit; nothing asserts on timings.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
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

    await button.focus();
    await page.keyboard.press('Enter');
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
      return !(rest === '' || rest.startsWith('/#') || rest === '/' || rest.startsWith(API_PATH));
    });
    assert.deepEqual(wrongPath, [], 'requests that are neither the page nor the API');
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
