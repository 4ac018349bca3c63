/**
 * patches/kafkajs+2.2.4+002+request-queue-idle-timer.patch: kafkajs's request queue checked its pending
 * requests after every response and, with none pending, scheduled the next check at the (negative)
 * time left of a throttle that had ended, which Node runs after 1 ms: the check rescheduled itself
 * every millisecond for the life of the connection, a few per cent of a core while idle
 * (tulios/kafkajs#1604). Patched, a queue with nothing pending schedules nothing.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';

const require = createRequire(import.meta.url);

interface Entry {
  readonly correlationId: number;
  readonly apiName: string;
  readonly apiKey: number;
  readonly apiVersion: number;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}
interface RequestQueue {
  pending: unknown[];
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  checkPendingRequests(): void;
  push(request: {
    entry: Entry;
    expectResponse: boolean;
    sendRequest(): void;
    requestTimeout?: number;
  }): void;
  fulfillRequest(response: { correlationId: number; payload: unknown; size: number }): void;
  maybeThrottle(ms: number | null): void;
  destroy(): void;
}
const RequestQueueClass = require('kafkajs/src/network/requestQueue') as new (options: {
  maxInFlightRequests: number | null;
  requestTimeout: number;
  enforceRequestTimeout: boolean;
  clientId: string;
  broker: string;
  logger: Record<'debug' | 'info' | 'warn' | 'error', () => void>;
}) => RequestQueue;

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

function queueCountingChecks(maxInFlightRequests: number | null): {
  queue: RequestQueue;
  checks: () => number;
} {
  const queue = new RequestQueueClass({
    maxInFlightRequests,
    requestTimeout: 30_000,
    enforceRequestTimeout: false,
    clientId: 'test',
    broker: 'localhost:9092',
    logger: quiet,
  });
  let count = 0;
  const check = queue.checkPendingRequests.bind(queue);
  queue.checkPendingRequests = () => {
    count++;
    check();
  };
  return { queue, checks: () => count };
}

function request(correlationId: number, sent: number[]): Parameters<RequestQueue['push']>[0] {
  return {
    entry: { correlationId, apiName: 'Metadata', apiKey: 3, apiVersion: 5, resolve() {}, reject() {} },
    expectResponse: true,
    sendRequest: () => sent.push(correlationId),
  };
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `body` on a fresh queue and destroys it even when an assertion fails (else its timers keep the test alive). */
async function withQueue(
  maxInFlightRequests: number | null,
  body: (queue: RequestQueue, checks: () => number) => Promise<void>,
): Promise<void> {
  const { queue, checks } = queueCountingChecks(maxInFlightRequests);
  try {
    await body(queue, checks);
  } finally {
    queue.destroy();
  }
}

test('after a response, an idle request queue schedules no check (no 1 ms timer loop)', () =>
  withQueue(null, async (queue, checks) => {
    const sent: number[] = [];
    queue.push(request(1, sent));
    queue.fulfillRequest({ correlationId: 1, payload: null, size: 0 });
    const afterResponse = checks();
    await pause(60);
    assert.deepEqual(sent, [1]);
    assert.equal(queue.throttleCheckTimeoutId, null, 'no check is scheduled with nothing pending');
    // Unpatched: about one check per millisecond (some 50 in 60 ms).
    assert.equal(checks() - afterResponse, 0);
  }));

test('a request that waits for an in-flight slot is still sent when the slot frees', () =>
  withQueue(1, async (queue) => {
    const sent: number[] = [];
    queue.push(request(1, sent));
    queue.push(request(2, sent));
    assert.deepEqual(sent, [1]);
    queue.fulfillRequest({ correlationId: 1, payload: null, size: 0 });
    assert.deepEqual(sent, [1, 2]);
    queue.fulfillRequest({ correlationId: 2, payload: null, size: 0 });
    await pause(30);
    assert.equal(queue.throttleCheckTimeoutId, null);
  }));

test('a request pushed while the broker throttles is sent once the throttle has passed', () =>
  withQueue(null, async (queue) => {
    const sent: number[] = [];
    queue.maybeThrottle(40);
    queue.push(request(1, sent));
    assert.deepEqual(sent, []);
    assert.notEqual(queue.throttleCheckTimeoutId, null, 'a check is scheduled for the end of the throttle');
    await pause(80);
    assert.deepEqual(sent, [1]);
    queue.fulfillRequest({ correlationId: 1, payload: null, size: 0 });
    await pause(20);
    assert.equal(queue.throttleCheckTimeoutId, null);
  }));
