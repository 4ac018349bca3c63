import assert from 'node:assert/strict';
import { test } from 'node:test';
import { adjustedRandIndex, scoreDiscovery } from '../../src/daemon/demo-report.ts';

test('adjusted Rand index: 1 for identical partitions up to renaming, exact on a known case', () => {
  assert.equal(adjustedRandIndex([0, 0, 1, 1, 2, 2], [5, 5, 3, 3, 9, 9]), 1);
  const ari = adjustedRandIndex([0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 1, 1]);
  // Computed by hand: index = C(2,2)+C(1,2)+C(3,2) = 1 + 0 + 3 = 4; rows 3+3 → 6; cols C(2,2)+C(4,2) = 1 + 6 = 7;
  // expected = 6·7/15 = 2.8; max = 6.5; ARI = (4 − 2.8)/(6.5 − 2.8) = 1.2/3.7.
  assert.ok(Math.abs(ari - 1.2 / 3.7) < 1e-12);
  assert.ok(adjustedRandIndex([0, 1, 0, 1], [0, 0, 1, 1]) < 0);
});

test('scoreDiscovery: dominant tasks, spurious allocations and detection delays', () => {
  const truth = [0, 0, 0, 0, 1, 1, 1, 1, 0, 0];
  const found = [0, 0, 0, 0, 0, 1, 1, 2, 0, 0];
  const report = scoreDiscovery({ truth, found }, [0, 4, 8]);
  assert.equal(report.true_tasks, 2);
  assert.equal(report.discovered_tasks, 3);
  assert.equal(report.spurious_allocations, 1);
  assert.deepEqual(report.dominant, { 0: 0, 1: 1 });
  assert.deepEqual(report.detection_delays, [1, 0]);
  assert.deepEqual(report.contingency, { 0: { 0: 6 }, 1: { 0: 1, 1: 2, 2: 1 } });
});
