/**
 * A minimal WebAssembly assembler for the kernels assembled at run time (src/model/kernels/simd-kernels.ts,
 * src/model/kernels/dot-kernel.ts): binary encodings of integers, vectors, names and sections, and the part
 * of the WebAssembly JS API the kernels use.
 */

/**
 * The part of the WebAssembly JS API used here (the project compiles against ES2023 and Node's
 * types, which do not declare it; Node provides it at run time).
 */
export interface WasmModule {
  readonly __wasmModule?: never;
}
export interface WasmMemory {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  grow(pages: number): number;
}
export interface WasmInstance {
  readonly exports: Readonly<Record<string, unknown>>;
}
declare const WebAssembly: {
  readonly Module: new (bytes: Uint8Array) => WasmModule;
  readonly Memory: new (descriptor: { initial: number; maximum?: number; shared?: boolean }) => WasmMemory;
  readonly Instance: new (
    module: WasmModule,
    imports: Record<string, Record<string, unknown>>,
  ) => WasmInstance;
  readonly validate: (bytes: Uint8Array) => boolean;
};
export const Wasm = WebAssembly;

export const PAGE_BYTES = 65536;

/** Unsigned LEB128. */
export function uleb(value: number): number[] {
  const out: number[] = [];
  let v = value >>> 0;
  do {
    let byte = v & 0x7f;
    v >>>= 7;
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
}

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

export function vec(items: readonly number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

export function name(text: string): number[] {
  const bytes = Array.from(new TextEncoder().encode(text));
  return [...uleb(bytes.length), ...bytes];
}

export function section(id: number, content: number[]): number[] {
  return [id, ...uleb(content.length), ...content];
}

/** A function body: its local declarations ([count, type] runs) and code, length-prefixed. */
export function functionBody(locals: readonly number[][], code: readonly number[]): number[] {
  const body = [...vec(locals.map((run) => [...uleb(run[0] as number), run[1] as number])), ...code];
  return [...uleb(body.length), ...body];
}

export const MAGIC_AND_VERSION = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];

export const I32 = 0x7f;
export const F32 = 0x7d;
export const F64 = 0x7c;
export const V128 = 0x7b;

export const get = (local: number): number[] => [0x20, ...uleb(local)];
export const set = (local: number): number[] => [0x21, ...uleb(local)];
export const tee = (local: number): number[] => [0x22, ...uleb(local)];
export const i32Const = (value: number): number[] => [0x41, ...sleb(value)];

/** A SIMD instruction: the 0xfd prefix and its opcode. */
export const simd = (op: number): number[] => [0xfd, ...uleb(op)];
/** SIMD opcodes (after the 0xfd prefix) of the 16-byte load and store. */
export const V128_LOAD = 0x00;
export const V128_STORE = 0x0b;

/** Pages a 32-bit WebAssembly memory can have: 4 GiB. Only touched pages are resident. */
export const WASM32_MAX_PAGES = 65536;

/** The import entry of a shared memory `env.memory` of at least one and at most `maxPages` pages. */
export const sharedMemoryImport = (maxPages: number): number[] => [
  ...name('env'),
  ...name('memory'),
  0x02,
  0x03,
  ...uleb(1),
  ...uleb(maxPages),
];

/** A memory argument: alignment (log2 bytes) and a constant offset. */
export const memarg = (alignLog2: number, offset: number): number[] => [...uleb(alignLog2), ...uleb(offset)];

export const I32_ADD = 0x6a;
export const I32_MUL = 0x6c;
export const I32_SHL = 0x74;
export const I32_GE_U = 0x4f;
/** SIMD opcode (after the 0xfd prefix) of a 16-byte constant. */
export const V128_CONST = 0x0c;

/** out ← base + (index << log2Size): the address of element `index` of an array at `base`. */
export const indexAddress = (out: number, base: number, index: number, log2Size: number): number[] => [
  ...get(base),
  ...get(index),
  ...i32Const(log2Size),
  I32_SHL,
  I32_ADD,
  ...set(out),
];

/** An f64.const instruction. */
export const f64Const = (value: number): number[] => [
  0x44,
  ...new Uint8Array(new Float64Array([value]).buffer),
];

/** v128.load / v128.store of the 16 bytes at (address on the stack) + offset, 16-byte aligned. */
export const v128Load = (offset: number): number[] => [...simd(V128_LOAD), ...memarg(4, offset)];
export const v128Store = (offset: number): number[] => [...simd(V128_STORE), ...memarg(4, offset)];

/** A v128 constant from its 16 bytes. */
export const v128Const = (bytes: readonly number[]): number[] => {
  if (bytes.length !== 16) throw new RangeError('a v128 constant has 16 bytes');
  return [...simd(V128_CONST), ...bytes];
};
export const BR = 0x0c;
export const BR_IF = 0x0d;
export const END = 0x0b;
const BLOCK_LOOP = [0x02, 0x40, 0x03, 0x40];
const END_LOOP_BLOCK = [END, END];
/**
 * `block loop … end end` running `body` until `exit` (an i32 condition, tested before each round)
 * is true. Inside `body`, `br_if 2` leaves the loop from one nested block deeper.
 */
export const whileNot = (exit: readonly number[], body: readonly number[]): number[] => [
  ...BLOCK_LOOP,
  ...exit,
  BR_IF,
  1,
  ...body,
  BR,
  0,
  ...END_LOOP_BLOCK,
];
/** local ← local + amount (i32). */
export const addTo = (local: number, amount: readonly number[]): number[] => [
  ...get(local),
  ...amount,
  I32_ADD,
  ...set(local),
];

/**
 * A module compiled on first use from `bytes`, or null where this WebAssembly lacks what it needs
 * (SIMD, shared memory): the callers fall back to other code.
 */
export function compiledOnce(bytes: () => Uint8Array): () => WasmModule | null {
  let compiled: WasmModule | null | undefined;
  return () => {
    if (compiled === undefined) {
      try {
        compiled = new Wasm.Module(bytes());
      } catch {
        compiled = null;
      }
    }
    return compiled;
  };
}
