/**
 * The scores of `supsupd evaluate`, pure: what the daemon assigned and predicted per record against
 * the record's true task (and, where known, its class). Built on the shared discovery scoring
 * (contingency, dominant task, ARI, detection delays) of src/daemon/demo-report.ts.
 */
import { normalisedMutualInformation, scoreDiscovery } from '../daemon/demo-report.js';

/** Per scored record, in stream order. Classes are −1 where the record's class is unknown. */
export interface EvaluationInput {
  /** Index of the record's true task in `trueTaskNames`. */
  readonly truth: readonly number[];
  /** The task the daemon assigned. */
  readonly found: readonly number[];
  /** The record's class (its `y`, or the scoring-only label field), or −1. */
  readonly classes: readonly number[];
  /** Whether the record carried its label `y` (the daemon trained on it) rather than only a scoring class. */
  readonly labelled: readonly boolean[];
  /** The class the daemon predicted live (the result record's `prediction`). */
  readonly live: readonly number[];
  /** The class predicted at the end under the record's assigned mask as it finally is (−1: not re-classified). */
  readonly final: readonly number[];
  readonly trueTaskNames: readonly string[];
}

export interface TrueChange {
  /** Index of the first record of the new true task. */
  readonly at: number;
  readonly from: string;
  readonly to: string;
  /** Records from the change until the first one assigned to the new task's dominant discovered task. */
  readonly delay: number;
  /** False when no record of the segment went to that task (the delay is then the segment's length). */
  readonly detected: boolean;
}

export interface DiscoveredTaskScore {
  readonly task: number;
  readonly records: number;
  /** Records with a known class, and the share of them predicted right live; null without any. */
  readonly scored: number;
  readonly accuracy: number | null;
  /** The true task most of its records belong to. */
  readonly mostly: string;
}

/** Accuracy on a set of records with a known class: live, with the final masks, and the drop between. */
export interface LiveAndFinal {
  readonly scored: number;
  readonly live_accuracy: number | null;
  readonly final_accuracy: number | null;
  /** live − final: positive when the final masks do worse on the records than seen live. */
  readonly forgetting: number | null;
}

export interface ForgettingScore {
  readonly true_task: string;
  /** The discovered task most of its records went to. */
  readonly mask: number;
  /** Every record of the task with a known class (each re-classified under the mask it was assigned to). */
  readonly all: LiveAndFinal;
  /** Those sent without `y`: records the daemon never trained on. */
  readonly unlabelled: LiveAndFinal;
}

export interface EvaluationScores {
  readonly records: number;
  readonly true_tasks: number;
  readonly discovered_tasks: number;
  readonly ari: number;
  readonly nmi: number;
  readonly spurious_allocations: number;
  /** true task name → discovered task → records. */
  readonly confusion: Readonly<Record<string, Readonly<Record<string, number>>>>;
  readonly tasks: readonly DiscoveredTaskScore[];
  readonly changes: readonly TrueChange[];
  readonly forgetting: readonly ForgettingScore[];
  /** Over every record with a known class. */
  readonly live_accuracy: number | null;
  readonly final_accuracy: number | null;
}

/** Indices where the true task differs from the record before (the first record is no change). */
export function trueChanges(truth: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = 1; i < truth.length; i++) if (truth[i] !== truth[i - 1]) out.push(i);
  return out;
}

export function scoreEvaluation(input: EvaluationInput): EvaluationScores {
  const { truth, found, trueTaskNames } = input;
  const n = truth.length;
  if (
    found.length !== n ||
    input.classes.length !== n ||
    input.labelled.length !== n ||
    input.live.length !== n ||
    input.final.length !== n
  ) {
    throw new RangeError('evaluation inputs differ in length');
  }
  if (n === 0) throw new RangeError('no records to score');
  const changes = trueChanges(truth);
  const base = scoreDiscovery({ truth, found }, [0, ...changes]);
  const name = (t: number) => trueTaskNames[t] ?? String(t);
  const confusion: Record<string, Record<string, number>> = {};
  for (const [t, row] of Object.entries(base.contingency)) confusion[name(Number(t))] = { ...row };
  const segmentEnd = (s: number) => changes[s + 1] ?? n;
  return {
    records: n,
    true_tasks: base.true_tasks,
    discovered_tasks: base.discovered_tasks,
    ari: base.adjusted_rand_index,
    nmi: normalisedMutualInformation(truth, found),
    spurious_allocations: base.spurious_allocations,
    confusion,
    tasks: discoveredTaskScores(input, name),
    changes: changes.map((at, s) => {
      const delay = base.detection_delays[s] as number;
      return {
        at,
        from: name(truth[at - 1] as number),
        to: name(truth[at] as number),
        delay,
        detected: at + delay < segmentEnd(s),
      };
    }),
    forgetting: forgettingScores(input, base.dominant, name),
    live_accuracy: accuracyOver(input, input.live, () => true),
    final_accuracy: accuracyOver(input, input.final, () => true),
  };
}

/** The share of records with a known class that `predictions` got right, among those `keep` selects. */
function accuracyOver(
  input: EvaluationInput,
  predictions: readonly number[],
  keep: (i: number) => boolean,
): number | null {
  let scored = 0;
  let correct = 0;
  input.classes.forEach((c, i) => {
    if (c < 0 || !keep(i)) return;
    scored++;
    if (predictions[i] === c) correct++;
  });
  return scored === 0 ? null : correct / scored;
}

function discoveredTaskScores(input: EvaluationInput, name: (t: number) => string): DiscoveredTaskScore[] {
  const tasks = [...new Set(input.found)].sort((a, b) => a - b);
  return tasks.map((task) => {
    const byTruth = new Map<number, number>();
    let records = 0;
    let scored = 0;
    input.found.forEach((f, i) => {
      if (f !== task) return;
      records++;
      if ((input.classes[i] as number) >= 0) scored++;
      const t = input.truth[i] as number;
      byTruth.set(t, (byTruth.get(t) ?? 0) + 1);
    });
    const mostly = [...byTruth.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]?.[0] ?? -1;
    const accuracy = accuracyOver(input, input.live, (i) => input.found[i] === task);
    return { task, records, scored, accuracy, mostly: name(mostly) };
  });
}

/** Per true task, in the order the tasks first appear: live against final accuracy on its records. */
function forgettingScores(
  input: EvaluationInput,
  dominant: Readonly<Record<string, number>>,
  name: (t: number) => string,
): ForgettingScore[] {
  const order = [...new Set(input.truth)];
  return order.map((t) => {
    const mine = (i: number) => input.truth[i] === t;
    return {
      true_task: name(t),
      mask: dominant[t] as number,
      all: liveAndFinal(input, mine),
      unlabelled: liveAndFinal(input, (i) => mine(i) && input.labelled[i] !== true),
    };
  });
}

function liveAndFinal(input: EvaluationInput, keep: (i: number) => boolean): LiveAndFinal {
  const scored = input.classes.filter((c, i) => c >= 0 && keep(i)).length;
  const live = accuracyOver(input, input.live, keep);
  const final = accuracyOver(input, input.final, keep);
  return {
    scored,
    live_accuracy: live,
    final_accuracy: final,
    forgetting: live === null || final === null ? null : live - final,
  };
}
