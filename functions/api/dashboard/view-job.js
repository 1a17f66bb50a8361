// A job's page: its header and facts, the summary, the results table (filtered, sorted by the
// API over the whole job or here over the loaded rows, paged; with field data, real users'
// verdicts and p75s beside the lab numbers), cancelling and the CSV.

import { isFinished } from './live.js';
import { ApiError, apiFetch, apiJson } from './api.js';
import { sparkline } from './charts.js';
import { $, el, fact } from './dom.js';
import {
  DELIVERY_NOTE, deliveryBadge, deliveryOnly, ENGINE_SHORT, ENGINE_WORDS, errorKindWords, FIELD_NOTE,
  FIELD_VERDICT_WORDS, FIELD_VERDICTS, fieldBadge, fieldValue, formatCount, formatDateTime, formatMetric,
  formatPeriod, formatSeconds, JOB_STATUS_WORDS, jobName, metricLabel, metricOf, parseDate, plural,
  PRIORITY_WORDS, RESULT_STATUS_WORDS, scoreBadge, setStatusBadge, statusBadge, STRATEGY_WORDS, timeEl,
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
  fieldFilter: '', // field_overall_category: a Core Web Vitals verdict, or unavailable
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
  $('field-filter').value = jobPage.fieldFilter = '';
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
  // A field-only job has no score to distribute.
  $('distribution-link').hidden = job.engine === 'none';
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
  // Only PageSpeed Insights scores categories; every job carries the default list.
  if (job.engine === 'psi' && Array.isArray(job.categories) && job.categories.length) {
    facts.push(fact('Categories', job.categories.join(', ')));
  }
  if (job.field_data) facts.push(fact('Real users', job.field_history ? 'field data, field history (40 weeks)' : 'field data'));
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

/** The orders GET results can give over the whole job (sort=…&order=asc|desc); the number of
 *  tries is sorted here, over the loaded rows. */
const SERVER_SORTS = new Set([
  'url', 'status', 'score', 'ttfb_ms', 'lcp_ms', 'total_ms', 'page_bytes',
  'field_lcp_ms', 'field_inp_ms', 'field_cls', 'field_fcp_ms', 'field_ttfb_ms',
]);

/** The "Sort by" choices: every header's order, and the field p75s without a column. lab: only
 *  where a page was loaded; field: only where the job has field data. */
const SORT_CHOICES = [
  { key: 'url', words: 'URL' },
  { key: 'status', words: 'Status' },
  { key: 'score', words: 'Score', lab: true },
  { key: 'ttfb_ms', words: 'TTFB (lab)', lab: true },
  { key: 'lcp_ms', words: 'LCP (lab)', lab: true },
  { key: 'total_ms', words: 'Load time', lab: true },
  { key: 'page_bytes', words: 'Size', lab: true },
  { key: 'attempts', words: 'Tries' },
  { key: 'field_lcp_ms', words: 'LCP (real users)', field: true },
  { key: 'field_inp_ms', words: 'INP (real users)', field: true },
  { key: 'field_cls', words: 'CLS (real users)', field: true },
  { key: 'field_fcp_ms', words: 'FCP (real users)', field: true },
  { key: 'field_ttfb_ms', words: 'TTFB (real users)', field: true },
];

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
  if (jobPage.fieldFilter) params.set('field_overall_category', jobPage.fieldFilter);
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
    // A sort the API does not know (400/422) says why in its own words; the order stays, and
    // the "Sort by" choice goes back to it.
    showError(err);
    if (sort) { renderSortHeaders(); announce(`Could not sort: ${err.message}`); }
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
  // A field-only job loads no page: it never has a score to wait for.
  if (!(score && score.count) && !(delivery && delivery.count) && jobPage.job?.engine !== 'none') {
    blocks.push(el('div', {}, el('h4', {}, 'Score'), el('p', { class: 'hint' }, 'No scores yet.')));
  }
  const verdicts = summary.field_verdicts;
  if (verdicts && typeof verdicts === 'object') blocks.push(fieldVerdictsBlock(verdicts));

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

/** The summary's Core Web Vitals verdicts: every one, zeros too (no poor URL is news). */
function fieldVerdictsBlock(verdicts) {
  const items = FIELD_VERDICTS.map((verdict) => el('li', {},
    fieldBadge(verdict), el('strong', {}, formatCount(Number(verdicts[verdict]) || 0))));
  return el('div', {}, el('h4', {}, 'Real users (field data)'),
    el('ul', { class: 'plain-list field-verdicts', 'aria-label': 'URLs by Core Web Vitals verdict of real users' }, items),
    el('p', { class: 'hint' }, 'The Chrome UX Report’s last 28 days. “Field verdict” above the results lists the URLs of one.'));
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
  applySort(sort.key === key
    ? { key, dir: sort.dir === 'ascending' ? 'descending' : 'ascending', server: false }
    : { key, dir: 'ascending', server: false });
}

/** The "Sort by" and direction choices; no key is the order the URLs were submitted in. */
function chooseSort() {
  const key = $('results-sort').value || null;
  applySort({ key, dir: key ? $('results-order').value : 'ascending', server: false });
}

function applySort(next) {
  if (!next.key || SERVER_SORTS.has(next.key)) {
    loadResults({ reset: true, sort: next });
    return;
  }
  jobPage.sort = next;
  renderResults();
  announceSort();
}

function announceSort() {
  const { key, dir } = jobPage.sort;
  if (!key) { announce('In the order the URLs were submitted.'); return; }
  const header = document.querySelector(`#results th[data-sort-key="${key}"] button`);
  const choice = SORT_CHOICES.find((c) => c.key === key);
  // The header's words without its sort icon, which is drawn, not said.
  const words = header ? header.textContent.replace(/[▲▼↕]/g, '').trim() : (choice?.words || key);
  announce(`Sorted by ${words}, ${dir}.`);
}

export function renderSortHeaders() {
  for (const th of document.querySelectorAll('#results th[data-sort-key]')) {
    const active = th.dataset.sortKey === jobPage.sort.key;
    th.setAttribute('aria-sort', active ? jobPage.sort.dir : 'none');
    th.querySelector('.sort-icon').textContent = active ? (jobPage.sort.dir === 'ascending' ? '▲' : '▼') : '↕';
  }
  $('results-sort').value = jobPage.sort.key || '';
  $('results-order').value = jobPage.sort.dir;
  $('results-order').disabled = !jobPage.sort.key;
}

/** The "Sort by" list for the columns shown (rebuilt only when they change, so an open list
 *  is not swapped under the user). */
function renderSortChoices(shown) {
  const select = $('results-sort');
  const scoreWords = deliveryOnly(jobPage.rows) ? 'Delivery score' : 'Score';
  const choices = SORT_CHOICES.filter((c) => (!c.lab || shown.lab) && (!c.field || shown.field));
  const signature = `${choices.map((c) => c.key).join()}|${scoreWords}`;
  if (select.dataset.signature === signature) return;
  select.dataset.signature = signature;
  const option = (c) => el('option', { value: c.key }, c.key === 'score' ? scoreWords : c.words);
  const field = choices.filter((c) => c.field);
  select.replaceChildren(
    el('option', { value: '' }, 'Order submitted'),
    ...choices.filter((c) => !c.field).map(option),
    field.length ? el('optgroup', { label: 'Real users (p75)' }, field.map(option)) : null);
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

// ---------------------------------------------------------------- field data (real users)

/** The field p75s with a column (FCP and TTFB are in "Sort by" and the CSV). */
const FIELD_COLUMNS = ['field_lcp_ms', 'field_inp_ms', 'field_cls'];
/** Where LCP turns from good to needs improvement, and to poor: the sparkline's dotted lines. */
const LCP_THRESHOLDS = [{ y: 2500, cls: 'spark-good' }, { y: 4000, cls: 'spark-poor' }];

/** A `both` job's desktop numbers, which sit inside metrics.desktop as its lab numbers do. */
function desktopOf(row) {
  const desktop = row?.metrics?.desktop;
  return desktop && typeof desktop === 'object' && !Array.isArray(desktop) ? desktop : null;
}

function historyOf(metrics) {
  const history = metrics?.field_history;
  return history && typeof history === 'object' && Array.isArray(history.lcp_ms) ? history : null;
}

/** Which groups of columns the table shows. The job's settings say, once known; the rows
 *  say for a job read before them. A field-only job (engine none) has no lab numbers. */
function shownColumns() {
  const rows = jobPage.rows;
  const engine = jobPage.job?.engine;
  const field = Boolean(jobPage.job?.field_data) || rows.some((r) => r.metrics?.field_status || desktopOf(r)?.field_status);
  return {
    lab: engine ? engine !== 'none' : !(rows.length && rows.every((r) => r.engine === 'none')),
    field,
    trend: field && rows.some((r) => historyOf(r.metrics) || historyOf(desktopOf(r))),
  };
}

function showColumns(shown) {
  for (const th of document.querySelectorAll('#results th[data-lab-col]')) th.hidden = !shown.lab;
  for (const th of document.querySelectorAll('#results th[data-field-col]')) th.hidden = !shown.field;
  for (const th of document.querySelectorAll('#results th[data-trend-col]')) th.hidden = !shown.trend;
  $('field-filter-box').hidden = !shown.field && !jobPage.fieldFilter;
  const note = $('field-note');
  note.hidden = !shown.field;
  if (!shown.field) return;
  // One period for the whole table: CrUX publishes every URL's 28 days at once.
  const period = formatPeriod(jobPage.rows.map((r) => r.metrics?.field_period).find(Boolean));
  const text = shown.lab ? FIELD_NOTE
    : 'No page was loaded: field data is what real Chrome users experienced over the last 28 days (the 75th percentile, from the Chrome UX Report).';
  note.textContent = period ? `${text} Field data shown: ${period}.` : text;
}

/** One form factor's verdict and why ({ verdict, note }), or null where it has no field data
 *  (not analysed yet, or a job that asked for none). No verdict counts as unavailable, as the
 *  API's filter counts it. */
function fieldVerdictOf(metrics, overall = metrics?.field_overall_category) {
  const status = metrics?.field_status;
  if (!status) return null;
  if (status === 'error') return { verdict: 'unavailable', note: `Could not be read (the lab result stands): ${metrics.field_error || 'no reason given'}` };
  if (status !== 'available') return { verdict: 'unavailable', note: 'The Chrome UX Report has too few visits of this URL and its site' };
  if (!FIELD_VERDICTS.includes(overall)) return { verdict: 'unavailable', note: 'No verdict: real users’ LCP or CLS is missing' };
  const period = formatPeriod(metrics.field_period);
  const whose = metrics.field_source === 'origin' ? 'The whole site’s data (too few visits of this URL)' : 'This URL’s own data';
  return { verdict: overall, note: period ? `${whose}, ${period}` : whose, origin: metrics.field_source === 'origin' };
}

function fieldCell(row) {
  const cell = el('td', { class: 'field' });
  const phone = fieldVerdictOf(row.metrics);
  if (!phone) cell.append(el('span', { class: 'sub' }, '—'));
  else {
    cell.append(fieldBadge(phone.verdict, { title: phone.note }));
    // What changes how the verdict reads is said; a URL's own data is the rule.
    if (phone.verdict === 'unavailable' || phone.origin) cell.append(el('span', { class: 'sub' }, phone.note));
  }
  const desktop = desktopOf(row);
  const other = fieldVerdictOf(desktop, row.metrics?.desktop_field_overall_category ?? desktop?.field_overall_category);
  if (other) {
    cell.append(el('span', { class: 'sub' }, fieldBadge(other.verdict, { small: true, label: 'desktop', title: other.note }),
      other.verdict === 'unavailable' || other.origin ? ` ${other.note}` : null));
  }
  return cell;
}

function fieldMetricCell(row, name) {
  const of = (metrics) => (Number.isFinite(metrics?.[name]) ? metrics[name] : null);
  const cell = el('td', { class: 'num' }, fieldValue(name, of(row.metrics), row.metrics?.[`${name}_category`]));
  const desktop = desktopOf(row);
  if (desktop?.field_status) {
    cell.append(el('span', { class: 'sub' }, fieldValue(name, of(desktop), desktop[`${name}_category`], { label: 'desktop' })));
  }
  return cell;
}

/** A history's weekly LCP as a sparkline, with its first and last value in words beside it. */
function lcpTrend(history, label) {
  const values = history.lcp_ms.map((v) => (Number.isFinite(v) ? v : null));
  const known = values.flatMap((v, i) => (v === null ? [] : [i]));
  if (!known.length) return el('span', { class: 'sub' }, `${label ? `${label}: ` : ''}no weekly LCP`);
  const [first, last] = [known[0], known.at(-1)];
  const change = `${formatMetric('lcp_ms', values[first])} → ${formatMetric('lcp_ms', values[last])}`;
  const weeks = Array.isArray(history.weeks) ? history.weeks : [];
  const span = weeks[first] && weeks[last] ? `, weeks ending ${formatPeriod(weeks[first])} to ${formatPeriod(weeks[last])}` : '';
  const gaps = values.length - known.length;
  const svg = sparkline({
    values,
    title: `${label ? `${label[0].toUpperCase()}${label.slice(1)} field` : 'Field'} LCP over ${plural(values.length, 'week')}: ${change}`,
    description: `Each week’s 75th percentile of real users’ LCP (${history.source === 'origin' ? 'the whole site’s' : 'this URL’s'} data${span})`
      + `${gaps ? `; ${plural(gaps, 'week')} without data, left as gaps` : ''}. Dotted lines where in range: 2.5 s (good up to) and 4 s (poor beyond).`,
    refs: LCP_THRESHOLDS,
  });
  return el('span', { class: 'trend' }, svg, el('span', { class: 'sub' }, label ? `${label} ${change}` : change));
}

function trendCell(row) {
  const phone = historyOf(row.metrics);
  const desktop = historyOf(desktopOf(row));
  const cell = el('td', { class: 'trend-cell' });
  if (phone) cell.append(lcpTrend(phone, ''));
  if (desktop) cell.append(lcpTrend(desktop, 'desktop'));
  if (!phone && !desktop) cell.append(el('span', { class: 'sub' }, '—'));
  return cell;
}

// ---------------------------------------------------------------- results table

/** One URL's row. Every column has a cell, hidden ones too (empty while their group is
 *  hidden), so a cell's index is its column's whatever the job. */
function resultRow(row, shown) {
  const only = (on, cell) => { cell.hidden = !on; return cell; };
  return el('tr', {},
    urlCell(row),
    el('td', {}, statusBadge(row.status, RESULT_STATUS_WORDS)),
    only(shown.lab, scoreCell(row)),
    only(shown.lab, el('td', { class: 'num' }, formatMetric('ttfb_ms', metricOf(row, 'ttfb_ms')))),
    only(shown.lab, el('td', { class: 'num' }, formatMetric('lcp_ms', metricOf(row, 'lcp_ms')))),
    only(shown.lab, el('td', { class: 'num' }, formatMetric('total_ms', metricOf(row, 'total_ms')))),
    only(shown.lab, el('td', { class: 'num' }, formatMetric('page_bytes', metricOf(row, 'page_bytes')))),
    only(shown.field, shown.field ? fieldCell(row) : el('td')),
    FIELD_COLUMNS.map((name) => only(shown.field, shown.field ? fieldMetricCell(row, name) : el('td'))),
    only(shown.trend, shown.trend ? trendCell(row) : el('td')),
    el('td', { class: 'num' }, formatCount(row.attempts)),
    problemCell(row));
}

/** How many URLs the filters leave, where the summary says: by status, by field verdict (the
 *  summary counts succeeded URLs' verdicts), not both at once. */
function resultsTotal() {
  const { by_status: byStatus, field_verdicts: verdicts } = jobPage.summary || {};
  if (jobPage.fieldFilter) {
    if (!verdicts || (jobPage.filter && jobPage.filter !== 'succeeded')) return null;
    return Number(verdicts[jobPage.fieldFilter]) || 0;
  }
  if (!byStatus) return null;
  if (jobPage.filter) return Number(byStatus[jobPage.filter]) || 0;
  return Object.values(byStatus).reduce((sum, n) => sum + (Number(n) || 0), 0);
}

function emptyText() {
  if (jobPage.filter && jobPage.fieldFilter) return 'No URLs with this status and field verdict.';
  if (jobPage.filter) return 'No URLs with this status.';
  if (jobPage.fieldFilter) return `No URLs with the field verdict “${FIELD_VERDICT_WORDS[jobPage.fieldFilter] || jobPage.fieldFilter}”.`;
  return 'No results yet.';
}

function renderResults() {
  // The column says what its numbers are: an http job's are delivery scores.
  const scoreHeader = document.querySelector('#results th[data-sort-key="score"] .score-label');
  if (scoreHeader) scoreHeader.textContent = deliveryOnly(jobPage.rows) ? 'Delivery score' : 'Score';
  const shown = shownColumns();
  showColumns(shown);
  renderSortChoices(shown);
  renderSortHeaders();
  const rows = sortedRows();
  $('results').tBodies[0].replaceChildren(...rows.map((row) => resultRow(row, shown)));
  $('results-empty').hidden = rows.length > 0;
  $('results-empty').textContent = emptyText();
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
  $('field-filter').addEventListener('change', (e) => { jobPage.fieldFilter = e.target.value; loadResults({ reset: true }); });
  $('results-sort').addEventListener('change', chooseSort);
  $('results-order').addEventListener('change', chooseSort);
  $('refresh-results').addEventListener('click', () => loadResults({ reset: true }));
  $('results-more').addEventListener('click', () => loadResults());
  for (const th of document.querySelectorAll('#results th[data-sort-key]')) {
    th.querySelector('button').addEventListener('click', () => setSort(th.dataset.sortKey));
  }
}
