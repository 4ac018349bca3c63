import { loadConfig } from '../config.js';
import { buildComponents } from '../daemon/components.js';
import { Daemon } from '../daemon/daemon.js';
import { errorMessage } from '../errors.js';
import { selectBackend } from '../model/backend.js';
import { createLogger } from '../ops/logger.js';

/**
 * `supsupd run`: the configured daemon. SIGTERM or SIGINT drains the batch in flight, commits and
 * exits 0; a second signal exits at once with 130.
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
  });
  const components = buildComponents(config, logger);
  const daemon = await Daemon.open(components.options);
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      logger.error(`${signal} again: exiting without draining`);
      process.exit(130);
    }
    logger.info(`${signal}: draining`, {});
    daemon.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error('stop failed', { error: errorMessage(error) });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    await daemon.run(await components.makeSource());
  } finally {
    await daemon.stop();
  }
  logger.info('source finished', { ...daemon.stats });
}
