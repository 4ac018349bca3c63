import { AlignedCopies } from '../codec/record-codec.js';
import { DEFAULT_LEARNER, StreamLearner, type StreamWarning } from '../discovery/learner.js';
import { errorMessage, isSupsupError, SupsupError } from '../errors.js';
import type { Logger } from '../logger.js';
import { SupermaskEngine } from '../model/engine.js';
import type { BatchDecision, DaemonEvent } from '../records.js';
import { retry } from '../retry.js';
import { compareOffsets } from '../store/offsets.js';
import { formatPosition, regressionOf } from '../store/position.js';
import type { MaskStore, StorePosition } from '../store/types.js';
import type { Source, SourceBatch } from '../stream/types.js';
import { consumerLag } from './batches.js';
import { type DaemonHealth, type DaemonOptions, type DaemonStats, DEFAULT_WRITER } from './daemon-options.js';
import { failpoint } from './failpoints.js';
import { STORE_PROBE_TIMEOUT_MS, StoreProbe, withTimeout } from './health.js';
import { learnBatch } from './learn-batch.js';
import { checkSourcePositions, RegressionGuard } from './regression.js';
import { checkDurability, closeAfterFailedOpen, writeLastCommitAgain } from './startup.js';
import { buildCommit, restoreState } from './state.js';
import { logLettersAndEvents, observeSource } from './telemetry.js';
import { openStoreAsWriter, WriterLease } from './writer-lease.js';

export { microBatches } from './batches.js';
export type { DaemonHealth, DaemonOptions, DaemonStats } from './daemon-options.js';

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
  /** The store position of this daemon's last commit (or as loaded): what the store must still be at. */
  private position: StorePosition;
  private readonly writer: WriterLease;
  /** Latches a regressed store (refused until a restart). */
  private readonly guard: RegressionGuard;
  /** The message of the last failed state write, while the state is stale. */
  private lastWriteError: string | null = null;
  private readonly storeProbe: StoreProbe;
  /** Codes of the stream warnings already logged (each is logged when it appears, again after it cleared). */
  private loggedWarnings = new Set<string>();

  private constructor(
    options: DaemonOptions,
    engine: SupermaskEngine,
    learner: StreamLearner,
    position: StorePosition,
    writer: WriterLease,
  ) {
    this.options = options;
    this.engine = engine;
    this.learner = learner;
    this.log = options.logger;
    this.position = position;
    this.writer = writer;
    this.storeProbe = new StoreProbe(options.store, options.allowVolatileStore === true);
    this.guard = new RegressionGuard(options.onRegression ?? 'refuse', options.logger);
  }

  /**
   * Opens the store as its one writer (the writer lease), checks the sink, restores masks and policy state, and
   * returns a daemon ready to run. A failure closes what was opened (lease, store, sink) before it is thrown.
   */
  static async open(options: DaemonOptions): Promise<Daemon> {
    const { store, logger } = options;
    let writer: WriterLease | null = null;
    let daemon: Daemon | null = null;
    try {
      const writerOptions = options.writer ?? DEFAULT_WRITER;
      await openStoreAsWriter(store, writerOptions, logger);
      await checkDurability(options);
      writer = await WriterLease.acquire(store, writerOptions, logger);
      await options.sink.check?.();
      const position = await store.position();
      const { engine, learner, applied, outbox, decisions } = await Daemon.restore(options);
      daemon = new Daemon(options, engine, learner, position, writer);
      for (const [key, offset] of Object.entries(applied)) daemon.applied.set(key, offset);
      await writeLastCommitAgain(options, outbox, decisions);
      const warmUpStarted = performance.now();
      learner.warmUp(options.microBatch);
      logger.info('state restored', {
        store: store.kind,
        position: formatPosition(position),
        tasks: learner.learnedTasks.length,
        partitions: Object.keys(applied).length,
        warmUpMs: Math.round(performance.now() - warmUpStarted),
      });
      return daemon;
    } catch (error) {
      daemon?.learner.dispose();
      daemon?.engine.dispose();
      await closeAfterFailedOpen(options, writer);
      throw error;
    }
  }

  /** The store's applied offsets per partition key, as of this daemon's last commit or load. */
  appliedOffsets(): Record<string, string> {
    return Object.fromEntries(this.applied);
  }

  /** The store position of this daemon's last commit, or as loaded (what checkpoints record). */
  get storePosition(): StorePosition {
    return this.position;
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

  /** A task's recent prequential accuracy (labelled records, before training on them), or null. */
  taskAccuracy(task: number): number | null {
    return this.learner.taskAccuracy(task);
  }

  /** Why task assignments should not be trusted now (empty when there is no reason). */
  warnings(): readonly StreamWarning[] {
    return this.learner.warnings();
  }

  private logNewWarnings(): void {
    const warnings = this.learner.warnings();
    for (const warning of warnings) {
      if (!this.loggedWarnings.has(warning.code)) this.log.warn(warning.message, { warning: warning.code });
    }
    this.loggedWarnings = new Set(warnings.map((w) => w.code));
  }

  /** Consumes `source` until it is done (finite sources) or the daemon is stopped. */
  async run(source: Source): Promise<void> {
    if (this.source !== null) throw new SupsupError('E_INTERNAL', 'the daemon is already running a source');
    if (this.stopping !== null) throw new SupsupError('E_INTERNAL', 'the daemon has been stopped');
    this.source = source;
    await this.checkSource(source);
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
    const consume = async () => {
      await source.start(handler);
      await source.done();
    };
    await observeSource(this.options.observer, this.options.clock, () => this.draining, consume);
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

  /**
   * Readiness: not draining, the source can deliver, the store answers within a second, is safe to write and is
   * not behind what this daemon committed, this daemon holds the writer lease, and its state is not stale.
   */
  async health(): Promise<DaemonHealth> {
    const reasons: string[] = [];
    if (this.draining) reasons.push('draining');
    if (this.source === null) reasons.push('source not started');
    else {
      const source = this.source.health?.();
      if (source !== undefined && !source.ready) reasons.push(source.reason ?? 'source not ready');
    }
    const store = this.draining ? ['store unreachable'] : await this.storeProbe.problems();
    if (store.length === 0 && !this.draining) await this.probePosition();
    if (this.guard.reason !== null) reasons.push(`store regressed: ${this.guard.reason}`);
    const lease = this.writer.problem;
    if (lease !== null) reasons.push(lease);
    if (this.stale) {
      reasons.push(
        this.lastWriteError === null
          ? 'state is being reloaded from the store'
          : `the last state write failed (${this.lastWriteError}); the state is reloaded before the next batch`,
      );
    }
    reasons.push(...store);
    return { ready: reasons.length === 0, reasons };
  }

  /** Readiness notices a store that fell behind (e.g. restarted empty) even before the next commit does. */
  private async probePosition(): Promise<void> {
    if (this.guard.reason !== null) return;
    let stored: StorePosition;
    try {
      stored = await withTimeout(this.options.store.position(), STORE_PROBE_TIMEOUT_MS, 'store position');
    } catch {
      return;
    }
    const behind = regressionOf(stored, this.position);
    if (behind !== null) this.storeRegressed(behind, stored);
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

  /** Classification of `rows` inputs under the mask of `task` as it is now; changes nothing. */
  classifyUnder(x: Float32Array, rows: number, task: number) {
    return this.learner.classifyUnder(x, rows, task);
  }

  private async shutdown(): Promise<void> {
    const deadline = this.options.stopTimeoutMs ?? 20_000;
    const steps: [string, () => Promise<void>][] = [
      ['source', () => this.source?.stop() ?? Promise.resolve()],
      ['writer lease', () => this.writer.release()],
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
      return {
        engine,
        learner,
        applied: restored?.applied ?? {},
        outbox: restored?.outbox ?? [],
        decisions: restored?.decisions ?? [],
      };
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
    // A regressed store is refused: nothing is learned or published from it.
    if (this.guard.reason !== null) throw this.guard.refusal();
    await this.holdWriter();
    // A failed state write left the in-memory model ahead of the store: start again from the store.
    if (this.stale) await this.reload();
    const key = `${batch.topic}/${batch.partition}`;
    const applied = this.applied.get(key);
    const { results, events, letters, changed, learned, observations, decisions } = await learnBatch(
      batch,
      copies,
      {
        learner: this.learner,
        limits: {
          dim: this.engine.arch.inputs,
          maxBytes: this.options.maxRecordBytes,
          classes: this.engine.arch.realClasses,
        },
        microBatch: this.options.microBatch,
        key,
        applied,
        now: () => (this.options.clock?.() ?? new Date()).toISOString(),
        log: this.log,
        onCheck: () => this.stats.checks++,
      },
    );
    const observer = this.options.observer;
    const last = batch.records[batch.records.length - 1];
    if (last !== undefined && (applied === undefined || compareOffsets(last.position.offset, applied) > 0)) {
      await this.commitState(key, last.position.offset, changed, events, decisions);
      failpoint('after_state_commit');
    } else if (learned) {
      throw new SupsupError('E_INTERNAL', 'learned from a batch that was already applied');
    }
    if (results.length > 0) await this.options.sink.writeResults(results);
    if (letters.length > 0) await this.options.sink.writeDeadLetters(letters);
    if (events.length > 0) await this.options.sink.writeEvents(events);
    if (decisions.length > 0) await this.options.sink.writeDecisions?.(decisions);
    failpoint('after_results');
    // Counted once the batch is done: a batch delivered again after a failure is not counted twice.
    this.stats.recordsIn += batch.records.length;
    observer?.received(key, batch.records.length, consumerLag(batch.highWatermark, last?.position.offset));
    for (const observation of observations) observer?.batch(observation);
    this.logNewWarnings();
    if (letters.length > 0) observer?.deadLettered(letters);
    if (events.length > 0) observer?.events(events);
    if (decisions.length > 0) observer?.decided?.(decisions);
    this.stats.resultsOut += results.length;
    this.stats.deadLetters += letters.length;
    this.stats.batches++;
    logLettersAndEvents(this.log, letters, events);
  }

  private async commitState(
    key: string,
    offset: string,
    changed: ReadonlySet<number>,
    events: readonly DaemonEvent[],
    decisions: readonly BatchDecision[],
  ): Promise<void> {
    const commit = {
      ...buildCommit(this.engine, this.learner, changed, key, offset, events, decisions),
      expect: this.position,
    };
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
      this.lastWriteError = errorMessage(error);
      throw this.failedWrite(error);
    }
    if (outcome === 'applied') {
      this.stats.commitsApplied++;
      this.applied.set(key, offset);
      await this.advancePosition();
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

  /** After an applied commit: the next sequence (and, for a store that was empty, the epoch it created). */
  private async advancePosition(): Promise<void> {
    const { epoch, sequence } = this.position;
    if (epoch !== null) {
      this.position = { epoch, sequence: sequence + 1 };
      return;
    }
    try {
      this.position = await this.options.store.position();
    } catch (error) {
      // The commit landed; the position is read again by the reload before the next batch.
      this.stale = true;
      this.lastWriteError = errorMessage(error);
    }
  }

  /** The error a failed commit is rethrown as (regressed and lost-lease commits are retried later). */
  private failedWrite(error: unknown): unknown {
    if (!isSupsupError(error)) return error;
    if (error.code === 'E_STORE_REGRESSED') return this.storeRegressed(error.message);
    if (error.code === 'E_STORE_CONFLICT') {
      return new SupsupError('E_STORE_CONFLICT', error.message, { retriable: true, cause: error });
    }
    return error;
  }

  /** A regressed store: refused until a restart, or (onRegression "accept") reloaded from where it is now. */
  private storeRegressed(reason: string, stored?: StorePosition): SupsupError {
    const error = this.guard.regressed(reason, this.position, stored);
    if (this.guard.reason === null) this.stale = true;
    return error;
  }

  /** Takes the writer lease again after it was lost; the state is reloaded (another writer may have committed). */
  private async holdWriter(): Promise<void> {
    const problem = this.writer.problem;
    if (problem === null) return;
    if (!(await this.writer.regain())) {
      throw new SupsupError('E_STORE_CONFLICT', `${problem}; another daemon holds it now`, {
        retriable: true,
      });
    }
    this.stale = true;
  }

  /** Start-up check of the store against what the source committed (see store.onRegression). */
  private checkSource(source: Source): Promise<void> {
    const side = { position: this.position, applied: Object.fromEntries(this.applied) };
    return checkSourcePositions(source, side, this.options.onRegression ?? 'refuse', this.log);
  }

  /** Replaces the engine and learner by the store's state (after a failed or fenced write). */
  private async reload(): Promise<void> {
    const stored = await this.options.store.position();
    const behind = regressionOf(stored, this.position);
    if (behind !== null) {
      const error = this.storeRegressed(behind, stored);
      if (this.guard.reason !== null) throw error;
    }
    const { engine, learner, applied } = await Daemon.restore(this.options);
    this.learner.dispose();
    this.engine.dispose();
    this.engine = engine;
    this.learner = learner;
    this.applied.clear();
    for (const [k, v] of Object.entries(applied)) this.applied.set(k, v);
    this.position = stored;
    this.stale = false;
    this.lastWriteError = null;
    this.log.info('state reloaded from the store', {
      tasks: learner.learnedTasks.length,
      position: formatPosition(stored),
    });
  }
}
