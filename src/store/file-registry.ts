/**
 * The file store's directory (file-store.ts): its file names, registry.json's document and the snapshot the store
 * keeps in memory, and the checks and clean-up of the files registry.json references.
 */
import { readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { SupsupError } from '../errors.js';
import type { LoadedState } from './types.js';
import { checkStoredState } from './validate.js';

export const FILE_STORE_FORMAT = 'supsupd-file-store';
export const FILE_STORE_FORMAT_VERSION = 1;
export const REGISTRY_FILE = 'registry.json';
export const REGISTRY_TEMP = 'registry.json.tmp';
export const LOCK_FILE = 'lock';
export const MASKS_DIR = 'masks';
export const TRAINING_DIR = 'training';
export const REPLAY_DIR = 'replay';
export const EVENTS_FILE = 'events.log';
export const EVENTS_TEMP = 'events.log.tmp';
export const LOCKS_DIR = 'locks';
/** Names the store writes inside masks/ and training/; other files there (and in replay/) are never touched. */
export const DATA_NAME = /^(0|[1-9][0-9]*)\.v[1-9][0-9]*\.(ssmk|bin)(\.tmp)?$/;
export const MASK_FILE = /^masks\/(0|[1-9][0-9]*)\.v([1-9][0-9]*)\.ssmk$/;
export const TRAINING_FILE = /^training\/(0|[1-9][0-9]*)\.v([1-9][0-9]*)\.bin$/;
/** Names the store writes inside replay/: `<task>.v<generation>.<entry>.bin`. */
export const REPLAY_NAME = /^(0|[1-9][0-9]*)\.v[1-9][0-9]*\.(0|[1-9][0-9]*)\.bin(\.tmp)?$/;
export const REPLAY_FILE = /^replay\/(0|[1-9][0-9]*)\.v([1-9][0-9]*)\.(0|[1-9][0-9]*)\.bin$/;

export interface FileRef {
  /** Relative to the store directory, with '/' separators. */
  readonly path: string;
  readonly bytes: number;
  readonly crc: number;
}

export interface TaskFiles {
  readonly mask: FileRef;
  readonly training: FileRef | null;
}

export interface Snapshot {
  /** Commits applied (the store's sequence); 0 for an empty store. */
  readonly generation: number;
  /** The store's epoch (written by the first commit); null for an empty store or one older than epochs. */
  readonly epoch: string | null;
  /** null: empty store (no registry.json yet). */
  readonly state: LoadedState | null;
  readonly files: ReadonlyMap<number, TaskFiles>;
  /** Each task's replay log, oldest entry first (tasks without one are absent). */
  readonly replay: ReadonlyMap<number, readonly FileRef[]>;
}

export interface RegistryDocument {
  readonly format: typeof FILE_STORE_FORMAT;
  readonly formatVersion: number;
  readonly generation: number;
  /** Absent in stores written before epochs existed. */
  readonly epoch?: string;
  readonly registry: LoadedState['registry'];
  readonly applied: LoadedState['applied'];
  readonly files: Readonly<Record<string, TaskFiles>>;
  /** Absent in stores written before replay logs were kept. */
  readonly replay?: Readonly<Record<string, readonly FileRef[]>>;
}

export const EMPTY: Snapshot = {
  generation: 0,
  epoch: null,
  state: null,
  files: new Map(),
  replay: new Map(),
};

export function corrupt(message: string, path: string, details: Record<string, unknown> = {}): SupsupError {
  return new SupsupError('E_STORE_CORRUPT', message, { details: { path, ...details } });
}

export function isRecord(value: unknown): value is Record<string, unknown> {
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

export function parseDocument(document: unknown, path: string): Snapshot {
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
  const epoch = document.epoch;
  if (epoch !== undefined && (typeof epoch !== 'string' || !/^[0-9a-f]{32}$/.test(epoch))) {
    throw corrupt(`${path} has an invalid epoch ${JSON.stringify(epoch)}`, path);
  }
  const state = checkStoredState(document.registry, document.applied, path);
  if (!isRecord(document.files)) throw corrupt(`${path}: "files" is not an object`, path);
  const files = new Map<number, TaskFiles>();
  for (const [key, value] of Object.entries(document.files)) {
    const task = parseTaskKey(key, 'files', path);
    if (!isRecord(value)) throw corrupt(`${path}: file entry of task ${task} is not an object`, path);
    const mask = parseFileRef(value.mask, MASK_FILE, task, path);
    const training = value.training === null ? null : parseFileRef(value.training, TRAINING_FILE, task, path);
    files.set(task, { mask, training });
  }
  return { generation, epoch: epoch ?? null, state, files, replay: parseReplay(document.replay, path) };
}

function parseTaskKey(key: string, field: string, path: string): number {
  if (!/^(0|[1-9][0-9]{0,9})$/.test(key) || Number(key) > 0xffffffff) {
    throw corrupt(`${path}: invalid task id ${JSON.stringify(key)} in "${field}"`, path);
  }
  return Number(key);
}

function parseReplay(value: unknown, path: string): Map<number, readonly FileRef[]> {
  const replay = new Map<number, readonly FileRef[]>();
  if (value === undefined) return replay;
  if (!isRecord(value)) throw corrupt(`${path}: "replay" is not an object`, path);
  for (const [key, refs] of Object.entries(value)) {
    const task = parseTaskKey(key, 'replay', path);
    if (!Array.isArray(refs) || refs.length === 0) {
      throw corrupt(`${path}: the replay log of task ${task} is not a non-empty array`, path);
    }
    replay.set(
      task,
      refs.map((ref: unknown) => parseFileRef(ref, REPLAY_FILE, task, path)),
    );
  }
  return replay;
}

/** Every file the snapshot references, with its task. */
export function referencedFiles(snapshot: Snapshot): { task: number; ref: FileRef }[] {
  const taskFiles = [...snapshot.files].flatMap(([task, files]) =>
    (files.training ? [files.mask, files.training] : [files.mask]).map((ref) => ({ task, ref })),
  );
  const replayFiles = [...snapshot.replay].flatMap(([task, refs]) => refs.map((ref) => ({ task, ref })));
  return [...taskFiles, ...replayFiles];
}

function errno(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | null)?.code;
}

/** Every referenced file must exist with its recorded size (CRCs are checked when a file is read). */
export async function checkFiles(dir: string, snapshot: Snapshot): Promise<void> {
  await Promise.all(
    referencedFiles(snapshot).map(async ({ task, ref }) => {
      const absolute = join(dir, ref.path);
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
export async function removeLeftovers(dir: string, snapshot: Snapshot): Promise<void> {
  const referenced = new Set(referencedFiles(snapshot).map(({ ref }) => ref.path));
  const doomed: string[] = [];
  for (const name of await readdir(dir)) {
    if (name === REGISTRY_TEMP || name === EVENTS_TEMP || name.startsWith(`${LOCK_FILE}.stale-`)) {
      doomed.push(name);
    }
  }
  for (const [sub, pattern] of [
    [MASKS_DIR, DATA_NAME],
    [TRAINING_DIR, DATA_NAME],
    [REPLAY_DIR, REPLAY_NAME],
  ] as const) {
    for (const name of await readdir(join(dir, sub))) {
      const path = `${sub}/${name}`;
      if (!pattern.test(name) || referenced.has(path)) continue;
      if (snapshot.state !== null || name.endsWith('.tmp')) doomed.push(path);
    }
  }
  await Promise.all(
    doomed.map((path) =>
      unlink(join(dir, path)).catch((error) => {
        if (errno(error) !== 'ENOENT') throw error;
      }),
    ),
  );
}
