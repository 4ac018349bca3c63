/**
 * Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011): a
 * counter-based generator. Output block n of stream (key0, key1) is a pure function of
 * (key0, key1, n), computed with 32-bit integer arithmetic only, so every platform produces
 * the same bits. Base weights, score initialisation, batch order and permutations all draw
 * from it; a stream is named by (seed, purpose, index).
 */

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;
const TWO16 = 0x10000;

/** High 32 bits of the unsigned 64-bit product a·b (a, b unsigned 32-bit). */
function mulHi32(a: number, b: number): number {
  const ah = a >>> 16;
  const al = a & 0xffff;
  const bh = b >>> 16;
  const bl = b & 0xffff;
  const mid = ah * bl + al * bh + Math.floor((al * bl) / TWO16);
  return (ah * bh + Math.floor(mid / TWO16)) >>> 0;
}

/** One Philox4x32-10 block. Writes four uint32 words into `out` at `offset`. */
export function philox4x32(
  ctr0: number,
  ctr1: number,
  ctr2: number,
  ctr3: number,
  key0: number,
  key1: number,
  out: Uint32Array,
  offset = 0,
): void {
  let c0 = ctr0 >>> 0;
  let c1 = ctr1 >>> 0;
  let c2 = ctr2 >>> 0;
  let c3 = ctr3 >>> 0;
  let k0 = key0 >>> 0;
  let k1 = key1 >>> 0;
  for (let round = 0; round < 10; round++) {
    const hi0 = mulHi32(M0, c0);
    const lo0 = Math.imul(M0, c0) >>> 0;
    const hi1 = mulHi32(M1, c2);
    const lo1 = Math.imul(M1, c2) >>> 0;
    c0 = (hi1 ^ c1 ^ k0) >>> 0;
    c1 = lo1;
    c2 = (hi0 ^ c3 ^ k1) >>> 0;
    c3 = lo0;
    k0 = (k0 + W0) >>> 0;
    k1 = (k1 + W1) >>> 0;
  }
  out[offset] = c0;
  out[offset + 1] = c1;
  out[offset + 2] = c2;
  out[offset + 3] = c3;
}

/** What a stream is used for; part of its key so that purposes never share bits. */
export const Purpose = {
  weights: 1,
  scores: 2,
  batchOrder: 3,
  permutation: 4,
  split: 5,
  evalOrder: 6,
  randomMasks: 7,
  replay: 8,
  probe: 9,
  /** Generated benchmark streams (src/bench/discovery). */
  stream: 10,
} as const;
export type PurposeName = keyof typeof Purpose;

/** 32-bit finaliser (MurmurHash3 fmix32), used only to fold (purpose, index) into one key word. */
function fmix32(value: number): number {
  let h = value >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A sequential reader over one Philox stream: block n, then n + 1, … */
export class RandomStream {
  private readonly key0: number;
  private readonly key1: number;
  private readonly block = new Uint32Array(4);
  private blockIndex = 0;
  private used = 4;

  /** `startBlock` seeks: the stream starts at Philox block `startBlock` (4 words per block). */
  constructor(seed: number, purpose: PurposeName, index = 0, startBlock = 0) {
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
      throw new RangeError(`seed must be an integer in [0, 2^32), got ${seed}`);
    }
    this.key0 = seed >>> 0;
    this.key1 = fmix32(Math.imul(Purpose[purpose], 0x9e3779b1) ^ fmix32(index >>> 0));
    this.blockIndex = startBlock >>> 0;
  }

  nextUint32(): number {
    if (this.used === 4) {
      philox4x32(this.blockIndex, 0, 0, 0, this.key0, this.key1, this.block);
      this.blockIndex++;
      this.used = 0;
    }
    const value = this.block[this.used] as number;
    this.used++;
    return value;
  }

  /** Uniform in [0, 1) with 24 bits, exactly representable in float32. */
  nextFloat(): number {
    return (this.nextUint32() >>> 8) / 16777216;
  }

  /** Uniform integer in [0, n) by 32-bit multiply-shift (bias below 2^-32 · n; deterministic). */
  nextInt(n: number): number {
    return Math.floor((this.nextUint32() / 4294967296) * n);
  }

  /** Fills `out` with uniform values in [-bound, bound). */
  fillUniform(out: Float32Array, bound: number): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = (2 * this.nextFloat() - 1) * bound;
    return out;
  }

  /** Fisher-Yates shuffle in place. */
  shuffle<T extends { length: number; [i: number]: number }>(values: T): T {
    for (let i = values.length - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      const tmp = values[i] as number;
      values[i] = values[j] as number;
      values[j] = tmp;
    }
    return values;
  }

  /** A random permutation of 0..n-1. */
  permutation(n: number): Int32Array {
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = i;
    return this.shuffle(out);
  }
}

/**
 * n signs (±1 as 1/0 bits) for stream (seed, purpose, index): bit i of the result is bit (i mod 32)
 * of word i/32 of the stream. Cheaper than one draw per sign.
 */
export function randomBits(seed: number, purpose: PurposeName, index: number, n: number): Uint32Array {
  const stream = new RandomStream(seed, purpose, index);
  const words = new Uint32Array(Math.ceil(n / 32));
  for (let w = 0; w < words.length; w++) words[w] = stream.nextUint32();
  return words;
}
