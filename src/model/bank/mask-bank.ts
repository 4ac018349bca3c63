import { SupsupError } from '../../errors.js';
import {
  DotMemory,
  KERNEL_THREADS,
  MAX_SCREEN_BITS,
  NIBBLE_TABLE_BYTES,
  screenScratchBytes,
} from '../kernels/index.js';
import { DotPool } from '../threads/dot-pool.js';
import { combineChunks, type DotJob, dotChunks, ROW_CHUNKS } from '../threads/table-dot.js';
import { type CertifiedArgMin, certifiedArgMin, type ScreenedDots } from './certified-argmin.js';
import type { MaskLayout } from './mask-layout.js';

/**
 * A bank of k packed binary masks over one network, laid out for the task-inference kernel
 * g_i = Σ_w V[w]·M_i[w] (one float vector against every mask, never expanding a mask to floats).
 *
 * Storage: blocks of `blockSize` masks (a multiple of 16), in groups of four byte positions and
 * lanes of 16 slots. Block b is one Uint8Array(totalBytes · blockSize) where byte j of the mask in
 * slot m sits at storageOffset(blockSize, j, m) = rowOffset(j) + slotOffset(m), with
 * rowOffset(j) = ⌊j/4⌋·4·blockSize + (j mod 4)·16 and slotOffset(m) = ⌊m/16⌋·64 + m mod 16: group g
 * (bytes 4g..4g+3) is one run of 4·blockSize bytes, in which each lane of 16 slots holds 64 bytes,
 * byte position by byte position. The kernel reads a block as one sequential stream
 * (byte-position-major rows, one stream per row, were 25 % slower), and a lane's 16 bytes of one
 * position are one 16-byte vector, the unit of a SIMD kernel that looks up 16 masks at once
 * (ADR 0007).
 *
 * Kernel (dotAll): for each group of four byte positions j..j+3, build four 256-entry subset-sum
 * tables T_r[x] = Σ_{bits t of x} V[8(j+r) + t] (255 adds each), then walk every block's group
 * once (one 32-bit load per four masks and position) and add T_0[x_0] + … + T_3[x_3] to each mask's float64
 * accumulator. The tables are built once per group and shared by all blocks, so a call costs about
 * totalBytes · (255 + k) additions and reads the bank once, sequentially. The loops run in
 * WebAssembly (src/model/kernels/dot-kernel.ts) over one shared memory per bank that holds the blocks, the
 * vector and the scratch. The rows are cut into ROW_CHUNKS fixed chunks with their own partial
 * sums (added in chunk order), and large calls hand whole chunks to worker threads
 * (src/model/threads/dot-pool.ts), so the result never depends on the thread count. Measured: ~33 ms of one core per dotAll for k = 2500 masks on lenet
 * 784-300-100-500 (39,404 bytes per mask), 17 ms on two (2026-12-04 machine; ADR 0003 and
 * docs/benchmarks.md).
 */

const DEFAULT_BLOCK_SIZE = 256;
/** Slots per lane: a lane's bytes of one position are one 16-byte vector. */
const LANE = 16;
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
/**
 * From this many masks on, subsetCounts counts byte values per position (a histogram); below it,
 * it adds the masks' bytes spread to one bit per nibble (at most 15 per nibble, no overflow).
 */
const HISTOGRAM_SUBSET = 16;

export interface MaskBankOptions {
  /** Masks per storage block; a positive multiple of 16. Default 256. */
  blockSize?: number;
  /**
   * Threads for large dot products (the caller plus worker threads sharing the storage).
   * Default: the cores available, at most 4. 1 keeps everything on the calling thread.
   */
  threads?: number;
}

/** Below this many stored mask bytes a dot product stays on the calling thread (a round trip costs ~0.1 ms). */
const PARALLEL_MIN_BYTES = 4 << 20;

export class MaskBank {
  readonly layout: MaskLayout;
  readonly blockSize: number;
  /** Blocks, the vector and the kernel's scratch, in one shared WebAssembly memory. */
  private readonly dot = new DotMemory();
  private readonly blocks: Uint8Array[] = [];
  /** Each block's address in the dot memory. */
  private readonly blockAt: number[] = [];
  /** Bit counts of masks [0, countedMasks); the later ones are folded in when counts are read. */
  private readonly bitCounts: Uint32Array;
  private countedMasks = 0;
  /** Bytes that contain padding bits, and which of their bits are padding. */
  private readonly paddingByteIndices: Int32Array;
  private readonly paddingByteBits: Uint8Array;
  /** Float64 copy of the caller's vector, in the dot memory at valuesAt. */
  private readonly values: Float64Array;
  private readonly valuesAt: number;
  /** The nibble kernel's tables, sums and mask addresses, for up to `masks` masks. */
  private nibbleScratch = { masks: 0, tables: 0, sums: 0, list: 0 };
  private readonly histogram = new Uint32Array(TABLE_SIZE);
  private accumulators = new Float64Array(0);
  /** The table kernel's block list and partial sums, for up to `blocks` blocks. */
  private scratch = { blocks: 0, list: 0, partials: 0 };
  /** The screen's per-thread tables and lane sums, then ROW_CHUNKS bounds (0: not yet allocated). */
  private screenScratch = 0;
  private maskCount = 0;
  private threadCount: number;
  private lastThreads = 0;

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
    this.valuesAt = this.dot.allocate(8 * layout.totalBits);
    this.values = this.dot.float64s(this.valuesAt, layout.totalBits);
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
    return this.lastThreads;
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
        total += this.dot.readV128(at, at + whole);
        for (let i = whole; i < block.length; i++) total += block[i] as number;
      } else if (word === 'u32') {
        total += sumWords(new Int32Array(block.buffer, block.byteOffset, block.length >>> 2));
      } else total += sumFloats(new Float64Array(block.buffer, block.byteOffset, block.length >>> 3));
    }
    return total;
  }

  /** Bytes held by the bank's typed arrays (mask storage, counts and scratch). */
  memoryBytes(): number {
    let bytes = this.bitCounts.byteLength + this.dot.usedBytes;
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
   * fills[p] slots) into acc (one value per slot, positions in order), split over threads when the
   * work is large; the row chunks make the result the same on any thread count. Returns the
   * screen's bound (0 for the table kernel).
   */
  private runDot(
    kind: DotJob['kind'],
    { blocks, fills }: { blocks: readonly number[]; fills: Int32Array },
    acc: Float64Array,
  ): number {
    const scratch = this.scratchFor(blocks.length);
    const list = this.dot.int32s(scratch.list, 2 * blocks.length);
    for (let p = 0; p < blocks.length; p++) {
      list[2 * p] = this.blockAt[blocks[p] as number] as number;
      list[2 * p + 1] = Math.ceil((fills[p] as number) / LANE);
    }
    const n = blocks.length * this.blockSize;
    const common = {
      list: scratch.list,
      blocks: blocks.length,
      values: this.valuesAt,
      partials: scratch.partials,
      blockSize: this.blockSize,
      totalBytes: this.layout.totalBytes,
    };
    const job: DotJob = kind === 'table' ? { kind, ...common } : { kind, ...common, ...this.screenAreas() };
    const pool = n * this.layout.totalBytes >= PARALLEL_MIN_BYTES ? DotPool.get(this.threadCount) : null;
    if (pool?.run(this.dot, job)) {
      this.lastThreads = pool.threads;
    } else {
      dotChunks(this.dot.kernels, this.dot.memory.buffer, job, 0, ROW_CHUNKS, 0);
      this.lastThreads = 1;
    }
    combineChunks(this.dot.float64s(scratch.partials, ROW_CHUNKS * n), n, acc);
    if (job.kind === 'table') return 0;
    // Σ of the chunks' bounds. The rounding of combining the chunks' sums is within the
    // ROUNDING_SLACK · Σ|V| that each chunk's bound holds; the factor covers this sum's own.
    let bound = 0;
    for (const delta of this.dot.float64s(job.deltas, ROW_CHUNKS)) bound += delta;
    return bound * (1 + 2 ** -40);
  }

  /** The screen's per-thread scratch and its chunks' bounds, allocated on first use. */
  private screenAreas(): { scratch: number; scratchBytes: number; deltas: number } {
    const scratchBytes = screenScratchBytes(this.blockSize);
    if (this.screenScratch === 0) {
      this.screenScratch = this.dot.allocate(KERNEL_THREADS * scratchBytes + 8 * ROW_CHUNKS);
    }
    return {
      scratch: this.screenScratch,
      scratchBytes,
      deltas: this.screenScratch + KERNEL_THREADS * scratchBytes,
    };
  }

  /** Scratch for `blocks` blocks; regrown (doubling, the old region left unused) when too small. */
  private scratchFor(blocks: number): MaskBank['scratch'] {
    if (this.scratch.blocks >= blocks) return this.scratch;
    const capacity = Math.max(blocks, 2 * this.scratch.blocks);
    const listBytes = 8 * capacity;
    const at = this.dot.allocate(listBytes + ROW_CHUNKS * capacity * this.blockSize * 8);
    this.scratch = { blocks: capacity, list: at, partials: at + listBytes };
    return this.scratch;
  }

  private checkThreads(threads: number): void {
    if (!Number.isInteger(threads) || threads < 1 || threads > 64) {
      throw new SupsupError('E_BAD_ARGUMENT', `threads ${threads} is not an integer in [1, 64]`);
    }
  }

  private allocateBlock(): void {
    // In the shared dot memory, so dot-product worker threads read the masks in place.
    const bytes = this.layout.totalBytes * this.blockSize;
    const at = this.dot.allocate(bytes);
    this.blockAt.push(at);
    this.blocks.push(this.dot.bytes(at, bytes));
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
    const k = indices.length;
    const scratch = this.nibbleScratchFor(k);
    const list = this.dot.int32s(scratch.list, k);
    for (let p = 0; p < k; p++) {
      const index = indices[p] as number;
      list[p] =
        (this.blockAt[Math.floor(index / this.blockSize)] as number) + slotOffset(index % this.blockSize);
    }
    const sums = this.dot.float64s(scratch.sums, k);
    sums.fill(0);
    this.dot.kernels.nibble(
      scratch.list,
      k,
      this.layout.totalBytes,
      this.blockSize,
      this.valuesAt,
      scratch.sums,
      scratch.tables,
    );
    target.set(sums);
    this.lastThreads = 1;
  }

  /** The nibble kernel's list, sums and tables for k masks; regrown (doubling) when too small. */
  private nibbleScratchFor(k: number): MaskBank['nibbleScratch'] {
    if (this.nibbleScratch.masks >= k) return this.nibbleScratch;
    const masks = Math.max(k, 2 * this.nibbleScratch.masks, 16);
    const at = this.dot.allocate(NIBBLE_TABLE_BYTES + 12 * masks);
    this.nibbleScratch = {
      masks,
      tables: at,
      sums: at + NIBBLE_TABLE_BYTES,
      list: at + NIBBLE_TABLE_BYTES + 8 * masks,
    };
    return this.nibbleScratch;
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
    this.values.set(v);
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

/** XOR of all words, four independent chains so the loads, not the arithmetic, set the pace. */
function sumWords(words: Int32Array): number {
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
function sumFloats(values: Float64Array): number {
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

/** The bytes that hold padding bits (each layer's tail up to its 32-bit boundary) and those bits. */
function paddingBits(layout: MaskLayout): { byteIndices: Int32Array; bits: Uint8Array } {
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
function writeColumn(storage: Uint8Array, blockSize: number, slot: number, packed: Uint8Array): void {
  for (let j = 0, at = slotOffset(slot); j < packed.length; j += 4, at += 4 * blockSize) {
    storage[at] = packed[j] as number;
    storage[at + LANE] = packed[j + 1] as number;
    storage[at + 2 * LANE] = packed[j + 2] as number;
    storage[at + 3 * LANE] = packed[j + 3] as number;
  }
}

function readColumn(storage: Uint8Array, blockSize: number, slot: number, totalBytes: number): Uint8Array {
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
function storageOffset(blockSize: number, j: number, slot: number): number {
  return rowOffset(blockSize, j) + slotOffset(slot);
}

/** Offset of byte j of slot 0 in a block; slot m's byte j is slotOffset(m) further. */
function rowOffset(blockSize: number, j: number): number {
  return (j - (j & 3)) * blockSize + (j & 3) * LANE;
}

/** How far slot m's bytes are from slot 0's, at every byte position. */
function slotOffset(slot: number): number {
  return (slot - (slot & (LANE - 1))) * 4 + (slot & (LANE - 1));
}

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
function addBitsBySpread(
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
function addBitsByHistogram(
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
function updateBitCountsForReplace(
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

/** True when the nibble kernel is cheaper than the byte tables for k masks over `slots` stored slots. */
function preferNibbles(k: number, slots: number): boolean {
  return (
    NIBBLE_TABLE_BUILD_NS + NIBBLE_PER_MASK_NS * k < BYTE_TABLE_BUILD_NS + BYTE_TABLE_PER_SLOT_NS * slots
  );
}
