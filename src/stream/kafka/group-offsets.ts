/**
 * A consumer group's committed offsets on the source's topic, read and moved back through the admin API before the
 * consumer joins: what KafkaSource.positions() reports for the daemon's start-up check against the store, and
 * what rewind() does for store.onRegression "replay" (docs/daemon.md, "State safety").
 */
import type { Admin } from 'kafkajs';
import { SupsupError } from '../../errors.js';
import type { SourcePositions } from '../types.js';
import { toKafkaSupsupError } from './errors.js';

/** The part of kafkajs's Admin these functions use. */
export type GroupAdmin = Pick<
  Admin,
  'connect' | 'disconnect' | 'fetchOffsets' | 'fetchTopicOffsets' | 'setOffsets'
>;

/**
 * Per partition key (`topic/partition`), the offset of the last record the group consumed (Kafka commits the next
 * offset to read, so one less); partitions without a committed offset are absent.
 */
export async function groupPositions(
  admin: GroupAdmin,
  groupId: string,
  topic: string,
): Promise<SourcePositions> {
  const groups = await withAdmin(admin, `group ${groupId}: cannot read its committed offsets`, () =>
    admin.fetchOffsets({ groupId, topics: [topic] }),
  );
  const offsets: Record<string, string> = {};
  for (const entry of groups) {
    if (entry.topic !== topic) continue;
    for (const { partition, offset } of entry.partitions) {
      if (/^[1-9][0-9]*$/.test(offset)) offsets[`${topic}/${partition}`] = (BigInt(offset) - 1n).toString();
    }
  }
  return { offsets };
}

/**
 * Moves the group's offsets so that every partition is read again after `applied[topic/partition]`, or from its
 * earliest record where the store applied nothing. Kafka refuses this while the group has running members: stop
 * the other daemons of the group first.
 */
export async function rewindGroup(
  admin: GroupAdmin,
  groupId: string,
  topic: string,
  applied: Readonly<Record<string, string>>,
): Promise<void> {
  const what = `group ${groupId}: cannot move its offsets back to the store's (stop the group's other members first)`;
  await withAdmin(admin, what, async () => {
    const partitions = (await admin.fetchTopicOffsets(topic)).map(({ partition, low }) => {
      const last = applied[`${topic}/${partition}`];
      return { partition, offset: last === undefined ? low : (BigInt(last) + 1n).toString() };
    });
    await admin.setOffsets({ groupId, topic, partitions });
  });
}

async function withAdmin<T>(admin: GroupAdmin, what: string, work: () => Promise<T>): Promise<T> {
  try {
    await admin.connect();
    return await work();
  } catch (error) {
    if (error instanceof SupsupError) throw error;
    throw toKafkaSupsupError(error, 'E_SOURCE', what);
  } finally {
    await admin.disconnect().catch(() => {});
  }
}
