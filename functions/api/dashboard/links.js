// Addresses: the hash of each view (#/jobs/ID, #/compare?…), going to one, and which URLs
// may become links.

export function isWebUrl(value) {
  return typeof value === 'string' && /^https?:\/\/[^\s]+$/i.test(value.trim());
}

export function jobHref(id) {
  return `#/jobs/${encodeURIComponent(id)}`;
}

export function distributionHref(id) {
  return `#/jobs/${encodeURIComponent(id)}/distribution`;
}

export function monitorHref(id) {
  return `#/monitors/${encodeURIComponent(id)}`;
}

/** A URL's history; monitor: a monitor it belongs to, whose budgets the charts draw. */
export function historyHref(url, monitor = null) {
  const params = new URLSearchParams({ url });
  if (monitor) params.set('monitor', monitor);
  return `#/history?${params}`;
}

/** The older of two jobs is the base: changes read as "since then". */
export function compareHref(a, b) {
  const [base, head] = [a, b].sort((x, y) => String(x.created_at).localeCompare(String(y.created_at)));
  return `#/compare?${new URLSearchParams({ base: base.batch_job_id, head: head.batch_job_id })}`;
}

/** Navigates to `hash`; the same address again (a form sent twice) loads the view again. */
export function go(hash) {
  if (location.hash === hash) reload();
  else location.hash = hash;
}

/** What going to the address already shown does (app.js: route again). */
let reload = () => {};
export function whenSameAddress(handler) {
  reload = handler;
}
