// How jobs' progress reaches the page: one live-progress socket and one tracker (live.js) for
// every view, and the header's note on which way progress arrives.

import { JobTracker, LiveSocket } from './live.js';
import { apiJson, keyStore, WS_URL } from './api.js';
import { $ } from './dom.js';
import { JOB_STATUS_WORDS, jobName } from './format.js';
import { announce } from './messages.js';

// ---------------------------------------------------------------- job updates

const liveMode = { shown: null };

/** The header's note on how progress arrives: over the socket, or by asking every second. */
export function renderLiveMode() {
  const mode = tracker.mode();
  if (mode === liveMode.shown) return;
  liveMode.shown = mode;
  const node = $('live-mode');
  node.dataset.mode = mode;
  const words = {
    live: ['Live updates', 'Progress is pushed to this page as it happens.'],
    connecting: ['Connecting…', 'Opening the live-progress connection; progress is read as usual meanwhile.'],
    polling: ['Updates every second', WS_URL
      ? `Live updates are not available right now (${live.lastProblem || 'not connected'}); the page asks for progress every second and tries to reconnect.`
      : 'This deployment has no live-progress connection; the page asks for progress every second.'],
  }[mode];
  node.textContent = words[0];
  node.title = words[1];
}

const live = new LiveSocket({
  url: WS_URL,
  apiKey: () => keyStore.get(),
  onProgress: (job) => tracker.update(job),
  onChange: () => tracker.refresh(),
});

export const tracker = new JobTracker({
  fetchProgress: (id, etag) => apiJson(`progress/${encodeURIComponent(id)}`, { etag }),
  live,
  canPoll: () => Boolean(keyStore.get()) && !document.hidden,
  onStatus: (job) => announce(`Job “${jobName(job)}” is now ${(JOB_STATUS_WORDS[job.status] || job.status).toLowerCase()}.`),
  onMode: () => renderLiveMode(),
});
