/**
 * Chunks cut from the record sequence of each partition, not from kafkajs's fetches (see source.ts). A fetched
 * batch's records are appended to what its partition holds; every run of `maxBatchSize` records is a chunk; the
 * rest (the tail) is held for the partition's next batch, or handled alone once `lingerMs` passed without one.
 * Chunk boundaries therefore fall at the same records however the broker sized its fetches, and a restart, which
 * resumes at a committed chunk's end, cuts the same chunks again: the daemon's decisions depend on the records
 * only. Only the linger (a partition that went quiet) cuts a chunk short, and it is reported as such.
 */
import type { EachBatchPayload } from 'kafkajs';
import type { RawRecord } from '../types.js';

/** Records of one partition held back because they do not fill a chunk. */
export interface HeldTail {
  readonly records: readonly RawRecord[];
  /** The source epoch that read them: a tail of an ended epoch is never handled. */
  readonly epoch: number;
  /** The payload of the batch the last of them came with (commits and heartbeats of a lingering chunk). */
  readonly payload: EachBatchPayload;
  /** That batch's last offset (≥ the last record's: control records), committed past when the tail is handled. */
  readonly batchLastOffset: string;
  readonly highWatermark: string;
}

/** How a partition's records split into chunks to handle now and a tail to hold. */
export interface Cut {
  readonly chunks: readonly (readonly RawRecord[])[];
  readonly tail: readonly RawRecord[];
}

/**
 * `held` (the partition's tail) then `records`, cut into runs of `size`; with `lingerMs` 0 nothing is held (the
 * last run may be short, as fetched).
 */
export function cutChunks(
  held: readonly RawRecord[],
  records: readonly RawRecord[],
  size: number,
  lingerMs: number,
): Cut {
  const all = held.length === 0 ? records : [...held, ...records];
  const chunks: RawRecord[][] = [];
  let start = 0;
  for (; start + size <= all.length; start += size) chunks.push(all.slice(start, start + size));
  const rest = all.slice(start);
  if (lingerMs === 0 && rest.length > 0) return { chunks: [...chunks, rest], tail: [] };
  return { chunks, tail: rest };
}

/**
 * What to do with a partition's held tail when its next batch (first record `records[0]`) arrives in `epoch`:
 * prepend what the batch does not read again, or, for a tail of an ended epoch that the fetch position has moved
 * past, seek back to the tail (the batch is dropped and read again).
 */
export function placeTail(
  held: HeldTail | undefined,
  records: readonly RawRecord[],
  epoch: number,
): { readonly prepend: readonly RawRecord[] } | { readonly seekTo: string } {
  if (held === undefined || records.length === 0) return { prepend: [] };
  const first = BigInt((records[0] as RawRecord).position.offset);
  const heldFirst = (held.records[0] as RawRecord).position.offset;
  if (held.epoch !== epoch) return first <= BigInt(heldFirst) ? { prepend: [] } : { seekTo: heldFirst };
  return { prepend: held.records.filter((record) => BigInt(record.position.offset) < first) };
}

/** The tails of every partition, and a timer per tail that hands it over once it lingered `lingerMs`. */
export class PartitionTails {
  private readonly tails = new Map<number, HeldTail>();
  private readonly timers = new Map<number, NodeJS.Timeout>();

  constructor(
    private readonly lingerMs: number,
    private readonly onLingered: (partition: number) => void,
  ) {}

  /** The partition's tail, removed (its timer stopped), or undefined. */
  take(partition: number): HeldTail | undefined {
    this.clearTimer(partition);
    const tail = this.tails.get(partition);
    this.tails.delete(partition);
    return tail;
  }

  /** The partition's tail without removing it. */
  peek(partition: number): HeldTail | undefined {
    return this.tails.get(partition);
  }

  /** Holds `tail` for the partition and starts its linger timer. */
  hold(partition: number, tail: HeldTail): void {
    this.clearTimer(partition);
    this.tails.set(partition, tail);
    const timer = setTimeout(() => {
      this.timers.delete(partition);
      this.onLingered(partition);
    }, this.lingerMs);
    timer.unref();
    this.timers.set(partition, timer);
  }

  /** Drops every tail (stop(): their records are uncommitted, so they are read again). */
  clear(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.tails.clear();
  }

  private clearTimer(partition: number): void {
    const timer = this.timers.get(partition);
    if (timer !== undefined) clearTimeout(timer);
    this.timers.delete(partition);
  }
}
