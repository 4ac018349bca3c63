/**
 * The bank's bit counts C[w] = Σ_i M_i[w] over its stored blocks (block-storage.ts's layout): per
 * mask by spread bytes for a few masks, by byte-value histograms for many, and the change of one
 * replaced mask.
 */
import { rowOffset, slotOffset, storageOffset } from './block-storage.js';

/**
 * From this many masks on, subsetCounts counts byte values per position (a histogram); below it,
 * it adds the masks' bytes spread to one bit per nibble (at most 15 per nibble, no overflow).
 */
export const HISTOGRAM_SUBSET = 16;

/** Index of the lowest set bit of a nonzero byte. */
function lowestBit(byte: number): number {
  return 31 - Math.clz32(byte & -byte);
}

/** counts[8j + t] += delta for every bit t set in `byte`. */
function addByteBits(counts: Uint32Array, firstBit: number, byte: number, delta: number): void {
  let rest = byte;
  while (rest !== 0) {
    const bit = firstBit + lowestBit(rest);
    counts[bit] = (counts[bit] as number) + delta;
    rest &= rest - 1;
  }
}

/** SPREAD[x] has bit t of x in bit 4t: summing spread bytes counts up to 15 masks per bit in a nibble. */
const SPREAD = (() => {
  const table = new Uint32Array(256);
  for (let x = 0; x < 256; x++) {
    let v = 0;
    for (let t = 0; t < 8; t++) v += ((x >>> t) & 1) * 2 ** (4 * t);
    table[x] = v;
  }
  return table;
})();

/**
 * counts[8j + t] += delta · (number of listed masks with bit t of byte j set), for at most 15
 * masks: per byte row, the masks' spread bytes are summed in one word, then its eight nibbles added.
 */
export function addBitsBySpread(
  storage: readonly Uint8Array[],
  slots: readonly Int32Array[],
  blockSize: number,
  counts: Uint32Array,
  delta: number,
): void {
  const bytes: Uint8Array[] = [];
  const at: number[] = [];
  storage.forEach((block, b) => {
    for (const slot of slots[b] as Int32Array) {
      bytes.push(block);
      at.push(slot);
    }
  });
  const offsets = Int32Array.from(at, slotOffset);
  const k = bytes.length;
  const totalBytes = counts.length >>> 3;
  for (let j = 0, w = 0; j < totalBytes; j++, w += 8) {
    const row = rowOffset(blockSize, j);
    let sum = 0;
    for (let p = 0; p < k; p++)
      sum += SPREAD[(bytes[p] as Uint8Array)[row + (offsets[p] as number)] as number] as number;
    if (sum === 0) continue;
    for (let t = 0; t < 8; t++) counts[w + t] = (counts[w + t] as number) + delta * ((sum >>> (4 * t)) & 15);
  }
}

/**
 * counts[w] += delta · (number of listed masks with bit w set), one byte position at a time: a
 * histogram of the masks' byte values (one increment per mask) is folded into eight bit counts.
 */
export function addBitsByHistogram(
  storage: readonly Uint8Array[],
  slots: readonly Int32Array[],
  blockSize: number,
  counts: Uint32Array,
  delta: number,
  histogram: Uint32Array,
): void {
  const totalBytes = counts.length >>> 3;
  const offsets = slots.map((blockSlots) => Int32Array.from(blockSlots, slotOffset));
  for (let j = 0; j < totalBytes; j++) {
    const row = rowOffset(blockSize, j);
    for (let b = 0; b < storage.length; b++) {
      const bytes = storage[b] as Uint8Array;
      const blockOffsets = offsets[b] as Int32Array;
      for (let p = 0; p < blockOffsets.length; p++) {
        const value = bytes[row + (blockOffsets[p] as number)] as number;
        histogram[value] = (histogram[value] as number) + 1;
      }
    }
    addHistogramBits(histogram, counts, 8 * j, delta);
  }
}

/**
 * Adds the bit counts of a byte-value histogram to counts[firstBit..firstBit+7] and clears it.
 * Bit t's count is the total of the upper half of the histogram folded down to 2^(t+1) entries.
 */
function addHistogramBits(
  histogram: Uint32Array,
  counts: Uint32Array,
  firstBit: number,
  delta: number,
): void {
  for (let t = 7, half = 128; t >= 0; t--, half >>>= 1) {
    let upper = 0;
    for (let x = 0; x < half; x++) {
      const count = histogram[half + x] as number;
      upper += count;
      histogram[x] = (histogram[x] as number) + count;
      histogram[half + x] = 0;
    }
    counts[firstBit + t] = (counts[firstBit + t] as number) + delta * upper;
  }
  histogram[0] = 0;
}

/** Subtracts the stored mask's bits and adds the new mask's, only where the bytes differ. */
export function updateBitCountsForReplace(
  counts: Uint32Array,
  storage: Uint8Array,
  blockSize: number,
  slot: number,
  packed: Uint8Array,
): void {
  for (let j = 0; j < packed.length; j++) {
    const before = storage[storageOffset(blockSize, j, slot)] as number;
    const after = packed[j] as number;
    if (before === after) continue;
    addByteBits(counts, 8 * j, before & ~after, -1);
    addByteBits(counts, 8 * j, after & ~before, 1);
  }
}
