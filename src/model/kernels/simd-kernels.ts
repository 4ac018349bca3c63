/**
 * WebAssembly SIMD kernels for the training step's host update, assembled here from their
 * instruction listing (no build step, no binary in the repository). Each f32x4 operation is one
 * correctly rounded float32 operation per lane, the same arithmetic as the tfjs ops they replace
 * and as the Math.fround code in optimizers.ts, so results are bit-identical to both.
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
  indexAddress,
  MAGIC_AND_VERSION,
  memarg,
  name,
  PAGE_BYTES,
  section,
  set,
  simd,
  V128,
  V128_LOAD,
  V128_STORE,
  v128Load,
  v128Store,
  vec,
  Wasm,
  type WasmInstance,
  type WasmMemory,
  whileNot,
} from './wasm-asm.js';

const f32Const = (value: number): number[] => [0x43, ...new Uint8Array(new Float32Array([value]).buffer)];
/** v128.load / v128.store at (base + i), 16-byte aligned. */
const load = (base: number, i: number): number[] => [...get(base), ...get(i), I32_ADD, ...v128Load(0)];
const store = (base: number, i: number, value: number[]): number[] => [
  ...get(base),
  ...get(i),
  I32_ADD,
  ...value,
  ...v128Store(0),
];
const F32X4_SPLAT = 0x13;
const splat = (local: number): number[] => [...get(local), ...simd(F32X4_SPLAT)];
const F32X4_GE = 0x46;
const V128_AND = 0x4e;
const F32X4_SQRT = 0xe3;
const F32X4_ADD = 0xe4;
const F32X4_SUB = 0xe5;
const F32X4_MUL = 0xe6;
const F32X4_DIV = 0xe7;
const F32_LOAD = 0x2a;
const F32_STORE = 0x38;
const F32_ADD = 0x92;
const F32_MUL = 0x94;
const I32_AND = 0x71;

/** `body` for i = 0, 16, 32, … while i < bytes (local i starts at 0). */
function overVectors(i: number, bytes: number, body: readonly number[]): number[] {
  return whileNot([...get(i), ...get(bytes), I32_GE_U], [...body, ...addTo(i, i32Const(16))]);
}

function thresholdRmsprop(): number[] {
  // Params 0-5: g w v p e bytes (i32); 6-9: α, 1−α, lr, ε (f32).
  const [g, w, v, p, e, bytes, alpha, beta, lr, eps] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  // Locals: i (i32); vα, vβ, vlr, vε, one, zero, gv, vv, pv (v128).
  const [i, va, vb, vlr, veps, one, zero, gv, vv, pv] = [10, 11, 12, 13, 14, 15, 16, 17, 18, 19];
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
    ...simd(F32X4_SPLAT),
    ...set(one),
    ...f32Const(0),
    ...simd(F32X4_SPLAT),
    ...set(zero),
    ...overVectors(i, bytes, [
      // gv = g·w; g ← gv
      ...load(g, i),
      ...load(w, i),
      ...simd(F32X4_MUL),
      ...set(gv),
      ...store(g, i, get(gv)),
      // vv = v·α + (gv·gv)·β; v ← vv
      ...load(v, i),
      ...get(va),
      ...simd(F32X4_MUL),
      ...get(gv),
      ...get(gv),
      ...simd(F32X4_MUL),
      ...get(vb),
      ...simd(F32X4_MUL),
      ...simd(F32X4_ADD),
      ...set(vv),
      ...store(v, i, get(vv)),
      // pv = p − (gv·lr) / (√vv + ε); p ← pv
      ...load(p, i),
      ...get(gv),
      ...get(vlr),
      ...simd(F32X4_MUL),
      ...get(vv),
      ...simd(F32X4_SQRT),
      ...get(veps),
      ...simd(F32X4_ADD),
      ...simd(F32X4_DIV),
      ...simd(F32X4_SUB),
      ...set(pv),
      ...store(p, i, get(pv)),
      // e ← w · (1[pv ≥ 0] as 0.0/1.0)
      ...store(e, i, [
        ...load(w, i),
        ...get(pv),
        ...get(zero),
        ...simd(F32X4_GE),
        ...get(one),
        ...simd(V128_AND),
        ...simd(F32X4_MUL),
      ]),
    ]),
    0x0b, // end function
  ];
  return functionBody(
    [
      [1, I32],
      [9, V128],
    ],
    code,
  );
}

/** multiply(out, a, b, bytes): out ← a·b, one correctly rounded float32 product per lane (as tf.mul). */
function multiply(): number[] {
  const [out, a, b, bytes, i] = [0, 1, 2, 3, 4];
  const code = [
    ...overVectors(i, bytes, store(out, i, [...load(a, i), ...load(b, i), ...simd(F32X4_MUL)])),
    0x0b, // end function
  ];
  return functionBody([[1, I32]], code);
}

/** rank_one (see the top of this file); the rows of out and w need no alignment. */
function rankOne(): number[] {
  const [out, a, d, w, fanIn, fanOut] = [0, 1, 2, 3, 4, 5];
  const [aEnd, dp, vectorsEnd, dEnd, ai] = [6, 7, 8, 9, 10];
  const [av, zero] = [11, 12];
  const unaligned = memarg(0, 0);
  // out[p] ← ((a·d[dp]) + 0)·w[p], one lane (f32) or four (f32x4); then p, w and dp move on
  const step = (lanes: 1 | 4): number[] => {
    const [load, store, mul, add] =
      lanes === 4
        ? [simd(V128_LOAD), simd(V128_STORE), simd(F32X4_MUL), simd(F32X4_ADD)]
        : [[F32_LOAD], [F32_STORE], [F32_MUL], [F32_ADD]];
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
    ...simd(F32X4_SPLAT),
    ...set(zero),
    ...indexAddress(aEnd, a, fanIn, 2),
    ...indexAddress(dEnd, d, fanOut, 2),
    // the whole vectors of a row end at d + 4·(fanOut − fanOut mod 4)
    ...get(fanOut),
    ...i32Const(-4),
    I32_AND,
    ...i32Const(4),
    I32_MUL,
    ...get(d),
    I32_ADD,
    ...set(vectorsEnd),
    ...whileNot(
      [...get(a), ...get(aEnd), I32_GE_U],
      [
        ...get(a),
        F32_LOAD,
        ...memarg(2, 0),
        ...set(ai),
        ...splat(ai),
        ...set(av),
        ...get(d),
        ...set(dp),
        ...whileNot([...get(dp), ...get(vectorsEnd), I32_GE_U], step(4)),
        ...whileNot([...get(dp), ...get(dEnd), I32_GE_U], step(1)),
        ...addTo(a, i32Const(4)),
      ],
    ),
    END,
  ];
  return functionBody(
    [
      [4, I32],
      [1, F32],
      [2, V128],
    ],
    code,
  );
}

function moduleBytes(): Uint8Array {
  const rmspropType = [
    0x60,
    ...vec([[I32], [I32], [I32], [I32], [I32], [I32], [F32], [F32], [F32], [F32]]),
    0,
  ];
  const multiplyType = [0x60, ...vec([[I32], [I32], [I32], [I32]]), 0];
  const rankOneType = [0x60, ...vec([[I32], [I32], [I32], [I32], [I32], [I32]]), 0];
  return Uint8Array.from([
    ...MAGIC_AND_VERSION,
    ...section(1, vec([rmspropType, multiplyType, rankOneType])),
    ...section(2, vec([[...name('env'), ...name('memory'), 0x02, 0x00, 0x01]])),
    ...section(3, vec([[0], [1], [2]])),
    ...section(
      7,
      vec([
        [...name('threshold_rmsprop'), 0x00, 0x00],
        [...name('multiply'), 0x00, 0x01],
        [...name('rank_one'), 0x00, 0x02],
      ]),
    ),
    ...section(10, vec([thresholdRmsprop(), multiply(), rankOne()])),
  ]);
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
const simdModule = compiledOnce(moduleBytes);

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
