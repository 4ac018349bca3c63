/**
 * How a mask bank stores its masks (see MaskBank): blocks of `blockSize` slots, byte positions in
 * groups of four, each group holding 64 bytes per lane of 16 slots, position by position; and the
 * plain reads of a block that dotAll's speed is measured against.
 */
import type { MaskLayout } from './mask-layout.js';

/** Slots per lane: a lane's bytes of one position are one 16-byte vector. */
export const LANE = 16;

/** The bytes that hold padding bits (each layer's tail up to its 32-bit boundary) and those bits. */
export function paddingBits(layout: MaskLayout): { byteIndices: Int32Array; bits: Uint8Array } {
  const byIndex = new Map<number, number>();
  for (let l = 0; l < layout.sizes.length; l++) {
    const start = (layout.bitOffsets[l] as number) + (layout.sizes[l] as number);
    const end = l + 1 < layout.sizes.length ? (layout.bitOffsets[l + 1] as number) : layout.totalBits;
    for (let bit = start; bit < end; bit++) {
      const byte = bit >>> 3;
      byIndex.set(byte, (byIndex.get(byte) ?? 0) | (1 << (bit & 7)));
    }
  }
  return { byteIndices: Int32Array.from(byIndex.keys()), bits: Uint8Array.from(byIndex.values()) };
}

/** Writes a mask's bytes into its slot, a group of four rows at a time (totalBytes is a multiple of 4). */
export function writeColumn(storage: Uint8Array, blockSize: number, slot: number, packed: Uint8Array): void {
  for (let j = 0, at = slotOffset(slot); j < packed.length; j += 4, at += 4 * blockSize) {
    storage[at] = packed[j] as number;
    storage[at + LANE] = packed[j + 1] as number;
    storage[at + 2 * LANE] = packed[j + 2] as number;
    storage[at + 3 * LANE] = packed[j + 3] as number;
  }
}

export function readColumn(
  storage: Uint8Array,
  blockSize: number,
  slot: number,
  totalBytes: number,
): Uint8Array {
  const packed = new Uint8Array(totalBytes);
  for (let j = 0, at = slotOffset(slot); j < totalBytes; j += 4, at += 4 * blockSize) {
    packed[j] = storage[at] as number;
    packed[j + 1] = storage[at + LANE] as number;
    packed[j + 2] = storage[at + 2 * LANE] as number;
    packed[j + 3] = storage[at + 3 * LANE] as number;
  }
  return packed;
}

/**
 * Where byte j of the mask in `slot` sits in its block (see MaskBank): byte positions in groups of
 * four, each group holding 64 bytes per lane of 16 slots, position by position.
 */
export function storageOffset(blockSize: number, j: number, slot: number): number {
  return rowOffset(blockSize, j) + slotOffset(slot);
}

/** Offset of byte j of slot 0 in a block; slot m's byte j is slotOffset(m) further. */
export function rowOffset(blockSize: number, j: number): number {
  return (j - (j & 3)) * blockSize + (j & 3) * LANE;
}

/** How far slot m's bytes are from slot 0's, at every byte position. */
export function slotOffset(slot: number): number {
  return (slot - (slot & (LANE - 1))) * 4 + (slot & (LANE - 1));
}

/** XOR of all words, four independent chains so the loads, not the arithmetic, set the pace. */
export function sumWords(words: Int32Array): number {
  let a = 0;
  let b = 0;
  let c = 0;
  let d = 0;
  const end = words.length & ~3;
  for (let i = 0; i < end; i += 4) {
    a ^= words[i] as number;
    b ^= words[i + 1] as number;
    c ^= words[i + 2] as number;
    d ^= words[i + 3] as number;
  }
  return a ^ b ^ c ^ d;
}

/** Sums the bytes as float64, four chains (NaN patterns included: only the reads matter). */
export function sumFloats(values: Float64Array): number {
  let a = 0;
  let b = 0;
  let c = 0;
  let d = 0;
  const end = values.length & ~3;
  for (let i = 0; i < end; i += 4) {
    a += values[i] as number;
    b += values[i + 1] as number;
    c += values[i + 2] as number;
    d += values[i + 3] as number;
  }
  return a + b + c + d;
}
