/**
 * The snapshot job: exports the registry, the applied offsets and every encoded mask to
 *
 *   <dir>/snapshot-<YYYYMMDDTHHMMSSmmmZ>/
 *     registry.json        {"registry": …, "applied": …}
 *     masks/<task>.ssmk    encoded masks (src/codec/mask-codec.ts)
 *     manifest.json        format, time, store kind, network, and every file's size, CRC-32 and SHA-256
 *
 * It is written under `<dir>/.snapshot-….tmp-<random>/`, every file and directory fsynced, then renamed into place
 * and `<dir>` fsynced: a snapshot directory is complete or absent. Then only the newest `keep` snapshots are kept.
 * Temp directories a crash left behind are removed by the next run (runs are serialized by the job lock).
 * The masks are read consistently with the registry (see masks.ts); training states are not exported, so a store
 * rebuilt from a snapshot resumes unfrozen masks with fresh optimizer state.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { crc32 } from '../../codec/mask-codec.js';
import { SupsupError } from '../../errors.js';
import { fsyncDir, writeDurably } from '../../store/durable-fs.js';
import type { LoadedState, MaskStore } from '../../store/types.js';
import type { JobDefinition } from '../scheduler.js';
import { readStoreMasks } from './masks.js';

export const SNAPSHOT_FORMAT = 'supsupd-snapshot';
export const SNAPSHOT_FORMAT_VERSION = 1;
const SNAPSHOT_NAME = /^snapshot-\d{8}T\d{9}Z(-\d+)?$/;
const TEMP_NAME = /^\.snapshot-.*\.tmp-[0-9a-f]+$/;

export interface SnapshotFile {
  /** Relative to the snapshot directory, '/' separated. */
  readonly path: string;
  readonly bytes: number;
  readonly crc32: number;
  readonly sha256: string;
}

export interface SnapshotManifest {
  readonly format: typeof SNAPSHOT_FORMAT;
  readonly formatVersion: number;
  readonly createdAt: string;
  readonly store: string;
  readonly archKey: string;
  readonly seed: number;
  readonly tasks: readonly number[];
  readonly files: readonly SnapshotFile[];
}

export interface SnapshotOptions {
  readonly dir: string;
  /** How many snapshots to keep (the newest), at least 1. */
  readonly keep: number;
  /** The clock (tests); default `new Date()`. */
  readonly now?: () => Date;
}

export interface SnapshotResult {
  /** Absolute path of the new snapshot, or null when the store was empty. */
  readonly path: string | null;
  readonly tasks: number;
  readonly bytes: number;
  /** Old snapshots removed by the retention. */
  readonly removed: readonly string[];
}

export interface LoadedSnapshot {
  readonly manifest: SnapshotManifest;
  readonly state: LoadedState;
  readonly masks: ReadonlyMap<number, Uint8Array>;
}

function stamp(date: Date): string {
  return date.toISOString().replace(/[-:.]/g, '');
}

function describe(file: string, bytes: Uint8Array): SnapshotFile {
  return {
    path: file,
    bytes: bytes.byteLength,
    crc32: crc32(bytes),
    sha256: createHash('sha256').update(bytes).digest('hex'),
  };
}

/** Writes one snapshot of `store` (see the module comment). E_STORE_CORRUPT when a mask fails its checksum. */
export async function writeSnapshot(
  store: MaskStore,
  options: SnapshotOptions,
  signal: AbortSignal,
): Promise<SnapshotResult> {
  if (!Number.isInteger(options.keep) || options.keep < 1) {
    throw new SupsupError('E_CONFIG', `snapshot keep must be a positive integer, got ${options.keep}`);
  }
  const dir = resolve(options.dir);
  await mkdir(dir, { recursive: true });
  for (const name of await readdir(dir)) {
    if (TEMP_NAME.test(name)) await rm(join(dir, name), { recursive: true, force: true });
  }
  const read = await readStoreMasks(store, signal);
  if (read === null) return { path: null, tasks: 0, bytes: 0, removed: [] };
  if (read.problems.size > 0) {
    const tasks = [...read.problems.keys()];
    throw new SupsupError(
      'E_STORE_CORRUPT',
      `not snapshotting a store whose masks fail their checksums: tasks ${tasks.join(', ')}`,
      { details: { tasks } },
    );
  }
  const createdAt = (options.now ?? (() => new Date()))();
  const name = `snapshot-${stamp(createdAt)}`;
  const temp = join(dir, `.${name}.tmp-${randomBytes(4).toString('hex')}`);
  const { registry, applied } = read.state;
  const tasks = registry.tasks.map((meta) => meta.task).sort((a, b) => a - b);
  try {
    await mkdir(join(temp, 'masks'), { recursive: true });
    const files: SnapshotFile[] = [];
    for (const task of tasks) {
      signal.throwIfAborted();
      const bytes = read.masks.get(task) as Uint8Array;
      const file = `masks/${task}.ssmk`;
      await writeDurably(join(temp, file), bytes, { exclusive: true });
      files.push(describe(file, bytes));
    }
    const registryBytes = Buffer.from(`${JSON.stringify({ registry, applied }, null, 1)}\n`, 'utf8');
    await writeDurably(join(temp, 'registry.json'), registryBytes, { exclusive: true });
    files.push(describe('registry.json', registryBytes));
    await fsyncDir(join(temp, 'masks'));
    const manifest: SnapshotManifest = {
      format: SNAPSHOT_FORMAT,
      formatVersion: SNAPSHOT_FORMAT_VERSION,
      createdAt: createdAt.toISOString(),
      store: store.kind,
      archKey: registry.archKey,
      seed: registry.seed,
      tasks,
      files,
    };
    await writeDurably(
      join(temp, 'manifest.json'),
      Buffer.from(`${JSON.stringify(manifest, null, 1)}\n`, 'utf8'),
      { exclusive: true },
    );
    await fsyncDir(temp);
    signal.throwIfAborted();
    const path = await renameIntoPlace(temp, dir, name);
    await fsyncDir(dir);
    const removed = await pruneSnapshots(dir, options.keep);
    return { path, tasks: tasks.length, bytes: files.reduce((sum, f) => sum + f.bytes, 0), removed };
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}

/** Renames `temp` to `<dir>/<name>`, or `<name>-1`, `-2`, … when a snapshot of the same millisecond exists. */
async function renameIntoPlace(temp: string, dir: string, name: string): Promise<string> {
  for (let suffix = 0; ; suffix++) {
    const target = join(dir, suffix === 0 ? name : `${name}-${suffix}`);
    try {
      await mkdir(target); // fails if it exists; rename then replaces this empty directory
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST' && suffix < 100) continue;
      throw error;
    }
    await rename(temp, target);
    return target;
  }
}

/** The snapshot directories in `dir`, oldest first. */
export async function listSnapshots(dir: string): Promise<string[]> {
  const names = (await readdir(resolve(dir))).filter((name) => SNAPSHOT_NAME.test(name));
  return names.sort(compareSnapshotNames);
}

function compareSnapshotNames(a: string, b: string): number {
  const [baseA, suffixA] = a.split(/-(?=\d+$)/);
  const [baseB, suffixB] = b.split(/-(?=\d+$)/);
  if (baseA !== baseB) return (baseA as string) < (baseB as string) ? -1 : 1;
  return Number(suffixA ?? 0) - Number(suffixB ?? 0);
}

async function pruneSnapshots(dir: string, keep: number): Promise<string[]> {
  const all = await listSnapshots(dir);
  const doomed = all.slice(0, Math.max(0, all.length - keep));
  for (const name of doomed) await rm(join(dir, name), { recursive: true, force: true });
  if (doomed.length > 0) await fsyncDir(dir);
  return doomed;
}

/** Reads a snapshot back, checking every file against the manifest (E_STORE_CORRUPT otherwise). */
export async function readSnapshot(path: string): Promise<LoadedSnapshot> {
  const corrupt = (message: string) =>
    new SupsupError('E_STORE_CORRUPT', `snapshot ${path}: ${message}`, { details: { path } });
  let manifest: SnapshotManifest;
  try {
    manifest = JSON.parse(await readFile(join(path, 'manifest.json'), 'utf8')) as SnapshotManifest;
  } catch (error) {
    throw corrupt(`manifest.json is unreadable (${(error as Error).message})`);
  }
  if (manifest.format !== SNAPSHOT_FORMAT || manifest.formatVersion !== SNAPSHOT_FORMAT_VERSION) {
    throw corrupt(`not a ${SNAPSHOT_FORMAT} version ${SNAPSHOT_FORMAT_VERSION}`);
  }
  const contents = new Map<string, Uint8Array>();
  for (const file of manifest.files) {
    const bytes = new Uint8Array(await readFile(join(path, file.path)));
    const actual = describe(file.path, bytes);
    if (actual.bytes !== file.bytes || actual.crc32 !== file.crc32 || actual.sha256 !== file.sha256) {
      throw corrupt(`${file.path} does not match its manifest entry`);
    }
    contents.set(file.path, bytes);
  }
  const registryBytes = contents.get('registry.json');
  if (registryBytes === undefined) throw corrupt('registry.json is not in the manifest');
  const state = JSON.parse(Buffer.from(registryBytes).toString('utf8')) as LoadedState;
  const masks = new Map<number, Uint8Array>();
  for (const task of manifest.tasks) {
    const bytes = contents.get(`masks/${task}.ssmk`);
    if (bytes === undefined) throw corrupt(`the mask of task ${task} is not in the manifest`);
    masks.set(task, bytes);
  }
  return { manifest, state, masks };
}

export function snapshotJob(store: MaskStore, cron: string, options: SnapshotOptions): JobDefinition {
  return {
    name: 'snapshot',
    cron,
    async run(context): Promise<string> {
      const result = await writeSnapshot(store, options, context.signal);
      if (result.path === null) return 'the store is empty: no snapshot written';
      const removed = result.removed.length > 0 ? `; removed ${result.removed.join(', ')}` : '';
      return `wrote ${result.path} (${result.tasks} masks, ${result.bytes} bytes)${removed}`;
    },
  };
}
