/**
 * Key layout of a Redis store namespace (see redis-store.ts), its error mapping and small helpers of the store.
 */
import { SupsupError } from '../errors.js';

const NAMESPACE_PATTERN = /^[A-Za-z0-9_:.-]{1,64}$/;

export interface RedisKeys {
  readonly registry: string;
  readonly applied: string;
  /** The event log (a stream). */
  readonly events: string;
  /** Hash: epoch, sequence, fence (see the module comment). */
  readonly meta: string;
  /** The writer lease. */
  readonly writer: string;
  mask(task: number): string;
  training(task: number): string;
  /** A task's replay log: a list of encoded labelled batches, oldest first. */
  replay(task: number): string;
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
    meta: `${base}:meta`,
    writer: `${base}:writer`,
    mask: (task) => `${base}:mask:${task}`,
    training: (task) => `${base}:train:${task}`,
    replay: (task) => `${base}:replay:${task}`,
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

export function asBuffer(bytes: Uint8Array): Buffer {
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

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * A SupsupError for a failed Redis call (`what`: server and operation): the commit script's refusals and
 * corruption reports, ACL refusals, transient server states (retriable) and connection failures (retriable,
 * with the client's last connection error when it differs).
 */
export function redisError(error: unknown, what: string, lastClientError: Error | null): SupsupError {
  if (error instanceof SupsupError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof Error && error.name === 'ReplyError') {
    if (/^REGRESSED/.test(message)) {
      return new SupsupError('E_STORE_REGRESSED', `${what} refused: ${message}`, { cause: error });
    }
    if (/^(CONFLICT|LEASELOST|WRITERHELD)/.test(message)) {
      return new SupsupError('E_STORE_CONFLICT', `${what} refused: ${message}`, { cause: error });
    }
    if (/^(STORECORRUPT|WRONGTYPE)/.test(message)) {
      return new SupsupError('E_STORE_CORRUPT', `${what}: ${message}`, { cause: error });
    }
    if (/^NOPERM/.test(message)) {
      return new SupsupError('E_STORE_POLICY', `${what} refused by ACL: ${message}`, { cause: error });
    }
    // Transient server states: out of memory (noeviction), loading, busy script, failover.
    const transient = /^(OOM|LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|READONLY|NOREPLICAS)/.test(message);
    return new SupsupError('E_STORE_UNAVAILABLE', `${what} failed: ${message}`, {
      retriable: transient,
      cause: error,
      details: { reply: message },
    });
  }
  // Connection refused/reset, timeouts, "Stream isn't writeable", MaxRetriesPerRequestError, …
  const last = lastClientError !== null && lastClientError !== error ? ` (${lastClientError.message})` : '';
  return new SupsupError('E_STORE_UNAVAILABLE', `${what} failed: ${message}${last}`, {
    retriable: true,
    cause: error,
  });
}
