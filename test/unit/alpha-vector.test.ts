import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AlphaVector } from '../../src/model/alpha-vector.ts';
import { makeArchitecture } from '../../src/model/arch.ts';
import { maskLayout } from '../../src/model/mask-layout.ts';
import { RandomStream } from '../../src/model/prng.ts';
import { SimdArena } from '../../src/model/simd-kernels.ts';

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
