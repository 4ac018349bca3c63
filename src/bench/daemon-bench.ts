import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Kafka, logLevel } from 'kafkajs';
import { Daemon, type DaemonOptions } from '../daemon/daemon.js';
import type { DaemonSnapshot } from '../daemon/state.js';
import { loadDataset } from '../data/index.js';
import { makeTasks } from '../data/tasks.js';
import { DEFAULT_LEARNER } from '../discovery/learner.js';
import { PAPER_POLICY } from '../discovery/policy.js';
import { silentLogger } from '../logger.js';
import { type Architecture, architectureKey } from '../model/arch.js';
import { crc32, encodeMask } from '../model/mask-codec.js';
import { maskLayout, randomMask } from '../model/mask-layout.js';
import { defaultOptimizer } from '../model/optimizers.js';
import { MemoryStore } from '../store/memory-store.js';
import type { TaskMeta } from '../store/types.js';
import { JsonlFileSink, JsonlFileSource } from '../stream/file.js';
import { KafkaSink, KafkaSource } from '../stream/kafka.js';
import type { Source } from '../stream/types.js';

export interface DaemonBenchConfig {
  readonly source: 'file' | 'kafka';
  readonly format: 'json' | 'binary';
  readonly records: number;
  readonly masks: number;
  readonly arch: Architecture;
  readonly microBatch: number;
  readonly brokers: readonly string[];
  readonly seed: number;
}

export interface DaemonBenchResult {
  readonly records_per_s: number;
  readonly seconds: number;
  readonly records_in: number;
  readonly results_out: number;
  readonly full_checks: number;
  readonly rss_mb: number;
}

/**
 * End-to-end daemon throughput on a stream that stays on one task: a store seeded with k frozen
 * random masks, unlabelled records of one PermutedMNIST task, through the real source, decoder,
 * learner (task routing and classification), memory store commits and sink.
 */
export async function runDaemonBench(
  config: DaemonBenchConfig,
  onProgress: (done: number, total: number) => void = () => {},
): Promise<DaemonBenchResult> {
  const work = await mkdtemp(path.join(tmpdir(), 'supsupd-bench-'));
  try {
    const values = benchValues(config);
    const store = await seededStore(config);
    const setup =
      config.source === 'file' ? await fileSetup(work, values, config) : await kafkaSetup(values, config);
    const options: DaemonOptions = {
      sink: setup.sink,
      store,
      model: {
        arch: config.arch,
        seed: config.seed,
        optimizer: defaultOptimizer('rmsprop'),
        rule: { kind: 'threshold' },
      },
      learner: { ...DEFAULT_LEARNER, policy: PAPER_POLICY },
      microBatch: config.microBatch,
      maxRecordBytes: 1 << 20,
      logger: silentLogger,
    };
    const daemon = await Daemon.open(options);
    const ticker = setInterval(() => onProgress(daemon.stats.recordsIn, config.records), 500);
    const started = performance.now();
    try {
      const running = daemon.run(setup.source);
      await (config.source === 'file'
        ? running
        : waitFor(() => daemon.stats.resultsOut >= config.records, running));
      const seconds = (performance.now() - started) / 1000;
      onProgress(daemon.stats.recordsIn, config.records);
      return {
        records_per_s: daemon.stats.resultsOut / seconds,
        seconds,
        records_in: daemon.stats.recordsIn,
        results_out: daemon.stats.resultsOut,
        full_checks: daemon.stats.checks,
        rss_mb: process.memoryUsage().rss / 2 ** 20,
      };
    } finally {
      clearInterval(ticker);
      await daemon.stop();
      await setup.cleanup();
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Record values (JSON or float32 bytes) of one PermutedMNIST task's test images, cycled. */
function benchValues(config: DaemonBenchConfig): Buffer[] {
  const [task] = makeTasks('permuted', loadDataset('mnist'), 1, config.seed);
  if (task === undefined) throw new Error('no task');
  const image = new Float32Array(config.arch.inputs);
  const distinct = Math.min(config.records, task.test.count);
  const values: Buffer[] = [];
  for (let i = 0; i < distinct; i++) {
    task.test.copyImage(i, image, 0);
    values.push(
      config.format === 'json'
        ? Buffer.from(JSON.stringify({ x: Array.from(image, (v) => Math.round(v * 1e4) / 1e4) }))
        : Buffer.from(image.buffer.slice(0)),
    );
  }
  return Array.from({ length: config.records }, (_, i) => values[i % distinct] as Buffer);
}

async function seededStore(config: DaemonBenchConfig): Promise<MemoryStore> {
  const store = new MemoryStore();
  await store.open();
  const layout = maskLayout(config.arch);
  const archKey = architectureKey(config.arch);
  const masks = Array.from({ length: config.masks }, (_, task) => {
    const encodedMask = encodeMask(
      { archKey, seed: config.seed, taskId: task, version: 1 },
      randomMask(layout, config.seed, 100 + task),
    );
    return { task, encodedMask, trainingState: null };
  });
  const tasks: TaskMeta[] = masks.map((m) => ({
    task: m.task,
    version: 1,
    frozen: true,
    trainSteps: 0,
    bornAt: { topic: 'bench', partition: 0, offset: String(m.task) },
    bornTime: new Date(0).toISOString(),
    checksum: crc32(m.encodedMask),
  }));
  const policy: DaemonSnapshot = { streams: {}, outbox: [] };
  await store.commit({
    partitionKey: 'bench-seed/0',
    appliedOffset: '0',
    registry: { archKey, seed: config.seed, tasks, policy },
    masks,
  });
  return store;
}

async function fileSetup(work: string, values: readonly Buffer[], config: DaemonBenchConfig) {
  if (config.format !== 'json') throw new Error('the file source reads JSON lines: use --format json');
  const input = path.join(work, 'input.jsonl');
  await writeFile(input, `${values.map((v) => v.toString('utf8')).join('\n')}\n`);
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

async function kafkaSetup(values: readonly Buffer[], config: DaemonBenchConfig) {
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
      maxBatchSize: 512,
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

async function produceAll(kafka: Kafka, topic: string, values: readonly Buffer[], format: 'json' | 'binary') {
  const producer = kafka.producer();
  await producer.connect();
  const headers = { 'content-type': format === 'json' ? 'application/json' : 'application/x-float32' };
  try {
    // Requests stay under the broker's default message.max.bytes (1 MiB): 100 records of at most ~8 KB.
    for (let i = 0; i < values.length; i += 100) {
      await producer.send({ topic, messages: values.slice(i, i + 100).map((value) => ({ value, headers })) });
    }
  } finally {
    await producer.disconnect();
  }
}
