import { open, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { SupsupError } from '../errors.js';
import type { Source, SourceBatch } from '../stream/types.js';

/**
 * Consumed offsets of a source that has no broker to commit to (files, stdin, the demo): written
 * after the handler returned, i.e. after the state write and the sink's acknowledgement, exactly
 * where Kafka would commit. A restart resumes after the checkpoint; records between it and the
 * store's applied offset are inferred again (never learned twice) and their results written again.
 */
export class OffsetCheckpoint {
  private readonly file: string;
  private offsets: Record<string, string> = {};

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
      const parsed = JSON.parse(text) as unknown;
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
        throw new Error('not an object');
      this.offsets = Object.fromEntries(
        Object.entries(parsed as Record<string, unknown>).filter(
          (e): e is [string, string] => typeof e[1] === 'string',
        ),
      );
      return this.offsets;
    } catch (error) {
      throw new SupsupError('E_STORE_CORRUPT', `offset checkpoint ${this.file} is not valid JSON`, {
        cause: error,
      });
    }
  }

  get(key: string): string | undefined {
    return this.offsets[key];
  }

  /** Atomically replaces the checkpoint file (write, fsync, rename). */
  async save(key: string, offset: string): Promise<void> {
    this.offsets = { ...this.offsets, [key]: offset };
    const temp = path.join(path.dirname(this.file), `.${path.basename(this.file)}.${process.pid}.tmp`);
    const handle = await open(temp, 'w');
    try {
      await handle.writeFile(JSON.stringify(this.offsets));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, this.file);
  }
}

/** Wraps a source so that each handled batch is checkpointed once the handler resolved. */
export function checkpointed(source: Source, checkpoint: OffsetCheckpoint): Source {
  return {
    name: source.name,
    start: (handler) =>
      source.start(async (batch: SourceBatch) => {
        await handler(batch);
        const last = batch.records[batch.records.length - 1];
        if (last !== undefined)
          await checkpoint.save(`${batch.topic}/${batch.partition}`, last.position.offset);
      }),
    done: () => source.done(),
    stop: () => source.stop(),
  };
}
