// Words and numbers as the page shows them: statuses, error kinds and metric names in words;
// counts, times, sizes and dates; score bands and badges; the delivery-score rule (an http
// job's number is a delivery score, not a performance score); field data's verdicts (the
// Chrome UX Report's real users); axis labels, budgets, schedules and changes.

import { el } from './dom.js';

// ---------------------------------------------------------------- words

export const JOB_STATUS_WORDS = {
  pending: 'Waiting to start',
  processing: 'Running',
  completed: 'Completed',
  completed_with_errors: 'Completed with errors',
  failed: 'Failed',
  cancelling: 'Cancelling',
  cancelled: 'Cancelled',
};

export const RESULT_STATUS_WORDS = {
  queued: 'Queued',
  processing: 'Being analysed',
  succeeded: 'Succeeded',
  failed: 'Failed',
  cancelled: 'Cancelled',
};

const ERROR_KIND_WORDS = {
  timeout: 'the page took too long to respond',
  http_4xx: 'the page answered with a client error',
  http_5xx: 'the web server answered with a server error',
  rate_limited: 'too many requests: the site or the analysis service asked us to slow down',
  dns: 'the domain name could not be found',
  connection: 'the server could not be reached',
  transfer: 'the connection broke while the page was downloading',
  redirect: 'the page redirects too often or to an invalid address',
  blocked: 'the site blocked the analysis',
  invalid_url: 'the address is not a valid web page URL',
  engine_unavailable: 'the analysis engine was not available',
};

const METRIC_LABELS = {
  ttfb_ms: 'Time to first byte',
  total_ms: 'Load time',
  page_bytes: 'Page size',
  requests: 'Requests',
  status_code: 'HTTP status',
  lcp_ms: 'Largest contentful paint',
  fcp_ms: 'First contentful paint',
  cls: 'Cumulative layout shift',
  tbt_ms: 'Total blocking time',
  si_ms: 'Speed index',
  speed_index_ms: 'Speed index',
  score: 'Score',
  desktop_score: 'Desktop score',
  delivery_score: 'Delivery score',
  desktop_delivery_score: 'Desktop delivery score',
  delivery_band: 'Delivery band',
  inp_ms: 'Interaction to next paint',
  field_lcp_ms: 'Largest contentful paint, real users (p75)',
  field_inp_ms: 'Interaction to next paint, real users (p75)',
  field_cls: 'Cumulative layout shift, real users (p75)',
  field_fcp_ms: 'First contentful paint, real users (p75)',
  field_ttfb_ms: 'Time to first byte, real users (p75)',
};

/** What the http engine's number is, in words shown beside it. */
export const DELIVERY_NOTE = 'How the page is delivered (server response, connection, redirects, bytes, compression, '
  + 'caching, render-blocking markup). Not a performance score: it does not rank pages as Lighthouse does.';

export const PRIORITY_WORDS = { low: 'Low', normal: 'Normal', high: 'High', urgent: 'Urgent' };
export const STRATEGY_WORDS = { mobile: 'Mobile', desktop: 'Desktop', both: 'Mobile and desktop' };
export const ENGINE_WORDS = {
  auto: 'Automatic', psi: 'PageSpeed Insights', browser: 'Headless browser', http: 'Plain HTTP timing',
  none: 'None (field data only)',
};
export const ENGINE_SHORT = { psi: 'PageSpeed', browser: 'Browser', http: 'HTTP timing', none: 'Field data only' };

// ---------------------------------------------------------------- formatting

export const numberFormat = new Intl.NumberFormat();
export const oneDecimal = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });

export function plural(count, one, many = one + 's') {
  return `${numberFormat.format(count)} ${count === 1 ? one : many}`;
}

export function formatCount(value) {
  return Number.isFinite(value) ? numberFormat.format(value) : '—';
}

function formatMs(ms) {
  if (!Number.isFinite(ms)) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
}

export function formatBytes(bytes) {
  if (!Number.isFinite(bytes)) return '—';
  if (bytes < 1024) return `${Math.round(bytes)} B`;
  const units = ['KB', 'MB', 'GB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** "5 min", "1 h 30 min", "45 s": for settings such as timeouts and cache age. */
export function formatSeconds(seconds) {
  if (!Number.isFinite(seconds)) return '—';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) {
    const m = Math.floor(s / 60), rest = s % 60;
    return rest ? `${m} min ${rest} s` : `${m} min`;
  }
  const h = Math.floor(s / 3600), m = Math.round((s % 3600) / 60);
  return m ? `${h} h ${m} min` : `${h} h`;
}

/** Remaining time in words: "about 3 minutes left". */
export function formatEta(seconds) {
  if (!Number.isFinite(seconds)) return '';
  const s = Math.max(0, Math.round(seconds));
  if (s < 10) return 'almost done';
  if (s < 50) return 'less than a minute left';
  const minutes = Math.round(s / 60);
  if (minutes < 60) return `about ${plural(minutes, 'minute')} left`;
  const hours = Math.floor(minutes / 60), rest = minutes % 60;
  return `about ${plural(hours, 'hour')}${rest ? ` ${plural(rest, 'minute')}` : ''} left`;
}

/** Elapsed time in words: "4 minutes", "1 hour 5 minutes". */
export function formatDurationWords(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return plural(s, 'second');
  const minutes = Math.round(s / 60);
  if (minutes < 60) return plural(minutes, 'minute');
  const hours = Math.floor(minutes / 60), rest = minutes % 60;
  return `${plural(hours, 'hour')}${rest ? ` ${plural(rest, 'minute')}` : ''}`;
}

export function formatRate(perMinute) {
  if (!Number.isFinite(perMinute)) return '';
  return `${perMinute < 10 ? oneDecimal.format(perMinute) : numberFormat.format(Math.round(perMinute))} URLs per minute`;
}

export function parseDate(iso) {
  if (!iso) return null;
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? null : date;
}

export function formatDateTime(iso) {
  const date = parseDate(iso);
  if (!date) return '—';
  return date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

export function timeEl(iso) {
  const date = parseDate(iso);
  if (!date) return document.createTextNode('—');
  return el('time', { datetime: iso, title: date.toLocaleString() }, formatDateTime(iso));
}

/** Formats a metric by its name: *_ms as time, *_bytes as size, cls with decimals. */
export function formatMetric(name, value) {
  if (!Number.isFinite(value)) return '—';
  if (name.endsWith('_ms')) return formatMs(value);
  if (name.endsWith('_bytes') || name === 'bytes') return formatBytes(value);
  // CrUX reports its CLS p75 to two decimals; a third would be invented precision.
  if (name === 'cls') return value.toFixed(3);
  if (name.endsWith('field_cls')) return value.toFixed(2);
  if (name.endsWith('_seconds')) return formatSeconds(value);
  return Number.isInteger(value) ? numberFormat.format(value) : oneDecimal.format(value);
}

export function metricLabel(name) {
  return METRIC_LABELS[name] || name.replace(/_ms$/, ' (ms)').replace(/_/g, ' ');
}

export function errorKindWords(kind) {
  if (!kind) return '';
  return ERROR_KIND_WORDS[kind] || String(kind).replace(/_/g, ' ');
}

export function jobName(job) {
  return (job && job.name && String(job.name).trim()) || 'Untitled job';
}

function scoreRating(score) {
  if (score >= 90) return { cls: 'score-good', words: 'good' };
  if (score >= 50) return { cls: 'score-average', words: 'needs improvement' };
  return { cls: 'score-poor', words: 'poor' };
}

/** A score pill: the number is always shown; colour and shape only add to it. */
export function scoreBadge(score, { small = false, label = '' } = {}) {
  if (!Number.isFinite(score)) return el('span', { class: 'sub' }, '—');
  const rounded = Math.round(score);
  const rating = scoreRating(rounded);
  return el('span', { class: `score ${rating.cls}${small ? ' score-small' : ''}`, title: `${label ? label + ' ' : ''}score ${rounded}: ${rating.words}` },
    label ? `${label} ${rounded}` : String(rounded),
    el('span', { class: 'sr-only' }, ` (${rating.words})`));
}

/** The http engine's delivery score: the number and its band, in a neutral pill. */
export function deliveryBadge(score, band, { small = false, label = '' } = {}) {
  if (!Number.isFinite(score)) return el('span', { class: 'sub' }, '—');
  const rounded = Math.round(score);
  const words = band || '';
  return el('span', { class: `score score-delivery${small ? ' score-small' : ''}`, title: `${label ? label + ' ' : ''}delivery score ${rounded}${words ? ` (${words})` : ''}. ${DELIVERY_NOTE}` },
    label ? `${label} ${rounded}` : String(rounded),
    words ? el('span', { class: 'band' }, words) : null);
}

/** Whether the loaded rows' numbers are delivery scores only (an http job's). */
export function deliveryOnly(rows) {
  return !rows.some((r) => Number.isFinite(r.score)) && rows.some((r) => metricOf(r, 'delivery_score') !== null);
}

export function statusBadge(status, words) {
  return el('span', { class: 'badge', 'data-status': status }, words[status] || status || 'unknown');
}

export function setStatusBadge(node, status) {
  node.dataset.status = status || '';
  node.textContent = JOB_STATUS_WORDS[status] || status || 'unknown';
  node.hidden = !status;
}

export function metricOf(row, name) {
  const value = row?.metrics?.[name];
  return Number.isFinite(value) ? value : null;
}

const shortDate = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short' });
const shortDateTime = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' });
const shortTime = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const shortSeconds = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });

/** An x-axis label as precise as the span needs: seconds within minutes, the time of day
 *  within a day, the date beyond two days. */
export function axisTime(ms, span) {
  const date = new Date(ms);
  if (span < 15 * 60e3) return shortSeconds.format(date);
  if (span < 86400e3) return shortTime.format(date);
  if (span < 2 * 86400e3) return shortDateTime.format(date);
  return shortDate.format(date);
}

/** Axis text for a metric: short, whole numbers where the unit allows. */
export function axisValue(metric, value) {
  if (metric === 'cls' || metric.endsWith('field_cls')) return value.toFixed(value === 0 ? 0 : 2);
  if (metric.endsWith('_ms')) return value < 1000 ? `${Math.round(value)} ms` : `${oneDecimal.format(value / 1000)} s`;
  return formatMetric(metric, value);
}

/** Whether a number is a score (0-100 by definition) rather than a measurement. */
export function isScoreMetric(metric) {
  return /(^|_)score$/.test(metric);
}

/** A budget in words: "Largest contentful paint at most 2.50 s (URLs labelled team:shop)". */
export function budgetWords(budget) {
  const limit = Number.isFinite(budget.max) ? `at most ${formatMetric(budget.metric, budget.max)}`
    : Number.isFinite(budget.min) ? `at least ${formatMetric(budget.metric, budget.min)}` : '';
  return `${metricLabel(budget.metric)} ${limit}${budget.labels ? ` (URLs labelled ${budget.labels})` : ''}`;
}

/** "rate(1 day)" → "every day"; a cron expression stays as written, in UTC. */
export function scheduleWords(schedule) {
  const rate = /^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$/.exec(String(schedule || '').trim());
  if (rate) {
    const n = Number(rate[1]);
    const unit = rate[2].replace(/s$/, '');
    return n === 1 ? `every ${unit}` : `every ${n} ${unit}s`;
  }
  return schedule ? `${schedule} (UTC)` : '—';
}

/** A signed change in the metric's unit: "+850 ms", "−5", "+0.012". */
export function formatChange(metric, change) {
  if (!Number.isFinite(change)) return '—';
  if (change === 0) return '±0';
  const sign = change > 0 ? '+' : '−';
  const size = Math.abs(change);
  const text = isScoreMetric(metric) ? oneDecimal.format(size) : formatMetric(metric, size);
  return `${sign}${text}`;
}

// ---------------------------------------------------------------- field data (Chrome UX Report)

/** The Core Web Vitals verdicts in their order, with `unavailable` (no verdict) last. */
export const FIELD_VERDICTS = ['good', 'needs_improvement', 'poor', 'unavailable'];
export const FIELD_VERDICT_WORDS = {
  good: 'Good', needs_improvement: 'Needs improvement', poor: 'Poor', unavailable: 'Unavailable',
};

/** The note beside the field columns: two kinds of number that are easily confused. */
export const FIELD_NOTE = 'Lab numbers come from one simulated page load; field data is what real Chrome users '
  + 'experienced over the last 28 days (the 75th percentile, from the Chrome UX Report).';

/**
 * A verdict pill: the words are always shown; colour and shape (as the score's) only add to
 * them. `unavailable` is neutral: no data is not a bad page.
 */
export function fieldBadge(verdict, { small = false, label = '', title = null } = {}) {
  const words = FIELD_VERDICT_WORDS[verdict] || String(verdict || '').replace(/_/g, ' ');
  const text = label ? `${label} ${words.toLowerCase()}` : words;
  return el('span', { class: `field-verdict verdict-${verdict}${small ? ' verdict-small' : ''}`, title }, text);
}

/** A field p75 with its category: shape and colour beside the number, the words for screen
 *  readers and in the tooltip. */
export function fieldValue(name, value, category, { label = '' } = {}) {
  if (!Number.isFinite(value)) return el('span', { class: 'sub' }, label ? `${label} —` : '—');
  const words = category ? (FIELD_VERDICT_WORDS[category] || category).toLowerCase() : '';
  const number = formatMetric(name, value);
  return el('span', { class: `field-value${category ? ` cat-${category}` : ''}`, title: `${label ? label + ' ' : ''}${number}${words ? `: ${words}` : ''}` },
    label ? `${label} ${number}` : number,
    words ? el('span', { class: 'sr-only' }, ` (${words})`) : null);
}

const periodDay = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', timeZone: 'UTC' });
const periodYear = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC' });

/** A CrUX period (`2026-11-01/2026-11-28`, or one day) in words: "1 Nov – 28 Nov 2026". */
export function formatPeriod(period) {
  const [first, last] = String(period || '').split('/');
  const day = (text) => (/^\d{4}-\d{2}-\d{2}$/.test(text || '') ? new Date(`${text}T00:00:00Z`) : null);
  const a = day(first), b = day(last);
  if (!a) return '';
  if (!b) return periodYear.format(a);
  return `${periodDay.format(a)} – ${periodYear.format(b)}`;
}
