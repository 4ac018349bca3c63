/**
 * A store built by the real daemon for the mask-archive tests: the demo stream's first records (segments of
 * 300, 5 tasks) through a Daemon on a file store, batch by batch; and daemons that serve the same records again
 * on a store (every offset already applied, so they only infer: the daemon's predictions for the store's masks).
 */
import { Daemon, type DaemonOptions } from '../../src/daemon/daemon.ts';
import { DEFAULT_LEARNER } from '../../src/discovery/learner.ts';
import { PAPER_POLICY } from '../../src/discovery/policy.ts';
import { silentLogger } from '../../src/logger.ts';
import { makeArchitecture } from '../../src/model/network/arch.ts';
import { defaultOptimizer } from '../../src/model/training/optimizers.ts';
import type { RawRecord, ResultRecord } from '../../src/records.ts';
import type { MaskStore } from '../../src/store/types.ts';
import { demoBatch, demoRecords, ManualSource, MemorySink } from './manual-daemon.ts';

export const SOURCE_ARCH = makeArchitecture({ arch: 'lenet', outputs: 100 });
export const SOURCE_SEED = 1;
export const BATCH = 128;

export function daemonOptions(store: MaskStore, sink: MemorySink): DaemonOptions {
  return {
    sink,
    store,
    // The shared test Redis may persist nothing; these tests never restart it.
    allowVolatileStore: true,
    model: {
      arch: SOURCE_ARCH,
      seed: SOURCE_SEED,
      optimizer: defaultOptimizer('rmsprop'),
      rule: { kind: 'threshold' },
    },
    learner: { ...DEFAULT_LEARNER, policy: PAPER_POLICY },
    microBatch: BATCH,
    maxRecordBytes: 1 << 20,
    logger: silentLogger,
    retryBackoff: { baseMs: 1, maxMs: 5 },
  };
}

/** Hands records [from, to) to a daemon on `store` in batches of BATCH, then stops it; its results. */
export async function runDaemon(
  store: MaskStore,
  records: readonly RawRecord[],
  from: number,
  to: number,
): Promise<ResultRecord[]> {
  const sink = new MemorySink();
  const daemon = await Daemon.open(daemonOptions(store, sink));
  const source = new ManualSource();
  try {
    await daemon.run(source);
    for (let at = from; at < to; at += BATCH) {
      await source.handler?.(demoBatch(records, at, Math.min(to, at + BATCH)));
    }
  } finally {
    await daemon.stop();
  }
  return sink.results;
}

export function sourceRecords(count: number): RawRecord[] {
  return demoRecords(count);
}
