/**
 * Smoke test of the integration-test harness itself: a real single-node KRaft Kafka from Maven jars and a private
 * redis-server with AOF. Needs Java 17 + Maven (skips loudly without them, fails under CI=true) and redis-server.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import {
  ensureKafkaJars,
  KAFKA_STARTED_LINE,
  kafkaFindCoordinator,
  kafkaMetadata,
  requireKafkaOrSkip,
  startKafka,
} from '../harness/kafka.js';
import { canConnect, freePort, freePorts } from '../harness/ports.js';
import { pidAlive } from '../harness/proc.js';
import {
  deleteKeysWithPrefix,
  ping,
  requireRedisServerOrSkip,
  respCommand,
  SHARED_REDIS,
  startRedis,
  uniquePrefix,
} from '../harness/redis.js';

const log = (line: string): void => console.error(`[harness] ${line}`);

describe('ports', () => {
  test('freePorts returns distinct bindable ports', async () => {
    const ports = await freePorts(3);
    assert.equal(new Set(ports).size, 3);
    for (const port of ports) assert.ok(port > 1024 && port < 65536);
    assert.ok((await freePort()) > 1024);
  });
});

describe('kafka harness', () => {
  // The first run fetches ~46 MiB of jars with Maven; afterwards this test takes ~15-20 s.
  test('starts a KRaft broker, serves metadata, restarts after SIGKILL, stops cleanly', {
    timeout: 15 * 60_000,
  }, async (t) => {
    if (!requireKafkaOrSkip(t)) return;
    await ensureKafkaJars({ log });

    const broker = await startKafka({ log });
    let stopped = false;
    try {
      assert.equal(broker.brokers.length, 1);
      const [host, port] = broker.brokers[0].split(':');
      assert.equal(host, '127.0.0.1');
      assert.ok(await canConnect(Number(port), host, 2000), `TCP connect to ${broker.brokers[0]}`);

      const metadata = await kafkaMetadata(broker.brokers[0]);
      assert.deepEqual(metadata.brokers, [{ nodeId: 1, host: '127.0.0.1', port: Number(port) }]);

      assert.ok(
        readFileSync(broker.logFile, 'utf8').includes(KAFKA_STARTED_LINE),
        'broker log has the started line',
      );
      assert.ok(pidAlive(broker.pid));
      // startKafka warmed up the coordinators: a consumer group / transactional id finds one at once.
      assert.equal(await kafkaFindCoordinator(broker.brokers[0], 'harness-group', 0), 0);
      assert.equal(await kafkaFindCoordinator(broker.brokers[0], 'harness-txn', 1), 0);

      // Crash and restart on the same dir and ports, as the broker-crash fault tests do. Takes ~10-14 s: the
      // controller waits out the dead incarnation's 9 s broker session before it registers the new one.
      const crashedPid = broker.pid;
      broker.kill('SIGKILL');
      await broker.restart();
      assert.notEqual(broker.pid, crashedPid);
      assert.equal(pidAlive(crashedPid), false);
      assert.deepEqual((await kafkaMetadata(broker.brokers[0])).brokers, metadata.brokers);
      assert.equal(await kafkaFindCoordinator(broker.brokers[0], 'harness-group', 0), 0);
      assert.equal(readFileSync(broker.logFile, 'utf8').split(KAFKA_STARTED_LINE).length, 3, 'started twice');

      const pid = broker.pid;
      const dir = broker.dir;
      await broker.stop();
      stopped = true;
      await broker.stop(); // idempotent
      assert.equal(pidAlive(pid), false, `broker pid ${pid} is gone`);
      assert.equal(existsSync(dir), false, `${dir} removed`);
    } finally {
      if (!stopped) await broker.stop();
    }
  });
});

describe('redis harness', () => {
  test('AOF redis-server survives SIGKILL + restart on the same port and dir', {
    timeout: 60_000,
  }, async (t) => {
    if (!requireRedisServerOrSkip(t)) return;
    const redis = await startRedis();
    let stopped = false;
    try {
      assert.match(redis.url, /^redis:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(await ping(redis.port), true);
      assert.equal(
        await respCommand(redis.port, ['CONFIG', 'GET', 'appendonly']).then((r) => JSON.stringify(r)),
        '["appendonly","yes"]',
      );
      assert.equal(await respCommand(redis.port, ['SET', 'durable', 'v1']), 'OK');

      const firstPid = redis.pid;
      redis.kill('SIGKILL');
      await redis.restart();
      assert.notEqual(redis.pid, firstPid);
      assert.equal(pidAlive(firstPid), false);
      assert.equal(await ping(redis.port), true, 'PING after restart');
      assert.equal(
        await respCommand(redis.port, ['GET', 'durable']),
        'v1',
        'acked write survived SIGKILL (AOF)',
      );

      redis.kill('SIGSTOP'); // stop() must still work on a frozen server (it sends SIGCONT after SIGTERM)

      const { pid, dir } = redis;
      await redis.stop();
      stopped = true;
      await redis.stop(); // idempotent
      assert.equal(pidAlive(pid), false);
      assert.equal(existsSync(dir), false);
    } finally {
      if (!stopped) await redis.stop();
    }
  });

  test('uniquePrefix + deleteKeysWithPrefix stay inside the prefix on the shared redis', async (t) => {
    if (!(await ping(SHARED_REDIS.port))) {
      if (process.env.CI === 'true') throw new Error('shared Redis on 127.0.0.1:6379 is not answering');
      t.skip('no shared Redis on 127.0.0.1:6379');
      return;
    }
    const a = uniquePrefix('harness');
    const b = uniquePrefix('harness');
    assert.notEqual(a, b);
    assert.match(a, /^supsupd:test:harness:[A-Za-z0-9:_-]+:$/);
    try {
      await respCommand(SHARED_REDIS.port, ['SET', `${a}k1`, '1', 'EX', 60]);
      await respCommand(SHARED_REDIS.port, ['SET', `${a}k2`, '2', 'EX', 60]);
      await respCommand(SHARED_REDIS.port, ['SET', `${b}k1`, '3', 'EX', 60]);
      assert.equal(await deleteKeysWithPrefix(a), 2);
      assert.equal(await respCommand(SHARED_REDIS.port, ['EXISTS', `${a}k1`, `${a}k2`]), 0);
      assert.equal(await respCommand(SHARED_REDIS.port, ['GET', `${b}k1`]), '3');
      await assert.rejects(deleteKeysWithPrefix('abc'), /short prefix/);
    } finally {
      await deleteKeysWithPrefix(a);
      await deleteKeysWithPrefix(b);
    }
  });
});
