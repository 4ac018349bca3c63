/**
 * Reading every mask of a store that a running daemon may be writing: a mask that does not match the registry read
 * before it may simply have been retrained meanwhile, so the registry is read again and the masks that changed are
 * read again, until the masks and one registry agree or the registry stops changing (then a mismatch is real).
 */

import { maskChecksum } from '../../codec/mask-codec.js';
import { isSupsupError } from '../../errors.js';
import type { LoadedState, MaskStore, TaskMeta } from '../../store/types.js';

export interface StoreMasks {
  /** The registry (and applied offsets) the masks were checked against. */
  readonly state: LoadedState;
  /** Encoded masks by task, as read. */
  readonly masks: ReadonlyMap<number, Uint8Array>;
  /** Tasks whose mask could not be read or does not match the registry's CRC-32, with the reason. */
  readonly problems: ReadonlyMap<number, string>;
}

const ATTEMPTS = 5;

function sameTasks(a: readonly TaskMeta[], b: readonly TaskMeta[]): boolean {
  return (
    a.length === b.length &&
    a.every(
      (meta, i) =>
        meta.task === b[i]?.task && meta.version === b[i]?.version && meta.checksum === b[i]?.checksum,
    )
  );
}

function hex(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}

/** null for an empty store. Store errors other than E_STORE_CORRUPT for one mask are thrown. */
export async function readStoreMasks(store: MaskStore, signal: AbortSignal): Promise<StoreMasks | null> {
  let state = await store.load();
  if (state === null) return null;
  const masks = new Map<number, Uint8Array>();
  const unreadable = new Map<number, string>();
  let pending = state.registry.tasks.map((meta) => meta.task);
  for (let attempt = 1; ; attempt++) {
    for (const task of pending) {
      signal.throwIfAborted();
      try {
        masks.set(task, await store.loadMask(task));
        unreadable.delete(task);
      } catch (error) {
        if (!isSupsupError(error) || error.code !== 'E_STORE_CORRUPT') throw error;
        masks.delete(task);
        unreadable.set(task, error.message);
      }
    }
    const stale = (meta: TaskMeta) => {
      const mask = masks.get(meta.task);
      return mask === undefined || maskChecksum(mask) !== meta.checksum;
    };
    if (!state.registry.tasks.some(stale) || attempt >= ATTEMPTS) break;
    const fresh = await store.load();
    if (fresh === null || sameTasks(fresh.registry.tasks, state.registry.tasks)) break;
    state = fresh;
    pending = state.registry.tasks.filter(stale).map((meta) => meta.task);
  }
  const problems = new Map<number, string>();
  for (const meta of state.registry.tasks) {
    const mask = masks.get(meta.task);
    if (mask === undefined) {
      problems.set(meta.task, unreadable.get(meta.task) ?? 'mask not read');
    } else if (maskChecksum(mask) !== meta.checksum) {
      problems.set(
        meta.task,
        `CRC-32 of the stored mask is ${hex(maskChecksum(mask))}, the registry says ${hex(meta.checksum)}`,
      );
    }
  }
  return { state, masks, problems };
}
