import * as tf from '@tensorflow/tfjs-core';
import type { MaskLayout } from './mask-layout.js';
import { type MaskRule, maskOfScores, packScores, scoreGradient } from './mask-rule.js';
import type { MaskedMlp } from './network.js';
import {
  makeOptimizer,
  type OptimizerConfig,
  type OptimizerState,
  type ScoreOptimizer,
} from './optimizers.js';

/** A labelled batch: `rows` images of `dim` floats, row-major, and their labels. */
export interface LabelledBatch {
  readonly x: Float32Array;
  readonly y: ArrayLike<number>;
  readonly rows: number;
}

/**
 * Trains the scores of one mask: cross-entropy over all s outputs, the straight-through estimator
 * and one of the score optimizers. Owns its score variables and optimizer state.
 */
export class ScoreTrainer {
  private readonly net: MaskedMlp;
  private readonly layout: MaskLayout;
  private readonly rule: MaskRule;
  private readonly scores: tf.Variable[];
  private readonly optimizer: ScoreOptimizer;
  private disposed = false;

  constructor(
    net: MaskedMlp,
    layout: MaskLayout,
    initialScores: readonly Float32Array[],
    rule: MaskRule,
    optimizer: OptimizerConfig,
    optimizerState?: OptimizerState,
  ) {
    this.net = net;
    this.layout = layout;
    this.rule = rule;
    this.scores = layout.shapes.map(([fanIn, fanOut], l) =>
      tf.variable(tf.tensor2d(initialScores[l] as Float32Array, [fanIn, fanOut]), true),
    );
    this.optimizer = makeOptimizer(
      optimizer,
      optimizerState === undefined ? undefined : { state: optimizerState, shapes: layout.shapes },
    );
  }

  get steps(): number {
    return this.optimizer.steps;
  }

  /** One optimizer step. Returns the batch loss only when asked (reading it back costs a sync). */
  step(batch: LabelledBatch, readLoss = false): number | undefined {
    const { arch, weights } = this.net;
    const loss = tf.tidy(() => {
      const x = tf.tensor2d(batch.x, [batch.rows, arch.inputs]);
      const labels = tf.tensor1d(Int32Array.from(batch.y), 'int32');
      const oneHot = tf.oneHot(labels, arch.outputs);
      const effective = this.scores.map((s, l) =>
        tf.mul<tf.Tensor2D>(weights[l] as tf.Tensor2D, maskOfScores(s as tf.Tensor2D, this.rule)),
      );
      const trace = this.net.forward(x, effective);
      const logp = tf.logSoftmax(trace.logits);
      const dLogits = tf.div(tf.sub(tf.exp(logp), oneHot), batch.rows) as tf.Tensor2D;
      const dEffective = this.net.backward(trace, effective, dLogits);
      const grads = dEffective.map((g, l) =>
        scoreGradient(g, weights[l] as tf.Tensor2D, this.scores[l] as tf.Tensor2D, this.rule),
      );
      this.optimizer.apply(this.scores, grads);
      return readLoss ? tf.neg(tf.mean(tf.sum(tf.mul(oneHot, logp), 1))) : undefined;
    });
    if (loss === undefined) return undefined;
    const value = (loss.dataSync() as Float32Array)[0] as number;
    loss.dispose();
    return value;
  }

  /** A copy of the current scores, one Float32Array per layer. */
  readScores(): Float32Array[] {
    return this.scores.map((s) => Float32Array.from(s.dataSync() as Float32Array));
  }

  /** Scores and optimizer state, enough to resume training exactly where it stands. */
  exportState(): { readonly scores: Float32Array[]; readonly optimizer: OptimizerState } {
    return { scores: this.readScores(), optimizer: this.optimizer.exportState() };
  }

  /** The current binary mask, bit-packed. */
  packedMask(): Uint8Array {
    return packScores(this.layout, this.readScores(), this.rule);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const s of this.scores) s.dispose();
    this.optimizer.dispose();
  }
}
