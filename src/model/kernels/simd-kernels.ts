/**
 * WebAssembly SIMD kernels for the training step's host update, assembled here from their
 * instruction listing by the typed builder (wasm-module.ts, ADR 0008; no build step, no binary in
 * the repository). Each f32x4 operation is one correctly rounded float32 operation per lane, the
 * same arithmetic as the tfjs ops they replace and as the Math.fround code in optimizers.ts, so
 * results are bit-identical to both.
 *
 * threshold_rmsprop(g, w, v, p, e, bytes, α, 1−α, lr, ε), over float32 arrays at byte offsets g,
 * w, v, p, e of the memory, `bytes` a multiple of 16:
 *   g ← g·w                              straight-through gradient of a threshold mask
 *   v ← v·α + (g·g)·(1−α)                RMSprop, PyTorch form
 *   p ← p − (g·lr) / (√v + ε)
 *   e ← w · 1[p ≥ 0]                     the next step's effective weights W ⊙ M
 *
 * rank_one(out, a, d, w, fanIn, fanOut): out[i·fanOut + j] ← ((a[i]·d[j]) + 0)·w[i·fanOut + j], the
 * task-inference vector V = (aᵀ·d) ⊙ W of one input row (alpha-vector.ts): the outer product as a
 * matMul with an inner dimension of 1 rounds it (its sum starts at +0, which turns −0 into +0).
 */

import {
  addTo,
  F32,
  f32Const,
  get,
  I32,
  i32Const,
  indexAddress,
  memarg,
  op,
  reached,
  set,
  V128,
  v128Load,
  v128Store,
  whileNot,
} from './wasm-asm.js';
import {
  compiledOnce,
  FunctionBuilder,
  moduleBytes,
  PAGE_BYTES,
  Wasm,
  type WasmInstance,
  type WasmMemory,
} from './wasm-module.js';

/** v128.load / v128.store at (base + i), 16-byte aligned. */
const load = (base: number, i: number): number[] => [...get(base), ...get(i), ...op.i32Add, ...v128Load(0)];
const store = (base: number, i: number, value: number[]): number[] => [
  ...get(base),
  ...get(i),
  ...op.i32Add,
  ...value,
  ...v128Store(0),
];
const splat = (local: number): number[] => [...get(local), ...op.f32x4Splat];

/** `body` for i = 0, 16, 32, … while i < bytes (local i starts at 0). */
function overVectors(i: number, bytes: number, body: readonly number[]): number[] {
  return whileNot(reached(i, bytes), [...body, ...addTo(i, i32Const(16))]);
}

function thresholdRmsprop(): { builder: FunctionBuilder; code: number[] } {
  const f = new FunctionBuilder('threshold_rmsprop');
  const { g, w, v, p, e, bytes } = f.params(I32, ['g', 'w', 'v', 'p', 'e', 'bytes']);
  const { alpha, beta, lr, eps } = f.params(F32, ['alpha', 'beta', 'lr', 'eps']);
  const { i } = f.locals(I32, ['i']);
  const { va, vb, vlr, veps, one, zero, gv, vv, pv } = f.locals(V128, [
    'va',
    'vb',
    'vlr',
    'veps',
    'one',
    'zero',
    'gv',
    'vv',
    'pv',
  ]);
  const code = [
    ...splat(alpha),
    ...set(va),
    ...splat(beta),
    ...set(vb),
    ...splat(lr),
    ...set(vlr),
    ...splat(eps),
    ...set(veps),
    ...f32Const(1),
    ...op.f32x4Splat,
    ...set(one),
    ...f32Const(0),
    ...op.f32x4Splat,
    ...set(zero),
    ...overVectors(i, bytes, [
      // gv = g·w; g ← gv
      ...load(g, i),
      ...load(w, i),
      ...op.f32x4Mul,
      ...set(gv),
      ...store(g, i, get(gv)),
      // vv = v·α + (gv·gv)·β; v ← vv
      ...load(v, i),
      ...get(va),
      ...op.f32x4Mul,
      ...get(gv),
      ...get(gv),
      ...op.f32x4Mul,
      ...get(vb),
      ...op.f32x4Mul,
      ...op.f32x4Add,
      ...set(vv),
      ...store(v, i, get(vv)),
      // pv = p − (gv·lr) / (√vv + ε); p ← pv
      ...load(p, i),
      ...get(gv),
      ...get(vlr),
      ...op.f32x4Mul,
      ...get(vv),
      ...op.f32x4Sqrt,
      ...get(veps),
      ...op.f32x4Add,
      ...op.f32x4Div,
      ...op.f32x4Sub,
      ...set(pv),
      ...store(p, i, get(pv)),
      // e ← w · (1[pv ≥ 0] as 0.0/1.0)
      ...store(e, i, [
        ...load(w, i),
        ...get(pv),
        ...get(zero),
        ...op.f32x4Ge,
        ...get(one),
        ...op.v128And,
        ...op.f32x4Mul,
      ]),
    ]),
    ...op.end,
  ];
  return { builder: f, code };
}

/** multiply(out, a, b, bytes): out ← a·b, one correctly rounded float32 product per lane (as tf.mul). */
function multiply(): { builder: FunctionBuilder; code: number[] } {
  const f = new FunctionBuilder('multiply');
  const { out, a, b, bytes } = f.params(I32, ['out', 'a', 'b', 'bytes']);
  const { i } = f.locals(I32, ['i']);
  const code = [
    ...overVectors(i, bytes, store(out, i, [...load(a, i), ...load(b, i), ...op.f32x4Mul])),
    ...op.end,
  ];
  return { builder: f, code };
}

/** rank_one (see the top of this file); the rows of out and w need no alignment. */
function rankOne(): { builder: FunctionBuilder; code: number[] } {
  const f = new FunctionBuilder('rank_one');
  const { out, a, d, w, fanIn, fanOut } = f.params(I32, ['out', 'a', 'd', 'w', 'fanIn', 'fanOut']);
  const { aEnd, dp, vectorsEnd, dEnd } = f.locals(I32, ['aEnd', 'dp', 'vectorsEnd', 'dEnd']);
  const { ai } = f.locals(F32, ['ai']);
  const { av, zero } = f.locals(V128, ['av', 'zero']);
  const unaligned = memarg(0, 0);
  // out[p] ← ((a·d[dp]) + 0)·w[p], one lane (f32) or four (f32x4); then p, w and dp move on
  const step = (lanes: 1 | 4): number[] => {
    const [load, store, mul, add] =
      lanes === 4
        ? [op.v128Load, op.v128Store, op.f32x4Mul, op.f32x4Add]
        : [op.f32Load, op.f32Store, op.f32Mul, op.f32Add];
    return [
      ...get(out),
      ...get(lanes === 4 ? av : ai),
      ...get(dp),
      ...load,
      ...unaligned,
      ...mul,
      ...(lanes === 4 ? get(zero) : f32Const(0)),
      ...add,
      ...get(w),
      ...load,
      ...unaligned,
      ...mul,
      ...store,
      ...unaligned,
      ...[out, w, dp].flatMap((pointer) => addTo(pointer, i32Const(4 * lanes))),
    ];
  };
  const code = [
    ...f32Const(0),
    ...op.f32x4Splat,
    ...set(zero),
    ...indexAddress(aEnd, a, fanIn, 2),
    ...indexAddress(dEnd, d, fanOut, 2),
    // the whole vectors of a row end at d + 4·(fanOut − fanOut mod 4)
    ...get(fanOut),
    ...i32Const(-4),
    ...op.i32And,
    ...i32Const(4),
    ...op.i32Mul,
    ...get(d),
    ...op.i32Add,
    ...set(vectorsEnd),
    ...whileNot(reached(a, aEnd), [
      ...get(a),
      ...op.f32Load,
      ...memarg(2, 0),
      ...set(ai),
      ...splat(ai),
      ...set(av),
      ...get(d),
      ...set(dp),
      ...whileNot(reached(dp, vectorsEnd), step(4)),
      ...whileNot(reached(dp, dEnd), step(1)),
      ...addTo(a, i32Const(4)),
    ]),
    ...op.end,
  ];
  return { builder: f, code };
}

/** The module's bytes: the three kernels over an imported memory (one page at least, not shared). */
export function simdModuleBytes(): Uint8Array {
  return moduleBytes([thresholdRmsprop(), multiply(), rankOne()], { shared: false, min: 1 });
}

export type ThresholdRmsprop = (
  g: number,
  w: number,
  v: number,
  p: number,
  e: number,
  bytes: number,
  alpha: number,
  beta: number,
  lr: number,
  eps: number,
) => void;

type Multiply = (out: number, a: number, b: number, bytes: number) => void;
type RankOne = (out: number, a: number, d: number, w: number, fanIn: number, fanOut: number) => void;

/** The compiled module, or null where WebAssembly SIMD is unavailable. */
const simdModule = compiledOnce('simd-kernels', ['simd'], simdModuleBytes);

/**
 * Float32 arrays carved out of one WebAssembly memory, with the kernels bound to it. Arrays are
 * 16-byte aligned and padded with zeros to a multiple of 4 values (the kernels work on whole
 * 4-lane vectors; zero padding stays zero through every kernel).
 */
export class SimdArena {
  readonly thresholdRmsprop: ThresholdRmsprop;
  private readonly memory: WasmMemory;
  private readonly multiplyKernel: Multiply;
  private readonly rankOneKernel: RankOne;
  private used = 0;

  private constructor(memory: WasmMemory, instance: WasmInstance) {
    this.memory = memory;
    this.thresholdRmsprop = instance.exports.threshold_rmsprop as ThresholdRmsprop;
    this.multiplyKernel = instance.exports.multiply as Multiply;
    this.rankOneKernel = instance.exports.rank_one as RankOne;
  }

  /**
   * out ← a·b over a.length values rounded up to whole 4-lane vectors, for arrays of this arena
   * (out may be a 16-byte aligned view into one): the padding lanes of a and b are zero, so out's
   * lanes past a.length receive zeros.
   */
  multiply(out: Float32Array, a: Float32Array, b: Float32Array): void {
    const bytes = SimdArena.paddedBytes(a.length);
    for (const array of [out, a, b]) {
      if (array.buffer !== this.memory.buffer || array.byteOffset % 16 !== 0) {
        throw new RangeError('SimdArena.multiply takes 16-byte aligned arrays of its own memory');
      }
    }
    if (b.length !== a.length || out.length < a.length) {
      throw new RangeError('SimdArena.multiply: a and b must have one length, out at least that');
    }
    if (out.byteOffset + bytes > this.memory.buffer.byteLength) {
      throw new RangeError('SimdArena.multiply: the last vector of out runs past the memory');
    }
    this.multiplyKernel(out.byteOffset, a.byteOffset, b.byteOffset, bytes);
  }

  /**
   * out[i·d.length + j] ← ((a[i]·d[j]) + 0)·w[i·d.length + j] over w's a.length × d.length values,
   * for arrays of this arena (see rank_one at the top of this file).
   */
  rankOne(out: Float32Array, a: Float32Array, d: Float32Array, w: Float32Array): void {
    for (const array of [out, a, d, w]) {
      if (array.buffer !== this.memory.buffer)
        throw new RangeError('SimdArena.rankOne takes arrays of its own memory');
    }
    if (w.length !== a.length * d.length || out.length < w.length) {
      throw new RangeError('SimdArena.rankOne: w must hold a.length × d.length values, out at least that');
    }
    this.rankOneKernel(out.byteOffset, a.byteOffset, d.byteOffset, w.byteOffset, a.length, d.length);
  }

  /** An arena for arrays of the given lengths, or null without WebAssembly SIMD. */
  static create(lengths: readonly number[]): SimdArena | null {
    const module = simdModule();
    if (module === null) return null;
    const bytes = lengths.reduce((sum, n) => sum + SimdArena.paddedBytes(n), 0);
    const memory = new Wasm.Memory({ initial: Math.max(1, Math.ceil(bytes / PAGE_BYTES)) });
    return new SimdArena(memory, new Wasm.Instance(module, { env: { memory } }));
  }

  static paddedBytes(length: number): number {
    return Math.ceil(length / 4) * 16;
  }

  /** A zeroed Float32Array of `length` values inside the memory (never moves: the memory never grows). */
  allocate(length: number): Float32Array {
    const bytes = SimdArena.paddedBytes(length);
    if (this.used + bytes > this.memory.buffer.byteLength) throw new RangeError('SimdArena is full');
    const array = new Float32Array(this.memory.buffer, this.used, length);
    this.used += bytes;
    return array;
  }
}
