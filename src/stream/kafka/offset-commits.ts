/**
 * KafkaSource's offset commits (see source.ts): queued after each handled chunk, sent one request at a time and in
 * order through the eachBatch payload, offsets queued meanwhile merged (the later offset of a partition wins), so
 * at most one request is in flight and one waits. Offsets of an ended epoch are never sent. A retriable failure
 * is retried with the one retry policy (src/retry.ts); what still fails goes to `onError`.
 *
 * Why commits go through the eachBatch payload (`commitOffsetsIfNecessary(offsets)`), not
 * `consumer.commitOffsets()`: the latter is silently skipped once kafkajs's runner stopped, so the batch in flight
 * during stop() would never be committed; the payload's method commits the given offsets directly. Rebalance
 * errors are never retried (they need a re-join first). stop() cuts a retry's backoff short and gives the commit
 * up: its chunk stays uncommitted and is read again by the partition's next owner.
 */
import type { EachBatchPayload } from 'kafkajs';
import { errorMessage } from '../../errors.js';
import { type Backoff, retry } from '../../retry.js';
import type { LogLevelName } from './client.js';
import { isRebalanceError, isRetriableKafkaError } from './errors.js';
import type { PendingCommit } from './source-options.js';

/** Backoff between attempts of an offset commit (the one retry policy, src/retry.ts, with its jitter). */
const COMMIT_BACKOFF: Backoff = { baseMs: 200, maxMs: 5000 };

export interface OffsetCommitsContext {
  readonly attempts: number;
  /** Aborted by stop(): cuts a retry's backoff short (the commit is then given up). */
  readonly signal: AbortSignal;
  /** The source's current epoch: queued offsets of another are dropped. */
  epoch(): number;
  /** A commit that failed for good, with the epoch of its offsets. */
  onError(error: unknown, epoch: number): void;
  onCommitted(entry: PendingCommit): void;
  log(level: LogLevelName, message: string, extra: Record<string, unknown>): void;
}

export class OffsetCommits {
  /** The chain of commit requests; never rejects. */
  private chain: Promise<void> = Promise.resolve();
  private readonly pending = new Map<string, PendingCommit>();
  private payload: EachBatchPayload | undefined;

  constructor(private readonly context: OffsetCommitsContext) {}

  /** Queues an offset commit; the next chunk is handled while it is in flight. */
  later(payload: EachBatchPayload, entry: PendingCommit): void {
    const first = this.pending.size === 0;
    this.pending.set(`${entry.topic}\u0000${entry.partition}`, entry);
    this.payload = payload;
    if (first) this.chain = this.chain.then(() => this.sendPending());
  }

  /** Resolves once every queued commit was sent (or given up). */
  idle(): Promise<void> {
    return this.chain;
  }

  private async sendPending(): Promise<void> {
    const payload = this.payload;
    // Not kept beyond its commit: a payload holds its batch's fetch buffer.
    this.payload = undefined;
    // Offsets of an earlier group membership are dropped: the partition may have moved, and its
    // new owner reads from the last committed offset.
    const epoch = this.context.epoch();
    const entries = [...this.pending.values()].filter((entry) => entry.epoch === epoch);
    this.pending.clear();
    if (payload === undefined || entries.length === 0) return;
    try {
      await this.send(payload, entries);
    } catch (error) {
      this.context.onError(error, entries[0]?.epoch ?? epoch);
    }
  }

  private async send(payload: EachBatchPayload, entries: readonly PendingCommit[]): Promise<void> {
    const byTopic = new Map<string, Array<{ partition: number; offset: string }>>();
    for (const { topic, partition, offset } of entries) {
      const partitions = byTopic.get(topic) ?? [];
      partitions.push({ partition, offset });
      byTopic.set(topic, partitions);
    }
    const topics = [...byTopic].map(([topic, partitions]) => ({ topic, partitions }));
    await retry(() => payload.commitOffsetsIfNecessary({ topics }), {
      ...COMMIT_BACKOFF,
      attempts: this.context.attempts,
      retriable: (error) => isRetriableKafkaError(error) && !isRebalanceError(error),
      signal: this.context.signal,
      onRetry: (attempt, delayMs, error) =>
        this.context.log('warn', 'offset commit failed, retrying', {
          attempt,
          delayMs,
          error: errorMessage(error),
        }),
    });
    for (const entry of entries) this.context.onCommitted(entry);
  }
}
