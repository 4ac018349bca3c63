/**
 * The timeline as a PNG: the layout of timeline.ts rasterised (bands, allocation markers, the record
 * axis), with a 3×5 pixel font drawn at twice its size for digits and the few capitals the labels use.
 */
import { encodePng, type RgbImage } from './png.js';
import { colourOf, LAYOUT, type Timeline, type TimelineRun, ticksOf, xOf } from './timeline.js';

type Rgb = readonly [number, number, number];

const BLACK: Rgb = [0, 0, 0];
const WHITE: Rgb = [255, 255, 255];

/** 3×5 glyphs, one string per row, '#' = ink. */
const GLYPHS: Readonly<Record<string, readonly string[]>> = {
  '0': ['###', '#.#', '#.#', '#.#', '###'],
  '1': ['.#.', '##.', '.#.', '.#.', '###'],
  '2': ['###', '..#', '###', '#..', '###'],
  '3': ['###', '..#', '.##', '..#', '###'],
  '4': ['#.#', '#.#', '###', '..#', '..#'],
  '5': ['###', '#..', '###', '..#', '###'],
  '6': ['###', '#..', '###', '#.#', '###'],
  '7': ['###', '..#', '.#.', '.#.', '.#.'],
  '8': ['###', '#.#', '###', '#.#', '###'],
  '9': ['###', '#.#', '###', '..#', '###'],
  A: ['.#.', '#.#', '###', '#.#', '#.#'],
  C: ['###', '#..', '#..', '#..', '###'],
  D: ['##.', '#.#', '#.#', '#.#', '##.'],
  E: ['###', '#..', '##.', '#..', '###'],
  I: ['###', '.#.', '.#.', '.#.', '###'],
  K: ['#.#', '#.#', '##.', '#.#', '#.#'],
  O: ['###', '#.#', '#.#', '#.#', '###'],
  R: ['##.', '#.#', '##.', '#.#', '#.#'],
  S: ['###', '#..', '###', '..#', '###'],
  T: ['###', '.#.', '.#.', '.#.', '.#.'],
  U: ['#.#', '#.#', '#.#', '#.#', '###'],
  V: ['#.#', '#.#', '#.#', '#.#', '.#.'],
  ' ': ['...', '...', '...', '...', '...'],
};
const SCALE = 2;
const ADVANCE = 4 * SCALE;

class Raster {
  readonly pixels: Uint8Array;
  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.pixels = new Uint8Array(width * height * 3).fill(255);
  }

  fill(x0: number, y0: number, x1: number, y1: number, colour: Rgb): void {
    const xa = Math.max(0, Math.round(x0));
    const xb = Math.min(this.width, Math.round(x1));
    const ya = Math.max(0, Math.round(y0));
    const yb = Math.min(this.height, Math.round(y1));
    for (let y = ya; y < yb; y++) {
      for (let x = xa; x < xb; x++) this.pixels.set(colour, (y * this.width + x) * 3);
    }
  }

  /** Text of GLYPHS characters (others are skipped but keep their place); `anchor` where x is. */
  text(x: number, y: number, text: string, colour: Rgb, anchor: 'start' | 'middle' | 'end'): void {
    const width = text.length * ADVANCE - SCALE;
    let at = anchor === 'start' ? x : anchor === 'middle' ? x - width / 2 : x - width;
    at = Math.round(at);
    for (const char of text.toUpperCase()) {
      const glyph = GLYPHS[char];
      glyph?.forEach((row, gy) => {
        for (let gx = 0; gx < row.length; gx++) {
          if (row[gx] !== '#') continue;
          const px = at + gx * SCALE;
          const py = y + gy * SCALE;
          this.fill(px, py, px + SCALE, py + SCALE, colour);
        }
      });
      at += ADVANCE;
    }
  }
}

export function timelineRaster(timeline: Timeline): RgbImage {
  const { width, height, left, trueTop, foundTop, band, axisY } = LAYOUT;
  const n = timeline.records;
  const r = new Raster(width, height);
  const bandRuns = (
    runs: readonly TimelineRun[],
    top: number,
    colour: (t: number) => number,
    label: (t: number) => string,
  ) => {
    for (const run of runs) {
      const x0 = xOf(run.start, n);
      const x1 = Math.max(xOf(run.end, n), x0 + 1);
      r.fill(x0, top, x1, top + band, colourOf(colour(run.task)));
      const text = label(run.task);
      if (x1 - x0 >= text.length * ADVANCE + 8)
        r.text((x0 + x1) / 2, top + band / 2 - 5, text, WHITE, 'middle');
    }
  };
  r.text(left - 10, trueTop + band / 2 - 5, 'TRUE', BLACK, 'end');
  r.text(left - 10, foundTop + band / 2 - 5, 'DISCOVERED', BLACK, 'end');
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
    const x = Math.round(xOf(a.at, n));
    r.fill(x - 1, foundTop - 8, x + 1, foundTop + band, BLACK);
    for (let row = 0; row < 8; row++)
      r.fill(x - 5 + row * 0.6, foundTop - 9 + row, x + 5 - row * 0.6, foundTop - 8 + row, BLACK);
  }
  r.fill(left, axisY, xOf(n, n) + 1, axisY + 1, BLACK);
  for (const tick of ticksOf(n)) {
    const x = Math.round(xOf(tick, n));
    r.fill(x, axisY, x + 1, axisY + 5, BLACK);
    r.text(x, axisY + 9, String(tick), BLACK, 'middle');
  }
  r.text(left - 16, axisY + 9, 'RECORD', BLACK, 'end');
  return { width, height, pixels: r.pixels };
}

export function timelinePng(timeline: Timeline): Buffer {
  return encodePng(timelineRaster(timeline));
}
