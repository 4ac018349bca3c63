import { relaxedSimd } from '../model/kernels/index.js';
import {
  BACKEND_PREFERENCES,
  type BackendPreference,
  installedVersions,
  selectBackend,
} from '../model/network/index.js';
import { OptionReader } from './options.js';
import { relaxedSimdState } from './relaxed-simd.js';

export async function info(raw: Readonly<Record<string, unknown>>): Promise<void> {
  const r = new OptionReader(raw);
  const preference = r.choice<BackendPreference>('backend', BACKEND_PREFERENCES, 'auto');
  r.finish('info');
  const backend = await selectBackend(preference);
  const report = {
    backend: backend.backend,
    preference,
    attempts: backend.attempts,
    wasm: backend.wasm,
    native: backend.native,
    /** The mask bank's screen (ADR 0007): relaxed where the runtime has relaxed SIMD. */
    screenSwizzle: relaxedSimd() ? 'i8x16.relaxed_swizzle' : 'i8x16.swizzle',
    /** How relaxed SIMD came to be on or off (src/cli/relaxed-simd.ts). */
    relaxedSimd: relaxedSimdState(),
    tfjs_core: backend.tfjsVersion,
    packages: installedVersions(),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  };
  if (raw.json === true) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }
  const lines = [`backend in use: ${backend.backend} (asked for ${preference})`];
  for (const attempt of backend.attempts) {
    lines.push(
      `  ${attempt.ok ? 'took' : 'skipped'} ${attempt.backend}${attempt.reason ? `: ${attempt.reason}` : ''}`,
    );
  }
  if (backend.wasm)
    lines.push(
      `wasm: simd ${backend.wasm.simd ? 'on' : 'off'}, threads ${backend.wasm.threads ? 'on' : 'off'}`,
    );
  lines.push(
    `mask bank: WebAssembly SIMD kernels, screen with ${report.screenSwizzle} (relaxed SIMD: ${report.relaxedSimd})`,
  );
  if (backend.native)
    lines.push(
      `native: ${backend.native.package}, libtensorflow ${backend.native.libtensorflow ?? '(version unknown)'}, ` +
        `oneDNN ${backend.native.onednn ? 'on' : 'off'}`,
    );
  lines.push(`node ${process.version} on ${report.platform}`);
  for (const [name, version] of Object.entries(report.packages))
    lines.push(`${name} ${version ?? '(not installed)'}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}
