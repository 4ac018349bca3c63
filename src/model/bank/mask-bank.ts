import { SupsupError } from '../../errors.js';
import { MAX_SCREEN_BITS } from '../kernels/index.js';
import { type DotJob, DotPool } from '../threads/index.js';
import { BankKernels } from './bank-kernels.js';
import {
  addBitsByHistogram,
  addBitsBySpread,
  HISTOGRAM_SUBSET,
  updateBitCountsForReplace,
} from './bit-counts.js';
import {
  LANE,
  paddingBits,
  readColumn,
  slotOffset,
  sumFloats,
  sumWords,
  writeColumn,
} from './block-storage.js';
import { type CertifiedArgMin, certifiedArgMin, type ScreenedDots } from './certified-argmin.js';
import type { MaskLayout } from './mask-layout.js';

/**
 * A bank of k packed binary masks over one network, laid out for the task-inference kernel
 * g_i = Σ_w V[w]·M_i[w] (one float vector against every mask, never expanding a mask to floats).
 *
 * Storage (block-storage.ts): blocks of `blockSize` masks (a multiple of 16), in groups of four
 * byte positions and lanes of 16 slots. Block b is one Uint8Array(totalBytes · blockSize) where
 * byte j of the mask in slot m sits at storageOffset(blockSize, j, m) = rowOffset(j) + slotOffset(m),
 * with rowOffset(j) = ⌊j/4⌋·4·blockSize + (j mod 4)·16 and slotOffset(m) = ⌊m/16⌋·64 + m mod 16:
 * group g (bytes 4g..4g+3) is one run of 4·blockSize bytes, in which each lane of 16 slots holds
 * 64 bytes, byte position by byte position. The kernel reads a block as one sequential stream
 * (byte-position-major rows, one stream per row, were 25 % slower), and a lane's 16 bytes of one
 * position are one 16-byte vector, the unit of a SIMD kernel that looks up 16 masks at once
 * (ADR 0007). Bit counts are kept incrementally (bit-counts.ts).
 *
 * Kernel (dotAll): for each group of four byte positions j..j+3, build four 256-entry subset-sum
 * tables T_r[x] = Σ_{bits t of x} V[8(j+r) + t] (255 adds each), then walk every block's group
 * once (one 32-bit load per four masks and position) and add T_0[x_0] + … + T_3[x_3] to each
 * mask's float64 accumulator. The tables are built once per group and shared by all blocks, so a
 * call costs about totalBytes · (255 + k) additions and reads the bank once, sequentially. The
 * loops run in WebAssembly (src/model/kernels/dot-kernel.ts) over one shared memory per bank that
 * holds the blocks, the vector and the scratch (bank-kernels.ts). The rows are cut into ROW_CHUNKS
 * fixed chunks with their own partial sums (added in chunk order), and large calls hand whole
 * chunks to worker threads (src/model/threads/dot-pool.ts), so the result never depends on the
 * thread count. Measured: ~33 ms of one core per dotAll for k = 2500 masks on lenet
 * 784-300-100-500 (39,404 bytes per mask), 17 ms on two (2026-12-04 machine; ADR 0003 and
 * docs/benchmarks.md).
 */

const DEFAULT_BLOCK_SIZE = 256;
const TABLE_SIZE = 256;
/**
 * Cost model per byte row, in nanoseconds (measured on lenet-300-100-500, one core, Node 20): the
 * byte-table kernel builds four 255-entry tables per four rows, then reads every stored slot of
 * the blocks it walks; the nibble kernel builds two 16-entry tables per row, then does two lookups
 * per requested mask (both WebAssembly). The nibble kernel wins below about 8 masks, and for up to
 * about 20 masks out of a block of 256 (dotSubset, the screen's candidates).
 */
const BYTE_TABLE_BUILD_NS = 37;
const BYTE_TABLE_PER_SLOT_NS = 0.3;
const NIBBLE_TABLE_BUILD_NS = 6;
const NIBBLE_PER_MASK_NS = 4.5;

export interface MaskBankOptions {
  /** Masks per storage block; a positive multiple of 16. Default 256. */
  blockSize?: number;
  /**
   * Threads for large dot products (the caller plus worker threads sharing the storage).
   * Default: the cores available, at most 4. 1 keeps everything on the calling thread.
   */
  threads?: number;
}

export class MaskBank {
  readonly layout: MaskLayout;
  readonly blockSize: number;
  /** The shared WebAssembly memory of blocks, vector and scratch, and the kernels' calls. */
  private readonly kernels: BankKernels;
  private readonly blocks: Uint8Array[] = [];
  /** Each block's address in the dot memory. */
  private readonly blockAt: number[] = [];
  /** Bit counts of masks [0, countedMasks); the later ones are folded in when counts are read. */
  private readonly bitCounts: Uint32Array;
  private countedMasks = 0;
  /** Bytes that contain padding bits, and which of their bits are padding. */
  private readonly paddingByteIndices: Int32Array;
  private readonly paddingByteBits: Uint8Array;
  private readonly histogram = new Uint32Array(TABLE_SIZE);
  private accumulators = new Float64Array(0);
  private maskCount = 0;
  private threadCount: number;

  constructor(layout: MaskLayout, options: MaskBankOptions = {}) {
    const blockSize = options.blockSize ?? DEFAULT_BLOCK_SIZE;
    if (!Number.isInteger(blockSize) || blockSize < LANE || blockSize % LANE !== 0 || blockSize > 1 << 16) {
      throw new SupsupError(
        'E_BAD_ARGUMENT',
        `blockSize ${blockSize} is not a multiple of ${LANE} in [${LANE}, 65536]`,
      );
    }
    this.layout = layout;
    this.blockSize = blockSize;
    this.bitCounts = new Uint32Array(layout.totalBits);
    this.kernels = new BankKernels(layout.totalBits, layout.totalBytes, blockSize);
    this.threadCount = options.threads ?? DotPool.defaultThreads();
    this.checkThreads(this.threadCount);
    DotPool.warm(this.threadCount);
    const padding = paddingBits(layout);
    this.paddingByteIndices = padding.byteIndices;
    this.paddingByteBits = padding.bits;
  }

  get size(): number {
    return this.maskCount;
  }

  /** Threads the last table-kernel dot product ran on (0 before the first). */
  get lastDotThreads(): number {
    return this.kernels.lastDotThreads;
  }

  /** Threads used by large dot products (see MaskBankOptions.threads). */
  get threads(): number {
    return this.threadCount;
  }

  set threads(value: number) {
    this.checkThreads(value);
    this.threadCount = value;
  }

  /** Appends a packed mask; returns its index. */
  add(packed: Uint8Array): number {
    this.checkPacked(packed);
    const index = this.maskCount;
    const block = Math.floor(index / this.blockSize);
    if (block === this.blocks.length) this.allocateBlock();
    writeColumn(this.blocks[block] as Uint8Array, this.blockSize, index % this.blockSize, packed);
    this.maskCount++;
    return index;
  }

  /** Overwrites mask `index`; counts() follows in O(totalBytes). */
  replace(index: number, packed: Uint8Array): void {
    this.checkIndex(index);
    this.checkPacked(packed);
    const storage = this.blocks[Math.floor(index / this.blockSize)] as Uint8Array;
    const slot = index % this.blockSize;
    if (index < this.countedMasks)
      updateBitCountsForReplace(this.bitCounts, storage, this.blockSize, slot, packed);
    writeColumn(storage, this.blockSize, slot, packed);
  }

  /** A fresh packed copy of mask `index`. */
  get(index: number): Uint8Array {
    this.checkIndex(index);
    const storage = this.blocks[Math.floor(index / this.blockSize)] as Uint8Array;
    return readColumn(storage, this.blockSize, index % this.blockSize, this.layout.totalBytes);
  }

  /** C[w] = number of masks with bit w set (a copy of the incrementally maintained counts). */
  counts(out?: Uint32Array): Uint32Array {
    const target = this.bitsTarget(out);
    target.set(this.currentCounts());
    return target;
  }

  /**
   * The bit counts, with the masks added since the last call folded in: one at a time (set bits)
   * for a few, by byte-value histograms for many (2,500 lenet masks loaded at start-up: about
   * 0.2 s instead of 1.5 s of per-bit increments).
   */
  private currentCounts(): Uint32Array {
    const pending = this.maskCount - this.countedMasks;
    if (pending === 0) return this.bitCounts;
    const members = new Uint8Array(this.maskCount);
    members.fill(1, this.countedMasks);
    const side = this.slotsByBlock(members, 1);
    if (side.count >= HISTOGRAM_SUBSET) {
      addBitsByHistogram(side.storage, side.slots, this.blockSize, this.bitCounts, 1, this.histogram);
    } else addBitsBySpread(side.storage, side.slots, this.blockSize, this.bitCounts, 1);
    this.countedMasks = this.maskCount;
    return this.bitCounts;
  }

  /**
   * C_S[w] = Σ_{i∈S} M_i[w] for a set S of distinct indices. When S holds more than half of the
   * bank it is computed as counts() − Σ_{i∉S} M_i.
   */
  subsetCounts(indices: ArrayLike<number>, out?: Uint32Array): Uint32Array {
    const target = this.bitsTarget(out);
    const members = this.membership(indices);
    const useComplement = indices.length > this.maskCount / 2;
    const side = this.slotsByBlock(members, useComplement ? 0 : 1);
    const delta = useComplement ? -1 : 1;
    if (useComplement) target.set(this.currentCounts());
    else target.fill(0);
    if (side.count >= HISTOGRAM_SUBSET) {
      addBitsByHistogram(side.storage, side.slots, this.blockSize, target, delta, this.histogram);
      return target;
    }
    addBitsBySpread(side.storage, side.slots, this.blockSize, target, delta);
    return target;
  }

  /** g[i] = Σ_w v[w]·M_i[w] for every mask, accumulated in float64. */
  dotAll(v: Float32Array | Float64Array, out?: Float64Array): Float64Array {
    const target = this.dotTarget(out, this.maskCount);
    this.loadValues(v);
    if (preferNibbles(this.maskCount, this.maskCount)) {
      // A few masks: two 16-entry tables per byte beat four 256-entry tables per four bytes.
      this.nibbleDots(
        Array.from({ length: this.maskCount }, (_, i) => i),
        target,
      );
      return target;
    }
    const acc = this.accumulatorsFor(this.blocks.length);
    this.runDot('table', this.allBlocks(), acc);
    target.set(acc.subarray(0, this.maskCount));
    return target;
  }

  /**
   * The quantised screen (ADR 0007, src/model/kernels/screen-kernel.ts): A_i ≈ Σ_w v[w]·M_i[w] for every
   * mask, 16 masks per SIMD lookup, with a bound δ that holds for every mask. About half the time
   * of dotAll. null where it cannot bound its error (a value of v is not finite, or masks are
   * over MAX_SCREEN_BITS bits): use dotAll.
   */
  screen(v: Float32Array | Float64Array, out?: Float64Array): ScreenedDots | null {
    const target = this.dotTarget(out, this.maskCount);
    this.loadValues(v);
    if (this.maskCount === 0) return { values: target, bound: 0 };
    if (this.layout.totalBits > MAX_SCREEN_BITS) return null;
    const acc = this.accumulatorsFor(this.blocks.length);
    const bound = this.runDot('screen', this.allBlocks(), acc);
    if (!Number.isFinite(bound)) return null;
    target.set(acc.subarray(0, this.maskCount));
    return { values: target, bound };
  }

  /** out[p] = g[indices[p]]: the same products, only for the given masks (repeats allowed). */
  dotSubset(indices: ArrayLike<number>, v: Float32Array | Float64Array, out?: Float64Array): Float64Array {
    const target = this.dotTarget(out, indices.length);
    for (let p = 0; p < indices.length; p++) this.checkIndex(indices[p] as number);
    this.loadValues(v);
    this.subsetDots(indices, target);
    return target;
  }

  /**
   * One-shot inference's argmin of Σ_w v[w]·M_i[w] over every mask through the screen (ADR 0007):
   * the index exact products would give (the first on ties), with only the masks the screen
   * cannot rule out computed exactly (certified-argmin.ts). null where the screen cannot bound its
   * error (see screen): use dotAll.
   */
  screenedArgMin(v: Float32Array | Float64Array): (CertifiedArgMin & { readonly bound: number }) | null {
    if (this.maskCount === 0) throw new SupsupError('E_NO_MASKS', 'the bank holds no masks');
    const screened = this.screen(v);
    if (screened === null) return null;
    const found = certifiedArgMin(screened, (indices) => {
      const exact = new Float64Array(indices.length);
      this.subsetDots(indices, exact);
      return exact;
    });
    return { ...found, bound: screened.bound };
  }

  /** dotSubset's products over the loaded vector, by the cheapest of the three kernels. */
  private subsetDots(indices: ArrayLike<number>, target: Float64Array): void {
    if (indices.length === 0) return;
    const listPosition = new Int32Array(this.blocks.length).fill(-1);
    let touchedBlocks = 0;
    for (let p = 0; p < indices.length; p++) {
      const block = Math.floor((indices[p] as number) / this.blockSize);
      if ((listPosition[block] as number) < 0) listPosition[block] = touchedBlocks++;
    }
    let touchedSlots = 0;
    for (let block = 0; block < listPosition.length; block++) {
      if ((listPosition[block] as number) >= 0) touchedSlots += this.blockFill(block);
    }
    if (preferNibbles(indices.length, touchedSlots)) this.nibbleDots(indices, target);
    else this.tableDotSubset(indices, listPosition, touchedBlocks, target);
  }

  /**
   * Reads every stored mask byte once, as `word` loads (Uint32 or Float64 in JavaScript, or
   * WebAssembly v128), and returns a sum so the reads cannot be optimised away: the memory-read
   * floor that dotAll is measured against.
   */
  scanStorage(word: 'u32' | 'f64' | 'v128'): number {
    let total = 0;
    for (let b = 0; b < this.blocks.length; b++) {
      const block = this.blocks[b] as Uint8Array;
      if (word === 'v128') {
        const at = this.blockAt[b] as number;
        const whole = block.length - (block.length % 64);
        total += this.kernels.readV128(at, at + whole);
        for (let i = whole; i < block.length; i++) total += block[i] as number;
      } else if (word === 'u32') {
        total += sumWords(new Int32Array(block.buffer, block.byteOffset, block.length >>> 2));
      } else total += sumFloats(new Float64Array(block.buffer, block.byteOffset, block.length >>> 3));
    }
    return total;
  }

  /** Bytes held by the bank's typed arrays (mask storage, counts and scratch). */
  memoryBytes(): number {
    let bytes = this.bitCounts.byteLength + this.kernels.usedBytes;
    bytes += this.histogram.byteLength + this.accumulators.byteLength;
    bytes += this.paddingByteIndices.byteLength + this.paddingByteBits.byteLength;
    return bytes;
  }

  /** Every block, and the slots filled in each. */
  private allBlocks(): { blocks: number[]; fills: Int32Array } {
    const fills = new Int32Array(this.blocks.length);
    for (let b = 0; b < fills.length; b++) fills[b] = this.blockFill(b);
    return { blocks: Array.from(this.blockAt, (_, block) => block), fills };
  }

  /**
   * The table kernel or the screen over the listed blocks (blocks[p] at position p, its first
   * fills[p] slots) into acc (one value per slot, positions in order); returns the screen's bound
   * (0 for the table kernel).
   */
  private runDot(
    kind: DotJob['kind'],
    { blocks, fills }: { blocks: readonly number[]; fills: Int32Array },
    acc: Float64Array,
  ): number {
    const addresses = blocks.map((block) => this.blockAt[block] as number);
    return this.kernels.run(kind, { addresses, fills }, acc, this.threadCount);
  }

  private checkThreads(threads: number): void {
    if (!Number.isInteger(threads) || threads < 1 || threads > 64) {
      throw new SupsupError('E_BAD_ARGUMENT', `threads ${threads} is not an integer in [1, 64]`);
    }
  }

  private allocateBlock(): void {
    // In the shared dot memory, so dot-product worker threads read the masks in place.
    const { at, bytes } = this.kernels.allocateBlock();
    this.blockAt.push(at);
    this.blocks.push(bytes);
  }

  /** Masks stored in block b. */
  private blockFill(block: number): number {
    return Math.min(this.blockSize, this.maskCount - block * this.blockSize);
  }

  private accumulatorsFor(blockCount: number): Float64Array {
    const needed = blockCount * this.blockSize;
    if (this.accumulators.length < needed) this.accumulators = new Float64Array(needed);
    return this.accumulators;
  }

  /**
   * The nibble kernel (WebAssembly, src/model/kernels/nibble-kernel.ts): for each byte row, the 16 subset
   * sums of its low and high four values, then two lookups per requested mask.
   * target[p] = Σ_rows (lo[x & 15] + hi[x >> 4]) for mask indices[p].
   */
  private nibbleDots(indices: ArrayLike<number>, target: Float64Array): void {
    const addresses = new Int32Array(indices.length);
    for (let p = 0; p < indices.length; p++) {
      const index = indices[p] as number;
      addresses[p] =
        (this.blockAt[Math.floor(index / this.blockSize)] as number) + slotOffset(index % this.blockSize);
    }
    this.kernels.nibble(addresses, target);
  }

  /**
   * Runs the table kernel over the touched blocks (block b at position listPosition[b], or -1),
   * then picks the requested results.
   */
  private tableDotSubset(
    indices: ArrayLike<number>,
    listPosition: Int32Array,
    touchedBlocks: number,
    target: Float64Array,
  ): void {
    const blocks: number[] = new Array<number>(touchedBlocks);
    const fills = new Int32Array(touchedBlocks);
    for (let block = 0; block < listPosition.length; block++) {
      const position = listPosition[block] as number;
      if (position < 0) continue;
      blocks[position] = block;
      fills[position] = this.blockFill(block);
    }
    const acc = this.accumulatorsFor(touchedBlocks);
    this.runDot('table', { blocks, fills }, acc);
    for (let p = 0; p < indices.length; p++) {
      const index = indices[p] as number;
      const block = Math.floor(index / this.blockSize);
      const slot = index % this.blockSize;
      target[p] = acc[(listPosition[block] as number) * this.blockSize + slot] as number;
    }
  }

  private loadValues(v: Float32Array | Float64Array): void {
    if (!(v instanceof Float32Array || v instanceof Float64Array) || v.length !== this.layout.totalBits) {
      throw new SupsupError(
        'E_BAD_ARGUMENT',
        `vector must be a Float32Array or Float64Array of length ${this.layout.totalBits}`,
      );
    }
    this.kernels.loadValues(v);
  }

  private dotTarget(out: Float64Array | undefined, length: number): Float64Array {
    if (out === undefined) return new Float64Array(length);
    if (out.length < length) {
      throw new SupsupError('E_BAD_ARGUMENT', `output holds ${out.length} values, need ${length}`);
    }
    return out.length === length ? out : out.subarray(0, length);
  }

  private bitsTarget(out: Uint32Array | undefined): Uint32Array {
    if (out === undefined) return new Uint32Array(this.layout.totalBits);
    if (out.length !== this.layout.totalBits) {
      throw new SupsupError('E_BAD_ARGUMENT', `counts output must hold ${this.layout.totalBits} values`);
    }
    return out;
  }

  /** 1 for each index of a set of distinct indices; refuses repeats. */
  private membership(indices: ArrayLike<number>): Uint8Array {
    const members = new Uint8Array(this.maskCount);
    for (let p = 0; p < indices.length; p++) {
      const index = indices[p] as number;
      this.checkIndex(index);
      if (members[index] === 1) {
        throw new SupsupError('E_BAD_ARGUMENT', `mask index ${index} appears twice in the subset`);
      }
      members[index] = 1;
    }
    return members;
  }

  /** The masks whose membership flag equals `wanted`, as slots grouped by storage block. */
  private slotsByBlock(
    members: Uint8Array,
    wanted: number,
  ): { storage: Uint8Array[]; slots: Int32Array[]; count: number } {
    const storage: Uint8Array[] = [];
    const slots: Int32Array[] = [];
    let count = 0;
    for (let block = 0; block < this.blocks.length; block++) {
      const start = block * this.blockSize;
      const blockSlots: number[] = [];
      for (let slot = 0; slot < this.blockFill(block); slot++) {
        if (members[start + slot] === wanted) blockSlots.push(slot);
      }
      if (blockSlots.length === 0) continue;
      storage.push(this.blocks[block] as Uint8Array);
      slots.push(Int32Array.from(blockSlots));
      count += blockSlots.length;
    }
    return { storage, slots, count };
  }

  private checkIndex(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.maskCount) {
      throw new SupsupError('E_BAD_ARGUMENT', `mask index ${index} is not in [0, ${this.maskCount})`);
    }
  }

  private checkPacked(packed: Uint8Array): void {
    if (!(packed instanceof Uint8Array) || packed.length !== this.layout.totalBytes) {
      throw new SupsupError(
        'E_BAD_ARGUMENT',
        `a packed mask must be a Uint8Array of ${this.layout.totalBytes} bytes`,
      );
    }
    for (let p = 0; p < this.paddingByteIndices.length; p++) {
      const byte = this.paddingByteIndices[p] as number;
      if (((packed[byte] as number) & (this.paddingByteBits[p] as number)) !== 0) {
        throw new SupsupError('E_BAD_ARGUMENT', `packed mask has padding bits set in byte ${byte}`);
      }
    }
  }
}

/** True when the nibble kernel is cheaper than the byte tables for k masks over `slots` stored slots. */
function preferNibbles(k: number, slots: number): boolean {
  return (
    NIBBLE_TABLE_BUILD_NS + NIBBLE_PER_MASK_NS * k < BYTE_TABLE_BUILD_NS + BYTE_TABLE_PER_SLOT_NS * slots
  );
}
