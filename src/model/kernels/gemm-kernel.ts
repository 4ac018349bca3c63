/**
 * A float32 matrix product with optional ReLU in WebAssembly SIMD, assembled here from its
 * instruction listing with the typed builder (wasm-module.ts, ADR 0008): C = max(A·B, floor) for A [rows × k],
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

import { SupsupError } from '../../errors.js';
import {
  addTo,
  F32,
  get,
  I32,
  i32Const,
  memarg,
  op,
  reached,
  set,
  tee,
  V128,
  v128Load,
  v128Store,
  v128Zero,
  whileNot,
} from './wasm-asm.js';
import {
  type BuiltFunction,
  compiledOnce,
  FunctionBuilder,
  moduleBytes,
  WASM32_MAX_PAGES,
  Wasm,
  type WasmMemory,
} from './wasm-module.js';

function gemm(): BuiltFunction {
  const f = new FunctionBuilder('gemm');
  const { a, b, c, rows, k, n } = f.params(I32, ['a', 'b', 'c', 'rows', 'k', 'n']);
  const { floor } = f.params(F32, ['floor']);
  const { rowA, rowC, col, r, pa0, pa1, pa2, pa3, pb, end, pc } = f.locals(I32, [
    'rowA',
    'rowC',
    'col',
    'r',
    'pa0',
    'pa1',
    'pa2',
    'pa3',
    'pb',
    'end',
    'pc',
  ]);
  // 8 accumulators, two B vectors, the floor, the splat of A.
  const acc = f.localRun(V128, 'acc', 8);
  const { b0, b1, vfloor, s } = f.locals(V128, ['b0', 'b1', 'vfloor', 's']);
  const term = (pa: number, i: number): number[] => {
    const [lo, hi] = [acc[2 * i] as number, acc[2 * i + 1] as number];
    return [
      // s = splat(A[r+i,k]); lo += s·b0; hi += s·b1
      ...get(pa),
      ...op.v128Load32Splat,
      ...memarg(2, 0),
      ...set(s),
      ...get(lo),
      ...get(s),
      ...get(b0),
      ...op.f32x4Mul,
      ...op.f32x4Add,
      ...set(lo),
      ...get(hi),
      ...get(s),
      ...get(b1),
      ...op.f32x4Mul,
      ...op.f32x4Add,
      ...set(hi),
    ];
  };
  const storeRow = (i: number): number[] => {
    const [lo, hi] = [acc[2 * i] as number, acc[2 * i + 1] as number];
    const at = [...get(pc), ...get(rowC), ...i32Const(i), ...op.i32Mul, ...op.i32Add];
    return [
      ...at,
      ...get(lo),
      ...get(vfloor),
      ...op.f32x4Pmax,
      ...v128Store(0),
      ...at,
      ...get(hi),
      ...get(vfloor),
      ...op.f32x4Pmax,
      ...v128Store(16),
    ];
  };
  const code = [
    ...get(floor),
    ...op.f32x4Splat,
    ...set(vfloor),
    ...get(k),
    ...i32Const(4),
    ...op.i32Mul,
    ...set(rowA),
    ...get(n),
    ...i32Const(4),
    ...op.i32Mul,
    ...set(rowC),
    ...i32Const(0),
    ...set(col),
    // for col in 0, 32, … < rowC (bytes)
    ...whileNot(reached(col, rowC), [
      ...i32Const(0),
      ...set(r),
      // for r in 0, 4, … < rows
      ...whileNot(reached(r, rows), [
        ...acc.flatMap((v) => [...v128Zero(), ...set(v)]),
        // pa0 = a + r·rowA; pa1..3 the next rows; pb = b + col; end = pa0 + rowA
        ...get(a),
        ...get(r),
        ...get(rowA),
        ...op.i32Mul,
        ...op.i32Add,
        ...tee(pa0),
        ...get(rowA),
        ...op.i32Add,
        ...tee(pa1),
        ...get(rowA),
        ...op.i32Add,
        ...tee(pa2),
        ...get(rowA),
        ...op.i32Add,
        ...set(pa3),
        ...get(pa0),
        ...get(rowA),
        ...op.i32Add,
        ...set(end),
        ...get(b),
        ...get(col),
        ...op.i32Add,
        ...set(pb),
        ...whileNot(reached(pa0, end), [
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
        ]),
        // pc = c + r·rowC + col
        ...get(c),
        ...get(r),
        ...get(rowC),
        ...op.i32Mul,
        ...op.i32Add,
        ...get(col),
        ...op.i32Add,
        ...set(pc),
        ...storeRow(0),
        ...storeRow(1),
        ...storeRow(2),
        ...storeRow(3),
        ...addTo(r, i32Const(4)),
      ]),
      ...addTo(col, i32Const(32)),
    ]),
    ...op.end,
  ];
  return { builder: f, code };
}

/** The module's bytes: gemm over an imported shared memory of up to WASM32_MAX_PAGES pages. */
export function gemmModuleBytes(): Uint8Array {
  return moduleBytes([gemm()], { shared: true, min: 1, max: WASM32_MAX_PAGES });
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
export const gemmModule = compiledOnce('gemm-kernel', ['simd', 'shared-memory'], gemmModuleBytes);

/** The kernel bound to a shared memory (maximum WASM32_MAX_PAGES pages). */
export function gemmKernel(memory: WasmMemory): Gemm {
  const module = gemmModule();
  if (module === null) {
    throw new SupsupError('E_BACKEND_UNAVAILABLE', 'WebAssembly SIMD or shared memory is unavailable');
  }
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
