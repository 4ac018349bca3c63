import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AlphaVector } from '../../src/model/bank/alpha-vector.ts';
import { maskLayout } from '../../src/model/bank/mask-layout.ts';
import { SimdArena } from '../../src/model/kernels/simd-kernels.ts';
import { makeArchitecture } from '../../src/model/network/arch.ts';
import { RandomStream } from '../../src/model/network/prng.ts';

// Layer sizes 260, 91 and 77: none a multiple of 4, so the SIMD multiply's last vector of every
// layer reaches into the layer's padding bits.
const LAYOUT = maskLayout(makeArchitecture({ inputs: 20, hidden: [13, 7], outputs: 11 }));

function randomLayers(seed: number, scale: number): Float32Array[] {
  return LAYOUT.sizes.map((size, l) =>
    new RandomStream(seed, 'probe', l).fillUniform(new Float32Array(size), scale),
  );
}

test('V = G ⊙ W: one float32 product per weight, padding bits zero, a layer rewritten in place', () => {
  assert.ok(
    SimdArena.create([4]) !== null,
    'this Node has WebAssembly SIMD, so the SIMD path is the one tested',
  );
  assert.deepEqual(LAYOUT.sizes, [260, 91, 77]);
  const weights = randomLayers(1, 0.3);
  const vector = new AlphaVector(LAYOUT, weights);
  for (const [round, scale] of [
    [0, 1],
    [1, 1e-30],
  ] as const) {
    const gradients = randomLayers(2 + round, scale);
    gradients.forEach((g, l) => {
      vector.setLayer(l, g);
    });
    const expected = new Float32Array(LAYOUT.totalBits);
    gradients.forEach((g, l) => {
      const w = weights[l] as Float32Array;
      const offset = LAYOUT.bitOffsets[l] as number;
      for (let i = 0; i < g.length; i++)
        expected[offset + i] = Math.fround((g[i] as number) * (w[i] as number));
    });
    assert.deepEqual(vector.values, expected, `round ${round}: bit for bit, padding zero`);
  }
});

test('setRankOne: V = (aᵀ·d) ⊙ W bit for bit as ((a·d) + 0)·W, signed zeros included, any fanOut', () => {
  const weights = randomLayers(4, 0.3);
  const vector = new AlphaVector(LAYOUT, weights);
  vector.setLayer(0, randomLayers(9, 1)[0] as Float32Array); // values to overwrite
  const expected = new Float32Array(LAYOUT.totalBits);
  LAYOUT.shapes.forEach(([fanIn, fanOut], l) => {
    const a = new RandomStream(5, 'probe', l).fillUniform(new Float32Array(fanIn), 1);
    const d = new RandomStream(6, 'probe', l).fillUniform(new Float32Array(fanOut), 1e-3);
    for (let i = 0; i < fanIn; i += 3) a[i] = 0; // ReLU zeros: a·d is −0 where d < 0
    d[1] = 0;
    vector.setRankOne(l, a, d);
    const w = weights[l] as Float32Array;
    const offset = LAYOUT.bitOffsets[l] as number;
    for (let i = 0; i < fanIn; i++)
      for (let j = 0; j < fanOut; j++) {
        const p = i * fanOut + j;
        expected[offset + p] = (Math.fround((a[i] as number) * (d[j] as number)) + 0) * (w[p] as number);
      }
  });
  const bits = (v: Float32Array): Uint32Array => new Uint32Array(v.buffer, v.byteOffset, v.length);
  assert.deepEqual(bits(vector.values), bits(expected));
  assert.ok(
    Array.from(vector.values).some((v) => Object.is(v, -0)),
    'a +0 product times a negative weight gives −0',
  );
  assert.throws(() => vector.setRankOne(1, new Float32Array(13), new Float32Array(6)), RangeError);
});
