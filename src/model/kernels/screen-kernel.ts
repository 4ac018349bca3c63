/**
 * The quantised screen of the mask bank (ADR 0007) in WebAssembly SIMD: approximate dot products
 * A_m ≈ Σ_w V[w]·M_m[w] for every mask, 16 masks per instruction, with a bound δ such that
 * |A_m − g_m| ≤ δ for every mask m and every float64 evaluation g_m of the exact sum.
 *
 * screen_rows(list, blocks, rowFrom, rowTo, stride, values, acc, accStride, scratch) → δ of the
 * rows: the byte rows [rowFrom, rowTo) (multiples of 4) are cut into spans of SPAN_ROWS rows. For
 * each span:
 *  1. unit = max over its nibbles n and subsets e of |T_n(e)| / (62·256), where
 *     T_n(e) = Σ_{bits k of e} V[4n + k] (a nibble is four weights);
 *  2. each T_n(e) is rounded to y = round(T_n(e)/unit), |y| ≤ 15,872, stored as a high byte
 *     ⌊y/256⌋ + 64 ∈ [2, 126] (biased) and a low byte y mod 256 (16-entry tables, one per nibble);
 *  3. for every lane of 16 masks of every listed block, each row's 16 mask bytes are split into
 *     their two nibbles and looked up with i8x16.swizzle: the two high bytes are added in u8
 *     (≤ 252); that sum and each low byte are accumulated as whole i16 lanes into one sum and,
 *     shifted right by 8, into another (the even bytes' sum is the difference of the two, exact
 *     below 257 terms);
 *  4. the lane's integer sums Y_m = 256·(H_m − 128·rows) + L_m (exact) are added to the mask's
 *     float64 accumulator as Y_m·unit, and δ grows by the span's rows · unit (each of a row's two
 *     nibbles is off by at most unit/2 for every mask).
 * The float64 rounding of A, of the tables' sums and of any exact kernel's sum is covered by adding
 * ROUNDING_SLACK · Σ|V| to δ. Masks are stored in lanes of 16 (mask-bank.ts): the group starting at
 * byte row `row` of a block begins at base + row·stride and holds 64 bytes per lane, row by row.
 * Accumulators of block b start at acc + b·accStride, 16 float64 per lane. `list` holds `blocks`
 * pairs (block base address, lanes to walk). `scratch` holds SCREEN_TABLE_BYTES of tables, then
 * 64 bytes of integer sums per lane of the widest block (stride / 16 lanes).
 */

import { HIGH_LANE_BYTES } from './nibble-kernel.js';
import { spanBlocks } from './screen-lanes.js';
import { screenLocals } from './screen-locals.js';
import { MAGIC, spanMaximum, spanTables } from './screen-tables.js';
import {
  addTo,
  F64,
  f64Const,
  get,
  i32Const,
  ifThen,
  indexAddress,
  lane,
  op,
  reached,
  set,
  tee,
  V128,
  v128Const,
  v128Store,
  v128Zero,
  whileNot,
} from './wasm-asm.js';
import { type BuiltFunction, FunctionBuilder, moduleBytes, Wasm } from './wasm-module.js';

/** Byte rows per span: one scale, and few enough terms for the i16 sums (128 · 2 · 255 < 65,536). */
export const SPAN_ROWS = 128;
/** Bytes of one thread's tables: 64 per row of a span. */
export const SCREEN_TABLE_BYTES = SPAN_ROWS * 64;
/**
 * The largest |y|: 62 · 256, so that a high byte is in [−62, 62], in [2, 126] once biased by
 * HIGH_BIAS (screen-locals.ts), and a row's two biased high bytes fit a u8.
 */
const Y_MAX = 62 * 256;
/**
 * δ's allowance for float64 rounding, times Σ|V|: a float64 sum of n terms is within about
 * n · 2^−53 · Σ|terms| of the real sum, so this covers any summation order of up to
 * MAX_SCREEN_BITS terms four times over (the exact kernels', the tables', A's).
 */
export const ROUNDING_SLACK = 2 ** -24;
/** The screen serves masks of at most this many bits (ROUNDING_SLACK's premise). */
export const MAX_SCREEN_BITS = 2 ** 27;

/** The one-function module that asks whether this WebAssembly has i8x16.relaxed_swizzle. */
export function relaxedProbeBytes(): Uint8Array {
  const f = new FunctionBuilder('probe_relaxed_swizzle', [V128]);
  const { indices, table } = f.params(V128, ['indices', 'table']);
  const code = [...get(indices), ...get(table), ...op.i8x16RelaxedSwizzle, ...op.end];
  return moduleBytes([{ builder: f, code, exported: false }]);
}

/**
 * Whether this WebAssembly validates i8x16.relaxed_swizzle: Node ≥ 22, or Node 20 with
 * --experimental-wasm-relaxed-simd, which the CLI sets (src/cli/relaxed-simd.ts). Asked each
 * time (the flag may be set after this file is loaded).
 */
export function relaxedSimd(): boolean {
  return Wasm.validate(relaxedProbeBytes());
}

/** Bytes of one thread's scratch for blocks of `blockSize` masks. */
export function screenScratchBytes(blockSize: number): number {
  return SCREEN_TABLE_BYTES + 4 * blockSize;
}

export type ScreenRows = (
  list: number,
  blocks: number,
  rowFrom: number,
  rowTo: number,
  stride: number,
  values: number,
  acc: number,
  accStride: number,
  scratch: number,
) => number;

/**
 * screen_rows (see the top of this file), its lookups by i8x16.relaxed_swizzle where `relaxed`,
 * else i8x16.swizzle. The indices are nibbles (0–15), where both give the same bytes; the relaxed
 * one saves V8 a saturating add and a constant's address per lookup (about 15 % of the screen's
 * time, ADR 0007).
 */
export function screenRows(relaxed: boolean): BuiltFunction {
  const f = new FunctionBuilder('screen_rows', [F64]);
  const l = screenLocals(f);
  const swizzle = relaxed ? op.i8x16RelaxedSwizzle : op.i8x16Swizzle;
  const constants = [
    ...i32Const(15),
    ...op.i8x16Splat,
    ...set(l.nib),
    ...f64Const(0),
    ...set(l.delta),
    ...v128Zero(),
    ...set(l.absV),
    ...f64Const(MAGIC),
    ...op.f64x2Splat,
    ...set(l.magicV),
    ...v128Const(HIGH_LANE_BYTES),
    ...set(l.highLaneMask),
    ...i32Const(0xff),
    ...op.i16x8Splat,
    ...set(l.lowByteMask),
  ];
  // zero the lane sums of the widest block: stride / 16 lanes of 64 bytes
  const zeroLaneSums = [
    ...get(l.scratch),
    ...i32Const(SCREEN_TABLE_BYTES),
    ...op.i32Add,
    ...set(l.lacc),
    ...get(l.lacc),
    ...set(l.ap),
    ...indexAddress(l.laneEnd, l.lacc, l.stride, 2),
    ...whileNot(reached(l.ap, l.laneEnd), [
      ...get(l.ap),
      ...v128Zero(),
      ...v128Store(0),
      ...addTo(l.ap, i32Const(16)),
    ]),
  ];
  // unit = maxAbs / Y_MAX, inv = Y_MAX / maxAbs; δ += (stop − start) · unit
  const spanScale = [
    ...get(l.maxAbs),
    ...f64Const(Y_MAX),
    ...op.f64Div,
    ...set(l.unit),
    ...f64Const(Y_MAX),
    ...get(l.maxAbs),
    ...op.f64Div,
    ...tee(l.inv),
    ...op.f64x2Splat,
    ...set(l.invV),
    ...get(l.delta),
    ...get(l.stop),
    ...get(l.start),
    ...op.i32Sub,
    ...op.f64ConvertI32U,
    ...get(l.unit),
    ...op.f64Mul,
    ...op.f64Add,
    ...set(l.delta),
  ];
  const spans = [
    ...get(l.rowFrom),
    ...set(l.start),
    ...whileNot(reached(l.start, l.rowTo), [
      // stop = min(start + SPAN_ROWS, rowTo)
      ...get(l.start),
      ...i32Const(SPAN_ROWS),
      ...op.i32Add,
      ...tee(l.stop),
      ...get(l.rowTo),
      ...get(l.stop),
      ...get(l.rowTo),
      ...op.i32LtU,
      ...op.select,
      ...set(l.stop),
      ...spanMaximum(l),
      ...get(l.maxAbs),
      ...f64Const(0),
      ...op.f64Gt,
      ...ifThen([...spanScale, ...spanTables(l), ...spanBlocks(l, swizzle)]),
      ...get(l.stop),
      ...set(l.start),
    ]),
  ];
  // δ + ROUNDING_SLACK · Σ|V|
  const bound = [
    ...get(l.delta),
    ...get(l.absV),
    ...lane(op.f64x2ExtractLane, 0),
    ...get(l.absV),
    ...lane(op.f64x2ExtractLane, 1),
    ...op.f64Add,
    ...f64Const(ROUNDING_SLACK),
    ...op.f64Mul,
    ...op.f64Add,
  ];
  return { builder: f, code: [...constants, ...zeroLaneSums, ...spans, ...bound, ...op.end] };
}
