import type { InputRecord } from '../records.js';
import { compareOffsets } from '../store/offsets.js';

/** Records between the last one handled and the partition's end, when the source knows its end. */
export function consumerLag(
  highWatermark: string | undefined,
  lastOffset: string | undefined,
): number | null {
  if (highWatermark === undefined || lastOffset === undefined) return null;
  const lag = BigInt(highWatermark) - BigInt(lastOffset) - 1n;
  return lag < 0n ? 0 : Number(lag);
}

/**
 * Splits a partition's valid records into micro-batches of at most `size`, never mixing records
 * already applied (offset ≤ `applied`: inferred only) with new ones (learned).
 */
export function* microBatches(
  records: readonly InputRecord[],
  size: number,
  applied: string | undefined,
): Generator<{ records: InputRecord[]; learn: boolean }> {
  let group: InputRecord[] = [];
  let learn = true;
  for (const record of records) {
    const isNew = applied === undefined || compareOffsets(record.position.offset, applied) > 0;
    if (group.length > 0 && (group.length === size || isNew !== learn)) {
      yield { records: group, learn };
      group = [];
    }
    learn = isNew;
    group.push(record);
  }
  if (group.length > 0) yield { records: group, learn };
}
