// Installed before any of the page's own scripts (Page.addScriptToEvaluateOnNewDocument):
// collects what the lab metrics are made of, as the page's own performance timeline reports
// it, into window.__speedbatch, which the engine reads when the page has settled.
(() => {
  if (window.__speedbatch) return;
  const seen = { fcp: null, lcp: null, lcpElement: null, windows: [], longTasks: [] };
  Object.defineProperty(window, '__speedbatch', { value: seen, enumerable: false });

  const describe = (node) => {
    if (!node || !node.tagName) return null;
    const id = node.id ? `#${node.id}` : '';
    const classes = typeof node.className === 'string' && node.className.trim()
      ? `.${node.className.trim().split(/\s+/).slice(0, 3).join('.')}` : '';
    const text = (node.textContent || '').trim().slice(0, 80);
    return { selector: `${node.tagName.toLowerCase()}${id}${classes}`, text, src: node.currentSrc || node.src || null };
  };
  const observe = (type, handle) => {
    try {
      new PerformanceObserver((list) => list.getEntries().forEach(handle)).observe({ type, buffered: true });
    } catch (_) { /* not supported here: the metric stays unmeasured, never zero */ }
  };

  observe('paint', (e) => { if (e.name === 'first-contentful-paint') seen.fcp = e.startTime; });
  observe('largest-contentful-paint', (e) => { seen.lcp = e.startTime; seen.lcpElement = describe(e.element); });
  // Layout shifts in session windows (a gap under 1 s, at most 5 s long): CLS is the largest
  // window's sum, as Chrome and Lighthouse define it; shifts right after input do not count.
  observe('layout-shift', (e) => {
    if (e.hadRecentInput) return;
    const last = seen.windows[seen.windows.length - 1];
    if (last && e.startTime - last.end < 1000 && e.startTime - last.start < 5000) {
      last.value += e.value;
      last.end = e.startTime;
    } else {
      seen.windows.push({ start: e.startTime, end: e.startTime, value: e.value });
    }
  });
  observe('longtask', (e) => { seen.longTasks.push([e.startTime, e.duration]); });

  // The engine's read: answered from a 50 ms timer, so it runs as one of the page's tasks,
  // after whatever task is running and after the long-task entries queued before it (a
  // DevTools evaluation can run in the middle of a task, and would see the thread as idle).
  // `late` is how far past its time the timer fired: the thread was busy meanwhile. The
  // timer and clock are the ones the page started with, so a page's own overrides cannot
  // hold the read up.
  const timer = window.setTimeout.bind(window);
  const clock = performance.now.bind(performance);
  Object.defineProperty(seen, 'read', {
    enumerable: false,
    value: () => new Promise((resolve) => {
      const asked = clock();
      timer(() => {
        const now = clock();
        resolve({
          fcp: seen.fcp,
          lcp: seen.lcp,
          lcpElement: seen.lcpElement,
          windows: seen.windows.map((w) => ({ start: w.start, end: w.end, value: w.value })),
          longTasks: seen.longTasks.slice(),
          now,
          late: Math.max(0, now - asked - 50),
        });
      }, 50);
    }),
  });
})();
