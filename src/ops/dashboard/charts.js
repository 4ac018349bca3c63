// @ts-check
// The two uPlot charts: quality (mean confidence and entropy per micro-batch) and throughput.
// uPlot is the global of assets/vendor/uPlot.iife.min.js, loaded before the modules.

import { byId, formatMaybe, numberFormat } from './format.js';
import { scheduleTimelineDraw, themeColors } from './timeline.js';

/** @typedef {import('./state.js').DashboardState} DashboardState */
/** @typedef {ReturnType<typeof themeColors>} ThemeColors */

/** @param {ThemeColors} colors @param {Partial<uPlot.Axis>} [extra] @returns {uPlot.Axis} */
function chartAxis(colors, extra = {}) {
  return {
    stroke: colors.muted,
    grid: { stroke: colors.grid, width: 1 },
    ticks: { stroke: colors.grid, width: 1 },
    font: '11px system-ui, sans-serif',
    ...extra,
  };
}

/** @param {HTMLElement} container */
function chartSize(container) {
  return { width: Math.max(240, container.clientWidth), height: 220 };
}

/** @param {DashboardState} state @returns {uPlot} */
export function createQualityChart(state) {
  const container = byId('quality-chart');
  const colors = themeColors();
  /** @type {uPlot.Options} */
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
  return new uPlot(options, qualityData(state), container);
}

/** @param {DashboardState} state @returns {uPlot} */
export function createThroughputChart(state) {
  const container = byId('throughput-chart');
  const colors = themeColors();
  /** @type {uPlot.Options} */
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
  return new uPlot(options, throughputData(state), container);
}

/** @param {DashboardState} state @returns {uPlot.AlignedData} */
function qualityData(state) {
  return [
    state.points.map((point) => point.t / 1000),
    state.points.map((point) => point.meanConfidence),
    state.points.map((point) => point.meanEntropy),
  ];
}

/** @param {DashboardState} state @returns {uPlot.AlignedData} */
function throughputData(state) {
  return [state.throughput.t, state.throughput.perSecond];
}

/** @param {DashboardState} state */
export function refreshCharts(state) {
  state.charts.quality?.setData(qualityData(state));
  state.charts.throughput?.setData(throughputData(state));
}

/** @param {DashboardState} state */
export function resizeCharts(state) {
  /** @type {[uPlot | null, string][]} */
  const charts = [
    [state.charts.quality, 'quality-chart'],
    [state.charts.throughput, 'throughput-chart'],
  ];
  for (const [chart, id] of charts) chart?.setSize(chartSize(byId(id)));
  scheduleTimelineDraw(state);
}
