/**
 * The bit-packed dot-product kernel (src/model/threads/table-dot.ts) in WebAssembly, assembled here (see
 * wasm-asm.ts), over one shared memory per mask bank (DotMemory) that worker threads run it on too.
 *
 * accumulate_rows_t(list, blocks, rowFrom, rowTo, stride, values, acc, accStride), t the thread's
 * table area (KERNEL_THREADS of them, at fixed addresses t·TABLE_AREA_BYTES so that each lookup is
 * one load with a constant offset): for each group of four byte rows in [rowFrom, rowTo) whose 32
 * values are not all zero, build the four 256-entry tables T_r[x] = Σ_{bits i of x}
 * values[8(row + r) + i] by doubling, then add ((T_0[x_0] + T_1[x_1]) + T_2[x_2]) + T_3[x_3] to
 * the float64 accumulator of every mask slot of every listed block. `list` holds `blocks` pairs
 * (block base address, lanes of 16 slots to walk). Blocks are group-interleaved (mask-bank.ts):
 * the group starting at byte row `row` begins at base + row·stride and holds, for each lane of 16
 * slots, 64 bytes: byte x_r of slot 16l + s at 64l + 16r + s, so the walk over a group is one
 * sequential run of the block (one prefetch stream per block instead of four). A block's
 * accumulators start at acc + b·accStride. Same operations in the same order as the JavaScript it
 * replaced, so the sums are unchanged; per four masks: four 32-bit loads (one per row), then per
 * byte a shift, a mask, one table load, one add.
 */
import { SupsupError } from '../../errors.js';
import { eachListedBlock } from './block-list.js';
import { NIBBLE_DOTS_TYPE, type NibbleDots, nibbleDotsBody } from './nibble-kernel.js';
import { SCREEN_ROWS_TYPE, type ScreenRows, screenRowsBody } from './screen-kernel.js';
import {
  addTo,
  BR_IF,
  END,
  f64Const,
  functionBody,
  get,
  I32,
  I32_ADD,
  I32_GE_U,
  I32_MUL,
  I32_SHL,
  i32Const,
  indexAddress,
  MAGIC_AND_VERSION,
  memarg,
  name,
  PAGE_BYTES,
  section,
  set,
  sharedMemoryImport,
  simd,
  tee,
  uleb,
  V128,
  v128Load,
  vec,
  WASM32_MAX_PAGES,
  Wasm,
  type WasmMemory,
  type WasmModule,
  whileNot,
} from './wasm-asm.js';

const I32_LOAD = 0x28;
const F64_LOAD = 0x2b;
const F64_STORE = 0x39;
const F64_ADD = 0xa0;

/** Bytes of one thread's four 256-entry float64 tables. */
export const TABLE_AREA_BYTES = 4 * 256 * 8;
/** Table areas, at addresses 0, TABLE_AREA_BYTES, …: the most threads one dot product uses. */
export const KERNEL_THREADS = 4;

const I32_AND = 0x71;
const I32_SHR_U = 0x76;

/**
 * T_row[x] for the tables at address `tables`, x being byte `lane` of the word in local `word`
 * (one row of four slots): the byte offset 8·x is cut out of the word with one shift and one mask
 * (one 32-bit load per four bytes instead of four byte loads: 4 % faster).
 */
function lookup(tables: number, row: number, word: number, lane: number): number[] {
  const offset =
    lane === 0
      ? [...get(word), ...i32Const(3), I32_SHL]
      : [...get(word), ...i32Const(8 * lane - 3), I32_SHR_U];
  return [...offset, ...i32Const(0x7f8), I32_AND, F64_LOAD, ...memarg(3, tables + 2048 * row)];
}

const F64_NE = 0x62;
const F64 = 0x7c;
const IF = 0x04;

/** accumulate_rows_t for the table area at address `tables` (see the top of this file). */
function accumulateRows(tables: number): number[] {
  const [list, blocks, rowFrom, rowTo, stride, values, acc, accStride] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [row, vp, i, n, tr, b, p, end, a, q, entry] = [8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18];
  const words = [19, 20, 21, 22];
  const value = 23; // f64
  // Are the group's 32 values all zero? (−0 counts as zero, NaN does not, as with !== 0.)
  const nonZero = [
    ...i32Const(0),
    ...set(i),
    ...[0x02, 0x40], // block: found
    ...whileNot(
      [...get(i), ...i32Const(256), I32_GE_U],
      [
        ...get(vp),
        ...get(i),
        I32_ADD,
        F64_LOAD,
        ...memarg(3, 0),
        ...f64Const(0),
        F64_NE,
        BR_IF,
        2,
        ...addTo(i, i32Const(8)),
      ],
    ),
    END,
    // i < 256 exactly when a non-zero value was found
    ...get(i),
    ...i32Const(256),
    0x49, // i32.lt_u
  ];
  const buildTable = (r: number): number[] => [
    ...i32Const(tables + 2048 * r),
    ...tee(tr),
    ...f64Const(0),
    F64_STORE,
    ...memarg(3, 0),
    // n: bytes in the table so far (8 · 2^t); the value of bit t is values[8(row + r) + t].
    ...i32Const(8),
    ...set(n),
    ...i32Const(0),
    ...set(i),
    ...whileNot(
      [...get(n), ...i32Const(2048), I32_GE_U],
      [
        ...get(vp),
        ...get(i),
        I32_ADD,
        F64_LOAD,
        ...memarg(3, 64 * r),
        ...set(value),
        ...i32Const(0),
        ...set(q),
        ...whileNot(
          [...get(q), ...get(n), I32_GE_U],
          [
            ...get(tr),
            ...get(q),
            I32_ADD,
            ...get(n),
            I32_ADD,
            ...get(tr),
            ...get(q),
            I32_ADD,
            F64_LOAD,
            ...memarg(3, 0),
            ...get(value),
            F64_ADD,
            F64_STORE,
            ...memarg(3, 0),
            ...addTo(q, i32Const(8)),
          ],
        ),
        ...addTo(i, i32Const(8)),
        ...get(n),
        ...i32Const(1),
        I32_SHL,
        ...set(n),
      ],
    ),
  ];
  // Slots 4c..4c+3 of a lane: their byte of row r is one word at 16r + 4c.
  const fourSlots = (c: number): number[] => [
    ...[0, 1, 2, 3].flatMap((r) => [
      ...get(p),
      I32_LOAD,
      ...memarg(2, 16 * r + 4 * c),
      ...set(words[r] as number),
    ]),
    ...[0, 1, 2, 3].flatMap((lane) => [
      ...get(a),
      ...get(a),
      F64_LOAD,
      ...memarg(3, 8 * (4 * c + lane)),
      ...lookup(tables, 0, words[0] as number, lane),
      ...lookup(tables, 1, words[1] as number, lane),
      F64_ADD,
      ...lookup(tables, 2, words[2] as number, lane),
      F64_ADD,
      ...lookup(tables, 3, words[3] as number, lane),
      F64_ADD,
      F64_ADD,
      F64_STORE,
      ...memarg(3, 8 * (4 * c + lane)),
    ]),
  ];
  const slotLanes = [
    ...whileNot(
      [...get(p), ...get(end), I32_GE_U],
      [...[0, 1, 2, 3].flatMap(fourSlots), ...addTo(p, i32Const(64)), ...addTo(a, i32Const(128))],
    ),
  ];
  // p = base + row · stride (the group's first word); end = p + 64 · lanes
  const accumulate = eachListedBlock(
    { list, blocks, b, entry, row, stride, p, lanesFrom: p, lanesEnd: end },
    [...get(acc), ...get(b), ...get(accStride), I32_MUL, I32_ADD, ...set(a), ...slotLanes],
  );
  const code = [
    ...get(rowFrom),
    ...set(row),
    ...whileNot(
      [...get(row), ...get(rowTo), I32_GE_U],
      [
        ...indexAddress(vp, values, row, 6), // eight float64 values per byte row
        ...nonZero,
        IF,
        0x40,
        ...buildTable(0),
        ...buildTable(1),
        ...buildTable(2),
        ...buildTable(3),
        ...accumulate,
        END,
        ...addTo(row, i32Const(4)),
      ],
    ),
    END,
  ];
  return functionBody(
    [
      [15, I32],
      [1, F64],
    ],
    code,
  );
}

const V128_XOR = 0x51;
const I32X4_EXTRACT_LANE = 0x1b;
const I32_GT_U = 0x4b;
const I32_LE_U = 0x4d;

/**
 * read_v128(from, to) → i32: XOR of every 16-byte word in [from, from + 64·⌊(to − from)/64⌋), four
 * independent chains of v128 loads: the fastest plain read of memory the engine offers, the floor
 * that the table kernel is measured against (`bench oneshot`).
 */
function readV128Body(): number[] {
  const [from, to] = [0, 1];
  const chains = [2, 3, 4, 5];
  const code = [
    ...[0x02, 0x40], // block: nothing to read
    ...get(from),
    ...i32Const(64),
    I32_ADD,
    ...get(to),
    I32_GT_U,
    BR_IF,
    0, // not one whole run: skip the loop
    0x03,
    0x40,
    ...chains.flatMap((chain, c) => [
      ...get(chain),
      ...get(from),
      ...v128Load(16 * c),
      ...simd(V128_XOR),
      ...set(chain),
    ]),
    ...addTo(from, i32Const(64)),
    ...get(from),
    ...i32Const(64),
    I32_ADD,
    ...get(to),
    I32_LE_U,
    BR_IF,
    0,
    END,
    END,
    // ((c0 ^ c1) ^ (c2 ^ c3)), lane 0
    ...get(chains[0] as number),
    ...get(chains[1] as number),
    ...simd(V128_XOR),
    ...get(chains[2] as number),
    ...get(chains[3] as number),
    ...simd(V128_XOR),
    ...simd(V128_XOR),
    ...simd(I32X4_EXTRACT_LANE),
    0,
    END,
  ];
  return functionBody([[4, V128]], code);
}

/** The module; it imports a shared memory of at most `maxPages` pages as env.memory. */
function moduleBytes(maxPages: number): Uint8Array {
  const accumulateType = [0x60, ...vec(Array.from({ length: 8 }, () => [I32])), 0];
  const readType = [0x60, ...vec([[I32], [I32]]), ...vec([[I32]])];
  const threads = Array.from({ length: KERNEL_THREADS }, (_, t) => t);
  return Uint8Array.from([
    ...MAGIC_AND_VERSION,
    ...section(1, vec([accumulateType, readType, SCREEN_ROWS_TYPE, NIBBLE_DOTS_TYPE])),
    ...section(2, vec([sharedMemoryImport(maxPages)])),
    ...section(3, vec([...threads.map(() => [0]), [1], [2], [3]])),
    ...section(
      7,
      vec([
        ...threads.map((t) => [...name(`accumulate_rows_${t}`), 0x00, ...uleb(t)]),
        [...name('read_v128'), 0x00, ...uleb(KERNEL_THREADS)],
        [...name('screen_rows'), 0x00, ...uleb(KERNEL_THREADS + 1)],
        [...name('nibble_dots'), 0x00, ...uleb(KERNEL_THREADS + 2)],
      ]),
    ),
    ...section(
      10,
      vec([
        ...threads.map((t) => accumulateRows(t * TABLE_AREA_BYTES)),
        readV128Body(),
        screenRowsBody(),
        nibbleDotsBody(),
      ]),
    ),
  ]);
}

export type AccumulateRows = (
  list: number,
  blocks: number,
  rowFrom: number,
  rowTo: number,
  stride: number,
  values: number,
  acc: number,
  accStride: number,
) => void;

/** JavaScript's typed arrays share the vector and sums with the kernel: their byte order must match. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Pages a dot memory may grow to: all of wasm32's 4 GiB. */
export const DOT_MEMORY_MAX_PAGES = WASM32_MAX_PAGES;

/** XOR of the 16-byte words of [from, to) in whole 64-byte runs (see readV128Body). */
export type ReadV128 = (from: number, to: number) => number;

let compiled: WasmModule | undefined;

function instantiate(memory: WasmMemory): Readonly<Record<string, unknown>> {
  compiled ??= new Wasm.Module(moduleBytes(DOT_MEMORY_MAX_PAGES));
  return new Wasm.Instance(compiled, { env: { memory } }).exports;
}

/** The kernels bound to a dot memory (its own or one posted to a worker thread). */
export function dotKernels(memory: WasmMemory): DotKernels {
  return boundKernels(instantiate(memory));
}

function boundKernels(exports: Readonly<Record<string, unknown>>): DotKernels {
  return {
    accumulate: accumulateKernels(exports),
    screen: exports.screen_rows as ScreenRows,
    nibble: exports.nibble_dots as NibbleDots,
  };
}

export interface DotKernels {
  /** The exact table kernel, one per table area. */
  readonly accumulate: readonly AccumulateRows[];
  /** The quantised screen (src/model/kernels/screen-kernel.ts); each thread passes its own scratch. */
  readonly screen: ScreenRows;
  /** The exact kernel for a few masks (src/model/kernels/nibble-kernel.ts), on the calling thread. */
  readonly nibble: NibbleDots;
}

function accumulateKernels(exports: Readonly<Record<string, unknown>>): readonly AccumulateRows[] {
  return Array.from({ length: KERNEL_THREADS }, (_, t) => exports[`accumulate_rows_${t}`] as AccumulateRows);
}

/**
 * One shared WebAssembly memory holding the kernel's table areas (from address 0), a mask bank's
 * blocks, its float64 vector and scratch, so worker threads run the kernel on the same bytes. A bump allocator: regions are never
 * freed and never move; the memory grows as blocks are added (views made before a growth stay
 * valid, since a shared memory is never detached).
 */
export class DotMemory {
  readonly memory: WasmMemory;
  readonly kernels: DotKernels;
  /** Reads a region with v128 loads (the memory-read floor of `bench oneshot`). */
  readonly readV128: ReadV128;
  private used = 0;

  constructor() {
    if (!LITTLE_ENDIAN) {
      throw new SupsupError(
        'E_BACKEND_UNAVAILABLE',
        'the mask bank needs a little-endian host (WebAssembly memory is little-endian)',
      );
    }
    this.memory = new Wasm.Memory({ initial: 1, maximum: DOT_MEMORY_MAX_PAGES, shared: true });
    const exports = instantiate(this.memory);
    this.kernels = boundKernels(exports);
    this.readV128 = exports.read_v128 as ReadV128;
    this.allocate(KERNEL_THREADS * TABLE_AREA_BYTES);
  }

  /** A zeroed region of `bytes` bytes at a 64-byte aligned address; throws when wasm32's 4 GiB are full. */
  allocate(bytes: number): number {
    const at = Math.ceil(this.used / 64) * 64;
    const end = at + bytes;
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      const pages = Math.ceil((end - have) / PAGE_BYTES);
      if (have / PAGE_BYTES + pages > DOT_MEMORY_MAX_PAGES) {
        throw new SupsupError(
          'E_BAD_ARGUMENT',
          `mask bank storage would exceed ${DOT_MEMORY_MAX_PAGES * PAGE_BYTES} bytes (WebAssembly's 4 GiB)`,
        );
      }
      this.memory.grow(pages);
    }
    this.used = end;
    return at;
  }

  bytes(at: number, length: number): Uint8Array {
    return new Uint8Array(this.memory.buffer, at, length);
  }

  float64s(at: number, length: number): Float64Array {
    return new Float64Array(this.memory.buffer, at, length);
  }

  int32s(at: number, length: number): Int32Array {
    return new Int32Array(this.memory.buffer, at, length);
  }

  /** Bytes reserved so far. */
  get usedBytes(): number {
    return this.used;
  }
}
