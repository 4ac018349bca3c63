import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { SupsupError } from '../../errors.js';

/**
 * Start-up choice of the tfjs backend (docs/native-backend.md): `auto` tries the native addon
 * (@tensorflow/tfjs-node-gpu, else @tensorflow/tfjs-node), then wasm, then cpu. Every attempt and
 * why it failed is recorded for `supsupd info`. Neither addon installs from npm alone on a machine
 * that cannot reach TensorFlow's download host: deploy/native/setup-native-backend.sh builds
 * @tensorflow/tfjs-node against libtensorflow from Maven Central (docs/native-backend.md).
 */
export type BackendPreference = 'auto' | 'tensorflow' | 'wasm' | 'cpu';
export type BackendName = Exclude<BackendPreference, 'auto'>;

export const BACKEND_PREFERENCES: readonly BackendPreference[] = ['auto', 'tensorflow', 'wasm', 'cpu'];

export interface BackendAttempt {
  readonly backend: BackendName;
  readonly ok: boolean;
  readonly reason?: string;
}

/** The native addon behind the 'tensorflow' backend: which package, and its libtensorflow. */
export interface NativeInfo {
  readonly package: string;
  readonly libtensorflow: string | null;
  /** Whether libtensorflow's oneDNN kernels are on (TF_ENABLE_ONEDNN_OPTS; off unless set). */
  readonly onednn: boolean;
}

export interface BackendInfo {
  readonly backend: BackendName;
  readonly attempts: readonly BackendAttempt[];
  readonly tfjsVersion: string;
  readonly wasm: { readonly simd: boolean; readonly threads: boolean } | null;
  readonly native: NativeInfo | null;
}

/** The native addon packages, in the order `tensorflow` tries them. */
export const NATIVE_PACKAGES: readonly string[] = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'];

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
      const nativePackage = await activate(backend);
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
        native:
          nativePackage === null
            ? null
            : { package: nativePackage, libtensorflow: libtensorflowVersion(), onednn: onednnEnabled() },
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

/** Activates `backend`; for 'tensorflow' returns the addon package that provided it. */
async function activate(backend: BackendName): Promise<string | null> {
  let nativePackage: string | null = null;
  switch (backend) {
    case 'tensorflow':
      nativePackage = await importNativeAddon();
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
  return nativePackage;
}

/**
 * Loads the first installed native addon; it registers the 'tensorflow' backend when it loads. A
 * package that is installed but fails to load (missing libtensorflow, CUDA) is an error, not a
 * reason to try the next one, so that `supsupd info` shows the real cause.
 */
async function importNativeAddon(): Promise<string> {
  // libtensorflow logs INFO lines (oneDNN, CPU features) to stderr at load; keep warnings.
  process.env.TF_CPP_MIN_LOG_LEVEL ??= '1';
  // libtensorflow's oneDNN kernels (on by default on x86-64) were 1.2-1.5x slower than its own
  // for this engine's small matrix products (docs/native-backend.md); a value set by the user wins.
  process.env.TF_ENABLE_ONEDNN_OPTS ??= '0';
  for (const name of NATIVE_PACKAGES) {
    try {
      await import(name);
      return name;
    } catch (error) {
      if (!isModuleNotFound(error, name)) throw error;
    }
  }
  throw new Error(
    `not installed (${NATIVE_PACKAGES.join(', ')}); build @tensorflow/tfjs-node with deploy/native/setup-native-backend.sh (docs/native-backend.md)`,
  );
}

function isModuleNotFound(error: unknown, name: string): boolean {
  if (!(error instanceof Error)) return false;
  const code = 'code' in error ? error.code : undefined;
  return code === 'ERR_MODULE_NOT_FOUND' && error.message.includes(`'${name}'`);
}

/** TF_Version() of the libtensorflow behind the active 'tensorflow' backend, if it says. */
function libtensorflowVersion(): string | null {
  const backend: unknown = tf.backend();
  if (typeof backend !== 'object' || backend === null || !('binding' in backend)) return null;
  const binding: unknown = backend.binding;
  if (typeof binding !== 'object' || binding === null || !('TF_Version' in binding)) return null;
  return typeof binding.TF_Version === 'string' ? binding.TF_Version : null;
}

/**
 * libtensorflow's reading of TF_ENABLE_ONEDNN_OPTS (ReadBoolFromEnvVar): off for "0" or "false"
 * in any case; on for anything else, which it takes as unset or as an error and its default.
 */
function onednnEnabled(): boolean {
  const value = process.env.TF_ENABLE_ONEDNN_OPTS?.toLowerCase();
  return value !== '0' && value !== 'false';
}

function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  const line = text.split('\n').find((l) => l.trim() !== '') ?? text;
  if ((error as { code?: unknown }).code === 'ERR_MODULE_NOT_FOUND') {
    return `package not installed (${line.slice(0, 160)})`;
  }
  return line.slice(0, 300);
}

/** Versions of the tfjs packages actually installed, for `supsupd info`. */
export function installedVersions(): Record<string, string | null> {
  const names = [
    '@tensorflow/tfjs-core',
    '@tensorflow/tfjs-backend-wasm',
    '@tensorflow/tfjs-backend-cpu',
    ...NATIVE_PACKAGES,
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
