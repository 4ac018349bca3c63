import { type Architecture, type LayerShape, layerShapes, RandomStream } from '../network/index.js';

/**
 * Where each weight's bit lives in a packed mask. Layers are concatenated; each layer starts on a
 * 32-bit boundary (its tail is zero padding). Inside layer l, weight (i, o) of the [fanIn, fanOut]
 * kernel has index i·fanOut + o. Bit b of byte j is weight 8j + b (little-endian bit order), so a
 * Uint32 view on a little-endian machine reads bit b of word w as weight 32w + b.
 */
export interface MaskLayout {
  readonly shapes: readonly LayerShape[];
  /** Number of weights per layer. */
  readonly sizes: readonly number[];
  /** First bit of each layer inside the packed mask. */
  readonly bitOffsets: readonly number[];
  /** Total bits including padding (a multiple of 32). */
  readonly totalBits: number;
  readonly totalBytes: number;
  /** Weights without padding. */
  readonly weightCount: number;
}

export function maskLayout(arch: Architecture): MaskLayout {
  const shapes = layerShapes(arch);
  const sizes = shapes.map(([fanIn, fanOut]) => fanIn * fanOut);
  const bitOffsets: number[] = [];
  let offset = 0;
  for (const size of sizes) {
    bitOffsets.push(offset);
    offset += Math.ceil(size / 32) * 32;
  }
  return {
    shapes,
    sizes,
    bitOffsets,
    totalBits: offset,
    totalBytes: offset / 8,
    weightCount: sizes.reduce((a, b) => a + b, 0),
  };
}

/** Packs per-layer float masks or scores into bits: bit = value ≥ 0 (threshold) or value > 0.5 (binary). */
export function packLayers(
  layout: MaskLayout,
  layers: readonly Float32Array[],
  rule: 'scoreThreshold' | 'binary',
): Uint8Array {
  const words = new Uint32Array(layout.totalBits / 32);
  for (let l = 0; l < layers.length; l++) {
    const values = layers[l] as Float32Array;
    const base = layout.bitOffsets[l] as number;
    for (let i = 0; i < values.length; i++) {
      const v = values[i] as number;
      const on = rule === 'scoreThreshold' ? v >= 0 : v > 0.5;
      if (on) {
        const bit = base + i;
        words[bit >>> 5] = ((words[bit >>> 5] as number) | (1 << (bit & 31))) >>> 0;
      }
    }
  }
  return bytesOfWords(words);
}

/** Unpacks one layer of a packed mask into 0/1 floats. */
export function unpackLayer(layout: MaskLayout, packed: Uint8Array, layer: number): Float32Array {
  const size = layout.sizes[layer] as number;
  const base = layout.bitOffsets[layer] as number;
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    const bit = base + i;
    out[i] = ((packed[bit >>> 3] as number) >>> (bit & 7)) & 1;
  }
  return out;
}

/** Little-endian bytes of a word array, independent of the host's byte order. */
export function bytesOfWords(words: Uint32Array): Uint8Array {
  const out = new Uint8Array(words.length * 4);
  for (let w = 0; w < words.length; w++) setWordBytes(out, 4 * w, words[w] as number);
  return out;
}

/** The 32-bit word's four bytes, little-endian, at out[at..at+3]. */
function setWordBytes(out: Uint8Array, at: number, word: number): void {
  out[at] = word & 0xff;
  out[at + 1] = (word >>> 8) & 0xff;
  out[at + 2] = (word >>> 16) & 0xff;
  out[at + 3] = word >>> 24;
}

/** Number of set bits in a packed mask. */
export function popcount(packed: Uint8Array): number {
  let n = 0;
  for (let j = 0; j < packed.length; j++) {
    let b = packed[j] as number;
    while (b !== 0) {
      b &= b - 1;
      n++;
    }
  }
  return n;
}

/**
 * A random mask with each weight on with probability 1/2: the bits of stream (seed, 'randomMasks',
 * index), padding bits cleared. Used for the new-task rule's padding masks and for benchmarks.
 * Written into `out` (layout.totalBytes, overwritten) where given, so that a caller making
 * thousands of masks can reuse one buffer; else into a new array.
 */
export function randomMask(
  layout: MaskLayout,
  seed: number,
  index: number,
  out = new Uint8Array(layout.totalBytes),
): Uint8Array {
  if (out.length !== layout.totalBytes) {
    throw new RangeError(`randomMask: out must hold ${layout.totalBytes} bytes, not ${out.length}`);
  }
  out.fill(0);
  const stream = new RandomStream(seed, 'randomMasks', index);
  for (let l = 0; l < layout.sizes.length; l++) {
    const base = (layout.bitOffsets[l] as number) / 8;
    const size = layout.sizes[l] as number;
    for (let w = 0; w * 32 < size; w++) {
      const valid = Math.min(32, size - w * 32);
      const bits = stream.nextUint32();
      setWordBytes(out, base + 4 * w, valid === 32 ? bits : (bits & ((1 << valid) - 1)) >>> 0);
    }
  }
  return out;
}
