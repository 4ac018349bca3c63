import { mkdir, mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DEFAULT_LEARNER } from '../discovery/learner.js';
import { PAPER_POLICY } from '../discovery/policy.js';
import type { Logger } from '../logger.js';
import { makeArchitecture } from '../model/network/arch.js';
import { defaultOptimizer } from '../model/training/optimizers.js';
import type { DaemonEvent, ResultRecord } from '../records.js';
import { openStore } from '../store/index.js';
import type { MaskStore } from '../store/types.js';
import { JsonlFileSink } from '../stream/file.js';
import { checkpointed, OffsetCheckpoint } from './checkpoint.js';
import { Daemon, type DaemonOptions } from './daemon.js';
import { type DemoReport, scoreDiscovery } from './demo-report.js';
import {
  DEFAULT_DEMO_STREAM,
  DEMO_TOPIC,
  type DemoStreamConfig,
  demoRecordCount,
  demoStream,
} from './demo-stream.js';
import { IterableSource } from './iterable-source.js';

export interface DemoOptions {
  /** Working directory (store, results, dead letters, events); a fresh temp dir when absent. */
  readonly dir?: string;
  readonly stream?: DemoStreamConfig;
  readonly microBatch?: number;
  readonly logger: Logger;
  readonly onProgress?: (records: number, total: number) => void;
  /** The mask store; default: a file store in the working directory. */
  readonly store?: MaskStore;
  /**
   * Opens the daemon; default `Daemon.open`. The CLI passes the ops service's, which adds the HTTP
   * surface and the scheduled jobs around the same daemon.
   */
  readonly open?: (options: DaemonOptions) => Promise<RunningDaemon>;
  /** Called once the daemon runs, so a signal handler can stop it. */
  readonly onDaemon?: (daemon: Daemon) => void;
  /** Awaited after the stream ended, before the daemon stops (to keep serving the dashboard). */
  readonly hold?: () => Promise<void>;
}

/** A daemon and whatever owns it: stop() stops both, in order. */
export interface RunningDaemon {
  readonly daemon: Daemon;
  stop(): Promise<void>;
}

export interface DemoSummary extends DemoReport {
  readonly dir: string;
  readonly records_in: number;
  readonly records_out: number;
  readonly dead_letters: number;
  readonly returning_task_recognised: boolean;
  readonly seconds: number;
  readonly checks: number;
  readonly events: readonly DaemonEvent[];
}

/**
 * The embedded default: the built-in PermutedMNIST stream through the real daemon with the file
 * store and JSONL sinks, then a comparison of discovered tasks with the true ones.
 */
export async function runDemo(options: DemoOptions): Promise<DemoSummary> {
  const stream = options.stream ?? DEFAULT_DEMO_STREAM;
  const dir = options.dir ?? (await mkdtemp(path.join(tmpdir(), 'supsupd-demo-')));
  await mkdir(dir, { recursive: true });
  const files = {
    results: path.join(dir, 'results.jsonl'),
    deadLetters: path.join(dir, 'dead-letters.jsonl'),
    events: path.join(dir, 'events.jsonl'),
    decisions: path.join(dir, 'decisions.jsonl'),
  };
  const started = Date.now();
  const open = options.open ?? openPlainDaemon;
  const running = await open({
    sink: new JsonlFileSink(files.results, files.deadLetters, files.events, files.decisions),
    store: options.store ?? openStore({ kind: 'file', dir: path.join(dir, 'store') }),
    allowVolatileStore: true,
    model: {
      arch: makeArchitecture({ arch: 'lenet', outputs: 100 }),
      seed: stream.seed,
      optimizer: defaultOptimizer('rmsprop'),
      rule: { kind: 'threshold' },
    },
    learner: { ...DEFAULT_LEARNER, policy: PAPER_POLICY },
    microBatch: options.microBatch ?? 128,
    maxRecordBytes: 1 << 20,
    logger: options.logger,
  });
  const { daemon } = running;
  options.onDaemon?.(daemon);
  const total = demoRecordCount(stream);
  const checkpoint = new OffsetCheckpoint(path.join(dir, 'consumed.json'));
  await checkpoint.load();
  const startAfter = checkpoint.get(`${DEMO_TOPIC}/0`);
  const resumed = startAfter === undefined ? 0 : Number(startAfter) + 1;
  try {
    const source = new IterableSource({
      name: 'demo',
      records: () => demoStream(stream),
      batchSize: 256,
      startAfter,
      onProgress: (n) => options.onProgress?.(resumed + n, total),
    });
    await daemon.run(checkpointed(source, checkpoint));
    await options.hold?.();
  } finally {
    await running.stop();
  }
  const results = await readJsonLines<ResultRecord>(files.results);
  const events = await readJsonLines<DaemonEvent>(files.events);
  const deadLetters = (await readJsonLines<unknown>(files.deadLetters)).length;
  const found = new Map<string, number>();
  for (const r of results) found.set(r.source.offset, r.task);
  const truth: number[] = [];
  const assigned: number[] = [];
  for (let offset = 0; offset < total; offset++) {
    const task = found.get(String(offset));
    if (task === undefined) continue;
    truth.push(stream.segments[Math.floor(offset / stream.recordsPerSegment)] as number);
    assigned.push(task);
  }
  const segmentStarts = stream.segments.map((_, s) => s * stream.recordsPerSegment);
  const report = scoreDiscovery({ truth, found: assigned }, segmentStarts);
  return {
    ...report,
    dir,
    records_in: total,
    records_out: found.size,
    dead_letters: deadLetters,
    returning_task_recognised: returningTaskRecognised(stream, found),
    seconds: (Date.now() - started) / 1000,
    checks: daemon.stats.checks,
    events,
  };
}

async function openPlainDaemon(options: DaemonOptions): Promise<RunningDaemon> {
  const daemon = await Daemon.open(options);
  return { daemon, stop: () => daemon.stop() };
}

/** Every segment of a task that comes back is routed mostly to the mask its first segment got. */
function returningTaskRecognised(stream: DemoStreamConfig, found: ReadonlyMap<string, number>): boolean {
  const dominantOf = (segment: number): number | undefined => {
    const counts = new Map<number, number>();
    for (let i = 0; i < stream.recordsPerSegment; i++) {
      const task = found.get(String(segment * stream.recordsPerSegment + i));
      if (task !== undefined) counts.set(task, (counts.get(task) ?? 0) + 1);
    }
    return [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
  };
  const firstMask = new Map<number, number | undefined>();
  return stream.segments.every((truth, segment) => {
    const mask = dominantOf(segment);
    if (!firstMask.has(truth)) {
      firstMask.set(truth, mask);
      return true;
    }
    return firstMask.get(truth) === mask;
  });
}

/** The JSON lines of a sink's file (none when it does not exist). */
export async function readJsonLines<T>(file: string): Promise<T[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as T);
}
