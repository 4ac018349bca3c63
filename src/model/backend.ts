import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { SupsupError } from '../errors.js';

/**
 * Start-up choice of the tfjs backend (DESIGN.md, "Backends"): `auto` tries the native addon
 * @tensorflow/tfjs-node-gpu, then wasm, then cpu. Every attempt and why it failed is recorded for
 * `supsupd info`.
 */
export type BackendPreference = 'auto' | 'tensorflow' | 'wasm' | 'cpu';
export type BackendName = Exclude<BackendPreference, 'auto'>;

export const BACKEND_PREFERENCES: readonly BackendPreference[] = ['auto', 'tensorflow', 'wasm', 'cpu'];

export interface BackendAttempt {
  readonly backend: BackendName;
  readonly ok: boolean;
  readonly reason?: string;
}

export interface BackendInfo {
  readonly backend: BackendName;
  readonly attempts: readonly BackendAttempt[];
  readonly tfjsVersion: string;
  readonly wasm: { readonly simd: boolean; readonly threads: boolean } | null;
}

const ORDER: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];
const require = createRequire(import.meta.url);

let selected: BackendInfo | null = null;

export function parseBackendPreference(value: string): BackendPreference {
  if ((BACKEND_PREFERENCES as readonly string[]).includes(value)) return value as BackendPreference;
  throw new SupsupError(
    'E_BAD_ARGUMENT',
    `unknown backend '${value}' (choose one of ${BACKEND_PREFERENCES.join(', ')})`,
  );
}

/** Selects and initialises a backend once per process; later calls return the first choice. */
export async function selectBackend(preference: BackendPreference = 'auto'): Promise<BackendInfo> {
  if (selected !== null) return selected;
  const candidates = preference === 'auto' ? ORDER : [preference];
  const attempts: BackendAttempt[] = [];
  for (const backend of candidates) {
    try {
      await activate(backend);
      attempts.push({ backend, ok: true });
      selected = {
        backend,
        attempts,
        tfjsVersion: tf.version_core,
        wasm:
          backend === 'wasm'
            ? {
                simd: tf.env().getBool('WASM_HAS_SIMD_SUPPORT'),
                threads: tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT'),
              }
            : null,
      };
      return selected;
    } catch (error) {
      attempts.push({ backend, ok: false, reason: firstLine(error) });
    }
  }
  throw new SupsupError(
    'E_BACKEND_UNAVAILABLE',
    `no usable tfjs backend for '${preference}': ${attempts.map((a) => `${a.backend}: ${a.reason ?? 'ok'}`).join('; ')}`,
    { details: { attempts } },
  );
}

async function activate(backend: BackendName): Promise<void> {
  switch (backend) {
    case 'tensorflow':
      // The optional native addon registers the 'tensorflow' backend when it loads.
      await import('@tensorflow/tfjs-node-gpu' as string);
      break;
    case 'wasm': {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      wasm.setWasmPaths(`${path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm'))}${path.sep}`);
      break;
    }
    case 'cpu':
      await import('@tensorflow/tfjs-backend-cpu');
      break;
  }
  if (!(await tf.setBackend(backend))) throw new Error(`tf.setBackend('${backend}') returned false`);
  await tf.ready();
  if (tf.getBackend() !== backend) throw new Error(`active backend is ${tf.getBackend()}, not ${backend}`);
}

function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  const line = text.split('\n').find((l) => l.trim() !== '') ?? text;
  if ((error as { code?: unknown }).code === 'ERR_MODULE_NOT_FOUND') {
    return `package not installed (${line.slice(0, 160)}); it is an optional dependency whose install downloads libtensorflow`;
  }
  return line.slice(0, 300);
}

/** Versions of the tfjs packages actually installed, for `supsupd info`. */
export function installedVersions(): Record<string, string | null> {
  const names = [
    '@tensorflow/tfjs-core',
    '@tensorflow/tfjs-backend-wasm',
    '@tensorflow/tfjs-backend-cpu',
    '@tensorflow/tfjs-node-gpu',
  ];
  const out: Record<string, string | null> = {};
  for (const name of names) {
    try {
      out[name] = (require(`${name}/package.json`) as { version: string }).version;
    } catch {
      out[name] = null;
    }
  }
  return out;
}
