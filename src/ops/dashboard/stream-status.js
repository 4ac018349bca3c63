// @ts-check
// The stream's side of the header: whether the source runs or has ended (the live indicator and the
// banner with when and the totals), each partition's current task and consumer lag, dead letters by
// reason, and the latency of the state commits to the store.

import { byId, formatAgo, formatClock, formatDuration, numberFormat, setText, swatch } from './format.js';

/** @typedef {import('./state.js').DashboardState} DashboardState */
/** @typedef {import('../api-types.js').ApiStatus} ApiStatus */
/** @typedef {import('../api-types.js').ApiSourceState} ApiSourceState */
/** @typedef {import('../api-types.js').ApiStoreWrites} ApiStoreWrites */

/** What the live indicator says, while the events stream is connected, for a source that is not running. */
const SOURCE_LABELS = /** @type {const} */ ({
  not_started: 'waiting for the source',
  finished: 'stream finished',
  stopped: 'source stopped',
  failed: 'source failed',
});

/**
 * The live indicator: the events stream's connection, and once it is connected, whether the source
 * still runs (`live`) or has ended.
 * @param {DashboardState} state
 */
export function renderLive(state) {
  const live = byId('live');
  const source = state.status?.sourceState.state ?? 'running';
  if (state.connection.state === 'live' && source !== 'running') {
    live.dataset.state = source;
    setText('live-label', SOURCE_LABELS[source]);
    return;
  }
  live.dataset.state = state.connection.state;
  setText('live-label', state.connection.label);
}

/** @param {ApiStatus} status */
export function renderSourceState(status) {
  const { state, startedAt, endedAt } = status.sourceState;
  const stat = byId('stat-source');
  stat.dataset.state = state;
  setText('stat-source', state.replace('_', ' '));
  stat.title =
    startedAt === null ? '' : `started ${startedAt}${endedAt === null ? '' : `, ended ${endedAt}`}`;
  const banner = byId('stream-end');
  banner.hidden = endedAt === null || state === 'running';
  banner.dataset.state = state;
  banner.textContent = endedAt === null ? '' : streamEndText(status, endedAt);
}

/** @param {ApiStatus} status @param {string} endedAt @returns {string} */
function streamEndText(status, endedAt) {
  const { state, startedAt } = status.sourceState;
  const ended = Date.parse(endedAt);
  const what =
    state === 'finished' ? 'Stream finished' : state === 'failed' ? 'Source failed' : 'Source stopped';
  const ran = startedAt === null ? '' : ` after ${formatDuration((ended - Date.parse(startedAt)) / 1000)}`;
  const { records } = status;
  const totals = `${numberFormat.format(records.in)} records in, ${numberFormat.format(records.out)} out, ${numberFormat.format(records.deadLettered)} dead-lettered; ${status.tasks} tasks (${status.frozenTasks} frozen)`;
  const next = state === 'finished' ? 'Nothing more will come: these are the totals.' : '';
  const log = state === 'failed' ? "The daemon's log says why." : '';
  return `${what} at ${formatClock(ended)} (${formatAgo(endedAt)})${ran}: ${totals}. ${next}${log}`.trim();
}

/**
 * For every partition the daemon consumes or has consumed: the task its stream is on now and its lag.
 * @param {ApiStatus} status
 */
export function renderPartitions(status) {
  const partitions = [...new Set([...Object.keys(status.currentTasks), ...Object.keys(status.consumerLag)])];
  const items = partitions.sort().map((partition) => {
    const task = status.currentTasks[partition] ?? null;
    const lag = status.consumerLag[partition] ?? null;
    const item = document.createElement('li');
    item.dataset.partition = partition;
    item.dataset.task = task === null ? '' : String(task);
    item.dataset.lag = lag === null ? '' : String(lag);
    const label = document.createElement('span');
    label.textContent = task === null ? `${partition}: no task yet` : `${partition} → task ${task}`;
    const lagText = document.createElement('span');
    lagText.className = 'lag';
    lagText.textContent = lag === null ? 'lag –' : `lag ${numberFormat.format(lag)}`;
    lagText.title =
      lag === null
        ? 'the source does not know where this partition ends (file, stdin, demo)'
        : "records behind the partition's end as of its last batch";
    if (task !== null) item.append(swatch(task));
    item.append(label, lagText);
    return item;
  });
  if (items.length === 0) items.push(mutedItem('no partition assigned'));
  byId('current-tasks').replaceChildren(...items);
}

/** The reason codes that dead-lettered records, with their counts; `none` when there are none. @param {ApiStatus} status */
export function renderDeadLetterReasons(status) {
  const reasons = Object.entries(status.records.deadLetteredByReason).filter(([, count]) => count > 0);
  const items = reasons.map(([reason, count]) => {
    const item = document.createElement('li');
    item.dataset.reason = reason;
    item.dataset.count = String(count);
    const code = document.createElement('code');
    code.textContent = reason;
    const number = document.createElement('span');
    number.textContent = numberFormat.format(count);
    item.append(code, number);
    return item;
  });
  if (items.length === 0) items.push(mutedItem('none'));
  byId('dead-letter-reasons').replaceChildren(...items);
}

/** State commits to the store: latency of the recent ones, and counts by outcome. @param {ApiStoreWrites} writes */
export function renderStoreWrites(writes) {
  const recent = writes.recent;
  setText(
    'stat-store-latency',
    recent === null ? '–' : `${formatSeconds(recent.p50Seconds)} / ${formatSeconds(recent.p95Seconds)}`,
  );
  byId('stat-store-latency').title =
    recent === null
      ? 'no state commit yet'
      : `p50 / p95 of the last ${recent.commits} state commits; slowest ${formatSeconds(recent.maxSeconds)}`;
  setText('stat-commits', `${numberFormat.format(writes.applied)} (${writes.fenced}, ${writes.failed})`);
  byId('stat-commits').classList.toggle('warn', writes.failed > 0);
}

/** A latency in ms below a second, else in s. @param {number} seconds @returns {string} */
export function formatSeconds(seconds) {
  return seconds < 1 ? `${(seconds * 1000).toFixed(1)} ms` : `${seconds.toFixed(2)} s`;
}

/** @param {string} text @returns {HTMLLIElement} */
function mutedItem(text) {
  const item = document.createElement('li');
  item.className = 'muted';
  item.textContent = text;
  return item;
}
