/**
 * State safety with a Kafka source (docs/daemon.md, "State safety"): the consumer group's committed offsets are
 * compared with the store at start. A Redis namespace emptied under them (SIGKILL, restart without the AOF) is
 * refused (exit 2, both sides logged, nothing published); `store.onRegression: "replay"` moves the group back to
 * the store's offsets and relearns, ending with the masks the store held before it was lost. Needs Java, Maven
 * and redis-server (skips loudly without them).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { requireKafkaOrSkip, startKafka } from '../harness/kafka.ts';
import { pidAlive } from '../harness/proc.ts';
import { requireRedisServerOrSkip, startRedis } from '../harness/redis.ts';
import {
  BATCH,
  exitWithin,
  LogView,
  type RunOptions,
  resultOffsets,
  runToExit,
  startRun,
  storeMasks,
  streamLines,
  waitForResults,
} from '../support/state-safety.ts';
import { waitFor } from '../support/wait.ts';

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => String(from + i));

test('Kafka group offsets ahead of an emptied Redis store: refused at start; replay relearns the same masks', {
  timeout: 300_000,
}, async (t) => {
  if (!requireKafkaOrSkip(t) || !requireRedisServerOrSkip(t)) return;
  const dir = await mkdtemp(path.join(tmpdir(), 'supsupd-state-safety-kafka-'));
  const broker = await startKafka();
  const redis = await startRedis({ appendonly: true });
  const kafka = new Kafka({ brokers: broker.brokers, clientId: 'state-safety', logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  try {
    await admin.connect();
    await admin.createTopics({
      waitForLeaders: true,
      topics: [{ topic: 'in', numPartitions: 1, replicationFactor: 1 }],
    });
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    await producer.send({ topic: 'in', messages: streamLines(2 * BATCH).map((value) => ({ value })) });
    await producer.disconnect();
    const store = { kind: 'redis', namespace: 'state-safety:kafka' } as const;
    const options: RunOptions = {
      dir,
      store,
      redisUrl: redis.url,
      source: { kind: 'kafka', brokers: broker.brokers, topic: 'in', groupId: 'state-safety' },
      name: 'first',
    };
    const first = startRun(options);
    await waitForResults(dir, 2 * BATCH, first);
    first.cli.signal('SIGTERM');
    assert.equal(await exitWithin(first, 60_000), 0);
    const uninterrupted = await storeMasks(store, redis.url);
    const [committed] = await admin.fetchOffsets({ groupId: 'state-safety', topics: ['in'] });
    assert.deepEqual(committed?.partitions, [{ partition: 0, offset: '512', metadata: null }]);

    const pid = redis.pid;
    redis.kill('SIGKILL');
    await waitFor('redis-server to die', 10_000, () => (pidAlive(pid) ? undefined : true));
    await rm(path.join(redis.dir, 'appendonlydir'), { recursive: true, force: true });
    await redis.restart();

    const refused = await runToExit({ ...options, name: 'refused' });
    assert.equal(refused.code, 2, refused.log.text());
    const behind = refused.log.entries('store regressed: it is behind the source')[0] ?? {};
    assert.equal(behind.level, 'error');
    assert.deepEqual(behind.problems, [
      'in/0: the source committed offset 511, the store has applied nothing',
    ]);
    assert.match(refused.log.text(), /supsupd: E_STORE_REGRESSED: the store is behind the source/);
    assert.deepEqual(resultOffsets(dir), range(0, 2 * BATCH), 'nothing published');

    const replay = startRun({ ...options, onRegression: 'replay', name: 'replay' });
    await waitForResults(dir, 4 * BATCH, replay);
    replay.cli.signal('SIGTERM');
    assert.equal(await exitWithin(replay, 60_000), 0);
    const log = new LogView(replay.logFile);
    assert.equal(log.entries("replaying the source from the store's applied offsets").length, 1);
    assert.ok(log.stopped().commitsApplied > 0, 'relearnt');
    assert.deepEqual(resultOffsets(dir), [...range(0, 2 * BATCH), ...range(0, 2 * BATCH)]);
    assert.deepEqual(
      await storeMasks(store, redis.url),
      uninterrupted,
      'the masks of the run before the loss',
    );
  } finally {
    await admin.disconnect().catch(() => {});
    await redis.stop();
    await broker.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
