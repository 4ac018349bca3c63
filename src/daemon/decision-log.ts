/**
 * The decision log (docs/daemon.md, "Decision log"): one compact entry per learned micro-batch, made from its
 * outcome alone, kept with the commit that applied it (so a crash between the commit and the sink writes it again,
 * like the events) and written to the sink's decision stream. No clock: the same records and configuration give
 * the same log byte for byte.
 */
import { z } from 'zod';
import type { BatchOutcome } from '../discovery/learner.js';
import type { BatchDecision, InputRecord } from '../records.js';

/** The decision entry of a learned micro-batch of `partition` (`topic/partition`). */
export function decisionOf(
  partition: string,
  records: readonly InputRecord[],
  outcome: BatchOutcome,
  cutShort: boolean,
): BatchDecision {
  const tasks: [number, number][] = [];
  const versions = new Map<number, number>();
  const allocated = new Set<number>();
  for (const result of outcome.results) {
    const run = tasks[tasks.length - 1];
    if (run !== undefined && run[0] === result.task) run[1]++;
    else tasks.push([result.task, 1]);
    versions.set(result.task, result.maskVersion);
    if (result.newTask) allocated.add(result.task);
  }
  return {
    seq: outcome.sequence,
    partition,
    first: records[0]?.position.offset ?? '',
    last: records[records.length - 1]?.position.offset ?? '',
    rows: records.length,
    labelled: outcome.labelled,
    tasks,
    allocated: [...allocated].sort((a, b) => a - b),
    versions: [...versions].sort(([a], [b]) => a - b),
    split: outcome.split,
    decision: outcome.decision.kind,
    reason: outcome.decision.reason,
    checked: outcome.checked,
    candidates: outcome.candidates.map((c) => [
      c.task,
      round4(c.distance),
      c.loss === null ? null : round4(c.loss),
    ]),
    ...(cutShort ? { cutShort: true as const } : {}),
  };
}

function round4(value: number): number {
  return Number.isFinite(value) ? Number(value.toPrecision(4)) : value;
}

const pair = z.tuple([z.number().int().min(0), z.number().int().min(0)]);
/** A decision-log entry as read back (the registry's last commit, a recorded log): exactly a BatchDecision. */
export const decisionSchema = z
  .object({
    seq: z.number().int().min(1),
    partition: z.string(),
    first: z.string(),
    last: z.string(),
    rows: z.number().int().min(0),
    labelled: z.number().int().min(0),
    tasks: z.array(pair),
    allocated: z.array(z.number().int().min(0)),
    versions: z.array(pair),
    split: z.number().int().min(0).nullable(),
    decision: z.enum(['route', 'allocate']),
    reason: z.string(),
    checked: z.boolean(),
    candidates: z.array(z.tuple([z.number().int().min(0), z.number().nullable(), z.number().nullable()])),
    cutShort: z.literal(true).optional(),
  })
  .strict();
