// supsupd live dashboard. Plain browser JavaScript, no build step: loads a snapshot from the HTTP API
// (status, tasks, timeline), then follows the server-sent events stream. Shapes: src/ops/api-types.ts.
// Memory is bounded: every series is capped, the oldest points are dropped first.

const MAX_TIMELINE_POINTS = 6000;
const MAX_THROUGHPUT_POINTS = 900;
const STATUS_REFRESH_MS = 2000;
const TASKS_REFRESH_MS = 4000;
const NEW_TASK_HIGHLIGHT_MS = 15_000;
const MAX_RECONNECT_DELAY_MS = 15_000;
/** A gap between two micro-batches longer than this is drawn as a gap, not as one long segment. */
const MAX_SEGMENT_MS = 5000;

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

const state = {
  status: null,
  /** task id → ApiTask */
  tasks: new Map(),
  /** ApiTimelinePoint[], oldest first */
  points: [],
  /** seconds since the epoch and records/s, for the throughput chart */
  throughput: { t: [], perSecond: [] },
  /** task id → time (ms) until which its row and lane are highlighted as new */
  newTasks: new Map(),
  snapshotLoaded: false,
  timelineAxis: 'time',
  charts: { quality: null, throughput: null },
  events: null,
  reconnectDelayMs: 1000,
  drawScheduled: false,
};

const byId = (id) => document.getElementById(id);
const numberFormat = new Intl.NumberFormat('en');
const taskColor = (task) => PALETTE[((task % PALETTE.length) + PALETTE.length) % PALETTE.length];

async function getJson(path) {
  const response = await fetch(path, { headers: { accept: 'application/json' }, cache: 'no-store' });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

// ---------------------------------------------------------------- formatting

function formatDuration(seconds) {
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n) => String(n).padStart(2, '0');
  if (d > 0) return `${d}d ${pad(h)}h ${pad(m)}m`;
  if (h > 0) return `${h}h ${pad(m)}m ${pad(s % 60)}s`;
  return `${m}m ${pad(s % 60)}s`;
}

function formatClock(ms) {
  return new Date(ms).toLocaleTimeString('en-GB', { hour12: false });
}

function formatAgo(isoTime) {
  const seconds = Math.max(0, (Date.now() - Date.parse(isoTime)) / 1000);
  if (seconds < 60) return `${Math.round(seconds)} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  return `${(seconds / 3600).toFixed(1)} h ago`;
}

function formatPosition(position) {
  return `${position.topic}/${position.partition} @ ${position.offset}`;
}

function setText(id, text) {
  const element = byId(id);
  if (element.textContent !== text) element.textContent = text;
}

function swatch(task) {
  const element = document.createElement('span');
  element.className = 'swatch';
  element.style.backgroundColor = taskColor(task);
  element.setAttribute('aria-hidden', 'true');
  return element;
}

// ---------------------------------------------------------------- header: health and counters

function renderStatus(status) {
  state.status = status;
  const health = document.querySelector('[data-testid=status]');
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
  renderCurrentTasks(status.currentTasks);
}

function renderCurrentTasks(currentTasks) {
  const list = byId('current-tasks');
  const items = Object.entries(currentTasks).map(([partition, task]) => {
    const item = document.createElement('li');
    item.dataset.partition = partition;
    item.dataset.task = task === null ? '' : String(task);
    const label = document.createElement('span');
    label.textContent = task === null ? `${partition}: no task yet` : `${partition} → task ${task}`;
    if (task !== null) item.append(swatch(task));
    item.append(label);
    return item;
  });
  if (items.length === 0) {
    const item = document.createElement('li');
    item.className = 'muted';
    item.textContent = 'no partition assigned';
    items.push(item);
  }
  list.replaceChildren(...items);
}

function setLiveState(liveState, label) {
  const live = byId('live');
  live.dataset.state = liveState;
  setText('live-label', label);
}

// ---------------------------------------------------------------- task table

function renderTasks(tasks) {
  const previous = new Set(state.tasks.keys());
  state.tasks = new Map(tasks.map((task) => [task.task, task]));
  if (state.snapshotLoaded) {
    for (const task of tasks) if (!previous.has(task.task)) markNewTask(task.task);
  }
  renderTaskTable();
  scheduleTimelineDraw();
}

function markNewTask(task) {
  state.newTasks.set(task, Date.now() + NEW_TASK_HIGHLIGHT_MS);
  setTimeout(() => {
    if ((state.newTasks.get(task) ?? 0) <= Date.now()) state.newTasks.delete(task);
    renderTaskTable();
    scheduleTimelineDraw();
  }, NEW_TASK_HIGHLIGHT_MS + 50);
}

function renderTaskTable() {
  const body = document.querySelector('#task-table tbody');
  const tasks = [...state.tasks.values()].sort((a, b) => a.task - b.task);
  const rows = tasks.map((task) => {
    const row = body.querySelector(`tr[data-task="${task.task}"]`) ?? createTaskRow(task.task);
    fillTaskRow(row, task);
    return row;
  });
  body.replaceChildren(...rows);
  byId('tasks-empty').hidden = tasks.length > 0;
  const frozen = tasks.filter((task) => task.frozen).length;
  setText('tasks-summary', tasks.length === 0 ? '' : `${tasks.length} tasks, ${frozen} frozen`);
}

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

const TASK_COLUMNS = [
  'task',
  'bornAt',
  'bornTime',
  'recordsRouted',
  'meanConfidence',
  'lastSeen',
  'frozen',
  'trainSteps',
  'maskKB',
  'density',
];
const NUMERIC_COLUMNS = new Set(['recordsRouted', 'meanConfidence', 'trainSteps', 'maskKB', 'density']);

function fillTaskRow(row, task) {
  const isNew = state.newTasks.has(task.task);
  row.classList.toggle('is-new', isNew);
  row.dataset.frozen = String(task.frozen);
  const cell = (name) => row.querySelector(`[data-col="${name}"]`);
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
  cell('lastSeen').textContent = task.lastSeen === null ? '–' : formatAgo(task.lastSeen.time);
  cell('lastSeen').title = task.lastSeen === null ? '' : formatPosition(task.lastSeen.at);
  cell('frozen').textContent = task.frozen ? 'frozen' : 'training';
  cell('frozen').className = task.frozen ? 'frozen' : 'training';
  cell('trainSteps').textContent = numberFormat.format(task.trainSteps);
  cell('maskKB').textContent = (task.maskBytes / 1024).toFixed(1);
  cell('density').textContent = `${(task.density * 100).toFixed(1)} %`;
}

// ---------------------------------------------------------------- timeline data

function appendPoints(points) {
  for (const point of points) {
    if (!isDuplicatePoint(point)) state.points.push(point);
  }
  const excess = state.points.length - MAX_TIMELINE_POINTS;
  if (excess > 0) state.points.splice(0, excess);
}

/** After a reconnect the stream may repeat decisions the snapshot already had. */
function isDuplicatePoint(point) {
  for (let i = state.points.length - 1; i >= 0 && state.points[i].t >= point.t; i--) {
    const other = state.points[i];
    if (other.partition === point.partition && other.firstOffset === point.firstOffset) return true;
  }
  return false;
}

/** Records per second in each whole second covered by the timeline (history for the throughput chart). */
function throughputFromPoints(points) {
  const series = { t: [], perSecond: [] };
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

/** Appends one throughput sample; a silence of more than 2 s is drawn as zero, not as a sloped line. */
function appendThroughput(tMs, perSecond) {
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

// ---------------------------------------------------------------- timeline canvas

function scheduleTimelineDraw() {
  if (state.drawScheduled) return;
  state.drawScheduled = true;
  requestAnimationFrame(() => {
    state.drawScheduled = false;
    drawTimeline();
  });
}

function themeColors() {
  const style = getComputedStyle(document.documentElement);
  const read = (name) => style.getPropertyValue(name).trim();
  return { text: read('--text'), muted: read('--muted'), grid: read('--grid'), lane: read('--lane') };
}

/** Resizes the canvas backing store to its CSS size × devicePixelRatio; returns the CSS size. */
function fitCanvas(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const context = canvas.getContext('2d');
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  return { context, width, height };
}

/** Where a micro-batch starts and ends on the x axis, in the axis's unit (ms or offset). */
function pointSpan(point, previousOnPartition) {
  if (state.timelineAxis === 'offset') return [Number(point.firstOffset), Number(point.lastOffset) + 1];
  const start = previousOnPartition ? previousOnPartition.t : point.t;
  return [point.t - start > MAX_SEGMENT_MS ? point.t : start, point.t];
}

/** task id → its birth on the x axis (ms or offset), from the task list, else from the points. */
function birthPositions() {
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

function timelineLayout(width, height, taskIds) {
  const plot = { left: 78, right: width - 16, top: 10, bottom: height - 26 };
  const laneHeight = (plot.bottom - plot.top) / Math.max(1, taskIds.length);
  const laneTop = (task) => plot.top + taskIds.indexOf(task) * laneHeight;
  return { plot, laneHeight, laneTop };
}

function computeSpans() {
  const lastByPartition = new Map();
  return state.points.map((point) => {
    const span = pointSpan(point, lastByPartition.get(point.partition));
    lastByPartition.set(point.partition, point);
    return { point, start: span[0], end: span[1] };
  });
}

/** The canvas grows with the number of task lanes, within bounds. */
function timelineHeight(laneCount) {
  return Math.min(420, Math.max(150, 40 + laneCount * 40));
}

function drawTimeline() {
  const canvas = byId('timeline');
  const tasksOnTimeline = [...new Set(state.points.map((point) => point.task))].sort((a, b) => a - b);
  const taskIds = [...new Set([...tasksOnTimeline, ...state.tasks.keys()])].sort((a, b) => a - b);
  canvas.style.height = `${timelineHeight(taskIds.length)}px`;
  const { context, width, height } = fitCanvas(canvas);
  const colors = themeColors();
  context.clearRect(0, 0, width, height);
  const spans = computeSpans();
  describeTimeline(canvas, tasksOnTimeline);
  const layout = timelineLayout(width, height, taskIds);
  drawLanes(context, layout, taskIds, colors);
  if (spans.length === 0) {
    drawEmptyTimeline(context, layout, colors);
    return;
  }
  const x0 = spans[0].start;
  const x1 = Math.max(...spans.slice(-50).map((span) => span.end), x0 + 1);
  const scaleX = (value) =>
    layout.plot.left + ((value - x0) / (x1 - x0)) * (layout.plot.right - layout.plot.left);
  drawXAxis(context, layout, x0, x1, scaleX, colors);
  drawSegments(context, layout, spans, scaleX);
  drawBirths(context, layout, birthPositions(), x0, x1, scaleX, colors);
  state.timelineView = { spans, scaleX, layout };
}

function describeTimeline(canvas, tasksOnTimeline) {
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

function drawLanes(context, layout, taskIds, colors) {
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

function drawXAxis(context, layout, x0, x1, scaleX, colors) {
  const { plot } = layout;
  context.strokeStyle = colors.grid;
  context.fillStyle = colors.muted;
  context.font = '11px system-ui, sans-serif';
  context.textAlign = 'center';
  context.textBaseline = 'top';
  context.beginPath();
  context.moveTo(plot.left, plot.bottom + 0.5);
  context.lineTo(plot.right, plot.bottom + 0.5);
  for (const tick of niceTicks(x0, x1, Math.max(2, Math.floor((plot.right - plot.left) / 110)))) {
    const x = Math.round(scaleX(tick)) + 0.5;
    context.moveTo(x, plot.top);
    context.lineTo(x, plot.bottom + 4);
    const label = state.timelineAxis === 'offset' ? numberFormat.format(tick) : formatClock(tick);
    context.fillText(label, x, plot.bottom + 7);
  }
  context.stroke();
  context.textAlign = 'start';
}

/** Round-numbered ticks between lo and hi (1, 2 or 5 × a power of ten; whole seconds on a time axis). */
function niceTicks(lo, hi, count) {
  const rough = (hi - lo) / count;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((candidate) => candidate >= rough) ?? 10 * power;
  const unit = state.timelineAxis === 'time' ? Math.max(1000, step) : Math.max(1, step);
  const ticks = [];
  for (let tick = Math.ceil(lo / unit) * unit; tick <= hi; tick += unit) ticks.push(tick);
  return ticks;
}

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

function drawBirths(context, layout, births, x0, x1, scaleX, colors) {
  const { plot, laneHeight, laneTop } = layout;
  context.font = 'bold 11px system-ui, sans-serif';
  context.textBaseline = 'bottom';
  // A task is born just before its first batch is decided: a birth up to one segment before the
  // first batch on the timeline is drawn at its left edge.
  const earliest = state.timelineAxis === 'time' ? x0 - MAX_SEGMENT_MS : x0;
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
    drawDiamond(context, x, y, 7, taskColor(task), colors.text);
  }
}

function drawDiamond(context, x, y, radius, fill, outline) {
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

/** Describes the micro-batch under the pointer. */
function showTimelineReadout(event) {
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

function setTimelineAxis(axis) {
  state.timelineAxis = axis;
  for (const button of document.querySelectorAll('.axis-toggle button')) {
    button.setAttribute('aria-pressed', String(button.dataset.axis === axis));
  }
  scheduleTimelineDraw();
}

// ---------------------------------------------------------------- uPlot charts

function chartAxis(colors, extra = {}) {
  return {
    stroke: colors.muted,
    grid: { stroke: colors.grid, width: 1 },
    ticks: { stroke: colors.grid, width: 1 },
    font: '11px system-ui, sans-serif',
    ...extra,
  };
}

function chartSize(container) {
  return { width: Math.max(240, container.clientWidth), height: 220 };
}

function createQualityChart() {
  const container = byId('quality-chart');
  const colors = themeColors();
  const options = {
    ...chartSize(container),
    cursor: { drag: { x: false, y: false } },
    scales: {
      x: { time: true },
      confidence: { range: [0, 1] },
      entropy: { range: (_u, _min, max) => [0, Math.max(0.5, max)] },
    },
    series: [
      {},
      {
        label: 'confidence',
        scale: 'confidence',
        stroke: '#4e79a7',
        width: 1.5,
        value: (_u, v) => formatMaybe(v),
      },
      { label: 'entropy', scale: 'entropy', stroke: '#e15759', width: 1.5, value: (_u, v) => formatMaybe(v) },
    ],
    axes: [
      chartAxis(colors),
      chartAxis(colors, { scale: 'confidence', label: 'confidence', labelSize: 18 }),
      chartAxis(colors, {
        scale: 'entropy',
        side: 1,
        label: 'entropy (nats)',
        labelSize: 18,
        grid: { show: false },
      }),
    ],
  };
  return new window.uPlot(options, qualityData(), container);
}

function createThroughputChart() {
  const container = byId('throughput-chart');
  const colors = themeColors();
  const options = {
    ...chartSize(container),
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(10, max * 1.1)] } },
    series: [
      {},
      {
        label: 'records/s',
        stroke: '#59a14f',
        fill: 'rgba(89, 161, 79, 0.15)',
        width: 1.5,
        value: (_u, v) => (v === null || v === undefined ? '–' : numberFormat.format(Math.round(v))),
      },
    ],
    axes: [chartAxis(colors), chartAxis(colors, { size: 56 })],
  };
  return new window.uPlot(options, throughputData(), container);
}

function formatMaybe(value) {
  return value === null || value === undefined ? '–' : value.toFixed(3);
}

function qualityData() {
  return [
    state.points.map((point) => point.t / 1000),
    state.points.map((point) => point.meanConfidence),
    state.points.map((point) => point.meanEntropy),
  ];
}

function throughputData() {
  return [state.throughput.t, state.throughput.perSecond];
}

function refreshCharts() {
  state.charts.quality?.setData(qualityData());
  state.charts.throughput?.setData(throughputData());
}

function resizeCharts() {
  for (const [chart, id] of [
    [state.charts.quality, 'quality-chart'],
    [state.charts.throughput, 'throughput-chart'],
  ]) {
    chart?.setSize(chartSize(byId(id)));
  }
  scheduleTimelineDraw();
}

// ---------------------------------------------------------------- data loading and live events

async function loadSnapshot() {
  const [status, tasks, timeline] = await Promise.all([
    getJson('api/v1/status'),
    getJson('api/v1/tasks'),
    getJson('api/v1/timeline'),
  ]);
  renderStatus(status);
  state.points = timeline.points.slice(-MAX_TIMELINE_POINTS);
  state.throughput = throughputFromPoints(state.points);
  renderTasks(tasks.tasks);
  state.snapshotLoaded = true;
  refreshCharts();
  scheduleTimelineDraw();
}

async function refreshTasks() {
  try {
    renderTasks((await getJson('api/v1/tasks')).tasks);
  } catch (error) {
    console.warn('tasks refresh failed:', error.message);
  }
}

async function refreshStatus() {
  try {
    renderStatus(await getJson('api/v1/status'));
  } catch (error) {
    const health = document.querySelector('[data-testid=status]');
    health.dataset.ready = 'unknown';
    health.dataset.state = 'unreachable';
    setText('ready-badge', 'unreachable');
    setText('not-ready-reasons', error.message);
  }
}

function onDecisions(summary) {
  appendPoints(summary.points);
  appendThroughput(summary.t, summary.perSecond);
  if (summary.newTasks > 0) void refreshTasks();
  refreshCharts();
  scheduleTimelineDraw();
}

function onTaskDiscovered(event) {
  markNewTask(event.task);
  void refreshTasks();
}

function onBudgetReached(event) {
  const notice = byId('notice');
  notice.hidden = false;
  notice.textContent = `Mask budget reached (${event.masks} masks) at ${formatPosition(event.at)}: no new task can be allocated.`;
}

function listen(source, type, handler) {
  source.addEventListener(type, (message) => {
    try {
      handler(JSON.parse(message.data));
    } catch (error) {
      console.warn(`bad ${type} event:`, error.message);
    }
  });
}

/** Follows /api/v1/events; EventSource retries by itself, and a stream that was closed is reopened here. */
function connectEvents() {
  const source = new EventSource('api/v1/events');
  state.events = source;
  let wasDisconnected = false;
  source.addEventListener('open', () => {
    state.reconnectDelayMs = 1000;
    setLiveState('live', 'live');
    if (wasDisconnected) void loadSnapshot().catch(() => {});
  });
  source.addEventListener('error', () => {
    wasDisconnected = true;
    if (source.readyState === EventSource.CLOSED) {
      setLiveState('down', `disconnected, retrying in ${Math.round(state.reconnectDelayMs / 1000)} s`);
      setTimeout(reconnectEvents, state.reconnectDelayMs);
      state.reconnectDelayMs = Math.min(MAX_RECONNECT_DELAY_MS, state.reconnectDelayMs * 2);
    } else {
      setLiveState('reconnecting', 'reconnecting…');
    }
  });
  listen(source, 'decisions', onDecisions);
  listen(source, 'task_discovered', onTaskDiscovered);
  listen(source, 'mask_frozen', () => void refreshTasks());
  listen(source, 'budget_reached', onBudgetReached);
}

function reconnectEvents() {
  state.events?.close();
  connectEvents();
  void loadSnapshot().catch(() => {});
}

function startPolling() {
  setInterval(refreshStatus, STATUS_REFRESH_MS);
  setInterval(refreshTasks, TASKS_REFRESH_MS);
}

async function start() {
  for (const button of document.querySelectorAll('.axis-toggle button')) {
    button.addEventListener('click', () => setTimelineAxis(button.dataset.axis));
  }
  byId('timeline').addEventListener('mousemove', showTimelineReadout);
  state.charts.quality = createQualityChart();
  state.charts.throughput = createThroughputChart();
  new ResizeObserver(resizeCharts).observe(document.querySelector('main'));
  try {
    await loadSnapshot();
  } catch (error) {
    setText('ready-badge', 'unreachable');
    setText('not-ready-reasons', error.message);
  }
  connectEvents();
  startPolling();
}

void start();
