// A job's score distribution: its scores in bins of ten points, a performance score in
// PageSpeed's bands, a delivery score in its own.

import { isFinished } from './live.js';
import { histogram } from './charts.js';
import { apiJson } from './api.js';
import { $, dataTable, el, setViewBody, setViewStatus } from './dom.js';
import { DELIVERY_NOTE, formatCount, jobName, metricOf, oneDecimal, plural } from './format.js';
import { jobHref } from './links.js';
import { showError } from './messages.js';
import { chartFigure, drawFigures, forgetFigures } from './figures.js';

// ---------------------------------------------------------------- score distribution

/** Result rows read for a distribution at most (ten pages; a job holds up to 10 000 URLs). */
const DISTRIBUTION_MAX_ROWS = 10000;

const distributionPage = { id: null, generation: 0, observers: [] };

export function leaveDistributionPage() {
  distributionPage.generation += 1;
  distributionPage.id = null;
  forgetFigures(distributionPage);
}

export async function openDistributionPage(id) {
  leaveDistributionPage();
  distributionPage.id = id;
  const generation = distributionPage.generation;
  const stale = () => generation !== distributionPage.generation;
  $('distribution-back').href = jobHref(id);
  $('distribution-title').textContent = 'Score distribution';
  document.title = 'Score distribution · speedbatch';
  setViewBody('distribution-charts');
  setViewStatus('distribution-status', 'Reading the job’s results…', { busy: true });
  try {
    const { data: job } = await apiJson(`progress/${encodeURIComponent(id)}`);
    if (stale()) return;
    $('distribution-title').textContent = `Score distribution: ${jobName(job)}`;
    document.title = `Score distribution: ${jobName(job)} · speedbatch`;
    const rows = [];
    let cursor = null;
    do {
      const params = new URLSearchParams({ status: 'succeeded', limit: '1000' });
      if (cursor) params.set('cursor', cursor);
      const { data } = await apiJson(`results/${encodeURIComponent(id)}?${params}`);
      if (stale()) return;
      rows.push(...(data.results || []));
      cursor = data.next_cursor || null;
      if (cursor) setViewStatus('distribution-status', `Reading the job’s results… ${formatCount(rows.length)} so far`, { busy: true });
    } while (cursor && rows.length < DISTRIBUTION_MAX_ROWS);
    renderDistribution(job, rows, Boolean(cursor));
  } catch (err) {
    if (stale()) return;
    setViewStatus('distribution-status', err.status === 404 ? `${err.message} (id: ${id})` : '');
    if (err.status !== 404) showError(err);
  }
}

const PERFORMANCE_BANDS = [
  { name: 'poor', words: 'poor', range: '0–49', cls: 'bar-poor', test: (v) => v < 50 },
  { name: 'average', words: 'needs improvement', range: '50–89', cls: 'bar-average', test: (v) => v >= 50 && v < 90 },
  { name: 'good', words: 'good', range: '90–100', cls: 'bar-good', test: (v) => v >= 90 },
];
const DELIVERY_BANDS = [
  { name: 'weak', range: '0–59' }, { name: 'mixed', range: '60–84' }, { name: 'sound', range: '85–100' },
];

/**
 * Scores rounded to whole points (as the results table shows them) in ten bins: 0–9, …,
 * 80–89 and 90–100. A performance score's bins wear PageSpeed's bands (they fall on bin edges);
 * an http job's delivery score never does: its bars are neutral and its own bands are named.
 */
function scoreBins(values) {
  const bins = Array.from({ length: 10 }, (_, i) => ({ from: i * 10, to: i === 9 ? 100 : i * 10 + 9, count: 0 }));
  for (const value of values) bins[Math.min(9, Math.floor(Math.round(value) / 10))].count += 1;
  return bins;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function renderDistribution(job, rows, truncated) {
  // The rule the results table follows: a row's number is a performance score when `score`
  // is there, else the http engine's delivery score.
  const kind = rows.some((r) => Number.isFinite(r.score)) ? 'performance'
    : rows.some((r) => metricOf(r, 'delivery_score') !== null) ? 'delivery' : null;
  if (!kind) {
    setViewStatus('distribution-status', rows.length ? 'None of the job’s finished URLs has a score.' : 'No URL of this job has finished yet.');
    return;
  }
  setViewStatus('distribution-status', isFinished(job) ? '' : 'The job is still running: these are the URLs finished so far.');
  const figures = [];
  const pairs = kind === 'performance'
    ? [['score', (r) => (Number.isFinite(r.score) ? r.score : null)], ['desktop_score', (r) => metricOf(r, 'desktop_score')]]
    : [['delivery_score', (r) => metricOf(r, 'delivery_score')], ['desktop_delivery_score', (r) => metricOf(r, 'desktop_delivery_score')]];
  for (const [metric, pick] of pairs) {
    const values = rows.map(pick).filter((v) => v !== null);
    if (values.length === 0) continue;
    figures.push(distributionFigure(kind, metric, values, rows, rows.length - values.length, truncated));
  }
  setViewBody('distribution-charts', figures.map((f) => f.figure));
  drawFigures(distributionPage, figures);
}

function distributionFigure(kind, metric, values, rows, unscored, truncated) {
  const bins = scoreBins(values);
  const desktop = metric.startsWith('desktop_');
  const label = `${desktop ? 'Desktop ' : ''}${kind === 'performance' ? 'performance score' : 'delivery score'}`;
  const heading = label.charAt(0).toUpperCase() + label.slice(1);
  const words = [`${plural(values.length, 'URL')} with a ${label}; median ${oneDecimal.format(median(values))}.`];
  let bandColumn = null;
  if (kind === 'performance') {
    const counts = PERFORMANCE_BANDS.map((b) => `${values.filter((v) => b.test(Math.round(v))).length} ${b.words} (${b.range})`);
    words.push(`${counts.join(', ')}.`);
    bandColumn = (bin) => PERFORMANCE_BANDS.find((b) => b.test(bin.from)).words;
  } else {
    // Its own bands, from each row's delivery_band as the API judged it.
    const bandOf = desktop ? () => null : (r) => (typeof r.metrics?.delivery_band === 'string' ? r.metrics.delivery_band : null);
    const named = rows.map(bandOf).filter(Boolean);
    if (named.length) words.push(`${DELIVERY_BANDS.map((b) => `${named.filter((n) => n === b.name).length} ${b.name} (${b.range})`).join(', ')}.`);
  }
  if (unscored) words.push(`${plural(unscored, 'finished URL')} without one ${unscored === 1 ? 'is' : 'are'} left out.`);
  const notes = [];
  if (kind === 'delivery') notes.push(DELIVERY_NOTE);
  if (truncated) notes.push(`Drawn from the first ${formatCount(rows.length)} finished URLs of the job.`);
  const total = values.length;
  const columns = [{ label: 'Score', rowHeader: true }, { label: 'URLs', num: true }, { label: 'Share', num: true }];
  if (bandColumn) columns.push({ label: 'Rating' });
  const table = dataTable(`${heading}: URLs per 10 points`, columns,
    bins.map((bin) => {
      const cells = [`${bin.from}–${bin.to}`, formatCount(bin.count), `${Math.round((bin.count / total) * 100)} %`];
      if (bandColumn) cells.push(bandColumn(bin));
      return cells;
    }), { cls: 'distribution-table' });
  const chartBins = bins.map((bin) => ({
    label: `${bin.from}–${bin.to}`, short: String(bin.from), count: bin.count,
    cls: kind === 'performance' ? PERFORMANCE_BANDS.find((b) => b.test(bin.from)).cls : 'bar-delivery',
    title: `${bin.from}–${bin.to}: ${plural(bin.count, 'URL')}`,
  }));
  const draw = (width) => histogram({
    width, height: width < 480 ? 200 : 240, title: heading, description: words.join(' '), bins: chartBins,
    xLabel: kind === 'performance' ? 'score (bins of 10 points)' : 'delivery score (bins of 10 points)',
  });
  const legend = kind === 'performance'
    ? el('ul', { class: 'chart-legend' }, PERFORMANCE_BANDS.slice().reverse().map((b) => el('li', { class: b.cls }, el('span', { class: 'swatch', 'aria-hidden': 'true' }), `${b.range} ${b.words}`)))
    : null;
  const fig = chartFigure({ heading, summary: words.join(' '), draw, table, notes, cls: `distribution-${kind}` });
  fig.figure.dataset.metric = metric;
  if (legend) fig.box.before(legend);
  return fig;
}
