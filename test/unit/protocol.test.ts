import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { runProtocol } from '../../src/bench/protocol.ts';
import { loadDataset } from '../../src/data/index.ts';
import { makeArchitecture } from '../../src/model/network/arch.ts';
import { defaultOptimizer } from '../../src/model/training/optimizers.ts';
import { testBackend } from '../support/backend.ts';

before(async () => {
  await testBackend();
});

const base = {
  scenario: 'permuted',
  dataset: 'mnist',
  arch: makeArchitecture({ arch: 'lenet', outputs: 100 }),
  tasks: 3,
  iterations: 150,
  batchSize: 128,
  seed: 1,
  objective: 'H',
  optimizer: defaultOptimizer('rmsprop'),
  rule: { kind: 'threshold' },
  init: 'kaiming',
  evalLimit: 384,
} as const;

test('permuted MNIST: single-image one-shot and full-batch binary search infer the task of every batch', () => {
  const dataset = loadDataset('mnist');
  const events: string[] = [];
  const oneShot = runProtocol({ ...base, inference: 'one-shot', bprime: 1 }, dataset, (e) =>
    events.push(e.phase),
  );
  assert.ok(oneShot.task_inference_acc >= 0.95, `one-shot task inference ${oneShot.task_inference_acc}`);
  assert.ok(oneShot.gg_acc > 0.8, `GG ${oneShot.gg_acc}`);
  assert.ok(oneShot.gnu_acc <= oneShot.gns_acc + 1e-12 && oneShot.gns_acc <= 1);
  assert.ok(oneShot.gnu_acc > 0.75, `GNu ${oneShot.gnu_acc}`);
  assert.equal(oneShot.per_task.length, 3);
  // One bit per weight, each layer padded to 32 bits.
  assert.equal(
    oneShot.mask_bytes_per_task,
    [784 * 300, 300 * 100, 100 * 100].reduce((n, w) => n + Math.ceil(w / 32) * 4, 0),
  );
  assert.ok(events.includes('train') && events.includes('eval'));

  const binary = runProtocol({ ...base, inference: 'binary', bprime: 128 }, dataset);
  assert.equal(binary.task_inference_acc, 1);
  assert.ok(binary.inference_passes_per_batch >= 1 && binary.inference_passes_per_batch <= 3);
  // Training is deterministic: GG accuracy does not depend on the inference method.
  assert.equal(binary.gg_acc, oneShot.gg_acc);
});
