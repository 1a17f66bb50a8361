// A job's page: its header and facts, the summary, the results table (filtered, sorted by the
// API over the whole job or here over the loaded rows, paged), cancelling and the CSV.

import { isFinished } from './live.js';
import { ApiError, apiFetch, apiJson } from './api.js';
import { $, el, fact } from './dom.js';
import {
  DELIVERY_NOTE, deliveryBadge, deliveryOnly, ENGINE_SHORT, ENGINE_WORDS, errorKindWords,
  formatCount, formatDateTime, formatMetric, formatSeconds, JOB_STATUS_WORDS, jobName, metricLabel,
  metricOf, parseDate, plural, PRIORITY_WORDS, RESULT_STATUS_WORDS, scoreBadge, setStatusBadge,
  statusBadge, STRATEGY_WORDS, timeEl,
} from './format.js';
import { distributionHref, historyHref, isWebUrl, monitorHref } from './links.js';
import { announce, clearError, showError, showNotice } from './messages.js';
import { tracker } from './tracker.js';
import { countsText, paceText, setProgress } from './job-row.js';

const RESULTS_PAGE_SIZE = 100;
const RESULTS_AUTO_REFRESH_MS = 4000;

const RESULT_STATUS_ORDER = ['queued', 'processing', 'succeeded', 'failed', 'cancelled'];

// ---------------------------------------------------------------- job page

const jobPage = {
  id: null,
  unwatch: null,
  job: null,
  rows: [],
  cursor: null,
  pages: 0,
  filter: '',
  // The order shown. server: the API sorted the whole job (the rows come in its order);
  // otherwise the loaded rows are sorted here.
  sort: { key: null, dir: 'ascending', server: false },
  generation: 0,
  summary: null,
  loadingResults: false,
  reloadAfterLoad: false,
  lastResultsLoad: 0,
  opened: false,
};

export function leaveJobPage() {
  jobPage.unwatch?.();
  Object.assign(jobPage, {
    id: null, unwatch: null, job: null, rows: [], cursor: null, pages: 0, summary: null,
    loadingResults: false, reloadAfterLoad: false, lastResultsLoad: 0, opened: false,
    sort: { key: null, dir: 'ascending', server: false },
  });
  jobPage.generation += 1;
  $('results').tBodies[0].replaceChildren();
  $('summary').replaceChildren(el('p', { class: 'hint' }, 'No results yet.'));
}

export async function openJobPage(id) {
  if (jobPage.id !== id) {
    leaveJobPage();
    jobPage.id = id;
    resetJobHeader();
  }
  jobPage.unwatch?.();
  jobPage.opened = false;
  jobPage.unwatch = tracker.watch(id, onJobChanged);
  // A job the socket has been following (the list's "*") is already current: reading it
  // again would be a request the socket exists to save. Otherwise one read of where it stands
  // (the protocol pushes changes, not the state at subscription).
  if (!(tracker.current(id) && tracker.isLive(id))) {
    try {
      await tracker.fetchNow(id);
    } catch (err) {
      if (jobPage.id !== id) return;
      if (err.status === 404) { showJobMissing(id, err.message); return; }
      showError(err);
    }
  }
  if (jobPage.id !== id) return;
  // Known from the list and unchanged (304), or current from the socket: show it now.
  const known = tracker.current(id);
  if (known && jobPage.job !== known) onJobChanged(known, null);
  jobPage.opened = true;
  loadResults({ reset: true });
}

function resetJobHeader() {
  $('job-missing').hidden = true;
  $('job-content').hidden = false;
  $('job-title').textContent = 'Loading job…';
  $('job-id').textContent = jobPage.id;
  $('distribution-link').href = distributionHref(jobPage.id);
  setStatusBadge($('job-status'), '');
  $('job-counts').textContent = '';
  $('job-pace').textContent = '';
  $('job-facts').replaceChildren();
  $('cancel').hidden = true;
  $('status-filter').value = jobPage.filter = '';
  $('results-count').textContent = '';
  $('results-more').hidden = true;
  $('results-empty').hidden = true;
  $('results-stale').hidden = true;
  setProgress($('job-progress'), { progress_percent: 0, total_urls: 0 }, { instant: true });
}

function showJobMissing(id, message) {
  jobPage.unwatch?.();
  jobPage.unwatch = null;
  $('job-content').hidden = true;
  $('job-missing').hidden = false;
  $('job-missing-text').textContent = `${message || 'There is no job with this id.'} (id: ${id})`;
  document.title = 'Job not found · speedbatch';
}

function onJobChanged(job, before) {
  if (!job || job.batch_job_id !== jobPage.id) return;
  jobPage.job = job;
  renderJobHeader(job, { first: !jobPage.opened });
  if (!jobPage.opened) return; // openJobPage loads the results once it has the job
  const justFinished = isFinished(job) && before && !isFinished(before);
  if (justFinished) refreshResultsAfterChange(true);
  else if (!isFinished(job)) refreshResultsAfterChange(false);
}

function renderJobHeader(job, { first = false } = {}) {
  const name = jobName(job);
  document.title = `${name} · speedbatch`;
  $('job-title').textContent = name;
  setStatusBadge($('job-status'), job.status);
  $('job-progress').setAttribute('aria-label', `Progress of ${name}`);
  setProgress($('job-progress'), job, { instant: first });
  $('job-counts').textContent = countsText(job);
  $('job-pace').textContent = paceText(job);
  const cancel = $('cancel');
  cancel.hidden = isFinished(job);
  cancel.disabled = job.status === 'cancelling';
  cancel.textContent = job.status === 'cancelling' ? 'Cancelling…' : 'Cancel job';
  renderJobFacts(job);
}

function renderJobFacts(job) {
  const facts = [
    fact('Created', timeEl(job.created_at)),
    fact('Started', timeEl(job.started_at)),
    fact('Finished', timeEl(job.finished_at)),
    fact('Priority', PRIORITY_WORDS[job.priority] || job.priority || '—'),
    fact('Device', STRATEGY_WORDS[job.strategy] || job.strategy || '—'),
    fact('Engine', ENGINE_WORDS[job.engine] || job.engine || '—'),
    fact('At once', formatCount(job.batch_size)),
    fact('Timeout', formatSeconds(job.timeout_seconds)),
    fact('Retries', formatCount(job.max_retries)),
    fact('Runs per URL', formatCount(job.runs)),
    fact('Reuse results', job.cache_ttl_seconds ? `up to ${formatSeconds(job.cache_ttl_seconds)} old` : 'never'),
  ];
  if (Array.isArray(job.categories) && job.categories.length) facts.push(fact('Categories', job.categories.join(', ')));
  if (job.callback) facts.push(fact('Callback', callbackWords(job.callback)));
  if (job.monitor_id) facts.push(fact('Monitor', el('a', { href: monitorHref(job.monitor_id) }, 'Run of a monitor')));
  $('job-facts').replaceChildren(...facts);
}

/** Where the job's callback stands, in words: the state, the tries and the last error. */
function callbackWords(callback) {
  const tries = callback.attempts === 1 ? '1 try' : `${callback.attempts} tries`;
  switch (callback.state) {
    case 'pending': return 'waiting to be sent';
    case 'delivered': return `delivered (${tries})`;
    case 'retrying': return `not answered yet (${tries}: ${callback.last_error || 'no answer'}); trying again soon`;
    case 'failed': return `not delivered (${tries}): ${callback.last_error || 'gave up'}`;
    default: return callback.state;
  }
}

/**
 * While a job runs, the first page of results follows it (at most every few
 * seconds). Once the user has loaded more pages or is working in the table,
 * we leave the rows alone and say they are stale instead.
 */
function refreshResultsAfterChange(final) {
  if (jobPage.loadingResults) {
    // The rows in flight may predate the end of the job; fetch again after.
    if (final) jobPage.reloadAfterLoad = true;
    return;
  }
  const tableHasFocus = $('results').tBodies[0].contains(document.activeElement);
  if (jobPage.pages > 1 || tableHasFocus) {
    $('results-stale').hidden = false;
    if (final) refreshSummaryOnly();
    return;
  }
  if (final || Date.now() - jobPage.lastResultsLoad >= RESULTS_AUTO_REFRESH_MS) loadResults({ reset: true });
}

/** The table's columns GET results can order the whole job by (sort=…&order=asc|desc);
 *  the number of tries is sorted here, over the loaded rows. */
const SERVER_SORTS = new Set(['url', 'status', 'score', 'ttfb_ms', 'lcp_ms', 'total_ms', 'page_bytes']);

/** The API's name for a column's order: the score column of an http job holds its delivery
 *  score, which the API sorts as delivery_score (it refuses score for that engine). */
function serverSortKey(column) {
  if (column !== 'score') return column;
  const engine = jobPage.job?.engine;
  const delivery = engine ? engine === 'http' : deliveryOnly(jobPage.rows);
  return delivery ? 'delivery_score' : 'score';
}

/** One page of results; sort: the order to ask the API for (a server-sortable column). */
function resultsQuery({ limit = RESULTS_PAGE_SIZE, cursor = null, sort = jobPage.sort } = {}) {
  const params = new URLSearchParams({ limit: String(limit) });
  if (jobPage.filter) params.set('status', jobPage.filter);
  if (sort && SERVER_SORTS.has(sort.key)) {
    params.set('sort', serverSortKey(sort.key));
    params.set('order', sort.dir === 'descending' ? 'desc' : 'asc');
  }
  if (cursor) params.set('cursor', cursor);
  return `results/${encodeURIComponent(jobPage.id)}?${params}`;
}

function resultKey(row) {
  return `${row.url}\u0000${row.strategy || ''}`;
}

/**
 * Loads the first page again (reset) or the next one. sort: a new order to ask the API for;
 * it becomes the table's order only once the API has answered with it.
 */
async function loadResults({ reset = false, sort = null } = {}) {
  if (!jobPage.id) return;
  if (reset) jobPage.generation += 1;
  const generation = jobPage.generation;
  jobPage.loadingResults = true;
  $('results-more').disabled = true;
  $('results').setAttribute('aria-busy', 'true');
  try {
    const { data } = await apiJson(resultsQuery({ cursor: reset ? null : jobPage.cursor, sort: sort || jobPage.sort }));
    if (generation !== jobPage.generation) return; // a newer request won
    if (sort) jobPage.sort = { ...sort };
    const incoming = Array.isArray(data.results) ? data.results : [];
    if (reset) {
      jobPage.rows = incoming;
      jobPage.pages = 1;
      $('results-stale').hidden = true;
    } else {
      // Rows can move between pages while a job runs; keep one row per URL.
      const seen = new Map(jobPage.rows.map((r, i) => [resultKey(r), i]));
      for (const row of incoming) {
        const at = seen.get(resultKey(row));
        if (at === undefined) { seen.set(resultKey(row), jobPage.rows.length); jobPage.rows.push(row); }
        else jobPage.rows[at] = row;
      }
      jobPage.pages += 1;
    }
    jobPage.cursor = data.next_cursor || null;
    jobPage.lastResultsLoad = Date.now();
    // An API from before server-side sorting ignores sort=: then the loaded rows are sorted
    // here, and the table says that the order covers only them.
    jobPage.sort.server = SERVER_SORTS.has(jobPage.sort.key) && inServerOrder(jobPage.rows, jobPage.sort);
    renderSummary(data.summary);
    renderResults();
    if (sort) announceSort();
  } catch (err) {
    if (generation !== jobPage.generation) return;
    // A sort the API does not know (400/422) says why in its own words; the order stays.
    showError(err);
    if (sort) announce(`Could not sort: ${err.message}`);
  } finally {
    if (generation === jobPage.generation) {
      $('results').removeAttribute('aria-busy');
      jobPage.loadingResults = false;
      $('results-more').disabled = false;
      $('results-more').hidden = !jobPage.cursor;
      if (jobPage.reloadAfterLoad) {
        jobPage.reloadAfterLoad = false;
        refreshResultsAfterChange(true);
      }
    }
  }
}

/** The summary covers the whole job, so one row is enough to refresh it. */
async function refreshSummaryOnly() {
  const id = jobPage.id;
  try {
    const { data } = await apiJson(resultsQuery({ limit: 1, sort: null }));
    if (jobPage.id === id) renderSummary(data.summary);
  } catch (err) {
    showError(err);
  }
}

function countList(entries, words) {
  const items = entries
    .filter(([, n]) => Number(n) > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([key, n]) => el('li', {}, el('span', {}, words(key)), el('strong', {}, formatCount(n))));
  return items.length ? el('ul', { class: 'plain-list' }, items) : el('p', { class: 'hint' }, 'None.');
}

function renderSummary(summary) {
  const box = $('summary');
  if (!summary || typeof summary !== 'object') {
    box.replaceChildren(el('p', { class: 'hint' }, 'No results yet.'));
    jobPage.summary = null;
    return;
  }
  jobPage.summary = summary;
  const blocks = [];

  const score = summary.score;
  const delivery = summary.metrics && summary.metrics.delivery_score;
  /** One score's percentiles, each in its badge. */
  const percentiles = (title, p, badge, hint) => el('div', {},
    el('h4', {}, title),
    el('div', {},
      el('div', { class: 'score-line' },
        el('span', {}, 'median (p50) ', badge(p.p50)),
        el('span', {}, 'p75 ', badge(p.p75)),
        el('span', {}, 'p95 ', badge(p.p95))),
      el('p', { class: 'hint' }, hint)));
  if (score && score.count) {
    blocks.push(percentiles('Score', score, (v) => scoreBadge(v), `From ${plural(score.count, 'scored page')}.`));
  }
  if (delivery && delivery.count) {
    blocks.push(percentiles('Delivery score', delivery, (v) => deliveryBadge(v),
      `From ${plural(delivery.count, 'page')}. ${DELIVERY_NOTE}`));
  }
  if (!(score && score.count) && !(delivery && delivery.count)) {
    blocks.push(el('div', {}, el('h4', {}, 'Score'), el('p', { class: 'hint' }, 'No scores yet.')));
  }

  blocks.push(el('div', {}, el('h4', {}, 'URLs by status'),
    countList(Object.entries(summary.by_status || {}), (s) => RESULT_STATUS_WORDS[s] || s)));

  blocks.push(el('div', {}, el('h4', {}, 'Why URLs failed'),
    countList(Object.entries(summary.errors_by_kind || {}), (k) => {
      const words = errorKindWords(k);
      return words.charAt(0).toUpperCase() + words.slice(1);
    })));

  const grid = el('div', { class: 'summary-grid' }, blocks);
  const metrics = Object.entries(summary.metrics || {}).filter(([, m]) => m && m.count);
  const parts = [grid];
  if (metrics.length) {
    parts.push(el('div', { class: 'table-wrap', role: 'region', 'aria-label': 'Metric percentiles', tabindex: 0 },
      el('table', { class: 'metrics-table' },
        el('caption', { class: 'sr-only' }, 'Percentiles per metric over all analysed URLs'),
        el('thead', {}, el('tr', {},
          el('th', { scope: 'col' }, 'Metric'),
          el('th', { scope: 'col', class: 'num' }, 'Median (p50)'),
          el('th', { scope: 'col', class: 'num' }, 'p75'),
          el('th', { scope: 'col', class: 'num' }, 'p95'),
          el('th', { scope: 'col', class: 'num' }, 'URLs'))),
        el('tbody', {}, metrics.map(([name, m]) => el('tr', {},
          el('th', { scope: 'row' }, metricLabel(name)),
          el('td', { class: 'num' }, formatMetric(name, m.p50)),
          el('td', { class: 'num' }, formatMetric(name, m.p75)),
          el('td', { class: 'num' }, formatMetric(name, m.p95)),
          el('td', { class: 'num' }, formatCount(m.count))))))));
  }
  box.replaceChildren(...parts);
}

const SORT_VALUE = {
  url: (r) => String(r.url || '').toLowerCase(),
  status: (r) => { const i = RESULT_STATUS_ORDER.indexOf(r.status); return i < 0 ? null : i; },
  score: (r) => (Number.isFinite(r.score) ? r.score : metricOf(r, 'delivery_score')),
  attempts: (r) => (Number.isFinite(r.attempts) ? r.attempts : null),
};

function sortValue(row, key) {
  return (SORT_VALUE[key] || ((r) => metricOf(r, key)))(row);
}

/**
 * Whether rows are in the order asked for (rows without the value may be anywhere: that
 * placement is the API's choice). URLs compare as the API stores them, code unit by code unit.
 */
function inServerOrder(rows, { key, dir }) {
  const value = key === 'url' ? (r) => String(r.url || '') : (r) => sortValue(r, key);
  const values = rows.map(value).filter((v) => v !== null);
  const factor = dir === 'descending' ? -1 : 1;
  for (let i = 1; i < values.length; i += 1) {
    const a = values[i - 1], b = values[i];
    const cmp = typeof a === 'string' ? (a < b ? -1 : a > b ? 1 : 0) : a - b;
    if (factor * cmp > 0) return false;
  }
  return true;
}

/** The rows in the order shown: the API's when it sorted them, else sorted here with rows
 *  without a value last. */
function sortedRows() {
  const { key, dir, server } = jobPage.sort;
  if (!key || server) return jobPage.rows;
  const factor = dir === 'descending' ? -1 : 1;
  return [...jobPage.rows].sort((a, b) => {
    const x = sortValue(a, key), y = sortValue(b, key);
    if (x === null && y === null) return 0;
    if (x === null) return 1;
    if (y === null) return -1;
    if (typeof x === 'string') return factor * x.localeCompare(y);
    return factor * (x - y);
  });
}

/**
 * A click on a column header: the API orders the whole job by the columns it can sort
 * (the rows are loaded again, first page), the loaded rows are sorted here by the others.
 */
function setSort(key) {
  const { sort } = jobPage;
  const next = sort.key === key
    ? { key, dir: sort.dir === 'ascending' ? 'descending' : 'ascending', server: false }
    : { key, dir: 'ascending', server: false };
  if (SERVER_SORTS.has(key)) {
    loadResults({ reset: true, sort: next });
    return;
  }
  jobPage.sort = next;
  renderResults();
  announceSort();
}

function announceSort() {
  const { key, dir } = jobPage.sort;
  const header = document.querySelector(`#results th[data-sort-key="${key}"] button`);
  announce(`Sorted by ${header ? header.textContent.trim() : key}, ${dir}.`);
}

export function renderSortHeaders() {
  for (const th of document.querySelectorAll('#results th[data-sort-key]')) {
    const active = th.dataset.sortKey === jobPage.sort.key;
    th.setAttribute('aria-sort', active ? jobPage.sort.dir : 'none');
    th.querySelector('.sort-icon').textContent = active ? (jobPage.sort.dir === 'ascending' ? '▲' : '▼') : '↕';
  }
}

function urlCell(row) {
  const url = String(row.url || '');
  // Only http(s) becomes a link: a "javascript:" input must never be clickable.
  const main = isWebUrl(url)
    ? el('a', { href: url, target: '_blank', rel: 'noopener noreferrer' }, url)
    : el('span', {}, url || '—');
  const notes = [ENGINE_SHORT[row.engine] || row.engine, STRATEGY_WORDS[row.strategy] || row.strategy].filter(Boolean).join(' · ');
  const cell = el('td', { class: 'url' }, main);
  const sub = el('span', { class: 'sub', title: row.analyzed_at ? `Analysed ${formatDateTime(row.analyzed_at)}` : null }, notes);
  if (url) {
    if (notes) sub.append(' · ');
    sub.append(el('a', { href: historyHref(url, jobPage.job?.monitor_id), class: 'history-link', 'aria-label': `History of ${url}` }, 'History'));
  }
  if (notes || url) cell.append(sub);
  if (row.cached_from && typeof row.cached_from === 'object') {
    const when = parseDate(row.cached_from.analyzed_at);
    cell.append(el('span', { class: 'sub' },
      `Reused from an earlier job${when ? ` (analysed ${formatDateTime(row.cached_from.analyzed_at)})` : ''}`));
  }
  return cell;
}

function scoreCell(row) {
  if (!Number.isFinite(row.score) && metricOf(row, 'delivery_score') !== null) {
    const band = row.metrics && typeof row.metrics.delivery_band === 'string' ? row.metrics.delivery_band : '';
    const cell = el('td', { class: 'num' }, deliveryBadge(metricOf(row, 'delivery_score'), band));
    const desktop = metricOf(row, 'desktop_delivery_score');
    if (desktop !== null) cell.append(el('span', { class: 'sub' }, deliveryBadge(desktop, '', { small: true, label: 'desktop' })));
    return cell;
  }
  const cell = el('td', { class: 'num' }, scoreBadge(row.score));
  const desktop = metricOf(row, 'desktop_score');
  if (desktop !== null) cell.append(el('span', { class: 'sub' }, scoreBadge(desktop, { small: true, label: 'desktop' })));
  return cell;
}

function problemCell(row) {
  if (!row.error && !row.error_kind) return el('td', { class: 'problem' }, '');
  let headline = errorKindWords(row.error_kind);
  const code = metricOf(row, 'status_code');
  if (headline && code && /^http_/.test(row.error_kind || '')) headline += ` (HTTP ${code})`;
  headline = headline ? headline.charAt(0).toUpperCase() + headline.slice(1) : 'Problem';
  const cell = el('td', { class: 'problem' }, el('strong', {}, headline));
  if (row.error) cell.append(el('span', { class: 'sub' }, String(row.error)));
  return cell;
}

function resultRow(row) {
  return el('tr', {},
    urlCell(row),
    el('td', {}, statusBadge(row.status, RESULT_STATUS_WORDS)),
    scoreCell(row),
    el('td', { class: 'num' }, formatMetric('ttfb_ms', metricOf(row, 'ttfb_ms'))),
    el('td', { class: 'num' }, formatMetric('lcp_ms', metricOf(row, 'lcp_ms'))),
    el('td', { class: 'num' }, formatMetric('total_ms', metricOf(row, 'total_ms'))),
    el('td', { class: 'num' }, formatMetric('page_bytes', metricOf(row, 'page_bytes'))),
    el('td', { class: 'num' }, formatCount(row.attempts)),
    problemCell(row));
}

function resultsTotal() {
  const byStatus = jobPage.summary?.by_status;
  if (!byStatus) return null;
  if (jobPage.filter) return Number(byStatus[jobPage.filter]) || 0;
  return Object.values(byStatus).reduce((sum, n) => sum + (Number(n) || 0), 0);
}

function renderResults() {
  // The column says what its numbers are: an http job's are delivery scores.
  const scoreHeader = document.querySelector('#results th[data-sort-key="score"] .score-label');
  if (scoreHeader) scoreHeader.textContent = deliveryOnly(jobPage.rows) ? 'Delivery score' : 'Score';
  renderSortHeaders();
  const rows = sortedRows();
  $('results').tBodies[0].replaceChildren(...rows.map(resultRow));
  $('results-empty').hidden = rows.length > 0;
  $('results-empty').textContent = jobPage.filter ? 'No URLs with this status.' : 'No results yet.';
  const total = resultsTotal();
  $('results-count').textContent = rows.length
    ? `Showing ${formatCount(rows.length)}${total !== null && total >= rows.length ? ` of ${formatCount(total)}` : ''} URLs`
      + (jobPage.sort.key && !jobPage.sort.server && jobPage.cursor ? ' (sorting covers the loaded rows)' : '')
    : '';
}

// ---------------------------------------------------------------- cancel

function askToCancel() {
  const dialog = $('cancel-dialog');
  dialog.returnValue = '';
  if (typeof dialog.showModal === 'function') dialog.showModal();
  else if (window.confirm('Cancel this job? URLs not analysed yet will be skipped.')) cancelJob();
}

async function cancelJob() {
  const id = jobPage.id;
  if (!id) return;
  const button = $('cancel');
  button.disabled = true;
  clearError();
  try {
    const { data } = await apiJson(`cancel/${encodeURIComponent(id)}`, { method: 'POST' });
    if (data && data.batch_job_id) tracker.update(data);
    showNotice(`Cancellation requested. The job is now ${(JOB_STATUS_WORDS[data?.status] || data?.status || 'cancelling').toLowerCase()}.`);
  } catch (err) {
    if (err.status === 409) {
      showNotice('This job had already finished, so there was nothing left to cancel.');
    } else {
      showError(err);
    }
    tracker.fetchNow(id).catch(showError);
  } finally {
    button.disabled = jobPage.job?.status === 'cancelling';
  }
}

// ---------------------------------------------------------------- CSV download

/** Reads the file name from Content-Disposition (filename* or filename), made safe for saving. */
function filenameFromDisposition(header) {
  if (!header) return null;
  let name = null;
  const extended = /filename\*\s*=\s*(?:UTF-8|utf-8)?''([^;]+)/.exec(header);
  if (extended) {
    try { name = decodeURIComponent(extended[1].trim()); } catch { name = null; }
  }
  if (!name) {
    const plain = /filename\s*=\s*(?:"([^"]*)"|([^;]+))/i.exec(header);
    name = plain ? (plain[1] ?? plain[2]).trim() : null;
  }
  return name ? name.replace(/[\\/:*?"<>|\u0000-\u001f]/g, '_') : null;
}

async function downloadCsv() {
  const id = jobPage.id;
  if (!id) return;
  const button = $('download-csv');
  button.disabled = true;
  button.textContent = 'Preparing CSV…';
  clearError();
  try {
    // A finished job's file is in the exports bucket: its presigned link needs no key, so the
    // browser downloads it directly (the file may be tens of megabytes).
    let exportsAnswer = null;
    try {
      exportsAnswer = await apiJson(`exports/${encodeURIComponent(id)}`);
    } catch (err) {
      // 409 (running) or 503 (being written): a small job's rows come inline instead.
      if (!(err instanceof ApiError) || (err.status !== 409 && err.status !== 503)) throw err;
    }
    const file = exportsAnswer?.data?.files?.find((f) => f.format === 'csv');
    if (file) {
      const link = el('a', { href: file.url, rel: 'noopener', hidden: true });
      document.body.append(link);
      link.click();
      link.remove();
      announce(`Downloading the CSV of ${file.rows} URLs.`);
      return;
    }
    // A plain link cannot send the x-api-key header, so fetch and save a Blob.
    const response = await apiFetch(`results/${encodeURIComponent(id)}?format=csv`, { accept: 'text/csv' });
    const blob = await response.blob();
    const name = filenameFromDisposition(response.headers.get('content-disposition'))
      || `speedbatch-${id.replace(/[^A-Za-z0-9_-]/g, '_')}.csv`;
    const href = URL.createObjectURL(blob);
    const link = el('a', { href, download: name, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(href), 60000);
    announce(`Downloaded ${name}.`);
  } catch (err) {
    showError(err);
  } finally {
    button.disabled = false;
    button.textContent = 'Download CSV';
  }
}

/** The job page's controls. */
export function wireJobView() {
  $('cancel').addEventListener('click', askToCancel);
  $('confirm-cancel').addEventListener('click', () => { $('cancel-dialog').close('confirm'); cancelJob(); });
  $('keep-job').addEventListener('click', () => $('cancel-dialog').close('keep'));
  $('cancel-dialog').addEventListener('close', () => {
    // Return focus to something that stays usable once the dialog is gone:
    // after confirming, the cancel button becomes disabled or disappears.
    const confirmed = $('cancel-dialog').returnValue === 'confirm';
    const target = confirmed || $('cancel').hidden ? $('job-title') : $('cancel');
    target.focus();
  });
  $('download-csv').addEventListener('click', downloadCsv);
  $('status-filter').addEventListener('change', (e) => { jobPage.filter = e.target.value; loadResults({ reset: true }); });
  $('refresh-results').addEventListener('click', () => loadResults({ reset: true }));
  $('results-more').addEventListener('click', () => loadResults());
  for (const th of document.querySelectorAll('#results th[data-sort-key]')) {
    th.querySelector('button').addEventListener('click', () => setSort(th.dataset.sortKey));
  }
}
