// Comparing two jobs URL by URL: the verdicts' counts and the changes beyond noise.

import { barChart } from './charts.js';
import { apiJson } from './api.js';
import { $, dataTable, el, setViewBody, setViewStatus } from './dom.js';
import {
  deliveryBadge, ENGINE_SHORT, formatChange, formatCount, formatDateTime, formatMetric, jobName,
  metricLabel, plural, scoreBadge, STRATEGY_WORDS,
} from './format.js';
import { go, historyHref, isWebUrl, jobHref } from './links.js';
import { announce, showError } from './messages.js';
import { chartFigure, drawFigures, forgetFigures } from './figures.js';

// ---------------------------------------------------------------- comparing two jobs

const VERDICTS = ['regressed', 'improved', 'new', 'gone', 'unchanged'];
const VERDICT_WORDS = { regressed: 'Regressed', improved: 'Improved', new: 'New', gone: 'Gone', unchanged: 'Unchanged' };
/** How often a comparison waits for a just-finished job's digest (503 with Retry-After). */
const COMPARE_RETRIES = 6;

const comparePage = { generation: 0, observers: [], base: '', head: '', verdict: '', urls: [], cursor: null, counts: null };

export function leaveComparePage() {
  comparePage.generation += 1;
  forgetFigures(comparePage);
  clearTimeout(comparePage.retryTimer);
}

export async function openComparePage(params) {
  leaveComparePage();
  const base = (params.get('base') || '').trim();
  const head = (params.get('head') || '').trim();
  const verdict = VERDICTS.includes(params.get('verdict')) ? params.get('verdict') : '';
  Object.assign(comparePage, { base, head, verdict, urls: [], cursor: null, counts: null });
  $('compare-base').value = base;
  $('compare-head').value = head;
  $('compare-verdict').value = verdict;
  for (const id of ['compare-base', 'compare-head']) $(id).removeAttribute('aria-invalid');
  setViewBody('compare-summary');
  setViewBody('compare-results');
  $('compare-more').hidden = true;
  $('compare-filter').hidden = true;
  $('compare-jobs').replaceChildren();
  document.title = 'Compare two jobs · speedbatch';
  if (!base || !head) {
    setViewStatus('compare-status', 'Enter two job ids, or tick two finished jobs in the list of jobs.');
    return;
  }
  if (base === head) {
    $('compare-head').setAttribute('aria-invalid', 'true');
    setViewStatus('compare-status', 'The base and the head are the same job: choose two different jobs.');
    return;
  }
  describeComparedJobs(base, head, comparePage.generation);
  loadComparison({ reset: true });
}

/** Names the two jobs (a failure here leaves the ids, which are enough to go on). */
async function describeComparedJobs(base, head, generation) {
  const name = async (id) => {
    try { return (await apiJson(`progress/${encodeURIComponent(id)}`)).data; } catch { return null; }
  };
  const [b, h] = await Promise.all([name(base), name(head)]);
  if (generation !== comparePage.generation) return;
  const line = (role, id, job) => el('li', {}, `${role}: `, el('a', { href: jobHref(id) }, job ? jobName(job) : id),
    job ? el('span', { class: 'sub' }, `created ${formatDateTime(job.created_at)} · ${ENGINE_SHORT[job.engine] || job.engine} · ${STRATEGY_WORDS[job.strategy] || job.strategy}`) : null);
  $('compare-jobs').replaceChildren(line('Base (before)', base, b), line('Head (after)', head, h));
}

async function loadComparison({ reset = false, attempt = 0 } = {}) {
  const generation = comparePage.generation;
  const params = new URLSearchParams({ base: comparePage.base, head: comparePage.head, limit: '100' });
  if (comparePage.verdict) params.set('verdict', comparePage.verdict);
  if (!reset && comparePage.cursor) params.set('cursor', comparePage.cursor);
  if (reset) setViewStatus('compare-status', 'Comparing the two jobs…', { busy: true });
  $('compare-more').disabled = true;
  try {
    const { data } = await apiJson(`compare?${params}`);
    if (generation !== comparePage.generation) return;
    if (reset) comparePage.urls = [];
    comparePage.urls.push(...(data.urls || []));
    comparePage.cursor = data.next_cursor || null;
    comparePage.counts = data.counts || {};
    setViewStatus('compare-status', '');
    renderComparison(reset);
  } catch (err) {
    if (generation !== comparePage.generation) return;
    if (err.status === 503 && attempt < COMPARE_RETRIES) {
      // A job that has just finished: its digest is being written.
      const wait = Math.max(1, err.retryAfter || 5);
      setViewStatus('compare-status', `${err.message} Trying again in ${plural(wait, 'second')}…`, { busy: true });
      comparePage.retryTimer = setTimeout(() => loadComparison({ reset, attempt: attempt + 1 }), wait * 1000);
      return;
    }
    setViewStatus('compare-status', '');
    if (err.status === 404 || err.status === 422) {
      const field = Array.isArray(err.details) ? err.details.find((d) => d?.field === 'base' || d?.field === 'head')?.field : null;
      for (const id of field ? [`compare-${field}`] : ['compare-base', 'compare-head']) $(id).setAttribute('aria-invalid', 'true');
    }
    showError(err);
  } finally {
    if (generation === comparePage.generation) {
      $('compare-more').disabled = false;
      $('compare-more').hidden = !comparePage.cursor;
    }
  }
}

function renderComparison(reset) {
  const counts = comparePage.counts;
  const total = VERDICTS.reduce((sum, v) => sum + (Number(counts[v]) || 0), 0);
  const words = `${VERDICTS.map((v) => `${formatCount(Number(counts[v]) || 0)} ${v}`).join(', ')} of ${plural(total, 'URL')}.`;
  if (reset) {
    const table = dataTable('URLs per verdict', [{ label: 'Verdict', rowHeader: true }, { label: 'URLs', num: true }],
      VERDICTS.map((v) => [VERDICT_WORDS[v], formatCount(Number(counts[v]) || 0)]), { cls: 'verdict-table' });
    const bars = VERDICTS.map((v) => ({ label: VERDICT_WORDS[v], value: Number(counts[v]) || 0, cls: `v-${v}` }));
    const figure = chartFigure({
      heading: 'Verdicts', summary: words, table,
      draw: (width) => barChart({ width, title: 'URLs per verdict', description: words, bars }),
      notes: ['A change counts only beyond run-to-run noise (each metric’s threshold is in the table of changes).'],
      cls: 'compare-counts',
    });
    forgetFigures(comparePage);
    setViewBody('compare-summary', figure.figure);
    drawFigures(comparePage, [figure]);
    $('compare-filter').hidden = false;
    announce(`Comparison: ${words}`);
  }
  const rows = comparePage.urls;
  if (rows.length === 0) {
    setViewBody('compare-results', el('p', { class: 'hint' }, comparePage.verdict ? `No URL ${comparePage.verdict}.` : 'Neither job has URLs.'));
    return;
  }
  setViewBody('compare-results', dataTable(`URL by URL${comparePage.verdict ? ` (${comparePage.verdict} only)` : ''}, regressions first`,
    [{ label: 'URL' }, { label: 'Verdict' }, { label: 'Score', num: true }, { label: 'Changes' }, { label: 'Why' }],
    rows.map(compareRow), { cls: 'compare-table' }));
}

/** A side's number in the right look: a performance score in its band, a delivery score plain. */
function sideScore(side) {
  if (!side) return el('span', { class: 'sub' }, '—');
  if (Number.isFinite(side.score)) return scoreBadge(side.score, { small: true });
  if (Number.isFinite(side.delivery_score)) return deliveryBadge(side.delivery_score, '', { small: true });
  return el('span', { class: 'sub' }, side.status === 'failed' ? 'failed' : '—');
}

/** worse / better / same, from a change's own verdict; numbers without one judge nothing. */
function deltaClass(change) {
  if (change.verdict === 'regressed') return 'delta-worse';
  if (change.verdict === 'improved') return 'delta-better';
  return 'delta-same';
}

const DELTA_WORDS = { 'delta-worse': 'worse', 'delta-better': 'better', 'delta-same': 'within noise' };

function compareRow(item) {
  const url = String(item.url || '');
  const changes = Array.isArray(item.changes) ? item.changes : [];
  const scoreChange = changes.find((c) => c.metric === 'score' || c.metric === 'delivery_score');
  const scoreCell = el('span', { class: 'score-pair' }, sideScore(item.base), el('span', { 'aria-hidden': 'true' }, ' → '),
    el('span', { class: 'sr-only' }, ' to '), sideScore(item.head));
  if (scoreChange) {
    const cls = deltaClass(scoreChange);
    scoreCell.append(el('span', { class: `delta ${cls}`, 'data-change': scoreChange.change }, formatChange(scoreChange.metric, scoreChange.change),
      el('span', { class: 'sr-only' }, ` (${DELTA_WORDS[cls]})`)));
  }
  const line = (c) => {
    const cls = deltaClass(c);
    return el('li', { class: cls, 'data-metric': c.metric },
      el('span', { class: 'metric-name' }, metricLabel(c.metric)), ' ',
      `${formatMetric(c.metric, c.base)} → ${formatMetric(c.metric, c.head)} `,
      el('span', { class: `delta ${cls}`, 'data-change': c.change }, formatChange(c.metric, c.change)),
      el('span', { class: 'sr-only' }, ` (${DELTA_WORDS[cls]}${Number.isFinite(c.threshold) ? `; noise ${formatMetric(c.metric, c.threshold)}` : ''})`));
  };
  // The numbers a verdict is judged on first; the rest (diagnostics that move with them) folded.
  const rest = changes.filter((c) => c !== scoreChange);
  const judged = rest.filter((c) => Number.isFinite(c.threshold) || c.verdict);
  const other = rest.filter((c) => !judged.includes(c));
  const list = [];
  if (judged.length) list.push(el('ul', { class: 'changes judged' }, judged.map(line)));
  if (other.length) {
    list.push(el('details', { class: 'other-changes' }, el('summary', {}, `${plural(other.length, 'other number')}`),
      el('ul', { class: 'changes' }, other.map(line))));
  }
  return [
    el('span', { class: 'url-cell' }, isWebUrl(url) ? el('a', { href: url, target: '_blank', rel: 'noopener noreferrer' }, url) : url,
      el('span', { class: 'sub' }, el('a', { href: historyHref(url), 'aria-label': `History of ${url}` }, 'History'))),
    el('span', { class: 'badge verdict', 'data-verdict': item.verdict }, VERDICT_WORDS[item.verdict] || item.verdict),
    scoreCell,
    list.length ? el('div', {}, list) : el('span', { class: 'sub' }, '—'),
    (item.reasons || []).join('; ') || '—',
  ];
}

/** The compare form: ids as typed, the older/newer order left to the user. */
function submitCompare(event) {
  event.preventDefault();
  const base = $('compare-base').value.trim();
  const head = $('compare-head').value.trim();
  const missing = [!base && 'compare-base', !head && 'compare-head'].filter(Boolean);
  for (const id of ['compare-base', 'compare-head']) {
    if (missing.includes(id)) $(id).setAttribute('aria-invalid', 'true');
    else $(id).removeAttribute('aria-invalid');
  }
  if (missing.length) {
    setViewStatus('compare-status', 'Enter both job ids: the base (before) and the head (after).');
    $(missing[0]).focus();
    return;
  }
  const params = new URLSearchParams({ base, head });
  if ($('compare-verdict').value) params.set('verdict', $('compare-verdict').value);
  go(`#/compare?${params}`);
}

/** The compare form's controls. */
export function wireCompareView() {
  $('compare-form').addEventListener('submit', submitCompare);
  $('compare-verdict').addEventListener('change', () => {
    if (!comparePage.base || !comparePage.head) return;
    comparePage.verdict = $('compare-verdict').value;
    loadComparison({ reset: true });
  });
  $('compare-more').addEventListener('click', () => loadComparison());
}
