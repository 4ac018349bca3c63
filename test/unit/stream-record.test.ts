import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  AlignedCopies,
  DEAD_LETTER_VALUE_CAP,
  type DecodeOutcome,
  decodeRecord,
  encodeDeadLetterHeaders,
  encodeDeadLetterJson,
  encodeEvent,
  encodeResult,
  RECORD_REJECT_REASONS,
  type RecordLimits,
} from '../../src/codec/record-codec.ts';
import { RandomStream } from '../../src/model/network/prng.ts';
import type { HeaderValue, InputRecord, RawRecord } from '../../src/stream/types.ts';

const LIMITS: RecordLimits = { dim: 4, maxBytes: 1024 * 1024, classes: 10 };
const POSITION = { topic: 'in', partition: 2, offset: '41' };

function raw(
  value: string | Buffer | null,
  headers: Record<string, HeaderValue> = {},
  key: Buffer | null = null,
): RawRecord {
  return {
    position: POSITION,
    key,
    value: typeof value === 'string' ? Buffer.from(value, 'utf8') : value,
    headers,
    timestamp: 1_700_000_000_000,
  };
}

function ok(outcome: DecodeOutcome): InputRecord {
  if (!outcome.ok) assert.fail(`expected a record, got ${outcome.letter.reason}: ${outcome.letter.detail}`);
  return outcome.record;
}

function reason(outcome: DecodeOutcome): string {
  if (outcome.ok) assert.fail(`expected a dead letter, got record ${outcome.record.id}`);
  return outcome.letter.reason;
}

/** Little-endian float32 bytes, placed at an odd byteOffset of a bigger buffer (as a Kafka fetch slice can be). */
function float32Le(values: readonly number[]): Buffer {
  const backing = Buffer.alloc(values.length * 4 + 3);
  values.forEach((v, i) => {
    backing.writeFloatLE(v, 1 + i * 4);
  });
  return backing.subarray(1, 1 + values.length * 4);
}

describe('decodeRecord: valid records', () => {
  test('JSON with label and id', () => {
    const record = ok(decodeRecord(raw('{"x":[0.5,-1,3e2,0],"y":7,"id":"sample-1"}'), LIMITS));
    assert.equal(record.id, 'sample-1');
    assert.equal(record.y, 7);
    assert.ok(record.x instanceof Float32Array);
    assert.deepEqual(Array.from(record.x), [0.5, -1, 300, 0]);
    assert.deepEqual(record.position, POSITION);
  });

  test('JSON without label or id: unlabelled, default id topic/partition/offset', () => {
    const record = ok(decodeRecord(raw(' \n{ "x" : [ 1 , 2 , 3 , 4 ] }\r\n'), LIMITS));
    assert.equal(record.id, 'in/2/41');
    assert.equal(record.y, undefined);
    assert.equal('y' in record, false);
    assert.deepEqual(Array.from(record.x), [1, 2, 3, 4]);
  });

  test('JSON null y / id mean absent; content-type with parameters and any header case', () => {
    const record = ok(
      decodeRecord(
        raw('{"id":null,"y":null,"x":[1,2,3,4]}', { 'Content-Type': 'Application/JSON; charset=utf-8' }),
        LIMITS,
      ),
    );
    assert.equal(record.id, 'in/2/41');
    assert.equal(record.y, undefined);
  });

  test('JSON numbers round like JSON.parse followed by a float32 store', () => {
    const texts = [
      '0.1',
      '-0.3333333333333333333333',
      '1e-7',
      '123456789012345678901234567890',
      '3.4028234663852886e38',
      '1.401298464324817e-45',
      '-0',
      '2.5E+3',
      '0.000001',
      '9007199254740993',
    ];
    for (let k = 0; k + 4 <= texts.length + 3; k += 4) {
      const group = [...texts, '0', '0', '0'].slice(k, k + 4);
      const record = ok(decodeRecord(raw(`{"x":[${group.join(',')}]}`), LIMITS));
      assert.deepEqual(Array.from(record.x), Array.from(Float32Array.from(group.map((t) => JSON.parse(t)))));
    }
  });

  test('JSON string escapes are decoded (id)', () => {
    const record = ok(decodeRecord(raw('{"x":[1,2,3,4],"id":"a\\"b\\\\c\\/d\\u0041"}'), LIMITS));
    assert.equal(record.id, 'a"b\\c/dA');
  });

  test('binary float32 at an unaligned offset, label and id from headers', () => {
    const value = float32Le([1.5, -2, 0.25, 1e-3]);
    assert.notEqual(value.byteOffset % 4, 0, 'the test buffer is unaligned');
    const record = ok(
      decodeRecord(raw(value, { 'content-type': 'application/x-float32', y: '3', id: 'bin-1' }), LIMITS),
    );
    assert.equal(record.id, 'bin-1');
    assert.equal(record.y, 3);
    assert.deepEqual(Array.from(record.x), [1.5, -2, 0.25, Math.fround(1e-3)]);
    assert.equal(record.x.byteOffset, 0);
    // A copy: changing the source buffer does not change the record.
    value.writeFloatLE(99, 0);
    assert.equal(record.x[0], 1.5);
  });

  test('binary float32 at an aligned offset: a view over the value, no copy', () => {
    const backing = Buffer.alloc(4 + 16);
    const value = backing.subarray(4, 20);
    for (const [i, v] of [1.5, -2, 0.25, 8].entries()) value.writeFloatLE(v, i * 4);
    assert.equal(value.byteOffset % 4, 0, 'the test buffer is aligned');
    const record = ok(decodeRecord(raw(value, { 'content-type': 'application/x-float32' }), LIMITS));
    assert.deepEqual(Array.from(record.x), [1.5, -2, 0.25, 8]);
    assert.equal(record.x.buffer, value.buffer);
    assert.equal(record.x.byteOffset, value.byteOffset);
    assert.equal(record.x.length, 4);
  });

  test('unaligned values: copies carved one after another, kept until the owner resets them', () => {
    const binary = { 'content-type': 'application/x-float32' };
    const dim = 1000;
    const limits = { ...LIMITS, dim };
    const values = Array.from({ length: 300 }, (_, r) =>
      float32Le(Array.from({ length: dim }, (_, i) => r + i / 8)),
    );
    assert.ok(
      values.every((v) => v.byteOffset % 4 !== 0),
      'every test value is unaligned',
    );
    const copies = new AlignedCopies();
    const chunk = (): InputRecord[] => values.map((v) => ok(decodeRecord(raw(v, binary), limits, copies)));
    const first = chunk();
    // Without a reset, every array keeps its own values: 300 copies over several 256 KiB slabs.
    first.forEach((record, r) => {
      assert.equal(record.x[0], r, `record ${r}`);
      assert.equal(record.x[dim - 1], r + (dim - 1) / 8, `record ${r}`);
    });
    assert.ok(new Set(first.map((r) => r.x.buffer)).size > 1, 'the first chunk took several slabs');
    // After a reset the next chunk fits one slab, as large as the last chunk needed, and the one
    // after that reuses it: no new memory in the steady state.
    copies.reset();
    const second = chunk();
    const slab = second[0]?.x.buffer;
    assert.ok(
      second.every((r) => r.x.buffer === slab),
      'the second chunk is in one slab',
    );
    assert.equal(slab?.byteLength, 300 * dim * 4);
    copies.reset();
    const third = chunk();
    assert.ok(third.every((r, i) => r.x.buffer === slab && r.x.byteOffset === i * dim * 4));
    for (const [r, record] of third.entries()) assert.equal(record.x[dim - 1], r + (dim - 1) / 8);
  });

  test('binary: application/octet-stream alias, id from the key, else the default', () => {
    const value = float32Le([1, 2, 3, 4]);
    const withKey = ok(
      decodeRecord(
        raw(value, { 'CONTENT-TYPE': Buffer.from('application/octet-stream') }, Buffer.from('k-9')),
        LIMITS,
      ),
    );
    assert.equal(withKey.id, 'k-9');
    assert.equal(withKey.y, undefined);
    const noKey = ok(
      decodeRecord(raw(value, { 'content-type': 'application/x-float32', Y: Buffer.from('0') }), LIMITS),
    );
    assert.equal(noKey.id, 'in/2/41');
    assert.equal(noKey.y, 0);
  });
});

describe('decodeRecord: poison records are dead letters with the right reason, never a throw', () => {
  const cases: Array<[string, RawRecord, string]> = [
    ['malformed JSON', raw('{"x":[1,2,3,4]'), 'E_RECORD_JSON'],
    ['trailing comma', raw('{"x":[1,2,3,4],}'), 'E_RECORD_JSON'],
    ['trailing garbage', raw('{"x":[1,2,3,4]} x'), 'E_RECORD_JSON'],
    ['single quotes', raw("{'x':[1,2,3,4]}"), 'E_RECORD_JSON'],
    ['leading zero', raw('{"x":[01,2,3,4]}'), 'E_RECORD_JSON'],
    ['NaN literal', raw('{"x":[NaN,2,3,4]}'), 'E_RECORD_JSON'],
    ['invalid UTF-8', raw(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])), 'E_RECORD_JSON'],
    ['control character in a string', raw('{"x":[1,2,3,4],"id":"a\u0001"}'), 'E_RECORD_JSON'],
    ['empty value', raw(''), 'E_RECORD_JSON'],
    ['wrong dimension (short)', raw('{"x":[1,2,3]}'), 'E_RECORD_DIMENSION'],
    ['wrong dimension (long)', raw('{"x":[1,2,3,4,5]}'), 'E_RECORD_DIMENSION'],
    ['wrong dimension (empty)', raw('{"x":[]}'), 'E_RECORD_DIMENSION'],
    ['Infinity via 1e400', raw('{"x":[1,1e400,3,4]}'), 'E_RECORD_NONFINITE'],
    ['-Infinity via -1e400', raw('{"x":[1,2,3,-1e400]}'), 'E_RECORD_NONFINITE'],
    ['float32 overflow 1e39', raw('{"x":[1e39,2,3,4]}'), 'E_RECORD_NONFINITE'],
    ['__proto__ at top level', raw('{"x":[1,2,3,4],"__proto__":{"polluted":1}}'), 'E_RECORD_PROTO'],
    [
      '__proto__ nested',
      raw('{"x":[1,2,3,4],"meta":{"a":[{"__proto__":{"polluted":1}}]}}'),
      'E_RECORD_PROTO',
    ],
    ['__proto__ spelled with escapes', raw('{"x":[1,2,3,4],"\\u005f_proto__":1}'), 'E_RECORD_PROTO'],
    ['constructor', raw('{"constructor":{"prototype":{"polluted":1}},"x":[1,2,3,4]}'), 'E_RECORD_PROTO'],
    ['prototype', raw('{"x":[1,2,3,4],"prototype":1}'), 'E_RECORD_PROTO'],
    ['extra key', raw('{"x":[1,2,3,4],"z":1}'), 'E_RECORD_SCHEMA'],
    ['duplicate key', raw('{"x":[1,2,3,4],"x":[1,2,3,4]}'), 'E_RECORD_SCHEMA'],
    ['missing x', raw('{"y":1}'), 'E_RECORD_SCHEMA'],
    ['x not an array', raw('{"x":"1,2,3,4"}'), 'E_RECORD_SCHEMA'],
    ['x element not a number', raw('{"x":[1,2,null,4]}'), 'E_RECORD_SCHEMA'],
    ['x element nested array', raw('{"x":[1,2,[3],4]}'), 'E_RECORD_SCHEMA'],
    ['top level array', raw('[1,2,3,4]'), 'E_RECORD_SCHEMA'],
    ['top level number', raw('42'), 'E_RECORD_SCHEMA'],
    ['top level null', raw('null'), 'E_RECORD_SCHEMA'],
    ['null value (tombstone)', raw(null), 'E_RECORD_SCHEMA'],
    ['y as a string', raw('{"x":[1,2,3,4],"y":"1"}'), 'E_RECORD_SCHEMA'],
    ['id as a number', raw('{"x":[1,2,3,4],"id":5}'), 'E_RECORD_SCHEMA'],
    ['label not an integer', raw('{"x":[1,2,3,4],"y":1.5}'), 'E_RECORD_LABEL'],
    ['label negative', raw('{"x":[1,2,3,4],"y":-1}'), 'E_RECORD_LABEL'],
    ['label too big', raw('{"x":[1,2,3,4],"y":10}'), 'E_RECORD_LABEL'],
    ['label 1e400', raw('{"x":[1,2,3,4],"y":1e400}'), 'E_RECORD_LABEL'],
    ['id empty', raw('{"x":[1,2,3,4],"id":""}'), 'E_RECORD_ID'],
    ['id non-ASCII', raw('{"x":[1,2,3,4],"id":"caf\u00e9"}'), 'E_RECORD_ID'],
    ['id with newline', raw('{"x":[1,2,3,4],"id":"a\\nb"}'), 'E_RECORD_ID'],
    ['id too long', raw(`{"x":[1,2,3,4],"id":"${'a'.repeat(257)}"}`), 'E_RECORD_ID'],
    ['10 MB value', raw(Buffer.alloc(10 * 1024 * 1024, 0x20)), 'E_RECORD_TOO_LARGE'],
    ['unknown content type', raw('{"x":[1,2,3,4]}', { 'content-type': 'text/csv' }), 'E_RECORD_CONTENT_TYPE'],
    [
      'binary NaN',
      raw(float32Le([1, Number.NaN, 3, 4]), { 'content-type': 'application/x-float32' }),
      'E_RECORD_NONFINITE',
    ],
    [
      'binary Infinity',
      raw(float32Le([1, 2, Number.POSITIVE_INFINITY, 4]), { 'content-type': 'application/x-float32' }),
      'E_RECORD_NONFINITE',
    ],
    [
      'binary wrong length',
      raw(float32Le([1, 2, 3]), { 'content-type': 'application/x-float32' }),
      'E_RECORD_DIMENSION',
    ],
    [
      'binary length not a multiple of 4',
      raw(Buffer.alloc(15), { 'content-type': 'application/x-float32' }),
      'E_RECORD_DIMENSION',
    ],
    [
      'binary bad label header',
      raw(float32Le([1, 2, 3, 4]), { 'content-type': 'application/x-float32', y: '1.0' }),
      'E_RECORD_LABEL',
    ],
    [
      'binary label out of range',
      raw(float32Le([1, 2, 3, 4]), { 'content-type': 'application/x-float32', y: '10' }),
      'E_RECORD_LABEL',
    ],
    [
      'binary non-ASCII key as id',
      raw(float32Le([1, 2, 3, 4]), { 'content-type': 'application/x-float32' }, Buffer.from([0xc3, 0xa9])),
      'E_RECORD_ID',
    ],
  ];
  for (const [name, record, expected] of cases) {
    test(`${name} → ${expected}`, () => {
      let outcome: DecodeOutcome | undefined;
      assert.doesNotThrow(() => {
        outcome = decodeRecord(record, LIMITS);
      });
      assert.equal(reason(outcome as DecodeOutcome), expected);
      const letter = (outcome as { letter: { detail: string; source: unknown } }).letter;
      assert.ok(letter.detail.length > 0 && letter.detail.length <= 513, letter.detail);
      assert.deepEqual(letter.source, POSITION);
    });
  }

  test('checks run in the documented order (JSON before PROTO before SCHEMA before DIMENSION …)', () => {
    assert.equal(reason(decodeRecord(raw('{"__proto__":1,"x":[1]'), LIMITS)), 'E_RECORD_JSON');
    assert.equal(reason(decodeRecord(raw('{"z":1,"__proto__":1,"x":[1]}'), LIMITS)), 'E_RECORD_PROTO');
    assert.equal(reason(decodeRecord(raw('{"z":1,"x":[1]}'), LIMITS)), 'E_RECORD_SCHEMA');
    assert.equal(reason(decodeRecord(raw('{"x":[1e400],"y":99}'), LIMITS)), 'E_RECORD_DIMENSION');
    assert.equal(reason(decodeRecord(raw('{"x":[1e400,1,2,3],"y":99}'), LIMITS)), 'E_RECORD_NONFINITE');
    assert.equal(reason(decodeRecord(raw('{"x":[1,1,2,3],"y":99,"id":""}'), LIMITS)), 'E_RECORD_LABEL');
  });

  test('the size limit counts key, value and headers, and is checked before parsing', () => {
    const limits = { ...LIMITS, maxBytes: 40 };
    const value = '{"x":[1,2,3,4]}'; // 15 bytes
    assert.equal(decodeRecord(raw(value), limits).ok, true);
    assert.equal(reason(decodeRecord(raw(value, {}, Buffer.alloc(26)), limits)), 'E_RECORD_TOO_LARGE');
    assert.equal(reason(decodeRecord(raw(value, { h: 'x'.repeat(30) }), limits)), 'E_RECORD_TOO_LARGE');
    // Malformed but oversized: the size check wins.
    assert.equal(reason(decodeRecord(raw('{'.repeat(41)), limits)), 'E_RECORD_TOO_LARGE');
  });

  test('a parsed record never pollutes prototypes', () => {
    decodeRecord(raw('{"x":[1,2,3,4],"__proto__":{"polluted":true}}'), LIMITS);
    decodeRecord(raw('{"constructor":{"prototype":{"polluted":true}}}'), LIMITS);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  test('deeply nested input is handled without recursion', () => {
    const deep = `{"x":[1,2,3,4],"a":${'['.repeat(200_000)}${']'.repeat(200_000)}}`;
    assert.equal(reason(decodeRecord(raw(deep), LIMITS)), 'E_RECORD_SCHEMA');
    const unbalanced = `{"x":[1,2,3,4],"a":${'['.repeat(200_000)}}`;
    assert.equal(reason(decodeRecord(raw(unbalanced), LIMITS)), 'E_RECORD_JSON');
  });
});

describe('dead letters', () => {
  test('value and key are copied and truncated to 64 KiB', () => {
    const big = Buffer.alloc(200_000, 0x61);
    const outcome = decodeRecord(raw(big, {}, Buffer.alloc(100_000, 0x6b)), {
      ...LIMITS,
      maxBytes: 1_000_000,
    });
    assert.equal(outcome.ok, false);
    if (outcome.ok) return;
    assert.equal(outcome.letter.reason, 'E_RECORD_JSON');
    assert.equal(outcome.letter.value?.length, DEAD_LETTER_VALUE_CAP);
    assert.equal(outcome.letter.key?.length, DEAD_LETTER_VALUE_CAP);
    assert.ok(outcome.letter.value?.equals(big.subarray(0, DEAD_LETTER_VALUE_CAP)));
    big[0] = 0x62;
    assert.equal(outcome.letter.value?.[0], 0x61, 'a copy, not a view');
  });

  test('a small value is kept whole; null stays null', () => {
    const outcome = decodeRecord(raw('{"x":[1]}', {}, Buffer.from('k')), LIMITS);
    assert.ok(!outcome.ok && outcome.letter.value?.toString() === '{"x":[1]}');
    assert.ok(!outcome.ok && outcome.letter.key?.toString() === 'k');
    const tombstone = decodeRecord(raw(null), LIMITS);
    assert.ok(!tombstone.ok && tombstone.letter.value === null && tombstone.letter.key === null);
  });

  test('DLQ headers and JSON line', () => {
    const outcome = decodeRecord(raw('{"x":[1,2]}'), LIMITS);
    assert.ok(!outcome.ok);
    if (outcome.ok) return;
    assert.deepEqual(encodeDeadLetterHeaders(outcome.letter), {
      'x-dlq-reason': 'E_RECORD_DIMENSION',
      'x-dlq-detail': 'x has 2 values, expected 4',
      'x-dlq-topic': 'in',
      'x-dlq-partition': '2',
      'x-dlq-offset': '41',
    });
    assert.deepEqual(JSON.parse(encodeDeadLetterJson(outcome.letter).toString()), {
      reason: 'E_RECORD_DIMENSION',
      detail: 'x has 2 values, expected 4',
      source: POSITION,
      keyBase64: null,
      valueBase64: Buffer.from('{"x":[1,2]}').toString('base64'),
    });
  });
});

describe('encoders', () => {
  test('encodeResult and encodeEvent are JSON', () => {
    const result = {
      id: 'r1',
      source: POSITION,
      task: 3,
      newTask: false,
      taskConfidence: 0.5,
      confidence: 0.75,
      entropy: 0.5,
      prediction: 4,
      maskVersion: 2,
    };
    assert.deepEqual(JSON.parse(encodeResult(result).toString()), result);
    const event = { type: 'mask_frozen', task: 1, steps: 500, time: '2024-01-01T00:00:00.000Z' } as const;
    assert.deepEqual(JSON.parse(encodeEvent(event).toString()), event);
    const found = { type: 'task_discovered', task: 2, at: POSITION, time: 't' } as const;
    assert.deepEqual(JSON.parse(encodeEvent(found).toString()), found);
  });

  test('encodeResult gives exactly the bytes of JSON.stringify, whatever the id, topic and numbers', () => {
    const ids = ['r1', 'quote " and \\ backslash', 'ü unicode ✓', 'tab\tnl\n', 'a/0/123'];
    const topics = ['in', 'in', 'weird "topic"', 'in'];
    const numbers = [
      0,
      -0,
      1,
      0.1 + 0.2,
      Math.fround(0.9987654),
      1e-7,
      1e21,
      Number.NaN,
      Number.POSITIVE_INFINITY,
    ];
    for (const [i, id] of ids.entries()) {
      for (const [j, value] of numbers.entries()) {
        const result = {
          id,
          source: {
            topic: topics[(i + j) % topics.length] as string,
            partition: j,
            offset: String(1000 + j),
          },
          task: i,
          newTask: j % 2 === 0,
          taskConfidence: numbers[(j + 5) % numbers.length] as number,
          confidence: value,
          entropy: numbers[(j + 3) % numbers.length] as number,
          prediction: j,
          maskVersion: i + j,
        };
        const expected = JSON.stringify({
          id: result.id,
          source: result.source,
          task: result.task,
          newTask: result.newTask,
          taskConfidence: result.taskConfidence,
          confidence: result.confidence,
          entropy: result.entropy,
          prediction: result.prediction,
          maskVersion: result.maskVersion,
        });
        assert.equal(encodeResult(result).toString('utf8'), expected);
      }
    }
  });
});

describe('decodeRecord never throws (seeded random inputs)', () => {
  const JSON_PIECES = [
    '{',
    '}',
    '[',
    ']',
    ',',
    ':',
    '"x"',
    '"y"',
    '"id"',
    '"__proto__"',
    '"a\\u0041"',
    '"\\ud800"',
    '1',
    '-0',
    '1e400',
    '0.5',
    '-',
    '.',
    'e',
    'true',
    'null',
    'fals',
    ' ',
    '\n',
    '"',
    '\\',
    '\u00e9',
  ];

  test('2,000 random byte strings (JSON and binary content types)', () => {
    const rng = new RandomStream(20_240_611, 'probe', 1);
    const reasons = new Set<string>(RECORD_REJECT_REASONS);
    const contentTypes = [undefined, 'application/json', 'application/x-float32', 'application/octet-stream'];
    for (let n = 0; n < 2000; n++) {
      const length = rng.nextInt(n % 10 === 0 ? 300 : 40);
      const bytes = Buffer.alloc(length);
      for (let i = 0; i < length; i++) bytes[i] = rng.nextInt(256);
      const type = contentTypes[n % 4];
      const headers: Record<string, HeaderValue> = type ? { 'content-type': type } : {};
      if (rng.nextInt(4) === 0) headers.y = bytes.subarray(0, rng.nextInt(4));
      if (rng.nextInt(4) === 0) headers.id = bytes.subarray(0, rng.nextInt(8));
      const key = rng.nextInt(2) === 0 ? null : bytes.subarray(0, rng.nextInt(6));
      const limits = { dim: 1 + rng.nextInt(8), maxBytes: 1 + rng.nextInt(400), classes: 1 + rng.nextInt(5) };
      let outcome: DecodeOutcome | undefined;
      try {
        outcome = decodeRecord(raw(bytes, headers, key), limits);
      } catch (error) {
        assert.fail(`input #${n} (${bytes.toString('hex')}) threw: ${String(error)}`);
      }
      if (outcome.ok) {
        assert.equal(outcome.record.x.length, limits.dim);
        for (const v of outcome.record.x) assert.ok(Number.isFinite(v));
      } else {
        assert.ok(reasons.has(outcome.letter.reason), outcome.letter.reason);
        assert.notEqual(outcome.letter.reason, 'E_RECORD_INTERNAL', outcome.letter.detail);
      }
    }
  });

  test('2,000 random JSON-token strings: syntax verdict agrees with JSON.parse', () => {
    const rng = new RandomStream(7, 'probe', 2);
    let valid = 0;
    for (let n = 0; n < 2000; n++) {
      const count = 1 + rng.nextInt(12);
      let text = '';
      for (let k = 0; k < count; k++) text += JSON_PIECES[rng.nextInt(JSON_PIECES.length)];
      let parses = true;
      try {
        JSON.parse(text);
      } catch {
        parses = false;
      }
      const outcome = decodeRecord(raw(text), { dim: 1, maxBytes: 10_000, classes: 2 });
      const syntaxOk = outcome.ok || outcome.letter.reason !== 'E_RECORD_JSON';
      assert.equal(syntaxOk, parses, `verdicts differ for ${JSON.stringify(text)}`);
      if (parses) valid++;
    }
    assert.ok(valid > 50, `enough valid samples (${valid})`);
  });

  test('random numbers parse exactly as Math.fround(JSON.parse(text))', () => {
    const rng = new RandomStream(11, 'probe', 3);
    const digits = (k: number): string => Array.from({ length: k }, () => String(rng.nextInt(10))).join('');
    for (let n = 0; n < 2000; n++) {
      const intPart = rng.nextInt(3) === 0 ? '0' : `${1 + rng.nextInt(9)}${digits(rng.nextInt(12))}`;
      let text = `${rng.nextInt(2) ? '-' : ''}${intPart}`;
      if (rng.nextInt(2)) text += `.${digits(1 + rng.nextInt(20))}`;
      if (rng.nextInt(2)) text += `e${['', '+', '-'][rng.nextInt(3)]}${rng.nextInt(60)}`;
      const expected = Math.fround(JSON.parse(text));
      const outcome = decodeRecord(raw(`{"x":[${text}]}`), { dim: 1, maxBytes: 1000, classes: 1 });
      if (!Number.isFinite(expected)) {
        assert.equal(reason(outcome), 'E_RECORD_NONFINITE', text);
        continue;
      }
      assert.ok(Object.is(ok(outcome).x[0], expected), `${text}: ${ok(outcome).x[0]}`);
    }
  });
});
