/**
 * Exclusive lock on a FileStore directory: a `lock` file created with O_EXCL that holds the owner's pid, host and
 * a random token. A lock whose pid is dead (on this host) is stale and is taken over; a live one is a conflict.
 *
 * Takeover is race-safe between two processes: the stale file is first renamed aside (only one renamer can
 * win), then its content is compared with what was judged stale. If a fresh lock was moved by mistake, it is
 * put back with link() (which never overwrites) and the caller gets E_STORE_CONFLICT.
 */
import { randomBytes } from 'node:crypto';
import { link, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { SupsupError } from '../errors.js';

/** A lock file that cannot be parsed counts as live for this long after its last change (it may be mid-write). */
const UNPARSEABLE_GRACE_MS = 10_000;
const ACQUIRE_ATTEMPTS = 5;

export interface FileLock {
  readonly path: string;
  /** True while the lock file still holds this lock's token. */
  held(): Promise<boolean>;
  /** Removes the lock file if it is still this lock's. Idempotent. */
  release(): Promise<void>;
}

interface LockOwner {
  readonly pid: number | null;
  readonly host: string | null;
}

function errno(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | null)?.code;
}

function parseOwner(raw: string): LockOwner {
  const bare = raw.trim();
  if (/^[1-9][0-9]{0,9}$/.test(bare)) return { pid: Number(bare), host: null };
  try {
    const value = JSON.parse(raw) as { pid?: unknown; host?: unknown };
    if (typeof value.pid === 'number' && Number.isSafeInteger(value.pid) && value.pid > 0) {
      return { pid: value.pid, host: typeof value.host === 'string' ? value.host : null };
    }
  } catch {
    // unparseable
  }
  return { pid: null, host: null };
}

/** True when `pid` names a running process (EPERM: it runs, under another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errno(error) === 'EPERM';
  }
}

function ownerIsLive(owner: LockOwner, modifiedMs: number): boolean {
  if (owner.pid === null) return Date.now() - modifiedMs < UNPARSEABLE_GRACE_MS;
  // A pid on another host cannot be checked from here.
  if (owner.host !== null && owner.host !== hostname()) return true;
  // Our own pid: another store object of this process holds the directory.
  if (owner.pid === process.pid) return true;
  return processAlive(owner.pid);
}

function conflict(path: string, owner: LockOwner | null, detail: string): SupsupError {
  const who = owner?.pid ? ` by pid ${owner.pid}${owner.host ? ` on ${owner.host}` : ''}` : '';
  return new SupsupError(
    'E_STORE_CONFLICT',
    `store directory is locked${who}: ${path} (${detail}; remove the file only if no daemon uses the directory)`,
    { details: { path, pid: owner?.pid ?? null, host: owner?.host ?? null } },
  );
}

async function readLock(path: string): Promise<{ raw: string; modifiedMs: number } | null> {
  try {
    const [raw, info] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    return { raw, modifiedMs: info.mtimeMs };
  } catch (error) {
    if (errno(error) === 'ENOENT') return null;
    throw error;
  }
}

/** Creates `path` with `content` (fsynced) unless it exists (false then); a failed write leaves no file. */
export async function createExclusive(path: string, content: string): Promise<boolean> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'wx', 0o644);
  } catch (error) {
    if (errno(error) === 'EEXIST') return false;
    throw error;
  }
  try {
    await handle.writeFile(content, 'utf8');
    await handle.sync();
  } catch (error) {
    await handle.close().catch(() => {});
    await unlink(path).catch(() => {});
    throw error;
  }
  await handle.close();
  return true;
}

/** Takes the lock at `path` or throws E_STORE_CONFLICT. Other failures are thrown as they come (fs errors). */
export async function acquireFileLock(path: string): Promise<FileLock> {
  const token = randomBytes(12).toString('hex');
  const content = `${JSON.stringify({ pid: process.pid, host: hostname(), token, since: new Date().toISOString() })}\n`;
  let lastOwner: LockOwner | null = null;
  for (let attempt = 0; attempt < ACQUIRE_ATTEMPTS; attempt++) {
    if (await createExclusive(path, content)) return makeLock(path, content);
    const existing = await readLock(path);
    if (existing === null) continue; // released meanwhile: try again
    const owner = parseOwner(existing.raw);
    lastOwner = owner;
    if (ownerIsLive(owner, existing.modifiedMs)) throw conflict(path, owner, 'its owner is alive');
    // Stale: move it aside, then make sure what was moved is the file judged stale.
    const aside = `${path}.stale-${token}`;
    try {
      await rename(path, aside);
    } catch (error) {
      if (errno(error) === 'ENOENT') continue;
      throw error;
    }
    const moved = await readFile(aside, 'utf8').catch(() => null);
    if (moved !== existing.raw) {
      // Another process took the stale lock over between our read and our rename: give its lock back.
      await link(aside, path).catch(() => {});
      await unlink(aside).catch(() => {});
      throw conflict(
        path,
        moved === null ? null : parseOwner(moved),
        'another process took it over just now',
      );
    }
    await unlink(aside).catch(() => {});
  }
  throw conflict(path, lastOwner, `not acquired after ${ACQUIRE_ATTEMPTS} attempts`);
}

function makeLock(path: string, content: string): FileLock {
  let released = false;
  const held = async (): Promise<boolean> => {
    if (released) return false;
    try {
      return (await readFile(path, 'utf8')) === content;
    } catch {
      return false;
    }
  };
  return {
    path,
    held,
    async release(): Promise<void> {
      if (released) return;
      const mine = await held();
      released = true;
      if (mine) await unlink(path).catch(() => {});
    },
  };
}
