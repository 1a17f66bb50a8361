// The home page's jobs: the new-job form (URLs typed, loaded from a file or a sitemap, checked
// by a dry run), the list of jobs, and ticking two of them to compare.

import { isFinished } from './live.js';
import { apiJson } from './api.js';
import { $, el } from './dom.js';
import { formatBytes, formatSeconds, jobName, numberFormat, plural } from './format.js';
import { compareHref, isWebUrl, jobHref } from './links.js';
import {
  announce, clearError, describeFieldsWith, errorText, limitLines, noticeOnNextView, showError,
} from './messages.js';
import { tracker } from './tracker.js';
import { createJobRow, updateJobRow } from './job-row.js';

const DRY_RUN_DELAY_MS = 600;
const MAX_URLS = 10000;
const MAX_FILE_BYTES = 20 * 1024 * 1024;
const JOBS_PAGE_SIZE = 20;
const REJECTED_SHOWN = 200;

// Form fields as the API names them, so 422 details can point at the right control.
const FIELD_INPUT_IDS = {
  name: 'job-name',
  urls: 'urls',
  sitemap_url: 'sitemap-url',
  priority: 'priority',
  strategy: 'strategy',
  engine: 'engine',
  batch_size: 'batch-size',
  timeout_seconds: 'timeout',
  max_retries: 'max-retries',
  runs: 'runs',
  cache_ttl_seconds: 'cache-ttl',
  callback_url: 'callback-url',
  categories: 'categories',
  field_data: 'field-data',
  field_history: 'field-history',
};

// ---------------------------------------------------------------- jobs list

const jobsList = {
  rows: new Map(), // id -> { li, ..., unwatch }
  cursor: null,
  generation: 0,
  loaded: false,
};

// ---------------------------------------------------------------- choosing two jobs to compare

/** Jobs ticked in the list, by id (kept while the list is shown). */
const compareSelection = new Map();

const comparePick = {
  selected: (id) => compareSelection.has(id),
  toggle(job, on) {
    if (on) compareSelection.set(job.batch_job_id, job);
    else compareSelection.delete(job.batch_job_id);
    renderCompareBar();
  },
  forget: (id) => compareSelection.delete(id),
};

export function renderCompareBar() {
  const picked = [...compareSelection.values()];
  const button = $('compare-go');
  button.disabled = picked.length !== 2;
  $('compare-hint').textContent = picked.length === 0 ? 'Tick two finished jobs to compare them URL by URL.'
    : picked.length === 1 ? `“${jobName(picked[0])}” ticked: tick one more.`
      : picked.length === 2 ? 'The older job is the base, the newer the head.'
        : `${picked.length} jobs ticked: untick all but two.`;
}

function compareSelected() {
  const picked = [...compareSelection.values()];
  if (picked.length === 2) location.hash = compareHref(picked[0], picked[1]);
}

export function clearJobsList() {
  for (const row of jobsList.rows.values()) row.unwatch?.();
  compareSelection.clear();
  renderCompareBar();
  jobsList.rows.clear();
  jobsList.cursor = null;
  jobsList.loaded = false;
  jobsList.generation += 1;
  $('jobs').replaceChildren();
  $('jobs-loading').hidden = true;
  $('jobs-more').hidden = true;
  $('jobs-empty').hidden = true;
}

function addJobRow(job) {
  if (!job || !job.batch_job_id) return;
  const existing = jobsList.rows.get(job.batch_job_id);
  if (existing) { updateJobRow(existing, job); return; }
  const row = createJobRow(job, { pick: comparePick });
  jobsList.rows.set(job.batch_job_id, row);
  $('jobs').append(row.li);
  // One "*" subscription serves the whole list.
  if (!isFinished(job)) row.unwatch = tracker.watch(job.batch_job_id, (fresh) => updateJobRow(row, fresh), job, { target: '*' });
}

export async function loadJobs({ reset = false } = {}) {
  if (reset) clearJobsList();
  const generation = jobsList.generation;
  const params = new URLSearchParams({ limit: String(JOBS_PAGE_SIZE) });
  if (jobsList.cursor) params.set('cursor', jobsList.cursor);
  const status = $('jobs-status-filter').value;
  if (status) params.set('status', status);
  $('jobs-loading').hidden = false;
  $('jobs-more').disabled = true;
  try {
    const { data } = await apiJson(`jobs?${params}`);
    if (generation !== jobsList.generation) return; // a newer load replaced this one
    for (const job of data.jobs || []) addJobRow(job);
    jobsList.cursor = data.next_cursor || null;
    jobsList.loaded = true;
  } catch (err) {
    if (generation === jobsList.generation) showError(err);
  } finally {
    if (generation === jobsList.generation) {
      $('jobs-loading').hidden = true;
      $('jobs-more').disabled = false;
      $('jobs-more').hidden = !jobsList.cursor;
      $('jobs-empty').hidden = !jobsList.loaded || jobsList.rows.size > 0;
      $('jobs-empty').textContent = status ? 'No jobs with this status.' : 'No jobs yet.';
    }
  }
}

// ---------------------------------------------------------------- new job form

const newJob = {
  entries: [],          // [{ value, line }] from the textarea, blank lines dropped
  dryRun: { state: 'idle', result: null, error: null },
  dryRunTimer: null,
  dryRunAbort: null,
  dryRunUnsupported: false,
  lastResult: null,     // last dry-run verdict, still shown while re-checking
  submitting: false,
  submittedEntries: [],
};

function urlSource() {
  return document.querySelector('input[name="source"]:checked')?.value || 'list';
}

/** Non-empty lines of the textarea with their 1-based line numbers. */
function readEntries(text) {
  const entries = [];
  text.split(/\r\n|\r|\n/).forEach((raw, index) => {
    const value = raw.trim();
    if (value) entries.push({ value, line: index + 1 });
  });
  return entries;
}

/** Turns an API field such as "urls[3]" into words the user can find. */
function describeField(field) {
  const match = /^urls\[(\d+)\]$/.exec(field || '');
  if (match) {
    const index = Number(match[1]);
    const entry = newJob.submittedEntries[index];
    return entry ? `URL on line ${entry.line} (${entry.value})` : `URL number ${index + 1}`;
  }
  const id = FIELD_INPUT_IDS[field];
  const label = id && document.querySelector(`label[for="${id}"], #${id} > legend`);
  return label ? label.textContent.trim() : String(field || 'Value').replace(/_/g, ' ');
}

// The error banner names the form's fields as the form does (messages.js).
describeFieldsWith(describeField);

function markInvalidFields(details) {
  if (!Array.isArray(details)) return;
  for (const detail of details) {
    const field = String(detail?.field || '').replace(/\[\d+\]$/, '');
    const input = $(FIELD_INPUT_IDS[field] || '');
    if (input) input.setAttribute('aria-invalid', 'true');
  }
}

function clearInvalidFields() {
  for (const node of document.querySelectorAll('#new-job-form [aria-invalid]')) node.removeAttribute('aria-invalid');
}

/** Accepts both the 200 dry-run body and the 422 error.details shape. */
function normaliseDryRun(data) {
  const rejected = Array.isArray(data?.rejected) ? data.rejected : [];
  const urls = Array.isArray(data?.urls) ? data.urls : [];
  return {
    accepted: Number.isFinite(data?.accepted) ? data.accepted : urls.length,
    urls,
    rejected: rejected.map((r) => (typeof r === 'string' ? { input: r, reason: '' } : { input: String(r?.input ?? ''), reason: String(r?.reason ?? '') })),
    duplicates: Number(data?.duplicates_removed) || 0,
    overLimit: data?.over_limit && typeof data.over_limit === 'object' ? data.over_limit : null,
  };
}

function isDryRunDetails(details) {
  return Boolean(details) && typeof details === 'object' && !Array.isArray(details) && Array.isArray(details.rejected);
}

function setDryRun(state) {
  newJob.dryRun = { result: null, error: null, ...state };
  if (state.state === 'ok') newJob.lastResult = state.result;
  else if (state.state !== 'pending') newJob.lastResult = null;
  renderDryRun();
  updateSubmitState();
}

export function renderDryRun() {
  const box = $('dry-run');
  const { state, result, error } = newJob.dryRun;
  const count = newJob.entries.length;
  let text;
  let shownState = state;
  if (state === 'idle') text = 'Paste URLs or load a file; they are checked before you start.';
  else if (state === 'too-many') text = `${plural(count, 'line')}: a job can hold at most ${numberFormat.format(MAX_URLS)} URLs. Split the list into several jobs.`;
  else if (state === 'pending') text = `Checking ${plural(count, 'URL')}…`;
  else if (state === 'unchecked') text = 'These URLs are checked by the service when you start the job.';
  else if (state === 'error') text = `The URLs could not be checked: ${errorText(error)}`
    + (error?.status === 413 ? '' : ' You can still start the job; the service checks them again.');
  else if (result.accepted === 0) {
    shownState = 'none';
    text = `None of the ${plural(count, 'line')} can be analysed. See the reasons below.`;
  } else {
    text = `${plural(result.accepted, 'URL')} will be analysed`
      + ` · ${plural(result.duplicates, 'duplicate')} removed`
      + ` · ${plural(result.rejected.length, 'input')} rejected`;
    // A job that would be refused now (one of the tenant's limits) says so before it is started.
    if (result.overLimit) text += ` · not now: ${limitLines({ details: result.overLimit }).join(' ')}`;
  }
  box.dataset.state = shownState;
  box.textContent = text;
  renderRejected(state === 'ok' ? result : (state === 'pending' ? newJob.lastResult : null));
}

function renderRejected(result) {
  const rejected = result ? result.rejected : [];
  const list = $('rejected');
  list.replaceChildren(...rejected.slice(0, REJECTED_SHOWN).map((r) =>
    el('li', {}, el('code', {}, r.input || '(empty)'), r.reason ? ` — ${r.reason}` : '')));
  const more = rejected.length - REJECTED_SHOWN;
  $('rejected-more').hidden = more <= 0;
  $('rejected-more').textContent = more > 0 ? `…and ${plural(more, 'more input')} not listed here.` : '';
  // Offer the cleaned list only when it differs from what the user typed.
  $('use-cleaned').hidden = !result || result.urls.length === 0 || (rejected.length === 0 && result.duplicates === 0);
  $('rejected-box').hidden = !result || (rejected.length === 0 && $('use-cleaned').hidden);
}

function updateUrlCount() {
  const count = newJob.entries.length;
  $('urls-count').textContent = count ? `${plural(count, 'line')} entered.` : 'No URLs yet.';
}

function scheduleDryRun(delay = DRY_RUN_DELAY_MS) {
  clearTimeout(newJob.dryRunTimer);
  newJob.dryRunAbort?.abort();
  const count = newJob.entries.length;
  if (count === 0) return setDryRun({ state: 'idle' });
  if (count > MAX_URLS) return setDryRun({ state: 'too-many' });
  if (newJob.dryRunUnsupported) return setDryRun({ state: 'unchecked' });
  setDryRun({ state: 'pending' });
  newJob.dryRunTimer = setTimeout(runDryRun, delay);
}

/** Asks the API which URLs it would accept; nothing is created (dry_run: true). */
async function runDryRun() {
  const controller = new AbortController();
  newJob.dryRunAbort = controller;
  const urls = newJob.entries.map((e) => e.value);
  try {
    const { status, data } = await apiJson('start', { method: 'POST', body: { urls, dry_run: true }, signal: controller.signal });
    if (controller.signal.aborted) return;
    if (status !== 200 || !data || data.dry_run !== true) {
      // The service ignored dry_run: do not check again this session.
      newJob.dryRunUnsupported = true;
      setDryRun({ state: 'unchecked' });
      return;
    }
    setDryRun({ state: 'ok', result: normaliseDryRun(data) });
  } catch (err) {
    if (err.name === 'AbortError' || controller.signal.aborted) return;
    if (err.status === 422 && isDryRunDetails(err.details)) {
      setDryRun({ state: 'ok', result: normaliseDryRun({ ...err.details, accepted: 0 }) });
    } else if (err.status === 401) {
      setDryRun({ state: 'idle' });
    } else {
      setDryRun({ state: 'error', error: err });
    }
  } finally {
    if (newJob.dryRunAbort === controller) newJob.dryRunAbort = null;
  }
}

function onUrlsChanged({ immediate = false } = {}) {
  newJob.entries = readEntries($('urls').value);
  $('urls').removeAttribute('aria-invalid');
  updateUrlCount();
  scheduleDryRun(immediate ? 0 : DRY_RUN_DELAY_MS);
}

/** Why submit is disabled, or '' when the job can be started. */
function submitBlocker() {
  if (newJob.submitting) return 'Starting the job…';
  if (urlSource() === 'sitemap') {
    return isWebUrl($('sitemap-url').value) ? '' : 'Enter the sitemap’s address (http or https).';
  }
  const { state, result, error } = newJob.dryRun;
  switch (state) {
    case 'idle': return 'Add at least one URL.';
    case 'too-many': return `At most ${numberFormat.format(MAX_URLS)} URLs per job.`;
    case 'pending': return 'Checking the URLs…';
    case 'unchecked': return '';
    case 'error': return error?.status === 413 ? 'The list is too large.' : '';
    case 'ok': return result.accepted > 0 ? '' : 'None of the URLs can be analysed.';
    default: return '';
  }
}

export function updateSubmitState() {
  const blocker = submitBlocker();
  $('submit').disabled = Boolean(blocker);
  $('submit-hint').textContent = blocker;
}

function numberValue(id) {
  return Number.parseInt($(id).value, 10);
}

/** The POST start body from the form; only options the user can set are sent. */
function buildJobBody() {
  const body = {
    priority: $('priority').value,
    strategy: $('strategy').value,
    engine: $('engine').value,
    batch_size: numberValue('batch-size'),
    timeout_seconds: numberValue('timeout'),
    max_retries: numberValue('max-retries'),
    runs: numberValue('runs'),
    cache_ttl_seconds: numberValue('cache-ttl'),
  };
  const name = $('job-name').value.trim();
  if (name) body.name = name;
  if (urlSource() === 'sitemap') {
    body.sitemap_url = $('sitemap-url').value.trim();
  } else {
    // Send what the user entered: the service cleans it again and reports
    // rejected inputs against the original text.
    body.urls = newJob.entries.map((e) => e.value);
  }
  if (body.engine === 'psi') {
    const categories = [...document.querySelectorAll('input[name="categories"]:checked')].map((c) => c.value);
    if (categories.length) body.categories = categories;
  }
  const callback = $('callback-url').value.trim();
  if (callback) body.callback_url = callback;
  // Sent only when asked: a deployment without a Chrome UX Report key refuses field data, and
  // should not be asked for it by default.
  if ($('field-data').checked) body.field_data = true;
  if ($('field-history').checked) body.field_history = true;
  return body;
}

function createdMessage(job, body) {
  const parts = [`Job “${jobName(job)}” started with ${plural(job.accepted ?? job.total_urls ?? 0, 'URL')}`];
  const rejected = Array.isArray(job.rejected) ? job.rejected.length : Number(job.rejected) || 0;
  if (rejected) parts.push(`${plural(rejected, 'input')} rejected`);
  if (job.duplicates_removed) parts.push(`${plural(job.duplicates_removed, 'duplicate')} removed`);
  let message = parts.join(', ') + '.';
  if (Number.isFinite(job.effective_timeout_seconds) && job.effective_timeout_seconds !== body.timeout_seconds) {
    message += ` The service uses a timeout of ${formatSeconds(job.effective_timeout_seconds)}.`;
  }
  return message;
}

async function submitJob(event) {
  event.preventDefault();
  clearError();
  clearInvalidFields();
  if (submitBlocker()) return;
  const form = $('new-job-form');
  if (!form.reportValidity()) return;
  const body = buildJobBody();
  newJob.submittedEntries = [...newJob.entries];
  newJob.submitting = true;
  updateSubmitState();
  try {
    const { data } = await apiJson('start', { method: 'POST', body });
    const message = createdMessage(data, body);
    resetUrlInput();
    $('job-name').value = '';
    announce(message);
    noticeOnNextView(message);
    location.hash = jobHref(data.batch_job_id);
  } catch (err) {
    if (err.status === 422 && isDryRunDetails(err.details)) {
      setDryRun({ state: 'ok', result: normaliseDryRun({ ...err.details, accepted: 0 }) });
      $('urls').setAttribute('aria-invalid', 'true');
    }
    markInvalidFields(err.details);
    showError(err);
  } finally {
    newJob.submitting = false;
    updateSubmitState();
  }
}

function resetUrlInput() {
  $('urls').value = '';
  $('url-file').value = '';
  $('sitemap-url').value = '';
  onUrlsChanged({ immediate: true });
}

function useCleanedList() {
  const result = newJob.dryRun.result;
  if (!result || !result.urls.length) return;
  $('urls').value = result.urls.join('\n');
  onUrlsChanged({ immediate: true });
  announce(`The list now holds the ${plural(result.urls.length, 'accepted URL')}.`);
  $('urls').focus();
}

function onSourceChanged() {
  const sitemap = urlSource() === 'sitemap';
  $('list-source').hidden = sitemap;
  $('sitemap-source').hidden = !sitemap;
  updateSubmitState();
}

// ---------------------------------------------------------------- file upload

/** Splits CSV text into rows of cells: quoted cells, doubled quotes, CRLF. */
function parseCsv(text, delimiter) {
  const rows = [];
  let row = [], cell = '', quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i += 1; }
      else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"' && cell.trim() === '') {
      quoted = true; cell = '';
    } else if (c === delimiter) {
      row.push(cell); cell = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i += 1;
      row.push(cell); rows.push(row); row = []; cell = '';
    } else {
      cell += c;
    }
  }
  if (cell !== '' || row.length) { row.push(cell); rows.push(row); }
  return rows;
}

/** Spreadsheet exports use commas, semicolons or tabs: pick the most common one on line 1. */
function guessDelimiter(text) {
  const firstLine = text.split(/\r?\n/, 1)[0] || '';
  const counts = [',', ';', '\t'].map((d) => [d, firstLine.split(d).length - 1]);
  counts.sort((a, b) => b[1] - a[1]);
  return counts[0][1] > 0 ? counts[0][0] : ',';
}

function looksLikeUrl(text) {
  const value = (text || '').trim();
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(value) || /^[^\s/,;]+\.[a-z]{2,}(?:[/:?#]|$)/i.test(value);
}

/** URLs from a CSV: the "url" column if there is one, else the first column; the header row is skipped. */
function urlsFromCsv(text) {
  const rows = parseCsv(text, guessDelimiter(text)).filter((r) => r.some((cell) => cell.trim()));
  if (!rows.length) return [];
  const header = rows[0].map((cell) => cell.trim().toLowerCase());
  let column = header.findIndex((h) => h === 'url' || h === 'urls');
  let start = 0;
  if (column >= 0) start = 1;
  else {
    column = 0;
    if (!looksLikeUrl(rows[0][0])) start = 1; // a header such as "page" or "address"
  }
  return rows.slice(start).map((r) => (r[column] || '').trim()).filter(Boolean);
}

function urlsFromText(text) {
  return readEntries(text).map((e) => e.value);
}

async function loadUrlFile(file) {
  if (!file) return;
  clearError();
  if (file.size > MAX_FILE_BYTES) {
    showError(`“${file.name}” is ${formatBytes(file.size)}; files up to ${formatBytes(MAX_FILE_BYTES)} can be read.`);
    return;
  }
  let text;
  try {
    text = (await file.text()).replace(/^\uFEFF/, '');
  } catch {
    showError(`“${file.name}” could not be read.`);
    return;
  }
  const isCsv = /\.csv$/i.test(file.name) || /csv/i.test(file.type);
  const urls = isCsv ? urlsFromCsv(text) : urlsFromText(text);
  $('urls').value = urls.join('\n');
  document.querySelector('input[name="source"][value="list"]').checked = true;
  onSourceChanged();
  onUrlsChanged({ immediate: true });
  announce(`Loaded ${plural(urls.length, 'line')} from ${file.name}.`);
}

/** What the user had chosen before engine none locked field data on and runs at 1, given
 *  back when another engine is chosen. */
const beforeNone = { fieldData: false, runs: '1' };
/** The hints as the page writes them, for when engine none's are taken back. */
const hints = {};

function setHint(id, none, text) {
  hints[id] ??= $(id).textContent;
  $(id).textContent = none ? text : hints[id];
}

/**
 * What the engine allows. Categories only apply to PageSpeed Insights: disabled otherwise so
 * nobody is misled. Engine none loads no page: field data is all it measures (on, and locked),
 * and there is nothing to run more than once (the API refuses runs above 1).
 */
export function updateEngineState() {
  const engine = $('engine').value;
  $('categories').disabled = engine !== 'psi';
  const none = engine === 'none';
  const fieldData = $('field-data');
  const runs = $('runs');
  if (none && !fieldData.disabled) {
    Object.assign(beforeNone, { fieldData: fieldData.checked, runs: runs.value });
    fieldData.checked = true;
    fieldData.disabled = true;
    runs.value = '1';
    runs.disabled = true;
  } else if (!none && fieldData.disabled) {
    fieldData.disabled = false;
    fieldData.checked = beforeNone.fieldData || $('field-history').checked;
    runs.disabled = false;
    runs.value = beforeNone.runs;
  }
  setHint('engine-hint', none, 'No page is loaded: only what real users experienced, from the Chrome UX Report. The fastest scan.');
  setHint('runs-hint', none, '1: engine none loads no page');
  setHint('field-hint', none, 'Engine none measures field data only, so it stays on: what real Chrome users '
    + 'experienced over the last 28 days (75th percentile). The history adds each week’s value.');
}

/** The history is a part of field data: asking for it asks for field data, and turning field
 *  data off turns it off. The other box changes too, and a screen reader hears so. */
function onFieldDataChanged() {
  if (!$('field-data').checked && $('field-history').checked) {
    $('field-history').checked = false;
    announce('The 40-week history is off too: it is part of field data.');
  }
}

function onFieldHistoryChanged() {
  if ($('field-history').checked && !$('field-data').checked) {
    $('field-data').checked = true;
    announce('Field data is on too: the history is part of it.');
  }
}

/** The form's and the list's controls. */
export function wireJobsView() {
  $('new-job-form').addEventListener('submit', submitJob);
  $('urls').addEventListener('input', () => onUrlsChanged());
  $('url-file').addEventListener('change', (e) => loadUrlFile(e.target.files[0]));
  $('use-cleaned').addEventListener('click', useCleanedList);
  $('sitemap-url').addEventListener('input', () => { $('sitemap-url').removeAttribute('aria-invalid'); updateSubmitState(); });
  for (const radio of document.querySelectorAll('input[name="source"]')) radio.addEventListener('change', onSourceChanged);
  $('new-job-form').addEventListener('input', (e) => {
    if (e.target.id !== 'urls') e.target.removeAttribute?.('aria-invalid');
  });
  $('engine').addEventListener('change', updateEngineState);
  $('field-data').addEventListener('change', onFieldDataChanged);
  $('field-history').addEventListener('change', onFieldHistoryChanged);
  // Dropping a file on the textarea works like choosing it.
  $('urls').addEventListener('dragover', (e) => { if (e.dataTransfer?.types.includes('Files')) e.preventDefault(); });
  $('urls').addEventListener('drop', (e) => {
    const file = e.dataTransfer?.files?.[0];
    if (file) { e.preventDefault(); loadUrlFile(file); }
  });

  $('jobs-more').addEventListener('click', () => loadJobs());
  $('refresh-jobs').addEventListener('click', () => loadJobs({ reset: true }));
  $('jobs-status-filter').addEventListener('change', () => loadJobs({ reset: true }));
  $('compare-go').addEventListener('click', compareSelected);
}
