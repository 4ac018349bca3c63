/**
 * Decisions that depend on the records alone (docs/daemon.md, "Restart-exact learning"): the same stream through
 * `supsupd run` from a file and from a one-partition Kafka topic ends with byte-identical masks and training
 * states, and so do the file run (file store) and the Kafka run (Redis store with AOF) SIGKILLed at three seeded
 * random points and restarted each time. Chunks are cut from each partition's record sequence, not from the broker's fetches, and everything
 * training reads is in the store. The Kafka case needs Java, Maven and redis-server (skips loudly without them).
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
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

let root = '';
let input = '';
let lines: string[] = [];
/** The masks of one uninterrupted run from the file (file store). */
let reference: Masks;

async function subdir(name: string): Promise<string> {
  const dir = path.join(root, name);
  await mkdir(dir, { recursive: true });
  return dir;
}

/** Three kill points drawn from a seeded generator, one in each third of the stream. */
function killPoints(seed: number): number[] {
  let state = seed;
  const draw = (from: number, to: number) => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return from + (state % (to - from));
  };
  const third = Math.floor(RECORDS / 3);
  return [draw(64, third), draw(third, 2 * third), draw(2 * third, RECORDS - 40)];
}

/** Runs `options` to the end, SIGKILLed once it has given results for each of `points` records, restarted each time. */
async function runWithKills(options: RunOptions, points: readonly number[]): Promise<void> {
  for (const [i, point] of points.entries()) {
    const attempt = startRun({ ...options, name: `${options.name}-${i}` });
    await waitForAll(options.dir, attempt, point);
    attempt.cli.signal('SIGKILL');
    assert.notEqual(await exitWithin(attempt, 30_000), 0);
  }
  const last = startRun({ ...options, name: `${options.name}-last` });
  await waitForAll(options.dir, last);
  last.cli.signal('SIGTERM');
  assert.equal(await exitWithin(last, 60_000), 0);
}

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'supsupd-determinism-'));
  lines = streamLines(RECORDS, 7, { shift: 2 });
  input = path.join(root, 'stream.jsonl');
  await writeLines(input, lines);
  const fileDir = await subdir('file');
  const fileStore = { kind: 'file', dir: path.join(fileDir, 'store') } as const;
  const fromFile = await runToExit({
    dir: fileDir,
    store: fileStore,
    source: { kind: 'file', path: input },
    name: 'file',
  });
  assert.equal(fromFile.code, 0, fromFile.log.text());
  reference = await storeMasks(fileStore);
  assert.ok(reference.tasks.length >= 2, 'the regimes were found');
});
after(async () => {
  if (root !== '') await rm(root, { recursive: true, force: true });
});

test('the file source SIGKILLed at three random commits ends with the masks of an uninterrupted run', async (t) => {
  // A file is read to its end in seconds, too fast to kill from outside: the daemon kills itself (SIGKILL) at the
  // n-th state commit or the n-th acknowledged results of each run, n seeded (docs/daemon.md, failpoints).
  const dir = await subdir('file-killed');
  // Each run ends at its n-th state commit (state durable, results not yet written) or its n-th acknowledged
  // results (offsets not yet committed), n in 1..3 drawn from the seeded points: the three kills fall within the
  // stream's 11 chunks.
  const kills = killPoints(20261209).map((point, i) => ({
    at: 1 + (point % 3),
    name: i % 2 === 0 ? 'after_state_commit' : 'after_results',
  }));
  const options: RunOptions = {
    dir,
    store: { kind: 'file', dir: path.join(dir, 'store') },
    source: { kind: 'file', path: input },
    name: 'file-killed',
  };
  for (const [i, kill] of kills.entries()) {
    const run = startRun({
      ...options,
      name: `file-killed-${i}`,
      env: { SUPSUPD_FAILPOINT: `${kill.name}@${kill.at}` },
    });
    assert.equal(await exitWithin(run, 60_000), null, `killed by ${kill.name}@${kill.at}: ${run.cli.tail()}`);
  }
  const last = await runToExit({ ...options, name: 'file-killed-last' });
  assert.equal(last.code, 0, last.log.text());
  assert.equal(new Set(resultOffsets(dir)).size, RECORDS, 'every record has a result');
  t.diagnostic(`SIGKILLs at ${kills.map((k) => `${k.name}@${k.at}`).join(', ')} (counted per run)`);
  assert.deepEqual(await storeMasks(options.store), reference);
});

test('file and Kafka give the same masks; so does Kafka SIGKILLed at three random points', {
  timeout: 600_000,
}, async (t) => {
  if (!requireKafkaOrSkip(t) || !requireRedisServerOrSkip(t)) return;
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

    const killed = await subdir('killed');
    const points = killPoints(20261208);
    await runWithKills(kafkaRun('killed', killed), points);
    t.diagnostic(`SIGKILLs after ${points.join(', ')} records`);
    assert.deepEqual(
      learned(await storeMasks(kafkaRun('killed', killed).store, redis.url)),
      learned(reference),
    );
  } finally {
    await admin.disconnect().catch(() => {});
    await redis.stop();
    await broker.stop();
  }
});
