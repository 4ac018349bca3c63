import assert from 'node:assert/strict';
import { test } from 'node:test';
import { certifiedArgMin } from '../../src/model/bank/certified-argmin.ts';

/** Screened values A and exact values g with |A − g| ≤ bound; `exact` records what it was asked. */
function screenedOf(approx: number[], exactValues: number[], bound: number) {
  const asked: number[][] = [];
  const exact = (indices: readonly number[]): Float64Array => {
    asked.push([...indices]);
    return Float64Array.from(indices, (i) => exactValues[i] as number);
  };
  return { screened: { values: Float64Array.from(approx), bound }, exact, asked };
}

test('only the masks whose interval reaches the lowest upper end are computed exactly', () => {
  // Intervals [A − 0.5, A + 0.5]: the lowest upper end is 1.5 (mask 1); masks 1, 2 and 4 reach it.
  const { screened, exact, asked } = screenedOf([5, 1, 1.9, 3, 2], [5.2, 1.45, 1.42, 3.1, 2.4], 0.5);
  const found = certifiedArgMin(screened, exact);
  assert.deepEqual(asked, [[1, 2, 4]]);
  assert.equal(found.index, 2, 'the exact values decide: mask 2 is lower than mask 1');
  assert.equal(found.rescored, 3);
  assert.deepEqual([...found.values], [5, 1.45, 1.42, 3, 2.4], 'candidates exact, the rest as screened');
});

test('exact ties go to the first index, whatever the screened order', () => {
  // The screen alone would pick mask 2; the exact values tie masks 1, 2 and 3.
  const { screened, exact } = screenedOf([0.3, 0.2, 0.1, 0.1], [0.5, 0.15, 0.15, 0.15], 0.25);
  assert.equal(certifiedArgMin(screened, exact).index, 1);
});

test('a zero bound rescores only the screened minimum, and ties among equal screened values', () => {
  const { screened, exact, asked } = screenedOf([4, -2, 3, -2], [4, -2, 3, -2], 0);
  assert.equal(certifiedArgMin(screened, exact).index, 1);
  assert.deepEqual(asked, [[1, 3]]);
});

test('an empty screen is refused', () => {
  const { screened, exact } = screenedOf([], [], 0);
  assert.throws(() => certifiedArgMin(screened, exact), RangeError);
});
