/**
 * `supsupd evaluate`: a labelled JSONL file through the real learning path, the same daemon as
 * `supsupd run` with a file source, a file sink in a temporary directory and the memory store, the
 * configuration otherwise as given. The truth field is removed before the daemon reads a record.
 * After the stream, before the daemon stops, every record with a known class is classified again
 * under the mask it was assigned to, as that mask finally is (forgetting). Then the scores.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type DaemonConfig, parseConfig } from '../config.js';
import { buildComponents } from '../daemon/components.js';
import { Daemon } from '../daemon/daemon.js';
import { readJsonLines } from '../daemon/demo.js';
import { SupsupError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { DaemonEvent, ResultRecord } from '../records.js';
import { fileLines, type LabelledRecords, stripLabelledFile } from './labelled-file.js';
import { ProgressSource } from './progress-source.js';
import { type EvaluationScores, scoreEvaluation } from './scores.js';
import { runsOf, type Timeline } from './timeline.js';

export interface EvaluateOptions {
  readonly input: string;
  readonly truthField: string;
  readonly labelField?: string;
  /** The configuration document (as read from --config, unvalidated); source, sink, store, http and jobs are replaced. */
  readonly config: Readonly<Record<string, unknown>>;
  readonly logger: Logger;
  readonly onProgress?: (records: number, total: number) => void;
}

export interface Allocation {
  readonly task: number;
  /** Index of the record it was allocated at (among the scored records), and its line offset. */
  readonly at: number;
  readonly offset: number;
}

export interface EvaluationReport extends EvaluationScores {
  readonly input: string;
  readonly truth_field: string;
  readonly label_field: string | null;
  readonly records_in: number;
  readonly dead_letters: number;
  /** Dead letters by reason code (records the daemon refused, e.g. a field it does not know). */
  readonly dead_letter_reasons: Readonly<Record<string, number>>;
  readonly true_task_names: readonly string[];
  readonly allocations: readonly Allocation[];
  /** The learning settings the daemon ran with (from the configuration). */
  readonly configuration: EvaluatedConfiguration;
  readonly seconds: number;
}

export interface EvaluatedConfiguration {
  readonly rule: string;
  readonly micro_batch: number;
  readonly network: string;
  readonly outputs: number;
  readonly seed: number;
  readonly standardise: string;
}

function configurationOf(config: DaemonConfig): EvaluatedConfiguration {
  const { model } = config;
  const standardise = model.input.standardise;
  return {
    rule: config.discovery.rule,
    micro_batch: config.batch.size,
    network:
      model.hidden === undefined ? (model.arch ?? 'lenet') : `${model.inputs}-${model.hidden.join('-')}`,
    outputs: model.outputs,
    seed: model.seed,
    standardise: typeof standardise === 'string' ? standardise : 'given',
  };
}

/**
 * The daemon configuration of an evaluation: the document's model, discovery, batch and backend
 * settings; a file source over `input`, a file sink and checkpoint under `dir`, the memory store, no
 * HTTP, no jobs. E_CONFIG lists every problem of the document.
 */
export function evaluationConfig(
  document: Readonly<Record<string, unknown>>,
  files: { readonly input: string; readonly dir: string },
): DaemonConfig {
  return parseConfig({
    ...document,
    source: { kind: 'file', path: files.input, checkpoint: path.join(files.dir, 'checkpoint.json') },
    sink: { kind: 'file', dir: path.join(files.dir, 'out') },
    store: { kind: 'memory' },
    http: { enabled: false },
    jobs: { enabled: false },
  });
}

/** Rows classified again in one call. */
const RECLASSIFY_CHUNK = 512;

export async function evaluateFile(
  options: EvaluateOptions,
): Promise<{ report: EvaluationReport; timeline: Timeline }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'supsupd-evaluate-'));
  try {
    const stripped = path.join(dir, 'stream.jsonl');
    const out = path.join(dir, 'out');
    const labelled = await stripLabelledFile({
      input: options.input,
      output: stripped,
      truthField: options.truthField,
      ...(options.labelField === undefined ? {} : { labelField: options.labelField }),
    });
    const config = evaluationConfig(options.config, { input: stripped, dir });
    const started = performance.now();
    const components = buildComponents(config, options.logger);
    const daemon = await Daemon.open(components.options);
    let results: Map<number, ResultRecord>;
    let final: Map<number, number>;
    let deadLetters: DeadLetterLine[];
    try {
      const total = labelled.offsets.length;
      options.onProgress?.(0, total);
      const source = new ProgressSource(await components.makeSource(), (n) => options.onProgress?.(n, total));
      await daemon.run(source);
      results = await readResults(path.join(out, 'results.jsonl'));
      deadLetters = await readJsonLines<DeadLetterLine>(path.join(out, 'dead-letters.jsonl'));
      if (results.size === 0) throw nothingLearned(options.input, deadLetters);
      final = await reclassify(daemon, stripped, labelled, results);
    } finally {
      await daemon.stop();
    }
    const seconds = (performance.now() - started) / 1000;
    const events = await readJsonLines<DaemonEvent>(path.join(out, 'events.jsonl'));
    const run = { results, final, events, deadLetters, configuration: configurationOf(config), seconds };
    return assemble(options, labelled, run);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** What the run left: results and re-classified predictions by line offset, events, dead letters. */
interface RunOutcome {
  readonly results: ReadonlyMap<number, ResultRecord>;
  readonly final: ReadonlyMap<number, number>;
  readonly events: readonly DaemonEvent[];
  readonly deadLetters: readonly DeadLetterLine[];
  readonly configuration: EvaluatedConfiguration;
  readonly seconds: number;
}

/** The fields of a dead-letters.jsonl line that an evaluation reads. */
interface DeadLetterLine {
  readonly reason: string;
  readonly detail: string;
  readonly source: { readonly offset: string };
}

function nothingLearned(input: string, letters: readonly DeadLetterLine[]): SupsupError {
  const first = letters[0];
  const why =
    first === undefined
      ? ''
      : `: all ${letters.length} were dead-lettered, the first (line ${Number(first.source.offset) + 1}) with ${first.reason}: ${first.detail}`;
  return new SupsupError('E_BAD_ARGUMENT', `no record of ${input} reached the learner${why}`, {
    details: { file: input, deadLetters: letters.length },
  });
}

function assemble(
  options: EvaluateOptions,
  labelled: LabelledRecords,
  outcome: RunOutcome,
): { report: EvaluationReport; timeline: Timeline } {
  const { results, final, events } = outcome;
  const input = {
    truth: [] as number[],
    found: [] as number[],
    classes: [] as number[],
    labelled: [] as boolean[],
  };
  const predictions = { live: [] as number[], final: [] as number[] };
  const ordinal = new Map<number, number>();
  labelled.offsets.forEach((offset, i) => {
    const result = results.get(offset);
    if (result === undefined) return;
    ordinal.set(offset, input.truth.length);
    input.truth.push(labelled.truth[i] as number);
    input.found.push(result.task);
    input.classes.push(labelled.classes[i] as number);
    input.labelled.push(labelled.labelled[i] === true);
    predictions.live.push(result.prediction);
    predictions.final.push(final.get(offset) ?? -1);
  });
  const scores = scoreEvaluation({ ...input, ...predictions, trueTaskNames: labelled.trueTaskNames });
  const allocations: Allocation[] = [];
  for (const event of events) {
    if (event.type !== 'task_discovered') continue;
    const offset = Number(event.at.offset);
    const at = ordinal.get(offset);
    if (at !== undefined) allocations.push({ task: event.task, at, offset });
  }
  const report: EvaluationReport = {
    input: options.input,
    truth_field: options.truthField,
    label_field: options.labelField ?? null,
    records_in: labelled.offsets.length,
    dead_letters: labelled.offsets.length - scores.records,
    dead_letter_reasons: reasonCounts(outcome.deadLetters),
    true_task_names: labelled.trueTaskNames,
    ...scores,
    allocations,
    configuration: outcome.configuration,
    seconds: outcome.seconds,
  };
  return { report, timeline: timelineOf(input.truth, input.found, report) };
}

function timelineOf(truth: readonly number[], found: readonly number[], report: EvaluationReport): Timeline {
  const foundColour: Record<string, number> = {};
  let spare = report.true_task_names.length;
  for (const f of report.forgetting) {
    const index = report.true_task_names.indexOf(f.true_task);
    if (foundColour[f.mask] === undefined) foundColour[f.mask] = index;
  }
  for (const t of report.tasks) if (foundColour[t.task] === undefined) foundColour[t.task] = spare++;
  return {
    records: truth.length,
    truth: runsOf(truth),
    found: runsOf(found),
    allocations: report.allocations.map(({ at, task }) => ({ at, task })),
    trueTaskNames: report.true_task_names,
    foundColour,
    title: `${path.basename(report.input)}: ${report.records} records, ${report.true_tasks} true tasks, ${report.discovered_tasks} discovered, ARI ${report.ari.toFixed(4)}`,
  };
}

/**
 * Each record with a known class and a result, classified under its assigned task's final mask:
 * offset → predicted class. Reads the stripped file again, so no record's vector is kept meanwhile.
 */
async function reclassify(
  daemon: Daemon,
  file: string,
  labelled: LabelledRecords,
  results: ReadonlyMap<number, ResultRecord>,
): Promise<Map<number, number>> {
  const known = new Set(labelled.offsets.filter((_, i) => (labelled.classes[i] as number) >= 0));
  const inputs = daemon.model.arch.inputs;
  const predictions = new Map<number, number>();
  const pending = new Map<number, { offsets: number[]; x: Float32Array }>();
  const flush = (task: number) => {
    const group = pending.get(task);
    if (group === undefined || group.offsets.length === 0) return;
    const rows = group.offsets.length;
    const classified = daemon.classifyUnder(group.x.subarray(0, rows * inputs), rows, task);
    group.offsets.forEach((offset, j) => {
      predictions.set(offset, classified.predictions[j] as number);
    });
    group.offsets = [];
  };
  let line = -1;
  for await (const bytes of fileLines(file)) {
    line++;
    const result = results.get(line);
    if (result === undefined || !known.has(line)) continue;
    const x = (JSON.parse(bytes.toString('utf8')) as { x: number[] }).x;
    const group = pending.get(result.task) ?? { offsets: [], x: new Float32Array(RECLASSIFY_CHUNK * inputs) };
    pending.set(result.task, group);
    group.x.set(x, group.offsets.length * inputs);
    group.offsets.push(line);
    if (group.offsets.length === RECLASSIFY_CHUNK) flush(result.task);
  }
  for (const task of pending.keys()) flush(task);
  return predictions;
}

function reasonCounts(letters: readonly DeadLetterLine[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const letter of letters) counts[letter.reason] = (counts[letter.reason] ?? 0) + 1;
  return counts;
}

/** The file sink's results by line offset (the file source's offsets are line numbers). */
async function readResults(file: string): Promise<Map<number, ResultRecord>> {
  const byOffset = new Map<number, ResultRecord>();
  for (const result of await readJsonLines<ResultRecord>(file))
    byOffset.set(Number(result.source.offset), result);
  return byOffset;
}
