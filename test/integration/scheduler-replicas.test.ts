/**
 * Two replicas never run the same scheduled job at the same time (issue #4): schedulers on two separate RedisStore
 * connections to the shared Redis (127.0.0.1:6379, a unique namespace, its keys deleted afterwards; never FLUSH*)
 * run the same job every second, each run lasting 1.5 s. And a replica killed while holding the job's lease (a
 * child process, SIGKILL) holds it up no longer than the lease ttl: the other replica then takes the job over.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { silentLogger } from '../../src/logger.js';
import { type JobContext, type JobRun, Scheduler } from '../../src/ops/scheduler.js';
import { RedisStore } from '../../src/store/index.js';
import {
  hasExited,
  makeServiceDir,
  removeServiceDir,
  signalChild,
  sleep,
  spawnService,
  terminate,
} from '../harness/proc.js';
import { deleteKeysWithPrefix, ping, SHARED_REDIS, uniquePrefix } from '../harness/redis.js';
import { waitFor } from '../support/wait.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const REPLICA = path.join(REPO_ROOT, 'test/support/scheduler-replica.ts');
const TTL_MS = 3000;

const sharedRedisUp = await ping(SHARED_REDIS.port);
if (!sharedRedisUp) {
  const message = `the shared Redis on ${SHARED_REDIS.url} does not answer PING`;
  if (process.env.CI === 'true') throw new Error(`${message}; CI=true, so this is a failure`);
  console.error(
    `\n${'!'.repeat(100)}\n!!! SKIPPING the scheduler replica test: ${message}\n${'!'.repeat(100)}\n`,
  );
}

const namespace = uniquePrefix('sched-replicas').slice(0, -1);
after(async () => {
  if (sharedRedisUp) await deleteKeysWithPrefix(`${namespace}:`);
});

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}

interface Interval {
  replica: string;
  start: number;
  end: number;
}

async function replica(name: string, job: string, intervals: Interval[], jobMs: number) {
  const store = new RedisStore({ url: SHARED_REDIS.url, namespace, commandTimeoutMs: 2000 });
  await store.open();
  const runs: JobRun[] = [];
  const scheduler = new Scheduler({
    store,
    logger: silentLogger,
    lockTtlMs: TTL_MS,
    onRun: (run) => runs.push(run),
  });
  scheduler.register({
    name: job,
    cron: '* * * * * *',
    async run(context: JobContext) {
      const start = Date.now();
      try {
        await abortableSleep(jobMs, context.signal);
      } finally {
        intervals.push({ replica: name, start, end: Date.now() });
      }
    },
  });
  return {
    scheduler,
    runs,
    async close() {
      await scheduler.stop();
      await store.close();
    },
  };
}

describe('scheduled jobs across replicas', {
  skip: sharedRedisUp ? false : 'shared Redis not reachable',
}, () => {
  test('two replicas never run the same job at the same time', async () => {
    const intervals: Interval[] = [];
    const a = await replica('a', 'tick', intervals, 1500);
    const b = await replica('b', 'tick', intervals, 1500);
    try {
      a.scheduler.start();
      b.scheduler.start();
      await sleep(8000);
    } finally {
      await a.close();
      await b.close();
    }
    const sorted = [...intervals].sort((x, y) => x.start - y.start);
    assert.ok(sorted.length >= 3, `expected several runs in 8 s, got ${JSON.stringify(sorted)}`);
    for (let i = 1; i < sorted.length; i++) {
      const previous = sorted[i - 1] as Interval;
      const current = sorted[i] as Interval;
      assert.ok(
        current.start >= previous.end,
        `runs overlap: ${JSON.stringify(previous)} and ${JSON.stringify(current)}`,
      );
    }
    assert.ok(a.runs.length > 0 && b.runs.length > 0, 'both replicas attempted runs');
    const outcomes = [...a.runs, ...b.runs].map((run) => run.outcome);
    assert.ok(outcomes.includes('skipped_locked'), `no skipped_locked among ${outcomes.join(', ')}`);
    assert.ok(outcomes.includes('ok'));
    // Only a run cut short by stop() at the end may have failed.
    const failed = [...a.runs, ...b.runs].filter((run) => run.outcome === 'failed');
    assert.ok(
      failed.length <= 1 && failed.every((run) => /aborted/.test(run.detail)),
      JSON.stringify(failed),
    );
    // Every executed run is one interval.
    assert.equal(outcomes.filter((o) => o === 'ok').length + failed.length, intervals.length);
  });

  test("a killed replica's lease expires and another replica takes the job over", async () => {
    const dir = makeServiceDir('sched-replica');
    const outFile = path.join(dir, 'replica.log');
    const child = spawnService({
      command: process.execPath,
      args: ['--import', 'tsx', REPLICA, SHARED_REDIS.url, namespace, String(TTL_MS), 'takeover', '60000'],
      cwd: REPO_ROOT,
      outFile,
    });
    const lines = () =>
      readFileSync(outFile, 'utf8')
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as { event: string; t?: number });
    const intervals: Interval[] = [];
    let survivor: Awaited<ReturnType<typeof replica>> | null = null;
    try {
      await waitFor(
        'the child replica to start its job',
        30_000,
        () => lines().find((line) => line.event === 'start'),
        {
          intervalMs: 50,
          abortIf: () => (hasExited(child) ? 'the child replica exited' : undefined),
          context: () => readFileSync(outFile, 'utf8'),
        },
      );
      survivor = await replica('survivor', 'takeover', intervals, 200);
      survivor.scheduler.start();
      const runs = survivor.runs;
      await waitFor(
        'the survivor to find the job locked',
        5000,
        () => (runs.some((run) => run.outcome === 'skipped_locked') ? true : undefined),
        { intervalMs: 50 },
      );
      assert.equal(intervals.length, 0, 'the survivor did not run the job while the child held it');

      signalChild(child, 'SIGKILL');
      const killedAt = Date.now();
      const takeover = await waitFor('the survivor to take the job over', TTL_MS + 5000, () => intervals[0], {
        intervalMs: 50,
      });
      assert.ok(takeover.start >= killedAt);
      // The lease outlived the child (up to one ttl after its last renewal), so the first ticks after the kill
      // were still skipped.
      const skippedAfterKill = runs.filter(
        (run) => run.outcome === 'skipped_locked' && Date.parse(run.startedAt) >= killedAt,
      );
      assert.ok(skippedAfterKill.length > 0, 'the lease was still held right after the kill');
    } finally {
      await survivor?.close();
      await terminate(child, 2000);
      await removeServiceDir(dir);
    }
  });
});
