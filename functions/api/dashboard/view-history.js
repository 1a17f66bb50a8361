// A URL's history: one chart per metric across all the tenant's jobs, with the budgets of the
// monitors that measure it.

import { eachLimited } from './live.js';
import { lineChart } from './charts.js';
import { apiJson } from './api.js';
import { $, dataTable, el, setViewBody, setViewStatus } from './dom.js';
import {
  axisTime, axisValue, budgetWords, DELIVERY_NOTE, ENGINE_SHORT, formatCount, formatDateTime,
  formatMetric, isScoreMetric, metricLabel, parseDate, plural, STRATEGY_WORDS, timeEl,
} from './format.js';
import { go, isWebUrl, jobHref } from './links.js';
import { announce, showError } from './messages.js';
import { chartFigure, drawFigures, forgetFigures } from './figures.js';

// ---------------------------------------------------------------- URL history

/** The numbers a URL's history is drawn for, in this order, when it has them. */
const HISTORY_METRICS = ['score', 'delivery_score', 'lcp_ms', 'fcp_ms', 'tbt_ms', 'cls', 'speed_index_ms', 'ttfb_ms', 'total_ms', 'page_bytes'];
/** Points read per metric at most (two pages): the newest of a longer range would be cut. */
const HISTORY_MAX_POINTS = 2000;
const HISTORY_RANGES = { 7: 'last 7 days', 30: 'last 30 days', 90: 'last 90 days', all: 'all time' };

const historyPage = { generation: 0, observers: [], url: '', monitor: null, range: '90' };

export function leaveHistoryPage() {
  historyPage.generation += 1;
  forgetFigures(historyPage);
}

export async function openHistoryPage(params) {
  leaveHistoryPage();
  const generation = historyPage.generation;
  const url = (params.get('url') || '').trim();
  const range = HISTORY_RANGES[params.get('range')] ? params.get('range') : '90';
  Object.assign(historyPage, { url, monitor: params.get('monitor') || null, range });
  $('history-url').value = url;
  $('history-range').value = range;
  $('history-url').removeAttribute('aria-invalid');
  setViewBody('history-charts');
  $('history-target').hidden = !url;
  if (!url) {
    document.title = 'URL history · speedbatch';
    setViewStatus('history-status', 'Enter a URL to see its results over time, across all your jobs.');
    return;
  }
  document.title = `History of ${url} · speedbatch`;
  $('history-target').replaceChildren('Results for ', isWebUrl(url) ? el('a', { href: url, target: '_blank', rel: 'noopener noreferrer' }, url) : el('code', {}, url),
    ` · ${HISTORY_RANGES[range]}`);
  setViewStatus('history-status', 'Loading the URL’s history…', { busy: true });
  const from = range === 'all' ? null : new Date(Date.now() - Number(range) * 86400e3).toISOString();
  const stale = () => generation !== historyPage.generation;
  try {
    const monitorIds = new Set(historyPage.monitor ? [historyPage.monitor] : []);
    const series = new Map();
    await eachLimited(HISTORY_METRICS, 3, async (metric) => {
      const loaded = await loadHistory(url, metric, from);
      if (loaded.points.length) series.set(metric, loaded);
    });
    if (stale()) return;
    // Which monitors the URL is measured by: the jobs of its newest points say (a run carries
    // its monitor_id). A few reads, not one per point.
    const newestJobs = [...new Set([...series.values()].flatMap((s) => s.points).sort((a, b) => b.x - a.x).map((p) => p.job))].slice(0, 5);
    await eachLimited(newestJobs, 2, async (id) => {
      try {
        const { data } = await apiJson(`progress/${encodeURIComponent(id)}`);
        if (data?.monitor_id) monitorIds.add(data.monitor_id);
      } catch (err) {
        if (err.status !== 404) throw err; // a deleted job says nothing about monitors
      }
    });
    const budgets = [];
    await eachLimited([...monitorIds].slice(0, 3), 2, async (id) => {
      try {
        const { data } = await apiJson(`monitors/${encodeURIComponent(id)}`);
        for (const budget of data.budgets || []) budgets.push({ ...budget, monitor: data.name || 'a monitor', monitorId: id });
      } catch (err) {
        if (err.status !== 404) throw err; // a deleted monitor has no budgets left
      }
    });
    // A budget on a number outside the usual set (field data, say) gets its own chart too.
    const extra = [...new Set(budgets.map((b) => b.metric))].filter((m) => !HISTORY_METRICS.includes(m));
    await eachLimited(extra, 2, async (metric) => {
      const loaded = await loadHistory(url, metric, from);
      if (loaded.points.length) series.set(metric, loaded);
    });
    if (stale()) return;
    renderHistory(url, series, budgets, range);
  } catch (err) {
    if (stale()) return;
    setViewStatus('history-status', '');
    if (err.status === 422) $('history-url').setAttribute('aria-invalid', 'true');
    showError(err);
  }
}

/** One metric's points for the URL since `from`, oldest first, at most HISTORY_MAX_POINTS. */
async function loadHistory(url, metric, from) {
  const points = [];
  let cursor = null;
  let truncated = false;
  do {
    const params = new URLSearchParams({ url, metric, limit: '1000' });
    if (from) params.set('from', from);
    if (cursor) params.set('cursor', cursor);
    const { data } = await apiJson(`history?${params}`);
    for (const p of data.points || []) {
      const at = parseDate(p.analyzed_at);
      if (!at || !Number.isFinite(p.value)) continue;
      points.push({ x: at.getTime(), y: p.value, at: p.analyzed_at, job: p.batch_job_id, engine: p.engine || '', strategy: p.strategy || '', spread: p.spread });
    }
    cursor = data.next_cursor || null;
    if (cursor && points.length >= HISTORY_MAX_POINTS) { truncated = true; break; }
  } while (cursor);
  return { points, truncated };
}

function seriesLabel(engine, strategy) {
  return [ENGINE_SHORT[engine] || engine || 'unknown engine', STRATEGY_WORDS[strategy] || strategy].filter(Boolean).join(' · ');
}

function renderHistory(url, series, budgets, range) {
  const order = [...HISTORY_METRICS, ...[...series.keys()].filter((m) => !HISTORY_METRICS.includes(m))];
  const metrics = order.filter((m) => series.has(m));
  if (metrics.length === 0) {
    setViewStatus('history-status', `No results for this URL in the ${HISTORY_RANGES[range]}. The URL is matched as the service cleans it (https://, no trailing slash); try a longer period.`);
    return;
  }
  setViewStatus('history-status', '');
  const figures = metrics.map((metric) => historyFigure(metric, series.get(metric), budgets.filter((b) => b.metric === metric)));
  setViewBody('history-charts', figures.map((f) => f.figure));
  drawFigures(historyPage, figures);
  announce(`History of ${url}: ${plural(metrics.length, 'chart')}.`);
}

function historyFigure(metric, { points, truncated }, budgets) {
  const groups = new Map();
  for (const p of points) {
    const key = `${p.engine}|${p.strategy}`;
    if (!groups.has(key)) groups.set(key, { label: seriesLabel(p.engine, p.strategy), points: [] });
    groups.get(key).points.push(p);
  }
  const series = [...groups.values()].map((g, i) => ({
    label: g.label, cls: `series-${i % 4}`,
    points: g.points.map((p) => ({ x: p.x, y: p.y, title: `${formatDateTime(p.at)}: ${formatMetric(metric, p.y)} (${g.label})` })),
  }));
  const values = points.map((p) => p.y);
  const latest = points[points.length - 1];
  const label = metric === 'delivery_score' ? 'Delivery score (not a performance score)' : metricLabel(metric);
  const words = [points.length === 1 ? `1 result, analysed ${formatDateTime(latest.at)}.`
    : `${plural(points.length, 'result')} from ${formatDateTime(points[0].at)} to ${formatDateTime(latest.at)}.`,
    `Latest ${formatMetric(metric, latest.y)}, lowest ${formatMetric(metric, Math.min(...values))}, highest ${formatMetric(metric, Math.max(...values))}.`];
  const refs = budgets.map((b) => {
    const limit = Number.isFinite(b.max) ? b.max : b.min;
    const over = points.filter((p) => (Number.isFinite(b.max) ? p.y > b.max : p.y < b.min)).length;
    words.push(`Budget of ${b.monitor}: ${budgetWords(b)}; ${over} of ${plural(points.length, 'result')} outside it.`);
    return { y: limit, label: `${Number.isFinite(b.max) ? 'max' : 'min'} ${formatMetric(metric, limit)}`, cls: Number.isFinite(b.max) ? 'budget-max' : 'budget-min' };
  });
  const notes = [];
  if (series.length > 1) notes.push(`Lines: ${series.map((s, i) => `${s.label} (line ${i + 1})`).join(', ')}. Engines and devices measure differently, so each has its own line.`);
  if (truncated) notes.push(`Only the first ${formatCount(points.length)} results of this period are drawn: choose a shorter period to see the newest.`);
  if (metric === 'delivery_score') notes.push(DELIVERY_NOTE);
  const table = dataTable(`${label}: every result`,
    [{ label: 'Analysed' }, { label: 'Value', num: true }, { label: 'Engine · device' }, { label: 'Job' }],
    points.map((p) => [timeEl(p.at), formatMetric(metric, p.y) + (Number.isFinite(p.spread) ? ` (±${formatMetric(metric, p.spread / 2)})` : ''),
      seriesLabel(p.engine, p.strategy), el('a', { href: jobHref(p.job), class: 'mono' }, String(p.job).slice(0, 8))]),
    { cls: 'history-table' });
  const legend = series.length > 1 ? el('ul', { class: 'chart-legend' }, series.map((s) => el('li', { class: s.cls }, el('span', { class: 'swatch', 'aria-hidden': 'true' }), s.label))) : null;
  const scaleNote = el('p', { class: 'hint', hidden: true });
  const draw = (width) => {
    const { svg, offscale } = lineChart({
      width, height: width < 480 ? 200 : 240, title: label, description: words.join(' '), series,
      yFormat: (v) => axisValue(metric, v), xFormat: axisTime, yMin: 0, yMax: isScoreMetric(metric) ? 100 : null, refs,
    });
    // A budget far from every value would flatten the line to nothing: it is named instead.
    scaleNote.textContent = offscale.length ? `Not drawn, far outside the measured values: the budget line${offscale.length > 1 ? 's' : ''} ${offscale.map((r) => r.label).join(', ')}.` : '';
    scaleNote.hidden = offscale.length === 0;
    return svg;
  };
  const fig = chartFigure({ heading: label, summary: words.join(' '), draw, table, notes, cls: `history-${metric}` });
  fig.figure.dataset.metric = metric;
  fig.figure.querySelector('figcaption').append(scaleNote);
  if (legend) fig.box.before(legend);
  return fig;
}

function submitHistory(event) {
  event.preventDefault();
  const url = $('history-url').value.trim();
  if (!url) {
    $('history-url').setAttribute('aria-invalid', 'true');
    setViewStatus('history-status', 'Enter the URL whose history you want to see.');
    $('history-url').focus();
    return;
  }
  const params = new URLSearchParams({ url, range: $('history-range').value });
  if (historyPage.monitor && url === historyPage.url) params.set('monitor', historyPage.monitor);
  go(`#/history?${params}`);
}

/** The history form's controls. */
export function wireHistoryView() {
  $('history-form').addEventListener('submit', submitHistory);
  $('history-url').addEventListener('input', () => $('history-url').removeAttribute('aria-invalid'));
}
