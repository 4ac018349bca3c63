/**
 * The event log and the named locks of every MaskStore: MemoryStore, FileStore (temp dir) and RedisStore (the
 * shared Redis on 127.0.0.1:6379 under a unique namespace, its keys deleted afterwards; never FLUSH*).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { appendFile, mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { encodeMask, maskChecksum } from '../../src/codec/mask-codec.js';
import { isSupsupError } from '../../src/errors.js';
import type { DaemonEvent } from '../../src/records.js';
import {
  type Commit,
  compareEventIds,
  FileStore,
  type MaskStore,
  MemoryStore,
  RedisStore,
  redisKeys,
  type StoredEvent,
} from '../../src/store/index.js';
import { deleteKeysWithPrefix, ping, respCommand, SHARED_REDIS, uniquePrefix } from '../harness/redis.js';

const ARCH = '784-300-100-10';
const SEED = 7;

function discovered(task: number, offset: number): DaemonEvent {
  return {
    type: 'task_discovered',
    task,
    at: { topic: 'in', partition: 0, offset: String(offset) },
    time: new Date().toISOString(),
  };
}

/** A commit of task 0 at `offset` carrying `events`. */
function commitWith(offset: number, events: DaemonEvent[], partitionKey = 'in/0'): Commit {
  const encodedMask = encodeMask(
    { archKey: ARCH, seed: SEED, taskId: 0, version: offset + 1 },
    new Uint8Array(randomBytes(16)),
  );
  const meta = {
    task: 0,
    version: offset + 1,
    frozen: false,
    trainSteps: offset,
    bornAt: { topic: 'in', partition: 0, offset: '0' },
    bornTime: '2024-01-01T00:00:00.000Z',
    checksum: maskChecksum(encodedMask),
  };
  return {
    partitionKey,
    appliedOffset: String(offset),
    registry: { archKey: ARCH, seed: SEED, tasks: [meta] },
    masks: [{ task: 0, encodedMask, trainingState: null }],
    events,
  };
}

async function allEvents(store: MaskStore): Promise<StoredEvent[]> {
  return store.readEvents({ limit: 10_000 });
}

function tasksOf(events: StoredEvent[]): number[] {
  return events.map((stored) => (stored.event.type === 'task_discovered' ? stored.event.task : -1));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isSupsupError(error), `expected a SupsupError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  });
}

interface Subject {
  store: MaskStore;
  reopen(): MaskStore;
  cleanup(): Promise<void>;
}

const sharedRedisUp = await ping(SHARED_REDIS.port);
if (!sharedRedisUp) {
  const message = `the shared Redis on ${SHARED_REDIS.url} does not answer PING`;
  if (process.env.CI === 'true') throw new Error(`${message}; CI=true, so this is a failure`);
  console.error(
    `\n${'!'.repeat(100)}\n!!! SKIPPING the RedisStore event log: ${message}\n${'!'.repeat(100)}\n`,
  );
}

const tempDirs: string[] = [];
after(async () => {
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'supsupd-events-test-'));
  tempDirs.push(dir);
  return dir;
}

const implementations: { name: string; skip?: string | false; make(name: string): Promise<Subject> }[] = [
  {
    name: 'MemoryStore',
    async make() {
      const store = new MemoryStore();
      return { store, reopen: () => store, cleanup: async () => {} };
    },
  },
  {
    name: 'FileStore',
    async make() {
      const dir = await tempDir();
      return { store: new FileStore(dir), reopen: () => new FileStore(dir), cleanup: async () => {} };
    },
  },
  {
    name: 'RedisStore',
    skip: sharedRedisUp ? false : 'shared Redis not reachable',
    async make(name: string) {
      const namespace = uniquePrefix(name.slice(0, 14)).slice(0, -1);
      const make = () => new RedisStore({ url: SHARED_REDIS.url, namespace, commandTimeoutMs: 2000 });
      return {
        store: make(),
        reopen: make,
        cleanup: () => deleteKeysWithPrefix(`${namespace}:`).then(() => {}),
      };
    },
  },
];

async function withStore(
  impl: (typeof implementations)[number],
  name: string,
  body: (store: MaskStore, subject: Subject) => Promise<void>,
): Promise<void> {
  const subject = await impl.make(name);
  const closing: MaskStore[] = [subject.store];
  try {
    await subject.store.open();
    await body(subject.store, {
      ...subject,
      reopen: () => {
        const store = subject.reopen();
        closing.push(store);
        return store;
      },
    });
  } finally {
    for (const store of closing) await store.close();
    await subject.cleanup();
  }
}

for (const impl of implementations) {
  describe(`event log: ${impl.name}`, { skip: impl.skip }, () => {
    test('events are appended with their commit, in order, with increasing ids', async () => {
      await withStore(impl, 'ev-order', async (store) => {
        assert.deepEqual(await allEvents(store), []);
        assert.equal(await store.commit(commitWith(1, [discovered(0, 1), discovered(1, 1)])), 'applied');
        assert.equal(await store.commit(commitWith(2, [])), 'applied');
        assert.equal(await store.commit(commitWith(3, [discovered(2, 3)])), 'applied');
        const events = await allEvents(store);
        assert.deepEqual(tasksOf(events), [0, 1, 2]);
        assert.deepEqual(events[0]?.event, discoveredAt(events[0]?.event, 0, 1));
        for (let i = 1; i < events.length; i++) {
          assert.equal(compareEventIds(events[i - 1]?.id as string, events[i]?.id as string), -1);
        }
        assert.match(events[0]?.id as string, /^\d+-\d+$/);
      });
    });

    test('a fenced commit appends nothing', async () => {
      await withStore(impl, 'ev-fenced', async (store) => {
        await store.commit(commitWith(5, [discovered(0, 5)]));
        assert.equal(await store.commit(commitWith(5, [discovered(9, 5)])), 'fenced');
        assert.equal(await store.commit(commitWith(4, [discovered(8, 4)])), 'fenced');
        assert.deepEqual(tasksOf(await allEvents(store)), [0]);
        // Another partition is fenced on its own: its events do go in.
        assert.equal(await store.commit(commitWith(1, [discovered(3, 1)], 'in/1')), 'applied');
        assert.deepEqual(tasksOf(await allEvents(store)), [0, 3]);
      });
    });

    test('invalid events are refused with E_BAD_ARGUMENT and nothing is written', async () => {
      await withStore(impl, 'ev-invalid', async (store) => {
        const bad = { ...commitWith(1, []), events: [{ type: 'nonsense', time: 'x' }] } as unknown as Commit;
        await rejectsWith(store.commit(bad), 'E_BAD_ARGUMENT');
        const notArray = { ...commitWith(1, []), events: 'x' } as unknown as Commit;
        await rejectsWith(store.commit(notArray), 'E_BAD_ARGUMENT');
        assert.equal(await store.load(), null);
        assert.deepEqual(await allEvents(store), []);
      });
    });

    test('readEvents pages with after and limit', async () => {
      await withStore(impl, 'ev-paging', async (store) => {
        for (let i = 1; i <= 7; i++) await store.commit(commitWith(i, [discovered(i, i)]));
        const pages: number[][] = [];
        let cursor: string | undefined;
        for (;;) {
          const page = await store.readEvents({ after: cursor, limit: 3 });
          if (page.length === 0) break;
          pages.push(tasksOf(page));
          cursor = page[page.length - 1]?.id;
        }
        assert.deepEqual(pages, [[1, 2, 3], [4, 5, 6], [7]]);
        // An id that is not in the log (between two) still bounds the range.
        const all = await allEvents(store);
        const [ms, seq] = String(all[2]?.id).split('-');
        const between = `${ms}-${BigInt(seq as string) + 1n}`;
        const rest = await store.readEvents({ after: between, limit: 100 });
        assert.ok(rest.every((e) => compareEventIds(e.id, between) > 0));
        assert.deepEqual(
          tasksOf(rest),
          tasksOf(all.slice(all.findIndex((e) => compareEventIds(e.id, between) > 0))),
        );
        await rejectsWith(store.readEvents({ limit: 0 }), 'E_BAD_ARGUMENT');
        await rejectsWith(store.readEvents({ limit: 1.5 }), 'E_BAD_ARGUMENT');
        await rejectsWith(store.readEvents({ after: 'abc', limit: 1 }), 'E_BAD_ARGUMENT');
      });
    });

    test('trimEvents removes events older than a time, then the oldest beyond maxEvents', async () => {
      await withStore(impl, 'ev-trim', async (store) => {
        await store.commit(commitWith(1, [discovered(1, 1), discovered(2, 1)]));
        await sleep(30);
        const cutoff = new Date();
        await sleep(30);
        for (let i = 2; i <= 6; i++) await store.commit(commitWith(i, [discovered(i + 1, i)]));
        assert.equal(await store.trimEvents({ olderThan: new Date(0), maxEvents: 100 }), 0);
        assert.equal(await store.trimEvents({ olderThan: cutoff, maxEvents: 100 }), 2);
        assert.deepEqual(tasksOf(await allEvents(store)), [3, 4, 5, 6, 7]);
        assert.equal(await store.trimEvents({ olderThan: cutoff, maxEvents: 2 }), 3);
        assert.deepEqual(tasksOf(await allEvents(store)), [6, 7]);
        // Appending goes on after a trim, with ids still increasing.
        await store.commit(commitWith(7, [discovered(8, 7)]));
        const events = await allEvents(store);
        assert.deepEqual(tasksOf(events), [6, 7, 8]);
        assert.equal(compareEventIds(events[1]?.id as string, events[2]?.id as string), -1);
        assert.equal(await store.trimEvents({ olderThan: new Date(Date.now() + 60_000), maxEvents: 100 }), 3);
        assert.deepEqual(await allEvents(store), []);
        await rejectsWith(
          store.trimEvents({ olderThan: new Date(Number.NaN), maxEvents: 1 }),
          'E_BAD_ARGUMENT',
        );
        await rejectsWith(store.trimEvents({ olderThan: new Date(), maxEvents: -1 }), 'E_BAD_ARGUMENT');
      });
    });

    test('the event log survives a reopen', async () => {
      await withStore(impl, 'ev-reopen', async (store, subject) => {
        await store.commit(commitWith(1, [discovered(0, 1)]));
        await store.commit(commitWith(2, [discovered(1, 2)]));
        const before = await allEvents(store);
        await store.close();
        const again = subject.reopen();
        await again.open();
        assert.deepEqual(await allEvents(again), before);
        await again.commit(commitWith(3, [discovered(2, 3)]));
        const events = await allEvents(again);
        assert.deepEqual(tasksOf(events), [0, 1, 2]);
        assert.equal(compareEventIds(events[1]?.id as string, events[2]?.id as string), -1);
      });
    });
  });

  describe(`locks: ${impl.name}`, { skip: impl.skip }, () => {
    test('a lock is held by one lease at a time; release frees it', async () => {
      await withStore(impl, 'lock-basic', async (store) => {
        const a = await store.acquireLock('job:x', 10_000);
        assert.ok(a);
        assert.equal(a.name, 'job:x');
        assert.equal(await store.acquireLock('job:x', 10_000), null);
        const other = await store.acquireLock('job:y', 10_000);
        assert.ok(other, 'another name is another lock');
        assert.equal(await a.renew(), true);
        await a.release();
        await a.release(); // idempotent
        const b = await store.acquireLock('job:x', 10_000);
        assert.ok(b);
        assert.notEqual(b.token, a.token);
        assert.equal(await a.renew(), false, 'a released lease cannot be renewed');
        await b.release();
        await other.release();
      });
    });

    test('an expired lease can be taken; the old holder can neither renew nor release it', async () => {
      await withStore(impl, 'lock-expiry', async (store) => {
        const a = await store.acquireLock('job:x', 150);
        assert.ok(a);
        assert.equal(await store.acquireLock('job:x', 150), null);
        await sleep(250);
        const b = await store.acquireLock('job:x', 10_000);
        assert.ok(b, 'the expired lease is free');
        assert.equal(await a.renew(), false);
        await a.release();
        assert.equal(await store.acquireLock('job:x', 10_000), null, "a's release left b's lease alone");
        assert.equal(await b.renew(), true);
        await b.release();
      });
    });

    test('renew extends a lease by its ttl', async () => {
      await withStore(impl, 'lock-renew', async (store) => {
        const a = await store.acquireLock('job:x', 400);
        assert.ok(a);
        for (let i = 0; i < 4; i++) {
          await sleep(150);
          assert.equal(await a.renew(), true);
        }
        // 600 ms after acquiring a 400 ms lease: still held thanks to the renewals.
        assert.equal(await store.acquireLock('job:x', 400), null);
        await a.release();
      });
    });

    test('invalid names and ttls are refused with E_BAD_ARGUMENT', async () => {
      await withStore(impl, 'lock-invalid', async (store) => {
        await rejectsWith(store.acquireLock('', 1000), 'E_BAD_ARGUMENT');
        await rejectsWith(store.acquireLock('a/b', 1000), 'E_BAD_ARGUMENT');
        await rejectsWith(store.acquireLock('ok', 0), 'E_BAD_ARGUMENT');
        await rejectsWith(store.acquireLock('ok', 1.5), 'E_BAD_ARGUMENT');
      });
    });
  });
}

function discoveredAt(event: DaemonEvent | undefined, task: number, offset: number): DaemonEvent {
  assert.ok(event && event.type === 'task_discovered');
  return {
    type: 'task_discovered',
    task,
    at: { topic: 'in', partition: 0, offset: String(offset) },
    time: event.time,
  };
}

describe('FileStore event log crash safety', () => {
  test('events of a commit that crashed before its registry rename are dropped on reopen, and appended once when repeated', async () => {
    const dir = await tempDir();
    const store = new FileStore(dir);
    await store.open();
    await store.commit(commitWith(1, [discovered(0, 1)]));
    await store.close();

    const crashing = new FileStore(dir, {
      failpoint: (point) => {
        if (point === 'before-registry-rename') throw new Error('crash');
      },
    });
    await crashing.open();
    await assert.rejects(crashing.commit(commitWith(2, [discovered(1, 2), discovered(2, 2)])), /crash/);
    await crashing.close();
    // The uncommitted lines are on disk now…
    assert.equal((await readFile(join(dir, 'events.log'), 'utf8')).trim().split('\n').length, 3);

    const reopened = new FileStore(dir);
    await reopened.open();
    try {
      // …and gone after the reopen, from the file too.
      assert.deepEqual(tasksOf(await allEvents(reopened)), [0]);
      assert.equal((await readFile(join(dir, 'events.log'), 'utf8')).trim().split('\n').length, 1);
      assert.equal(await reopened.commit(commitWith(2, [discovered(1, 2), discovered(2, 2)])), 'applied');
      assert.deepEqual(tasksOf(await allEvents(reopened)), [0, 1, 2]);
    } finally {
      await reopened.close();
    }
  });

  test('a torn last line is cut off on open; a committed line after garbage is E_STORE_CORRUPT', async () => {
    const dir = await tempDir();
    const store = new FileStore(dir);
    await store.open();
    await store.commit(commitWith(1, [discovered(0, 1)]));
    await store.commit(commitWith(2, [discovered(1, 2)]));
    await store.close();
    const path = join(dir, 'events.log');
    const good = await readFile(path, 'utf8');
    await appendFile(path, '{"g":3,"id":"9');

    const reopened = new FileStore(dir);
    await reopened.open();
    assert.deepEqual(tasksOf(await allEvents(reopened)), [0, 1]);
    assert.equal((await stat(path)).size, Buffer.byteLength(good));
    await reopened.close();

    const lines = good.trim().split('\n');
    await rm(path);
    await appendFile(path, `${lines[0]}\ngarbage\n${lines[1]}\n`);
    const corrupt = new FileStore(dir);
    await rejectsWith(corrupt.open(), 'E_STORE_CORRUPT');
    await corrupt.close();
  });

  test('a commit that fails after appending its events (no crash) takes them back', async () => {
    const dir = await tempDir();
    const store = new FileStore(dir);
    await store.open();
    try {
      await store.commit(commitWith(1, [discovered(0, 1)]));
      const sizeBefore = (await stat(join(dir, 'events.log'))).size;
      // A directory in the way of registry.json.tmp: the commit fails after the events went in.
      await mkdir(join(dir, 'registry.json.tmp'));
      await rejectsWith(store.commit(commitWith(2, [discovered(5, 2)])), 'E_STORE_UNAVAILABLE');
      assert.equal((await stat(join(dir, 'events.log'))).size, sizeBefore);
      assert.deepEqual(tasksOf(await allEvents(store)), [0]);
      await rm(join(dir, 'registry.json.tmp'), { recursive: true });
      await store.commit(commitWith(2, [discovered(1, 2)]));
      assert.deepEqual(tasksOf(await allEvents(store)), [0, 1]);
    } finally {
      await store.close();
    }
    const reopened = new FileStore(dir);
    await reopened.open();
    assert.deepEqual(tasksOf(await allEvents(reopened)), [0, 1]);
    await reopened.close();
  });

  test('lock files live under locks/ and persist until they expire', async () => {
    const dir = await tempDir();
    const store = new FileStore(dir);
    await store.open();
    const lease = await store.acquireLock('job:x', 60_000);
    assert.ok(lease);
    await store.close();
    await stat(join(dir, 'locks', 'job:x.lock'));
    const again = new FileStore(dir);
    await again.open();
    try {
      assert.equal(await again.acquireLock('job:x', 60_000), null, 'a restart does not forget a live lease');
    } finally {
      await again.close();
    }
  });
});

describe('RedisStore event log and lock keys', {
  skip: sharedRedisUp ? false : 'shared Redis not reachable',
}, () => {
  test('events live in a stream under {reg}; locks under the namespace with a PX expiry', async () => {
    const namespace = uniquePrefix('ev-keys').slice(0, -1);
    const store = new RedisStore({ url: SHARED_REDIS.url, namespace, commandTimeoutMs: 2000 });
    try {
      await store.open();
      await store.commit(commitWith(1, [discovered(0, 1)]));
      const keys = redisKeys(namespace);
      assert.equal(keys.events, `${namespace}:{reg}:events`);
      assert.equal(await respCommand(SHARED_REDIS.port, ['TYPE', keys.events]), 'stream');
      assert.equal(await respCommand(SHARED_REDIS.port, ['XLEN', keys.events]), 1);
      const lease = await store.acquireLock('job:x', 5000);
      assert.ok(lease);
      assert.equal(keys.lock('job:x'), `${namespace}:lock:job:x`);
      const ttl = Number(await respCommand(SHARED_REDIS.port, ['PTTL', keys.lock('job:x')]));
      assert.ok(ttl > 0 && ttl <= 5000, `PTTL ${ttl}`);
      assert.equal(await respCommand(SHARED_REDIS.port, ['GET', keys.lock('job:x')]), lease.token);
      await lease.release();
      assert.equal(await respCommand(SHARED_REDIS.port, ['EXISTS', keys.lock('job:x')]), 0);
    } finally {
      await store.close();
      await deleteKeysWithPrefix(`${namespace}:`);
    }
  });
});
