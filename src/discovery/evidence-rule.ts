/**
 * The evidence rule (docs/discovery.md): a micro-batch stays on the stream's current task while its
 * rows fit that task's own bands (the shift of their mean from its inputs, and their loss once its
 * mask has settled). Otherwise, in this order: a change inside the batch (the head still fits the
 * current task) splits it; a batch that fits another task (all of them, or the one-shot shortlist
 * of many) goes there; a batch mixed of the current task's rows and foreign ones is divided row by
 * row; and rows no task explains start a new mask. Batches without labels are routed by the same
 * calibrated fits and never allocate.
 */
import type { SupermaskEngine } from '../model/engine.js';
import type { Objective } from '../model/training/objectives.js';
import type { BatchRows } from './batch-rows.js';
import {
  changePoint,
  distanceChangePoint,
  type EvidenceConfig,
  type Fit,
  fitOf,
  foreignRows,
  lossForeignRows,
  type TaskProfile,
} from './evidence.js';
import { columnPrefixSums, logVarianceMean, rowDistances } from './input-model.js';
import { likelierElsewhere, REFINE_ROUNDS } from './mixed-rows.js';
import type { Decision, PolicyConfig, PolicyState, RouteReason } from './policy.js';
import type { LearnedTask } from './task-trainer.js';

/** Rows of a batch (ascending indices) and the task they go to ('new': a mask allocated for them). */
export interface Group {
  readonly rows: readonly number[];
  readonly task: number | 'new';
  /** How sure the rule is of this assignment, in [0, 1] (reported per record). */
  readonly confidence: number;
  /**
   * False for rows placed on the nearest task because nothing fits them and nothing can be learned
   * from them: they are classified there, but neither train its mask nor enter its profile (a
   * stretch of a new task with too few labels would otherwise teach the old task the new inputs).
   */
  readonly learn?: boolean;
}

/** A task's evidence on every row of a batch, computed before any training on them. */
export interface TaskBatchEvidence {
  /** The batch's column prefix sums of raw rows, and the transform's factors (the same for every task). */
  readonly prefix: Float64Array;
  readonly scale: Float32Array;
  /** Each row's own distance from the task's inputs. */
  readonly distances: Float64Array;
  /** NaN for rows without a label. */
  readonly losses: Float64Array;
  /** 1 where the mask predicted the label, 0 where not, NaN without a label. */
  readonly correct: Float64Array;
}

export interface Assignment {
  /** Every row in exactly one group; at most one group is 'new'. */
  readonly groups: readonly Group[];
  readonly decision: Decision;
  /** Whether tasks other than the current one were examined. */
  readonly checked: boolean;
  /** Evidence computed on the way, by task (reused to update the profiles). */
  readonly evidence: ReadonlyMap<number, TaskBatchEvidence>;
  /** Paper rule: the batch entropy its fast-path band follows. */
  readonly entropy?: number;
}

export interface EvidenceContext {
  readonly engine: SupermaskEngine;
  readonly batch: BatchRows;
  readonly state: PolicyState;
  readonly policy: PolicyConfig;
  readonly profiles: readonly TaskProfile[];
  readonly tasks: readonly LearnedTask[];
  readonly config: EvidenceConfig;
  readonly objective: Objective;
}

/** Rows [from, to). */
export function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

/** Distances, and for labelled rows losses and hits, of `rows` under task `task`. */
export function taskEvidence(
  engine: SupermaskEngine,
  profile: TaskProfile,
  task: number,
  rows: BatchRows,
): TaskBatchEvidence {
  const distances = rowDistances(profile.input, rows.raw, rows.rows, rows.scale);
  const losses = new Float64Array(rows.rows).fill(Number.NaN);
  const correct = new Float64Array(rows.rows).fill(Number.NaN);
  if (rows.labelled > 0) {
    const classified = engine.classify(rows.x, task, rows.labels);
    const computed = classified.losses as Float64Array;
    for (let i = 0; i < rows.rows; i++) {
      const y = rows.labels[i] as number;
      if (y < 0) continue;
      losses[i] = computed[i] as number;
      correct[i] = classified.predictions[i] === y ? 1 : 0;
    }
  }
  return { prefix: rows.prefix, scale: rows.scale, distances, losses, correct };
}

/** The rule's view of one batch: evidence per task, computed once, and fits of row sets. */
class BatchView {
  readonly evidence = new Map<number, TaskBatchEvidence>();
  private readonly prefixes = new WeakMap<readonly number[], Float64Array>();
  constructor(private readonly context: EvidenceContext) {}

  evidenceOf(task: number): TaskBatchEvidence {
    let found = this.evidence.get(task);
    if (found === undefined) {
      const { engine, profiles, batch } = this.context;
      found = taskEvidence(engine, profiles[task] as TaskProfile, task, batch);
      this.evidence.set(task, found);
    }
    return found;
  }

  /** Fit of rows [from, to). */
  fit(task: number, from: number, to: number): Fit {
    return fitOf(this.profile(task), this.evidenceOf(task), from, to, this.context.config);
  }

  /** Fit of any set of rows (gathered: its own prefix sums). */
  fitRows(task: number, rows: readonly number[]): Fit {
    const e = this.evidenceOf(task);
    const evidence = {
      prefix: this.prefixOf(rows),
      scale: e.scale,
      losses: Float64Array.from(rows, (r) => e.losses[r] as number),
      distances: Float64Array.from(rows, (r) => e.distances[r] as number),
    };
    return fitOf(this.profile(task), evidence, 0, rows.length, this.context.config);
  }

  /**
   * Column prefix sums of a set of rows' raw values, computed once per set (every candidate task
   * is fitted on the same rows): the batch's own for the whole batch, else those of the gathered rows.
   */
  private prefixOf(rows: readonly number[]): Float64Array {
    const { batch } = this.context;
    if (rows.length === batch.rows && rows.every((r, i) => r === i)) return batch.prefix;
    let prefix = this.prefixes.get(rows);
    if (prefix === undefined) {
      const d = batch.raw.length / batch.rows;
      const gathered = new Float32Array(rows.length * d);
      rows.forEach((r, i) => {
        gathered.set(batch.raw.subarray(r * d, (r + 1) * d), i * d);
      });
      prefix = columnPrefixSums(gathered, rows.length, d);
      this.prefixes.set(rows, prefix);
    }
    return prefix;
  }

  profile(task: number): TaskProfile {
    return this.context.profiles[task] as TaskProfile;
  }
}

export function decideByEvidence(context: EvidenceContext): Assignment {
  const { batch, state, tasks } = context;
  const n = batch.rows;
  const view = new BatchView(context);
  const labelled = batch.labelled > 0;
  const canAllocate = labelled && tasks.length < context.policy.budget;
  const assign = (groups: Group[], decision: Decision, checked: boolean): Assignment => ({
    groups,
    decision,
    checked,
    evidence: view.evidence,
  });
  if (tasks.length === 0) {
    return assign([{ rows: range(0, n), task: 'new', confidence: 1 }], allocation(1), false);
  }
  const current = state.current !== null && state.current < tasks.length ? state.current : null;
  if (current !== null) {
    const own = view.fit(current, 0, n);
    if (own.fits) {
      return assign(
        [{ rows: range(0, n), task: current, confidence: keepConfidence(own, context.config) }],
        route(current, 'fits'),
        false,
      );
    }
  }
  const others = candidates(context, current);
  const fittingRows = (rows: readonly number[]) =>
    lowest(others.map((task) => ({ task, fit: view.fitRows(task, rows) })).filter((c) => c.fit.fits));
  const everyTask = current === null ? others : [current, ...others];
  const mayAllocate = (rows: readonly number[]) => canAllocate && newTaskEvidence(context, rows);
  const elsewhere = (rows: readonly number[], fallback: number) => {
    const fitting = fittingRows(rows);
    if (fitting !== null) return { task: fitting.task as number | 'new', confidence: 0.9, learn: true };
    if (mayAllocate(rows)) return { task: 'new' as const, confidence: 0.9, learn: true };
    return { task: nearestRows(view, everyTask, rows, fallback), confidence: 0.5, learn: false };
  };
  const decisionFor = (task: number | 'new', reason: RouteReason): Decision =>
    task === 'new' ? allocation(0.9) : route(task, reason);
  if (current !== null) {
    // A change inside the batch (the head still fits the current task, the tail goes on), or a batch
    // mixed of the current task's rows and foreign ones (a gradual change), divided row by row. Where
    // both exist, the mixture wins when foreign rows lie before the cut too (gradual()).
    const split = splitAt(context, view, current);
    // A labelled batch mixed of the current task's rows and a known task's (a gradual change into,
    // or back to, a task seen before), where no change point divides it: each row to the likelier of
    // the two. Not for unlabelled batches: one row's likelihood alone divides them too noisily.
    const divided = split === null && labelled ? divide(context, view, current, others) : null;
    if (divided !== null) {
      return assign(
        [
          { rows: divided.own, task: current, confidence: 0.8 },
          { rows: divided.other, task: divided.task, confidence: 0.8 },
        ],
        route(divided.task, 'split'),
        true,
      );
    }
    const mixed = mixedBatch(context, view, current, split);
    if (split !== null && (mixed === null || !gradual(context, view, current, mixed, split))) {
      const tailRows = range(split, n);
      const tail = elsewhere(tailRows, current);
      return assign(
        [
          { rows: range(0, split), task: current, confidence: 0.9 },
          { rows: tailRows, task: tail.task, confidence: tail.confidence, learn: tail.learn },
        ],
        decisionFor(tail.task, 'split'),
        true,
      );
    }
    if (mixed !== null && (split !== null || fittingRows(range(0, n)) === null)) {
      const away = elsewhere(mixed.foreign, current);
      return assign(
        [
          { rows: mixed.own, task: current, confidence: 0.8 },
          {
            rows: mixed.foreign,
            task: away.task,
            confidence: Math.min(away.confidence, 0.8),
            learn: away.learn,
          },
        ],
        decisionFor(away.task, 'split'),
        true,
      );
    }
  }
  const whole = fittingRows(range(0, n));
  if (whole !== null) {
    const reason = current === null ? 'first_seen' : 'switched';
    return assign(
      [{ rows: range(0, n), task: whole.task, confidence: 0.9 }],
      route(whole.task, reason),
      true,
    );
  }
  if (mayAllocate(range(0, n)))
    return assign([{ rows: range(0, n), task: 'new', confidence: 0.9 }], allocation(0.9), true);
  // Nothing fits and nothing can be learned (too few labels, or the budget is spent): the nearest task.
  const task = nearestRows(view, everyTask, range(0, n), current ?? 0);
  return assign(
    [{ rows: range(0, n), task, confidence: 0.5, learn: false }],
    route(task, labelled ? 'budget' : 'unlabelled'),
    true,
  );
}

/**
 * Whether rows carry the labelled evidence a new task needs: at least `minSplitRows` labelled rows
 * (a mask is trained on them). A handful of labelled rows at the edge of a split are no new task.
 */
function newTaskEvidence(context: EvidenceContext, rows: readonly number[]): boolean {
  const labels = context.batch.labels;
  let labelled = 0;
  for (const r of rows) if ((labels[r] as number) >= 0) labelled++;
  return labelled >= context.config.minSplitRows;
}

/**
 * The row where a change falls inside the batch, if the rows before it still fit the current task
 * and those after it do not; null when the batch does not split that way.
 */
function splitAt(context: EvidenceContext, view: BatchView, current: number): number | null {
  const n = context.batch.rows;
  const own = view.fit(current, 0, n);
  if (own.left === null) return null;
  const profile = view.profile(current);
  const evidence = { ...view.evidenceOf(current), raw: context.batch.raw };
  const cuts = [
    changePoint(profile, evidence, n, own.left, context.config.minSplitRows),
    distanceChangePoint(profile, evidence.distances, n, context.config),
  ];
  // Of the cuts whose head fits the current task and whose tail does not, the one whose tail
  // leaves it most clearly.
  let best: { k: number; score: number } | null = null;
  for (const k of cuts) {
    if (k === null || k === 0 || !view.fit(current, 0, k).fits) continue;
    const tail = view.fit(current, k, n);
    if (tail.fits) continue;
    if (best === null || tail.score > best.score) best = { k, score: tail.score };
  }
  return best?.k ?? null;
}

/** Share of the foreign rows that must lie before a split for the change to count as gradual. */
const MIXED_SHARE = 0.2;

/**
 * Whether a batch that also splits at `split` is rather mixed row by row (a gradual change): foreign
 * rows lie before the split as well as after it, or, in a labelled batch, the rows after the split
 * that the per-row test keeps (at least `minSplitRows`) fit the current task as a set. The per-row
 * test misses changed rows, but the batch-mean test on the kept rows does not: after a true change
 * they do not fit, while in the first batch of a mixing window (few foreign rows, most of them
 * after the cut) they are the current task's and do.
 */
function gradual(
  context: EvidenceContext,
  view: BatchView,
  current: number,
  mixed: { readonly own: readonly number[]; readonly foreign: readonly number[] },
  split: number,
): boolean {
  const foreignBefore = mixed.foreign.filter((r) => r < split).length;
  if (foreignBefore > MIXED_SHARE * mixed.foreign.length) return true;
  if (context.batch.labelled === 0) return false;
  const ownAfter = mixed.own.filter((r) => r >= split);
  return ownAfter.length >= context.config.minSplitRows && view.fitRows(current, ownAfter).fits;
}

/**
 * The batch's division into the current task's rows and foreign ones (mixture()), if it has one.
 * Where a labelled batch also splits, two more divisions are tried before the split is believed:
 * one that starts from the rows after the split (the other task's model fitted on them), and one
 * that allows fewer than `minSplitRows` foreign rows (the first batch of a mixing window); either
 * counts only when the batch is gradual() under it.
 */
function mixedBatch(
  context: EvidenceContext,
  view: BatchView,
  current: number,
  split: number | null,
): { own: number[]; foreign: number[] } | null {
  const strict = mixture(context, view, current);
  if (split === null || context.batch.labelled === 0) return strict;
  const n = context.batch.rows;
  const fromSplit = mixture(
    context,
    view,
    current,
    range(0, n).map((r) => r >= split),
  );
  if (fromSplit !== null && gradual(context, view, current, fromSplit, split)) return fromSplit;
  if (strict !== null) return strict;
  const few = mixture(context, view, current, undefined, 1);
  return few !== null && gradual(context, view, current, few, split) ? few : null;
}

/**
 * The current task's own rows and the foreign ones, if there are `minSplitRows` own rows and
 * `minForeign` foreign ones and the own rows fit. Foreign: far from the task's inputs or, labelled,
 * far above its loss (evidence.ts), or the rows of `seed`; in a labelled batch the rows are then
 * divided between the current task's input model and one fitted on the foreign rows
 * (mixed-rows.ts), and rows foreign by their loss stay foreign.
 */
function mixture(
  context: EvidenceContext,
  view: BatchView,
  current: number,
  seed?: readonly boolean[],
  minForeign = context.config.minSplitRows,
): { own: number[]; foreign: number[] } | null {
  const { batch, config } = context;
  const profile = view.profile(current);
  const evidence = view.evidenceOf(current);
  const byLoss = lossForeignRows(profile, evidence.losses, config);
  const first = (seed ?? foreignRows(profile, evidence.distances, config)).map(
    (f, r) => f || (byLoss[r] as boolean),
  );
  const foreign =
    batch.labelled === 0
      ? first
      : likelierElsewhere(
          batch,
          { distances: evidence.distances, logVariance: logVarianceMean(profile.input, batch.scale) },
          first,
          { minRows: config.minSplitRows, memory: config.inputMemory, rounds: REFINE_ROUNDS },
        ).map((f, r) => f || (byLoss[r] as boolean));
  const own: number[] = [];
  const away: number[] = [];
  foreign.forEach((isForeign, r) => {
    (isForeign ? away : own).push(r);
  });
  const min = context.config.minSplitRows;
  if (own.length < min || away.length < minForeign) return null;
  if (!view.fitRows(current, own).fits) return null;
  return { own, foreign: away };
}

/**
 * The best division of the batch between the current task and one other known task: each row goes
 * to the task under whose input model it is likelier (its distance plus the model's mean log
 * variance, input-model.ts), and the division counts when both parts have `minSplitRows` rows and
 * each fits its task. The other task with the lowest worse-part excess wins; null when none fits.
 */
function divide(
  context: EvidenceContext,
  view: BatchView,
  current: number,
  others: readonly number[],
): { own: number[]; other: number[]; task: number } | null {
  const n = context.batch.rows;
  const min = context.config.minSplitRows;
  const scale = context.batch.scale;
  const mine = view.evidenceOf(current).distances;
  const myLog = logVarianceMean(view.profile(current).input, scale);
  let best: { own: number[]; other: number[]; task: number; score: number } | null = null;
  for (const task of others) {
    const theirs = view.evidenceOf(task).distances;
    const theirLog = logVarianceMean(view.profile(task).input, scale);
    const own: number[] = [];
    const other: number[] = [];
    for (let r = 0; r < n; r++) {
      ((mine[r] as number) + myLog <= (theirs[r] as number) + theirLog ? own : other).push(r);
    }
    if (own.length < min || other.length < min) continue;
    const ownFit = view.fitRows(current, own);
    const otherFit = view.fitRows(task, other);
    if (!ownFit.fits || !otherFit.fits) continue;
    const score = Math.max(ownFit.score, otherFit.score);
    if (best === null || score < best.score) best = { own, other, task, score };
  }
  return best === null ? null : { own: best.own, other: best.other, task: best.task };
}

function candidates(context: EvidenceContext, current: number | null): number[] {
  const count = context.tasks.length;
  const all = range(0, count).filter((t) => t !== current);
  if (count < context.config.shortlistFrom) return all;
  const { batch, engine } = context;
  const gradient = engine.alphaGradient(batch.x, batch.rows, context.objective);
  return all
    .sort((a, b) => (gradient[a] as number) - (gradient[b] as number) || a - b)
    .slice(0, context.config.shortlist);
}

function lowest<T extends { task: number; fit: Fit }>(list: readonly T[]): T | null {
  let best: T | null = null;
  for (const item of list) if (best === null || item.fit.score < best.fit.score) best = item;
  return best;
}

function nearestRows(
  view: BatchView,
  tasks: readonly number[],
  rows: readonly number[],
  fallback: number,
): number {
  let best = fallback;
  let bestScore = Number.POSITIVE_INFINITY;
  for (const task of tasks) {
    const score = view.fitRows(task, rows).score;
    if (score < bestScore) {
      bestScore = score;
      best = task;
    }
  }
  return best;
}

function route(task: number, reason: RouteReason): Decision {
  return { kind: 'route', task, confidence: 1, reason };
}

function allocation(confidence: number): Decision {
  return { kind: 'allocate', confidence, reason: 'uncertain' };
}

/** Confidence of staying on a task that fits: near 1 deep inside its bands, 0.9 at their edge. */
function keepConfidence(fit: Fit, config: EvidenceConfig): number {
  return 0.99 - 0.09 * Math.min(1, Math.max(0, fit.score) / config.z);
}
