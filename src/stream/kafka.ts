/**
 * Kafka ends of the stream, on kafkajs 2.2.4 (patched: see docs/adr/0009-kafka-client.md). The parts:
 *   kafka/client.ts          connection options, kafkajs's log lines forwarded with secrets redacted
 *   kafka/errors.ts          kafkajs errors: retriable, rebalance, their SupsupError form
 *   kafka/source.ts          KafkaSource: a consumer-group member with fetch-ahead and commit-behind
 *   kafka/source-options.ts  its options and events
 *   kafka/group-offsets.ts   the group's committed offsets, read and moved back (start-up check, replay)
 *   kafka/raw-record.ts      a fetched message as a RawRecord
 *   kafka/sink.ts            KafkaSink: results, dead letters and events, acked writes cut into requests
 *   kafka/partitioner.ts     kafkajs's default partitioner without its per-message costs (murmur2)
 */
export {
  type KafkaClientOptions,
  type KafkaLogCallback,
  type KafkaLogLevel,
  kafkaLogCreator,
  type LogLevelName,
} from './kafka/client.js';
export { isRetriableKafkaError, toKafkaSupsupError } from './kafka/errors.js';
export { fastDefaultPartitioner, murmur2 } from './kafka/partitioner.js';
export { KafkaSink, type KafkaSinkOptions, sendParts } from './kafka/sink.js';
export { KafkaSource } from './kafka/source.js';
export type { KafkaSourceEventMap, KafkaSourceOptions } from './kafka/source-options.js';
