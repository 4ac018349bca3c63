/**
 * The Kafka sink of the stream, on kafkajs 2.2.4: a producer with `idempotent: false` (experimental in
 * kafkajs), `maxInFlightRequests: 1`, `allowAutoTopicCreation: false`, acks -1 by default; every write
 * resolves after the broker acked.
 */
import type { Message, Producer } from 'kafkajs';
import { encodeDeadLetterHeaders, encodeEvent, positionKey, resultJson } from '../../codec/record-codec.js';
import { SupsupError } from '../../errors.js';
import { positiveInt } from '../checks.js';
import type { BatchDecision, DaemonEvent, DeadLetter, ResultRecord, Sink } from '../types.js';
import { createKafka, type KafkaClientOptions } from './client.js';
import { toKafkaSupsupError } from './errors.js';
import { fastDefaultPartitioner } from './partitioner.js';

export interface KafkaSinkOptions extends KafkaClientOptions {
  readonly resultsTopic: string;
  readonly deadLetterTopic: string;
  readonly eventsTopic: string;
  /** The decision log's topic (one message per learned micro-batch, keyed by partition); none when absent. */
  readonly decisionsTopic?: string;
  /** -1 (all in-sync replicas, default) or 1 (leader only). */
  readonly acks?: -1 | 1;
  /** Broker-side produce timeout in ms (default 30 s). */
  readonly timeoutMs?: number;
  /**
   * Messages per produce request (default 4096) and their key, value and header bytes (default
   * 768 KiB, under the broker's default 1 MiB `message.max.bytes` per record batch); bigger writes
   * are sent in order, one request after the other. A single message over the byte budget goes alone.
   */
  readonly maxMessagesPerSend?: number;
  readonly maxBytesPerSend?: number;
  /** Upper bound of close() (default 10 s). */
  readonly closeTimeoutMs?: number;
}

/** Results keyed by record id with header `x-source` = topic/partition/offset; dead letters with the DLQ headers. */
export class KafkaSink implements Sink {
  readonly name: string;
  private readonly options: KafkaSinkOptions;
  private readonly kafka: ReturnType<typeof createKafka>;
  private readonly producer: Producer;
  private readonly acks: -1 | 1;
  private readonly timeoutMs: number;
  private readonly maxMessagesPerSend: number;
  private readonly maxBytesPerSend: number;
  private connecting: Promise<void> | undefined;
  private isConnected = false;
  private closing: Promise<void> | undefined;

  constructor(options: KafkaSinkOptions) {
    for (const key of ['resultsTopic', 'deadLetterTopic', 'eventsTopic'] as const) {
      if (!options[key]) throw new SupsupError('E_CONFIG', `kafka sink: ${key} is required`);
    }
    const acks = options.acks ?? -1;
    if (acks !== -1 && acks !== 1)
      throw new SupsupError('E_CONFIG', `kafka sink: acks must be -1 or 1, got ${acks}`);
    this.options = options;
    this.name = `kafka:${options.resultsTopic}`;
    this.acks = acks;
    this.timeoutMs = positiveInt('timeoutMs', options.timeoutMs ?? 30_000);
    this.maxMessagesPerSend = positiveInt('maxMessagesPerSend', options.maxMessagesPerSend ?? 4096);
    this.maxBytesPerSend = positiveInt('maxBytesPerSend', options.maxBytesPerSend ?? 768 * 1024);
    this.kafka = createKafka(options);
    this.producer = this.kafka.producer({
      idempotent: false,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      createPartitioner: fastDefaultPartitioner,
    });
    this.producer.on(this.producer.events.CONNECT, () => {
      this.isConnected = true;
    });
    this.producer.on(this.producer.events.DISCONNECT, () => {
      this.isConnected = false;
    });
  }

  /** Connects the producer (also done by the first write). Retriable errors may be retried by calling again. */
  connect(): Promise<void> {
    if (this.closing) return Promise.reject(closedError());
    this.connecting ??= this.producer.connect().catch((error: unknown) => {
      this.connecting = undefined;
      throw toKafkaSupsupError(error, 'E_SINK', `${this.name}: cannot connect the producer`);
    });
    return this.connecting;
  }

  /**
   * At start: the brokers answer and the results, dead-letter and events topics exist (the sink never creates a
   * topic, so a missing one would fail the first write, after its batch was learnt and committed). E_SINK,
   * not retriable, names the missing topics.
   */
  async check(): Promise<void> {
    const { resultsTopic, deadLetterTopic, eventsTopic, decisionsTopic } = this.options;
    const topics = [
      ...new Set([
        resultsTopic,
        deadLetterTopic,
        eventsTopic,
        ...(decisionsTopic === undefined ? [] : [decisionsTopic]),
      ]),
    ];
    const admin = this.kafka.admin();
    let existing: Set<string>;
    try {
      await admin.connect();
      existing = new Set(await admin.listTopics());
    } catch (error) {
      throw toKafkaSupsupError(error, 'E_SINK', `${this.name}: cannot list the brokers' topics`);
    } finally {
      await admin.disconnect().catch(() => {});
    }
    const missing = topics.filter((topic) => !existing.has(topic));
    if (missing.length > 0) {
      throw new SupsupError(
        'E_SINK',
        `${this.name}: topic${missing.length > 1 ? 's' : ''} ${missing.join(', ')} do${missing.length > 1 ? '' : 'es'} not exist; create ${missing.length > 1 ? 'them' : 'it'} first (the sink never creates topics)`,
        { retriable: false, details: { missing } },
      );
    }
    await this.connect();
  }

  connected(): boolean {
    return this.isConnected;
  }

  writeResults(results: readonly ResultRecord[]): Promise<void> {
    return this.send(
      this.options.resultsTopic,
      results.map((result) => ({
        key: result.id,
        // A string: kafkajs writes it into the request directly (no Buffer per result).
        value: resultJson(result),
        headers: { 'x-source': positionKey(result.source), 'content-type': 'application/json' },
      })),
    );
  }

  writeDeadLetters(letters: readonly DeadLetter[]): Promise<void> {
    return this.send(
      this.options.deadLetterTopic,
      letters.map((letter) => ({
        key: letter.key,
        value: letter.value,
        headers: { ...encodeDeadLetterHeaders(letter), 'x-source': positionKey(letter.source) },
      })),
    );
  }

  writeEvents(events: readonly DaemonEvent[]): Promise<void> {
    return this.send(
      this.options.eventsTopic,
      events.map((event) => ({
        key: event.type,
        value: encodeEvent(event),
        headers: { 'content-type': 'application/json' },
      })),
    );
  }

  writeDecisions(decisions: readonly BatchDecision[]): Promise<void> {
    const topic = this.options.decisionsTopic;
    if (topic === undefined || decisions.length === 0) return Promise.resolve();
    return this.send(
      topic,
      decisions.map((decision) => ({
        key: decision.partition,
        value: JSON.stringify(decision),
        headers: { 'content-type': 'application/json' },
      })),
    );
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, this.options.closeTimeoutMs ?? 10_000);
        timer.unref();
      });
      await Promise.race([this.producer.disconnect().catch(() => {}), timeout]);
      clearTimeout(timer);
      this.isConnected = false;
    })();
    return this.closing;
  }

  private async send(topic: string, messages: Message[]): Promise<void> {
    if (messages.length === 0) return;
    if (this.closing) throw closedError();
    await this.connect();
    try {
      for (const part of sendParts(messages, this.maxMessagesPerSend, this.maxBytesPerSend)) {
        await this.producer.send({
          topic,
          messages: part,
          acks: this.acks,
          timeout: this.timeoutMs,
        });
      }
    } catch (error) {
      throw toKafkaSupsupError(error, 'E_SINK', `${this.name}: producing to ${topic} failed`);
    }
  }
}

/** Record overhead besides key, value and headers (length, attributes, deltas, varints), at most. */
const RECORD_OVERHEAD_BYTES = 32;

/**
 * Bytes a message adds to a record batch, at most (UTF-8 for strings): key, value, each header's
 * name and value with 10 bytes for their two length varints, and the record's own overhead.
 */
function messageBytes(message: Message): number {
  let bytes = RECORD_OVERHEAD_BYTES + dataBytes(message.key) + dataBytes(message.value);
  const headers = message.headers;
  if (headers !== undefined) {
    for (const name of Object.keys(headers)) {
      const value = headers[name];
      const nameBytes = 10 + Buffer.byteLength(name);
      if (Array.isArray(value)) for (const item of value) bytes += nameBytes + dataBytes(item);
      else bytes += nameBytes + dataBytes(value);
    }
  }
  return bytes;
}

/** Bytes of a key, value or header value: UTF-8 for strings, none for null. */
function dataBytes(data: Buffer | string | null | undefined): number {
  if (data === null || data === undefined) return 0;
  return typeof data === 'string' ? Buffer.byteLength(data) : data.length;
}

/**
 * Messages cut, in order, into runs of at most `maxMessages` messages and `maxBytes` bytes (see
 * messageBytes); a message larger than `maxBytes` forms a run of its own.
 */
export function sendParts(messages: readonly Message[], maxMessages: number, maxBytes: number): Message[][] {
  const parts: Message[][] = [];
  let part: Message[] = [];
  let bytes = 0;
  for (const message of messages) {
    const size = messageBytes(message);
    if (part.length > 0 && (part.length >= maxMessages || bytes + size > maxBytes)) {
      parts.push(part);
      part = [];
      bytes = 0;
    }
    part.push(message);
    bytes += size;
  }
  if (part.length > 0) parts.push(part);
  return parts;
}

function closedError(): SupsupError {
  return new SupsupError('E_SINK', 'kafka sink: write after close', { retriable: false });
}
