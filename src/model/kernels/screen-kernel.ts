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

import { eachListedBlock } from './block-list.js';
import { HIGH_LANE_BYTES, subsetSumPairs } from './nibble-kernel.js';
import {
  addTo,
  END,
  F64,
  f64Const,
  functionBody,
  get,
  I32,
  I32_ADD,
  I32_GE_U,
  I32_MUL,
  i32Const,
  indexAddress,
  MAGIC_AND_VERSION,
  section,
  set,
  simd,
  tee,
  V128,
  v128Const,
  v128Load,
  v128Store,
  Wasm,
  whileNot,
} from './wasm-asm.js';

/** Byte rows per span: one scale, and few enough terms for the i16 sums (128 · 2 · 255 < 65,536). */
export const SPAN_ROWS = 128;
/** Bytes of one thread's tables: 64 per row of a span. */
export const SCREEN_TABLE_BYTES = SPAN_ROWS * 64;
/**
 * The largest |y|: 62 · 256, so that a high byte is in [−62, 62], in [2, 126] once biased by
 * HIGH_BIAS, and a row's two biased high bytes fit a u8.
 */
const Y_MAX = 62 * 256;
/**
 * Added to every high byte, so that it is in [2, 126] and a row's two add in u8 (≤ 252): they are
 * then summed like the low bytes, without widening.
 */
const HIGH_BIAS = 64;
const HIGH_BIAS_WORDS = Array.from({ length: 16 }, (_, k) => (k % 2 === 0 ? HIGH_BIAS : 0));
/**
 * δ's allowance for float64 rounding, times Σ|V|: a float64 sum of n terms is within about
 * n · 2^−53 · Σ|terms| of the real sum, so this covers any summation order of up to
 * MAX_SCREEN_BITS terms four times over (the exact kernels', the tables', A's).
 */
export const ROUNDING_SLACK = 2 ** -24;
/** The screen serves masks of at most this many bits (ROUNDING_SLACK's premise). */
export const MAX_SCREEN_BITS = 2 ** 27;

/** Whether this WebAssembly validates i8x16.relaxed_swizzle (a one-function module). */
export function relaxedSimd(): boolean {
  const type = [0x60, 2, V128, V128, 1, V128];
  const body = [0, ...get(0), ...get(1), ...simd(0x100), END];
  return Wasm.validate(
    Uint8Array.from([
      ...MAGIC_AND_VERSION,
      ...section(1, [1, ...type]),
      ...section(3, [1, 0]),
      ...section(10, [1, body.length, ...body]),
    ]),
  );
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

const I32_LT_U = 0x49;
const I32_SUB = 0x6b;
const SELECT = 0x1b;
const F64_GT = 0x64;
const F64_ADD = 0xa0;
const F64_MUL = 0xa2;
const F64_DIV = 0xa3;
const F64_MAX = 0xa5;
const F64_CONVERT_I32_U = 0xb8;
const IF = 0x04;

const I8X16_SHUFFLE = 0x0d;
/**
 * i8x16.relaxed_swizzle where this WebAssembly has relaxed SIMD (Node ≥ 22, or Node 20 with
 * --experimental-wasm-relaxed-simd, which the CLI sets: src/cli/relaxed-simd.ts), else
 * i8x16.swizzle. The indices are nibbles (0–15), where both give the same bytes; the relaxed one
 * saves V8 a saturating add and a constant's address per lookup (about 15 % of the screen's time,
 * ADR 0007). Asked when a kernel module is built, not when this file is loaded.
 */
function swizzleOpcode(): number {
  return relaxedSimd() ? 0x100 : 0x0e;
}
const I8X16_SPLAT = 0x0f;
const F64X2_SPLAT = 0x14;
const V128_AND = 0x4e;
const I8X16_ADD = 0x6e;
const I16X8_SHL = 0x8b;
const I16X8_SHR_U = 0x8d;
const I16X8_ADD = 0x8e;
const I16X8_SUB = 0x91;
const I32X4_EXTEND_LOW_I16X8_U = 0xa9;
const I32X4_EXTEND_HIGH_I16X8_U = 0xaa;
const I32X4_SHL = 0xab;
const I32X4_ADD = 0xae;
const I16X8_SPLAT = 0x10;
const I32X4_SPLAT = 0x11;
const I32X4_SUB = 0xb1;
const F64X2_EXTRACT_LANE = 0x21;
const I8X16_NARROW_I16X8_S = 0x65;
const I8X16_NARROW_I16X8_U = 0x66;
const I16X8_NARROW_I32X4_S = 0x85;
const I16X8_SHR_S = 0x8c;
const F64X2_ABS = 0xec;
const F64X2_ADD = 0xf0;
const F64X2_SUB = 0xf1;
const F64X2_MUL = 0xf2;
const F64X2_MIN = 0xf4;
const F64X2_MAX = 0xf5;
const F64X2_CONVERT_LOW_I32X4_S = 0xfe;

const v128Zero = (): number[] => v128Const(new Array<number>(16).fill(0));
const shuffle = (lanes: readonly number[]): number[] => [...simd(I8X16_SHUFFLE), ...lanes];

// Locals after the nine i32 parameters.
const [LIST, BLOCKS, ROW_FROM, ROW_TO, STRIDE, VALUES, ACC, ACC_STRIDE, SCRATCH] = [
  0, 1, 2, 3, 4, 5, 6, 7, 8,
];
const [START, STOP, VP, I, B, ENTRY, P, AP, TP, Q_END, MP, LANE_END, FP, LACC] = [
  9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
];
const I32_LOCALS = 14;
const [MAX_ABS, UNIT, INV, DELTA] = [23, 24, 25, 26];
const F64_LOCALS = 4;
const [NIB, VEC, LO, HI, S, HA, HB, LA, LB, L] = [27, 28, 29, 30, 31, 32, 33, 34, 35, 36];
const [W0, W1, W2, W3, W4, POSV, NEGV, MAXV, ABSV, INVV, MAGICV, HIGH_LANE_MASK, LOW_BYTE_MASK] = [
  37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49,
];
const T_PAIRS = 50; // 50..57: the 16 subset sums of a nibble, as float64 pairs
const BIASV = 58;
const V128_LOCALS = 32;

/** Lanes of two f64x2 operands: the first lanes of both, the second lanes of both, the low words. */
const LOW_LANES = [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23];
const HIGH_LANES = LOW_LANES.map((lane) => lane + 8);
const LOW_WORDS = [0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27];
/** 1.5 · 2^52: x + MAGIC rounds |x| < 2^51 to an integer held in the low 32 bits. */
const MAGIC = 1.5 * 2 ** 52;

/**
 * Pass 1 over the span's rows: max |T| into maxAbs (over both signs of every nibble) and Σ|V| into
 * absV (two lanes, kept over all spans). A row is four float64 pairs: nibble 0 is (w0, w1), nibble
 * 1 is (w2, w3). Without branches (the signs are random); a NaN spreads into both.
 */
function spanMaximum(): number[] {
  const pairSums = (op: number, out: number): number[] => [
    // [Σ of nibble 0, Σ of nibble 1] of op(w, 0): the pairs' lanes added across
    ...[W0, W1, W2, W3].flatMap((w) => [...get(w), ...v128Zero(), ...simd(op)]),
    ...simd(F64X2_ADD), // (w2, w3)
    ...set(out),
    ...simd(F64X2_ADD), // (w0, w1)
    ...tee(W4),
    ...get(out),
    ...shuffle(LOW_LANES),
    ...get(W4),
    ...get(out),
    ...shuffle(HIGH_LANES),
    ...simd(F64X2_ADD),
    ...set(out),
  ];
  return [
    ...v128Zero(),
    ...set(MAXV),
    ...eachSpanRow([
      ...[W0, W1, W2, W3].flatMap((w, k) => [...get(VP), ...v128Load(16 * k), ...set(w)]),
      ...get(ABSV),
      ...[W0, W1, W2, W3].flatMap((w) => [...get(w), ...simd(F64X2_ABS), ...simd(F64X2_ADD)]),
      ...set(ABSV),
      ...pairSums(F64X2_MAX, POSV),
      ...pairSums(F64X2_MIN, NEGV),
      ...get(MAXV),
      ...get(POSV),
      ...simd(F64X2_MAX),
      ...v128Zero(),
      ...get(NEGV),
      ...simd(F64X2_SUB),
      ...simd(F64X2_MAX),
      ...set(MAXV),
    ]),
    ...get(MAXV),
    ...simd(F64X2_EXTRACT_LANE),
    0,
    ...get(MAXV),
    ...simd(F64X2_EXTRACT_LANE),
    1,
    F64_MAX,
    ...set(MAX_ABS),
  ];
}

/**
 * The tables of nibble h of the row at vp, at tp: high bytes at 16h, low bytes at 32 + 16h. The 16
 * subset sums are eight float64 pairs built by doubling; y = T·inv is rounded to an integer by
 * adding 1.5·2^52 (round to nearest even, as f64.nearest), whose low 32 bits are then y.
 */
function nibbleTables(h: number): number[] {
  const pairs = Array.from({ length: 8 }, (_, k) => T_PAIRS + k);
  const code = subsetSumPairs(VP, 32 * h, T_PAIRS, HIGH_LANE_MASK, W0);
  // y rounded; the low words of pairs (2j, 2j + 1) are entries 4j..4j+3 of an i32x4
  for (const k of pairs)
    code.push(...get(k), ...get(INVV), ...simd(F64X2_MUL), ...get(MAGICV), ...simd(F64X2_ADD), ...set(k));
  const words = (j: number): number[] => [
    ...get(pairs[2 * j] as number),
    ...get(pairs[2 * j + 1] as number),
    ...shuffle(LOW_WORDS),
  ];
  code.push(...words(0), ...words(1), ...simd(I16X8_NARROW_I32X4_S), ...set(W0)); // entries 0–7
  code.push(...words(2), ...words(3), ...simd(I16X8_NARROW_I32X4_S), ...set(W1)); // entries 8–15
  const highBytes = (w: number): number[] => [
    ...get(w),
    ...i32Const(8),
    ...simd(I16X8_SHR_S),
    ...v128Const(HIGH_BIAS_WORDS),
    ...simd(I16X8_ADD),
  ];
  const lowBytes = (w: number): number[] => [...get(w), ...get(LOW_BYTE_MASK), ...simd(V128_AND)];
  code.push(
    ...get(TP),
    ...highBytes(W0),
    ...highBytes(W1),
    ...simd(I8X16_NARROW_I16X8_S),
    ...v128Store(16 * h),
  );
  code.push(
    ...get(TP),
    ...lowBytes(W0),
    ...lowBytes(W1),
    ...simd(I8X16_NARROW_I16X8_U),
    ...v128Store(32 + 16 * h),
  );
  return code;
}

/** Pass 2: the span's tables at scratch, 64 bytes per row. */
function spanTables(): number[] {
  return [
    ...get(SCRATCH),
    ...set(TP),
    ...eachSpanRow([...nibbleTables(0), ...nibbleTables(1), ...addTo(TP, i32Const(64))]),
  ];
}

/** `body` for each byte row i of the span [start, stop), vp at the row's eight float64 values. */
function eachSpanRow(body: readonly number[]): number[] {
  return [
    ...get(START),
    ...set(I),
    ...whileNot(
      [...get(I), ...get(STOP), I32_GE_U],
      [...indexAddress(VP, VALUES, I, 6), ...body, ...addTo(I, i32Const(1))],
    ),
  ];
}

/** One row r of a lane: its 16 mask bytes at mp + 16r, the row's tables at tp + 64r. */
function laneRow(r: number, swizzle: number): number[] {
  const lookUp = (table: number, index: number): number[] => [
    ...get(TP),
    ...v128Load(64 * r + table),
    ...get(index),
    ...simd(swizzle),
  ];
  // the u8 vector on the stack into a pair of sums: whole i16 lanes into a, odd bytes into b
  const byteSums = (a: number, b: number): number[] => [
    ...tee(L),
    ...get(a),
    ...simd(I16X8_ADD),
    ...set(a),
    ...get(L),
    ...i32Const(8),
    ...simd(I16X8_SHR_U),
    ...get(b),
    ...simd(I16X8_ADD),
    ...set(b),
  ];
  return [
    ...get(MP),
    ...v128Load(16 * r),
    ...tee(VEC),
    ...get(NIB),
    ...simd(V128_AND),
    ...set(LO),
    ...get(VEC),
    ...i32Const(4),
    ...simd(I16X8_SHR_U), // V8's i8x16.shr_u builds its byte mask on every use
    ...get(NIB),
    ...simd(V128_AND),
    ...set(HI),
    ...lookUp(0, LO),
    ...lookUp(16, HI),
    ...simd(I8X16_ADD),
    ...byteSums(HA, HB),
    ...lookUp(32, LO),
    ...byteSums(LA, LB),
    ...lookUp(48, HI),
    ...byteSums(LA, LB),
  ];
}

/**
 * For every lane of the block, its four rows of the quad at p: the lane's sums (ha, hb, la, lb:
 * 64 bytes at lacc + 64·lane) are loaded, added to and stored back.
 */
function quadLanes(swizzle: number): number[] {
  return [
    ...get(P),
    ...set(MP),
    ...eachLane([
      ...loadLaneSums([HA, HB, LA, LB]),
      ...laneRow(0, swizzle),
      ...laneRow(1, swizzle),
      ...laneRow(2, swizzle),
      ...laneRow(3, swizzle),
      ...[HA, HB, LA, LB].flatMap((local, k) => [...get(AP), ...get(local), ...v128Store(16 * k)]),
      ...addTo(MP, i32Const(64)),
    ]),
  ];
}

/** `body` for each lane of the block, ap at its sums: lacc + 64·lane, up to lane_end. */
function eachLane(body: readonly number[]): number[] {
  return [
    ...get(LACC),
    ...set(AP),
    ...whileNot([...get(AP), ...get(LANE_END), I32_GE_U], [...body, ...addTo(AP, i32Const(64))]),
  ];
}

/** The lane's first sums (16 bytes each, from ap) into the given locals. */
function loadLaneSums(locals: readonly number[]): number[] {
  return locals.flatMap((local, k) => [...get(AP), ...v128Load(16 * k), ...set(local)]);
}

/**
 * Adds each lane's Y_m · unit to its 16 float64 accumulators at fp + 128·lane and zeroes its sums.
 * Y_m = 256·H_m + L_m − 256 · 2·HIGH_BIAS · rows: the pairs (ha, hb) and (la, lb) hold the biased
 * high and the low sums, the even masks' in a − (b << 8), the odd ones' in b (u16).
 */
function flushLanes(): number[] {
  const interleaveLow = [0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23];
  const interleaveHigh = interleaveLow.map((lane) => lane + 8);
  const upperPair = [8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15];
  // The pair of sums at ap + offset as u16 in mask order: masks 0–7 into lo, 8–15 into hi.
  const inMaskOrder = (offset: number, lo: number, hi: number): number[] => [
    ...get(AP),
    ...v128Load(offset),
    ...get(AP),
    ...v128Load(offset + 16),
    ...tee(LB),
    ...i32Const(8),
    ...simd(I16X8_SHL),
    ...simd(I16X8_SUB),
    ...tee(LA),
    ...get(LB),
    ...shuffle(interleaveLow),
    ...set(lo),
    ...get(LA),
    ...get(LB),
    ...shuffle(interleaveHigh),
    ...set(hi),
  ];
  // Y of masks 4q..4q+3 as i32x4, from the high sums `h` and the low sums `l` (u16, masks in order).
  const quarterY = (h: number, l: number, high: boolean): number[] => [
    ...get(h),
    ...simd(high ? I32X4_EXTEND_HIGH_I16X8_U : I32X4_EXTEND_LOW_I16X8_U),
    ...i32Const(8),
    ...simd(I32X4_SHL),
    ...get(l),
    ...simd(high ? I32X4_EXTEND_HIGH_I16X8_U : I32X4_EXTEND_LOW_I16X8_U),
    ...simd(I32X4_ADD),
    ...get(BIASV),
    ...simd(I32X4_SUB),
  ];
  const addPair = (offset: number, upper: boolean): number[] => [
    ...get(FP),
    ...get(FP),
    ...v128Load(offset),
    ...get(VEC),
    ...(upper ? [...get(VEC), ...shuffle(upperPair)] : []),
    ...simd(F64X2_CONVERT_LOW_I32X4_S),
    ...get(S),
    ...simd(F64X2_MUL),
    ...simd(F64X2_ADD),
    ...v128Store(offset),
  ];
  const quarter = (q: number, h: number, l: number, high: boolean): number[] => [
    ...quarterY(h, l, high),
    ...set(VEC),
    ...addPair(32 * q, false),
    ...addPair(32 * q + 16, true),
  ];
  return [
    ...get(UNIT),
    ...simd(F64X2_SPLAT),
    ...set(S),
    // the biases of the span's rows: two high bytes per row
    ...get(STOP),
    ...get(START),
    I32_SUB,
    ...i32Const(256 * 2 * HIGH_BIAS),
    I32_MUL,
    ...simd(I32X4_SPLAT),
    ...set(BIASV),
    ...eachLane([
      ...inMaskOrder(0, HA, HB),
      ...inMaskOrder(32, LO, HI),
      ...quarter(0, HA, LO, false),
      ...quarter(1, HA, LO, true),
      ...quarter(2, HB, HI, false),
      ...quarter(3, HB, HI, true),
      ...[0, 16, 32, 48].flatMap((offset) => [...get(AP), ...v128Zero(), ...v128Store(offset)]),
      ...addTo(FP, i32Const(128)),
    ]),
  ];
}

/** The span's lookups and flush, block by block. */
function spanBlocks(swizzle: number): number[] {
  // p = base + start · stride; the lane sums end at lacc + 64 · lanes
  const locals = { list: LIST, blocks: BLOCKS, b: B, entry: ENTRY, row: START, stride: STRIDE, p: P };
  return eachListedBlock({ ...locals, lanesFrom: LACC, lanesEnd: LANE_END }, [
    ...get(SCRATCH),
    ...set(TP),
    // q_end = p + (stop − start) · stride: the span's quads of this block
    ...get(P),
    ...get(STOP),
    ...get(START),
    I32_SUB,
    ...get(STRIDE),
    I32_MUL,
    I32_ADD,
    ...set(Q_END),
    ...whileNot(
      [...get(P), ...get(Q_END), I32_GE_U],
      [
        ...quadLanes(swizzle),
        ...indexAddress(P, P, STRIDE, 2), // the next quad
        ...addTo(TP, i32Const(256)),
      ],
    ),
    ...get(ACC),
    ...get(B),
    ...get(ACC_STRIDE),
    I32_MUL,
    I32_ADD,
    ...set(FP),
    ...flushLanes(),
  ]);
}

/** screen_rows (see the top of this file). */
export function screenRowsBody(): number[] {
  const swizzle = swizzleOpcode();
  const code = [
    ...i32Const(15),
    ...simd(I8X16_SPLAT),
    ...set(NIB),
    ...f64Const(0),
    ...set(DELTA),
    ...v128Zero(),
    ...set(ABSV),
    ...f64Const(MAGIC),
    ...simd(F64X2_SPLAT),
    ...set(MAGICV),
    ...v128Const(HIGH_LANE_BYTES),
    ...set(HIGH_LANE_MASK),
    ...i32Const(0xff),
    ...simd(I16X8_SPLAT),
    ...set(LOW_BYTE_MASK),
    ...get(SCRATCH),
    ...i32Const(SCREEN_TABLE_BYTES),
    I32_ADD,
    ...set(LACC),
    // zero the lane sums of the widest block: stride / 16 lanes of 64 bytes
    ...get(LACC),
    ...set(AP),
    ...indexAddress(LANE_END, LACC, STRIDE, 2),
    ...whileNot(
      [...get(AP), ...get(LANE_END), I32_GE_U],
      [...get(AP), ...v128Zero(), ...v128Store(0), ...addTo(AP, i32Const(16))],
    ),
    ...get(ROW_FROM),
    ...set(START),
    ...whileNot(
      [...get(START), ...get(ROW_TO), I32_GE_U],
      [
        // stop = min(start + SPAN_ROWS, rowTo)
        ...get(START),
        ...i32Const(SPAN_ROWS),
        I32_ADD,
        ...tee(STOP),
        ...get(ROW_TO),
        ...get(STOP),
        ...get(ROW_TO),
        I32_LT_U,
        SELECT,
        ...set(STOP),
        ...spanMaximum(),
        ...get(MAX_ABS),
        ...f64Const(0),
        F64_GT,
        IF,
        0x40,
        ...get(MAX_ABS),
        ...f64Const(Y_MAX),
        F64_DIV,
        ...set(UNIT),
        ...f64Const(Y_MAX),
        ...get(MAX_ABS),
        F64_DIV,
        ...tee(INV),
        ...simd(F64X2_SPLAT),
        ...set(INVV),
        ...get(DELTA),
        ...get(STOP),
        ...get(START),
        I32_SUB,
        F64_CONVERT_I32_U,
        ...get(UNIT),
        F64_MUL,
        F64_ADD,
        ...set(DELTA),
        ...spanTables(),
        ...spanBlocks(swizzle),
        END,
        ...get(STOP),
        ...set(START),
      ],
    ),
    ...get(DELTA),
    ...get(ABSV),
    ...simd(F64X2_EXTRACT_LANE),
    0,
    ...get(ABSV),
    ...simd(F64X2_EXTRACT_LANE),
    1,
    F64_ADD,
    ...f64Const(ROUNDING_SLACK),
    F64_MUL,
    F64_ADD,
    END,
  ];
  return functionBody(
    [
      [I32_LOCALS, I32],
      [F64_LOCALS, F64],
      [V128_LOCALS, V128],
    ],
    code,
  );
}

/** The function type of screen_rows: nine i32 parameters, one f64 result. */
export const SCREEN_ROWS_TYPE = [0x60, 9, ...new Array<number>(9).fill(I32), 1, F64];
