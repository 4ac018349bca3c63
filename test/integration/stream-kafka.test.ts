/**
 * KafkaSource + KafkaSink against a real single-node KRaft Kafka (test/harness/kafka.ts): at-least-once
 * with explicit commits, redelivery after a handler error, poison records to the DLQ, bounded stop().
 * Needs Java 17 + Maven (skips loudly without them, fails under CI=true).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import type { Admin, IHeaders, Kafka as KafkaClient } from 'kafkajs';
import kafkajs from 'kafkajs';
import { decodeRecord, positionKey } from '../../src/codec/record-codec.ts';
import { isSupsupError } from '../../src/errors.ts';
import { type KafkaLogCallback, KafkaSink, KafkaSource } from '../../src/stream/kafka.ts';
import type { DeadLetter, ResultRecord, SourceBatch } from '../../src/stream/types.ts';
import { type KafkaBroker, requireKafkaOrSkip, startKafka } from '../harness/kafka.ts';

const { Kafka, logLevel } = kafkajs;

const DIM = 4;
const LIMITS = { dim: DIM, maxBytes: 1024 * 1024, classes: 10 };
const STOP_BUDGET_MS = 25_000;

const log = (line: string): void => console.error(`[stream-kafka] ${line}`);
const kafkaLog: KafkaLogCallback = (level, message, extra) => {
  if (level === 'error' || level === 'warn') {
    log(`kafka ${level}: ${message} ${JSON.stringify({ namespace: extra.namespace, error: extra.error })}`);
  }
};

interface ReadMessage {
  partition: number;
  offset: string;
  key: string | null;
  value: Buffer | null;
  headers: Record<string, string>;
}

function headerStrings(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    const last = Array.isArray(value) ? value[value.length - 1] : value;
    if (last !== undefined) out[name] = last.toString();
  }
  return out;
}

async function createTopics(admin: Admin, topics: Array<[string, number]>): Promise<void> {
  const created = await admin.createTopics({
    waitForLeaders: true,
    topics: topics.map(([topic, numPartitions]) => ({ topic, numPartitions, replicationFactor: 1 })),
  });
  assert.equal(created, true, `created ${topics.map(([t]) => t).join(', ')}`);
}

async function endOffsets(admin: Admin, topic: string): Promise<Map<number, string>> {
  const offsets = await admin.fetchTopicOffsets(topic);
  return new Map(offsets.map((o) => [o.partition, o.high]));
}

async function committedOffsets(admin: Admin, groupId: string, topic: string): Promise<Map<number, string>> {
  const [entry] = await admin.fetchOffsets({ groupId, topics: [topic] });
  return new Map(entry.partitions.map((p) => [p.partition, p.offset]));
}

/** Every message of a topic (it is no longer written to). */
async function readTopic(kafka: KafkaClient, admin: Admin, topic: string): Promise<ReadMessage[]> {
  const offsets = await admin.fetchTopicOffsets(topic);
  const expected = offsets.reduce((sum, o) => sum + Number(BigInt(o.high) - BigInt(o.low)), 0);
  if (expected === 0) return [];
  const consumer = kafka.consumer({
    groupId: `reader-${randomBytes(4).toString('hex')}`,
    maxWaitTimeInMs: 200,
  });
  const out: ReadMessage[] = [];
  let resolveAll!: () => void;
  const all = new Promise<void>((resolve) => {
    resolveAll = resolve;
  });
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        out.push({
          partition,
          offset: message.offset,
          key: message.key === null ? null : message.key.toString(),
          value: message.value,
          headers: headerStrings(message.headers),
        });
        if (out.length >= expected) resolveAll();
      },
    });
    await withTimeout(all, 30_000, `reading ${expected} messages of ${topic} (got ${out.length})`);
  } finally {
    await consumer.disconnect();
  }
  return out;
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function waitFor(condition: () => boolean, ms: number, what: () => string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function jsonRecord(i: number): string {
  return JSON.stringify({ x: [i, i / 2, -i, 0.5], y: i % 10, id: `rec-${i}` });
}

interface Scenario {
  name: string;
  input: string;
  results: string;
  dlq: string;
  events: string;
  groupId: string;
}

function scenario(name: string): Scenario {
  const suffix = randomBytes(3).toString('hex');
  return {
    name,
    input: `${name}-in-${suffix}`,
    results: `${name}-results-${suffix}`,
    dlq: `${name}-dlq-${suffix}`,
    events: `${name}-events-${suffix}`,
    groupId: `${name}-group-${suffix}`,
  };
}

/**
 * The daemon's handler in miniature: decode, one result per good record, dead letters for the rest;
 * acked writes, then the source commits. `onBatch` runs first and may throw.
 */
function pipeline(
  sink: KafkaSink,
  handled: Map<string, number>,
  onBatch?: (batch: SourceBatch) => Promise<void> | void,
): (batch: SourceBatch) => Promise<void> {
  return async (batch) => {
    await onBatch?.(batch);
    const results: ResultRecord[] = [];
    const letters: DeadLetter[] = [];
    for (const raw of batch.records) {
      const outcome = decodeRecord(raw, LIMITS);
      if (!outcome.ok) {
        letters.push(outcome.letter);
        continue;
      }
      const { record } = outcome;
      results.push({
        id: record.id,
        source: record.position,
        task: 0,
        newTask: false,
        taskConfidence: 1,
        confidence: 1,
        entropy: 0,
        prediction: record.y ?? 0,
        maskVersion: 1,
      });
    }
    await batch.heartbeat();
    await sink.writeDeadLetters(letters);
    await sink.writeResults(results);
    for (const raw of batch.records) {
      const key = positionKey(raw.position);
      handled.set(key, (handled.get(key) ?? 0) + 1);
    }
  };
}

function makeSource(
  broker: KafkaBroker,
  s: Scenario,
  extra: Partial<ConstructorParameters<typeof KafkaSource>[0]> = {},
) {
  return new KafkaSource({
    brokers: broker.brokers,
    clientId: `${s.name}-source`,
    groupId: s.groupId,
    topic: s.input,
    logLevel: 'warn',
    log: kafkaLog,
    sessionTimeout: 10_000,
    heartbeatInterval: 1000,
    maxBatchSize: 32,
    ...extra,
  });
}

function makeSink(broker: KafkaBroker, s: Scenario): KafkaSink {
  return new KafkaSink({
    brokers: broker.brokers,
    clientId: `${s.name}-sink`,
    resultsTopic: s.results,
    deadLetterTopic: s.dlq,
    eventsTopic: s.events,
    acks: -1,
    logLevel: 'warn',
    log: kafkaLog,
  });
}

/** stop() twice (same promise), within the budget; returns its duration. */
async function stopWithinBudget(source: KafkaSource): Promise<number> {
  const t0 = Date.now();
  const first = source.stop();
  assert.equal(source.stop(), first, 'stop() is idempotent (one shared promise)');
  await first;
  const ms = Date.now() - t0;
  assert.ok(ms < STOP_BUDGET_MS, `stop() took ${ms} ms`);
  await source.stop();
  await source.done();
  assert.equal(source.joined(), false);
  return ms;
}

async function assertCommittedAtEnd(admin: Admin, s: Scenario): Promise<void> {
  const committed = await committedOffsets(admin, s.groupId, s.input);
  const ends = await endOffsets(admin, s.input);
  assert.deepEqual(
    [...committed.entries()].sort(([a], [b]) => a - b),
    [...ends.entries()].sort(([a], [b]) => a - b),
    'committed offsets equal the end offsets',
  );
}

// ~12 s with the jars cached; the generous timeout covers the first run, which fetches ~46 MiB of jars with Maven.
test('Kafka stream source and sink', { timeout: 15 * 60_000 }, async (t) => {
  if (!requireKafkaOrSkip(t)) return;
  const t0 = Date.now();
  const broker = await startKafka({ log, overrides: { 'message.max.bytes': 16 * 1024 * 1024 } });
  log(`broker ready in ${Date.now() - t0} ms`);
  const kafka = new Kafka({ brokers: broker.brokers, clientId: 'stream-test', logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  // Idempotent: a send retried under load (a request timed out, the batch was written anyway) must
  // not put its records in the input topic twice, or the exact counts below can never be reached.
  const producer = kafka.producer({
    allowAutoTopicCreation: false,
    idempotent: true,
    maxInFlightRequests: 1,
  });
  await admin.connect();
  await producer.connect();

  const setUp = async (s: Scenario, inputPartitions: number): Promise<void> => {
    await createTopics(admin, [
      [s.input, inputPartitions],
      [s.results, 3],
      [s.dlq, 1],
      [s.events, 1],
    ]);
  };

  try {
    await t.test('300 records on 3 partitions: one result per input offset, offsets committed', async () => {
      const s0 = Date.now();
      const s = scenario('plain');
      await setUp(s, 3);
      await producer.send({
        topic: s.input,
        acks: -1,
        messages: Array.from({ length: 300 }, (_, i) => ({ partition: i % 3, value: jsonRecord(i) })),
      });
      const source = makeSource(broker, s);
      const sink = makeSink(broker, s);
      const handled = new Map<string, number>();
      let joins = 0;
      source.events.on('joined', () => joins++);
      await source.start(pipeline(sink, handled));
      await waitFor(
        () => handled.size === 300,
        60_000,
        () => `300 handled records (have ${handled.size})`,
      );
      const processedAt = Date.now();
      assert.ok(joins >= 1 && source.joined(), 'joined the group');
      const stopMs = await stopWithinBudget(source);
      await assertCommittedAtEnd(admin, s);

      const results = await readTopic(kafka, admin, s.results);
      const bySource = new Map<string, number>();
      for (const m of results)
        bySource.set(m.headers['x-source'], (bySource.get(m.headers['x-source']) ?? 0) + 1);
      assert.equal(results.length, 300);
      assert.equal(bySource.size, 300, 'one result per input offset');
      for (let p = 0; p < 3; p++) {
        for (let o = 0; o < 100; o++) assert.equal(bySource.get(`${s.input}/${p}/${o}`), 1, `${p}/${o}`);
      }
      const sample = results.find((m) => m.key === 'rec-4');
      assert.ok(sample, 'results are keyed by record id');
      assert.equal(JSON.parse(sample.value?.toString() ?? '').source.partition, 1);
      assert.equal(sample.headers['x-source'], `${s.input}/1/1`);
      assert.equal((await readTopic(kafka, admin, s.dlq)).length, 0);
      await sink.close();
      await sink.close();
      log(
        `plain: processed 300 in ${processedAt - s0} ms (incl. topic setup and join), stop ${stopMs} ms, total ${Date.now() - s0} ms`,
      );
    });

    await t.test(
      'a handler that throws once: the batch is redelivered, every record processed exactly once',
      async () => {
        const s0 = Date.now();
        const s = scenario('retry');
        await setUp(s, 3);
        await producer.send({
          topic: s.input,
          acks: -1,
          messages: Array.from({ length: 300 }, (_, i) => ({ partition: i % 3, value: jsonRecord(i) })),
        });
        const source = makeSource(broker, s, { retryBackoffMs: 200 });
        const sink = makeSink(broker, s);
        const handled = new Map<string, number>();
        let failedFirst: string | undefined;
        const deliveries = new Map<string, number>();
        const failures: Array<{ firstOffset: string; attempt: number }> = [];
        source.events.on('batch_failed', (e) =>
          failures.push({ firstOffset: e.firstOffset, attempt: e.attempt }),
        );
        await source.start(
          pipeline(sink, handled, (batch) => {
            const first = positionKey(batch.records[0].position);
            deliveries.set(first, (deliveries.get(first) ?? 0) + 1);
            if (batch.partition === 1 && failedFirst === undefined) {
              failedFirst = first;
              throw new Error('injected model failure');
            }
          }),
        );
        await waitFor(
          () => handled.size === 300,
          60_000,
          () => `300 handled records (have ${handled.size})`,
        );
        const stopMs = await stopWithinBudget(source);
        assert.ok(failedFirst, 'the failure was injected');
        assert.equal(deliveries.get(failedFirst), 2, 'the failed batch was delivered again');
        assert.deepEqual(failures, [{ firstOffset: failedFirst.split('/')[2], attempt: 1 }]);
        for (const [key, count] of handled) assert.equal(count, 1, `${key} handled once`);
        await assertCommittedAtEnd(admin, s);

        const results = await readTopic(kafka, admin, s.results);
        const bySource = new Map<string, number>();
        for (const m of results)
          bySource.set(m.headers['x-source'], (bySource.get(m.headers['x-source']) ?? 0) + 1);
        assert.equal(results.length, 300);
        assert.equal(bySource.size, 300);
        assert.ok(
          [...bySource.values()].every((n) => n === 1),
          'exactly one result per x-source',
        );
        await sink.close();
        log(`retry: total ${Date.now() - s0} ms, stop ${stopMs} ms`);
      },
    );

    await t.test(
      'back-pressure: a partition whose handler keeps failing is paused while the others flow',
      async () => {
        const s = scenario('pause');
        await setUp(s, 3);
        await producer.send({
          topic: s.input,
          acks: -1,
          messages: Array.from({ length: 90 }, (_, i) => ({ partition: i % 3, value: jsonRecord(i) })),
        });
        const source = makeSource(broker, s, { retryBackoffMs: 1500, maxRetryBackoffMs: 1500 });
        const sink = makeSink(broker, s);
        const handled = new Map<string, number>();
        const attemptsOnPartition0: number[] = [];
        let failing = true;
        await source.start(
          pipeline(sink, handled, (batch) => {
            if (batch.partition !== 0) return;
            attemptsOnPartition0.push(Date.now());
            if (failing) throw new Error('store unavailable (injected)');
          }),
        );
        // Partitions 1 and 2 are fully handled while partition 0 keeps failing.
        await waitFor(
          () => [...handled.keys()].filter((k) => !k.includes('/0/')).length === 60,
          60_000,
          () => `60 records of partitions 1 and 2 (have ${handled.size})`,
        );
        assert.equal([...handled.keys()].filter((k) => k.includes('/0/')).length, 0);
        // Paused, not spinning: redeliveries are spaced by the backoff.
        await waitFor(
          () => attemptsOnPartition0.length >= 3,
          30_000,
          () => 'three attempts on partition 0',
        );
        const gaps = attemptsOnPartition0.slice(1).map((t, i) => t - (attemptsOnPartition0[i] as number));
        assert.ok(
          gaps.every((g) => g >= 1000),
          `attempts spaced by the backoff: ${gaps.join(', ')} ms`,
        );
        failing = false;
        await waitFor(
          () => handled.size === 90,
          30_000,
          () => `90 handled records (have ${handled.size})`,
        );
        await stopWithinBudget(source);
        await assertCommittedAtEnd(admin, s);
        await sink.close();
      },
    );

    // Four record batches of 50 on the log; a fetch of at most 1 KiB per partition returns one.
    const fourFetches = async (s: Scenario): Promise<void> => {
      await setUp(s, 1);
      for (let b = 0; b < 4; b++) {
        await producer.send({
          topic: s.input,
          acks: -1,
          messages: Array.from({ length: 50 }, (_, i) => ({ value: jsonRecord(b * 50 + i) })),
        });
      }
    };
    /** Waits until the 200 records are handled, stops the source, and checks: in offset order, once each. */
    const allHandledOnceInOrder = async (
      source: KafkaSource,
      handled: Map<string, number>,
    ): Promise<void> => {
      await waitFor(
        () => handled.size === 200,
        60_000,
        () => `200 handled records (have ${handled.size})`,
      );
      await stopWithinBudget(source);
      assert.deepEqual(
        [...handled.keys()].map((key) => Number(key.split('/')[2])),
        Array.from({ length: 200 }, (_, i) => i),
        'in offset order, nothing skipped',
      );
      assert.ok(
        [...handled.values()].every((n) => n === 1),
        'each record handled once',
      );
    };

    await t.test('fetch-ahead: the next batch is fetched while the handler works on this one', async () => {
      const s = scenario('ahead');
      await fourFetches(s);
      const source = makeSource(broker, s, { maxBytesPerPartition: 1024 });
      const sink = makeSink(broker, s);
      const fetched: string[] = [];
      source.events.on('fetched', (e) => fetched.push(e.firstOffset));
      const handled = new Map<string, number>();
      let aheadWhileHandling: boolean | undefined;
      await source.start(
        pipeline(sink, handled, async (batch) => {
          if (aheadWhileHandling !== undefined) return;
          // The first chunk's handler (offset 0) waits: the batch at offset 50 arrives meanwhile.
          assert.equal(batch.records[0]?.position.offset, '0');
          aheadWhileHandling = await waitFor(
            () => fetched.includes('50'),
            15_000,
            () => 'the batch at offset 50',
          ).then(
            () => true,
            () => false,
          );
        }),
      );
      await allHandledOnceInOrder(source, handled);
      assert.equal(aheadWhileHandling, true);
      await assertCommittedAtEnd(admin, s);
      await sink.close();
    });

    await t.test(
      'fetch-ahead: a failure drops the batch fetched ahead; everything is handled once, in order',
      async () => {
        const s = scenario('aheadfail');
        await fourFetches(s);
        const source = makeSource(broker, s, { maxBytesPerPartition: 1024, retryBackoffMs: 200 });
        const sink = makeSink(broker, s);
        const fetched: string[] = [];
        source.events.on('fetched', (e) => fetched.push(e.firstOffset));
        const handled = new Map<string, number>();
        let failed = false;
        await source.start(
          pipeline(sink, handled, async (batch) => {
            // The chunk at offset 32 fails once, after the batch at offset 50 was fetched ahead.
            if (failed || batch.records[0]?.position.offset !== '32') return;
            await waitFor(
              () => fetched.includes('50'),
              15_000,
              () => 'the batch at offset 50 fetched ahead',
            );
            failed = true;
            throw new Error('injected failure with a batch fetched ahead');
          }),
        );
        await allHandledOnceInOrder(source, handled);
        assert.ok(failed, 'the failure was injected');
        assert.equal(
          fetched.filter((offset) => offset === '50').length,
          2,
          'the batch fetched ahead was dropped and fetched again',
        );
        await assertCommittedAtEnd(admin, s);
        await sink.close();
      },
    );

    await t.test(
      'poison records reach the DLQ once each with the reason header; the partition keeps flowing',
      async () => {
        const s0 = Date.now();
        const s = scenario('poison');
        await setUp(s, 1);
        const nanFloats = Buffer.alloc(DIM * 4);
        nanFloats.writeFloatLE(Number.NaN, 4);
        const binary = { 'content-type': 'application/x-float32' };
        const poison: Array<{ value: Buffer | string | null; headers?: IHeaders; reason: string }> = [
          { value: '{"x":[1,2,3', reason: 'E_RECORD_JSON' },
          { value: '{"x":[1,2,3]}', reason: 'E_RECORD_DIMENSION' },
          { value: nanFloats, headers: binary, reason: 'E_RECORD_NONFINITE' },
          { value: '{"x":[1,1e400,3,4]}', reason: 'E_RECORD_NONFINITE' },
          { value: Buffer.alloc(10 * 1024 * 1024, 0x20), reason: 'E_RECORD_TOO_LARGE' },
          { value: '{"x":[1,2,3,4],"__proto__":{"admin":true}}', reason: 'E_RECORD_PROTO' },
          { value: '{"x":[1,2,3,4],"y":99}', reason: 'E_RECORD_LABEL' },
          { value: null, reason: 'E_RECORD_SCHEMA' },
        ];
        // good, poison, good, poison, … then 20 good records after the last poison.
        const messages: Array<{ value: Buffer | string | null; headers?: IHeaders }> = [];
        const expectedReasons = new Map<string, string>();
        let good = 0;
        for (const p of poison) {
          messages.push({ value: jsonRecord(good++) });
          expectedReasons.set(String(messages.length), p.reason);
          messages.push({ value: p.value, ...(p.headers ? { headers: p.headers } : {}) });
        }
        for (let i = 0; i < 20; i++) messages.push({ value: jsonRecord(good++) });
        // One send per message: the 10 MB record must not share a produce request with the others.
        for (const m of messages) await producer.send({ topic: s.input, acks: -1, messages: [m] });

        const source = makeSource(broker, s);
        const sink = makeSink(broker, s);
        const handled = new Map<string, number>();
        await source.start(pipeline(sink, handled));
        await waitFor(
          () => handled.size === messages.length,
          60_000,
          () => `${messages.length} handled (have ${handled.size})`,
        );
        const stopMs = await stopWithinBudget(source);
        await assertCommittedAtEnd(admin, s);

        const dlq = await readTopic(kafka, admin, s.dlq);
        assert.equal(dlq.length, poison.length, 'one dead letter per poison record');
        const byOffset = new Map(dlq.map((m) => [m.headers['x-dlq-offset'], m]));
        assert.equal(byOffset.size, poison.length, 'no duplicates');
        for (const [offset, reason] of expectedReasons) {
          const m = byOffset.get(offset);
          assert.ok(m, `dead letter for offset ${offset}`);
          assert.equal(m.headers['x-dlq-reason'], reason, `offset ${offset}`);
          assert.equal(m.headers['x-dlq-topic'], s.input);
          assert.equal(m.headers['x-dlq-partition'], '0');
          assert.ok(m.headers['x-dlq-detail'].length > 0);
          assert.equal(m.headers['x-source'], `${s.input}/0/${offset}`);
        }
        const big = dlq.find((m) => m.headers['x-dlq-reason'] === 'E_RECORD_TOO_LARGE');
        assert.equal(big?.value?.length, 64 * 1024, 'the 10 MB value is truncated to 64 KiB');
        const results = await readTopic(kafka, admin, s.results);
        assert.equal(
          results.length,
          good,
          'every good record has a result, including those after the poison',
        );
        await sink.close();
        log(`poison: total ${Date.now() - s0} ms, stop ${stopMs} ms`);
      },
    );

    await t.test('stop() during a slow batch waits for it, commits it, and leaves within 25 s', async () => {
      const s = scenario('stop');
      await setUp(s, 1);
      await producer.send({
        topic: s.input,
        acks: -1,
        messages: Array.from({ length: 100 }, (_, i) => ({ value: jsonRecord(i) })),
      });
      const source = makeSource(broker, s, { maxBatchSize: 10 });
      const sink = makeSink(broker, s);
      const handled = new Map<string, number>();
      let entered!: () => void;
      const inSlowBatch = new Promise<void>((resolve) => {
        entered = resolve;
      });
      let slowDone = false;
      let batches = 0;
      await source.start(
        pipeline(sink, handled, async () => {
          batches++;
          if (batches === 2) {
            entered();
            await new Promise((r) => setTimeout(r, 1500));
            slowDone = true;
          }
        }),
      );
      await withTimeout(inSlowBatch, 30_000, 'the slow batch');
      const stopMs = await stopWithinBudget(source);
      assert.ok(slowDone, 'the batch in flight finished before stop() resolved');
      assert.equal(batches, 2, 'nothing was delivered after stop()');
      const committed = await committedOffsets(admin, s.groupId, s.input);
      assert.equal(committed.get(0), '20', 'the batch in flight was committed');
      assert.equal(handled.size, 20);
      await assert.rejects(
        source.start(async () => {}),
        (e) => isSupsupError(e) && e.code === 'E_SOURCE',
      );
      await sink.close();
      await assert.rejects(
        sink.writeEvents([{ type: 'mask_frozen', task: 0, steps: 1, time: 't' }]),
        (e) => isSupsupError(e) && e.code === 'E_SINK',
      );
      log(`stop: stop() with a batch in flight took ${stopMs} ms`);
    });

    await t.test(
      'maxHandlerAttempts: a handler that always fails stops the source; nothing is committed',
      async () => {
        const s = scenario('giveup');
        await setUp(s, 1);
        await producer.send({
          topic: s.input,
          acks: -1,
          messages: [{ value: jsonRecord(1) }, { value: jsonRecord(2) }],
        });
        const source = makeSource(broker, s, { retryBackoffMs: 100, maxHandlerAttempts: 3 });
        const boom = new Error('store is read-only');
        let calls = 0;
        const t1 = Date.now();
        await source.start(async () => {
          calls++;
          throw boom;
        });
        await assert.rejects(withTimeout(source.done(), 30_000, 'done() to reject'), (e) => e === boom);
        await source.stop();
        assert.equal(calls, 3);
        const committed = await committedOffsets(admin, s.groupId, s.input);
        assert.equal(committed.get(0), '-1', 'nothing committed');
        log(`giveup: 3 attempts and stop in ${Date.now() - t1} ms`);
      },
    );

    await t.test('a sink on a missing topic fails with a mapped E_SINK error', async () => {
      const s = scenario('missing');
      const sink = new KafkaSink({
        brokers: broker.brokers,
        clientId: 'missing-sink',
        resultsTopic: s.results,
        deadLetterTopic: s.dlq,
        eventsTopic: s.events,
        logLevel: 'nothing',
        timeoutMs: 2000,
        retry: { retries: 1, initialRetryTime: 100 },
      });
      const result: ResultRecord = {
        id: 'r',
        source: { topic: 't', partition: 0, offset: '0' },
        task: 0,
        newTask: false,
        taskConfidence: 1,
        confidence: 1,
        entropy: 0,
        prediction: 0,
        maskVersion: 0,
      };
      const t1 = Date.now();
      await assert.rejects(sink.writeResults([result]), (e) => {
        assert.ok(isSupsupError(e) && e.code === 'E_SINK', String(e));
        log(`missing topic: ${e.message} (retriable=${e.retriable}) after ${Date.now() - t1} ms`);
        return true;
      });
      await sink.close();
    });
  } finally {
    await producer.disconnect().catch(() => {});
    await admin.disconnect().catch(() => {});
    await broker.stop();
    log(`total ${Date.now() - t0} ms`);
  }
});
