// @ts-check
// supsupd live dashboard. Plain browser JavaScript in ES modules, no build step (type-checked by
// src/ops/dashboard/tsconfig.json from `npm run typecheck`): loads a snapshot from the HTTP API
// (status, tasks, timeline), then follows the server-sent events stream. One state object
// (state.js) is made here and passed to every module. Shapes: src/ops/api-types.ts.

import { createQualityChart, createThroughputChart, refreshCharts, resizeCharts } from './charts.js';
import { byId, formatPosition, messageOf, query, setText } from './format.js';
import { markNewTask, renderStatus, renderTasks, renderUnreachable, setConnection } from './panels.js';
import { appendPoints, appendThroughput, throughputFromPoints } from './series.js';
import {
  createState,
  MAX_RECONNECT_DELAY_MS,
  MAX_TIMELINE_POINTS,
  STATUS_REFRESH_MS,
  TASKS_REFRESH_MS,
} from './state.js';
import { scheduleTimelineDraw, setTimelineAxis, showTimelineReadout } from './timeline.js';

/** @typedef {import('./state.js').DashboardState} DashboardState */
/** @typedef {import('../api-types.js').ApiStatus} ApiStatus */
/** @typedef {import('../api-types.js').ApiTasks} ApiTasks */
/** @typedef {import('../api-types.js').ApiTimeline} ApiTimeline */
/** @typedef {import('../api-types.js').ApiDecisionsSummary} ApiDecisionsSummary */
/** @typedef {import('../api-types.js').ApiPosition} ApiPosition */
/** The daemon's events on the stream (src/records.ts, DaemonEvent). */
/** @typedef {{ type: 'task_discovered', task: number, at: ApiPosition, time: string }} TaskDiscovered */
/** @typedef {{ type: 'budget_reached', masks: number, at: ApiPosition, time: string }} BudgetReached */

/**
 * The JSON of an API route.
 * @param {string} path
 * @returns {Promise<unknown>}
 */
async function getJson(path) {
  const response = await fetch(path, { headers: { accept: 'application/json' }, cache: 'no-store' });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

// The server's shapes are src/ops/api-types.ts; the page trusts its own server.
/** @returns {Promise<ApiStatus>} */
const getStatus = async () => /** @type {ApiStatus} */ (await getJson('api/v1/status'));
/** @returns {Promise<ApiTasks>} */
const getTasks = async () => /** @type {ApiTasks} */ (await getJson('api/v1/tasks'));
/** @returns {Promise<ApiTimeline>} */
const getTimeline = async () => /** @type {ApiTimeline} */ (await getJson('api/v1/timeline'));

// ---------------------------------------------------------------- data loading and live events

/** @param {DashboardState} state */
async function loadSnapshot(state) {
  const [status, tasks, timeline] = await Promise.all([getStatus(), getTasks(), getTimeline()]);
  renderStatus(state, status);
  state.points = timeline.points.slice(-MAX_TIMELINE_POINTS);
  state.throughput = throughputFromPoints(state.points);
  renderTasks(state, tasks.tasks);
  state.snapshotLoaded = true;
  refreshCharts(state);
  scheduleTimelineDraw(state);
}

/** @param {DashboardState} state */
async function refreshTasks(state) {
  try {
    renderTasks(state, (await getTasks()).tasks);
  } catch (error) {
    console.warn('tasks refresh failed:', messageOf(error));
  }
}

/** @param {DashboardState} state */
async function refreshStatus(state) {
  try {
    renderStatus(state, await getStatus());
  } catch (error) {
    renderUnreachable(messageOf(error));
  }
}

/** @param {DashboardState} state @param {ApiDecisionsSummary} summary */
function onDecisions(state, summary) {
  appendPoints(state, summary.points);
  appendThroughput(state, summary.t, summary.perSecond);
  if (summary.newTasks > 0) void refreshTasks(state);
  refreshCharts(state);
  scheduleTimelineDraw(state);
}

/** @param {DashboardState} state @param {TaskDiscovered} event */
function onTaskDiscovered(state, event) {
  markNewTask(state, event.task);
  void refreshTasks(state);
}

/** @param {BudgetReached} event */
function onBudgetReached(event) {
  const notice = byId('notice');
  notice.hidden = false;
  notice.textContent = `Mask budget reached (${event.masks} masks) at ${formatPosition(event.at)}: no new task can be allocated.`;
}

/**
 * Calls `handler` with each `type` event's JSON (of the shape api-types.ts gives for `type`).
 * @template T
 * @param {EventSource} source
 * @param {string} type
 * @param {(data: T) => void} handler
 */
function listen(source, type, handler) {
  source.addEventListener(type, (message) => {
    try {
      handler(JSON.parse(message.data));
    } catch (error) {
      console.warn(`bad ${type} event:`, messageOf(error));
    }
  });
}

/**
 * Follows /api/v1/events; EventSource retries by itself, and a stream that was closed is reopened here.
 * @param {DashboardState} state
 */
function connectEvents(state) {
  const source = new EventSource('api/v1/events');
  state.events = source;
  let wasDisconnected = false;
  source.addEventListener('open', () => {
    state.reconnectDelayMs = 1000;
    setConnection(state, 'live', 'live');
    if (wasDisconnected) void loadSnapshot(state).catch(() => {});
  });
  source.addEventListener('error', () => {
    wasDisconnected = true;
    if (source.readyState === EventSource.CLOSED) {
      setConnection(
        state,
        'down',
        `disconnected, retrying in ${Math.round(state.reconnectDelayMs / 1000)} s`,
      );
      setTimeout(() => reconnectEvents(state), state.reconnectDelayMs);
      state.reconnectDelayMs = Math.min(MAX_RECONNECT_DELAY_MS, state.reconnectDelayMs * 2);
    } else {
      setConnection(state, 'reconnecting', 'reconnecting…');
    }
  });
  listen(
    source,
    'decisions',
    /** @param {ApiDecisionsSummary} summary */ (summary) => onDecisions(state, summary),
  );
  listen(
    source,
    'task_discovered',
    /** @param {TaskDiscovered} event */ (event) => onTaskDiscovered(state, event),
  );
  listen(source, 'mask_frozen', () => void refreshTasks(state));
  listen(source, 'budget_reached', onBudgetReached);
}

/** @param {DashboardState} state */
function reconnectEvents(state) {
  state.events?.close();
  connectEvents(state);
  void loadSnapshot(state).catch(() => {});
}

/** @param {DashboardState} state */
function startPolling(state) {
  setInterval(() => refreshStatus(state), STATUS_REFRESH_MS);
  setInterval(() => refreshTasks(state), TASKS_REFRESH_MS);
}

async function start() {
  const state = createState();
  for (const button of document.querySelectorAll('.axis-toggle button')) {
    if (!(button instanceof HTMLElement)) continue;
    button.addEventListener('click', () =>
      setTimelineAxis(state, button.dataset.axis === 'offset' ? 'offset' : 'time'),
    );
  }
  byId('timeline').addEventListener('mousemove', (event) => showTimelineReadout(state, event));
  state.charts.quality = createQualityChart(state);
  state.charts.throughput = createThroughputChart(state);
  new ResizeObserver(() => resizeCharts(state)).observe(query('main'));
  try {
    await loadSnapshot(state);
  } catch (error) {
    setText('ready-badge', 'unreachable');
    setText('not-ready-reasons', messageOf(error));
  }
  connectEvents(state);
  startPolling(state);
}

void start();
