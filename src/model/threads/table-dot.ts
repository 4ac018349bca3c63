/**
 * The bit-packed dot-product kernel shared by the mask bank and its worker threads (see
 * mask-bank.ts for the storage layout): for each group of four byte positions, build four
 * 256-entry subset-sum tables of the vector, then add one table entry per mask byte. The loops
 * run in WebAssembly (src/model/kernels/dot-kernel.ts); this file cuts the rows into chunks.
 */
import { type AccumulateRows, type DotKernels, KERNEL_THREADS } from '../kernels/index.js';

/** Byte rows whose tables are built together; totalBytes is a multiple of 4 by construction. */
export const ROWS_PER_GROUP = 4;

/**
 * Rows of a dot product are cut into this many chunks, whatever the thread count: chunk c sums its
 * rows into its own partial accumulators, and a mask's result is ((p0 + p1) + p2) + p3. Threads
 * take whole chunks, so the result is bit-identical on 1, 2, 3 or 4 threads, and each thread
 * walks contiguous rows and builds the tables of its rows only.
 */
export const ROW_CHUNKS = KERNEL_THREADS;

/** Byte rows [from, to) of chunk c, on group boundaries. */
export function chunkRows(totalBytes: number, chunk: number): [number, number] {
  const groups = totalBytes / ROWS_PER_GROUP;
  const from = Math.floor((chunk * groups) / ROW_CHUNKS) * ROWS_PER_GROUP;
  const to = Math.floor(((chunk + 1) * groups) / ROW_CHUNKS) * ROWS_PER_GROUP;
  return [from, to];
}

/**
 * A table-kernel job in a dot memory (src/model/kernels/dot-kernel.ts); every address is a byte offset in
 * it. `list` holds `blocks` pairs (block base address, quads to walk); `partials` holds ROW_CHUNKS
 * regions of blocks·blockSize float64 sums.
 */
export interface TableDotJob {
  readonly kind: 'table';
  readonly list: number;
  readonly blocks: number;
  readonly values: number;
  readonly partials: number;
  readonly blockSize: number;
  readonly totalBytes: number;
}

/**
 * A screen job (src/model/kernels/screen-kernel.ts): the same fields, plus thread t's scratch at
 * scratch + t·scratchBytes and each chunk's bound δ_c at deltas + 8c.
 */
export interface ScreenJob extends Omit<TableDotJob, 'kind'> {
  readonly kind: 'screen';
  readonly scratch: number;
  readonly scratchBytes: number;
  readonly deltas: number;
}

export type DotJob = TableDotJob | ScreenJob;

/**
 * Chunks [chunkFrom, chunkTo) of a job, on thread `thread`'s table area or scratch: partial sums
 * of chunk c at partials + c·n·8 (n = blocks·blockSize), each mask's slot in block order.
 */
export function dotChunks(
  kernels: DotKernels,
  buffer: ArrayBufferLike,
  job: DotJob,
  chunkFrom: number,
  chunkTo: number,
  thread: number,
): void {
  const n = job.blocks * job.blockSize;
  const accumulate = kernels.accumulate[thread] as AccumulateRows;
  for (let c = chunkFrom; c < chunkTo; c++) {
    const [from, to] = chunkRows(job.totalBytes, c);
    const acc = job.partials + c * n * 8;
    new Float64Array(buffer, acc, n).fill(0);
    const args = [job.list, job.blocks, from, to, job.blockSize, job.values, acc, job.blockSize * 8] as const;
    if (job.kind === 'table') {
      accumulate(...args);
      continue;
    }
    const delta = kernels.screen(...args, job.scratch + thread * job.scratchBytes);
    new Float64Array(buffer, job.deltas + 8 * c, 1)[0] = delta;
  }
}

/** out[i] = ((p0[i] + p1[i]) + p2[i]) + p3[i] over the ROW_CHUNKS partial sums of n values each. */
export function combineChunks(partials: Float64Array, n: number, out: Float64Array): void {
  for (let i = 0; i < n; i++) {
    let sum = partials[i] as number;
    for (let c = 1; c < ROW_CHUNKS; c++) sum += partials[c * n + i] as number;
    out[i] = sum;
  }
}
