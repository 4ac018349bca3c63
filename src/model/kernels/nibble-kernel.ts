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
  END,
  functionBody,
  get,
  I32,
  I32_ADD,
  I32_GE_U,
  I32_MUL,
  I32_SHL,
  i32Const,
  indexAddress,
  memarg,
  set,
  simd,
  V128,
  v128Const,
  v128Store,
  whileNot,
} from './wasm-asm.js';

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

/** The function type of nibble_dots: seven i32 parameters, no result. */
export const NIBBLE_DOTS_TYPE = [0x60, 7, ...new Array<number>(7).fill(I32), 0];

const I32_LOAD = 0x28;
const F64_LOAD = 0x2b;
const F64_STORE = 0x39;
const I32_LOAD8_U = 0x2d;
const I32_AND = 0x71;
const I32_SHR_U = 0x76;
const F64_ADD = 0xa0;
const V128_AND = 0x4e;
const F64X2_SPLAT = 0x14;
const F64X2_ADD = 0xf0;

const [LIST, COUNT, ROWS, STRIDE, VALUES, OUT, TABLES] = [0, 1, 2, 3, 4, 5, 6];
const [J, VP, ROW_OFFSET, P, END_P, X, OP] = [7, 8, 9, 10, 11, 12, 13];
const I32_LOCALS = 7;
const [HIGH_LANE_MASK, SPLAT] = [14, 15];
const PAIRS = 16; // 16..23: one nibble's 16 sums as float64 pairs
const V128_LOCALS = 10;

/**
 * The 16 subset sums T[e] = Σ_{bits t of e} v[t] of the four float64 at `vp` + `offset`, into the
 * eight f64x2 locals pairs..pairs+7 (pair k holds T[2k], T[2k+1]), by doubling: pair 0 = (0, v[0]),
 * then pairs [2^t, 2^(t+1)) = pairs [0, 2^t) + v[t + 1]. `highLane` holds the v128 mask that keeps
 * the high float64 lane; `splat` is a scratch v128 local.
 */
export function subsetSumPairs(
  vp: number,
  offset: number,
  pairs: number,
  highLane: number,
  splat: number,
): number[] {
  const splatValue = (k: number): number[] => [
    ...get(vp),
    F64_LOAD,
    ...memarg(3, offset + 8 * k),
    ...simd(F64X2_SPLAT),
  ];
  const code = [...splatValue(0), ...get(highLane), ...simd(V128_AND), ...set(pairs)];
  for (let t = 0; t < 3; t++) {
    code.push(...splatValue(t + 1), ...set(splat));
    for (let k = 0; k < 1 << t; k++) {
      code.push(...get(pairs + k), ...get(splat), ...simd(F64X2_ADD), ...set(pairs + (1 << t) + k));
    }
  }
  return code;
}

/** The v128 constant that keeps the high float64 lane. */
export const HIGH_LANE_BYTES = [...new Array<number>(8).fill(0), ...new Array<number>(8).fill(0xff)];

/** The 16 sums of nibble h of the row at vp, stored at tables + 128h. */
function nibbleTable(h: number): number[] {
  const code = subsetSumPairs(VP, 32 * h, PAIRS, HIGH_LANE_MASK, SPLAT);
  for (let k = 0; k < 8; k++) {
    code.push(...get(TABLES), ...get(PAIRS + k), ...v128Store(128 * h + 16 * k));
  }
  return code;
}

/** out[p] += T_low[x & 15] + T_high[x >> 4] for every listed mask. */
function maskLookups(): number[] {
  const entry = (shifted: number[], offset: number): number[] => [
    ...get(TABLES),
    ...shifted,
    ...i32Const(3),
    I32_SHL,
    I32_ADD,
    F64_LOAD,
    ...memarg(3, offset),
  ];
  return [
    ...get(LIST),
    ...set(P),
    ...get(OUT),
    ...set(OP),
    ...indexAddress(END_P, LIST, COUNT, 2),
    ...whileNot(
      [...get(P), ...get(END_P), I32_GE_U],
      [
        ...get(P),
        I32_LOAD,
        ...memarg(2, 0),
        ...get(ROW_OFFSET),
        I32_ADD,
        I32_LOAD8_U,
        ...memarg(0, 0),
        ...set(X),
        ...get(OP),
        ...get(OP),
        F64_LOAD,
        ...memarg(3, 0),
        ...entry([...get(X), ...i32Const(15), I32_AND], 0),
        ...entry([...get(X), ...i32Const(4), I32_SHR_U], 128),
        F64_ADD,
        F64_ADD,
        F64_STORE,
        ...memarg(3, 0),
        ...addTo(P, i32Const(4)),
        ...addTo(OP, i32Const(8)),
      ],
    ),
  ];
}

/** nibble_dots (see the top of this file). */
export function nibbleDotsBody(): number[] {
  const code = [
    ...v128Const(HIGH_LANE_BYTES),
    ...set(HIGH_LANE_MASK),
    ...i32Const(0),
    ...set(J),
    ...whileNot(
      [...get(J), ...get(ROWS), I32_GE_U],
      [
        ...indexAddress(VP, VALUES, J, 6),
        ...nibbleTable(0),
        ...nibbleTable(1),
        // row offset: ⌊j/4⌋·4·stride + (j mod 4)·16
        ...get(J),
        ...i32Const(-4),
        I32_AND,
        ...get(STRIDE),
        I32_MUL,
        ...get(J),
        ...i32Const(3),
        I32_AND,
        ...i32Const(4),
        I32_SHL,
        I32_ADD,
        ...set(ROW_OFFSET),
        ...maskLookups(),
        ...addTo(J, i32Const(1)),
      ],
    ),
    END,
  ];
  return functionBody(
    [
      [I32_LOCALS, I32],
      [V128_LOCALS, V128],
    ],
    code,
  );
}
