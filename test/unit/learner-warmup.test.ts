import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { decodeRecord } from '../../src/codec/record-codec.ts';
import { DEFAULT_DEMO_STREAM, demoStream } from '../../src/daemon/demo-stream.ts';
import { type BatchOutcome, DEFAULT_LEARNER, StreamLearner } from '../../src/discovery/learner.ts';
import { PAPER_POLICY } from '../../src/discovery/policy.ts';
import { SupermaskEngine } from '../../src/model/engine.ts';
import { makeArchitecture } from '../../src/model/network/arch.ts';
import { defaultOptimizer } from '../../src/model/training/optimizers.ts';
import type { InputRecord } from '../../src/records.ts';
import { testBackend } from '../support/backend.ts';

before(async () => {
  await testBackend();
});

const arch = makeArchitecture({ arch: 'lenet', outputs: 100 });

/** The demo stream's first records, decoded: several segments, so tasks are found and learned. */
function inputs(count: number): InputRecord[] {
  const out: InputRecord[] = [];
  const limits = { dim: arch.inputs, maxBytes: 1 << 20, classes: arch.realClasses };
  for (const raw of demoStream({ ...DEFAULT_DEMO_STREAM, recordsPerSegment: 256 })) {
    const outcome = decodeRecord(raw, limits);
    if (outcome.ok) out.push(outcome.record);
    if (out.length === count) break;
  }
  return out;
}

function learner(): { engine: SupermaskEngine; learner: StreamLearner } {
  const engine = new SupermaskEngine({
    arch,
    seed: 3,
    optimizer: defaultOptimizer('rmsprop'),
    rule: { kind: 'threshold' },
  });
  return { engine, learner: new StreamLearner(engine, { ...DEFAULT_LEARNER, policy: PAPER_POLICY }) };
}

/** What a batch produced, without the timings (they never decide anything). */
function outcomeOf(outcome: BatchOutcome) {
  return {
    results: outcome.results,
    events: outcome.events,
    changed: [...outcome.changed],
    decision: outcome.decision,
    checked: outcome.checked,
  };
}

test('warmUp changes nothing: the batches after it come out exactly as without it', () => {
  const records = inputs(768);
  const batches = Array.from({ length: 6 }, (_, b) => records.slice(b * 128, (b + 1) * 128));
  const now = '2026-01-01T00:00:00.000Z';
  const plain = learner();
  const warmed = learner();
  try {
    // Nothing to warm before the first mask.
    warmed.learner.warmUp(128);
    assert.equal(warmed.engine.maskCount, 0);
    for (const [b, batch] of batches.entries()) {
      const expected = outcomeOf(plain.learner.process(batch, { learn: true, now, stream: 'demo/0' }));
      // Between batches: a learning mask, a stream on a task, then a second segment's task.
      warmed.learner.warmUp(128);
      const actual = outcomeOf(warmed.learner.process(batch, { learn: true, now, stream: 'demo/0' }));
      assert.deepEqual(actual, expected, `batch ${b}`);
    }
    assert.ok(plain.engine.maskCount >= 1, 'the stream allocated a mask');
    assert.deepEqual(warmed.learner.learnedTasks, plain.learner.learnedTasks);
    assert.deepEqual(warmed.learner.streamStates, plain.learner.streamStates);
  } finally {
    plain.learner.dispose();
    plain.engine.dispose();
    warmed.learner.dispose();
    warmed.engine.dispose();
  }
});
