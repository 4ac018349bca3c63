import type { RawRecord } from '../records.js';
import { compareOffsets } from '../store/offsets.js';
import type { Source, SourceBatch } from '../stream/types.js';

/**
 * A finite, single-partition source over an in-process iterable (the built-in demo stream). Records
 * at or before `startAfter` (the partition's applied offset) are skipped, so a restart resumes.
 */
export class IterableSource implements Source {
  readonly name: string;
  private readonly records: () => Iterable<RawRecord>;
  private readonly batchSize: number;
  private readonly startAfter: string | undefined;
  private readonly onProgress: (delivered: number) => void;
  private stopped = false;
  private running: Promise<void> | null = null;

  constructor(options: {
    name: string;
    records: () => Iterable<RawRecord>;
    batchSize: number;
    startAfter?: string;
    onProgress?: (delivered: number) => void;
  }) {
    this.name = options.name;
    this.records = options.records;
    this.batchSize = options.batchSize;
    this.startAfter = options.startAfter;
    this.onProgress = options.onProgress ?? (() => {});
  }

  async start(handler: (batch: SourceBatch) => Promise<void>): Promise<void> {
    this.running = this.pump(handler);
    // Surface an immediate failure to the caller of start(); later ones through done().
    this.running.catch(() => {});
  }

  done(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.running?.catch(() => {});
  }

  private async pump(handler: (batch: SourceBatch) => Promise<void>): Promise<void> {
    let pending: RawRecord[] = [];
    let delivered = 0;
    const flush = async () => {
      const first = pending[0];
      if (first === undefined) return;
      const batch: SourceBatch = {
        topic: first.position.topic,
        partition: first.position.partition,
        records: pending,
        heartbeat: async () => {},
      };
      pending = [];
      await handler(batch);
      delivered += batch.records.length;
      this.onProgress(delivered);
      // Let timers and I/O run between batches (signals, HTTP probes).
      await new Promise((resolve) => setImmediate(resolve));
    };
    for (const record of this.records()) {
      if (this.stopped) return;
      if (this.startAfter !== undefined && compareOffsets(record.position.offset, this.startAfter) <= 0)
        continue;
      pending.push(record);
      if (pending.length === this.batchSize) await flush();
    }
    if (!this.stopped) await flush();
  }
}
