import * as tf from '@tensorflow/tfjs-core';
import type { MaskLayout } from '../bank/index.js';
import { SimdArena } from '../kernels/index.js';
import type { MaskedMlp } from '../network/index.js';
import { keptCount, kthLargestMagnitude, type MaskRule, packScores } from './mask-rule.js';
import {
  type HostOptimizer,
  makeHostOptimizer,
  type OptimizerConfig,
  type OptimizerState,
} from './optimizers.js';

/** A labelled batch: `rows` images of `dim` floats, row-major, and their labels. */
export interface LabelledBatch {
  readonly x: Float32Array;
  readonly y: ArrayLike<number>;
  readonly rows: number;
}

/**
 * How a step lays out its matrix products. `transposed`: activations and weights transposed on the
 * host so that every product on the backend is plain (tfjs-wasm: transpose flags are 20-30× slower,
 * and a changing right operand is repacked every step). `flags`: plain layouts, transposes as
 * matMul's flags (libtensorflow's BLAS takes them at no cost, and the host transposes are saved).
 */
export type ProductLayout = 'transposed' | 'flags';

/** The faster layout on the active backend. */
export function productLayoutFor(backend: string): ProductLayout {
  return backend === 'tensorflow' ? 'flags' : 'transposed';
}

/** Where one training step spends its time, in milliseconds, summed over the steps profiled. */
export interface StepProfile {
  steps: number;
  /** Building the input, label and weight tensors (uploads to the backend). */
  upload: number;
  /** Forward pass, loss gradient and backward pass on the backend. */
  network: number;
  /** Reading ∂L/∂W̃ back from the backend. */
  readback: number;
  /** Straight-through estimator on the host: ∂L/∂S = ∂L/∂W̃ ⊙ W (⊙ sign S for top-k). */
  ste: number;
  /** The optimizer's update of the scores (with threshold masks and RMSprop: the fused SIMD kernel
   * doing STE, optimizer and mask in one pass). */
  optimizer: number;
  /** The new mask (threshold or top-k cut) and the effective weights W ⊙ M for the next step
   * (only their transposes with the fused kernel). */
  mask: number;
}

/**
 * Trains the scores of one mask: cross-entropy over all s outputs, the straight-through estimator
 * and one of the score optimizers.
 *
 * The backend only runs what it is fast at: the matrix products of the forward and backward
 * passes. Scores, optimizer state and the effective weights W ⊙ M live on the host as Float32Arrays
 * and are updated in place by one pass per layer (STE, optimizer, mask), with float32 rounding that
 * reproduces the tensor ops bit for bit (see makeHostOptimizer). The effective weights of layers
 * after the first are also kept transposed, and the input is transposed on the host, so the
 * backward pass needs no tf.transpose (slow on tfjs-wasm) and no per-step tensor temporaries beyond
 * the pass itself. With threshold masks and RMSprop (the paper's setting) the three passes are one
 * WebAssembly SIMD kernel over arrays in its memory (src/model/kernels/simd-kernels.ts).
 */
export class ScoreTrainer {
  private readonly net: MaskedMlp;
  private readonly layout: MaskLayout;
  private readonly rule: MaskRule;
  private readonly scores: Float32Array[];
  private readonly optimizer: HostOptimizer;
  /** W ⊙ M of the current scores, [fanIn, fanOut]. */
  private readonly effective: Float32Array[];
  /** (W ⊙ M)ᵀ, [fanOut, fanIn], for the transposed layout (empty arrays with flags). */
  private readonly effectiveT: Float32Array[];
  readonly products: ProductLayout;
  private readonly magnitudes: Float32Array | null;
  /** The scores' bit patterns (views on the same buffers). */
  private readonly scoreBits: Int32Array[];
  private inputT = new Float32Array(0);
  /** The fused kernel's memory, with per-layer gradient buffers and base-weight copies in it. */
  private readonly fused: {
    readonly arena: SimdArena;
    readonly grads: Float32Array[];
    readonly weights: Float32Array[];
    readonly scalars: readonly [number, number, number, number];
  } | null;
  private profile: StepProfile | null = null;

  constructor(
    net: MaskedMlp,
    layout: MaskLayout,
    initialScores: readonly Float32Array[],
    rule: MaskRule,
    optimizer: OptimizerConfig,
    optimizerState?: OptimizerState,
    products: ProductLayout = productLayoutFor(tf.getBackend()),
  ) {
    this.net = net;
    this.products = products;
    this.layout = layout;
    this.rule = rule;
    const sizes = layout.sizes;
    const arena =
      rule.kind === 'threshold' && optimizer.kind === 'rmsprop'
        ? SimdArena.create(sizes.flatMap((n) => [n, n, n, n, n]))
        : null;
    const allocate = (n: number): Float32Array => arena?.allocate(n) ?? new Float32Array(n);
    this.scores = sizes.map((n, l) => {
      const s = allocate(n);
      s.set(initialScores[l] as Float32Array);
      return s;
    });
    this.scoreBits = this.scores.map((a) => new Int32Array(a.buffer, a.byteOffset, a.length));
    this.optimizer = makeHostOptimizer(optimizer, sizes, optimizerState, allocate);
    this.effective = sizes.map((n) => allocate(n));
    this.effectiveT = sizes.map((n) => new Float32Array(products === 'transposed' ? n : 0));
    this.fused =
      arena === null || optimizer.kind !== 'rmsprop'
        ? null
        : {
            arena,
            grads: sizes.map((n) => allocate(n)),
            weights: sizes.map((n, l) => {
              const w = allocate(n);
              w.set(net.baseLayers[l] as Float32Array);
              return w;
            }),
            scalars: [
              Math.fround(optimizer.alpha),
              Math.fround(1 - optimizer.alpha),
              Math.fround(optimizer.lr),
              Math.fround(optimizer.eps),
            ],
          };
    this.magnitudes = rule.kind === 'topk' ? new Float32Array(Math.max(...layout.sizes)) : null;
    for (let l = 0; l < this.scores.length; l++) this.refreshEffective(l);
  }

  get steps(): number {
    return this.optimizer.steps;
  }

  /** Starts (or restarts) accumulating a per-phase time profile of step(). */
  startProfile(): void {
    this.profile = { steps: 0, upload: 0, network: 0, readback: 0, ste: 0, optimizer: 0, mask: 0 };
  }

  /** The profile accumulated since startProfile(), or null. */
  readProfile(): StepProfile | null {
    return this.profile === null ? null : { ...this.profile };
  }

  /** One optimizer step. Returns the batch loss only when asked (reading it back costs a sync). */
  step(batch: LabelledBatch, readLoss = false): number | undefined {
    const { arch } = this.net;
    const shapes = this.layout.shapes;
    const profile = this.profile;
    let t = profile === null ? 0 : performance.now();
    const lap = (phase: Exclude<keyof StepProfile, 'steps'>): void => {
      if (profile === null) return;
      const now = performance.now();
      profile[phase] += now - t;
      t = now;
    };
    const result = tf.tidy(() => {
      const labels = tf.tensor1d(Int32Array.from(batch.y), 'int32');
      let logits: tf.Tensor2D;
      let backward: (dLogits: tf.Tensor2D) => tf.Tensor2D[];
      if (this.products === 'flags') {
        const x = tf.tensor2d(batch.x, [batch.rows, arch.inputs]);
        const effective = this.effective.map((e, l) => tf.tensor2d(e, shapes[l] as [number, number]));
        lap('upload');
        const trace = this.net.forward(x, effective);
        logits = trace.logits;
        backward = (dLogits) => this.net.backwardWithFlags(trace, effective, dLogits);
      } else {
        const xT = tf.tensor2d(this.transposedInput(batch), [arch.inputs, batch.rows]);
        // The first layer's W̃ is only needed transposed (its input gradient is never formed).
        const effective = this.effective.map((e, l) =>
          l === 0 ? null : tf.tensor2d(e, shapes[l] as [number, number]),
        );
        const effectiveT = this.effectiveT.map((e, l) => {
          const [fanIn, fanOut] = shapes[l] as [number, number];
          return tf.tensor2d(e, [fanOut, fanIn]);
        });
        lap('upload');
        const trace = this.net.forwardTransposed(xT, effectiveT);
        logits = trace.logits;
        backward = (dLogits) => this.net.backwardTransposed(trace, effective, dLogits);
      }
      const oneHot = tf.oneHot(labels, arch.outputs);
      const logp = tf.logSoftmax(logits);
      const dLogits = tf.div(tf.sub(tf.exp(logp), oneHot), batch.rows) as tf.Tensor2D;
      const grads = backward(dLogits);
      if (!readLoss) return grads;
      return [...grads, tf.neg(tf.mean(tf.sum(tf.mul(oneHot, logp), 1)))];
    });
    const layers = this.scores.length;
    lap('network');
    const grads = result.slice(0, layers).map((g) => {
      const values = g.dataSync() as Float32Array;
      g.dispose();
      return values;
    });
    const loss = result[layers];
    lap('readback');
    if (this.fused !== null) {
      this.fusedUpdate(this.fused, grads);
      lap('optimizer');
      for (let l = 0; l < this.scores.length; l++) this.transposeEffective(l);
      lap('mask');
    } else {
      for (let l = 0; l < grads.length; l++) this.straightThrough(l, grads[l] as Float32Array);
      lap('ste');
      this.optimizer.apply(this.scores, grads);
      lap('optimizer');
      for (let l = 0; l < this.scores.length; l++) this.refreshEffective(l);
      lap('mask');
    }
    if (profile !== null) profile.steps++;
    if (loss === undefined) return undefined;
    const value = (loss.dataSync() as Float32Array)[0] as number;
    loss.dispose();
    return value;
  }

  /** A copy of the current scores, one Float32Array per layer. */
  readScores(): Float32Array[] {
    return this.scores.map((s) => Float32Array.from(s));
  }

  /** Scores and optimizer state, enough to resume training exactly where it stands. */
  exportState(): { readonly scores: Float32Array[]; readonly optimizer: OptimizerState } {
    return { scores: this.readScores(), optimizer: this.optimizer.exportState() };
  }

  /** The current binary mask, bit-packed. */
  packedMask(): Uint8Array {
    return packScores(this.layout, this.scores, this.rule);
  }

  /** Nothing to release: the trainer holds no backend tensors between steps. */
  dispose(): void {}

  /** xᵀ on the host, [inputs, rows], into a buffer reused across steps. */
  private transposedInput(batch: LabelledBatch): Float32Array {
    const cols = this.net.arch.inputs;
    const rows = batch.rows;
    if (this.inputT.length !== rows * cols) this.inputT = new Float32Array(rows * cols);
    transpose(batch.x, rows, cols, this.inputT);
    return this.inputT;
  }

  /** ∂L/∂S = ∂L/∂W̃ ⊙ W (⊙ sign S for top-k), in place, as tf.mul would round it. */
  private straightThrough(layer: number, grad: Float32Array): void {
    const w = this.net.baseLayers[layer] as Float32Array;
    if (this.rule.kind === 'threshold') {
      for (let i = 0; i < grad.length; i++) grad[i] = Math.fround((grad[i] as number) * (w[i] as number));
      return;
    }
    const s = this.scores[layer] as Float32Array;
    for (let i = 0; i < grad.length; i++) {
      grad[i] = Math.fround(Math.fround((grad[i] as number) * (w[i] as number)) * Math.sign(s[i] as number));
    }
  }

  /** W ⊙ M of layer l's current scores (and its transpose where kept). */
  private refreshEffective(layer: number): void {
    const s = this.scores[layer] as Float32Array;
    const w = this.net.baseLayers[layer] as Float32Array;
    const e = this.effective[layer] as Float32Array;
    if (this.rule.kind === 'threshold') {
      // M = 1[S ≥ 0] from the sign bit, without a data-dependent branch (scores are ~half negative,
      // and a mispredicted branch per weight costs more than the rest of the update); −0 and NaN,
      // where the sign bit and `≥ 0` disagree, take the (predictable, rare) exact comparison.
      const bits = this.scoreBits[layer] as Int32Array;
      for (let i = 0; i < s.length; i++) {
        const b = bits[i] as number;
        let on = ~b >>> 31;
        if (b === -2147483648 || (b & 0x7fffffff) > 0x7f800000) on = (s[i] as number) >= 0 ? 1 : 0;
        e[i] = (w[i] as number) * on;
      }
    } else {
      const magnitudes = (this.magnitudes as Float32Array).subarray(0, s.length);
      for (let i = 0; i < s.length; i++) magnitudes[i] = Math.abs(s[i] as number);
      const cut = kthLargestMagnitude(magnitudes, keptCount(s.length, this.rule.density));
      for (let i = 0; i < s.length; i++) {
        e[i] = Math.abs(s[i] as number) >= cut ? (w[i] as number) : 0 * (w[i] as number);
      }
    }
    this.transposeEffective(layer);
  }

  /** (W ⊙ M)ᵀ of layer l, where kept. */
  private transposeEffective(layer: number): void {
    if (this.products === 'flags') return;
    const eT = this.effectiveT[layer] as Float32Array;
    const [fanIn, fanOut] = this.layout.shapes[layer] as [number, number];
    transpose(this.effective[layer] as Float32Array, fanIn, fanOut, eT);
  }

  /** STE, RMSprop and the threshold mask of every layer in one SIMD pass each. */
  private fusedUpdate(fused: NonNullable<ScoreTrainer['fused']>, grads: readonly Float32Array[]): void {
    const [alpha, beta, lr, eps] = fused.scalars;
    this.optimizer.advance();
    for (let l = 0; l < grads.length; l++) {
      const g = fused.grads[l] as Float32Array;
      g.set(grads[l] as Float32Array);
      fused.arena.thresholdRmsprop(
        g.byteOffset,
        (fused.weights[l] as Float32Array).byteOffset,
        this.optimizer.slot('squareAvg', l).byteOffset,
        (this.scores[l] as Float32Array).byteOffset,
        (this.effective[l] as Float32Array).byteOffset,
        SimdArena.paddedBytes(g.length),
        alpha,
        beta,
        lr,
        eps,
      );
    }
  }
}

const TILE = 32;

/** out = aᵀ for a row-major [rows, cols] matrix, in 32×32 tiles (a plain strided walk thrashes the TLB). */
function transpose(a: Float32Array, rows: number, cols: number, out: Float32Array): void {
  for (let r0 = 0; r0 < rows; r0 += TILE) {
    const r1 = Math.min(rows, r0 + TILE);
    for (let c0 = 0; c0 < cols; c0 += TILE) {
      const c1 = Math.min(cols, c0 + TILE);
      for (let r = r0; r < r1; r++) {
        const from = r * cols;
        for (let c = c0, at = c0 * rows + r; c < c1; c++, at += rows) out[at] = a[from + c] as number;
      }
    }
  }
}
