import { SupsupError } from '../errors.js';

/** An option that must be a positive safe integer; E_CONFIG naming it otherwise. */
export function positiveInt(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new SupsupError('E_CONFIG', `${name} must be a positive integer, got ${value}`);
  }
  return value;
}

/** An option that must be a non-negative safe integer; E_CONFIG naming it otherwise. */
export function nonNegativeInt(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new SupsupError('E_CONFIG', `${name} must be a non-negative integer, got ${value}`);
  }
  return value;
}

/** A promise with its resolve and reject, for a source's done() (Promise.withResolvers, which Node 20 lacks). */
export interface Settlement {
  readonly promise: Promise<void>;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

export function settlement(): Settlement {
  let resolve: () => void = () => {};
  let reject: (error: unknown) => void = () => {};
  // The executor runs synchronously: both are the promise's own before this returns.
  const promise = new Promise<void>((resolvePromise, rejectPromise) => {
    resolve = resolvePromise;
    reject = rejectPromise;
  });
  return { promise, resolve, reject };
}

/** How `work` ended within `ms`: resolved, rejected, or still running (then left to finish on its own). */
export async function settleWithin(work: Promise<unknown>, ms: number): Promise<'ok' | 'error' | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
    timer.unref();
  });
  const outcome = await Promise.race([work.then(() => 'ok' as const), timedOut]).catch(
    () => 'error' as const,
  );
  clearTimeout(timer);
  work.catch(() => {});
  return outcome;
}
