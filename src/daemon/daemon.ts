import { AlignedCopies, decodeRecord } from '../codec/record-codec.js';
import { DEFAULT_LEARNER, type LearnerConfig, StreamLearner } from '../discovery/learner.js';
import { errorMessage, SupsupError } from '../errors.js';
import type { Logger } from '../logger.js';
import { SupermaskEngine } from '../model/engine.js';
import type { Architecture } from '../model/network/arch.js';
import type { MaskRule } from '../model/training/mask-rule.js';
import type { OptimizerConfig } from '../model/training/optimizers.js';
import type { DaemonEvent, DeadLetter, InputRecord, ResultRecord } from '../records.js';
import { retry } from '../retry.js';
import { compareOffsets } from '../store/offsets.js';
import { RedisStore } from '../store/redis-store.js';
import type { MaskStore } from '../store/types.js';
import type { Sink, Source, SourceBatch } from '../stream/types.js';
import { failpoint } from './failpoints.js';
import { buildCommit, restoreState } from './state.js';
import type { BatchObservation, DaemonObserver } from './telemetry.js';

export interface DaemonOptions {
  readonly sink: Sink;
  readonly store: MaskStore;
  readonly model: {
    readonly arch: Architecture;
    readonly seed: number;
    readonly optimizer: OptimizerConfig;
    readonly rule: MaskRule;
  };
  readonly learner: LearnerConfig;
  /** Largest micro-batch handed to the learner. */
  readonly microBatch: number;
  readonly maxRecordBytes: number;
  /** Accept a Redis store that persists nothing (no AOF, no RDB). */
  readonly allowVolatileStore?: boolean;
  readonly logger: Logger;
  /** Deadline for stop(): sources drain, sinks flush, stores close. */
  readonly stopTimeoutMs?: number;
  readonly clock?: () => Date;
  /** Metrics, the API's views and the dashboard's feed (src/ops). */
  readonly observer?: DaemonObserver;
  /** Backoff of in-place retries for sources that do not redeliver by themselves. */
  readonly retryBackoff?: { readonly baseMs: number; readonly maxMs: number };
}

/** Readiness of the daemon: every reason it cannot serve now (empty when ready). */
export interface DaemonHealth {
  readonly ready: boolean;
  readonly reasons: readonly string[];
}

/** A store probe that does not answer within this time counts as unreachable. */
const STORE_PROBE_TIMEOUT_MS = 1000;
/** How long a Redis store's policy reading is trusted before readiness reads it again. */
const POLICY_RECHECK_MS = 10_000;

export interface DaemonStats {
  recordsIn: number;
  resultsOut: number;
  deadLetters: number;
  batches: number;
  checks: number;
  commitsApplied: number;
  commitsFenced: number;
}

/**
 * Wiring of one daemon: source → decode → micro-batches → learner → store commit → sink → (the
 * source commits its offsets when the handler returns). Per partition the order is: state write
 * (fenced by the applied offset), results produced and acknowledged, then the offset commit. A crash
 * anywhere repeats work and never loses it; a repeated batch is only inferred, never learned twice.
 */
export class Daemon {
  readonly stats: DaemonStats = {
    recordsIn: 0,
    resultsOut: 0,
    deadLetters: 0,
    batches: 0,
    checks: 0,
    commitsApplied: 0,
    commitsFenced: 0,
  };
  private readonly options: DaemonOptions;
  private readonly applied = new Map<string, string>();
  private engine: SupermaskEngine;
  private learner: StreamLearner;
  private stopping: Promise<void> | null = null;
  private source: Source | null = null;
  private stale = false;
  /** Aligned-copy arenas of batches handled before, for the next ones (see handle). */
  private readonly spareCopies: AlignedCopies[] = [];
  private readonly log: Logger;
  /** Aborted by stop(): ends in-place retry waits. */
  private readonly stopSignal = new AbortController();

  private constructor(options: DaemonOptions, engine: SupermaskEngine, learner: StreamLearner) {
    this.options = options;
    this.engine = engine;
    this.learner = learner;
    this.log = options.logger;
  }

  /** Opens the store, restores masks and policy state, and returns a daemon ready to run. */
  static async open(options: DaemonOptions): Promise<Daemon> {
    await options.store.open();
    await checkDurability(options);
    const { engine, learner, applied, outbox } = await Daemon.restore(options);
    const daemon = new Daemon(options, engine, learner);
    for (const [key, offset] of Object.entries(applied)) daemon.applied.set(key, offset);
    if (outbox.length > 0) {
      // The last commit's events may not have reached the sink before the previous run ended.
      await options.sink.writeEvents(outbox);
      options.logger.info('events of the last commit written again', { events: outbox.length });
    }
    const warmUpStarted = performance.now();
    learner.warmUp(options.microBatch);
    options.logger.info('state restored', {
      store: options.store.kind,
      tasks: learner.learnedTasks.length,
      partitions: Object.keys(applied).length,
      warmUpMs: Math.round(performance.now() - warmUpStarted),
    });
    return daemon;
  }

  get tasks() {
    return this.learner.learnedTasks;
  }

  /** The partitions (`topic/partition`) whose streams the policy has seen. */
  partitions(): string[] {
    return Object.keys(this.learner.streamStates);
  }

  /** The task a partition's stream is on (`topic/partition`), or null. */
  currentTask(partitionKey: string): number | null {
    return this.learner.currentTask(partitionKey);
  }

  /** Consumes `source` until it is done (finite sources) or the daemon is stopped. */
  async run(source: Source): Promise<void> {
    if (this.source !== null) throw new SupsupError('E_INTERNAL', 'the daemon is already running a source');
    if (this.stopping !== null) throw new SupsupError('E_INTERNAL', 'the daemon has been stopped');
    this.source = source;
    const backoff = this.options.retryBackoff ?? { baseMs: 200, maxMs: 10_000 };
    const handler =
      source.redelivers === true
        ? (batch: SourceBatch) => this.handle(batch)
        : (batch: SourceBatch) =>
            retry(() => this.handle(batch), {
              ...backoff,
              signal: this.stopSignal.signal,
              onRetry: (attempt, delayMs, error) =>
                this.log.warn('batch failed; retrying', {
                  topic: batch.topic,
                  partition: batch.partition,
                  attempt,
                  delayMs,
                  error: errorMessage(error),
                }),
            });
    await source.start(handler);
    await source.done();
  }

  /** Idempotent, bounded stop: the source drains and commits, the sink flushes, the store closes. */
  stop(): Promise<void> {
    if (this.stopping === null) {
      this.stopSignal.abort();
      this.stopping = this.shutdown();
    }
    return this.stopping;
  }

  /** True once stop() was called: readiness goes false first. */
  get draining(): boolean {
    return this.stopping !== null;
  }

  /** Readiness: not draining, the source can deliver, the store answers within a second. */
  async health(): Promise<DaemonHealth> {
    const reasons: string[] = [];
    if (this.draining) reasons.push('draining');
    if (this.source === null) reasons.push('source not started');
    else {
      const source = this.source.health?.();
      if (source !== undefined && !source.ready) reasons.push(source.reason ?? 'source not ready');
    }
    if (this.stale) reasons.push('state is being reloaded from the store');
    const reachable = this.draining
      ? false
      : await withTimeout(this.options.store.ping(), STORE_PROBE_TIMEOUT_MS, 'store ping').catch(() => false);
    if (!reachable) reasons.push('store unreachable');
    else {
      const policy = await this.storePolicyProblem();
      if (policy !== null) reasons.push(policy);
    }
    return { ready: reasons.length === 0, reasons };
  }

  private policyCheck: { at: number; problem: string | null } | null = null;

  /** A Redis store's eviction and persistence policy, re-read at most every 10 s (readiness). */
  private async storePolicyProblem(): Promise<string | null> {
    const { store } = this.options;
    if (!(store instanceof RedisStore)) return null;
    if (this.policyCheck !== null && Date.now() - this.policyCheck.at < POLICY_RECHECK_MS) {
      return this.policyCheck.problem;
    }
    let problem: string | null = null;
    try {
      const policy = await withTimeout(store.policy(), STORE_PROBE_TIMEOUT_MS, 'store policy');
      if (policy.maxmemoryPolicy !== 'noeviction') {
        problem = `store evicts keys (maxmemory-policy ${policy.maxmemoryPolicy ?? 'unknown'})`;
      } else if (
        !policy.persistence.aof &&
        !policy.persistence.rdb &&
        this.options.allowVolatileStore !== true
      ) {
        problem = 'store persists nothing (no AOF, no RDB)';
      }
    } catch {
      return 'store unreachable';
    }
    this.policyCheck = { at: Date.now(), problem };
    return problem;
  }

  /** The daemon's model: architecture and masks (read-only use). */
  get model(): SupermaskEngine {
    return this.engine;
  }

  /**
   * Ad-hoc inference over all masks for `rows` inputs (row-major in `x`): task and predictions. Changes
   * nothing. Throws E_NO_MASKS before the first mask.
   */
  infer(x: Float32Array, rows: number) {
    return this.learner.infer(x, rows);
  }

  private async shutdown(): Promise<void> {
    const deadline = this.options.stopTimeoutMs ?? 20_000;
    const steps: [string, () => Promise<void>][] = [
      ['source', () => this.source?.stop() ?? Promise.resolve()],
      ['sink', () => this.options.sink.close()],
      ['store', () => this.options.store.close()],
    ];
    const started = Date.now();
    for (const [name, step] of steps) {
      const left = Math.max(1, deadline - (Date.now() - started));
      try {
        await withTimeout(step(), left, `stopping the ${name}`);
      } catch (error) {
        this.log.error(`stop: ${name} did not close cleanly`, { error: errorMessage(error) });
      }
    }
    this.learner.dispose();
    this.engine.dispose();
    this.log.info('stopped', { ...this.stats });
  }

  private static async restore(options: DaemonOptions) {
    const engine = new SupermaskEngine({ ...options.model, taskWeightCache: 16 });
    try {
      const restored = await restoreState(options.store, engine);
      const learner = new StreamLearner(
        engine,
        { ...DEFAULT_LEARNER, ...options.learner },
        restored === null ? undefined : restored,
      );
      return { engine, learner, applied: restored?.applied ?? {}, outbox: restored?.outbox ?? [] };
    } catch (error) {
      engine.dispose();
      throw error;
    }
  }

  private async handle(batch: SourceBatch): Promise<void> {
    // The aligned copies of a batch's unaligned float32 values are dead once it is handled: records
    // never outlive handleBatch (the learner copies their rows, results and observations keep no
    // vector). Each batch in flight has its own copies; after it they are reused.
    const copies = this.spareCopies.pop() ?? new AlignedCopies();
    try {
      await this.handleBatch(batch, copies);
    } finally {
      copies.reset();
      this.spareCopies.push(copies);
    }
  }

  private async handleBatch(batch: SourceBatch, copies: AlignedCopies): Promise<void> {
    // A failed state write left the in-memory model ahead of the store: start again from the store.
    if (this.stale) await this.reload();
    const key = `${batch.topic}/${batch.partition}`;
    const limits = {
      dim: this.engine.arch.inputs,
      maxBytes: this.options.maxRecordBytes,
      classes: this.engine.arch.realClasses,
    };
    const valid: InputRecord[] = [];
    const letters: DeadLetter[] = [];
    for (const raw of batch.records) {
      const outcome = decodeRecord(raw, limits, copies);
      if (outcome.ok) valid.push(outcome.record);
      else letters.push(outcome.letter);
    }
    const observer = this.options.observer;
    // Reported once the batch is done, so a batch handled again after a failure counts once.
    const observations: BatchObservation[] = [];
    const applied = this.applied.get(key);
    const results: ResultRecord[] = [];
    const events: DaemonEvent[] = [];
    const changed = new Set<number>();
    let learned = false;
    for (const group of microBatches(valid, this.options.microBatch, applied)) {
      const now = (this.options.clock?.() ?? new Date()).toISOString();
      const outcome = this.learner.process(group.records, { learn: group.learn, now, stream: key });
      learned ||= group.learn;
      results.push(...outcome.results);
      events.push(...outcome.events);
      for (const task of outcome.changed) changed.add(task);
      if (outcome.checked) this.stats.checks++;
      this.logDecision(group.records, outcome.decision, outcome.checked);
      observations.push({
        partition: key,
        firstOffset: group.records[0]?.position.offset ?? '',
        lastOffset: group.records[group.records.length - 1]?.position.offset ?? '',
        time: Date.now(),
        results: outcome.results,
        decision: outcome.decision,
        checked: outcome.checked,
        ...outcome.work,
      });
      await batch.heartbeat();
    }
    const last = batch.records[batch.records.length - 1];
    if (last !== undefined && (applied === undefined || compareOffsets(last.position.offset, applied) > 0)) {
      await this.commitState(key, last.position.offset, changed, events);
      failpoint('after_state_commit');
    } else if (learned) {
      throw new SupsupError('E_INTERNAL', 'learned from a batch that was already applied');
    }
    if (results.length > 0) await this.options.sink.writeResults(results);
    if (letters.length > 0) await this.options.sink.writeDeadLetters(letters);
    if (events.length > 0) await this.options.sink.writeEvents(events);
    failpoint('after_results');
    // Counted once the batch is done: a batch delivered again after a failure is not counted twice.
    this.stats.recordsIn += batch.records.length;
    observer?.received(key, batch.records.length, consumerLag(batch.highWatermark, last?.position.offset));
    for (const observation of observations) observer?.batch(observation);
    if (letters.length > 0) observer?.deadLettered(letters);
    if (events.length > 0) observer?.events(events);
    this.stats.resultsOut += results.length;
    this.stats.deadLetters += letters.length;
    this.stats.batches++;
    for (const letter of letters) {
      this.log.warn('record dead-lettered', {
        ...letter.source,
        reason: letter.reason,
        detail: letter.detail,
      });
    }
    for (const event of events) this.log.info(event.type, { ...event });
  }

  private async commitState(
    key: string,
    offset: string,
    changed: ReadonlySet<number>,
    events: readonly DaemonEvent[],
  ): Promise<void> {
    const commit = buildCommit(this.engine, this.learner, changed, key, offset, events);
    let outcome: Awaited<ReturnType<MaskStore['commit']>>;
    const started = performance.now();
    const observe = (result: 'applied' | 'fenced' | 'failed') =>
      this.options.observer?.committed({ seconds: (performance.now() - started) / 1000, outcome: result });
    try {
      outcome = await this.options.store.commit(commit);
      observe(outcome);
    } catch (error) {
      observe('failed');
      // Whether or not the write landed, the batch will be delivered again; the model must not keep
      // what it learned from it in memory only.
      this.stale = true;
      throw error;
    }
    if (outcome === 'applied') {
      this.stats.commitsApplied++;
      this.applied.set(key, offset);
      return;
    }
    // Another member applied this partition further than we have: our model is stale. Reload the
    // store's state so that nothing computed here overwrites it, then let the batch be redelivered.
    this.stats.commitsFenced++;
    this.log.warn('state write fenced: the store is ahead of this member; reloading state', {
      partition: key,
      offset,
    });
    await this.reload();
    throw new SupsupError(
      'E_STORE_CONFLICT',
      `state write for ${key}@${offset} was fenced; batch will be redelivered`,
      {
        retriable: true,
      },
    );
  }

  /** Replaces the engine and learner by the store's state (after a failed or fenced write). */
  private async reload(): Promise<void> {
    const { engine, learner, applied } = await Daemon.restore(this.options);
    this.learner.dispose();
    this.engine.dispose();
    this.engine = engine;
    this.learner = learner;
    this.applied.clear();
    for (const [k, v] of Object.entries(applied)) this.applied.set(k, v);
    this.stale = false;
    this.log.info('state reloaded from the store', { tasks: learner.learnedTasks.length });
  }

  private logDecision(
    records: readonly InputRecord[],
    decision: { kind: string; reason: string },
    checked: boolean,
  ): void {
    const first = records[0];
    const last = records[records.length - 1];
    if (first === undefined || last === undefined) return;
    const task = this.learner.currentTask(`${first.position.topic}/${first.position.partition}`);
    this.log.debug('decision', {
      topic: first.position.topic,
      partition: first.position.partition,
      offset: first.position.offset,
      lastOffset: last.position.offset,
      task,
      mask: task === null ? null : (this.learner.learnedTasks[task]?.version ?? null),
      decision: decision.kind,
      reason: decision.reason,
      checked,
      records: records.length,
    });
  }
}

/** Records between the last one handled and the partition's end, when the source knows its end. */
function consumerLag(highWatermark: string | undefined, lastOffset: string | undefined): number | null {
  if (highWatermark === undefined || lastOffset === undefined) return null;
  const lag = BigInt(highWatermark) - BigInt(lastOffset) - 1n;
  return lag < 0n ? 0 : Number(lag);
}

/** Refuses a Redis that persists nothing unless the configuration accepts it. */
async function checkDurability(options: DaemonOptions): Promise<void> {
  const { store } = options;
  if (!(store instanceof RedisStore)) return;
  const persistence = store.persistence();
  if (persistence.aof || persistence.rdb) return;
  if (options.allowVolatileStore === true) {
    options.logger.warn('Redis persists nothing (no AOF, no RDB): masks live only as long as the server');
    return;
  }
  await store.close();
  throw new SupsupError(
    'E_STORE_POLICY',
    'Redis persists nothing (no AOF, no RDB), so masks would vanish with the server: enable appendonly, or set store.allowNoPersistence',
  );
}

/**
 * Splits a partition's valid records into micro-batches of at most `size`, never mixing records
 * already applied (offset ≤ `applied`: inferred only) with new ones (learned).
 */
export function* microBatches(
  records: readonly InputRecord[],
  size: number,
  applied: string | undefined,
): Generator<{ records: InputRecord[]; learn: boolean }> {
  let group: InputRecord[] = [];
  let learn = true;
  for (const record of records) {
    const isNew = applied === undefined || compareOffsets(record.position.offset, applied) > 0;
    if (group.length > 0 && (group.length === size || isNew !== learn)) {
      yield { records: group, learn };
      group = [];
    }
    learn = isNew;
    group.push(record);
  }
  if (group.length > 0) yield { records: group, learn };
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new SupsupError('E_INTERNAL', `${what} took longer than ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
