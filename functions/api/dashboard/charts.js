// Inline-SVG charts: no library, drawn at the pixel width they are shown at (so text keeps its
// size on a phone instead of shrinking with a viewBox). Geometry goes in presentation
// attributes and colours come from classes in styles.css (the page's policy blocks style
// attributes, and classes follow the light and dark schemes). Every chart is role="img" with a
// title and a description; the page puts the numbers beside it as a table.

const SVG_NS = 'http://www.w3.org/2000/svg';
const FONT_PX = 12;
/** Roughly how wide a character of the axis labels is, to size the margins. */
const CHAR_PX = 7;

let chartCount = 0;

/** An SVG element with attributes (numbers are rounded to tenths of a pixel). */
export function svgEl(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    node.setAttribute(name, typeof value === 'number' ? String(Math.round(value * 10) / 10) : String(value));
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** The chart's root: an accessible image with a title and a description. */
function frame(width, height, title, description, cls) {
  chartCount += 1;
  const titleId = `chart-title-${chartCount}`;
  const descId = `chart-desc-${chartCount}`;
  return svgEl('svg', {
    width, height, viewBox: `0 0 ${width} ${height}`, class: `chart ${cls}`,
    role: 'img', 'aria-labelledby': titleId, 'aria-describedby': descId, 'font-size': FONT_PX,
  }, svgEl('title', { id: titleId }, title), svgEl('desc', { id: descId }, description));
}

/**
 * About `count` round tick values covering [min, max] (1, 2 or 5 times a power of ten apart).
 * Returns { ticks, min, max } with the domain widened to the outer ticks.
 */
export function niceTicks(min, max, count = 5) {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return { ticks: [0, 1], min: 0, max: 1 };
  if (min === max) {
    // One value: a little room either side (a floor such as yMin is applied by the caller).
    const pad = min === 0 ? 1 : Math.abs(min) * 0.1;
    min -= pad;
    max += pad;
  }
  const raw = (max - min) / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) || raw;
  const first = Math.floor(min / step) * step;
  const last = Math.ceil(max / step) * step;
  const ticks = [];
  for (let value = first; value <= last + step / 2; value += step) ticks.push(Math.round(value / step) * step);
  return { ticks, min: first, max: last };
}

/** Evenly spread times over [min, max] for the x axis, at most `count`. */
function timeTicks(min, max, count) {
  if (max <= min) return [min];
  const ticks = [];
  for (let i = 0; i < count; i += 1) ticks.push(min + ((max - min) * i) / (count - 1));
  return ticks;
}

/**
 * A line chart over time.
 * series: [{ label, cls, points: [{ x: epoch ms, y, title }] }] (cls: a series-N class).
 * yFormat(y): tick and label text. yMin: a floor for the axis (0 for measurements).
 * refs: [{ y, label, cls }] dashed horizontal lines (budgets); each is kept in view unless it is
 * far outside the data, in which case its label says so instead of squashing the data.
 */
export function lineChart({ width, height = 220, title, description, series, yFormat, xFormat, yMin = null, yMax = null, refs = [] }) {
  const svg = frame(width, height, title, description, 'line-chart');
  const all = series.flatMap((s) => s.points);
  const xs = all.map((p) => p.x);
  const ys = all.map((p) => p.y);
  let dataMin = Math.min(...ys);
  let dataMax = Math.max(...ys);
  if (yMin !== null) dataMin = Math.min(dataMin, yMin);
  if (yMax !== null) dataMax = Math.max(dataMax, yMax);
  // A reference line within three axis-heights of the values is drawn (the axis grows to it);
  // one further out would squash the values to a flat line, so it is reported instead.
  const span = Math.max(dataMax - dataMin, Math.abs(dataMax) * 0.1, 1e-9);
  const shown = refs.map((ref) => ({ ...ref, inView: ref.y >= dataMin - 3 * span && ref.y <= dataMax + 3 * span }));
  for (const ref of shown.filter((r) => r.inView)) {
    dataMin = Math.min(dataMin, ref.y);
    dataMax = Math.max(dataMax, ref.y);
  }
  const y = niceTicks(dataMin, dataMax, height < 200 ? 4 : 5);
  if (yMin !== null && y.min < yMin) { y.min = yMin; y.ticks = y.ticks.filter((t) => t >= yMin); }
  if (yMax !== null && y.max > yMax) { y.max = yMax; y.ticks = y.ticks.filter((t) => t <= yMax); }
  const labelChars = Math.max(...y.ticks.map((t) => yFormat(t).length));
  const m = { top: 14, right: 16, bottom: 26, left: Math.min(90, 10 + labelChars * CHAR_PX) };
  const plotW = Math.max(10, width - m.left - m.right);
  const plotH = Math.max(10, height - m.top - m.bottom);
  let xMin = Math.min(...xs);
  let xMax = Math.max(...xs);
  if (xMax === xMin) { xMin -= 3600e3; xMax += 3600e3; } // one moment: an hour either side
  const px = (x) => m.left + ((x - xMin) / (xMax - xMin)) * plotW;
  const py = (v) => m.top + plotH - ((v - y.min) / (y.max - y.min || 1)) * plotH;

  const grid = svgEl('g', { class: 'chart-grid', 'aria-hidden': 'true' });
  for (const tick of y.ticks) {
    grid.append(svgEl('line', { x1: m.left, x2: m.left + plotW, y1: py(tick), y2: py(tick), class: 'chart-gridline' }));
    grid.append(svgEl('text', { x: m.left - 6, y: py(tick), 'text-anchor': 'end', 'dominant-baseline': 'middle', class: 'chart-text' }, yFormat(tick)));
  }
  const xTicks = timeTicks(xMin, xMax, Math.max(2, Math.min(5, Math.floor(plotW / 110))));
  let previous = '';
  xTicks.forEach((tick, i) => {
    const text = xFormat(tick, xMax - xMin);
    if (text === previous) return; // a label once, however close the ticks
    previous = text;
    const anchor = i === 0 ? 'start' : (i === xTicks.length - 1 ? 'end' : 'middle');
    grid.append(svgEl('text', { x: px(tick), y: height - 8, 'text-anchor': anchor, class: 'chart-text' }, text));
  });
  grid.append(svgEl('line', { x1: m.left, x2: m.left + plotW, y1: m.top + plotH, y2: m.top + plotH, class: 'chart-axis' }));
  svg.append(grid);

  const refGroup = svgEl('g', { class: 'chart-refs' });
  for (const ref of shown) {
    if (!ref.inView) continue;
    const at = py(ref.y);
    refGroup.append(svgEl('line', {
      x1: m.left, x2: m.left + plotW, y1: at, y2: at, class: `budget-line ${ref.cls || ''}`,
      'stroke-dasharray': '6 4', 'data-value': ref.y,
    }));
    refGroup.append(svgEl('text', { x: m.left + plotW - 2, y: at - 4, 'text-anchor': 'end', class: 'chart-text budget-text' }, ref.label));
  }
  svg.append(refGroup);

  for (const s of series) {
    const group = svgEl('g', { class: `chart-series ${s.cls}` });
    const points = [...s.points].sort((a, b) => a.x - b.x);
    if (points.length > 1) {
      group.append(svgEl('polyline', { points: points.map((p) => `${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join(' '), fill: 'none', class: 'chart-line' }));
    }
    for (const p of points) {
      group.append(svgEl('circle', { cx: px(p.x), cy: py(p.y), r: 3.5, class: 'chart-point' }, svgEl('title', {}, p.title)));
    }
    svg.append(group);
  }
  return { svg, offscale: shown.filter((r) => !r.inView) };
}

/**
 * Vertical bars over labelled bins (a histogram).
 * bins: [{ label, count, cls, title }].
 */
export function histogram({ width, height = 220, title, description, bins, xLabel }) {
  const svg = frame(width, height, title, description, 'histogram');
  const max = Math.max(1, ...bins.map((b) => b.count));
  const y = niceTicks(0, max, 4);
  const ticks = y.ticks.filter((t) => Number.isInteger(t));
  const m = { top: 18, right: 8, bottom: xLabel ? 40 : 24, left: 12 + String(y.max).length * CHAR_PX };
  const plotW = Math.max(10, width - m.left - m.right);
  const plotH = Math.max(10, height - m.top - m.bottom);
  const py = (v) => m.top + plotH - (v / (y.max || 1)) * plotH;
  const slot = plotW / bins.length;
  const gap = Math.min(6, slot * 0.15);

  const grid = svgEl('g', { class: 'chart-grid', 'aria-hidden': 'true' });
  for (const tick of ticks) {
    grid.append(svgEl('line', { x1: m.left, x2: m.left + plotW, y1: py(tick), y2: py(tick), class: 'chart-gridline' }));
    grid.append(svgEl('text', { x: m.left - 6, y: py(tick), 'text-anchor': 'end', 'dominant-baseline': 'middle', class: 'chart-text' }, String(tick)));
  }
  svg.append(grid);
  // Narrow screens get every other bin label, so labels never overlap.
  const every = slot < 34 ? 2 : 1;
  bins.forEach((bin, i) => {
    const x = m.left + i * slot + gap / 2;
    const top = py(bin.count);
    const group = svgEl('g', { class: `chart-bar ${bin.cls}`, 'data-bin': bin.label, 'data-count': bin.count });
    group.append(svgEl('rect', { x, y: top, width: Math.max(1, slot - gap), height: m.top + plotH - top, class: 'bar' }, svgEl('title', {}, bin.title)));
    if (bin.count > 0) {
      group.append(svgEl('text', { x: x + (slot - gap) / 2, y: top - 4, 'text-anchor': 'middle', class: 'chart-text bar-count' }, String(bin.count)));
    }
    if (i % every === 0) {
      // Whole ranges ("0–9") where they fit, else where each bin starts.
      const text = slot >= 46 || !bin.short ? bin.label : bin.short;
      group.append(svgEl('text', { x: x + (slot - gap) / 2, y: m.top + plotH + 15, 'text-anchor': 'middle', class: 'chart-text' }, text));
    }
    svg.append(group);
  });
  svg.append(svgEl('line', { x1: m.left, x2: m.left + plotW, y1: m.top + plotH, y2: m.top + plotH, class: 'chart-axis' }));
  if (xLabel) svg.append(svgEl('text', { x: m.left + plotW / 2, y: height - 4, 'text-anchor': 'middle', class: 'chart-text' }, xLabel));
  return svg;
}

/**
 * Horizontal bars, one per labelled count (verdicts).
 * bars: [{ label, value, cls }].
 */
export function barChart({ width, title, description, bars }) {
  const row = 28;
  const labelChars = Math.max(...bars.map((b) => b.label.length));
  const m = { top: 6, right: 48, bottom: 6, left: Math.min(width / 2, 12 + labelChars * CHAR_PX) };
  const height = m.top + m.bottom + bars.length * row;
  const svg = frame(width, height, title, description, 'bar-chart');
  const max = Math.max(1, ...bars.map((b) => b.value));
  const plotW = Math.max(10, width - m.left - m.right);
  bars.forEach((bar, i) => {
    const y = m.top + i * row;
    const w = (bar.value / max) * plotW;
    const group = svgEl('g', { class: `chart-bar ${bar.cls}`, 'data-label': bar.label, 'data-count': bar.value });
    group.append(svgEl('text', { x: m.left - 8, y: y + row / 2, 'text-anchor': 'end', 'dominant-baseline': 'middle', class: 'chart-text chart-label' }, bar.label));
    group.append(svgEl('rect', { x: m.left, y: y + 5, width: Math.max(bar.value > 0 ? 2 : 0, w), height: row - 10, class: 'bar' }));
    group.append(svgEl('text', { x: m.left + w + 6, y: y + row / 2, 'dominant-baseline': 'middle', class: 'chart-text bar-count' }, String(bar.value)));
    svg.append(group);
  });
  return svg;
}

/**
 * A sparkline: one series in a cell-sized box, no axes. values: numbers, with null where
 * there is none (a gap in the line, never a drop to zero). The scale is the values' own range,
 * so a change shows even when it is small; refs: [{ y, cls }] dotted lines (thresholds) drawn
 * only where they fall within that range. The last value is marked: it is the latest.
 */
export function sparkline({ values, width = 96, height = 28, title, description, refs = [] }) {
  const svg = frame(width, height, title, description, 'sparkline');
  const known = values.filter(Number.isFinite);
  if (!known.length) return svg;
  let min = Math.min(...known);
  let max = Math.max(...known);
  const inRange = refs.filter((ref) => ref.y >= min && ref.y <= max);
  if (max === min) { min -= 1; max += 1; }
  const pad = 3;
  const px = (i) => pad + (values.length > 1 ? (i / (values.length - 1)) * (width - 2 * pad) : (width - 2 * pad) / 2);
  const py = (v) => pad + (1 - (v - min) / (max - min)) * (height - 2 * pad);
  for (const ref of inRange) {
    svg.append(svgEl('line', { x1: pad, x2: width - pad, y1: py(ref.y), y2: py(ref.y), class: `spark-ref ${ref.cls || ''}`, 'stroke-dasharray': '2 2' }));
  }
  const runs = [];
  let run = [];
  values.forEach((v, i) => {
    if (Number.isFinite(v)) run.push([px(i), py(v)]);
    else if (run.length) { runs.push(run); run = []; }
  });
  if (run.length) runs.push(run);
  for (const points of runs) {
    // A week alone between gaps has no line to be part of: a dot keeps it visible.
    if (points.length === 1) svg.append(svgEl('circle', { cx: points[0][0], cy: points[0][1], r: 1.5, class: 'spark-dot' }));
    else svg.append(svgEl('polyline', { points: points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' '), fill: 'none', class: 'spark-line' }));
  }
  const last = runs.at(-1).at(-1);
  svg.append(svgEl('circle', { cx: last[0], cy: last[1], r: 2.5, class: 'spark-last' }));
  return svg;
}
