import { SupsupError } from '../errors.js';
import type { Logger } from '../logger.js';
import { compareOffsets } from '../store/offsets.js';
import { formatPosition, regressionOf } from '../store/position.js';
import type { StorePosition } from '../store/types.js';
import type { Source, SourcePositions } from '../stream/types.js';

/** What the daemon does with a store that is empty or behind its source (config store.onRegression). */
export type OnRegression = 'refuse' | 'replay' | 'accept';

/** The store's side of the comparison: its position and applied offsets as the daemon loaded them. */
export interface StoreSide {
  readonly position: StorePosition;
  readonly applied: Readonly<Record<string, string>>;
}

/**
 * Every way the store is behind what the source committed: a partition the source consumed further than the
 * store applied (or that the store never applied), and a store position behind the one the source recorded
 * with its checkpoint (another epoch, a lower sequence, or none). Empty when the store is not behind.
 */
export function findRegressions(store: StoreSide, source: SourcePositions): string[] {
  const problems: string[] = [];
  for (const [key, committed] of Object.entries(source.offsets)) {
    const applied = store.applied[key];
    if (applied === undefined) {
      problems.push(`${key}: the source committed offset ${committed}, the store has applied nothing`);
    } else if (compareOffsets(applied, committed) < 0) {
      problems.push(`${key}: the source committed offset ${committed}, the store applied only ${applied}`);
    }
  }
  if (source.store !== undefined) {
    const behind = regressionOf(store.position, source.store);
    if (behind !== null) problems.push(`checkpoint: ${behind}`);
  }
  return problems;
}

/** E_STORE_REGRESSED naming both sides, for logs and the CLI's exit. */
export function regressedError(problems: readonly string[], store: StoreSide): SupsupError {
  return new SupsupError(
    'E_STORE_REGRESSED',
    `the store is behind the source (store at ${formatPosition(store.position)}): ${problems.join('; ')}. ` +
      'Restore the store (for example from a snapshot), or restart with store.onRegression "replay" (relearn ' +
      'from the store\'s offsets) or "accept" (start over)',
    { details: { problems, store: store.position, applied: store.applied } },
  );
}

/**
 * Before a source starts: compares the store with what the source committed and, when the store is behind,
 * logs both sides and refuses (E_STORE_REGRESSED), rewinds the source to the store's applied offsets (replay;
 * refused where the source cannot go back), or goes on (accept, which also warns on every start).
 */
export async function checkSourcePositions(
  source: Source,
  store: StoreSide,
  mode: OnRegression,
  log: Logger,
): Promise<void> {
  if (mode === 'accept') {
    log.warn(
      'store.onRegression is "accept": a store that is empty or behind the source is not refused; learning starts over from it',
    );
  }
  const positions = await source.positions?.();
  if (positions === undefined) return;
  const problems = findRegressions(store, positions);
  if (problems.length === 0) return;
  log.error('store regressed: it is behind the source', {
    store: formatPosition(store.position),
    applied: store.applied,
    sourceOffsets: positions.offsets,
    ...(positions.store === undefined ? {} : { sourceStore: formatPosition(positions.store) }),
    problems,
    onRegression: mode,
  });
  if (mode === 'accept') return;
  if (mode === 'replay' && source.rewind !== undefined) {
    await source.rewind(store.applied);
    log.warn("replaying the source from the store's applied offsets", { applied: store.applied });
    return;
  }
  const error = regressedError(problems, store);
  if (mode === 'replay') {
    throw new SupsupError('E_STORE_REGRESSED', `${error.message} (${source.name} cannot replay)`, {
      details: error.details,
    });
  }
  throw error;
}

/**
 * The daemon's latch for a store found behind what it committed (a commit refused with E_STORE_REGRESSED, a
 * reload or a readiness probe). Refused: every later batch fails with a retriable E_STORE_REGRESSED (sources
 * redeliver it later; nothing is learned or published) until a restart applies store.onRegression. Accepted:
 * nothing is latched; the caller reloads the state from where the store is now.
 */
export class RegressionGuard {
  private latched: string | null = null;

  constructor(
    private readonly mode: OnRegression,
    private readonly log: Logger,
  ) {}

  /** Why batches are refused, or null. */
  get reason(): string | null {
    return this.latched;
  }

  /** Records a regression; returns the error the batch fails with. */
  regressed(reason: string, committed: StorePosition, stored?: StorePosition): SupsupError {
    const context = {
      reason,
      committed: formatPosition(committed),
      ...(stored === undefined ? {} : { store: formatPosition(stored) }),
      onRegression: this.mode,
    };
    if (this.mode === 'accept') {
      this.log.warn('store regressed; accepted: learning goes on from what the store holds now', context);
      return new SupsupError('E_STORE_REGRESSED', `store regressed (accepted): ${reason}`, {
        retriable: true,
      });
    }
    if (this.latched === null) {
      this.log.error(
        'store regressed: no batch is learned or published until the store is restored',
        context,
      );
    }
    this.latched = reason;
    return this.refusal();
  }

  refusal(): SupsupError {
    return new SupsupError('E_STORE_REGRESSED', `store regressed, batch refused: ${this.latched}`, {
      retriable: true,
    });
  }
}
