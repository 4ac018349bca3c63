import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import type { DaemonConfig } from '../config.js';
import { Daemon, type DaemonOptions } from '../daemon/daemon.js';
import type { SourceContext } from '../daemon/line-sources.js';
import { observers } from '../daemon/telemetry.js';
import { errorMessage, SupsupError } from '../errors.js';
import type { Logger } from '../logger.js';
import { popcount } from '../model/bank/mask-layout.js';
import type { StoredEvent } from '../store/types.js';
import type { Source } from '../stream/types.js';
import { Activity } from './activity.js';
import type { ApiInferResponse, ApiStatus, ApiTask } from './api-types.js';
import { type OpsViews, opsRoutes } from './http/routes.js';
import { HttpServer } from './http/server.js';
import { createScheduler } from './jobs/index.js';
import { DaemonMetrics } from './metrics.js';
import type { JobRun, JobStatus, Scheduler } from './scheduler.js';

export interface ServiceOptions {
  readonly daemon: Omit<DaemonOptions, 'observer'>;
  /** Builds the source once the daemon's state is restored (run() needs it). */
  readonly makeSource?: (context: SourceContext) => Promise<Source>;
  readonly http: DaemonConfig['http'];
  readonly logger: Logger;
  /** Flushes the logs; called last by stop(). */
  readonly flushLogs?: () => Promise<void>;
  readonly describe: { readonly backend: string; readonly source: string };
  /** The scheduled jobs (config.jobs); none when absent or disabled. */
  readonly jobs?: DaemonConfig['jobs'];
}

/** supsupd's version, read from package.json once. */
const VERSION = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;

/**
 * One running supsupd: the daemon, its HTTP surface and its scheduled jobs, with one start order and
 * one stop order. Start: store and state → HTTP (live; not ready yet) → jobs → source. Stop
 * (idempotent, bounded by the daemon's stopTimeoutMs): readiness false → jobs finish → source drains
 * and commits → sink flushes → store closes → HTTP closes → logs flush.
 */
export class SupsupService implements OpsViews {
  readonly daemon: Daemon;
  readonly activity: Activity;
  private readonly metricsRegistry: DaemonMetrics;
  private readonly options: ServiceOptions;
  private readonly startedAt = new Date();
  private http: HttpServer | null = null;
  private jobRunner: Scheduler | null = null;
  private summaryTimer: NodeJS.Timeout | null = null;
  private stopping: Promise<void> | null = null;
  private lastReady = false;
  private readonly densities = new Map<number, { version: number; density: number }>();

  private constructor(options: ServiceOptions, daemon: Daemon, metrics: DaemonMetrics, activity: Activity) {
    this.options = options;
    this.daemon = daemon;
    this.metricsRegistry = metrics;
    this.activity = activity;
  }

  /** Opens the store and restores state, then starts HTTP and the jobs; the source starts in run(). */
  static async start(options: ServiceOptions): Promise<SupsupService> {
    let service: SupsupService | null = null;
    const metrics = new DaemonMetrics(
      {
        tasks: () => service?.taskTotals() ?? { total: 0, frozen: 0, maskBytes: 0 },
        ready: () => service?.lastReady ?? false,
        prequentialAccuracies: () => service?.prequentialAccuracies() ?? [],
      },
      { version: VERSION, node: process.version, backend: options.describe.backend },
    );
    const activity = new Activity();
    const daemon = await Daemon.open({ ...options.daemon, observer: observers(metrics, activity) });
    service = new SupsupService(options, daemon, metrics, activity);
    try {
      await service.startSurface();
    } catch (error) {
      await service.stop();
      throw error;
    }
    return service;
  }

  /** The HTTP server's address, or null when HTTP is disabled. */
  address: AddressInfo | null = null;

  private async startSurface(): Promise<void> {
    const http = this.options.http;
    if (http.enabled) {
      const server: HttpServer = new HttpServer(
        {
          host: http.host,
          port: http.port,
          requestTimeoutMs: http.requestTimeoutMs,
          headersTimeoutMs: http.headersTimeoutMs,
          logger: this.options.logger.child({ component: 'http' }),
        },
        opsRoutes(this, () => server, { token: http.token, bodyLimitBytes: http.bodyLimitBytes }),
      );
      this.http = server;
      this.address = await server.listen();
      this.summaryTimer = setInterval(() => this.activity.summarize(), http.summaryIntervalMs);
      this.summaryTimer.unref();
    }
    const jobs = this.options.jobs;
    if (jobs?.enabled === true) {
      const scheduler = createScheduler({ jobs }, this.options.daemon.store, this.options.logger, (run) =>
        this.metricsRegistry.jobRun(run),
      );
      this.jobRunner = scheduler;
      scheduler.start();
    }
  }

  /** Consumes the source until it ends (finite sources) or stop() is called. */
  async run(): Promise<void> {
    if (this.options.makeSource === undefined)
      throw new Error('SupsupService.run() needs options.makeSource');
    const daemon = this.daemon;
    const source = await this.options.makeSource({
      storePosition: () => daemon.storePosition,
      appliedOffsets: () => daemon.appliedOffsets(),
    });
    await this.daemon.run(source);
  }

  stop(): Promise<void> {
    if (this.stopping === null) this.stopping = this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    const log = this.options.logger;
    const step = async (name: string, action: () => Promise<void>) => {
      try {
        await action();
      } catch (error) {
        log.error(`stop: ${name} failed`, { error: errorMessage(error) });
      }
    };
    this.lastReady = false;
    if (this.summaryTimer !== null) clearInterval(this.summaryTimer);
    await step('jobs', () => this.jobRunner?.stop() ?? Promise.resolve());
    await step('daemon', () => this.daemon.stop());
    await step('http', () => this.http?.close() ?? Promise.resolve());
    await step('logs', () => this.options.flushLogs?.() ?? Promise.resolve());
  }

  // OpsViews ------------------------------------------------------------------------------------

  get inputs(): number {
    return this.daemon.model.arch.inputs;
  }

  async readiness(): Promise<{ ready: boolean; reasons: readonly string[] }> {
    const health = await this.daemon.health();
    const reasons =
      this.stopping !== null && !health.reasons.includes('draining')
        ? ['draining', ...health.reasons]
        : health.reasons;
    this.lastReady = reasons.length === 0;
    return { ready: this.lastReady, reasons };
  }

  async status(): Promise<ApiStatus> {
    const readiness = await this.readiness();
    const engine = this.daemon.model;
    const tasks = this.daemon.tasks;
    const currentTasks: Record<string, number | null> = {};
    for (const partition of this.daemon.partitions())
      currentTasks[partition] = this.daemon.currentTask(partition);
    return {
      version: VERSION,
      startedAt: this.startedAt.toISOString(),
      uptimeSeconds: Math.round((Date.now() - this.startedAt.getTime()) / 1000),
      ready: readiness.ready,
      notReady: readiness.reasons,
      draining: this.stopping !== null || this.daemon.draining,
      backend: this.options.describe.backend,
      source: this.options.describe.source,
      sourceState: this.activity.sourceState(),
      store: this.options.daemon.store.kind,
      arch: { key: engine.archKey, outputs: engine.arch.outputs, realClasses: engine.arch.realClasses },
      tasks: tasks.length,
      frozenTasks: tasks.filter((t) => t.frozen).length,
      budget: this.options.daemon.learner.policy.budget,
      currentTasks,
      consumerLag: this.activity.consumerLag(),
      records: {
        in: this.activity.recordsIn,
        out: this.activity.recordsOut,
        deadLettered: this.activity.deadLetters,
        deadLetteredByReason: this.activity.deadLettersByReason(),
        perSecond: this.activity.perSecond(),
      },
      storeWrites: this.activity.storeWrites(),
      warnings: this.daemon.warnings(),
    };
  }

  tasks(): readonly ApiTask[] {
    const maskBytes = this.daemon.model.layout.totalBytes;
    return this.daemon.tasks.map((meta) => {
      const seen = this.activity.task(meta.task);
      return {
        task: meta.task,
        version: meta.version,
        frozen: meta.frozen,
        trainSteps: meta.trainSteps,
        maskBytes,
        density: this.density(meta.task, meta.version),
        bornAt: meta.bornAt,
        bornTime: meta.bornTime,
        recordsRouted: seen.routed,
        meanConfidence: seen.meanConfidence,
        prequentialAccuracy: this.daemon.taskAccuracy(meta.task),
        lastSeen: seen.lastSeen,
      };
    });
  }

  timeline() {
    return this.activity.timelinePoints();
  }

  decisions(limit: number, partition?: string) {
    return this.activity.recentDecisions(limit, partition);
  }

  subscribe(...args: Parameters<Activity['subscribe']>) {
    return this.activity.subscribe(...args);
  }

  infer(x: Float32Array, rows: number): ApiInferResponse {
    const result = this.daemon.infer(x, rows);
    return {
      task: result.task,
      confidence: mean(result.confidences),
      entropy: mean(result.entropies),
      predictions: Array.from(result.predictions),
    };
  }

  jobs(): readonly JobStatus[] {
    return this.jobRunner?.status() ?? [];
  }

  runJob(name: string): Promise<JobRun> {
    if (this.jobRunner === null) {
      return Promise.reject(new SupsupError('E_JOB_UNKNOWN', `no job ${name}: scheduled jobs are disabled`));
    }
    return this.jobRunner.runNow(name);
  }

  eventLog(after: string | undefined, limit: number): Promise<readonly StoredEvent[]> {
    return this.options.daemon.store.readEvents({ after, limit });
  }

  async metrics(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.metricsRegistry.contentType, text: await this.metricsRegistry.text() };
  }

  private prequentialAccuracies(): number[] {
    const out: number[] = [];
    for (const meta of this.daemon.tasks) {
      const accuracy = this.daemon.taskAccuracy(meta.task);
      if (accuracy !== null) out.push(accuracy);
    }
    return out;
  }

  private taskTotals() {
    const tasks = this.daemon.tasks;
    return {
      total: tasks.length,
      frozen: tasks.filter((t) => t.frozen).length,
      maskBytes: tasks.length * this.daemon.model.layout.totalBytes,
    };
  }

  /** Kept fraction of a mask, cached per version (a popcount over the packed mask). */
  private density(task: number, version: number): number {
    const cached = this.densities.get(task);
    if (cached !== undefined && cached.version === version) return cached.density;
    const layout = this.daemon.model.layout;
    const density = popcount(this.daemon.model.bank.get(task)) / layout.weightCount;
    this.densities.set(task, { version, density });
    return density;
  }
}

function mean(values: Float32Array): number {
  let sum = 0;
  for (const v of values) sum += v;
  return values.length === 0 ? 0 : sum / values.length;
}
