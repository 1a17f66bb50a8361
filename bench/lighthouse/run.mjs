// Lighthouse, as its CLI runs it, on a list of pages: the reference `speedbatch-bench
// lighthouse-compare` measures the browser engine against.
//
//   node run.mjs [--runs N] [--form-factor mobile|desktop|both] URL...
//   node run.mjs < jobs.jsonl      one {"url", "form_factor", "run"} per line
//
// Prints one JSON line per run: {url, form_factor, run, score (0–100), fcp_ms, lcp_ms, tbt_ms,
// cls, speed_index_ms, ttfb_ms, total_bytes, requests, ...}; a run Lighthouse could not
// score has `error` and null figures. Runs strictly one after another: the harness times
// nothing else meanwhile, and Lighthouse's own CPU benchmark must not share the cores.
//
// Mobile is Lighthouse's default config, desktop its `desktop-config.js`; the performance
// category only, default throttling (simulated). Chromium is CHROMIUM_PATH, else
// /usr/bin/chromium.

import fs from 'node:fs';
import readline from 'node:readline';

import * as chromeLauncher from 'chrome-launcher';
import lighthouse, {desktopConfig} from 'lighthouse';

const LIGHTHOUSE_VERSION = JSON.parse(
  fs.readFileSync(new URL('./node_modules/lighthouse/package.json', import.meta.url), 'utf8'),
).version;

// The CLI's own launch (chrome-launcher's default switches, a fresh temporary profile), once
// per run as the CLI does: nothing cached or compiled carries from one page to the next, for
// about 0.8 s of a 10 s run. Plus what this machine needs: no display, no sandbox as root, no
// GPU, and nothing of Chromium's own reaching for the network, which is not there and would
// stall or skew the first navigation.
const CHROME_FLAGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

function parseArgs(argv) {
  const options = {runs: 1, formFactors: ['mobile', 'desktop'], urls: []};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--runs') {
      options.runs = Number(argv[++i]);
      if (!Number.isInteger(options.runs) || options.runs < 1) throw new Error('--runs needs a whole number ≥ 1');
    } else if (arg === '--form-factor') {
      const value = argv[++i];
      if (value === 'both') options.formFactors = ['mobile', 'desktop'];
      else if (value === 'mobile' || value === 'desktop') options.formFactors = [value];
      else throw new Error('--form-factor is mobile, desktop or both');
    } else if (arg.startsWith('--')) {
      throw new Error(`unknown option ${arg}`);
    } else {
      options.urls.push(arg);
    }
  }
  return options;
}

async function* jobsFromStdin() {
  const lines = readline.createInterface({input: process.stdin, crlfDelay: Infinity});
  for await (const line of lines) {
    if (!line.trim()) continue;
    const job = JSON.parse(line);
    if (typeof job.url !== 'string' || !['mobile', 'desktop'].includes(job.form_factor)) {
      throw new Error(`a job needs url and form_factor (mobile or desktop): ${line}`);
    }
    yield {url: job.url, form_factor: job.form_factor, run: job.run ?? 1};
  }
}

function* jobsFromArgs(options) {
  for (let run = 1; run <= options.runs; run++) {
    for (const url of options.urls) {
      for (const form_factor of options.formFactors) yield {url, form_factor, run};
    }
  }
}

function numeric(lhr, audit) {
  const value = lhr.audits[audit]?.numericValue;
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

function requestCount(lhr) {
  const diagnostics = lhr.audits.diagnostics?.details?.items?.[0];
  if (typeof diagnostics?.numRequests === 'number') return diagnostics.numRequests;
  const items = lhr.audits['network-requests']?.details?.items;
  return Array.isArray(items) ? items.length : null;
}

async function runOne(job) {
  const started = Date.now();
  const chrome = await chromeLauncher.launch({
    chromePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    chromeFlags: CHROME_FLAGS,
    logLevel: 'silent',
  });
  try {
    const flags = {port: chrome.port, output: 'json', logLevel: 'error', onlyCategories: ['performance']};
    const config = job.form_factor === 'desktop' ? desktopConfig : undefined;
    const result = await lighthouse(job.url, flags, config);
    const lhr = result?.lhr;
    if (!lhr) throw new Error('Lighthouse returned no result');
    const score = lhr.categories.performance?.score;
    const error = lhr.runtimeError ? `${lhr.runtimeError.code}: ${lhr.runtimeError.message}` : null;
    return {
      ...job,
      score: typeof score === 'number' ? Math.round(score * 100) : null,
      fcp_ms: numeric(lhr, 'first-contentful-paint'),
      lcp_ms: numeric(lhr, 'largest-contentful-paint'),
      tbt_ms: numeric(lhr, 'total-blocking-time'),
      cls: numeric(lhr, 'cumulative-layout-shift'),
      speed_index_ms: numeric(lhr, 'speed-index'),
      ttfb_ms: numeric(lhr, 'server-response-time'),
      total_bytes: numeric(lhr, 'total-byte-weight'),
      requests: requestCount(lhr),
      error,
      warnings: lhr.runWarnings,
      benchmark_index: lhr.environment?.benchmarkIndex ?? null,
      lighthouse: LIGHTHOUSE_VERSION,
      wall_ms: Date.now() - started,
    };
  } finally {
    await chrome.kill();
  }
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const jobs = options.urls.length ? jobsFromArgs(options) : jobsFromStdin();
  let failed = 0;
  for await (const job of jobs) {
    let line;
    try {
      line = await runOne(job);
    } catch (err) {
      line = {...job, score: null, error: String(err?.message ?? err), lighthouse: LIGHTHOUSE_VERSION};
    }
    if (line.error) failed++;
    process.stdout.write(JSON.stringify(line) + '\n');
  }
  if (failed) process.stderr.write(`run.mjs: ${failed} run(s) had errors\n`);
}

main().catch(err => {
  process.stderr.write(`run.mjs: ${err?.stack ?? err}\n`);
  process.exitCode = 1;
});
