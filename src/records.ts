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
