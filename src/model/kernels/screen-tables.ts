/**
 * Passes 1 and 2 of the screen's span (screen-kernel.ts): the span's largest subset sum |T| (and
 * Σ|V|), then each row's nibble tables of high and low bytes, rounded to whole units.
 */
import { subsetSumPairs } from './nibble-kernel.js';
import { eachSpanRow, HIGH_BIAS, type ScreenLocals } from './screen-locals.js';
import {
  addTo,
  get,
  i32Const,
  lane,
  op,
  set,
  shuffle,
  tee,
  v128Const,
  v128Load,
  v128Store,
  v128Zero,
} from './wasm-asm.js';

const HIGH_BIAS_WORDS = Array.from({ length: 16 }, (_, k) => (k % 2 === 0 ? HIGH_BIAS : 0));
/** Lanes of two f64x2 operands: the first lanes of both, the second lanes of both, the low words. */
const LOW_LANES = [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23];
const HIGH_LANES = LOW_LANES.map((index) => index + 8);
const LOW_WORDS = [0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27];
/** 1.5 · 2^52: x + MAGIC rounds |x| < 2^51 to an integer held in the low 32 bits. */
export const MAGIC = 1.5 * 2 ** 52;

/**
 * Pass 1 over the span's rows: max |T| into maxAbs (over both signs of every nibble) and Σ|V| into
 * absV (two lanes, kept over all spans). A row is four float64 pairs: nibble 0 is (w0, w1), nibble
 * 1 is (w2, w3). Without branches (the signs are random); a NaN spreads into both.
 */
export function spanMaximum(l: ScreenLocals): number[] {
  const words = [l.w0, l.w1, l.w2, l.w3];
  const pairSums = (extreme: readonly number[], out: number): number[] => [
    // [Σ of nibble 0, Σ of nibble 1] of extreme(w, 0): the pairs' lanes added across
    ...words.flatMap((w) => [...get(w), ...v128Zero(), ...extreme]),
    ...op.f64x2Add, // (w2, w3)
    ...set(out),
    ...op.f64x2Add, // (w0, w1)
    ...tee(l.w4),
    ...get(out),
    ...shuffle(LOW_LANES),
    ...get(l.w4),
    ...get(out),
    ...shuffle(HIGH_LANES),
    ...op.f64x2Add,
    ...set(out),
  ];
  return [
    ...v128Zero(),
    ...set(l.maxV),
    ...eachSpanRow(l, [
      ...words.flatMap((w, k) => [...get(l.vp), ...v128Load(16 * k), ...set(w)]),
      ...get(l.absV),
      ...words.flatMap((w) => [...get(w), ...op.f64x2Abs, ...op.f64x2Add]),
      ...set(l.absV),
      ...pairSums(op.f64x2Max, l.posV),
      ...pairSums(op.f64x2Min, l.negV),
      ...get(l.maxV),
      ...get(l.posV),
      ...op.f64x2Max,
      ...v128Zero(),
      ...get(l.negV),
      ...op.f64x2Sub,
      ...op.f64x2Max,
      ...set(l.maxV),
    ]),
    ...get(l.maxV),
    ...lane(op.f64x2ExtractLane, 0),
    ...get(l.maxV),
    ...lane(op.f64x2ExtractLane, 1),
    ...op.f64Max,
    ...set(l.maxAbs),
  ];
}

/**
 * The tables of nibble h of the row at vp, at tp: high bytes at 16h, low bytes at 32 + 16h. The 16
 * subset sums are eight float64 pairs built by doubling; y = T·inv is rounded to an integer by
 * adding 1.5·2^52 (round to nearest even, as f64.nearest), whose low 32 bits are then y.
 */
function nibbleTables(l: ScreenLocals, h: number): number[] {
  const pairs = l.tPairs;
  const code = subsetSumPairs(l.vp, 32 * h, pairs, l.highLaneMask, l.w0);
  // y rounded; the low words of pairs (2j, 2j + 1) are entries 4j..4j+3 of an i32x4
  for (const k of pairs) {
    code.push(...get(k), ...get(l.invV), ...op.f64x2Mul, ...get(l.magicV), ...op.f64x2Add, ...set(k));
  }
  const words = (j: number): number[] => [
    ...get(pairs[2 * j] as number),
    ...get(pairs[2 * j + 1] as number),
    ...shuffle(LOW_WORDS),
  ];
  code.push(...words(0), ...words(1), ...op.i16x8NarrowI32x4S, ...set(l.w0)); // entries 0–7
  code.push(...words(2), ...words(3), ...op.i16x8NarrowI32x4S, ...set(l.w1)); // entries 8–15
  const highBytes = (w: number): number[] => [
    ...get(w),
    ...i32Const(8),
    ...op.i16x8ShrS,
    ...v128Const(HIGH_BIAS_WORDS),
    ...op.i16x8Add,
  ];
  const lowBytes = (w: number): number[] => [...get(w), ...get(l.lowByteMask), ...op.v128And];
  code.push(
    ...get(l.tp),
    ...highBytes(l.w0),
    ...highBytes(l.w1),
    ...op.i8x16NarrowI16x8S,
    ...v128Store(16 * h),
  );
  code.push(
    ...get(l.tp),
    ...lowBytes(l.w0),
    ...lowBytes(l.w1),
    ...op.i8x16NarrowI16x8U,
    ...v128Store(32 + 16 * h),
  );
  return code;
}

/** Pass 2: the span's tables at scratch, 64 bytes per row. */
export function spanTables(l: ScreenLocals): number[] {
  return [
    ...get(l.scratch),
    ...set(l.tp),
    ...eachSpanRow(l, [...nibbleTables(l, 0), ...nibbleTables(l, 1), ...addTo(l.tp, i32Const(64))]),
  ];
}
