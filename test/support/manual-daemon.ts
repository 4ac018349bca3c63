/**
 * Doubles for driving a Daemon by hand in unit tests: a sink that keeps results in memory, a source
 * that only hands out the daemon's handler, and the demo stream's first records cut into batches.
 */
import { DEFAULT_DEMO_STREAM, demoStream } from '../../src/daemon/demo-stream.ts';
import type { RawRecord, ResultRecord } from '../../src/records.ts';
import type { Sink, Source, SourceBatch, SourcePositions } from '../../src/stream/types.ts';

export class MemorySink implements Sink {
  readonly name = 'memory';
  readonly results: ResultRecord[] = [];
  async writeResults(results: readonly ResultRecord[]) {
    this.results.push(...results);
  }
  async writeDeadLetters() {}
  async writeEvents() {}
  async close() {}
}

/** A source the test drives by hand: it only hands out the daemon's handler. */
export class ManualSource implements Source {
  readonly name = 'manual';
  /** The test delivers a failed batch again by hand, as Kafka would. */
  readonly redelivers: boolean;
  handler: ((batch: SourceBatch) => Promise<void>) | null = null;
  private readonly committed: SourcePositions | undefined;
  constructor(options: { redelivers?: boolean; committed?: SourcePositions } = {}) {
    this.redelivers = options.redelivers ?? true;
    this.committed = options.committed;
  }
  async start(handler: (batch: SourceBatch) => Promise<void>) {
    this.handler = handler;
  }
  async done() {}
  async stop() {}
  /** The committed positions it was made with (none: nothing committed). */
  async positions(): Promise<SourcePositions> {
    return this.committed ?? { offsets: {} };
  }
}

/** The demo stream's first `count` records (segments of 300). */
export function demoRecords(count: number): RawRecord[] {
  const records: RawRecord[] = [];
  for (const r of demoStream({ ...DEFAULT_DEMO_STREAM, recordsPerSegment: 300 })) {
    records.push(r);
    if (records.length === count) break;
  }
  return records;
}

/** Records [from, to) as one batch of partition demo/0. */
export function demoBatch(records: readonly RawRecord[], from: number, to: number): SourceBatch {
  return { topic: 'demo', partition: 0, records: records.slice(from, to), heartbeat: async () => {} };
}
