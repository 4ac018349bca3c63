/**
 * `supsupd replay` (docs/replay.md): a JSONL file through the real daemon, from a chosen starting state, with its
 * decision log as the product. `shadow` runs on an in-memory copy of the starting state and writes nothing to any
 * store or live topic (its results and decisions go to its own output directory); `apply` rebuilds the masks into
 * a fresh target store. The starting state is empty, or a store archive (src/archive: read from a store, or from
 * an archive file): masks, training states, replay buffers and learner state, without its applied offsets.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { type StoreArchive, TOOLS_PARTITION, writeStoreArchive } from '../archive/index.js';
import { SupsupError } from '../errors.js';
import type { Architecture } from '../model/network/arch.js';
import { openStore } from '../store/index.js';
import type { MaskStore } from '../store/types.js';
import { JsonlFileSink, JsonlFileSource } from '../stream/file.js';
import type { Source, SourceBatch } from '../stream/types.js';
import { Daemon } from './daemon.js';
import type { DaemonOptions } from './daemon-options.js';

export interface ReplayOptions {
  /** The daemon as the configuration describes it; its store and sink are replaced. */
  readonly daemon: DaemonOptions;
  readonly input: string;
  /** Where results.jsonl, decisions.jsonl, dead-letters.jsonl and events.jsonl of the replay go. */
  readonly out: string;
  /** The state to start from: none, or a store's state as an archive. */
  readonly start: StoreArchive | null;
  /** `shadow`: an in-memory copy; `apply`: this store, which must be empty. */
  readonly target: { readonly kind: 'shadow' } | { readonly kind: 'apply'; readonly store: MaskStore };
  /** Records per second at most (none: as fast as it goes). */
  readonly rate?: number;
  /** Called after every chunk with the records handled and the last offset. */
  readonly onProgress?: (records: number, lastOffset: string) => void;
}

export interface ReplayReport {
  readonly records: number;
  readonly batches: number;
  /** Masks the replay created: task, at which offset. */
  readonly created: readonly { readonly task: number; readonly offset: string }[];
  readonly tasks: number;
  readonly decisionLog: string;
}

/** Runs the replay to the end of the input; the daemon's store is the target (memory for shadow). */
export async function replay(options: ReplayOptions): Promise<ReplayReport> {
  await mkdir(options.out, { recursive: true });
  const store = options.target.kind === 'shadow' ? openStore({ kind: 'memory' }) : options.target.store;
  await store.open();
  try {
    await ensureEmpty(store, options.target.kind === 'apply');
    if (options.start !== null) await writeStart(store, options.start, options.daemon.model);
  } catch (error) {
    await store.close();
    throw error;
  }
  const decisionLog = path.join(options.out, 'decisions.jsonl');
  const sink = new JsonlFileSink(
    path.join(options.out, 'results.jsonl'),
    path.join(options.out, 'dead-letters.jsonl'),
    path.join(options.out, 'events.jsonl'),
    decisionLog,
  );
  const created: { task: number; offset: string }[] = [];
  const daemon = await Daemon.open({
    ...options.daemon,
    store,
    sink,
    allowVolatileStore: true,
    observer: {
      received: () => {},
      batch: () => {},
      deadLettered: () => {},
      committed: () => {},
      source: () => {},
      events: (events) => {
        for (const e of events)
          if (e.type === 'task_discovered') created.push({ task: e.task, offset: e.at.offset });
      },
    },
  });
  let records = 0;
  const source = new ThrottledSource(new JsonlFileSource(options.input), options.rate, (batch) => {
    records += batch.records.length;
    options.onProgress?.(records, batch.records[batch.records.length - 1]?.position.offset ?? '');
  });
  try {
    await daemon.run(source);
  } finally {
    await daemon.stop();
  }
  return { records, batches: daemon.stats.batches, created, tasks: daemon.tasks.length, decisionLog };
}

/** An `apply` target must hold nothing: a replay never mixes its masks into another history. */
async function ensureEmpty(store: MaskStore, required: boolean): Promise<void> {
  if (!required) return;
  if ((await store.load()) !== null) {
    throw new SupsupError(
      'E_BAD_ARGUMENT',
      'the target store of replay --apply is not empty; name a new namespace',
    );
  }
}

/** Writes the starting state into the (empty) target: everything but the archive's applied offsets. */
async function writeStart(
  store: MaskStore,
  start: StoreArchive,
  model: { readonly arch: Architecture; readonly seed: number },
): Promise<void> {
  await writeStoreArchive(
    store,
    // Under the tools' partition key, not a source's: the replay learns its input from the first record.
    { ...start, applied: { [TOOLS_PARTITION]: '0' } },
    { target: 'the replay store', arch: model.arch, seed: model.seed, leaseMs: 60_000 },
  );
}

/** A source at most `rate` records per second (chunk by chunk), reporting each chunk once it was handled. */
class ThrottledSource implements Source {
  readonly name: string;
  private readonly began = Date.now();
  private handled = 0;

  constructor(
    private readonly inner: Source,
    private readonly rate: number | undefined,
    private readonly onChunk: (batch: SourceBatch) => void,
  ) {
    this.name = inner.name;
  }

  start(handler: (batch: SourceBatch) => Promise<void>): Promise<void> {
    return this.inner.start(async (batch) => {
      if (this.rate !== undefined) {
        const wait = this.began + ((this.handled + batch.records.length) / this.rate) * 1000 - Date.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      }
      await handler(batch);
      this.handled += batch.records.length;
      this.onChunk(batch);
    });
  }

  done(): Promise<void> {
    return this.inner.done();
  }

  stop(): Promise<void> {
    return this.inner.stop();
  }
}
