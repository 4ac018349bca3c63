/**
 * The stages of a file store commit (the protocol is in file-store.ts's module comment): write the data
 * files, append the events, publish the registry. Every stage pushes each path it creates to `created`
 * before it writes there, so a commit that fails can remove them; nothing here removes or renames a
 * file the current registry.json references.
 */
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from '../codec/mask-codec.js';
import { fsyncDir, writeDurably } from './durable-fs.js';
import { appendDurably, type EventLog, eventLine, type LoggedEvent } from './file-events.js';
import {
  EVENTS_FILE,
  FILE_STORE_FORMAT,
  FILE_STORE_FORMAT_VERSION,
  type FileRef,
  MASKS_DIR,
  REGISTRY_FILE,
  REGISTRY_TEMP,
  REPLAY_DIR,
  type RegistryDocument,
  type TaskFiles,
  TRAINING_DIR,
} from './file-registry.js';
import type { LoadedState, MaskWrite, ReplayWrite } from './types.js';
import { replayLogAfter } from './validate.js';

/** The task files after stage 1, and the files of the previous generation they replace. */
export interface WrittenFiles {
  readonly files: ReadonlyMap<number, TaskFiles>;
  /** Paths relative to the store directory, removable once the new registry is durable. */
  readonly superseded: readonly string[];
}

/**
 * Stage 1: each mask and training state under the generation's names (`masks/<task>.v<gen>.ssmk`,
 * `training/<task>.v<gen>.bin`), fsynced, then the directories that gained entries, so the entries
 * are durable before a registry that names them can be.
 */
export async function writeTaskFiles(
  dir: string,
  masks: readonly MaskWrite[],
  generation: number,
  before: ReadonlyMap<number, TaskFiles>,
  created: string[],
): Promise<WrittenFiles> {
  const files = new Map(before);
  const superseded: string[] = [];
  for (const write of masks) {
    const mask = await writeDataFile(
      dir,
      `${MASKS_DIR}/${write.task}.v${generation}.ssmk`,
      write.encodedMask,
      created,
    );
    const training =
      write.trainingState === null
        ? null
        : await writeDataFile(
            dir,
            `${TRAINING_DIR}/${write.task}.v${generation}.bin`,
            write.trainingState,
            created,
          );
    const old = files.get(write.task);
    if (old) superseded.push(old.mask.path, ...(old.training ? [old.training.path] : []));
    files.set(write.task, { mask, training });
  }
  if (masks.length > 0) await fsyncDir(join(dir, MASKS_DIR));
  if (masks.some((write) => write.trainingState !== null)) await fsyncDir(join(dir, TRAINING_DIR));
  return { files, superseded };
}

/** The replay logs after stage 1's replay writes, and the files they no longer reference. */
export interface WrittenReplay {
  readonly replay: ReadonlyMap<number, readonly FileRef[]>;
  readonly superseded: readonly string[];
}

/**
 * Stage 1 too: each appended replay entry under a new name (`replay/<task>.v<gen>.<entry>.bin`), fsynced, then
 * the replay/ directory; the entries a log drops are superseded (removed once the new registry is durable).
 */
export async function writeReplayFiles(
  dir: string,
  writes: readonly ReplayWrite[],
  generation: number,
  before: ReadonlyMap<number, readonly FileRef[]>,
  created: string[],
): Promise<WrittenReplay> {
  const replay = new Map(before);
  const superseded: string[] = [];
  for (const write of writes) {
    const appended: FileRef[] = [];
    for (const [entry, bytes] of write.append.entries()) {
      const path = `${REPLAY_DIR}/${write.task}.v${generation}.${entry}.bin`;
      appended.push(await writeDataFile(dir, path, bytes, created));
    }
    const old = replay.get(write.task) ?? [];
    const log = replayLogAfter(old, appended, write.keep);
    const kept = new Set(log);
    superseded.push(...old.filter((ref) => !kept.has(ref)).map((ref) => ref.path));
    if (log.length === 0) replay.delete(write.task);
    else replay.set(write.task, log);
  }
  if (writes.some((write) => write.append.length > 0)) await fsyncDir(join(dir, REPLAY_DIR));
  return { replay, superseded };
}

async function writeDataFile(
  dir: string,
  path: string,
  bytes: Uint8Array,
  created: string[],
): Promise<FileRef> {
  const absolute = join(dir, path);
  created.push(absolute);
  await writeDurably(absolute, bytes);
  return { path, bytes: bytes.byteLength, crc: crc32(bytes) };
}

/**
 * Stage 2: the commit's events appended to events.log (fsynced), before the commit point and tagged
 * with its generation, so open() drops them if the registry never reaches it; a new log's directory
 * entry is made durable too. Returns the bytes appended. The caller truncates the log back on failure.
 */
export async function appendEvents(
  dir: string,
  log: EventLog,
  entries: readonly LoggedEvent[],
): Promise<number> {
  const text = Buffer.from(entries.map(eventLine).join(''), 'utf8');
  await appendDurably(join(dir, EVENTS_FILE), text);
  if (!log.exists) await fsyncDir(dir);
  return text.byteLength;
}

/**
 * Stage 3: the new registry.json written to registry.json.tmp (fsynced), then renamed over
 * registry.json, the commit point. `beforeRename` runs between the two (a test's failpoint). The
 * caller fsyncs the directory after it.
 */
export async function publishRegistry(
  dir: string,
  next: {
    readonly generation: number;
    readonly epoch: string;
    readonly state: LoadedState;
    readonly files: ReadonlyMap<number, TaskFiles>;
    readonly replay: ReadonlyMap<number, readonly FileRef[]>;
  },
  created: string[],
  beforeRename: () => Promise<void>,
): Promise<void> {
  const document: RegistryDocument = {
    format: FILE_STORE_FORMAT,
    formatVersion: FILE_STORE_FORMAT_VERSION,
    generation: next.generation,
    epoch: next.epoch,
    registry: next.state.registry,
    applied: next.state.applied,
    files: Object.fromEntries([...next.files].sort(([a], [b]) => a - b).map(([task, f]) => [task, f])),
    replay: Object.fromEntries([...next.replay].sort(([a], [b]) => a - b)),
  };
  const temp = join(dir, REGISTRY_TEMP);
  created.push(temp);
  await writeDurably(temp, Buffer.from(`${JSON.stringify(document, null, 1)}\n`, 'utf8'));
  await beforeRename();
  await rename(temp, join(dir, REGISTRY_FILE));
}
