import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { SupsupError } from '../../src/errors.ts';
import {
  DOT_MEMORY_MAX_PAGES,
  dotModuleBytes,
  gemmModuleBytes,
  relaxedProbeBytes,
  simdModuleBytes,
  Wasm,
  withoutNameSection,
} from '../../src/model/kernels/index.ts';
import { op } from '../../src/model/kernels/opcodes.ts';
import { get } from '../../src/model/kernels/wasm-asm.ts';
import { compile, FunctionBuilder, moduleBytes } from '../../src/model/kernels/wasm-module.ts';

/**
 * Golden hashes of every module the kernels emit. `code`: SHA-256 of the module without its name
 * section, which is byte for byte what the hand-assembled bytecode was before the typed builder
 * (commit 4dbc5df; ADR 0008), so the builder changed nothing the engine executes. `full`: SHA-256
 * of the whole module, name section included (it changes when a function or local is renamed).
 */
const GOLDEN = {
  'simd-kernels': {
    bytes: simdModuleBytes,
    code: 'ed76f61c45d452d92dda3097d653e0eceee631abd06525e2e7af63632c07c994',
    full: 'd7c4eb1bb9f879956b65d2e6c36251ef3ccae476eb933c6d24495492eacce682',
  },
  'gemm-kernel': {
    bytes: gemmModuleBytes,
    code: '5e3dbf616c72b22341572f86b203b432537f86c8f428e981422403c5f25ae288',
    full: '35435c0b80a747382fb2d0a68190f3d515c3030569bbb455a31b66dfba89a106',
  },
  'relaxed-swizzle probe': {
    bytes: relaxedProbeBytes,
    code: 'ce2568dd4bdf441704629dc3bac5f46089ad45600e43f1e68a60ec6037bb012b',
    full: 'ad0ecdfb575615035505f412a1ac0e9f9792a988c4d930e6e3ffbeb9d0a8fb88',
  },
  'dot-kernel, i8x16.swizzle': {
    bytes: () => dotModuleBytes(DOT_MEMORY_MAX_PAGES, false),
    code: 'bffa8a1e42f6ae743a6af89b7f264e4464629416c8ef64d3ceeb7130444e09a4',
    full: 'eea57ba01a68e252a61073c5ab9953d6f1d38ea35c47dd165444e44fd537a5e9',
  },
  'dot-kernel, i8x16.relaxed_swizzle': {
    bytes: () => dotModuleBytes(DOT_MEMORY_MAX_PAGES, true),
    code: '53ee646ac24150ce9af531711c6fa7b1a494ec0cd17b2cec1281982418ff6008',
    full: '6d41635e2e82aa3e1ec7ed8bb06a897afa787e85a7e3fffe844c1dcbd6599d74',
  },
} as const;

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

for (const [moduleName, golden] of Object.entries(GOLDEN)) {
  test(`golden hashes: ${moduleName}`, () => {
    const bytes = golden.bytes();
    assert.equal(sha256(withoutNameSection(bytes)), golden.code, 'code bytes');
    assert.equal(sha256(bytes), golden.full, 'module with its name section');
    assert.ok(withoutNameSection(bytes).length < bytes.length, 'the module ends in a name section');
  });
}

test('the dot module validates with the plain swizzle on any engine with SIMD', () => {
  assert.equal(Wasm.validate(dotModuleBytes(DOT_MEMORY_MAX_PAGES, false)), true);
  assert.equal(Wasm.validate(gemmModuleBytes()), true);
  assert.equal(Wasm.validate(simdModuleBytes()), true);
});

/** The name section's function names and local names, decoded. */
function readNames(bytes: Uint8Array): { functions: string[]; locals: string[][] } {
  let at = bytes.indexOf(0, withoutNameSection(bytes).length + 1);
  const uleb = (): number => {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      const byte = bytes[at++] as number;
      value += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return value;
    }
  };
  const text = (): string => {
    const length = uleb();
    const value = new TextDecoder().decode(bytes.subarray(at, at + length));
    at += length;
    return value;
  };
  at = withoutNameSection(bytes).length + 1;
  uleb(); // section size
  assert.equal(text(), 'name');
  assert.equal(bytes[at++], 1);
  uleb();
  const functions = Array.from({ length: uleb() }, (_, index) => {
    assert.equal(uleb(), index);
    return text();
  });
  assert.equal(bytes[at++], 2);
  uleb();
  const locals = Array.from({ length: uleb() }, (_, index) => {
    assert.equal(uleb(), index);
    return Array.from({ length: uleb() }, (_, local) => {
      assert.equal(uleb(), local);
      return text();
    });
  });
  assert.equal(at, bytes.length);
  return { functions, locals };
}

test('the name section names every function and local', () => {
  const dot = readNames(dotModuleBytes(DOT_MEMORY_MAX_PAGES, false));
  assert.deepEqual(dot.functions, [
    'accumulate_rows_0',
    'accumulate_rows_1',
    'accumulate_rows_2',
    'accumulate_rows_3',
    'read_v128',
    'screen_rows',
    'nibble_dots',
  ]);
  const screen = dot.locals[5] ?? [];
  assert.equal(screen.length, 9 + 14 + 4 + 32);
  assert.deepEqual(screen.slice(0, 2), ['list', 'blocks']);
  assert.equal(screen[27], 'nib');
  assert.equal(screen[50], 'tPair0');
  assert.equal(screen[58], 'biasV');
  assert.deepEqual((dot.locals[0] ?? []).slice(19), ['word0', 'word1', 'word2', 'word3', 'value']);
  assert.deepEqual((dot.locals[6] ?? []).slice(7, 14), ['j', 'vp', 'rowOffset', 'p', 'endP', 'x', 'outP']);
  const gemm = readNames(gemmModuleBytes());
  assert.deepEqual(gemm.functions, ['gemm']);
  assert.equal(gemm.locals[0]?.[18], 'acc0');
  const simd = readNames(simdModuleBytes());
  assert.deepEqual(simd.functions, ['threshold_rmsprop', 'multiply', 'rank_one']);
  assert.deepEqual(simd.locals[2], [
    ...['out', 'a', 'd', 'w', 'fanIn', 'fanOut', 'aEnd', 'dp', 'vectorsEnd', 'dEnd', 'ai', 'av', 'zero'],
  ]);
});

test('the opcode table gives every name its own opcode', () => {
  const byBytes = new Map<string, string>();
  for (const [name, bytes] of Object.entries(op)) {
    const key = bytes.join(',');
    assert.equal(byBytes.get(key), undefined, `${name} and ${byBytes.get(key)} share opcode ${key}`);
    byBytes.set(key, name);
  }
  assert.deepEqual(op.i32Add, [0x6a]);
  assert.deepEqual(op.f32x4Mul, [0xfd, 0xe6, 0x01]);
  assert.deepEqual(op.i8x16RelaxedSwizzle, [0xfd, 0x80, 0x02]);
});

test('a module that does not compile is an E_INTERNAL error naming it, not a silent fallback', () => {
  // local.get of a local the function does not have
  const broken = moduleBytes([{ builder: new FunctionBuilder('broken'), code: [...get(3), ...op.end] }]);
  assert.equal(Wasm.validate(broken), false);
  assert.throws(
    () => compile('simd-kernels', broken),
    (error: unknown) =>
      error instanceof SupsupError &&
      error.code === 'E_INTERNAL' &&
      error.message.includes('simd-kernels') &&
      error.cause instanceof Error,
  );
});
