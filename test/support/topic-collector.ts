/**
 * A kafkajs consumer (own throw-away group, from the beginning) that collects every message of one topic
 * while a test runs, so the test can wait for conditions on what a daemon has written so far.
 */
import { randomBytes } from 'node:crypto';
import type { Admin, Consumer, IHeaders, Kafka } from 'kafkajs';

export interface CollectedMessage {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly key: string | null;
  readonly value: Buffer | null;
  readonly headers: Readonly<Record<string, string>>;
}

/** Header values as strings (the last one of a repeated header). */
export function headerStrings(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  for (const [name, value] of Object.entries(headers ?? {})) {
    const last = Array.isArray(value) ? value[value.length - 1] : value;
    if (last !== undefined) out[name] = last.toString();
  }
  return out;
}

/** Messages a topic holds now: the sum over partitions of high − low watermark. */
export async function topicMessageCount(admin: Admin, topic: string): Promise<number> {
  const offsets = await admin.fetchTopicOffsets(topic);
  return offsets.reduce((sum, o) => sum + Number(BigInt(o.high) - BigInt(o.low)), 0);
}

export class TopicCollector {
  readonly topic: string;
  readonly messages: CollectedMessage[] = [];
  private readonly consumer: Consumer;
  private readonly onMessage: ((message: CollectedMessage) => void) | undefined;

  constructor(kafka: Kafka, topic: string, onMessage?: (message: CollectedMessage) => void) {
    this.topic = topic;
    this.onMessage = onMessage;
    this.consumer = kafka.consumer({
      groupId: `collector-${topic}-${randomBytes(4).toString('hex')}`,
      maxWaitTimeInMs: 200,
      allowAutoTopicCreation: false,
    });
  }

  async start(): Promise<void> {
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [this.topic], fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          const message: CollectedMessage = {
            topic: batch.topic,
            partition: batch.partition,
            offset: m.offset,
            key: m.key === null ? null : m.key.toString(),
            value: m.value,
            headers: headerStrings(m.headers),
          };
          this.messages.push(message);
          this.onMessage?.(message);
        }
      },
    });
  }

  /** Waits until the collector has read as many messages as the topic holds now. */
  async caughtUp(admin: Admin, timeoutMs: number): Promise<CollectedMessage[]> {
    const expected = await topicMessageCount(admin, this.topic);
    const deadline = Date.now() + timeoutMs;
    while (this.messages.length < expected) {
      if (Date.now() > deadline) {
        throw new Error(
          `timed out after ${timeoutMs} ms reading ${this.topic}: ${this.messages.length} of ${expected} messages`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return this.messages;
  }

  /** Leaves the group and closes the connections (idempotent; never throws). */
  async stop(): Promise<void> {
    await this.consumer.disconnect().catch(() => {});
  }
}
