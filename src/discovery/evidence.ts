/**
 * The evidence rule's pure parts (docs/discovery.md, "The evidence rule"): what each task has learned
 * about its own rows, whether a stretch of rows fits a task, and where in a micro-batch a change
 * falls. Numbers in, numbers out: the learner computes the per-row evidence with the engine.
 *
 * Evidence of rows under a task t: the shift of their mean from t's inputs (input-model.ts), and
 * for labelled rows their cross-entropy under t's mask before any training on them. Both are
 * compared with t's own bands, fitted prequentially on the batches t was trained on: the shift
 * ratio (statistic over its expectation) in an exponentially weighted band over batches, the loss
 * in a band over rows (row-band.ts).
 */
import {
  absorbRows,
  emptyInputModel,
  expectedShift,
  type InputModelState,
  shiftStatistic,
  shiftVariance,
} from './input-model.js';
import { type EntropyBand as BatchBand, EMPTY_BAND, observeEntropy as observeBatch } from './policy.js';
import { aboveBand, EMPTY_ROW_BAND, excess, observeRows, type RowBand } from './row-band.js';

export interface EvidenceConfig {
  /** A stretch of rows leaves a band when its statistic is this many standard deviations above it… */
  readonly z: number;
  /** …and at least this fraction above the band's mean (input shift ratio). */
  readonly inputEffect: number;
  /** Before a task's shift band is calibrated: the shift ratio that counts as a change. */
  readonly uncalibratedShift: number;
  /** Batches a shift band needs before it is trusted. */
  readonly shiftBatches: number;
  /** Weight of a new batch in the shift band. */
  readonly shiftSmoothing: number;
  /**
   * Prior standard deviation of a task's shift ratio: a young band's variance is shrunk towards it,
   * (b·v + 4·prior²) / (b + 4) after b batches, so three lucky batches do not make a narrow band.
   */
  readonly shiftPriorStd: number;
  /** …and at least this fraction above the band's mean (loss). */
  readonly lossEffect: number;
  /** Labelled rows the loss band needs before it is trusted. */
  readonly minBandRows: number;
  /** Rows the input model remembers. */
  readonly inputMemory: number;
  /** Rows the loss band remembers (short: a mask that learns lowers its loss quickly). */
  readonly lossMemory: number;
  /** Labelled batches before a fresh mask's loss band can be settled. */
  readonly settleBatches: number;
  /** A settled loss band falls by less than this fraction per labelled batch. */
  readonly settleFall: number;
  /**
   * The fewest rows on either side of a split and in each part of a mixed batch, and the fewest
   * labelled rows a new mask is allocated for.
   */
  readonly minSplitRows: number;
  /** A row is foreign to a task when its own distance is this many band deviations above the task's rows… */
  readonly rowZ: number;
  /** …and this fraction above their mean. */
  readonly rowEffect: number;
  /** From this many masks on, only the one-shot shortlist is checked. */
  readonly shortlistFrom: number;
  /** Size of the one-shot shortlist. */
  readonly shortlist: number;
}

export const DEFAULT_EVIDENCE: EvidenceConfig = {
  z: 5,
  inputEffect: 0.25,
  uncalibratedShift: 3,
  shiftBatches: 4,
  shiftSmoothing: 0.1,
  shiftPriorStd: 0.3,
  lossEffect: 0.25,
  minBandRows: 128,
  inputMemory: 4096,
  lossMemory: 512,
  settleBatches: 3,
  settleFall: 0.1,
  minSplitRows: 8,
  rowZ: 4,
  rowEffect: 0.5,
  shortlistFrom: 17,
  shortlist: 8,
};

/** What a task knows about its own rows. */
export interface TaskProfile {
  readonly input: InputModelState;
  /** The shift ratio of the task's own batches. */
  readonly shiftBand: BatchBand;
  /** Each of the task's own rows' distance from its input model (input-model.ts rowDistances). */
  readonly rowBand: RowBand;
  readonly lossBand: RowBand;
  /** Labelled batches the task was trained on. */
  readonly batches: number;
  /** The loss band's mean after each of the last labelled batches (newest last). */
  readonly lossTrail: readonly number[];
  /** Prequential accuracy: correct labelled rows before training on them, with the loss band's memory. */
  readonly accuracy: RowBand;
}

export function newProfile(features: number): TaskProfile {
  return {
    input: emptyInputModel(features),
    shiftBand: EMPTY_BAND,
    rowBand: EMPTY_ROW_BAND,
    lossBand: EMPTY_ROW_BAND,
    batches: 0,
    lossTrail: [],
    accuracy: EMPTY_ROW_BAND,
  };
}

/** Whether the task's loss band has settled: enough batches and no longer falling fast. */
export function lossSettled(profile: TaskProfile, config: EvidenceConfig): boolean {
  if (profile.batches < config.settleBatches || profile.lossBand.rows < config.minBandRows) return false;
  const trail = profile.lossTrail;
  const newest = trail[trail.length - 1];
  const before = trail[trail.length - 2];
  if (newest === undefined || before === undefined) return false;
  return before - newest <= config.settleFall * before;
}

/** Evidence of a batch's rows under one task. */
export interface RowEvidence {
  /** Column prefix sums of the batch's raw rows (shared by every task; input-model.ts). */
  readonly prefix: Float64Array;
  /** The input transform's per-feature factors (they set the shift statistic's floor). */
  readonly scale: Float32Array;
  /** Loss of every row under the task's mask; NaN for rows without a label. */
  readonly losses: ArrayLike<number>;
  /** Each row's distance from the task's input model (input-model.ts rowDistances), where known. */
  readonly distances?: ArrayLike<number>;
}

/** How a stretch of rows [from, to) stands against a task's bands. */
export interface Fit {
  /** Both statistics inside the bands (or not yet judged). */
  readonly fits: boolean;
  /** The larger of the two excesses in band standard deviations (0 when below): lower fits better. */
  readonly score: number;
  /** Which statistic left its band, if one did. */
  readonly left: 'input' | 'loss' | null;
  /** Whether the loss was judged (a settled band and labelled rows). */
  readonly lossJudged: boolean;
}

/** The shift ratio of rows [from, to) under a task: statistic over its expectation. */
export function shiftRatio(
  profile: TaskProfile,
  batch: { readonly prefix: Float64Array; readonly scale: Float32Array },
  from: number,
  to: number,
): number {
  if (profile.input.rows === 0) return 1;
  return (
    shiftStatistic(profile.input, batch.prefix, from, to, batch.scale) /
    expectedShift(profile.input, to - from)
  );
}

/** How far a shift ratio lies above the task's band, in its standard deviations, and whether it left it. */
export function shiftExcess(
  profile: TaskProfile,
  ratio: number,
  config: EvidenceConfig,
): { z: number; left: boolean } {
  const band = profile.shiftBand;
  if (profile.input.rows === 0) return { z: 0, left: false };
  if (band.observations < config.shiftBatches) {
    const sd = (config.uncalibratedShift - 1) / config.z;
    return { z: (ratio - 1) / sd, left: ratio > config.uncalibratedShift };
  }
  const b = band.observations;
  const sd = Math.sqrt(
    (b * band.variance + SHIFT_PRIOR_BATCHES * config.shiftPriorStd ** 2) / (b + SHIFT_PRIOR_BATCHES),
  );
  const z = (ratio - band.mean) / sd;
  return { z, left: z > config.z && ratio > band.mean * (1 + config.inputEffect) };
}

export function fitOf(
  profile: TaskProfile,
  evidence: RowEvidence,
  from: number,
  to: number,
  config: EvidenceConfig,
): Fit {
  // A task whose inputs were never seen (a mask restored without its profile, or one allocated on
  // an unlabelled batch) has no evidence that anything belongs to it.
  if (profile.input.rows === 0) return UNSEEN;
  const input = shiftExcess(profile, shiftRatio(profile, evidence, from, to), config);
  let score = Math.max(0, input.z);
  let left: Fit['left'] = input.left ? 'input' : null;
  const spread = spreadExcess(profile, evidence.distances, from, to, config);
  if (spread !== null) {
    score = Math.max(score, spread.z);
    if (spread.left) left ??= 'input';
  }
  const { mean: loss, n: labelled } = meanOf(evidence.losses, from, to);
  const lossJudged = labelled > 0 && lossSettled(profile, config);
  if (lossJudged) {
    score = Math.max(score, excess(profile.lossBand, loss, labelled).z);
    if (aboveBand(profile.lossBand, loss, labelled, { z: config.z, effect: config.lossEffect }))
      left ??= 'loss';
  }
  return { fits: left === null, score, left, lossJudged };
}

/**
 * The rows' mean distance from the task's input model against the distances of the task's own
 * rows (its row band): this sees a change of spread or of many small means, which the shift ratio
 * of batch means misses. Null while the row band has fewer than `minBandRows` rows.
 */
function spreadExcess(
  profile: TaskProfile,
  distances: ArrayLike<number> | undefined,
  from: number,
  to: number,
  config: EvidenceConfig,
): { z: number; left: boolean } | null {
  if (distances === undefined || profile.rowBand.rows < config.minBandRows) return null;
  const { mean, n } = meanOf(distances, from, to);
  const { z } = excess(profile.rowBand, mean, n);
  return { z, left: aboveBand(profile.rowBand, mean, n, { z: config.z, effect: config.inputEffect }) };
}

const UNSEEN: Fit = { fits: false, score: Number.POSITIVE_INFINITY, left: 'input', lossJudged: false };

/** Mean of the non-NaN values in [from, to) and their count. */
export function meanOf(values: ArrayLike<number>, from: number, to: number): { mean: number; n: number } {
  let sum = 0;
  let n = 0;
  for (let i = from; i < to; i++) {
    const v = values[i] as number;
    if (Number.isNaN(v)) continue;
    sum += v;
    n++;
  }
  return { mean: n > 0 ? sum / n : 0, n };
}

/**
 * Where a change most likely falls in a batch of n rows that left a task's band: the k maximising
 * (Σ_{i≥k} aᵢ)² / (n − k) over k with a positive tail sum (the likelihood ratio of a mean shift in
 * aᵢ starting at k). For a loss rise aᵢ is a labelled row's loss minus the band's mean; for an input
 * shift it is the row's projection on the batch's shift direction, aᵢ = Σⱼ (xᵢⱼ − μⱼ)(x̄ⱼ − μⱼ)/σⱼ²
 * (the linear discriminant between the task and the batch; a batch that moved whole is best cut at
 * 0). Only k = 0 or k with at least `minRows` rows on either side.
 */
export function changePoint(
  profile: TaskProfile,
  evidence: RowEvidence & { readonly raw: Float32Array },
  n: number,
  left: 'input' | 'loss',
  minRows: number,
): number {
  const a =
    left === 'input' ? shiftProjections(profile.input, evidence, n) : lossExcess(profile, evidence, n);
  return bestCut(a, n, minRows);
}

/**
 * The change point of the rows' distances from the task's input model over its own rows' mean
 * (aᵢ = dᵢ − band mean): a second opinion where the batch-mean direction is dominated by noise (a
 * young model, few changed rows). Null while the row band has fewer than `minBandRows` rows.
 */
export function distanceChangePoint(
  profile: TaskProfile,
  distances: ArrayLike<number>,
  n: number,
  config: EvidenceConfig,
): number | null {
  if (profile.rowBand.rows < config.minBandRows) return null;
  const a = Float64Array.from({ length: n }, (_, i) => (distances[i] as number) - profile.rowBand.mean);
  return bestCut(a, n, config.minSplitRows);
}

/** The k maximising (Σ_{i≥k} aᵢ)² / (n − k) with a positive tail sum, k = 0 or `minRows` from either end. */
function bestCut(a: ArrayLike<number>, n: number, minRows: number): number {
  const allowed = (k: number) => k === 0 || (k >= minRows && n - k >= minRows);
  let best = 0;
  let bestStat = Number.NEGATIVE_INFINITY;
  let tail = 0;
  for (let k = n - 1; k >= 0; k--) {
    tail += a[k] as number;
    if (!allowed(k)) continue;
    const stat = tail > 0 ? (tail * tail) / (n - k) : 0;
    if (stat > bestStat) {
      bestStat = stat;
      best = k;
    }
  }
  return best;
}

function lossExcess(profile: TaskProfile, evidence: RowEvidence, n: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const loss = evidence.losses[i] as number;
    out[i] = Number.isNaN(loss) ? 0 : loss - profile.lossBand.mean;
  }
  return out;
}

/**
 * Each row's projection on the batch's shift direction from the task's input mean, in standard
 * units clipped to ±PROJECTION_CLIP per feature on both sides (a feature the task hardly varies
 * would otherwise let one row's stray value outweigh the rest).
 */
function shiftProjections(
  model: InputModelState,
  evidence: { readonly prefix: Float64Array; readonly scale: Float32Array; readonly raw: Float32Array },
  n: number,
): Float64Array {
  const d = model.mean.length;
  const direction = new Float64Array(d);
  const inverseStd = new Float64Array(d);
  for (let j = 0; j < d; j++) {
    const batchMean = ((evidence.prefix[n * d + j] as number) - (evidence.prefix[j] as number)) / n;
    inverseStd[j] = 1 / Math.sqrt(shiftVariance(model, evidence.scale, j));
    direction[j] = clip((batchMean - (model.mean[j] as number)) * (inverseStd[j] as number));
  }
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let p = 0;
    for (let j = 0; j < d; j++) {
      const z = ((evidence.raw[i * d + j] as number) - (model.mean[j] as number)) * (inverseStd[j] as number);
      p += clip(z) * (direction[j] as number);
    }
    out[i] = p;
  }
  return out;
}

/** Standard units beyond which a feature's deviation counts no more (change-point projections). */
const PROJECTION_CLIP = 5;

function clip(z: number): number {
  return Math.max(-PROJECTION_CLIP, Math.min(PROJECTION_CLIP, z));
}

/**
 * The profile after the task was trained on a stretch of rows whose evidence (computed before the
 * training) is given: the shift band takes the stretch's shift ratio (stretches of at least
 * `minShiftRows`), the loss and accuracy bands the labelled rows, the input model the rows.
 */
export function learnRows(
  profile: TaskProfile,
  rows: { readonly x: Float32Array; readonly count: number },
  evidence: {
    readonly shift: number;
    readonly distances: ArrayLike<number>;
    readonly losses: ArrayLike<number>;
    readonly correct: ArrayLike<number>;
  },
  config: EvidenceConfig,
): TaskProfile {
  const losses = finite(evidence.losses);
  const labelled = losses.length > 0;
  const lossBand = labelled ? observeRows(profile.lossBand, losses, config.lossMemory) : profile.lossBand;
  const trail = labelled ? [...profile.lossTrail, lossBand.mean].slice(-4) : profile.lossTrail;
  const judged = profile.input.rows > 0 && rows.count >= MIN_SHIFT_ROWS;
  return {
    input: absorbRows(profile.input, rows.x, rows.count, config.inputMemory),
    shiftBand: judged
      ? observeBatch(profile.shiftBand, evidence.shift, config.shiftSmoothing)
      : profile.shiftBand,
    rowBand:
      profile.input.rows > 0
        ? observeRows(profile.rowBand, evidence.distances, config.inputMemory)
        : profile.rowBand,
    lossBand,
    batches: profile.batches + (labelled ? 1 : 0),
    lossTrail: trail,
    accuracy: labelled
      ? observeRows(profile.accuracy, finite(evidence.correct), config.lossMemory)
      : profile.accuracy,
  };
}

/**
 * Which rows are foreign to a task: their own distance far above the task's rows' (rowZ band
 * deviations and rowEffect above the mean). None while the task's row band has fewer than
 * `minBandRows` rows.
 */
export function foreignRows(
  profile: TaskProfile,
  distances: ArrayLike<number>,
  config: EvidenceConfig,
): boolean[] {
  const band = profile.rowBand;
  const out = new Array<boolean>(distances.length).fill(false);
  if (band.rows < config.minBandRows) return out;
  const limit = Math.max(
    band.mean + config.rowZ * Math.sqrt(band.variance),
    band.mean * (1 + config.rowEffect),
  );
  for (let i = 0; i < distances.length; i++) out[i] = (distances[i] as number) > limit;
  return out;
}

/**
 * Which labelled rows are foreign to a task by their loss under its mask: far above the loss of the
 * task's own rows (rowZ band deviations and rowEffect above the loss band's mean), once the loss
 * band has settled. Rows without a label are never foreign by their loss.
 */
export function lossForeignRows(
  profile: TaskProfile,
  losses: ArrayLike<number>,
  config: EvidenceConfig,
): boolean[] {
  const band = profile.lossBand;
  const out = new Array<boolean>(losses.length).fill(false);
  if (!lossSettled(profile, config)) return out;
  const limit = Math.max(
    band.mean + config.rowZ * Math.sqrt(band.variance),
    band.mean * (1 + config.rowEffect),
  );
  for (let i = 0; i < losses.length; i++) out[i] = (losses[i] as number) > limit;
  return out;
}

/** Pseudo-batches of the prior variance in a shift band. */
const SHIFT_PRIOR_BATCHES = 4;

/** Stretches shorter than this do not feed the shift band (their ratio is noisier). */
const MIN_SHIFT_ROWS = 32;

function finite(values: ArrayLike<number>): number[] {
  const out: number[] = [];
  for (let i = 0; i < values.length; i++)
    if (!Number.isNaN(values[i] as number)) out.push(values[i] as number);
  return out;
}
