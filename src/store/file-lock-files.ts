/**
 * Files of the file store's named locks (leases): {"token", "expiresAt"}, replaced atomically.
 */
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { newLeaseToken } from './events.js';
import { createExclusive } from './file-lock.js';
import { isRecord } from './file-registry.js';
import type { Lease } from './types.js';

/** How the store runs lock file operations: one at a time, with its error mapping. */
export interface NamedLockContext {
  serialized<T>(fn: () => Promise<T>): Promise<T>;
  fsError(error: unknown, operation: string): unknown;
}

/**
 * Takes the lock file at `path` for `ttlMs`, or null while a live lease holds it. Only one process uses the store
 * directory and the caller serializes lock calls, so an expired (or unreadable) file is simply replaced.
 */
export async function takeNamedLock(
  path: string,
  name: string,
  ttlMs: number,
  context: NamedLockContext,
): Promise<Lease | null> {
  const token = newLeaseToken();
  const content = (): string => `${JSON.stringify({ token, expiresAt: Date.now() + ttlMs })}\n`;
  try {
    if (!(await createExclusive(path, content()))) {
      const current = await readLockFile(path);
      if (current !== null && current.expiresAt > Date.now()) return null;
      await replaceFile(path, content());
    }
  } catch (error) {
    throw context.fsError(error, 'acquireLock');
  }
  const mine = async (): Promise<boolean> => {
    const current = await readLockFile(path);
    return current !== null && current.token === token && current.expiresAt > Date.now();
  };
  return {
    name,
    token,
    renew: () =>
      context.serialized(async () => {
        if (!(await mine())) return false;
        await replaceFile(path, content()).catch((error: unknown) => {
          throw context.fsError(error, 'renewLock');
        });
        return true;
      }),
    release: () =>
      context.serialized(async () => {
        const current = await readLockFile(path);
        if (current?.token === token) await unlink(path).catch(() => {});
      }),
  };
}

/** Atomically replaces `path` (a temp file renamed over it). */
async function replaceFile(path: string, content: string): Promise<void> {
  const temp = `${path}.${newLeaseToken().slice(0, 8)}.tmp`;
  try {
    await open(temp, 'w', 0o644).then(async (handle) => {
      try {
        await handle.writeFile(content, 'utf8');
      } finally {
        await handle.close();
      }
    });
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => {});
    throw error;
  }
}

/** A lock file's token and expiry, or null when it is missing or unreadable. */
async function readLockFile(path: string): Promise<{ token: string; expiresAt: number } | null> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(path, 'utf8'));
  } catch {
    return null;
  }
  if (!isRecord(value) || typeof value.token !== 'string' || typeof value.expiresAt !== 'number') return null;
  return { token: value.token, expiresAt: value.expiresAt };
}
