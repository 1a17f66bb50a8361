// DOM helpers: elements by id, building elements (text only, never HTML), and the parts
// every view is made of: a view's status line and body, a term and its value, a data table.

// ---------------------------------------------------------------- DOM helpers

export const $ = (id) => document.getElementById(id);

/** Creates an element; attributes are set as attributes, children as nodes or text. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (name === 'class') node.className = value;
    else if (name === 'text') node.textContent = value;
    else if (name.startsWith('on') && typeof value === 'function') node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function fact(term, value) {
  return el('div', {}, el('dt', {}, term), el('dd', {}, value));
}

/** A table of numbers: columns [{ label, num }], rows of cells (nodes or text). */
export function dataTable(caption, columns, rows, { cls = '' } = {}) {
  return el('div', { class: 'table-wrap', role: 'region', 'aria-label': caption, tabindex: 0 },
    el('table', { class: `data-table ${cls}` },
      el('caption', { class: 'sr-only' }, caption),
      el('thead', {}, el('tr', {}, columns.map((c) => el('th', { scope: 'col', class: c.num ? 'num' : null }, c.label)))),
      el('tbody', {}, rows.map((cells) => el('tr', {}, cells.map((cell, i) => (i === 0 && columns[0].rowHeader
        ? el('th', { scope: 'row' }, cell)
        : el('td', { class: columns[i].num ? 'num' : null }, cell))))))));
}

/** A view's status line: what it is doing, or why it shows nothing. */
export function setViewStatus(id, text, { busy = false } = {}) {
  const node = $(id);
  node.textContent = text;
  node.hidden = !text;
  node.dataset.busy = busy ? 'true' : 'false';
}

/** Everything after a view's heading, replaced at once. */
export function setViewBody(id, ...nodes) {
  $(id).replaceChildren(...nodes.flat().filter(Boolean));
}
