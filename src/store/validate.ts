/**
 * Checks shared by the MaskStore implementations: the shape of a commit (refused with E_BAD_ARGUMENT before
 * anything is written) and of state read back from storage (refused with E_STORE_CORRUPT). The checks also make
 * deep copies, so a store never keeps a reference to a caller's object.
 */
import { SupsupError } from '../errors.js';
import type { DaemonEvent } from '../records.js';
import { checkCommitEvents } from './events.js';
import { isOffset } from './offsets.js';
import type {
  AppliedOffsets,
  Commit,
  LoadedState,
  MaskWrite,
  Registry,
  ReplayWrite,
  TaskMeta,
} from './types.js';

const MAX_U32 = 0xffffffff;
/** Partition keys become Redis hash fields and JSON keys: bounded, and never empty. */
const MAX_PARTITION_KEY_LENGTH = 512;

/** A problem with the shape of a value; the caller turns it into E_BAD_ARGUMENT or E_STORE_CORRUPT. */
export class ShapeError extends Error {}

function fail(path: string, problem: string): never {
  throw new ShapeError(`${path} ${problem}`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function u32(value: unknown, path: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_U32) {
    fail(path, `must be an integer in [0, 2^32), got ${JSON.stringify(value)}`);
  }
  return value;
}

function str(value: unknown, path: string): string {
  if (typeof value !== 'string') fail(path, `must be a string, got ${typeof value}`);
  return value;
}

function offset(value: unknown, path: string): string {
  if (!isOffset(value)) {
    fail(path, `must be a canonical decimal offset in [0, 2^63), got ${JSON.stringify(value)}`);
  }
  return value;
}

/** Task ids are u32 (the mask codec stores them so) and name files and Redis keys. */
export function checkTaskId(value: unknown, path = 'task'): number {
  return u32(value, path);
}

export function checkPartitionKey(value: unknown, path = 'partitionKey'): string {
  const key = str(value, path);
  if (key.length === 0 || key.length > MAX_PARTITION_KEY_LENGTH) {
    fail(path, `must be 1 to ${MAX_PARTITION_KEY_LENGTH} characters long`);
  }
  return key;
}

function checkTaskMeta(value: unknown, path: string): TaskMeta {
  if (!isRecord(value)) fail(path, 'must be an object');
  const bornAt = value.bornAt;
  if (!isRecord(bornAt)) fail(`${path}.bornAt`, 'must be an object');
  if (typeof value.frozen !== 'boolean') fail(`${path}.frozen`, 'must be a boolean');
  const trainSteps = value.trainSteps;
  if (typeof trainSteps !== 'number' || !Number.isSafeInteger(trainSteps) || trainSteps < 0) {
    fail(`${path}.trainSteps`, `must be a non-negative integer, got ${JSON.stringify(trainSteps)}`);
  }
  const partition = bornAt.partition;
  if (typeof partition !== 'number' || !Number.isSafeInteger(partition) || partition < 0) {
    fail(`${path}.bornAt.partition`, `must be a non-negative integer, got ${JSON.stringify(partition)}`);
  }
  return {
    task: checkTaskId(value.task, `${path}.task`),
    version: u32(value.version, `${path}.version`),
    frozen: value.frozen,
    trainSteps,
    bornAt: {
      topic: str(bornAt.topic, `${path}.bornAt.topic`),
      partition,
      offset: offset(bornAt.offset, `${path}.bornAt.offset`),
    },
    bornTime: str(value.bornTime, `${path}.bornTime`),
    checksum: u32(value.checksum, `${path}.checksum`),
  };
}

/** A validated deep copy of a registry (fields types.ts does not name are dropped); throws ShapeError. */
export function checkRegistry(value: unknown, path = 'registry'): Registry {
  if (!isRecord(value)) fail(path, 'must be an object');
  if (!Array.isArray(value.tasks)) fail(`${path}.tasks`, 'must be an array');
  const seen = new Set<number>();
  const tasks = value.tasks.map((task: unknown, i: number) => {
    const meta = checkTaskMeta(task, `${path}.tasks[${i}]`);
    if (seen.has(meta.task)) fail(`${path}.tasks[${i}].task`, `${meta.task} appears twice`);
    seen.add(meta.task);
    return meta;
  });
  const registry: Registry = {
    archKey: str(value.archKey, `${path}.archKey`),
    seed: u32(value.seed, `${path}.seed`),
    tasks,
  };
  return value.policy === undefined
    ? registry
    : { ...registry, policy: copyJson(value.policy, `${path}.policy`) };
}

/**
 * A deep copy of opaque JSON state (the registry's `policy`). It goes through JSON because that is how the file and
 * Redis stores keep it: every store hands back the same value (undefined members dropped, like JSON.stringify).
 */
function copyJson(value: unknown, path: string): unknown {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    fail(path, `is not JSON-serializable (${(error as Error).message})`);
  }
  if (text === undefined) fail(path, 'is not JSON-serializable');
  return JSON.parse(text);
}

/** A validated copy of applied offsets; throws ShapeError. */
export function checkApplied(value: unknown, path = 'applied'): Record<string, string> {
  if (!isRecord(value)) fail(path, 'must be an object');
  // Object.fromEntries defines own properties, so even a key named "__proto__" stays plain data.
  return Object.fromEntries(
    Object.entries(value).map(([key, offsetValue]) => [
      checkPartitionKey(key, `${path} key`),
      offset(offsetValue, `${path}[${JSON.stringify(key)}]`),
    ]),
  );
}

export interface CheckedCommit {
  readonly partitionKey: string;
  readonly appliedOffset: string;
  /** A deep copy of the commit's registry. */
  readonly registry: Registry;
  /** The caller's writes (bytes not copied: stores that keep them copy them). */
  readonly masks: readonly MaskWrite[];
  /** Validated copies of the commit's events (empty when it has none). */
  readonly events: readonly DaemonEvent[];
  /** The caller's replay writes (empty when it has none; bytes not copied). */
  readonly replay: readonly ReplayWrite[];
}

/**
 * Validates a commit: canonical offset, well-formed registry, each write naming a task of that registry once,
 * with Uint8Array bytes. Throws E_BAD_ARGUMENT; nothing has been written at that point.
 */
/** At most one write per known task; `keep` a u32; every appended entry bytes. */
function checkReplayWrites(value: unknown, known: ReadonlySet<number>): readonly ReplayWrite[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) fail('commit.replay', 'must be an array');
  const written = new Set<number>();
  value.forEach((write: unknown, i: number) => {
    const path = `commit.replay[${i}]`;
    if (!isRecord(write)) fail(path, 'must be an object');
    const task = checkTaskId(write.task, `${path}.task`);
    if (!known.has(task)) fail(`${path}.task`, `${task} is not in commit.registry.tasks`);
    if (written.has(task)) fail(`${path}.task`, `${task} is written twice in one commit`);
    written.add(task);
    u32(write.keep, `${path}.keep`);
    if (!Array.isArray(write.append) || !write.append.every((entry) => entry instanceof Uint8Array)) {
      fail(`${path}.append`, 'must be an array of Uint8Array');
    }
  });
  return value as readonly ReplayWrite[];
}

/** A replay log after a write: `appended` added at the end, then only the last `keep` entries kept. */
export function replayLogAfter<T>(before: readonly T[], appended: readonly T[], keep: number): T[] {
  const all = [...before, ...appended];
  return keep === 0 ? [] : all.slice(Math.max(0, all.length - keep));
}

export function checkCommit(commit: Commit): CheckedCommit {
  try {
    if (!isRecord(commit)) fail('commit', 'must be an object');
    const partitionKey = checkPartitionKey(commit.partitionKey, 'commit.partitionKey');
    const appliedOffset = offset(commit.appliedOffset, 'commit.appliedOffset');
    const registry = checkRegistry(commit.registry, 'commit.registry');
    if (!Array.isArray(commit.masks)) fail('commit.masks', 'must be an array');
    const known = new Set(registry.tasks.map((meta) => meta.task));
    const written = new Set<number>();
    commit.masks.forEach((write: unknown, i: number) => {
      const path = `commit.masks[${i}]`;
      if (!isRecord(write)) fail(path, 'must be an object');
      const task = checkTaskId(write.task, `${path}.task`);
      if (!known.has(task)) fail(`${path}.task`, `${task} is not in commit.registry.tasks`);
      if (written.has(task)) fail(`${path}.task`, `${task} is written twice in one commit`);
      written.add(task);
      if (!(write.encodedMask instanceof Uint8Array)) fail(`${path}.encodedMask`, 'must be a Uint8Array');
      if (write.trainingState !== null && !(write.trainingState instanceof Uint8Array)) {
        fail(`${path}.trainingState`, 'must be a Uint8Array or null');
      }
    });
    const events = checkCommitEvents(commit.events);
    const replay = checkReplayWrites(commit.replay, known);
    return { partitionKey, appliedOffset, registry, masks: commit.masks, events, replay };
  } catch (error) {
    if (error instanceof ShapeError)
      throw new SupsupError('E_BAD_ARGUMENT', `invalid commit: ${error.message}`);
    throw error;
  }
}

/** Validates state read back from storage; E_STORE_CORRUPT (naming `where`) when it is malformed. */
export function checkStoredState(registry: unknown, applied: unknown, where: string): LoadedState {
  try {
    return { registry: checkRegistry(registry), applied: checkApplied(applied) };
  } catch (error) {
    if (error instanceof ShapeError) {
      throw new SupsupError('E_STORE_CORRUPT', `${where}: stored ${error.message}`, { details: { where } });
    }
    throw error;
  }
}

export function copyLoadedState(state: LoadedState): LoadedState {
  return { registry: copyRegistry(state.registry), applied: { ...state.applied } as AppliedOffsets };
}

export function copyRegistry(registry: Registry): Registry {
  const copy: Registry = {
    archKey: registry.archKey,
    seed: registry.seed,
    tasks: registry.tasks.map((meta) => ({ ...meta, bornAt: { ...meta.bornAt } })),
  };
  return registry.policy === undefined ? copy : { ...copy, policy: structuredClone(registry.policy) };
}

export function copyBytes(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}

/** Errors for calls on a store that is not open. Not retriable: open() it (again) first. */
export function notOpenError(kind: string, state: 'new' | 'closed' | 'broken', cause?: unknown): SupsupError {
  const message =
    state === 'broken'
      ? `${kind} store is unusable after a failed write; close and reopen it`
      : `${kind} store is ${state === 'new' ? 'not open yet' : 'closed'}`;
  return new SupsupError('E_STORE_UNAVAILABLE', message, { retriable: false, cause, details: { state } });
}

/** E_BAD_ARGUMENT for a task id that cannot exist (not a u32). */
export function checkTaskArgument(task: number): void {
  try {
    checkTaskId(task);
  } catch (error) {
    throw new SupsupError('E_BAD_ARGUMENT', `invalid task id: ${(error as Error).message}`);
  }
}

/**
 * The error for a mask that is not stored: E_STORE_CORRUPT when the registry lists the task (its mask should be
 * there), E_BAD_ARGUMENT when the task is unknown to the store.
 */
export function missingMaskError(task: number, registry: Registry | null, where: string): SupsupError {
  if (registry?.tasks.some((meta) => meta.task === task)) {
    return new SupsupError('E_STORE_CORRUPT', `${where}: task ${task} is in the registry but has no mask`, {
      details: { task, where },
    });
  }
  return new SupsupError('E_BAD_ARGUMENT', `${where}: no mask stored for task ${task}`, {
    details: { task, where },
  });
}
