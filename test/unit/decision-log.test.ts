/**
 * The decision log (docs/daemon.md, "Decision log"): an entry's exact content from a batch outcome, and the demo
 * stream run twice from scratch giving byte-identical logs and masks.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { diffDecisions, readDecisionLog } from '../../src/daemon/decision-diff.ts';
import { decisionOf } from '../../src/daemon/decision-log.ts';
import { runDemo } from '../../src/daemon/demo.ts';
import { DEFAULT_DEMO_STREAM } from '../../src/daemon/demo-stream.ts';
import type { BatchOutcome } from '../../src/discovery/learner.ts';
import { silentLogger } from '../../src/logger.ts';
import type { BatchDecision, InputRecord, ResultRecord } from '../../src/records.ts';
import { FileStore } from '../../src/store/index.ts';
import { testBackend } from '../support/backend.ts';

before(async () => {
  await testBackend();
});

const dirs: string[] = [];
after(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

function record(offset: number): InputRecord {
  return {
    id: `r${offset}`,
    position: { topic: 'in', partition: 3, offset: String(offset) },
    x: new Float32Array(2),
    y: null,
  } as unknown as InputRecord;
}

function result(offset: number, task: number, newTask: boolean, maskVersion: number): ResultRecord {
  return {
    id: `r${offset}`,
    source: { topic: 'in', partition: 3, offset: String(offset) },
    task,
    newTask,
    taskConfidence: 0.9,
    confidence: 0.5,
    entropy: 1,
    prediction: 0,
    maskVersion,
  };
}

test('an entry run-length encodes the rows tasks, names the allocated ones, rounds the evidence to 4 digits', () => {
  const records = [10, 11, 12, 13, 14].map(record);
  const outcome = {
    results: [
      result(10, 1, false, 7),
      result(11, 1, false, 7),
      result(12, 2, true, 2),
      result(13, 2, true, 2),
      result(14, 1, false, 7),
    ],
    decision: { kind: 'allocate', confidence: 0.9, reason: 'uncertain' },
    checked: true,
    split: 2,
    labelled: 4,
    sequence: 41,
    candidates: [
      { task: 0, distance: 1.234567, loss: null },
      { task: 1, distance: 0.000123456, loss: 2.345678 },
    ],
  } as unknown as BatchOutcome;
  const pending = decisionOf('in/3', records, outcome, true);
  assert.equal(
    JSON.stringify(pending),
    '{"seq":41,"partition":"in/3","first":"10","last":"14","rows":5,"labelled":4,"tasks":[[1,2],[2,2],[1,1]],' +
      '"allocated":[2],"versions":[[1,7],[2,2]],"split":2,"decision":"allocate","reason":"uncertain",' +
      '"checked":true,"candidates":[[0,1.235,null],[1,0.0001235,2.346]],"cutShort":true}',
  );
  assert.equal('cutShort' in decisionOf('in/3', records, outcome, false), false);
});

/** Every stored task's mask, training state and replay log, as one comparable value. */
async function storedBytes(dir: string) {
  const store = new FileStore(dir);
  await store.open();
  try {
    const loaded = await store.load();
    const tasks = [];
    for (const meta of loaded?.registry.tasks ?? []) {
      tasks.push({
        mask: Buffer.from(await store.loadMask(meta.task)).toString('base64'),
        training: Buffer.from((await store.loadTrainingState(meta.task)) ?? []).toString('base64'),
        replay: (await store.loadReplay(meta.task)).map((entry) => Buffer.from(entry).toString('base64')),
      });
    }
    return tasks;
  } finally {
    await store.close();
  }
}

test('the demo stream run twice from scratch gives byte-identical decision logs and masks', async () => {
  const run = async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'supsupd-decisions-'));
    dirs.push(dir);
    const stream = { ...DEFAULT_DEMO_STREAM, segments: [0, 1, 0], recordsPerSegment: 500 };
    const summary = await runDemo({ dir, stream, logger: silentLogger });
    return {
      summary,
      log: await readFile(path.join(dir, 'decisions.jsonl')),
      masks: await storedBytes(path.join(dir, 'store')),
    };
  };
  const first = await run();
  const second = await run();
  const lines = first.log.toString('utf8').trim().split('\n');
  assert.equal(lines.length, Math.ceil(1500 / 128), 'one entry per micro-batch');
  assert.ok(first.summary.discovered_tasks >= 2);
  assert.ok(lines.some((line) => JSON.parse(line).allocated.length > 0));
  assert.ok(first.log.length / lines.length < 400, `${first.log.length / lines.length} bytes per batch`);
  assert.ok(first.log.equals(second.log), 'the same decision log, byte for byte');
  assert.deepEqual(second.masks, first.masks);
});

test('a diff lists every batch decided otherwise, in offset order, and batches only one side has', async () => {
  const entry = (
    seq: number,
    first: number,
    tasks: [number, number][],
    allocated: number[] = [],
  ): BatchDecision => ({
    seq,
    partition: 'in/0',
    first: String(first),
    last: String(first + 127),
    rows: 128,
    labelled: 128,
    tasks,
    allocated,
    versions: [],
    split: null,
    decision: allocated.length > 0 ? 'allocate' : 'route',
    reason: 'fits',
    checked: false,
    candidates: [],
  });
  const recorded = [
    entry(1, 0, [[0, 128]], [0]),
    entry(2, 128, [[0, 128]]),
    entry(
      3,
      256,
      [
        [0, 28],
        [1, 100],
      ],
      [1],
    ),
    entry(4, 1000, [[1, 128]]),
  ];
  const replayed = [
    entry(1, 0, [[0, 128]], [0]),
    entry(2, 128, [[0, 128]]),
    entry(3, 256, [[0, 128]]),
    entry(4, 384, [[0, 128]]),
  ];
  assert.deepEqual(diffDecisions(recorded, recorded), []);
  assert.deepEqual(diffDecisions(recorded, replayed), [
    {
      first: '256',
      last: '383',
      recorded: {
        tasks: [
          [0, 28],
          [1, 100],
        ],
        allocated: [1],
        split: null,
      },
      replayed: { tasks: [[0, 128]], allocated: [], split: null },
    },
    {
      first: '384',
      last: '511',
      recorded: null,
      replayed: { tasks: [[0, 128]], allocated: [], split: null },
    },
    {
      first: '1000',
      last: '1127',
      recorded: { tasks: [[1, 128]], allocated: [], split: null },
      replayed: null,
    },
  ]);
  // Read back from a file: an entry repeated (written again after a crash) is kept once; damage is refused.
  const dir = await mkdtemp(path.join(tmpdir(), 'supsupd-diff-'));
  dirs.push(dir);
  const file = path.join(dir, 'decisions.jsonl');
  await writeFile(file, `${[...recorded, recorded[3]].map((d) => JSON.stringify(d)).join('\n')}\n`);
  assert.deepEqual(await readDecisionLog(file), recorded);
  await writeFile(file, `${JSON.stringify(recorded[0])}\n{"first":1}\n`);
  await assert.rejects(readDecisionLog(file), /decisions.jsonl:2 is not a decision-log entry/);
  await assert.rejects(readDecisionLog(path.join(dir, 'none.jsonl')), /cannot read the decision log/);
});
