/**
 * The bit-packed dot-product kernel (src/model/threads/table-dot.ts) in WebAssembly, assembled
 * here by the typed builder (wasm-module.ts, ADR 0008), over one shared memory per mask bank
 * (DotMemory) that worker threads run it on too.
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
import { type NibbleDots, nibbleDots } from './nibble-kernel.js';
import { relaxedSimd, type ScreenRows, screenRows } from './screen-kernel.js';
import {
  addTo,
  block,
  brIf,
  F64,
  f64Const,
  get,
  I32,
  i32Const,
  ifThen,
  indexAddress,
  lane,
  loop,
  memarg,
  op,
  reached,
  set,
  tee,
  V128,
  v128Load,
  whileNot,
} from './wasm-asm.js';
import {
  type BuiltFunction,
  compile,
  FunctionBuilder,
  moduleBytes,
  PAGE_BYTES,
  WASM32_MAX_PAGES,
  Wasm,
  type WasmMemory,
  type WasmModule,
} from './wasm-module.js';

/** Bytes of one thread's four 256-entry float64 tables. */
export const TABLE_AREA_BYTES = 4 * 256 * 8;
/** Table areas, at addresses 0, TABLE_AREA_BYTES, …: the most threads one dot product uses. */
export const KERNEL_THREADS = 4;

/**
 * T_row[x] for the tables at address `tables`, x being byte `index` of the word in local `word`
 * (one row of four slots): the byte offset 8·x is cut out of the word with one shift and one mask
 * (one 32-bit load per four bytes instead of four byte loads: 4 % faster).
 */
function lookup(tables: number, row: number, word: number, index: number): number[] {
  const offset =
    index === 0
      ? [...get(word), ...i32Const(3), ...op.i32Shl]
      : [...get(word), ...i32Const(8 * index - 3), ...op.i32ShrU];
  return [...offset, ...i32Const(0x7f8), ...op.i32And, ...op.f64Load, ...memarg(3, tables + 2048 * row)];
}

/** accumulate_rows_t for the table area at address `tables` (see the top of this file). */
function accumulateRows(t: number, tables: number): BuiltFunction {
  const f = new FunctionBuilder(`accumulate_rows_${t}`);
  const { list, blocks, rowFrom, rowTo, stride, values, acc, accStride } = f.params(I32, [
    'list',
    'blocks',
    'rowFrom',
    'rowTo',
    'stride',
    'values',
    'acc',
    'accStride',
  ]);
  const { row, vp, i, n, tr, b, p, end, a, q, entry } = f.locals(I32, [
    'row',
    'vp',
    'i',
    'n',
    'tr',
    'b',
    'p',
    'end',
    'a',
    'q',
    'entry',
  ]);
  const words = f.localRun(I32, 'word', 4);
  const { value } = f.locals(F64, ['value']);
  const word = (r: number): number => words[r] as number;
  // Are the group's 32 values all zero? (−0 counts as zero, NaN does not, as with !== 0.)
  const nonZero = [
    ...i32Const(0),
    ...set(i),
    // block: found
    ...block(
      whileNot(
        [...get(i), ...i32Const(256), ...op.i32GeU],
        [
          ...get(vp),
          ...get(i),
          ...op.i32Add,
          ...op.f64Load,
          ...memarg(3, 0),
          ...f64Const(0),
          ...op.f64Ne,
          ...brIf(2),
          ...addTo(i, i32Const(8)),
        ],
      ),
    ),
    // i < 256 exactly when a non-zero value was found
    ...get(i),
    ...i32Const(256),
    ...op.i32LtU,
  ];
  const buildTable = (r: number): number[] => [
    ...i32Const(tables + 2048 * r),
    ...tee(tr),
    ...f64Const(0),
    ...op.f64Store,
    ...memarg(3, 0),
    // n: bytes in the table so far (8 · 2^t); the value of bit t is values[8(row + r) + t].
    ...i32Const(8),
    ...set(n),
    ...i32Const(0),
    ...set(i),
    ...whileNot(
      [...get(n), ...i32Const(2048), ...op.i32GeU],
      [
        ...get(vp),
        ...get(i),
        ...op.i32Add,
        ...op.f64Load,
        ...memarg(3, 64 * r),
        ...set(value),
        ...i32Const(0),
        ...set(q),
        ...whileNot(reached(q, n), [
          ...get(tr),
          ...get(q),
          ...op.i32Add,
          ...get(n),
          ...op.i32Add,
          ...get(tr),
          ...get(q),
          ...op.i32Add,
          ...op.f64Load,
          ...memarg(3, 0),
          ...get(value),
          ...op.f64Add,
          ...op.f64Store,
          ...memarg(3, 0),
          ...addTo(q, i32Const(8)),
        ]),
        ...addTo(i, i32Const(8)),
        ...get(n),
        ...i32Const(1),
        ...op.i32Shl,
        ...set(n),
      ],
    ),
  ];
  // Slots 4c..4c+3 of a lane: their byte of row r is one word at 16r + 4c.
  const fourSlots = (c: number): number[] => [
    ...[0, 1, 2, 3].flatMap((r) => [...get(p), ...op.i32Load, ...memarg(2, 16 * r + 4 * c), ...set(word(r))]),
    ...[0, 1, 2, 3].flatMap((index) => [
      ...get(a),
      ...get(a),
      ...op.f64Load,
      ...memarg(3, 8 * (4 * c + index)),
      ...lookup(tables, 0, word(0), index),
      ...lookup(tables, 1, word(1), index),
      ...op.f64Add,
      ...lookup(tables, 2, word(2), index),
      ...op.f64Add,
      ...lookup(tables, 3, word(3), index),
      ...op.f64Add,
      ...op.f64Add,
      ...op.f64Store,
      ...memarg(3, 8 * (4 * c + index)),
    ]),
  ];
  const slotLanes = whileNot(reached(p, end), [
    ...[0, 1, 2, 3].flatMap(fourSlots),
    ...addTo(p, i32Const(64)),
    ...addTo(a, i32Const(128)),
  ]);
  // p = base + row · stride (the group's first word); end = p + 64 · lanes
  const accumulate = eachListedBlock(
    { list, blocks, b, entry, row, stride, p, lanesFrom: p, lanesEnd: end },
    [...get(acc), ...get(b), ...get(accStride), ...op.i32Mul, ...op.i32Add, ...set(a), ...slotLanes],
  );
  const code = [
    ...get(rowFrom),
    ...set(row),
    ...whileNot(reached(row, rowTo), [
      ...indexAddress(vp, values, row, 6), // eight float64 values per byte row
      ...nonZero,
      ...ifThen([...buildTable(0), ...buildTable(1), ...buildTable(2), ...buildTable(3), ...accumulate]),
      ...addTo(row, i32Const(4)),
    ]),
    ...op.end,
  ];
  return { builder: f, code };
}

/**
 * read_v128(from, to) → i32: XOR of every 16-byte word in [from, from + 64·⌊(to − from)/64⌋), four
 * independent chains of v128 loads: the fastest plain read of memory the engine offers, the floor
 * that the table kernel is measured against (`bench oneshot`).
 */
function readV128(): BuiltFunction {
  const f = new FunctionBuilder('read_v128', [I32]);
  const { from, to } = f.params(I32, ['from', 'to']);
  const chains = f.localRun(V128, 'chain', 4);
  const chain = (c: number): number => chains[c] as number;
  // from + 64 ≤ to: one more whole run to read
  const wholeRunLeft = [...get(from), ...i32Const(64), ...op.i32Add, ...get(to), ...op.i32LeU];
  const code = [
    // block: nothing to read
    ...block([
      ...get(from),
      ...i32Const(64),
      ...op.i32Add,
      ...get(to),
      ...op.i32GtU,
      ...brIf(0), // not one whole run: skip the loop
      ...loop([
        ...chains.flatMap((local, c) => [
          ...get(local),
          ...get(from),
          ...v128Load(16 * c),
          ...op.v128Xor,
          ...set(local),
        ]),
        ...addTo(from, i32Const(64)),
        ...wholeRunLeft,
        ...brIf(0),
      ]),
    ]),
    // ((c0 ^ c1) ^ (c2 ^ c3)), lane 0
    ...get(chain(0)),
    ...get(chain(1)),
    ...op.v128Xor,
    ...get(chain(2)),
    ...get(chain(3)),
    ...op.v128Xor,
    ...op.v128Xor,
    ...lane(op.i32x4ExtractLane, 0),
    ...op.end,
  ];
  return { builder: f, code };
}

/**
 * The module's bytes: accumulate_rows_0..3, read_v128, screen_rows (its swizzle relaxed where
 * `relaxed`) and nibble_dots over an imported shared memory of at most `maxPages` pages.
 */
export function dotModuleBytes(maxPages: number, relaxed: boolean): Uint8Array {
  const threads = Array.from({ length: KERNEL_THREADS }, (_, t) => t);
  return moduleBytes(
    [
      ...threads.map((t) => accumulateRows(t, t * TABLE_AREA_BYTES)),
      readV128(),
      screenRows(relaxed),
      nibbleDots(),
    ],
    { shared: true, min: 1, max: maxPages },
  );
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

/** The module, compiled on first use (the swizzle is chosen then: see relaxedSimd). */
function instantiate(memory: WasmMemory): Readonly<Record<string, unknown>> {
  compiled ??= compile('dot-kernel', dotModuleBytes(DOT_MEMORY_MAX_PAGES, relaxedSimd()));
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
