/** The readable form of an evaluation report (what `supsupd evaluate` prints without --json). */
import type { EvaluationReport } from './evaluate.js';

const percent = (value: number | null): string => (value === null ? '–' : `${(value * 100).toFixed(1)} %`);

function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0)))
      .join('  ');
  return [line(header), widths.map((w) => '─'.repeat(w)).join('  '), ...rows.map(line)];
}

function deadLetterReasons(report: EvaluationReport): string {
  const reasons = Object.entries(report.dead_letter_reasons);
  return reasons.length === 0 ? '' : `: ${reasons.map(([reason, n]) => `${n} ${reason}`).join(', ')}`;
}

export function evaluationTable(report: EvaluationReport): string {
  const c = report.configuration;
  const found = report.tasks.map((t) => String(t.task));
  const confusion = table(
    ['true \\ discovered', ...found],
    report.true_task_names.map((name) => [
      name,
      ...found.map((f) => String(report.confusion[name]?.[f] ?? '')),
    ]),
  );
  const tasks = table(
    ['discovered task', 'records', 'mostly true task', 'scored', 'accuracy (live)'],
    report.tasks.map((t) => [
      String(t.task),
      String(t.records),
      t.mostly,
      String(t.scored),
      percent(t.accuracy),
    ]),
  );
  const changes = table(
    ['change at record', 'true task', 'detection delay'],
    report.changes.map((c) => [
      String(c.at),
      `${c.from} → ${c.to}`,
      c.detected ? `${c.delay} records` : `not detected (${c.delay} records)`,
    ]),
  );
  const points = (value: number | null) => (value === null ? '–' : `${(value * 100).toFixed(1)} pt`);
  const forgetting = table(
    [
      'true task',
      'mask',
      'scored',
      'live',
      'final',
      'forgetting',
      'unlabelled',
      'live',
      'final',
      'forgetting',
    ],
    report.forgetting.map((f) => [
      f.true_task,
      String(f.mask),
      String(f.all.scored),
      percent(f.all.live_accuracy),
      percent(f.all.final_accuracy),
      points(f.all.forgetting),
      String(f.unlabelled.scored),
      percent(f.unlabelled.live_accuracy),
      percent(f.unlabelled.final_accuracy),
      points(f.unlabelled.forgetting),
    ]),
  );
  const lines = [
    `supsupd evaluate: ${report.input} (truth field '${report.truth_field}'${report.label_field === null ? '' : `, class field '${report.label_field}'`})`,
    '',
    `records in / scored     ${report.records_in} / ${report.records} (${report.dead_letters} dead-lettered${deadLetterReasons(report)})`,
    `tasks true / discovered ${report.true_tasks} / ${report.discovered_tasks} (spurious allocations: ${report.spurious_allocations})`,
    `ARI / NMI               ${report.ari.toFixed(4)} / ${report.nmi.toFixed(4)}`,
    `accuracy live / final   ${percent(report.live_accuracy)} / ${percent(report.final_accuracy)}`,
    `allocations at record   ${report.allocations.map((a) => `${a.at} (task ${a.task})`).join(', ') || '–'}`,
    `configuration           rule ${c.rule}, micro-batch ${c.micro_batch}, ${c.network} with ${c.outputs} outputs, seed ${c.seed}, standardise ${c.standardise}`,
    `time                    ${report.seconds.toFixed(1)} s`,
    '',
    'Confusion (records):',
    ...confusion,
    '',
    ...tasks,
    '',
    ...(report.changes.length === 0 ? ['No true task change.'] : changes),
    '',
    'Forgetting: each record re-classified under its assigned mask as it finally is, against its live',
    'prediction; all records with a known class, then those sent without y (never trained on):',
    ...forgetting,
  ];
  return `${lines.join('\n')}\n`;
}
