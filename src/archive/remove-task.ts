/**
 * Removing a store's last task (`supsupd masks rm`). Task ids are 0..k-1 and index the learner's profiles, so
 * only task k-1 can go without renumbering the others (which would change every later mask's meaning to its
 * readers): any other id is refused. Two fenced commits under the writer lease, each leaving a state a daemon
 * loads: the first freezes the task and drops its training state and replay log (and its replay-order entry),
 * the second drops the task from the registry and the learner's state. Their applied offset is on a partition of
 * their own, `supsupd-masks/0`, numbered by the store's commit sequence, so no source partition's offset moves.
 */
import { withoutLastTask, withoutReplayOf } from '../discovery/persisted.js';
import { SupsupError } from '../errors.js';
import type { LoadedState, MaskStore, Registry, StorePosition, TaskMeta } from '../store/types.js';
import { withWriterLease } from './tool-lease.js';

/** The partition key of the commits these tools make (never a source's: sources name `topic/partition`). */
export const TOOLS_PARTITION = 'supsupd-masks/0';

export interface RemoveContext {
  /** Where the store is, for messages. */
  readonly target: string;
  readonly leaseMs: number;
}

export async function removeLastTask(
  store: MaskStore,
  task: number,
  context: RemoveContext,
): Promise<{ readonly removed: TaskMeta; readonly remaining: number }> {
  // Checked before the lease is taken (taking it is a write), and again under it.
  checkRemovable(await store.load(), task, context.target);
  return withWriterLease(store, context.leaseMs, context.target, async () => {
    const { registry, meta } = checkRemovable(await store.load(), task, context.target);
    await store.commit({
      ...toolsCommit(await store.position()),
      registry: {
        ...registry,
        tasks: registry.tasks.map((m) => (m.task === task ? { ...m, frozen: true } : m)),
        ...(registry.policy === undefined ? {} : { policy: withoutReplayOf(registry.policy, task) }),
      },
      masks: [{ task, encodedMask: await store.loadMask(task), trainingState: null }],
      replay: [{ task, append: [], keep: 0 }],
    });
    const without: Registry = {
      ...registry,
      tasks: registry.tasks.filter((m) => m.task !== task),
      ...(registry.policy === undefined
        ? {}
        : { policy: withoutLastTask(registry.policy, registry.tasks.length) }),
    };
    await store.commit({ ...toolsCommit(await store.position()), registry: without, masks: [] });
    return { removed: meta, remaining: without.tasks.length };
  });
}

/** The registry and the task's entry when `task` is the store's last task; E_BAD_ARGUMENT otherwise. */
function checkRemovable(
  loaded: LoadedState | null,
  task: number,
  target: string,
): { readonly registry: Registry; readonly meta: TaskMeta } {
  if (loaded === null) throw new SupsupError('E_BAD_ARGUMENT', `${target} holds no state (empty or unknown)`);
  const { registry } = loaded;
  const last = registry.tasks.length - 1;
  const meta = registry.tasks.find((m) => m.task === task);
  if (meta === undefined) {
    throw new SupsupError('E_BAD_ARGUMENT', `${target} has no task ${task} (it has 0..${last})`);
  }
  if (task !== last) {
    throw new SupsupError(
      'E_BAD_ARGUMENT',
      `only the last task (${last}) can be removed: task ids must stay 0..k-1, and renumbering task ${task + 1}.. would give their masks new ids under every reader of the store`,
    );
  }
  return { registry, meta };
}

/** A commit at the next offset of the tools' partition, expecting the store exactly where it is. */
function toolsCommit(position: StorePosition) {
  return { partitionKey: TOOLS_PARTITION, appliedOffset: String(position.sequence + 1), expect: position };
}
