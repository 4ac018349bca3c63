/** A fetched kafkajs message as the stream's RawRecord, and offset arithmetic on Kafka's decimal offsets. */
import type { KafkaMessage } from 'kafkajs';
import type { HeaderValue, RawRecord } from '../types.js';

export function toRawRecord(
  topic: string,
  partition: number,
  message: KafkaMessage,
  timestamp: number,
): RawRecord {
  // A null-prototype object: header names such as "__proto__" stay plain keys.
  const headers: Record<string, HeaderValue> = Object.create(null);
  const source = message.headers;
  if (source) {
    for (const name of Object.keys(source)) {
      let value = source[name];
      // kafkajs gives repeated headers as an array: the last one wins (as Kafka's lastHeader()).
      if (Array.isArray(value)) value = value[value.length - 1];
      if (typeof value === 'string' || Buffer.isBuffer(value)) headers[name] = value;
    }
  }
  return {
    position: { topic, partition, offset: message.offset },
    key: message.key ?? null,
    value: message.value ?? null,
    headers,
    timestamp,
  };
}

export function maxOffset(a: string, b: string): bigint {
  const x = BigInt(a);
  const y = BigInt(b);
  return x > y ? x : y;
}
