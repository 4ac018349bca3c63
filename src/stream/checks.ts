import { SupsupError } from '../errors.js';

/** An option that must be a positive safe integer; E_CONFIG naming it otherwise. */
export function positiveInt(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new SupsupError('E_CONFIG', `${name} must be a positive integer, got ${value}`);
  }
  return value;
}
