/**
 * Throw-away `redis-server` instances for durability tests (AOF on by default), plus helpers for tests that use
 * the shared Redis on 127.0.0.1:6379 under a unique key prefix. Never FLUSHALL/FLUSHDB the shared Redis: delete
 * your own prefix with {@link deleteKeysWithPrefix}.
 *
 * No npm client is needed: {@link respCommand} speaks RESP2 over a raw socket.
 */
import type { ChildProcess } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { freePort, LOOPBACK } from './ports.js';
import {
  hasExited,
  makeServiceDir,
  removeServiceDir,
  signalChild,
  sleep,
  spawnService,
  tailFile,
  terminate,
  waitForExit,
} from './proc.js';

/** Host/port of the machine's shared Redis (persistence off; shared with other tests and processes). */
export const SHARED_REDIS = { host: LOOPBACK, port: 6379, url: `redis://${LOOPBACK}:6379` } as const;

// ---------------------------------------------------------------------------------------------------------------
// RESP2 over a raw socket

export class RespError extends Error {}

export type RespValue = string | number | null | RespValue[];

function encodeCommand(args: (string | number | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = Buffer.isBuffer(arg) ? arg : Buffer.from(String(arg), 'utf8');
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** Parse one RESP2 reply at `offset`; undefined when `buf` does not hold a complete reply yet. */
function parseReply(buf: Buffer, offset: number): { value: RespValue | RespError; next: number } | undefined {
  const lineEnd = buf.indexOf('\r\n', offset);
  if (lineEnd < 0) return undefined;
  const type = String.fromCharCode(buf[offset]);
  const line = buf.toString('utf8', offset + 1, lineEnd);
  const next = lineEnd + 2;
  switch (type) {
    case '+':
      return { value: line, next };
    case '-':
      return { value: new RespError(line), next };
    case ':':
      return { value: Number(line), next };
    case '$': {
      const len = Number(line);
      if (len < 0) return { value: null, next };
      if (buf.length < next + len + 2) return undefined;
      return { value: buf.toString('utf8', next, next + len), next: next + len + 2 };
    }
    case '*': {
      const count = Number(line);
      if (count < 0) return { value: null, next };
      const items: RespValue[] = [];
      let at = next;
      for (let i = 0; i < count; i++) {
        const item = parseReply(buf, at);
        if (!item) return undefined;
        if (item.value instanceof RespError) return { value: item.value, next: item.next };
        items.push(item.value);
        at = item.next;
      }
      return { value: items, next: at };
    }
    default:
      throw new Error(`unexpected RESP type byte ${JSON.stringify(type)}`);
  }
}

/**
 * Send one command on a fresh connection and return the reply (error replies reject with {@link RespError}).
 * Example: `await respCommand(port, ['SET', 'k', 'v'])`.
 */
export function respCommand(
  port: number,
  args: (string | number | Buffer)[],
  options: { host?: string; timeoutMs?: number } = {},
): Promise<RespValue> {
  const host = options.host ?? LOOPBACK;
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    let buffered = Buffer.alloc(0);
    let settled = false;
    const finish = (error: Error | undefined, value?: RespValue): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(value ?? null);
    };
    const timer = setTimeout(
      () =>
        finish(
          new Error(`redis ${host}:${port} ${String(args[0])}: no reply in ${options.timeoutMs ?? 5000} ms`),
        ),
      options.timeoutMs ?? 5000,
    );
    socket.once('connect', () => socket.write(encodeCommand(args)));
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      let reply: ReturnType<typeof parseReply>;
      try {
        reply = parseReply(buffered, 0);
      } catch (error) {
        finish(error as Error);
        return;
      }
      if (!reply) return;
      if (reply.value instanceof RespError) finish(reply.value);
      else finish(undefined, reply.value);
    });
    socket.once('error', (error) => finish(error));
    socket.once('close', () =>
      finish(new Error(`redis ${host}:${port} closed the connection before replying`)),
    );
  });
}

/** True when PING on host:port answers PONG. */
export async function ping(port: number, host = LOOPBACK, timeoutMs = 1000): Promise<boolean> {
  try {
    return (await respCommand(port, ['PING'], { host, timeoutMs })) === 'PONG';
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Shared Redis (6379): unique prefixes, scoped cleanup

/**
 * A key prefix no other test run will use, e.g. `supsupd:test:ledger:1234:lx3k9a:9f2c1b:`.
 * Only [A-Za-z0-9:_-] characters, so it is safe in SCAN MATCH patterns and ioredis `keyPrefix`.
 */
export function uniquePrefix(name: string): string {
  const safe = name.replace(/[^A-Za-z0-9_-]+/g, '-').slice(0, 40) || 'test';
  return `supsupd:test:${safe}:${process.pid}:${Date.now().toString(36)}:${randomBytes(3).toString('hex')}:`;
}

function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

/**
 * Delete every key starting with `prefix` (SCAN + UNLINK; never FLUSH*). Refuses prefixes shorter than 8
 * characters so a typo cannot wipe the shared Redis. Returns the number of keys removed.
 */
export async function deleteKeysWithPrefix(
  prefix: string,
  options: { port?: number; host?: string } = {},
): Promise<number> {
  if (prefix.length < 8)
    throw new Error(`refusing to delete keys for the short prefix ${JSON.stringify(prefix)}`);
  const port = options.port ?? SHARED_REDIS.port;
  const host = options.host ?? SHARED_REDIS.host;
  let cursor = '0';
  let removed = 0;
  do {
    const reply = await respCommand(
      port,
      ['SCAN', cursor, 'MATCH', `${globEscape(prefix)}*`, 'COUNT', 1000],
      { host },
    );
    if (!Array.isArray(reply) || reply.length !== 2 || !Array.isArray(reply[1])) {
      throw new Error(`unexpected SCAN reply ${JSON.stringify(reply)}`);
    }
    cursor = String(reply[0]);
    const keys = reply[1].map(String);
    if (keys.length > 0) removed += Number(await respCommand(port, ['UNLINK', ...keys], { host }));
  } while (cursor !== '0');
  return removed;
}

// ---------------------------------------------------------------------------------------------------------------
// Own redis-server

let redisProbe: boolean | undefined;

/** True when `redis-server --version` runs. */
export function redisServerAvailable(): boolean {
  if (redisProbe === undefined) {
    const result = spawnSync('redis-server', ['--version'], { encoding: 'utf8', timeout: 10_000 });
    redisProbe = !result.error && result.status === 0;
  }
  return redisProbe;
}

/** Like requireKafkaOrSkip: skip loudly without redis-server, throw under CI=true. */
export function requireRedisServerOrSkip(t: TestContext): boolean {
  if (redisServerAvailable()) return true;
  const message = `test "${t.name}" needs redis-server on PATH`;
  if (process.env.CI === 'true') throw new Error(`${message}; CI=true, so this is a failure, not a skip`);
  const bar = '!'.repeat(100);
  console.error(`\n${bar}\n!!! SKIPPED: ${message}\n${bar}\n`);
  t.skip(`SKIPPED: ${message}`);
  return false;
}

export interface RedisServer {
  port: number;
  /** redis://127.0.0.1:PORT */
  url: string;
  /** --dir of the server (AOF lives in <dir>/appendonlydir); removed by stop(). */
  dir: string;
  /** pid of the running redis-server (changes after restart()). */
  readonly pid: number;
  logFile: string;
  /** SHUTDOWN via SIGTERM (Redis fsyncs the AOF), SIGKILL after 10 s, then remove the dir. Idempotent. */
  stop(): Promise<void>;
  /** Send a signal (default SIGKILL). No-op once it has exited. */
  kill(signal?: NodeJS.Signals): void;
  /** Start again on the same dir and port (stopping it first with SIGTERM if it still runs); waits for PING. */
  restart(): Promise<void>;
}

export interface StartRedisOptions {
  /** AOF with appendfsync everysec (default true). */
  appendonly?: boolean;
  /** Extra redis-server arguments, e.g. ['--maxmemory', '10mb', '--maxmemory-policy', 'noeviction']. */
  extraArgs?: string[];
  /** Readiness timeout (default 15 s). */
  readyTimeoutMs?: number;
}

function redisArgs(port: number, dir: string, logFile: string, options: StartRedisOptions): string[] {
  const appendonly = options.appendonly ?? true;
  return [
    '--port',
    String(port),
    '--bind',
    LOOPBACK,
    '--dir',
    dir,
    '--save',
    '',
    '--appendonly',
    appendonly ? 'yes' : 'no',
    '--appendfsync',
    'everysec',
    '--daemonize',
    'no',
    '--logfile',
    logFile,
    ...(options.extraArgs ?? []),
  ];
}

class RedisStartError extends Error {
  constructor(
    message: string,
    readonly bindConflict: boolean,
  ) {
    super(message);
  }
}

async function waitForRedis(
  child: ChildProcess,
  port: number,
  logFile: string,
  timeoutMs: number,
): Promise<void> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (hasExited(child)) {
      const tail = tailFile(logFile, 30);
      throw new RedisStartError(
        `redis-server (pid ${child.pid}) on port ${port} exited during startup with ${child.exitCode ?? child.signalCode}\n` +
          `--- ${logFile} (tail) ---\n${tail}`,
        /Address already in use/i.test(tail),
      );
    }
    try {
      // PING answers while the AOF is still loading in some versions; wait for loading:0 as well.
      if ((await respCommand(port, ['PING'], { timeoutMs: 1000 })) === 'PONG') {
        const info = String(await respCommand(port, ['INFO', 'persistence'], { timeoutMs: 1000 }));
        if (/^loading:0\r?$/m.test(info)) return;
      }
    } catch {
      // not up yet, or -LOADING
    }
    await sleep(50);
  }
  throw new RedisStartError(
    `redis-server (pid ${child.pid}) on port ${port} did not answer PING within ${timeoutMs} ms\n` +
      `--- ${logFile} (tail) ---\n${tailFile(logFile, 30)}`,
    false,
  );
}

/** Start a private redis-server on a free loopback port in a new temp dir and wait for PING. */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  const timeoutMs = options.readyTimeoutMs ?? 15_000;
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const dir = makeServiceDir('redis');
    const logFile = join(dir, 'redis.log');
    const outFile = join(dir, 'stdout.log');
    const args = redisArgs(port, dir, logFile, options);
    const spawnRedis = (): ChildProcess => {
      const child = spawnService({ command: 'redis-server', args, cwd: dir, outFile, dir });
      if (child.pid === undefined) throw new Error('could not spawn redis-server (is it on PATH?)');
      return child;
    };
    let child: ChildProcess | undefined;
    try {
      child = spawnRedis();
      await waitForRedis(child, port, logFile, timeoutMs);
    } catch (error) {
      if (child) await terminate(child, 2000).catch(() => {});
      await removeServiceDir(dir);
      if (error instanceof RedisStartError && error.bindConflict && attempt < 3) continue;
      throw error;
    }
    let current = child;
    let stopping: Promise<void> | undefined;
    return {
      port,
      url: `redis://${LOOPBACK}:${port}`,
      dir,
      get pid(): number {
        return current.pid ?? -1;
      },
      logFile,
      kill(signal: NodeJS.Signals = 'SIGKILL'): void {
        signalChild(current, signal);
      },
      async restart(): Promise<void> {
        if (stopping) throw new Error('restart() after stop()');
        if (!hasExited(current)) await terminate(current, 10_000);
        else await waitForExit(current, 5000);
        current = spawnRedis();
        await waitForRedis(current, port, logFile, timeoutMs);
      },
      stop(): Promise<void> {
        stopping ??= (async () => {
          await terminate(current, 10_000);
          await removeServiceDir(dir);
        })();
        return stopping;
      },
    };
  }
}
