import { SupsupError } from '../errors.js';

/**
 * Source offsets (Kafka offsets are signed 64-bit) travel as canonical decimal strings: no sign, no leading
 * zeros, at most 2^63 - 1. They are compared as BigInt, never as JS numbers (which lose precision beyond
 * 2^53) nor as strings ("10" < "9" as strings). The canonical form is what lets the Redis Lua script compare
 * them by length, then digit by digit.
 */
export const MAX_OFFSET = (1n << 63n) - 1n;

const OFFSET_PATTERN = /^(0|[1-9][0-9]{0,18})$/;

const MAX_OFFSET_TEXT = MAX_OFFSET.toString();

/**
 * True for a canonical decimal offset in [0, 2^63). Canonical decimals of the same length order as
 * their text, so the bound needs no BigInt (the daemon checks every record's offset).
 */
export function isOffset(value: unknown): value is string {
  return (
    typeof value === 'string' &&
    OFFSET_PATTERN.test(value) &&
    (value.length < MAX_OFFSET_TEXT.length || value <= MAX_OFFSET_TEXT)
  );
}

/** The offset as a BigInt; throws E_BAD_ARGUMENT for anything but a canonical decimal offset. */
export function parseOffset(value: string, what = 'offset'): bigint {
  checkOffset(value, what);
  return BigInt(value);
}

function checkOffset(value: string, what = 'offset'): void {
  if (!isOffset(value)) {
    throw new SupsupError(
      'E_BAD_ARGUMENT',
      `${what} ${JSON.stringify(value)} is not a canonical decimal integer in [0, 2^63)`,
      { details: { value } },
    );
  }
}

/**
 * -1, 0 or 1 as offset `a` is before, equal to or after offset `b` (both canonical decimal strings;
 * anything else throws as parseOffset does): the shorter is smaller, and text order decides between
 * equal lengths, which is their numeric order.
 */
export function compareOffsets(a: string, b: string): number {
  checkOffset(a);
  checkOffset(b);
  if (a.length !== b.length) return a.length < b.length ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}
