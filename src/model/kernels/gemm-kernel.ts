/**
 * A float32 matrix product with optional ReLU in WebAssembly SIMD, assembled here from its
 * instruction listing (as src/model/kernels/simd-kernels.ts): C = max(A·B, floor) for A [rows × k],
 * B [k × n], C [rows × n], all row-major float32 at byte offsets of one memory, rows a multiple of
 * 4 and n a multiple of 8. `floor` is 0 for ReLU and −∞ for a plain product.
 *
 * Each output is Σ_k A[r,k]·B[k,j] summed in k order with one float32 multiply and one float32 add
 * per term (no fused multiply-add, no reassociation), so a result depends only on its row and
 * column, never on how rows are split over threads or how the loops are tiled.
 *
 * Tiling: 8 columns (two vectors) of B at a time, outer, so that strip (k × 32 bytes) stays in the
 * first-level cache while every 4-row block of A passes over it; eight accumulators per 4×8 tile.
 */

import {
  addTo,
  compiledOnce,
  END,
  F32,
  functionBody,
  get,
  I32,
  I32_ADD,
  I32_GE_U,
  I32_MUL,
  i32Const,
  MAGIC_AND_VERSION,
  memarg,
  name,
  section,
  set,
  sharedMemoryImport,
  simd,
  tee,
  V128,
  v128Load,
  v128Store,
  vec,
  WASM32_MAX_PAGES,
  Wasm,
  type WasmMemory,
  whileNot,
} from './wasm-asm.js';

const V128_LOAD32_SPLAT = 0x09;
const F32X4_SPLAT = 0x13;
const F32X4_ADD = 0xe4;
const F32X4_MUL = 0xe6;
const F32X4_PMAX = 0xeb;

function gemm(): number[] {
  // Params: a b c rows k n (i32), floor (f32).
  const [a, b, c, rows, k, n, floor] = [0, 1, 2, 3, 4, 5, 6];
  // i32 locals
  const [rowA, rowC, col, r, pa0, pa1, pa2, pa3, pb, end, pc] = [7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17];
  // v128 locals: 8 accumulators, two B vectors, the floor, the splat of A.
  const acc = [18, 19, 20, 21, 22, 23, 24, 25];
  const [b0, b1, vfloor, s] = [26, 27, 28, 29];
  const zero = [...simd(0x0c), ...new Array<number>(16).fill(0)];
  const term = (pa: number, i: number): number[] => {
    const [lo, hi] = [acc[2 * i] as number, acc[2 * i + 1] as number];
    return [
      // s = splat(A[r+i,k]); lo += s·b0; hi += s·b1
      ...get(pa),
      ...simd(V128_LOAD32_SPLAT),
      ...memarg(2, 0),
      ...set(s),
      ...get(lo),
      ...get(s),
      ...get(b0),
      ...simd(F32X4_MUL),
      ...simd(F32X4_ADD),
      ...set(lo),
      ...get(hi),
      ...get(s),
      ...get(b1),
      ...simd(F32X4_MUL),
      ...simd(F32X4_ADD),
      ...set(hi),
    ];
  };
  const storeRow = (i: number): number[] => {
    const [lo, hi] = [acc[2 * i] as number, acc[2 * i + 1] as number];
    const at = [...get(pc), ...get(rowC), ...i32Const(i), I32_MUL, I32_ADD];
    return [
      ...at,
      ...get(lo),
      ...get(vfloor),
      ...simd(F32X4_PMAX),
      ...v128Store(0),
      ...at,
      ...get(hi),
      ...get(vfloor),
      ...simd(F32X4_PMAX),
      ...v128Store(16),
    ];
  };
  const code = [
    ...get(floor),
    ...simd(F32X4_SPLAT),
    ...set(vfloor),
    ...get(k),
    ...i32Const(4),
    I32_MUL,
    ...set(rowA),
    ...get(n),
    ...i32Const(4),
    I32_MUL,
    ...set(rowC),
    ...i32Const(0),
    ...set(col),
    // for col in 0, 32, … < rowC (bytes)
    ...whileNot(
      [...get(col), ...get(rowC), I32_GE_U],
      [
        ...i32Const(0),
        ...set(r),
        // for r in 0, 4, … < rows
        ...whileNot(
          [...get(r), ...get(rows), I32_GE_U],
          [
            ...acc.flatMap((v) => [...zero, ...set(v)]),
            // pa0 = a + r·rowA; pa1..3 the next rows; pb = b + col; end = pa0 + rowA
            ...get(a),
            ...get(r),
            ...get(rowA),
            I32_MUL,
            I32_ADD,
            ...tee(pa0),
            ...get(rowA),
            I32_ADD,
            ...tee(pa1),
            ...get(rowA),
            I32_ADD,
            ...tee(pa2),
            ...get(rowA),
            I32_ADD,
            ...set(pa3),
            ...get(pa0),
            ...get(rowA),
            I32_ADD,
            ...set(end),
            ...get(b),
            ...get(col),
            I32_ADD,
            ...set(pb),
            ...whileNot(
              [...get(pa0), ...get(end), I32_GE_U],
              [
                ...get(pb),
                ...v128Load(0),
                ...set(b0),
                ...get(pb),
                ...v128Load(16),
                ...set(b1),
                ...term(pa0, 0),
                ...term(pa1, 1),
                ...term(pa2, 2),
                ...term(pa3, 3),
                ...[pa0, pa1, pa2, pa3].flatMap((p) => addTo(p, i32Const(4))),
                ...addTo(pb, get(rowC)),
              ],
            ),
            // pc = c + r·rowC + col
            ...get(c),
            ...get(r),
            ...get(rowC),
            I32_MUL,
            I32_ADD,
            ...get(col),
            I32_ADD,
            ...set(pc),
            ...storeRow(0),
            ...storeRow(1),
            ...storeRow(2),
            ...storeRow(3),
            ...addTo(r, i32Const(4)),
          ],
        ),
        ...addTo(col, i32Const(32)),
      ],
    ),
    END,
  ];
  return functionBody(
    [
      [11, I32],
      [12, V128],
    ],
    code,
  );
}

function moduleBytes(): Uint8Array {
  const type = [0x60, ...vec([[I32], [I32], [I32], [I32], [I32], [I32], [F32]]), 0];
  return Uint8Array.from([
    ...MAGIC_AND_VERSION,
    ...section(1, vec([type])),
    ...section(2, vec([sharedMemoryImport(WASM32_MAX_PAGES)])),
    ...section(3, vec([[0]])),
    ...section(7, vec([[...name('gemm'), 0x00, 0x00]])),
    ...section(10, vec([gemm()])),
  ]);
}

export type Gemm = (
  a: number,
  b: number,
  c: number,
  rows: number,
  k: number,
  n: number,
  floor: number,
) => void;

/** The compiled module, or null where WebAssembly SIMD or shared memory is unavailable. */
export const gemmModule = compiledOnce(moduleBytes);

/** The kernel bound to a shared memory (maximum WASM32_MAX_PAGES pages). */
export function gemmKernel(memory: WasmMemory): Gemm {
  const module = gemmModule();
  if (module === null) throw new Error('WebAssembly SIMD is unavailable');
  return new Wasm.Instance(module, { env: { memory } }).exports.gemm as Gemm;
}

/** One layer of a forward job: byte offsets and sizes in floats (k: input row length, n: padded outputs). */
export interface ForwardLayer {
  readonly weights: number;
  readonly out: number;
  readonly k: number;
  readonly n: number;
}

/** A block's forward pass in a shared memory: rows of `inputs` floats at byte offset `x`. */
export interface ForwardJob {
  readonly x: number;
  readonly inputs: number;
  readonly layers: readonly ForwardLayer[];
}

/** Rows [rowFrom, rowTo) of a job (multiples of 4): ReLU after every layer but the last. */
export function forwardRows(gemm: Gemm, job: ForwardJob, rowFrom: number, rowTo: number): void {
  let a = job.x + rowFrom * job.inputs * 4;
  job.layers.forEach((layer, l) => {
    const c = layer.out + rowFrom * layer.n * 4;
    gemm(a, layer.weights, c, rowTo - rowFrom, layer.k, layer.n, l < job.layers.length - 1 ? 0 : -Infinity);
    a = c;
  });
}
