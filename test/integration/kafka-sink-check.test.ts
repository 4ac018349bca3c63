/**
 * KafkaSink.check() on a real single-node KRaft Kafka (test/harness/kafka.ts): a sink whose topic does not exist
 * is refused at start with E_SINK naming it, instead of failing the first write after a batch was learnt and
 * committed. Needs Java and Maven (skips loudly without them).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { isSupsupError } from '../../src/errors.ts';
import { KafkaSink } from '../../src/stream/kafka.ts';
import { requireKafkaOrSkip, startKafka } from '../harness/kafka.ts';

test('a Kafka sink checks at start that its topics exist', { timeout: 180_000 }, async (t) => {
  if (!requireKafkaOrSkip(t)) return;
  const broker = await startKafka();
  const kafka = new Kafka({
    brokers: broker.brokers,
    clientId: 'sink-check-test',
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  try {
    await admin.connect();
    const created = await admin.createTopics({
      waitForLeaders: true,
      topics: ['results', 'dead-letters'].map((topic) => ({ topic, numPartitions: 1, replicationFactor: 1 })),
    });
    assert.equal(created, true);
    const options = {
      brokers: broker.brokers,
      clientId: 'sink-check',
      logLevel: 'nothing' as const,
      resultsTopic: 'results',
      deadLetterTopic: 'dead-letters',
      eventsTopic: 'events',
    };
    const sink = new KafkaSink(options);
    await assert.rejects(sink.check(), (error: unknown) => {
      assert.ok(isSupsupError(error), String(error));
      assert.equal(error.code, 'E_SINK');
      assert.equal(error.retriable, false);
      assert.match(error.message, /topic events does not exist; create it first/);
      return true;
    });
    await sink.close();
    await admin.createTopics({
      waitForLeaders: true,
      topics: [{ topic: 'events', numPartitions: 1, replicationFactor: 1 }],
    });
    const fixed = new KafkaSink(options);
    await fixed.check();
    assert.equal(fixed.connected(), true, 'the check also connects the producer');
    await fixed.close();
  } finally {
    await admin.disconnect().catch(() => {});
    await broker.stop();
  }
});
