// @ts-check
// The task timeline: one lane per task, one bar per micro-batch, a diamond where a task was born.
// Drawn on a canvas, at most once per animation frame.

import { byId, formatClock, numberFormat, setText, taskColor } from './format.js';
import { MAX_SEGMENT_MS } from './state.js';

/** @typedef {import('./state.js').DashboardState} DashboardState */
/** @typedef {import('./state.js').Span} Span */
/** @typedef {import('./state.js').TimelineAxis} TimelineAxis */
/** @typedef {import('./state.js').TimelineLayout} TimelineLayout */
/** @typedef {import('../api-types.js').ApiTimelinePoint} ApiTimelinePoint */
/** @typedef {{ text: string, muted: string, grid: string, lane: string }} ThemeColors */

/** @param {DashboardState} state */
export function scheduleTimelineDraw(state) {
  if (state.drawScheduled) return;
  state.drawScheduled = true;
  requestAnimationFrame(() => {
    state.drawScheduled = false;
    drawTimeline(state);
  });
}

/** @returns {ThemeColors} */
export function themeColors() {
  const style = getComputedStyle(document.documentElement);
  /** @param {string} name */
  const read = (name) => style.getPropertyValue(name).trim();
  return { text: read('--text'), muted: read('--muted'), grid: read('--grid'), lane: read('--lane') };
}

/** @returns {HTMLCanvasElement} */
function timelineCanvas() {
  const canvas = byId('timeline');
  if (!(canvas instanceof HTMLCanvasElement)) throw new Error('#timeline is not a canvas');
  return canvas;
}

/**
 * Resizes the canvas backing store to its CSS size × devicePixelRatio; returns the CSS size.
 * @param {HTMLCanvasElement} canvas
 */
function fitCanvas(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const context = canvas.getContext('2d');
  if (context === null) throw new Error('no 2D context for the timeline');
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  return { context, width, height };
}

/**
 * Where a micro-batch starts and ends on the x axis, in the axis's unit (ms or offset).
 * @param {TimelineAxis} axis
 * @param {ApiTimelinePoint} point
 * @param {ApiTimelinePoint | undefined} previousOnPartition
 * @returns {[number, number]}
 */
function pointSpan(axis, point, previousOnPartition) {
  if (axis === 'offset') return [Number(point.firstOffset), Number(point.lastOffset) + 1];
  const start = previousOnPartition ? previousOnPartition.t : point.t;
  return [point.t - start > MAX_SEGMENT_MS ? point.t : start, point.t];
}

/**
 * task id → its birth on the x axis (ms or offset), from the task list, else from the points.
 * @param {DashboardState} state
 * @returns {Map<number, number>}
 */
function birthPositions(state) {
  const births = new Map();
  for (const task of state.tasks.values()) {
    births.set(
      task.task,
      state.timelineAxis === 'offset' ? Number(task.bornAt.offset) : Date.parse(task.bornTime),
    );
  }
  for (const point of state.points) {
    if (point.newTask && !births.has(point.task)) {
      births.set(point.task, state.timelineAxis === 'offset' ? Number(point.firstOffset) : point.t);
    }
  }
  return births;
}

/** @param {number} width @param {number} height @param {number[]} taskIds @returns {TimelineLayout} */
function timelineLayout(width, height, taskIds) {
  const plot = { left: 78, right: width - 16, top: 10, bottom: height - 26 };
  const laneHeight = (plot.bottom - plot.top) / Math.max(1, taskIds.length);
  /** @param {number} task */
  const laneTop = (task) => plot.top + taskIds.indexOf(task) * laneHeight;
  return { plot, laneHeight, laneTop };
}

/** @param {DashboardState} state @returns {Span[]} */
function computeSpans(state) {
  /** @type {Map<string, ApiTimelinePoint>} */
  const lastByPartition = new Map();
  return state.points.map((point) => {
    const span = pointSpan(state.timelineAxis, point, lastByPartition.get(point.partition));
    lastByPartition.set(point.partition, point);
    return { point, start: span[0], end: span[1] };
  });
}

/** The canvas grows with the number of task lanes, within bounds. @param {number} laneCount */
function timelineHeight(laneCount) {
  return Math.min(420, Math.max(150, 40 + laneCount * 40));
}

/** @param {DashboardState} state */
function drawTimeline(state) {
  const canvas = timelineCanvas();
  const tasksOnTimeline = [...new Set(state.points.map((point) => point.task))].sort((a, b) => a - b);
  const taskIds = [...new Set([...tasksOnTimeline, ...state.tasks.keys()])].sort((a, b) => a - b);
  canvas.style.height = `${timelineHeight(taskIds.length)}px`;
  const { context, width, height } = fitCanvas(canvas);
  const colors = themeColors();
  context.clearRect(0, 0, width, height);
  const spans = computeSpans(state);
  describeTimeline(state, canvas, tasksOnTimeline);
  const layout = timelineLayout(width, height, taskIds);
  drawLanes(state, context, layout, taskIds, colors);
  if (spans.length === 0) {
    drawEmptyTimeline(context, layout, colors);
    return;
  }
  const x0 = spans[0].start;
  const x1 = Math.max(...spans.slice(-50).map((span) => span.end), x0 + 1);
  /** @param {number} value */
  const scaleX = (value) =>
    layout.plot.left + ((value - x0) / (x1 - x0)) * (layout.plot.right - layout.plot.left);
  const axis = { x0, x1, scaleX };
  drawXAxis(state.timelineAxis, context, layout, axis, colors);
  drawSegments(context, layout, spans, scaleX);
  drawBirths(state.timelineAxis, context, layout, birthPositions(state), axis, colors);
  state.timelineView = { spans, scaleX, layout };
}

/** @param {DashboardState} state @param {HTMLCanvasElement} canvas @param {number[]} tasksOnTimeline */
function describeTimeline(state, canvas, tasksOnTimeline) {
  canvas.dataset.tasks = tasksOnTimeline.join(',');
  canvas.dataset.points = String(state.points.length);
  const last = state.points[state.points.length - 1];
  canvas.setAttribute(
    'aria-label',
    last === undefined
      ? 'Task timeline: no data yet'
      : `Task timeline: ${state.points.length} micro-batches over tasks ${tasksOnTimeline.join(', ')}; latest batch went to task ${last.task}`,
  );
}

/**
 * @param {DashboardState} state
 * @param {CanvasRenderingContext2D} context
 * @param {TimelineLayout} layout
 * @param {number[]} taskIds
 * @param {ThemeColors} colors
 */
function drawLanes(state, context, layout, taskIds, colors) {
  const { plot, laneHeight, laneTop } = layout;
  context.font = '12px system-ui, sans-serif';
  context.textBaseline = 'middle';
  taskIds.forEach((task, index) => {
    const top = laneTop(task);
    if (index % 2 === 0) {
      context.fillStyle = colors.lane;
      context.fillRect(plot.left, top, plot.right - plot.left, laneHeight);
    }
    const isNew = state.newTasks.has(task);
    context.fillStyle = taskColor(task);
    context.fillRect(8, top + laneHeight / 2 - 5, 10, 10);
    context.fillStyle = isNew ? taskColor(task) : colors.text;
    context.font = isNew ? 'bold 12px system-ui, sans-serif' : '12px system-ui, sans-serif';
    context.fillText(`task ${task}`, 24, top + laneHeight / 2);
  });
}

/** @param {CanvasRenderingContext2D} context @param {TimelineLayout} layout @param {ThemeColors} colors */
function drawEmptyTimeline(context, layout, colors) {
  const { plot } = layout;
  context.fillStyle = colors.muted;
  context.textAlign = 'center';
  context.fillText(
    'waiting for the first micro-batch…',
    (plot.left + plot.right) / 2,
    (plot.top + plot.bottom) / 2,
  );
  context.textAlign = 'start';
}

/**
 * @typedef {{ x0: number, x1: number, scaleX: (value: number) => number }} XAxis
 */

/**
 * @param {TimelineAxis} unit
 * @param {CanvasRenderingContext2D} context
 * @param {TimelineLayout} layout
 * @param {XAxis} axis
 * @param {ThemeColors} colors
 */
function drawXAxis(unit, context, layout, axis, colors) {
  const { plot } = layout;
  context.strokeStyle = colors.grid;
  context.fillStyle = colors.muted;
  context.font = '11px system-ui, sans-serif';
  context.textAlign = 'center';
  context.textBaseline = 'top';
  context.beginPath();
  context.moveTo(plot.left, plot.bottom + 0.5);
  context.lineTo(plot.right, plot.bottom + 0.5);
  const count = Math.max(2, Math.floor((plot.right - plot.left) / 110));
  for (const tick of niceTicks(unit, axis.x0, axis.x1, count)) {
    const x = Math.round(axis.scaleX(tick)) + 0.5;
    context.moveTo(x, plot.top);
    context.lineTo(x, plot.bottom + 4);
    const label = unit === 'offset' ? numberFormat.format(tick) : formatClock(tick);
    context.fillText(label, x, plot.bottom + 7);
  }
  context.stroke();
  context.textAlign = 'start';
}

/**
 * Round-numbered ticks between lo and hi (1, 2 or 5 × a power of ten; whole seconds on a time axis).
 * @param {TimelineAxis} unit
 * @param {number} lo
 * @param {number} hi
 * @param {number} count
 * @returns {number[]}
 */
function niceTicks(unit, lo, hi, count) {
  const rough = (hi - lo) / count;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((candidate) => candidate >= rough) ?? 10 * power;
  const tickUnit = unit === 'time' ? Math.max(1000, step) : Math.max(1, step);
  const ticks = [];
  for (let tick = Math.ceil(lo / tickUnit) * tickUnit; tick <= hi; tick += tickUnit) ticks.push(tick);
  return ticks;
}

/**
 * @param {CanvasRenderingContext2D} context
 * @param {TimelineLayout} layout
 * @param {Span[]} spans
 * @param {(value: number) => number} scaleX
 */
function drawSegments(context, layout, spans, scaleX) {
  const { laneHeight, laneTop } = layout;
  const barHeight = Math.min(22, Math.max(4, laneHeight * 0.56));
  for (const { point, start, end } of spans) {
    const left = scaleX(start);
    const segmentWidth = Math.max(2, scaleX(end) - left);
    context.fillStyle = taskColor(point.task);
    context.fillRect(left, laneTop(point.task) + (laneHeight - barHeight) / 2, segmentWidth, barHeight);
  }
}

/**
 * @param {TimelineAxis} unit
 * @param {CanvasRenderingContext2D} context
 * @param {TimelineLayout} layout
 * @param {Map<number, number>} births
 * @param {XAxis} axis
 * @param {ThemeColors} colors
 */
function drawBirths(unit, context, layout, births, axis, colors) {
  const { plot, laneHeight, laneTop } = layout;
  const { x0, x1, scaleX } = axis;
  context.font = 'bold 11px system-ui, sans-serif';
  context.textBaseline = 'bottom';
  // A task is born just before its first batch is decided: a birth up to one segment before the
  // first batch on the timeline is drawn at its left edge.
  const earliest = unit === 'time' ? x0 - MAX_SEGMENT_MS : x0;
  for (const [task, position] of births) {
    if (position < earliest || position > x1) continue;
    const x = Math.round(scaleX(Math.max(x0, position))) + 0.5;
    const y = laneTop(task) + laneHeight / 2;
    context.strokeStyle = taskColor(task);
    context.setLineDash([3, 3]);
    context.beginPath();
    context.moveTo(x, plot.top);
    context.lineTo(x, plot.bottom);
    context.stroke();
    context.setLineDash([]);
    drawDiamond(context, { x, y, radius: 7 }, taskColor(task), colors.text);
  }
}

/**
 * @param {CanvasRenderingContext2D} context
 * @param {{ x: number, y: number, radius: number }} at
 * @param {string} fill
 * @param {string} outline
 */
function drawDiamond(context, at, fill, outline) {
  const { x, y, radius } = at;
  context.beginPath();
  context.moveTo(x, y - radius);
  context.lineTo(x + radius, y);
  context.lineTo(x, y + radius);
  context.lineTo(x - radius, y);
  context.closePath();
  context.fillStyle = fill;
  context.fill();
  context.lineWidth = 1.5;
  context.strokeStyle = outline;
  context.stroke();
  context.lineWidth = 1;
}

/**
 * Describes the micro-batch under the pointer.
 * @param {DashboardState} state
 * @param {MouseEvent} event
 */
export function showTimelineReadout(state, event) {
  const view = state.timelineView;
  if (!view || view.spans.length === 0) return;
  const x = event.offsetX;
  let nearest = view.spans[0];
  for (const span of view.spans) {
    const distance = Math.abs(view.scaleX((span.start + span.end) / 2) - x);
    if (distance < Math.abs(view.scaleX((nearest.start + nearest.end) / 2) - x)) nearest = span;
  }
  const p = nearest.point;
  setText(
    'timeline-readout',
    `${formatClock(p.t)} · ${p.partition} offsets ${p.firstOffset}–${p.lastOffset} · task ${p.task} · ${p.decision} · confidence ${p.meanConfidence.toFixed(3)} · entropy ${p.meanEntropy.toFixed(3)}`,
  );
}

/** @param {DashboardState} state @param {TimelineAxis} axis */
export function setTimelineAxis(state, axis) {
  state.timelineAxis = axis;
  for (const button of document.querySelectorAll('.axis-toggle button')) {
    if (button instanceof HTMLElement)
      button.setAttribute('aria-pressed', String(button.dataset.axis === axis));
  }
  scheduleTimelineDraw(state);
}
