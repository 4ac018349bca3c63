/**
 * The embedded MaskStore: one directory, one writer.
 *
 *   <dir>/lock                       exclusive lock (pid, host, token); see file-lock.ts
 *   <dir>/registry.json              registry + applied offsets + the files of each task + format version
 *   <dir>/masks/<task>.v<gen>.ssmk   encoded masks
 *   <dir>/training/<task>.v<gen>.bin training states
 *   <dir>/replay/<task>.v<gen>.<n>.bin replay log entries (registry.json lists each task's, oldest first)
 *   <dir>/events.log                 the event log: JSON lines {"g": <generation>, "id", "event"}
 *   <dir>/locks/<name>.lock          named locks (leases): {"token", "expiresAt"}
 *
 * `<gen>` is the store's commit generation (bumped by each applied commit), so a commit never overwrites a file the
 * current registry.json references: data files are written under new names, fsynced, the masks/ and training/
 * directories fsynced, then a new registry.json is written to `registry.json.tmp`, fsynced, renamed over
 * registry.json and the directory fsynced. The rename is the commit point: a crash before it leaves the old
 * registry.json pointing at old, intact files; the new, unreferenced files are removed by the next open().
 * Superseded files are removed only after the rename is durable (directory fsync), so no crash can leave a
 * registry that references a deleted file.
 *
 * The event log is kept atomic with the commit by tagging every line with the generation of the commit that appended
 * it: a commit appends its events (fsynced) before the registry rename, so after a crash the log may end with lines
 * of a generation registry.json never reached, or with a torn line. open() drops such a tail (truncates the file
 * to the last line of a committed generation, and fsyncs it) before anything else is appended, so a commit that is
 * repeated after the crash appends its events exactly once. A commit that fails without a crash truncates the log
 * back to its previous length (or marks the store broken, to be repaired by a reopen). trimEvents rewrites the log
 * to `events.log.tmp` and renames it over (both versions are consistent).
 *
 * Locks: only one process opens a store directory, so a lock file is shared by that process's users and survives a
 * restart until it expires; it is created with O_EXCL, and an expired one is replaced by an atomic rename.
 *
 * Reads are served from the registry read at open() (the lock guarantees nobody else writes); mask and training
 * files are checked against the size and CRC-32 recorded in registry.json, so a torn or swapped file is reported
 * as E_STORE_CORRUPT with its path instead of being returned.
 */
import { mkdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { SupsupError } from '../errors.js';
import type { DaemonEvent } from '../records.js';
import { fsyncDir, writeDurably } from './durable-fs.js';
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
import { appendEvents, publishRegistry, writeReplayFiles, writeTaskFiles } from './file-commit.js';
import {
  EMPTY_LOG,
  type EventLog,
  eventLine,
  type LoggedEvent,
  readEventLog,
  truncateDurably,
} from './file-events.js';
import { acquireFileLock, type FileLock } from './file-lock.js';
import { takeNamedLock } from './file-lock-files.js';
import { Missing, readReferencedFile } from './file-reads.js';
import {
  checkFiles,
  corrupt,
  EMPTY,
  EVENTS_FILE,
  EVENTS_TEMP,
  type FileRef,
  LOCK_FILE,
  LOCKS_DIR,
  MASKS_DIR,
  parseDocument,
  REGISTRY_FILE,
  REPLAY_DIR,
  removeLeftovers,
  type Snapshot,
  TRAINING_DIR,
} from './file-registry.js';
import { compareOffsets } from './offsets.js';
import { checkExpectedPosition, checkNotRegressed, EMPTY_POSITION } from './position.js';
import type {
  Commit,
  CommitOutcome,
  Lease,
  LoadedState,
  MaskStore,
  ReadEventsOptions,
  StoredEvent,
  StorePosition,
  TrimEventsOptions,
} from './types.js';
import {
  checkCommit,
  checkTaskArgument,
  copyLoadedState,
  missingMaskError,
  notOpenError,
} from './validate.js';

export { FILE_STORE_FORMAT, FILE_STORE_FORMAT_VERSION } from './file-registry.js';

/**
 * Points inside commit() where a test hook runs. A throw from the hook acts like a crash at that point: the commit
 * is abandoned without cleaning up, and the store refuses further calls until it is closed and reopened.
 */
export type FileStoreFailpoint =
  /** Mask and training files written and fsynced; registry.json not yet touched. */
  | 'after-data-files'
  /** registry.json.tmp written and fsynced; not yet renamed (the commit point). */
  | 'before-registry-rename'
  /** Renamed and the directory fsynced (the commit is durable); superseded files not yet removed. */
  | 'after-registry-rename';

export interface FileStoreOptions {
  /** Test hook for crash simulation; see {@link FileStoreFailpoint}. */
  readonly failpoint?: (point: FileStoreFailpoint) => void | Promise<void>;
}

class FailpointCrash {
  constructor(readonly error: unknown) {}
}

function errno(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | null)?.code;
}

export class FileStore implements MaskStore {
  readonly kind = 'file' as const;
  /** Absolute path of the store directory. */
  readonly dir: string;
  private readonly options: FileStoreOptions;
  private status: 'new' | 'open' | 'closed' | 'broken' = 'new';
  private snapshot: Snapshot = EMPTY;
  private eventLog: EventLog = EMPTY_LOG;
  private lock: FileLock | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  /** Token of the writer lease handed out (see acquireWriter), or null. */
  private writerToken: string | null = null;

  constructor(dir: string, options: FileStoreOptions = {}) {
    if (typeof dir !== 'string' || dir.length === 0) {
      throw new SupsupError('E_CONFIG', 'file store directory must be a non-empty path');
    }
    this.dir = resolve(dir);
    this.options = options;
  }

  /** Creates the directory, takes the lock, reads registry.json, checks the files and removes leftovers. */
  open(): Promise<void> {
    return this.exclusive(async () => {
      if (this.status === 'open') return;
      if (this.status === 'broken') throw notOpenError('file', 'broken');
      let lock: FileLock | null = null;
      try {
        await mkdir(join(this.dir, MASKS_DIR), { recursive: true });
        await mkdir(join(this.dir, TRAINING_DIR), { recursive: true });
        await mkdir(join(this.dir, REPLAY_DIR), { recursive: true });
        lock = await acquireFileLock(join(this.dir, LOCK_FILE));
        const snapshot = await this.readSnapshot();
        await checkFiles(this.dir, snapshot);
        await removeLeftovers(this.dir, snapshot);
        const eventLog = await readEventLog(join(this.dir, EVENTS_FILE), snapshot.generation);
        await mkdir(join(this.dir, LOCKS_DIR), { recursive: true });
        this.snapshot = snapshot;
        this.eventLog = eventLog;
        this.lock = lock;
        this.status = 'open';
      } catch (error) {
        await lock?.release().catch(() => {});
        throw this.fsError(error, 'open');
      }
    });
  }

  async load(): Promise<LoadedState | null> {
    this.assertOpen();
    const state = this.snapshot.state;
    return state === null ? null : copyLoadedState(state);
  }

  async loadMask(task: number): Promise<Uint8Array> {
    this.assertOpen();
    checkTaskArgument(task);
    const bytes = await this.readTaskFile(task, 'mask');
    if (bytes === null) {
      throw missingMaskError(task, this.snapshot.state?.registry ?? null, `file store ${this.dir}`);
    }
    return bytes;
  }

  async loadTrainingState(task: number): Promise<Uint8Array | null> {
    this.assertOpen();
    checkTaskArgument(task);
    return this.readTaskFile(task, 'training');
  }

  async loadReplay(task: number): Promise<Uint8Array[]> {
    this.assertOpen();
    checkTaskArgument(task);
    const refs = this.snapshot.replay.get(task) ?? [];
    try {
      return await Promise.all(
        refs.map((ref) => this.readChecked(ref, `replay entry of task ${task}`, task)),
      );
    } catch (error) {
      throw error instanceof Missing ? error.corrupt : error;
    }
  }

  commit(commit: Commit): Promise<CommitOutcome> {
    return this.exclusive(async () => {
      this.assertOpen();
      const checked = checkCommit(commit);
      const before = this.snapshot;
      const stored = { epoch: before.epoch, sequence: before.generation };
      checkNotRegressed(stored, commit.expect, `file store ${this.dir}`);
      if (!(await this.lock?.held())) {
        this.status = 'broken';
        throw new SupsupError(
          'E_STORE_CONFLICT',
          `file store lock ${join(this.dir, LOCK_FILE)} is no longer ours (removed or taken over); not writing`,
          { details: { path: join(this.dir, LOCK_FILE) } },
        );
      }
      const current = before.state?.applied[checked.partitionKey];
      if (current !== undefined && compareOffsets(checked.appliedOffset, current) <= 0) return 'fenced';
      const epoch = checkExpectedPosition(stored, commit.expect, `file store ${this.dir}`);

      // Three stages (file-commit.ts): the data files, the events, the registry's rename (the commit point).
      const generation = before.generation + 1;
      const created: string[] = [];
      let next: Snapshot;
      let superseded: readonly string[];
      let appended: { entries: LoggedEvent[]; last: EventId | null } | null = null;
      let appendedFrom: number | null = null;
      let appendedBytes = 0;
      try {
        const written = await writeTaskFiles(this.dir, checked.masks, generation, before.files, created);
        const replay = await writeReplayFiles(this.dir, checked.replay, generation, before.replay, created);
        superseded = [...written.superseded, ...replay.superseded];
        await this.failpoint('after-data-files');
        if (checked.events.length > 0) {
          appended = this.logEntries(checked.events, generation);
          appendedFrom = this.eventLog.bytes;
          appendedBytes = await appendEvents(this.dir, this.eventLog, appended.entries);
        }
        const state: LoadedState = {
          registry: checked.registry,
          applied: { ...(before.state?.applied ?? {}), [checked.partitionKey]: checked.appliedOffset },
        };
        const published = { generation, epoch, state, files: written.files, replay: replay.replay };
        next = published;
        await publishRegistry(this.dir, published, created, () => this.failpoint('before-registry-rename'));
      } catch (error) {
        if (error instanceof FailpointCrash) {
          this.status = 'broken';
          throw error.error;
        }
        // Nothing references the new files: remove them, keep the store usable.
        await Promise.all(created.map((path) => unlink(path).catch(() => {})));
        if (appendedFrom !== null) {
          // Events of a generation that will be used again: they must go, or the store must be reopened.
          try {
            await truncateDurably(join(this.dir, EVENTS_FILE), appendedFrom);
          } catch {
            this.status = 'broken';
          }
        }
        throw this.fsError(error, 'commit');
      }
      // Commit point passed: the new registry is in place.
      this.snapshot = next;
      if (appended !== null) {
        this.eventLog = {
          entries: [...this.eventLog.entries, ...appended.entries],
          bytes: this.eventLog.bytes + appendedBytes,
          exists: true,
          last: appended.last,
        };
      }
      try {
        await fsyncDir(this.dir);
      } catch (error) {
        // The rename may or may not survive a power loss; what is on disk is unknown until a reopen.
        this.status = 'broken';
        throw this.fsError(error, 'commit (directory fsync after the registry rename)');
      }
      try {
        await this.failpoint('after-registry-rename');
      } catch (error) {
        this.status = 'broken';
        throw error instanceof FailpointCrash ? error.error : error;
      }
      await Promise.all(superseded.map((path) => unlink(join(this.dir, path)).catch(() => {})));
      return 'applied';
    });
  }

  async readEvents(options: ReadEventsOptions): Promise<StoredEvent[]> {
    this.assertOpen();
    const { after, limit } = checkReadEvents(options);
    const entries = this.eventLog.entries;
    const start = firstAfter(entries, after);
    return entries.slice(start, start + limit).map(copyStoredEvent);
  }

  trimEvents(options: TrimEventsOptions): Promise<number> {
    return this.exclusive(async () => {
      this.assertOpen();
      const trim = checkTrimEvents(options);
      const log = this.eventLog;
      const removed = trimCount(
        log.entries.map((entry) => entry.id),
        trim,
      );
      if (removed === 0) return 0;
      const kept = log.entries.slice(removed);
      const text = Buffer.from(kept.map(eventLine).join(''), 'utf8');
      const temp = join(this.dir, EVENTS_TEMP);
      try {
        await writeDurably(temp, text);
        await rename(temp, join(this.dir, EVENTS_FILE));
      } catch (error) {
        await unlink(temp).catch(() => {});
        throw this.fsError(error, 'trimEvents');
      }
      this.eventLog = { entries: kept, bytes: text.byteLength, exists: true, last: log.last };
      await fsyncDir(this.dir).catch((error: unknown) => {
        // The rename may not survive a power loss: the old, longer log would come back, which is harmless.
        throw this.fsError(error, 'trimEvents (directory fsync)');
      });
      return removed;
    });
  }

  acquireLock(name: string, ttlMs: number): Promise<Lease | null> {
    return this.exclusive(async () => {
      this.assertOpen();
      checkLockArguments(name, ttlMs);
      return takeNamedLock(join(this.dir, LOCKS_DIR, `${name}.lock`), name, ttlMs, {
        serialized: (fn) =>
          this.exclusive(async () => {
            this.assertOpen();
            return fn();
          }),
        fsError: (error, operation) => this.fsError(error, operation),
      });
    });
  }

  async position(): Promise<StorePosition> {
    this.assertOpen();
    const { epoch, generation } = this.snapshot;
    return epoch === null && generation === 0 ? EMPTY_POSITION : { epoch, sequence: generation };
  }

  /**
   * The directory lock already makes this process the only writer (a second process cannot open the store);
   * the writer lease is that lock, handed to one holder at a time, and every commit checks the lock is still
   * ours. renew() answers false once the lock file was removed or taken over.
   */
  acquireWriter(ttlMs: number): Promise<Lease | null> {
    return this.exclusive(async () => {
      this.assertOpen();
      checkLockArguments('writer', ttlMs);
      if (this.writerToken !== null) return null;
      const token = newLeaseToken();
      this.writerToken = token;
      return {
        name: 'writer',
        token,
        renew: async () =>
          this.status === 'open' && this.writerToken === token && (await this.lock?.held()) === true,
        release: async () => {
          if (this.writerToken === token) this.writerToken = null;
        },
      };
    });
  }

  async ping(): Promise<boolean> {
    if (this.status !== 'open') return false;
    try {
      return (await stat(this.dir)).isDirectory();
    } catch {
      return false;
    }
  }

  /** Releases the lock. Idempotent; a closed (or broken) store can be opened again. */
  close(): Promise<void> {
    return this.exclusive(async () => {
      if (this.status === 'new' || this.status === 'closed') return;
      const lock = this.lock;
      this.lock = null;
      this.writerToken = null;
      this.snapshot = EMPTY;
      this.eventLog = EMPTY_LOG;
      this.status = 'closed';
      await lock?.release();
    });
  }

  // -------------------------------------------------------------------------------------------------------------

  /** Runs `fn` after every earlier open/commit/close has settled. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => {});
    return run;
  }

  private assertOpen(): void {
    if (this.status !== 'open') throw notOpenError('file', this.status);
  }

  private async failpoint(point: FileStoreFailpoint): Promise<void> {
    if (!this.options.failpoint) return;
    try {
      await this.options.failpoint(point);
    } catch (error) {
      throw new FailpointCrash(error);
    }
  }

  /** Ids for `events` appended now, after the last one in the log. */
  private logEntries(
    events: readonly DaemonEvent[],
    generation: number,
  ): { entries: LoggedEvent[]; last: EventId | null } {
    let last = this.eventLog.last;
    const entries = events.map((event) => {
      last = nextEventId(last, Date.now());
      return { generation, id: formatEventId(last), event };
    });
    return { entries, last };
  }

  private async readTaskFile(task: number, which: 'mask' | 'training'): Promise<Uint8Array | null> {
    // A commit may replace and delete the file between the lookup and the read: then look up again.
    for (let attempt = 0; ; attempt++) {
      const entry = this.snapshot.files.get(task);
      const ref = entry === undefined ? null : which === 'mask' ? entry.mask : entry.training;
      if (ref === null) return null;
      try {
        return await this.readChecked(ref, `${which} file of task ${task}`, task);
      } catch (error) {
        if (error instanceof Missing && attempt < 3 && this.snapshot.files.get(task) !== entry) continue;
        throw error instanceof Missing ? error.corrupt : error;
      }
    }
  }

  private readChecked(ref: FileRef, what: string, task: number): Promise<Uint8Array> {
    return readReferencedFile(this.dir, ref, what, task, (error, operation) =>
      this.fsError(error, operation),
    );
  }

  private async readSnapshot(): Promise<Snapshot> {
    const path = join(this.dir, REGISTRY_FILE);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if (errno(error) === 'ENOENT') return EMPTY;
      throw error;
    }
    let document: unknown;
    try {
      document = JSON.parse(text);
    } catch (error) {
      throw corrupt(`${path} is not valid JSON (${(error as Error).message})`, path);
    }
    return parseDocument(document, path);
  }

  private fsError(error: unknown, operation: string): unknown {
    if (error instanceof SupsupError) return error;
    const code = errno(error);
    if (code === undefined) return error;
    const path = (error as NodeJS.ErrnoException).path ?? this.dir;
    return new SupsupError(
      'E_STORE_UNAVAILABLE',
      `file store ${operation} failed: ${code} ${path} (${(error as Error).message})`,
      {
        // A full disk or quota may clear up; permissions and I/O errors need an operator.
        retriable: code === 'ENOSPC' || code === 'EDQUOT' || code === 'EAGAIN' || code === 'EMFILE',
        cause: error,
        details: { path, errno: code, operation },
      },
    );
  }
}
