import type { Source, SourceBatch, SourceHealth, SourcePositions } from '../stream/types.js';

/** A source that reports the records its handler has finished, for a progress line. */
export class ProgressSource implements Source {
  readonly name: string;
  readonly redelivers?: boolean;
  readonly health?: () => SourceHealth;
  readonly positions?: () => Promise<SourcePositions>;
  readonly rewind?: (applied: Readonly<Record<string, string>>) => Promise<void>;
  private readonly inner: Source;
  private readonly onProgress: (records: number) => void;
  private handled = 0;

  constructor(inner: Source, onProgress: (records: number) => void) {
    this.inner = inner;
    this.name = inner.name;
    this.onProgress = onProgress;
    if (inner.redelivers !== undefined) this.redelivers = inner.redelivers;
    // The optional members exist exactly where the wrapped source has them.
    if (inner.health !== undefined) this.health = inner.health.bind(inner);
    if (inner.positions !== undefined) this.positions = inner.positions.bind(inner);
    if (inner.rewind !== undefined) this.rewind = inner.rewind.bind(inner);
  }

  start(handler: (batch: SourceBatch) => Promise<void>): Promise<void> {
    return this.inner.start(async (batch) => {
      await handler(batch);
      this.handled += batch.records.length;
      this.onProgress(this.handled);
    });
  }

  done(): Promise<void> {
    return this.inner.done();
  }

  stop(): Promise<void> {
    return this.inner.stop();
  }
}
