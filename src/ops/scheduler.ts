/**
 * Scheduled maintenance jobs (node-cron), one at a time per job across every replica that shares the store.
 *
 * Each run of a job, scheduled or asked for with runNow():
 *   1. is skipped (`skipped_running`) if the same job is still running in this process (node-cron's noOverlap covers
 *      scheduled ticks, a flag covers runNow),
 *   2. takes the store lock `job:<name>` for `lockTtlMs`, or is skipped (`skipped_locked`) when another replica
 *      holds it,
 *   3. renews the lease every ttl/3 while the job runs; a lease that cannot be renewed (lost to another holder, or
 *      not confirmed for a whole ttl) aborts the job's AbortSignal,
 *   4. releases the lease when the job ends, and is logged and reported through `onRun`.
 *
 * The lock is a lease: it keeps two replicas apart as long as a job stops when its signal aborts. A killed replica's
 * lease expires after the ttl, and the next tick of another replica takes the job over.
 */
import cron, { type Logger as CronLogger, type ScheduledTask } from 'node-cron';
import { errorMessage, SupsupError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Lease, MaskStore } from '../store/types.js';

export type JobOutcome = 'ok' | 'failed' | 'skipped_locked' | 'skipped_running';

export interface JobContext {
  readonly job: string;
  /** 'scheduled' (a cron tick) or 'manual' (runNow). */
  readonly trigger: JobTrigger;
  /** Aborted when the scheduler stops or the job's lease is lost: stop soon, leave nothing half-done. */
  readonly signal: AbortSignal;
  /** Logs with `job` set. */
  readonly logger: Logger;
}

export type JobTrigger = 'scheduled' | 'manual';

export interface JobDefinition {
  /** `^[A-Za-z0-9_.-]{1,64}$`; names the lock (`job:<name>`), the logs and the metrics label. */
  readonly name: string;
  /** node-cron expression (a leading seconds field is optional). */
  readonly cron: string;
  /** Resolves with a one-line detail for the log (e.g. "checked 12 masks"); a throw makes the run 'failed'. */
  // biome-ignore lint/suspicious/noConfusingVoidType: a job with nothing to report is a plain `async` function
  run(context: JobContext): Promise<string | void>;
}

/** One attempt to run a job, as logged and passed to `onRun`. */
export interface JobRun {
  readonly job: string;
  readonly trigger: JobTrigger;
  readonly outcome: JobOutcome;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly seconds: number;
  readonly detail: string;
}

export interface JobStatus {
  readonly name: string;
  readonly cron: string;
  /** Runs that held the lock and executed the job (ok or failed). */
  readonly runs: number;
  readonly failures: number;
  /** Attempts skipped: the lock was held elsewhere, or the job was still running here. */
  readonly skipped: number;
  readonly running: boolean;
  /** The last attempt, whatever its outcome. */
  readonly lastRun: {
    readonly startedAt: string;
    readonly finishedAt: string;
    readonly outcome: JobOutcome;
    readonly detail: string;
  } | null;
}

export interface SchedulerOptions {
  readonly store: MaskStore;
  readonly logger: Logger;
  /** Lease of the job lock; renewed every third of it while a job runs. */
  readonly lockTtlMs: number;
  /** Called after every attempt (metrics); a throw is logged and ignored. */
  readonly onRun?: (run: JobRun) => void;
}

interface LeaseKeeper {
  stop(): void;
  /** Settles when no renewal is in flight. */
  readonly settled: Promise<void>;
}

const JOB_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const DEFAULT_STOP_TIMEOUT_MS = 10_000;

interface JobEntry {
  readonly definition: JobDefinition;
  task: ScheduledTask | null;
  running: Promise<JobRun> | null;
  controller: AbortController | null;
  /** Renews the lease of the running run. */
  keeper: LeaseKeeper | null;
  runs: number;
  failures: number;
  skipped: number;
  lastRun: JobStatus['lastRun'];
}

export class Scheduler {
  private readonly options: SchedulerOptions;
  private readonly log: Logger;
  private readonly jobs = new Map<string, JobEntry>();
  private state: 'new' | 'started' | 'stopped' = 'new';
  private stopping: Promise<void> | null = null;

  constructor(options: SchedulerOptions) {
    const ttl = options.lockTtlMs;
    if (!Number.isInteger(ttl) || ttl < 3) {
      throw new SupsupError('E_CONFIG', `jobs.lockTtlMs must be an integer of at least 3 ms, got ${ttl}`);
    }
    this.options = options;
    this.log = options.logger.child({ component: 'scheduler' });
  }

  /** Adds a job (the hook for further maintenance jobs); scheduled at once when the scheduler runs. */
  register(definition: JobDefinition): void {
    if (this.state === 'stopped') throw new SupsupError('E_STOPPED', 'the scheduler was stopped');
    const { name } = definition;
    if (typeof name !== 'string' || !JOB_NAME.test(name)) {
      throw new SupsupError(
        'E_BAD_ARGUMENT',
        `job name ${JSON.stringify(name)} must match ${JOB_NAME.source}`,
      );
    }
    if (this.jobs.has(name)) throw new SupsupError('E_BAD_ARGUMENT', `job ${name} is registered twice`);
    if (typeof definition.cron !== 'string' || !cron.validate(definition.cron)) {
      throw new SupsupError(
        'E_CONFIG',
        `job ${name}: ${JSON.stringify(definition.cron)} is not a valid cron expression`,
      );
    }
    const entry: JobEntry = {
      definition,
      task: null,
      running: null,
      controller: null,
      keeper: null,
      runs: 0,
      failures: 0,
      skipped: 0,
      lastRun: null,
    };
    this.jobs.set(name, entry);
    if (this.state === 'started') this.schedule(entry);
  }

  /** Starts the cron triggers. Idempotent; refused after stop(). */
  start(): void {
    if (this.state === 'stopped') throw new SupsupError('E_STOPPED', 'the scheduler was stopped');
    if (this.state === 'started') return;
    this.state = 'started';
    for (const entry of this.jobs.values()) this.schedule(entry);
    this.log.info('scheduler started', {
      jobs: [...this.jobs.values()].map((e) => `${e.definition.name} (${e.definition.cron})`),
    });
  }

  /**
   * Runs a job now (admin endpoint), under the same lock and no-overlap rules as a scheduled run; resolves with the
   * attempt (never rejects for a job failure). E_JOB_UNKNOWN for a name not registered, E_STOPPED after stop().
   */
  async runNow(name: string): Promise<JobRun> {
    const entry = this.jobs.get(name);
    if (entry === undefined) {
      throw new SupsupError('E_JOB_UNKNOWN', `no job named ${JSON.stringify(name)}`, {
        details: { job: name },
      });
    }
    if (this.state === 'stopped') throw new SupsupError('E_STOPPED', 'the scheduler was stopped');
    return this.attempt(entry, 'manual');
  }

  status(): JobStatus[] {
    return [...this.jobs.values()].map((entry) => ({
      name: entry.definition.name,
      cron: entry.definition.cron,
      runs: entry.runs,
      failures: entry.failures,
      skipped: entry.skipped,
      running: entry.running !== null,
      lastRun: entry.lastRun === null ? null : { ...entry.lastRun },
    }));
  }

  /**
   * Stops the triggers, aborts running jobs (their signal) and waits for them to settle, at most `timeoutMs`
   * (default 10 s). A job still running then is left to finish on its own: its lease is no longer renewed, so it
   * expires within the ttl. Idempotent: later calls wait for the first.
   */
  stop(options: { timeoutMs?: number } = {}): Promise<void> {
    this.stopping ??= this.doStop(options.timeoutMs ?? DEFAULT_STOP_TIMEOUT_MS);
    return this.stopping;
  }

  // -------------------------------------------------------------------------------------------------------------

  private async doStop(timeoutMs: number): Promise<void> {
    this.state = 'stopped';
    const running: Promise<JobRun>[] = [];
    for (const entry of this.jobs.values()) {
      entry.task?.destroy();
      entry.task = null;
      if (entry.running !== null) running.push(entry.running);
      entry.controller?.abort(new SupsupError('E_STOPPED', 'the scheduler is stopping'));
    }
    if (running.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      Promise.allSettled(running).then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), timeoutMs);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      for (const entry of this.jobs.values()) entry.keeper?.stop();
      this.log.warn('jobs still running after the stop deadline; their leases will expire', {
        jobs: [...this.jobs.values()].filter((e) => e.running !== null).map((e) => e.definition.name),
        timeoutMs,
      });
    }
  }

  private schedule(entry: JobEntry): void {
    const name = entry.definition.name;
    const task = cron.createTask(entry.definition.cron, () => this.attempt(entry, 'scheduled'), {
      name: `supsupd:${name}`,
      noOverlap: true,
      unref: true,
      logger: this.cronLogger(name),
    });
    // A tick while the previous scheduled run still runs: node-cron skips it; count and report it.
    task.on('execution:overlap', () => {
      const now = new Date();
      this.finish(entry, 'scheduled', now, 'skipped_running', 'the previous run is still running');
    });
    task.on('execution:missed', (context) => {
      this.log.warn('job missed its slot (event loop blocked?)', {
        job: name,
        slot: context.date.toISOString(),
      });
    });
    entry.task = task;
    void task.start();
  }

  /** node-cron's own messages: its overlap warning is reported as skipped_running instead. */
  private cronLogger(job: string): CronLogger {
    const text = (message: string | Error) => (message instanceof Error ? message.message : message);
    return {
      info: (message) => this.log.debug(message, { job }),
      warn: (message) => this.log.debug(message, { job }),
      error: (message, error) => this.log.error(text(message), { job, error: error?.message }),
      debug: (message) => this.log.debug(text(message), { job }),
    };
  }

  /** One attempt; never rejects. */
  private attempt(entry: JobEntry, trigger: JobTrigger): Promise<JobRun> {
    if (entry.running !== null) {
      return Promise.resolve(
        this.finish(entry, trigger, new Date(), 'skipped_running', 'the previous run is still running'),
      );
    }
    const run = this.execute(entry, trigger).finally(() => {
      entry.running = null;
      entry.controller = null;
    });
    entry.running = run;
    return run;
  }

  private async execute(entry: JobEntry, trigger: JobTrigger): Promise<JobRun> {
    const name = entry.definition.name;
    const startedAt = new Date();
    const ttl = this.options.lockTtlMs;
    let lease: Lease | null;
    try {
      lease = await this.options.store.acquireLock(`job:${name}`, ttl);
    } catch (error) {
      return this.finish(
        entry,
        trigger,
        startedAt,
        'failed',
        `could not take the job lock: ${errorMessage(error)}`,
      );
    }
    if (lease === null) {
      return this.finish(
        entry,
        trigger,
        startedAt,
        'skipped_locked',
        `job:${name} is held by another replica`,
      );
    }
    const controller = new AbortController();
    entry.controller = controller;
    if (this.state === 'stopped') controller.abort(new SupsupError('E_STOPPED', 'the scheduler is stopping'));
    const keeper = this.keepLease(lease, name, controller);
    entry.keeper = keeper;
    let outcome: JobOutcome;
    let detail: string;
    try {
      const result = await entry.definition.run({
        job: name,
        trigger,
        signal: controller.signal,
        logger: this.options.logger.child({ job: name }),
      });
      outcome = 'ok';
      detail = typeof result === 'string' ? result : '';
      if (controller.signal.aborted) {
        outcome = 'failed';
        detail = `aborted: ${errorMessage(controller.signal.reason)}`;
      }
    } catch (error) {
      outcome = 'failed';
      detail = controller.signal.aborted
        ? `aborted: ${errorMessage(controller.signal.reason)} (${errorMessage(error)})`
        : errorMessage(error);
    }
    keeper.stop();
    entry.keeper = null;
    await keeper.settled;
    try {
      await lease.release();
    } catch (error) {
      this.log.warn('could not release the job lock; it expires on its own', {
        job: name,
        error: errorMessage(error),
      });
    }
    return this.finish(entry, trigger, startedAt, outcome, detail);
  }

  /**
   * Renews `lease` every ttl/3 until stopped. Aborts `controller` when the lease is lost (renew answers false) or has
   * not been confirmed for a whole ttl (store unreachable).
   */
  private keepLease(lease: Lease, job: string, controller: AbortController): LeaseKeeper {
    const ttl = this.options.lockTtlMs;
    let confirmed = Date.now();
    let timer: NodeJS.Timeout | undefined;
    let stopped = false;
    let inFlight: Promise<void> = Promise.resolve();
    const lost = (why: string) => {
      this.log.warn('job lease lost; aborting the job', { job, why });
      controller.abort(new SupsupError('E_STORE_CONFLICT', `the job lease was lost (${why})`));
      stopped = true;
    };
    const tick = async () => {
      try {
        if (await lease.renew()) confirmed = Date.now();
        else return lost('another holder has it, or it expired');
      } catch (error) {
        this.log.warn('job lease renewal failed', { job, error: errorMessage(error) });
      }
      if (Date.now() - confirmed >= ttl) return lost(`not renewed for ${ttl} ms`);
    };
    const arm = () => {
      if (stopped) return;
      timer = setTimeout(
        () => {
          inFlight = tick().finally(arm);
        },
        Math.floor(ttl / 3),
      );
      // Not unref'd: a running job is work in progress (its end, or stop(), ends the renewals).
    };
    arm();
    return {
      stop: () => {
        stopped = true;
        clearTimeout(timer);
      },
      get settled() {
        return inFlight;
      },
    };
  }

  private finish(
    entry: JobEntry,
    trigger: JobTrigger,
    startedAt: Date,
    outcome: JobOutcome,
    detail: string,
  ): JobRun {
    const finishedAt = new Date();
    const run: JobRun = {
      job: entry.definition.name,
      trigger,
      outcome,
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      seconds: (finishedAt.getTime() - startedAt.getTime()) / 1000,
      detail,
    };
    if (outcome === 'ok' || outcome === 'failed') entry.runs++;
    if (outcome === 'failed') entry.failures++;
    if (outcome === 'skipped_locked' || outcome === 'skipped_running') entry.skipped++;
    entry.lastRun = { startedAt: run.startedAt, finishedAt: run.finishedAt, outcome, detail };
    const fields = { job: run.job, trigger, outcome, seconds: run.seconds, detail };
    if (outcome === 'failed') this.log.error('job failed', fields);
    else this.log.info(outcome === 'ok' ? 'job finished' : 'job skipped', fields);
    try {
      this.options.onRun?.(run);
    } catch (error) {
      this.log.warn('onRun callback failed', { job: run.job, error: errorMessage(error) });
    }
    return run;
  }
}
