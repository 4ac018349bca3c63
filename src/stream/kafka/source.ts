/**
 * The Kafka source of the stream, on kafkajs 2.2.4.
 *
 * KafkaSource: one consumer-group member, `eachBatch` with `autoCommit: false`,
 * `eachBatchAutoResolve: false` and `partitionsConsumedConcurrently: 1` (the model is single-threaded).
 * The handler gets chunks of `maxBatchSize` records cut from each partition's record sequence, not from
 * kafkajs's fetches (chunk-tails.ts): the records left over from a fetch wait for the partition's next batch,
 * or are handed over short once the partition has been quiet for `lingerMs`. After a chunk's handler resolved,
 * `last + 1` is committed explicitly (at-least-once: a crash between the handler and the commit re-delivers
 * the chunk; results carry `x-source` to dedupe). Held records are not committed: a restart reads them again.
 *
 * Fetch-ahead: kafkajs fetches the next batch only once eachBatch returns. So eachBatch resolves the
 * batch's offsets at once (the fetch position moves past it), starts handling it and returns; the next
 * eachBatch call waits until that handling is done. The broker's fetch, kafkajs's decoding of it, and
 * each chunk's offset commit overlap the handler's work; one batch at most waits fetched ahead.
 * Commits go out one at a time and in order; offsets that queue meanwhile are merged.
 *
 * A handler that throws leaves the chunk uncommitted: the source seeks back to the chunk's first offset and
 * pauses the partition for an exponential backoff with jitter (back-pressure: no fetches for it while the
 * store or sink is failing; other partitions go on), then resumes and delivers it again. A batch fetched
 * ahead of the failure is stale (kafkajs's pending seek) and dropped.
 * Errors of heartbeats (rebalances) and of commits end the handling and are thrown from the next eachBatch
 * call, so kafkajs re-joins the group or retries as it would have. Work and commits of an earlier group
 * membership or of a failed one (an epoch: see `epoch`) are dropped, never sent under a newer generation;
 * the fetch position goes back to the first chunk not handled, which is then read again.
 * Offset commits: offset-commits.ts.
 */
import { EventEmitter } from 'node:events';
import type { Consumer, EachBatchPayload, KafkaMessage } from 'kafkajs';
import { errorMessage, SupsupError } from '../../errors.js';
import { backoffDelay } from '../../retry.js';
import { type Settlement, settlement, settleWithin } from '../checks.js';
import type { RawRecord, Source, SourceHealth, SourcePositions } from '../types.js';
import { cutChunks, type HeldTail, PartitionTails, placeTail } from './chunk-tails.js';
import { createKafka, type LogLevelName } from './client.js';
import { toKafkaSupsupError } from './errors.js';
import { groupPositions, rewindGroup } from './group-offsets.js';
import { OffsetCommits } from './offset-commits.js';
import { maxOffset, toRawRecord } from './raw-record.js';
import {
  type BatchHandler,
  createSourceConsumer,
  type KafkaSourceEventMap,
  type KafkaSourceOptions,
  sourceSettings,
} from './source-options.js';
import { WorkChain } from './work-chain.js';

export class KafkaSource implements Source {
  readonly name: string;
  /** Group membership, crashes, failed batches and commits (never emits 'error'). */
  readonly events = new EventEmitter<KafkaSourceEventMap>();

  private readonly options: KafkaSourceOptions;
  private readonly consumer: Consumer;
  private readonly maxBatchSize: number;
  private readonly lingerMs: number;
  /** Records of each partition held until they fill a chunk or linger (chunk-tails.ts). */
  private readonly tails: PartitionTails;
  private handler: BatchHandler | undefined;
  private readonly retryBackoffMs: number;
  private readonly maxRetryBackoffMs: number;
  private readonly heartbeatIntervalMs: number;
  private readonly stopTimeoutMs: number;
  private readonly maxHandlerAttempts: number;

  private started = false;
  private starting: Promise<void> | undefined;
  private stopRequested = false;
  private readonly resumeTimers = new Set<NodeJS.Timeout>();
  private stopping: Promise<void> | undefined;
  private isJoined = false;
  private progressAt = 0;
  private readonly failures = new Map<number, number>();
  /** Aborted by stop(): cuts a commit's retry backoff short (the commit is then given up). */
  private readonly stopSignal = new AbortController();
  private readonly finished: Promise<void>;
  private readonly settle: Settlement;
  private settled = false;
  /** The chunks being handled, outside kafkajs's eachBatch call (see onBatch), one piece of work at a time. */
  private readonly handling = new WorkChain();
  /** Offset commits, queued after each handled chunk (offset-commits.ts). */
  private readonly commits: OffsetCommits;
  /**
   * Work started in one epoch goes on only while the epoch lasts. A group join, a rebalance, a
   * crash of the consumer and a deferred error each end it: chunks not yet handled are dropped,
   * the fetch position goes back to the first of them, and offsets queued for commit are never
   * sent, so the chunks are read again here or by whoever owns the partition next.
   */
  private epoch = 0;
  private deferred: { error: unknown; epoch: number } | undefined;

  constructor(options: KafkaSourceOptions) {
    const settings = sourceSettings(options);
    this.options = options;
    this.name = `kafka:${options.topic}`;
    this.maxBatchSize = settings.maxBatchSize;
    this.lingerMs = settings.lingerMs;
    this.tails = new PartitionTails(settings.lingerMs, (partition) => this.onLingered(partition));
    this.retryBackoffMs = settings.retryBackoffMs;
    this.maxRetryBackoffMs = settings.maxRetryBackoffMs;
    this.heartbeatIntervalMs = settings.heartbeatIntervalMs;
    this.commits = new OffsetCommits({
      attempts: settings.commitAttempts,
      signal: this.stopSignal.signal,
      epoch: () => this.epoch,
      onError: (error, epoch) => this.deferError(error, epoch),
      onCommitted: ({ topic, partition, offset }) =>
        this.events.emit('committed', { topic, partition, offset }),
      log: (level, message, extra) => this.log(level, `${this.name}: ${message}`, extra),
    });
    this.stopTimeoutMs = settings.stopTimeoutMs;
    this.maxHandlerAttempts = settings.maxHandlerAttempts;
    this.consumer = options.consumer ?? createSourceConsumer(options, settings.heartbeatIntervalMs);
    this.settle = settlement();
    this.finished = this.settle.promise;
    this.finished.catch(() => {});
    this.wireEvents();
  }

  readonly redelivers = true;

  /** True while the consumer is a member of the group with an assignment (readiness). */
  joined(): boolean {
    return this.isJoined;
  }

  health(): SourceHealth {
    return this.isJoined ? { ready: true } : { ready: false, reason: 'kafka consumer group not joined' };
  }

  /** Before start(): the group's committed positions; rewind() moves them back (group-offsets.ts). */
  positions(): Promise<SourcePositions> {
    return groupPositions(createKafka(this.options).admin(), this.options.groupId, this.options.topic);
  }
  rewind(applied: Readonly<Record<string, string>>): Promise<void> {
    return rewindGroup(createKafka(this.options).admin(), this.options.groupId, this.options.topic, applied);
  }

  /** Epoch ms of the last fetch, heartbeat or batch: a stalled consumer stops advancing it (liveness). */
  lastProgressAt(): number {
    return this.progressAt;
  }

  async start(handler: BatchHandler): Promise<void> {
    if (this.started) throw new SupsupError('E_SOURCE', `${this.name}: start() called twice`);
    if (this.stopRequested) throw new SupsupError('E_SOURCE', `${this.name}: start() after stop()`);
    this.started = true;
    this.handler = handler;
    const { topic } = this.options;
    this.starting = (async () => {
      await this.consumer.connect();
      await this.consumer.subscribe({ topics: [topic], fromBeginning: this.options.fromBeginning ?? true });
      await this.consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: 1,
        eachBatch: (payload) => this.onBatch(payload, handler),
      });
    })();
    try {
      await this.starting;
    } catch (error) {
      const mapped = toKafkaSupsupError(error, 'E_SOURCE', `${this.name}: cannot start the consumer`);
      await this.consumer.disconnect().catch(() => {});
      this.finish(mapped);
      throw mapped;
    }
  }

  done(): Promise<void> {
    return this.finished;
  }

  stop(): Promise<void> {
    this.stopping ??= this.stopOnce();
    return this.stopping;
  }

  private async stopOnce(): Promise<void> {
    this.stopRequested = true;
    for (const timer of this.resumeTimers) clearTimeout(timer);
    this.resumeTimers.clear();
    this.stopSignal.abort();
    // Held records are not committed: whoever reads the partition next reads them again.
    this.tails.clear();
    const work = (async () => {
      // Disconnecting while run() is still joining makes kafkajs crash and keep consuming (kafkajs#1639).
      if (this.starting) await this.starting.catch(() => {});
      // The chunk in flight finishes and the handling stops; its commit goes out before the group is left.
      await this.handling.idle();
      await this.commits.idle();
      // Stops fetching (a batch fetched ahead is dropped), leaves the group, closes sockets.
      await this.consumer.disconnect();
    })();
    const outcome = await settleWithin(work, this.stopTimeoutMs);
    if (outcome !== 'ok') {
      this.log('warn', `${this.name}: stop() did not finish cleanly (${outcome}); giving up on the consumer`);
    }
    this.isJoined = false;
    this.events.emit('stopped');
    this.finish();
  }

  private finish(error?: unknown): void {
    if (this.settled) return;
    this.settled = true;
    if (error === undefined) this.settle.resolve();
    else this.settle.reject(error);
  }

  private wireEvents(): void {
    const { events } = this.consumer;
    this.consumer.on(events.GROUP_JOIN, ({ payload }) => {
      this.epoch++;
      this.isJoined = true;
      this.progressAt = Date.now();
      this.events.emit('joined', {
        memberId: payload.memberId,
        isLeader: payload.isLeader,
        assignment: { ...payload.memberAssignment },
      });
    });
    this.consumer.on(events.REBALANCING, ({ payload }) => {
      this.epoch++;
      this.isJoined = false;
      this.events.emit('rebalancing', { memberId: payload.memberId });
    });
    this.consumer.on(events.CRASH, ({ payload }) => {
      this.epoch++;
      this.isJoined = false;
      const error = toKafkaSupsupError(payload.error, 'E_SOURCE', `${this.name}: consumer crashed`);
      this.events.emit('crash', { error, restart: payload.restart });
      if (!payload.restart && !this.stopRequested) this.finish(error);
    });
    this.consumer.on(events.STOP, () => {
      this.isJoined = false;
    });
    const progress = (): void => {
      this.progressAt = Date.now();
    };
    this.consumer.on(events.FETCH, progress);
    this.consumer.on(events.HEARTBEAT, progress);
    this.consumer.on(events.START_BATCH_PROCESS, progress);
  }

  /**
   * kafkajs's eachBatch. It waits for the previous batch to be handled, then starts handling this
   * one without awaiting it: kafkajs fetches only after eachBatch returns, so the next batch is
   * fetched (and decoded) while this one is handled. At most one batch waits fetched ahead.
   */
  private async onBatch(payload: EachBatchPayload, handler: BatchHandler): Promise<void> {
    const { batch } = payload;
    if (batch.messages.length > 0) {
      this.events.emit('fetched', {
        topic: batch.topic,
        partition: batch.partition,
        firstOffset: (batch.messages[0] as KafkaMessage).offset,
        records: batch.messages.length,
      });
    }
    await this.handling.idle();
    this.throwDeferredError();
    if (batch.messages.length === 0) return;
    // Fetched before a failure of this partition sought back (or before stop()): dropped, fetched again.
    if (this.stopRequested || !payload.isRunning() || payload.isStale()) return;
    const received = Date.now();
    const records = batch.messages.map((message) =>
      toRawRecord(batch.topic, batch.partition, message, received),
    );
    const placed = placeTail(this.tails.take(batch.partition), records, this.epoch);
    if ('seekTo' in placed) {
      this.seekBack(batch.topic, batch.partition, placed.seekTo);
      return;
    }
    // The fetch position moves past this batch now; a chunk that fails seeks back to its first offset.
    payload.resolveOffset((records[records.length - 1] as RawRecord).position.offset);
    const epoch = this.epoch;
    this.handling.queue(
      () => this.handleBatch(payload, placed.prepend, records, handler, epoch),
      (error) => this.deferError(error, epoch),
    );
  }

  /**
   * Hands the held records and a fetched batch to the handler in chunks of `maxBatchSize`, committing each after
   * its handler resolved, and holds what does not fill a chunk (chunk-tails.ts).
   */
  private async handleBatch(
    payload: EachBatchPayload,
    held: readonly RawRecord[],
    records: readonly RawRecord[],
    handler: BatchHandler,
    epoch: number,
  ): Promise<void> {
    const { batch } = payload;
    const cut = cutChunks(held, records, this.maxBatchSize, this.lingerMs);
    for (const [i, chunk] of cut.chunks.entries()) {
      // After the batch's last record, commit past trailing control records too (batch.lastOffset() ≥ it).
      const endsBatch = cut.tail.length === 0 && i === cut.chunks.length - 1;
      const passed = await this.handleChunk(payload, chunk, handler, epoch, {
        commitPast: endsBatch ? batch.lastOffset() : undefined,
        highWatermark: batch.highWatermark,
        cutShort: false,
      });
      if (!passed) return;
    }
    if (cut.tail.length === 0) return;
    const tail: HeldTail = {
      records: cut.tail,
      epoch,
      payload,
      batchLastOffset: batch.lastOffset(),
      highWatermark: batch.highWatermark,
    };
    this.tails.hold(batch.partition, tail);
  }

  /**
   * A partition's tail lingered `lingerMs` without a next batch: handed over as a short chunk, after the handling
   * in flight. A tail of an ended epoch is left for the partition's next batch, which seeks back to it.
   */
  private onLingered(partition: number): void {
    const handler = this.handler;
    if (handler === undefined) return;
    const epoch = this.epoch;
    this.handling.queue(
      async () => {
        const tail = this.tails.peek(partition);
        if (tail === undefined || this.stopRequested || tail.epoch !== this.epoch) return;
        if (!tail.payload.isRunning()) return;
        this.tails.take(partition);
        await this.handleChunk(tail.payload, tail.records, handler, tail.epoch, {
          commitPast: tail.batchLastOffset,
          highWatermark: tail.highWatermark,
          cutShort: true,
        });
      },
      (error) => this.deferError(error, epoch),
    );
  }

  /** One chunk through the handler, then its commit queued; false when the handling must stop here. */
  private async handleChunk(
    payload: EachBatchPayload,
    chunk: readonly RawRecord[],
    handler: BatchHandler,
    epoch: number,
    options: { commitPast: string | undefined; highWatermark: string; cutShort: boolean },
  ): Promise<boolean> {
    const { topic, partition } = payload.batch;
    const firstOffset = (chunk[0] as RawRecord).position.offset;
    const lastOffset = (chunk[chunk.length - 1] as RawRecord).position.offset;
    // Stop between chunks: what is not handled stays uncommitted and is read again from the
    // committed offset by whoever owns the partition next.
    if (this.stopRequested || !payload.isRunning()) return false;
    if (this.epoch !== epoch) {
      // The epoch ended while the consumer goes on: the fetch position is already past this
      // chunk (onBatch), so move it back, or a later commit would skip the chunk.
      this.seekBack(topic, partition, firstOffset);
      return false;
    }
    let heartbeatError: unknown;
    const heartbeat = async (): Promise<void> => {
      try {
        await payload.heartbeat();
      } catch (error) {
        heartbeatError ??= error;
        throw error;
      }
    };
    try {
      await handler({
        topic,
        partition,
        records: chunk,
        heartbeat,
        highWatermark: options.highWatermark,
        ...(options.cutShort ? { cutShort: true } : {}),
      });
    } catch (error) {
      // A failed heartbeat means the group is rebalancing: kafkajs must re-join; the chunk stays
      // uncommitted and is read again (from here if the partition stays, else by its next owner).
      if (heartbeatError !== undefined) {
        this.deferError(heartbeatError, epoch);
        this.seekBack(topic, partition, firstOffset);
      } else {
        await this.redeliverLater(payload, topic, partition, firstOffset, error, epoch);
      }
      return false;
    }
    this.failures.delete(partition);
    const next =
      (options.commitPast === undefined ? BigInt(lastOffset) : maxOffset(lastOffset, options.commitPast)) +
      1n;
    this.commits.later(payload, { topic, partition, offset: next.toString(), epoch });
    return true;
  }

  /**
   * Keeps an error of work that runs outside kafkajs's eachBatch call (a failed heartbeat or
   * commit) for the next eachBatch call to throw, so that kafkajs re-joins or retries as it would
   * have. Handling stops at the next chunk. An error from an earlier group membership is dropped.
   */
  private deferError(error: unknown, epoch: number): void {
    if (epoch !== this.epoch) return;
    // Any error kept before is of an earlier epoch (one of this epoch would have ended it): stale.
    this.deferred = { error, epoch };
    // Stop handling further chunks of this membership: kafkajs has to act on the error first.
    this.epoch++;
  }

  private throwDeferredError(): void {
    const deferred = this.deferred;
    this.deferred = undefined;
    if (deferred !== undefined && deferred.epoch + 1 === this.epoch) throw deferred.error;
  }

  private async redeliverLater(
    payload: EachBatchPayload,
    topic: string,
    partition: number,
    firstOffset: string,
    error: unknown,
    epoch: number,
  ): Promise<void> {
    const attempt = (this.failures.get(partition) ?? 0) + 1;
    this.failures.set(partition, attempt);
    if (attempt >= this.maxHandlerAttempts) {
      this.log(
        'error',
        `${this.name}: handler failed ${attempt} times for ${topic}/${partition} at ${firstOffset}; stopping`,
        {
          error: errorMessage(error),
        },
      );
      this.finish(error);
      // Not awaited: stop() waits for this eachBatch call to return.
      void this.stop();
      return;
    }
    const backoffMs = backoffDelay(attempt, { baseMs: this.retryBackoffMs, maxMs: this.maxRetryBackoffMs });
    this.log(
      'warn',
      `${this.name}: handler failed for ${topic}/${partition} at ${firstOffset}; redelivering`,
      {
        attempt,
        backoffMs,
        error: errorMessage(error),
      },
    );
    this.events.emit('batch_failed', { topic, partition, firstOffset, attempt, backoffMs, error });
    // Back-pressure: seek back to the chunk, pause the partition (its fetches stop, other
    // partitions go on, kafkajs keeps the session alive), and resume once the backoff has passed.
    // Stopping: no seek; the next owner reads the chunk from the committed offset. An epoch that
    // ended meanwhile: the seek only, kafkajs acts on what ended it first.
    if (this.stopRequested || !payload.isRunning()) return;
    if (!this.seekBack(topic, partition, firstOffset) || this.epoch !== epoch) return;
    const resume = payload.pause();
    const timer = setTimeout(() => {
      this.resumeTimers.delete(timer);
      if (!this.stopRequested) resume();
    }, backoffMs);
    timer.unref();
    this.resumeTimers.add(timer);
  }

  /**
   * Moves the partition's fetch position back to `offset` (kafkajs applies it before its next
   * fetch; a batch fetched ahead meanwhile is stale and dropped). False if the consumer refused.
   */
  private seekBack(topic: string, partition: number, offset: string): boolean {
    try {
      this.consumer.seek({ topic, partition, offset });
      return true;
    } catch (seekError) {
      // Only a consumer that is gone refuses a fetched record's position. The fetch position is
      // already past the record, so going on would skip it: stop instead, and let the next run read
      // from the committed offset, which is not past it.
      const failure = toKafkaSupsupError(
        seekError,
        'E_SOURCE',
        `${this.name}: seek to ${topic}/${partition}@${offset} failed`,
      );
      this.log('error', failure.message);
      this.finish(failure);
      void this.stop();
      return false;
    }
  }

  private log(level: LogLevelName, message: string, extra: Record<string, unknown> = {}): void {
    try {
      this.options.log?.(level, message, { namespace: 'KafkaSource', ...extra });
    } catch {
      // ignore
    }
  }
}
