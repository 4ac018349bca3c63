/**
 * The embedded MaskStore: one directory, one writer.
 *
 *   <dir>/lock                       exclusive lock (pid, host, token); see file-lock.ts
 *   <dir>/registry.json              registry + applied offsets + the files of each task + format version
 *   <dir>/masks/<task>.v<gen>.ssmk   encoded masks
 *   <dir>/training/<task>.v<gen>.bin training states
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
import { mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { crc32 } from '../codec/mask-codec.js';
import { SupsupError } from '../errors.js';
import type { DaemonEvent } from '../records.js';
import { fsyncDir, writeDurably } from './durable-fs.js';
import {
  checkLockArguments,
  checkReadEvents,
  checkTrimEvents,
  compareEventIds,
  copyStoredEvent,
  type EventId,
  firstAfter,
  formatEventId,
  newLeaseToken,
  nextEventId,
  parseEventId,
  parseStoredEvent,
  trimCount,
} from './events.js';
import { acquireFileLock, createExclusive, type FileLock } from './file-lock.js';
import { compareOffsets } from './offsets.js';
import type {
  Commit,
  CommitOutcome,
  Lease,
  LoadedState,
  MaskStore,
  ReadEventsOptions,
  StoredEvent,
  TrimEventsOptions,
} from './types.js';
import {
  checkCommit,
  checkStoredState,
  checkTaskArgument,
  copyLoadedState,
  missingMaskError,
  notOpenError,
} from './validate.js';

export const FILE_STORE_FORMAT = 'supsupd-file-store';
export const FILE_STORE_FORMAT_VERSION = 1;

const REGISTRY_FILE = 'registry.json';
const REGISTRY_TEMP = 'registry.json.tmp';
const LOCK_FILE = 'lock';
const MASKS_DIR = 'masks';
const TRAINING_DIR = 'training';
const EVENTS_FILE = 'events.log';
const EVENTS_TEMP = 'events.log.tmp';
const LOCKS_DIR = 'locks';
const MASK_FILE = /^masks\/(0|[1-9][0-9]*)\.v([1-9][0-9]*)\.ssmk$/;
const TRAINING_FILE = /^training\/(0|[1-9][0-9]*)\.v([1-9][0-9]*)\.bin$/;
/** Names the store writes inside masks/ and training/; other files there are never touched. */
const DATA_NAME = /^(0|[1-9][0-9]*)\.v[1-9][0-9]*\.(ssmk|bin)(\.tmp)?$/;

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

interface FileRef {
  /** Relative to the store directory, with '/' separators. */
  readonly path: string;
  readonly bytes: number;
  readonly crc: number;
}

interface TaskFiles {
  readonly mask: FileRef;
  readonly training: FileRef | null;
}

interface Snapshot {
  readonly generation: number;
  /** null: empty store (no registry.json yet). */
  readonly state: LoadedState | null;
  readonly files: ReadonlyMap<number, TaskFiles>;
}

interface RegistryDocument {
  readonly format: typeof FILE_STORE_FORMAT;
  readonly formatVersion: number;
  readonly generation: number;
  readonly registry: LoadedState['registry'];
  readonly applied: LoadedState['applied'];
  readonly files: Readonly<Record<string, TaskFiles>>;
}

const EMPTY: Snapshot = { generation: 0, state: null, files: new Map() };

/** One line of events.log: the event and the generation of the commit that appended it. */
interface LoggedEvent extends StoredEvent {
  readonly generation: number;
}

interface EventLog {
  readonly entries: LoggedEvent[];
  /** Byte length of events.log (its committed lines); 0 when the file does not exist. */
  readonly bytes: number;
  readonly exists: boolean;
  readonly last: EventId | null;
}

const EMPTY_LOG: EventLog = { entries: [], bytes: 0, exists: false, last: null };

function eventLine(entry: LoggedEvent): string {
  return `${JSON.stringify({ g: entry.generation, id: entry.id, event: entry.event })}\n`;
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
        lock = await acquireFileLock(join(this.dir, LOCK_FILE));
        const snapshot = await this.readSnapshot();
        await this.checkFiles(snapshot);
        await this.removeLeftovers(snapshot);
        const eventLog = await this.openEventLog(snapshot.generation);
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

  commit(commit: Commit): Promise<CommitOutcome> {
    return this.exclusive(async () => {
      this.assertOpen();
      const checked = checkCommit(commit);
      if (!(await this.lock?.held())) {
        this.status = 'broken';
        throw new SupsupError(
          'E_STORE_CONFLICT',
          `file store lock ${join(this.dir, LOCK_FILE)} is no longer ours (removed or taken over); not writing`,
          { details: { path: join(this.dir, LOCK_FILE) } },
        );
      }
      const before = this.snapshot;
      const current = before.state?.applied[checked.partitionKey];
      if (current !== undefined && compareOffsets(checked.appliedOffset, current) <= 0) return 'fenced';

      const generation = before.generation + 1;
      const files = new Map(before.files);
      const created: string[] = [];
      const superseded: string[] = [];
      let next: Snapshot;
      let appended: { entries: LoggedEvent[]; last: EventId | null } | null = null;
      let appendedFrom: number | null = null;
      let appendedBytes = 0;
      try {
        for (const write of checked.masks) {
          const mask = await this.writeDataFile(
            `${MASKS_DIR}/${write.task}.v${generation}.ssmk`,
            write.encodedMask,
            created,
          );
          const training =
            write.trainingState === null
              ? null
              : await this.writeDataFile(
                  `${TRAINING_DIR}/${write.task}.v${generation}.bin`,
                  write.trainingState,
                  created,
                );
          const old = files.get(write.task);
          if (old) superseded.push(old.mask.path, ...(old.training ? [old.training.path] : []));
          files.set(write.task, { mask, training });
        }
        // The new directory entries must be durable before a registry that names them can be.
        if (checked.masks.length > 0) await fsyncDir(join(this.dir, MASKS_DIR));
        if (checked.masks.some((write) => write.trainingState !== null)) {
          await fsyncDir(join(this.dir, TRAINING_DIR));
        }
        await this.failpoint('after-data-files');

        // The events go in before the commit point, tagged with this generation: open() drops them if the rename
        // below never happens. A new events.log's directory entry is made durable before the rename too.
        if (checked.events.length > 0) {
          appended = this.logEntries(checked.events, generation);
          const path = join(this.dir, EVENTS_FILE);
          const text = Buffer.from(appended.entries.map(eventLine).join(''), 'utf8');
          appendedFrom = this.eventLog.bytes;
          await appendDurably(path, text);
          appendedBytes = text.byteLength;
          if (!this.eventLog.exists) await fsyncDir(this.dir);
        }

        const state: LoadedState = {
          registry: checked.registry,
          applied: { ...(before.state?.applied ?? {}), [checked.partitionKey]: checked.appliedOffset },
        };
        const document: RegistryDocument = {
          format: FILE_STORE_FORMAT,
          formatVersion: FILE_STORE_FORMAT_VERSION,
          generation,
          registry: state.registry,
          applied: state.applied,
          files: Object.fromEntries([...files].sort(([a], [b]) => a - b).map(([task, f]) => [task, f])),
        };
        const temp = join(this.dir, REGISTRY_TEMP);
        created.push(temp);
        await writeDurably(temp, Buffer.from(`${JSON.stringify(document, null, 1)}\n`, 'utf8'));
        await this.failpoint('before-registry-rename');
        await rename(temp, join(this.dir, REGISTRY_FILE));
        next = { generation, state, files };
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
      const path = join(this.dir, LOCKS_DIR, `${name}.lock`);
      const token = newLeaseToken();
      const content = (): string => `${JSON.stringify({ token, expiresAt: Date.now() + ttlMs })}\n`;
      try {
        if (!(await createExclusive(path, content()))) {
          const current = await readLockFile(path);
          if (current !== null && current.expiresAt > Date.now()) return null;
          // Expired (or unreadable): only this process uses the directory, and lock calls are serialized.
          await replaceFile(path, content());
        }
      } catch (error) {
        throw this.fsError(error, 'acquireLock');
      }
      const mine = async (): Promise<boolean> => {
        const current = await readLockFile(path);
        return current !== null && current.token === token && current.expiresAt > Date.now();
      };
      return {
        name,
        token,
        renew: () =>
          this.exclusive(async () => {
            this.assertOpen();
            if (!(await mine())) return false;
            await replaceFile(path, content()).catch((error: unknown) => {
              throw this.fsError(error, 'renewLock');
            });
            return true;
          }),
        release: () =>
          this.exclusive(async () => {
            this.assertOpen();
            const current = await readLockFile(path);
            if (current?.token === token) await unlink(path).catch(() => {});
          }),
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

  /**
   * Reads events.log: the lines of committed generations (at most `generation`), in increasing id order. A tail
   * of lines of a later generation or a torn line (a crash during a commit) is cut off, durably, now; anything else
   * out of place is E_STORE_CORRUPT.
   */
  private async openEventLog(generation: number): Promise<EventLog> {
    const path = join(this.dir, EVENTS_FILE);
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (error) {
      if (errno(error) === 'ENOENT') return EMPTY_LOG;
      throw error;
    }
    const entries: LoggedEvent[] = [];
    let valid = 0;
    let tail = false;
    for (let start = 0; start < bytes.length; ) {
      const end = bytes.indexOf(0x0a, start);
      const line = bytes.toString('utf8', start, end < 0 ? bytes.length : end);
      const entry = end < 0 ? null : parseEventLine(line, path);
      const committed = entry !== null && entry.generation <= generation;
      if (tail || !committed) {
        if (committed) {
          throw corrupt(
            `${path}: a committed event follows a torn or uncommitted line at byte ${start}`,
            path,
          );
        }
        tail = true;
      } else {
        const previous = entries[entries.length - 1];
        if (previous !== undefined && compareEventIds(previous.id, entry.id) >= 0) {
          throw corrupt(`${path}: event ids are not increasing at byte ${start}`, path);
        }
        entries.push(entry);
        valid = end + 1;
      }
      start = end < 0 ? bytes.length : end + 1;
    }
    if (valid < bytes.length) await truncateDurably(path, valid);
    const last = entries[entries.length - 1];
    return { entries, bytes: valid, exists: true, last: last === undefined ? null : parseEventId(last.id) };
  }

  private async writeDataFile(path: string, bytes: Uint8Array, created: string[]): Promise<FileRef> {
    const absolute = join(this.dir, path);
    created.push(absolute);
    await writeDurably(absolute, bytes);
    return { path, bytes: bytes.byteLength, crc: crc32(bytes) };
  }

  private async readTaskFile(task: number, which: 'mask' | 'training'): Promise<Uint8Array | null> {
    // A commit may replace and delete the file between the lookup and the read: then look up again.
    for (let attempt = 0; ; attempt++) {
      const entry = this.snapshot.files.get(task);
      const ref = entry === undefined ? null : which === 'mask' ? entry.mask : entry.training;
      if (ref === null) return null;
      const absolute = join(this.dir, ref.path);
      let bytes: Buffer;
      try {
        bytes = await readFile(absolute);
      } catch (error) {
        if (errno(error) === 'ENOENT' && attempt < 3 && this.snapshot.files.get(task) !== entry) continue;
        if (errno(error) === 'ENOENT') {
          throw corrupt(`${which} file of task ${task} is missing: ${absolute}`, absolute, { task });
        }
        throw this.fsError(error, `read ${absolute}`);
      }
      if (bytes.byteLength !== ref.bytes || crc32(bytes) !== ref.crc) {
        throw corrupt(
          `${which} file of task ${task} does not match registry.json ` +
            `(${bytes.byteLength} bytes, expected ${ref.bytes}; or a CRC-32 mismatch): ${absolute}`,
          absolute,
          { task },
        );
      }
      return new Uint8Array(bytes);
    }
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

  /** Every referenced file must exist with its recorded size (CRCs are checked when a file is read). */
  private async checkFiles(snapshot: Snapshot): Promise<void> {
    const refs = [...snapshot.files].flatMap(([task, files]) =>
      (files.training ? [files.mask, files.training] : [files.mask]).map((ref) => ({ task, ref })),
    );
    await Promise.all(
      refs.map(async ({ task, ref }) => {
        const absolute = join(this.dir, ref.path);
        let size: number;
        try {
          size = (await stat(absolute)).size;
        } catch (error) {
          if (errno(error) === 'ENOENT') {
            throw corrupt(`file of task ${task} named in registry.json is missing: ${absolute}`, absolute, {
              task,
            });
          }
          throw error;
        }
        if (size !== ref.bytes) {
          throw corrupt(
            `file of task ${task} is ${size} bytes, registry.json says ${ref.bytes}: ${absolute}`,
            absolute,
            { task },
          );
        }
      }),
    );
  }

  /**
   * Removes what a crashed commit or takeover left: registry.json.tmp, moved-aside stale locks, and data files no
   * registry references. Without a registry.json only temp files go: the data files are left for inspection.
   */
  private async removeLeftovers(snapshot: Snapshot): Promise<void> {
    const referenced = new Set(
      [...snapshot.files.values()].flatMap((f) =>
        f.training ? [f.mask.path, f.training.path] : [f.mask.path],
      ),
    );
    const doomed: string[] = [];
    for (const name of await readdir(this.dir)) {
      if (name === REGISTRY_TEMP || name === EVENTS_TEMP || name.startsWith(`${LOCK_FILE}.stale-`)) {
        doomed.push(name);
      }
    }
    for (const sub of [MASKS_DIR, TRAINING_DIR]) {
      for (const name of await readdir(join(this.dir, sub))) {
        const path = `${sub}/${name}`;
        if (!DATA_NAME.test(name) || referenced.has(path)) continue;
        if (snapshot.state !== null || name.endsWith('.tmp')) doomed.push(path);
      }
    }
    await Promise.all(
      doomed.map((path) =>
        unlink(join(this.dir, path)).catch((error) => {
          if (errno(error) !== 'ENOENT') throw error;
        }),
      ),
    );
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

function corrupt(message: string, path: string, details: Record<string, unknown> = {}): SupsupError {
  return new SupsupError('E_STORE_CORRUPT', message, { details: { path, ...details } });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseFileRef(value: unknown, pattern: RegExp, task: number, where: string): FileRef {
  if (!isRecord(value)) throw corrupt(`${where}: file entry of task ${task} is not an object`, where);
  const { path, bytes, crc } = value;
  const match = typeof path === 'string' ? pattern.exec(path) : null;
  if (match === null || Number(match[1]) !== task) {
    throw corrupt(`${where}: file entry of task ${task} has an invalid path ${JSON.stringify(path)}`, where);
  }
  if (typeof bytes !== 'number' || !Number.isSafeInteger(bytes) || bytes < 0) {
    throw corrupt(`${where}: file entry of task ${task} has an invalid size`, where);
  }
  if (typeof crc !== 'number' || !Number.isInteger(crc) || crc < 0 || crc > 0xffffffff) {
    throw corrupt(`${where}: file entry of task ${task} has an invalid CRC`, where);
  }
  return { path: path as string, bytes, crc };
}

function parseDocument(document: unknown, path: string): Snapshot {
  if (!isRecord(document) || document.format !== FILE_STORE_FORMAT) {
    throw corrupt(`${path} is not a ${FILE_STORE_FORMAT} registry`, path);
  }
  if (document.formatVersion !== FILE_STORE_FORMAT_VERSION) {
    throw corrupt(
      `${path} has format version ${JSON.stringify(document.formatVersion)}; ` +
        `this build reads version ${FILE_STORE_FORMAT_VERSION}`,
      path,
      { formatVersion: document.formatVersion },
    );
  }
  const generation = document.generation;
  if (typeof generation !== 'number' || !Number.isSafeInteger(generation) || generation < 1) {
    throw corrupt(`${path} has an invalid generation ${JSON.stringify(generation)}`, path);
  }
  const state = checkStoredState(document.registry, document.applied, path);
  if (!isRecord(document.files)) throw corrupt(`${path}: "files" is not an object`, path);
  const files = new Map<number, TaskFiles>();
  for (const [key, value] of Object.entries(document.files)) {
    if (!/^(0|[1-9][0-9]{0,9})$/.test(key) || Number(key) > 0xffffffff) {
      throw corrupt(`${path}: invalid task id ${JSON.stringify(key)} in "files"`, path);
    }
    const task = Number(key);
    if (!isRecord(value)) throw corrupt(`${path}: file entry of task ${task} is not an object`, path);
    const mask = parseFileRef(value.mask, MASK_FILE, task, path);
    const training = value.training === null ? null : parseFileRef(value.training, TRAINING_FILE, task, path);
    files.set(task, { mask, training });
  }
  return { generation, state, files };
}

/** One line of events.log, or null when it is not one (a torn write); E_STORE_CORRUPT for a malformed event. */
function parseEventLine(line: string, path: string): LoggedEvent | null {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return null;
  }
  if (!isRecord(value)) return null;
  const { g, id } = value;
  if (typeof g !== 'number' || !Number.isSafeInteger(g) || g < 1 || typeof id !== 'string') return null;
  const stored = parseStoredEvent(id, JSON.stringify(value.event ?? null), path);
  return { generation: g, id: stored.id, event: stored.event };
}

async function appendDurably(path: string, bytes: Uint8Array): Promise<void> {
  const handle = await open(path, 'a', 0o644);
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function truncateDurably(path: string, length: number): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    await handle.truncate(length);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Atomically replaces `path` (a temp file renamed over it). */
async function replaceFile(path: string, content: string): Promise<void> {
  const temp = `${path}.${newLeaseToken().slice(0, 8)}.tmp`;
  try {
    await open(temp, 'w', 0o644).then(async (handle) => {
      try {
        await handle.writeFile(content, 'utf8');
      } finally {
        await handle.close();
      }
    });
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => {});
    throw error;
  }
}

/** A lock file's token and expiry, or null when it is missing or unreadable. */
async function readLockFile(path: string): Promise<{ token: string; expiresAt: number } | null> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(path, 'utf8'));
  } catch {
    return null;
  }
  if (!isRecord(value) || typeof value.token !== 'string' || typeof value.expiresAt !== 'number') return null;
  return { token: value.token, expiresAt: value.expiresAt };
}
