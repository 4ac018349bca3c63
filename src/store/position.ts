/**
 * Store epochs and commit sequences (see StorePosition in types.ts): the one rule every store applies to a
 * commit that carries `expect`, and how a store's position compares with what a writer or a source saw. The
 * Redis store applies the same rule inside its commit script (redis-scripts.ts); keep the two in step.
 */
import { randomBytes } from 'node:crypto';
import { SupsupError } from '../errors.js';
import type { StorePosition } from './types.js';

export const EMPTY_POSITION: StorePosition = Object.freeze({ epoch: null, sequence: 0 });

/** A new random epoch id (32 hex digits). */
export function newEpoch(): string {
  return randomBytes(16).toString('hex');
}

export function formatPosition(position: StorePosition): string {
  return position.epoch === null
    ? `empty (sequence ${position.sequence})`
    : `epoch ${position.epoch} sequence ${position.sequence}`;
}

/**
 * Why `stored` is behind `seen` (a position this process or a source recorded earlier), or null when it is
 * not: the store lost its state (no epoch), was replaced (another epoch) or rolled back (a lower sequence).
 */
export function regressionOf(stored: StorePosition, seen: StorePosition): string | null {
  if (seen.epoch === null) return null;
  if (stored.epoch === null) {
    // An epoch at sequence 0 is one a writer chose for an empty store and has not committed yet.
    if (seen.sequence === 0) return null;
    return `the store is empty, but ${formatPosition(seen)} was committed before`;
  }
  if (stored.epoch !== seen.epoch) {
    return `the store is at ${formatPosition(stored)}, another history than ${formatPosition(seen)}`;
  }
  if (stored.sequence < seen.sequence) {
    return `the store is at sequence ${stored.sequence}, behind sequence ${seen.sequence} of epoch ${seen.epoch}`;
  }
  return null;
}

/**
 * The first check of a commit that carries `expect`, before the writer lease and the offset fence: a store that
 * lost its state, was replaced or rolled back is refused as such (E_STORE_REGRESSED) whoever holds the lease (a
 * Redis server restarted empty has lost the lease too, and that is not the news).
 */
export function checkNotRegressed(
  stored: StorePosition,
  expect: StorePosition | undefined,
  where: string,
): void {
  if (expect === undefined) return;
  const regression = regressionOf(stored, expect);
  if (regression !== null) {
    throw new SupsupError('E_STORE_REGRESSED', `${where}: commit refused: ${regression}`, {
      details: { stored, expected: expect },
    });
  }
}

/**
 * Checks a commit's `expect` against the store's position and returns the epoch the store has after applying
 * it: its own, or (an empty store) the writer's, or a new one. E_STORE_REGRESSED when the store is behind what
 * the writer saw, E_STORE_CONFLICT when another writer moved it on.
 */
export function checkExpectedPosition(
  stored: StorePosition,
  expect: StorePosition | undefined,
  where: string,
): string {
  if (expect === undefined) return stored.epoch ?? newEpoch();
  checkNotRegressed(stored, expect, where);
  if (stored.sequence !== expect.sequence || (expect.epoch === null && stored.epoch !== null)) {
    throw new SupsupError(
      'E_STORE_CONFLICT',
      `${where}: commit refused: another writer moved the store to ${formatPosition(stored)} (this writer saw ${formatPosition(expect)})`,
      { details: { stored, expected: expect } },
    );
  }
  return stored.epoch ?? expect.epoch ?? newEpoch();
}
