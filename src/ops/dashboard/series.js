// @ts-check
// The timeline's points and the throughput series: appended from the events stream, capped.

import { MAX_THROUGHPUT_POINTS, MAX_TIMELINE_POINTS } from './state.js';

/** @typedef {import('./state.js').DashboardState} DashboardState */
/** @typedef {import('./state.js').ThroughputSeries} ThroughputSeries */
/** @typedef {import('../api-types.js').ApiTimelinePoint} ApiTimelinePoint */

/** @param {DashboardState} state @param {readonly ApiTimelinePoint[]} points */
export function appendPoints(state, points) {
  for (const point of points) {
    if (!isDuplicatePoint(state, point)) state.points.push(point);
  }
  const excess = state.points.length - MAX_TIMELINE_POINTS;
  if (excess > 0) state.points.splice(0, excess);
}

/**
 * After a reconnect the stream may repeat decisions the snapshot already had.
 * @param {DashboardState} state
 * @param {ApiTimelinePoint} point
 */
function isDuplicatePoint(state, point) {
  for (let i = state.points.length - 1; i >= 0 && state.points[i].t >= point.t; i--) {
    const other = state.points[i];
    if (other.partition === point.partition && other.firstOffset === point.firstOffset) return true;
  }
  return false;
}

/**
 * Records per second in each whole second covered by the timeline (history for the throughput chart).
 * @param {readonly ApiTimelinePoint[]} points
 * @returns {ThroughputSeries}
 */
export function throughputFromPoints(points) {
  /** @type {ThroughputSeries} */
  const series = { t: [], perSecond: [] };
  /** @type {Map<number, number>} */
  const perSecond = new Map();
  for (const point of points) {
    const second = Math.floor(point.t / 1000);
    perSecond.set(second, (perSecond.get(second) ?? 0) + point.records);
  }
  const seconds = [...perSecond.keys()].sort((a, b) => a - b);
  if (seconds.length === 0) return series;
  const first = Math.max(seconds[0], seconds[seconds.length - 1] - MAX_THROUGHPUT_POINTS);
  for (let second = first; second <= seconds[seconds.length - 1]; second++) {
    series.t.push(second);
    series.perSecond.push(perSecond.get(second) ?? 0);
  }
  return series;
}

/**
 * Appends one throughput sample; a silence of more than 2 s is drawn as zero, not as a sloped line.
 * @param {DashboardState} state
 * @param {number} tMs
 * @param {number} perSecond
 */
export function appendThroughput(state, tMs, perSecond) {
  const series = state.throughput;
  const t = tMs / 1000;
  const lastT = series.t[series.t.length - 1];
  if (lastT !== undefined && t <= lastT) return;
  if (lastT !== undefined && t - lastT > 2) {
    series.t.push(lastT + 1, t - 1);
    series.perSecond.push(0, 0);
  }
  series.t.push(t);
  series.perSecond.push(perSecond);
  const excess = series.t.length - MAX_THROUGHPUT_POINTS;
  if (excess > 0) {
    series.t.splice(0, excess);
    series.perSecond.splice(0, excess);
  }
}
