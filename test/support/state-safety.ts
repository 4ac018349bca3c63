/**
 * Helpers of the state-safety integration tests (test/integration/state-safety.test.ts): a small seeded JSONL
 * stream, configs for `supsupd run` on the file source (a regular file, or a FIFO the test writes into batch by
 * batch), the daemon's JSON log, /readyz, and the masks a store ends with.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { type FileHandle, open, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { FileStore, type MaskStore, RedisStore } from '../../src/store/index.ts';
import { type DaemonCli, startDaemonCli, writeConfig } from './daemon-cli.ts';
import { waitFor } from './wait.ts';

/** Input dimension, and the small network every run uses. */
const DIM = 16;
export const MODEL = { inputs: DIM, hidden: [32], outputs: 8, realClasses: 4 } as const;
/** Lines per batch of the file and stdin sources (their fixed batch size). */
export const BATCH = 256;

/** mulberry32: a tiny seeded PRNG, so the stream is the same on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `count` JSON lines: two tasks taking turns every 512 lines (another linear labelling of the same inputs). */
export function streamLines(count: number, seed = 7, options: { readonly shift?: number } = {}): string[] {
  const next = prng(seed);
  const weights = [0, 1].map(() => Array.from({ length: 4 * DIM }, () => next() * 2 - 1));
  // With `shift`, each task's inputs are also moved by a mean of its own (an input shift to discover).
  const shift = options.shift ?? 0;
  const means = [0, 1].map(() =>
    Array.from({ length: DIM }, () => (shift === 0 ? 0 : shift * (next() * 2 - 1))),
  );
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    const regime = Math.floor(i / 512) % 2;
    const w = weights[regime] as number[];
    const mean = means[regime] as number[];
    const x = Array.from(
      { length: DIM },
      (_, j) => Math.round((next() * 2 - 1 + (mean[j] as number)) * 1000) / 1000,
    );
    let y = 0;
    let best = Number.NEGATIVE_INFINITY;
    for (let c = 0; c < 4; c++) {
      let score = 0;
      for (let j = 0; j < DIM; j++) score += (w[c * DIM + j] as number) * (x[j] as number);
      if (score > best) [best, y] = [score, c];
    }
    lines.push(JSON.stringify({ id: `r${i}`, x, y }));
  }
  return lines;
}

export async function writeLines(file: string, lines: readonly string[]): Promise<void> {
  await writeFile(file, lines.map((line) => `${line}\n`).join(''));
}

export type StoreConfig =
  | { readonly kind: 'file'; readonly dir: string }
  | { readonly kind: 'redis'; readonly namespace: string };

export interface RunOptions {
  /** Where the config, the log, the sink's files and (by default) the checkpoint go. */
  readonly dir: string;
  readonly store: StoreConfig;
  /** The source: a file (with a checkpoint) or stdin (checkpoint optional). */
  readonly source:
    | { readonly kind: 'file'; readonly path: string; readonly checkpoint?: string }
    | { readonly kind: 'stdin'; readonly checkpoint?: string; readonly input: string }
    | {
        readonly kind: 'kafka';
        readonly brokers: string[];
        readonly topic: string;
        readonly groupId: string;
        /** The group's session timeout (the daemon's default is 30 s: a member killed holds its partitions that long). */
        readonly sessionTimeoutMs?: number;
      };
  readonly redisUrl?: string;
  readonly onRegression?: 'refuse' | 'replay' | 'accept';
  readonly writer?: { readonly leaseMs?: number; readonly standby?: boolean };
  readonly httpPort?: number;
  /** The file sink's directory (default: `dir`). */
  readonly sinkDir?: string;
  /** Names the log file (several runs share a directory). */
  readonly name: string;
  /** Added to the CLI's environment (e.g. SUPSUPD_FAILPOINT). */
  readonly env?: Readonly<Record<string, string>>;
}

export interface Run {
  readonly cli: DaemonCli;
  readonly logFile: string;
}

/** Starts `supsupd run` for `options`. */
export function startRun(options: RunOptions): Run {
  const { dir, store, source, name } = options;
  const safety = {
    ...(options.onRegression === undefined ? {} : { onRegression: options.onRegression }),
    ...(options.writer === undefined ? {} : { writer: options.writer }),
  };
  const configPath = path.join(dir, `${name}.config.json`);
  writeConfig(configPath, {
    source: sourceConfig(source, dir),
    sink: { kind: 'file', dir: options.sinkDir ?? dir },
    store: store.kind === 'file' ? { ...store, ...safety } : { ...store, ...safety },
    model: MODEL,
    http: options.httpPort === undefined ? { enabled: false } : { port: options.httpPort },
    jobs: { enabled: false },
    backend: 'wasm',
  });
  const logFile = path.join(dir, `${name}.log`);
  const cli = startDaemonCli({
    configPath,
    logFile,
    env: {
      ...(options.redisUrl === undefined ? {} : { SUPSUPD_REDIS_URL: options.redisUrl }),
      ...(options.env ?? {}),
    },
    ...(source.kind === 'stdin' ? { stdinFile: source.input } : {}),
  });
  return { cli, logFile };
}

function sourceConfig(source: RunOptions['source'], dir: string): Record<string, unknown> {
  switch (source.kind) {
    case 'file':
      return {
        kind: 'file',
        path: source.path,
        checkpoint: source.checkpoint ?? path.join(dir, 'checkpoint.json'),
      };
    case 'stdin':
      return { kind: 'stdin', ...(source.checkpoint === undefined ? {} : { checkpoint: source.checkpoint }) };
    case 'kafka':
      return {
        kind: 'kafka',
        brokers: source.brokers,
        topic: source.topic,
        groupId: source.groupId,
        ...(source.sessionTimeoutMs === undefined
          ? {}
          : { sessionTimeoutMs: source.sessionTimeoutMs, heartbeatIntervalMs: 1000 }),
      };
  }
}

/** Runs to the end: the exit code and the log. Fails if the process is still running after `timeoutMs`. */
export async function runToExit(
  options: RunOptions,
  timeoutMs = 60_000,
): Promise<{ code: number | null; log: LogView }> {
  const run = startRun(options);
  return { code: await exitWithin(run, timeoutMs), log: new LogView(run.logFile) };
}

/** The exit code, once the process exited; throws if it runs longer than `timeoutMs` (and kills it). */
export async function exitWithin(run: Run, timeoutMs: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), timeoutMs);
  });
  const outcome = await Promise.race([run.cli.exit, late]);
  clearTimeout(timer);
  if (outcome === 'late') {
    await run.cli.kill();
    throw new Error(`supsupd still ran after ${timeoutMs} ms:\n${run.cli.tail()}`);
  }
  return outcome.code;
}

/** The daemon's log: its JSON lines (and any plain text, such as the CLI's error line). */
export class LogView {
  constructor(readonly file: string) {}

  text(): string {
    return existsSync(this.file) ? readFileSync(this.file, 'utf8') : '';
  }

  /** JSON log entries whose message contains `message`. */
  entries(message: string): Record<string, unknown>[] {
    const found: Record<string, unknown>[] = [];
    for (const line of this.text().split('\n')) {
      if (!line.startsWith('{')) continue;
      const entry = JSON.parse(line) as Record<string, unknown>;
      if (typeof entry.message === 'string' && entry.message.includes(message)) found.push(entry);
    }
    return found;
  }

  /** The daemon's counters from its `stopped` line. */
  stopped(): { commitsApplied: number; resultsOut: number } {
    const entry = this.entries('stopped').at(-1);
    if (entry === undefined) throw new Error(`no "stopped" line in ${this.file}:\n${this.text()}`);
    return { commitsApplied: Number(entry.commitsApplied), resultsOut: Number(entry.resultsOut) };
  }
}

/** Source offsets of the results in a sink directory, in the order written. */
export function resultOffsets(dir: string): string[] {
  const file = path.join(dir, 'results.jsonl');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => (JSON.parse(line) as { source: { offset: string } }).source.offset);
}

/** GET /readyz: the status and the reasons. */
export async function readyz(port: number): Promise<{ status: number; reasons: string[] }> {
  const response = await fetch(`http://127.0.0.1:${port}/readyz`);
  const body = (await response.json()) as { reasons: string[] };
  return { status: response.status, reasons: body.reasons };
}

/** A FIFO the file source reads: the test writes batches into it, so the daemon stays mid-run between them. */
export class Fifo {
  private handle: FileHandle | null = null;

  constructor(readonly path: string) {
    execFileSync('mkfifo', [path]);
  }

  /** Opens the writing end (resolves once the daemon opened the reading end), unless `run` exits first. */
  async connect(run: Run): Promise<void> {
    const opening = open(this.path, 'w');
    const exited = run.cli.exit.then((exit) => {
      throw new Error(`supsupd exited (${exit.code}) before reading its input:\n${run.cli.tail()}`);
    });
    this.handle = await Promise.race([opening, exited]);
  }

  async write(lines: readonly string[]): Promise<void> {
    if (this.handle === null) throw new Error('connect() first');
    await this.handle.write(lines.map((line) => `${line}\n`).join(''));
  }

  /** End of input: the daemon finishes the source. */
  async close(): Promise<void> {
    await this.handle?.close();
    this.handle = null;
  }
}

/** Waits until the sink directory holds `count` results. */
export async function waitForResults(dir: string, count: number, run: Run): Promise<void> {
  await waitFor(`${count} results`, 60_000, () => (resultOffsets(dir).length >= count ? true : undefined), {
    context: () => run.cli.tail(),
    abortIf: () => (run.cli.exited() ? 'supsupd exited' : undefined),
  });
}

/** What a store ends with: per task its metadata that learning decides, its mask and its training state. */
export interface Masks {
  readonly applied: Readonly<Record<string, string>>;
  readonly tasks: readonly {
    readonly task: number;
    readonly version: number;
    readonly frozen: boolean;
    readonly trainSteps: number;
    readonly checksum: number;
    readonly mask: string;
    readonly training: string | null;
  }[];
}

export async function storeMasks(store: StoreConfig, redisUrl?: string): Promise<Masks> {
  const opened: MaskStore =
    store.kind === 'file'
      ? new FileStore(store.dir)
      : new RedisStore({ url: redisUrl ?? '', namespace: store.namespace });
  await opened.open();
  try {
    const state = await opened.load();
    if (state === null) return { applied: {}, tasks: [] };
    const tasks = [];
    for (const meta of state.registry.tasks) {
      const training = await opened.loadTrainingState(meta.task);
      tasks.push({
        task: meta.task,
        version: meta.version,
        frozen: meta.frozen,
        trainSteps: meta.trainSteps,
        checksum: meta.checksum,
        mask: Buffer.from(await opened.loadMask(meta.task)).toString('base64'),
        training: training === null ? null : Buffer.from(training).toString('base64'),
      });
    }
    return { applied: state.applied, tasks };
  } finally {
    await opened.close();
  }
}
