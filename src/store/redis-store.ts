/**
 * MaskStore on Redis (ioredis). Keys, all under one hash tag so every commit touches a single slot (Cluster-safe):
 *
 *   <ns>:{reg}:registry      registry JSON
 *   <ns>:{reg}:applied       hash: partition key → applied offset (canonical decimal string)
 *   <ns>:{reg}:mask:<task>   encoded mask (binary)
 *   <ns>:{reg}:train:<task>  training state (binary; absent for a frozen mask)
 *   <ns>:{reg}:replay:<task> list: the task's replay log (encoded labelled batches, oldest first)
 *   <ns>:{reg}:events        stream: the event log (one field `e`, the event's JSON; ids are stream ids)
 *   <ns>:{reg}:meta          hash: epoch (random, set by the first commit), sequence (commits applied), fence
 *   <ns>:{reg}:writer        the writer lease: the holder's token `<fence>.<random>` with a PX expiry
 *   <ns>:lock:<name>         named locks (leases): a random token with a PX expiry
 *
 * A commit is ONE Lua script (EVALSHA through ioredis defineCommand, EVAL on NOSCRIPT; see redis-scripts.ts): it checks
 * the writer lease's token, compares the new offset with the stored one and the writer's expected epoch and sequence
 * with the stored ones, and only then writes masks, training states, replay logs, registry, offset and the next
 * sequence. Scripts run
 * atomically, so a commit is all-or-nothing and two writers cannot interleave. The commit's events are XADDed to the
 * events stream inside the same script, so a fenced (repeated) commit appends nothing. The event log needs
 * Redis >= 6.2 (XTRIM MINID).
 *
 * Locks: SET key token NX PX ttl takes one; renew (PEXPIRE) and release (DEL) are Lua scripts that act only while
 * the key still holds the caller's token, so nobody renews or releases a lease that has passed to someone else.
 *
 * Client settings (redis-connection.ts): no offline queue (a command while disconnected fails at once instead of
 * piling up), one retry per request, a command timeout (so no promise hangs on a dead server), lazy connect (open()
 * connects), and a bounded reconnect backoff so readiness recovers within ~2 s of the server coming back.
 *
 * ioredis resends in-flight commands after a reconnect (autoResendUnfulfilledCommands), and a commit that timed
 * out may still have been applied. Both are harmless here: a resent or retried commit carries the same offset,
 * which the script then finds already applied and answers 0 ('fenced') without writing anything.
 */
import type { Redis, RedisOptions } from 'ioredis';
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
import { EMPTY_POSITION, newEpoch } from './position.js';
import {
  type ConnectionSettings,
  connectAndCheck,
  createStoreClient,
  describeServer,
  type RedisPersistence,
  readPolicy,
  type ScriptArg,
  type StoreClient,
} from './redis-connection.js';
import { asBuffer, type RedisKeys, redisError, redisKeys } from './redis-keys.js';
import type {
  Commit,
  CommitOutcome,
  Lease,
  LoadedState,
  MaskStore,
  ReadEventsOptions,
  Registry,
  StoredEvent,
  StorePosition,
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

export class RedisStore implements MaskStore {
  readonly kind = 'redis' as const;
  readonly namespace: string;
  readonly keys: RedisKeys;
  readonly commandTimeoutMs: number;
  private readonly settings: ConnectionSettings;
  private client: StoreClient | null = null;
  private status: 'new' | 'open' | 'closed' = 'new';
  private persistenceInfo: RedisPersistence | null = null;
  private lastClientError: Error | null = null;
  private opening: Promise<void> | null = null;
  /** Token of the writer lease this store object holds ('' when none); sent with every commit. */
  private writerToken = '';

  constructor(options: RedisStoreOptions = {}) {
    this.namespace = options.namespace ?? DEFAULT_REDIS_NAMESPACE;
    this.keys = redisKeys(this.namespace);
    const timeout = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    if (!Number.isInteger(timeout) || timeout <= 0) {
      throw new SupsupError('E_CONFIG', `commandTimeoutMs must be a positive integer, got ${timeout}`);
    }
    this.commandTimeoutMs = timeout;
    this.settings = { url: options.url, clientOptions: options.client ?? {}, commandTimeoutMs: timeout };
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
    const reply = await this.call('load', () =>
      client.supsupdLoad(this.keys.registry, this.keys.applied, this.keys.meta),
    );
    if (!Array.isArray(reply) || !Array.isArray(reply[1]) || !Array.isArray(reply[2])) {
      throw new SupsupError('E_INTERNAL', `unexpected reply to the load script: ${JSON.stringify(reply)}`);
    }
    const [registryText, flat, meta] = reply as [unknown, unknown[], unknown[]];
    const applied = Object.fromEntries(
      Array.from({ length: Math.floor(flat.length / 2) }, (_, i) => [String(flat[2 * i]), flat[2 * i + 1]]),
    );
    if (registryText === null || registryText === undefined) {
      if (flat.length > 0 || (meta[1] !== null && meta[1] !== undefined)) {
        throw new SupsupError(
          'E_STORE_CORRUPT',
          `${this.where()}: ${this.keys.applied} or ${this.keys.meta} holds state but ${this.keys.registry} is missing`,
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

  async position(): Promise<StorePosition> {
    const client = this.requireClient();
    const [epoch, sequence] = await this.call('position', () =>
      client.hmget(this.keys.meta, 'epoch', 'sequence'),
    );
    if (epoch === null || epoch === undefined) return EMPTY_POSITION;
    const count = Number(sequence ?? '0');
    if (!Number.isSafeInteger(count) || count < 0) {
      throw new SupsupError(
        'E_STORE_CORRUPT',
        `${this.where()}: ${this.keys.meta} sequence ${sequence} is invalid`,
        {
          details: { key: this.keys.meta },
        },
      );
    }
    return { epoch, sequence: count };
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

  async loadReplay(task: number): Promise<Uint8Array[]> {
    checkTaskArgument(task);
    const client = this.requireClient();
    const entries = await this.call('loadReplay', () => client.lrangeBuffer(this.keys.replay(task), 0, -1));
    return entries.map((bytes) => copyBytes(bytes));
  }

  async commit(commit: Commit): Promise<CommitOutcome> {
    const checked = checkCommit(commit);
    const client = this.requireClient();
    const keys: string[] = [
      this.keys.applied,
      this.keys.registry,
      this.keys.events,
      this.keys.meta,
      this.keys.writer,
    ];
    const expect = commit.expect;
    const args: ScriptArg[] = [
      checked.partitionKey,
      checked.appliedOffset,
      JSON.stringify(checked.registry),
      this.writerToken,
      expect === undefined ? '0' : '1',
      expect?.epoch ?? '',
      String(expect?.sequence ?? 0),
      newEpoch(),
      checked.events.length,
      ...checked.events.map((event) => JSON.stringify(event)),
    ];
    args.push(checked.masks.length);
    for (const write of checked.masks) {
      keys.push(this.keys.mask(write.task), this.keys.training(write.task));
      // Buffers (views, no copy) keep the bytes binary-safe; a plain Uint8Array would be stringified.
      args.push(asBuffer(write.encodedMask));
      if (write.trainingState === null) args.push('D', '');
      else args.push('S', asBuffer(write.trainingState));
    }
    args.push(checked.replay.length);
    for (const write of checked.replay) {
      keys.push(this.keys.replay(write.task));
      args.push(write.keep, write.append.length, ...write.append.map(asBuffer));
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

  async acquireWriter(ttlMs: number): Promise<Lease | null> {
    checkLockArguments('writer', ttlMs);
    const client = this.requireClient();
    const key = this.keys.writer;
    const random = newLeaseToken();
    const reply = await this.call('acquireWriter', () =>
      client.supsupdAcquireWriter(key, this.keys.meta, random, String(ttlMs)),
    );
    if (typeof reply !== 'string') return null;
    const token = reply;
    this.writerToken = token;
    return {
      name: 'writer',
      token,
      renew: async () => {
        const live = this.requireClient();
        return (await this.call('renewWriter', () => live.supsupdRenew(key, token, String(ttlMs)))) === 1;
      },
      release: async () => {
        if (this.writerToken === token) this.writerToken = '';
        const live = this.client;
        if (live === null || this.status !== 'open') return;
        await this.call('releaseWriter', () => live.supsupdRelease(key, token));
      },
    };
  }

  async writerHolder(): Promise<{ token: string; expiresInMs: number } | null> {
    const client = this.requireClient();
    const key = this.keys.writer;
    const [token, ttl] = await this.call('writerHolder', () =>
      Promise.all([client.get(key), client.pttl(key)]),
    );
    return token === null || ttl <= 0 ? null : { token, expiresInMs: ttl };
  }

  /** The server's eviction and persistence policy as a readiness problem (re-read each call). */
  async durabilityProblem(allowVolatile: boolean): Promise<string | null> {
    const policy = await this.policy();
    if (policy.maxmemoryPolicy !== 'noeviction') {
      return `store evicts keys (maxmemory-policy ${policy.maxmemoryPolicy ?? 'unknown'})`;
    }
    if (!policy.persistence.aof && !policy.persistence.rdb && !allowVolatile) {
      return 'store persists nothing (no AOF, no RDB)';
    }
    return null;
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
    const token = this.writerToken;
    this.writerToken = '';
    if (client !== null && token !== '' && client.status === 'ready') {
      // Hands the writer lease on at once (a standby need not wait for its expiry); best effort.
      await client.supsupdRelease(this.keys.writer, token).catch(() => {});
    }
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
    // Without a listener ioredis prints every connection error; keep the last one for error messages instead.
    const client = createStoreClient(this.settings, (error) => {
      this.lastClientError = error;
    });
    try {
      this.persistenceInfo = await connectAndCheck(client, this.commandTimeoutMs, this.where(client));
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
    const policy = await this.call('policy', () => readPolicy(client));
    this.persistenceInfo = policy.persistence;
    return { maxmemoryPolicy: policy.maxmemoryPolicy, persistence: { ...policy.persistence } };
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
    return describeServer(client, this.settings);
  }

  private mapError(error: unknown, operation: string, client: Redis | null): SupsupError {
    const last = client?.status !== 'ready' ? this.lastClientError : null;
    return redisError(error, `${this.where(client)} ${operation}`, last);
  }
}

export type { RedisPersistence } from './redis-connection.js';
export { checkNamespace, parseInfo, type RedisKeys, redisKeys } from './redis-keys.js';
