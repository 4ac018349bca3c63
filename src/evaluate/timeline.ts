/**
 * The task timeline of an evaluation: the true task and the discovered task of every record over
 * the record index, as runs, plus the allocations. Drawn as SVG here (with text) and as PNG in
 * timeline-png.ts (the same layout, digits only); the file name's extension picks one.
 */

/** Records [start, end) that share one task. */
export interface TimelineRun {
  readonly start: number;
  readonly end: number;
  readonly task: number;
}

export interface Timeline {
  readonly records: number;
  /** Runs of true tasks (indices into trueTaskNames). */
  readonly truth: readonly TimelineRun[];
  /** Runs of discovered tasks. */
  readonly found: readonly TimelineRun[];
  /** Record index of each allocation (task_discovered) and the task it created. */
  readonly allocations: readonly { readonly at: number; readonly task: number }[];
  readonly trueTaskNames: readonly string[];
  /** Colour index of each discovered task: the true task it is the dominant mask of, else one of its own. */
  readonly foundColour: Readonly<Record<string, number>>;
  readonly title: string;
}

export function runsOf(values: readonly number[]): TimelineRun[] {
  const runs: TimelineRun[] = [];
  let start = 0;
  for (let i = 1; i <= values.length; i++) {
    if (i < values.length && values[i] === values[start]) continue;
    runs.push({ start, end: i, task: values[start] as number });
    start = i;
  }
  return runs;
}

/** Colour-blind-safe qualitative palette (Okabe–Ito, then Tol's muted), as RGB. */
export const PALETTE: readonly (readonly [number, number, number])[] = [
  [0, 114, 178],
  [230, 159, 0],
  [0, 158, 115],
  [204, 121, 167],
  [86, 180, 233],
  [213, 94, 0],
  [240, 228, 66],
  [136, 34, 85],
  [68, 170, 153],
  [153, 153, 51],
  [51, 34, 136],
  [170, 68, 153],
];

export function colourOf(index: number): readonly [number, number, number] {
  return PALETTE[((index % PALETTE.length) + PALETTE.length) % PALETTE.length] as readonly [
    number,
    number,
    number,
  ];
}

/** Geometry shared by both renderers (pixels). */
export const LAYOUT = {
  width: 1000,
  height: 176,
  left: 110,
  right: 20,
  trueTop: 34,
  foundTop: 96,
  band: 40,
  axisY: 148,
} as const;

export function xOf(index: number, records: number): number {
  const span = LAYOUT.width - LAYOUT.left - LAYOUT.right;
  return LAYOUT.left + (records === 0 ? 0 : (index / records) * span);
}

/** Up to five round tick values over [0, records]. */
export function ticksOf(records: number): number[] {
  if (records <= 0) return [0];
  const raw = records / 4;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? raw;
  const ticks: number[] = [];
  for (let v = 0; v <= records; v += step) ticks.push(Math.round(v));
  return ticks;
}

function rgb(c: readonly [number, number, number]): string {
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function timelineSvg(timeline: Timeline): string {
  const { width, height, left, trueTop, foundTop, band, axisY } = LAYOUT;
  const n = timeline.records;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${left}" y="18" font-size="13">${escapeXml(timeline.title)}</text>`,
    `<text x="${left - 8}" y="${trueTop + band / 2 + 4}" text-anchor="end">true task</text>`,
    `<text x="${left - 8}" y="${foundTop + band / 2 + 4}" text-anchor="end">discovered</text>`,
  ];
  const bandRuns = (
    runs: readonly TimelineRun[],
    top: number,
    colour: (task: number) => number,
    label: (task: number) => string,
  ) => {
    for (const run of runs) {
      const x0 = xOf(run.start, n);
      const w = Math.max(1, xOf(run.end, n) - x0);
      out.push(
        `<rect x="${x0.toFixed(2)}" y="${top}" width="${w.toFixed(2)}" height="${band}" fill="${rgb(colourOf(colour(run.task)))}"><title>${escapeXml(label(run.task))}: records ${run.start}–${run.end - 1}</title></rect>`,
      );
      if (w >= 24) {
        out.push(
          `<text x="${(x0 + w / 2).toFixed(2)}" y="${top + band / 2 + 4}" text-anchor="middle" fill="white">${escapeXml(label(run.task))}</text>`,
        );
      }
    }
  };
  bandRuns(
    timeline.truth,
    trueTop,
    (t) => t,
    (t) => timeline.trueTaskNames[t] ?? String(t),
  );
  bandRuns(
    timeline.found,
    foundTop,
    (t) => timeline.foundColour[t] ?? t,
    (t) => String(t),
  );
  for (const a of timeline.allocations) {
    const x = xOf(a.at, n).toFixed(2);
    out.push(
      `<line x1="${x}" y1="${foundTop - 8}" x2="${x}" y2="${foundTop + band}" stroke="black" stroke-width="1.5"/>`,
      `<path d="M ${x} ${foundTop - 1} l -5 -8 h 10 z" fill="black"><title>task ${a.task} allocated at record ${a.at}</title></path>`,
    );
  }
  out.push(`<line x1="${left}" y1="${axisY}" x2="${xOf(n, n).toFixed(2)}" y2="${axisY}" stroke="black"/>`);
  for (const tick of ticksOf(n)) {
    const x = xOf(tick, n).toFixed(2);
    out.push(
      `<line x1="${x}" y1="${axisY}" x2="${x}" y2="${axisY + 5}" stroke="black"/>`,
      `<text x="${x}" y="${axisY + 18}" text-anchor="middle">${tick}</text>`,
    );
  }
  out.push(`<text x="${left - 8}" y="${axisY + 18}" text-anchor="end">record</text>`, '</svg>');
  return `${out.join('\n')}\n`;
}
