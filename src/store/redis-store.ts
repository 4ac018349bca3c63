/**
 * MaskStore on Redis (ioredis). Keys, all under one hash tag so every commit touches a single slot (Cluster-safe):
 *
 *   <ns>:{reg}:registry      registry JSON
 *   <ns>:{reg}:applied       hash: partition key → applied offset (canonical decimal string)
 *   <ns>:{reg}:mask:<task>   encoded mask (binary)
 *   <ns>:{reg}:train:<task>  training state (binary; absent for a frozen mask)
 *   <ns>:{reg}:events        stream: the event log (one field `e`, the event's JSON; ids are stream ids)
 *   <ns>:lock:<name>         named locks (leases): a random token with a PX expiry
 *
 * A commit is ONE Lua script (EVALSHA through ioredis defineCommand, EVAL on NOSCRIPT): it compares the new offset
 * with the stored one and, only if it is newer, writes masks, training states, registry and offset. Scripts run
 * atomically, so a commit is all-or-nothing and two writers cannot interleave. The commit's events are XADDed to the
 * events stream inside the same script, so a fenced (repeated) commit appends nothing. The event log needs
 * Redis >= 6.2 (XTRIM MINID).
 *
 * Locks: SET key token NX PX ttl takes one; renew (PEXPIRE) and release (DEL) are Lua scripts that act only while
 * the key still holds the caller's token, so nobody renews or releases a lease that has passed to someone else.
 *
 * Client settings: no offline queue (a command while disconnected fails at once instead of piling up), one retry
 * per request, a command timeout (so no promise hangs on a dead server), lazy connect (open() connects), and a
 * bounded reconnect backoff so readiness recovers within ~2 s of the server coming back.
 *
 * ioredis resends in-flight commands after a reconnect (autoResendUnfulfilledCommands), and a commit that timed
 * out may still have been applied. Both are harmless here: a resent or retried commit carries the same offset,
 * which the script then finds already applied and answers 0 ('fenced') without writing anything.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { SupsupError } from '../errors.js';
import {
  checkLockArguments,
  checkReadEvents,
  checkTrimEvents,
  formatEventId,
  newLeaseToken,
  parseStoredEvent,
  successorEventId,
} from './events.js';
import type {
  Commit,
  CommitOutcome,
  Lease,
  LoadedState,
  MaskStore,
  ReadEventsOptions,
  Registry,
  StoredEvent,
  TrimEventsOptions,
} from './types.js';
import {
  checkCommit,
  checkStoredState,
  checkTaskArgument,
  copyBytes,
  missingMaskError,
  notOpenError,
} from './validate.js';

export const DEFAULT_REDIS_NAMESPACE = 'supsupd:default';
export const DEFAULT_COMMAND_TIMEOUT_MS = 5000;
/** Masks per MGET when loading: 100 LeNet-500 masks are about 4 MB per reply. */
const MASK_READ_CHUNK = 100;
const NAMESPACE_PATTERN = /^[A-Za-z0-9_:.-]{1,64}$/;

export interface RedisStoreOptions {
  /** redis:// or rediss:// URL; credentials in it are never repeated in errors. */
  readonly url?: string;
  /**
   * ioredis options (host, port, username, password, tls, db, retryStrategy, …). The store's safety settings
   * (no offline queue, lazy connect, command timeout, bounded retries per request) take precedence.
   */
  readonly client?: RedisOptions;
  /** Key namespace, `^[A-Za-z0-9_:.-]{1,64}$`; default 'supsupd:default'. */
  readonly namespace?: string;
  /** Reply timeout of every command, also the connect timeout; default 5000 ms. */
  readonly commandTimeoutMs?: number;
}

/** What the server persists, as found by open(). The daemon decides whether "neither" is acceptable. */
export interface RedisPersistence {
  /** `aof_enabled:1` in INFO persistence. */
  readonly aof: boolean;
  /** RDB snapshot points configured (`CONFIG GET save` non-empty); false when CONFIG is not permitted. */
  readonly rdb: boolean;
}

export interface RedisKeys {
  readonly registry: string;
  readonly applied: string;
  /** The event log (a stream). */
  readonly events: string;
  mask(task: number): string;
  training(task: number): string;
  /** A named lock; outside the {reg} hash tag (locks are single-key operations). */
  lock(name: string): string;
}

/** The keys of a namespace (for tests and operators). */
export function redisKeys(namespace: string): RedisKeys {
  checkNamespace(namespace);
  const base = `${namespace}:{reg}`;
  return {
    registry: `${base}:registry`,
    applied: `${base}:applied`,
    events: `${base}:events`,
    mask: (task) => `${base}:mask:${task}`,
    training: (task) => `${base}:train:${task}`,
    lock: (name) => `${namespace}:lock:${name}`,
  };
}

export function checkNamespace(namespace: string): void {
  if (typeof namespace !== 'string' || !NAMESPACE_PATTERN.test(namespace)) {
    throw new SupsupError(
      'E_CONFIG',
      `Redis namespace ${JSON.stringify(namespace)} must match ${NAMESPACE_PATTERN.source}`,
      { details: { namespace } },
    );
  }
}

/**
 * KEYS[1] applied hash, KEYS[2] registry, KEYS[3] events stream; per mask write i (1-based): KEYS[2+2i] mask,
 * KEYS[3+2i] training state.
 * ARGV[1] partition key, ARGV[2] new offset, ARGV[3] registry JSON, ARGV[4] n = number of events, ARGV[4+j] the
 * JSON of event j; per write i, with b = 4+n: ARGV[b+3i-2] encoded mask, ARGV[b+3i-1] 'S' (set the training
 * state to ARGV[b+3i]) or 'D' (delete it).
 * Offsets can exceed 2^53 (Lua numbers are doubles), so they are compared as canonical decimal strings: a longer
 * string is a larger number; at equal length the first differing digit decides (bytes, not locale collation).
 * The only writes come after every check (the events key's type included), and SET/DEL/HSET/XADD cannot fail on
 * these keys, so a script error never leaves a half-applied commit. Returns 1 when applied, 0 when fenced.
 */
const COMMIT_SCRIPT = `
if redis.replicate_commands then redis.replicate_commands() end
local function canonical(s)
  return s == '0' or string.find(s, '^[1-9][0-9]*$') ~= nil
end
local function greater(a, b)
  if #a ~= #b then return #a > #b end
  for i = 1, #a do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return false
end
local offset = ARGV[2]
if not canonical(offset) then
  return redis.error_reply('BADOFFSET new applied offset is not a canonical decimal integer')
end
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  if not canonical(current) then
    return redis.error_reply('STORECORRUPT stored applied offset ' .. current .. ' is not a canonical decimal integer')
  end
  if not greater(offset, current) then return 0 end
end
local events = tonumber(ARGV[4])
if events > 0 then
  local kind = redis.call('TYPE', KEYS[3]).ok
  if kind ~= 'none' and kind ~= 'stream' then
    return redis.error_reply('STORECORRUPT the event log key holds a ' .. kind .. ', not a stream')
  end
end
local b = 4 + events
for i = 1, (#KEYS - 3) / 2 do
  redis.call('SET', KEYS[2 + 2 * i], ARGV[b + 3 * i - 2])
  if ARGV[b + 3 * i - 1] == 'S' then
    redis.call('SET', KEYS[3 + 2 * i], ARGV[b + 3 * i])
  else
    redis.call('DEL', KEYS[3 + 2 * i])
  end
end
redis.call('SET', KEYS[2], ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], offset)
for j = 1, events do
  redis.call('XADD', KEYS[3], '*', 'e', ARGV[4 + j])
end
return 1
`;

/** KEYS[1] events stream; ARGV[1] min id time (ms), ARGV[2] max length. Returns the number of entries removed. */
const TRIM_SCRIPT = `
local removed = redis.call('XTRIM', KEYS[1], 'MINID', ARGV[1])
return removed + redis.call('XTRIM', KEYS[1], 'MAXLEN', ARGV[2])
`;

/** KEYS[1] lock; ARGV[1] token, ARGV[2] ttl ms. 1 when renewed, 0 when the lock is not (or no longer) ours. */
const RENEW_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`;

/** KEYS[1] lock; ARGV[1] token. Deletes the lock only if it is still ours. */
const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/** KEYS[1] registry, KEYS[2] applied hash: both in one consistent read. */
const LOAD_SCRIPT = `return { redis.call('GET', KEYS[1]), redis.call('HGETALL', KEYS[2]) }`;

type ScriptArg = string | Buffer | number;

interface StoreScripts {
  supsupdCommit(numKeys: number, ...args: ScriptArg[]): Promise<unknown>;
  supsupdLoad(registryKey: string, appliedKey: string): Promise<unknown>;
  supsupdTrim(eventsKey: string, minId: string, maxLength: string): Promise<unknown>;
  supsupdRenew(lockKey: string, token: string, ttlMs: string): Promise<unknown>;
  supsupdRelease(lockKey: string, token: string): Promise<unknown>;
}

type StoreClient = Redis & StoreScripts;

export class RedisStore implements MaskStore {
  readonly kind = 'redis' as const;
  readonly namespace: string;
  readonly keys: RedisKeys;
  readonly commandTimeoutMs: number;
  private readonly url: string | undefined;
  private readonly clientOptions: RedisOptions;
  private client: StoreClient | null = null;
  private status: 'new' | 'open' | 'closed' = 'new';
  private persistenceInfo: RedisPersistence | null = null;
  private lastClientError: Error | null = null;
  private opening: Promise<void> | null = null;

  constructor(options: RedisStoreOptions = {}) {
    this.namespace = options.namespace ?? DEFAULT_REDIS_NAMESPACE;
    this.keys = redisKeys(this.namespace);
    const timeout = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    if (!Number.isInteger(timeout) || timeout <= 0) {
      throw new SupsupError('E_CONFIG', `commandTimeoutMs must be a positive integer, got ${timeout}`);
    }
    this.commandTimeoutMs = timeout;
    this.url = options.url;
    this.clientOptions = options.client ?? {};
  }

  /** Connects and checks the server: `maxmemory-policy` must be noeviction (else E_STORE_POLICY). */
  open(): Promise<void> {
    if (this.status === 'open') return Promise.resolve();
    this.opening ??= this.doOpen().finally(() => {
      this.opening = null;
    });
    return this.opening;
  }

  /** The server's persistence as found by open(). */
  persistence(): RedisPersistence {
    if (this.persistenceInfo === null || this.status !== 'open')
      throw notOpenError('redis', this.notOpenState());
    return { ...this.persistenceInfo };
  }

  async load(): Promise<LoadedState | null> {
    const client = this.requireClient();
    const reply = await this.call('load', () => client.supsupdLoad(this.keys.registry, this.keys.applied));
    if (!Array.isArray(reply) || !Array.isArray(reply[1])) {
      throw new SupsupError('E_INTERNAL', `unexpected reply to the load script: ${JSON.stringify(reply)}`);
    }
    const [registryText, flat] = reply as [unknown, unknown[]];
    const applied = Object.fromEntries(
      Array.from({ length: Math.floor(flat.length / 2) }, (_, i) => [String(flat[2 * i]), flat[2 * i + 1]]),
    );
    if (registryText === null || registryText === undefined) {
      if (flat.length > 0) {
        throw new SupsupError(
          'E_STORE_CORRUPT',
          `${this.where()}: ${this.keys.applied} holds offsets but ${this.keys.registry} is missing`,
          { details: { key: this.keys.registry } },
        );
      }
      return null;
    }
    return checkStoredState(
      this.parseRegistry(registryText),
      applied,
      `${this.where()} ${this.keys.registry}`,
    );
  }

  async loadMask(task: number): Promise<Uint8Array> {
    checkTaskArgument(task);
    const client = this.requireClient();
    const bytes = await this.call('loadMask', () => client.getBuffer(this.keys.mask(task)));
    if (bytes !== null) return copyBytes(bytes);
    throw await this.missingMask(task);
  }

  private async missingMask(task: number): Promise<SupsupError> {
    const client = this.requireClient();
    const registryText = await this.call('loadMask', () => client.get(this.keys.registry));
    const registry = registryText === null ? null : (this.parseRegistry(registryText) as Registry);
    return missingMaskError(task, registry, `${this.where()} ${this.keys.mask(task)}`);
  }

  /**
   * The encoded masks of `tasks` with MGET, MASK_READ_CHUNK keys per command, all commands written
   * at once (one connection, pipelined): a few round trips for thousands of masks instead of one
   * each. The buffers are the client's, not copies.
   */
  async loadMasks(tasks: readonly number[]): Promise<Uint8Array[]> {
    for (const task of tasks) checkTaskArgument(task);
    const client = this.requireClient();
    const chunks: Promise<(Buffer | null)[]>[] = [];
    for (let first = 0; first < tasks.length; first += MASK_READ_CHUNK) {
      const keys = tasks.slice(first, first + MASK_READ_CHUNK).map((task) => this.keys.mask(task));
      const reply = this.call('loadMasks', () => client.mgetBuffer(...keys));
      reply.catch(() => {}); // awaited below, in order; a later chunk's failure must not go unhandled
      chunks.push(reply);
    }
    const masks: Uint8Array[] = [];
    for (const [c, chunk] of chunks.entries()) {
      const replies = await chunk;
      for (const [j, bytes] of replies.entries()) {
        const task = tasks[c * MASK_READ_CHUNK + j] as number;
        if (bytes === null) throw await this.missingMask(task);
        masks.push(bytes);
      }
    }
    return masks;
  }

  async loadTrainingState(task: number): Promise<Uint8Array | null> {
    checkTaskArgument(task);
    const client = this.requireClient();
    const bytes = await this.call('loadTrainingState', () => client.getBuffer(this.keys.training(task)));
    return bytes === null ? null : copyBytes(bytes);
  }

  async commit(commit: Commit): Promise<CommitOutcome> {
    const checked = checkCommit(commit);
    const client = this.requireClient();
    const keys: string[] = [this.keys.applied, this.keys.registry, this.keys.events];
    const args: ScriptArg[] = [
      checked.partitionKey,
      checked.appliedOffset,
      JSON.stringify(checked.registry),
      checked.events.length,
      ...checked.events.map((event) => JSON.stringify(event)),
    ];
    for (const write of checked.masks) {
      keys.push(this.keys.mask(write.task), this.keys.training(write.task));
      // Buffers (views, no copy) keep the bytes binary-safe; a plain Uint8Array would be stringified.
      args.push(asBuffer(write.encodedMask));
      if (write.trainingState === null) args.push('D', '');
      else args.push('S', asBuffer(write.trainingState));
    }
    // Safe to resend or retry: see the module comment (the script is fenced on the offset).
    const result = await this.call('commit', () => client.supsupdCommit(keys.length, ...keys, ...args));
    if (result === 1) return 'applied';
    if (result === 0) return 'fenced';
    throw new SupsupError('E_INTERNAL', `unexpected reply to the commit script: ${JSON.stringify(result)}`);
  }

  async readEvents(options: ReadEventsOptions): Promise<StoredEvent[]> {
    const { after, limit } = checkReadEvents(options);
    const client = this.requireClient();
    const start = after === null ? '-' : formatEventId(successorEventId(after));
    const reply = await this.call('readEvents', () =>
      client.xrange(this.keys.events, start, '+', 'COUNT', limit),
    );
    const where = `${this.where()} ${this.keys.events}`;
    return reply.map(([id, fields]) => {
      const at = fields.indexOf('e');
      const json = at >= 0 && at % 2 === 0 ? fields[at + 1] : undefined;
      if (json === undefined) {
        throw new SupsupError('E_STORE_CORRUPT', `${where}: stream entry ${id} has no "e" field`, {
          details: { key: this.keys.events, id },
        });
      }
      return parseStoredEvent(id, json, where);
    });
  }

  async trimEvents(options: TrimEventsOptions): Promise<number> {
    const { olderThanMs, maxEvents } = checkTrimEvents(options);
    const client = this.requireClient();
    const removed = await this.call('trimEvents', () =>
      client.supsupdTrim(this.keys.events, String(olderThanMs), String(maxEvents)),
    );
    if (typeof removed !== 'number') {
      throw new SupsupError('E_INTERNAL', `unexpected reply to the trim script: ${JSON.stringify(removed)}`);
    }
    return removed;
  }

  async acquireLock(name: string, ttlMs: number): Promise<Lease | null> {
    checkLockArguments(name, ttlMs);
    const client = this.requireClient();
    const key = this.keys.lock(name);
    const token = newLeaseToken();
    const reply = await this.call('acquireLock', () => client.set(key, token, 'PX', ttlMs, 'NX'));
    if (reply !== 'OK') return null;
    return {
      name,
      token,
      renew: async () => {
        const live = this.requireClient();
        return (await this.call('renewLock', () => live.supsupdRenew(key, token, String(ttlMs)))) === 1;
      },
      release: async () => {
        const live = this.requireClient();
        await this.call('releaseLock', () => live.supsupdRelease(key, token));
      },
    };
  }

  /** PING within the command timeout; false (never a throw) when closed, disconnected or slow. */
  async ping(): Promise<boolean> {
    const client = this.client;
    if (client === null || this.status !== 'open' || client.status !== 'ready') return false;
    try {
      return (await client.ping()) === 'PONG';
    } catch {
      return false;
    }
  }

  /** QUIT (bounded by the command timeout), then drop the connection. Idempotent; open() may follow. */
  async close(): Promise<void> {
    if (this.opening) await this.opening.catch(() => {});
    const client = this.client;
    this.client = null;
    this.persistenceInfo = null;
    if (this.status === 'open') this.status = 'closed';
    if (client === null) return;
    try {
      if (client.status === 'ready') await client.quit();
    } catch {
      // already gone; disconnect() below
    } finally {
      client.disconnect();
    }
  }

  // -------------------------------------------------------------------------------------------------------------

  private async doOpen(): Promise<void> {
    const options: RedisOptions = {
      retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
      ...this.clientOptions,
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: this.commandTimeoutMs,
      connectTimeout: this.commandTimeoutMs,
      enableAutoPipelining: false,
    };
    const client = (
      this.url === undefined ? new Redis(options) : new Redis(this.url, options)
    ) as StoreClient;
    // Without a listener ioredis prints every connection error; keep the last one for error messages instead.
    client.on('error', (error: Error) => {
      this.lastClientError = error;
    });
    client.defineCommand('supsupdCommit', { lua: COMMIT_SCRIPT });
    client.defineCommand('supsupdLoad', { lua: LOAD_SCRIPT, numberOfKeys: 2, readOnly: true });
    client.defineCommand('supsupdTrim', { lua: TRIM_SCRIPT, numberOfKeys: 1 });
    client.defineCommand('supsupdRenew', { lua: RENEW_SCRIPT, numberOfKeys: 1 });
    client.defineCommand('supsupdRelease', { lua: RELEASE_SCRIPT, numberOfKeys: 1 });
    try {
      const connecting = client.connect();
      connecting.catch(() => {}); // settled by withTimeout's race; never an unhandled rejection
      await withTimeout(connecting, this.commandTimeoutMs * 2, 'connect');
      const [memory, persistence] = await Promise.all([client.info('memory'), client.info('persistence')]);
      const policy = parseInfo(memory).get('maxmemory_policy');
      if (policy !== 'noeviction') {
        throw new SupsupError(
          'E_STORE_POLICY',
          `${this.where(client)}: maxmemory-policy is ${policy ?? 'not reported'}; masks could be evicted ` +
            'silently, so the store requires noeviction',
          { details: { maxmemoryPolicy: policy ?? null } },
        );
      }
      this.persistenceInfo = {
        aof: parseInfo(persistence).get('aof_enabled') === '1',
        rdb: await this.rdbConfigured(client),
      };
    } catch (error) {
      client.disconnect();
      throw this.mapError(error, 'open', client);
    }
    this.client = client;
    this.status = 'open';
  }

  /**
   * Reads the server's eviction policy and persistence again (a server can be restarted with another
   * configuration while the daemon runs): for readiness. Throws E_STORE_UNAVAILABLE when unreachable.
   */
  async policy(): Promise<{ maxmemoryPolicy: string | null; persistence: RedisPersistence }> {
    const client = this.requireClient();
    const [memory, persistence] = await this.call('policy', () =>
      Promise.all([client.info('memory'), client.info('persistence')]),
    );
    this.persistenceInfo = {
      aof: parseInfo(persistence).get('aof_enabled') === '1',
      rdb: await this.rdbConfigured(client),
    };
    return {
      maxmemoryPolicy: parseInfo(memory).get('maxmemory_policy') ?? null,
      persistence: { ...this.persistenceInfo },
    };
  }

  private async rdbConfigured(client: Redis): Promise<boolean> {
    try {
      const reply = (await client.config('GET', 'save')) as unknown;
      return Array.isArray(reply) && typeof reply[1] === 'string' && reply[1].trim() !== '';
    } catch {
      return false; // CONFIG not permitted (ACL, managed Redis): cannot confirm snapshots
    }
  }

  private notOpenState(): 'new' | 'closed' {
    return this.status === 'new' ? 'new' : 'closed';
  }

  private requireClient(): StoreClient {
    if (this.client === null || this.status !== 'open') throw notOpenError('redis', this.notOpenState());
    return this.client;
  }

  private async call<T>(operation: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw this.mapError(error, operation, this.client);
    }
  }

  private parseRegistry(text: unknown): unknown {
    try {
      return JSON.parse(String(text));
    } catch (error) {
      throw new SupsupError(
        'E_STORE_CORRUPT',
        `${this.where()}: ${this.keys.registry} is not valid JSON (${(error as Error).message})`,
        { details: { key: this.keys.registry } },
      );
    }
  }

  /** host:port/db of the server, never the credentials. */
  private where(client: Redis | null = this.client): string {
    const o = client?.options ?? this.clientOptions;
    if (client === null && this.url !== undefined) {
      try {
        const url = new URL(this.url);
        return `redis ${url.host}${url.pathname.length > 1 ? url.pathname : ''}`;
      } catch {
        return 'redis';
      }
    }
    return `redis ${o.host ?? '127.0.0.1'}:${o.port ?? 6379}/${o.db ?? 0}`;
  }

  private mapError(error: unknown, operation: string, client: Redis | null): SupsupError {
    if (error instanceof SupsupError) return error;
    const message = error instanceof Error ? error.message : String(error);
    const where = this.where(client);
    const isReply = error instanceof Error && error.name === 'ReplyError';
    if (isReply) {
      if (/^(STORECORRUPT|WRONGTYPE)/.test(message)) {
        return new SupsupError('E_STORE_CORRUPT', `${where} ${operation}: ${message}`, { cause: error });
      }
      if (/^NOPERM/.test(message)) {
        return new SupsupError('E_STORE_POLICY', `${where} ${operation} refused by ACL: ${message}`, {
          cause: error,
        });
      }
      // Transient server states: out of memory (noeviction), loading, busy script, failover.
      const transient = /^(OOM|LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|READONLY|NOREPLICAS)/.test(
        message,
      );
      return new SupsupError('E_STORE_UNAVAILABLE', `${where} ${operation} failed: ${message}`, {
        retriable: transient,
        cause: error,
        details: { reply: message },
      });
    }
    // Connection refused/reset, timeouts, "Stream isn't writeable", MaxRetriesPerRequestError, …
    const last =
      client?.status !== 'ready' && this.lastClientError && this.lastClientError !== error
        ? ` (${this.lastClientError.message})`
        : '';
    return new SupsupError('E_STORE_UNAVAILABLE', `${where} ${operation} failed: ${message}${last}`, {
      retriable: true,
      cause: error,
    });
  }
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** `key:value` lines of an INFO reply. */
export function parseInfo(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const at = line.indexOf(':');
    if (at > 0 && !line.startsWith('#')) fields.set(line.slice(0, at), line.slice(at + 1).trim());
  }
  return fields;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
