import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SupsupError } from '../../src/errors.ts';
import { MaskBank } from '../../src/model/bank/mask-bank.ts';
import {
  bytesOfWords,
  type MaskLayout,
  maskLayout,
  popcount,
  randomMask as randomHalfMask,
} from '../../src/model/bank/mask-layout.ts';
import { makeArchitecture } from '../../src/model/network/arch.ts';
import { RandomStream, randomBits } from '../../src/model/network/prng.ts';

/** Padded layers: 20·13 = 260 → 288 bits, 13·7 = 91 → 96, 7·11 = 77 → 96. */
const SMALL = maskLayout(makeArchitecture({ inputs: 20, hidden: [13, 7], outputs: 11 }));
const LENET = maskLayout(makeArchitecture({ arch: 'lenet', outputs: 500 }));
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function isPadding(layout: MaskLayout, bit: number): boolean {
  for (let l = 0; l < layout.sizes.length; l++) {
    const start = layout.bitOffsets[l] as number;
    const end = l + 1 < layout.sizes.length ? (layout.bitOffsets[l + 1] as number) : layout.totalBits;
    if (bit >= start && bit < end) return bit >= start + (layout.sizes[l] as number);
  }
  return true;
}

/** Random mask with zero padding; every third one is sparse (~25%), every fifth one dense (~75%). */
function randomMask(layout: MaskLayout, seed: number, index: number): Uint8Array {
  const a = randomBits(seed, 'randomMasks', 2 * index, layout.totalBits);
  const b = randomBits(seed, 'randomMasks', 2 * index + 1, layout.totalBits);
  for (let w = 0; w < a.length; w++) {
    if (index % 3 === 0) a[w] = ((a[w] as number) & (b[w] as number)) >>> 0;
    else if (index % 5 === 0) a[w] = ((a[w] as number) | (b[w] as number)) >>> 0;
  }
  const packed = bytesOfWords(a);
  for (let bit = 0; bit < layout.totalBits; bit++) {
    if (isPadding(layout, bit)) packed[bit >>> 3] = (packed[bit >>> 3] as number) & ~(1 << (bit & 7));
  }
  return packed;
}

function randomMasks(layout: MaskLayout, seed: number, count: number): Uint8Array[] {
  return Array.from({ length: count }, (_, i) => randomMask(layout, seed, i));
}

/** Values in [-1, 1) with zeros in the padding; float64 values carry extra low bits. */
function randomVector(layout: MaskLayout, seed: number, kind: 'f32' | 'f64'): Float32Array | Float64Array {
  const stream = new RandomStream(seed, 'probe', 0);
  const v = kind === 'f32' ? new Float32Array(layout.totalBits) : new Float64Array(layout.totalBits);
  for (let bit = 0; bit < v.length; bit++) {
    if (isPadding(layout, bit)) continue;
    v[bit] = 2 * stream.nextFloat() - 1 + (kind === 'f64' ? stream.nextFloat() * 1e-7 : 0);
  }
  return v;
}

function naiveDot(v: Float32Array | Float64Array, packed: Uint8Array): number {
  let sum = 0;
  for (let bit = 0; bit < v.length; bit++) {
    if ((((packed[bit >>> 3] as number) >>> (bit & 7)) & 1) === 1) sum += v[bit] as number;
  }
  return sum;
}

function naiveCounts(layout: MaskLayout, masks: readonly Uint8Array[]): Uint32Array {
  const counts = new Uint32Array(layout.totalBits);
  for (const packed of masks) {
    for (let bit = 0; bit < layout.totalBits; bit++) {
      counts[bit] = (counts[bit] as number) + (((packed[bit >>> 3] as number) >>> (bit & 7)) & 1);
    }
  }
  return counts;
}

function bankOf(layout: MaskLayout, masks: readonly Uint8Array[], blockSize?: number): MaskBank {
  const bank = new MaskBank(layout, blockSize === undefined ? {} : { blockSize });
  for (const packed of masks) bank.add(packed);
  return bank;
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, message: string): void {
  assert.equal(actual.length, expected.length, `${message}: length`);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    worst = Math.max(worst, Math.abs((actual[i] as number) - (expected[i] as number)));
  }
  assert.ok(worst < 1e-9, `${message}: max abs diff ${worst}`);
}

function hasCode(code: string): (error: unknown) => boolean {
  return (error) => error instanceof SupsupError && error.code === code;
}

test('the small layout has padding in every layer (so padding handling is exercised)', () => {
  assert.deepEqual(SMALL.bitOffsets, [0, 288, 384]);
  assert.equal(SMALL.totalBits, 480);
  assert.equal(LENET.totalBytes, 39404);
});

test('dotAll equals the naive per-bit float64 sum (several blocks, partial blocks)', () => {
  for (const k of [1, 3, 17, 300]) {
    const masks = randomMasks(SMALL, 11, k);
    for (const blockSize of [undefined, 16, 32]) {
      const bank = bankOf(SMALL, masks, blockSize);
      for (const kind of ['f32', 'f64'] as const) {
        const v = randomVector(SMALL, k, kind);
        const expected = masks.map((packed) => naiveDot(v, packed));
        assertClose(bank.dotAll(v), expected, `k=${k} blockSize=${blockSize ?? 256} ${kind}`);
      }
    }
  }
});

test('dotAll equals the naive sum on the lenet 784-300-100-500 layout', () => {
  const masks = randomMasks(LENET, 5, 5);
  const bank = bankOf(LENET, masks);
  const v = randomVector(LENET, 2, 'f32');
  assertClose(
    bank.dotAll(v),
    masks.map((packed) => naiveDot(v, packed)),
    'lenet k=5',
  );
});

test('dotAll writes into a caller buffer and handles an empty bank and zero vectors', () => {
  const masks = randomMasks(SMALL, 3, 10);
  const bank = bankOf(SMALL, masks, 16);
  const v = randomVector(SMALL, 1, 'f64');
  const buffer = new Float64Array(16).fill(Number.NaN);
  const result = bank.dotAll(v, buffer);
  assert.equal(result.length, 10);
  assert.equal(result.buffer, buffer.buffer);
  assertClose(
    result,
    masks.map((packed) => naiveDot(v, packed)),
    'into buffer',
  );
  assert.deepEqual(Array.from(bank.dotAll(new Float32Array(SMALL.totalBits))), new Array(10).fill(0));
  assert.equal(new MaskBank(SMALL).dotAll(v).length, 0);
  assert.throws(() => bank.dotAll(new Float64Array(SMALL.totalBits - 1)), hasCode('E_BAD_ARGUMENT'));
  assert.throws(() => bank.dotAll(v, new Float64Array(9)), hasCode('E_BAD_ARGUMENT'));
});

test('dotSubset equals the matching entries of dotAll (bit, nibble and byte-table paths, repeats)', () => {
  const masks = randomMasks(SMALL, 21, 300);
  const v = randomVector(SMALL, 4, 'f32');
  for (const blockSize of [undefined, 16]) {
    const bank = bankOf(SMALL, masks, blockSize);
    const all = bank.dotAll(v);
    const subsets = [
      [],
      [299],
      [17, 299],
      [5, 0, 5, 260],
      Array.from({ length: 40 }, (_, i) => i),
      Array.from({ length: 120 }, (_, i) => (i * 37) % 300),
      Array.from({ length: 300 }, (_, i) => 299 - i),
    ];
    for (const indices of subsets) {
      const expected = indices.map((i) => all[i] as number);
      assertClose(bank.dotSubset(indices, v), expected, `|S|=${indices.length} blockSize=${blockSize}`);
      assertClose(bank.dotSubset(Int32Array.from(indices), v), expected, `typed |S|=${indices.length}`);
    }
  }
  const bank = bankOf(SMALL, masks.slice(0, 4));
  assert.throws(() => bank.dotSubset([4], v), hasCode('E_BAD_ARGUMENT'));
  assert.throws(() => bank.dotSubset([1.5], v), hasCode('E_BAD_ARGUMENT'));
});

test('counts() equals the naive sum after adds and after replace', () => {
  const masks = randomMasks(SMALL, 8, 40);
  const bank = new MaskBank(SMALL, { blockSize: 16 });
  for (let i = 0; i < masks.length; i++) {
    bank.add(masks[i] as Uint8Array);
    if (i % 13 === 0) assert.deepEqual(bank.counts(), naiveCounts(SMALL, masks.slice(0, i + 1)));
  }
  assert.deepEqual(bank.counts(), naiveCounts(SMALL, masks));
  const current = [...masks];
  const replacements = randomMasks(SMALL, 9, 6);
  for (const [r, index] of [0, 7, 8, 39, 7, 20].entries()) {
    const packed = replacements[r] as Uint8Array;
    bank.replace(index, packed);
    current[index] = packed;
    assert.deepEqual(bank.counts(), naiveCounts(SMALL, current), `after replace #${r}`);
    assert.deepEqual(bank.get(index), packed);
  }
  bank.replace(3, current[3] as Uint8Array);
  assert.deepEqual(bank.counts(), naiveCounts(SMALL, current), 'replacing a mask by itself');
  const v = randomVector(SMALL, 6, 'f64');
  assertClose(
    bank.dotAll(v),
    current.map((packed) => naiveDot(v, packed)),
    'dotAll after replace',
  );
});

test('counts() folds in masks added since it was last read, replaced ones included (histogram and per-mask paths)', () => {
  const masks = randomMasks(SMALL, 14, 40);
  const replacements = randomMasks(SMALL, 15, 3);
  const bank = new MaskBank(SMALL, { blockSize: 16 });
  const current = masks.slice(0, 30);
  for (const packed of current) bank.add(packed);
  bank.replace(25, replacements[0] as Uint8Array); // not counted yet
  current[25] = replacements[0] as Uint8Array;
  assert.deepEqual(bank.counts(), naiveCounts(SMALL, current), '30 pending masks: the histogram fold');
  for (const packed of masks.slice(30, 35)) {
    bank.add(packed);
    current.push(packed);
  }
  bank.replace(32, replacements[1] as Uint8Array); // pending
  bank.replace(3, replacements[2] as Uint8Array); // counted
  current[32] = replacements[1] as Uint8Array;
  current[3] = replacements[2] as Uint8Array;
  const most = Array.from({ length: 30 }, (_, i) => i + 2);
  assert.deepEqual(
    bank.subsetCounts(most),
    naiveCounts(
      SMALL,
      most.map((i) => current[i] as Uint8Array),
    ),
    'a large subset is counted as counts() minus the rest: 5 pending masks folded one by one',
  );
  assert.deepEqual(bank.counts(), naiveCounts(SMALL, current));
});

test('counts() returns a copy', () => {
  const bank = bankOf(SMALL, randomMasks(SMALL, 1, 3));
  const copy = bank.counts();
  copy.fill(99);
  assert.notDeepEqual(bank.counts(), copy);
  const out = new Uint32Array(SMALL.totalBits);
  assert.equal(bank.counts(out), out);
  assert.throws(() => bank.counts(new Uint32Array(3)), hasCode('E_BAD_ARGUMENT'));
});

test('subsetCounts equals the naive sum for small and large subsets (direct and complement)', () => {
  const masks = randomMasks(SMALL, 13, 90);
  for (const blockSize of [undefined, 16]) {
    const bank = bankOf(SMALL, masks, blockSize);
    const subsets = [
      [],
      [42],
      [0, 89, 17],
      Array.from({ length: 30 }, (_, i) => (i * 7) % 90),
      Array.from({ length: 46 }, (_, i) => 89 - 2 * i + (i > 44 ? 1 : 0)),
      Array.from({ length: 80 }, (_, i) => (i * 11) % 90),
      Array.from({ length: 89 }, (_, i) => i + 1),
      Array.from({ length: 90 }, (_, i) => i),
    ];
    for (const indices of subsets) {
      const expected = naiveCounts(
        SMALL,
        indices.map((i) => masks[i] as Uint8Array),
      );
      assert.deepEqual(bank.subsetCounts(indices), expected, `|S|=${indices.length}`);
    }
    const out = new Uint32Array(SMALL.totalBits).fill(7);
    assert.deepEqual(
      bank.subsetCounts([1, 2], out),
      naiveCounts(SMALL, [masks[1], masks[2]] as Uint8Array[]),
    );
    assert.throws(() => bank.subsetCounts([3, 3]), hasCode('E_BAD_ARGUMENT'));
    assert.throws(() => bank.subsetCounts([90]), hasCode('E_BAD_ARGUMENT'));
  }
});

test('add validates length and padding bits; replace and get validate the index', () => {
  const bank = new MaskBank(SMALL);
  const good = randomMask(SMALL, 1, 1);
  assert.throws(() => bank.add(new Uint8Array(SMALL.totalBytes - 1)), hasCode('E_BAD_ARGUMENT'));
  assert.throws(() => bank.add(new Uint8Array(SMALL.totalBytes + 4)), hasCode('E_BAD_ARGUMENT'));
  for (const bit of [260, 287, 288 + 91, 384 + 77, 479]) {
    const bad = good.slice();
    bad[bit >>> 3] = (bad[bit >>> 3] as number) | (1 << (bit & 7));
    assert.throws(() => bank.add(bad), hasCode('E_BAD_ARGUMENT'), `padding bit ${bit}`);
  }
  assert.equal(bank.size, 0);
  assert.equal(bank.add(good), 0);
  assert.equal(bank.add(good), 1);
  assert.equal(bank.size, 2);
  const lastWeight = good.slice();
  lastWeight[(384 + 76) >>> 3] = (lastWeight[(384 + 76) >>> 3] as number) | (1 << ((384 + 76) & 7));
  assert.equal(bank.add(lastWeight), 2, 'the last real weight bit is not padding');
  assert.throws(() => bank.replace(3, good), hasCode('E_BAD_ARGUMENT'));
  assert.throws(() => bank.replace(0, new Uint8Array(2)), hasCode('E_BAD_ARGUMENT'));
  assert.throws(() => bank.get(-1), hasCode('E_BAD_ARGUMENT'));
  assert.throws(() => new MaskBank(SMALL, { blockSize: 6 }), hasCode('E_BAD_ARGUMENT'));
  assert.throws(() => new MaskBank(SMALL, { blockSize: 8 }), hasCode('E_BAD_ARGUMENT'), 'lanes of 16 slots');
});

test('get returns a fresh copy of the stored mask', () => {
  // 40 masks in blocks of 32: two blocks, the second with one full lane of 16 slots and a partial one.
  const masks = randomMasks(SMALL, 2, 40);
  const bank = bankOf(SMALL, masks, 32);
  for (let i = 0; i < masks.length; i++) assert.deepEqual(bank.get(i), masks[i]);
  const copy = bank.get(37);
  copy.fill(0);
  assert.deepEqual(bank.get(37), masks[37]);
});

test('memoryBytes counts blocks allocated lazily', () => {
  const bank = new MaskBank(SMALL, { blockSize: 16 });
  const empty = bank.memoryBytes();
  bank.add(randomMask(SMALL, 1, 0));
  const oneBlock = bank.memoryBytes();
  assert.ok(oneBlock - empty >= SMALL.totalBytes * 16);
  for (let i = 1; i < 16; i++) bank.add(randomMask(SMALL, 1, i));
  assert.equal(bank.memoryBytes(), oneBlock);
  bank.add(randomMask(SMALL, 1, 16));
  assert.ok(bank.memoryBytes() - oneBlock >= SMALL.totalBytes * 16);
});

test('dot products stay exact while the bank grows (memory growth, scratch regrown, old blocks kept)', () => {
  // Above ~90 masks dotAll takes the byte-table kernel (WebAssembly); blocks of 16 lenet masks
  // (630 kB each) make the bank's memory grow and its scratch be regrown between products.
  const masks = Array.from({ length: 160 }, (_, i) => randomHalfMask(LENET, 21, i));
  const bank = new MaskBank(LENET, { blockSize: 16 });
  const v = randomVector(LENET, 6, 'f32');
  const checks = [96, 97, 130, 160];
  for (let k = 1; k <= masks.length; k++) {
    bank.add(masks[k - 1] as Uint8Array);
    if (!checks.includes(k)) continue;
    const expected = masks.slice(0, k).map((packed) => naiveDot(v, packed));
    assertClose(bank.dotAll(v), expected, `k=${k}`);
    const subset = Array.from({ length: 95 }, (_, i) => (i * 5 + k) % k);
    assertClose(
      bank.dotSubset(subset, v),
      subset.map((i) => expected[i] as number),
      `subset at k=${k}`,
    );
  }
  assert.ok(bank.memoryBytes() > 40 * 4 * LENET.totalBytes);
  assert.deepEqual(bank.get(0), masks[0]);
});

test('dot products are bit-identical on 1 and 2 threads (worker threads over shared storage)', () => {
  // 130 lenet-500 masks: 5.1 MB, above the size from which the bank splits work over threads.
  const masks = Array.from({ length: 130 }, (_, i) => randomHalfMask(LENET, 8, i));
  const single = bankOf(LENET, masks);
  single.threads = 1;
  const multi = new MaskBank(LENET, { threads: 2 });
  for (const packed of masks) multi.add(packed);
  for (const kind of ['f32', 'f64'] as const) {
    const v = randomVector(LENET, 4, kind);
    const a = single.dotAll(v);
    const b = multi.dotAll(v);
    assert.equal(single.lastDotThreads, 1);
    assert.equal(multi.lastDotThreads, 2, 'the second thread must have taken part');
    assert.deepEqual(b, a);
    assertClose(
      a,
      masks.map((packed) => naiveDot(v, packed)),
      `lenet k=130 ${kind}`,
    );
    const subset = Array.from({ length: 120 }, (_, i) => (i * 7) % 130);
    assert.deepEqual(multi.dotSubset(subset, v), single.dotSubset(subset, v));
  }
  assert.throws(() => {
    multi.threads = 0;
  }, hasCode('E_BAD_ARGUMENT'));
});

/** Σ|v| (the scale of the screen's rounding allowance). */
function absSum(v: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < v.length; i++) sum += Math.abs(v[i] as number);
  return sum;
}

/** Index of the smallest value, the first on ties. */
function firstArgMin(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if ((values[i] as number) < (values[best] as number)) best = i;
  return best;
}

test('the screen stays within its bound of the exact products (block sizes, partial lanes, vector shapes)', () => {
  const masks = randomMasks(SMALL, 31, 75); // 4 full lanes and one of 11 slots
  const lenetMasks = Array.from({ length: 40 }, (_, i) => randomHalfMask(LENET, 31, i));
  const shaped = (layout: MaskLayout, seed: number, shape: string): Float32Array | Float64Array => {
    const v = randomVector(layout, seed, shape === 'f64' ? 'f64' : 'f32');
    for (let i = 0; i < v.length; i++) {
      if (shape === 'heavy-tailed' && i % 97 === 0) v[i] = (v[i] as number) * 1000;
      if (shape === 'sparse' && Math.floor(i / 256) % 3 !== 0) v[i] = 0; // whole spans of zeros
      if (shape === 'tiny') v[i] = (v[i] as number) * 1e-30;
    }
    return v;
  };
  const cases: [MaskLayout, readonly Uint8Array[], number | undefined][] = [
    [SMALL, masks, 16],
    [SMALL, masks, 32],
    [SMALL, masks, undefined],
    [LENET, lenetMasks, undefined],
  ];
  for (const [layout, bankMasks, blockSize] of cases) {
    const bank = bankOf(layout, bankMasks, blockSize);
    for (const shape of ['f32', 'f64', 'heavy-tailed', 'sparse', 'tiny']) {
      const v = shaped(layout, 5, shape);
      const exact = bank.dotAll(v);
      const screened = bank.screen(v);
      assert.ok(screened !== null, `${shape}: finite vectors are screened`);
      const label = `${layout.totalBits} bits, blockSize ${blockSize ?? 256}, ${shape}`;
      assert.equal(screened.values.length, bankMasks.length, label);
      let worst = 0;
      for (let i = 0; i < exact.length; i++) {
        worst = Math.max(worst, Math.abs((screened.values[i] as number) - (exact[i] as number)));
      }
      assert.ok(worst <= screened.bound, `${label}: error ${worst} above the bound ${screened.bound}`);
      // 14-bit tables: the bound is a small fraction of the vector's scale, not a vacuous one.
      assert.ok(
        screened.bound <= 2e-3 * absSum(v),
        `${label}: bound ${screened.bound} for Σ|v| ${absSum(v)}`,
      );
      assert.ok(screened.bound > 0, `${label}: the tables are rounded, so the bound is positive`);
    }
  }
});

test('the screen is bit-identical on 1 and 2 threads, and refuses what it cannot bound', () => {
  const masks = Array.from({ length: 130 }, (_, i) => randomHalfMask(LENET, 9, i));
  const single = bankOf(LENET, masks);
  single.threads = 1;
  const multi = new MaskBank(LENET, { threads: 2 });
  for (const packed of masks) multi.add(packed);
  const v = randomVector(LENET, 6, 'f32');
  const a = single.screen(v);
  const b = multi.screen(v);
  assert.equal(multi.lastDotThreads, 2, 'the second thread must have taken part');
  assert.ok(a !== null && b !== null);
  assert.deepEqual(b.values, a.values);
  assert.equal(b.bound, a.bound);
  for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
    const withBad = Float32Array.from(v);
    withBad[12345] = bad;
    assert.equal(multi.screen(withBad), null, `a ${bad} in the vector`);
    assert.equal(multi.screenedArgMin(withBad), null);
  }
  const empty = new MaskBank(LENET).screen(v);
  assert.deepEqual(empty, { values: new Float64Array(0), bound: 0 });
  assert.throws(() => new MaskBank(LENET).screenedArgMin(v), hasCode('E_NO_MASKS'));
});

test('screenedArgMin gives the exact argmin: random banks, ties, and masks one bit apart', () => {
  const base = Array.from({ length: 300 }, (_, i) => randomHalfMask(LENET, 12, i));
  // Exact ties: mask 250 repeats mask 40. Near ties: mask 260 is mask 41 with one weight bit moved.
  base[250] = (base[40] as Uint8Array).slice();
  const near = (base[41] as Uint8Array).slice();
  near[100] = (near[100] as number) ^ 0b11;
  base[260] = near;
  const bank = new MaskBank(LENET);
  for (const packed of base) bank.add(packed);
  for (let trial = 0; trial < 12; trial++) {
    const v = randomVector(LENET, 100 + trial, trial % 2 === 0 ? 'f32' : 'f64');
    // Steer the minimum onto the tied and near-tied masks in some trials.
    if (trial % 3 === 1)
      for (let w = 0; w < v.length; w++)
        if (!hasBit(base[40] as Uint8Array, w)) v[w] = Math.abs(v[w] as number);
    if (trial % 3 === 2)
      for (let w = 0; w < v.length; w++)
        if (!hasBit(base[41] as Uint8Array, w)) v[w] = Math.abs(v[w] as number);
    const exact = bank.dotAll(v);
    const found = bank.screenedArgMin(v);
    assert.ok(found !== null);
    assert.equal(found.index, firstArgMin(exact), `trial ${trial}`);
    assert.equal(firstArgMin(found.values), found.index, 'the returned values have the same argmin');
    assert.ok(found.rescored >= 1 && found.rescored < 300, `trial ${trial}: ${found.rescored} rescored`);
    for (let i = 0; i < exact.length; i++) {
      assert.ok(
        Math.abs((found.values[i] as number) - (exact[i] as number)) <= found.bound,
        `trial ${trial} mask ${i}`,
      );
    }
    if (trial % 3 === 1) assert.equal(found.index, 40, 'an exact tie goes to the first index');
  }
});

function hasBit(packed: Uint8Array, bit: number): boolean {
  return ((((packed[bit >>> 3] as number) >>> (bit & 7)) & 1) as number) === 1;
}

/** A mask with the non-padding bits that `keep` selects. */
function maskOf(layout: MaskLayout, keep: (bit: number) => boolean): Uint8Array {
  const packed = new Uint8Array(layout.totalBytes);
  for (let bit = 0; bit < layout.totalBits; bit++)
    if (!isPadding(layout, bit) && keep(bit))
      packed[bit >>> 3] = (packed[bit >>> 3] as number) | (1 << (bit & 7));
  return packed;
}

test("the screen's integer sums hold at the ends of its tables, over whole spans", () => {
  // With every weight ±1, each nibble's table spans exactly ±15,872 units, so its entries are exact:
  // a mask of all ones adds the largest (or smallest) high byte twice on every row of a span.
  const evenNibble = (bit: number): boolean => (bit >>> 2) % 2 === 0;
  const masks = [
    maskOf(LENET, () => true),
    maskOf(LENET, () => false),
    maskOf(LENET, evenNibble),
    maskOf(LENET, (bit) => !evenNibble(bit)),
    maskOf(LENET, (bit) => (bit >>> 3) % 2 === 0),
  ];
  const bank = bankOf(LENET, masks);
  const vectors: Record<string, (bit: number) => number> = {
    'all +1': () => 1,
    'all -1': () => -1,
    'nibbles of +1 and -1': (bit) => (evenNibble(bit) ? 1 : -1),
  };
  for (const [name, value] of Object.entries(vectors)) {
    const v = new Float32Array(LENET.totalBits);
    for (let bit = 0; bit < v.length; bit++) if (!isPadding(LENET, bit)) v[bit] = value(bit);
    const exact = bank.dotAll(v);
    const screened = bank.screen(v);
    assert.ok(screened !== null);
    for (let i = 0; i < masks.length; i++) {
      const error = Math.abs((screened.values[i] as number) - (exact[i] as number));
      assert.ok(error <= 1e-6, `${name}, mask ${i}: ${screened.values[i]} against ${exact[i]}`);
      assert.ok(error <= screened.bound, `${name}, mask ${i}: beyond the bound`);
    }
  }
  assert.equal(bank.dotAll(new Float32Array(LENET.totalBits).fill(1))[0], popcount(masks[0] as Uint8Array));
});

test('the screen gives the same bits with i8x16.relaxed_swizzle as with i8x16.swizzle', () => {
  const script = `
    import { maskLayout, randomMask } from './src/model/bank/mask-layout.ts';
    import { makeArchitecture } from './src/model/network/arch.ts';
    import { MaskBank } from './src/model/bank/mask-bank.ts';
    import { RandomStream } from './src/model/network/prng.ts';
    import { relaxedSimd } from './src/model/kernels/screen-kernel.ts';
    const layout = maskLayout(makeArchitecture({ arch: 'lenet', outputs: 500 }));
    const bank = new MaskBank(layout, { blockSize: 32 });
    for (let m = 0; m < 70; m++) bank.add(randomMask(layout, 3, m));
    const v = new RandomStream(4, 'probe', 0).fillUniform(new Float32Array(layout.totalBits), 1);
    const screened = bank.screen(v);
    console.log(JSON.stringify({ relaxed: relaxedSimd(), values: [...screened.values], bound: screened.bound }));`;
  const run = (nodeFlags: readonly string[]) => {
    const child = spawnSync(
      process.execPath,
      [...nodeFlags, '--import', 'tsx', '--input-type=module', '-e', script],
      { cwd: ROOT, encoding: 'utf8', timeout: 60_000 },
    );
    assert.equal(child.status, 0, child.stderr);
    return JSON.parse(child.stdout.trim()) as { relaxed: boolean; values: number[]; bound: number };
  };
  const relaxed = run(['--experimental-wasm-relaxed-simd']);
  assert.equal(relaxed.relaxed, true, `Node ${process.version} validates relaxed SIMD with the flag`);
  const plain = run([]);
  if (Number(process.versions.node.split('.')[0]) < 22) assert.equal(plain.relaxed, false);
  assert.deepEqual(plain.values, relaxed.values);
  assert.equal(plain.bound, relaxed.bound);
  assert.ok(relaxed.values.length === 70 && relaxed.bound > 0);
});

test('randomMask: the stream’s words per layer, padding cleared; the same bytes into a reused buffer', () => {
  for (const layout of [SMALL, LENET]) {
    const reused = new Uint8Array(layout.totalBytes);
    for (const index of [0, 1, 7]) {
      const wordsPerLayer = layout.sizes.map((size) => Math.ceil(size / 32));
      const stream = randomBits(2, 'randomMasks', index, 32 * wordsPerLayer.reduce((a, b) => a + b, 0));
      const words = new Uint32Array(layout.totalBits / 32);
      let next = 0;
      layout.sizes.forEach((size, l) => {
        for (let w = 0; w < (wordsPerLayer[l] as number); w++) {
          const valid = Math.min(32, size - 32 * w);
          const bits = stream[next++] as number;
          words[(layout.bitOffsets[l] as number) / 32 + w] = valid === 32 ? bits : bits & ((1 << valid) - 1);
        }
      });
      const expected = bytesOfWords(words);
      assert.deepEqual(randomHalfMask(layout, 2, index), expected);
      reused.fill(0xff);
      assert.equal(randomHalfMask(layout, 2, index, reused), reused);
      assert.deepEqual(reused, expected);
    }
    assert.throws(() => randomHalfMask(layout, 2, 0, new Uint8Array(layout.totalBytes + 4)), RangeError);
  }
});
