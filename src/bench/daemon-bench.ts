import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Kafka, logLevel } from 'kafkajs';
import { encodeMask, storedMaskChecksum } from '../codec/mask-codec.js';
import { Daemon, type DaemonOptions } from '../daemon/daemon.js';
import type { DaemonSnapshot } from '../daemon/state.js';
import type { BatchObservation, DaemonObserver } from '../daemon/telemetry.js';
import type { TaskView } from '../data/images.js';
import { loadDataset } from '../data/index.js';
import { makeTasks } from '../data/tasks.js';
import { DEFAULT_LEARNER } from '../discovery/learner.js';
import { PAPER_POLICY } from '../discovery/policy.js';
import { silentLogger } from '../logger.js';
import { maskLayout, randomMask } from '../model/bank/index.js';
import { SupermaskEngine } from '../model/engine.js';
import { type Architecture, architectureKey, RandomStream } from '../model/network/index.js';
import { defaultOptimizer, encodeTrainingState } from '../model/training/index.js';
import { MemoryStore } from '../store/memory-store.js';
import { RedisStore } from '../store/redis-store.js';
import type { MaskStore, MaskWrite, TaskMeta } from '../store/types.js';
import { JsonlFileSink, JsonlFileSource } from '../stream/file.js';
import { KafkaSink, KafkaSource } from '../stream/kafka.js';
import type { Source, SourceBatch, SourceHealth } from '../stream/types.js';
import { deleteNamespace } from './coldstart.js';

export interface DaemonBenchConfig {
  readonly source: 'file' | 'kafka';
  readonly format: 'json' | 'binary';
  readonly records: number;
  readonly masks: number;
  readonly arch: Architecture;
  readonly microBatch: number;
  readonly brokers: readonly string[];
  readonly seed: number;
  /** Records carry labels (the stream's mask trains on every batch) or not (inference only). */
  readonly labelled: boolean;
  /** Training steps of the stream task's mask before the run (batch 128 on the task's training images). */
  readonly trainSteps: number;
  readonly store: 'memory' | 'redis';
  readonly redisUrl: string;
  /** Largest chunk the Kafka source hands to the daemon (kafkajs fetches are split into chunks). */
  readonly maxBatchSize: number;
}

export interface DaemonBenchResult {
  /** Results over the whole run: consumer start (group join, first fetch) to the last result. */
  readonly records_per_s: number;
  readonly seconds: number;
  /**
   * Results over the steady state: from the first batch the source hands the daemon to the last
   * result (kafka-consumer-perf-test likewise reports the rebalance apart from the fetch rate).
   */
  readonly records_per_s_after_join: number;
  /** From run() to the first batch: group join, offset lookup and first fetch (Kafka). */
  readonly join_seconds: number;
  readonly records_in: number;
  readonly results_out: number;
  readonly full_checks: number;
  /** Micro-batches by the policy's reason (fast_path, confident, …). */
  readonly decisions: Readonly<Record<string, number>>;
  /** Handler calls (source chunks) and state commits written. */
  readonly chunks: number;
  readonly commits: number;
  readonly rss_mb: number;
  /**
   * CPU time of the daemon's process over the run (every thread: model helpers, the garbage
   * collector's), per 1,000 results. Less sensitive than records/s to a busy neighbour on a shared
   * host, it compares builds run at different times.
   */
  readonly cpu_ms_per_1k_records: number;
}

/**
 * End-to-end daemon throughput on a stream that stays on one task. The store holds `masks` masks:
 * mask 0 trained for `trainSteps` steps on the stream's task (still learning: it has a training
 * state), the others frozen random masks. The stream is that task's test images (PermutedMNIST),
 * labelled or not, through the real source, decoder, learner (the policy settles on mask 0 after
 * a few full checks and then takes its entropy-band fast path), store commits and sink.
 */
export async function runDaemonBench(
  config: DaemonBenchConfig,
  onProgress: (done: number, total: number) => void = () => {},
): Promise<DaemonBenchResult> {
  const work = await mkdtemp(path.join(tmpdir(), 'supsupd-bench-'));
  const [task] = makeTasks('permuted', loadDataset('mnist'), 1, config.seed);
  if (task === undefined) throw new Error('no task');
  const values = benchValues(config, task);
  const seeded = await seededStore(config, task);
  try {
    const setup =
      config.source === 'file' ? await fileSetup(work, values, config) : await kafkaSetup(values, config);
    const decisions: Record<string, number> = {};
    const observer: DaemonObserver = {
      received: () => {},
      batch: (o: BatchObservation) => {
        decisions[o.decision.reason] = (decisions[o.decision.reason] ?? 0) + 1;
      },
      deadLettered: () => {},
      committed: () => {},
      events: () => {},
      source: () => {},
    };
    const options: DaemonOptions = {
      sink: setup.sink,
      store: seeded.store,
      model: {
        arch: config.arch,
        seed: config.seed,
        optimizer: defaultOptimizer('rmsprop'),
        rule: { kind: 'threshold' },
      },
      learner: { ...DEFAULT_LEARNER, policy: PAPER_POLICY },
      microBatch: config.microBatch,
      maxRecordBytes: 1 << 20,
      allowVolatileStore: true,
      logger: silentLogger,
      observer,
    };
    const daemon = await Daemon.open(options);
    const ticker = setInterval(() => onProgress(daemon.stats.recordsIn, config.records), 500);
    const source = new FirstBatchTimer(setup.source);
    const started = performance.now();
    const cpuAtStart = process.cpuUsage();
    try {
      const running = daemon.run(source);
      await (config.source === 'file'
        ? running
        : waitFor(() => daemon.stats.resultsOut >= config.records, running));
      const ended = performance.now();
      const cpu = process.cpuUsage(cpuAtStart);
      const seconds = (ended - started) / 1000;
      const firstBatchAt = source.firstBatchAt ?? started;
      onProgress(daemon.stats.recordsIn, config.records);
      return {
        records_per_s: daemon.stats.resultsOut / seconds,
        seconds,
        records_per_s_after_join: daemon.stats.resultsOut / ((ended - firstBatchAt) / 1000),
        join_seconds: (firstBatchAt - started) / 1000,
        records_in: daemon.stats.recordsIn,
        results_out: daemon.stats.resultsOut,
        full_checks: daemon.stats.checks,
        decisions,
        chunks: daemon.stats.batches,
        commits: daemon.stats.commitsApplied,
        rss_mb: process.memoryUsage().rss / 2 ** 20,
        cpu_ms_per_1k_records: (cpu.user + cpu.system) / 1000 / (daemon.stats.resultsOut / 1000),
      };
    } finally {
      clearInterval(ticker);
      await daemon.stop();
      await setup.cleanup();
    }
  } finally {
    await seeded.cleanup();
    await rm(work, { recursive: true, force: true });
  }
}

/** A source that notes when it hands the daemon its first batch; everything else is the inner source's. */
class FirstBatchTimer implements Source {
  firstBatchAt: number | null = null;
  private readonly inner: Source;

  constructor(inner: Source) {
    this.inner = inner;
  }

  get name(): string {
    return this.inner.name;
  }

  get redelivers(): boolean | undefined {
    return this.inner.redelivers;
  }

  start(handler: (batch: SourceBatch) => Promise<void>): Promise<void> {
    return this.inner.start((batch) => {
      this.firstBatchAt ??= performance.now();
      return handler(batch);
    });
  }

  done(): Promise<void> {
    return this.inner.done();
  }

  stop(): Promise<void> {
    return this.inner.stop();
  }

  health(): SourceHealth {
    return this.inner.health?.() ?? { ready: true };
  }
}

/**
 * Record values (JSON or float32 bytes) of the task's test images in a seeded random order (the data
 * set stores them by class, which a stream of one task would not do), cycled, with labels if asked.
 */
function benchValues(config: DaemonBenchConfig, task: TaskView): BenchRecord[] {
  const image = new Float32Array(config.arch.inputs);
  const distinct = Math.min(config.records, task.test.count);
  const order = new RandomStream(config.seed, 'stream', 7).permutation(task.test.count);
  const values: BenchRecord[] = [];
  for (let i = 0; i < distinct; i++) {
    const index = order[i] as number;
    task.test.copyImage(index, image, 0);
    const y = config.labelled ? task.test.label(index) : undefined;
    const x = Array.from(image, (v) => Math.round(v * 1e4) / 1e4);
    values.push({
      value:
        config.format === 'json'
          ? Buffer.from(JSON.stringify(y === undefined ? { x } : { x, y }))
          : Buffer.from(image.buffer.slice(0)),
      y,
    });
  }
  return Array.from({ length: config.records }, (_, i) => values[i % distinct] as BenchRecord);
}

interface BenchRecord {
  readonly value: Buffer;
  readonly y: number | undefined;
}

/**
 * A store with mask 0 trained on the stream's task (`trainSteps` steps of batch 128, still
 * learning) and `masks - 1` frozen random masks, written through the store's commit API.
 */
async function seededStore(
  config: DaemonBenchConfig,
  task: TaskView,
): Promise<{ store: MaskStore; cleanup: () => Promise<void> }> {
  const namespace = `supsupd-bench:${process.pid}-${Date.now()}`;
  const store: MaskStore =
    config.store === 'redis' ? new RedisStore({ url: config.redisUrl, namespace }) : new MemoryStore();
  await store.open();
  const layout = maskLayout(config.arch);
  const archKey = architectureKey(config.arch);
  const engine = new SupermaskEngine({
    arch: config.arch,
    seed: config.seed,
    optimizer: defaultOptimizer('rmsprop'),
    rule: { kind: 'threshold' },
  });
  const trainer = engine.createTrainer(engine.initialScores(0, 'kaiming'));
  const rows = 128;
  const x = new Float32Array(rows * config.arch.inputs);
  const y = new Int32Array(rows);
  for (let step = 0; step < config.trainSteps; step++) {
    for (let r = 0; r < rows; r++) {
      const i = (step * rows + r) % task.train.count;
      task.train.copyImage(i, x, r * config.arch.inputs);
      y[r] = task.train.label(i);
    }
    trainer.step({ x, y, rows });
  }
  const trained = trainer.packedMask();
  const state = trainer.exportState();
  trainer.dispose();
  engine.dispose();
  const masks: MaskWrite[] = Array.from({ length: config.masks }, (_, t) => {
    const encodedMask = encodeMask(
      { archKey, seed: config.seed, taskId: t, version: 1 },
      t === 0 ? trained : randomMask(layout, config.seed, 100 + t),
    );
    return { task: t, encodedMask, trainingState: t === 0 ? encodeTrainingState(state) : null };
  });
  const tasks: TaskMeta[] = masks.map((m) => ({
    task: m.task,
    version: 1,
    frozen: m.task !== 0,
    trainSteps: m.task === 0 ? config.trainSteps : 0,
    bornAt: { topic: 'bench', partition: 0, offset: String(m.task) },
    bornTime: new Date(0).toISOString(),
    checksum: storedMaskChecksum(m.encodedMask),
  }));
  const policy: DaemonSnapshot = { streams: {}, outbox: [] };
  await store.commit({
    partitionKey: 'bench-seed/0',
    appliedOffset: '0',
    registry: { archKey, seed: config.seed, tasks, policy },
    masks,
  });
  // The daemon opens (and closes) the store itself.
  await store.close();
  return {
    store,
    cleanup: async () => {
      if (store instanceof RedisStore) await deleteNamespace(config.redisUrl, namespace);
    },
  };
}

async function fileSetup(work: string, values: readonly BenchRecord[], config: DaemonBenchConfig) {
  if (config.format !== 'json') throw new Error('the file source reads JSON lines: use --format json');
  const input = path.join(work, 'input.jsonl');
  await writeFile(input, `${values.map((v) => v.value.toString('utf8')).join('\n')}\n`);
  return {
    source: new JsonlFileSource(input, { batchSize: 256 }) as Source,
    sink: new JsonlFileSink(
      path.join(work, 'results.jsonl'),
      path.join(work, 'dlq.jsonl'),
      path.join(work, 'events.jsonl'),
    ),
    cleanup: async () => {},
  };
}

async function kafkaSetup(values: readonly BenchRecord[], config: DaemonBenchConfig) {
  const kafka = new Kafka({
    clientId: 'supsupd-bench',
    brokers: [...config.brokers],
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  await admin.connect();
  const suffix = `${Date.now()}-${process.pid}`;
  const topics = {
    input: `bench-in-${suffix}`,
    results: `bench-results-${suffix}`,
    dlq: `bench-dlq-${suffix}`,
    events: `bench-events-${suffix}`,
  };
  await admin.createTopics({
    topics: Object.values(topics).map((topic) => ({ topic, numPartitions: 1 })),
    waitForLeaders: true,
  });
  try {
    await produceAll(kafka, topics.input, values, config.format);
  } catch (error) {
    await admin.disconnect();
    throw error;
  }
  const client = { brokers: config.brokers, clientId: 'supsupd-bench', logLevel: 'nothing' as const };
  return {
    source: new KafkaSource({
      ...client,
      groupId: `bench-${suffix}`,
      topic: topics.input,
      fromBeginning: true,
      maxBatchSize: config.maxBatchSize,
    }) as Source,
    sink: new KafkaSink({
      ...client,
      resultsTopic: topics.results,
      deadLetterTopic: topics.dlq,
      eventsTopic: topics.events,
    }),
    cleanup: async () => {
      await admin.deleteTopics({ topics: Object.values(topics) }).catch(() => {});
      await admin.disconnect();
    },
  };
}

async function waitFor(done: () => boolean, running: Promise<void>): Promise<void> {
  let failed: unknown = null;
  running.catch((error: unknown) => {
    failed = error;
  });
  while (!done()) {
    if (failed !== null) throw failed;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function produceAll(
  kafka: Kafka,
  topic: string,
  values: readonly BenchRecord[],
  format: 'json' | 'binary',
) {
  const producer = kafka.producer();
  await producer.connect();
  const contentType = format === 'json' ? 'application/json' : 'application/x-float32';
  const message = ({ value, y }: BenchRecord) => ({
    value,
    headers:
      format === 'binary' && y !== undefined
        ? { 'content-type': contentType, y: String(y) }
        : { 'content-type': contentType },
  });
  try {
    // Requests stay under the broker's default message.max.bytes (1 MiB): 100 records of at most ~8 KB.
    for (let i = 0; i < values.length; i += 100) {
      await producer.send({ topic, messages: values.slice(i, i + 100).map(message) });
    }
  } finally {
    await producer.disconnect();
  }
}
