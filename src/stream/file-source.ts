/**
 * The file and stdin sources: JSON lines of a file or of any Readable (stdin).
 *
 * Source positions: topic (default 'file' / 'stdin'), partition 0, offset = 0-based line number (plus
 * `firstOffset`, where a stdin session continues the numbering of earlier ones).
 * Blank lines are skipped but keep their number, so an offset always names the same line. Reading is
 * streaming with bounded memory: a line longer than `maxLineBytes` keeps only its first
 * `maxLineBytes + 1` bytes and becomes a record that fails the decoder's size check (keep
 * `maxLineBytes` ≥ the decoder's `maxBytes`). A batch is cut at `batchSize` lines or `maxBatchBytes`.
 *
 * There is nothing to commit for a file: the handler's caller (the daemon) remembers the last
 * handled offset (`lastHandledOffset()`) and passes it back as `startAfter` to resume. A handler that
 * throws stops the source: `done()` rejects with that error and no later batch is delivered.
 */
import { type FileHandle, open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { errorMessage, SupsupError } from '../errors.js';
import { positiveInt, type Settlement, settlement, settleWithin } from './checks.js';
import type { RawRecord, Source, SourceBatch } from './types.js';

export interface LineSourceOptions {
  /** Topic of the positions (default 'file' for files, 'stdin' for stdin). */
  readonly topic?: string;
  /** Lines per batch (default 256). */
  readonly batchSize?: number;
  /** Resume: skip records whose offset (line number) is ≤ this (decimal string). */
  readonly startAfter?: string;
  /**
   * Offset of the first line (default 0): a stdin session numbers its lines on from where earlier sessions
   * ended, so its records are never taken for ones already applied.
   */
  readonly firstOffset?: string;
  /** Longest line kept whole (default 16 MiB); longer lines are cut to maxLineBytes + 1 bytes. */
  readonly maxLineBytes?: number;
  /** A batch is also cut once its lines hold this many bytes (default 64 MiB). */
  readonly maxBatchBytes?: number;
  /** Upper bound of stop() (default 25 s): after it, stop() resolves even if the handler still runs. */
  readonly stopTimeoutMs?: number;
}

const NO_HEADERS: Readonly<Record<string, never>> = Object.freeze(Object.create(null));
const NEWLINE = 0x0a;

/** The shared line-batching engine of JsonlFileSource and StdinSource. */
abstract class LineSource implements Source {
  abstract readonly name: string;
  private readonly topic: string;
  private readonly batchSize: number;
  private readonly startAfter: bigint | undefined;
  private readonly firstOffset: bigint;
  private readonly maxLineBytes: number;
  private readonly maxBatchBytes: number;
  private readonly stopTimeoutMs: number;

  private started = false;
  private stopRequested = false;
  private stream: Readable | undefined;
  private loop: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private lastHandled: string | undefined;
  private handlerRunning = false;
  private readonly finished: Promise<void>;
  private readonly settle: Settlement;

  protected constructor(defaultTopic: string, options: LineSourceOptions) {
    this.topic = options.topic ?? defaultTopic;
    this.batchSize = positiveInt('batchSize', options.batchSize ?? 256);
    this.maxLineBytes = positiveInt('maxLineBytes', options.maxLineBytes ?? 16 * 1024 * 1024);
    this.maxBatchBytes = positiveInt('maxBatchBytes', options.maxBatchBytes ?? 64 * 1024 * 1024);
    this.stopTimeoutMs = positiveInt('stopTimeoutMs', options.stopTimeoutMs ?? 25_000);
    if (options.startAfter !== undefined) {
      if (!/^-?[0-9]{1,19}$/.test(options.startAfter)) {
        throw new SupsupError('E_CONFIG', `startAfter must be a decimal offset, got ${options.startAfter}`);
      }
      this.startAfter = BigInt(options.startAfter);
    }
    if (options.firstOffset !== undefined && !/^(0|[1-9][0-9]{0,18})$/.test(options.firstOffset)) {
      throw new SupsupError('E_CONFIG', `firstOffset must be a decimal offset, got ${options.firstOffset}`);
    }
    this.firstOffset = BigInt(options.firstOffset ?? '0');
    this.settle = settlement();
    this.finished = this.settle.promise;
    // done() may never be awaited (e.g. the daemon only calls stop()); that must not be an unhandled rejection.
    this.finished.catch(() => {});
  }

  /** Opens the input; errors here reject start(). */
  protected abstract openStream(): Promise<Readable>;

  async start(handler: (batch: SourceBatch) => Promise<void>): Promise<void> {
    if (this.started) throw new SupsupError('E_SOURCE', `${this.name}: start() called twice`);
    this.started = true;
    if (this.stopRequested) {
      this.settle.resolve();
      return;
    }
    try {
      this.stream = await this.openStream();
    } catch (error) {
      this.settle.reject(error);
      throw error;
    }
    this.loop = this.run(this.stream, handler).then(
      () => this.settle.resolve(),
      (error: unknown) => this.settle.reject(error),
    );
  }

  done(): Promise<void> {
    return this.finished;
  }

  stop(): Promise<void> {
    this.stopping ??= this.stopOnce();
    return this.stopping;
  }

  /** Offset of the last record of the last batch the handler resolved (the resume point), if any. */
  lastHandledOffset(): string | undefined {
    return this.lastHandled;
  }

  private async stopOnce(): Promise<void> {
    this.stopRequested = true;
    if (!this.loop) {
      this.settle.resolve();
      return;
    }
    // Unblocks a read that waits for data (stdin); a batch in flight finishes first (checked in run()).
    if (!this.handlerRunning) this.stream?.destroy();
    await settleWithin(this.loop, this.stopTimeoutMs);
    this.stream?.destroy();
    this.settle.resolve();
  }

  private async run(stream: Readable, handler: (batch: SourceBatch) => Promise<void>): Promise<void> {
    let lineNo = this.firstOffset - 1n;
    let batch: RawRecord[] = [];
    let batchBytes = 0;
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      const records = batch;
      batch = [];
      batchBytes = 0;
      this.handlerRunning = true;
      try {
        await handler({ topic: this.topic, partition: 0, records, heartbeat: async () => {} });
      } finally {
        this.handlerRunning = false;
      }
      this.lastHandled = records[records.length - 1].position.offset;
    };
    try {
      for await (const line of readLines(stream, this.maxLineBytes)) {
        lineNo++;
        if (this.stopRequested) return;
        if (this.startAfter !== undefined && lineNo <= this.startAfter) continue;
        if (isBlank(line)) continue;
        batch.push({
          position: { topic: this.topic, partition: 0, offset: lineNo.toString() },
          key: null,
          value: line,
          headers: NO_HEADERS,
          timestamp: Date.now(),
        });
        batchBytes += line.length;
        if (batch.length >= this.batchSize || batchBytes >= this.maxBatchBytes) {
          await flush();
          if (this.stopRequested) return;
        }
      }
      if (!this.stopRequested) await flush();
    } catch (error) {
      if (this.stopRequested && !this.handlerFailed(error)) return;
      throw error;
    }
  }

  private handlerFailed(error: unknown): boolean {
    return !(error instanceof ReadError);
  }
}

/** A read error of the input stream (as opposed to an error thrown by the handler). */
class ReadError extends SupsupError {}

/** JSONL lines of a file. */
export class JsonlFileSource extends LineSource {
  readonly name: string;

  constructor(
    readonly path: string,
    options: LineSourceOptions = {},
  ) {
    super('file', options);
    this.name = `file:${path}`;
  }

  protected async openStream(): Promise<Readable> {
    let handle: FileHandle;
    try {
      handle = await open(this.path, 'r');
    } catch (error) {
      throw new SupsupError('E_SOURCE', `cannot open input file ${this.path}: ${errorMessage(error)}`, {
        cause: error,
        retriable: false,
      });
    }
    return handle.createReadStream({ highWaterMark: 64 * 1024 });
  }
}

/** JSONL lines of stdin, or of any Readable. */
export class StdinSource extends LineSource {
  readonly name: string;

  constructor(
    private readonly input: Readable = process.stdin,
    options: LineSourceOptions = {},
  ) {
    super('stdin', options);
    this.name = input === process.stdin ? 'stdin' : 'readable';
  }

  protected async openStream(): Promise<Readable> {
    return this.input;
  }
}

/**
 * Lines of a byte stream, without the newline (and without a trailing CR). A line longer than
 * `maxLineBytes` keeps only its first maxLineBytes + 1 bytes; the rest is dropped as it streams by.
 */
export async function* readLines(stream: Readable, maxLineBytes: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let kept = 0;
  let truncated = false;
  const cap = maxLineBytes + 1;
  const take = (chunk: Buffer, from: number, to: number): void => {
    if (kept >= cap) {
      if (to > from) truncated = true;
      return;
    }
    const end = Math.min(to, from + (cap - kept));
    if (end < to) truncated = true;
    if (end > from) {
      parts.push(chunk.subarray(from, end));
      kept += end - from;
    }
  };
  const finish = (): Buffer => {
    // Copies, so a short line never pins a whole 64 KiB read chunk.
    let line = Buffer.concat(parts, kept);
    if (!truncated && line.length > 0 && line[line.length - 1] === 0x0d)
      line = line.subarray(0, line.length - 1);
    parts = [];
    kept = 0;
    truncated = false;
    return line;
  };
  try {
    for await (const chunk of stream) {
      const buf: Buffer = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : (chunk as Buffer);
      let from = 0;
      for (;;) {
        const nl = buf.indexOf(NEWLINE, from);
        if (nl < 0) {
          take(buf, from, buf.length);
          break;
        }
        take(buf, from, nl);
        yield finish();
        from = nl + 1;
      }
    }
  } catch (error) {
    throw new ReadError('E_SOURCE', `reading the input failed: ${errorMessage(error)}`, {
      cause: error,
      retriable: false,
    });
  }
  if (kept > 0 || truncated) yield finish();
}

function isBlank(line: Buffer): boolean {
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c !== 0x20 && c !== 0x09 && c !== 0x0d) return false;
  }
  return true;
}
