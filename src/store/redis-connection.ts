/**
 * The Redis store's connection: an ioredis client with the store's safety settings and its Lua
 * scripts defined, the checks open() makes of the server (database, eviction policy, persistence),
 * and how the server is named in errors (host:port/db, never the credentials).
 */
import { Redis, type RedisOptions } from 'ioredis';
import { SupsupError } from '../errors.js';
import { parseInfo, withTimeout } from './redis-keys.js';
import {
  ACQUIRE_WRITER_SCRIPT,
  COMMIT_SCRIPT,
  LOAD_SCRIPT,
  RELEASE_SCRIPT,
  RENEW_SCRIPT,
  TRIM_SCRIPT,
} from './redis-scripts.js';

/** What the server persists, as found by open(). The daemon decides whether "neither" is acceptable. */
export interface RedisPersistence {
  /** `aof_enabled:1` in INFO persistence. */
  readonly aof: boolean;
  /** RDB snapshot points configured (`CONFIG GET save` non-empty); false when CONFIG is not permitted. */
  readonly rdb: boolean;
}

export type ScriptArg = string | Buffer | number;

interface StoreScripts {
  supsupdCommit(numKeys: number, ...args: ScriptArg[]): Promise<unknown>;
  supsupdLoad(registryKey: string, appliedKey: string, metaKey: string): Promise<unknown>;
  supsupdAcquireWriter(writerKey: string, metaKey: string, random: string, ttlMs: string): Promise<unknown>;
  supsupdTrim(eventsKey: string, minId: string, maxLength: string): Promise<unknown>;
  supsupdRenew(lockKey: string, token: string, ttlMs: string): Promise<unknown>;
  supsupdRelease(lockKey: string, token: string): Promise<unknown>;
}

/** An ioredis client with the store's scripts as commands. */
export type StoreClient = Redis & StoreScripts;

export interface ConnectionSettings {
  readonly url: string | undefined;
  readonly clientOptions: RedisOptions;
  readonly commandTimeoutMs: number;
}

/**
 * A client, not yet connected: no offline queue, one retry per request, the command timeout (also
 * the connect timeout), lazy connect and a bounded reconnect backoff take precedence over the
 * caller's options. `onError` receives the client's connection errors (ioredis prints them otherwise).
 */
export function createStoreClient(
  settings: ConnectionSettings,
  onError: (error: Error) => void,
): StoreClient {
  const options: RedisOptions = {
    retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    ...settings.clientOptions,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: settings.commandTimeoutMs,
    connectTimeout: settings.commandTimeoutMs,
    enableAutoPipelining: false,
  };
  const client = (
    settings.url === undefined ? new Redis(options) : new Redis(settings.url, options)
  ) as StoreClient;
  client.on('error', onError);
  client.defineCommand('supsupdCommit', { lua: COMMIT_SCRIPT });
  client.defineCommand('supsupdLoad', { lua: LOAD_SCRIPT, numberOfKeys: 3, readOnly: true });
  client.defineCommand('supsupdAcquireWriter', { lua: ACQUIRE_WRITER_SCRIPT, numberOfKeys: 2 });
  client.defineCommand('supsupdTrim', { lua: TRIM_SCRIPT, numberOfKeys: 1 });
  client.defineCommand('supsupdRenew', { lua: RENEW_SCRIPT, numberOfKeys: 1 });
  client.defineCommand('supsupdRelease', { lua: RELEASE_SCRIPT, numberOfKeys: 1 });
  return client;
}

/**
 * Connects `client` (bounded by twice the command timeout) and checks the server: the database is
 * selected (else E_CONFIG) and `maxmemory-policy` is noeviction (else E_STORE_POLICY). Returns what
 * the server persists.
 */
export async function connectAndCheck(
  client: StoreClient,
  commandTimeoutMs: number,
  where: string,
): Promise<RedisPersistence> {
  const connecting = client.connect();
  connecting.catch(() => {}); // settled by withTimeout's race; never an unhandled rejection
  await withTimeout(connecting, commandTimeoutMs * 2, 'connect');
  await checkDatabase(client, where);
  const [memory, persistence] = await Promise.all([client.info('memory'), client.info('persistence')]);
  const policy = parseInfo(memory).get('maxmemory_policy');
  if (policy !== 'noeviction') {
    throw new SupsupError(
      'E_STORE_POLICY',
      `${where}: maxmemory-policy is ${policy ?? 'not reported'}; masks could be evicted ` +
        'silently, so the store requires noeviction',
      { details: { maxmemoryPolicy: policy ?? null } },
    );
  }
  return { aof: parseInfo(persistence).get('aof_enabled') === '1', rdb: await rdbConfigured(client) };
}

/** The server's eviction policy and persistence, read again (a server may restart with another configuration). */
export async function readPolicy(
  client: Redis,
): Promise<{ maxmemoryPolicy: string | null; persistence: RedisPersistence }> {
  const [memory, persistence] = await Promise.all([client.info('memory'), client.info('persistence')]);
  return {
    maxmemoryPolicy: parseInfo(memory).get('maxmemory_policy') ?? null,
    persistence: { aof: parseInfo(persistence).get('aof_enabled') === '1', rdb: await rdbConfigured(client) },
  };
}

/**
 * ioredis sends SELECT for the URL's database on connect but goes on with database 0 when the server refuses
 * it: select it again here and fail with E_CONFIG instead of writing to another database.
 */
async function checkDatabase(client: Redis, where: string): Promise<void> {
  const db = client.options.db ?? 0;
  try {
    await client.select(db);
  } catch (error) {
    throw new SupsupError(
      'E_CONFIG',
      `${where}: database ${db} cannot be selected (${error instanceof Error ? error.message : String(error)})`,
      { cause: error, details: { db } },
    );
  }
}

async function rdbConfigured(client: Redis): Promise<boolean> {
  try {
    const reply = (await client.config('GET', 'save')) as unknown;
    return Array.isArray(reply) && typeof reply[1] === 'string' && reply[1].trim() !== '';
  } catch {
    return false; // CONFIG not permitted (ACL, managed Redis): cannot confirm snapshots
  }
}

/** host:port/db of the server, never the credentials. */
export function describeServer(client: Redis | null, settings: ConnectionSettings): string {
  const o = client?.options ?? settings.clientOptions;
  if (client === null && settings.url !== undefined) {
    try {
      const url = new URL(settings.url);
      return `redis ${url.host}${url.pathname.length > 1 ? url.pathname : ''}`;
    } catch {
      return 'redis';
    }
  }
  return `redis ${o.host ?? '127.0.0.1'}:${o.port ?? 6379}/${o.db ?? 0}`;
}
