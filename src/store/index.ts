/**
 * Persistent state of the daemon (see types.ts): pick an implementation with {@link openStore}, then call
 * `open()` on the result.
 */
import { SupsupError } from '../errors.js';
import { FileStore } from './file-store.js';
import { MemoryStore } from './memory-store.js';
import { DEFAULT_REDIS_NAMESPACE, RedisStore } from './redis-store.js';
import type { MaskStore } from './types.js';

export type StoreConfig =
  | { readonly kind: 'memory' }
  | { readonly kind: 'file'; readonly dir: string }
  | {
      readonly kind: 'redis';
      readonly url: string;
      readonly namespace: string;
      readonly commandTimeoutMs?: number;
    };

/** The store `config` describes, not yet opened (call `open()`). Throws E_CONFIG for an invalid config. */
export function openStore(config: StoreConfig): MaskStore {
  switch (config?.kind) {
    case 'memory':
      return new MemoryStore();
    case 'file':
      return new FileStore(config.dir);
    case 'redis':
      if (typeof config.url !== 'string' || config.url.length === 0) {
        throw new SupsupError('E_CONFIG', 'redis store needs a url (redis://host:port/db)');
      }
      return new RedisStore({
        url: config.url,
        namespace: config.namespace ?? DEFAULT_REDIS_NAMESPACE,
        commandTimeoutMs: config.commandTimeoutMs,
      });
    default:
      throw new SupsupError(
        'E_CONFIG',
        `unknown store kind ${JSON.stringify((config as { kind?: unknown } | undefined)?.kind)}; ` +
          'expected memory, file or redis',
      );
  }
}

export { compareEventIds, MAX_READ_EVENTS } from './events.js';
export {
  FILE_STORE_FORMAT,
  FILE_STORE_FORMAT_VERSION,
  FileStore,
  type FileStoreFailpoint,
  type FileStoreOptions,
} from './file-store.js';
export { MemoryStore } from './memory-store.js';
export { compareOffsets, isOffset, MAX_OFFSET, parseOffset } from './offsets.js';
export {
  checkNamespace,
  DEFAULT_COMMAND_TIMEOUT_MS,
  DEFAULT_REDIS_NAMESPACE,
  type RedisKeys,
  type RedisPersistence,
  RedisStore,
  type RedisStoreOptions,
  redisKeys,
} from './redis-store.js';
export type * from './types.js';
export { checkRegistry, ShapeError } from './validate.js';
