import type { Architecture } from './arch.js';
import { layerShapes } from './arch.js';
import { RandomStream, randomBits } from './prng.js';

/**
 * The fixed base network: signed Kaiming constant weights W = ±sqrt(2 / fanIn), sign drawn from the
 * Philox stream (seed, 'weights', layer). Layer l is a [fanIn, fanOut] row-major Float32Array.
 * Never stored: regenerated from (seed, architecture).
 */
export interface BaseWeights {
  readonly layers: readonly Float32Array[];
  /** The magnitude c_l of every weight in layer l. */
  readonly scales: readonly number[];
}

export function signedConstantWeights(arch: Architecture, seed: number): BaseWeights {
  const layers: Float32Array[] = [];
  const scales: number[] = [];
  layerShapes(arch).forEach(([fanIn, fanOut], layer) => {
    const n = fanIn * fanOut;
    const scale = Math.fround(Math.sqrt(2 / fanIn));
    const bits = randomBits(seed, 'weights', layer, n);
    const values = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const positive = ((bits[i >>> 5] as number) >>> (i & 31)) & 1;
      values[i] = positive === 1 ? scale : -scale;
    }
    layers.push(values);
    scales.push(scale);
  });
  return { layers, scales };
}

/**
 * Score initialisation of the spec (§2.1): U(−1/√fanIn, 1/√fanIn), Kaiming-uniform with a = √5.
 * Scores of (task, layer) come from the stream (seed, 'scores', task · 64 + layer).
 */
export function kaimingUniformScores(arch: Architecture, seed: number, task: number): Float32Array[] {
  return layerShapes(arch).map(([fanIn, fanOut], layer) =>
    new RandomStream(seed, 'scores', task * 64 + layer).fillUniform(
      new Float32Array(fanIn * fanOut),
      1 / Math.sqrt(fanIn),
    ),
  );
}
