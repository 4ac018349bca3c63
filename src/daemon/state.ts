import { z } from 'zod';
import { decodeMask, encodeMask, storedMaskChecksum } from '../codec/mask-codec.js';
import type { LearnedTask, LearnerSnapshot, ReplayChange } from '../discovery/learner.js';
import {
  decodeLearnerSnapshot,
  encodeLearnerSnapshot,
  type LearnerSnapshotJson,
} from '../discovery/persisted.js';
import { errorMessage, isSupsupError, SupsupError } from '../errors.js';
import type { SupermaskEngine } from '../model/engine.js';
import { decodeLabelledBatch, encodeLabelledBatch } from '../model/training/labelled-batch-codec.js';
import type { LabelledBatch } from '../model/training/trainer.js';
import {
  decodeTrainingState,
  encodeTrainingState,
  type TrainingState,
} from '../model/training/training-state.js';
import type { BatchDecision, DaemonEvent } from '../records.js';
import type { Commit, LoadedState, MaskStore, MaskWrite, Registry, TaskMeta } from '../store/types.js';
import { decisionSchema } from './decision-log.js';

/** Everything the learner needs to resume, read back from a store. */
export interface RestoredState {
  readonly tasks: readonly LearnedTask[];
  /** The learner's own state: streams, task profiles, input transform. */
  readonly snapshot: Partial<LearnerSnapshot>;
  readonly training: ReadonlyMap<number, TrainingState>;
  /** Replay buffers in the snapshot's replay order. */
  readonly replay: ReadonlyMap<number, readonly LabelledBatch[]>;
  readonly applied: Readonly<Record<string, string>>;
  /** Events committed with the last state write; the sink may not have acknowledged them. */
  readonly outbox: readonly DaemonEvent[];
  /** Decision-log entries of the last commit; the sink may not have acknowledged them either. */
  readonly decisions: readonly BatchDecision[];
}

/**
 * What the daemon keeps in the registry's opaque `policy` field: the learner's snapshot (the policy
 * state of every stream, the task profiles, the input transform; src/discovery/persisted.ts), and
 * the outbox of events (and decision-log entries) of the last committed batch (written again after a crash, so a
 * task_discovered event is never lost between the state write and the sink).
 */
export type DaemonSnapshot = LearnerSnapshotJson & {
  readonly outbox: readonly DaemonEvent[];
  readonly decisions?: readonly BatchDecision[];
};

const positionSchema = z.object({ topic: z.string(), partition: z.number().int(), offset: z.string() });
const eventSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('task_discovered'),
    task: z.number().int(),
    at: positionSchema,
    time: z.string(),
  }),
  z.object({
    type: z.literal('mask_frozen'),
    task: z.number().int(),
    steps: z.number().int(),
    time: z.string(),
  }),
  z.object({
    type: z.literal('budget_reached'),
    masks: z.number().int(),
    at: positionSchema,
    time: z.string(),
  }),
]);
const snapshotSchema = z
  .object({ outbox: z.array(eventSchema), decisions: z.array(decisionSchema).optional() })
  .loose();

/**
 * Loads the registry, masks and training states into a fresh engine. Refuses a store written for
 * another base network (architecture or seed).
 */
export async function restoreState(store: MaskStore, engine: SupermaskEngine): Promise<RestoredState | null> {
  const loaded: LoadedState | null = await store.load();
  if (loaded === null) return null;
  const { registry } = loaded;
  if (registry.archKey !== engine.archKey || registry.seed !== engine.seed) {
    throw new SupsupError(
      'E_ARCH_MISMATCH',
      `the store holds masks for network ${registry.archKey} seed ${registry.seed}, but this daemon runs ${engine.archKey} seed ${engine.seed}`,
    );
  }
  const training = new Map<number, TrainingState>();
  const tasks = [...registry.tasks].sort((a, b) => a.task - b.task);
  for (const [i, meta] of tasks.entries()) {
    if (meta.task !== i)
      throw new SupsupError(
        'E_STORE_CORRUPT',
        `registry task ids are not 0..k-1 (found ${meta.task} at ${i})`,
      );
  }
  // Masks are read in groups (one pipelined bulk read each where the store has one), the next group
  // in flight while this one is checked and put in the bank; a read buffer is dropped once its mask
  // was copied into the bank, so at most two groups of encoded masks are alive at a time.
  const readGroup = (first: number): Promise<Uint8Array[]> => {
    const ids = tasks.slice(first, first + RESTORE_GROUP).map((meta) => meta.task);
    return store.loadMasks !== undefined ? store.loadMasks(ids) : loadOneByOne(store, ids);
  };
  let pending: Promise<Uint8Array[]> | null = tasks.length > 0 ? readGroup(0) : null;
  for (let first = 0; pending !== null; first += RESTORE_GROUP) {
    const group: Uint8Array[] = await pending;
    pending = first + RESTORE_GROUP < tasks.length ? readGroup(first + RESTORE_GROUP) : null;
    // A failed read-ahead is reported when awaited, or dropped along with an error thrown here.
    pending?.catch(() => {});
    for (const [j, encoded] of group.entries()) {
      await restoreMask(store, engine, tasks[first + j] as TaskMeta, encoded, training);
    }
  }
  const policy = registry.policy ?? { streams: {}, outbox: [] };
  const parsed = snapshotSchema.safeParse(policy);
  if (!parsed.success) {
    throw new SupsupError(
      'E_STORE_CORRUPT',
      `the registry's daemon state is malformed: ${parsed.error.message}`,
    );
  }
  const snapshot = decodeLearnerSnapshot(policy, engine.arch.inputs, tasks.length);
  return {
    tasks,
    snapshot,
    training,
    replay: await restoreReplay(store, snapshot.replayOrder ?? [], engine.arch.inputs),
    applied: loaded.applied,
    outbox: parsed.data.outbox,
    decisions: (parsed.data.decisions ?? []) as BatchDecision[],
  };
}

/** The replay buffers of `order`'s tasks; a task the registry lists without its log is E_STORE_CORRUPT. */
async function restoreReplay(
  store: MaskStore,
  order: readonly number[],
  features: number,
): Promise<Map<number, LabelledBatch[]>> {
  const replay = new Map<number, LabelledBatch[]>();
  for (const task of order) {
    const entries = await store.loadReplay(task);
    if (entries.length === 0) {
      throw new SupsupError(
        'E_STORE_CORRUPT',
        `task ${task} has a replay buffer in the registry but none stored`,
        {
          details: { task },
        },
      );
    }
    replay.set(
      task,
      entries.map((bytes) => {
        try {
          return decodeLabelledBatch(bytes, features);
        } catch (error) {
          throw new SupsupError(
            'E_STORE_CORRUPT',
            `task ${task}'s replay log is corrupt: ${errorMessage(error)}`,
            {
              cause: error,
              details: { task },
            },
          );
        }
      }),
    );
  }
  return replay;
}

/** Masks per bulk read while restoring (about 20 MB of LeNet-500 masks). */
const RESTORE_GROUP = 500;

async function loadOneByOne(store: MaskStore, tasks: readonly number[]): Promise<Uint8Array[]> {
  const masks: Uint8Array[] = [];
  for (const task of tasks) masks.push(await store.loadMask(task));
  return masks;
}

/** Checks one encoded mask against its registry entry and the network, and adds it to the bank. */
async function restoreMask(
  store: MaskStore,
  engine: SupermaskEngine,
  meta: TaskMeta,
  encoded: Uint8Array,
  training: Map<number, TrainingState>,
): Promise<void> {
  // decodeMask verifies the trailer's CRC-32 against the bytes; the registry's checksum must then be
  // that same value (one pass over the bytes, not two).
  let packed: Uint8Array;
  try {
    packed = decodeMask(encoded, { archKey: engine.archKey, totalBytes: engine.layout.totalBytes }).packed;
  } catch (error) {
    if (isSupsupError(error) && error.code === 'E_CODEC') {
      throw new SupsupError('E_STORE_CORRUPT', `mask ${meta.task} is corrupt: ${error.message}`, {
        cause: error,
      });
    }
    throw error;
  }
  if (storedMaskChecksum(encoded) !== meta.checksum) {
    throw new SupsupError('E_STORE_CORRUPT', `mask ${meta.task} does not match its registry checksum`);
  }
  engine.addMask(packed);
  if (!meta.frozen) {
    // A mask still learning cannot go on without its scores: found here, not at its next batch.
    const bytes = await store.loadTrainingState(meta.task);
    if (bytes === null) {
      throw new SupsupError('E_STORE_CORRUPT', `mask ${meta.task} is not frozen but has no training state`, {
        details: { task: meta.task },
      });
    }
    training.set(meta.task, decodeTrainingState(bytes, engine.layout.sizes));
  }
}

/**
 * The commit for one handled batch: the registry, the masks (and training states) that changed, and the batch's
 * events (kept in the registry's outbox and appended to the store's event log).
 */
export function buildCommit(
  engine: SupermaskEngine,
  learner: {
    readonly learnedTasks: readonly LearnedTask[];
    snapshot(): LearnerSnapshot;
    trainingState(task: number): TrainingState | null;
    setChecksum(task: number, checksum: number): void;
    drainReplayWrites(): readonly ReplayChange[];
  },
  changed: ReadonlySet<number>,
  partitionKey: string,
  appliedOffset: string,
  outbox: readonly DaemonEvent[],
  decisions: readonly BatchDecision[] = [],
): Commit {
  const masks: MaskWrite[] = [];
  for (const task of [...changed].sort((a, b) => a - b)) {
    const meta = learner.learnedTasks[task] as LearnedTask;
    const encodedMask = encodeMask(
      { archKey: engine.archKey, seed: engine.seed, taskId: task, version: meta.version },
      engine.bank.get(task),
    );
    learner.setChecksum(task, storedMaskChecksum(encodedMask));
    const state = meta.frozen ? null : learner.trainingState(task);
    masks.push({ task, encodedMask, trainingState: state === null ? null : encodeTrainingState(state) });
  }
  const registry: Registry = {
    archKey: engine.archKey,
    seed: engine.seed,
    tasks: learner.learnedTasks,
    policy: { ...encodeLearnerSnapshot(learner.snapshot()), outbox, decisions } satisfies DaemonSnapshot,
  };
  const features = engine.arch.inputs;
  const replay = learner.drainReplayWrites().map(({ task, append, keep }) => ({
    task,
    keep,
    append: append.map((batch) => encodeLabelledBatch(batch, features)),
  }));
  // The same events also go to the store's event log, appended atomically with this commit.
  return { partitionKey, appliedOffset, registry, masks, replay, events: outbox };
}
