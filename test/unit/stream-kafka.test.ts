/** Broker-free parts of src/stream/kafka.ts: log adapter, error mapping, option validation. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import kafkajs from 'kafkajs';
import { isSupsupError, SupsupError } from '../../src/errors.ts';
import {
  isRetriableKafkaError,
  KafkaSink,
  KafkaSource,
  kafkaLogCreator,
  sendParts,
  toKafkaSupsupError,
} from '../../src/stream/kafka.ts';

const {
  logLevel,
  KafkaJSConnectionError,
  KafkaJSNonRetriableError,
  KafkaJSNumberOfRetriesExceeded,
  KafkaJSProtocolError,
} = kafkajs;

describe('kafkaLogCreator', () => {
  test('forwards level, message and extras (namespace added, secrets redacted, timestamp dropped)', () => {
    const lines: Array<[string, string, Record<string, unknown>]> = [];
    const log = kafkaLogCreator((level, message, extra) => lines.push([level, message, extra]))(
      logLevel.INFO,
    );
    const entry = (level: number, message: string, extra: Record<string, unknown> = {}) => ({
      namespace: 'Consumer',
      level,
      label: 'X',
      log: { timestamp: '2024-01-01T00:00:00Z', message, ...extra },
    });
    log(entry(logLevel.ERROR, 'crash', { groupId: 'g', error: 'boom' }));
    log(entry(logLevel.WARN, 'slow'));
    log(entry(logLevel.INFO, 'joined', { sasl: { password: 'p' }, password: 'p' }));
    log(entry(logLevel.DEBUG, 'fetch'));
    assert.deepEqual(lines, [
      ['error', 'crash', { namespace: 'Consumer', groupId: 'g', error: 'boom' }],
      ['warn', 'slow', { namespace: 'Consumer' }],
      ['info', 'joined', { namespace: 'Consumer', sasl: '[redacted]', password: '[redacted]' }],
      ['debug', 'fetch', { namespace: 'Consumer' }],
    ]);
  });

  test('a throwing callback never throws into kafkajs', () => {
    const log = kafkaLogCreator(() => {
      throw new Error('logger down');
    })(logLevel.INFO);
    assert.doesNotThrow(() =>
      log({ namespace: 'n', level: logLevel.ERROR, label: 'ERROR', log: { timestamp: 't', message: 'm' } }),
    );
  });
});

describe('kafka error mapping', () => {
  test('retriable follows kafkajs: the flag, or retries exhausted', () => {
    const connection = new KafkaJSConnectionError('connection refused');
    const fatal = new KafkaJSNonRetriableError('bad config');
    const exhausted = new KafkaJSNumberOfRetriesExceeded(connection, { retryCount: 5, retryTime: 1000 });
    const protocol = new KafkaJSProtocolError('UNKNOWN_TOPIC_OR_PARTITION');
    assert.equal(isRetriableKafkaError(connection), true);
    assert.equal(isRetriableKafkaError(fatal), false);
    assert.equal(isRetriableKafkaError(exhausted), true);
    assert.equal(isRetriableKafkaError(new Error('plain')), false);
    assert.equal(isRetriableKafkaError(undefined), false);
    assert.equal(typeof isRetriableKafkaError(protocol), 'boolean');

    const mapped = toKafkaSupsupError(connection, 'E_SINK', 'producing failed');
    assert.ok(isSupsupError(mapped));
    assert.equal(mapped.code, 'E_SINK');
    assert.equal(mapped.retriable, true);
    assert.equal(mapped.cause, connection);
    assert.equal(mapped.message, 'producing failed: connection refused');
    assert.equal(mapped.details.kafkaError, 'KafkaJSConnectionError');
    assert.equal(toKafkaSupsupError(fatal, 'E_SOURCE', 'x').retriable, false);
    const own = new SupsupError('E_CONFIG', 'already typed');
    assert.equal(toKafkaSupsupError(own, 'E_SOURCE', 'x'), own);
  });
});

describe('option validation', () => {
  const base = { brokers: ['127.0.0.1:1'], clientId: 'c', groupId: 'g', topic: 't' };
  const isConfig = (e: unknown) => isSupsupError(e) && e.code === 'E_CONFIG';

  test('KafkaSource rejects unsupported or invalid options with E_CONFIG', () => {
    assert.throws(() => new KafkaSource({ ...base, maxInFlightBatches: 2 }), isConfig);
    assert.throws(() => new KafkaSource({ ...base, topic: '' }), isConfig);
    assert.throws(() => new KafkaSource({ ...base, brokers: [] }), isConfig);
    assert.throws(() => new KafkaSource({ ...base, maxBatchSize: 0 }), isConfig);
    assert.throws(() => new KafkaSource({ ...base, maxHandlerAttempts: 1.5 }), isConfig);
    const source = new KafkaSource({ ...base, maxInFlightBatches: 1, logLevel: 'nothing' });
    assert.equal(source.name, 'kafka:t');
    assert.equal(source.joined(), false);
  });

  test('stop() before start() resolves, is idempotent, and start() afterwards fails', async () => {
    const source = new KafkaSource({ ...base, logLevel: 'nothing' });
    const first = source.stop();
    assert.equal(source.stop(), first);
    await first;
    await source.done();
    await assert.rejects(
      source.start(async () => {}),
      (e) => isSupsupError(e) && e.code === 'E_SOURCE',
    );
  });

  test('KafkaSink validates topics and acks; empty writes need no broker; close is idempotent', async () => {
    const sinkBase = {
      brokers: ['127.0.0.1:1'],
      clientId: 'c',
      resultsTopic: 'r',
      deadLetterTopic: 'd',
      eventsTopic: 'e',
    };
    assert.throws(() => new KafkaSink({ ...sinkBase, deadLetterTopic: '' }), isConfig);
    assert.throws(() => new KafkaSink({ ...sinkBase, acks: 0 as unknown as -1 }), isConfig);
    const sink = new KafkaSink({ ...sinkBase, logLevel: 'nothing' });
    await sink.writeResults([]);
    await sink.writeDeadLetters([]);
    assert.equal(sink.connected(), false);
    await sink.close();
    await sink.close();
    await assert.rejects(
      sink.writeEvents([{ type: 'mask_frozen', task: 0, steps: 1, time: 't' }]),
      (e) => isSupsupError(e) && e.code === 'E_SINK' && !e.retriable,
    );
  });
});

describe('sendParts', () => {
  const message = (i: number, bytes = 10) => ({
    key: `k${i}`,
    value: 'v'.repeat(bytes),
    headers: { h: 'x' },
  });

  test('cuts messages in order into runs bounded by count and by bytes', () => {
    const messages = Array.from({ length: 10 }, (_, i) => message(i));
    const byCount = sendParts(messages, 4, 1 << 20);
    assert.deepEqual(
      byCount.map((p) => p.length),
      [4, 4, 2],
    );
    assert.deepEqual(byCount.flat(), messages, 'every message once, in order');
    // Each message: 32 overhead + key 2 + value 10 + header (10 + 1 + 1) = 56 bytes.
    assert.deepEqual(
      sendParts(messages, 100, 3 * 56).map((p) => p.length),
      [3, 3, 3, 1],
    );
    assert.deepEqual(
      sendParts(messages, 100, 3 * 56 - 1).map((p) => p.length),
      [2, 2, 2, 2, 2],
    );
  });

  test('a message larger than the byte budget goes alone; UTF-8 bytes count, not characters', () => {
    const big = message(1, 5000);
    const parts = sendParts([message(0), big, message(2)], 100, 1000);
    assert.deepEqual(
      parts.map((p) => p.map((m) => m.key)),
      [['k0'], ['k1'], ['k2']],
    );
    const wide = { key: null, value: 'ü'.repeat(100) }; // 200 bytes in UTF-8
    assert.equal(sendParts([wide, wide], 100, 2 * (32 + 200)).length, 1);
    assert.equal(sendParts([wide, wide], 100, 2 * (32 + 200) - 1).length, 2);
    assert.deepEqual(sendParts([], 10, 10), []);
  });
});
