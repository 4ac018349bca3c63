import { isSupsupError } from './errors.js';

/**
 * The one retry policy of the daemon: exponential backoff from `baseMs`, capped at `maxMs`, with ±20 %
 * jitter so replicas that failed together do not retry together.
 */
export interface Backoff {
  readonly baseMs: number;
  readonly maxMs: number;
}

/** Delay before retry number `attempt` (1 = the first retry). `random` in [0, 1) for the jitter. */
export function backoffDelay(attempt: number, backoff: Backoff, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(attempt - 1, 0), 30);
  const base = Math.min(backoff.maxMs, backoff.baseMs * 2 ** exponent);
  return Math.round(base * (0.8 + 0.4 * random()));
}

export interface RetryOptions extends Backoff {
  /** Give up after this many attempts in all (default: unlimited). */
  readonly attempts?: number;
  /** Which errors may succeed on a later attempt (default: SupsupErrors marked retriable). */
  readonly retriable?: (error: unknown) => boolean;
  /** Aborting stops the waiting; the last error is thrown. */
  readonly signal?: AbortSignal;
  readonly onRetry?: (attempt: number, delayMs: number, error: unknown) => void;
}

export const isRetriable = (error: unknown): boolean => isSupsupError(error) && error.retriable;

/** Calls `fn` until it resolves, a non-retriable error, the attempt cap, or the abort signal. */
export async function retry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const retriable = options.retriable ?? isRetriable;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (error) {
      const exhausted = options.attempts !== undefined && attempt >= options.attempts;
      if (exhausted || !retriable(error) || options.signal?.aborted === true) throw error;
      const delay = backoffDelay(attempt, options);
      options.onRetry?.(attempt, delay, error);
      if (!(await sleep(delay, options.signal))) throw error;
    }
  }
}

/** Resolves true after `ms`, or false as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) return resolve(false);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
