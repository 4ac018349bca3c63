/**
 * Restart-exact learning: a learner stopped after any committed batch and restored from the store goes on exactly
 * as one that never stopped (the same results, byte-identical masks and training states), because everything
 * training reads (scores, optimizer slots, policy state, task profiles, input transform, replay buffers) is
 * persisted with each commit. The labelled-batch codec's exact round trip and its refusals.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { decodeRecord } from '../../src/codec/record-codec.ts';
import { DEFAULT_DEMO_STREAM, demoStream } from '../../src/daemon/demo-stream.ts';
import { buildCommit, restoreState } from '../../src/daemon/state.ts';
import { DEFAULT_LEARNER, StreamLearner } from '../../src/discovery/learner.ts';
import { PAPER_POLICY } from '../../src/discovery/policy.ts';
import { SupermaskEngine } from '../../src/model/engine.ts';
import { makeArchitecture } from '../../src/model/network/arch.ts';
import { decodeLabelledBatch, encodeLabelledBatch } from '../../src/model/training/labelled-batch-codec.ts';
import { defaultOptimizer } from '../../src/model/training/optimizers.ts';
import type { InputRecord, ResultRecord } from '../../src/records.ts';
import { MemoryStore } from '../../src/store/index.ts';
import { testBackend } from '../support/backend.ts';

before(async () => {
  await testBackend();
});

const arch = makeArchitecture({ arch: 'lenet', outputs: 100 });
const NOW = '2026-01-01T00:00:00.000Z';
const BATCH = 128;
const BATCHES = 12;

/** A short demo stream, decoded: segments of 384 records (3 batches), a task returning at the end. */
function inputs(count: number): InputRecord[] {
  const out: InputRecord[] = [];
  const limits = { dim: arch.inputs, maxBytes: 1 << 20, classes: arch.realClasses };
  for (const raw of demoStream({ ...DEFAULT_DEMO_STREAM, segments: [0, 1, 2, 1], recordsPerSegment: 384 })) {
    const outcome = decodeRecord(raw, limits);
    if (outcome.ok) out.push(outcome.record);
    if (out.length === count) break;
  }
  return out;
}

function newEngine(): SupermaskEngine {
  return new SupermaskEngine({
    arch,
    seed: 3,
    optimizer: defaultOptimizer('rmsprop'),
    rule: { kind: 'threshold' },
  });
}

/** A replay buffer of 2 batches, so restarts meet buffers that were trimmed. */
const CONFIG = {
  ...DEFAULT_LEARNER,
  policy: PAPER_POLICY,
  replayBatches: 2,
  stepsPerBatch: 4,
  settledSteps: 4,
};

/** Runs the batches, committing each to `store`; after each batch in `restartAfter` it restarts from the store. */
async function run(restartAfter: ReadonlySet<number>) {
  const records = inputs(BATCHES * BATCH);
  const store = new MemoryStore();
  await store.open();
  let engine = newEngine();
  let learner = new StreamLearner(engine, CONFIG);
  const results: ResultRecord[] = [];
  try {
    for (let b = 0; b < BATCHES; b++) {
      const batch = records.slice(b * BATCH, (b + 1) * BATCH);
      const outcome = learner.process(batch, { learn: true, now: NOW, stream: 'file/0' });
      results.push(...outcome.results);
      const last = batch[batch.length - 1] as InputRecord;
      const commit = buildCommit(
        engine,
        learner,
        outcome.changed,
        'file/0',
        last.position.offset,
        outcome.events,
      );
      assert.equal(await store.commit(commit), 'applied');
      if (restartAfter.has(b)) {
        learner.dispose();
        engine.dispose();
        engine = newEngine();
        const restored = await restoreState(store, engine);
        assert.ok(restored !== null);
        learner = new StreamLearner(engine, CONFIG, restored);
      }
    }
    return { results, stored: await storedState(store, learner.learnedTasks.length) };
  } finally {
    learner.dispose();
    engine.dispose();
  }
}

async function storedState(store: MemoryStore, tasks: number) {
  const loaded = await store.load();
  const perTask = [];
  for (let task = 0; task < tasks; task++) {
    perTask.push({
      mask: await store.loadMask(task),
      training: await store.loadTrainingState(task),
      replay: await store.loadReplay(task),
    });
  }
  return { registry: loaded?.registry, applied: loaded?.applied, perTask };
}

test('a learner restarted from the store after any batch goes on exactly as one that never stopped', async () => {
  const uninterrupted = await run(new Set());
  assert.ok(uninterrupted.stored.perTask.length >= 3, 'several tasks found and trained in turn');
  assert.ok(
    uninterrupted.stored.perTask.some((task) => task.replay.length === 2),
    'a replay buffer filled and was trimmed',
  );
  const restarted = await run(new Set([0, 3, 5, 8, 9]));
  assert.deepEqual(restarted.results, uninterrupted.results);
  assert.deepEqual(restarted.stored, uninterrupted.stored);
});

test('the labelled-batch codec round-trips exactly and refuses damage, a wrong width and a wrong length', () => {
  const x = Float32Array.from({ length: 3 * 4 }, (_, i) => (i - 5) / 7);
  x[2] = -0;
  x[5] = 3.4028234663852886e38;
  const batch = { x, y: Int32Array.from([0, 9, -1]), rows: 3 };
  const bytes = encodeLabelledBatch(batch, 4);
  assert.equal(bytes.length, 14 + 4 * 12 + 4 * 3 + 4);
  const decoded = decodeLabelledBatch(bytes, 4);
  assert.deepEqual(decoded, { x, y: batch.y, rows: 3 });
  assert.ok(Object.is(decoded.x[2], -0));
  const damaged = bytes.slice();
  damaged[20] = (damaged[20] as number) ^ 1;
  const codec = (pattern: RegExp) => (error: Error & { code?: string }) =>
    error.code === 'E_CODEC' && pattern.test(error.message);
  assert.throws(() => decodeLabelledBatch(damaged, 4), codec(/checksum mismatch/));
  assert.throws(() => decodeLabelledBatch(bytes, 5), codec(/4 features, the network has 5/));
  assert.throws(() => decodeLabelledBatch(bytes.subarray(0, 10), 4), codec(/too short/));
  assert.throws(
    () => encodeLabelledBatch({ ...batch, rows: 4 }, 4),
    (error: Error & { code?: string }) => error.code === 'E_INTERNAL',
  );
});
