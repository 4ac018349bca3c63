import * as tf from '@tensorflow/tfjs-core';

/**
 * Task-inference objectives over logits z [B′, s] and their gradients ∂Obj/∂z, in closed form
 * (spec §4.2). Call inside tf.tidy.
 *
 * H: mean over rows of the entropy of softmax(z) over all s outputs.
 *    ∂H_b/∂z_bk = −p_bk (log p_bk + H_b), divided by B′.
 * G: mean over rows of logsumexp(ẑ_b), ẑ = z with the gradient of the first ℓ (real) logits
 *    stopped: ∂G/∂z_bj = softmax(z_b)_j / B′ for j ≥ ℓ, 0 for j < ℓ.
 */
export type Objective = 'H' | 'G';

export interface ObjectiveResult {
  /** Scalar objective value. */
  readonly value: tf.Scalar;
  readonly dLogits: tf.Tensor2D;
}

export function entropyObjective(logits: tf.Tensor2D): ObjectiveResult {
  const rows = logits.shape[0];
  const logp = tf.logSoftmax(logits);
  const p = tf.exp(logp);
  const rowEntropy = tf.neg(tf.sum(tf.mul(p, logp), 1, true));
  const dLogits = tf.div(tf.neg(tf.mul(p, tf.add(logp, rowEntropy))), rows) as tf.Tensor2D;
  return { value: tf.mean(rowEntropy), dLogits };
}

export function superfluousObjective(logits: tf.Tensor2D, realClasses: number): ObjectiveResult {
  const [rows, outputs] = logits.shape;
  const p = tf.softmax(logits);
  const superfluous = tf.concat(
    [tf.zeros([1, realClasses]), tf.ones([1, outputs - realClasses])],
    1,
  ) as tf.Tensor2D;
  const dLogits = tf.div(tf.mul(p, superfluous), rows) as tf.Tensor2D;
  return { value: tf.mean(tf.logSumExp(logits, 1)), dLogits };
}

export function objectiveGradient(
  objective: Objective,
  logits: tf.Tensor2D,
  realClasses: number,
): ObjectiveResult {
  return objective === 'H' ? entropyObjective(logits) : superfluousObjective(logits, realClasses);
}
