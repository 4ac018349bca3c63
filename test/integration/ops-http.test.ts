/**
 * The ops surface end to end: the real `supsupd demo --http-port … --hold` as a child process, its mask
 * store on a private AOF redis-server. While the stream runs, Redis is frozen (SIGSTOP: the connection
 * stays open but nothing answers) and thawed again: /readyz must go 503 and back to 200 while /livez stays
 * 200, and no record may be lost through the outage. /metrics and /api/v1/tasks must describe the run.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { ApiStatus, ApiTasks } from '../../src/ops/api-types.ts';
import { freePort } from '../harness/ports.ts';
import { makeServiceDir, removeServiceDir } from '../harness/proc.ts';
import { requireRedisServerOrSkip, respCommand, startRedis } from '../harness/redis.ts';
import { REPO_ROOT, startCli } from '../support/daemon-cli.ts';
import { parseMetrics, sumOf } from '../support/metrics.ts';
import { waitFor } from '../support/wait.ts';

const PACKAGE_VERSION = (
  JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }
).version;
const SEGMENT = 2000;
const RECORDS = 6 * SEGMENT;

async function getJson<T>(base: string, route: string): Promise<{ status: number; body: T }> {
  const response = await fetch(`${base}${route}`, { signal: AbortSignal.timeout(5_000) });
  return { status: response.status, body: (await response.json()) as T };
}

test('demo with HTTP: readiness follows the store, liveness does not; metrics and tasks describe the run', async (t) => {
  if (!requireRedisServerOrSkip(t)) return;
  const redis = await startRedis();
  const dir = makeServiceDir('ops-http');
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const demo = startCli({
    args: [
      'demo',
      '--http-port',
      String(port),
      '--hold',
      '--segment',
      String(SEGMENT),
      '--dir',
      dir,
      '--json',
    ],
    logFile: path.join(dir, 'demo.log'),
    env: { SUPSUPD_REDIS_URL: redis.url },
    dir,
  });
  try {
    await waitFor(
      '/readyz 200',
      90_000,
      async () => ((await getJson(base, '/readyz')).status === 200 ? true : undefined),
      { abortIf: () => (demo.exited() ? 'the demo exited' : undefined), context: () => demo.tail() },
    );
    await waitFor('the first task', 60_000, async () =>
      (await getJson<ApiTasks>(base, '/api/v1/tasks')).body.tasks.length >= 1 ? true : undefined,
    );

    // The store becomes unreachable: readiness fails with the reason, liveness does not.
    redis.kill('SIGSTOP');
    const down = await waitFor('/readyz 503', 20_000, async () => {
      const readyz = await getJson<{ ready: boolean; reasons: string[] }>(base, '/readyz');
      return readyz.status === 503 ? readyz.body : undefined;
    });
    assert.ok(down.reasons.includes('store unreachable'), JSON.stringify(down));
    assert.equal(
      (await getJson<{ live: boolean }>(base, '/livez')).status,
      200,
      'liveness ignores the store',
    );
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    assert.equal((await getJson(base, '/livez')).status, 200);

    // It comes back: readiness returns, and the stream goes on where it stopped.
    redis.kill('SIGCONT');
    await waitFor('/readyz 200 again', 30_000, async () =>
      (await getJson(base, '/readyz')).status === 200 ? true : undefined,
    );
    // A policy that could evict masks makes the daemon unready too (re-read every 10 s).
    await respCommand(redis.port, ['CONFIG', 'SET', 'maxmemory-policy', 'allkeys-lru']);
    const evicting = await waitFor('/readyz 503 for the eviction policy', 30_000, async () => {
      const readyz = await getJson<{ reasons: string[] }>(base, '/readyz');
      return readyz.status === 503 ? readyz.body : undefined;
    });
    assert.deepEqual(evicting.reasons, ['store evicts keys (maxmemory-policy allkeys-lru)']);
    await respCommand(redis.port, ['CONFIG', 'SET', 'maxmemory-policy', 'noeviction']);
    await waitFor('/readyz 200 with noeviction', 30_000, async () =>
      (await getJson(base, '/readyz')).status === 200 ? true : undefined,
    );

    const status = await waitFor('the whole stream answered', 180_000, async () => {
      const { body } = await getJson<ApiStatus>(base, '/api/v1/status');
      return body.records.out >= RECORDS ? body : undefined;
    });
    assert.equal(status.records.in, RECORDS);
    assert.equal(status.records.out, RECORDS, 'no record lost or answered twice through the outage');
    assert.ok(status.tasks >= 2, `tasks ${status.tasks}`);
    const finished = await waitFor('the source to finish', 30_000, async () => {
      const { body } = await getJson<ApiStatus>(base, '/api/v1/status');
      return body.sourceState.state === 'finished' ? body : undefined;
    });
    assert.ok(
      finished.storeWrites.failed >= 1,
      `commits failed in the outage: ${JSON.stringify(finished.storeWrites)}`,
    );

    const { body: listed } = await getJson<ApiTasks>(base, '/api/v1/tasks');
    assert.equal(listed.tasks.length, status.tasks);
    assert.deepEqual(
      listed.tasks.map((task) => task.task),
      [...Array(status.tasks).keys()],
    );
    for (const task of listed.tasks) {
      assert.equal(task.bornAt.topic, 'demo');
      assert.ok(task.maskBytes > 0 && task.density > 0 && task.density < 1, JSON.stringify(task));
    }
    const routed = listed.tasks.reduce((sum, task) => sum + task.recordsRouted, 0);
    assert.equal(routed, RECORDS, 'every result is counted under the task it was routed to');
    const one = await getJson<{ task: number }>(base, '/api/v1/tasks/1');
    assert.equal(one.body.task, 1);
    assert.equal((await getJson(base, '/api/v1/tasks/999')).status, 404);

    const response = await fetch(`${base}/metrics`);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain/);
    const text = await response.text();
    const metrics = parseMetrics(text);
    const build = text.split('\n').filter((line) => line.startsWith('supsupd_build_info'));
    assert.deepEqual(build, [
      `supsupd_build_info{version="${PACKAGE_VERSION}",node="${process.version}",backend="${finished.backend}"} 1`,
    ]);
    assert.equal(metrics.get('supsupd_source_state{state="finished"}'), 1);
    for (const outcome of ['applied', 'fenced', 'failed'] as const) {
      assert.equal(
        metrics.get(`supsupd_store_write_seconds_count{outcome="${outcome}"}`) ?? 0,
        finished.storeWrites[outcome],
        `${outcome} commits: the API and the histogram agree`,
      );
    }
    assert.equal(sumOf(metrics, 'supsupd_records_in_total'), RECORDS);
    assert.equal(metrics.get('supsupd_records_out_total'), RECORDS);
    assert.equal(sumOf(metrics, 'supsupd_dead_letters_total'), 0);
    assert.equal(metrics.get('supsupd_tasks'), status.tasks);
    assert.equal(sumOf(metrics, 'supsupd_allocations_total'), status.tasks, 'one allocation per task');
    assert.equal(metrics.get('supsupd_mask_bytes'), status.tasks * listed.tasks[0].maskBytes);
    assert.equal(metrics.get('supsupd_entropy_count'), RECORDS);
    assert.equal(metrics.get('supsupd_confidence_count'), RECORDS);
    assert.ok((metrics.get('supsupd_train_steps_total') ?? 0) > 0);
    assert.ok(sumOf(metrics, 'supsupd_task_inference_seconds_count') >= RECORDS / 128);
    assert.ok(
      (metrics.get('supsupd_store_write_seconds_count{outcome="failed"}') ?? 0) >= 1,
      'the commits during the outage failed and were counted',
    );
    assert.ok(
      (metrics.get('supsupd_store_write_seconds_count{outcome="applied"}') ?? 0) >= RECORDS / 256 - 1,
    );
    assert.equal(metrics.get('supsupd_ready'), 1);
    for (const name of metrics.keys()) {
      assert.doesNotMatch(name, /task="/, `no task ids as labels: ${name}`);
    }

    demo.signal('SIGTERM');
    // The child is unref'd by the harness: wait with a timer that keeps this process's loop alive.
    const exit = await Promise.race([
      demo.exit,
      new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 30_000)),
    ]);
    assert.deepEqual(exit, { code: 0, signal: null }, demo.tail());
    const summary = JSON.parse(
      demo
        .tail(5)
        .trim()
        .split('\n')
        .filter((line) => line.startsWith('{"command"'))
        .at(-1) ?? '{}',
    ) as { records_out?: number };
    assert.equal(summary.records_out, RECORDS);
  } finally {
    await demo.kill();
    redis.kill('SIGCONT');
    await redis.stop();
    await removeServiceDir(dir);
  }
});
