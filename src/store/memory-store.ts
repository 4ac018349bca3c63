/**
 * MaskStore in process memory, for tests. Same contract as the file and Redis stores: fenced commits (offsets
 * compared as BigInt), atomic (each commit is applied in one synchronous step), and every byte array and registry
 * is copied on the way in and out, so callers can never mutate stored state. State survives close() and a later
 * open() of the same instance, which lets tests simulate a daemon restart. The event log and the locks live in the
 * same object: locks are shared by the users of this store object (replicas in one process, in tests). The writer
 * lease is held by the store object that took it.
 */
import { SupsupError } from '../errors.js';
import {
  checkLockArguments,
  checkReadEvents,
  checkTrimEvents,
  copyStoredEvent,
  type EventId,
  firstAfter,
  formatEventId,
  newLeaseToken,
  nextEventId,
  trimCount,
} from './events.js';
import { compareOffsets } from './offsets.js';
import { checkExpectedPosition, checkNotRegressed, EMPTY_POSITION } from './position.js';
import type {
  Commit,
  CommitOutcome,
  Lease,
  LoadedState,
  MaskStore,
  ReadEventsOptions,
  Registry,
  StoredEvent,
  StorePosition,
  TrimEventsOptions,
} from './types.js';
import {
  checkCommit,
  checkTaskArgument,
  copyBytes,
  copyLoadedState,
  copyRegistry,
  missingMaskError,
  notOpenError,
  replayLogAfter,
} from './validate.js';

export class MemoryStore implements MaskStore {
  readonly kind = 'memory' as const;
  private status: 'new' | 'open' | 'closed' = 'new';
  private registry: Registry | null = null;
  private readonly applied = new Map<string, string>();
  private readonly masks = new Map<number, Uint8Array>();
  private readonly training = new Map<number, Uint8Array>();
  private readonly replay = new Map<number, Uint8Array[]>();
  private events: StoredEvent[] = [];
  private lastEventId: EventId | null = null;
  private readonly locks = new Map<string, { token: string; expiresAt: number }>();
  private storePosition: StorePosition = EMPTY_POSITION;
  private writer: { token: string; expiresAt: number } | null = null;
  /** Token of the writer lease taken through this object ('' when none). */
  private writerToken = '';
  private fence = 0;
  /** The clock of event ids and lock expiry (tests may replace it). */
  now: () => number = Date.now;

  async open(): Promise<void> {
    this.status = 'open';
  }

  async load(): Promise<LoadedState | null> {
    this.assertOpen();
    if (this.registry === null) return null;
    return copyLoadedState({ registry: this.registry, applied: Object.fromEntries(this.applied) });
  }

  async loadMask(task: number): Promise<Uint8Array> {
    this.assertOpen();
    checkTaskArgument(task);
    const mask = this.masks.get(task);
    if (mask === undefined) throw missingMaskError(task, this.registry, 'memory store');
    return copyBytes(mask);
  }

  async loadTrainingState(task: number): Promise<Uint8Array | null> {
    this.assertOpen();
    checkTaskArgument(task);
    const state = this.training.get(task);
    return state === undefined ? null : copyBytes(state);
  }

  async loadReplay(task: number): Promise<Uint8Array[]> {
    this.assertOpen();
    checkTaskArgument(task);
    return (this.replay.get(task) ?? []).map(copyBytes);
  }

  async commit(commit: Commit): Promise<CommitOutcome> {
    this.assertOpen();
    const checked = checkCommit(commit);
    checkNotRegressed(this.storePosition, commit.expect, 'memory store');
    this.checkWriter();
    const current = this.applied.get(checked.partitionKey);
    if (current !== undefined && compareOffsets(checked.appliedOffset, current) <= 0) return 'fenced';
    const epoch = checkExpectedPosition(this.storePosition, commit.expect, 'memory store');
    // Copy everything before changing anything: the update below cannot fail half-way.
    const writes = checked.masks.map((write) => ({
      task: write.task,
      mask: copyBytes(write.encodedMask),
      training: write.trainingState === null ? null : copyBytes(write.trainingState),
    }));
    const replay = checked.replay.map((write) => ({
      task: write.task,
      log: replayLogAfter(this.replay.get(write.task) ?? [], write.append.map(copyBytes), write.keep),
    }));
    for (const { task, log } of replay) {
      if (log.length === 0) this.replay.delete(task);
      else this.replay.set(task, log);
    }
    for (const write of writes) {
      this.masks.set(write.task, write.mask);
      if (write.training === null) this.training.delete(write.task);
      else this.training.set(write.task, write.training);
    }
    this.registry = copyRegistry(checked.registry);
    this.applied.set(checked.partitionKey, checked.appliedOffset);
    this.storePosition = { epoch, sequence: this.storePosition.sequence + 1 };
    for (const event of checked.events) {
      this.lastEventId = nextEventId(this.lastEventId, this.now());
      this.events.push({ id: formatEventId(this.lastEventId), event });
    }
    return 'applied';
  }

  async readEvents(options: ReadEventsOptions): Promise<StoredEvent[]> {
    this.assertOpen();
    const { after, limit } = checkReadEvents(options);
    const start = firstAfter(this.events, after);
    return this.events.slice(start, start + limit).map(copyStoredEvent);
  }

  async trimEvents(options: TrimEventsOptions): Promise<number> {
    this.assertOpen();
    const trim = checkTrimEvents(options);
    const removed = trimCount(
      this.events.map((stored) => stored.id),
      trim,
    );
    this.events = this.events.slice(removed);
    return removed;
  }

  async acquireLock(name: string, ttlMs: number): Promise<Lease | null> {
    this.assertOpen();
    checkLockArguments(name, ttlMs);
    const held = this.locks.get(name);
    if (held !== undefined && held.expiresAt > this.now()) return null;
    const token = newLeaseToken();
    this.locks.set(name, { token, expiresAt: this.now() + ttlMs });
    const mine = (): boolean => {
      const current = this.locks.get(name);
      return current !== undefined && current.token === token && current.expiresAt > this.now();
    };
    return {
      name,
      token,
      renew: async () => {
        if (!mine()) return false;
        this.locks.set(name, { token, expiresAt: this.now() + ttlMs });
        return true;
      },
      release: async () => {
        if (this.locks.get(name)?.token === token) this.locks.delete(name);
      },
    };
  }

  async position(): Promise<StorePosition> {
    this.assertOpen();
    return this.storePosition;
  }

  async acquireWriter(ttlMs: number): Promise<Lease | null> {
    this.assertOpen();
    checkLockArguments('writer', ttlMs);
    if (this.writer !== null && this.writer.expiresAt > this.now()) return null;
    this.fence++;
    const token = `${this.fence}.${newLeaseToken()}`;
    this.writer = { token, expiresAt: this.now() + ttlMs };
    this.writerToken = token;
    const mine = (): boolean =>
      this.writer !== null && this.writer.token === token && this.writer.expiresAt > this.now();
    return {
      name: 'writer',
      token,
      renew: async () => {
        if (!mine()) return false;
        this.writer = { token, expiresAt: this.now() + ttlMs };
        return true;
      },
      release: async () => {
        if (this.writer?.token === token) this.writer = null;
        if (this.writerToken === token) this.writerToken = '';
      },
    };
  }

  async writerHolder(): Promise<{ token: string; expiresInMs: number } | null> {
    this.assertOpen();
    const writer = this.writer;
    if (writer === null || writer.expiresAt <= this.now()) return null;
    return { token: writer.token, expiresInMs: writer.expiresAt - this.now() };
  }

  /** Forgets everything, as a server restarted without persistence would (tests of lost state). */
  wipe(): void {
    this.registry = null;
    this.applied.clear();
    this.masks.clear();
    this.training.clear();
    this.replay.clear();
    this.events = [];
    this.storePosition = EMPTY_POSITION;
    this.writer = null;
  }

  async ping(): Promise<boolean> {
    return this.status === 'open';
  }

  async close(): Promise<void> {
    if (this.writerToken !== '' && this.writer?.token === this.writerToken) this.writer = null;
    this.writerToken = '';
    if (this.status === 'open') this.status = 'closed';
  }

  /** The rule of the writer lease (see MaskStore.acquireWriter). */
  private checkWriter(): void {
    const live = this.writer !== null && this.writer.expiresAt > this.now() ? this.writer : null;
    if (this.writerToken !== '' && live?.token !== this.writerToken) {
      throw new SupsupError('E_STORE_CONFLICT', 'memory store: this writer no longer holds the writer lease');
    }
    if (this.writerToken === '' && live !== null) {
      throw new SupsupError('E_STORE_CONFLICT', 'memory store: another writer holds the writer lease');
    }
  }

  private assertOpen(): void {
    if (this.status !== 'open') throw notOpenError('memory', this.status);
  }
}
