import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { classifyLogits } from '../../src/model/network/classification.ts';
import { RandomStream } from '../../src/model/network/prng.ts';
import { testBackend } from '../support/backend.ts';

before(async () => {
  await testBackend();
});

test('classifyLogits: argmax over the real classes only, first index on ties, softmax over all outputs', () => {
  const logits = Float32Array.from([
    // Four equal logits, two real: class 0, p = 1/4, H = ln 4.
    0, 0, 0, 0,
    // A superfluous output is the largest: the prediction is still the best real class (1).
    1, 2, 5, -1,
  ]);
  const out = classifyLogits(logits, 2, 4, 2);
  assert.deepEqual(Array.from(out.predictions), [0, 1]);
  assert.equal(out.confidences[0], Math.fround(0.25));
  assert.equal(out.entropies[0], Math.fround(Math.log(4)));
  const e = [1, 2, 5, -1].map(Math.exp);
  const sum = e.reduce((a, b) => a + b, 0);
  const p = e.map((v) => v / sum);
  assert.equal(out.confidences[1], Math.fround((e[1] as number) / sum));
  assert.equal(out.entropies[1], Math.fround(-p.reduce((a, v) => a + v * Math.log(v), 0)));
});

test('classifyLogits: logits of ±1000 stay finite (shifted by the row maximum)', () => {
  const out = classifyLogits(Float32Array.from([1000, 0, -1000]), 1, 3, 3);
  assert.equal(out.predictions[0], 0);
  assert.equal(out.confidences[0], 1);
  assert.ok(Number.isFinite(out.entropies[0]) && (out.entropies[0] as number) >= 0);
  assert.ok((out.entropies[0] as number) < 1e-30);
});

test('classifyLogits matches the tfjs log-softmax computation it replaces', () => {
  const rows = 37;
  const outputs = 23;
  const real = 10;
  const logits = new RandomStream(5, 'probe', 0).fillUniform(new Float32Array(rows * outputs), 8);
  const out = classifyLogits(logits, rows, outputs, real);
  const [classes, confidences, entropies] = tf.tidy(() => {
    const z = tf.tensor2d(logits, [rows, outputs]);
    const logp = tf.logSoftmax(z);
    const realLogp = tf.slice(logp, [0, 0], [rows, real]);
    return [
      tf.argMax(realLogp, 1).dataSync(),
      tf.exp(tf.max(realLogp, 1)).dataSync(),
      tf.neg(tf.sum(tf.mul(tf.exp(logp), logp), 1)).dataSync(),
    ];
  });
  assert.deepEqual(Array.from(out.predictions), Array.from(classes));
  for (let r = 0; r < rows; r++) {
    assert.ok(
      Math.abs((out.confidences[r] as number) - (confidences[r] as number)) < 1e-6,
      `confidence ${r}`,
    );
    assert.ok(Math.abs((out.entropies[r] as number) - (entropies[r] as number)) < 1e-5, `entropy ${r}`);
  }
});

test('classifyLogits refuses logits too short for rows × outputs', () => {
  assert.throws(() => classifyLogits(new Float32Array(5), 2, 3, 3), RangeError);
  assert.throws(() => classifyLogits(new Float32Array(6), 2, 3, 4), RangeError);
});
