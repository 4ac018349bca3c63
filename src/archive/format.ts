/**
 * What a mask archive holds (docs/masks.md): the JSON header inside the codec's container
 * (src/codec/archive-codec.ts) and the blobs it names. Two scopes: `store`, a whole store (registry with the
 * learner's opaque policy JSON, applied offsets, every mask, the training states of unfrozen masks, the replay
 * logs), and `task`, one task's mask as a standalone model for `supsupd infer`. Both carry the network (full
 * architecture and seed) and the input transform the daemon applied, as centre and scale per feature.
 *
 * Decoding checks everything before anyone writes a byte: the container's CRC and version, the header's shape,
 * each mask against the network and its registry checksum, each training state's layers, each replay entry, and
 * the learner's policy JSON; any problem is E_ARCHIVE.
 */
import { z } from 'zod';
import { decodeArchive, encodeArchive } from '../codec/archive-codec.js';
import { decodeMask, storedMaskChecksum } from '../codec/mask-codec.js';
import { decodeLearnerSnapshot } from '../discovery/persisted.js';
import { errorMessage, SupsupError } from '../errors.js';
import { maskLayout } from '../model/bank/mask-layout.js';
import { type Architecture, architectureKey, makeArchitecture } from '../model/network/index.js';
import { decodeLabelledBatch } from '../model/training/labelled-batch-codec.js';
import { decodeTrainingState } from '../model/training/training-state.js';
import { checkRegistry, ShapeError } from '../store/index.js';
import type { AppliedOffsets, Registry, StorePosition, TaskMeta } from '../store/types.js';

/** The standardisation x' = clamp((x − centre) · scale, ±clip) per feature, or none. */
export type ArchivedTransform =
  | { readonly mode: 'off' }
  | {
      readonly mode: 'standardise';
      readonly clip: number;
      readonly centre: readonly number[];
      readonly scale: readonly number[];
    };

export interface ArchivedTask {
  readonly meta: TaskMeta;
  /** The mask in the mask codec's encoding, as the store keeps it. */
  readonly mask: Uint8Array;
  /** The training state of a mask still learning (null when frozen, and always in a `task` archive). */
  readonly training: Uint8Array | null;
  /** The task's replay log, oldest first (empty in a `task` archive). */
  readonly replay: readonly Uint8Array[];
}

interface ArchiveCommon {
  /** Where it was exported from, e.g. `redis namespace supsupd:prod` (information only). */
  readonly source: string;
  readonly createdAt: string;
  readonly arch: Architecture;
  readonly seed: number;
  readonly transform: ArchivedTransform;
}

export interface StoreArchive extends ArchiveCommon {
  readonly scope: 'store';
  readonly registry: Registry;
  readonly applied: AppliedOffsets;
  /** The exported store's position (information only: an import starts a new history). */
  readonly position: StorePosition;
  /** In task order, 0..k-1. */
  readonly tasks: readonly ArchivedTask[];
}

export interface ModelArchive extends ArchiveCommon {
  readonly scope: 'task';
  readonly task: ArchivedTask;
}

export type MaskArchive = StoreArchive | ModelArchive;

const archSchema = z.object({
  name: z.string(),
  inputs: z.number().int().positive(),
  hidden: z.array(z.number().int().positive()).min(1),
  outputs: z.number().int().positive(),
  realClasses: z.number().int().positive(),
});
const transformSchema = z.discriminatedUnion('mode', [
  z.object({ mode: z.literal('off') }).strict(),
  z
    .object({
      mode: z.literal('standardise'),
      clip: z.number().positive(),
      centre: z.array(z.number()),
      scale: z.array(z.number()),
    })
    .strict(),
]);
const blob = z.number().int().min(0);
const taskBlobsSchema = z
  .object({ task: z.number().int().min(0), mask: blob, training: blob.nullable(), replay: z.array(blob) })
  .strict();
const common = {
  source: z.string(),
  createdAt: z.string(),
  archKey: z.string(),
  arch: archSchema,
  seed: z.number().int().min(0).max(0xffffffff),
  transform: transformSchema,
};
const headerSchema = z.discriminatedUnion('scope', [
  z
    .object({
      scope: z.literal('store'),
      ...common,
      registry: z.unknown(),
      applied: z.record(z.string(), z.string()),
      position: z.object({ epoch: z.string().nullable(), sequence: z.number().int().min(0) }).strict(),
      tasks: z.array(taskBlobsSchema),
    })
    .strict(),
  z.object({ scope: z.literal('task'), ...common, meta: z.unknown(), task: taskBlobsSchema }).strict(),
]);

export function encodeMaskArchive(archive: MaskArchive): Uint8Array {
  const blobs: Uint8Array[] = [];
  const add = (bytes: Uint8Array): number => blobs.push(bytes) - 1;
  const taskBlobs = (task: ArchivedTask) => ({
    task: task.meta.task,
    mask: add(task.mask),
    training: task.training === null ? null : add(task.training),
    replay: task.replay.map(add),
  });
  const common = {
    source: archive.source,
    createdAt: archive.createdAt,
    archKey: architectureKey(archive.arch),
    arch: {
      name: archive.arch.name,
      inputs: archive.arch.inputs,
      hidden: [...archive.arch.hidden],
      outputs: archive.arch.outputs,
      realClasses: archive.arch.realClasses,
    },
    seed: archive.seed,
    transform: archive.transform,
  };
  const header =
    archive.scope === 'store'
      ? {
          scope: 'store',
          ...common,
          registry: archive.registry,
          applied: archive.applied,
          position: archive.position,
          tasks: archive.tasks.map(taskBlobs),
        }
      : { scope: 'task', ...common, meta: archive.task.meta, task: taskBlobs(archive.task) };
  return encodeArchive(header, blobs);
}

function archiveError(message: string, cause?: unknown): SupsupError {
  return new SupsupError('E_ARCHIVE', message, cause === undefined ? {} : { cause });
}

/** Decodes and checks an archive file's bytes (see the module comment); E_ARCHIVE on any problem. */
export function decodeMaskArchive(bytes: Uint8Array): MaskArchive {
  const container = decodeArchive(bytes);
  const parsed = headerSchema.safeParse(container.header);
  if (!parsed.success) throw archiveError(`archive header is malformed: ${parsed.error.message}`);
  const header = parsed.data;
  let arch: Architecture;
  try {
    const { name, ...shape } = header.arch;
    arch = { ...makeArchitecture(shape), name };
  } catch (error) {
    throw archiveError(`archive architecture is invalid: ${errorMessage(error)}`, error);
  }
  if (architectureKey(arch) !== header.archKey) {
    throw archiveError(`archive architecture key ${header.archKey} does not match its layers`);
  }
  checkTransform(header.transform, arch.inputs);
  const blobAt = (index: number): Uint8Array => {
    const found = container.blobs[index];
    if (found === undefined)
      throw archiveError(`archive names blob ${index}, it has ${container.blobs.length}`);
    return found;
  };
  const taskOf = (meta: TaskMeta, blobs: z.infer<typeof taskBlobsSchema>): ArchivedTask => {
    if (blobs.task !== meta.task)
      throw archiveError(`archive blobs of task ${blobs.task} listed for ${meta.task}`);
    const task = {
      meta,
      mask: blobAt(blobs.mask),
      training: blobs.training === null ? null : blobAt(blobs.training),
      replay: blobs.replay.map(blobAt),
    };
    checkTask(task, arch, header.seed);
    return task;
  };
  const common = { source: header.source, createdAt: header.createdAt, arch, seed: header.seed };
  if (header.scope === 'task') {
    const meta = checkRegistryShape({ archKey: header.archKey, seed: header.seed, tasks: [header.meta] })
      .tasks[0] as TaskMeta;
    const task = taskOf(meta, header.task);
    if (task.training !== null || task.replay.length > 0) {
      throw archiveError('a task archive holds only the mask (no training state, no replay log)');
    }
    return { scope: 'task', ...common, transform: header.transform, task };
  }
  const registry = checkRegistryShape(header.registry);
  if (registry.archKey !== header.archKey || registry.seed !== header.seed) {
    throw archiveError(
      `archive registry is for network ${registry.archKey} seed ${registry.seed}, the archive for ${header.archKey} seed ${header.seed}`,
    );
  }
  const metas = [...registry.tasks].sort((a, b) => a.task - b.task);
  metas.forEach((meta, i) => {
    if (meta.task !== i)
      throw archiveError(`archive registry task ids are not 0..k-1 (found ${meta.task} at ${i})`);
  });
  if (header.tasks.length !== metas.length) {
    throw archiveError(`archive registry lists ${metas.length} tasks, its blob table ${header.tasks.length}`);
  }
  const tasks = metas.map((meta, i) => taskOf(meta, header.tasks[i] as z.infer<typeof taskBlobsSchema>));
  checkPolicy(registry, arch, tasks);
  return {
    scope: 'store',
    ...common,
    transform: header.transform,
    registry,
    applied: header.applied,
    position: header.position,
    tasks,
  };
}

/** The store's own registry check (field types, ranges, unique task ids), as E_ARCHIVE. */
function checkRegistryShape(value: unknown): Registry {
  try {
    return checkRegistry(value, 'archive registry');
  } catch (error) {
    if (error instanceof ShapeError) throw archiveError(error.message);
    throw error;
  }
}

function checkTransform(transform: ArchivedTransform, features: number): void {
  if (transform.mode === 'off') return;
  if (transform.centre.length !== features || transform.scale.length !== features) {
    throw archiveError(
      `archive input transform has ${transform.centre.length} centres and ${transform.scale.length} scales, the network ${features} inputs`,
    );
  }
}

/** A task's mask decodes for the network and matches its registry checksum; its state and replay decode. */
function checkTask(task: ArchivedTask, arch: Architecture, seed: number): void {
  const { meta } = task;
  const layout = maskLayout(arch);
  try {
    const decoded = decodeMask(task.mask, { archKey: architectureKey(arch), totalBytes: layout.totalBytes });
    if (decoded.meta.seed !== seed)
      throw archiveError(`mask ${meta.task} was learned on seed ${decoded.meta.seed}`);
    if (storedMaskChecksum(task.mask) !== meta.checksum) {
      throw archiveError(`mask ${meta.task} does not match its registry checksum`);
    }
    if (task.training !== null) decodeTrainingState(task.training, layout.sizes);
    for (const entry of task.replay) decodeLabelledBatch(entry, arch.inputs);
  } catch (error) {
    if (error instanceof SupsupError && error.code === 'E_ARCHIVE') throw error;
    throw archiveError(`archive task ${meta.task} is damaged: ${errorMessage(error)}`, error);
  }
}

/** The learner's policy JSON decodes for this network and task count, and each replay log it names is there. */
function checkPolicy(registry: Registry, arch: Architecture, tasks: readonly ArchivedTask[]): void {
  tasks.forEach((task) => {
    if (!task.meta.frozen && task.training === null) {
      throw archiveError(`mask ${task.meta.task} is not frozen but has no training state`);
    }
  });
  if (registry.policy === undefined) return;
  let order: readonly number[];
  try {
    order = decodeLearnerSnapshot(registry.policy, arch.inputs, tasks.length).replayOrder ?? [];
  } catch (error) {
    throw archiveError(`archive learner state is invalid: ${errorMessage(error)}`, error);
  }
  for (const task of order) {
    if ((tasks[task]?.replay.length ?? 0) === 0) {
      throw archiveError(`archive learner state names task ${task}'s replay log, the archive has none`);
    }
  }
}
