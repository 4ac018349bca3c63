/**
 * When a stream's task assignments should not be trusted, in words an operator can act on: inputs
 * that look unscaled while standardisation is off, and tasks none of which reaches a usable
 * prequential accuracy. Pure functions of what the learner already measured.
 */

/** A feature mean or standard deviation above this is a large magnitude. */
const LARGE_MAGNITUDE = 10;
/** The typical feature's |mean| / std above this is an offset. */
const LARGE_OFFSET = 3;
/** The largest feature std over the typical one above this is a mix of scales. */
const MIXED_SCALES = 100;
/** Labelled rows a task needs before its accuracy counts. */
const ACCURACY_ROWS = 256;

export const UNSCALED_INPUTS = 'inputs_unscaled';
export const NO_USABLE_ACCURACY = 'no_usable_accuracy';

export interface StreamWarning {
  /** Stable code: `inputs_unscaled` or `no_usable_accuracy`. */
  readonly code: string;
  readonly message: string;
}

/**
 * Whether features with this per-feature mean and standard deviation look unscaled: a large
 * magnitude anywhere, a typical offset of several standard deviations, or scales that differ by
 * more than a factor of 100. Null when they look usable or nothing was measured yet.
 */
export function unscaledInputs(mean: Float64Array, std: Float64Array): StreamWarning | null {
  const live: number[] = [];
  const offsets: number[] = [];
  let largest = 0;
  for (let j = 0; j < mean.length; j++) {
    const m = Math.abs(mean[j] as number);
    const s = std[j] as number;
    largest = Math.max(largest, m, s);
    if (s > 0) {
      live.push(s);
      offsets.push(m / s);
    }
  }
  if (live.length === 0) return null;
  const typical = median(live);
  const reasons: string[] = [];
  if (largest > LARGE_MAGNITUDE) reasons.push(`a feature reaches ${round(largest)}`);
  if (median(offsets) > LARGE_OFFSET)
    reasons.push(`the typical feature sits ${round(median(offsets))} std from 0`);
  if (Math.max(...live) > MIXED_SCALES * typical) {
    reasons.push(`feature scales differ by ${round(Math.max(...live) / typical)}x`);
  }
  if (reasons.length === 0) return null;
  return {
    code: UNSCALED_INPUTS,
    message: `inputs look unscaled (${reasons.join('; ')}) and model.input.standardise is off: task assignments are unreliable; use standardise auto or given values`,
  };
}

/**
 * A warning when tasks have enough labelled rows to judge and none of them predicts better than
 * min(0.5, 2 / classes) of its labels before training on them.
 */
export function noUsableAccuracy(
  tasks: readonly { readonly accuracy: number; readonly labelled: number }[],
  classes: number,
): StreamWarning | null {
  const judged = tasks.filter((t) => t.labelled >= ACCURACY_ROWS);
  if (judged.length === 0) return null;
  const usable = Math.min(0.5, 2 / classes);
  const best = Math.max(...judged.map((t) => t.accuracy));
  if (best >= usable) return null;
  return {
    code: NO_USABLE_ACCURACY,
    message: `no mask reaches a usable accuracy: the best prequential accuracy is ${round(best)} (usable: ${round(usable)} with ${classes} classes); check the labels, model.realClasses, the architecture and the input scaling`,
  };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
