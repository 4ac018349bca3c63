import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { inflateSync } from 'node:zlib';
import { stripLabelledFile } from '../../src/evaluate/labelled-file.ts';
import { encodePng, PNG_SIGNATURE } from '../../src/evaluate/png.ts';
import { evaluationTable } from '../../src/evaluate/report-table.ts';
import { scoreEvaluation, trueChanges } from '../../src/evaluate/scores.ts';
import { runsOf, type Timeline, ticksOf, timelineSvg } from '../../src/evaluate/timeline.ts';
import { timelinePng } from '../../src/evaluate/timeline-png.ts';

/** ARI by counting agreeing pairs one by one (Hubert & Arabie's definition, O(n²)). */
function pairCountingAri(a: readonly number[], b: readonly number[]): number {
  let both = 0;
  let onlyA = 0;
  let onlyB = 0;
  let pairs = 0;
  for (let i = 0; i < a.length; i++) {
    for (let j = i + 1; j < a.length; j++) {
      const sameA = a[i] === a[j];
      const sameB = b[i] === b[j];
      pairs++;
      if (sameA && sameB) both++;
      if (sameA) onlyA++;
      if (sameB) onlyB++;
    }
  }
  const expected = (onlyA * onlyB) / pairs;
  return (both - expected) / ((onlyA + onlyB) / 2 - expected);
}

// Two true tasks a, b, a; the daemon is one record late on b and the record at 3 has no class.
const HAND_MADE = {
  truth: [0, 0, 0, 0, 1, 1, 1, 1, 0, 0],
  found: [0, 0, 0, 0, 0, 1, 1, 1, 0, 0],
  classes: [1, 2, 3, -1, 1, 2, 3, 4, 5, 5],
  live: [1, 2, 0, 7, 1, 2, 3, 0, 5, 0],
  final: [1, 0, 0, -1, 1, 2, 3, 4, 5, 0],
  // Records 1, 6 and 9 were sent without y (their class is a scoring-only field).
  labelled: [true, false, true, false, true, true, false, true, true, false],
  trueTaskNames: ['a', 'b'],
};

test('scoreEvaluation: confusion, per-task accuracy, delays and forgetting of a hand-made assignment', () => {
  const scores = scoreEvaluation(HAND_MADE);
  assert.deepEqual(scores.confusion, { a: { 0: 6 }, b: { 0: 1, 1: 3 } });
  assert.equal(scores.true_tasks, 2);
  assert.equal(scores.discovered_tasks, 2);
  assert.equal(scores.spurious_allocations, 0);
  assert.deepEqual(scores.tasks, [
    { task: 0, records: 7, scored: 6, accuracy: 4 / 6, mostly: 'a' },
    { task: 1, records: 3, scored: 3, accuracy: 2 / 3, mostly: 'b' },
  ]);
  assert.deepEqual(scores.changes, [
    { at: 4, from: 'a', to: 'b', delay: 1, detected: true },
    { at: 8, from: 'b', to: 'a', delay: 0, detected: true },
  ]);
  assert.deepEqual(scores.forgetting, [
    {
      true_task: 'a',
      mask: 0,
      all: { scored: 5, live_accuracy: 3 / 5, final_accuracy: 2 / 5, forgetting: 3 / 5 - 2 / 5 },
      // records 1 (live right, final wrong) and 9 (wrong both times)
      unlabelled: { scored: 2, live_accuracy: 1 / 2, final_accuracy: 0, forgetting: 1 / 2 },
    },
    {
      true_task: 'b',
      mask: 1,
      all: { scored: 4, live_accuracy: 3 / 4, final_accuracy: 1, forgetting: 3 / 4 - 1 },
      unlabelled: { scored: 1, live_accuracy: 1, final_accuracy: 1, forgetting: 0 },
    },
  ]);
  assert.equal(scores.live_accuracy, 6 / 9);
  assert.equal(scores.final_accuracy, 6 / 9);
  assert.equal(scores.ari, pairCountingAri(HAND_MADE.truth, HAND_MADE.found));
  // By hand: pairs together in both 18, in truth 21, in found 24, of 45: (18 − 11.2) / (22.5 − 11.2).
  assert.ok(Math.abs(scores.ari - 68 / 113) < 1e-12, `ARI ${scores.ari}`);
  // NMI by hand: H(truth) = H(0.6, 0.4), H(found) = H(0.7, 0.3); I = H(found) − H(found | truth) (b splits 1:3).
  const h = (...p: number[]) => -p.reduce((s, q) => s + q * Math.log(q), 0);
  const mi = h(0.7, 0.3) - 0.4 * h(0.25, 0.75);
  assert.ok(Math.abs(scores.nmi - (2 * mi) / (h(0.6, 0.4) + h(0.7, 0.3))) < 1e-12, `NMI ${scores.nmi}`);
});

test('scoreEvaluation: a true task never routed to its mask is an undetected change of its full length', () => {
  const scores = scoreEvaluation({
    truth: [0, 0, 1, 1, 1],
    found: [0, 0, 0, 0, 0],
    classes: [-1, -1, -1, -1, -1],
    live: [0, 0, 0, 0, 0],
    final: [-1, -1, -1, -1, -1],
    labelled: [false, false, false, false, false],
    trueTaskNames: ['x', 'y'],
  });
  // y's dominant mask is 0, which its first record already has: delay 0; no record with a class.
  assert.deepEqual(scores.changes, [{ at: 2, from: 'x', to: 'y', delay: 0, detected: true }]);
  assert.equal(scores.ari, 0);
  assert.equal(scores.live_accuracy, null);
  assert.deepEqual(
    scores.forgetting.map((f) => f.all.forgetting),
    [null, null],
  );
  const late = scoreEvaluation({
    truth: [0, 0, 1, 1, 0, 0, 1, 1, 1],
    found: [0, 0, 0, 0, 0, 0, 1, 1, 1],
    classes: Array(9).fill(-1),
    live: Array(9).fill(0),
    final: Array(9).fill(-1),
    labelled: Array(9).fill(false),
    trueTaskNames: ['x', 'y'],
  });
  assert.deepEqual(
    late.changes.map((c) => [c.at, c.delay, c.detected]),
    [
      [2, 2, false],
      [4, 0, true],
      [6, 0, true],
    ],
  );
  assert.throws(() => scoreEvaluation({ ...HAND_MADE, final: [1] }), /differ in length/);
  const none = { truth: [], found: [], classes: [], labelled: [], live: [], final: [], trueTaskNames: [] };
  assert.throws(() => scoreEvaluation(none), /no records to score/);
});

test('trueChanges, runsOf and ticksOf', () => {
  assert.deepEqual(trueChanges([3, 3, 1, 1, 3]), [2, 4]);
  assert.deepEqual(trueChanges([]), []);
  assert.deepEqual(runsOf([3, 3, 1, 1, 3]), [
    { start: 0, end: 2, task: 3 },
    { start: 2, end: 4, task: 1 },
    { start: 4, end: 5, task: 3 },
  ]);
  assert.deepEqual(runsOf([]), []);
  assert.deepEqual(ticksOf(1800), [0, 500, 1000, 1500]);
  assert.deepEqual(ticksOf(36000), [0, 10000, 20000, 30000]);
  assert.deepEqual(ticksOf(0), [0]);
});

/** CRC-32 bit by bit (no table), independent of the encoder's. */
function bitwiseCrc(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

interface Chunk {
  readonly type: string;
  readonly data: Buffer;
  readonly crc: number;
}

function pngChunks(png: Buffer): Chunk[] {
  assert.deepEqual(png.subarray(0, 8), PNG_SIGNATURE);
  const chunks: Chunk[] = [];
  let at = 8;
  while (at < png.length) {
    const length = png.readUInt32BE(at);
    const type = png.subarray(at + 4, at + 8).toString('latin1');
    const data = png.subarray(at + 8, at + 8 + length);
    const crc = png.readUInt32BE(at + 8 + length);
    assert.equal(crc, bitwiseCrc(png.subarray(at + 4, at + 8 + length)), `CRC of ${type}`);
    chunks.push({ type, data, crc });
    at += 12 + length;
  }
  assert.equal(at, png.length);
  return chunks;
}

test('encodePng: a 2×1 image has the signature, the exact IHDR, one IDAT of its scanline and IEND', () => {
  const png = encodePng({ width: 2, height: 1, pixels: new Uint8Array([255, 0, 0, 0, 0, 255]) });
  const chunks = pngChunks(png);
  assert.deepEqual(
    chunks.map((c) => c.type),
    ['IHDR', 'IDAT', 'IEND'],
  );
  const [ihdr, idat, iend] = chunks as [Chunk, Chunk, Chunk];
  assert.equal(ihdr.data.toString('hex'), '00000002000000010802000000');
  assert.equal(ihdr.crc, 0x7b40e8dd); // zlib.crc32(b'IHDR' + data), computed with Python
  assert.deepEqual([...inflateSync(idat.data)], [0, 255, 0, 0, 0, 0, 255]);
  assert.equal(iend.data.length, 0);
  assert.equal(iend.crc, 0xae426082);
  assert.throws(() => encodePng({ width: 2, height: 2, pixels: new Uint8Array(6) }), /needs 12 bytes/);
  assert.throws(() => encodePng({ width: 0, height: 1, pixels: new Uint8Array(0) }), /positive integer size/);
});

const TIMELINE: Timeline = {
  records: 10,
  truth: runsOf(HAND_MADE.truth),
  found: runsOf(HAND_MADE.found),
  allocations: [
    { at: 0, task: 0 },
    { at: 5, task: 1 },
  ],
  trueTaskNames: ['a', 'b<&>'],
  foundColour: { 0: 0, 1: 1 },
  title: 'hand-made & small',
};

test('timelineSvg: one rectangle per run, a marker per allocation, escaped text, balanced tags', () => {
  const svg = timelineSvg(TIMELINE);
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg" width="1000" height="176"'));
  assert.equal((svg.match(/<rect /g) ?? []).length, 1 + 3 + 3);
  assert.equal((svg.match(/<path /g) ?? []).length, 2);
  assert.ok(svg.includes('hand-made &#38; small'));
  assert.ok(svg.includes('b&#60;&#38;&#62;: records 4–7'));
  assert.ok(!/&(?!#\d+;)/.test(svg), 'every & starts an entity');
  // Every element opened is closed, in order.
  const stack: string[] = [];
  for (const [, close, name, selfClosing] of svg.matchAll(/<(\/?)([a-z]+)[^>]*?(\/?)>/g)) {
    if (close === '/') assert.equal(stack.pop(), name);
    else if (selfClosing !== '/') stack.push(name as string);
  }
  assert.deepEqual(stack, []);
});

test('timelinePng: a valid PNG of the layout size whose first band pixel has task 0 colour', () => {
  const png = timelinePng(TIMELINE);
  const [ihdr, idat] = pngChunks(png) as [Chunk, Chunk];
  assert.equal(ihdr.data.readUInt32BE(0), 1000);
  assert.equal(ihdr.data.readUInt32BE(4), 176);
  const raw = inflateSync(idat.data);
  assert.equal(raw.length, 176 * (1000 * 3 + 1));
  // Row 50 (inside the true band, 34..74), x = 200: the first run (task a, colour 0 = 0,114,178).
  const at = 50 * 3001 + 1 + 200 * 3;
  assert.deepEqual([...raw.subarray(at, at + 3)], [0, 114, 178]);
});

test('stripLabelledFile: removes the truth and class fields line for line and reads truth and classes', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'supsupd-evaluate-unit-'));
  try {
    const input = path.join(dir, 'in.jsonl');
    const output = path.join(dir, 'out.jsonl');
    await writeFile(
      input,
      '{"x":[1,2],"y":1,"task":"p"}\n\n{"x":[3,4],"task":7,"class":2}\r\n{"id":"r","x":[5,6],"task":"p","class":null}',
    );
    const records = await stripLabelledFile({ input, output, truthField: 'task', labelField: 'class' });
    assert.deepEqual(records, {
      offsets: [0, 2, 3],
      truth: [0, 1, 0],
      classes: [1, 2, -1],
      labelled: [true, false, false],
      trueTaskNames: ['p', '7'],
    });
    assert.equal(await readFile(output, 'utf8'), '{"x":[1,2],"y":1}\n\n{"x":[3,4]}\n{"id":"r","x":[5,6]}\n');

    const refused = async (text: string | null, pattern: RegExp, truthField = 'task') => {
      const file = path.join(dir, 'bad.jsonl');
      if (text !== null) await writeFile(file, text);
      await assert.rejects(
        stripLabelledFile({
          input: text === null ? path.join(dir, 'missing.jsonl') : file,
          output,
          truthField,
        }),
        (error: Error & { code?: string }) => error.code === 'E_BAD_ARGUMENT' && pattern.test(error.message),
      );
    };
    await refused('{"x":[1],"task":1}\n{"x":[2]}\n', /bad\.jsonl:2: the record has no truth field 'task'/);
    await refused('{"x":[1],"task":1.5}\n', /'task' must be a string or an integer/);
    await refused('[1,2]\n', /a record must be a JSON object/);
    await refused('{"x":\n', /bad\.jsonl:1: not JSON/);
    await refused('\n\n', /holds no records/);
    await refused('', /holds no records/);
    await refused(null, /cannot read .*missing\.jsonl/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('evaluationTable: the summary lines and the confusion table of the hand-made report', () => {
  const text = evaluationTable({
    ...scoreEvaluation(HAND_MADE),
    input: 'hand.jsonl',
    truth_field: 'task',
    label_field: null,
    records_in: 11,
    dead_letters: 1,
    dead_letter_reasons: { E_RECORD_DIMENSION: 1 },
    true_task_names: ['a', 'b'],
    allocations: [
      { task: 0, at: 0, offset: 0 },
      { task: 1, at: 5, offset: 6 },
    ],
    configuration: {
      rule: 'evidence',
      micro_batch: 128,
      network: 'lenet',
      outputs: 100,
      seed: 1,
      standardise: 'auto',
    },
    seconds: 1.25,
  });
  const lines = text.split('\n');
  for (const line of [
    "supsupd evaluate: hand.jsonl (truth field 'task')",
    'records in / scored     11 / 10 (1 dead-lettered: 1 E_RECORD_DIMENSION)',
    'tasks true / discovered 2 / 2 (spurious allocations: 0)',
    `ARI / NMI               0.6018 / ${scoreEvaluation(HAND_MADE).nmi.toFixed(4)}`,
    'accuracy live / final   66.7 % / 66.7 %',
    'allocations at record   0 (task 0), 5 (task 1)',
    'configuration           rule evidence, micro-batch 128, lenet with 100 outputs, seed 1, standardise auto',
    'true \\ discovered  0  1',
    'a                  6   ',
    'b                  1  3',
    '4                     a → b        1 records',
    'a             0       5  60.0 %   40.0 %     20.0 pt           2   50.0 %    0.0 %     50.0 pt',
  ]) {
    assert.ok(lines.includes(line), `no line '${line}' in:\n${text}`);
  }
});
