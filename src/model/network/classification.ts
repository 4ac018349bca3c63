/** Per-row outcome of classifying a batch under one mask. */
export interface Classification {
  readonly predictions: Int32Array;
  readonly confidences: Float32Array;
  readonly entropies: Float32Array;
  /** Cross-entropy −log softmax(z)_y of each row with a label (NaN without one), when labels were given. */
  readonly losses?: Float64Array;
}

/**
 * Classifies `rows` rows of logits z (row-major, `outputs` per row) in float64: the predicted real
 * class (argmax over the first `realClasses` logits, the first index on ties), the probability
 * softmax over all outputs gives it, and the entropy of that softmax (natural log). A batch of
 * 128 × 100 logits takes tens of µs here, where a chain of tfjs ops (log-softmax, slice, argmax,
 * exp, entropy, three readbacks) cost about a millisecond per batch on the wasm backend.
 */
export function classifyLogits(
  logits: Float32Array,
  rows: number,
  outputs: number,
  realClasses: number,
  labels?: Int32Array,
): Classification {
  if (logits.length < rows * outputs || realClasses < 1 || realClasses > outputs) {
    throw new RangeError(
      `classifyLogits: ${logits.length} logits for ${rows}×${outputs}, ${realClasses} real`,
    );
  }
  const predictions = new Int32Array(rows);
  const confidences = new Float32Array(rows);
  const entropies = new Float32Array(rows);
  const losses = labels === undefined ? undefined : new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const base = r * outputs;
    let max = -Infinity;
    for (let j = 0; j < outputs; j++) max = Math.max(max, logits[base + j] as number);
    // softmax_j = e_j / s with e_j = exp(z_j − max); H = log s − Σ_j e_j (z_j − max) / s.
    let sum = 0;
    let weighted = 0;
    for (let j = 0; j < outputs; j++) {
      const shifted = (logits[base + j] as number) - max;
      const e = Math.exp(shifted);
      sum += e;
      weighted += e * shifted;
    }
    let best = 0;
    for (let j = 1; j < realClasses; j++) {
      if ((logits[base + j] as number) > (logits[base + best] as number)) best = j;
    }
    predictions[r] = best;
    confidences[r] = Math.exp((logits[base + best] as number) - max) / sum;
    entropies[r] = Math.log(sum) - weighted / sum;
    if (losses !== undefined) {
      const y = (labels as Int32Array)[r] as number;
      losses[r] = y >= 0 && y < outputs ? Math.log(sum) - ((logits[base + y] as number) - max) : Number.NaN;
    }
  }
  return losses === undefined
    ? { predictions, confidences, entropies }
    : { predictions, confidences, entropies, losses };
}
