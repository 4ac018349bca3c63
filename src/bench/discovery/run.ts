/**
 * Runs one generated stream through the real daemon path (a JSONL file source, the learner, the
 * memory store, the JSONL file sink), then runs the oracle on the same records: the same network,
 * input transform and training schedule, told the true task of every record.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { float32Text } from '../../codec/float-text.js';
import { configSchema } from '../../config.js';
import { buildComponents } from '../../daemon/components.js';
import { Daemon } from '../../daemon/daemon.js';
import { DEFAULT_LEARNER, StreamLearner } from '../../discovery/learner.js';
import { silentLogger } from '../../logger.js';
import { SupermaskEngine } from '../../model/engine.js';
import type { InputRecord, ResultRecord } from '../../records.js';
import type { GeneratedStream } from './streams.js';

/** What a run gave every record, in stream order. */
export interface RunOutput {
  readonly tasks: Int32Array;
  readonly predictions: Int32Array;
  readonly taskConfidence: Float64Array;
  readonly seconds: number;
}

export interface RunOptions {
  readonly rule: 'evidence' | 'paper';
  /** Working directory for the stream file, checkpoint and outputs (removed afterwards). */
  readonly dir: string;
  readonly seed: number;
}

/** The daemon configuration a stream is run with: one default configuration, only the shape varies. */
export function streamConfig(
  stream: GeneratedStream,
  options: RunOptions,
  files: { input: string; out: string },
) {
  return configSchema.parse({
    source: { kind: 'file', path: files.input, checkpoint: path.join(options.dir, 'checkpoint.json') },
    sink: { kind: 'file', dir: files.out },
    store: { kind: 'memory' },
    model: {
      inputs: stream.inputs,
      realClasses: stream.classes,
      seed: options.seed,
      ...(stream.inputs === 784 ? { arch: 'lenet' } : { hidden: [300, 100] }),
    },
    discovery: { rule: options.rule },
    http: { enabled: false },
    jobs: { enabled: false },
    backend: 'wasm',
  });
}

export async function runThroughDaemon(stream: GeneratedStream, options: RunOptions): Promise<RunOutput> {
  await mkdir(options.dir, { recursive: true });
  const input = path.join(options.dir, 'stream.jsonl');
  const out = path.join(options.dir, 'out');
  await mkdir(out, { recursive: true });
  await writeStream(stream, input);
  const config = streamConfig(stream, options, { input, out });
  const components = buildComponents(config, silentLogger);
  const started = performance.now();
  const daemon = await Daemon.open(components.options);
  try {
    await daemon.run(await components.makeSource());
  } finally {
    await daemon.stop();
  }
  const seconds = (performance.now() - started) / 1000;
  const text = await readFile(path.join(out, 'results.jsonl'), 'utf8');
  const n = stream.records.length;
  const output = {
    tasks: new Int32Array(n).fill(-1),
    predictions: new Int32Array(n).fill(-1),
    taskConfidence: new Float64Array(n),
    seconds,
  };
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const result = JSON.parse(line) as ResultRecord;
    const i = Number(result.id.slice(1));
    output.tasks[i] = result.task;
    output.predictions[i] = result.prediction;
    output.taskConfidence[i] = result.taskConfidence;
  }
  await rm(options.dir, { recursive: true, force: true });
  return output;
}

/** The oracle: micro-batches of 128 records in stream order, cut where the true task changes. */
export function runOracle(stream: GeneratedStream, options: RunOptions): RunOutput {
  const config = streamConfig(stream, options, { input: '-', out: '-' });
  const { options: daemonOptions } = buildComponents(config, silentLogger);
  const engine = new SupermaskEngine({ ...daemonOptions.model, taskWeightCache: 16 });
  const learner = new StreamLearner(engine, { ...DEFAULT_LEARNER, ...daemonOptions.learner });
  const started = performance.now();
  const n = stream.records.length;
  const output = {
    tasks: new Int32Array(n),
    predictions: new Int32Array(n),
    taskConfidence: new Float64Array(n).fill(1),
  };
  const maskOf = new Map<number, number>();
  const now = new Date(0).toISOString();
  try {
    for (let b = 0; b < n; b += 128) {
      let i = b;
      const end = Math.min(n, b + 128);
      while (i < end) {
        const truth = (stream.records[i] as GeneratedStream['records'][number]).truth;
        let j = i;
        while (j < end && (stream.records[j] as GeneratedStream['records'][number]).truth === truth) j++;
        const records = inputRecords(stream, i, j);
        const outcome = learner.processKnown(records, maskOf.get(truth) ?? null, { now });
        for (const [k, result] of outcome.results.entries()) {
          maskOf.set(truth, result.task);
          output.tasks[i + k] = truth;
          output.predictions[i + k] = result.prediction;
        }
        i = j;
      }
    }
  } finally {
    learner.dispose();
    engine.dispose();
  }
  return { ...output, seconds: (performance.now() - started) / 1000 };
}

function inputRecords(stream: GeneratedStream, from: number, to: number): InputRecord[] {
  const records: InputRecord[] = [];
  for (let i = from; i < to; i++) {
    const r = stream.records[i] as GeneratedStream['records'][number];
    const position = { topic: 'oracle', partition: 0, offset: String(i) };
    records.push(
      r.y === undefined ? { id: `r${i}`, x: r.x, position } : { id: `r${i}`, x: r.x, y: r.y, position },
    );
  }
  return records;
}

/** The stream as the daemon's JSONL input: `{"id", "x", "y"?}` per line. */
export async function writeStream(stream: GeneratedStream, file: string): Promise<void> {
  const out = createWriteStream(file);
  const done = new Promise<void>((resolve, reject) => {
    out.on('finish', resolve);
    out.on('error', reject);
  });
  for (const [i, r] of stream.records.entries()) {
    const x = Array.from(r.x, float32Text).join(',');
    const line = r.y === undefined ? `{"id":"r${i}","x":[${x}]}\n` : `{"id":"r${i}","x":[${x}],"y":${r.y}}\n`;
    if (!out.write(line)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
  }
  out.end();
  await done;
}
