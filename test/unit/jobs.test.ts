/** The maintenance jobs (integrity, snapshot, event retention) on MemoryStore and FileStore. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { crc32, encodeMask, maskChecksum } from '../../src/codec/mask-codec.js';
import { loadConfig } from '../../src/config.js';
import { isSupsupError } from '../../src/errors.js';
import { silentLogger } from '../../src/logger.js';
import {
  checkIntegrity,
  createScheduler,
  defaultJobs,
  eventRetentionJob,
  integrityJob,
  listSnapshots,
  readSnapshot,
  writeSnapshot,
} from '../../src/ops/jobs/index.js';
import { type JobRun, Scheduler } from '../../src/ops/scheduler.js';
import type { DaemonEvent } from '../../src/records.js';
import { type Commit, FileStore, type MaskStore, MemoryStore, type TaskMeta } from '../../src/store/index.js';

const ARCH = '784-300-100-10';
const SEED = 7;
const never = new AbortController().signal;

const tempDirs: string[] = [];
after(async () => {
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'supsupd-jobs-test-'));
  tempDirs.push(dir);
  return dir;
}

function meta(task: number, encoded: Uint8Array, checksum = maskChecksum(encoded)): TaskMeta {
  return {
    task,
    version: 1,
    frozen: true,
    trainSteps: 10,
    bornAt: { topic: 'in', partition: 0, offset: String(task) },
    bornTime: '2024-01-01T00:00:00.000Z',
    checksum,
  };
}

/** A commit of tasks 0..n-1; `tamper` may change a task's stored bytes or registry checksum. */
function commitTasks(
  n: number,
  offset: number,
  tamper: (task: number, mask: Uint8Array) => { mask: Uint8Array; checksum: number } | null = () => null,
  events: DaemonEvent[] = [],
): Commit {
  const masks = [];
  const tasks = [];
  for (let task = 0; task < n; task++) {
    const good = encodeMask(
      { archKey: ARCH, seed: SEED, taskId: task, version: 1 },
      new Uint8Array(randomBytes(40)),
    );
    const changed = tamper(task, good);
    masks.push({ task, encodedMask: changed?.mask ?? good, trainingState: null });
    tasks.push(meta(task, good, changed?.checksum ?? maskChecksum(changed?.mask ?? good)));
  }
  return {
    partitionKey: 'in/0',
    appliedOffset: String(offset),
    registry: { archKey: ARCH, seed: SEED, tasks },
    masks,
    events,
  };
}

async function memory(commit?: Commit): Promise<MemoryStore> {
  const store = new MemoryStore();
  await store.open();
  if (commit) await store.commit(commit);
  return store;
}

describe('integrity job', () => {
  test('a healthy store passes, in memory and on disk', async () => {
    const mem = await memory(commitTasks(3, 1));
    assert.deepEqual(await checkIntegrity(mem, never), { checked: 3, bad: [] });
    const file = new FileStore(await tempDir());
    await file.open();
    await file.commit(commitTasks(3, 1));
    assert.deepEqual(await checkIntegrity(file, never), { checked: 3, bad: [] });
    await file.close();
    assert.deepEqual(await checkIntegrity(await memory(), never), { checked: 0, bad: [] });
  });

  test('a mask that does not match the registry checksum fails the run, naming the task', async () => {
    const store = await memory(
      commitTasks(3, 1, (task, mask) => (task === 1 ? { mask, checksum: 12345 } : null)),
    );
    const report = await checkIntegrity(store, never);
    assert.deepEqual(
      report.bad.map((b) => b.task),
      [1],
    );
    assert.match(report.bad[0]?.problem ?? '', /CRC-32/);
    const runs: JobRun[] = [];
    const scheduler = new Scheduler({
      store,
      logger: silentLogger,
      lockTtlMs: 5000,
      onRun: (r) => runs.push(r),
    });
    scheduler.register(integrityJob(store, '0 * * * *'));
    const run = await scheduler.runNow('integrity');
    assert.equal(run.outcome, 'failed');
    assert.match(run.detail, /1 of 3 masks .*tasks 1$/);
    await scheduler.stop();
    // The job's own error carries the ids.
    await assert.rejects(
      integrityJob(store, '0 * * * *').run({
        job: 'integrity',
        trigger: 'manual',
        signal: never,
        logger: silentLogger,
      }),
      (error: unknown) =>
        isSupsupError(error) && error.code === 'E_STORE_CORRUPT' && String(error.details.tasks) === '1',
    );
  });

  test('a mask that matches its checksum but does not decode, or belongs to another task, is found', async () => {
    const store = await memory(
      commitTasks(3, 1, (task, mask) => {
        if (task === 0) {
          const garbage = new Uint8Array(randomBytes(64));
          return { mask: garbage, checksum: maskChecksum(garbage) };
        }
        if (task === 2) {
          const other = encodeMask({ archKey: ARCH, seed: SEED, taskId: 9, version: 1 }, mask.slice(0, 8));
          return { mask: other, checksum: maskChecksum(other) };
        }
        return null;
      }),
    );
    const report = await checkIntegrity(store, never);
    assert.deepEqual(
      report.bad.map((b) => b.task),
      [0, 2],
    );
    assert.match(report.bad[0]?.problem ?? '', /magic|mask data/);
    assert.match(report.bad[1]?.problem ?? '', /task 9/);
  });

  test('a valid mask of the same task but other content (a lost or swapped write) is found', async () => {
    const store = await memory(
      commitTasks(2, 1, (task, mask) => {
        if (task !== 1) return null;
        const other = encodeMask(
          { archKey: ARCH, seed: SEED, taskId: 1, version: 1 },
          new Uint8Array(randomBytes(40)),
        );
        // The registry keeps the digest of the mask it meant; the store holds another, intact one.
        return { mask: other, checksum: maskChecksum(mask) };
      }),
    );
    const report = await checkIntegrity(store, never);
    assert.deepEqual(
      report.bad.map((b) => b.task),
      [1],
    );
    assert.match(report.bad[0]?.problem ?? '', /registry says/);
  });

  test('a mask file corrupted on disk is found (file store)', async () => {
    const dir = await tempDir();
    const store = new FileStore(dir);
    await store.open();
    try {
      await store.commit(commitTasks(3, 1));
      const [file] = (await readdir(join(dir, 'masks'))).filter((name) => name.startsWith('2.'));
      const path = join(dir, 'masks', file as string);
      const bytes = await readFile(path);
      bytes[30] = (bytes[30] as number) ^ 0xff;
      await writeFile(path, bytes);
      const report = await checkIntegrity(store, never);
      assert.deepEqual(
        report.bad.map((b) => b.task),
        [2],
      );
    } finally {
      await store.close();
    }
  });
});

describe('snapshot job', () => {
  test('a snapshot round-trips the registry, offsets and masks, with a checksummed manifest', async () => {
    const dir = await tempDir();
    const store = new FileStore(join(dir, 'store'));
    await store.open();
    try {
      await store.commit(commitTasks(4, 17));
      const result = await writeSnapshot(store, { dir: join(dir, 'snaps'), keep: 3 }, never);
      assert.ok(result.path);
      assert.equal(result.tasks, 4);
      assert.deepEqual(await listSnapshots(join(dir, 'snaps')), [result.path.split('/').pop()]);
      const back = await readSnapshot(result.path);
      assert.deepEqual(back.state, await store.load());
      assert.deepEqual(back.manifest.tasks, [0, 1, 2, 3]);
      assert.equal(back.manifest.store, 'file');
      for (let task = 0; task < 4; task++) assert.deepEqual(back.masks.get(task), await store.loadMask(task));
      const entry = back.manifest.files.find((f) => f.path === 'masks/1.ssmk');
      assert.equal(entry?.crc32, crc32((await store.loadMask(1)) as Uint8Array));
      assert.match(entry?.sha256 ?? '', /^[0-9a-f]{64}$/);
      // No temp directory is left behind.
      assert.deepEqual(
        (await readdir(join(dir, 'snaps'))).filter((name) => name.startsWith('.')),
        [],
      );
      // A tampered file is caught by readSnapshot.
      await writeFile(join(result.path, 'masks', '1.ssmk'), 'not a mask');
      await assert.rejects(
        readSnapshot(result.path),
        (e: unknown) => isSupsupError(e) && e.code === 'E_STORE_CORRUPT',
      );
    } finally {
      await store.close();
    }
  });

  test('only the newest `keep` snapshots are kept; leftovers of a crashed run are removed', async () => {
    const dir = await tempDir();
    const store = await memory(commitTasks(2, 1));
    await writeFile(join(dir, 'unrelated.txt'), 'keep me');
    await mkdir(join(dir, '.snapshot-20200101T000000000Z.tmp-abcd'));
    const times = [0, 1, 2, 3, 3].map((i) => new Date(Date.UTC(2024, 0, 1 + i)));
    const paths: string[] = [];
    for (const time of times) {
      const result = await writeSnapshot(store, { dir, keep: 2, now: () => time }, never);
      paths.push(result.path as string);
    }
    const names = await listSnapshots(dir);
    assert.deepEqual(names, ['snapshot-20240104T000000000Z', 'snapshot-20240104T000000000Z-1']);
    assert.deepEqual(
      paths.slice(3).map((p) => p.split('/').pop()),
      names,
    );
    const all = (await readdir(dir)).sort();
    assert.deepEqual(all, [...names, 'unrelated.txt'].sort());
  });

  test('an empty store writes nothing; a store with a bad mask is not snapshotted', async () => {
    const dir = await tempDir();
    assert.equal((await writeSnapshot(await memory(), { dir, keep: 1 }, never)).path, null);
    const bad = await memory(commitTasks(2, 1, (task, mask) => (task === 0 ? { mask, checksum: 1 } : null)));
    await assert.rejects(
      writeSnapshot(bad, { dir, keep: 1 }, never),
      (e: unknown) => isSupsupError(e) && e.code === 'E_STORE_CORRUPT',
    );
    assert.deepEqual(await readdir(dir), []);
  });

  test('an aborted snapshot leaves nothing behind', async () => {
    const dir = await tempDir();
    const controller = new AbortController();
    controller.abort(new Error('stop'));
    await assert.rejects(
      writeSnapshot(await memory(commitTasks(2, 1)), { dir, keep: 1 }, controller.signal),
      /stop/,
    );
    assert.deepEqual(await readdir(dir), []);
  });
});

describe('event retention job', () => {
  function event(task: number): DaemonEvent {
    return { type: 'mask_frozen', task, steps: 1, time: new Date().toISOString() };
  }

  test('trims by count, then by age', async () => {
    const store = await memory();
    for (let i = 1; i <= 5; i++) await store.commit(commitTasks(1, i, () => null, [event(i)]));
    const context = {
      job: 'eventRetention',
      trigger: 'manual' as const,
      signal: never,
      logger: silentLogger,
    };
    const byCount = eventRetentionJob(store, { cron: '* * * * *', maxAgeDays: 30, maxEvents: 2 });
    assert.match(String(await byCount.run(context)), /removed 3 events/);
    const left = await store.readEvents({ limit: 100 });
    assert.deepEqual(
      left.map((e) => (e.event.type === 'mask_frozen' ? e.event.task : -1)),
      [4, 5],
    );
    const later = eventRetentionJob(store, {
      cron: '* * * * *',
      maxAgeDays: 1,
      maxEvents: 100,
      now: () => Date.now() + 2 * 86_400_000,
    });
    assert.match(String(await later.run(context)), /removed 2 events/);
    assert.deepEqual(await store.readEvents({ limit: 100 }), []);
  });
});

describe('defaultJobs and createScheduler', () => {
  const base = { source: { kind: 'stdin' }, sink: { kind: 'stdout' }, store: { kind: 'memory' } };

  test('builds the enabled jobs from the config', async () => {
    const store: MaskStore = await memory();
    const names = (overrides: Record<string, unknown>) =>
      defaultJobs(loadConfig({ env: {}, overrides: { ...base, jobs: overrides } }).jobs, {
        store,
        logger: silentLogger,
      }).map((job) => `${job.name} ${job.cron}`);
    assert.deepEqual(names({}), ['integrity 17 * * * *', 'eventRetention 23 4 * * *']);
    assert.deepEqual(names({ snapshot: { dir: '/tmp/x', cron: '*/5 * * * *' } }), [
      'integrity 17 * * * *',
      'snapshot */5 * * * *',
      'eventRetention 23 4 * * *',
    ]);
    assert.deepEqual(names({ integrity: { enabled: false } }), ['eventRetention 23 4 * * *']);
    assert.deepEqual(names({ enabled: false, snapshot: { dir: '/tmp/x' } }), []);
  });

  test('createScheduler registers them under the configured lock ttl', async () => {
    const store = await memory(commitTasks(1, 1));
    const dir = await tempDir();
    const runs: JobRun[] = [];
    const config = loadConfig({
      env: {},
      overrides: { ...base, jobs: { lockTtlMs: 3000, snapshot: { dir } } },
    });
    const scheduler = createScheduler(config, store, silentLogger, (run) => runs.push(run));
    assert.deepEqual(
      scheduler.status().map((s) => s.name),
      ['integrity', 'snapshot', 'eventRetention'],
    );
    for (const name of ['integrity', 'snapshot', 'eventRetention']) {
      assert.equal((await scheduler.runNow(name)).outcome, 'ok');
    }
    assert.deepEqual(
      runs.map((r) => `${r.job}:${r.outcome}`),
      ['integrity:ok', 'snapshot:ok', 'eventRetention:ok'],
    );
    assert.equal((await listSnapshots(dir)).length, 1);
    await scheduler.stop();
  });
});
