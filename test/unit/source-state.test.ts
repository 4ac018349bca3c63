import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type DaemonObserver, observeSource, type SourceObservation } from '../../src/daemon/telemetry.js';

/** An observer that keeps the source changes it is told of. */
function sourceRecorder(): { observer: DaemonObserver; changes: SourceObservation[] } {
  const changes: SourceObservation[] = [];
  const observer: DaemonObserver = {
    received: () => {},
    batch: () => {},
    deadLettered: () => {},
    committed: () => {},
    events: () => {},
    source: (observation) => changes.push(observation),
  };
  return { observer, changes };
}

function clockFrom(times: number[]): () => Date {
  return () => new Date(times.shift() ?? Number.NaN);
}

test('a source that ends by itself is running, then finished', async () => {
  const { observer, changes } = sourceRecorder();
  const consumed: string[] = [];
  await observeSource(
    observer,
    clockFrom([10, 20]),
    () => false,
    async () => {
      assert.deepEqual(changes, [{ state: 'running', time: 10 }], 'running is reported before consuming');
      consumed.push('all');
    },
  );
  assert.deepEqual(consumed, ['all']);
  assert.deepEqual(changes, [
    { state: 'running', time: 10 },
    { state: 'finished', time: 20 },
  ]);
});

test('a source ended by stop() is stopped, not finished', async () => {
  const { observer, changes } = sourceRecorder();
  let stopping = false;
  await observeSource(
    observer,
    clockFrom([10, 30]),
    () => stopping,
    async () => {
      stopping = true;
    },
  );
  assert.deepEqual(
    changes.map((c) => c.state),
    ['running', 'stopped'],
  );
});

test('a source that throws is failed and the error is rethrown; thrown while stopping, it is stopped', async () => {
  const { observer, changes } = sourceRecorder();
  const broken = async () => {
    throw new Error('broker gone');
  };
  await assert.rejects(
    observeSource(observer, clockFrom([1, 2]), () => false, broken),
    /broker gone/,
  );
  await assert.rejects(
    observeSource(observer, clockFrom([3, 4]), () => true, broken),
    /broker gone/,
  );
  assert.deepEqual(changes, [
    { state: 'running', time: 1 },
    { state: 'failed', time: 2 },
    { state: 'running', time: 3 },
    { state: 'stopped', time: 4 },
  ]);
});

test('without an observer or a clock the source is consumed all the same', async () => {
  let consumed = false;
  await observeSource(
    undefined,
    () => new Date(0),
    () => false,
    async () => {
      consumed = true;
    },
  );
  assert.equal(consumed, true);
});
