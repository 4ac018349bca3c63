// @ts-check
// Formatting, colours and small DOM helpers shared by the dashboard's modules.

/** @typedef {import('../api-types.js').ApiPosition} ApiPosition */

/** Tableau 10: distinguishable on light and dark backgrounds. A task's colour is PALETTE[task % 10]. */
const PALETTE = [
  '#4e79a7',
  '#f28e2b',
  '#e15759',
  '#76b7b2',
  '#59a14f',
  '#edc948',
  '#b07aa1',
  '#ff9da7',
  '#9c755f',
  '#bab0ac',
];

export const numberFormat = new Intl.NumberFormat('en');

/** @param {number} task @returns {string} */
export const taskColor = (task) => PALETTE[((task % PALETTE.length) + PALETTE.length) % PALETTE.length];

/**
 * The element with this id; the page always has it, so a missing one is a bug in the page.
 * @param {string} id
 * @returns {HTMLElement}
 */
export function byId(id) {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`the page has no #${id}`);
  return element;
}

/**
 * The first element under `root` that matches `selector`; missing is a bug in the page.
 * @param {string} selector
 * @param {ParentNode} [root]
 * @returns {HTMLElement}
 */
export function query(selector, root = document) {
  const element = root.querySelector(selector);
  if (!(element instanceof HTMLElement)) throw new Error(`the page has no ${selector}`);
  return element;
}

/** @param {string} id @param {string} text */
export function setText(id, text) {
  const element = byId(id);
  if (element.textContent !== text) element.textContent = text;
}

/** @param {number} task @returns {HTMLSpanElement} */
export function swatch(task) {
  const element = document.createElement('span');
  element.className = 'swatch';
  element.style.backgroundColor = taskColor(task);
  element.setAttribute('aria-hidden', 'true');
  return element;
}

/** @param {number} seconds @returns {string} */
export function formatDuration(seconds) {
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  /** @param {number} n */
  const pad = (n) => String(n).padStart(2, '0');
  if (d > 0) return `${d}d ${pad(h)}h ${pad(m)}m`;
  if (h > 0) return `${h}h ${pad(m)}m ${pad(s % 60)}s`;
  return `${m}m ${pad(s % 60)}s`;
}

/** @param {number} ms @returns {string} */
export function formatClock(ms) {
  return new Date(ms).toLocaleTimeString('en-GB', { hour12: false });
}

/** @param {string} isoTime @returns {string} */
export function formatAgo(isoTime) {
  const seconds = Math.max(0, (Date.now() - Date.parse(isoTime)) / 1000);
  if (seconds < 60) return `${Math.round(seconds)} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  return `${(seconds / 3600).toFixed(1)} h ago`;
}

/** @param {ApiPosition} position @returns {string} */
export function formatPosition(position) {
  return `${position.topic}/${position.partition} @ ${position.offset}`;
}

/** @param {number | null | undefined} value @returns {string} */
export function formatMaybe(value) {
  return value === null || value === undefined ? '–' : value.toFixed(3);
}

/** The message of any thrown value. @param {unknown} error @returns {string} */
export function messageOf(error) {
  return error instanceof Error ? error.message : String(error);
}
