import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
// Autograd is only the reference here; the engine writes its gradients by hand.
import '@tensorflow/tfjs';
import { AlphaVector } from '../../src/model/bank/alpha-vector.ts';
import { maskLayout, randomMask, unpackLayer } from '../../src/model/bank/mask-layout.ts';
import { SupermaskEngine } from '../../src/model/engine.ts';
import { makeArchitecture } from '../../src/model/network/arch.ts';
import { MaskedMlp } from '../../src/model/network/network.ts';
import { RandomStream } from '../../src/model/network/prng.ts';
import { kaimingUniformScores, signedConstantWeights } from '../../src/model/network/weights.ts';
import { type MaskRule, maskOfScores, scoreGradient } from '../../src/model/training/mask-rule.ts';
import {
  entropyObjective,
  objectiveGradient,
  superfluousObjective,
} from '../../src/model/training/objectives.ts';
import { defaultOptimizer } from '../../src/model/training/optimizers.ts';
import { testBackend } from '../support/backend.ts';

before(async () => {
  await testBackend();
});

const arch = makeArchitecture({ inputs: 20, hidden: [16, 12], outputs: 14, realClasses: 10 });

function randomInput(rows: number, seed: number): Float32Array {
  return new RandomStream(seed, 'probe', rows).fillUniform(new Float32Array(rows * arch.inputs), 1.5);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

test('signed-constant weights: ±sqrt(2/fanIn), balanced signs, a pure function of the seed', () => {
  const lenet = makeArchitecture({ arch: 'lenet', outputs: 100 });
  const a = signedConstantWeights(lenet, 1);
  const b = signedConstantWeights(lenet, 1);
  const c = signedConstantWeights(lenet, 2);
  assert.deepEqual(a.scales, [
    Math.fround(Math.sqrt(2 / 784)),
    Math.fround(Math.sqrt(2 / 300)),
    Math.fround(Math.sqrt(2 / 100)),
  ]);
  a.layers.forEach((layer, l) => {
    const scale = a.scales[l] as number;
    let positive = 0;
    for (const w of layer) {
      assert.ok(w === scale || w === -scale);
      if (w > 0) positive++;
    }
    assert.ok(Math.abs(positive / layer.length - 0.5) < 0.02, `layer ${l}: ${positive / layer.length}`);
    assert.deepEqual(layer, b.layers[l]);
    assert.notDeepEqual(layer, c.layers[l]);
  });
  // Golden signs of the first 16 weights of layer 0 for seed 1 (bits of the first Philox word).
  const signs = Array.from(a.layers[0]?.subarray(0, 16) ?? [], (w) => (w > 0 ? '+' : '-')).join('');
  const word = 927378503; // first Philox word of stream (1, weights, 0), see prng.test.ts
  const expected = Array.from({ length: 16 }, (_, i) => ((word >>> i) & 1 ? '+' : '-')).join('');
  assert.equal(signs, expected);
});

test('score init is U(-1/sqrt(fanIn), 1/sqrt(fanIn)) and seeded per task', () => {
  const s0 = kaimingUniformScores(arch, 1, 0);
  const s1 = kaimingUniformScores(arch, 1, 1);
  s0.forEach((layer, l) => {
    const bound = 1 / Math.sqrt(arch.inputs === 20 && l === 0 ? 20 : l === 1 ? 16 : 12);
    for (const v of layer) assert.ok(Math.abs(v) <= bound);
    assert.notDeepEqual(layer, s1[l]);
  });
  assert.deepEqual(kaimingUniformScores(arch, 1, 0), s0);
});

for (const rule of [{ kind: 'threshold' }, { kind: 'topk', density: 0.3 }] as MaskRule[]) {
  test(`hand-written backward with the straight-through estimator equals autograd (${rule.kind})`, () => {
    const base = signedConstantWeights(arch, 3);
    const net = new MaskedMlp(arch, base);
    const scores = kaimingUniformScores(arch, 3, 0).map((s, l) =>
      tf.tensor2d(s, (net.weights[l] as tf.Tensor2D).shape),
    );
    const x = tf.tensor2d(randomInput(9, 1), [9, arch.inputs]);
    const labels = tf.oneHot(tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7, 9], 'int32'), arch.outputs);
    // Reference: the STE as a custom gradient, differentiated by tfjs.
    const ste = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const s = args[0] as tf.Tensor;
      (args[1] as tf.GradSaveFunc)([s]);
      return {
        value: maskOfScores(s as tf.Tensor2D, rule),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
          rule.kind === 'threshold' ? dy : tf.mul(dy, tf.sign(saved[0] as tf.Tensor)),
      };
    });
    const loss = (...ss: tf.Tensor[]) => {
      const eff = ss.map((s, l) => tf.mul(net.weights[l] as tf.Tensor2D, ste(s)) as tf.Tensor2D);
      const z = net.logits(x, eff);
      return tf.neg(tf.mean(tf.sum(tf.mul(labels, tf.logSoftmax(z)), 1))) as tf.Scalar;
    };
    const reference = tf
      .grads(loss)(scores)
      .map((g) => g.dataSync() as Float32Array);
    const manual = tf
      .tidy(() => {
        const eff = scores.map(
          (s, l) =>
            tf.mul(net.weights[l] as tf.Tensor2D, maskOfScores(s as tf.Tensor2D, rule)) as tf.Tensor2D,
        );
        const trace = net.forward(x, eff);
        const dz = tf.div(tf.sub(tf.softmax(trace.logits), labels), 9) as tf.Tensor2D;
        return net
          .backward(trace, eff, dz)
          .map((g, l) => scoreGradient(g, net.weights[l] as tf.Tensor2D, scores[l] as tf.Tensor2D, rule));
      })
      .map((g) => g.dataSync() as Float32Array);
    manual.forEach((g, l) => {
      assert.ok(maxAbsDiff(g, reference[l] as Float32Array) < 1e-6, `layer ${l}`);
    });
    assert.ok(
      manual.some((g) => g.some((v) => v !== 0)),
      'gradients must not be all zero',
    );
    net.dispose();
  });
}

/** ∂Obj/∂α by tfjs autograd over a float stack of masks: the reference the identity must match. */
function autogradAlpha(
  engine: SupermaskEngine,
  x: Float32Array,
  bprime: number,
  objective: 'H' | 'G',
  alpha: Float32Array,
): Float32Array {
  const k = engine.maskCount;
  return tf
    .tidy(() => {
      const stacks = engine.layout.shapes.map(([fanIn, fanOut], l) => {
        const data = new Float32Array(k * fanIn * fanOut);
        for (let i = 0; i < k; i++) {
          const packed = engine.bank.get(i);
          const base = engine.layout.bitOffsets[l] as number;
          for (let w = 0; w < fanIn * fanOut; w++) {
            const bit = base + w;
            data[i * fanIn * fanOut + w] = ((packed[bit >>> 3] as number) >>> (bit & 7)) & 1;
          }
        }
        return tf.tensor3d(data, [k, fanIn, fanOut]);
      });
      const input = tf.tensor2d(x.subarray(0, bprime * arch.inputs), [bprime, arch.inputs]);
      const f = (a: tf.Tensor) => {
        const eff = stacks.map(
          (stack, l) =>
            tf.mul(
              engine.net.weights[l] as tf.Tensor2D,
              tf.sum(tf.mul(stack, tf.reshape(a, [k, 1, 1])), 0),
            ) as tf.Tensor2D,
        );
        const z = engine.net.logits(input, eff);
        if (objective === 'H') return entropyObjective(z).value;
        // G with the real logits' gradient stopped, written with autograd ops only.
        const stop = tf.concat(
          [tf.zeros([1, arch.realClasses]), tf.ones([1, arch.outputs - arch.realClasses])],
          1,
        );
        const zHat = tf.add(tf.mul(z, stop), tf.mul(tf.sub(1, stop), stopGradient(z)));
        return tf.mean(tf.logSumExp(zHat, 1)) as tf.Scalar;
      };
      return tf.grad(f)(tf.tensor1d(alpha));
    })
    .dataSync() as Float32Array;
}

/** Identity forward, zero gradient (tfjs has no stop-gradient op). */
const stopGradient = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
  value: tf.clone(args[0] as tf.Tensor),
  gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
}));

for (const k of [1, 3, 17]) {
  for (const objective of ['H', 'G'] as const) {
    test(`one-shot identity equals autograd on alpha: k=${k}, objective ${objective}`, () => {
      const engine = new SupermaskEngine({
        arch,
        seed: 5,
        rule: { kind: 'threshold' },
        optimizer: defaultOptimizer('rmsprop'),
      });
      for (let i = 0; i < k; i++) engine.addMask(randomMask(engine.layout, 5, i));
      const x = randomInput(16, k);
      for (const bprime of [1, 16]) {
        const identity = engine.alphaGradient(x, bprime, objective);
        const reference = autogradAlpha(engine, x, bprime, objective, new Float32Array(k).fill(1 / k));
        const diff = maxAbsDiff(identity, reference);
        assert.ok(diff < 1e-5, `B'=${bprime}: max abs diff ${diff}`);
        assert.ok(
          identity.some((v) => Math.abs(v) > 1e-4),
          'the gradient must carry signal',
        );
      }
      if (k >= 3) {
        // Binary search evaluates subsets: alpha uniform on the subset, zero elsewhere.
        const subset = [0, 2];
        const alpha = new Float32Array(k);
        for (const i of subset) alpha[i] = 1 / subset.length;
        const reference = autogradAlpha(engine, x, 4, objective, alpha);
        const identity = engine.alphaGradient(x, 4, objective, subset);
        assert.ok(
          maxAbsDiff(
            identity,
            subset.map((i) => reference[i] as number),
          ) < 1e-5,
        );
      }
      engine.dispose();
    });
  }
}

test('G objective gradient is zero on the real classes and softmax/B′ on the superfluous ones', () => {
  tf.tidy(() => {
    const z = tf.tensor2d(randomInput(2, 9).subarray(0, 2 * 14), [2, 14]);
    const { dLogits } = superfluousObjective(z, 10);
    const p = tf.softmax(z).arraySync() as number[][];
    const d = dLogits.arraySync() as number[][];
    for (let b = 0; b < 2; b++) {
      for (let j = 0; j < 14; j++) {
        const expected = j < 10 ? 0 : (p[b]?.[j] as number) / 2;
        assert.ok(Math.abs((d[b]?.[j] as number) - expected) < 1e-7);
      }
    }
  });
});

test('classify uses the mask as it is now: replaced more times than the weight cache holds', () => {
  const engine = new SupermaskEngine({
    arch,
    seed: 5,
    rule: { kind: 'threshold' },
    optimizer: defaultOptimizer('rmsprop'),
    taskWeightCache: 2,
  });
  for (let i = 0; i < 3; i++) engine.addMask(randomMask(engine.layout, 5, i));
  const x = randomInput(9, 3);
  /** Logits of x under a packed mask on the backend: the reference for the host forward pass. */
  const backendPredictions = (packed: Uint8Array): number[] =>
    tf.tidy(() => {
      const effective = engine.layout.shapes.map(([fanIn, fanOut], l) => {
        const mask = unpackLayer(engine.layout, packed, l);
        const w = engine.base.layers[l] as Float32Array;
        return tf.tensor2d(
          mask.map((m, i) => m * (w[i] as number)),
          [fanIn, fanOut],
        );
      });
      return Array.from(
        tf.argMax(engine.net.logits(tf.tensor2d(x, [9, arch.inputs]), effective), 1).dataSync(),
      );
    });
  for (let round = 0; round < 6; round++) {
    const packed = randomMask(engine.layout, 50 + round, 0);
    // As while a task learns: its mask is replaced on every batch, then the batch is classified.
    engine.replaceMask(1, packed);
    assert.deepEqual(Array.from(engine.predict(x, 1)), backendPredictions(packed), `replacement ${round}`);
  }
  for (const task of [0, 2]) {
    assert.deepEqual(Array.from(engine.predict(x, task)), backendPredictions(engine.bank.get(task)));
  }
  engine.dispose();
});

test('one input row: V from the factors (setRankOne) is the matMul path’s V bit for bit', () => {
  const base = signedConstantWeights(arch, 3);
  const net = new MaskedMlp(arch, base);
  const layout = maskLayout(arch);
  const fromMatMul = new AlphaVector(layout, base.layers);
  const fromFactors = new AlphaVector(layout, base.layers);
  for (const objective of ['H', 'G'] as const) {
    tf.tidy(() => {
      const eff = net.weights.map((w, l) =>
        tf.mul(w, tf.tensor2d(unpackLayer(layout, randomMask(layout, 3, l), l), w.shape)),
      ) as tf.Tensor2D[];
      const trace = net.forward(tf.tensor2d(randomInput(1, 7), [1, arch.inputs]), eff);
      const { dLogits } = objectiveGradient(objective, trace.logits, arch.realClasses);
      net.backward(trace, eff, dLogits).forEach((g, l) => {
        fromMatMul.setLayer(l, g.dataSync() as Float32Array);
      });
      net.backwardDeltas(trace, eff, dLogits).forEach((d, l) => {
        const input = (trace.inputs[l] as tf.Tensor2D).dataSync() as Float32Array;
        fromFactors.setRankOne(l, input, d.dataSync() as Float32Array);
      });
    });
    const bits = (v: Float32Array): Uint32Array => new Uint32Array(v.buffer, v.byteOffset, v.length);
    assert.deepEqual(bits(fromFactors.values), bits(fromMatMul.values), `objective ${objective}`);
    assert.ok(fromMatMul.values.some((v) => v !== 0));
  }
  net.dispose();
});
