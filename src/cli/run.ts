import { loadConfig } from '../config.js';
import { buildComponents } from '../daemon/components.js';
import { errorMessage } from '../errors.js';
import { selectBackend } from '../model/network/index.js';
import { createLogger } from '../ops/logger.js';
import { SupsupService } from '../ops/service.js';
import { onStopSignals } from './signals.js';

/**
 * `supsupd run`: the configured daemon with its HTTP surface and scheduled jobs. SIGTERM or SIGINT
 * drains the batch in flight, commits and exits 0; a second signal exits at once with 130.
 */
export async function run(raw: Readonly<Record<string, unknown>>): Promise<void> {
  const overrides: Record<string, unknown> = {};
  if (typeof raw.logLevel === 'string') overrides.log = { level: raw.logLevel };
  if (typeof raw.backend === 'string') overrides.backend = raw.backend;
  const config = loadConfig({ path: typeof raw.config === 'string' ? raw.config : undefined, overrides });
  const logger = createLogger({
    level: config.log.level,
    stream: config.sink.kind === 'stdout' ? 'stderr' : 'stdout',
  });
  const backend = await selectBackend(config.backend);
  logger.info('starting', {
    backend: backend.backend,
    source: config.source.kind,
    sink: config.sink.kind,
    store: config.store.kind,
    arch: config.model.hidden ?? config.model.arch ?? 'lenet',
    outputs: config.model.outputs,
    http: config.http.enabled ? `${config.http.host}:${config.http.port}` : 'off',
  });
  const components = buildComponents(config, logger);
  const service = await SupsupService.start({
    daemon: components.options,
    makeSource: components.makeSource,
    http: config.http,
    logger,
    flushLogs: logger.flush,
    describe: { backend: backend.backend, source: config.source.kind },
    jobs: config.jobs,
  });
  onStopSignals(logger, () =>
    service.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error('stop failed', { error: errorMessage(error) });
        process.exit(1);
      },
    ),
  );
  try {
    await service.run();
    logger.info('source finished', { ...service.daemon.stats });
  } finally {
    await service.stop();
  }
}
