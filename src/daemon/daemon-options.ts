import type { LearnerConfig } from '../discovery/learner.js';
import type { Logger } from '../logger.js';
import type { Architecture } from '../model/network/arch.js';
import type { MaskRule } from '../model/training/mask-rule.js';
import type { OptimizerConfig } from '../model/training/optimizers.js';
import type { MaskStore } from '../store/types.js';
import type { Sink } from '../stream/types.js';
import type { OnRegression } from './regression.js';
import type { DaemonObserver } from './telemetry.js';
import type { WriterLeaseOptions } from './writer-lease.js';

/** What a daemon is made of and how it behaves (src/daemon/components.ts builds it from the config). */
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
  /** A store that is empty or behind the source: refuse (default), replay the source, or accept it. */
  readonly onRegression?: OnRegression;
  /** The writer lease (default: 15 s, no standby). */
  readonly writer?: WriterLeaseOptions;
}

export const DEFAULT_WRITER: WriterLeaseOptions = { leaseMs: 15_000, standby: false };

/** Readiness of the daemon: every reason it cannot serve now (empty when ready). */
export interface DaemonHealth {
  readonly ready: boolean;
  readonly reasons: readonly string[];
}

export interface DaemonStats {
  recordsIn: number;
  resultsOut: number;
  deadLetters: number;
  batches: number;
  checks: number;
  commitsApplied: number;
  commitsFenced: number;
}
