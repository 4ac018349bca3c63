import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { encodeMask, storedMaskChecksum } from '../codec/mask-codec.js';
import { Daemon } from '../daemon/daemon.js';
import type { DaemonSnapshot } from '../daemon/state.js';
import { DEFAULT_LEARNER } from '../discovery/learner.js';
import { PAPER_POLICY } from '../discovery/policy.js';
import { silentLogger } from '../logger.js';
import { maskLayout, randomMask } from '../model/bank/index.js';
import { type Architecture, architectureKey } from '../model/network/index.js';
import { defaultOptimizer } from '../model/training/index.js';
import { RedisStore } from '../store/redis-store.js';
import type { MaskWrite, TaskMeta } from '../store/types.js';
import type { Sink } from '../stream/types.js';

export interface ColdStartConfig {
  readonly arch: Architecture;
  readonly masks: number;
  readonly seed: number;
  readonly redisUrl: string;
  /** Fresh processes started against the seeded store. */
  readonly repeats: number;
}

export interface ColdStartResult {
  /** Daemon.open (store connect, registry, every mask read, checked and put in the bank), per process. */
  readonly open_ms: readonly number[];
  /** From the process's start (its time origin) to the daemon being ready, per process. */
  readonly process_ready_ms: readonly number[];
  /** From spawning the process to its exit (includes loading the code and tearing down). */
  readonly spawn_to_exit_ms: readonly number[];
  readonly seed_seconds: number;
  readonly store_bytes: number;
  readonly rss_mb: readonly number[];
}

/** What the child process prints as its last stdout line. */
export interface ColdStartChildReport {
  readonly open_ms: number;
  readonly process_ready_ms: number;
  readonly tasks: number;
  readonly rss_mb: number;
}

const nullSink: Sink = {
  name: 'null',
  writeResults: async () => {},
  writeDeadLetters: async () => {},
  writeEvents: async () => {},
  close: async () => {},
};

function engineModel(config: Pick<ColdStartConfig, 'arch' | 'seed'>) {
  return {
    arch: config.arch,
    seed: config.seed,
    optimizer: defaultOptimizer('rmsprop'),
    rule: { kind: 'threshold' as const },
  };
}

/**
 * Seeds a throw-away Redis namespace with `masks` frozen random masks through the store's commit
 * API, then starts `repeats` fresh processes (`spawnChild(namespace)`) that open a daemon on it and
 * report how long that took. The namespace is deleted afterwards.
 */
export async function runColdStartBench(
  config: ColdStartConfig,
  childCommand: (namespace: string) => { command: string; args: string[] },
  onProgress: (phase: string, done: number, total: number) => void = () => {},
): Promise<ColdStartResult> {
  const namespace = `supsupd-coldstart:${process.pid}-${Date.now()}`;
  const store = new RedisStore({ url: config.redisUrl, namespace });
  await store.open();
  try {
    const seedStarted = performance.now();
    const storeBytes = await seed(store, config, (done) => onProgress('seed', done, config.masks));
    const seedSeconds = (performance.now() - seedStarted) / 1000;
    const open: number[] = [];
    const ready: number[] = [];
    const wall: number[] = [];
    const rss: number[] = [];
    for (let r = 0; r < config.repeats; r++) {
      onProgress('start', r, config.repeats);
      const { command, args } = childCommand(namespace);
      const started = performance.now();
      const output = await run(command, args);
      wall.push(performance.now() - started);
      const last = output.trim().split('\n').pop() ?? '';
      const report = JSON.parse(last) as ColdStartChildReport;
      if (report.tasks !== config.masks) {
        throw new Error(`the child restored ${report.tasks} masks, expected ${config.masks}`);
      }
      open.push(report.open_ms);
      ready.push(report.process_ready_ms);
      rss.push(report.rss_mb);
    }
    onProgress('start', config.repeats, config.repeats);
    return {
      open_ms: open,
      process_ready_ms: ready,
      spawn_to_exit_ms: wall,
      seed_seconds: seedSeconds,
      store_bytes: storeBytes,
      rss_mb: rss,
    };
  } finally {
    await store.close();
    await deleteNamespace(config.redisUrl, namespace);
  }
}

/** The child's side: open a daemon on the namespace, report, stop. */
export async function coldStartChild(
  config: Pick<ColdStartConfig, 'arch' | 'seed' | 'redisUrl'>,
  namespace: string,
): Promise<ColdStartChildReport> {
  const started = performance.now();
  const daemon = await Daemon.open({
    sink: nullSink,
    store: new RedisStore({ url: config.redisUrl, namespace }),
    model: engineModel(config),
    learner: { ...DEFAULT_LEARNER, policy: PAPER_POLICY },
    microBatch: 128,
    maxRecordBytes: 1 << 20,
    allowVolatileStore: true,
    logger: silentLogger,
  });
  const ready = performance.now();
  const report = {
    open_ms: ready - started,
    process_ready_ms: ready,
    tasks: daemon.tasks.length,
    rss_mb: process.memoryUsage().rss / 2 ** 20,
  };
  await daemon.stop();
  return report;
}

async function seed(store: RedisStore, config: ColdStartConfig, progress: (done: number) => void) {
  const layout = maskLayout(config.arch);
  const archKey = architectureKey(config.arch);
  const tasks: TaskMeta[] = [];
  const policy: DaemonSnapshot = { streams: {}, outbox: [] };
  let bytes = 0;
  const chunk = 100;
  for (let first = 0; first < config.masks; first += chunk) {
    const masks: MaskWrite[] = [];
    for (let task = first; task < Math.min(config.masks, first + chunk); task++) {
      const encodedMask = encodeMask(
        { archKey, seed: config.seed, taskId: task, version: 1 },
        randomMask(layout, config.seed, 1000 + task),
      );
      bytes += encodedMask.length;
      masks.push({ task, encodedMask, trainingState: null });
      tasks.push({
        task,
        version: 1,
        frozen: true,
        trainSteps: 0,
        bornAt: { topic: 'coldstart', partition: 0, offset: String(task) },
        bornTime: new Date(0).toISOString(),
        checksum: storedMaskChecksum(encodedMask),
      });
    }
    const outcome = await store.commit({
      partitionKey: 'coldstart/0',
      appliedOffset: String(first + masks.length),
      registry: { archKey, seed: config.seed, tasks: [...tasks], policy },
      masks,
    });
    if (outcome !== 'applied') throw new Error('seeding the cold-start store was fenced');
    progress(first + masks.length);
  }
  return bytes;
}

function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out).toString('utf8'));
      else reject(new Error(`cold-start child exited with ${code}: ${Buffer.concat(err).toString('utf8')}`));
    });
  });
}

/** Deletes the bench's keys (its own namespace only). */
export async function deleteNamespace(url: string, namespace: string): Promise<void> {
  const { Redis } = await import('ioredis');
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await client.connect();
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${namespace}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await client.del(...keys);
    } while (cursor !== '0');
  } finally {
    client.disconnect();
  }
}
