import { open, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { SupsupError } from '../errors.js';
import type { StorePosition } from '../store/types.js';
import type { Source, SourceBatch, SourcePositions } from '../stream/types.js';

/** A stdin session recorded in a checkpoint: its id and the offset of its first line. */
export interface CheckpointSession {
  readonly id: string;
  readonly firstOffset: string;
}

interface CheckpointDocument {
  readonly offsets: Readonly<Record<string, string>>;
  /** The store position at the last save: a store found behind it later has regressed. */
  readonly store?: StorePosition;
  readonly session?: CheckpointSession;
}

/**
 * Consumed offsets of a source that has no broker to commit to (files, stdin, the demo): written
 * after the handler returned, i.e. after the state write and the sink's acknowledgement, exactly
 * where Kafka would commit. A restart resumes after the checkpoint; records between it and the
 * store's applied offset are inferred again (never learned twice) and their results written again.
 *
 * The file is `{"offsets": {...}, "store": {"epoch", "sequence"}, "session": {"id", "firstOffset"}}`: with
 * the offsets it records the store position of the same moment (so a store found behind it at the next start
 * has regressed) and, for stdin, the session the offsets belong to. A file of only offsets (older builds) is
 * read as such.
 */
export class OffsetCheckpoint {
  private readonly file: string;
  private document: CheckpointDocument = { offsets: {} };

  constructor(file: string) {
    this.file = file;
  }

  async load(): Promise<Readonly<Record<string, string>>> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw error;
    }
    try {
      this.document = parseCheckpoint(JSON.parse(text) as unknown);
      return this.document.offsets;
    } catch (error) {
      throw new SupsupError(
        'E_STORE_CORRUPT',
        `offset checkpoint ${this.file} is not valid: ${errorText(error)}`,
        {
          cause: error,
        },
      );
    }
  }

  get(key: string): string | undefined {
    return this.document.offsets[key];
  }

  /** The offsets and the store position recorded with them. */
  positions(): SourcePositions {
    const { offsets, store } = this.document;
    return store === undefined ? { offsets: { ...offsets } } : { offsets: { ...offsets }, store };
  }

  get session(): CheckpointSession | undefined {
    return this.document.session;
  }

  /** Starts a new stdin session (saved with the next offsets). */
  beginSession(session: CheckpointSession): void {
    this.document = { ...this.document, session };
  }

  /** Atomically replaces the checkpoint file (write, fsync, rename). */
  async save(key: string, offset: string, store?: StorePosition): Promise<void> {
    const offsets = { ...this.document.offsets, [key]: offset };
    this.document = { ...this.document, offsets, ...(store === undefined ? {} : { store }) };
    const temp = path.join(path.dirname(this.file), `.${path.basename(this.file)}.${process.pid}.tmp`);
    const handle = await open(temp, 'w');
    try {
      await handle.writeFile(JSON.stringify(this.document));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, this.file);
  }
}

export interface CheckpointedOptions {
  /** The store position after each handled batch, saved with its offset. */
  readonly storePosition?: () => StorePosition;
  /** A source that starts after `startAfter` (absent: from the beginning), for rewind(); absent: no rewind. */
  readonly reopen?: (startAfter: string | undefined) => Source;
  /** The partition key the reopened source delivers (`topic/partition`). */
  readonly key?: string;
}

/**
 * Wraps a source so that each handled batch is checkpointed once the handler resolved, with the store position
 * of that moment; positions() reports the checkpoint, and rewind() (where `reopen` is given) starts over after
 * the store's applied offset instead.
 */
export function checkpointed(
  source: Source,
  checkpoint: OffsetCheckpoint,
  options: CheckpointedOptions = {},
): Source {
  let inner = source;
  const { reopen, key } = options;
  return {
    name: source.name,
    start: (handler) =>
      inner.start(async (batch: SourceBatch) => {
        await handler(batch);
        const last = batch.records[batch.records.length - 1];
        if (last !== undefined) {
          const at = `${batch.topic}/${batch.partition}`;
          await checkpoint.save(at, last.position.offset, options.storePosition?.());
        }
      }),
    done: () => inner.done(),
    stop: () => inner.stop(),
    positions: async () => checkpoint.positions(),
    ...(reopen === undefined || key === undefined
      ? {}
      : {
          rewind: async (applied: Readonly<Record<string, string>>) => {
            await inner.stop();
            inner = reopen(applied[key]);
          },
        }),
  };
}

function parseCheckpoint(value: unknown): CheckpointDocument {
  if (!isRecord(value)) throw new Error('not an object');
  if (!isRecord(value.offsets)) return { offsets: stringEntries(value) };
  const document: CheckpointDocument = { offsets: stringEntries(value.offsets) };
  const store = value.store;
  const session = value.session;
  return {
    ...document,
    ...(isRecord(store) &&
    (typeof store.epoch === 'string' || store.epoch === null) &&
    isCount(store.sequence)
      ? { store: { epoch: store.epoch, sequence: store.sequence } }
      : {}),
    ...(isRecord(session) && typeof session.id === 'string' && typeof session.firstOffset === 'string'
      ? { session: { id: session.id, firstOffset: session.firstOffset } }
      : {}),
  };
}

function stringEntries(value: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(value).filter((e): e is [string, string] => typeof e[1] === 'string'),
  );
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
