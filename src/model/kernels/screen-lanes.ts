/**
 * Step 3 and 4 of the screen's span (screen-kernel.ts): for every listed block, each lane of 16
 * masks looks up its rows' nibbles in the span's tables (i8x16.swizzle) into u8/i16 sums, which
 * are then turned into Y_m · unit and added to the masks' float64 accumulators.
 */
import { eachListedBlock } from './block-list.js';
import { HIGH_BIAS, type ScreenLocals } from './screen-locals.js';
import {
  addTo,
  get,
  i32Const,
  indexAddress,
  op,
  reached,
  set,
  shuffle,
  tee,
  v128Load,
  v128Store,
  v128Zero,
  whileNot,
} from './wasm-asm.js';

/** One row r of a lane: its 16 mask bytes at mp + 16r, the row's tables at tp + 64r. */
function laneRow(l: ScreenLocals, r: number, swizzle: readonly number[]): number[] {
  const lookUp = (table: number, index: number): number[] => [
    ...get(l.tp),
    ...v128Load(64 * r + table),
    ...get(index),
    ...swizzle,
  ];
  // the u8 vector on the stack into a pair of sums: whole i16 lanes into a, odd bytes into b
  const byteSums = (a: number, b: number): number[] => [
    ...tee(l.l),
    ...get(a),
    ...op.i16x8Add,
    ...set(a),
    ...get(l.l),
    ...i32Const(8),
    ...op.i16x8ShrU,
    ...get(b),
    ...op.i16x8Add,
    ...set(b),
  ];
  return [
    ...get(l.mp),
    ...v128Load(16 * r),
    ...tee(l.vec),
    ...get(l.nib),
    ...op.v128And,
    ...set(l.lo),
    ...get(l.vec),
    ...i32Const(4),
    ...op.i16x8ShrU, // V8's i8x16.shr_u builds its byte mask on every use
    ...get(l.nib),
    ...op.v128And,
    ...set(l.hi),
    ...lookUp(0, l.lo),
    ...lookUp(16, l.hi),
    ...op.i8x16Add,
    ...byteSums(l.ha, l.hb),
    ...lookUp(32, l.lo),
    ...byteSums(l.la, l.lb),
    ...lookUp(48, l.hi),
    ...byteSums(l.la, l.lb),
  ];
}

/**
 * For every lane of the block, its four rows of the quad at p: the lane's sums (ha, hb, la, lb:
 * 64 bytes at lacc + 64·lane) are loaded, added to and stored back.
 */
function quadLanes(l: ScreenLocals, swizzle: readonly number[]): number[] {
  const sums = [l.ha, l.hb, l.la, l.lb];
  return [
    ...get(l.p),
    ...set(l.mp),
    ...eachLane(l, [
      ...sums.flatMap((local, k) => [...get(l.ap), ...v128Load(16 * k), ...set(local)]),
      ...laneRow(l, 0, swizzle),
      ...laneRow(l, 1, swizzle),
      ...laneRow(l, 2, swizzle),
      ...laneRow(l, 3, swizzle),
      ...sums.flatMap((local, k) => [...get(l.ap), ...get(local), ...v128Store(16 * k)]),
      ...addTo(l.mp, i32Const(64)),
    ]),
  ];
}

/** `body` for each lane of the block, ap at its sums: lacc + 64·lane, up to lane_end. */
function eachLane(l: ScreenLocals, body: readonly number[]): number[] {
  return [
    ...get(l.lacc),
    ...set(l.ap),
    ...whileNot(reached(l.ap, l.laneEnd), [...body, ...addTo(l.ap, i32Const(64))]),
  ];
}

const INTERLEAVE_LOW = [0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23];
const INTERLEAVE_HIGH = INTERLEAVE_LOW.map((index) => index + 8);
const UPPER_PAIR = [8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15];

/**
 * Adds each lane's Y_m · unit to its 16 float64 accumulators at fp + 128·lane and zeroes its sums.
 * Y_m = 256·H_m + L_m − 256 · 2·HIGH_BIAS · rows: the pairs (ha, hb) and (la, lb) hold the biased
 * high and the low sums, the even masks' in a − (b << 8), the odd ones' in b (u16).
 */
function flushLanes(l: ScreenLocals): number[] {
  // The pair of sums at ap + offset as u16 in mask order: masks 0–7 into lo, 8–15 into hi.
  const inMaskOrder = (offset: number, lo: number, hi: number): number[] => [
    ...get(l.ap),
    ...v128Load(offset),
    ...get(l.ap),
    ...v128Load(offset + 16),
    ...tee(l.lb),
    ...i32Const(8),
    ...op.i16x8Shl,
    ...op.i16x8Sub,
    ...tee(l.la),
    ...get(l.lb),
    ...shuffle(INTERLEAVE_LOW),
    ...set(lo),
    ...get(l.la),
    ...get(l.lb),
    ...shuffle(INTERLEAVE_HIGH),
    ...set(hi),
  ];
  // Y of masks 4q..4q+3 as i32x4, from the high sums `h` and the low sums `s` (u16, masks in order).
  const quarterY = (h: number, s: number, high: boolean): number[] => {
    const extend = high ? op.i32x4ExtendHighI16x8U : op.i32x4ExtendLowI16x8U;
    return [
      ...get(h),
      ...extend,
      ...i32Const(8),
      ...op.i32x4Shl,
      ...get(s),
      ...extend,
      ...op.i32x4Add,
      ...get(l.biasV),
      ...op.i32x4Sub,
    ];
  };
  const addPair = (offset: number, upper: boolean): number[] => [
    ...get(l.fp),
    ...get(l.fp),
    ...v128Load(offset),
    ...get(l.vec),
    ...(upper ? [...get(l.vec), ...shuffle(UPPER_PAIR)] : []),
    ...op.f64x2ConvertLowI32x4S,
    ...get(l.s),
    ...op.f64x2Mul,
    ...op.f64x2Add,
    ...v128Store(offset),
  ];
  const quarter = (q: number, h: number, s: number, high: boolean): number[] => [
    ...quarterY(h, s, high),
    ...set(l.vec),
    ...addPair(32 * q, false),
    ...addPair(32 * q + 16, true),
  ];
  return [
    ...get(l.unit),
    ...op.f64x2Splat,
    ...set(l.s),
    // the biases of the span's rows: two high bytes per row
    ...get(l.stop),
    ...get(l.start),
    ...op.i32Sub,
    ...i32Const(256 * 2 * HIGH_BIAS),
    ...op.i32Mul,
    ...op.i32x4Splat,
    ...set(l.biasV),
    ...eachLane(l, [
      ...inMaskOrder(0, l.ha, l.hb),
      ...inMaskOrder(32, l.lo, l.hi),
      ...quarter(0, l.ha, l.lo, false),
      ...quarter(1, l.ha, l.lo, true),
      ...quarter(2, l.hb, l.hi, false),
      ...quarter(3, l.hb, l.hi, true),
      ...[0, 16, 32, 48].flatMap((offset) => [...get(l.ap), ...v128Zero(), ...v128Store(offset)]),
      ...addTo(l.fp, i32Const(128)),
    ]),
  ];
}

/** The span's lookups and flush, block by block, with `swizzle` (plain or relaxed). */
export function spanBlocks(l: ScreenLocals, swizzle: readonly number[]): number[] {
  // p = base + start · stride; the lane sums end at lacc + 64 · lanes
  const walk = {
    list: l.list,
    blocks: l.blocks,
    b: l.b,
    entry: l.entry,
    row: l.start,
    stride: l.stride,
    p: l.p,
  };
  return eachListedBlock({ ...walk, lanesFrom: l.lacc, lanesEnd: l.laneEnd }, [
    ...get(l.scratch),
    ...set(l.tp),
    // q_end = p + (stop − start) · stride: the span's quads of this block
    ...get(l.p),
    ...get(l.stop),
    ...get(l.start),
    ...op.i32Sub,
    ...get(l.stride),
    ...op.i32Mul,
    ...op.i32Add,
    ...set(l.qEnd),
    ...whileNot(reached(l.p, l.qEnd), [
      ...quadLanes(l, swizzle),
      ...indexAddress(l.p, l.p, l.stride, 2), // the next quad
      ...addTo(l.tp, i32Const(256)),
    ]),
    ...get(l.acc),
    ...get(l.b),
    ...get(l.accStride),
    ...op.i32Mul,
    ...op.i32Add,
    ...set(l.fp),
    ...flushLanes(l),
  ]);
}
