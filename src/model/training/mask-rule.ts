import * as tf from '@tensorflow/tfjs-core';
import { SupsupError } from '../../errors.js';
import { type MaskLayout, packLayers } from '../bank/index.js';

/**
 * How scores become a binary mask (spec §2).
 * threshold: M = 1[S ≥ 0], straight-through gradient ∂L/∂S = ∂L/∂W̃ ⊙ W.
 * topk (edge-popup): per layer keep the n − ⌊(1 − density)·n⌋ largest |S|; the straight-through
 *   gradient flows into |S|, so ∂L/∂S = sign(S) ⊙ ∂L/∂W̃ ⊙ W.
 */
export type MaskRule = { readonly kind: 'threshold' } | { readonly kind: 'topk'; readonly density: number };

export function validateMaskRule(rule: MaskRule): MaskRule {
  if (rule.kind === 'topk' && !(rule.density > 0 && rule.density <= 1)) {
    throw new SupsupError('E_BAD_ARGUMENT', `top-k density must lie in (0, 1], got ${rule.density}`);
  }
  return rule;
}

export function keptCount(n: number, density: number): number {
  return n - Math.floor((1 - density) * n);
}

/** The binary mask of one layer's scores, as 0/1 floats. Call inside tf.tidy. */
export function maskOfScores(scores: tf.Tensor2D, rule: MaskRule): tf.Tensor2D {
  if (rule.kind === 'threshold') return tf.cast(tf.greaterEqual(scores, 0), 'float32');
  const magnitude = tf.abs(scores);
  const keep = keptCount(scores.size, rule.density);
  const kth = tf.min(tf.topk(tf.reshape(magnitude, [-1]), keep, true).values);
  return tf.cast(tf.greaterEqual(magnitude, kth), 'float32');
}

/** ∂L/∂S from ∂L/∂W̃ by the straight-through estimator. Call inside tf.tidy. */
export function scoreGradient(
  dEffective: tf.Tensor2D,
  weights: tf.Tensor2D,
  scores: tf.Tensor2D,
  rule: MaskRule,
): tf.Tensor2D {
  const straight = tf.mul<tf.Tensor2D>(dEffective, weights);
  return rule.kind === 'threshold' ? straight : tf.mul<tf.Tensor2D>(straight, tf.sign(scores));
}

/** Packs final scores into a bit mask; top-k breaks ties by weight index, keeping exactly k entries. */
export function packScores(layout: MaskLayout, scores: readonly Float32Array[], rule: MaskRule): Uint8Array {
  if (rule.kind === 'threshold') return packLayers(layout, scores, 'scoreThreshold');
  const binary = scores.map((layer) => {
    const keep = keptCount(layer.length, rule.density);
    const order = Array.from(layer.keys()).sort((a, b) => {
      const d = Math.abs(layer[b] as number) - Math.abs(layer[a] as number);
      return d !== 0 ? d : a - b;
    });
    const out = new Float32Array(layer.length);
    for (let i = 0; i < keep; i++) out[order[i] as number] = 1;
    return out;
  });
  return packLayers(layout, binary, 'binary');
}

/**
 * The k-th largest value of `values` (1 ≤ k ≤ length), as tf.min(tf.topk(values, k).values) gives
 * it. Reorders `values` (a scratch copy): quickselect with a median-of-three pivot.
 */
export function kthLargestMagnitude(values: Float32Array, k: number): number {
  const target = values.length - k;
  let lo = 0;
  let hi = values.length - 1;
  while (hi > lo) {
    const mid = (lo + hi) >>> 1;
    const a = values[lo] as number;
    const b = values[mid] as number;
    const c = values[hi] as number;
    const pivot = Math.max(Math.min(a, b), Math.min(Math.max(a, b), c));
    let i = lo;
    let j = hi;
    while (i <= j) {
      while ((values[i] as number) < pivot) i++;
      while ((values[j] as number) > pivot) j--;
      if (i <= j) {
        const tmp = values[i] as number;
        values[i] = values[j] as number;
        values[j] = tmp;
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else return values[target] as number;
  }
  return values[target] as number;
}
