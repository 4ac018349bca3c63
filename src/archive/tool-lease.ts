import { SupsupError } from '../errors.js';
import type { MaskStore } from '../store/types.js';

/**
 * Runs a tool's writes under the store's writer lease, taken for `leaseMs` and released after: refused with
 * E_STORE_CONFLICT while a daemon holds it (the store would refuse the tool's commits anyway).
 */
export async function withWriterLease<T>(
  store: MaskStore,
  leaseMs: number,
  target: string,
  write: () => Promise<T>,
): Promise<T> {
  const lease = await store.acquireWriter(leaseMs);
  if (lease === null) {
    throw new SupsupError(
      'E_STORE_CONFLICT',
      `${target} is held by a running daemon (its writer lease is taken); stop it first`,
    );
  }
  try {
    return await write();
  } finally {
    await lease.release();
  }
}
