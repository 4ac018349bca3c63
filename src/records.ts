/**
 * The records that cross rooms: what a source yields, what the learner consumes and produces, and
 * what a sink writes. Types only; every room may import this file.
 */
import type { RecordRejectReason } from './errors.js';

/** Where a record came from. Offsets are decimal strings (Kafka offsets are int64). */
export interface SourcePosition {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
}

export type HeaderValue = string | Buffer | undefined;

export interface RawRecord {
  readonly position: SourcePosition;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: Readonly<Record<string, HeaderValue>>;
  /** Milliseconds since the epoch when the source saw the record. */
  readonly timestamp: number;
}

export interface InputRecord {
  readonly id: string;
  readonly x: Float32Array;
  /** Class label; present = labelled (used for training), absent = inference only. */
  readonly y?: number;
  readonly position: SourcePosition;
}

export interface ResultRecord {
  readonly id: string;
  readonly source: SourcePosition;
  readonly task: number;
  readonly newTask: boolean;
  /** How sure the new-task rule is that the record belongs to `task`, in [0, 1]. */
  readonly taskConfidence: number;
  /** Probability the softmax gives the predicted class. */
  readonly confidence: number;
  readonly entropy: number;
  readonly prediction: number;
  readonly maskVersion: number;
}

export interface DeadLetter {
  readonly source: SourcePosition;
  /** Stable reason code, one of RECORD_REJECT_REASONS (src/errors.ts): 'E_RECORD_JSON', 'E_RECORD_DIMENSION', … */
  readonly reason: RecordRejectReason;
  readonly detail: string;
  readonly key: Buffer | null;
  /** The original value, possibly truncated to a configured cap. */
  readonly value: Buffer | null;
}

export type DaemonEvent =
  | {
      readonly type: 'task_discovered';
      readonly task: number;
      readonly at: SourcePosition;
      readonly time: string;
    }
  | { readonly type: 'mask_frozen'; readonly task: number; readonly steps: number; readonly time: string }
  | {
      readonly type: 'budget_reached';
      readonly masks: number;
      readonly at: SourcePosition;
      readonly time: string;
    };

/**
 * One micro-batch's decision, as the decision log keeps it (docs/daemon.md, "Decision log"): compact, and made of
 * the records and the model alone (no clock), so the same input gives the same log byte for byte.
 */
export interface BatchDecision {
  /**
   * The batch's place among every learned micro-batch of the namespace, all partitions together (1, 2, …): the
   * order in which partitions' batches were applied to the shared masks. Persisted with the learner's state, so a
   * restart, a replay from a copy and an imported archive go on counting.
   */
  readonly seq: number;
  /** `topic/partition`, and the offsets of the batch's first and last record. */
  readonly partition: string;
  readonly first: string;
  readonly last: string;
  readonly rows: number;
  readonly labelled: number;
  /** The rows' tasks in row order, run-length encoded: [task, rows] pairs; a task allocated here is marked new. */
  readonly tasks: readonly (readonly [number, number])[];
  readonly allocated: readonly number[];
  /** Each assigned task's mask version after the batch. */
  readonly versions: readonly (readonly [number, number])[];
  /** First row of the second part where the batch was divided between two tasks, else null. */
  readonly split: number | null;
  readonly decision: 'route' | 'allocate';
  readonly reason: string;
  /** Whether tasks other than the stream's current one were examined. */
  readonly checked: boolean;
  /**
   * The tasks examined, each with its evidence on the batch: the mean distance of the rows from its input model
   * and its mask's mean loss on the labelled rows (null without labels), rounded to 4 significant digits.
   */
  readonly candidates: readonly (readonly [number, number, number | null])[];
  /** Present when the source handed the chunk over short because no further record came in time. */
  readonly cutShort?: true;
}
