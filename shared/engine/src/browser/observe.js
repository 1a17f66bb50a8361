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
})();
