/**
 * One MaskStore contract, run against MemoryStore, FileStore (temp dir) and RedisStore (the shared Redis on
 * 127.0.0.1:6379, a unique namespace per test, its keys deleted afterwards; never FLUSH*). Plus offsets and openStore.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { encodeMask, maskChecksum } from '../../src/codec/mask-codec.js';
import { isSupsupError } from '../../src/errors.js';
import {
  type Commit,
  compareOffsets,
  FileStore,
  isOffset,
  type MaskStore,
  MemoryStore,
  openStore,
  parseOffset,
  RedisStore,
  type Registry,
  redisKeys,
  type TaskMeta,
} from '../../src/store/index.js';
import { deleteKeysWithPrefix, ping, SHARED_REDIS, uniquePrefix } from '../harness/redis.js';

// ---------------------------------------------------------------------------------------------------------------
// fixtures

const ARCH = '784-300-100-10';
const SEED = 7;

function mask(task: number, version: number, bytes = 64): Uint8Array {
  return encodeMask({ archKey: ARCH, seed: SEED, taskId: task, version }, new Uint8Array(randomBytes(bytes)));
}

function meta(task: number, version: number, encoded: Uint8Array, frozen = false): TaskMeta {
  return {
    task,
    version,
    frozen,
    trainSteps: version * 10,
    bornAt: { topic: 'in', partition: 0, offset: String(task * 100) },
    bornTime: '2024-01-01T00:00:00.000Z',
    checksum: maskChecksum(encoded),
  };
}

interface Write {
  task: number;
  version?: number;
  frozen?: boolean;
  maskBytes?: number;
  training?: Uint8Array | null;
}

/** A commit writing `writes` on top of `previous` (its other tasks kept as they are). */
function makeCommit(
  partitionKey: string,
  appliedOffset: string,
  writes: Write[],
  previous?: Registry,
): Commit {
  const tasks = new Map<number, TaskMeta>((previous?.tasks ?? []).map((m) => [m.task, m]));
  const masks = writes.map((w) => {
    const version = w.version ?? 1;
    const encodedMask = mask(w.task, version, w.maskBytes);
    tasks.set(w.task, meta(w.task, version, encodedMask, w.frozen ?? false));
    const trainingState = w.training === undefined ? new Uint8Array(randomBytes(32)) : w.training;
    return { task: w.task, encodedMask, trainingState };
  });
  const registry = { archKey: ARCH, seed: SEED, tasks: [...tasks.values()].sort((a, b) => a.task - b.task) };
  return { partitionKey, appliedOffset, registry, masks };
}

async function rejectsWith(promise: Promise<unknown>, code: string, pattern?: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isSupsupError(error), `expected a SupsupError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (pattern) assert.match(error.message, pattern);
    return true;
  });
}

// ---------------------------------------------------------------------------------------------------------------
// implementations under test

interface Subject {
  store: MaskStore;
  /** A fresh store object on the same storage (after this one is closed). */
  reopen(): MaskStore;
  cleanup(): Promise<void>;
}

interface Implementation {
  name: string;
  skip?: string | false;
  make(testName: string): Promise<Subject>;
}

const sharedRedisUp = await ping(SHARED_REDIS.port);
if (!sharedRedisUp) {
  const message = `the shared Redis on ${SHARED_REDIS.url} does not answer PING`;
  if (process.env.CI === 'true') throw new Error(`${message}; CI=true, so this is a failure`);
  console.error(
    `\n${'!'.repeat(100)}\n!!! SKIPPING the RedisStore contract: ${message}\n${'!'.repeat(100)}\n`,
  );
}

const tempDirs: string[] = [];
after(async () => {
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

const implementations: Implementation[] = [
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
      const dir = await mkdtemp(join(tmpdir(), 'supsupd-store-test-'));
      tempDirs.push(dir);
      return {
        store: new FileStore(dir),
        reopen: () => new FileStore(dir),
        cleanup: () => rm(dir, { recursive: true, force: true }),
      };
    },
  },
  {
    name: 'RedisStore',
    skip: sharedRedisUp ? false : 'shared Redis not reachable',
    async make(testName: string) {
      const namespace = uniquePrefix(testName.slice(0, 14)).slice(0, -1);
      assert.ok(namespace.length <= 64, namespace);
      const make = (): RedisStore =>
        new RedisStore({ url: SHARED_REDIS.url, namespace, commandTimeoutMs: 2000 });
      return {
        store: make(),
        reopen: make,
        cleanup: async () => {
          await deleteKeysWithPrefix(`${namespace}:`);
        },
      };
    },
  },
];

/** Runs `body` with an opened store of `impl`, then closes it and deletes its storage. */
async function withStore(
  impl: Implementation,
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
  describe(`MaskStore contract: ${impl.name}`, { skip: impl.skip }, () => {
    test('an empty store loads null and has no masks', async () => {
      await withStore(impl, 'empty', async (store) => {
        assert.equal(await store.load(), null);
        assert.equal(await store.loadTrainingState(0), null);
        await rejectsWith(store.loadMask(0), 'E_BAD_ARGUMENT', /no mask/);
        assert.equal(await store.ping(), true);
      });
    });

    test('a commit applies and load returns its registry and offsets', async () => {
      await withStore(impl, 'commit', async (store, subject) => {
        const commit = makeCommit('in/0', '41', [{ task: 0 }, { task: 1, frozen: true, training: null }]);
        assert.equal(await store.commit(commit), 'applied');
        const loaded = await store.load();
        assert.deepEqual(loaded, { registry: commit.registry, applied: { 'in/0': '41' } });

        // What was committed is still there for a new store object on the same storage.
        await store.close();
        const again = subject.reopen();
        await again.open();
        assert.deepEqual(await again.load(), loaded);
        assert.deepEqual(await again.loadMask(1), commit.masks[1]?.encodedMask);
      });
    });

    test('masks and training states round-trip byte-exact', async () => {
      await withStore(impl, 'bytes', async (store) => {
        const special = new Uint8Array([0, 13, 10, 255, 0, 36, 42, 0]); // NUL, CRLF, RESP markers
        const commit = makeCommit('in/0', '1', [
          { task: 0, maskBytes: 256 * 1024, training: new Uint8Array(randomBytes(300 * 1024)) },
          { task: 3, maskBytes: 0, training: special },
          { task: 4_000_000_000, training: new Uint8Array(0) }, // empty state is not "no state"
        ]);
        assert.equal(await store.commit(commit), 'applied');
        for (const write of commit.masks) {
          const loadedMask = await store.loadMask(write.task);
          assert.ok(loadedMask instanceof Uint8Array);
          assert.deepEqual(loadedMask, write.encodedMask);
          assert.deepEqual(await store.loadTrainingState(write.task), write.trainingState);
        }
        // A Uint8Array view into a larger buffer is stored as the view, not the whole buffer.
        const backing = new Uint8Array(randomBytes(1000));
        const view = backing.subarray(100, 200);
        const next = makeCommit('in/0', '2', [{ task: 5, training: view }], commit.registry);
        assert.equal(await store.commit(next), 'applied');
        assert.deepEqual(await store.loadTrainingState(5), new Uint8Array(view));
      });
    });

    test('replay logs append, trim to their last entries, delete at keep 0, survive a reopen, fence', async () => {
      await withStore(impl, 'replay', async (store, subject) => {
        const entry = (n: number) => new Uint8Array([n, 0, 13, 10, 255, n]);
        const first = makeCommit('in/0', '1', [{ task: 0 }, { task: 1 }]);
        assert.equal(
          await store.commit({
            ...first,
            replay: [
              { task: 0, append: [entry(1), entry(2), entry(3)], keep: 2 },
              { task: 1, append: [entry(9)], keep: 1 },
            ],
          }),
          'applied',
        );
        assert.deepEqual(await store.loadReplay(0), [entry(2), entry(3)]);
        assert.deepEqual(await store.loadReplay(1), [entry(9)]);
        assert.deepEqual(await store.loadReplay(2), [], 'a task without a log');
        const second = makeCommit('in/0', '2', [], first.registry);
        const next = {
          ...second,
          replay: [
            { task: 0, append: [entry(4)], keep: 3 },
            { task: 1, append: [], keep: 0 },
          ],
        };
        assert.equal(await store.commit(next), 'applied');
        assert.equal(await store.commit(next), 'fenced');
        assert.equal(
          await store.commit({ ...second, replay: [{ task: 0, append: [entry(5)], keep: 1 }] }),
          'fenced',
          'a fenced commit changes no log',
        );
        await store.close();
        const again = subject.reopen();
        await again.open();
        assert.deepEqual(await again.loadReplay(0), [entry(2), entry(3), entry(4)]);
        assert.deepEqual(await again.loadReplay(1), []);
        await rejectsWith(
          again.commit({
            ...makeCommit('in/0', '3', [], first.registry),
            replay: [{ task: 7, append: [], keep: 0 }],
          }),
          'E_BAD_ARGUMENT',
          /not in commit.registry.tasks/,
        );
      });
    });

    test('the same or a lower offset is fenced and changes nothing', async () => {
      await withStore(impl, 'fenced', async (store) => {
        const first = makeCommit('in/0', '100', [{ task: 0 }]);
        assert.equal(await store.commit(first), 'applied');
        const before = await store.load();
        for (const offset of ['100', '99', '0', '10']) {
          const stale = makeCommit('in/0', offset, [{ task: 0, version: 9 }, { task: 1 }]);
          assert.equal(await store.commit(stale), 'fenced', `offset ${offset}`);
        }
        assert.deepEqual(await store.load(), before);
        assert.deepEqual(await store.loadMask(0), first.masks[0]?.encodedMask);
        assert.deepEqual(await store.loadTrainingState(0), first.masks[0]?.trainingState);
        await rejectsWith(store.loadMask(1), 'E_BAD_ARGUMENT');
        assert.equal(await store.loadTrainingState(1), null);
      });
    });

    test('a higher offset on another partition applies; each partition is fenced on its own', async () => {
      await withStore(impl, 'partitions', async (store) => {
        const a = makeCommit('in/0', '500', [{ task: 0 }]);
        assert.equal(await store.commit(a), 'applied');
        const b = makeCommit('in/1', '3', [{ task: 1 }], a.registry);
        assert.equal(await store.commit(b), 'applied');
        assert.equal(await store.commit(makeCommit('in/1', '3', [], b.registry)), 'fenced');
        const c = makeCommit('in/0', '501', [{ task: 0, version: 2 }], b.registry);
        assert.equal(await store.commit(c), 'applied');
        assert.deepEqual(await store.load(), {
          registry: c.registry,
          applied: { 'in/0': '501', 'in/1': '3' },
        });
        assert.deepEqual(await store.loadMask(0), c.masks[0]?.encodedMask);
        assert.deepEqual(await store.loadMask(1), b.masks[0]?.encodedMask);
      });
    });

    test('offsets compare as integers: beyond 2^53, and never as strings', async () => {
      await withStore(impl, 'bigint', async (store) => {
        const key = 'in/0';
        const steps: [string, 'applied' | 'fenced'][] = [
          ['9', 'applied'],
          ['10', 'applied'], // "10" < "9" as strings
          ['9', 'fenced'],
          ['9007199254740992', 'applied'], // 2^53
          ['9007199254740993', 'applied'], // 2^53 + 1: the same double as 2^53
          ['9007199254740992', 'fenced'],
          ['9007199254740993', 'fenced'],
          ['9223372036854775807', 'applied'], // 2^63 - 1
          ['9223372036854775806', 'fenced'],
        ];
        let registry: Registry | undefined;
        for (const [offset, expected] of steps) {
          const commit = makeCommit(key, offset, [{ task: 0 }], registry);
          assert.equal(await store.commit(commit), expected, `offset ${offset}`);
          if (expected === 'applied') registry = commit.registry;
        }
        assert.deepEqual((await store.load())?.applied, { [key]: '9223372036854775807' });
      });
    });

    test('a null training state deletes the stored one', async () => {
      await withStore(impl, 'training-null', async (store) => {
        const learning = makeCommit('in/0', '1', [{ task: 2 }]);
        assert.equal(await store.commit(learning), 'applied');
        assert.deepEqual(await store.loadTrainingState(2), learning.masks[0]?.trainingState);
        const frozen = makeCommit('in/0', '2', [{ task: 2, version: 2, frozen: true, training: null }]);
        assert.equal(await store.commit(frozen), 'applied');
        assert.equal(await store.loadTrainingState(2), null);
        assert.deepEqual(await store.loadMask(2), frozen.masks[0]?.encodedMask);
        // Other tasks' states are untouched by a commit that does not write them.
        const other = makeCommit('in/0', '3', [{ task: 7 }], frozen.registry);
        assert.equal(await store.commit(other), 'applied');
        assert.deepEqual(await store.loadTrainingState(7), other.masks[0]?.trainingState);
        assert.equal(await store.loadTrainingState(2), null);
      });
    });

    test('callers cannot mutate stored state through their arguments or results', async () => {
      await withStore(impl, 'copies', async (store) => {
        const commit = makeCommit('in/0', '1', [{ task: 0 }]);
        const maskCopy = new Uint8Array(commit.masks[0]?.encodedMask ?? []);
        const registryCopy = structuredClone(commit.registry);
        assert.equal(await store.commit(commit), 'applied');
        commit.masks[0]?.encodedMask.fill(0);
        commit.masks[0]?.trainingState?.fill(0);
        (commit.registry.tasks[0] as { version: number }).version = 99;
        const loaded = await store.loadMask(0);
        assert.deepEqual(loaded, maskCopy);
        loaded.fill(1);
        assert.deepEqual(await store.loadMask(0), maskCopy);
        const state = await store.load();
        assert.ok(state !== null);
        assert.deepEqual(state.registry, registryCopy);
        (state.registry.tasks as TaskMeta[]).pop();
        (state.applied as Record<string, string>)['in/0'] = '999';
        assert.deepEqual(await store.load(), { registry: registryCopy, applied: { 'in/0': '1' } });
      });
    });

    test("the registry's opaque policy state round-trips as JSON and is copied", async () => {
      await withStore(impl, 'policy', async (store, subject) => {
        const base = makeCommit('in/0', '1', [{ task: 0 }]);
        const policy = { masks: 1, current: 0, band: { lo: 0.25, hi: [1, 2, null] }, note: 'ü' };
        const commit = { ...base, registry: { ...base.registry, policy } };
        assert.equal(await store.commit(commit), 'applied');
        policy.band.lo = 99;
        const loaded = await store.load();
        assert.deepEqual(loaded?.registry.policy, {
          masks: 1,
          current: 0,
          band: { lo: 0.25, hi: [1, 2, null] },
          note: 'ü',
        });
        (loaded?.registry.policy as { masks: number }).masks = 5;
        assert.equal(((await store.load())?.registry.policy as { masks?: number } | undefined)?.masks, 1);
        await store.close();
        const again = subject.reopen();
        await again.open();
        assert.deepEqual((await again.load())?.registry, {
          ...base.registry,
          policy: { ...policy, band: { lo: 0.25, hi: [1, 2, null] } },
        });
        // No policy → none stored; a policy that is not JSON is refused.
        assert.equal(await again.commit(makeCommit('in/0', '2', [], base.registry)), 'applied');
        assert.equal('policy' in ((await again.load())?.registry ?? {}), false);
        const cyclic: Record<string, unknown> = {};
        cyclic.self = cyclic;
        await rejectsWith(
          again.commit({ ...makeCommit('in/0', '3', []), registry: { ...base.registry, policy: cyclic } }),
          'E_BAD_ARGUMENT',
          /policy/,
        );
        await rejectsWith(
          again.commit({ ...makeCommit('in/0', '3', []), registry: { ...base.registry, policy: 10n } }),
          'E_BAD_ARGUMENT',
          /policy/,
        );
      });
    });

    test('invalid commits are refused with E_BAD_ARGUMENT before anything is written', async () => {
      await withStore(impl, 'invalid', async (store) => {
        const good = makeCommit('in/0', '5', [{ task: 0 }]);
        for (const offset of ['05', '-1', '1.5', '', ' 5', '9223372036854775808', '1e3']) {
          await rejectsWith(store.commit({ ...good, appliedOffset: offset }), 'E_BAD_ARGUMENT', /offset/);
        }
        await rejectsWith(store.commit({ ...good, partitionKey: '' }), 'E_BAD_ARGUMENT', /partitionKey/);
        const orphan = { ...good, masks: [{ ...(good.masks[0] as Commit['masks'][0]), task: 9 }] };
        await rejectsWith(store.commit(orphan), 'E_BAD_ARGUMENT', /not in commit\.registry/);
        const twice = { ...good, masks: [good.masks[0], good.masks[0]] } as Commit;
        await rejectsWith(store.commit(twice), 'E_BAD_ARGUMENT', /twice/);
        const badMeta = { ...good, registry: { ...good.registry, seed: -1 } };
        await rejectsWith(store.commit(badMeta), 'E_BAD_ARGUMENT', /seed/);
        const notBytes = {
          ...good,
          masks: [{ task: 0, encodedMask: [1, 2] as unknown as Uint8Array, trainingState: null }],
        };
        await rejectsWith(store.commit(notBytes), 'E_BAD_ARGUMENT', /Uint8Array/);
        await rejectsWith(store.loadMask(-1), 'E_BAD_ARGUMENT');
        assert.equal(await store.load(), null);
      });
    });

    test('concurrent commits on one partition leave the newest offset and its mask', async () => {
      await withStore(impl, 'concurrent', async (store) => {
        const offsets = [3, 9, 1, 7, 5, 10, 2, 8, 4, 6].map(String);
        const commits = offsets.map((offset) =>
          makeCommit('in/0', offset, [{ task: 0, version: Number(offset) }]),
        );
        const outcomes = await Promise.all(commits.map((commit) => store.commit(commit)));
        assert.ok(outcomes.includes('applied'));
        const newest = commits[offsets.indexOf('10')] as Commit;
        assert.deepEqual(await store.load(), { registry: newest.registry, applied: { 'in/0': '10' } });
        assert.deepEqual(await store.loadMask(0), newest.masks[0]?.encodedMask);
        // Replaying every commit (a redelivered batch, a resent command) changes nothing.
        const replay = await Promise.all(commits.map((commit) => store.commit(commit)));
        assert.deepEqual(new Set(replay), new Set(['fenced']));
      });
    });

    test('a task in the registry without a stored mask is E_STORE_CORRUPT', async () => {
      await withStore(impl, 'registry-only', async (store) => {
        const commit = makeCommit('in/0', '1', [{ task: 0 }]);
        const registry = { ...commit.registry, tasks: [...commit.registry.tasks, meta(1, 1, mask(1, 1))] };
        assert.equal(await store.commit({ ...commit, registry }), 'applied');
        await rejectsWith(store.loadMask(1), 'E_STORE_CORRUPT', /task 1/);
      });
    });

    test('close() is idempotent; a closed store refuses work and pings false', async () => {
      await withStore(impl, 'close', async (store) => {
        assert.equal(await store.commit(makeCommit('in/0', '1', [{ task: 0 }])), 'applied');
        await store.close();
        await store.close();
        await Promise.all([store.close(), store.close()]);
        assert.equal(await store.ping(), false);
        await rejectsWith(store.load(), 'E_STORE_UNAVAILABLE', /closed/);
        await rejectsWith(store.commit(makeCommit('in/0', '2', [])), 'E_STORE_UNAVAILABLE');
        // It can be opened again, with its state intact.
        await store.open();
        assert.deepEqual((await store.load())?.applied, { 'in/0': '1' });
      });
    });

    test('calls before open() are refused', async () => {
      const subject = await impl.make('before-open');
      try {
        await rejectsWith(subject.store.load(), 'E_STORE_UNAVAILABLE', /not open/);
        assert.equal(await subject.store.ping(), false);
        await subject.store.close(); // closing a never-opened store is fine
      } finally {
        await subject.cleanup();
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------------------------

describe('offsets', () => {
  test('compareOffsets compares as BigInt', () => {
    assert.equal(compareOffsets('9007199254740993', '9007199254740992'), 1);
    assert.equal(compareOffsets('9007199254740992', '9007199254740993'), -1);
    assert.equal(compareOffsets('10', '9'), 1);
    assert.equal(compareOffsets('0', '0'), 0);
    assert.equal(compareOffsets('9223372036854775807', '9223372036854775806'), 1);
    // Against BigInt, over pairs of lengths 1 to 18, equal and different.
    let seed = 3;
    const digits = (length: number): string => {
      let text = '';
      for (let i = 0; i < length; i++) {
        seed = (seed * 1_103_515_245 + 12_345) >>> 0;
        text += i === 0 && length > 1 ? String(1 + (seed % 9)) : String(seed % 10);
      }
      return text;
    };
    for (let trial = 0; trial < 2000; trial++) {
      const a = digits(1 + (trial % 18));
      const b = trial % 3 === 0 ? a : digits(1 + ((trial * 7) % 18));
      const expected = BigInt(a) < BigInt(b) ? -1 : BigInt(a) > BigInt(b) ? 1 : 0;
      assert.equal(compareOffsets(a, b), expected, `${a} ${b}`);
    }
  });

  test('only canonical decimal offsets in [0, 2^63) are accepted', () => {
    for (const good of ['0', '1', '42', '9223372036854775807']) assert.equal(isOffset(good), true, good);
    for (const bad of [
      '',
      '-1',
      '01',
      '+1',
      '1.0',
      '1e3',
      ' 1',
      '9223372036854775808',
      '9999999999999999999',
      'abc',
      5,
    ]) {
      assert.equal(isOffset(bad), false, String(bad));
    }
    assert.equal(parseOffset('9007199254740993'), 9007199254740993n);
    assert.throws(
      () => compareOffsets('01', '1'),
      (error: unknown) => isSupsupError(error) && error.code === 'E_BAD_ARGUMENT',
    );
  });
});

describe('openStore', () => {
  test('builds each kind, not yet opened', async () => {
    const memory = openStore({ kind: 'memory' });
    assert.equal(memory.kind, 'memory');
    await rejectsWith(memory.load(), 'E_STORE_UNAVAILABLE');
    const dir = await mkdtemp(join(tmpdir(), 'supsupd-openstore-'));
    tempDirs.push(dir);
    const file = openStore({ kind: 'file', dir });
    assert.equal(file.kind, 'file');
    assert.ok(file instanceof FileStore);
    const redis = openStore({
      kind: 'redis',
      url: SHARED_REDIS.url,
      namespace: 'supsupd:x',
      commandTimeoutMs: 100,
    });
    assert.equal(redis.kind, 'redis');
    assert.ok(redis instanceof RedisStore);
    assert.equal(redis.commandTimeoutMs, 100);
  });

  test('refuses bad configs with E_CONFIG', () => {
    const isConfig = (error: unknown) => isSupsupError(error) && error.code === 'E_CONFIG';
    assert.throws(() => openStore({ kind: 'nope' } as never), isConfig);
    assert.throws(() => openStore({ kind: 'file', dir: '' }), isConfig);
    assert.throws(() => openStore({ kind: 'redis', url: '', namespace: 'a' }), isConfig);
    for (const namespace of ['', 'has space', 'a{b}', 'x'.repeat(65), 'star*', 'new\nline']) {
      assert.throws(
        () => openStore({ kind: 'redis', url: SHARED_REDIS.url, namespace }),
        isConfig,
        namespace,
      );
    }
    assert.throws(() => new RedisStore({ namespace: 'ok', commandTimeoutMs: 0 }), isConfig);
  });
});

describe('RedisStore specifics', { skip: sharedRedisUp ? false : 'shared Redis not reachable' }, () => {
  test('all keys share the {reg} hash tag under the namespace', async () => {
    const namespace = uniquePrefix('store-keys').slice(0, -1);
    const keys = redisKeys(namespace);
    assert.equal(keys.registry, `${namespace}:{reg}:registry`);
    assert.equal(keys.applied, `${namespace}:{reg}:applied`);
    assert.equal(keys.mask(3), `${namespace}:{reg}:mask:3`);
    assert.equal(keys.training(3), `${namespace}:{reg}:train:3`);
    assert.equal(keys.meta, `${namespace}:{reg}:meta`);
    assert.equal(keys.writer, `${namespace}:{reg}:writer`);
    const store = new RedisStore({ url: SHARED_REDIS.url, namespace });
    try {
      await store.open();
      const persistence = store.persistence();
      assert.equal(typeof persistence.aof, 'boolean');
      assert.equal(typeof persistence.rdb, 'boolean');
      assert.equal(await store.commit(makeCommit('in/0', '1', [{ task: 3 }])), 'applied');
    } finally {
      await store.close();
      const removed = await deleteKeysWithPrefix(`${namespace}:`);
      assert.equal(removed, 5, 'registry, applied, meta, mask:3, train:3');
    }
  });

  test('an unreachable server fails open() fast with a retriable E_STORE_UNAVAILABLE', async () => {
    const store = new RedisStore({
      url: 'redis://127.0.0.1:1',
      namespace: 'supsupd:test:down',
      commandTimeoutMs: 500,
    });
    const started = Date.now();
    await assert.rejects(store.open(), (error: unknown) => {
      assert.ok(isSupsupError(error));
      assert.equal(error.code, 'E_STORE_UNAVAILABLE');
      assert.equal(error.retriable, true);
      return true;
    });
    assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
    assert.equal(await store.ping(), false);
    await store.close();
  });

  test('credentials in the URL never appear in errors', async () => {
    const store = new RedisStore({
      url: 'redis://user:s3cret-pw@127.0.0.1:1/0',
      namespace: 'supsupd:test:creds',
      commandTimeoutMs: 500,
    });
    await assert.rejects(store.open(), (error: unknown) => {
      assert.ok(isSupsupError(error));
      assert.doesNotMatch(`${error.message} ${JSON.stringify(error.details)}`, /s3cret/);
      return true;
    });
    await store.close();
  });
});
