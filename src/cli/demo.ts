import { runDemo } from '../daemon/demo.js';
import { DEFAULT_DEMO_STREAM } from '../daemon/demo-stream.js';
import { BACKEND_PREFERENCES, type BackendPreference, selectBackend } from '../model/backend.js';
import { createLogger, type LogLevel } from '../ops/logger.js';
import { OptionReader } from './options.js';
import { Progress } from './progress.js';

export async function demo(raw: Readonly<Record<string, unknown>>): Promise<void> {
  const r = new OptionReader(raw);
  const preference = r.choice<BackendPreference>('backend', BACKEND_PREFERENCES, 'auto');
  const level = r.choice<LogLevel>('logLevel', ['error', 'warn', 'info', 'debug'], 'warn');
  const recordsPerSegment = r.integer('segment', DEFAULT_DEMO_STREAM.recordsPerSegment, 256, 1_000_000);
  const dir = typeof raw.dir === 'string' ? raw.dir : undefined;
  r.finish('demo');
  const backend = await selectBackend(preference);
  const logger = createLogger({ level, stream: 'stderr' });
  const progress = new Progress();
  let stopRequested = false;
  const summary = await runDemo({
    dir,
    stream: { ...DEFAULT_DEMO_STREAM, recordsPerSegment },
    logger,
    onProgress: (n, total) => progress.update(n, total, `records ${n}/${total}`),
    onDaemon: (daemon) => {
      const stop = (signal: string) => {
        if (stopRequested) return;
        stopRequested = true;
        logger.warn(`${signal}: draining and stopping`);
        void daemon.stop();
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
    },
  });
  progress.done();
  const report = { command: 'demo', backend: backend.backend, ...summary };
  if (raw.json === true) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }
  const discovered = [...new Set(Object.values(summary.contingency).flatMap((row) => Object.keys(row)))].sort(
    (a, b) => Number(a) - Number(b),
  );
  const lines = [
    `supsupd demo: ${DEFAULT_DEMO_STREAM.segments.length} segments of ${recordsPerSegment} PermutedMNIST records (true tasks ${DEFAULT_DEMO_STREAM.segments.join(', ')}), backend ${backend.backend}`,
    '',
    `true task │ ${discovered.map((d) => `found ${d}`.padStart(9)).join(' ')}`,
    `──────────┼${'─'.repeat(10 * discovered.length)}`,
    ...Object.entries(summary.contingency).map(
      ([t, row]) => `${t.padStart(9)} │ ${discovered.map((d) => String(row[d] ?? '').padStart(9)).join(' ')}`,
    ),
    '',
    `records in / out        ${summary.records_in} / ${summary.records_out} (${summary.dead_letters} dead-lettered)`,
    `tasks true / discovered ${summary.true_tasks} / ${summary.discovered_tasks} (spurious allocations: ${summary.spurious_allocations})`,
    `adjusted Rand index     ${summary.adjusted_rand_index.toFixed(4)}`,
    `returning task          ${summary.returning_task_recognised ? 'recognised, no new mask' : 'NOT recognised'}`,
    `detection delay         ${summary.detection_delays.join(', ')} records after each change`,
    `full checks             ${summary.checks}`,
    `time                    ${summary.seconds.toFixed(1)} s; files in ${summary.dir}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}
