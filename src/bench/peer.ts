import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** What a peer script printed as its last JSON line, or why there is nothing. */
export type PeerRun =
  | { readonly ok: true; readonly raw: Record<string, unknown> }
  | { readonly ok: false; readonly error: string };

const OPENBLAS = '/usr/lib/x86_64-linux-gnu/openblas-openmp';

/** A PyTorch peer script in docs/reference, from the source checkout (docs/ is not in the npm package). */
export function peerScriptPath(name: string): string | null {
  const script = fileURLToPath(new URL(`../../docs/reference/${name}`, import.meta.url));
  return existsSync(script) ? script : null;
}

/**
 * Runs a peer script with Debian's python3-torch, with OpenBLAS from Debian's libopenblas0-openmp
 * when present (python3-torch alone links the reference BLAS), and parses its last stdout line.
 */
export function runPeerScript(name: string, args: readonly string[], python = '/usr/bin/python3'): PeerRun {
  const script = peerScriptPath(name);
  if (script === null) return { ok: false, error: `peer script docs/reference/${name} not found` };
  const env = { ...process.env };
  if (existsSync(OPENBLAS)) env.LD_LIBRARY_PATH = [OPENBLAS, env.LD_LIBRARY_PATH].filter(Boolean).join(':');
  const run = spawnSync(python, [script, ...args, '--json'], { env, encoding: 'utf8', timeout: 600_000 });
  if (run.status !== 0) {
    return { ok: false, error: (run.stderr || run.error?.message || 'failed').slice(0, 300) };
  }
  try {
    const lines = run.stdout.trim().split('\n');
    return { ok: true, raw: JSON.parse(lines[lines.length - 1] as string) as Record<string, unknown> };
  } catch (error) {
    return { ok: false, error: String(error).slice(0, 300) };
  }
}
