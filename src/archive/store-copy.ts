/**
 * A store's state read out into an archive (export) and an archive written into an empty store (import), both
 * through the MaskStore port only. A read is consistent: it is taken again while the store's position moved
 * under it (a daemon committing). A write takes the namespace's writer lease first (refused while a daemon holds
 * it), commits with `expect` the empty position (so a writer that got there first makes it fail, not merge), and
 * releases the lease after.
 */
import { InputTransform, type StandardiseConfig } from '../discovery/input-transform.js';
import { decodeLearnerSnapshot } from '../discovery/persisted.js';
import { SupsupError } from '../errors.js';
import { type Architecture, architectureKey } from '../model/network/index.js';
import type { LoadedState, MaskStore, StorePosition, TaskMeta } from '../store/types.js';
import type { ArchivedTask, ArchivedTransform, ModelArchive, StoreArchive } from './format.js';
import { withWriterLease } from './tool-lease.js';

/** Reads taken again at most this often while a live writer keeps moving the store. */
const READ_ATTEMPTS = 5;

export interface ReadContext {
  /** Where the store is, for the archive's `source` and messages (e.g. `file store /var/lib/supsupd`). */
  readonly source: string;
  /** The configured network: the store's registry must be for it. */
  readonly arch: Architecture;
  readonly seed: number;
  /** The configured input standardisation (with the store's fitted state: the transform the daemon applies). */
  readonly standardise: StandardiseConfig;
  readonly now: string;
}

/** The whole store as a `store` archive; E_BAD_ARGUMENT for an empty store, E_ARCH_MISMATCH for another network. */
export async function readStoreArchive(store: MaskStore, context: ReadContext): Promise<StoreArchive> {
  for (let attempt = 1; ; attempt++) {
    const before = await store.position();
    const loaded = await store.load();
    if (loaded === null) {
      throw new SupsupError('E_BAD_ARGUMENT', `${context.source} holds no state (empty or unknown)`);
    }
    checkNetwork(loaded, context);
    const tasks = await readTasks(store, loaded.registry.tasks);
    const after = await store.position();
    if (samePosition(before, after)) {
      return {
        scope: 'store',
        source: context.source,
        createdAt: context.now,
        arch: context.arch,
        seed: context.seed,
        transform: effectiveTransform(
          context.standardise,
          context.arch.inputs,
          loaded.registry.policy,
          tasks.length,
        ),
        registry: loaded.registry,
        applied: loaded.applied,
        position: after,
        tasks,
      };
    }
    if (attempt === READ_ATTEMPTS) {
      throw new SupsupError(
        'E_STORE_CONFLICT',
        `${context.source} changed during each of ${READ_ATTEMPTS} reads (a daemon is committing); stop it or retry`,
        { retriable: true },
      );
    }
  }
}

function samePosition(a: StorePosition, b: StorePosition): boolean {
  return a.epoch === b.epoch && a.sequence === b.sequence;
}

function checkNetwork(loaded: LoadedState, context: ReadContext): void {
  const { archKey, seed } = loaded.registry;
  const configured = architectureKey(context.arch);
  if (archKey !== configured || seed !== context.seed) {
    throw new SupsupError(
      'E_ARCH_MISMATCH',
      `${context.source} holds masks for network ${archKey} seed ${seed}, the configuration says ${configured} seed ${context.seed}`,
    );
  }
}

async function readTasks(store: MaskStore, metas: readonly TaskMeta[]): Promise<ArchivedTask[]> {
  const sorted = [...metas].sort((a, b) => a.task - b.task);
  sorted.forEach((meta, i) => {
    if (meta.task !== i) {
      throw new SupsupError(
        'E_STORE_CORRUPT',
        `registry task ids are not 0..k-1 (found ${meta.task} at ${i})`,
      );
    }
  });
  const ids = sorted.map((meta) => meta.task);
  const masks = store.loadMasks !== undefined ? await store.loadMasks(ids) : [];
  const tasks: ArchivedTask[] = [];
  for (const meta of sorted) {
    const mask = masks[meta.task] ?? (await store.loadMask(meta.task));
    tasks.push({
      meta,
      // loadMasks may hand out views into a shared buffer: copy what the archive keeps.
      mask: new Uint8Array(mask),
      training: meta.frozen ? null : await store.loadTrainingState(meta.task),
      replay: await store.loadReplay(meta.task),
    });
  }
  return tasks;
}

/** The transform the daemon applies: the configured mode with the store's fitted statistics. */
export function effectiveTransform(
  standardise: StandardiseConfig,
  features: number,
  policy: unknown,
  tasks: number,
): ArchivedTransform {
  if (standardise.mode === 'off') return { mode: 'off' };
  const state =
    policy === undefined ? undefined : decodeLearnerSnapshot(policy, features, tasks).inputTransform;
  const transform = new InputTransform(standardise, features, state ?? undefined);
  return {
    mode: 'standardise',
    clip: standardise.clip,
    centre: Array.from(transform.centres),
    scale: Array.from(transform.scales),
  };
}

/** One task of a store archive as a standalone model; E_BAD_ARGUMENT for a task the archive does not have. */
export function modelArchiveOf(archive: StoreArchive, task: number): ModelArchive {
  const found = archive.tasks[task];
  if (found === undefined) {
    throw new SupsupError(
      'E_BAD_ARGUMENT',
      `${archive.source} has no task ${task} (it has ${archive.tasks.length}: 0..${archive.tasks.length - 1})`,
    );
  }
  return {
    scope: 'task',
    source: archive.source,
    createdAt: archive.createdAt,
    arch: archive.arch,
    seed: archive.seed,
    transform: archive.transform,
    task: { meta: found.meta, mask: found.mask, training: null, replay: [] },
  };
}

export interface WriteContext {
  /** Where the target is, for messages. */
  readonly target: string;
  readonly arch: Architecture;
  readonly seed: number;
  /** Time to live of the writer lease taken for the write. */
  readonly leaseMs: number;
}

/**
 * Writes a `store` archive into an empty store: the registry (with its policy JSON), every mask and training
 * state and the replay logs in one commit at the archive's first applied offset, then one commit per further
 * partition for its offset. Refused before any write: another network (E_ARCH_MISMATCH), a target with state
 * (E_BAD_ARGUMENT), a writer lease held by someone else (E_STORE_CONFLICT).
 */
export async function writeStoreArchive(
  store: MaskStore,
  archive: StoreArchive,
  context: WriteContext,
): Promise<{ readonly commits: number }> {
  const configured = architectureKey(context.arch);
  if (architectureKey(archive.arch) !== configured || archive.seed !== context.seed) {
    throw new SupsupError(
      'E_ARCH_MISMATCH',
      `the archive holds masks for network ${architectureKey(archive.arch)} seed ${archive.seed}, the configuration says ${configured} seed ${context.seed}`,
    );
  }
  const partitions = Object.entries(archive.applied).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const first = partitions[0];
  if (first === undefined) throw new SupsupError('E_ARCHIVE', 'the archive has no applied offsets');
  await refuseNonEmpty(store, context.target);
  return withWriterLease(store, context.leaseMs, context.target, async () => {
    await refuseNonEmpty(store, context.target);
    const outcome = await store.commit({
      partitionKey: first[0],
      appliedOffset: first[1],
      registry: archive.registry,
      masks: archive.tasks.map((task) => ({
        task: task.meta.task,
        encodedMask: task.mask,
        trainingState: task.training,
      })),
      replay: archive.tasks
        .filter((task) => task.replay.length > 0)
        .map((task) => ({ task: task.meta.task, append: task.replay, keep: task.replay.length })),
      expect: { epoch: null, sequence: 0 },
    });
    if (outcome !== 'applied') throw new SupsupError('E_INTERNAL', 'the import commit was fenced');
    for (const [partitionKey, appliedOffset] of partitions.slice(1)) {
      await store.commit({
        partitionKey,
        appliedOffset,
        registry: archive.registry,
        masks: [],
        expect: await store.position(),
      });
    }
    return { commits: partitions.length };
  });
}

async function refuseNonEmpty(store: MaskStore, target: string): Promise<void> {
  const [loaded, position] = [await store.load(), await store.position()];
  if (loaded !== null || position.epoch !== null) {
    const tasks = loaded?.registry.tasks.length ?? 0;
    throw new SupsupError(
      'E_BAD_ARGUMENT',
      `${target} is not empty (${tasks} task(s), position sequence ${position.sequence}); import writes only into an empty namespace or directory`,
    );
  }
}
