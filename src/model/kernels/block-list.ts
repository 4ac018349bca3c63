/**
 * The walk over a dot job's block list (table-dot.ts: `blocks` pairs of i32, the block's base
 * address and its lanes of 16 slots), shared by the WebAssembly kernels that read mask blocks
 * (dot-kernel.ts, screen-kernel.ts).
 */
import { addTo, get, i32Const, indexAddress, memarg, op, reached, set, whileNot } from './wasm-asm.js';

/** The locals the walk reads (list, blocks, row, stride, lanesFrom) and sets (b, entry, p, lanesEnd). */
export interface BlockListLocals {
  readonly list: number;
  readonly blocks: number;
  readonly b: number;
  readonly entry: number;
  /** The first byte row of the group to read; each block's group starts at base + row · stride. */
  readonly row: number;
  readonly stride: number;
  readonly p: number;
  /** lanesEnd ← lanesFrom + 64 · lanes: the end of 64 bytes per lane from lanesFrom. */
  readonly lanesFrom: number;
  readonly lanesEnd: number;
}

/** `body` once per listed block, b = 0, 1, …, with p and lanesEnd set for that block. */
export function eachListedBlock(locals: BlockListLocals, body: readonly number[]): number[] {
  const { list, blocks, b, entry, row, stride, p, lanesFrom, lanesEnd } = locals;
  return [
    ...i32Const(0),
    ...set(b),
    ...whileNot(reached(b, blocks), [
      ...indexAddress(entry, list, b, 3),
      ...get(entry),
      ...op.i32Load,
      ...memarg(2, 0),
      ...get(row),
      ...get(stride),
      ...op.i32Mul,
      ...op.i32Add,
      ...set(p),
      ...get(lanesFrom),
      ...get(entry),
      ...op.i32Load,
      ...memarg(2, 4),
      ...i32Const(6),
      ...op.i32Shl,
      ...op.i32Add,
      ...set(lanesEnd),
      ...body,
      ...addTo(b, i32Const(1)),
    ]),
  ];
}
