/**
 * `supsupd run` end to end: the real CLI as a child process (node --import tsx src/cli/main.ts run --config …)
 * reading a real Kafka (test/harness/kafka.ts) and keeping its masks in a private AOF redis-server
 * (test/harness/redis.ts). The test only talks to the daemon through Kafka topics, Redis keys and signals.
 *
 * 1. A 5-task PermutedMNIST stream (demoStream, 3000 records per task) on a 3-partition topic: task segment s
 *    on partition s % 3, so each partition carries a sequence of tasks. The segments arrive over time, as in
 *    a live stream: segment s + 1 is produced once every record of segment s has a result. The first daemon is
 *    killed by SIGKILL right after its 40th state commit (SUPSUPD_FAILPOINT; state durable in Redis, that
 *    batch's results not yet written, its offset not committed); a second daemon resumes from Redis and the
 *    group's offsets, finishes the stream and leaves on SIGTERM with exit code 0 within 25 s. Checked: a result
 *    for every input offset, naming its input (x-source header, source, id); group offsets and Redis applied
 *    offsets at the end of every partition; as many masks in Redis as task_discovered events and as distinct
 *    tasks in the results, 5 or 6; adjusted Rand index of discovered vs true task ≥ 0.9.
 * 2. The same stream produced all at once: the consumer then interleaves the partitions (kafkajs fetches every
 *    partition in turn, ~200 records each), so the daemon sees the task change every ~200 records. Nothing is
 *    lost and offsets reach the end, and discovery still finds the tasks: the daemon keeps the policy state
 *    (current task, warm-up, entropy band) per partition.
 * 3. SIGKILL right after the state commit that allocated the first mask (before its results and its
 *    task_discovered event went out): nothing lost, offsets at the end, and the mask's task_discovered event is
 *    still published (the events of a commit travel in its outbox and are written again on restart).
 * 4. Poison records (malformed JSON, wrong dimension, a NaN, a 10 MB value, a `__proto__` key) between 300
 *    valid ones on one partition: each lands exactly once in the DLQ with its x-dlq-reason code, every valid
 *    record has a result, the group's offset reaches the end, and the daemon logs a warning per dead letter.
 *
 * Needs Java 17 + Maven (Kafka) and redis-server; skips loudly without them, fails under CI=true.
 * ~2 minutes on a 2-core machine (wasm backend). SUPSUPD_KEEP_TEST_DIRS=1 keeps the daemons' configs and logs.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { type TestContext, test } from 'node:test';
import type { Admin, IHeaders, Kafka as KafkaClient, Message, Producer } from 'kafkajs';
import kafkajs from 'kafkajs';
import { adjustedRandIndex, scoreDiscovery } from '../../src/daemon/demo-report.ts';
import { demoStream } from '../../src/daemon/demo-stream.ts';
import { RECORD_REJECT_REASONS } from '../../src/errors.ts';
import type { ApiStatus } from '../../src/ops/api-types.ts';
import type { RawRecord } from '../../src/records.ts';
import { redisKeys } from '../../src/store/redis-store.ts';
import { requireKafkaOrSkip, startKafka } from '../harness/kafka.ts';
import { freePort } from '../harness/ports.ts';
import { makeServiceDir, removeServiceDir } from '../harness/proc.ts';
import { type RedisServer, requireRedisServerOrSkip, respCommand, startRedis } from '../harness/redis.ts';
import { type DaemonCli, type DaemonExit, startDaemonCli, writeConfig } from '../support/daemon-cli.ts';
import { type CollectedMessage, TopicCollector, topicMessageCount } from '../support/topic-collector.ts';

const { Kafka, logLevel } = kafkajs;

const SEGMENTS = [0, 1, 2, 3, 4];
const RECORDS_PER_SEGMENT = 3000;
const INPUT_PARTITIONS = 3;
/** The first daemon dies right after this state commit (one per handled chunk: ~200 records here). */
const CRASH_AFTER_COMMIT = 40;
/** Records per produce request: one record batch of ~630 KB, below the consumer's 1 MiB per partition. */
const PRODUCE_CHUNK = 200;
const STOP_BUDGET_MS = 25_000;
const FINISH_TIMEOUT_MS = 6 * 60_000;
const SEGMENT_TIMEOUT_MS = 4 * 60_000;
const MIN_ARI = 0.9;
const DLQ_VALUE_CAP = 64 * 1024;

const log = (line: string): void => console.error(`[daemon-kafka] ${line}`);

// ---------------------------------------------------------------------------------------------------------------
// Topics, config, daemons

interface Scenario {
  readonly name: string;
  readonly input: string;
  readonly results: string;
  readonly dlq: string;
  readonly events: string;
  readonly decisions: string;
  readonly groupId: string;
  readonly namespace: string;
}

function scenario(name: string): Scenario {
  const suffix = randomBytes(3).toString('hex');
  return {
    name,
    input: `${name}-in-${suffix}`,
    results: `${name}-results-${suffix}`,
    dlq: `${name}-dlq-${suffix}`,
    events: `${name}-events-${suffix}`,
    decisions: `${name}-decisions-${suffix}`,
    groupId: `${name}-group-${suffix}`,
    namespace: `it:${name}:${suffix}`,
  };
}

function daemonConfig(brokers: readonly string[], redisUrl: string, s: Scenario): Record<string, unknown> {
  return {
    source: {
      kind: 'kafka',
      brokers,
      clientId: 'supsupd-it',
      topic: s.input,
      groupId: s.groupId,
      fromBeginning: true,
      maxBatchSize: 256,
      // The killed member stays in the group until its session expires; keep that short so the second
      // daemon's join does not wait 30 s. The daemon heartbeats after every micro-batch.
      sessionTimeoutMs: 10_000,
      heartbeatIntervalMs: 1000,
    },
    sink: {
      kind: 'kafka',
      brokers,
      clientId: 'supsupd-it',
      resultsTopic: s.results,
      deadLetterTopic: s.dlq,
      eventsTopic: s.events,
      decisionsTopic: s.decisions,
    },
    store: { kind: 'redis', url: redisUrl, namespace: s.namespace },
    model: { arch: 'lenet', outputs: 100, seed: 1 },
    log: { level: 'warn' },
  };
}

/** What the subtests share: one broker, one Redis, clients, and the daemons and collectors to clean up. */
interface Context {
  readonly kafka: KafkaClient;
  readonly admin: Admin;
  readonly producer: Producer;
  readonly redis: RedisServer;
  /** Writes `<dir>/<name>.json` and starts `supsupd run` on it (log in `<dir>/<name>.log`). */
  daemon(name: string, s: Scenario, env?: Record<string, string>): DaemonCli;
  /** A started collector of every message of `topic`, from the beginning. */
  collect(topic: string, onMessage?: (m: CollectedMessage) => void): Promise<TopicCollector>;
}

async function createTopics(
  admin: Admin,
  s: Scenario,
  inputPartitions: number,
  inputConfig: { name: string; value: string }[] = [],
): Promise<void> {
  const created = await admin.createTopics({
    waitForLeaders: true,
    topics: [
      { topic: s.input, numPartitions: inputPartitions, replicationFactor: 1, configEntries: inputConfig },
      { topic: s.results, numPartitions: 1, replicationFactor: 1 },
      { topic: s.dlq, numPartitions: 1, replicationFactor: 1 },
      { topic: s.events, numPartitions: 1, replicationFactor: 1 },
      { topic: s.decisions, numPartitions: 1, replicationFactor: 1 },
    ],
  });
  assert.equal(created, true, `created the topics of ${s.name}`);
}

function timeout(ms: number): { promise: Promise<'timeout'>; cancel: () => void } {
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  return { promise, cancel: () => clearTimeout(timer) };
}

/** The exit of `daemon`, or a failure (with the daemon's log) when it takes longer than `ms`. */
async function exitWithin(daemon: DaemonCli, ms: number, what: string): Promise<DaemonExit> {
  const limit = timeout(ms);
  try {
    const outcome = await Promise.race([daemon.exit, limit.promise]);
    if (outcome === 'timeout') {
      throw new Error(`${what}: pid ${daemon.pid} still runs after ${ms} ms\n--- log ---\n${daemon.tail()}`);
    }
    return outcome;
  } finally {
    limit.cancel();
  }
}

/** Waits for `condition` (which may throw to fail the wait); fails early if `daemon` exits, or after `ms`. */
async function waitWhileRunning(
  daemon: DaemonCli,
  condition: () => boolean | Promise<boolean>,
  ms: number,
  what: () => string,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (daemon.exited()) {
      const exit = await daemon.exit;
      throw new Error(
        `the daemon exited (${JSON.stringify(exit)}) while waiting for ${what()}\n--- log ---\n${daemon.tail()}`,
      );
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${what()}\n--- log ---\n${daemon.tail()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** SIGTERM, then exit code 0 within the stop budget. Returns how long it took. */
async function stopGracefully(daemon: DaemonCli): Promise<number> {
  const t0 = Date.now();
  daemon.signal('SIGTERM');
  const exit = await exitWithin(daemon, STOP_BUDGET_MS, 'SIGTERM');
  const ms = Date.now() - t0;
  assert.deepEqual(exit, { code: 0, signal: null }, `exit after SIGTERM\n--- log ---\n${daemon.tail()}`);
  assert.ok(ms < STOP_BUDGET_MS, `the daemon left ${ms} ms after SIGTERM`);
  return ms;
}

/** The group's committed offsets equal the input's end offsets; the end offsets by partition. */
async function assertCommittedAtEnd(admin: Admin, s: Scenario): Promise<Map<number, string>> {
  const [entry] = await admin.fetchOffsets({ groupId: s.groupId, topics: [s.input] });
  assert.ok(entry, 'fetchOffsets answered for the input topic');
  const committed = new Map(entry.partitions.map((p) => [p.partition, p.offset]));
  const ends = new Map((await admin.fetchTopicOffsets(s.input)).map((o) => [o.partition, o.high]));
  assert.deepEqual(
    [...committed.entries()].sort(([a], [b]) => a - b),
    [...ends.entries()].sort(([a], [b]) => a - b),
    'the committed group offsets equal the end offsets of the input topic',
  );
  return ends;
}

/** The store's applied offset of every partition is its last offset. */
async function assertAppliedAtEnd(redis: RedisServer, s: Scenario, ends: Map<number, string>): Promise<void> {
  const flat = await respCommand(redis.port, ['HGETALL', redisKeys(s.namespace).applied]);
  assert.ok(Array.isArray(flat), 'HGETALL applied');
  const applied = new Map<string, string>();
  for (let i = 0; i + 1 < flat.length; i += 2) applied.set(String(flat[i]), String(flat[i + 1]));
  for (const [partition, high] of ends) {
    assert.equal(
      applied.get(`${s.input}/${partition}`),
      (BigInt(high) - 1n).toString(),
      `Redis applied offset of ${s.input}/${partition}`,
    );
  }
}

function kafkaHeaders(headers: RawRecord['headers']): IHeaders {
  const out: IHeaders = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined) out[name] = value;
  return out;
}

function parseJson<T>(message: CollectedMessage): T {
  return JSON.parse(message.value?.toString('utf8') ?? 'null') as T;
}

// ---------------------------------------------------------------------------------------------------------------
// The 5-task stream and its results

/** The result JSON the daemon writes (src/codec/record-codec.ts encodeResult). */
interface ResultJson {
  id: string;
  source: { topic: string; partition: number; offset: string };
  task: number;
  newTask: boolean;
  confidence: number;
  entropy: number;
  prediction: number;
  maskVersion: number;
}

interface EventJson {
  type: string;
  task?: number;
  at?: { topic: string; partition: number; offset: string };
}

/** A demo stream laid out on the input topic: segment s, in order, on partition s % partitions. */
interface StreamPlan {
  /** True task of each segment. */
  readonly tasks: readonly number[];
  readonly recordsPerSegment: number;
  /** The messages of each segment (partition set), in order. */
  readonly segments: Message[][];
  /** x-source keys (topic/partition/offset) of each segment. */
  readonly segmentKeys: string[][];
  /** Every x-source key in stream order. */
  readonly order: string[];
  readonly truth: ReadonlyMap<string, number>;
  readonly ids: ReadonlyMap<string, string>;
}

function planStream(
  s: Scenario,
  tasks: readonly number[] = SEGMENTS,
  recordsPerSegment = RECORDS_PER_SEGMENT,
  partitions = INPUT_PARTITIONS,
): StreamPlan {
  const segments: Message[][] = tasks.map(() => []);
  const segmentKeys: string[][] = tasks.map(() => []);
  const order: string[] = [];
  const truth = new Map<string, number>();
  const ids = new Map<string, string>();
  const next = new Array<number>(partitions).fill(0);
  let index = 0;
  for (const raw of demoStream({ segments: tasks, recordsPerSegment, unlabelledFraction: 0.1, seed: 1 })) {
    const segment = Math.floor(index++ / recordsPerSegment);
    const partition = segment % partitions;
    const offset = next[partition] as number;
    next[partition] = offset + 1;
    const key = `${s.input}/${partition}/${offset}`;
    truth.set(key, tasks[segment] as number);
    ids.set(key, String(raw.headers.id));
    order.push(key);
    (segmentKeys[segment] as string[]).push(key);
    (segments[segment] as Message[]).push({
      partition,
      value: raw.value,
      headers: kafkaHeaders(raw.headers),
    });
  }
  assert.equal(order.length, tasks.length * recordsPerSegment);
  return { tasks, recordsPerSegment, segments, segmentKeys, order, truth, ids };
}

/** Produces one partition's messages in order, PRODUCE_CHUNK per request. */
async function produceInOrder(producer: Producer, topic: string, messages: Message[]): Promise<void> {
  for (let start = 0; start < messages.length; start += PRODUCE_CHUNK) {
    await producer.send({ topic, acks: -1, messages: messages.slice(start, start + PRODUCE_CHUNK) });
  }
}

/** Every result of the results topic by its x-source header, with the ones that name their input wrongly. */
class ResultIndex {
  readonly byKey = new Map<string, ResultJson[]>();
  readonly wrong: string[] = [];
  covered = 0;
  constructor(private readonly plan: StreamPlan) {}

  readonly add = (m: CollectedMessage): void => {
    const key = m.headers['x-source'] ?? '(no x-source)';
    const result = parseJson<ResultJson>(m);
    const { topic, partition, offset } = result.source;
    if (`${topic}/${partition}/${offset}` !== key || result.id !== this.plan.ids.get(key))
      this.wrong.push(`${key}: ${m.value?.toString('utf8')}`);
    const list = this.byKey.get(key) ?? [];
    if (list.length === 0 && this.plan.truth.has(key)) this.covered++;
    list.push(result);
    this.byKey.set(key, list);
  };

  has(keys: readonly string[]): boolean {
    return keys.every((key) => this.byKey.has(key));
  }
}

/**
 * No loss and no duplicate: exactly one result for every input, each naming its input. (The crash
 * points used here fall after the state write and before the results; a crash after the results
 * and before the offset commit would legitimately repeat a batch's results: at-least-once.)
 */
function assertEveryInputHasAResult(
  s: Scenario,
  plan: StreamPlan,
  index: ResultIndex,
  resultCount: number,
): void {
  assert.deepEqual(index.wrong.slice(0, 5), [], 'every result names its input in x-source, source and id');
  const missing = plan.order.filter((key) => !index.byKey.has(key));
  assert.deepEqual(missing.slice(0, 10), [], `${missing.length} inputs without a result`);
  const unknown = [...index.byKey.keys()].filter((key) => !plan.truth.has(key));
  assert.deepEqual(unknown.slice(0, 5), [], 'no result for anything but the inputs');
  const duplicated = [...index.byKey.values()].filter((list) => list.length > 1);
  const disagreeing = duplicated.filter((list) => new Set(list.map((r) => r.task)).size > 1).length;
  log(
    `${s.name}: ${resultCount} results for ${plan.order.length} inputs; ${duplicated.length} inputs have more than one ` +
      `result (${disagreeing} of them with different tasks)`,
  );
  assert.equal(duplicated.length, 0, 'exactly one result per input offset');
  assert.equal(resultCount, plan.order.length);
}

interface Discovery {
  readonly masks: number;
  readonly registryTasks: number[];
  readonly discovered: EventJson[];
  readonly resultTasks: number;
  readonly ari: number;
  /** The decision log's entries on the decisions topic, one per seq (a repeated one kept once). */
  readonly decisions: { seq: number; allocated: number[] }[];
}

/** Masks in Redis, task_discovered events, tasks in the results, and the ARI against the true tasks. */
async function discoveryOf(
  ctx: Context,
  s: Scenario,
  plan: StreamPlan,
  index: ResultIndex,
): Promise<Discovery> {
  const text = await respCommand(ctx.redis.port, ['GET', redisKeys(s.namespace).registry]);
  assert.equal(typeof text, 'string', `the registry ${redisKeys(s.namespace).registry} exists`);
  const registry = JSON.parse(String(text)) as { tasks: { task: number }[] };
  const events = (await (await ctx.collect(s.events)).caughtUp(ctx.admin, 30_000)).map((m) =>
    parseJson<EventJson>(m),
  );
  const discovered = events.filter((e) => e.type === 'task_discovered');
  const decisionLog = (await (await ctx.collect(s.decisions)).caughtUp(ctx.admin, 30_000)).map((m) =>
    parseJson<{ seq: number; allocated: number[] }>(m),
  );
  const decisions = [...new Map(decisionLog.map((d) => [d.seq, d])).values()].sort((a, b) => a.seq - b.seq);
  const resultTasks = new Set<number>();
  for (const list of index.byKey.values()) for (const r of list) resultTasks.add(r.task);
  // The first result of each input, in stream order.
  const found = plan.order.map((key) => (index.byKey.get(key) as ResultJson[])[0]?.task as number);
  const truth = plan.order.map((key) => plan.truth.get(key) as number);
  const ari = adjustedRandIndex(truth, found);
  const report = scoreDiscovery(
    { truth, found },
    plan.tasks.map((_, i) => i * plan.recordsPerSegment),
  );
  log(
    `${s.name}: ${registry.tasks.length} masks in Redis; ${discovered.length} task_discovered events ` +
      `(${discovered.map((e) => `task ${e.task} at ${e.at?.partition}/${e.at?.offset}`).join(', ')}); ` +
      `${resultTasks.size} distinct tasks in the results; adjusted Rand index ${ari.toFixed(4)}; ` +
      `detection delays ${JSON.stringify(report.detection_delays)}; true → found ${JSON.stringify(report.contingency)}`,
  );
  return {
    masks: registry.tasks.length,
    registryTasks: registry.tasks.map((t) => t.task).sort((a, b) => a - b),
    discovered,
    resultTasks: resultTasks.size,
    ari,
    decisions,
  };
}

function assertDiscovery(d: Discovery): void {
  assert.deepEqual(
    d.registryTasks,
    Array.from({ length: d.masks }, (_, i) => i),
    'registry task ids are 0..k-1',
  );
  assert.equal(d.discovered.length, d.masks, 'one task_discovered event per mask in Redis');
  assert.equal(
    new Set(d.discovered.map((e) => e.task)).size,
    d.discovered.length,
    'no task discovered twice',
  );
  assert.equal(d.resultTasks, d.masks, 'the results use every mask and name no other');
  assert.ok(d.masks >= 5 && d.masks <= 6, `5 true tasks: ${d.masks} masks (at most one spurious)`);
  assert.ok(d.ari >= MIN_ARI, `adjusted Rand index ${d.ari.toFixed(4)} ≥ ${MIN_ARI}`);
  // The decision log on its topic: every learned micro-batch once by seq (1, 2, … with no gap, through crashes),
  // and its allocations are exactly the discovered tasks.
  assert.ok(d.decisions.length > 0, 'decision-log entries on the decisions topic');
  assert.deepEqual(
    d.decisions.map((e) => e.seq),
    Array.from({ length: d.decisions.length }, (_, i) => i + 1),
  );
  assert.deepEqual(
    d.decisions.flatMap((e) => e.allocated),
    d.discovered.map((e) => e.task ?? -1).sort((a, b) => a - b),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// The scenarios

async function crashAndResume(ctx: Context): Promise<void> {
  const t0 = Date.now();
  const s = scenario('crash');
  await createTopics(ctx.admin, s, INPUT_PARTITIONS);
  const plan = planStream(s);
  const index = new ResultIndex(plan);
  const resultsCollector = await ctx.collect(s.results, index.add);

  // The segments arrive one after the other, as in a live stream: segment s + 1 once every record of
  // segment s has a result. A producer failure fails the waits below.
  let producerError: unknown;
  let producing = true;
  const producerDone = (async () => {
    for (const [segment, messages] of plan.segments.entries()) {
      if (segment > 0) {
        const previous = plan.segmentKeys[segment - 1] as string[];
        const deadline = Date.now() + SEGMENT_TIMEOUT_MS;
        while (producing && !index.has(previous)) {
          if (Date.now() > deadline) throw new Error(`segment ${segment - 1} not processed in time`);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
      if (!producing) return;
      await produceInOrder(ctx.producer, s.input, messages);
    }
  })().catch((error: unknown) => {
    producerError = error;
  });
  const noProducerError = (): void => {
    if (producerError !== undefined) throw producerError;
  };

  try {
    // Run 1: SIGKILL right after its 40th state commit, before that batch's results went out.
    const first = ctx.daemon('crash-run1', s, {
      SUPSUPD_FAILPOINT: `after_state_commit@${CRASH_AFTER_COMMIT}`,
    });
    const firstExit = await exitWithin(first, 5 * 60_000, 'run 1 (failpoint)');
    noProducerError();
    assert.deepEqual(
      firstExit,
      { code: null, signal: 'SIGKILL' },
      `run 1 dies by SIGKILL at the failpoint\n--- log ---\n${first.tail()}`,
    );
    const coveredAtCrash = index.covered;
    log(
      `crash: run 1 killed after state commit ${CRASH_AFTER_COMMIT}, ${Date.now() - t0} ms in; ` +
        `${coveredAtCrash} of ${plan.order.length} inputs had a result`,
    );
    assert.ok(coveredAtCrash > 0 && coveredAtCrash < plan.order.length, 'the crash came mid-stream');

    // Run 2: resumes from Redis (masks, policy, applied offsets) and the group's committed offsets.
    const t1 = Date.now();
    const second = ctx.daemon('crash-run2', s);
    await waitWhileRunning(
      second,
      () => {
        noProducerError();
        return index.covered === plan.order.length;
      },
      FINISH_TIMEOUT_MS,
      () => `a result for each of the ${plan.order.length} inputs (have ${index.covered})`,
    );
    const finishMs = Date.now() - t1;
    const stopMs = await stopGracefully(second);
    log(`crash: run 2 covered every input ${finishMs} ms after its start; SIGTERM → exit 0 in ${stopMs} ms`);
  } finally {
    producing = false;
    await producerDone;
  }
  noProducerError();

  const ends = await assertCommittedAtEnd(ctx.admin, s);
  assert.deepEqual(
    [...ends.entries()].sort(([a], [b]) => a - b),
    [
      [0, String(2 * RECORDS_PER_SEGMENT)],
      [1, String(2 * RECORDS_PER_SEGMENT)],
      [2, String(RECORDS_PER_SEGMENT)],
    ],
    'the input holds exactly the produced stream',
  );
  await assertAppliedAtEnd(ctx.redis, s, ends);
  const resultMessages = await resultsCollector.caughtUp(ctx.admin, 60_000);
  assertEveryInputHasAResult(s, plan, index, resultMessages.length);
  assertDiscovery(await discoveryOf(ctx, s, plan, index));
  log(`crash: ${Date.now() - t0} ms`);
}

async function interleavedPartitions(ctx: Context, t: TestContext): Promise<void> {
  const t0 = Date.now();
  const s = scenario('upfront');
  await createTopics(ctx.admin, s, INPUT_PARTITIONS);
  const plan = planStream(s);
  for (const messages of plan.segments) await produceInOrder(ctx.producer, s.input, messages);
  log(`upfront: produced ${plan.order.length} records in ${Date.now() - t0} ms`);
  const index = new ResultIndex(plan);
  const resultsCollector = await ctx.collect(s.results, index.add);
  const httpPort = await freePort();
  const daemon = ctx.daemon('upfront', s, { SUPSUPD_HTTP_PORT: String(httpPort) });
  const http = `http://127.0.0.1:${httpPort}`;
  // Ready only once the consumer joined its group (and the store answers).
  const readiness: string[] = [];
  await waitWhileRunning(
    daemon,
    async () => {
      const response = await fetch(`${http}/readyz`).catch(() => null);
      if (response === null) return false;
      const body = (await response.json()) as { reasons: string[] };
      readiness.push(response.status === 200 ? 'ready' : body.reasons.join(','));
      return response.status === 200;
    },
    FINISH_TIMEOUT_MS,
    () => `/readyz 200 (seen: ${[...new Set(readiness)].join(' | ')})`,
  );
  await waitWhileRunning(
    daemon,
    () => index.covered === plan.order.length,
    FINISH_TIMEOUT_MS,
    () => `a result for each of the ${plan.order.length} inputs (have ${index.covered})`,
  );
  const metrics = await (await fetch(`${http}/metrics`)).text();
  const lagLines = metrics.split('\n').filter((line) => line.startsWith('supsupd_consumer_lag{'));
  assert.equal(lagLines.length, INPUT_PARTITIONS, `a lag gauge per partition:\n${lagLines.join('\n')}`);
  // The API gives the same lag per partition (a number: Kafka knows each partition's end).
  const status = (await (await fetch(`${http}/api/v1/status`)).json()) as ApiStatus;
  const gauges = Object.fromEntries(
    lagLines.map((line) => [
      /partition="([^"]+)"/.exec(line)?.[1],
      Number(line.slice(line.lastIndexOf(' ') + 1)),
    ]),
  );
  assert.deepEqual(status.consumerLag, gauges, 'consumerLag of /api/v1/status is the gauges');
  assert.equal(status.sourceState.state, 'running', 'a Kafka source never finishes by itself');
  const consumed = metrics
    .split('\n')
    .filter((line) => line.startsWith('supsupd_records_in_total{'))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
  assert.equal(consumed, plan.order.length, 'records_in counts every input once');
  const stopMs = await stopGracefully(daemon);
  await assertAppliedAtEnd(ctx.redis, s, await assertCommittedAtEnd(ctx.admin, s));
  assertEveryInputHasAResult(s, plan, index, (await resultsCollector.caughtUp(ctx.admin, 60_000)).length);
  const discovery = await discoveryOf(ctx, s, plan, index);
  log(`upfront: ${Date.now() - t0} ms (stop ${stopMs} ms)`);
  await t.test('discovery across interleaved partitions: 5-6 masks, ARI ≥ 0.9', {}, () =>
    assertDiscovery(discovery),
  );
}

/** Reason code → count, from /api/v1/status and from supsupd_dead_letters_total. */
async function deadLettersByReason(
  http: string,
): Promise<{ api: Record<string, number>; metric: Record<string, number> }> {
  const status = (await (await fetch(`${http}/api/v1/status`)).json()) as ApiStatus;
  const metrics = await (await fetch(`${http}/metrics`)).text();
  const metric: Record<string, number> = {};
  for (const line of metrics.split('\n')) {
    const reason = /^supsupd_dead_letters_total\{reason="([^"]+)"\} /.exec(line)?.[1];
    if (reason !== undefined) metric[reason] = Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return { api: { ...status.records.deadLetteredByReason }, metric };
}

/**
 * /api/v1/status and supsupd_dead_letters_total both count `reasons` by code, and every other code at 0
 * (waited for: a dead letter reaches the DLQ topic just before the daemon counts it).
 */
async function assertDeadLettersByReason(
  daemon: DaemonCli,
  http: string,
  reasons: readonly string[],
): Promise<void> {
  const expected: Record<string, number> = Object.fromEntries(RECORD_REJECT_REASONS.map((code) => [code, 0]));
  for (const reason of reasons) expected[reason] = (expected[reason] ?? 0) + 1;
  let seen = await deadLettersByReason(http);
  const matches = (counts: Record<string, number>) => JSON.stringify(counts) === JSON.stringify(expected);
  await waitWhileRunning(
    daemon,
    async () => {
      seen = await deadLettersByReason(http);
      return matches(seen.api) && matches(seen.metric);
    },
    10_000,
    () => `dead letters by reason ${JSON.stringify(expected)} (have ${JSON.stringify(seen)})`,
  );
  assert.deepEqual(seen, { api: expected, metric: expected });
}

async function crashAfterAllocation(ctx: Context, t: TestContext): Promise<void> {
  const t0 = Date.now();
  const s = scenario('alloc');
  await createTopics(ctx.admin, s, 1);
  const plan = planStream(s, [0], 600, 1);
  for (const messages of plan.segments) await produceInOrder(ctx.producer, s.input, messages);
  const index = new ResultIndex(plan);
  const resultsCollector = await ctx.collect(s.results, index.add);

  // Run 1 dies right after its first state commit: the one that allocated mask 0, before that batch's
  // results and its task_discovered event were written.
  const first = ctx.daemon('alloc-run1', s, { SUPSUPD_FAILPOINT: 'after_state_commit@1' });
  const firstExit = await exitWithin(first, 2 * 60_000, 'run 1 (failpoint)');
  assert.deepEqual(
    firstExit,
    { code: null, signal: 'SIGKILL' },
    `run 1 dies by SIGKILL at the failpoint\n--- log ---\n${first.tail()}`,
  );
  assert.equal(await topicMessageCount(ctx.admin, s.results), 0, 'run 1 wrote no result before the crash');
  assert.equal(await topicMessageCount(ctx.admin, s.events), 0, 'run 1 wrote no event before the crash');

  const second = ctx.daemon('alloc-run2', s);
  await waitWhileRunning(
    second,
    () => index.covered === plan.order.length,
    3 * 60_000,
    () => `a result for each of the ${plan.order.length} inputs (have ${index.covered})`,
  );
  const stopMs = await stopGracefully(second);
  await assertAppliedAtEnd(ctx.redis, s, await assertCommittedAtEnd(ctx.admin, s));
  assertEveryInputHasAResult(s, plan, index, (await resultsCollector.caughtUp(ctx.admin, 30_000)).length);
  const discovery = await discoveryOf(ctx, s, plan, index);
  assert.ok(discovery.masks >= 1, 'mask 0 is in Redis');
  log(`alloc: ${Date.now() - t0} ms (stop ${stopMs} ms)`);
  await t.test('every mask in Redis has its task_discovered event', {}, () => {
    const announced = new Set(discovery.discovered.map((e) => e.task));
    assert.deepEqual(
      discovery.registryTasks.filter((task) => !announced.has(task)),
      [],
      'masks in Redis without a task_discovered event',
    );
  });
}

async function poisonRecords(ctx: Context, t: TestContext): Promise<void> {
  const t0 = Date.now();
  const s = scenario('poison');
  // The broker's message.max.bytes (~1 MiB) applies unless the topic raises it.
  await createTopics(ctx.admin, s, 1, [{ name: 'max.message.bytes', value: String(12 * 1024 * 1024) }]);
  const valid = [...demoStream({ segments: [0], recordsPerSegment: 300, unlabelledFraction: 0.1, seed: 1 })];
  const x = Array.from({ length: 784 }, (_, i) => (i % 7) / 7);
  const nanFloats = Buffer.alloc(784 * 4);
  for (let i = 0; i < 784; i++) nanFloats.writeFloatLE(0.25, i * 4);
  nanFloats.writeFloatLE(Number.NaN, 100 * 4);
  const json = { 'content-type': 'application/json' };
  const poison: { value: Buffer | string; headers: IHeaders; reason: string }[] = [
    { value: '{"x":[0.5,0.25,', headers: json, reason: 'E_RECORD_JSON' },
    { value: JSON.stringify({ x: x.slice(0, 10), y: 1 }), headers: json, reason: 'E_RECORD_DIMENSION' },
    {
      value: nanFloats,
      headers: { 'content-type': 'application/x-float32', y: '3', id: 'nan-record' },
      reason: 'E_RECORD_NONFINITE',
    },
    { value: Buffer.alloc(10 * 1024 * 1024, 0x20), headers: json, reason: 'E_RECORD_TOO_LARGE' },
    {
      value: `{"x":${JSON.stringify(x)},"y":1,"__proto__":{"polluted":true}}`,
      headers: json,
      reason: 'E_RECORD_PROTO',
    },
  ];
  // Poison record k after valid record 40 + 60k: good runs in one request each, every poison record alone
  // (the 10 MB one must not share a produce request).
  const validOffsets = new Set<string>();
  const expectedReasons = new Map<string, string>(); // offset → reason
  const ids = new Map<string, string>();
  let offset = 0;
  let run: Message[] = [];
  const flush = async (): Promise<void> => {
    if (run.length > 0) await ctx.producer.send({ topic: s.input, acks: -1, messages: run });
    run = [];
  };
  for (const [i, raw] of valid.entries()) {
    validOffsets.add(String(offset));
    ids.set(`${s.input}/0/${offset}`, String(raw.headers.id));
    run.push({ value: raw.value, headers: kafkaHeaders(raw.headers) });
    offset++;
    const p = i >= 40 && (i - 40) % 60 === 0 ? poison[(i - 40) / 60] : undefined;
    if (p !== undefined) {
      await flush();
      expectedReasons.set(String(offset), p.reason);
      await ctx.producer.send({
        topic: s.input,
        acks: -1,
        messages: [{ value: p.value, headers: p.headers }],
      });
      offset++;
    }
  }
  await flush();
  assert.equal(expectedReasons.size, poison.length, 'every kind of poison record was produced');
  log(`poison: produced ${valid.length} valid and ${poison.length} poison records in ${Date.now() - t0} ms`);

  const results = new Map<string, number>();
  const wrong: string[] = [];
  const resultsCollector = await ctx.collect(s.results, (m) => {
    const key = m.headers['x-source'] ?? '(no x-source)';
    const r = parseJson<ResultJson>(m);
    if (`${r.source.topic}/${r.source.partition}/${r.source.offset}` !== key || r.id !== ids.get(key))
      wrong.push(key);
    results.set(key, (results.get(key) ?? 0) + 1);
  });
  const dlqCollector = await ctx.collect(s.dlq);
  const httpPort = await freePort();
  const daemon = ctx.daemon('poison', s, { SUPSUPD_HTTP_PORT: String(httpPort) });
  const coveredValid = (): number => [...validOffsets].filter((o) => results.has(`${s.input}/0/${o}`)).length;
  await waitWhileRunning(
    daemon,
    () => coveredValid() === validOffsets.size && dlqCollector.messages.length >= poison.length,
    3 * 60_000,
    () =>
      `results for ${validOffsets.size} valid records (have ${coveredValid()}) and ${poison.length} dead ` +
      `letters (have ${dlqCollector.messages.length})`,
  );
  await assertDeadLettersByReason(daemon, `http://127.0.0.1:${httpPort}`, [...expectedReasons.values()]);
  const stopMs = await stopGracefully(daemon);
  await assertCommittedAtEnd(ctx.admin, s);

  const letters = await dlqCollector.caughtUp(ctx.admin, 30_000);
  assert.equal(letters.length, poison.length, 'one dead letter per poison record');
  const byOffset = new Map(letters.map((m) => [m.headers['x-dlq-offset'], m]));
  assert.equal(byOffset.size, poison.length, 'no poison record dead-lettered twice');
  for (const [poisonOffset, reason] of expectedReasons) {
    const letter = byOffset.get(poisonOffset);
    assert.ok(letter, `a dead letter for offset ${poisonOffset}`);
    assert.equal(letter.headers['x-dlq-reason'], reason, `reason of offset ${poisonOffset}`);
    assert.equal(letter.headers['x-dlq-topic'], s.input);
    assert.equal(letter.headers['x-dlq-partition'], '0');
    assert.equal(letter.headers['x-source'], `${s.input}/0/${poisonOffset}`);
    assert.ok((letter.headers['x-dlq-detail'] ?? '').length > 0, `detail of offset ${poisonOffset}`);
    assert.ok(!results.has(`${s.input}/0/${poisonOffset}`), `no result for poison offset ${poisonOffset}`);
  }
  const big = letters.find((m) => m.headers['x-dlq-reason'] === 'E_RECORD_TOO_LARGE');
  assert.equal(big?.value?.length, DLQ_VALUE_CAP, 'the 10 MB value is cut to 64 KiB in the DLQ');

  const resultMessages = await resultsCollector.caughtUp(ctx.admin, 30_000);
  assert.deepEqual(wrong.slice(0, 5), [], 'every result names its input');
  assert.equal(coveredValid(), validOffsets.size, 'every valid record has a result');
  log(
    `poison: ${resultMessages.length} results for ${validOffsets.size} valid records, ${letters.length} dead ` +
      `letters (${letters.map((m) => m.headers['x-dlq-reason']).join(', ')}); stop ${stopMs} ms; ` +
      `${Date.now() - t0} ms`,
  );
  await t.test('the daemon logs a warning for each dead letter', {}, () => {
    const warnings = readFileSync(daemon.logFile, 'utf8')
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { message?: string; reason?: string })
      .filter((entry) => entry.message === 'record dead-lettered');
    assert.deepEqual(
      warnings.map((w) => w.reason),
      [...expectedReasons.values()],
      'one warning per dead letter, with its reason',
    );
  });
}

// ---------------------------------------------------------------------------------------------------------------

test('supsupd run on Kafka and Redis', { timeout: 15 * 60_000 }, async (t) => {
  if (!requireKafkaOrSkip(t)) return;
  if (!requireRedisServerOrSkip(t)) return;
  const t0 = Date.now();
  const broker = await startKafka({ log });
  const redis = await startRedis();
  log(`kafka ${broker.brokers[0]} and redis ${redis.url} (AOF) ready in ${Date.now() - t0} ms`);
  const kafka = new Kafka({
    brokers: broker.brokers,
    clientId: 'daemon-kafka-test',
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await admin.connect();
  await producer.connect();
  const dir = makeServiceDir('daemon-kafka');
  const daemons: DaemonCli[] = [];
  const collectors: TopicCollector[] = [];
  const ctx: Context = {
    kafka,
    admin,
    producer,
    redis,
    daemon(name, s, env = {}) {
      const configPath = path.join(dir, `${name}.json`);
      writeConfig(configPath, daemonConfig(broker.brokers, redis.url, s));
      const cli = startDaemonCli({ configPath, logFile: path.join(dir, `${name}.log`), env, dir });
      daemons.push(cli);
      return cli;
    },
    async collect(topic, onMessage) {
      const collector = new TopicCollector(kafka, topic, onMessage);
      collectors.push(collector);
      await collector.start();
      return collector;
    },
  };
  try {
    await t.test(
      '5 tasks on 3 partitions, SIGKILL after a state commit, restart: nothing lost, offsets at the end, no extra mask',
      () => crashAndResume(ctx),
    );
    await t.test('the same stream produced up front: nothing lost, offsets at the end', (st) =>
      interleavedPartitions(ctx, st),
    );
    await t.test(
      'SIGKILL right after the commit that allocated a mask: nothing lost, offsets at the end',
      (st) => crashAfterAllocation(ctx, st),
    );
    await t.test('poison records: each once in the DLQ with its reason, the partition keeps flowing', (st) =>
      poisonRecords(ctx, st),
    );
  } finally {
    for (const daemon of daemons) await daemon.kill();
    for (const collector of collectors) await collector.stop();
    await producer.disconnect().catch(() => {});
    await admin.disconnect().catch(() => {});
    await broker.stop();
    await redis.stop();
    await removeServiceDir(dir);
    log(`total ${Date.now() - t0} ms`);
  }
});
