// @ts-check
// The page's header (health, counters; the stream's side in stream-status.js) and the task table.

import {
  byId,
  formatAgo,
  formatClock,
  formatDuration,
  formatPosition,
  numberFormat,
  query,
  setText,
  swatch,
} from './format.js';
import { NEW_TASK_HIGHLIGHT_MS } from './state.js';
import {
  renderDeadLetterReasons,
  renderLive,
  renderPartitions,
  renderSourceState,
  renderStoreWrites,
} from './stream-status.js';
import { scheduleTimelineDraw } from './timeline.js';

/** @typedef {import('./state.js').DashboardState} DashboardState */
/** @typedef {import('../api-types.js').ApiStatus} ApiStatus */
/** @typedef {import('../api-types.js').ApiTask} ApiTask */

// ---------------------------------------------------------------- header: health and counters

/** @param {DashboardState} state @param {ApiStatus} status */
export function renderStatus(state, status) {
  state.status = status;
  const health = query('[data-testid=status]');
  const readiness = status.draining ? 'draining' : status.ready ? 'ready' : 'not ready';
  health.dataset.ready = String(status.ready);
  health.dataset.state = readiness.replace(' ', '-');
  setText('ready-badge', readiness);
  setText('not-ready-reasons', status.ready ? '' : status.notReady.join('; '));
  setText('version', `v${status.version} · ${status.source} · ${status.store} store`);
  setText('stat-backend', `${status.backend} · ${status.arch.key}`);
  setText('stat-uptime', formatDuration(status.uptimeSeconds));
  setText('stat-in', numberFormat.format(status.records.in));
  setText('stat-out', numberFormat.format(status.records.out));
  setText('stat-dead', numberFormat.format(status.records.deadLettered));
  byId('stat-dead').classList.toggle('warn', status.records.deadLettered > 0);
  setText('stat-rate', numberFormat.format(Math.round(status.records.perSecond)));
  setText('stat-tasks', `${status.tasks} (${status.frozenTasks}) / ${status.budget}`);
  renderSourceState(status);
  renderLive(state);
  renderPartitions(status);
  renderDeadLetterReasons(status);
  renderStoreWrites(status.storeWrites);
  const warnings = byId('warnings');
  warnings.hidden = status.warnings.length === 0;
  warnings.textContent = status.warnings.map((w) => w.message).join(' · ');
}

/** The status shown while the API does not answer. @param {string} reason */
export function renderUnreachable(reason) {
  const health = query('[data-testid=status]');
  health.dataset.ready = 'unknown';
  health.dataset.state = 'unreachable';
  setText('ready-badge', 'unreachable');
  setText('not-ready-reasons', reason);
}

/**
 * The events stream's connection as the live indicator shows it (see renderLive).
 * @param {DashboardState} state
 * @param {import('./state.js').ConnectionState} connection
 * @param {string} label
 */
export function setConnection(state, connection, label) {
  state.connection = { state: connection, label };
  renderLive(state);
}

// ---------------------------------------------------------------- task table

/** @param {DashboardState} state @param {readonly ApiTask[]} tasks */
export function renderTasks(state, tasks) {
  const previous = new Set(state.tasks.keys());
  state.tasks = new Map(tasks.map((task) => [task.task, task]));
  if (state.snapshotLoaded) {
    for (const task of tasks) if (!previous.has(task.task)) markNewTask(state, task.task);
  }
  renderTaskTable(state);
  scheduleTimelineDraw(state);
}

/** @param {DashboardState} state @param {number} task */
export function markNewTask(state, task) {
  state.newTasks.set(task, Date.now() + NEW_TASK_HIGHLIGHT_MS);
  setTimeout(() => {
    if ((state.newTasks.get(task) ?? 0) <= Date.now()) state.newTasks.delete(task);
    renderTaskTable(state);
    scheduleTimelineDraw(state);
  }, NEW_TASK_HIGHLIGHT_MS + 50);
}

/** @param {DashboardState} state */
function renderTaskTable(state) {
  const body = query('#task-table tbody');
  const tasks = [...state.tasks.values()].sort((a, b) => a.task - b.task);
  const rows = tasks.map((task) => {
    const found = body.querySelector(`tr[data-task="${task.task}"]`);
    const row = found instanceof HTMLTableRowElement ? found : createTaskRow(task.task);
    fillTaskRow(state, row, task);
    return row;
  });
  body.replaceChildren(...rows);
  byId('tasks-empty').hidden = tasks.length > 0;
  const frozen = tasks.filter((task) => task.frozen).length;
  setText('tasks-summary', tasks.length === 0 ? '' : `${tasks.length} tasks, ${frozen} frozen`);
}

const TASK_COLUMNS = [
  'task',
  'bornAt',
  'bornTime',
  'recordsRouted',
  'meanConfidence',
  'prequentialAccuracy',
  'lastSeen',
  'state',
  'trainSteps',
  'maskKB',
  'density',
];
const NUMERIC_COLUMNS = new Set([
  'recordsRouted',
  'meanConfidence',
  'prequentialAccuracy',
  'trainSteps',
  'maskKB',
  'density',
]);

/** @param {number} task @returns {HTMLTableRowElement} */
function createTaskRow(task) {
  const row = document.createElement('tr');
  row.dataset.task = String(task);
  for (const name of TASK_COLUMNS) {
    const cell = document.createElement(name === 'task' ? 'th' : 'td');
    if (name === 'task') cell.scope = 'row';
    cell.dataset.col = name;
    if (NUMERIC_COLUMNS.has(name)) cell.className = 'num';
    row.append(cell);
  }
  return row;
}

/** @param {DashboardState} state @param {HTMLTableRowElement} row @param {ApiTask} task */
function fillTaskRow(state, row, task) {
  const isNew = state.newTasks.has(task.task);
  row.classList.toggle('is-new', isNew);
  row.dataset.frozen = String(task.frozen);
  /** @param {string} name */
  const cell = (name) => query(`[data-col="${name}"]`, row);
  const taskCell = cell('task');
  const label = document.createElement('span');
  label.textContent = `task ${task.task}`;
  const parts = [swatch(task.task), label];
  if (isNew) {
    const badge = document.createElement('span');
    badge.className = 'new-badge';
    badge.textContent = 'new';
    parts.push(badge);
  }
  taskCell.replaceChildren(...parts);
  cell('bornAt').textContent = formatPosition(task.bornAt);
  cell('bornTime').textContent = formatClock(Date.parse(task.bornTime));
  cell('bornTime').title = task.bornTime;
  cell('recordsRouted').textContent = numberFormat.format(task.recordsRouted);
  cell('meanConfidence').textContent = task.meanConfidence === null ? '–' : task.meanConfidence.toFixed(3);
  cell('prequentialAccuracy').textContent =
    task.prequentialAccuracy === null ? '–' : task.prequentialAccuracy.toFixed(3);
  cell('lastSeen').textContent = task.lastSeen === null ? '–' : formatAgo(task.lastSeen.time);
  cell('lastSeen').title = task.lastSeen === null ? '' : formatPosition(task.lastSeen.at);
  // The mask's state in words: frozen (finished training, no longer changes) or training.
  const maskState = task.frozen ? 'frozen' : 'training';
  cell('state').textContent = maskState;
  cell('state').className = maskState;
  cell('trainSteps').textContent = numberFormat.format(task.trainSteps);
  cell('maskKB').textContent = (task.maskBytes / 1024).toFixed(1);
  cell('density').textContent = `${(task.density * 100).toFixed(1)} %`;
}
