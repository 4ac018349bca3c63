import { SupsupError } from '../errors.js';

/**
 * Source offsets (Kafka offsets are signed 64-bit) travel as canonical decimal strings: no sign, no leading
 * zeros, at most 2^63 - 1. They are compared as BigInt, never as JS numbers (which lose precision beyond
 * 2^53) nor as strings ("10" < "9" as strings). The canonical form is what lets the Redis Lua script compare
 * them by length, then digit by digit.
 */
export const MAX_OFFSET = (1n << 63n) - 1n;

const OFFSET_PATTERN = /^(0|[1-9][0-9]{0,18})$/;

/** True for a canonical decimal offset in [0, 2^63). */
export function isOffset(value: unknown): value is string {
  return typeof value === 'string' && OFFSET_PATTERN.test(value) && BigInt(value) <= MAX_OFFSET;
}

/** The offset as a BigInt; throws E_BAD_ARGUMENT for anything but a canonical decimal offset. */
export function parseOffset(value: string, what = 'offset'): bigint {
  if (!isOffset(value)) {
    throw new SupsupError(
      'E_BAD_ARGUMENT',
      `${what} ${JSON.stringify(value)} is not a canonical decimal integer in [0, 2^63)`,
      { details: { value } },
    );
  }
  return BigInt(value);
}

/** -1, 0 or 1 as offset `a` is before, equal to or after offset `b` (both canonical decimal strings). */
export function compareOffsets(a: string, b: string): number {
  const x = parseOffset(a);
  const y = parseOffset(b);
  return x < y ? -1 : x > y ? 1 : 0;
}
