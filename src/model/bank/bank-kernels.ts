/**
 * A mask bank's products over its shared WebAssembly memory (src/model/kernels/dot-kernel.ts): the
 * memory itself (blocks, the float64 vector, every kernel's scratch), the three kernels' calls and
 * the hand-off of large calls to worker threads. MaskBank decides which masks and which kernel;
 * this class runs it.
 */
import { DotMemory, KERNEL_THREADS, NIBBLE_TABLE_BYTES, screenScratchBytes } from '../kernels/index.js';
import { combineChunks, type DotJob, DotPool, dotChunks, ROW_CHUNKS } from '../threads/index.js';
import { LANE } from './block-storage.js';

/** Below this many stored mask bytes a dot product stays on the calling thread (a round trip costs ~0.1 ms). */
const PARALLEL_MIN_BYTES = 4 << 20;

/** Blocks to walk: block addresses in the dot memory and the slots filled in each. */
export interface BlockWalk {
  readonly addresses: readonly number[];
  readonly fills: Int32Array;
}

export class BankKernels {
  /** Blocks, the vector and the kernel's scratch, in one shared WebAssembly memory. */
  private readonly dot = new DotMemory();
  /** Float64 copy of the caller's vector, in the dot memory at valuesAt. */
  private readonly values: Float64Array;
  private readonly valuesAt: number;
  /** The nibble kernel's tables, sums and mask addresses, for up to `masks` masks. */
  private nibbleScratch = { masks: 0, tables: 0, sums: 0, list: 0 };
  /** The table kernel's block list and partial sums, for up to `blocks` blocks. */
  private scratch = { blocks: 0, list: 0, partials: 0 };
  /** The screen's per-thread tables and lane sums, then ROW_CHUNKS bounds (0: not yet allocated). */
  private screenScratch = 0;
  private lastThreads = 0;
  private readonly totalBytes: number;
  private readonly blockSize: number;

  constructor(totalBits: number, totalBytes: number, blockSize: number) {
    this.totalBytes = totalBytes;
    this.blockSize = blockSize;
    this.valuesAt = this.dot.allocate(8 * totalBits);
    this.values = this.dot.float64s(this.valuesAt, totalBits);
  }

  /** Threads the last table-kernel or screen call ran on, 1 for the nibble kernel (0 before the first). */
  get lastDotThreads(): number {
    return this.lastThreads;
  }

  /** Bytes reserved in the dot memory so far. */
  get usedBytes(): number {
    return this.dot.usedBytes;
  }

  /** A new block of the bank's size in the dot memory (worker threads read the masks in place). */
  allocateBlock(): { at: number; bytes: Uint8Array } {
    const bytes = this.totalBytes * this.blockSize;
    const at = this.dot.allocate(bytes);
    return { at, bytes: this.dot.bytes(at, bytes) };
  }

  /** Copies the caller's vector (of totalBits values, checked by the caller) into the dot memory. */
  loadValues(v: Float32Array | Float64Array): void {
    this.values.set(v);
  }

  /** XOR of the 16-byte words of [from, to) by v128 loads (the memory-read floor). */
  readV128(from: number, to: number): number {
    return this.dot.readV128(from, to);
  }

  /**
   * The table kernel or the screen over the listed blocks into acc (one value per slot, blocks in
   * order), split over up to `threads` threads when the work is large; the row chunks make the
   * result the same on any thread count. Returns the screen's bound (0 for the table kernel).
   */
  run(kind: DotJob['kind'], walk: BlockWalk, acc: Float64Array, threads: number): number {
    const { addresses, fills } = walk;
    const scratch = this.scratchFor(addresses.length);
    const list = this.dot.int32s(scratch.list, 2 * addresses.length);
    for (let p = 0; p < addresses.length; p++) {
      list[2 * p] = addresses[p] as number;
      list[2 * p + 1] = Math.ceil((fills[p] as number) / LANE);
    }
    const n = addresses.length * this.blockSize;
    const common = {
      list: scratch.list,
      blocks: addresses.length,
      values: this.valuesAt,
      partials: scratch.partials,
      blockSize: this.blockSize,
      totalBytes: this.totalBytes,
    };
    const job: DotJob = kind === 'table' ? { kind, ...common } : { kind, ...common, ...this.screenAreas() };
    const pool = n * this.totalBytes >= PARALLEL_MIN_BYTES ? DotPool.get(threads) : null;
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

  /**
   * The nibble kernel (src/model/kernels/nibble-kernel.ts) for the masks whose byte 0 is at
   * `maskAddresses[p]`: for each byte row, the 16 subset sums of its low and high four values,
   * then target[p] = Σ_rows (lo[x & 15] + hi[x >> 4]), on the calling thread.
   */
  nibble(maskAddresses: ArrayLike<number>, target: Float64Array): void {
    const k = maskAddresses.length;
    const scratch = this.nibbleScratchFor(k);
    this.dot.int32s(scratch.list, k).set(maskAddresses);
    const sums = this.dot.float64s(scratch.sums, k);
    sums.fill(0);
    this.dot.kernels.nibble(
      scratch.list,
      k,
      this.totalBytes,
      this.blockSize,
      this.valuesAt,
      scratch.sums,
      scratch.tables,
    );
    target.set(sums);
    this.lastThreads = 1;
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
  private scratchFor(blocks: number): BankKernels['scratch'] {
    if (this.scratch.blocks >= blocks) return this.scratch;
    const capacity = Math.max(blocks, 2 * this.scratch.blocks);
    const listBytes = 8 * capacity;
    const at = this.dot.allocate(listBytes + ROW_CHUNKS * capacity * this.blockSize * 8);
    this.scratch = { blocks: capacity, list: at, partials: at + listBytes };
    return this.scratch;
  }

  /** The nibble kernel's list, sums and tables for k masks; regrown (doubling) when too small. */
  private nibbleScratchFor(k: number): BankKernels['nibbleScratch'] {
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
}
