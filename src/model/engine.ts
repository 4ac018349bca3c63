import * as tf from '@tensorflow/tfjs-core';
import { SupsupError } from '../errors.js';
import { AlphaVector } from './bank/alpha-vector.js';
import { MaskBank } from './bank/mask-bank.js';
import { type MaskLayout, maskLayout, randomMask, unpackLayer } from './bank/mask-layout.js';
import { type Architecture, architectureKey, type LayerShape } from './network/arch.js';
import { type Classification, classifyLogits } from './network/classification.js';
import { HostForward } from './network/host-forward.js';
import { MaskedMlp } from './network/network.js';
import { type BaseWeights, kaimingUniformScores, signedConstantWeights } from './network/weights.js';
import { type MaskRule, validateMaskRule } from './training/mask-rule.js';
import { type Objective, objectiveGradient } from './training/objectives.js';
import type { OptimizerConfig, OptimizerState } from './training/optimizers.js';
import { type ProductLayout, ScoreTrainer } from './training/trainer.js';

/**
 * From this many masks on, one-shot inference screens the bank (ADR 0007) instead of computing
 * every product exactly. The screen's fixed costs (its tables, the exact products of its
 * candidates) grow with the network: on lenet it was already faster from 16 masks, on fc1024 only
 * from about 128, so 256 keeps it a gain on both.
 */
export const SCREEN_MIN_MASKS = 256;

export interface EngineConfig {
  readonly arch: Architecture;
  readonly seed: number;
  readonly rule: MaskRule;
  readonly optimizer: OptimizerConfig;
  /** How many per-task effective weight sets to keep for classification (host memory). */
  readonly taskWeightCache?: number;
}

export type InferenceMethod = 'one-shot' | 'binary';

export interface InferenceOptions {
  readonly method: InferenceMethod;
  readonly objective: Objective;
  /** B′: the number of leading rows whose objective drives inference. */
  readonly bprime: number;
}

export interface TaskInference {
  readonly task: number;
  /**
   * ∂Obj/∂α over all masks at the uniform superposition (the first pass). Where one-shot
   * inference screened the bank (ADR 0007), only the masks that could hold the minimum are exact;
   * the others are within gradientBound of their exact values, and all of them above the minimum.
   */
  readonly gradient: Float64Array;
  /** 0 when every value of `gradient` is exact; otherwise the screen's bound (see gradient). */
  readonly gradientBound: number;
  /** How many values of `gradient` are exact: all of them, or the screen's candidates. */
  readonly exactMasks: number;
  /** Forward/backward passes used: 1 for one-shot, about log2(k) for binary. */
  readonly passes: number;
}

export type ScoreInit = 'kaiming' | 'transfer';

/**
 * One fixed random network, its bank of bit-packed masks, training of new masks and task inference
 * by the exact identity of spec §9: ∂Obj/∂α_i = Σ_l ⟨∂Obj/∂W̃_l ⊙ W_l, M_l^i⟩, evaluated with one
 * forward/backward pass at W̃ = W ⊙ C/k (C the integer mask count) and one bit-packed dot product
 * per mask. No float stack of k masks is ever formed.
 */
export class SupermaskEngine {
  readonly arch: Architecture;
  readonly seed: number;
  readonly layout: MaskLayout;
  readonly rule: MaskRule;
  readonly optimizer: OptimizerConfig;
  readonly base: BaseWeights;
  readonly net: MaskedMlp;
  readonly bank: MaskBank;
  private readonly alpha: AlphaVector;
  /** Classification's forward pass and its per-task weight cache; null without WebAssembly SIMD. */
  private readonly forward: HostForward | null;
  private superposed: { version: number; tensors: tf.Tensor2D[]; transposed: (tf.Tensor2D | null)[] } | null =
    null;
  private bankVersion = 0;
  private pads: MaskBank | null = null;
  private scoreSum: Float64Array[] | null = null;
  private scoreSumTasks = 0;
  private disposed = false;

  constructor(config: EngineConfig) {
    this.arch = config.arch;
    this.seed = config.seed;
    this.rule = validateMaskRule(config.rule);
    this.optimizer = config.optimizer;
    this.layout = maskLayout(config.arch);
    this.base = signedConstantWeights(config.arch, config.seed);
    this.net = new MaskedMlp(config.arch, this.base);
    this.bank = new MaskBank(this.layout);
    this.alpha = new AlphaVector(this.layout, this.base.layers);
    this.forward = HostForward.create(config.arch, config.taskWeightCache ?? 32);
  }

  get archKey(): string {
    return architectureKey(this.arch);
  }

  get maskCount(): number {
    return this.bank.size;
  }

  /** Initial scores of a new mask: the spec's Kaiming-uniform init, or transfer (mean of earlier scores). */
  initialScores(taskIndex: number, init: ScoreInit): Float32Array[] {
    if (init === 'transfer' && this.scoreSum !== null && this.scoreSumTasks > 0) {
      const n = this.scoreSumTasks;
      return this.scoreSum.map((sum) => Float32Array.from(sum, (v) => v / n));
    }
    return kaimingUniformScores(this.arch, this.seed, taskIndex);
  }

  /** A trainer for one mask; `products` overrides the layout chosen for the active backend. */
  createTrainer(
    initialScores: readonly Float32Array[],
    optimizerState?: OptimizerState,
    products?: ProductLayout,
  ): ScoreTrainer {
    this.assertOpen();
    return new ScoreTrainer(
      this.net,
      this.layout,
      initialScores,
      this.rule,
      this.optimizer,
      optimizerState,
      products,
    );
  }

  /** Freezes a trained mask into the bank; its scores join the running mean used by transfer init. */
  commitScores(scores: readonly Float32Array[], packed: Uint8Array): number {
    if (this.scoreSum === null) this.scoreSum = scores.map((s) => new Float64Array(s.length));
    this.scoreSum.forEach((sum, l) => {
      const layer = scores[l] as Float32Array;
      for (let i = 0; i < sum.length; i++) sum[i] = (sum[i] as number) + (layer[i] as number);
    });
    this.scoreSumTasks++;
    return this.addMask(packed);
  }

  addMask(packed: Uint8Array): number {
    this.assertOpen();
    const index = this.bank.add(packed);
    this.bankVersion++;
    return index;
  }

  replaceMask(index: number, packed: Uint8Array): void {
    this.assertOpen();
    this.bank.replace(index, packed);
    this.bankVersion++;
    this.forward?.forget(index);
  }

  /**
   * ∂Obj/∂α_i for every mask i in `subset` (all masks when omitted), at α uniform over the subset,
   * from the first `bprime` rows of x.
   */
  alphaGradient(
    x: Float32Array,
    bprime: number,
    objective: Objective,
    subset?: readonly number[],
  ): Float64Array {
    this.assertOpen();
    const k = subset === undefined ? this.bank.size : subset.length;
    if (k === 0) throw new SupsupError('E_NO_MASKS', 'task inference needs at least one mask');
    if (subset === undefined) {
      this.fillAlphaForAll(x, bprime, objective);
      return this.bank.dotAll(this.alpha.values);
    }
    this.withEffectiveFromCounts(this.bank.subsetCounts(subset), k, (effective) =>
      this.fillAlphaBuffer(x, bprime, objective, effective),
    );
    return this.bank.dotSubset(subset, this.alpha.values);
  }

  /**
   * ∂Obj/∂α over all learned masks plus `pads` untrained random masks, α uniform over the k + pads
   * masks: the new-task rule's k′ = max(k, 5) padding (spec §5.2). Pad j is the fixed random mask of
   * stream (seed, 'randomMasks', j), about half of the weights on.
   */
  paddedAlphaGradient(
    x: Float32Array,
    bprime: number,
    objective: Objective,
    pads: number,
  ): { readonly masks: Float64Array; readonly pads: Float64Array } {
    this.assertOpen();
    if (pads <= 0) return { masks: this.alphaGradient(x, bprime, objective), pads: new Float64Array(0) };
    const padBank = this.padBank(pads);
    const padIndices = Array.from({ length: pads }, (_, j) => j);
    const counts = padBank.subsetCounts(padIndices);
    if (this.bank.size > 0) {
      const real = this.bank.counts();
      for (let i = 0; i < counts.length; i++) counts[i] = (counts[i] as number) + (real[i] as number);
    }
    this.withEffectiveFromCounts(counts, this.bank.size + pads, (effective) =>
      this.fillAlphaBuffer(x, bprime, objective, effective),
    );
    return {
      masks: this.bank.size > 0 ? this.bank.dotAll(this.alpha.values) : new Float64Array(0),
      pads: padBank.dotSubset(padIndices, this.alpha.values),
    };
  }

  /** Infers the task of a batch (spec §4.3 one-shot, §4.4 binary). */
  inferTask(x: Float32Array, options: InferenceOptions): TaskInference {
    if (options.method === 'one-shot' || this.bank.size === 1) return this.oneShot(x, options);
    const gradient = this.alphaGradient(x, options.bprime, options.objective);
    let candidates = Array.from(gradient.keys());
    let g: Float64Array = gradient;
    let passes = 1;
    const maxPasses = Math.ceil(Math.log2(gradient.length)) + 2;
    for (;;) {
      candidates = keepLowerHalf(candidates, g);
      if (candidates.length === 1 || passes >= maxPasses) break;
      g = this.alphaGradient(x, options.bprime, options.objective, candidates);
      passes++;
    }
    return { task: candidates[0] as number, gradient, gradientBound: 0, exactMasks: gradient.length, passes };
  }

  /**
   * One-shot inference: argmin of ∂Obj/∂α over every mask. From SCREEN_MIN_MASKS masks on, through
   * the bank's quantised screen (ADR 0007): the same task as exact products of every mask would
   * give, with only the masks the screen cannot rule out computed exactly; where the screen cannot
   * bound its error, or below that size, every product is exact.
   */
  private oneShot(x: Float32Array, options: InferenceOptions): TaskInference {
    this.assertOpen();
    if (this.bank.size === 0) throw new SupsupError('E_NO_MASKS', 'task inference needs at least one mask');
    this.fillAlphaForAll(x, options.bprime, options.objective);
    const found = this.bank.size >= SCREEN_MIN_MASKS ? this.bank.screenedArgMin(this.alpha.values) : null;
    if (found !== null) {
      const { index: task, values: gradient, bound: gradientBound, rescored: exactMasks } = found;
      return { task, gradient, gradientBound, exactMasks, passes: 1 };
    }
    const gradient = this.bank.dotAll(this.alpha.values);
    return { task: argMin(gradient), gradient, gradientBound: 0, exactMasks: gradient.length, passes: 1 };
  }

  /** V for the uniform superposition of every mask (the superposed weights are cached). */
  private fillAlphaForAll(x: Float32Array, bprime: number, objective: Objective): void {
    const superposed = this.superposedWeights();
    this.fillAlphaBuffer(x, bprime, objective, superposed.tensors, superposed.transposed);
  }

  /** Class predictions (argmax over all s outputs) of every row of x with mask `task`. */
  predict(x: Float32Array, task: number): Int32Array {
    const rows = Math.floor(x.length / this.arch.inputs);
    const { outputs } = this.arch;
    return classifyLogits(this.taskLogits(x, rows, task), rows, outputs, outputs).predictions;
  }

  /**
   * Classifies every row of x with mask `task`: the predicted real class (argmax over the first ℓ
   * logits), the probability softmax gives it over all s outputs, and the entropy of that softmax;
   * with `labels` (−1 for a row without one) also each labelled row's cross-entropy.
   */
  classify(x: Float32Array, task: number, labels?: Int32Array): Classification {
    const rows = Math.floor(x.length / this.arch.inputs);
    const logits = this.taskLogits(x, rows, task);
    return classifyLogits(logits, rows, this.arch.outputs, this.arch.realClasses, labels);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.pads = null;
    if (this.superposed !== null) {
      for (const w of this.superposed.tensors) w.dispose();
      for (const w of this.superposed.transposed) w?.dispose();
    }
    this.superposed = null;
    this.net.dispose();
  }

  /** Writes V = ∂Obj/∂W̃ ⊙ W for the first `bprime` rows of x into the alpha buffer (layout order). */
  private fillAlphaBuffer(
    x: Float32Array,
    bprime: number,
    objective: Objective,
    effective: readonly tf.Tensor2D[],
    effectiveT?: readonly (tf.Tensor2D | null)[],
  ): void {
    const rows = Math.min(bprime, Math.floor(x.length / this.arch.inputs));
    if (rows < 1) throw new SupsupError('E_BAD_ARGUMENT', 'task inference needs at least one input row');
    if (rows === 1) {
      this.fillAlphaRankOne(x.subarray(0, this.arch.inputs), objective, effective, effectiveT);
      return;
    }
    const grads = tf.tidy(() => {
      const input = tf.tensor2d(x.subarray(0, rows * this.arch.inputs), [rows, this.arch.inputs]);
      const trace = this.net.forward(input, effective);
      const { dLogits } = objectiveGradient(objective, trace.logits, this.arch.realClasses);
      return this.net.backward(trace, effective, dLogits, { effectiveT });
    });
    // V = ∂Obj/∂W̃ ⊙ W, rounded to float32 as tf.mul would.
    grads.forEach((g, l) => {
      this.alpha.setLayer(l, g.dataSync() as Float32Array);
      g.dispose();
    });
  }

  /**
   * V for one input row: each layer's ∂Obj/∂W̃ is the outer product of its input and its output
   * gradient, so V is formed from the two factors (AlphaVector.setRankOne, the same bits as the
   * matMul path). The backend never forms the outer products, and about 2,000 floats come back to
   * the host instead of 315,000 (lenet-300-100-500): 1.2 MB less garbage per inference.
   */
  private fillAlphaRankOne(
    row: Float32Array,
    objective: Objective,
    effective: readonly tf.Tensor2D[],
    effectiveT?: readonly (tf.Tensor2D | null)[],
  ): void {
    const factors = tf.tidy(() => {
      const trace = this.net.forward(tf.tensor2d(row, [1, this.arch.inputs]), effective);
      const { dLogits } = objectiveGradient(objective, trace.logits, this.arch.realClasses);
      const deltas = this.net.backwardDeltas(trace, effective, dLogits, { effectiveT });
      return { inputs: trace.inputs.slice(1), deltas };
    });
    try {
      factors.deltas.forEach((delta, l) => {
        const input = l === 0 ? row : (factors.inputs[l - 1] as tf.Tensor2D).dataSync();
        this.alpha.setRankOne(l, input as Float32Array, delta.dataSync() as Float32Array);
      });
    } finally {
      tf.dispose([...factors.inputs, ...factors.deltas]);
    }
  }

  private withEffectiveFromCounts(
    counts: Uint32Array,
    k: number,
    use: (effective: tf.Tensor2D[]) => void,
  ): void {
    const effective = this.effectiveFromCounts(counts, k);
    try {
      use(effective);
    } finally {
      for (const t of effective) t.dispose();
    }
  }

  private padBank(pads: number): MaskBank {
    if (this.pads === null) this.pads = new MaskBank(this.layout);
    while (this.pads.size < pads) this.pads.add(randomMask(this.layout, this.seed, this.pads.size));
    return this.pads;
  }

  /** W ⊙ C/k of the whole bank and its transposes (layers ≥ 1), kept until the bank changes. */
  private superposedWeights(): { tensors: tf.Tensor2D[]; transposed: (tf.Tensor2D | null)[] } {
    if (this.superposed !== null && this.superposed.version === this.bankVersion) return this.superposed;
    if (this.superposed !== null) {
      for (const t of this.superposed.tensors) t.dispose();
      for (const t of this.superposed.transposed) t?.dispose();
    }
    const tensors = this.effectiveFromCounts(this.bank.counts(), this.bank.size);
    const transposed = tensors.map((t, l) => (l === 0 ? null : tf.transpose(t)));
    this.superposed = { version: this.bankVersion, tensors, transposed };
    return this.superposed;
  }

  /** W ⊙ C/k per layer, as fresh tensors owned by the caller. */
  private effectiveFromCounts(counts: Uint32Array, k: number): tf.Tensor2D[] {
    return this.layout.shapes.map(([fanIn, fanOut], l) => {
      const w = this.base.layers[l] as Float32Array;
      const base = this.layout.bitOffsets[l] as number;
      const out = new Float32Array(w.length);
      for (let i = 0; i < w.length; i++) out[i] = ((w[i] as number) * (counts[base + i] as number)) / k;
      return tf.tensor2d(out, [fanIn, fanOut]);
    });
  }

  /**
   * Logits [rows × s] of x under mask `task`: the host forward pass (weights cached per task), or
   * the backend's where WebAssembly SIMD is missing.
   */
  private taskLogits(x: Float32Array, rows: number, task: number): Float32Array {
    this.assertOpen();
    if (!Number.isInteger(task) || task < 0 || task >= this.bank.size) {
      throw new SupsupError('E_BAD_ARGUMENT', `no mask ${task} (have ${this.bank.size})`);
    }
    if (this.forward !== null) return this.forward.logits(x, rows, task, () => this.effectiveLayers(task));
    const logits = tf.tidy(() => {
      const effective = this.effectiveLayers(task).map((layer, l) => {
        const [fanIn, fanOut] = this.layout.shapes[l] as LayerShape;
        return tf.tensor2d(layer, [fanIn, fanOut]);
      });
      return this.net.logits(tf.tensor2d(x, [rows, this.arch.inputs]), effective);
    });
    try {
      return Float32Array.from(logits.dataSync() as Float32Array);
    } finally {
      logits.dispose();
    }
  }

  /** W_l ⊙ M_l of mask `task`, layer by layer (fanIn × fanOut, row-major). */
  private effectiveLayers(task: number): Float32Array[] {
    const packed = this.bank.get(task);
    return this.layout.shapes.map((_, l) => {
      const mask = unpackLayer(this.layout, packed, l);
      const w = this.base.layers[l] as Float32Array;
      for (let i = 0; i < mask.length; i++) mask[i] = (mask[i] as number) * (w[i] as number);
      return mask;
    });
  }

  private assertOpen(): void {
    if (this.disposed) throw new SupsupError('E_INTERNAL', 'the engine has been disposed');
  }
}

/** Index of the smallest value; the first on ties. */
export function argMin(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if ((values[i] as number) < (values[best] as number)) best = i;
  return best;
}

/**
 * Binary search step (spec §4.4): keep the candidates whose gradient is at most the lower median,
 * i.e. the half where the objective falls fastest. `g` is indexed like `candidates`.
 */
export function keepLowerHalf(candidates: readonly number[], g: ArrayLike<number>): number[] {
  const values = Array.from({ length: candidates.length }, (_, i) => g[i] as number);
  const sorted = [...values].sort((a, b) => a - b);
  const median = sorted[(sorted.length - 1) >> 1] as number;
  return candidates.filter((_, i) => (values[i] as number) <= median);
}
