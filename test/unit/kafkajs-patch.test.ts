/**
 * patches/kafkajs+2.2.4+001+encoding.patch (applied by `npm ci` through patch-package) rewrites how kafkajs
 * encodes produced records: one exact allocation per record with its headers written inline, varints
 * written in place, 32-bit varlongs without Long arithmetic, and a linear grouping of messages by
 * partition; an uncompressed batch written in one pass into one buffer (no encoder per record), and
 * CRC32C eight bytes at a time. These tests hold the patched encoder to the Kafka record format
 * written out here from the protocol spec, to kafkajs's own (unpatched) decoder, to kafkajs's general
 * batch path byte for byte, and the CRC to a bitwise one.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';

const require = createRequire(import.meta.url);

type HeaderInput = Record<string, string | Buffer | Array<string | Buffer>>;
interface RecordInput {
  readonly key?: string | Buffer | null;
  readonly value: string | Buffer | null;
  readonly headers?: HeaderInput;
  readonly offsetDelta: number;
  readonly timestampDelta: number;
}
interface KafkaEncoder {
  readonly buf: Buffer;
  readonly buffer: Buffer;
}
interface DecodedRecord {
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: Record<string, Buffer | Buffer[]>;
  readonly offset: string;
  readonly timestamp: string;
}

const Record = require('kafkajs/src/protocol/recordBatch/record/v0') as (input: RecordInput) => KafkaEncoder;
const groupMessagesPerPartition = require('kafkajs/src/producer/groupMessagesPerPartition') as (input: {
  topic: string;
  partitionMetadata: readonly unknown[];
  messages: readonly { value: string }[];
  partitioner: (input: { message: { value: string } }) => number;
}) => Record<string, { value: string }[]>;
const produceV3 = require('kafkajs/src/protocol/requests/produce/v3/request') as (input: {
  acks: number;
  timeout: number;
  topicData: readonly {
    topic: string;
    partitions: readonly {
      partition: number;
      messages: readonly (Omit<RecordInput, 'offsetDelta' | 'timestampDelta'> & { timestamp?: number })[];
    }[];
  }[];
}) => { encode(): Promise<KafkaEncoder> };
const Decoder = require('kafkajs/src/protocol/decoder') as new (
  buffer: Buffer,
) => {
  readInt16(): number;
  readInt32(): number;
  readString(): string;
};
const decodeRecordBatch = require('kafkajs/src/protocol/recordBatch/v0/decoder') as (
  decoder: unknown,
) => Promise<{
  records: DecodedRecord[];
}>;

/** Unsigned LEB128 of a zigzag-encoded integer (Kafka varint / varlong), with BigInt arithmetic. */
function varint(value: number | bigint): number[] {
  const v = BigInt(value);
  let z = v >= 0n ? v << 1n : (-v << 1n) - 1n;
  const bytes: number[] = [];
  while (z >= 0x80n) {
    bytes.push(Number(z & 0x7fn) | 0x80);
    z >>= 7n;
  }
  bytes.push(Number(z));
  return bytes;
}

function varBytes(data: string | Buffer | null | undefined): number[] {
  if (data === null || data === undefined) return varint(-1);
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  return [...varint(bytes.length), ...bytes];
}

/** The Kafka record (magic 2) of the protocol guide: length, attributes, deltas, key, value, headers. */
function specRecord(input: RecordInput): Buffer {
  const headers = Object.entries(input.headers ?? {}).flatMap(([key, value]) =>
    Array.isArray(value) ? value.map((v) => [key, v] as const) : [[key, value] as const],
  );
  const body = [
    0,
    ...varint(input.timestampDelta),
    ...varint(input.offsetDelta),
    ...varBytes(input.key),
    ...varBytes(input.value),
    ...varint(headers.length),
    ...headers.flatMap(([key, value]) => [...varBytes(key), ...varBytes(value)]),
  ];
  return Buffer.from([...varint(body.length), ...body]);
}

const CASES: RecordInput[] = [
  { value: 'v', offsetDelta: 0, timestampDelta: 0 },
  {
    key: 'bench-in-1/0/12345',
    value: '{"id":"bench-in-1/0/12345","task":3,"confidence":0.97}',
    headers: { 'x-source': 'bench-in-1/0/12345', 'content-type': 'application/json' },
    offsetDelta: 300,
    timestampDelta: 1,
  },
  {
    key: Buffer.from([0, 255, 7]),
    value: Buffer.alloc(3136, 0x41),
    headers: { y: '7', repeated: ['a', Buffer.from('b')], 'ü-name': 'wert ä' },
    offsetDelta: 70_000,
    timestampDelta: -5,
  },
  { key: null, value: null, offsetDelta: 2 ** 31 - 1, timestampDelta: 2 ** 31 - 1 },
  // Beyond 32 bits the varlong takes kafkajs's Long path, unchanged by the patch.
  { value: 'late', offsetDelta: 1, timestampDelta: 2 ** 35 + 3 },
  { value: 'early', offsetDelta: 1, timestampDelta: -(2 ** 31) - 9 },
];

test('patched kafkajs encodes each record exactly as the Kafka record format, in one exact allocation', () => {
  for (const input of CASES) {
    const encoded = Record(input);
    const expected = specRecord(input);
    assert.deepEqual(encoded.buffer, expected, `record ${JSON.stringify(input.key ?? null)}`);
    if (Math.abs(input.timestampDelta) < 2 ** 31) {
      assert.equal(
        encoded.buf.length,
        expected.length,
        'one buffer of the record size (kafkajs unpatched allocates 512 bytes and more per record)',
      );
    }
  }
});

test('a patched produce request decodes, with kafkajs’s own decoder, to the messages sent', async () => {
  type Message = Omit<RecordInput, 'offsetDelta' | 'timestampDelta'> & { timestamp?: number };
  const messages: Message[] = [
    { key: 'a', value: 'first', headers: { 'x-source': 't/0/1', 'content-type': 'application/json' } },
    { key: null, value: Buffer.from([1, 2, 3]), headers: { y: '3' } },
    { key: 'c', value: 'third', timestamp: 1_700_000_000_123 },
  ];
  const request = produceV3({
    acks: -1,
    timeout: 30_000,
    topicData: [{ topic: 'results', partitions: [{ partition: 4, messages }] }],
  });
  const encoded = await request.encode();
  assert.equal(encoded.buf.length, encoded.buffer.length, 'one buffer of the request size');
  const decoder = new Decoder(encoded.buffer);
  assert.equal(decoder.readInt16(), -1, 'null transactional id');
  assert.equal(decoder.readInt16(), -1, 'acks');
  assert.equal(decoder.readInt32(), 30_000);
  assert.equal(decoder.readInt32(), 1, 'one topic');
  assert.equal(decoder.readString(), 'results');
  assert.equal(decoder.readInt32(), 1, 'one partition');
  assert.equal(decoder.readInt32(), 4);
  decoder.readInt32(); // record set size
  const batch = await decodeRecordBatch(decoder);
  assert.equal(batch.records.length, 3);
  assert.deepEqual(
    batch.records.map((r) => [r.offset, r.key?.toString() ?? null, r.value?.toString('hex')]),
    [
      ['0', 'a', Buffer.from('first').toString('hex')],
      ['1', null, '010203'],
      ['2', 'c', Buffer.from('third').toString('hex')],
    ],
  );
  assert.deepEqual(
    Object.fromEntries(Object.entries(batch.records[0]?.headers ?? {}).map(([k, v]) => [k, String(v)])),
    { 'x-source': 't/0/1', 'content-type': 'application/json' },
  );
  assert.equal(String(batch.records[1]?.headers.y), '3');
  assert.equal(batch.records[2]?.timestamp, '1700000000123');
});

test('messages are grouped by partition in their order, in one pass', () => {
  const messages = Array.from({ length: 3000 }, (_, i) => ({ value: String(i) }));
  const grouped = groupMessagesPerPartition({
    topic: 't',
    partitionMetadata: [{}, {}, {}],
    messages,
    partitioner: ({ message }) => Number(message.value) % 3,
  });
  assert.deepEqual(Object.keys(grouped).sort(), ['0', '1', '2']);
  for (const [partition, list] of Object.entries(grouped)) {
    assert.deepEqual(
      list.map((m) => m.value),
      messages.filter((_, i) => i % 3 === Number(partition)).map((m) => m.value),
    );
  }
  assert.deepEqual(
    groupMessagesPerPartition({ topic: 't', partitionMetadata: [], messages, partitioner: () => 0 }),
    {},
  );
});

// ---------------------------------------------------------------------------------------------------------------
// One-pass uncompressed batches and the slicing-by-8 CRC32C

type PartitionMessage = Omit<RecordInput, 'offsetDelta' | 'timestampDelta'> & { timestamp?: number | string };
interface EntryInput {
  readonly partition: number;
  readonly messages: readonly PartitionMessage[];
  readonly dateNow: number;
  readonly firstTimestamp: number | string;
  readonly maxTimestamp: number | string;
  readonly producerId: unknown;
  readonly producerEpoch: number;
  readonly firstSequence: number;
  readonly transactional: boolean;
}
interface GeneralEncoder extends KafkaEncoder {
  writeInt32(value: number): GeneralEncoder;
  writeEncoder(value: KafkaEncoder): GeneralEncoder;
  size(): number;
}

const { RecordBatch, uncompressedPartitionEntry } = require('kafkajs/src/protocol/recordBatch/v0') as {
  RecordBatch(input: Record<string, unknown>): Promise<GeneralEncoder>;
  uncompressedPartitionEntry(input: EntryInput): KafkaEncoder | null;
};
const Encoder = require('kafkajs/src/protocol/encoder') as new () => GeneralEncoder;
const Long = require('kafkajs/src/utils/long') as {
  fromInt(value: number): unknown;
  fromValue(value: unknown): unknown;
};
const crc32C = require('kafkajs/src/protocol/recordBatch/crc32C/crc32C') as (buffer: Buffer) => number;

/** CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) one bit at a time. */
function bitwiseCrc32C(buffer: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of buffer) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** kafkajs's general path: one Record encoder per message, RecordBatch over them, the entry around it. */
async function generalEntry(input: EntryInput): Promise<Buffer> {
  const records = input.messages.map((message, i) =>
    Record({
      key: message.key,
      value: message.value,
      headers: message.headers,
      offsetDelta: i,
      timestampDelta: Number(message.timestamp || input.dateNow) - Number(input.firstTimestamp),
    }),
  );
  const batch = await RecordBatch({
    records,
    firstTimestamp: input.firstTimestamp,
    maxTimestamp: input.maxTimestamp,
    producerId: input.producerId,
    producerEpoch: input.producerEpoch,
    firstSequence: input.firstSequence,
    transactional: input.transactional,
    lastOffsetDelta: records.length - 1,
  });
  return new Encoder().writeInt32(input.partition).writeInt32(batch.size()).writeEncoder(batch).buffer;
}

function entryInput(messages: readonly PartitionMessage[], overrides: Partial<EntryInput> = {}): EntryInput {
  return {
    partition: 3,
    messages,
    dateNow: 1_764_900_000_000,
    firstTimestamp: 1_764_900_000_000,
    maxTimestamp: 1_764_900_000_000,
    producerId: Long.fromInt(-1),
    producerEpoch: 0,
    firstSequence: 0,
    transactional: false,
    ...overrides,
  };
}

test('the patched CRC32C is the Castagnoli CRC of every length, eight bytes at a time', () => {
  assert.equal(crc32C(Buffer.from('123456789')), 0xe3069283, 'the standard check value');
  let seed = 7;
  const bytes = Buffer.alloc(1031);
  for (let i = 0; i < bytes.length; i++) {
    seed = (seed * 1_103_515_245 + 12_345) >>> 0;
    bytes[i] = seed >>> 24;
  }
  for (let length = 0; length <= bytes.length; length += length < 40 ? 1 : 97) {
    for (const start of [0, 1, 3]) {
      const slice = bytes.subarray(start, start + length);
      assert.equal(crc32C(slice), bitwiseCrc32C(slice), `length ${slice.length} at ${start}`);
    }
  }
});

test('an uncompressed partition entry written in one pass is byte for byte kafkajs’s general encoding', async () => {
  const results: PartitionMessage[] = Array.from({ length: 300 }, (_, i) => ({
    key: `bench-in/0/${i}`,
    value: `{"id":"bench-in/0/${i}","task":0,"prediction":${i % 10},"confidence":0.9${i}}`,
    headers: { 'x-source': `bench-in/0/${i}`, 'content-type': 'application/json' },
  }));
  const mixed: PartitionMessage[] = CASES.map(({ offsetDelta, timestampDelta, ...message }, i) => ({
    ...message,
    timestamp: 1_764_900_000_000 + timestampDelta + i,
  }));
  const cases: Array<[string, EntryInput]> = [
    ['300 results as the daemon sends them', entryInput(results)],
    [
      'keys, values and headers of every kind, own timestamps',
      entryInput(mixed, { maxTimestamp: 1_764_900_000_000 + 2 ** 35 }),
    ],
    [
      'string timestamps (kafkajs messages carry them as strings)',
      entryInput([{ value: 'a', timestamp: '1764900000005' }, { value: 'b' }], {
        firstTimestamp: '1764900000005',
        maxTimestamp: '1764900000005',
      }),
    ],
    [
      'idempotent and transactional fields',
      entryInput([{ key: 'k', value: '' }], {
        producerId: Long.fromValue(77),
        producerEpoch: 2,
        firstSequence: 40,
        transactional: true,
        partition: 0,
      }),
    ],
  ];
  for (const [name, input] of cases) {
    const fast = uncompressedPartitionEntry(input);
    assert.ok(fast !== null, name);
    const expected = await generalEntry(input);
    assert.deepEqual(fast.buffer, expected, name);
    assert.equal(fast.buf.length, expected.length, `${name}: one buffer of the entry's exact size`);
    // The stored CRC covers the batch from its attributes to its end.
    const batch = fast.buffer.subarray(8);
    assert.equal(batch.readUInt32BE(17), bitwiseCrc32C(batch.subarray(21)), `${name}: CRC`);
  }
});

test('a message the one-pass encoder does not take goes the general way, with its error', async () => {
  const input = entryInput([{ value: 'ok' }, { value: 7 as unknown as string }]);
  assert.equal(uncompressedPartitionEntry(input), null);
  await assert.rejects(generalEntry(input), TypeError);
  assert.equal(uncompressedPartitionEntry(entryInput([])), null, 'no messages');
  const nullHeader = entryInput([{ value: 'v', headers: { h: null as unknown as string } }]);
  assert.equal(uncompressedPartitionEntry(nullHeader), null, 'a null header value');
  const request = produceV3({
    acks: -1,
    timeout: 1000,
    topicData: [{ topic: 't', partitions: [{ partition: 0, messages: nullHeader.messages as never }] }],
  });
  await assert.rejects(request.encode(), TypeError, 'the produce request fails as kafkajs does');
});

const frameRequest = require('kafkajs/src/protocol/request') as (input: {
  correlationId: number;
  clientId: string | null;
  request: { apiKey: number; apiVersion: number; encode(): Promise<KafkaEncoder> };
}) => Promise<KafkaEncoder>;

test('a framed request is its size, header and payload, in one buffer of that size', async () => {
  const payload = await produceV3({
    acks: 1,
    timeout: 500,
    topicData: [{ topic: 'results', partitions: [{ partition: 0, messages: [{ key: 'k', value: 'v' }] }] }],
  }).encode();
  for (const clientId of ['supsupd', 'ü-client', null]) {
    const framed = await frameRequest({
      correlationId: 77,
      clientId,
      request: { apiKey: 0, apiVersion: 3, encode: async () => payload },
    });
    const id = clientId === null ? null : Buffer.from(clientId, 'utf8');
    const header = Buffer.alloc(10 + (id?.length ?? 0));
    header.writeInt16BE(0, 0);
    header.writeInt16BE(3, 2);
    header.writeInt32BE(77, 4);
    header.writeInt16BE(id === null ? -1 : id.length, 8);
    id?.copy(header, 10);
    const body = Buffer.concat([header, payload.buffer]);
    const size = Buffer.alloc(4);
    size.writeInt32BE(body.length, 0);
    assert.deepEqual(framed.buffer, Buffer.concat([size, body]), `client id ${clientId}`);
    assert.equal(framed.buf.length, 4 + body.length, `client id ${clientId}: one buffer of that size`);
  }
});

test('fetched records decode to the offsets, timestamps and headers kafkajs gives, by number or by Long', async () => {
  const base = 1_764_900_000_000;
  const messages: PartitionMessage[] = [
    {
      value: 'a',
      timestamp: base,
      headers: { h: 'one', ['__proto__']: 'p', constructor: 'c' } as HeaderInput,
    },
    { value: 'b', timestamp: base + 5, headers: { h: ['two', 'three'], y: '7' } },
    // A delta past a 4-byte varint takes the Long path.
    { value: 'c', timestamp: base + 2 ** 30 },
    { value: 'd', timestamp: base - 1 },
  ];
  const entry = uncompressedPartitionEntry(
    entryInput(messages, { firstTimestamp: base - 1, maxTimestamp: base + 2 ** 30 }),
  );
  assert.ok(entry !== null);
  for (const firstOffset of [0n, 41n, 999_999_999_999_999n, 2n ** 62n + 3n]) {
    const batch = Buffer.from(entry.buffer.subarray(8));
    batch.writeBigInt64BE(firstOffset, 0);
    const { records } = await decodeRecordBatch(new Decoder(batch));
    assert.deepEqual(
      records.map((r) => [r.offset, r.timestamp]),
      messages.map((m, i) => [String(firstOffset + BigInt(i)), String(m.timestamp)]),
      `first offset ${firstOffset}`,
    );
    const [first, second] = records;
    assert.ok(first !== undefined && second !== undefined);
    assert.deepEqual(Object.keys(first.headers), ['h', '__proto__', 'constructor']);
    assert.equal(String(first.headers.h), 'one');
    assert.equal(Object.getPrototypeOf(first.headers), Object.prototype, 'a header cannot set the prototype');
    // kafkajs reads an inherited property as a value already there: such a header becomes a pair.
    for (const [name, sent] of [
      ['__proto__', 'p'],
      ['constructor', 'c'],
    ] as const) {
      const pair = Object.getOwnPropertyDescriptor(first.headers, name)?.value as unknown[];
      assert.ok(Array.isArray(pair) && pair.length === 2 && String(pair[1]) === sent, name);
    }
    assert.deepEqual(
      (second.headers.h as Buffer[]).map(String),
      ['two', 'three'],
      'a repeated header: its values in order',
    );
  }
});
