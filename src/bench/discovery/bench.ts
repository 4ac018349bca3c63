/**
 * `supsupd bench discovery`: every stream of the suite through the daemon under each rule asked for,
 * the oracle beside it, scored per record.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runOracle, runThroughDaemon } from './run.js';
import { type StreamScore, scoreRun } from './scoring.js';
import { generateStream, type StreamSpec } from './streams.js';

export type BenchRule = 'evidence' | 'paper';

export interface DiscoveryBenchOptions {
  readonly streams: readonly StreamSpec[];
  readonly rules: readonly BenchRule[];
  /** Network seed (the streams have their own). */
  readonly seed: number;
  readonly onProgress?: (done: number, total: number, label: string) => void;
}

export interface RuleSummary {
  readonly rule: BenchRule;
  readonly streams: number;
  readonly passed: number;
  readonly exact_task_count: number;
  readonly median_ari: number;
  readonly min_ari: number;
  readonly spurious_allocations: number;
  /** Stationary streams: spurious masks per 10⁵ records. */
  readonly false_allocations_per_100k: number;
  readonly confident_results: number;
  readonly confident_correct: number;
}

export interface DiscoveryBenchReport {
  readonly scores: Readonly<Record<BenchRule, readonly StreamScore[]>>;
  readonly summary: readonly RuleSummary[];
}

export async function runDiscoveryBench(options: DiscoveryBenchOptions): Promise<DiscoveryBenchReport> {
  const scores: Record<BenchRule, StreamScore[]> = { evidence: [], paper: [] };
  const total = options.streams.length * (options.rules.length + 1);
  let done = 0;
  const work = await mkdtemp(path.join(tmpdir(), 'supsupd-discovery-'));
  try {
    for (const spec of options.streams) {
      const stream = generateStream(spec);
      options.onProgress?.(done, total, `${spec.name}: oracle`);
      const oracle = runOracle(stream, { rule: 'evidence', dir: work, seed: options.seed });
      done++;
      for (const rule of options.rules) {
        options.onProgress?.(done, total, `${spec.name}: ${rule} rule`);
        const run = await runThroughDaemon(stream, { rule, dir: path.join(work, 'run'), seed: options.seed });
        scores[rule].push(scoreRun(stream, run, oracle));
        done++;
      }
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  options.onProgress?.(total, total, 'done');
  return { scores, summary: options.rules.map((rule) => summarise(rule, scores[rule], options.streams)) };
}

function summarise(
  rule: BenchRule,
  scores: readonly StreamScore[],
  specs: readonly StreamSpec[],
): RuleSummary {
  const aris = scores.map((s) => s.ari).sort((a, b) => a - b);
  const stationary = scores.filter((_, i) => (specs[i] as StreamSpec).schedule.length === 1);
  const stationaryRecords = stationary.reduce((n, s) => n + s.records, 0);
  const confident = scores.reduce((n, s) => n + s.confident_results, 0);
  const confidentCorrect = scores.reduce((n, s) => n + s.confident_results * s.confident_correct, 0);
  return {
    rule,
    streams: scores.length,
    passed: scores.filter((s) => s.verdict === 'pass').length,
    exact_task_count: scores.filter((s) => s.tasks_found === s.true_tasks).length,
    median_ari: aris[Math.floor(aris.length / 2)] ?? 0,
    min_ari: aris[0] ?? 0,
    spurious_allocations: scores.reduce((n, s) => n + s.spurious_allocations, 0),
    false_allocations_per_100k:
      stationaryRecords === 0
        ? 0
        : (1e5 * stationary.reduce((n, s) => n + s.spurious_allocations, 0)) / stationaryRecords,
    confident_results: confident,
    confident_correct: confident === 0 ? 1 : confidentCorrect / confident,
  };
}

/** The report as a Markdown table, one row per stream and rule. */
export function discoveryTable(report: DiscoveryBenchReport): string {
  const header =
    '| stream | rule | tasks (true) | ARI | ARI unlabelled | NMI | delays (records) | spurious | returning reused | accuracy unlabelled (oracle) | task conf ≥ 0.9 correct | verdict |';
  const rows = [header, `|${' --- |'.repeat(12)}`];
  for (const rule of ['evidence', 'paper'] as const) {
    for (const s of report.scores[rule]) {
      rows.push(
        `| ${s.name} | ${rule} | ${s.tasks_found} (${s.true_tasks}) | ${s.ari.toFixed(3)} | ${s.ari_unlabelled.toFixed(3)} | ${s.nmi.toFixed(3)} | ${s.detection_delays.join(' ') || '–'} | ${s.spurious_allocations} | ${s.returning_reused === null ? '–' : s.returning_reused ? 'yes' : 'no'} | ${s.accuracy_unlabelled.toFixed(3)} (${s.oracle_accuracy_unlabelled.toFixed(3)}) | ${(100 * s.confident_correct).toFixed(1)} % of ${s.confident_results} | ${s.verdict}${s.failures.length > 0 ? `: ${s.failures.join('; ')}` : ''} |`,
      );
    }
  }
  const summary = report.summary.map(
    (r) =>
      `${r.rule}: ${r.passed}/${r.streams} streams pass, exact task count on ${r.exact_task_count}, ARI median ${r.median_ari.toFixed(3)} (min ${r.min_ari.toFixed(3)}), ${r.spurious_allocations} spurious masks, ${r.false_allocations_per_100k.toFixed(1)} false allocations per 10⁵ stationary records, task confidence ≥ 0.9 right on ${(100 * r.confident_correct).toFixed(1)} % of ${r.confident_results} results`,
  );
  return `${rows.join('\n')}\n\n${summary.join('\n')}\n`;
}
