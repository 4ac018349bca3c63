import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ENVIRONMENT, readConfigFile } from '../config.js';
import { DEFAULT_DEMO_STREAM } from '../daemon/demo-stream.js';
import { DEMO_CLASS_FIELD, DEMO_TRUTH_FIELD, writeDemoFile } from '../evaluate/demo-file.js';
import { type EvaluationReport, evaluateFile, evaluationConfig } from '../evaluate/evaluate.js';
import { evaluationTable } from '../evaluate/report-table.js';
import type { Timeline } from '../evaluate/timeline.js';
import { timelineSvg } from '../evaluate/timeline.js';
import { timelinePng } from '../evaluate/timeline-png.js';
import { BACKEND_PREFERENCES, type BackendPreference, selectBackend } from '../model/network/index.js';
import { createLogger, type LogLevel } from '../ops/logger.js';
import { OptionReader } from './options.js';
import { Progress } from './progress.js';

interface EvaluateArguments {
  readonly input: string | undefined;
  readonly demo: boolean;
  readonly demoOut: string | undefined;
  readonly recordsPerSegment: number;
  readonly truthField: string;
  readonly labelField: string | undefined;
  readonly plot: string | undefined;
  readonly config: Readonly<Record<string, unknown>>;
  readonly level: LogLevel;
}

/**
 * `supsupd evaluate`: a labelled JSONL file (or, with --demo, the built-in demo stream written as
 * one) through the daemon, scored against its truth field; a table, or one JSON object with --json;
 * --plot writes the task timeline as PNG or SVG. Every bad option or input is reported before
 * anything is written (exit code 2).
 */
export async function evaluate(raw: Readonly<Record<string, unknown>>): Promise<void> {
  const args = await readArguments(raw);
  const document = args.config;
  const config = evaluationConfig(document, { input: 'unused.jsonl', dir: tmpdir() });
  const backend = await selectBackend(config.backend);
  const logger = createLogger({ level: args.level, stream: 'stderr' });
  // Made at the first batch, so its rate and time left leave out writing and reading the file.
  let progress: Progress | undefined;
  const scratch = args.demo ? await mkdtemp(path.join(tmpdir(), 'supsupd-evaluate-demo-')) : undefined;
  let outcome: { report: EvaluationReport; timeline: Timeline };
  try {
    let input = args.input ?? '';
    if (args.demo) {
      input = args.demoOut ?? path.join(scratch ?? tmpdir(), 'demo.jsonl');
      const stream = { ...DEFAULT_DEMO_STREAM, recordsPerSegment: args.recordsPerSegment };
      process.stderr.write(
        `writing the demo stream (${stream.segments.length} × ${stream.recordsPerSegment} records) to ${input}\n`,
      );
      await writeDemoFile(input, stream);
    }
    process.stderr.write(
      `reading ${input} (truth field '${args.truthField}'), then the daemon learns from it\n`,
    );
    outcome = await evaluateFile({
      input,
      truthField: args.truthField,
      ...(args.labelField === undefined ? {} : { labelField: args.labelField }),
      config: document,
      logger,
      onProgress: (n, total) => {
        progress ??= new Progress();
        progress.update(n, total, `records ${n}/${total}`);
      },
    });
  } finally {
    progress?.done();
    await logger.flush();
    if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
  }
  if (args.plot !== undefined) {
    const { timeline } = outcome;
    await writeFile(
      args.plot,
      args.plot.toLowerCase().endsWith('.svg') ? timelineSvg(timeline) : timelinePng(timeline),
    );
  }
  const report = {
    command: 'evaluate',
    backend: backend.backend,
    ...outcome.report,
    plot: args.plot ?? null,
  };
  if (raw.json === true) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }
  process.stdout.write(evaluationTable(outcome.report));
  if (args.plot !== undefined) process.stdout.write(`\ntimeline plot: ${args.plot}\n`);
}

async function readArguments(raw: Readonly<Record<string, unknown>>): Promise<EvaluateArguments> {
  const r = new OptionReader(raw);
  const demo = r.flag('demo');
  const input = typeof raw.input === 'string' ? raw.input : undefined;
  if (demo === (input !== undefined)) r.problem('give either --input FILE or --demo');
  if (!demo && raw.segment !== undefined) r.problem('--segment needs --demo');
  if (!demo && raw.demoOut !== undefined) r.problem('--demo-out needs --demo');
  const recordsPerSegment = r.integer('segment', DEFAULT_DEMO_STREAM.recordsPerSegment, 64, 1_000_000);
  const truthField =
    typeof raw.truthField === 'string' ? raw.truthField : demo ? DEMO_TRUTH_FIELD : undefined;
  if (truthField === undefined)
    r.problem('--truth-field NAME is required with --input (the record field holding the true task)');
  for (const reserved of ['x', 'y', 'id']) {
    if (truthField === reserved || raw.labelField === reserved)
      r.problem(`'${reserved}' is a record field the daemon reads; it cannot be a scoring field`);
  }
  const labelField =
    typeof raw.labelField === 'string' ? raw.labelField : demo ? DEMO_CLASS_FIELD : undefined;
  const plot = typeof raw.plot === 'string' ? raw.plot : undefined;
  if (plot !== undefined) await checkPlotPath(plot, r);
  if (typeof raw.demoOut === 'string') await checkWritableDir(raw.demoOut, '--demo-out', r);
  const level = r.choice<LogLevel>('logLevel', ['error', 'warn', 'info', 'debug'], 'warn');
  const backend =
    raw.backend === undefined
      ? undefined
      : r.choice<BackendPreference>('backend', BACKEND_PREFERENCES, 'auto');
  const configPath = typeof raw.config === 'string' ? raw.config : process.env[ENVIRONMENT.config];
  const file = configPath === undefined ? {} : r.attempt(() => readConfigFile(configPath), {});
  const config = backend === undefined ? file : { ...file, backend };
  r.attempt(() => evaluationConfig(config, { input: 'unused.jsonl', dir: tmpdir() }), null);
  r.finish('evaluate');
  return {
    input,
    demo,
    demoOut: typeof raw.demoOut === 'string' ? raw.demoOut : undefined,
    recordsPerSegment,
    truthField: truthField ?? '',
    labelField,
    plot,
    config,
    level,
  };
}

async function checkPlotPath(plot: string, r: OptionReader): Promise<void> {
  const ext = path.extname(plot).toLowerCase();
  if (ext !== '.png' && ext !== '.svg') r.problem(`--plot must name a .png or .svg file (got '${plot}')`);
  await checkWritableDir(plot, '--plot', r);
}

async function checkWritableDir(file: string, option: string, r: OptionReader): Promise<void> {
  const dir = path.dirname(path.resolve(file));
  const isDir = await stat(dir).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (!isDir) r.problem(`${option}: the directory ${dir} does not exist`);
}
