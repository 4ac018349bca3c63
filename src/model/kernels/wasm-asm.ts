/**
 * The instruction helpers of the kernels' typed builder (ADR 0008): binary encodings of integers,
 * floats, names and vectors, and the instructions that carry immediates (locals, constants, memory
 * arguments, lanes, structured blocks). Opcodes come from the one table in opcodes.ts; functions
 * and modules are put together by wasm-module.ts. An instruction is a `number[]` of its bytes, so
 * a kernel's code is a spread listing of them in stack order.
 */
import { op, uleb } from './opcodes.js';

export { op, uleb } from './opcodes.js';

/** Signed LEB128 of a 32-bit integer. */
export function sleb(value: number): number[] {
  const out: number[] = [];
  let v = value | 0;
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

/** A vector: its length, then its items. */
export function vec(items: readonly (readonly number[])[]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

/** A name: its UTF-8 length, then its bytes. */
export function name(text: string): number[] {
  const bytes = Array.from(new TextEncoder().encode(text));
  return [...uleb(bytes.length), ...bytes];
}

/** Value types. */
export const I32 = 0x7f;
export const F32 = 0x7d;
export const F64 = 0x7c;
export const V128 = 0x7b;
export type ValueType = typeof I32 | typeof F32 | typeof F64 | typeof V128;

/** The block type of a block, loop or if that takes and leaves nothing. */
const VOID_BLOCK = 0x40;

export const get = (local: number): number[] => [...op.localGet, ...uleb(local)];
export const set = (local: number): number[] => [...op.localSet, ...uleb(local)];
export const tee = (local: number): number[] => [...op.localTee, ...uleb(local)];
export const i32Const = (value: number): number[] => [...op.i32Const, ...sleb(value)];
export const f32Const = (value: number): number[] => [
  ...op.f32Const,
  ...new Uint8Array(new Float32Array([value]).buffer),
];
export const f64Const = (value: number): number[] => [
  ...op.f64Const,
  ...new Uint8Array(new Float64Array([value]).buffer),
];

/** A memory argument: alignment (log2 bytes) and a constant offset. */
export const memarg = (alignLog2: number, offset: number): number[] => [...uleb(alignLog2), ...uleb(offset)];

/** v128.load / v128.store of the 16 bytes at (address on the stack) + offset, 16-byte aligned. */
export const v128Load = (offset: number): number[] => [...op.v128Load, ...memarg(4, offset)];
export const v128Store = (offset: number): number[] => [...op.v128Store, ...memarg(4, offset)];

/** A v128 constant from its 16 bytes. */
export const v128Const = (bytes: readonly number[]): number[] => {
  if (bytes.length !== 16) throw new RangeError('a v128 constant has 16 bytes');
  return [...op.v128Const, ...bytes];
};
export const v128Zero = (): number[] => v128Const(new Array<number>(16).fill(0));

/** i8x16.shuffle of the two vectors on the stack: 16 lane indices into their 32 bytes. */
export const shuffle = (lanes: readonly number[]): number[] => {
  if (lanes.length !== 16) throw new RangeError('a shuffle names 16 lanes');
  return [...op.i8x16Shuffle, ...lanes];
};

/** A lane instruction (extract_lane) and its lane index. */
export const lane = (instruction: readonly number[], index: number): number[] => [...instruction, index];

/** `block … end`, `loop … end` and `if … end`, none taking or leaving values. */
export const block = (body: readonly number[]): number[] => [...op.block, VOID_BLOCK, ...body, ...op.end];
export const loop = (body: readonly number[]): number[] => [...op.loop, VOID_BLOCK, ...body, ...op.end];
export const ifThen = (body: readonly number[]): number[] => [...op.if, VOID_BLOCK, ...body, ...op.end];
/** br / br_if to the block `depth` levels out. */
export const br = (depth: number): number[] => [...op.br, ...uleb(depth)];
export const brIf = (depth: number): number[] => [...op.brIf, ...uleb(depth)];

/**
 * `block loop … end end` running `body` until `exit` (an i32 condition, tested before each round)
 * is true. Inside `body`, `br_if 2` leaves the loop from one nested block deeper.
 */
export const whileNot = (exit: readonly number[], body: readonly number[]): number[] => [
  ...op.block,
  VOID_BLOCK,
  ...op.loop,
  VOID_BLOCK,
  ...exit,
  ...brIf(1),
  ...body, // copied once: these loops nest deep around long unrolled bodies
  ...br(0),
  ...op.end,
  ...op.end,
];

/** local ← local + amount (i32). */
export const addTo = (local: number, amount: readonly number[]): number[] => [
  ...get(local),
  ...amount,
  ...op.i32Add,
  ...set(local),
];

/** out ← base + (index << log2Size): the address of element `index` of an array at `base`. */
export const indexAddress = (out: number, base: number, index: number, log2Size: number): number[] => [
  ...get(base),
  ...get(index),
  ...i32Const(log2Size),
  ...op.i32Shl,
  ...op.i32Add,
  ...set(out),
];

/** `exit` for loops over [local, end): local ≥ end (unsigned). */
export const reached = (local: number, end: number): number[] => [...get(local), ...get(end), ...op.i32GeU];
