/**
 * Shared pieces of the event log and the named locks of every MaskStore: event ids (`<ms>-<seq>`, the Redis
 * stream ID form), validation of events (on the way in: E_BAD_ARGUMENT; read back: E_STORE_CORRUPT), of read and
 * trim options, and of lock names and ttls.
 */
import { randomBytes } from 'node:crypto';
import { SupsupError } from '../errors.js';
import type { DaemonEvent, SourcePosition } from '../records.js';
import type { ReadEventsOptions, StoredEvent, TrimEventsOptions } from './types.js';

export const MAX_READ_EVENTS = 10_000;
const EVENT_ID = /^(0|[1-9][0-9]{0,19})-(0|[1-9][0-9]{0,19})$/;
const U64 = (1n << 64n) - 1n;
const LOCK_NAME = /^[A-Za-z0-9_.:-]{1,100}$/;
/** Lease lengths: at least 1 ms, at most a day (a longer lease is a lock nobody can recover). */
const MAX_TTL_MS = 86_400_000;

export interface EventId {
  readonly ms: bigint;
  readonly seq: bigint;
}

export function parseEventId(id: string, what = 'event id'): EventId {
  const match = typeof id === 'string' ? EVENT_ID.exec(id) : null;
  const ms = match ? BigInt(match[1] as string) : -1n;
  const seq = match ? BigInt(match[2] as string) : -1n;
  if (match === null || ms > U64 || seq > U64) {
    throw new SupsupError('E_BAD_ARGUMENT', `${what} ${JSON.stringify(id)} is not of the form <ms>-<seq>`, {
      details: { id },
    });
  }
  return { ms, seq };
}

export function formatEventId(id: EventId): string {
  return `${id.ms}-${id.seq}`;
}

/** -1, 0 or 1 as event id `a` is before, equal to or after `b`. */
export function compareEventIds(a: string, b: string): number {
  const x = parseEventId(a);
  const y = parseEventId(b);
  if (x.ms !== y.ms) return x.ms < y.ms ? -1 : 1;
  return x.seq < y.seq ? -1 : x.seq > y.seq ? 1 : 0;
}

/** The id to give an event appended at `nowMs` after `last` (Redis's rule: never backwards, even if the clock is). */
export function nextEventId(last: EventId | null, nowMs: number): EventId {
  const now = BigInt(Math.max(0, Math.floor(nowMs)));
  if (last === null || now > last.ms) return { ms: now, seq: 0n };
  return { ms: last.ms, seq: last.seq + 1n };
}

/** The smallest id after `id`, for exclusive ranges. */
export function successorEventId(id: EventId): EventId {
  return id.seq < U64 ? { ms: id.ms, seq: id.seq + 1n } : { ms: id.ms + 1n, seq: 0n };
}

class EventShapeError extends Error {}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function field<T>(ok: boolean, value: T, path: string, problem: string): T {
  if (!ok) throw new EventShapeError(`${path} ${problem}`);
  return value;
}

function int(value: unknown, path: string): number {
  return field(
    typeof value === 'number' && Number.isSafeInteger(value) && value >= 0,
    value as number,
    path,
    `must be a non-negative integer, got ${JSON.stringify(value)}`,
  );
}

function text(value: unknown, path: string): string {
  return field(typeof value === 'string', value as string, path, 'must be a string');
}

function position(value: unknown, path: string): SourcePosition {
  if (!isRecord(value)) throw new EventShapeError(`${path} must be an object`);
  return {
    topic: text(value.topic, `${path}.topic`),
    partition: int(value.partition, `${path}.partition`),
    offset: text(value.offset, `${path}.offset`),
  };
}

/** A validated copy of one event (only the fields records.ts names); throws EventShapeError. */
function copyEvent(value: unknown, path: string): DaemonEvent {
  if (!isRecord(value)) throw new EventShapeError(`${path} must be an object`);
  switch (value.type) {
    case 'task_discovered':
      return {
        type: 'task_discovered',
        task: int(value.task, `${path}.task`),
        at: position(value.at, `${path}.at`),
        time: text(value.time, `${path}.time`),
      };
    case 'mask_frozen':
      return {
        type: 'mask_frozen',
        task: int(value.task, `${path}.task`),
        steps: int(value.steps, `${path}.steps`),
        time: text(value.time, `${path}.time`),
      };
    case 'budget_reached':
      return {
        type: 'budget_reached',
        masks: int(value.masks, `${path}.masks`),
        at: position(value.at, `${path}.at`),
        time: text(value.time, `${path}.time`),
      };
    default:
      throw new EventShapeError(`${path}.type ${JSON.stringify(value.type)} is not a known event type`);
  }
}

/** Validated copies of a commit's events; E_BAD_ARGUMENT before anything is written. */
export function checkCommitEvents(events: unknown): DaemonEvent[] {
  if (events === undefined) return [];
  try {
    if (!Array.isArray(events)) throw new EventShapeError('commit.events must be an array');
    return events.map((event: unknown, i: number) => copyEvent(event, `commit.events[${i}]`));
  } catch (error) {
    if (error instanceof EventShapeError) {
      throw new SupsupError('E_BAD_ARGUMENT', `invalid commit: ${error.message}`);
    }
    throw error;
  }
}

/** An event read back from storage (JSON text); E_STORE_CORRUPT naming `where` when it is malformed. */
export function parseStoredEvent(id: string, json: string, where: string): StoredEvent {
  try {
    parseEventId(id);
    return { id, event: copyEvent(JSON.parse(json), 'event') };
  } catch (error) {
    throw new SupsupError(
      'E_STORE_CORRUPT',
      `${where}: stored event ${JSON.stringify(id)} is malformed (${(error as Error).message})`,
      { details: { where, id } },
    );
  }
}

export function copyStoredEvent(stored: StoredEvent): StoredEvent {
  return { id: stored.id, event: copyEvent(stored.event, 'event') };
}

export interface CheckedRead {
  readonly after: EventId | null;
  readonly limit: number;
}

export function checkReadEvents(options: ReadEventsOptions): CheckedRead {
  const limit = options?.limit;
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > MAX_READ_EVENTS) {
    throw new SupsupError(
      'E_BAD_ARGUMENT',
      `readEvents limit must be an integer in [1, ${MAX_READ_EVENTS}], got ${JSON.stringify(limit)}`,
    );
  }
  const after = options.after === undefined ? null : parseEventId(options.after, 'readEvents after');
  return { after, limit };
}

export interface CheckedTrim {
  /** Milliseconds since the epoch; events whose id time is below it go. */
  readonly olderThanMs: number;
  readonly maxEvents: number;
}

export function checkTrimEvents(options: TrimEventsOptions): CheckedTrim {
  const olderThan = options?.olderThan;
  if (!(olderThan instanceof Date) || Number.isNaN(olderThan.getTime())) {
    throw new SupsupError('E_BAD_ARGUMENT', 'trimEvents olderThan must be a valid Date');
  }
  const maxEvents = options.maxEvents;
  if (typeof maxEvents !== 'number' || !Number.isSafeInteger(maxEvents) || maxEvents < 0) {
    throw new SupsupError(
      'E_BAD_ARGUMENT',
      `trimEvents maxEvents must be a non-negative integer, got ${JSON.stringify(maxEvents)}`,
    );
  }
  return { olderThanMs: Math.max(0, Math.floor(olderThan.getTime())), maxEvents };
}

/** How many leading entries of `ids` (in order) a trim removes: those older than the cutoff, then the excess. */
export function trimCount(ids: readonly string[], trim: CheckedTrim): number {
  const cutoff = BigInt(trim.olderThanMs);
  let old = 0;
  while (old < ids.length && parseEventId(ids[old] as string).ms < cutoff) old++;
  return Math.max(old, ids.length - trim.maxEvents);
}

/** Index of the first entry of `events` (in id order) whose id is after `after`. */
export function firstAfter(events: readonly { readonly id: string }[], after: EventId | null): number {
  if (after === null) return 0;
  const bound = formatEventId(after);
  let lo = 0;
  let hi = events.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareEventIds((events[mid] as { id: string }).id, bound) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function checkLockArguments(name: string, ttlMs: number): void {
  if (typeof name !== 'string' || !LOCK_NAME.test(name)) {
    throw new SupsupError(
      'E_BAD_ARGUMENT',
      `lock name ${JSON.stringify(name)} must match ${LOCK_NAME.source}`,
    );
  }
  if (typeof ttlMs !== 'number' || !Number.isInteger(ttlMs) || ttlMs < 1 || ttlMs > MAX_TTL_MS) {
    throw new SupsupError(
      'E_BAD_ARGUMENT',
      `lock ttlMs must be an integer in [1, ${MAX_TTL_MS}], got ${JSON.stringify(ttlMs)}`,
    );
  }
}

export function newLeaseToken(): string {
  return randomBytes(16).toString('hex');
}
