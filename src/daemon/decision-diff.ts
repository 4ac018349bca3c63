/**
 * `supsupd replay --diff LOG`: a replay's decision log against a recorded one. Batches are matched by their
 * offsets (first and last record; a replay of a topic exported to a file keeps them); a batch diverges when its
 * rows went to other tasks, it allocated other masks, or it was split elsewhere. Batches only one side has are
 * divergences too (the micro-batches were cut differently).
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { errorMessage, SupsupError } from '../errors.js';
import type { BatchDecision } from '../records.js';
import { decisionSchema } from './decision-log.js';

export interface Divergence {
  readonly first: string;
  readonly last: string;
  /** What the recorded log and the replay decided (null: the side has no such batch). */
  readonly recorded: DecisionGist | null;
  readonly replayed: DecisionGist | null;
}

/** What a divergence compares. */
export interface DecisionGist {
  readonly tasks: readonly (readonly [number, number])[];
  readonly allocated: readonly number[];
  readonly split: number | null;
}

/** The entries of a decision log file (JSON lines); an entry repeated after a crash is kept once. */
export async function readDecisionLog(file: string): Promise<BatchDecision[]> {
  const seen = new Map<string, BatchDecision>();
  let number = 0;
  try {
    for await (const line of createInterface({
      input: createReadStream(file),
      crlfDelay: Number.POSITIVE_INFINITY,
    })) {
      number++;
      if (line.trim() === '') continue;
      const entry = parseEntry(line, `${file}:${number}`);
      seen.set(`${entry.partition} ${entry.first} ${entry.last}`, entry);
    }
  } catch (error) {
    if (error instanceof SupsupError) throw error;
    throw new SupsupError('E_BAD_ARGUMENT', `cannot read the decision log ${file}: ${errorMessage(error)}`);
  }
  return [...seen.values()];
}

function parseEntry(line: string, where: string): BatchDecision {
  let entry: unknown;
  try {
    entry = JSON.parse(line);
  } catch {
    throw new SupsupError('E_BAD_ARGUMENT', `${where} is not JSON`);
  }
  const parsed = decisionSchema.safeParse(entry);
  if (!parsed.success) throw new SupsupError('E_BAD_ARGUMENT', `${where} is not a decision-log entry`);
  return parsed.data as BatchDecision;
}

/** Every batch where the two logs differ, in offset order. */
export function diffDecisions(
  recorded: readonly BatchDecision[],
  replayed: readonly BatchDecision[],
): Divergence[] {
  const key = (d: BatchDecision) => `${d.first} ${d.last}`;
  const theirs = new Map(recorded.map((d) => [key(d), d]));
  const ours = new Map(replayed.map((d) => [key(d), d]));
  const keys = [...new Set([...theirs.keys(), ...ours.keys()])].sort(compareKeys);
  const out: Divergence[] = [];
  for (const k of keys) {
    const a = theirs.get(k);
    const b = ours.get(k);
    const gistA = a === undefined ? null : gist(a);
    const gistB = b === undefined ? null : gist(b);
    if (JSON.stringify(gistA) === JSON.stringify(gistB)) continue;
    const [first, last] = k.split(' ') as [string, string];
    out.push({ first, last, recorded: gistA, replayed: gistB });
  }
  return out;
}

function gist(d: BatchDecision): DecisionGist {
  return { tasks: d.tasks, allocated: d.allocated, split: d.split };
}

function compareKeys(a: string, b: string): number {
  const [x, y] = [BigInt(a.split(' ')[0] as string), BigInt(b.split(' ')[0] as string)];
  return x < y ? -1 : x > y ? 1 : 0;
}
