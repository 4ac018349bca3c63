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

/**
 * Changes to one task's replay log: the labelled batches its mask trains on again (opaque bytes, oldest first).
 * `append` is added at the end, then the oldest entries are dropped until `keep` remain (0 removes the log).
 */
export interface ReplayWrite {
  readonly task: number;
  readonly append: readonly Uint8Array[];
  readonly keep: number;
}

export interface Commit {
  /** `topic/partition` of the batch that produced this change. */
  readonly partitionKey: string;
  /** The offset of the last record of that batch. */
  readonly appliedOffset: string;
  readonly registry: Registry;
  readonly masks: readonly MaskWrite[];
  /** Replay logs that changed with this batch (at most one write per task), applied atomically with the rest. */
  readonly replay?: readonly ReplayWrite[];
  /**
   * Events of this batch, appended to the store's event log in the same atomic step as the rest of the commit
   * (in order); a fenced commit appends nothing.
   */
  readonly events?: readonly DaemonEvent[];
  /**
   * The store position this writer last saw (its epoch, or the epoch to create on an empty store, and the
   * sequence of its last commit). When given, the commit applies only if the store is still exactly there:
   * a store that lost its state, was replaced or rolled back refuses it with E_STORE_REGRESSED, a store that
   * another writer moved on refuses it with E_STORE_CONFLICT. Absent: no check (tools, tests).
   */
  readonly expect?: StorePosition;
}

/**
 * Where a store's history stands: `epoch` is a random id written once, by the first commit to an empty
 * namespace, and `sequence` counts the commits applied since. An empty (or wiped) store is at epoch null,
 * sequence 0; a store restored from an older copy has the same epoch and a lower sequence.
 */
export interface StorePosition {
  readonly epoch: string | null;
  readonly sequence: number;
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
  /** A task's replay log, oldest entry first; empty when it has none. */
  loadReplay(task: number): Promise<Uint8Array[]>;
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
  /** The store's epoch and commit sequence (see {@link StorePosition}); one cheap read. */
  position(): Promise<StorePosition>;
  /**
   * Takes the namespace's writer lease for `ttlMs` (renew it well within that), or null while another live
   * writer holds it. While this store object holds a lease, every commit checks its token atomically with the
   * write and fails with E_STORE_CONFLICT once the lease was lost; a store object without a lease cannot commit
   * while another writer holds one. Released by `release()` or by close().
   */
  acquireWriter(ttlMs: number): Promise<Lease | null>;
  /**
   * Optional: who holds the writer lease now (its token and the milliseconds until it expires unless renewed), or
   * null when nobody does. Lets a daemon that finds the lease taken tell a writer that died (its lease runs out)
   * from a live one (it renews). Stores without it (the file store: its directory lock already knows dead pids)
   * refuse at once.
   */
  writerHolder?(): Promise<{ readonly token: string; readonly expiresInMs: number } | null>;
  /**
   * Optional: a reason the store is unsafe to write now (e.g. Redis evicts keys or persists nothing), re-read
   * for readiness; null when it is fine. `allowVolatile` accepts a store that persists nothing.
   */
  durabilityProblem?(allowVolatile: boolean): Promise<string | null>;
  /** Reachability probe for readiness. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}
