/** The event retention job: drops events older than `maxAgeDays`, then the oldest beyond `maxEvents`. */
import type { MaskStore } from '../../store/types.js';
import type { JobDefinition } from '../scheduler.js';

export interface EventRetentionOptions {
  readonly cron: string;
  readonly maxAgeDays: number;
  readonly maxEvents: number;
  /** The clock (tests); default Date.now. */
  readonly now?: () => number;
}

const DAY_MS = 86_400_000;

export function eventRetentionJob(store: MaskStore, options: EventRetentionOptions): JobDefinition {
  const now = options.now ?? Date.now;
  return {
    name: 'eventRetention',
    cron: options.cron,
    async run(context): Promise<string> {
      context.signal.throwIfAborted();
      const olderThan = new Date(now() - options.maxAgeDays * DAY_MS);
      const removed = await store.trimEvents({ olderThan, maxEvents: options.maxEvents });
      return `removed ${removed} events (older than ${olderThan.toISOString()} or beyond ${options.maxEvents})`;
    },
  };
}
