import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SupsupError } from '../../src/errors.js';
import { backoffDelay, retry } from '../../src/retry.js';

test('backoff doubles from the base, is capped, and jitters by ±20 %', () => {
  const backoff = { baseMs: 100, maxMs: 1_000 };
  const mid = () => 0.5;
  assert.deepEqual(
    [1, 2, 3, 4, 5, 40].map((attempt) => backoffDelay(attempt, backoff, mid)),
    [100, 200, 400, 800, 1000, 1000],
  );
  assert.equal(
    backoffDelay(3, backoff, () => 0),
    320,
  );
  assert.equal(
    backoffDelay(3, backoff, () => 0.999_999),
    480,
  );
});

test('retry: retriable errors are retried until success; others are thrown at once', async () => {
  const seen: number[] = [];
  const value = await retry(
    async (attempt) => {
      seen.push(attempt);
      if (attempt < 3) throw new SupsupError('E_STORE_UNAVAILABLE', 'down', { retriable: true });
      return 'ok';
    },
    { baseMs: 1, maxMs: 2 },
  );
  assert.equal(value, 'ok');
  assert.deepEqual(seen, [1, 2, 3]);

  let calls = 0;
  await assert.rejects(
    retry(
      async () => {
        calls++;
        throw new SupsupError('E_CONFIG', 'bad');
      },
      { baseMs: 1, maxMs: 2 },
    ),
    /bad/,
  );
  assert.equal(calls, 1, 'a non-retriable error is not retried');
});

test('retry: the attempt cap and the abort signal end the retries with the last error', async () => {
  let calls = 0;
  const failing = async () => {
    calls++;
    throw new SupsupError('E_SINK', `failure ${calls}`, { retriable: true });
  };
  await assert.rejects(retry(failing, { baseMs: 1, maxMs: 1, attempts: 4 }), /failure 4/);
  assert.equal(calls, 4);

  calls = 0;
  const controller = new AbortController();
  const pending = retry(failing, {
    baseMs: 60_000,
    maxMs: 60_000,
    signal: controller.signal,
    onRetry: () => controller.abort(),
  });
  await assert.rejects(pending, /failure 1/);
  assert.equal(calls, 1, 'the abort ended the 60 s wait at once');
});
