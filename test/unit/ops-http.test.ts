import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { SupsupError } from '../../src/errors.js';
import { silentLogger } from '../../src/logger.js';
import { Activity } from '../../src/ops/activity.js';
import type { ApiStatus, ApiTask } from '../../src/ops/api-types.js';
import { type OpsViews, opsRoutes } from '../../src/ops/http/routes.js';
import { HttpServer } from '../../src/ops/http/server.js';
import type { JobRun } from '../../src/ops/scheduler.js';
import type { BatchDecision, ResultRecord } from '../../src/records.js';

const TOKEN = 'correct-horse-battery-staple';
const INPUTS = 4;

const activity = new Activity({ timelineSize: 3, replaySize: 10 });
const jobRuns: string[] = [];
let ready = true;

const views: OpsViews = {
  readiness: async () =>
    ready ? { ready: true, reasons: [] } : { ready: false, reasons: ['store unreachable'] },
  status: async () => ({ tasks: 0 }) as unknown as ApiStatus,
  tasks: () => [{ task: 0 } as ApiTask, { task: 1 } as ApiTask],
  timeline: () => activity.timelinePoints(),
  subscribe: (listener, lastEventId) => activity.subscribe(listener, lastEventId),
  inputs: INPUTS,
  infer: (x, rows) => ({
    task: 0,
    confidence: 1,
    entropy: 0,
    predictions: Array.from({ length: rows }, (_, r) => x[r * INPUTS] ?? 0),
  }),
  jobs: () => [],
  runJob: async (name) => {
    if (name !== 'integrity') throw new SupsupError('E_JOB_UNKNOWN', `no job named "${name}"`);
    jobRuns.push(name);
    return { job: name, outcome: 'ok' } as JobRun;
  },
  eventLog: async () => [],
  decisions: (limit, partition) => activity.recentDecisions(limit, partition),
  metrics: async () => ({ contentType: 'text/plain; version=0.0.4', text: 'supsupd_up 1\n' }),
};

let server: HttpServer;
let base = '';

before(async () => {
  server = new HttpServer(
    { host: '127.0.0.1', port: 0, requestTimeoutMs: 5_000, headersTimeoutMs: 5_000, logger: silentLogger },
    opsRoutes(views, () => server, { token: TOKEN, bodyLimitBytes: 1024, maxInferRows: 2 }),
  );
  base = `http://127.0.0.1:${(await server.listen()).port}`;
});

after(async () => {
  await server.close();
  await server.close(); // idempotent
});

const post = (path: string, body: string, headers: Record<string, string> = {}) =>
  fetch(`${base}${path}`, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json', ...headers },
  });

test('readiness answers 200 or 503 with the reasons; liveness does not consult it', async () => {
  ready = false;
  const down = await fetch(`${base}/readyz`);
  assert.equal(down.status, 503);
  assert.deepEqual(await down.json(), { ready: false, reasons: ['store unreachable'] });
  assert.equal((await fetch(`${base}/livez`)).status, 200);
  ready = true;
  assert.equal((await fetch(`${base}/readyz`)).status, 200);
});

test('every answer carries the security headers; the page is served under a self-only CSP', async () => {
  const page = await fetch(`${base}/`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
  assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'self'/);
  assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
  const vendor = await fetch(`${base}/assets/vendor/uPlot.iife.min.js`);
  assert.equal(vendor.status, 200, 'uPlot comes from node_modules, not a CDN');
  assert.equal((await fetch(`${base}/assets/../../package.json`)).status, 404);
});

test('the decision log answers the last entries, of one partition when asked; a bad limit is 400', async () => {
  const decision = (partition: string, seq: number): BatchDecision => ({
    seq,
    partition,
    first: String(seq * 128),
    last: String(seq * 128 + 127),
    rows: 128,
    labelled: 64,
    tasks: [[0, 128]],
    allocated: [],
    versions: [[0, seq + 1]],
    split: null,
    decision: 'route',
    reason: 'fits',
    checked: false,
    candidates: [[0, 0.5, 1.25]],
  });
  activity.decided([decision('in/0', 1), decision('in/1', 2), decision('in/0', 3), decision('in/0', 4)]);
  const last = await fetch(`${base}/api/v1/decisions?limit=2&partition=in/0`);
  assert.equal(last.status, 200);
  assert.deepEqual(await last.json(), { decisions: [decision('in/0', 3), decision('in/0', 4)] });
  const all = (await (await fetch(`${base}/api/v1/decisions`)).json()) as { decisions: BatchDecision[] };
  assert.deepEqual(
    all.decisions.map((d) => d.seq),
    [1, 2, 3, 4],
  );
  for (const limit of ['0', '1001', 'x']) {
    const bad = await fetch(`${base}/api/v1/decisions?limit=${limit}`);
    assert.equal(bad.status, 400, limit);
    assert.equal(((await bad.json()) as { error: { code: string } }).error.code, 'E_HTTP_BAD_LIMIT');
  }
});

test('unknown routes are 404 and wrong methods 405, with a stable error code', async () => {
  const missing = await fetch(`${base}/nope`);
  assert.equal(missing.status, 404);
  assert.equal(((await missing.json()) as { error: { code: string } }).error.code, 'E_HTTP_NOT_FOUND');
  const wrong = await fetch(`${base}/api/v1/tasks`, { method: 'DELETE' });
  assert.equal(wrong.status, 405);
  assert.equal((await fetch(`${base}/api/v1/tasks/x`)).status, 400);
  assert.equal((await fetch(`${base}/api/v1/tasks/7`)).status, 404);
  assert.equal((await fetch(`${base}/api/v1/tasks/1`)).status, 200);
});

test('admin endpoints need the bearer token; a wrong or missing token is 401', async () => {
  assert.equal((await post('/api/v1/jobs/integrity/run', '{}')).status, 401);
  assert.equal(
    (await post('/api/v1/jobs/integrity/run', '{}', { authorization: 'Bearer wrong' })).status,
    401,
  );
  assert.equal(
    (await post('/api/v1/jobs/integrity/run', '{}', { authorization: `Bearer ${TOKEN}x` })).status,
    401,
  );
  assert.deepEqual(jobRuns, [], 'nothing ran without the token');
  const ok = await post('/api/v1/jobs/integrity/run', '{}', { authorization: `Bearer ${TOKEN}` });
  assert.equal(ok.status, 200);
  assert.deepEqual(jobRuns, ['integrity']);
  const unknown = await post('/api/v1/jobs/other/run', '{}', { authorization: `Bearer ${TOKEN}` });
  assert.equal(unknown.status, 404);
  assert.equal(((await unknown.json()) as { error: { code: string } }).error.code, 'E_JOB_UNKNOWN');
});

test('without a configured token the admin endpoints are disabled, not open', async () => {
  const closed: HttpServer = new HttpServer(
    { host: '127.0.0.1', port: 0, requestTimeoutMs: 5_000, headersTimeoutMs: 5_000, logger: silentLogger },
    opsRoutes(views, () => closed, { token: undefined, bodyLimitBytes: 1024 }),
  );
  const { port } = await closed.listen();
  try {
    const response = await fetch(`http://127.0.0.1:${port}/api/v1/jobs/integrity/run`, { method: 'POST' });
    assert.equal(response.status, 403);
  } finally {
    await closed.close();
  }
});

test('infer validates its body: media type, JSON, dimension, finite values, row and byte limits', async () => {
  const ok = await post('/api/v1/infer', JSON.stringify({ x: [[7, 0, 0, 0]] }));
  assert.equal(ok.status, 200);
  assert.deepEqual(((await ok.json()) as { predictions: number[] }).predictions, [7]);
  const cases: [string, Record<string, string>, number][] = [
    ['{"x": [[1,2,3,4]]}', { 'content-type': 'text/plain' }, 415],
    ['{"x": [[1,2,3', {}, 400],
    ['{"x": [[1,2,3]]}', {}, 400],
    ['{"x": [[1,2,3,"4"]]}', {}, 400],
    ['{"x": []}', {}, 400],
    [
      JSON.stringify({
        x: [
          [1, 2, 3, 4],
          [1, 2, 3, 4],
          [1, 2, 3, 4],
        ],
      }),
      {},
      413,
    ],
    [JSON.stringify({ x: [[1, 2, 3, 4]], pad: 'x'.repeat(2048) }), {}, 413],
  ];
  for (const [body, headers, status] of cases) {
    const response = await post('/api/v1/infer', body, headers);
    assert.equal(response.status, status, body.slice(0, 40));
    const error = (await response.json()) as { error: { code: string; message: string } };
    assert.match(error.error.code, /^E_HTTP_/);
    assert.doesNotMatch(error.error.message, /at .*\.ts:\d+/, 'no stack traces in answers');
  }
});

function result(task: number, confidence: number, offset: number): ResultRecord {
  return {
    id: String(offset),
    source: { topic: 't', partition: 0, offset: String(offset) },
    task,
    newTask: false,
    taskConfidence: 1,
    confidence,
    entropy: 1 - confidence,
    prediction: 0,
    maskVersion: 1,
  };
}

test('the event stream replays after Last-Event-ID and then delivers live messages', async () => {
  const time = Date.now();
  activity.events([
    { type: 'task_discovered', task: 0, at: { topic: 't', partition: 0, offset: '0' }, time: 'x' },
  ]);
  activity.events([{ type: 'mask_frozen', task: 0, steps: 10, time: 'y' }]);
  const controller = new AbortController();
  const response = await fetch(`${base}/api/v1/events`, {
    headers: { 'last-event-id': '1' },
    signal: controller.signal,
  });
  assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  let text = '';
  const readUntil = async (pattern: RegExp) => {
    while (!pattern.test(text)) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
  };
  await readUntil(/event: mask_frozen/);
  assert.doesNotMatch(text, /task_discovered/, 'the message with id 1 was seen already');
  activity.batch({
    partition: 't/0',
    firstOffset: '0',
    lastOffset: '1',
    time,
    results: [result(0, 0.75, 0), result(0, 0.25, 1)],
    decision: { kind: 'route', reason: 'fast_path' },
    checked: false,
    inferSeconds: 0.001,
    trainSteps: 0,
    trainSeconds: 0,
    prequential: { correct: 0, labelled: 0 },
  });
  activity.summarize();
  await readUntil(/event: decisions\ndata: .*\n\n/);
  const data = /event: decisions\ndata: (.*)\n/.exec(text)?.[1] ?? '{}';
  const summary = JSON.parse(data) as {
    records: number;
    meanConfidence: number;
    byTask: Record<string, number>;
  };
  assert.equal(summary.records, 2);
  assert.equal(summary.meanConfidence, 0.5);
  assert.deepEqual(summary.byTask, { 0: 2 });
  controller.abort();
});

test('activity keeps bounded state: the timeline ring drops the oldest, task counters add up', () => {
  const local = new Activity({ timelineSize: 2, replaySize: 2 });
  for (let b = 0; b < 5; b++) {
    local.batch({
      partition: 't/0',
      firstOffset: String(b * 2),
      lastOffset: String(b * 2 + 1),
      time: 1000 + b,
      results: [result(b % 2, 0.5, b * 2), result(b % 2, 1, b * 2 + 1)],
      decision: { kind: 'route', reason: 'fast_path' },
      checked: false,
      inferSeconds: 0,
      trainSteps: 0,
      trainSeconds: 0,
      prequential: { correct: 0, labelled: 0 },
    });
  }
  assert.deepEqual(
    local.timelinePoints().map((p) => p.firstOffset),
    ['6', '8'],
  );
  assert.deepEqual(local.task(0), {
    routed: 6,
    meanConfidence: 0.75,
    lastSeen: { at: { topic: 't', partition: 0, offset: '9' }, time: new Date(1004).toISOString() },
  });
  assert.equal(local.task(1).routed, 4);
  assert.equal(local.task(9).routed, 0);
  assert.equal(local.recordsOut, 10);
});
