/**
 * `supsupd masks …` and `supsupd infer` as an operator runs them (docs/masks.md), on a file store the real daemon
 * built from a short demo stream: export, import into a new namespace of the shared Redis (a unique namespace,
 * its keys deleted after), the same predictions on 1,000 records from the imported namespace; one exported task
 * served by `supsupd infer` over stdin and HTTP gives the daemon's predictions for that task; bad archives,
 * another network and unknown stores exit 2 with nothing written.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { crc32 } from '../../src/codec/mask-codec.ts';
import type { RawRecord, ResultRecord } from '../../src/records.ts';
import { FileStore, RedisStore } from '../../src/store/index.ts';
import { deleteKeysWithPrefix, ping, SHARED_REDIS, uniquePrefix } from '../harness/redis.ts';
import { testBackend } from '../support/backend.ts';
import { CLI_ENTRY, REPO_ROOT, startCli } from '../support/daemon-cli.ts';
import { runDaemon, sourceRecords } from '../support/masks-source.ts';
import { waitFor } from '../support/wait.ts';

const BACKEND = process.env.SUPSUPD_TEST_BACKEND ?? 'wasm';
const LEARNED = 1280;
const records = sourceRecords(LEARNED);
const root = mkdtempSync(path.join(tmpdir(), 'supsupd-masks-cli-'));
const sourceDir = path.join(root, 'source');
const archiveFile = path.join(root, 'all.ssma');
const namespace = uniquePrefix('masks').slice(0, 60);
const sharedRedisUp = await ping(SHARED_REDIS.port);
if (!sharedRedisUp && process.env.CI === 'true') {
  throw new Error(
    `the shared Redis on ${SHARED_REDIS.url} does not answer PING; CI=true, so this is a failure`,
  );
}
/** The daemon's inference-only results on the first 1,000 records (all applied), from the source store. */
let daemonResults: ResultRecord[] = [];

function supsupd(args: readonly string[], options: { input?: string; env?: Record<string, string> } = {}) {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env))
    if (!name.startsWith('SUPSUPD_')) env[name] = value;
  const run = spawnSync(process.execPath, ['--import', 'tsx', CLI_ENTRY, ...args], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: 120_000,
    input: options.input ?? '',
    maxBuffer: 64 << 20,
    env: { ...env, ...options.env },
  });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

const redisEnv = { SUPSUPD_REDIS_URL: SHARED_REDIS.url };

/** A demo record as a JSON input line: x, the label when it has one, the id. */
function jsonLine(raw: RawRecord): string {
  const value = raw.value as Buffer;
  const x = Array.from({ length: value.length / 4 }, (_, j) => value.readFloatLE(j * 4));
  const y = raw.headers.y;
  return JSON.stringify({ x, ...(typeof y === 'string' ? { y: Number(y) } : {}), id: raw.headers.id });
}

before(async () => {
  await testBackend();
  await runDaemon(new FileStore(sourceDir), records, 0, LEARNED);
  daemonResults = await runDaemon(new FileStore(sourceDir), records, 0, 1000);
  const exported = supsupd(['masks', 'export', '--dir', sourceDir, '--out', archiveFile, '--json']);
  assert.equal(exported.status, 0, exported.stderr);
});

after(async () => {
  rmSync(root, { recursive: true, force: true });
  if (sharedRedisUp) await deleteKeysWithPrefix(namespace);
});

test('masks list and show: the tasks as a table and as JSON', () => {
  const listed = supsupd(['masks', 'list', '--dir', sourceDir, '--json']);
  assert.equal(listed.status, 0, listed.stderr);
  const json = JSON.parse(listed.stdout) as { archKey: string; tasks: { task: number; checksum: string }[] };
  assert.equal(json.archKey, '784-300-100-100');
  assert.ok(json.tasks.length >= 3);
  assert.deepEqual(
    json.tasks.map((t) => t.task),
    json.tasks.map((_, i) => i),
  );
  const table = supsupd(['masks', 'list', '--archive', archiveFile]);
  assert.equal(table.status, 0, table.stderr);
  const lines = table.stdout.trim().split('\n');
  assert.match(lines[1] ?? '', /^task\s+version\s+state\s+steps\s+born at\s+born time\s+checksum$/);
  assert.equal(lines.length, 2 + json.tasks.length);
  assert.match(lines[2] ?? '', new RegExp(`^0 .* demo/0@0 .* ${json.tasks[0]?.checksum}$`));
  const shown = supsupd(['masks', 'show', '1', '--dir', sourceDir, '--json']);
  assert.equal(shown.status, 0, shown.stderr);
  const detail = JSON.parse(shown.stdout) as { task: number; checksum: string; density: number };
  assert.equal(detail.task, 1);
  assert.equal(detail.checksum, json.tasks[1]?.checksum);
  assert.ok(detail.density > 0 && detail.density < 1);
  const missing = supsupd(['masks', 'show', String(json.tasks.length), '--dir', sourceDir]);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /has no task/);
});

test('export, import into a new Redis namespace: the same tasks, the same predictions on 1,000 records', async (t) => {
  if (!sharedRedisUp) {
    t.skip(`the shared Redis on ${SHARED_REDIS.url} does not answer PING`);
    return;
  }
  const imported = supsupd(['masks', 'import', archiveFile, '--namespace', namespace], { env: redisEnv });
  assert.equal(imported.status, 0, imported.stderr);
  const diff = supsupd(['masks', 'diff', sourceDir, `redis:${namespace}`, '--json'], { env: redisEnv });
  assert.equal(diff.status, 0, diff.stderr);
  const delta = JSON.parse(diff.stdout) as {
    same: number;
    changed: unknown[];
    added: unknown[];
    removed: unknown[];
  };
  assert.deepEqual([delta.changed, delta.added, delta.removed], [[], [], []]);
  assert.ok(delta.same >= 3);

  const store = new RedisStore({ url: SHARED_REDIS.url, namespace });
  const fromRedis = await runDaemon(store, records, 0, 1000);
  assert.equal(fromRedis.length, 1000);
  assert.deepEqual(fromRedis, daemonResults);

  const again = supsupd(['masks', 'import', archiveFile, '--namespace', namespace], { env: redisEnv });
  assert.equal(again.status, 2);
  assert.match(again.stderr, /is not empty/);

  const last = delta.same - 1;
  const removed = supsupd(['masks', 'rm', String(last), '--namespace', namespace], { env: redisEnv });
  assert.equal(removed.status, 0, removed.stderr);
  const listed = supsupd(['masks', 'list', '--namespace', namespace, '--json'], { env: redisEnv });
  assert.equal((JSON.parse(listed.stdout) as { tasks: unknown[] }).tasks.length, last);
  const served = await runDaemon(new RedisStore({ url: SHARED_REDIS.url, namespace }), records, 0, 1000);
  assert.ok(
    served.every((r) => r.task < last),
    'a daemon serves the namespace without the removed task',
  );
});

test("supsupd infer --model on one exported task gives the daemon's predictions for that task (stdin)", () => {
  const counts = new Map<number, number>();
  for (const r of daemonResults) counts.set(r.task, (counts.get(r.task) ?? 0) + 1);
  const [task] = [...counts].sort((a, b) => b[1] - a[1])[0] ?? [0];
  const model = path.join(root, `task-${task}.ssma`);
  const exported = supsupd(['masks', 'export', '--dir', sourceDir, '--task', String(task), '--out', model]);
  assert.equal(exported.status, 0, exported.stderr);
  const input = `${records.slice(0, 1000).map(jsonLine).join('\n')}\n{"x": [1, 2]}\n`;
  const served = supsupd(['infer', '--model', model, '--backend', BACKEND], { input });
  assert.equal(served.status, 0, served.stderr);
  const results = served.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as ResultRecord);
  assert.equal(results.length, 1000);
  assert.match(served.stderr, /"reason":"E_RECORD_DIMENSION"/);
  const byId = new Map(results.map((r) => [r.id, r]));
  const routed = daemonResults.filter((r) => r.task === task);
  assert.ok(routed.length >= 100, `${routed.length} records routed to task ${task}`);
  for (const want of routed) {
    const got = byId.get(want.id);
    assert.ok(got !== undefined);
    assert.deepEqual(
      [got.task, got.prediction, got.confidence, got.entropy, got.maskVersion],
      [want.task, want.prediction, want.confidence, want.entropy, want.maskVersion],
      want.id,
    );
  }
});

test('supsupd infer --http-port serves the same predictions over HTTP', async () => {
  const task = daemonResults[0]?.task ?? 0;
  const model = path.join(root, `http-${task}.ssma`);
  assert.equal(
    supsupd(['masks', 'export', '--dir', sourceDir, '--task', String(task), '--out', model]).status,
    0,
  );
  const logFile = path.join(root, 'infer-http.log');
  const cli = startCli({
    args: ['infer', '--model', model, '--http-port', '0', '--backend', BACKEND],
    logFile,
  });
  try {
    const url = await waitFor('infer to listen', 60_000, () => {
      const line = existsSync(logFile) ? readFileSync(logFile, 'utf8').match(/"listening":"([^"]+)"/) : null;
      return line?.[1];
    });
    const routed = daemonResults.filter((r) => r.task === task).slice(0, 50);
    const rows = routed.map((r) => {
      const raw = records.find((x) => x.headers.id === r.id) as RawRecord;
      return (JSON.parse(jsonLine(raw)) as { x: number[] }).x;
    });
    const response = await fetch(`${url}/api/v1/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ x: rows }),
    });
    assert.equal(response.status, 200);
    const body = (await response.json()) as { task: number; predictions: number[]; confidences: number[] };
    assert.equal(body.task, task);
    assert.deepEqual(
      body.predictions,
      routed.map((r) => r.prediction),
    );
    assert.deepEqual(
      body.confidences,
      routed.map((r) => r.confidence),
    );
    const bad = await fetch(`${url}/api/v1/infer`, { method: 'POST', body: '{"x": [[1]]}' });
    assert.equal(bad.status, 400);
    cli.signal('SIGTERM');
    // The child is unref'd: poll (the poll's timer keeps this process alive) rather than await its exit.
    await waitFor('infer to stop', 10_000, () => (cli.exited() ? true : undefined));
    assert.equal(cli.child.exitCode, 0, cli.tail());
  } finally {
    await cli.kill();
  }
});

test('masks rm: another task than the last is refused with exit 2, the last one goes', () => {
  const copy = path.join(root, 'rm-copy');
  assert.equal(supsupd(['masks', 'import', archiveFile, '--dir', copy]).status, 0);
  const count = (
    JSON.parse(supsupd(['masks', 'list', '--dir', copy, '--json']).stdout) as { tasks: unknown[] }
  ).tasks.length;
  const refused = supsupd(['masks', 'rm', '0', '--dir', copy]);
  assert.equal(refused.status, 2);
  assert.match(
    refused.stderr,
    new RegExp(`E_BAD_ARGUMENT: only the last task \\(${count - 1}\\) can be removed`),
  );
  const removed = supsupd(['masks', 'rm', String(count - 1), '--dir', copy, '--json']);
  assert.equal(removed.status, 0, removed.stderr);
  assert.equal((JSON.parse(removed.stdout) as { remaining: number }).remaining, count - 1);
  const diff = supsupd(['masks', 'diff', archiveFile, copy, '--json']);
  const delta = JSON.parse(diff.stdout) as { removed: number[]; same: number };
  assert.deepEqual(delta.removed, [count - 1]);
  assert.equal(delta.same, count - 1);
});

/** The archive file with byte `at` flipped, or its version field set to `version` (CRC made right again). */
function damaged(name: string, change: (bytes: Uint8Array) => void, fixCrc: boolean): string {
  const bytes = new Uint8Array(readFileSync(archiveFile));
  change(bytes);
  if (fixCrc) {
    const view = new DataView(bytes.buffer);
    view.setUint32(bytes.length - 4, crc32(bytes.subarray(0, bytes.length - 4)), true);
  }
  const file = path.join(root, name);
  writeFileSync(file, bytes);
  return file;
}

test('bad archives, another network, unknown stores: exit 2, a clear message, nothing written', () => {
  const flipped = damaged(
    'flipped.ssma',
    (b) => {
      b[2000] = (b[2000] as number) ^ 1;
    },
    false,
  );
  const newer = damaged('newer.ssma', (b) => new DataView(b.buffer).setUint16(4, 2, true), true);
  const cases: [string[], RegExp][] = [
    [['masks', 'import', flipped, '--dir', path.join(root, 't1')], /E_ARCHIVE: archive checksum mismatch/],
    [['masks', 'import', newer, '--dir', path.join(root, 't2')], /format version 2 is newer/],
    [['infer', '--model', flipped], /E_ARCHIVE/],
    [['masks', 'list', '--archive', newer], /E_ARCHIVE/],
    [
      ['masks', 'import', path.join(root, 'absent.ssma'), '--dir', path.join(root, 't3')],
      /cannot read the archive/,
    ],
    [
      ['masks', 'export', '--dir', path.join(root, 'nowhere'), '--out', path.join(root, 'x.ssma')],
      /no file store/,
    ],
    [['masks', 'list', '--dir', path.join(root, 'nowhere')], /no file store/],
  ];
  const config = path.join(root, 'fc1024.json');
  writeFileSync(
    config,
    JSON.stringify({ store: { kind: 'file', dir: path.join(root, 't4') }, model: { arch: 'fc1024' } }),
  );
  cases.push([
    ['masks', 'import', archiveFile, '--config', config],
    /E_ARCH_MISMATCH: .* says 784-1024-1024-100 seed 1/,
  ]);
  const taskArchive = path.join(root, 'task-0-only.ssma');
  assert.equal(
    supsupd(['masks', 'export', '--dir', sourceDir, '--task', '0', '--out', taskArchive]).status,
    0,
  );
  cases.push([
    ['masks', 'import', taskArchive, '--dir', path.join(root, 't5')],
    /import takes a whole-store archive/,
  ]);
  cases.push([['infer', '--model', archiveFile], /infer serves one task/]);
  const before = new Set(readdirSync(root));
  for (const [args, message] of cases) {
    const run = supsupd(args);
    assert.equal(run.status, 2, `${args.join(' ')}: ${run.stderr}`);
    assert.match(run.stderr, message, args.join(' '));
    assert.equal(run.stdout, '', args.join(' '));
  }
  if (sharedRedisUp) {
    const unknown = `${namespace}none`;
    const run = supsupd(['masks', 'export', '--namespace', unknown, '--out', path.join(root, 'y.ssma')], {
      env: redisEnv,
    });
    assert.equal(run.status, 2, run.stderr);
    assert.match(run.stderr, /holds no state/);
  }
  assert.deepEqual(new Set(readdirSync(root)), before, 'no file or store directory was created');
});
