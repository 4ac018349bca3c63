/**
 * The one opcode table of the WebAssembly kernels: every instruction they use, by the name of its
 * text-format mnemonic in camel case (`i32.add` → i32Add, `f64x2.convert_low_i32x4_s` →
 * f64x2ConvertLowI32x4S), defined once. Kernel code spreads `op.<name>` for the opcode bytes and
 * uses the helpers of wasm-asm.ts for the immediates (local indices, constants, memory arguments,
 * lanes, block types). The numbers are from the WebAssembly 2.0 core specification (§5.4) and the
 * relaxed SIMD proposal.
 */

/** Opcodes of one byte. */
const CORE_OPCODES = {
  block: 0x02,
  loop: 0x03,
  if: 0x04,
  end: 0x0b,
  br: 0x0c,
  brIf: 0x0d,
  select: 0x1b,
  localGet: 0x20,
  localSet: 0x21,
  localTee: 0x22,
  i32Load: 0x28,
  f32Load: 0x2a,
  f64Load: 0x2b,
  i32Load8U: 0x2d,
  f32Store: 0x38,
  f64Store: 0x39,
  i32Const: 0x41,
  f32Const: 0x43,
  f64Const: 0x44,
  i32LtU: 0x49,
  i32GtU: 0x4b,
  i32LeU: 0x4d,
  i32GeU: 0x4f,
  f64Ne: 0x62,
  f64Gt: 0x64,
  i32Add: 0x6a,
  i32Sub: 0x6b,
  i32Mul: 0x6c,
  i32And: 0x71,
  i32Shl: 0x74,
  i32ShrU: 0x76,
  f32Add: 0x92,
  f32Mul: 0x94,
  f64Add: 0xa0,
  f64Mul: 0xa2,
  f64Div: 0xa3,
  f64Max: 0xa5,
  f64ConvertI32U: 0xb8,
} as const;

/** The prefix byte of every SIMD instruction. */
const SIMD_PREFIX = 0xfd;

/** SIMD opcodes, written after SIMD_PREFIX as an unsigned LEB128 number. */
const SIMD_OPCODES = {
  v128Load: 0x00,
  v128Load32Splat: 0x09,
  v128Store: 0x0b,
  v128Const: 0x0c,
  i8x16Shuffle: 0x0d,
  i8x16Swizzle: 0x0e,
  i8x16Splat: 0x0f,
  i16x8Splat: 0x10,
  i32x4Splat: 0x11,
  f32x4Splat: 0x13,
  f64x2Splat: 0x14,
  i32x4ExtractLane: 0x1b,
  f64x2ExtractLane: 0x21,
  f32x4Ge: 0x46,
  v128And: 0x4e,
  v128Xor: 0x51,
  i8x16NarrowI16x8S: 0x65,
  i8x16NarrowI16x8U: 0x66,
  i8x16Add: 0x6e,
  i16x8NarrowI32x4S: 0x85,
  i16x8Shl: 0x8b,
  i16x8ShrS: 0x8c,
  i16x8ShrU: 0x8d,
  i16x8Add: 0x8e,
  i16x8Sub: 0x91,
  i32x4ExtendLowI16x8U: 0xa9,
  i32x4ExtendHighI16x8U: 0xaa,
  i32x4Shl: 0xab,
  i32x4Add: 0xae,
  i32x4Sub: 0xb1,
  f32x4Sqrt: 0xe3,
  f32x4Add: 0xe4,
  f32x4Sub: 0xe5,
  f32x4Mul: 0xe6,
  f32x4Div: 0xe7,
  f32x4Pmax: 0xeb,
  f64x2Abs: 0xec,
  f64x2Add: 0xf0,
  f64x2Sub: 0xf1,
  f64x2Mul: 0xf2,
  f64x2Min: 0xf4,
  f64x2Max: 0xf5,
  f64x2ConvertLowI32x4S: 0xfe,
  /** Relaxed SIMD (Node ≥ 22, or Node 20 with --experimental-wasm-relaxed-simd). */
  i8x16RelaxedSwizzle: 0x100,
} as const;

export type OpcodeName = keyof typeof CORE_OPCODES | keyof typeof SIMD_OPCODES;

/** Unsigned LEB128 (also used by wasm-asm.ts for every unsigned immediate). */
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

function opcodeBytes(): Record<OpcodeName, readonly number[]> {
  const core = Object.entries(CORE_OPCODES).map(([key, code]) => [key, [code]] as const);
  const simd = Object.entries(SIMD_OPCODES).map(
    ([key, code]) => [key, [SIMD_PREFIX, ...uleb(code)]] as const,
  );
  const names = new Set<string>();
  for (const [key] of [...core, ...simd]) {
    if (names.has(key)) throw new Error(`opcode ${key} is defined twice`);
    names.add(key);
  }
  return Object.fromEntries([...core, ...simd]) as Record<OpcodeName, readonly number[]>;
}

/** The bytes of each instruction's opcode, prefix included: spread them into a function's code. */
export const op: Readonly<Record<OpcodeName, readonly number[]>> = Object.freeze(opcodeBytes());
