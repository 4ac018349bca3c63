/**
 * events.log of the file store (file-store.ts): JSON lines {"g": <generation>, "id", "event"}, read back up to the
 * last committed generation, and the durable append and truncate that keep it atomic with a commit.
 */
import { open, readFile, writeFile } from 'node:fs/promises';
import { compareEventIds, type EventId, parseEventId, parseStoredEvent } from './events.js';
import { corrupt, isRecord } from './file-registry.js';
import type { StoredEvent } from './types.js';

function errno(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | null)?.code;
}

/** One line of events.log: the event and the generation of the commit that appended it. */
export interface LoggedEvent extends StoredEvent {
  readonly generation: number;
}

export interface EventLog {
  readonly entries: LoggedEvent[];
  /** Byte length of events.log (its committed lines); 0 when the file does not exist. */
  readonly bytes: number;
  readonly exists: boolean;
  readonly last: EventId | null;
}

export const EMPTY_LOG: EventLog = { entries: [], bytes: 0, exists: false, last: null };

export function eventLine(entry: LoggedEvent): string {
  return `${JSON.stringify({ g: entry.generation, id: entry.id, event: entry.event })}\n`;
}

/** One line of events.log, or null when it is not one (a torn write); E_STORE_CORRUPT for a malformed event. */
function parseEventLine(line: string, path: string): LoggedEvent | null {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return null;
  }
  if (!isRecord(value)) return null;
  const { g, id } = value;
  if (typeof g !== 'number' || !Number.isSafeInteger(g) || g < 1 || typeof id !== 'string') return null;
  const stored = parseStoredEvent(id, JSON.stringify(value.event ?? null), path);
  return { generation: g, id: stored.id, event: stored.event };
}

/**
 * Reads events.log: the lines of committed generations (at most `generation`), in increasing id order. A tail
 * of lines of a later generation or a torn line (a crash during a commit) is cut off, durably, now; anything else
 * out of place is E_STORE_CORRUPT.
 */
export async function readEventLog(path: string, generation: number): Promise<EventLog> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    if (errno(error) === 'ENOENT') return EMPTY_LOG;
    throw error;
  }
  const entries: LoggedEvent[] = [];
  let valid = 0;
  let tail = false;
  let beyond = false;
  for (let start = 0; start < bytes.length; ) {
    const end = bytes.indexOf(0x0a, start);
    const line = bytes.toString('utf8', start, end < 0 ? bytes.length : end);
    const entry = end < 0 ? null : parseEventLine(line, path);
    const committed = entry !== null && entry.generation <= generation;
    if (tail || !committed) {
      if (committed) {
        throw corrupt(`${path}: a committed event follows a torn or uncommitted line at byte ${start}`, path);
      }
      tail = true;
      beyond ||= entry !== null && entry.generation > generation + 1;
    } else {
      const previous = entries[entries.length - 1];
      if (previous !== undefined && compareEventIds(previous.id, entry.id) >= 0) {
        throw corrupt(`${path}: event ids are not increasing at byte ${start}`, path);
      }
      entries.push(entry);
      valid = end + 1;
    }
    start = end < 0 ? bytes.length : end + 1;
  }
  if (beyond || (generation === 0 && valid < bytes.length)) {
    // Lines of generations registry.json never reached by one commit: the registry is older than the log
    // (deleted, or restored from an older copy), not a crashed commit. With no registry at all, even lines of
    // generation 1 may be a deleted registry's history rather than a crashed first commit. They are kept beside,
    // for the operator.
    await writeFile(`${path}.orphaned-${Date.now()}`, bytes.subarray(valid));
  }
  if (valid < bytes.length) await truncateDurably(path, valid);
  const last = entries[entries.length - 1];
  return { entries, bytes: valid, exists: true, last: last === undefined ? null : parseEventId(last.id) };
}

export async function appendDurably(path: string, bytes: Uint8Array): Promise<void> {
  const handle = await open(path, 'a', 0o644);
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function truncateDurably(path: string, length: number): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    await handle.truncate(length);
    await handle.sync();
  } finally {
    await handle.close();
  }
}
