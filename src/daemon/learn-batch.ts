import { type AlignedCopies, decodeRecord, type RecordLimits } from '../codec/record-codec.js';
import type { StreamLearner } from '../discovery/learner.js';
import type { Logger } from '../logger.js';
import type { BatchDecision, DaemonEvent, DeadLetter, InputRecord, ResultRecord } from '../records.js';
import type { SourceBatch } from '../stream/types.js';
import { microBatches } from './batches.js';
import { decisionOf } from './decision-log.js';
import { type BatchObservation, logDecision } from './telemetry.js';

/** What one source batch gave: everything the daemon commits, writes and reports for it. */
export interface LearnedBatch {
  readonly results: ResultRecord[];
  readonly events: DaemonEvent[];
  /** The records that did not decode. */
  readonly letters: DeadLetter[];
  /** Tasks whose mask or training state changed: what the commit carries. */
  readonly changed: ReadonlySet<number>;
  /** Whether any micro-batch was learned from (not only inferred). */
  readonly learned: boolean;
  /** One per micro-batch, reported once the batch is done (a batch handled again counts once). */
  readonly observations: BatchObservation[];
  /** The decision-log entries of the learned micro-batches, in order. */
  readonly decisions: BatchDecision[];
}

export interface LearnBatchContext {
  readonly learner: StreamLearner;
  readonly limits: RecordLimits;
  /** Largest micro-batch handed to the learner. */
  readonly microBatch: number;
  /** The partition key, `topic/partition`. */
  readonly key: string;
  /** The partition's applied offset in the store: records up to it are inferred, never learned again. */
  readonly applied: string | undefined;
  /** ISO time of a decision. */
  readonly now: () => string;
  readonly log: Logger;
  /** Called for each micro-batch that ran the new-task check. */
  readonly onCheck: () => void;
}

/**
 * One source batch through the learner: its records decoded (the others dead-lettered), cut into
 * micro-batches, each decided and, past the applied offset, learned; the source's heartbeat after
 * each. Nothing is committed or written here.
 */
export async function learnBatch(
  batch: SourceBatch,
  copies: AlignedCopies,
  context: LearnBatchContext,
): Promise<LearnedBatch> {
  const { learner, key, log } = context;
  const valid: InputRecord[] = [];
  const letters: DeadLetter[] = [];
  for (const raw of batch.records) {
    const outcome = decodeRecord(raw, context.limits, copies);
    if (outcome.ok) valid.push(outcome.record);
    else letters.push(outcome.letter);
  }
  const observations: BatchObservation[] = [];
  const results: ResultRecord[] = [];
  const events: DaemonEvent[] = [];
  const changed = new Set<number>();
  const decisions: BatchDecision[] = [];
  let learned = false;
  for (const group of microBatches(valid, context.microBatch, context.applied)) {
    const outcome = learner.process(group.records, { learn: group.learn, now: context.now(), stream: key });
    learned ||= group.learn;
    if (group.learn) decisions.push(decisionOf(key, group.records, outcome, batch.cutShort === true));
    results.push(...outcome.results);
    events.push(...outcome.events);
    for (const task of outcome.changed) changed.add(task);
    if (outcome.checked) context.onCheck();
    logDecision(log, learner, group.records, outcome.decision, outcome.checked, batch.cutShort === true);
    observations.push({
      partition: key,
      firstOffset: group.records[0]?.position.offset ?? '',
      lastOffset: group.records[group.records.length - 1]?.position.offset ?? '',
      time: Date.now(),
      results: outcome.results,
      decision: outcome.decision,
      checked: outcome.checked,
      prequential: outcome.prequential,
      ...outcome.work,
    });
    await batch.heartbeat();
  }
  return { results, events, letters, changed, learned, observations, decisions };
}
