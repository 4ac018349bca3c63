import { setFlagsFromString } from 'node:v8';
import { SupsupError } from '../errors.js';
import { relaxedSimd } from '../model/kernels/index.js';

/**
 * How the mask bank's screen came to use `i8x16.relaxed_swizzle` or not:
 * - `runtime`: this Node validates relaxed SIMD already (Node ≥ 22, or started with the V8 flag);
 * - `enabled`: supsupd set V8's `--experimental-wasm-relaxed-simd` at start-up (Node 20 – 21);
 * - `off`: $SUPSUPD_RELAXED_SIMD=off, and the runtime does not have it;
 * - `unavailable`: the flag was set, yet this V8 does not validate relaxed SIMD.
 */
export type RelaxedSimdState = 'runtime' | 'enabled' | 'off' | 'unavailable';

const RELAXED_SIMD_ENV = 'SUPSUPD_RELAXED_SIMD';
const SETTINGS = ['auto', 'off'] as const;
const V8_FLAG = '--experimental-wasm-relaxed-simd';

let state: RelaxedSimdState | undefined;

/**
 * Turns WebAssembly relaxed SIMD on where Node has it behind a V8 flag, before any kernel is
 * compiled (ADR 0007): the screen's lookups then skip V8's range fix-up, about 15 % of its time.
 * The screen's indices are nibbles, where both swizzles give the same bytes, so results do not
 * change. V8 reads the flag when it validates a module; nothing else in supsupd or tfjs uses
 * relaxed instructions. `SUPSUPD_RELAXED_SIMD=off` leaves V8's flags alone.
 */
export function enableRelaxedSimd(env: NodeJS.ProcessEnv = process.env): RelaxedSimdState {
  const setting = env[RELAXED_SIMD_ENV] || 'auto';
  if (!(SETTINGS as readonly string[]).includes(setting)) {
    throw new SupsupError(
      'E_CONFIG',
      `${RELAXED_SIMD_ENV} must be one of ${SETTINGS.join('|')}, got '${setting}'`,
    );
  }
  if (relaxedSimd()) state = 'runtime';
  else if (setting === 'off') state = 'off';
  else {
    setFlagsFromString(V8_FLAG);
    state = relaxedSimd() ? 'enabled' : 'unavailable';
  }
  return state;
}

/** What enableRelaxedSimd found; before it ran, whether the runtime has relaxed SIMD by itself. */
export function relaxedSimdState(): RelaxedSimdState {
  return state ?? (relaxedSimd() ? 'runtime' : 'off');
}
