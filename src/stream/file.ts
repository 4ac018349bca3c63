/**
 * File and stdio ends of the stream: a JSONL source over a file or any Readable (stdin), and sinks
 * that append JSON lines to files (fsync'd per write call) or write them to stdout/stderr.
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
import { once } from 'node:events';
import { constants } from 'node:fs';
import { access, type FileHandle, mkdir, open, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { encodeDeadLetterJson, encodeEvent, encodeResult } from '../codec/record-codec.js';
import { errorMessage, SupsupError } from '../errors.js';
import { positiveInt } from './checks.js';
import type { DaemonEvent, DeadLetter, RawRecord, ResultRecord, Sink, Source, SourceBatch } from './types.js';

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
  private settle!: { resolve: () => void; reject: (error: unknown) => void };

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
    this.finished = new Promise<void>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
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
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.stopTimeoutMs);
      timer.unref();
    });
    await Promise.race([this.loop.catch(() => {}), timeout]);
    clearTimeout(timer);
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

// ---------------------------------------------------------------------------------------------------------------
// Sinks

/** Appends JSON lines to one file; each write call is one write(2) loop plus fsync, serialized. */
class AppendFile {
  private handle: Promise<FileHandle> | undefined;
  private tail: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(readonly path: string) {}

  append(data: Buffer): Promise<void> {
    if (this.closed) {
      return Promise.reject(
        new SupsupError('E_SINK', `${this.path}: write after close`, { retriable: false }),
      );
    }
    const run = this.tail.then(() => this.write(data));
    this.tail = run.catch(() => {});
    return run;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.tail;
    if (this.handle) {
      const handle = await this.handle.catch(() => undefined);
      await handle?.close().catch(() => {});
    }
  }

  private async write(data: Buffer): Promise<void> {
    try {
      this.handle ??= openForAppend(this.path);
      const handle = await this.handle;
      let offset = 0;
      while (offset < data.length) {
        const { bytesWritten } = await handle.write(data, offset, data.length - offset);
        offset += bytesWritten;
      }
      await handle.sync();
    } catch (error) {
      if (error instanceof SupsupError) throw error;
      throw new SupsupError('E_SINK', `writing ${this.path} failed: ${errorMessage(error)}`, {
        cause: error,
        retriable: isTransientFsError(error),
      });
    }
  }
}

async function openForAppend(path: string): Promise<FileHandle> {
  const existed = await stat(path).then(
    () => true,
    () => false,
  );
  let handle: FileHandle;
  try {
    handle = await open(path, 'a', 0o640);
  } catch (error) {
    throw new SupsupError('E_SINK', `cannot open output file ${path}: ${errorMessage(error)}`, {
      cause: error,
      retriable: false,
    });
  }
  if (!existed) {
    // A new file is durable only once its directory entry is: fsync the directory (best effort).
    try {
      const dir = await open(dirname(path), 'r');
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    } catch {
      // not supported on this platform / filesystem
    }
  }
  return handle;
}

function isTransientFsError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'EAGAIN' || code === 'EINTR' || code === 'ENOSPC' || code === 'EIO' || code === 'EBUSY';
}

function jsonLines<T>(items: readonly T[], encode: (item: T) => Buffer): Buffer {
  const parts: Buffer[] = [];
  const newline = Buffer.from('\n');
  for (const item of items) parts.push(encode(item), newline);
  return Buffer.concat(parts);
}

/**
 * Results, dead letters and events appended as JSON lines to three files. A write resolves after
 * the bytes were written and fsync'd, so an acknowledged write survives a crash.
 */
export class JsonlFileSink implements Sink {
  readonly name: string;
  private readonly results: AppendFile;
  private readonly deadLetters: AppendFile;
  private readonly events: AppendFile;
  private closing: Promise<void> | undefined;

  constructor(resultsPath: string, deadLetterPath: string, eventsPath: string) {
    this.name = `file:${resultsPath}`;
    this.results = new AppendFile(resultsPath);
    this.deadLetters = new AppendFile(deadLetterPath);
    this.events = new AppendFile(eventsPath);
  }

  /** Creates the files' directories and checks they are writable, before anything is learned. */
  async check(): Promise<void> {
    for (const file of [this.results, this.deadLetters, this.events]) {
      const dir = dirname(file.path);
      try {
        await mkdir(dir, { recursive: true });
        await access(dir, constants.W_OK);
      } catch (error) {
        throw new SupsupError('E_SINK', `output directory ${dir} is not writable: ${errorMessage(error)}`, {
          cause: error,
          retriable: false,
        });
      }
    }
  }

  async writeResults(results: readonly ResultRecord[]): Promise<void> {
    if (results.length > 0) await this.results.append(jsonLines(results, encodeResult));
  }

  async writeDeadLetters(letters: readonly DeadLetter[]): Promise<void> {
    if (letters.length > 0) await this.deadLetters.append(jsonLines(letters, encodeDeadLetterJson));
  }

  async writeEvents(events: readonly DaemonEvent[]): Promise<void> {
    if (events.length > 0) await this.events.append(jsonLines(events, encodeEvent));
  }

  close(): Promise<void> {
    this.closing ??= Promise.all([this.results.close(), this.deadLetters.close(), this.events.close()]).then(
      () => {},
    );
    return this.closing;
  }
}

export interface StdoutSinkOptions {
  /** Results go here (default process.stdout). */
  readonly out?: Writable;
  /** Dead letters and events go here (default process.stderr). */
  readonly err?: Writable;
}

/**
 * Results as JSON lines on stdout; dead letters and events (tagged with `"kind"`) on stderr. A write
 * resolves once the stream accepted the bytes and, if it signalled backpressure, drained.
 */
export class StdoutSink implements Sink {
  readonly name = 'stdout';
  private readonly out: Writable;
  private readonly err: Writable;
  private failure: Error | undefined;
  private closed = false;
  private readonly onError = (error: Error): void => {
    this.failure ??= error;
  };

  constructor(options: StdoutSinkOptions = {}) {
    this.out = options.out ?? process.stdout;
    this.err = options.err ?? process.stderr;
    // An EPIPE on stdout must fail the next write, not crash the process as an unhandled 'error'.
    this.out.on('error', this.onError);
    if (this.err !== this.out) this.err.on('error', this.onError);
  }

  async writeResults(results: readonly ResultRecord[]): Promise<void> {
    if (results.length > 0) await this.write(this.out, jsonLines(results, encodeResult));
  }

  async writeDeadLetters(letters: readonly DeadLetter[]): Promise<void> {
    if (letters.length > 0) {
      await this.write(
        this.err,
        jsonLines(letters, (letter) => tagged('dead_letter', encodeDeadLetterJson(letter))),
      );
    }
  }

  async writeEvents(events: readonly DaemonEvent[]): Promise<void> {
    if (events.length > 0) {
      await this.write(
        this.err,
        jsonLines(events, (event) => tagged('event', encodeEvent(event))),
      );
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Never end process.stdout/stderr; just wait until what was written has drained.
    await Promise.all([drained(this.out), this.err === this.out ? undefined : drained(this.err)]);
    this.out.off('error', this.onError);
    if (this.err !== this.out) this.err.off('error', this.onError);
  }

  private async write(stream: Writable, data: Buffer): Promise<void> {
    if (this.closed) throw new SupsupError('E_SINK', 'stdout sink: write after close', { retriable: false });
    if (this.failure) throw sinkStreamError(this.failure);
    try {
      await writeChunk(stream, data);
    } catch (error) {
      throw sinkStreamError(error);
    }
  }
}

function sinkStreamError(error: unknown): SupsupError {
  return error instanceof SupsupError
    ? error
    : new SupsupError('E_SINK', `writing to the output stream failed: ${errorMessage(error)}`, {
        cause: error,
        retriable: false,
      });
}

/** `{"kind":...,` + the rest of a JSON object. */
function tagged(kind: string, json: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`{"kind":${JSON.stringify(kind)},`), json.subarray(1)]);
}

/** Writes one chunk; resolves after the write callback and, if write() returned false, after 'drain'. */
export function writeChunk(stream: Writable, data: Buffer): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (stream.destroyed || stream.writableEnded) {
      reject(new SupsupError('E_SINK', 'the output stream is closed', { retriable: false }));
      return;
    }
    let waiting = 1;
    let settled = false;
    const cleanup = (): void => {
      stream.off('drain', onDrain);
      stream.off('close', onClose);
    };
    const finish = (error?: Error | null): void => {
      if (settled) return;
      if (error) {
        settled = true;
        cleanup();
        reject(error);
        return;
      }
      waiting--;
      if (waiting === 0) {
        settled = true;
        cleanup();
        resolve();
      }
    };
    const onDrain = (): void => finish();
    const onClose = (): void => finish(new Error('the output stream closed before it drained'));
    const ok = stream.write(data, (error) => finish(error));
    if (!ok) {
      waiting++;
      stream.on('drain', onDrain);
      stream.on('close', onClose);
    }
  });
}

async function drained(stream: Writable): Promise<void> {
  if (!stream.writableNeedDrain || stream.destroyed) return;
  await Promise.race([once(stream, 'drain'), once(stream, 'close')]).catch(() => {});
}
