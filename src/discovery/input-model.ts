/**
 * What a task's inputs look like: the mean and variance per feature of the rows the task was
 * trained on, kept as a running mean and sum of squared deviations of the raw inputs (so the input
 * transform, still fitting on a stream's first records, does not move them). A stretch of n rows is
 * compared with it by the mean of its rows: per feature z² = n (x̄ − μ)² / (σ² + τ²), each capped at
 * `SHIFT_CAP`, averaged over features. Under the task's own distribution this is about 1 + n/N
 * (N rows behind the model) whatever n is, and it grows with n times the squared shift: a batch-mean
 * test, far more sensitive to a moved distribution than any row's own distance. The variance is
 * shrunk towards the feature's variance on the stream's first records, g = 1 / scale² (scale the
 * input transform's factor): σ² = (M2 + k₀ g) / (N + k₀), so a feature a young task has rarely seen
 * move (a pixel inked in one image of a hundred) is not judged by a variance of nearly zero; and
 * τ² = 0.01 g keeps features that never moved at all from dividing by zero.
 *
 * State is rounded to float32 after every update, so the persisted arrays are the live state
 * exactly and a restart goes on bit for bit.
 */
export interface InputModelState {
  readonly rows: number;
  readonly mean: Float32Array;
  readonly m2: Float32Array;
}

export const SHIFT_FLOOR = 0.01;
/** Pseudo-rows of the stream's variance in a task's variance (shrinkage). */
export const SHIFT_PRIOR_ROWS = 32;
export const SHIFT_CAP = 50;

export function emptyInputModel(features: number): InputModelState {
  return { rows: 0, mean: new Float32Array(features), m2: new Float32Array(features) };
}

/** The model after absorbing `rows` rows of x (Chan et al.'s pairwise merge of two samples). */
export function absorbRows(
  model: InputModelState,
  x: Float32Array,
  rows: number,
  memory: number,
): InputModelState {
  const d = model.mean.length;
  if (rows === 0) return model;
  const mean = new Float32Array(d);
  const m2 = new Float32Array(d);
  const before = model.rows;
  const total = before + rows;
  for (let j = 0; j < d; j++) {
    let sum = 0;
    for (let r = 0; r < rows; r++) sum += x[r * d + j] as number;
    const batchMean = sum / rows;
    let squares = 0;
    for (let r = 0; r < rows; r++) squares += ((x[r * d + j] as number) - batchMean) ** 2;
    const delta = batchMean - (model.mean[j] as number);
    const merged = (model.m2[j] as number) + squares + ((delta * delta * before) / total) * rows;
    mean[j] = (model.mean[j] as number) + (delta * rows) / total;
    // Past the memory the sums are scaled down, so the model follows a task that drifts slowly.
    m2[j] = total > memory ? (merged * memory) / total : merged;
  }
  return { rows: Math.min(total, memory), mean, m2 };
}

/** Running column sums of a batch: row r's prefix is sums[r·d .. (r+1)·d) = Σ_{i<r} x_i. */
export function columnPrefixSums(x: Float32Array, rows: number, d: number): Float64Array {
  const sums = new Float64Array((rows + 1) * d);
  for (let r = 0; r < rows; r++) {
    const from = r * d;
    const to = from + d;
    for (let j = 0; j < d; j++) sums[to + j] = (sums[from + j] as number) + (x[from + j] as number);
  }
  return sums;
}

/** The shift statistic of rows [from, to) of a batch, given its column prefix sums. */
export function shiftStatistic(
  model: InputModelState,
  prefix: Float64Array,
  from: number,
  to: number,
  scale: Float32Array,
): number {
  const d = model.mean.length;
  const n = to - from;
  if (n <= 0 || model.rows === 0) return 0;
  let sum = 0;
  for (let j = 0; j < d; j++) {
    const mean = ((prefix[to * d + j] as number) - (prefix[from * d + j] as number)) / n;
    const z2 = (n * (mean - (model.mean[j] as number)) ** 2) / shiftVariance(model, scale, j);
    sum += Math.min(z2, SHIFT_CAP);
  }
  return sum / d;
}

/** Feature j's variance as the shift statistic uses it: shrunk towards the stream's, floored. */
export function shiftVariance(model: InputModelState, scale: Float32Array, j: number): number {
  const global = 1 / (scale[j] as number) ** 2;
  const own = ((model.m2[j] as number) + SHIFT_PRIOR_ROWS * global) / (model.rows + SHIFT_PRIOR_ROWS);
  return own + SHIFT_FLOOR * global;
}

/** What the statistic is expected to be for n rows of the task itself: 1 + n/N. */
export function expectedShift(model: InputModelState, n: number): number {
  return 1 + n / Math.max(model.rows, 1);
}

/** Per-feature cap of a row's own distance. */
export const ROW_CAP = 25;

/**
 * Each row's own distance from the model: the mean over features of (x − μ)² / σ² (the shift
 * statistic's variance), each term capped at ROW_CAP. About 1 for the task's own rows; used to
 * pick out the rows of a micro-batch that do not belong to a task.
 */
export function rowDistances(
  model: InputModelState,
  raw: Float32Array,
  rows: number,
  scale: Float32Array,
): Float64Array {
  const d = model.mean.length;
  const inverse = new Float64Array(d);
  for (let j = 0; j < d; j++) inverse[j] = 1 / shiftVariance(model, scale, j);
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let j = 0; j < d; j++) {
      const term = ((raw[r * d + j] as number) - (model.mean[j] as number)) ** 2 * (inverse[j] as number);
      sum += Math.min(term, ROW_CAP);
    }
    out[r] = sum / d;
  }
  return out;
}

/**
 * Mean over features of log σ²ⱼ (the variances rowDistances divides by): added to a row's distance
 * it gives the row's negative log-likelihood under the task's diagonal Gaussian, per feature, up to
 * a constant shared by every task, so rows can be compared across tasks.
 */
export function logVarianceMean(model: InputModelState, scale: Float32Array): number {
  const d = model.mean.length;
  let sum = 0;
  for (let j = 0; j < d; j++) sum += Math.log(shiftVariance(model, scale, j));
  return sum / d;
}
