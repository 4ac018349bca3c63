import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { popcount, randomMask } from '../../src/model/bank/mask-layout.ts';
import { argMin, keepLowerHalf, SCREEN_MIN_MASKS, SupermaskEngine } from '../../src/model/engine.ts';
import { SimdArena } from '../../src/model/kernels/simd-kernels.ts';
import { makeArchitecture } from '../../src/model/network/arch.ts';
import { RandomStream } from '../../src/model/network/prng.ts';
import { keptCount, kthLargestMagnitude } from '../../src/model/training/mask-rule.ts';
import {
  defaultOptimizer,
  makeHostOptimizer,
  makeOptimizer,
  type OptimizerConfig,
} from '../../src/model/training/optimizers.ts';
import type { LabelledBatch } from '../../src/model/training/trainer.ts';
import { testBackend } from '../support/backend.ts';

before(async () => {
  await testBackend();
});

const arch = makeArchitecture({
  inputs: 32,
  hidden: [24, 16],
  outputs: 12,
  realClasses: 4,
});

/**
 * A separable toy task: inputs are noise around a task-specific centre (tasks differ in their input
 * distribution, as permuted images do); the label is the largest of 4 task-specific projections of
 * the noise.
 */
function toyBatches(task: number, count: number, rows = 32): LabelledBatch[] {
  const directions = new RandomStream(99, 'probe', 1000 + task).fillUniform(
    new Float32Array(4 * arch.inputs),
    1,
  );
  const centre = new RandomStream(99, 'probe', 2000 + task).fillUniform(new Float32Array(arch.inputs), 2);
  const stream = new RandomStream(99, 'probe', task);
  return Array.from({ length: count }, () => {
    const noise = stream.fillUniform(new Float32Array(rows * arch.inputs), 1);
    const x = noise.map((v, i) => v + (centre[i % arch.inputs] as number));
    const y = new Int32Array(rows);
    for (let r = 0; r < rows; r++) {
      let best = 0;
      let bestValue = Number.NEGATIVE_INFINITY;
      for (let c = 0; c < 4; c++) {
        let dot = 0;
        for (let i = 0; i < arch.inputs; i++)
          dot += (noise[r * arch.inputs + i] as number) * (directions[c * arch.inputs + i] as number);
        if (dot > bestValue) {
          bestValue = dot;
          best = c;
        }
      }
      y[r] = best;
    }
    return { x, y, rows };
  });
}

function newEngine(
  seed: number,
  optimizer: OptimizerConfig = defaultOptimizer('rmsprop', 0.01),
): SupermaskEngine {
  return new SupermaskEngine({
    arch,
    seed,
    rule: { kind: 'threshold' },
    optimizer,
  });
}

function trainMask(engine: SupermaskEngine, task: number, batches: readonly LabelledBatch[]): Uint8Array {
  const trainer = engine.createTrainer(engine.initialScores(task, 'kaiming'));
  for (const batch of batches) trainer.step(batch);
  const packed = trainer.packedMask();
  engine.commitScores(trainer.readScores(), packed);
  trainer.dispose();
  return packed;
}

test('training the scores lowers the loss and changes the mask', () => {
  const engine = newEngine(1);
  const batches = toyBatches(0, 150);
  const trainer = engine.createTrainer(engine.initialScores(0, 'kaiming'));
  const before = engine.initialScores(0, 'kaiming');
  const first = trainer.step(batches[0] as LabelledBatch, true) as number;
  for (const batch of batches.slice(1, 149)) trainer.step(batch);
  const last = trainer.step(batches[149] as LabelledBatch, true) as number;
  assert.ok(last < first * 0.8, `loss ${first} -> ${last}`);
  const after = trainer.readScores();
  assert.notDeepEqual(after[0], before[0]);
  trainer.dispose();
  engine.dispose();
});

test('same seed and data give bit-identical masks; another seed does not', () => {
  const batches = toyBatches(1, 40);
  const masks = [1, 1, 2].map((seed) => {
    const engine = newEngine(seed);
    const packed = trainMask(engine, 0, batches);
    engine.dispose();
    return packed;
  });
  assert.deepEqual(masks[0], masks[1]);
  assert.notDeepEqual(masks[0], masks[2]);
  const density = popcount(masks[0] as Uint8Array) / arch.inputs;
  assert.ok(density > 0);
});

test('both product layouts (host transposes, matMul flags) train the same scores', () => {
  const batches = toyBatches(2, 30);
  const trained = (['transposed', 'flags'] as const).map((products) => {
    const engine = newEngine(3);
    const trainer = engine.createTrainer(engine.initialScores(0, 'kaiming'), undefined, products);
    assert.equal(trainer.products, products);
    const losses = batches.map((batch) => trainer.step(batch, true) as number);
    const result = {
      scores: trainer.readScores(),
      mask: trainer.packedMask(),
      losses,
    };
    trainer.dispose();
    engine.dispose();
    return result;
  });
  const [transposed, flags] = trained as [(typeof trained)[0], (typeof trained)[0]];
  let maxDiff = 0;
  transposed.scores.forEach((layer, l) => {
    const other = flags.scores[l] as Float32Array;
    for (let i = 0; i < layer.length; i++)
      maxDiff = Math.max(maxDiff, Math.abs((layer[i] as number) - (other[i] as number)));
  });
  // Only the summation order inside a product may differ between the layouts.
  assert.ok(maxDiff < 1e-6, `max score difference ${maxDiff}`);
  for (const [i, loss] of transposed.losses.entries()) {
    assert.ok(Math.abs(loss - (flags.losses[i] as number)) < 1e-5, `step ${i}: loss ${loss}`);
  }
  assert.ok((transposed.losses.at(-1) as number) < (transposed.losses[0] as number));
  let differing = 0;
  for (let i = 0; i < transposed.mask.length; i++) {
    differing += popcount(Uint8Array.of((transposed.mask[i] as number) ^ (flags.mask[i] as number)));
  }
  assert.ok(differing <= 2, `${differing} mask bits differ`);
});

test('no tensor leaks across 100 training steps and 100 inferences', () => {
  const engine = newEngine(3);
  const batches = toyBatches(2, 4);
  trainMask(engine, 0, batches);
  trainMask(engine, 1, toyBatches(3, 4));
  const trainer = engine.createTrainer(engine.initialScores(2, 'kaiming'));
  trainer.step(batches[0] as LabelledBatch, true);
  engine.inferTask((batches[0] as LabelledBatch).x, {
    method: 'binary',
    objective: 'H',
    bprime: 8,
  });
  engine.predict((batches[0] as LabelledBatch).x, 0);
  engine.predict((batches[0] as LabelledBatch).x, 1);
  const tensors = tf.memory().numTensors;
  for (let i = 0; i < 100; i++) {
    const batch = batches[i % batches.length] as LabelledBatch;
    trainer.step(batch, i % 10 === 0);
    engine.inferTask(batch.x, {
      method: i % 2 === 0 ? 'one-shot' : 'binary',
      objective: i % 3 === 0 ? 'G' : 'H',
      bprime: 1 + (i % 8),
    });
    engine.predict(batch.x, i % 2);
  }
  assert.equal(tf.memory().numTensors, tensors);
  trainer.dispose();
  engine.dispose();
});

test('binary search keeps the candidates at or below the lower median', () => {
  assert.deepEqual(keepLowerHalf([0, 1, 2, 3, 4, 5], [5, -1, 3, 0, -2, 9]), [1, 3, 4]);
  assert.deepEqual(keepLowerHalf([7, 9], [0.5, 0.25]), [9]);
  assert.deepEqual(keepLowerHalf([3, 4, 5], [1, 1, 2]), [3, 4]);
});

test('transfer init starts from the mean of earlier scores', () => {
  const engine = newEngine(6);
  const a = engine.initialScores(0, 'kaiming');
  const b = engine.initialScores(1, 'kaiming');
  engine.commitScores(a, new Uint8Array(engine.layout.totalBytes));
  engine.commitScores(b, new Uint8Array(engine.layout.totalBytes));
  const mean = engine.initialScores(2, 'transfer');
  mean.forEach((layer, l) => {
    for (let i = 0; i < layer.length; i += 37) {
      const expected = Math.fround(((a[l]?.[i] as number) + (b[l]?.[i] as number)) / 2);
      assert.ok(Math.abs((layer[i] as number) - expected) < 1e-7);
    }
  });
  engine.dispose();
});

function optimizerTrace(config: OptimizerConfig, grads: number[][], start: number[]): number[] {
  const p = tf.variable(tf.tensor1d(start));
  const optimizer = makeOptimizer(config);
  for (const g of grads) tf.tidy(() => optimizer.apply([p], [tf.tensor1d(g)]));
  const out = Array.from(p.dataSync());
  optimizer.dispose();
  p.dispose();
  return out;
}

test('optimizers follow PyTorch formulas step by step', () => {
  const grads = [
    [1e-4, -3e-3],
    [2e-4, 1e-3],
    [-5e-5, 0],
  ];
  const start = [0.1, -0.2];
  const close = (a: number[], b: number[]) =>
    a.every((v, i) => Math.abs(v - (b[i] as number)) < 1e-7 * Math.max(1, Math.abs(v)));
  // RMSprop (PyTorch): v = 0.99 v + 0.01 g^2; p -= lr g / (sqrt(v) + 1e-8).
  const rms = start.map((p0, i) => {
    let p = p0;
    let v = 0;
    for (const g of grads) {
      const gi = g[i] as number;
      v = 0.99 * v + 0.01 * gi * gi;
      p -= (1e-4 * gi) / (Math.sqrt(v) + 1e-8);
    }
    return p;
  });
  assert.ok(close(optimizerTrace(defaultOptimizer('rmsprop'), grads, start), rms));
  // Adam with coupled L2 weight decay 1e-4.
  const adam = start.map((p0, i) => {
    let p = p0;
    let m = 0;
    let v = 0;
    grads.forEach((g, t) => {
      const gi = (g[i] as number) + 1e-4 * p;
      m = 0.9 * m + 0.1 * gi;
      v = 0.999 * v + 0.001 * gi * gi;
      const mHat = m / (1 - 0.9 ** (t + 1));
      const vHat = v / (1 - 0.999 ** (t + 1));
      p -= (1e-3 * mHat) / (Math.sqrt(vHat) + 1e-8);
    });
    return p;
  });
  assert.ok(close(optimizerTrace(defaultOptimizer('adam'), grads, start), adam));
  // SGD with momentum 0.9 and weight decay 1e-4; the buffer starts as the first gradient.
  const sgd = start.map((p0, i) => {
    let p = p0;
    let buf = 0;
    grads.forEach((g, t) => {
      const gi = (g[i] as number) + 1e-4 * p;
      buf = t === 0 ? gi : 0.9 * buf + gi;
      p -= 0.1 * buf;
    });
    return p;
  });
  assert.ok(close(optimizerTrace(defaultOptimizer('sgd'), grads, start), sgd));
});

test('host optimizers are bit-identical to the tensor optimizers on the backend', () => {
  const n = 4099;
  const stream = new RandomStream(11, 'probe', 5);
  const start = stream.fillUniform(new Float32Array(n), 0.05);
  start[0] = 0;
  start[1] = -0;
  const grads = Array.from({ length: 6 }, (_, t) => {
    const g = stream.fillUniform(new Float32Array(n), 10 ** -(2 + (t % 3)));
    g[2] = 0;
    return g;
  });
  const configs: OptimizerConfig[] = [
    defaultOptimizer('rmsprop'),
    defaultOptimizer('rmsprop', 0.01),
    defaultOptimizer('adam'),
    {
      kind: 'adam',
      lr: 3e-3,
      beta1: 0.8,
      beta2: 0.99,
      eps: 1e-6,
      weightDecay: 0,
    },
    defaultOptimizer('sgd'),
    { kind: 'sgd', lr: 0.05, momentum: 0, weightDecay: 0 },
  ];
  for (const config of configs) {
    const p = tf.variable(tf.tensor1d(start));
    const tensorOptimizer = makeOptimizer(config);
    const host = makeHostOptimizer(config, [n]);
    const params = Float32Array.from(start);
    for (const g of grads) {
      tf.tidy(() => tensorOptimizer.apply([p], [tf.tensor1d(g)]));
      host.apply([params], [Float32Array.from(g)]);
    }
    assert.deepEqual(params, p.dataSync(), config.kind);
    const a = tensorOptimizer.exportState();
    const b = host.exportState();
    assert.equal(b.steps, a.steps);
    assert.deepEqual(Object.keys(b.slots).sort(), Object.keys(a.slots).sort());
    for (const name of Object.keys(a.slots)) assert.deepEqual(b.slots[name], a.slots[name], name);
    // Resuming from the exported state continues identically.
    const resumed = makeHostOptimizer(config, [n], b);
    const again = Float32Array.from(params);
    resumed.apply([again], [Float32Array.from(grads[0] as Float32Array)]);
    host.apply([params], [Float32Array.from(grads[0] as Float32Array)]);
    assert.deepEqual(again, params);
    tensorOptimizer.dispose();
    p.dispose();
  }
});

test('the top-k cut is the k-th largest magnitude, ties included', () => {
  const stream = new RandomStream(12, 'probe', 6);
  for (const n of [1, 2, 7, 1000, 4097]) {
    const values = stream
      .fillUniform(new Float32Array(n), 1)
      .map((v, i) => (i % 5 === 0 ? 0.25 : Math.abs(v)));
    const sorted = Float32Array.from(values).sort();
    for (const density of [0.01, 0.3, 0.5, 1]) {
      const k = keptCount(n, density);
      assert.equal(kthLargestMagnitude(Float32Array.from(values), k), sorted[n - k]);
    }
  }
});

test('the fused SIMD kernel (STE, RMSprop, threshold mask) is bit-identical to the host path', () => {
  const n = 1031; // not a multiple of 4: the padded tail must not leak into the results
  const arena = SimdArena.create([n, n, n, n, n]);
  assert.ok(arena !== null, 'WebAssembly SIMD must be available on Node 20');
  const [g, w, v, p, e] = [0, 1, 2, 3, 4].map(() => arena.allocate(n)) as Float32Array[];
  const stream = new RandomStream(13, 'probe', 7);
  const weights = stream.fillUniform(new Float32Array(n), 1).map((x) => (x < 0 ? -0.05 : 0.05));
  (w as Float32Array).set(weights);
  const start = stream.fillUniform(new Float32Array(n), 1e-3);
  start[0] = 0;
  start[1] = -0;
  start[2] = 1e-30;
  (p as Float32Array).set(start);
  const config = defaultOptimizer('rmsprop', 3e-3);
  if (config.kind !== 'rmsprop') throw new Error('rmsprop expected');
  const host = makeHostOptimizer(config, [n]);
  const hostScores = Float32Array.from(start);
  const f32 = Math.fround;
  for (let step = 0; step < 4; step++) {
    const d = stream.fillUniform(new Float32Array(n), 10 ** -(2 + step));
    d[3] = 0;
    (g as Float32Array).set(d);
    arena.thresholdRmsprop(
      (g as Float32Array).byteOffset,
      (w as Float32Array).byteOffset,
      (v as Float32Array).byteOffset,
      (p as Float32Array).byteOffset,
      (e as Float32Array).byteOffset,
      SimdArena.paddedBytes(n),
      f32(config.alpha),
      f32(1 - config.alpha),
      f32(config.lr),
      f32(config.eps),
    );
    host.apply([hostScores], [d.map((x, i) => f32(x * (weights[i] as number)))]);
    assert.deepEqual(p, hostScores, `scores after step ${step + 1}`);
    assert.deepEqual(v, host.slot('squareAvg', 0), `square averages after step ${step + 1}`);
    const expected = weights.map((x, i) => x * ((hostScores[i] as number) >= 0 ? 1 : 0));
    assert.deepEqual(e, expected, `effective weights after step ${step + 1}`);
  }
});

test('one-shot inference over a large bank screens it and still picks the exact argmin', () => {
  const engine = newEngine(8);
  const batch = toyBatches(1, 1)[0] as LabelledBatch;
  trainMask(engine, 0, toyBatches(1, 6));
  for (let i = 1; i < SCREEN_MIN_MASKS - 1; i++) engine.addMask(randomMask(engine.layout, 8, i));
  for (const objective of ['G', 'H'] as const) {
    const below = engine.inferTask(batch.x, { method: 'one-shot', objective, bprime: 8 });
    assert.equal(below.gradientBound, 0, `${SCREEN_MIN_MASKS - 1} masks: exact products`);
    assert.equal(below.task, argMin(engine.alphaGradient(batch.x, 8, objective)));
  }
  engine.addMask(randomMask(engine.layout, 8, SCREEN_MIN_MASKS));
  for (const objective of ['G', 'H'] as const) {
    for (const bprime of [1, 8, 32]) {
      const exact = engine.alphaGradient(batch.x, bprime, objective);
      const screened = engine.inferTask(batch.x, { method: 'one-shot', objective, bprime });
      const label = `${objective} B'=${bprime}`;
      assert.ok(screened.gradientBound > 0, `${label}: ${SCREEN_MIN_MASKS} masks are screened`);
      assert.equal(screened.task, argMin(exact), label);
      assert.equal(screened.passes, 1);
      for (let i = 0; i < exact.length; i++) {
        assert.ok(
          Math.abs((screened.gradient[i] as number) - (exact[i] as number)) <= screened.gradientBound,
          label,
        );
      }
    }
  }
  engine.dispose();
});
