import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type ForwardJob, forwardRows, gemmKernel, Wasm } from '../../src/model/kernels/index.ts';
import { type Architecture, makeArchitecture } from '../../src/model/network/arch.ts';
import { BLOCK_ROWS, HostForward } from '../../src/model/network/host-forward.ts';
import { RandomStream } from '../../src/model/network/prng.ts';
import { DotPool } from '../../src/model/threads/dot-pool.ts';

// Widths 20-13-7-11: no layer a multiple of 8, so every layer's padding is exercised.
const ARCH = makeArchitecture({ inputs: 20, hidden: [13, 7], outputs: 11 });
// Large enough that a block of rows is split over the pool's threads.
const WIDE = makeArchitecture({ inputs: 300, hidden: [203], outputs: 30 });

const shapesOf = (arch: Architecture): [number, number][] => {
  const widths = [arch.inputs, ...arch.hidden, arch.outputs];
  return widths.slice(1).map((fanOut, l) => [widths[l] as number, fanOut]);
};

function uniform(seed: number, index: number, length: number, scale: number): Float32Array {
  return new RandomStream(seed, 'probe', index).fillUniform(new Float32Array(length), scale);
}

function randomLayers(seed: number, arch = ARCH): Float32Array[] {
  return shapesOf(arch).map(([fanIn, fanOut], l) => uniform(seed, l, fanIn * fanOut, 1));
}

/** The forward pass in float32, one rounding per multiply and per add, summed in k order. */
function referenceLogits(
  x: Float32Array,
  rows: number,
  layers: readonly Float32Array[],
  arch = ARCH,
): Float32Array {
  let a = x;
  let width = arch.inputs;
  const shapes = shapesOf(arch);
  layers.forEach((w, l) => {
    const fanOut = (shapes[l] as [number, number])[1];
    const out = new Float32Array(rows * fanOut);
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < fanOut; j++) {
        let sum = 0;
        for (let k = 0; k < width; k++) {
          sum = Math.fround(sum + Math.fround((a[r * width + k] as number) * (w[k * fanOut + j] as number)));
        }
        out[r * fanOut + j] = l < layers.length - 1 ? Math.max(sum, 0) : sum;
      }
    }
    a = out;
    width = fanOut;
  });
  return a;
}

test('gemm kernel: C = A·B in float32, summed in k order, ReLU by a floor of 0', () => {
  const [rows, k, n] = [8, 19, 16];
  const memory = new Wasm.Memory({ initial: 1, maximum: 65536, shared: true });
  const f = new Float32Array(memory.buffer);
  const a = uniform(1, 0, rows * k, 1);
  const b = uniform(1, 1, k * n, 1);
  f.set(a, 0);
  f.set(b, rows * k);
  const cOffset = (rows * k + k * n) * 4;
  const gemm = gemmKernel(memory);
  for (const floor of [-Infinity, 0]) {
    gemm(0, rows * k * 4, cOffset, rows, k, n, floor);
    const c = f.subarray(cOffset / 4, cOffset / 4 + rows * n);
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < n; j++) {
        let sum = 0;
        for (let i = 0; i < k; i++) {
          sum = Math.fround(sum + Math.fround((a[r * k + i] as number) * (b[i * n + j] as number)));
        }
        assert.equal(c[r * n + j], floor === 0 ? Math.max(sum, 0) : sum, `C[${r},${j}] floor ${floor}`);
      }
    }
  }
});

test('host forward: logits bit for bit as the float32 reference, any row count, one or two threads', () => {
  const layers = randomLayers(2);
  for (const threads of [1, 2]) {
    const forward = HostForward.create(ARCH, 4, threads);
    assert.ok(forward !== null, 'this Node has WebAssembly SIMD and shared memory');
    for (const rows of [1, 5, 64, BLOCK_ROWS + 3]) {
      const x = uniform(3, rows, rows * ARCH.inputs, 2);
      const logits = forward.logits(x, rows, 0, () => layers);
      assert.deepEqual(logits, referenceLogits(x, rows, layers), `${rows} rows on ${threads} thread(s)`);
    }
  }
});

test('host forward: a block split over two threads gives the logits of one thread', () => {
  const layers = randomLayers(5, WIDE);
  const rows = BLOCK_ROWS + 9;
  const x = uniform(6, 0, rows * WIDE.inputs, 1);
  const expected = referenceLogits(x, rows, layers, WIDE);
  for (const threads of [1, 2]) {
    const forward = HostForward.create(WIDE, 1, threads);
    assert.ok(forward !== null);
    assert.deepEqual(
      forward.logits(x, BLOCK_ROWS, 0, () => layers),
      expected.subarray(0, BLOCK_ROWS * 30),
    );
    assert.equal(forward.lastThreads, threads, `a block of ${BLOCK_ROWS} rows ran on ${threads} thread(s)`);
    assert.deepEqual(
      forward.logits(x, rows, 0, () => layers),
      expected,
    );
  }
});

test('a helper keeps a posted memory between jobs and computes on it after it grew', () => {
  // Each new task's weights take a new slot, which grows the shared memory: the helper must compute
  // its rows on the grown memory, not on what it held before the grow.
  const forward = HostForward.create(WIDE, 4, 2);
  assert.ok(forward !== null);
  const x = uniform(9, 0, BLOCK_ROWS * WIDE.inputs, 1);
  for (let round = 0; round < 2; round++) {
    for (let task = 0; task < 4; task++) {
      const layers = randomLayers(20 + task, WIDE);
      assert.deepEqual(
        forward.logits(x, BLOCK_ROWS, task, () => layers),
        referenceLogits(x, BLOCK_ROWS, layers, WIDE),
        `task ${task}, round ${round}`,
      );
      assert.equal(forward.lastThreads, 2, `task ${task}, round ${round}: the helper took part`);
    }
  }
});

test('host forward: weights are cached per task, least recently used evicted, forget() refills', () => {
  const forward = HostForward.create(ARCH, 2, 1);
  assert.ok(forward !== null);
  const x = uniform(4, 0, 6 * ARCH.inputs, 2);
  const weights = [randomLayers(10), randomLayers(11), randomLayers(12)];
  let fills = 0;
  const logits = (task: number) =>
    forward.logits(x, 6, task, () => {
      fills++;
      return weights[task] as Float32Array[];
    });
  for (const task of [0, 1, 0])
    assert.deepEqual(logits(task), referenceLogits(x, 6, weights[task] as Float32Array[]));
  assert.equal(fills, 2, 'task 0 was served from the cache the second time');
  logits(2); // evicts task 1, the least recently used
  assert.deepEqual([forward.has(0), forward.has(1), forward.has(2)], [true, false, true]);
  weights[0] = randomLayers(13);
  assert.notDeepEqual(
    logits(0),
    referenceLogits(x, 6, weights[0] as Float32Array[]),
    'stale until forgotten',
  );
  forward.forget(0);
  assert.deepEqual(logits(0), referenceLogits(x, 6, weights[0] as Float32Array[]));
  assert.equal(fills, 4);
  // A mask that changes on every batch (a task still learning) is forgotten again and again: its
  // slot is reused, and the cache never runs out of slots or evicts the others for it.
  for (let round = 0; round < 10; round++) {
    weights[2] = randomLayers(20 + round);
    forward.forget(2);
    assert.deepEqual(logits(2), referenceLogits(x, 6, weights[2] as Float32Array[]), `round ${round}`);
    assert.ok(forward.has(0), 'task 0 stays cached');
  }
  forward.forget(7); // never cached: nothing to do
});

test('host forward refuses weights of the wrong size and inputs too short for the rows', () => {
  const forward = HostForward.create(ARCH, 1, 1);
  assert.ok(forward !== null);
  assert.throws(() => forward.logits(new Float32Array(ARCH.inputs), 2, 0, () => randomLayers(1)), RangeError);
  const wrong = randomLayers(1);
  wrong[1] = new Float32Array(5);
  assert.throws(() => forward.logits(new Float32Array(ARCH.inputs), 1, 0, () => wrong), RangeError);
});

test('a forward job split at uneven row bounds gives the rows of an unsplit pass', () => {
  const pool = DotPool.get(2);
  assert.ok(pool !== null, 'the dot-product pool starts a helper');
  const [rows, k, n] = [24, 40, 16];
  const memory = new Wasm.Memory({ initial: 1, maximum: 65536, shared: true });
  const f = new Float32Array(memory.buffer);
  f.set(uniform(7, 0, rows * k, 1), 0);
  f.set(uniform(7, 1, k * n, 1), rows * k);
  const out = (rows * k + k * n) * 4;
  const job: ForwardJob = { x: 0, inputs: k, layers: [{ weights: rows * k * 4, out, k, n }] };
  const gemm = gemmKernel(memory);
  forwardRows(gemm, job, 0, rows);
  const whole = f.slice(out / 4, out / 4 + rows * n);
  for (const bounds of [
    [0, 4, 24],
    [0, 20, 24],
    [0, 0, 24],
  ]) {
    f.fill(0, out / 4, out / 4 + rows * n);
    const outcome = pool.runForward(memory, job, bounds, (from, to) => forwardRows(gemm, job, from, to));
    assert.notEqual(outcome, 'broken');
    assert.deepEqual(f.slice(out / 4, out / 4 + rows * n), whole, `bounds ${bounds.join(',')}`);
  }
});
