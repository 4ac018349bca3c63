/**
 * The file and stdio sinks: JSON lines appended to files (fsync'd per write call), or written to
 * stdout (results) and stderr (dead letters and events).
 */
import { once } from 'node:events';
import { constants } from 'node:fs';
import { access, type FileHandle, mkdir, open, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Writable } from 'node:stream';
import { encodeDeadLetterJson, encodeEvent, encodeResult } from '../codec/record-codec.js';
import { errorMessage, SupsupError } from '../errors.js';
import type { BatchDecision, DaemonEvent, DeadLetter, ResultRecord, Sink } from './types.js';

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
 * Results, dead letters, events and (where a path is given) the decision log appended as JSON lines to files. A write resolves after
 * the bytes were written and fsync'd, so an acknowledged write survives a crash.
 */
export class JsonlFileSink implements Sink {
  readonly name: string;
  private readonly results: AppendFile;
  private readonly deadLetters: AppendFile;
  private readonly events: AppendFile;
  private readonly decisions: AppendFile | null;
  private closing: Promise<void> | undefined;

  /** `decisionsPath`: where the decision log goes (none: the sink keeps no decision log). */
  constructor(resultsPath: string, deadLetterPath: string, eventsPath: string, decisionsPath?: string) {
    this.name = `file:${resultsPath}`;
    this.results = new AppendFile(resultsPath);
    this.deadLetters = new AppendFile(deadLetterPath);
    this.events = new AppendFile(eventsPath);
    this.decisions = decisionsPath === undefined ? null : new AppendFile(decisionsPath);
  }

  private files(): AppendFile[] {
    return [
      this.results,
      this.deadLetters,
      this.events,
      ...(this.decisions === null ? [] : [this.decisions]),
    ];
  }

  /** Creates the files' directories and checks they are writable, before anything is learned. */
  async check(): Promise<void> {
    for (const file of this.files()) {
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

  async writeDecisions(decisions: readonly BatchDecision[]): Promise<void> {
    if (decisions.length > 0 && this.decisions !== null) {
      await this.decisions.append(jsonLines(decisions, (d) => Buffer.from(JSON.stringify(d))));
    }
  }

  close(): Promise<void> {
    this.closing ??= Promise.all(this.files().map((file) => file.close())).then(() => {});
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
