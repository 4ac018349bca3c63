/**
 * The exact kernel for a few masks (dotSubset below a few masks, and re-scoring the screen's
 * candidates, ADR 0007) in WebAssembly:
 *
 * nibble_dots(list, count, rows, stride, values, out, tables): for each byte row j, the 16 subset
 * sums of its low and of its high four values (float64, by doubling: T[e] = T[e − 2^t] + V[t] for
 * the top bit t of e, two entries per f64x2) are written at `tables` (128 bytes each), then for
 * each of the `count` masks, out[p] += T_low[x & 15] + T_high[x >> 4], x being the mask's byte j.
 * list[p] is the address of mask p's byte 0 in its block; its byte j is at
 * list[p] + ⌊j/4⌋·4·stride + (j mod 4)·16 (mask-bank.ts's layout). out holds `count` float64,
 * zeroed by the caller. Per row about 20 SIMD operations, then a byte load, two table loads and
 * two additions per mask.
 */
import {
  addTo,
  get,
  I32,
  i32Const,
  indexAddress,
  memarg,
  op,
  reached,
  set,
  V128,
  v128Const,
  v128Store,
  whileNot,
} from './wasm-asm.js';
import { type BuiltFunction, FunctionBuilder } from './wasm-module.js';

export type NibbleDots = (
  list: number,
  count: number,
  rows: number,
  stride: number,
  values: number,
  out: number,
  tables: number,
) => void;

/** Bytes of the kernel's tables: two nibbles, 16 float64 each. */
export const NIBBLE_TABLE_BYTES = 256;

/**
 * The 16 subset sums T[e] = Σ_{bits t of e} v[t] of the four float64 at `vp` + `offset`, into the
 * eight f64x2 locals `pairs` (pair k holds T[2k], T[2k+1]), by doubling: pair 0 = (0, v[0]), then
 * pairs [2^t, 2^(t+1)) = pairs [0, 2^t) + v[t + 1]. `highLane` holds the v128 mask that keeps the
 * high float64 lane; `splat` is a scratch v128 local.
 */
export function subsetSumPairs(
  vp: number,
  offset: number,
  pairs: readonly number[],
  highLane: number,
  splat: number,
): number[] {
  if (pairs.length !== 8) throw new RangeError('the 16 subset sums take eight pairs');
  const pair = (k: number): number => pairs[k] as number;
  const splatValue = (k: number): number[] => [
    ...get(vp),
    ...op.f64Load,
    ...memarg(3, offset + 8 * k),
    ...op.f64x2Splat,
  ];
  const code = [...splatValue(0), ...get(highLane), ...op.v128And, ...set(pair(0))];
  for (let t = 0; t < 3; t++) {
    code.push(...splatValue(t + 1), ...set(splat));
    for (let k = 0; k < 1 << t; k++) {
      code.push(...get(pair(k)), ...get(splat), ...op.f64x2Add, ...set(pair((1 << t) + k)));
    }
  }
  return code;
}

/** The v128 constant that keeps the high float64 lane. */
export const HIGH_LANE_BYTES = [...new Array<number>(8).fill(0), ...new Array<number>(8).fill(0xff)];

/** nibble_dots's parameters and locals. */
interface NibbleLocals {
  readonly list: number;
  readonly count: number;
  readonly rows: number;
  readonly stride: number;
  readonly values: number;
  readonly out: number;
  readonly tables: number;
  readonly j: number;
  readonly vp: number;
  readonly rowOffset: number;
  readonly p: number;
  readonly endP: number;
  readonly x: number;
  readonly outP: number;
  readonly highLaneMask: number;
  readonly splat: number;
  /** One nibble's 16 sums as float64 pairs. */
  readonly pairs: readonly number[];
}

function nibbleLocals(f: FunctionBuilder): NibbleLocals {
  const params = f.params(I32, ['list', 'count', 'rows', 'stride', 'values', 'out', 'tables']);
  const i32s = f.locals(I32, ['j', 'vp', 'rowOffset', 'p', 'endP', 'x', 'outP']);
  const v128s = f.locals(V128, ['highLaneMask', 'splat']);
  return { ...params, ...i32s, ...v128s, pairs: f.localRun(V128, 'pair', 8) };
}

/** The 16 sums of nibble h of the row at vp, stored at tables + 128h. */
function nibbleTable(l: NibbleLocals, h: number): number[] {
  const code = subsetSumPairs(l.vp, 32 * h, l.pairs, l.highLaneMask, l.splat);
  l.pairs.forEach((pair, k) => {
    code.push(...get(l.tables), ...get(pair), ...v128Store(128 * h + 16 * k));
  });
  return code;
}

/** out[p] += T_low[x & 15] + T_high[x >> 4] for every listed mask. */
function maskLookups(l: NibbleLocals): number[] {
  const entry = (shifted: number[], offset: number): number[] => [
    ...get(l.tables),
    ...shifted,
    ...i32Const(3),
    ...op.i32Shl,
    ...op.i32Add,
    ...op.f64Load,
    ...memarg(3, offset),
  ];
  return [
    ...get(l.list),
    ...set(l.p),
    ...get(l.out),
    ...set(l.outP),
    ...indexAddress(l.endP, l.list, l.count, 2),
    ...whileNot(reached(l.p, l.endP), [
      ...get(l.p),
      ...op.i32Load,
      ...memarg(2, 0),
      ...get(l.rowOffset),
      ...op.i32Add,
      ...op.i32Load8U,
      ...memarg(0, 0),
      ...set(l.x),
      ...get(l.outP),
      ...get(l.outP),
      ...op.f64Load,
      ...memarg(3, 0),
      ...entry([...get(l.x), ...i32Const(15), ...op.i32And], 0),
      ...entry([...get(l.x), ...i32Const(4), ...op.i32ShrU], 128),
      ...op.f64Add,
      ...op.f64Add,
      ...op.f64Store,
      ...memarg(3, 0),
      ...addTo(l.p, i32Const(4)),
      ...addTo(l.outP, i32Const(8)),
    ]),
  ];
}

/** nibble_dots (see the top of this file). */
export function nibbleDots(): BuiltFunction {
  const f = new FunctionBuilder('nibble_dots');
  const l = nibbleLocals(f);
  const code = [
    ...v128Const(HIGH_LANE_BYTES),
    ...set(l.highLaneMask),
    ...i32Const(0),
    ...set(l.j),
    ...whileNot(reached(l.j, l.rows), [
      ...indexAddress(l.vp, l.values, l.j, 6),
      ...nibbleTable(l, 0),
      ...nibbleTable(l, 1),
      // row offset: ⌊j/4⌋·4·stride + (j mod 4)·16
      ...get(l.j),
      ...i32Const(-4),
      ...op.i32And,
      ...get(l.stride),
      ...op.i32Mul,
      ...get(l.j),
      ...i32Const(3),
      ...op.i32And,
      ...i32Const(4),
      ...op.i32Shl,
      ...op.i32Add,
      ...set(l.rowOffset),
      ...maskLookups(l),
      ...addTo(l.j, i32Const(1)),
    ]),
    ...op.end,
  ];
  return { builder: f, code };
}
