/**
 * The daemon's maintenance jobs, built from the `jobs` config section, and the scheduler that runs them.
 */
import type { DaemonConfig } from '../../config.js';
import type { Logger } from '../../logger.js';
import type { MaskStore } from '../../store/types.js';
import { type JobDefinition, type JobRun, Scheduler } from '../scheduler.js';
import { eventRetentionJob } from './event-retention.js';
import { integrityJob } from './integrity.js';
import { snapshotJob } from './snapshot.js';

export type JobsConfig = DaemonConfig['jobs'];

/** The enabled jobs of `config` (none when `jobs.enabled` is false). A snapshot job needs `jobs.snapshot.dir`. */
export function defaultJobs(
  config: JobsConfig,
  dependencies: { readonly store: MaskStore; readonly logger: Logger },
): JobDefinition[] {
  if (!config.enabled) return [];
  const { store, logger } = dependencies;
  const jobs: JobDefinition[] = [];
  if (config.integrity.enabled) jobs.push(integrityJob(store, config.integrity.cron));
  if (config.snapshot.enabled) {
    if (config.snapshot.dir === undefined) {
      logger.info('snapshot job not scheduled: jobs.snapshot.dir is not set', { job: 'snapshot' });
    } else {
      jobs.push(
        snapshotJob(store, config.snapshot.cron, { dir: config.snapshot.dir, keep: config.snapshot.keep }),
      );
    }
  }
  if (config.eventRetention.enabled) {
    jobs.push(
      eventRetentionJob(store, {
        cron: config.eventRetention.cron,
        maxAgeDays: config.eventRetention.maxAgeDays,
        maxEvents: config.eventRetention.maxEvents,
      }),
    );
  }
  return jobs;
}

/**
 * A scheduler with the config's jobs registered, not started: call start() when the daemon runs and stop() before
 * the store closes. More jobs can be added with register().
 */
export function createScheduler(
  config: Pick<DaemonConfig, 'jobs'>,
  store: MaskStore,
  logger: Logger,
  onRun?: (run: JobRun) => void,
): Scheduler {
  const scheduler = new Scheduler({ store, logger, lockTtlMs: config.jobs.lockTtlMs, onRun });
  for (const job of defaultJobs(config.jobs, { store, logger })) scheduler.register(job);
  return scheduler;
}

export { type EventRetentionOptions, eventRetentionJob } from './event-retention.js';
export { checkIntegrity, type IntegrityReport, integrityJob } from './integrity.js';
export { readStoreMasks, type StoreMasks } from './masks.js';
export {
  type LoadedSnapshot,
  listSnapshots,
  readSnapshot,
  SNAPSHOT_FORMAT,
  SNAPSHOT_FORMAT_VERSION,
  type SnapshotFile,
  type SnapshotManifest,
  type SnapshotOptions,
  type SnapshotResult,
  snapshotJob,
  writeSnapshot,
} from './snapshot.js';
