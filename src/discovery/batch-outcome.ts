/**
 * What the learner reports for a micro-batch (BatchOutcome), and the small pure steps of building it: a task's
 * evidence restricted to a group's rows, the examined tasks' summary for the decision log, and the decision as
 * the stream's policy state records it.
 */
import type { DaemonEvent, ResultRecord } from '../records.js';
import type { TaskBatchEvidence } from './evidence-rule.js';
import type { Decision } from './policy.js';

export interface BatchOutcome {
  readonly results: ResultRecord[];
  readonly events: DaemonEvent[];
  /** Tasks whose mask (and training state) changed in this batch. */
  readonly changed: ReadonlySet<number>;
  readonly decision: Decision;
  /** Whether masks other than the stream's current one were examined. */
  readonly checked: boolean;
  /** First row of the batch's second group where it was divided between two tasks, or null. */
  readonly split: number | null;
  /** Labelled rows and how many of them the mask they went to predicted right, before training on them. */
  readonly prequential: { readonly correct: number; readonly labelled: number };
  /** Rows of the batch that carried a label. */
  readonly labelled: number;
  /** The batch's number among the learned micro-batches of every stream (1, 2, …; 0 for a batch only inferred). */
  readonly sequence: number;
  /** The tasks the rule examined, each with its mean row distance and mean labelled loss (null: no labels). */
  readonly candidates: readonly Candidate[];
  /** Where the time went (for metrics; decisions never depend on it). */
  readonly work: {
    readonly inferSeconds: number;
    readonly trainSteps: number;
    readonly trainSeconds: number;
  };
}

/** A task the rule examined on a batch, and its evidence there (see BatchOutcome.candidates). */
export interface Candidate {
  readonly task: number;
  readonly distance: number;
  readonly loss: number | null;
}

/** A task's evidence on the batch, restricted to a group's rows. */
export function pick(evidence: TaskBatchEvidence, rows: readonly number[]) {
  return {
    distances: Float64Array.from(rows, (r) => evidence.distances[r] as number),
    losses: Float64Array.from(rows, (r) => evidence.losses[r] as number),
    correct: Float64Array.from(rows, (r) => evidence.correct[r] as number),
  };
}

/** Each examined task's mean row distance and mean loss over the labelled rows, in task order. */
export function candidatesOf(
  evidence: ReadonlyMap<number, TaskBatchEvidence>,
  labels: ArrayLike<number>,
): Candidate[] {
  return [...evidence]
    .sort(([a], [b]) => a - b)
    .map(([task, e]) => {
      let distance = 0;
      let loss = 0;
      let labelled = 0;
      for (let r = 0; r < e.distances.length; r++) {
        distance += e.distances[r] as number;
        if ((labels[r] as number) < 0) continue;
        loss += e.losses[r] as number;
        labelled++;
      }
      return {
        task,
        distance: distance / Math.max(1, e.distances.length),
        loss: labelled === 0 ? null : loss / labelled,
      };
    });
}

/** The decision as the stream's policy state records it: an allocation if any segment allocated. */
export function effectiveDecision(decision: Decision, allocated: boolean, lastTask: number): Decision {
  if (allocated) {
    return decision.kind === 'allocate'
      ? decision
      : { kind: 'allocate', confidence: decision.confidence, reason: 'uncertain' };
  }
  return decision.kind === 'route'
    ? { ...decision, task: lastTask }
    : { kind: 'route', task: lastTask, confidence: decision.confidence, reason: 'confident' };
}

export function meanEntropy(results: readonly ResultRecord[]): number {
  return results.reduce((sum, r) => sum + r.entropy, 0) / Math.max(results.length, 1);
}
