import { SupsupError } from '../errors.js';

/** An option that must be a positive safe integer; E_CONFIG naming it otherwise. */
export function positiveInt(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new SupsupError('E_CONFIG', `${name} must be a positive integer, got ${value}`);
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
