/**
 * Per-record scores of a discovery run against the true tasks of a generated stream.
 */
import {
  adjustedRandIndex,
  firstAssignedAfter,
  normalisedMutualInformation,
} from '../../daemon/demo-report.js';
import type { RunOutput } from './run.js';
import type { GeneratedStream } from './streams.js';

export interface StreamScore {
  readonly name: string;
  readonly records: number;
  readonly true_tasks: number;
  readonly tasks_found: number;
  readonly ari: number;
  readonly ari_unlabelled: number;
  readonly nmi: number;
  /** Records from each change until most records go to the new segment's task. */
  readonly detection_delays: readonly number[];
  readonly spurious_allocations: number;
  /** Every returning segment went to the mask of its task's first segment. */
  readonly returning_reused: boolean | null;
  readonly accuracy_unlabelled: number;
  readonly oracle_accuracy_unlabelled: number;
  /** Results with task confidence ≥ 0.9, and the share of them on their true task's mask. */
  readonly confident_results: number;
  readonly confident_correct: number;
  readonly seconds: number;
  readonly verdict: 'pass' | 'fail';
  readonly failures: readonly string[];
}

export interface Targets {
  readonly ari: number;
  readonly accuracyGap: number;
}

export const TARGETS: Targets = { ari: 0.95, accuracyGap: 0.03 };

export function scoreRun(
  stream: GeneratedStream,
  run: RunOutput,
  oracle: RunOutput,
  targets = TARGETS,
): StreamScore {
  const truth = stream.records.map((r) => r.truth);
  const found = Array.from(run.tasks);
  const unlabelled = stream.records.flatMap((r, i) => (r.y === undefined ? [i] : []));
  const dominant = dominantMasks(truth, found);
  const trueTasks = new Set(truth).size;
  const tasksFound = new Set(found.filter((t) => t >= 0)).size;
  const accuracy = (predictions: Int32Array) =>
    unlabelled.length === 0
      ? 1
      : unlabelled.filter((i) => predictions[i] === (stream.records[i] as { label: number }).label).length /
        unlabelled.length;
  let confident = 0;
  let confidentCorrect = 0;
  found.forEach((task, i) => {
    if ((run.taskConfidence[i] as number) < 0.9) return;
    confident++;
    if (dominant.get(truth[i] as number) === task) confidentCorrect++;
  });
  const ari = adjustedRandIndex(truth, found);
  const ariUnlabelled =
    unlabelled.length < 2
      ? 1
      : adjustedRandIndex(
          unlabelled.map((i) => truth[i] as number),
          unlabelled.map((i) => found[i] as number),
        );
  const score = {
    name: stream.spec.name,
    records: stream.records.length,
    true_tasks: trueTasks,
    tasks_found: tasksFound,
    ari,
    ari_unlabelled: ariUnlabelled,
    nmi: normalisedMutualInformation(truth, found),
    detection_delays: detectionDelays(stream, found, dominant),
    spurious_allocations: Math.max(0, tasksFound - trueTasks),
    returning_reused: returningReused(stream, found),
    accuracy_unlabelled: accuracy(run.predictions),
    oracle_accuracy_unlabelled: accuracy(oracle.predictions),
    confident_results: confident,
    confident_correct: confident === 0 ? 1 : confidentCorrect / confident,
    seconds: run.seconds,
  };
  const failures: string[] = [];
  if (tasksFound !== trueTasks) failures.push(`${tasksFound} tasks for ${trueTasks}`);
  if (ari < targets.ari) failures.push(`ARI ${ari.toFixed(3)}`);
  if (ariUnlabelled < targets.ari) failures.push(`unlabelled ARI ${ariUnlabelled.toFixed(3)}`);
  if (score.returning_reused === false) failures.push('a returning task got a new mask');
  if (score.accuracy_unlabelled < score.oracle_accuracy_unlabelled - targets.accuracyGap) {
    failures.push(
      `accuracy ${score.accuracy_unlabelled.toFixed(3)} vs oracle ${score.oracle_accuracy_unlabelled.toFixed(3)}`,
    );
  }
  return { ...score, verdict: failures.length === 0 ? 'pass' : 'fail', failures };
}

/** The mask most records of each true task went to. */
function dominantMasks(truth: readonly number[], found: readonly number[]): Map<number, number> {
  const counts = new Map<number, Map<number, number>>();
  truth.forEach((t, i) => {
    const row = counts.get(t) ?? new Map<number, number>();
    row.set(found[i] as number, (row.get(found[i] as number) ?? 0) + 1);
    counts.set(t, row);
  });
  const out = new Map<number, number>();
  for (const [t, row] of counts) {
    const best = [...row.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0];
    if (best !== undefined) out.set(t, best[0]);
  }
  return out;
}

function detectionDelays(
  stream: GeneratedStream,
  found: readonly number[],
  dominant: Map<number, number>,
): number[] {
  const starts = stream.segmentStarts;
  const delays: number[] = [];
  for (let s = 1; s < stream.spec.schedule.length; s++) {
    const start = starts[s] as number;
    const end = starts[s + 1] as number;
    const target = dominant.get(stream.spec.schedule[s] as number);
    delays.push(firstAssignedAfter(found, start, end, target) - start);
  }
  return delays;
}

/** Whether each returning segment's majority mask is its task's first segment's; null without returns. */
function returningReused(stream: GeneratedStream, found: readonly number[]): boolean | null {
  const first = new Map<number, number>();
  let returns = false;
  let ok = true;
  stream.spec.schedule.forEach((truth, s) => {
    const from = stream.segmentStarts[s] as number;
    const to = stream.segmentStarts[s + 1] as number;
    const counts = new Map<number, number>();
    for (let i = from; i < to; i++) counts.set(found[i] as number, (counts.get(found[i] as number) ?? 0) + 1);
    const mask = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
    if (!first.has(truth)) first.set(truth, mask as number);
    else {
      returns = true;
      ok &&= first.get(truth) === mask;
    }
  });
  return returns ? ok : null;
}
