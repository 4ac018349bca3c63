// @ts-check
// The dashboard's one state object, and the limits it keeps. Every module receives the state as a
// parameter; nothing else is shared. Shapes of the API's JSON: src/ops/api-types.ts.

/** @typedef {import('../api-types.js').ApiStatus} ApiStatus */
/** @typedef {import('../api-types.js').ApiTask} ApiTask */
/** @typedef {import('../api-types.js').ApiTimelinePoint} ApiTimelinePoint */

/** @typedef {'time' | 'offset'} TimelineAxis */
/** The events stream's connection. @typedef {'connecting' | 'live' | 'reconnecting' | 'down'} ConnectionState */
/** @typedef {{ t: number[], perSecond: number[] }} ThroughputSeries */

/**
 * A drawn micro-batch: where it starts and ends on the x axis (ms or offset).
 * @typedef {{ point: ApiTimelinePoint, start: number, end: number }} Span
 */

/**
 * Where the timeline's plot area and lanes are, in CSS pixels.
 * @typedef {object} TimelineLayout
 * @property {{ left: number, right: number, top: number, bottom: number }} plot
 * @property {number} laneHeight
 * @property {(task: number) => number} laneTop
 */

/**
 * What the last drawing of the timeline showed, for the readout under the pointer.
 * @typedef {{ spans: Span[], scaleX: (value: number) => number, layout: TimelineLayout }} TimelineView
 */

/**
 * @typedef {object} DashboardState
 * @property {ApiStatus | null} status
 * @property {Map<number, ApiTask>} tasks task id → its row of /api/v1/tasks
 * @property {ApiTimelinePoint[]} points oldest first
 * @property {ThroughputSeries} throughput seconds since the epoch and records/s, for the throughput chart
 * @property {Map<number, number>} newTasks task id → time (ms) until which its row and lane are highlighted as new
 * @property {boolean} snapshotLoaded
 * @property {TimelineAxis} timelineAxis
 * @property {{ quality: uPlot | null, throughput: uPlot | null }} charts
 * @property {EventSource | null} events
 * @property {{ state: ConnectionState, label: string }} connection what the live indicator says of the events stream
 * @property {number} reconnectDelayMs
 * @property {boolean} drawScheduled
 * @property {TimelineView | null} timelineView
 */

// Memory is bounded: every series is capped, the oldest points are dropped first.
export const MAX_TIMELINE_POINTS = 6000;
export const MAX_THROUGHPUT_POINTS = 900;
export const STATUS_REFRESH_MS = 2000;
export const TASKS_REFRESH_MS = 4000;
export const NEW_TASK_HIGHLIGHT_MS = 15_000;
export const MAX_RECONNECT_DELAY_MS = 15_000;
/** A gap between two micro-batches longer than this is drawn as a gap, not as one long segment. */
export const MAX_SEGMENT_MS = 5000;

/** @returns {DashboardState} */
export function createState() {
  return {
    status: null,
    tasks: new Map(),
    points: [],
    throughput: { t: [], perSecond: [] },
    newTasks: new Map(),
    snapshotLoaded: false,
    timelineAxis: 'time',
    charts: { quality: null, throughput: null },
    events: null,
    connection: { state: 'connecting', label: 'connecting' },
    reconnectDelayMs: 1000,
    drawScheduled: false,
    timelineView: null,
  };
}
