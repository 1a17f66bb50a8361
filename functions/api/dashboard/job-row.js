// A job in a list (the home page's jobs, a monitor's runs): its row, progress bar, counts
// and pace; the job page's header uses the same bar and words.

import { isFinished } from './live.js';
import { el } from './dom.js';
import {
  formatCount, formatDurationWords, formatEta, formatRate, jobName, parseDate, plural,
  PRIORITY_WORDS, setStatusBadge, STRATEGY_WORDS, timeEl,
} from './format.js';
import { jobHref } from './links.js';

// ---------------------------------------------------------------- progress widgets

export function countsText(job) {
  const total = job.total_urls ?? 0;
  let text = `${formatCount(job.succeeded ?? 0)} succeeded, ${formatCount(job.failed ?? 0)} failed, `
    + `${formatCount(job.cancelled ?? 0)} cancelled of ${plural(total, 'URL')}`;
  if (!isFinished(job) && ((job.in_progress ?? 0) > 0 || (job.queued ?? 0) > 0)) {
    text += ` (${formatCount(job.in_progress ?? 0)} being analysed, ${formatCount(job.queued ?? 0)} waiting)`;
  }
  return text;
}

export function paceText(job) {
  if (isFinished(job)) {
    const started = parseDate(job.started_at), finished = parseDate(job.finished_at);
    return started && finished ? `Took ${formatDurationWords((finished - started) / 1000)}.` : '';
  }
  if (job.status === 'pending') return 'Waiting for a free slot to start.';
  if (job.status === 'cancelling') return 'Stopping: finishing the URLs already being analysed.';
  const parts = [formatRate(job.urls_per_minute), formatEta(job.eta_seconds)].filter(Boolean);
  return parts.length ? parts.join(' · ') : 'Measuring speed…';
}

/**
 * Updates a stacked role=progressbar: aria-valuenow is the API's progress_percent.
 * instant: skip the width animation (the bar now shows another job).
 */
export function setProgress(bar, job, { instant = false } = {}) {
  if (instant) bar.classList.add('instant');
  const percent = Math.max(0, Math.min(100, Number(job.progress_percent) || 0));
  bar.setAttribute('aria-valuenow', String(Math.round(percent)));
  bar.setAttribute('aria-valuetext', `${Math.round(percent)}% done: ${countsText(job)}`);
  bar.dataset.status = job.status || '';
  const total = job.total_urls || 0;
  const share = (n) => `${total ? Math.min(100, ((n || 0) / total) * 100) : 0}%`;
  const [ok, failed, cancelled, active] = bar.children;
  ok.style.width = share(job.succeeded);
  failed.style.width = share(job.failed);
  cancelled.style.width = share(job.cancelled);
  active.style.width = isFinished(job) ? '0%' : share(job.in_progress);
  if (instant) {
    void bar.offsetWidth; // commit the new widths before animations come back
    requestAnimationFrame(() => bar.classList.remove('instant'));
  }
}

function progressBar(label) {
  return el('div', {
    class: 'job-progress', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': 0, 'aria-label': label,
  }, el('span', { class: 'seg-succeeded' }), el('span', { class: 'seg-failed' }), el('span', { class: 'seg-cancelled' }), el('span', { class: 'seg-active' }));
}

// ---------------------------------------------------------------- job rows

/**
 * A job's row: name, status, progress, counts and pace. pick: a checkbox to choose it for a
 * comparison. extra(job): more nodes under the row (a monitor's run links), redrawn on change.
 */
export function createJobRow(job, { pick = null, extra = null } = {}) {
  const id = job.batch_job_id;
  const row = {
    li: el('li', { class: 'job-row', 'data-job-id': id }),
    link: el('a', { class: 'job-name', href: jobHref(id) }),
    badge: el('span', { class: 'badge' }),
    meta: el('p', { class: 'job-meta' }),
    progress: progressBar('Progress'),
    counts: el('p', { class: 'job-counts' }),
    pace: el('p', { class: 'job-pace' }),
    pick: null,
    picker: pick,
    extra: extra ? el('p', { class: 'job-extra' }) : null,
    render: extra,
    unwatch: null,
  };
  const head = el('div', { class: 'job-row-head' }, row.link, row.badge);
  if (pick) {
    row.pick = el('input', { type: 'checkbox', class: 'compare-pick' });
    row.pick.checked = pick.selected(id);
    row.pick.addEventListener('change', () => pick.toggle(row.job, row.pick.checked));
    head.append(el('label', { class: 'pick' }, row.pick, el('span', {}, 'Compare')));
  }
  row.li.append(head, row.meta, row.progress, row.counts, row.pace);
  if (row.extra) row.li.append(row.extra);
  updateJobRow(row, job);
  return row;
}

export function updateJobRow(row, job) {
  const name = jobName(job);
  row.job = job;
  row.link.textContent = name;
  setStatusBadge(row.badge, job.status);
  row.meta.replaceChildren('Created ', timeEl(job.created_at),
    ` · ${STRATEGY_WORDS[job.strategy] || job.strategy || ''} · ${PRIORITY_WORDS[job.priority] || job.priority || ''} priority`,
    job.engine === 'none' ? ' · field data only' : (job.field_data ? ' · with field data' : ''));
  row.progress.setAttribute('aria-label', `Progress of ${name}`);
  setProgress(row.progress, job);
  row.counts.textContent = countsText(job);
  row.pace.textContent = paceText(job);
  row.pace.hidden = !row.pace.textContent;
  if (row.pick) {
    // Only finished jobs have a verdict per URL (the API answers 409 for a running one).
    row.pick.disabled = !isFinished(job);
    row.pick.setAttribute('aria-label', isFinished(job) ? `Compare “${name}”` : `Compare “${name}” (once it has finished)`);
    if (row.pick.disabled && row.pick.checked) { row.pick.checked = false; row.picker.forget(job.batch_job_id); }
  }
  if (row.extra) row.extra.replaceChildren(...row.render(job));
}
