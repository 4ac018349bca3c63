/**
 * What flows through the daemon: raw records from a source, decoded input records, one result per
 * input record, dead letters for records that cannot be decoded, and daemon events.
 */

import type { BatchDecision, DaemonEvent, DeadLetter, RawRecord, ResultRecord } from '../records.js';
import type { StorePosition } from '../store/types.js';

export type {
  BatchDecision,
  DaemonEvent,
  DeadLetter,
  HeaderValue,
  InputRecord,
  RawRecord,
  ResultRecord,
  SourcePosition,
} from '../records.js';

/** A batch of raw records of one partition, in offset order. */
export interface SourceBatch {
  readonly topic: string;
  readonly partition: number;
  readonly records: readonly RawRecord[];
  /** Keeps the source's session alive during long work (Kafka heartbeats); a no-op elsewhere. */
  heartbeat(): Promise<void>;
  /** The partition's next offset to be written (Kafka's high watermark), for the consumer lag. */
  readonly highWatermark?: string;
  /**
   * True when the source handed the batch over short of its size because no further records came in time (the
   * Kafka source's linger): the one place where timing, not the records, decided a cut.
   */
  readonly cutShort?: boolean;
}

/**
 * What a source has recorded as consumed: per partition key (`topic/partition`), the offset of the last record
 * whose batch was committed, and, where the source records it (file and stdin checkpoints), the store position
 * at that commit.
 */
export interface SourcePositions {
  readonly offsets: Readonly<Record<string, string>>;
  readonly store?: StorePosition;
}

/** Whether a source can deliver now (readiness), and why not. */
export interface SourceHealth {
  readonly ready: boolean;
  readonly reason?: string;
}

/**
 * A source calls the handler with one batch at a time per partition and records the batch as
 * consumed (commits) only after the handler resolved. A handler that throws leaves the batch
 * uncommitted: it is delivered again.
 */
export interface Source {
  readonly name: string;
  start(handler: (batch: SourceBatch) => Promise<void>): Promise<void>;
  /** Resolves when the source has delivered everything (finite sources) or was stopped. */
  done(): Promise<void>;
  /** Stops fetching, waits for the batch in flight, commits it; idempotent and bounded in time. */
  stop(): Promise<void>;
  /**
   * True when the source itself delivers a failed batch again later (Kafka: pause, seek, resume);
   * otherwise the daemon retries a retriable failure in place, with backoff.
   */
  readonly redelivers?: boolean;
  health?(): SourceHealth;
  /** Before start(): what the source committed (see {@link SourcePositions}); absent where it records nothing. */
  positions?(): Promise<SourcePositions>;
  /**
   * Before start(): deliver again everything after `applied` (per partition key; a partition absent from it from
   * its beginning) instead of resuming at the committed position. Absent where the source cannot go back (stdin).
   */
  rewind?(applied: Readonly<Record<string, string>>): Promise<void>;
}

/** A sink resolves each write only once the destination acknowledged it. */
export interface Sink {
  readonly name: string;
  /** Checks at start that the sink can write (directories exist or are created, topics exist). */
  check?(): Promise<void>;
  writeResults(results: readonly ResultRecord[]): Promise<void>;
  writeDeadLetters(letters: readonly DeadLetter[]): Promise<void>;
  writeEvents(events: readonly DaemonEvent[]): Promise<void>;
  /** Appends decision-log entries (docs/daemon.md, "Decision log"); sinks without a decision stream omit it. */
  writeDecisions?(decisions: readonly BatchDecision[]): Promise<void>;
  /** Flushes and releases; idempotent. */
  close(): Promise<void>;
}
