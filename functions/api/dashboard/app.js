// speedbatch dashboard: vanilla JS, no build step, no external resources.
// Every value from the API or the user reaches the DOM through textContent or
// createElement; no data is ever parsed as HTML.
//
// This file starts the page: the key panel, routing between the views and the header's
// health badge. The views are view-*.js; api.js talks to the API, tracker.js follows jobs
// (job-row.js draws them in lists), format.js writes numbers and words, dom.js, links.js and
// figures.js build elements, addresses and charts, messages.js the banners and announcements.

import { API_ROOT, apiJson, keyStore, whenUnauthorized } from './api.js';
import { $ } from './dom.js';
import { whenSameAddress } from './links.js';
import { announce, clearError, clearNotice, showPendingNotice } from './messages.js';
import { renderLiveMode, tracker } from './tracker.js';
import {
  clearJobsList, loadJobs, renderCompareBar, renderDryRun, updateEngineState, updateSubmitState,
  wireJobsView,
} from './view-jobs.js';
import { leaveJobPage, openJobPage, renderSortHeaders, wireJobView } from './view-job.js';
import {
  clearMonitorsList, leaveMonitorPage, loadMonitors, openMonitorPage, wireMonitorsView,
} from './view-monitors.js';
import { leaveHistoryPage, openHistoryPage, wireHistoryView } from './view-history.js';
import { leaveDistributionPage, openDistributionPage } from './view-distribution.js';
import { leaveComparePage, openComparePage, wireCompareView } from './view-compare.js';

const HEALTH_MS = 60000;

// ---------------------------------------------------------------- health

async function checkHealth() {
  const badge = $('health');
  let state = 'unreachable';
  try {
    // Health needs no key; a 503 still carries a JSON status.
    const response = await fetch(API_ROOT + 'health', { cache: 'no-store', headers: { accept: 'application/json' } });
    const data = await response.json().catch(() => null);
    state = data && typeof data.status === 'string' ? data.status : (response.ok ? 'healthy' : 'unhealthy');
  } catch { /* unreachable */ }
  const words = { healthy: 'Service healthy', degraded: 'Service degraded', unhealthy: 'Service unhealthy', unreachable: 'Service unreachable' };
  badge.dataset.state = state;
  badge.textContent = words[state] || `Service ${state}`;
}

// ---------------------------------------------------------------- key panel and routing

function showKeyPanel(message = '') {
  tracker.stopAll();
  leaveViews();
  $('main').hidden = true;
  $('key-saved').hidden = true;
  $('key-panel').hidden = false;
  $('key-message').textContent = message;
  $('api-key').focus();
  document.title = 'speedbatch';
}

/** Any 401 means the stored key is wrong or revoked: forget it and ask again. */
function onUnauthorized() {
  keyStore.clear();
  clearError();
  showKeyPanel('The API key was not accepted. Please enter it again.');
  announce('The API key was not accepted. Please enter it again.');
}

async function saveKey(event) {
  event.preventDefault();
  const input = $('api-key');
  const key = input.value.trim();
  if (!key) {
    $('key-message').textContent = 'Please enter your API key.';
    input.focus();
    return;
  }
  const button = $('save-key');
  button.disabled = true;
  $('key-message').textContent = 'Checking the key…';
  try {
    await apiJson('jobs?limit=1', { key, handleUnauthorized: false });
    keyStore.set(key);
    input.value = '';
    $('key-message').textContent = '';
    announce('API key accepted.');
    enterApp({ focus: true }); // the key form is gone; move focus somewhere useful
  } catch (err) {
    $('key-message').textContent = err.status === 401
      ? 'This API key was not accepted. Check it and try again.'
      : `The key could not be checked: ${err.message}`;
    input.focus();
  } finally {
    button.disabled = false;
  }
}

function forgetKey() {
  keyStore.clear();
  clearError();
  clearNotice();
  showKeyPanel('The key was forgotten. Enter a key to continue.');
}

function enterApp({ focus = false } = {}) {
  $('key-panel').hidden = true;
  $('key-saved').hidden = false;
  $('main').hidden = false;
  route({ focus });
}

/**
 * The view the hash names: #/ (jobs and monitors), #/jobs/ID, #/jobs/ID/distribution,
 * #/monitors/ID, #/history?url=…[&monitor=…][&range=…], #/compare?base=…&head=…[&verdict=…].
 * Anything else is the home view.
 */
function parseRoute() {
  const hash = location.hash;
  const [path, query = ''] = hash.replace(/^#/, '').split(/\?(.*)/s);
  const params = new URLSearchParams(query);
  const segment = (text) => { try { return decodeURIComponent(text); } catch { return null; } };
  let match;
  if ((match = /^\/jobs\/([^/]+)\/?$/.exec(path)) && segment(match[1])) return { view: 'job', id: segment(match[1]) };
  if ((match = /^\/jobs\/([^/]+)\/distribution\/?$/.exec(path)) && segment(match[1])) return { view: 'distribution', id: segment(match[1]) };
  if ((match = /^\/monitors\/([^/]+)\/?$/.exec(path)) && segment(match[1])) return { view: 'monitor', id: segment(match[1]) };
  if (path === '/history') return { view: 'history', params };
  if (path === '/compare') return { view: 'compare', params };
  return { view: 'home' };
}

const VIEWS = {
  home: { node: 'view-home', leave: () => { clearJobsList(); clearMonitorsList(); }, heading: 'new-job-heading' },
  job: { node: 'view-job', leave: () => leaveJobPage(), heading: 'job-title' },
  distribution: { node: 'view-distribution', leave: () => leaveDistributionPage(), heading: 'distribution-title' },
  monitor: { node: 'view-monitor', leave: () => leaveMonitorPage(), heading: 'monitor-title' },
  history: { node: 'view-history', leave: () => leaveHistoryPage(), heading: 'history-title' },
  compare: { node: 'view-compare', leave: () => leaveComparePage(), heading: 'compare-title' },
};

/** Leaves every view but `keep`: their requests are dropped and their jobs unwatched. */
function leaveViews(keep = null) {
  for (const [name, view] of Object.entries(VIEWS)) {
    if (name === keep) continue;
    view.leave();
    $(view.node).hidden = true;
  }
}

function route({ focus = false } = {}) {
  if (!keyStore.get()) { showKeyPanel(); return; }
  const target = parseRoute();
  // A message belongs to the view it was shown in (one for the next view goes through
  // noticeOnNextView, messages.js).
  clearError();
  clearNotice();
  showPendingNotice();
  const view = VIEWS[target.view];
  // The job view opens first, so a job the list was following stays followed (and current).
  if (target.view === 'job') openJobPage(target.id);
  leaveViews(target.view);
  $(view.node).hidden = false;
  switch (target.view) {
    case 'home':
      document.title = 'speedbatch';
      loadJobs({ reset: true }); // new jobs may exist; rows resume following when created
      loadMonitors({ reset: true });
      break;
    case 'distribution': openDistributionPage(target.id); break;
    case 'monitor': openMonitorPage(target.id); break;
    case 'history': openHistoryPage(target.params); break;
    case 'compare': openComparePage(target.params); break;
    default: break;
  }
  if (focus) $(view.heading).focus();
}

// ---------------------------------------------------------------- wiring

function wireEvents() {
  $('key-form').addEventListener('submit', saveKey);
  $('forget-key').addEventListener('click', forgetKey);
  $('error-dismiss').addEventListener('click', clearError);
  $('notice-dismiss').addEventListener('click', clearNotice);

  wireJobsView();
  wireMonitorsView();
  wireHistoryView();
  wireCompareView();
  wireJobView();

  window.addEventListener('hashchange', () => route({ focus: true }));
  // Stop polling in background tabs; catch up at once when the tab is shown.
  document.addEventListener('visibilitychange', () => (document.hidden ? tracker.pause() : tracker.resume()));
}

function start() {
  whenUnauthorized(onUnauthorized);
  whenSameAddress(() => route());
  wireEvents();
  updateEngineState();
  renderDryRun();
  updateSubmitState();
  renderSortHeaders();
  renderCompareBar();
  renderLiveMode();
  checkHealth();
  setInterval(checkHealth, HEALTH_MS);
  if (keyStore.get()) enterApp();
  else showKeyPanel();
}

start();
