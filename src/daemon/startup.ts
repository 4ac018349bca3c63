import { errorMessage, SupsupError } from '../errors.js';
import type { BatchDecision, DaemonEvent } from '../records.js';
import type { DaemonOptions } from './daemon.js';
import { withTimeout } from './health.js';
import type { WriterLease } from './writer-lease.js';

/**
 * Refuses a store that is unsafe to write (MaskStore.durabilityProblem: Redis that persists nothing or may evict
 * keys), unless the configuration accepts a store that persists nothing.
 */
export async function checkDurability(options: DaemonOptions): Promise<void> {
  const check = options.store.durabilityProblem?.bind(options.store);
  if (check === undefined) return;
  const allow = options.allowVolatileStore === true;
  const problem = await check(allow);
  if (problem !== null) {
    throw new SupsupError(
      'E_STORE_POLICY',
      `${problem}, so masks could vanish with the server: enable appendonly (and noeviction), or set store.allowNoPersistence`,
    );
  }
  if (allow && (await check(false)) !== null) {
    options.logger.warn('the store persists nothing (no AOF, no RDB): masks live only as long as the server');
  }
}

/** Closes what a failed open() opened, each step bounded, errors only logged. */
export async function closeAfterFailedOpen(
  options: DaemonOptions,
  writer: WriterLease | null,
): Promise<void> {
  const steps: [string, () => Promise<void>][] = [
    ['writer lease', () => writer?.release() ?? Promise.resolve()],
    ['store', () => options.store.close()],
    ['sink', () => options.sink.close()],
  ];
  for (const [name, step] of steps) {
    await withTimeout(step(), 5_000, `closing the ${name}`).catch((error: unknown) =>
      options.logger.warn(`${name} did not close after the failed start`, { error: errorMessage(error) }),
    );
  }
}

/**
 * The last commit's events and decision-log entries, written to the sink again at start: they may not have
 * reached it before the previous run ended (at-least-once, like results).
 */
export async function writeLastCommitAgain(
  options: DaemonOptions,
  events: readonly DaemonEvent[],
  decisions: readonly BatchDecision[],
): Promise<void> {
  if (events.length === 0 && decisions.length === 0) return;
  await options.sink.writeEvents(events);
  await options.sink.writeDecisions?.(decisions);
  options.logger.info('events of the last commit written again', {
    events: events.length,
    decisions: decisions.length,
  });
}
