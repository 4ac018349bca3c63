/**
 * The bit-packed dot-product kernel shared by the mask bank and its worker threads (see
 * mask-bank.ts for the storage layout): for each group of four byte positions, build four
 * 256-entry subset-sum tables of the vector, then add one table entry per mask byte.
 */

/** Byte rows whose tables are built together; totalBytes is a multiple of 4 by construction. */
export const ROWS_PER_GROUP = 4;

/**
 * Fills tables[offset + x] = Σ_{bits t of x} values[first + t] for x in [0, 256) by doubling:
 * entries [n, 2n) are entries [0, n) plus the value of bit log2(n).
 */
function buildByteTable(tables: Float64Array, offset: number, values: Float64Array, first: number): void {
  tables[offset] = 0;
  for (let t = 0, n = 1; t < 8; t++, n <<= 1) {
    const value = values[first + t] as number;
    for (let x = 0; x < n; x++) tables[offset + n + x] = (tables[offset + x] as number) + value;
  }
}

/** True when the 32 values of a four-byte group are all zero (padding, dead units): nothing to add. */
function groupIsZero(values: Float64Array, first: number): boolean {
  for (let w = first; w < first + 8 * ROWS_PER_GROUP; w++) if ((values[w] as number) !== 0) return false;
  return true;
}

/**
 * Rows of a dot product are cut into this many chunks, whatever the thread count: chunk c sums its
 * rows into its own partial accumulators, and a mask's result is ((p0 + p1) + p2) + p3. Threads
 * take whole chunks, so the result is bit-identical on 1, 2, 3 or 4 threads, and each thread
 * walks contiguous rows and builds the tables of its rows only.
 */
export const ROW_CHUNKS = 4;

/** Byte rows [from, to) of chunk c, on group boundaries. */
export function chunkRows(totalBytes: number, chunk: number): [number, number] {
  const groups = totalBytes / ROWS_PER_GROUP;
  const from = Math.floor((chunk * groups) / ROW_CHUNKS) * ROWS_PER_GROUP;
  const to = Math.floor(((chunk + 1) * groups) / ROW_CHUNKS) * ROWS_PER_GROUP;
  return [from, to];
}

/**
 * The table kernel for chunks [chunkFrom, chunkTo): partials[c·n + p·blockSize + s] (n =
 * blocks·blockSize) = Σ_{w in chunk c} values[w]·M[w] for the mask in slot s (swizzled by
 * QUAD_SWIZZLE) of blocks[p], for the first fills[p] slots rounded up to a multiple of 4.
 */
export function tableDotChunks(
  blocks: readonly Uint32Array[],
  fills: Int32Array,
  values: Float64Array,
  tables: Float64Array,
  partials: Float64Array,
  blockSize: number,
  chunkFrom: number,
  chunkTo: number,
): void {
  const n = blocks.length * blockSize;
  const totalBytes = values.length >>> 3;
  for (let c = chunkFrom; c < chunkTo; c++) {
    const [from, to] = chunkRows(totalBytes, c);
    tableDotRows(blocks, fills, values, tables, partials.subarray(c * n, (c + 1) * n), blockSize, from, to);
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

/** acc = the sums over byte rows [rowFrom, rowTo) (a multiple of ROWS_PER_GROUP each). */
function tableDotRows(
  blocks: readonly Uint32Array[],
  fills: Int32Array,
  values: Float64Array,
  tables: Float64Array,
  acc: Float64Array,
  blockSize: number,
  rowFrom: number,
  rowTo: number,
): void {
  const blockCount = blocks.length;
  const quadsPerRow = blockSize >>> 2;
  acc.fill(0, 0, blockCount * blockSize);
  if (blockCount === 0) return;
  for (let row = rowFrom; row < rowTo; row += ROWS_PER_GROUP) {
    if (groupIsZero(values, 8 * row)) continue;
    buildByteTable(tables, 0, values, 8 * row);
    buildByteTable(tables, 256, values, 8 * row + 8);
    buildByteTable(tables, 512, values, 8 * row + 16);
    buildByteTable(tables, 768, values, 8 * row + 24);
    const first = row * quadsPerRow;
    for (let b = 0; b < blockCount; b++) {
      const quads = ((fills[b] as number) + 3) >>> 2;
      accumulateGroup(blocks[b] as Uint32Array, quads, first, quadsPerRow, tables, acc, b * blockSize);
    }
  }
}

/**
 * Adds one four-row group of one block: four masks per Uint32 read, four table lookups per mask.
 * Keep the shape acc + (t0 + t1 + t2 + t3): summing the lookups before touching acc measured ~8%
 * faster than separate per-mask temporaries; 8-row groups and nibble tables measured slower.
 */
function accumulateGroup(
  words: Uint32Array,
  quads: number,
  first: number,
  quadsPerRow: number,
  tables: Float64Array,
  acc: Float64Array,
  accStart: number,
): void {
  const r1 = first + quadsPerRow;
  const r2 = r1 + quadsPerRow;
  const r3 = r2 + quadsPerRow;
  for (let q = 0, a = accStart; q < quads; q++, a += 4) {
    const x0 = words[first + q] as number;
    const x1 = words[r1 + q] as number;
    const x2 = words[r2 + q] as number;
    const x3 = words[r3 + q] as number;
    acc[a] =
      (acc[a] as number) +
      ((tables[x0 & 255] as number) +
        (tables[256 | (x1 & 255)] as number) +
        (tables[512 | (x2 & 255)] as number) +
        (tables[768 | (x3 & 255)] as number));
    acc[a + 1] =
      (acc[a + 1] as number) +
      ((tables[(x0 >>> 8) & 255] as number) +
        (tables[256 | ((x1 >>> 8) & 255)] as number) +
        (tables[512 | ((x2 >>> 8) & 255)] as number) +
        (tables[768 | ((x3 >>> 8) & 255)] as number));
    acc[a + 2] =
      (acc[a + 2] as number) +
      ((tables[(x0 >>> 16) & 255] as number) +
        (tables[256 | ((x1 >>> 16) & 255)] as number) +
        (tables[512 | ((x2 >>> 16) & 255)] as number) +
        (tables[768 | ((x3 >>> 16) & 255)] as number));
    acc[a + 3] =
      (acc[a + 3] as number) +
      ((tables[x0 >>> 24] as number) +
        (tables[256 | (x1 >>> 24)] as number) +
        (tables[512 | (x2 >>> 24)] as number) +
        (tables[768 | (x3 >>> 24)] as number));
  }
}
