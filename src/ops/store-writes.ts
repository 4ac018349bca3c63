import type { CommitObservation } from '../daemon/telemetry.js';
import type { ApiStoreWrites } from './api-types.js';
import { Ring } from './ring.js';

/** Commits whose latency the percentiles of `/api/v1/status` cover. */
export const RECENT_COMMITS = 256;

/**
 * State commits to the mask store as the API reports them: counts by outcome since start, and the
 * latency of the last commits (a bounded ring).
 */
export class StoreWrites {
  private readonly counts = { applied: 0, fenced: 0, failed: 0 };
  private readonly recentSeconds: Ring<number>;
  private last: ApiStoreWrites['last'] = null;

  constructor(recent = RECENT_COMMITS) {
    this.recentSeconds = new Ring(recent);
  }

  add(observation: CommitObservation, time: number): void {
    this.counts[observation.outcome]++;
    this.recentSeconds.push(observation.seconds);
    this.last = {
      seconds: observation.seconds,
      outcome: observation.outcome,
      time: new Date(time).toISOString(),
    };
  }

  view(): ApiStoreWrites {
    const sorted = this.recentSeconds.items().sort((a, b) => a - b);
    return {
      ...this.counts,
      recent:
        sorted.length === 0
          ? null
          : {
              commits: sorted.length,
              p50Seconds: nearestRank(sorted, 0.5),
              p95Seconds: nearestRank(sorted, 0.95),
              maxSeconds: nearestRank(sorted, 1),
            },
      last: this.last,
    };
  }
}

/** The nearest-rank `q` quantile of ascending `sorted` (not empty): its ⌈q·n⌉-th value. */
function nearestRank(sorted: readonly number[], q: number): number {
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1] ?? Number.NaN;
}
