import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cli = path.join(root, 'src/cli/main.ts');

function supsupd(...args: string[]) {
  return supsupdWithEnv({}, [], ...args);
}

function supsupdWithEnv(
  env: Readonly<Record<string, string>>,
  nodeFlags: readonly string[],
  ...args: string[]
) {
  return spawnSync(process.execPath, [...nodeFlags, '--import', 'tsx', cli, ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, ...env },
  });
}

test('bad options: every problem reported at once, exit code 2, nothing on stdout', () => {
  const run = supsupd(
    'bench',
    'permuted',
    '--tasks',
    '0',
    '--objective',
    'X',
    '--arch',
    'resnet',
    '--bprime',
    '500',
    '--backend',
    'gpu',
  );
  assert.equal(run.status, 2, run.stderr);
  assert.equal(run.stdout, '');
  assert.match(run.stderr, /E_BAD_ARGUMENT/);
  for (const fragment of [
    '--tasks',
    '--objective',
    "unknown architecture 'resnet'",
    '--bprime 500',
    '--backend',
  ]) {
    assert.ok(run.stderr.includes(fragment), `missing '${fragment}' in: ${run.stderr}`);
  }
});

test('info --json names the backend in use and why the native addon was not taken', () => {
  const run = supsupd('info', '--json', '--backend', 'auto');
  assert.equal(run.status, 0, run.stderr);
  const report = JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '') as {
    backend: string;
    attempts: { backend: string; ok: boolean; reason?: string }[];
  };
  assert.ok(['tensorflow', 'wasm', 'cpu'].includes(report.backend));
  const last = report.attempts.at(-1);
  assert.equal(last?.backend, report.backend);
  assert.equal(last?.ok, true);
  for (const failed of report.attempts.slice(0, -1)) {
    assert.equal(failed.ok, false);
    assert.ok((failed.reason ?? '').length > 0, 'a skipped backend must say why');
  }
});

test('info --json: the screen uses relaxed SIMD unless SUPSUPD_RELAXED_SIMD=off, and says how', () => {
  const screen = (env: Record<string, string>, nodeFlags: readonly string[] = []) => {
    const run = supsupdWithEnv(env, nodeFlags, 'info', '--json', '--backend', 'wasm');
    assert.equal(run.status, 0, run.stderr);
    const { screenSwizzle, relaxedSimd } = JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '') as {
      screenSwizzle: string;
      relaxedSimd: string;
    };
    return { screenSwizzle, relaxedSimd };
  };
  const major = Number(process.versions.node.split('.')[0]);
  const relaxed = 'i8x16.relaxed_swizzle';
  // Node 20 – 21 have relaxed SIMD behind a V8 flag, which the CLI sets; Node ≥ 22 has it already.
  assert.deepEqual(screen({}), { screenSwizzle: relaxed, relaxedSimd: major < 22 ? 'enabled' : 'runtime' });
  const off = screen({ SUPSUPD_RELAXED_SIMD: 'off' });
  if (major < 22) assert.deepEqual(off, { screenSwizzle: 'i8x16.swizzle', relaxedSimd: 'off' });
  if (major === 20) {
    const flagged = screen({ SUPSUPD_RELAXED_SIMD: 'off' }, ['--experimental-wasm-relaxed-simd']);
    assert.deepEqual(flagged, { screenSwizzle: relaxed, relaxedSimd: 'runtime' });
  }
  const bad = supsupdWithEnv({ SUPSUPD_RELAXED_SIMD: 'yes' }, [], 'info', '--json');
  assert.equal(bad.status, 2);
  assert.equal(bad.stdout, '');
  assert.match(bad.stderr, /E_CONFIG: SUPSUPD_RELAXED_SIMD must be one of auto\|off, got 'yes'/);
});

test('bench split --json: the last stdout line is one JSON object with the required fields', () => {
  const run = supsupd(
    'bench',
    'split',
    '--tasks',
    '2',
    '--iterations',
    '40',
    '--outputs',
    '20',
    '--eval-limit',
    '128',
    '--backend',
    'cpu',
    '--json',
  );
  assert.equal(run.status, 0, run.stderr);
  const report = JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '') as Record<string, unknown>;
  for (const key of [
    'gg_acc',
    'gns_acc',
    'gnu_acc',
    'task_inference_acc',
    'train_samples_per_s',
    'oneshot_ms_per_batch',
    'mask_bytes_per_task',
    'backend',
    'config',
  ]) {
    assert.ok(key in report, `missing ${key}`);
  }
  assert.equal(report.backend, 'cpu');
  const config = report.config as { tasks: number; scenario: string; arch: { outputs: number } };
  assert.equal(config.tasks, 2);
  assert.equal(config.scenario, 'split');
  assert.equal(config.arch.outputs, 20);
  assert.match(run.stderr, /100\.0%/, 'progress goes to stderr');
});

test('bench daemon --json: every record of the stream comes out of the real daemon', () => {
  const run = supsupd(
    'bench',
    'daemon',
    '--source',
    'file',
    '--records',
    '600',
    '--masks',
    '3',
    // The stream task's mask is trained this many steps first (default 300): on the plain-JS cpu backend those
    // took most of the run, past the 120 s limit on a loaded machine.
    '--train-steps',
    '20',
    '--backend',
    'cpu',
    '--json',
  );
  assert.equal(run.status, 0, run.stderr);
  const report = JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '') as Record<string, number>;
  assert.equal(report.records_in, 600);
  assert.equal(report.results_out, 600);
  assert.ok((report.records_per_s ?? 0) > 0);
  // The steady state excludes the time before the first batch, so it is never the slower figure.
  assert.ok((report.join_seconds ?? -1) >= 0 && (report.join_seconds ?? 0) <= (report.seconds ?? 0));
  assert.ok((report.records_per_s_after_join ?? 0) >= (report.records_per_s ?? Infinity));
});
