// Charts in the page: a chart with its heading, summary and numbers as a table, drawn again
// when its box changes width (charts.js draws the SVG).

import { el } from './dom.js';

// ---------------------------------------------------------------- charts in the page

/**
 * A chart with its words: a heading and a text summary above it, and its numbers as a table
 * below (in a <details>, which screen readers and keyboards reach like any control). draw(width)
 * returns the <svg>; it is drawn again when the box changes width (a phone turned, a window
 * resized), so its text keeps its size.
 */
export function chartFigure({ heading, summary, draw, table, notes = [], cls = '' }) {
  const box = el('div', { class: 'chart-box' });
  const figure = el('figure', { class: `chart-figure ${cls}` },
    el('figcaption', {}, el('h3', {}, heading), el('p', { class: 'chart-summary' }, summary), ...notes.map((n) => el('p', { class: 'hint' }, n))),
    box,
    el('details', { class: 'chart-table' }, el('summary', {}, 'The numbers as a table'), table));
  return { figure, box, draw };
}

/** Draws figures once they are in the page, and again whenever their box changes width. */
export function drawFigures(view, figures) {
  for (const { box, draw } of figures) {
    let drawnAt = 0;
    const paint = () => {
      const width = Math.max(260, Math.floor(box.clientWidth));
      if (width === drawnAt || !box.isConnected || box.clientWidth === 0) return;
      drawnAt = width;
      box.replaceChildren(draw(width));
    };
    paint();
    const observer = new ResizeObserver(() => requestAnimationFrame(paint));
    observer.observe(box);
    view.observers.push(observer);
  }
}

export function forgetFigures(view) {
  for (const observer of view.observers) observer.disconnect();
  view.observers = [];
}
