/**
 * RedisStore against private redis-servers (test/harness/redis.ts): acknowledged commits survive SIGKILL of an AOF
 * (everysec) server, the eviction policy is enforced, persistence is reported, and an unreachable or frozen server
 * makes calls fail fast with a retriable E_STORE_UNAVAILABLE instead of hanging. Needs redis-server on PATH (skips
 * loudly without it, fails under CI=true).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { encodeMask, maskChecksum } from '../../src/codec/mask-codec.js';
import { isSupsupError, type SupsupError } from '../../src/errors.js';
import { type Commit, RedisStore, type Registry, type TaskMeta } from '../../src/store/index.js';
import { pidAlive, sleep } from '../harness/proc.js';
import { type RedisServer, requireRedisServerOrSkip, respCommand, startRedis } from '../harness/redis.js';

const ARCH = '784-300-100-10';
const SEED = 11;
const NAMESPACE = 'supsupd:durability';

function taskCommit(task: number, offset: string, previous: Registry | undefined, maskBytes: number): Commit {
  const encodedMask = encodeMask(
    { archKey: ARCH, seed: SEED, taskId: task, version: 1 },
    new Uint8Array(randomBytes(maskBytes)),
  );
  const meta: TaskMeta = {
    task,
    version: 1,
    frozen: false,
    trainSteps: 1,
    bornAt: { topic: 'in', partition: 0, offset },
    bornTime: new Date(0).toISOString(),
    checksum: maskChecksum(encodedMask),
  };
  const tasks = [...(previous?.tasks ?? []).filter((m) => m.task !== task), meta];
  return {
    partitionKey: 'in/0',
    appliedOffset: offset,
    registry: { archKey: ARCH, seed: SEED, tasks },
    masks: [{ task, encodedMask, trainingState: new Uint8Array(randomBytes(512)) }],
  };
}

function isUnavailable(error: unknown): error is SupsupError {
  return isSupsupError(error) && error.code === 'E_STORE_UNAVAILABLE' && error.retriable;
}

async function waitFor(
  what: string,
  timeoutMs: number,
  check: () => Promise<boolean> | boolean,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

async function withServer(
  options: Parameters<typeof startRedis>[0],
  body: (server: RedisServer) => Promise<void>,
): Promise<void> {
  const server = await startRedis(options);
  try {
    await body(server);
  } finally {
    server.kill('SIGCONT');
    await server.stop();
  }
}

describe('RedisStore on a private redis-server', () => {
  test('every acknowledged commit survives SIGKILL of an AOF everysec server', {
    timeout: 120_000,
  }, async (t) => {
    if (!requireRedisServerOrSkip(t)) return;
    await withServer({ appendonly: true }, async (server) => {
      const store = new RedisStore({ url: server.url, namespace: NAMESPACE });
      await store.open();
      assert.deepEqual(store.persistence(), { aof: true, rdb: false });
      const commits: Commit[] = [];
      let registry: Registry | undefined;
      for (let i = 0; i < 50; i++) {
        const commit = taskCommit(i, String(1000 + i), registry, 40 * 1024);
        assert.equal(await store.commit(commit), 'applied');
        commits.push(commit);
        registry = commit.registry;
      }
      const pid = server.pid;
      server.kill('SIGKILL');
      await waitFor('redis-server to die', 10_000, () => !pidAlive(pid));
      await store.close();
      await server.restart();

      const reopened = new RedisStore({ url: server.url, namespace: NAMESPACE });
      await reopened.open();
      try {
        const state = await reopened.load();
        assert.deepEqual(state, { registry, applied: { 'in/0': '1049' } });
        for (const commit of commits) {
          const write = commit.masks[0] as Commit['masks'][0];
          assert.deepEqual(await reopened.loadMask(write.task), write.encodedMask, `mask ${write.task}`);
          assert.deepEqual(await reopened.loadTrainingState(write.task), write.trainingState);
        }
        // The acknowledged batches are fenced after the restart: redelivery changes nothing.
        assert.equal(await reopened.commit(commits[49] as Commit), 'fenced');
      } finally {
        await reopened.close();
      }
    });
  });

  test('maxmemory-policy other than noeviction fails open() with E_STORE_POLICY', {
    timeout: 60_000,
  }, async (t) => {
    if (!requireRedisServerOrSkip(t)) return;
    await withServer(
      { appendonly: false, extraArgs: ['--maxmemory-policy', 'allkeys-lru'] },
      async (server) => {
        const store = new RedisStore({ url: server.url, namespace: NAMESPACE });
        await assert.rejects(store.open(), (error: unknown) => {
          assert.ok(isSupsupError(error), String(error));
          assert.equal(error.code, 'E_STORE_POLICY');
          assert.equal(error.retriable, false);
          assert.match(error.message, /allkeys-lru/);
          return true;
        });
        assert.equal(await store.ping(), false);
        await store.close();

        // Fixed on the server → open() passes; a server without AOF or snapshots is reported, not refused.
        await respCommand(server.port, ['CONFIG', 'SET', 'maxmemory-policy', 'noeviction']);
        const fixed = new RedisStore({ url: server.url, namespace: NAMESPACE });
        await fixed.open();
        assert.deepEqual(fixed.persistence(), { aof: false, rdb: false });
        await fixed.close();

        // Changed back at runtime (CONFIG SET) → refused again.
        await respCommand(server.port, ['CONFIG', 'SET', 'maxmemory-policy', 'volatile-ttl']);
        await assert.rejects(
          new RedisStore({ url: server.url, namespace: NAMESPACE }).open(),
          (error: unknown) => isSupsupError(error) && error.code === 'E_STORE_POLICY',
        );
      },
    );
  });

  test('RDB snapshots are reported', { timeout: 60_000 }, async (t) => {
    if (!requireRedisServerOrSkip(t)) return;
    await withServer({ appendonly: false, extraArgs: ['--save', '3600 1'] }, async (server) => {
      const store = new RedisStore({ url: server.url, namespace: NAMESPACE });
      await store.open();
      assert.deepEqual(store.persistence(), { aof: false, rdb: true });
      await store.close();
    });
  });

  test('a stopped server: ping false and commits fail fast and retriable; after a restart ping is true', {
    timeout: 120_000,
  }, async (t) => {
    if (!requireRedisServerOrSkip(t)) return;
    await withServer({ appendonly: true }, async (server) => {
      const timeoutMs = 1000;
      const store = new RedisStore({ url: server.url, namespace: NAMESPACE, commandTimeoutMs: timeoutMs });
      await store.open();
      try {
        const first = taskCommit(0, '1', undefined, 4096);
        assert.equal(await store.commit(first), 'applied');

        const pid = server.pid;
        server.kill('SIGTERM');
        await waitFor('redis-server to exit', 15_000, () => !pidAlive(pid));

        let started = Date.now();
        assert.equal(await store.ping(), false);
        assert.ok(Date.now() - started <= timeoutMs + 500, `ping took ${Date.now() - started} ms`);

        const second = taskCommit(1, '2', first.registry, 4096);
        started = Date.now();
        await assert.rejects(store.commit(second), (error: unknown) => {
          assert.ok(isUnavailable(error), String(error));
          return true;
        });
        assert.ok(Date.now() - started <= timeoutMs + 500, `commit took ${Date.now() - started} ms`);
        started = Date.now();
        await assert.rejects(store.load(), isUnavailable);
        await assert.rejects(store.loadMask(0), isUnavailable);
        assert.ok(Date.now() - started <= 2 * timeoutMs + 500, `reads took ${Date.now() - started} ms`);

        await server.restart();
        await waitFor('store.ping() to turn true', 15_000, () => store.ping());
        // The data survived the clean shutdown; the failed commit was never applied, and its retry applies.
        assert.deepEqual((await store.load())?.applied, { 'in/0': '1' });
        assert.equal(await store.commit(second), 'applied');
        assert.deepEqual(await store.loadMask(1), second.masks[0]?.encodedMask);
      } finally {
        await store.close();
      }
    });
  });

  test('a frozen server (SIGSTOP): a commit times out retriable; its retry after SIGCONT is fenced', {
    timeout: 120_000,
  }, async (t) => {
    if (!requireRedisServerOrSkip(t)) return;
    await withServer({ appendonly: true }, async (server) => {
      const timeoutMs = 800;
      const store = new RedisStore({ url: server.url, namespace: NAMESPACE, commandTimeoutMs: timeoutMs });
      await store.open();
      try {
        const first = taskCommit(0, '1', undefined, 4096);
        assert.equal(await store.commit(first), 'applied');
        server.kill('SIGSTOP');
        const second = taskCommit(1, '2', first.registry, 40 * 1024);
        const started = Date.now();
        await assert.rejects(store.commit(second), (error: unknown) => {
          assert.ok(isUnavailable(error), String(error));
          assert.match(error.message, /timed out/i);
          return true;
        });
        const elapsed = Date.now() - started;
        assert.ok(elapsed >= timeoutMs - 50 && elapsed <= timeoutMs + 700, `commit took ${elapsed} ms`);
        assert.equal(await store.ping(), false);

        server.kill('SIGCONT');
        await waitFor('store.ping() to turn true', 15_000, () => store.ping());
        // The timed-out command was delivered and ran once the server resumed: a timeout does not mean "not
        // applied". The retry (like an ioredis resend) carries the same offset and is fenced: applied exactly once.
        assert.equal(await store.commit(second), 'fenced');
        assert.deepEqual(await store.load(), { registry: second.registry, applied: { 'in/0': '2' } });
        assert.deepEqual(await store.loadMask(1), second.masks[0]?.encodedMask);
      } finally {
        await store.close();
      }
    });
  });
});
