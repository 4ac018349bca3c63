import type { Logger } from '../logger.js';

/**
 * SIGTERM/SIGINT call `stop` once (drain, commit, exit); a second signal exits at once with 130.
 */
export function onStopSignals(logger: Logger, stop: (signal: NodeJS.Signals) => void): void {
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      logger.error(`${signal} again: exiting without draining`);
      process.exit(130);
    }
    logger.warn(`${signal}: draining and stopping`);
    stop(signal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
