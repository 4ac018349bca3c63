import { configSchema, ENVIRONMENT, readSecret } from '../config.js';
import { runDemo } from '../daemon/demo.js';
import { DEFAULT_DEMO_STREAM } from '../daemon/demo-stream.js';
import { BACKEND_PREFERENCES, type BackendPreference, selectBackend } from '../model/network/index.js';
import { createLogger, type LogLevel } from '../ops/logger.js';
import { SupsupService } from '../ops/service.js';
import { openStore } from '../store/index.js';
import type { MaskStore } from '../store/types.js';
import { OptionReader } from './options.js';
import { Progress } from './progress.js';
import { onStopSignals } from './signals.js';

/**
 * `supsupd demo`: the built-in stream through the real daemon. With --http-port the ops surface
 * (API, metrics, dashboard) serves while it runs, and --hold keeps it serving after the stream ends
 * until SIGINT/SIGTERM. The store is a file store in the working directory, or the Redis at
 * $SUPSUPD_REDIS_URL (namespace supsupd:demo) when that is set.
 */
export async function demo(raw: Readonly<Record<string, unknown>>): Promise<void> {
  const r = new OptionReader(raw);
  const preference = r.choice<BackendPreference>('backend', BACKEND_PREFERENCES, 'auto');
  const level = r.choice<LogLevel>('logLevel', ['error', 'warn', 'info', 'debug'], 'warn');
  const recordsPerSegment = r.integer('segment', DEFAULT_DEMO_STREAM.recordsPerSegment, 256, 1_000_000);
  const httpPort = raw.httpPort === undefined ? undefined : r.integer('httpPort', 0, 0, 65_535);
  const httpHost = typeof raw.httpHost === 'string' ? raw.httpHost : '127.0.0.1';
  const hold = raw.hold === true;
  const dir = typeof raw.dir === 'string' ? raw.dir : undefined;
  r.finish('demo');
  const backend = await selectBackend(preference);
  const logger = createLogger({ level, stream: 'stderr' });
  const progress = new Progress();
  const http = configSchema.shape.http.parse({
    enabled: httpPort !== undefined,
    host: httpHost,
    port: httpPort ?? 0,
    token: readSecret(process.env, ENVIRONMENT.httpToken),
  });
  let stopRequested = false;
  let release = () => {};
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let service: SupsupService | null = null;
  const summary = await runDemo({
    dir,
    stream: { ...DEFAULT_DEMO_STREAM, recordsPerSegment },
    logger,
    store: demoStore(),
    onProgress: (n, total) => progress.update(n, total, `records ${n}/${total}`),
    open: async (options) => {
      service = await SupsupService.start({
        daemon: options,
        http,
        logger,
        describe: { backend: backend.backend, source: 'demo' },
        jobs: configSchema.shape.jobs.parse({}),
      });
      if (service.address !== null) {
        process.stderr.write(`dashboard: http://${httpHost}:${service.address.port}/\n`);
      }
      const running = service;
      return { daemon: running.daemon, stop: () => running.stop() };
    },
    onDaemon: () => {
      onStopSignals(logger, () => {
        stopRequested = true;
        release();
        void service?.stop();
      });
    },
    hold: hold
      ? () => {
          if (!stopRequested) process.stderr.write('stream finished; serving until SIGINT/SIGTERM\n');
          return released;
        }
      : undefined,
  });
  progress.done();
  await logger.flush();
  const report = { command: 'demo', backend: backend.backend, ...summary };
  if (raw.json === true) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }
  printReport(summary, recordsPerSegment, backend.backend);
}

function demoStore(): MaskStore | undefined {
  const url = readSecret(process.env, ENVIRONMENT.redisUrl);
  if (url === undefined || url === '') return undefined;
  return openStore({ kind: 'redis', url, namespace: 'supsupd:demo', commandTimeoutMs: 2_000 });
}

function printReport(
  summary: Awaited<ReturnType<typeof runDemo>>,
  recordsPerSegment: number,
  backend: string,
): void {
  const discovered = [...new Set(Object.values(summary.contingency).flatMap((row) => Object.keys(row)))].sort(
    (a, b) => Number(a) - Number(b),
  );
  const lines = [
    `supsupd demo: ${DEFAULT_DEMO_STREAM.segments.length} segments of ${recordsPerSegment} PermutedMNIST records (true tasks ${DEFAULT_DEMO_STREAM.segments.join(', ')}), backend ${backend}`,
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
