import type { DaemonEvent } from '../records.js';

/**
 * Persistent state of the daemon: the registry of tasks and their bit-packed masks, the float
 * scores (and optimizer state) of masks that are still training, and, per source partition, the
 * offset up to which state changes were applied. Every write is one atomic, fenced commit: it applies
 * only if its offset is beyond the partition's applied offset, so a repeated batch changes nothing.
 */

export interface TaskMeta {
  readonly task: number;
  /** Incremented on every write of the mask. */
  readonly version: number;
  readonly frozen: boolean;
  readonly trainSteps: number;
  readonly bornAt: { readonly topic: string; readonly partition: number; readonly offset: string };
  readonly bornTime: string;
  /** CRC-32 of the encoded mask before its trailer (model/mask-codec maskChecksum): tells masks apart. */
  readonly checksum: number;
}

export interface Registry {
  /** Architecture key and seed: masks are meaningless for another base network. */
  readonly archKey: string;
  readonly seed: number;
  readonly tasks: readonly TaskMeta[];
  /** The discovery policy's state (opaque JSON owned by src/discovery), so a restart resumes it. */
  readonly policy?: unknown;
}

/** `topic/partition` → last applied offset (decimal string). */
export type AppliedOffsets = Readonly<Record<string, string>>;

export interface MaskWrite {
  readonly task: number;
  /** The mask in the codec's encoding (src/codec/mask-codec.ts). */
  readonly encodedMask: Uint8Array;
  /** Training state of a mask still learning (opaque bytes), or null to delete it (frozen mask). */
  readonly trainingState: Uint8Array | null;
}

export interface Commit {
  /** `topic/partition` of the batch that produced this change. */
  readonly partitionKey: string;
  /** The offset of the last record of that batch. */
  readonly appliedOffset: string;
  readonly registry: Registry;
  readonly masks: readonly MaskWrite[];
  /**
   * Events of this batch, appended to the store's event log in the same atomic step as the rest of the commit
   * (in order); a fenced commit appends nothing.
   */
  readonly events?: readonly DaemonEvent[];
}

/**
 * One entry of the event log. `id` is assigned by the store, `<ms>-<seq>` (the Redis stream ID form: the
 * append time in milliseconds since the epoch and a sequence number within that millisecond), and strictly
 * increasing in log order. Compare ids with {@link compareEventIds}, never as strings.
 */
export interface StoredEvent {
  readonly id: string;
  readonly event: DaemonEvent;
}

export interface ReadEventsOptions {
  /** Only events after this id (exclusive); from the oldest kept event when absent. */
  readonly after?: string;
  /** At most this many events (1 to 10 000). */
  readonly limit: number;
}

export interface TrimEventsOptions {
  /** Removes events appended before this time (by the time part of their id). */
  readonly olderThan: Date;
  /** Then removes the oldest events until at most this many remain (0 empties the log). */
  readonly maxEvents: number;
}

/**
 * A lease on a named lock shared by every process that uses the same store (replicas): held until released or
 * until `ttlMs` passes without a successful renew(). Only the holder's token can renew or release it.
 */
export interface Lease {
  readonly name: string;
  /** Random; identifies this holder. */
  readonly token: string;
  /** Extends the lease by its ttl from now; false when it is no longer ours (expired and taken, or released). */
  renew(): Promise<boolean>;
  /** Gives the lock up if it is still ours; a no-op otherwise. Idempotent. */
  release(): Promise<void>;
}

export type CommitOutcome = 'applied' | 'fenced';

export interface LoadedState {
  readonly registry: Registry;
  readonly applied: AppliedOffsets;
}

export interface MaskStore {
  readonly kind: 'redis' | 'file' | 'memory';
  /** Connects and checks the store is usable (e.g. Redis persistence and eviction policy). */
  open(): Promise<void>;
  /** The registry and applied offsets, or null for an empty store. */
  load(): Promise<LoadedState | null>;
  loadMask(task: number): Promise<Uint8Array>;
  /**
   * Optional bulk read: the encoded masks of `tasks`, in that order, as loadMask would give them one
   * by one (a missing mask fails the same way). Stores where one round trip per mask is slow (Redis)
   * implement it; callers fall back to loadMask. The arrays may be views the caller must not keep
   * beyond decoding (they are not copies).
   */
  loadMasks?(tasks: readonly number[]): Promise<Uint8Array[]>;
  /** null when the mask has no training state (frozen). */
  loadTrainingState(task: number): Promise<Uint8Array | null>;
  /** Atomically: if appliedOffset > applied[partitionKey] (or none yet), write masks, registry, offset. */
  commit(commit: Commit): Promise<CommitOutcome>;
  /** Event log entries in id order: those after `options.after`, at most `options.limit`. */
  readEvents(options: ReadEventsOptions): Promise<StoredEvent[]>;
  /** Removes old events (see {@link TrimEventsOptions}); returns how many were removed. */
  trimEvents(options: TrimEventsOptions): Promise<number>;
  /**
   * Takes the lock `name` for `ttlMs` (`^[A-Za-z0-9_.:-]{1,100}$`), or null when another live lease holds it.
   * Memory store: shared by the users of the same store object only.
   */
  acquireLock(name: string, ttlMs: number): Promise<Lease | null>;
  /** Reachability probe for readiness. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}
