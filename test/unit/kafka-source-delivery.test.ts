/**
 * KafkaSource's delivery loop against a scripted kafkajs consumer: fetch-ahead, commit-behind,
 * failures that end an epoch, and stop(). The real broker's side is covered by
 * test/integration/stream-kafka.test.ts; here each interleaving is forced, not hoped for.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Consumer, EachBatchPayload } from 'kafkajs';
import kafkajs from 'kafkajs';
import { type KafkaLogCallback, KafkaSource } from '../../src/stream/kafka.ts';
import type { SourceBatch } from '../../src/stream/types.ts';

const { KafkaJSConnectionError, KafkaJSNonRetriableError, KafkaJSProtocolError } = kafkajs;
const TOPIC = 't';

type Listener = (event: { payload: Record<string, unknown> }) => void;

/** The part of a kafkajs Consumer that KafkaSource uses, driven by the test. */
class ScriptedConsumer {
  readonly events = {
    GROUP_JOIN: 'group_join',
    REBALANCING: 'rebalancing',
    CRASH: 'crash',
    STOP: 'stop',
    FETCH: 'fetch',
    HEARTBEAT: 'heartbeat',
    START_BATCH_PROCESS: 'start_batch_process',
  };
  /** What happened, in order: `commit p:offset`, `seek p:offset`, `disconnect`. */
  readonly log: string[] = [];
  commitError: Error | null = null;
  /** Each commit attempt throws the next of these first (logged as `commit failed`). */
  readonly commitFailures: Error[] = [];
  /** While set, commits wait for it. */
  commitGate: Promise<void> | null = null;
  private readonly listeners = new Map<string, Listener[]>();
  private readonly pendingSeeks = new Set<number>();
  private eachBatch: ((payload: EachBatchPayload) => Promise<void>) | null = null;
  private running = true;

  on(event: string, listener: Listener): void {
    this.listeners.set(event, [...(this.listeners.get(event) ?? []), listener]);
  }
  emit(event: string, payload: Record<string, unknown>): void {
    for (const listener of this.listeners.get(event) ?? []) listener({ payload });
  }
  async connect(): Promise<void> {}
  async subscribe(): Promise<void> {}
  async run(config: { eachBatch: (payload: EachBatchPayload) => Promise<void> }): Promise<void> {
    this.eachBatch = config.eachBatch;
    this.emit(this.events.GROUP_JOIN, { memberId: 'm', isLeader: true, memberAssignment: { [TOPIC]: [0] } });
  }
  seek({ partition, offset }: { topic: string; partition: number; offset: string }): void {
    this.pendingSeeks.add(partition);
    this.log.push(`seek ${partition}:${offset}`);
  }
  async disconnect(): Promise<void> {
    this.running = false;
    this.log.push('disconnect');
  }
  /** kafkajs's next fetch applies the pending seeks. */
  applySeeks(): void {
    this.pendingSeeks.clear();
  }

  /** kafkajs calling eachBatch with a fetched batch of `offsets` on `partition`. */
  deliver(partition: number, offsets: readonly number[]): Promise<void> {
    const eachBatch = this.eachBatch;
    if (eachBatch === null) throw new Error('run() was not called');
    const last = String(offsets[offsets.length - 1]);
    const payload = {
      batch: {
        topic: TOPIC,
        partition,
        highWatermark: '1000',
        messages: offsets.map((offset) => ({
          offset: String(offset),
          key: null,
          value: Buffer.from(String(offset)),
          headers: {},
          timestamp: '0',
          attributes: 0,
        })),
        lastOffset: () => last,
      },
      resolveOffset: (offset: string) => this.log.push(`resolve ${partition}:${offset}`),
      heartbeat: async () => {},
      pause: () => () => {},
      commitOffsetsIfNecessary: async (offsets: {
        topics: { topic: string; partitions: { partition: number; offset: string }[] }[];
      }) => {
        if (this.commitGate !== null) await this.commitGate;
        if (this.commitError !== null) throw this.commitError;
        const failure = this.commitFailures.shift();
        if (failure !== undefined) {
          this.log.push('commit failed');
          throw failure;
        }
        for (const { partitions } of offsets.topics) {
          for (const p of partitions) this.log.push(`commit ${p.partition}:${p.offset}`);
        }
      },
      isRunning: () => this.running,
      isStale: () => this.pendingSeeks.has(partition),
    };
    return eachBatch(payload as unknown as EachBatchPayload);
  }
}

function sourceOn(
  consumer: ScriptedConsumer,
  maxBatchSize = 2,
  options: { commitAttempts?: number; log?: KafkaLogCallback; lingerMs?: number } = {},
): KafkaSource {
  return new KafkaSource({
    brokers: ['unused:1'],
    clientId: 'c',
    groupId: 'g',
    topic: TOPIC,
    maxBatchSize,
    commitAttempts: options.commitAttempts ?? 1,
    ...(options.lingerMs === undefined ? {} : { lingerMs: options.lingerMs }),
    consumer: consumer as unknown as Consumer,
    ...(options.log === undefined ? {} : { log: options.log }),
  });
}

function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

const firstOffsets = (batches: readonly SourceBatch[]) =>
  batches.map((b) => b.records.map((r) => r.position.offset).join(','));

/** Waits (up to 5 s) until `condition` holds. */
async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

const settled = async (promise: Promise<unknown>): Promise<boolean> => {
  let done = false;
  void promise.then(
    () => {
      done = true;
    },
    () => {
      done = true;
    },
  );
  await new Promise((resolve) => setImmediate(resolve));
  return done;
};

test('eachBatch returns before its batch is handled; the next call waits for that handling', async () => {
  const consumer = new ScriptedConsumer();
  const source = sourceOn(consumer);
  const handled: SourceBatch[] = [];
  const first = gate();
  await source.start(async (batch) => {
    handled.push(batch);
    if (handled.length === 1) await first.promise;
  });
  // The batch's offsets are resolved at once: kafkajs may fetch the next one now.
  await consumer.deliver(0, [0, 1, 2, 3]);
  assert.deepEqual(consumer.log, ['resolve 0:3']);
  assert.deepEqual(firstOffsets(handled), ['0,1']);
  // The batch fetched ahead waits until the first one is handled.
  const second = consumer.deliver(0, [4, 5]);
  assert.equal(await settled(second), false);
  first.open();
  await second;
  await until(() => handled.length === 3);
  await source.stop();
  assert.deepEqual(firstOffsets(handled), ['0,1', '2,3', '4,5']);
  // Commits go out in order, never ahead of a handled chunk; the last one covers everything.
  const commits = consumer.log.filter((line) => line.startsWith('commit'));
  const offsets = commits.map((line) => Number(line.split(':')[1]));
  assert.deepEqual(
    offsets,
    [...offsets].sort((a, b) => a - b),
  );
  assert.equal(commits.at(-1), 'commit 0:6');
  assert.equal(consumer.log.at(-1), 'disconnect', 'the group is left after the last commit');
});

test('a failed commit ends the handling, seeks back to the first chunk not handled, and is thrown from the next eachBatch', async () => {
  const consumer = new ScriptedConsumer();
  const source = sourceOn(consumer);
  const boom = new KafkaJSNonRetriableError('commit refused');
  consumer.commitError = boom;
  const handled: SourceBatch[] = [];
  await source.start(async (batch) => {
    handled.push(batch);
    // Long enough for the previous chunk's commit to fail meanwhile.
    await new Promise((resolve) => setTimeout(resolve, 10));
  });
  await consumer.deliver(0, [0, 1, 2, 3, 4, 5]);
  // Chunk 0,1's commit failed while 2,3 was handled; 4,5 is not handled, and the fetch position
  // (already at 6) goes back to 4.
  const next = consumer.deliver(0, [6, 7]);
  await assert.rejects(next, (e) => e === boom);
  assert.deepEqual(firstOffsets(handled), ['0,1', '2,3']);
  assert.ok(consumer.log.includes('seek 0:4'), consumer.log.join('; '));
  assert.equal(consumer.log.filter((line) => line.startsWith('commit')).length, 0);
  // kafkajs retries: it fetches from the sought offset, and the handling goes on.
  consumer.commitError = null;
  consumer.applySeeks();
  await consumer.deliver(0, [4, 5, 6, 7]);
  await until(() => handled.length === 4);
  await source.stop();
  assert.deepEqual(firstOffsets(handled), ['0,1', '2,3', '4,5', '6,7']);
  assert.ok(consumer.log.includes('commit 0:8'), consumer.log.join('; '));
});

test('a rebalance ends the epoch: chunks not handled are sought back to, queued commits are dropped', async () => {
  const consumer = new ScriptedConsumer();
  const source = sourceOn(consumer);
  const commitGate = gate();
  consumer.commitGate = commitGate.promise;
  const second = gate();
  const handled: SourceBatch[] = [];
  await source.start(async (batch) => {
    handled.push(batch);
    if (handled.length === 2) await second.promise;
  });
  await consumer.deliver(0, [0, 1, 2, 3, 4, 5]);
  // Chunk 0,1's commit is in flight (held); chunk 2,3 is being handled when the group rebalances.
  await new Promise((resolve) => setImmediate(resolve));
  consumer.emit(consumer.events.REBALANCING, { memberId: 'm' });
  second.open();
  await new Promise((resolve) => setImmediate(resolve));
  consumer.emit(consumer.events.GROUP_JOIN, {
    memberId: 'm',
    isLeader: true,
    memberAssignment: { [TOPIC]: [0] },
  });
  consumer.commitGate = null;
  commitGate.open();
  await source.stop();
  assert.deepEqual(firstOffsets(handled), ['0,1', '2,3']);
  // The commit sent before the rebalance completes; chunk 2,3's, queued behind it, is never sent
  // (it would go out under the new generation). Chunk 4,5 is read again.
  const commits = consumer.log.filter((line) => line.startsWith('commit'));
  assert.deepEqual(commits, ['commit 0:2']);
  assert.ok(consumer.log.includes('seek 0:4'), consumer.log.join('; '));
});

test('a handler failure seeks back to its chunk, and the batch fetched ahead is stale and dropped', async () => {
  const consumer = new ScriptedConsumer();
  const source = new KafkaSource({
    brokers: ['unused:1'],
    clientId: 'c',
    groupId: 'g',
    topic: TOPIC,
    maxBatchSize: 2,
    retryBackoffMs: 5,
    consumer: consumer as unknown as Consumer,
  });
  const failed = new Set<string>();
  const handled: SourceBatch[] = [];
  await source.start(async (batch) => {
    const first = batch.records[0]?.position.offset ?? '';
    await new Promise((resolve) => setImmediate(resolve));
    if (first === '2' && !failed.has(first)) {
      failed.add(first);
      throw new Error('model failure');
    }
    handled.push(batch);
  });
  await consumer.deliver(0, [0, 1, 2, 3]);
  // Fetched ahead before the failure: dropped without a call to the handler.
  await consumer.deliver(0, [4, 5]);
  assert.deepEqual(firstOffsets(handled), ['0,1']);
  assert.ok(consumer.log.includes('seek 0:2'), consumer.log.join('; '));
  consumer.applySeeks();
  await consumer.deliver(0, [2, 3, 4, 5]);
  await until(() => handled.length === 3);
  await source.stop();
  assert.deepEqual(firstOffsets(handled), ['0,1', '2,3', '4,5']);
  assert.equal(consumer.log.filter((line) => line.startsWith('commit')).at(-1), 'commit 0:6');
});

test('a commit that fails with a retriable error is retried with the backoff of src/retry.ts', async () => {
  const consumer = new ScriptedConsumer();
  const warnings: Record<string, unknown>[] = [];
  const source = sourceOn(consumer, 2, {
    commitAttempts: 3,
    log: (level, message, extra) => {
      if (level === 'warn' && message.includes('offset commit failed')) warnings.push(extra);
    },
  });
  const committed: string[] = [];
  source.events.on('committed', ({ partition, offset }) => committed.push(`${partition}:${offset}`));
  consumer.commitFailures.push(
    new KafkaJSConnectionError('broker gone'),
    new KafkaJSConnectionError('again'),
  );
  await source.start(async () => {});
  await consumer.deliver(0, [0, 1]);
  await until(() => committed.length === 1);
  await source.stop();
  assert.deepEqual(consumer.log, [
    'resolve 0:1',
    'commit failed',
    'commit failed',
    'commit 0:2',
    'disconnect',
  ]);
  assert.deepEqual(committed, ['0:2']);
  // 200 ms then 400 ms, each with ±20 % jitter.
  assert.deepEqual(
    warnings.map((w) => w.attempt),
    [1, 2],
  );
  const delays = warnings.map((w) => Number(w.delayMs));
  assert.ok(delays[0] >= 160 && delays[0] <= 240, String(delays));
  assert.ok(delays[1] >= 320 && delays[1] <= 480, String(delays));
});

test('a commit is not retried on a rebalance error, nor beyond commitAttempts', async () => {
  // kafkajs marks it retriable; it still needs a re-join first, so the commit is not retried.
  const rebalance = new KafkaJSProtocolError(
    Object.assign(new Error('The group is rebalancing'), { type: 'REBALANCE_IN_PROGRESS', code: 27 }),
  );
  assert.equal(rebalance.retriable, true);
  for (const [failures, attempts, expected] of [
    [[rebalance], 5, 1],
    [[new KafkaJSConnectionError('a'), new KafkaJSConnectionError('b')], 2, 2],
  ] as const) {
    const consumer = new ScriptedConsumer();
    const source = sourceOn(consumer, 2, { commitAttempts: attempts });
    consumer.commitFailures.push(...failures);
    await source.start(async () => {});
    await consumer.deliver(0, [0, 1]);
    // The failure is thrown from the next eachBatch call, so kafkajs re-joins or retries.
    await until(() => consumer.log.filter((line) => line === 'commit failed').length === expected);
    await new Promise((resolve) => setImmediate(resolve));
    await assert.rejects(consumer.deliver(0, [2, 3]), (e) => e === failures[expected - 1]);
    await source.stop();
    assert.equal(
      consumer.log.filter((line) => line.startsWith('commit 0:')).length,
      0,
      consumer.log.join('; '),
    );
  }
});

/** The chunks a source hands over for `fetches` (each a kafkajs batch of offsets on partition 0), then stopped. */
async function chunksOf(fetches: readonly (readonly number[])[], lingerMs: number) {
  const consumer = new ScriptedConsumer();
  const source = sourceOn(consumer, 3, { lingerMs });
  const handled: SourceBatch[] = [];
  await source.start(async (batch) => {
    handled.push(batch);
  });
  for (const offsets of fetches) await consumer.deliver(0, offsets);
  const records = fetches.reduce((n, f) => n + f.length, 0);
  await until(() => handled.reduce((n, b) => n + b.records.length, 0) === records);
  await source.stop();
  const commits = consumer.log.filter((line) => line.startsWith('commit'));
  return { chunks: firstOffsets(handled), short: handled.map((b) => b.cutShort === true), commits };
}

test('chunks are cut from the record sequence, however the fetches fell; only a quiet partition cuts one short', async () => {
  const expected = ['0,1,2', '3,4,5', '6'];
  for (const fetches of [
    [[0, 1, 2, 3, 4, 5, 6]],
    [[0], [1, 2, 3, 4], [5, 6]],
    [[0, 1], [2], [3], [4, 5, 6]],
  ]) {
    const { chunks, short, commits } = await chunksOf(fetches, 20);
    assert.deepEqual(chunks, expected, JSON.stringify(fetches));
    assert.deepEqual(short, [false, false, true], 'the last chunk was handed over once it had lingered');
    assert.equal(commits.at(-1), 'commit 0:7');
  }
  // lingerMs 0: chunks follow the fetches, as kafkajs delivered them.
  assert.deepEqual((await chunksOf([[0], [1, 2, 3, 4], [5, 6]], 0)).chunks, ['0', '1,2,3', '4', '5,6']);
});

test('held records are not committed: stop() drops them, and a tail of an ended epoch is read again', async () => {
  const consumer = new ScriptedConsumer();
  const source = sourceOn(consumer, 2, { lingerMs: 60_000 });
  const handled: SourceBatch[] = [];
  await source.start(async (batch) => {
    handled.push(batch);
  });
  await consumer.deliver(0, [0, 1, 2]);
  // Chunk 0,1 handled and its commit sent (a commit still queued at a rebalance is dropped, by design).
  await until(() => handled.length === 1 && consumer.log.includes('commit 0:2'));
  // A rebalance ends the epoch while record 2 is held; the fetch position (3) is past it.
  consumer.emit(consumer.events.REBALANCING, { memberId: 'm' });
  consumer.emit(consumer.events.GROUP_JOIN, {
    memberId: 'm',
    isLeader: true,
    memberAssignment: { [TOPIC]: [0] },
  });
  await consumer.deliver(0, [3, 4]);
  assert.ok(consumer.log.includes('seek 0:2'), consumer.log.join('; '));
  assert.deepEqual(firstOffsets(handled), ['0,1'], 'the batch past the tail is dropped, read again');
  consumer.applySeeks();
  await consumer.deliver(0, [2, 3, 4]);
  await until(() => handled.length === 2);
  await source.stop();
  assert.deepEqual(firstOffsets(handled), ['0,1', '2,3'], 'record 4 stayed held, then dropped by stop()');
  assert.deepEqual(
    consumer.log.filter((line) => line.startsWith('commit')),
    ['commit 0:2', 'commit 0:4'],
  );
});
