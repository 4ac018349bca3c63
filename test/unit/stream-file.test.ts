import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { after, describe, mock, test } from 'node:test';
import { decodeRecord } from '../../src/codec/record-codec.ts';
import { isSupsupError, SupsupError } from '../../src/errors.ts';
import { JsonlFileSink, JsonlFileSource, readLines, StdinSource, StdoutSink } from '../../src/stream/file.ts';
import type { DeadLetter, ResultRecord, SourceBatch } from '../../src/stream/types.ts';

const dir = mkdtempSync(join(tmpdir(), 'supsupd-stream-file-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let fileCounter = 0;
function file(content: string | Buffer): string {
  const path = join(dir, `input-${fileCounter++}.jsonl`);
  writeFileSync(path, content);
  return path;
}

function lines(n: number): string {
  return Array.from({ length: n }, (_, i) => JSON.stringify({ x: [i, i + 1], id: `r${i}` })).join('\n');
}

/** Runs a source to the end, collecting batches (records as [offset, text]). */
async function collect(
  source: JsonlFileSource | StdinSource,
  onBatch?: (batch: SourceBatch, index: number) => Promise<void> | void,
): Promise<Array<Array<[string, string]>>> {
  const batches: Array<Array<[string, string]>> = [];
  await source.start(async (batch) => {
    assert.equal(batch.partition, 0);
    batches.push(batch.records.map((r) => [r.position.offset, r.value?.toString() ?? '']));
    await onBatch?.(batch, batches.length - 1);
  });
  await source.done();
  return batches;
}

const RESULT: ResultRecord = {
  id: 'r1',
  source: { topic: 'file', partition: 0, offset: '3' },
  task: 1,
  newTask: true,
  taskConfidence: 1,
  confidence: 0.9,
  entropy: 0.1,
  prediction: 2,
  maskVersion: 1,
};

describe('JsonlFileSource', () => {
  test('batches of batchSize lines, offset = line number, done() after the last batch', async () => {
    const source = new JsonlFileSource(file(`${lines(10)}\n`), { batchSize: 4 });
    assert.equal(source.name.startsWith('file:'), true);
    let handled = 0;
    const batches = await collect(source, async () => {
      await new Promise((r) => setTimeout(r, 5));
      handled++;
    });
    assert.equal(handled, 3, 'done() resolved only after the last batch was handled');
    assert.deepEqual(
      batches.map((b) => b.map(([offset]) => offset)),
      [
        ['0', '1', '2', '3'],
        ['4', '5', '6', '7'],
        ['8', '9'],
      ],
    );
    assert.equal(batches[1][0][1], '{"x":[4,5],"id":"r4"}');
    assert.equal(source.lastHandledOffset(), '9');
  });

  test('positions carry the topic; records decode; CRLF, blank lines and a last line without newline', async () => {
    const path = file('{"x":[1,2]}\r\n\n   \n{"x":[3,4]}\r\n{"x":[5,6]}');
    const seen: string[] = [];
    const source = new JsonlFileSource(path, { topic: 'replay' });
    await source.start(async (batch) => {
      assert.equal(batch.topic, 'replay');
      for (const r of batch.records) {
        const outcome = decodeRecord(r, { dim: 2, maxBytes: 1000, classes: 2 });
        assert.ok(outcome.ok);
        if (outcome.ok) seen.push(`${outcome.record.id}=${Array.from(outcome.record.x).join(',')}`);
      }
      await batch.heartbeat();
    });
    await source.done();
    assert.deepEqual(seen, ['replay/0/0=1,2', 'replay/0/3=3,4', 'replay/0/4=5,6']);
  });

  test('startAfter resumes after the given offset', async () => {
    const path = file(lines(7));
    const batches = await collect(new JsonlFileSource(path, { batchSize: 2, startAfter: '3' }));
    assert.deepEqual(
      batches.map((b) => b.map(([offset]) => offset)),
      [['4', '5'], ['6']],
    );
    assert.deepEqual(await collect(new JsonlFileSource(path, { startAfter: '6' })), []);
    assert.equal((await collect(new JsonlFileSource(path, { startAfter: '-1' }))).flat().length, 7);
    assert.throws(() => new JsonlFileSource(path, { startAfter: 'x' }), /startAfter/);
  });

  test('an empty file: done() resolves without a batch', async () => {
    assert.deepEqual(await collect(new JsonlFileSource(file(''))), []);
  });

  test('a handler error propagates: done() rejects with it and no later batch is delivered', async () => {
    const source = new JsonlFileSource(file(lines(20)), { batchSize: 5 });
    const boom = new Error('model failed');
    const seen: string[] = [];
    await source.start(async (batch) => {
      seen.push(batch.records[0].position.offset);
      if (seen.length === 2) throw boom;
    });
    await assert.rejects(source.done(), (error) => error === boom);
    assert.deepEqual(seen, ['0', '5']);
    assert.equal(source.lastHandledOffset(), '4', 'the failed batch is not marked handled');
    await source.stop();
    await source.stop();
  });

  test('a missing file rejects start() (and done()) with E_SOURCE', async () => {
    const source = new JsonlFileSource(join(dir, 'missing.jsonl'));
    await assert.rejects(
      source.start(async () => {}),
      (error) => isSupsupError(error) && error.code === 'E_SOURCE' && !error.retriable,
    );
    await assert.rejects(source.done(), /missing\.jsonl/);
  });

  test('an over-long line is capped and then fails the decoder size check', async () => {
    const long = `{"x":[${'1,'.repeat(50_000)}1]}`;
    const path = file(`{"x":[1,2]}\n${long}\n{"x":[3,4]}\n`);
    const values: Buffer[] = [];
    const source = new JsonlFileSource(path, { maxLineBytes: 1000 });
    await source.start(async (batch) => {
      for (const r of batch.records) if (r.value) values.push(r.value);
    });
    await source.done();
    assert.equal(values.length, 3);
    assert.equal(values[1].length, 1001);
    const outcome = decodeRecord(
      {
        position: { topic: 'file', partition: 0, offset: '1' },
        key: null,
        value: values[1],
        headers: {},
        timestamp: 0,
      },
      { dim: 2, maxBytes: 1000, classes: 2 },
    );
    assert.ok(!outcome.ok && outcome.letter.reason === 'E_RECORD_TOO_LARGE');
    assert.equal(values[2].toString(), '{"x":[3,4]}');
  });

  test('maxBatchBytes cuts batches early', async () => {
    const batches = await collect(new JsonlFileSource(file(lines(6)), { batchSize: 100, maxBatchBytes: 40 }));
    assert.ok(batches.length >= 3, `${batches.length} batches`);
    assert.equal(batches.flat().length, 6);
  });

  test('stop() during a batch: waits for it, delivers nothing more, resolves done(); idempotent', async () => {
    const source = new JsonlFileSource(file(lines(50)), { batchSize: 5 });
    let batches = 0;
    let release!: () => void;
    const inHandler = new Promise<void>((resolve) => {
      release = resolve;
    });
    let finishedBatch = false;
    await source.start(async () => {
      batches++;
      if (batches === 2) {
        release();
        await new Promise((r) => setTimeout(r, 30));
        finishedBatch = true;
      }
    });
    await inHandler;
    const first = source.stop();
    assert.equal(source.stop(), first, 'the same promise');
    await first;
    assert.ok(finishedBatch, 'the batch in flight finished before stop() resolved');
    await source.done();
    assert.equal(batches, 2);
    assert.equal(source.lastHandledOffset(), '9');
  });
});

describe('StdinSource', () => {
  test('reads JSONL from any Readable, across chunk boundaries', async () => {
    const text = `${lines(5)}\n`;
    const chunks = [text.slice(0, 7), text.slice(7, 30), text.slice(30)].map((s) => Buffer.from(s));
    const source = new StdinSource(Readable.from(chunks), { batchSize: 2 });
    assert.equal(source.name, 'readable');
    const batches = await collect(source);
    assert.deepEqual(
      batches.flat().map(([offset, value]) => `${offset}:${JSON.parse(value).id}`),
      ['0:r0', '1:r1', '2:r2', '3:r3', '4:r4'],
    );
    assert.equal(batches[0].length, 2);
  });

  test('stop() unblocks a source waiting for input', async () => {
    const input = new PassThrough();
    const source = new StdinSource(input, { batchSize: 1, topic: 'stdin' });
    const seen: string[] = [];
    await source.start(async (batch) => {
      seen.push(`${batch.topic}/${batch.records[0].position.offset}`);
    });
    input.write('{"x":[1]}\n');
    await new Promise((r) => setTimeout(r, 20));
    const t0 = Date.now();
    await source.stop();
    await source.done();
    assert.ok(Date.now() - t0 < 1000);
    assert.deepEqual(seen, ['stdin/0']);
  });
});

describe('readLines', () => {
  test('caps long lines without buffering them', async () => {
    const big = Buffer.alloc(1_000_000, 0x61);
    const out: number[] = [];
    for await (const line of readLines(Readable.from([big, Buffer.from('\nok\n')]), 10))
      out.push(line.length);
    assert.deepEqual(out, [11, 2]);
  });
});

describe('JsonlFileSink', () => {
  test('appends JSON lines to the three files and fsyncs every write call', async () => {
    const results = join(dir, 'results.jsonl');
    const dead = join(dir, 'dead.jsonl');
    const events = join(dir, 'events.jsonl');
    const probe = await open(join(dir, 'probe'), 'w');
    const fileHandleProto = Object.getPrototypeOf(probe) as { sync: () => Promise<void> };
    await probe.close();
    const sync = mock.method(fileHandleProto, 'sync');
    try {
      // A new file also fsyncs its directory once (so the file itself survives a crash).
      const fresh = new JsonlFileSink(join(dir, 'fresh.jsonl'), join(dir, 'fresh-d'), join(dir, 'fresh-e'));
      await fresh.writeResults([RESULT]);
      assert.equal(sync.mock.callCount(), 2, 'file + directory');
      await fresh.writeResults([RESULT]);
      assert.equal(sync.mock.callCount(), 3, 'file only');
      await fresh.close();
      sync.mock.resetCalls();

      for (const path of [results, dead, events]) writeFileSync(path, '');
      const sink = new JsonlFileSink(results, dead, events);
      await sink.writeResults([RESULT, { ...RESULT, id: 'r2' }]);
      assert.equal(sync.mock.callCount(), 1, 'one fsync per write call');
      await sink.writeResults([]);
      assert.equal(sync.mock.callCount(), 1, 'an empty write touches nothing');
      const letter: DeadLetter = {
        source: { topic: 'file', partition: 0, offset: '7' },
        reason: 'E_RECORD_JSON',
        detail: 'invalid JSON',
        key: null,
        value: Buffer.from('{oops'),
      };
      await Promise.all([
        sink.writeDeadLetters([letter]),
        sink.writeEvents([{ type: 'mask_frozen', task: 1, steps: 10, time: 't' }]),
        sink.writeResults([{ ...RESULT, id: 'r3' }]),
      ]);
      assert.equal(sync.mock.callCount(), 4);
      await sink.close();
      await sink.close();
      await assert.rejects(
        sink.writeResults([RESULT]),
        (e) => e instanceof SupsupError && e.code === 'E_SINK',
      );

      const resultLines = readFileSync(results, 'utf8').trimEnd().split('\n');
      assert.deepEqual(
        resultLines.map((l) => JSON.parse(l).id),
        ['r1', 'r2', 'r3'],
      );
      assert.deepEqual(JSON.parse(resultLines[0]), RESULT);
      const deadLine = JSON.parse(readFileSync(dead, 'utf8'));
      assert.equal(deadLine.reason, 'E_RECORD_JSON');
      assert.equal(Buffer.from(deadLine.valueBase64, 'base64').toString(), '{oops');
      assert.equal(JSON.parse(readFileSync(events, 'utf8')).type, 'mask_frozen');

      // Appends on reopen.
      const again = new JsonlFileSink(results, dead, events);
      await again.writeResults([{ ...RESULT, id: 'r4' }]);
      await again.close();
      assert.equal(readFileSync(results, 'utf8').trimEnd().split('\n').length, 4);
    } finally {
      sync.mock.restore();
    }
  });

  test('an unwritable path fails the write with E_SINK', async () => {
    const sink = new JsonlFileSink(join(dir, 'no', 'such', 'dir.jsonl'), join(dir, 'd2'), join(dir, 'e2'));
    await assert.rejects(sink.writeResults([RESULT]), (e) => isSupsupError(e) && e.code === 'E_SINK');
    await sink.close();
  });
});

describe('StdoutSink', () => {
  /** A Writable that accepts 64 bytes at a time and acknowledges slowly: write() returns false often. */
  function slowWritable(): { stream: Writable; text: () => string; drains: () => number } {
    const chunks: Buffer[] = [];
    let drains = 0;
    const stream = new Writable({
      highWaterMark: 64,
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(chunk);
        setTimeout(callback, 2);
      },
    });
    stream.on('drain', () => drains++);
    return { stream, text: () => Buffer.concat(chunks).toString(), drains: () => drains };
  }

  test('results to out, dead letters and events to err, respecting backpressure', async () => {
    const out = slowWritable();
    const err = slowWritable();
    const sink = new StdoutSink({ out: out.stream, err: err.stream });
    for (let i = 0; i < 5; i++) await sink.writeResults([{ ...RESULT, id: `r${i}` }]);
    assert.ok(out.drains() >= 1, 'waited for drain');
    await sink.writeDeadLetters([
      {
        source: { topic: 'stdin', partition: 0, offset: '1' },
        reason: 'E_RECORD_ID',
        detail: 'bad id',
        key: null,
        value: null,
      },
    ]);
    await sink.writeEvents([{ type: 'budget_reached', masks: 3, at: RESULT.source, time: 't' }]);
    await sink.close();
    await sink.close();
    const results = out
      .text()
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      results.map((r) => r.id),
      ['r0', 'r1', 'r2', 'r3', 'r4'],
    );
    const errLines = err
      .text()
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      errLines.map((l) => [l.kind, l.reason ?? l.type]),
      [
        ['dead_letter', 'E_RECORD_ID'],
        ['event', 'budget_reached'],
      ],
    );
  });

  test('a broken output stream fails writes with E_SINK instead of crashing', async () => {
    const broken = new Writable({
      write(_chunk, _encoding, callback) {
        callback(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
      },
    });
    const sink = new StdoutSink({ out: broken, err: new PassThrough() });
    await assert.rejects(sink.writeResults([RESULT]), (e) => isSupsupError(e) && e.code === 'E_SINK');
    await assert.rejects(sink.writeResults([RESULT]), (e) => isSupsupError(e) && e.code === 'E_SINK');
  });
});
