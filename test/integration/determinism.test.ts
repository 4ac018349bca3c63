/**
 * Decisions that depend on the records alone (docs/daemon.md, "Restart-exact learning"): the same stream through
 * `supsupd run` from a file and from a one-partition Kafka topic ends with byte-identical masks and training
 * states, and so does the Kafka run SIGKILLed at three seeded random points and restarted each time (Redis store
 * with AOF). Chunks are cut from each partition's record sequence, not from the broker's fetches, and everything
 * training reads is in the store. Needs Java, Maven and redis-server (skips loudly without them).
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { requireKafkaOrSkip, startKafka } from '../harness/kafka.ts';
import { requireRedisServerOrSkip, startRedis } from '../harness/redis.ts';
import {
  exitWithin,
  type Masks,
  type RunOptions,
  resultOffsets,
  runToExit,
  startRun,
  storeMasks,
  streamLines,
  writeLines,
} from '../support/state-safety.ts';
import { waitFor } from '../support/wait.ts';

/** Ten full chunks of 256 and a short one; the two tasks take turns every 512 records. */
const RECORDS = 2600;

/** What learning decided, without where the records came from (the topics differ). */
const learned = (masks: Masks) => masks.tasks;

/** Waits until the sink directory holds a result for every record (at least once: a SIGKILL repeats some). */
async function waitForAll(dir: string, run: ReturnType<typeof startRun>, atLeast = RECORDS): Promise<void> {
  await waitFor(`results for ${atLeast} records`, 120_000, () =>
    new Set(resultOffsets(dir)).size >= atLeast ? true : undefined,
  );
  assert.equal(run.cli.exited(), false, run.cli.tail());
}

test('file and Kafka give the same masks; so does Kafka SIGKILLed at three random points', {
  timeout: 600_000,
}, async (t) => {
  if (!requireKafkaOrSkip(t) || !requireRedisServerOrSkip(t)) return;
  const root = await mkdtemp(path.join(tmpdir(), 'supsupd-determinism-'));
  const lines = streamLines(RECORDS, 7, { shift: 2 });
  const input = path.join(root, 'stream.jsonl');
  await writeLines(input, lines);
  const subdir = async (name: string) => {
    const dir = path.join(root, name);
    await mkdir(dir, { recursive: true });
    return dir;
  };
  const fileDir = await subdir('file');
  const fileStore = { kind: 'file', dir: path.join(fileDir, 'store') } as const;
  const fromFile = await runToExit({
    dir: fileDir,
    store: fileStore,
    source: { kind: 'file', path: input },
    name: 'file',
  });
  assert.equal(fromFile.code, 0, fromFile.log.text());
  const reference = await storeMasks(fileStore);
  assert.ok(reference.tasks.length >= 2, 'the regimes were found');

  const broker = await startKafka();
  const redis = await startRedis({ appendonly: true });
  const kafka = new Kafka({ brokers: broker.brokers, clientId: 'determinism', logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  try {
    await admin.connect();
    await admin.createTopics({
      waitForLeaders: true,
      topics: [{ topic: 'in', numPartitions: 1, replicationFactor: 1 }],
    });
    const producer = kafka.producer({
      allowAutoTopicCreation: false,
      idempotent: true,
      maxInFlightRequests: 1,
    });
    await producer.connect();
    // Sent in uneven pieces, so the broker's fetches fall anywhere but on the 256-record chunks.
    for (let from = 0; from < RECORDS; from += 173) {
      await producer.send({
        topic: 'in',
        messages: lines.slice(from, from + 173).map((value) => ({ value })),
      });
    }
    await producer.disconnect();
    const kafkaRun = (name: string, dir: string): RunOptions => ({
      dir,
      store: { kind: 'redis', namespace: `determinism:${name}` },
      redisUrl: redis.url,
      source: { kind: 'kafka', brokers: broker.brokers, topic: 'in', groupId: name, sessionTimeoutMs: 6000 },
      name,
    });

    const whole = await subdir('kafka');
    const run = startRun(kafkaRun('whole', whole));
    await waitForAll(whole, run);
    run.cli.signal('SIGTERM');
    assert.equal(await exitWithin(run, 60_000), 0);
    assert.deepEqual(
      learned(await storeMasks(kafkaRun('whole', whole).store, redis.url)),
      learned(reference),
    );

    // Three kill points drawn from a seeded generator, one in each third of the stream.
    const killed = await subdir('killed');
    let seed = 20261208;
    const draw = (from: number, to: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return from + (seed % (to - from));
    };
    const third = Math.floor(RECORDS / 3);
    const points = [draw(64, third), draw(third, 2 * third), draw(2 * third, RECORDS - 40)];
    for (const [i, point] of points.entries()) {
      const attempt = startRun({ ...kafkaRun('killed', killed), name: `killed-${i}` });
      await waitForAll(killed, attempt, point);
      attempt.cli.signal('SIGKILL');
      assert.notEqual(await exitWithin(attempt, 30_000), 0);
    }
    const last = startRun({ ...kafkaRun('killed', killed), name: 'killed-last' });
    await waitForAll(killed, last);
    last.cli.signal('SIGTERM');
    assert.equal(await exitWithin(last, 60_000), 0);
    t.diagnostic(`SIGKILLs after ${points.join(', ')} records`);
    assert.deepEqual(
      learned(await storeMasks(kafkaRun('killed', killed).store, redis.url)),
      learned(reference),
    );
  } finally {
    await admin.disconnect().catch(() => {});
    await redis.stop();
    await broker.stop();
    await rm(root, { recursive: true, force: true });
  }
});
