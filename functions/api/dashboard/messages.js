// Messages: the error and notice banners, screen-reader announcements, an error's per-field
// details and a tenant limit in words.

import { $, el } from './dom.js';
import { formatDurationWords } from './format.js';

// ---------------------------------------------------------------- messages

/** Polite announcements for screen readers; each message is its own node so none is swallowed. */
export function announce(message) {
  const region = $('announcer');
  const item = el('p', {}, message);
  region.append(item);
  setTimeout(() => item.remove(), 10000);
}

/** An error's message with its per-field details ("1 invalid field: URLs: has 10001 entries…"). */
export function errorText(error) {
  const details = Array.isArray(error?.details) ? error.details.map(describeDetail).filter(Boolean) : [];
  const message = error?.message || 'unknown problem';
  return details.length ? `${message}: ${details.join('; ')}` : message;
}

function describeDetail(detail) {
  if (detail == null) return null;
  if (typeof detail === 'string') return detail;
  if (typeof detail === 'object' && 'message' in detail) {
    return detail.field ? `${describeField(detail.field)}: ${detail.message}` : String(detail.message);
  }
  return null;
}

const LIMIT_WORDS = {
  max_active_jobs: 'Unfinished jobs',
  max_urls_per_day: 'URL analyses today (URLs × runs × form factors)',
  max_in_flight: 'URLs analysed at once',
  quota_weight: 'Share of the PSI quota (weight)',
};

/** A refusal over one of the tenant's limits, in words: how much is used and when to come back. */
export function limitLines(error) {
  const limit = error?.details && typeof error.details === 'object' && !Array.isArray(error.details) ? error.details : null;
  if (!limit || !limit.limit) return [];
  const lines = [`${LIMIT_WORDS[limit.limit] || limit.limit}: ${limit.used} used of ${limit.allowed}.`];
  const wait = error.retryAfter || limit.retry_after_seconds;
  if (wait) lines.push(`You can submit again in ${formatDurationWords(wait)}.`);
  else lines.push('Split the list into smaller jobs.');
  return lines;
}

/** The error banner: the API's own message in plain words, plus per-field details. */
export function showError(error) {
  if (!error || error.name === 'AbortError') return;
  // A rejected key is handled by asking for the key again; no banner needed.
  if (error.status === 401) return;
  const message = typeof error === 'string' ? error : (error.message || 'Something went wrong.');
  $('error-message').textContent = message;
  const list = $('error-details');
  const items = Array.isArray(error.details) ? error.details.map(describeDetail).filter(Boolean) : limitLines(error);
  list.replaceChildren(...items.map((text) => el('li', {}, text)));
  list.hidden = items.length === 0;
  $('error').hidden = false;
}

export function clearError() {
  $('error').hidden = true;
  $('error-message').textContent = '';
  $('error-details').replaceChildren();
}

export function showNotice(message) {
  $('notice-message').textContent = message;
  $('notice').hidden = false;
}

export function clearNotice() {
  $('notice').hidden = true;
  $('notice-message').textContent = '';
}

// A message to show after the next navigation (hashchange fires later, and
// routing clears old notices).
let pendingNotice = null;

/** Shows the message kept for the next view, once (app.js's route). */
export function showPendingNotice() {
  if (pendingNotice) { showNotice(pendingNotice); pendingNotice = null; }
}

/** Keeps a message for the next view (routing clears the current one's). */
export function noticeOnNextView(message) {
  pendingNotice = message;
}

/** Words for an API field name in an error's details (view-jobs.js: the new-job form's labels). */
let describeField = (field) => String(field || 'Value').replace(/_/g, ' ');
export function describeFieldsWith(describe) {
  describeField = describe;
}
