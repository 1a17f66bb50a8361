// Monitors: the home page's list of monitors, and a monitor's page (its facts and budgets, its
// runs, and where its URLs stand against the budgets).

import { isFinished } from './live.js';
import { apiJson } from './api.js';
import { $, dataTable, el, fact, setViewBody } from './dom.js';
import {
  budgetWords, ENGINE_WORDS, formatCount, formatDateTime, formatMetric, formatSeconds, parseDate,
  plural, PRIORITY_WORDS, scheduleWords, STRATEGY_WORDS, timeEl,
} from './format.js';
import { compareHref, distributionHref, historyHref, jobHref, monitorHref } from './links.js';
import { showError } from './messages.js';
import { tracker } from './tracker.js';
import { createJobRow, updateJobRow } from './job-row.js';

// ---------------------------------------------------------------- monitors list (home)

const monitorsList = { cursor: null, generation: 0, loaded: false, count: 0 };

export function clearMonitorsList() {
  monitorsList.cursor = null;
  monitorsList.loaded = false;
  monitorsList.count = 0;
  monitorsList.generation += 1;
  $('monitors').replaceChildren();
  $('monitors-more').hidden = true;
  $('monitors-empty').hidden = true;
}

function monitorRow(monitor) {
  const parts = [scheduleWords(monitor.schedule)];
  parts.push(monitor.sitemap_url ? 'URLs from a sitemap' : plural(monitor.url_count ?? 0, 'URL'));
  parts.push(plural(monitor.runs ?? 0, 'run'));
  const meta = el('p', { class: 'job-meta' }, parts.join(' · '));
  if (monitor.enabled && monitor.next_run_at) meta.append(' · next ', timeEl(monitor.next_run_at));
  const budgets = Array.isArray(monitor.budgets) ? monitor.budgets.length : 0;
  return el('li', { class: 'job-row', 'data-monitor-id': monitor.monitor_id },
    el('div', { class: 'job-row-head' },
      el('a', { class: 'job-name', href: monitorHref(monitor.monitor_id) }, monitor.name || 'Untitled monitor'),
      el('span', { class: 'badge', 'data-status': monitor.enabled ? 'enabled' : 'disabled' }, monitor.enabled ? 'Enabled' : 'Paused')),
    meta,
    budgets ? el('p', { class: 'job-meta' }, `${plural(budgets, 'budget')}: ${monitor.budgets.map(budgetWords).join('; ')}`) : null);
}

export async function loadMonitors({ reset = false } = {}) {
  if (reset) clearMonitorsList();
  const generation = monitorsList.generation;
  const params = new URLSearchParams({ limit: '20' });
  if (monitorsList.cursor) params.set('cursor', monitorsList.cursor);
  $('monitors-more').disabled = true;
  try {
    const { data } = await apiJson(`monitors?${params}`);
    if (generation !== monitorsList.generation) return;
    const monitors = Array.isArray(data.monitors) ? data.monitors : [];
    $('monitors').append(...monitors.map(monitorRow));
    monitorsList.count += monitors.length;
    monitorsList.cursor = data.next_cursor || null;
    monitorsList.loaded = true;
  } catch (err) {
    if (generation === monitorsList.generation) showError(err);
  } finally {
    if (generation === monitorsList.generation) {
      $('monitors-more').disabled = false;
      $('monitors-more').hidden = !monitorsList.cursor;
      $('monitors-empty').hidden = !monitorsList.loaded || monitorsList.count > 0;
    }
  }
}

// ---------------------------------------------------------------- monitor page

const monitorPage = { id: null, monitor: null, generation: 0, runs: [], rows: new Map(), cursor: null, standings: [], standingsCursor: null };

export function leaveMonitorPage() {
  for (const row of monitorPage.rows.values()) row.unwatch?.();
  Object.assign(monitorPage, { id: null, monitor: null, runs: [], rows: new Map(), cursor: null, standings: [], standingsCursor: null });
  monitorPage.generation += 1;
  $('monitor-runs').replaceChildren();
  setViewBody('monitor-standings');
}

export async function openMonitorPage(id) {
  leaveMonitorPage();
  monitorPage.id = id;
  const generation = monitorPage.generation;
  $('monitor-title').textContent = 'Loading monitor…';
  $('monitor-content').hidden = false;
  $('monitor-missing').hidden = true;
  $('monitor-facts').replaceChildren();
  $('monitor-budgets').replaceChildren();
  $('monitor-status').hidden = true;
  try {
    const { data } = await apiJson(`monitors/${encodeURIComponent(id)}`);
    if (generation !== monitorPage.generation) return;
    monitorPage.monitor = data;
    renderMonitor(data);
  } catch (err) {
    if (generation !== monitorPage.generation) return;
    if (err.status === 404) {
      $('monitor-content').hidden = true;
      $('monitor-missing').hidden = false;
      $('monitor-missing-text').textContent = `${err.message} (id: ${id})`;
      document.title = 'Monitor not found · speedbatch';
      return;
    }
    showError(err);
    return;
  }
  loadRuns({ reset: true });
  loadStandings({ reset: true });
}

function renderMonitor(monitor) {
  const name = monitor.name || 'Untitled monitor';
  document.title = `${name} · speedbatch`;
  $('monitor-title').textContent = name;
  $('monitor-enabled').textContent = monitor.enabled ? 'Enabled' : 'Paused';
  $('monitor-enabled').dataset.status = monitor.enabled ? 'enabled' : 'disabled';
  $('monitor-id').textContent = monitor.monitor_id;
  const facts = [
    fact('Schedule', scheduleWords(monitor.schedule)),
    fact('Next run', monitor.enabled ? timeEl(monitor.next_run_at) : 'paused'),
    fact('Last run', timeEl(monitor.last_run_at)),
    fact('Runs', formatCount(monitor.runs)),
    fact('Skipped runs', monitor.skipped_runs
      ? `${formatCount(monitor.skipped_runs)}${monitor.last_skip ? ` (last: ${skipWords(monitor.last_skip)})` : ''}` : 'none'),
    fact('URLs', monitor.sitemap_url ? el('span', {}, 'from ', el('code', {}, monitor.sitemap_url)) : formatCount(monitor.url_count)),
    fact('Engine', ENGINE_WORDS[monitor.engine] || monitor.engine || '—'),
    fact('Device', STRATEGY_WORDS[monitor.strategy] || monitor.strategy || '—'),
    fact('Priority', PRIORITY_WORDS[monitor.priority] || monitor.priority || '—'),
    fact('At once', formatCount(monitor.batch_size)),
    fact('Timeout', formatSeconds(monitor.timeout_seconds)),
    fact('Retries', formatCount(monitor.max_retries)),
    fact('Created', timeEl(monitor.created_at)),
    fact('Changed', timeEl(monitor.updated_at)),
  ];
  if (monitor.field_data) facts.push(fact('Real users', monitor.field_history ? 'field data, field history (40 weeks)' : 'field data'));
  if (monitor.callback_url) facts.push(fact('Callback', el('code', {}, monitor.callback_url)));
  $('monitor-facts').replaceChildren(...facts);
  const budgets = Array.isArray(monitor.budgets) ? monitor.budgets : [];
  $('monitor-budgets').replaceChildren(budgets.length
    ? el('ul', { class: 'plain-list budget-list' }, budgets.map((b) => el('li', { 'data-metric': b.metric }, budgetWords(b))))
    : el('p', { class: 'hint' }, 'This monitor has no budgets.'));
}

const SKIP_WORDS = {
  previous_running: 'the run before was still going',
  over_limit: 'over one of your limits',
  sitemap_unreadable: 'the sitemap could not be read',
};

/** Why the last tick did not run, and when ({reason, at}; `at` comes as epoch milliseconds). */
function skipWords(skip) {
  const reason = SKIP_WORDS[skip.reason] || String(skip.reason || 'skipped').replace(/_/g, ' ');
  const at = parseDate(typeof skip.at === 'number' ? new Date(skip.at).toISOString() : skip.at);
  return at ? `${reason}, ${formatDateTime(at.toISOString())}` : reason;
}

/** Under a run: its distribution, and a comparison with the run before it once both finished. */
function runLinks(job) {
  const links = [el('a', { href: distributionHref(job.batch_job_id) }, 'Score distribution')];
  const at = monitorPage.runs.findIndex((r) => r.batch_job_id === job.batch_job_id);
  const previous = at >= 0 ? monitorPage.runs[at + 1] : null;
  const fresh = (run) => tracker.current(run.batch_job_id) || run;
  if (previous && isFinished(fresh(job)) && isFinished(fresh(previous))) {
    links.push(' · ', el('a', { href: compareHref(fresh(previous), fresh(job)) }, 'Compare with the run before'));
  }
  return links;
}

async function loadRuns({ reset = false } = {}) {
  const id = monitorPage.id;
  const generation = monitorPage.generation;
  if (reset) {
    for (const row of monitorPage.rows.values()) row.unwatch?.();
    monitorPage.rows.clear();
    monitorPage.runs = [];
    monitorPage.cursor = null;
    $('monitor-runs').replaceChildren();
  }
  const params = new URLSearchParams({ monitor_id: id, limit: '20' });
  if (monitorPage.cursor) params.set('cursor', monitorPage.cursor);
  $('monitor-runs-more').disabled = true;
  try {
    const { data } = await apiJson(`jobs?${params}`);
    if (generation !== monitorPage.generation) return;
    const jobs = Array.isArray(data.jobs) ? data.jobs : [];
    monitorPage.runs.push(...jobs);
    for (const job of jobs) {
      const row = createJobRow(job, { extra: runLinks });
      monitorPage.rows.set(job.batch_job_id, row);
      $('monitor-runs').append(row.li);
      if (!isFinished(job)) {
        row.unwatch = tracker.watch(job.batch_job_id, (fresh) => {
          updateJobRow(row, fresh);
          // Its finishing makes the newer run comparable with it.
          for (const other of monitorPage.rows.values()) if (other !== row) updateJobRow(other, other.job);
        }, job, { target: '*' });
      }
    }
    // The oldest run of the last page gains its "run before" once the next page is here.
    for (const row of monitorPage.rows.values()) updateJobRow(row, row.job);
    monitorPage.cursor = data.next_cursor || null;
    $('monitor-runs-empty').hidden = monitorPage.runs.length > 0;
  } catch (err) {
    if (generation === monitorPage.generation) showError(err);
  } finally {
    if (generation === monitorPage.generation) {
      $('monitor-runs-more').disabled = false;
      $('monitor-runs-more').hidden = !monitorPage.cursor;
    }
  }
}

const STANDING_WORDS = { breached: 'Over budget', within: 'Back within' };

async function loadStandings({ reset = false } = {}) {
  const id = monitorPage.id;
  const generation = monitorPage.generation;
  const state = $('standings-filter').value;
  const params = new URLSearchParams({ state, limit: '100' });
  if (!reset && monitorPage.standingsCursor) params.set('cursor', monitorPage.standingsCursor);
  if (reset) monitorPage.standings = [];
  $('standings-more').disabled = true;
  try {
    const { data } = await apiJson(`monitors/${encodeURIComponent(id)}/budgets?${params}`);
    if (generation !== monitorPage.generation) return;
    monitorPage.standings.push(...(Array.isArray(data.standings) ? data.standings : []));
    monitorPage.standingsCursor = data.next_cursor || null;
    renderStandings();
  } catch (err) {
    if (generation === monitorPage.generation) showError(err);
  } finally {
    if (generation === monitorPage.generation) {
      $('standings-more').disabled = false;
      $('standings-more').hidden = !monitorPage.standingsCursor;
    }
  }
}

function renderStandings() {
  const standings = monitorPage.standings;
  const breached = standings.filter((s) => s.state === 'breached').length;
  const within = standings.filter((s) => s.state === 'within').length;
  const filter = $('standings-filter').value;
  const summary = standings.length === 0
    ? (filter === 'breached' ? 'No URL is over a budget now.' : 'No URL has been over a budget.')
    : [breached ? `${plural(breached, 'URL budget')} over budget now` : '', within ? `${plural(within, 'URL budget')} back within` : '']
      .filter(Boolean).join(', ') + '.';
  const table = standings.length ? dataTable('Where the URLs stand against the budgets',
    [{ label: 'URL' }, { label: 'Budget' }, { label: 'State' }, { label: 'Value', num: true }, { label: 'Since' }, { label: 'Run' }],
    standings.map((s) => [
      el('span', { class: 'url-cell' }, el('a', { href: historyHref(s.url, monitorPage.id) }, s.url)),
      budgetWords(s),
      el('span', { class: 'badge', 'data-status': s.state === 'breached' ? 'failed' : 'succeeded' }, STANDING_WORDS[s.state] || s.state),
      formatMetric(s.metric, s.value),
      timeEl(s.since),
      el('a', { href: jobHref(s.batch_job_id), class: 'mono' }, String(s.batch_job_id).slice(0, 8)),
    ]), { cls: 'standings-table' }) : null;
  setViewBody('monitor-standings', el('p', { id: 'standings-summary' }, summary), table);
}

/** The monitors list's and the monitor page's controls. */
export function wireMonitorsView() {
  $('monitors-more').addEventListener('click', () => loadMonitors());

  $('monitor-runs-more').addEventListener('click', () => loadRuns());
  $('standings-filter').addEventListener('change', () => loadStandings({ reset: true }));
  $('standings-more').addEventListener('click', () => loadStandings());
}
