/** Options and events of KafkaSource (see source.ts), the options checked, and its consumer. */
import type { Consumer } from 'kafkajs';
import { SupsupError } from '../../errors.js';
import { nonNegativeInt, positiveInt } from '../checks.js';
import type { SourceBatch } from '../types.js';
import { createKafka, type KafkaClientOptions } from './client.js';

export interface KafkaSourceOptions extends KafkaClientOptions {
  readonly groupId: string;
  readonly topic: string;
  /**
   * Handler calls in flight at once. Only 1 is supported (the model is single-threaded;
   * partitionsConsumedConcurrently is 1); the option exists so a config asking for more fails loudly.
   */
  readonly maxInFlightBatches?: number;
  /**
   * Records per chunk handed to the handler (default 256), cut from each partition's record sequence: a fetch's
   * leftover waits for the partition's next records (see `lingerMs`).
   */
  readonly maxBatchSize?: number;
  /**
   * How long records that do not fill a chunk wait for more before they are handed over as a short chunk (default
   * 1000 ms). 0: never wait (chunks then follow kafkajs's fetches, and so can differ between runs).
   */
  readonly lingerMs?: number;
  readonly sessionTimeout?: number;
  readonly rebalanceTimeout?: number;
  readonly heartbeatInterval?: number;
  /** A group without committed offsets starts at the earliest record (default true) or the latest. */
  readonly fromBeginning?: boolean;
  /** Broker long-poll wait (default 1000 ms; bounds how long stop() waits for an idle fetch). */
  readonly maxWaitTimeInMs?: number;
  /**
   * Bytes fetched per partition and request (default 4 MiB; kafkajs's own default is 1 MiB, about
   * 330 binary LeNet records, so a catching-up consumer paid a fetch, a produce and two commits per
   * 330 records).
   */
  readonly maxBytesPerPartition?: number;
  /** First redelivery delay after a handler error (default 500 ms); doubles per consecutive failure. */
  readonly retryBackoffMs?: number;
  /** Cap of the redelivery delay (default 30 s). */
  readonly maxRetryBackoffMs?: number;
  /**
   * Consecutive handler failures on one partition after which the source gives up: it stops (the
   * chunk stays uncommitted) and done() rejects with the handler's error, so a supervisor can restart
   * the daemon instead of it retrying forever. Default: unlimited (redeliver with capped backoff).
   */
  readonly maxHandlerAttempts?: number;
  /** Attempts of an offset commit that fails with a retriable, non-rebalance error (default 5). */
  readonly commitAttempts?: number;
  /** Upper bound of stop() (default 20 s). */
  readonly stopTimeoutMs?: number;
  /**
   * A kafkajs consumer to drive instead of one made from these options (its group and fetch
   * settings are then its own). For embedding and for tests that script the consumer's side.
   */
  readonly consumer?: Consumer;
}

export interface KafkaSourceEventMap {
  /** Joined (or re-joined) the group; the assignment is topic → partitions. */
  joined: [{ memberId: string; isLeader: boolean; assignment: Record<string, number[]> }];
  rebalancing: [{ memberId: string }];
  /** kafkajs crashed; with restart=false the consumer is dead and done() rejects. */
  crash: [{ error: SupsupError; restart: boolean }];
  /** The handler threw: the chunk will be delivered again after backoffMs. */
  batch_failed: [
    {
      topic: string;
      partition: number;
      firstOffset: string;
      attempt: number;
      backoffMs: number;
      error: unknown;
    },
  ];
  /**
   * kafkajs delivered a fetched batch; while an earlier batch is still being handled, it waits
   * (fetched ahead) until that one is done.
   */
  fetched: [{ topic: string; partition: number; firstOffset: string; records: number }];
  /** `offset` (the next offset to read) was committed for the partition. */
  committed: [{ topic: string; partition: number; offset: string }];
  stopped: [];
}

export type BatchHandler = (batch: SourceBatch) => Promise<void>;

/** The next offset to read of a partition, to be committed, and the epoch of the work that read it. */
export interface PendingCommit {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly epoch: number;
}

/** The numbers KafkaSource works with, its options' defaults applied. */
export interface SourceSettings {
  readonly maxBatchSize: number;
  readonly lingerMs: number;
  readonly retryBackoffMs: number;
  readonly maxRetryBackoffMs: number;
  readonly heartbeatIntervalMs: number;
  readonly commitAttempts: number;
  readonly stopTimeoutMs: number;
  readonly maxHandlerAttempts: number;
}

/** Checks the options (E_CONFIG: no topic or group, more than one batch in flight, a bad number). */
export function sourceSettings(options: KafkaSourceOptions): SourceSettings {
  if (!options.topic) throw new SupsupError('E_CONFIG', 'kafka source: topic is required');
  if (!options.groupId) throw new SupsupError('E_CONFIG', 'kafka source: groupId is required');
  const inFlight = options.maxInFlightBatches ?? 1;
  if (inFlight !== 1) {
    throw new SupsupError(
      'E_CONFIG',
      `kafka source: maxInFlightBatches=${inFlight} is not supported; batches are handled one at a time`,
    );
  }
  return {
    maxBatchSize: positiveInt('maxBatchSize', options.maxBatchSize ?? 256),
    lingerMs: nonNegativeInt('lingerMs', options.lingerMs ?? 1000),
    retryBackoffMs: positiveInt('retryBackoffMs', options.retryBackoffMs ?? 500),
    maxRetryBackoffMs: positiveInt('maxRetryBackoffMs', options.maxRetryBackoffMs ?? 30_000),
    heartbeatIntervalMs: positiveInt('heartbeatInterval', options.heartbeatInterval ?? 3000),
    commitAttempts: positiveInt('commitAttempts', options.commitAttempts ?? 5),
    stopTimeoutMs: positiveInt('stopTimeoutMs', options.stopTimeoutMs ?? 20_000),
    maxHandlerAttempts:
      options.maxHandlerAttempts === undefined
        ? Number.POSITIVE_INFINITY
        : positiveInt('maxHandlerAttempts', options.maxHandlerAttempts),
  };
}

const DEFAULT_MAX_BYTES_PER_PARTITION = 4 * 1024 * 1024;

/** The group member's kafkajs consumer (the first Kafka client checks kafkajs's patches). */
export function createSourceConsumer(options: KafkaSourceOptions, heartbeatIntervalMs: number): Consumer {
  return createKafka(options).consumer({
    groupId: options.groupId,
    allowAutoTopicCreation: false,
    sessionTimeout: options.sessionTimeout ?? 30_000,
    rebalanceTimeout: options.rebalanceTimeout ?? 60_000,
    heartbeatInterval: heartbeatIntervalMs,
    maxWaitTimeInMs: options.maxWaitTimeInMs ?? 1000,
    maxBytesPerPartition: options.maxBytesPerPartition ?? DEFAULT_MAX_BYTES_PER_PARTITION,
  });
}
