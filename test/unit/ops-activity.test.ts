import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RecordRejectReason } from '../../src/errors.js';
import { Activity } from '../../src/ops/activity.js';
import type { DeadLetter } from '../../src/records.js';

function deadLetter(offset: string, reason: RecordRejectReason): DeadLetter {
  return { source: { topic: 't', partition: 0, offset }, reason, detail: '', key: null, value: null };
}

const NO_LETTERS = {
  E_RECORD_TOO_LARGE: 0,
  E_RECORD_CONTENT_TYPE: 0,
  E_RECORD_JSON: 0,
  E_RECORD_PROTO: 0,
  E_RECORD_SCHEMA: 0,
  E_RECORD_DIMENSION: 0,
  E_RECORD_NONFINITE: 0,
  E_RECORD_LABEL: 0,
  E_RECORD_ID: 0,
  E_RECORD_INTERNAL: 0,
};

test('source state: not started, then running since its start, then finished with both times', () => {
  const activity = new Activity();
  assert.deepEqual(activity.sourceState(), { state: 'not_started', startedAt: null, endedAt: null });
  activity.source({ state: 'running', time: Date.UTC(2026, 0, 2, 3, 4, 5) });
  assert.deepEqual(activity.sourceState(), {
    state: 'running',
    startedAt: '2026-01-02T03:04:05.000Z',
    endedAt: null,
  });
  activity.source({ state: 'finished', time: Date.UTC(2026, 0, 2, 3, 9, 0) });
  assert.deepEqual(activity.sourceState(), {
    state: 'finished',
    startedAt: '2026-01-02T03:04:05.000Z',
    endedAt: '2026-01-02T03:09:00.000Z',
  });
});

test('source state: a source stopped or failed keeps its start and says when it ended', () => {
  const stopped = new Activity();
  stopped.source({ state: 'running', time: 1_000 });
  stopped.source({ state: 'stopped', time: 4_000 });
  assert.deepEqual(stopped.sourceState(), {
    state: 'stopped',
    startedAt: '1970-01-01T00:00:01.000Z',
    endedAt: '1970-01-01T00:00:04.000Z',
  });
  const failed = new Activity();
  failed.source({ state: 'running', time: 1_000 });
  failed.source({ state: 'failed', time: 2_000 });
  assert.equal(failed.sourceState().state, 'failed');
});

test('consumer lag: per partition, the lag of its last batch; null where the source knows no end', () => {
  const activity = new Activity();
  assert.deepEqual(activity.consumerLag(), {});
  activity.received('orders/0', 100, 900);
  activity.received('orders/1', 50, 12);
  activity.received('orders/0', 100, 800);
  activity.received('demo/0', 256, null);
  assert.deepEqual(activity.consumerLag(), { 'orders/0': 800, 'orders/1': 12, 'demo/0': null });
  assert.equal(activity.recordsIn, 506);
});

test('dead letters by reason: every code of the fixed set, from 0', () => {
  const activity = new Activity();
  assert.deepEqual(activity.deadLettersByReason(), NO_LETTERS);
  activity.deadLettered([deadLetter('1', 'E_RECORD_JSON'), deadLetter('2', 'E_RECORD_DIMENSION')]);
  activity.deadLettered([deadLetter('3', 'E_RECORD_JSON')]);
  assert.deepEqual(activity.deadLettersByReason(), {
    ...NO_LETTERS,
    E_RECORD_JSON: 2,
    E_RECORD_DIMENSION: 1,
  });
  assert.equal(activity.deadLetters, 3);
});

test('store writes: counts by outcome, nearest-rank latency of the recent commits, the last one', () => {
  let now = Date.UTC(2026, 0, 1);
  const activity = new Activity({ clock: () => now });
  assert.deepEqual(activity.storeWrites(), { applied: 0, fenced: 0, failed: 0, recent: null, last: null });
  // 20 commits: 0.001 s … 0.020 s, the 7th fenced and the 13th failed.
  for (let i = 1; i <= 20; i++) {
    const outcome = i === 7 ? 'fenced' : i === 13 ? 'failed' : 'applied';
    now += 1000;
    activity.committed({ seconds: i / 1000, outcome });
  }
  assert.deepEqual(activity.storeWrites(), {
    applied: 18,
    fenced: 1,
    failed: 1,
    recent: { commits: 20, p50Seconds: 0.01, p95Seconds: 0.019, maxSeconds: 0.02 },
    last: { seconds: 0.02, outcome: 'applied', time: '2026-01-01T00:00:20.000Z' },
  });
});

test('store writes: the percentiles cover the last 256 commits only', () => {
  const activity = new Activity({ clock: () => 0 });
  for (let i = 0; i < 300; i++) activity.committed({ seconds: i < 44 ? 10 : 0.5, outcome: 'applied' });
  const writes = activity.storeWrites();
  assert.equal(writes.applied, 300);
  assert.deepEqual(writes.recent, { commits: 256, p50Seconds: 0.5, p95Seconds: 0.5, maxSeconds: 0.5 });
});
