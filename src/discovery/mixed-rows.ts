/**
 * Rows of a batch mixed of two tasks' records (a gradual change): which rows belong to the other
 * task, when only the current task has an input model. The strict per-row test (evidence.ts
 * foreignRows) picks out the rows that are clearly foreign; a diagonal Gaussian fitted on those
 * (input-model.ts, shrunk towards the stream's variance) then stands for the other task, and every
 * row goes to whichever of the two models makes it likelier (its distance plus the model's mean
 * log variance). Refitting on the rows it took repeats this a fixed number of times.
 */

import type { InputModelState } from './input-model.js';
import { absorbRows, emptyInputModel, logVarianceMean, rowDistances } from './input-model.js';

/** Rounds of refitting the other task's model on the rows it took. */
export const REFINE_ROUNDS = 2;

/** The rows of `raw` (rows × d, raw values) at the given indices, gathered. */
export function gatherRows(raw: Float32Array, d: number, rows: readonly number[]): Float32Array {
  const out = new Float32Array(rows.length * d);
  rows.forEach((r, i) => {
    out.set(raw.subarray(r * d, (r + 1) * d), i * d);
  });
  return out;
}

/**
 * Which rows are likelier under a model fitted on the `seed` rows than under the current task's
 * model, given each row's distance from the current model and that model's mean log variance.
 * Returns the seed unchanged when it has fewer than `minRows` rows (too few to fit a model on).
 */
export function likelierElsewhere(
  batch: { readonly raw: Float32Array; readonly rows: number; readonly scale: Float32Array },
  mine: { readonly distances: ArrayLike<number>; readonly logVariance: number },
  seed: readonly boolean[],
  options: { readonly minRows: number; readonly memory: number; readonly rounds: number },
): boolean[] {
  const d = batch.raw.length / Math.max(batch.rows, 1);
  let foreign = [...seed];
  for (let round = 0; round < options.rounds; round++) {
    const rows = foreign.flatMap((f, r) => (f ? [r] : []));
    if (rows.length < options.minRows) return foreign;
    const model: InputModelState = absorbRows(
      emptyInputModel(d),
      gatherRows(batch.raw, d, rows),
      rows.length,
      options.memory,
    );
    const theirs = rowDistances(model, batch.raw, batch.rows, batch.scale);
    const theirLog = logVarianceMean(model, batch.scale);
    const next = foreign.map(
      (_, r) => (theirs[r] as number) + theirLog < (mine.distances[r] as number) + mine.logVariance,
    );
    if (next.every((f, r) => f === foreign[r])) return next;
    foreign = next;
  }
  return foreign;
}
