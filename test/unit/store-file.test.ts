/**
 * FileStore specifics: crash safety of the commit (failpoints in-process, and a real SIGKILL of a child process at
 * the commit point), the directory lock (stale takeover, live conflict), corruption detection, garbage collection.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, test } from 'node:test';
import { encodeMask, maskChecksum } from '../../src/codec/mask-codec.js';
import { isSupsupError } from '../../src/errors.js';
import {
  type Commit,
  FILE_STORE_FORMAT_VERSION,
  FileStore,
  type FileStoreFailpoint,
  type Registry,
  type TaskMeta,
} from '../../src/store/index.js';

const ARCH = '784-300-100-10';
const SEED = 7;

function makeCommit(
  partitionKey: string,
  appliedOffset: string,
  tasks: number[],
  previous?: Registry,
): Commit {
  const metas = new Map<number, TaskMeta>((previous?.tasks ?? []).map((m) => [m.task, m]));
  const masks = tasks.map((task) => {
    const version = (metas.get(task)?.version ?? 0) + 1;
    const encodedMask = encodeMask(
      { archKey: ARCH, seed: SEED, taskId: task, version },
      new Uint8Array(randomBytes(4096)),
    );
    metas.set(task, {
      task,
      version,
      frozen: false,
      trainSteps: version,
      bornAt: { topic: 'in', partition: 0, offset: '0' },
      bornTime: '2024-01-01T00:00:00.000Z',
      checksum: maskChecksum(encodedMask),
    });
    return { task, encodedMask, trainingState: new Uint8Array(randomBytes(1024)) };
  });
  const registry = { archKey: ARCH, seed: SEED, tasks: [...metas.values()].sort((a, b) => a.task - b.task) };
  return { partitionKey, appliedOffset, registry, masks };
}

const dirs: string[] = [];
after(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'supsupd-filestore-'));
  dirs.push(dir);
  return dir;
}

function hasCode(code: string, pattern?: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(isSupsupError(error), `expected a SupsupError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (pattern) assert.match(error.message, pattern);
    return true;
  };
}

/** Every file under dir, relative, sorted. */
async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath ?? (e as unknown as { path: string }).path, e.name).slice(dir.length + 1))
    .sort();
}

/** Opens a store on `dir` with state A committed: tasks 0 and 1 at offset 10. */
async function seeded(
  dir: string,
  failpoint?: (point: FileStoreFailpoint) => void,
): Promise<{
  store: FileStore;
  a: Commit;
}> {
  const store = new FileStore(dir, { failpoint });
  await store.open();
  const a = makeCommit('in/0', '10', [0, 1]);
  assert.equal(await store.commit(a), 'applied');
  return { store, a };
}

async function assertState(store: FileStore, commit: Commit, applied: Record<string, string>): Promise<void> {
  assert.deepEqual(await store.load(), { registry: commit.registry, applied });
  for (const write of commit.masks) {
    assert.deepEqual(await store.loadMask(write.task), write.encodedMask);
    assert.deepEqual(await store.loadTrainingState(write.task), write.trainingState);
  }
}

function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
    encoding: 'utf8',
  });
  const pid = Number(child.stdout);
  assert.ok(Number.isInteger(pid) && pid > 0);
  return pid;
}

describe('FileStore layout', () => {
  test('registry.json names versioned files; superseded files are removed after the commit', async () => {
    const dir = await tempDir();
    const { store, a } = await seeded(dir);
    const b = makeCommit('in/0', '11', [1], a.registry);
    assert.equal(await store.commit(b), 'applied');
    const c = makeCommit('in/0', '12', [1], b.registry);
    assert.equal(
      await store.commit({ ...c, masks: [{ ...(c.masks[0] as Commit['masks'][0]), trainingState: null }] }),
      'applied',
    );
    const document = JSON.parse(await readFile(join(dir, 'registry.json'), 'utf8'));
    assert.equal(document.formatVersion, FILE_STORE_FORMAT_VERSION);
    assert.equal(document.generation, 3);
    assert.deepEqual(document.applied, { 'in/0': '12' });
    assert.equal(document.files['0'].mask.path, 'masks/0.v1.ssmk');
    assert.equal(document.files['1'].mask.path, 'masks/1.v3.ssmk');
    assert.equal(document.files['1'].training, null);
    assert.deepEqual(await listFiles(dir), [
      'lock',
      'masks/0.v1.ssmk',
      'masks/1.v3.ssmk',
      'registry.json',
      'training/0.v1.bin',
    ]);
    assert.match(await readFile(join(dir, 'lock'), 'utf8'), new RegExp(`"pid":${process.pid}`));
    await store.close();
    assert.deepEqual(await listFiles(dir), [
      'masks/0.v1.ssmk',
      'masks/1.v3.ssmk',
      'registry.json',
      'training/0.v1.bin',
    ]);
  });
});

describe('FileStore crash safety', () => {
  for (const point of ['after-data-files', 'before-registry-rename'] as const) {
    test(`a crash at ${point} leaves the old state intact and its leftovers are removed on reopen`, async () => {
      const dir = await tempDir();
      let armed = false;
      const { store, a } = await seeded(dir, (at) => {
        if (armed && at === point) throw new Error(`crash at ${at}`);
      });
      armed = true;
      const b = makeCommit('in/0', '11', [1, 2], a.registry);
      await assert.rejects(store.commit(b), /crash at/);
      // The "crashed" store does nothing more until it is closed and reopened.
      await assert.rejects(store.load(), hasCode('E_STORE_UNAVAILABLE', /reopen/));
      const leftovers = await listFiles(dir);
      assert.ok(leftovers.includes('masks/2.v2.ssmk'), leftovers.join());
      if (point === 'before-registry-rename') assert.ok(leftovers.includes('registry.json.tmp'));
      await store.close();

      const reopened = new FileStore(dir);
      await reopened.open();
      await assertState(reopened, a, { 'in/0': '10' });
      await assert.rejects(reopened.loadMask(2), hasCode('E_BAD_ARGUMENT'));
      assert.deepEqual(await listFiles(dir), [
        'lock',
        'masks/0.v1.ssmk',
        'masks/1.v1.ssmk',
        'registry.json',
        'training/0.v1.bin',
        'training/1.v1.bin',
      ]);
      // The same batch, redelivered after the crash, now applies.
      assert.equal(await reopened.commit(b), 'applied');
      await assertState(reopened, b, { 'in/0': '11' });
      await reopened.close();
    });
  }

  test('a crash after the registry rename keeps the new state; superseded files go on reopen', async () => {
    const dir = await tempDir();
    let armed = false;
    const { store, a } = await seeded(dir, (at) => {
      if (armed && at === 'after-registry-rename') throw new Error('crash after rename');
    });
    armed = true;
    const b = makeCommit('in/0', '11', [1], a.registry);
    await assert.rejects(store.commit(b), /crash after rename/);
    assert.ok((await listFiles(dir)).includes('masks/1.v1.ssmk'), 'superseded file still there');
    await store.close();
    const reopened = new FileStore(dir);
    await reopened.open();
    await assertState(reopened, b, { 'in/0': '11' });
    assert.ok(!(await listFiles(dir)).includes('masks/1.v1.ssmk'), 'superseded file removed');
    await reopened.close();
  });

  test('an ordinary write error before the commit point keeps the store usable', async () => {
    const dir = await tempDir();
    const { store, a } = await seeded(dir);
    await rm(join(dir, 'training'), { recursive: true });
    await writeFile(join(dir, 'training'), 'not a directory');
    const b = makeCommit('in/0', '11', [1], a.registry);
    await assert.rejects(store.commit(b), hasCode('E_STORE_UNAVAILABLE', /commit failed/));
    await rm(join(dir, 'training'));
    assert.deepEqual((await store.load())?.applied, { 'in/0': '10' });
    assert.ok(!(await listFiles(dir)).includes('masks/1.v2.ssmk'), 'new mask file removed after the failure');
    await store.close();
  });

  test('SIGKILL of a writer at the commit point: reopen takes over its lock and loads the old state', {
    timeout: 60_000,
  }, async () => {
    const dir = await tempDir();
    // The child commits state A (offset 10), then dies by SIGKILL inside the next commit, right before the
    // registry rename: its lock file and the new data files stay behind.
    const script = `
      const { FileStore } = await import(process.argv[1]);
      const { encodeMask, maskChecksum } = await import(process.argv[2]);
      const dir = process.argv[3];
      let armed = false;
      const store = new FileStore(dir, { failpoint: (point) => {
        if (armed && point === 'before-registry-rename') process.kill(process.pid, 'SIGKILL');
      } });
      await store.open();
      const commit = (offset, tasks) => {
        const masks = tasks.map((task) => ({
          task,
          encodedMask: encodeMask({ archKey: 'a', seed: 1, taskId: task, version: Number(offset) }, new Uint8Array(2048).fill(task + 1)),
          trainingState: new Uint8Array(16).fill(Number(offset)),
        }));
        const registry = { archKey: 'a', seed: 1, tasks: masks.map((m) => ({ task: m.task, version: Number(offset),
          frozen: false, trainSteps: 0, bornAt: { topic: 'in', partition: 0, offset: '0' }, bornTime: 't',
          checksum: maskChecksum(m.encodedMask) })) };
        return store.commit({ partitionKey: 'in/0', appliedOffset: offset, registry, masks });
      };
      if ((await commit('10', [0, 1])) !== 'applied') process.exit(3);
      armed = true;
      await commit('11', [0, 1, 2]);
      process.exit(4);
    `;
    const storeUrl = new URL('../../src/store/file-store.ts', import.meta.url).href;
    const codecUrl = new URL('../../src/codec/mask-codec.ts', import.meta.url).href;
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script, storeUrl, codecUrl, dir],
      { stdio: ['ignore', 'inherit', 'inherit'] },
    );
    const [code, signal] = await new Promise<[number | null, string | null]>((done) =>
      child.once('exit', (c, s) => done([c, s])),
    );
    assert.equal(signal, 'SIGKILL', `child exited with ${code}`);
    const lock = await readFile(join(dir, 'lock'), 'utf8');
    assert.match(lock, new RegExp(`"pid":${child.pid}`), 'the dead writer left its lock');
    assert.ok((await listFiles(dir)).includes('registry.json.tmp'));

    const store = new FileStore(dir);
    await store.open();
    assert.match(await readFile(join(dir, 'lock'), 'utf8'), new RegExp(`"pid":${process.pid}`));
    const state = await store.load();
    assert.deepEqual(state?.applied, { 'in/0': '10' });
    assert.deepEqual(
      state?.registry.tasks.map((t) => t.task),
      [0, 1],
    );
    for (const task of [0, 1]) {
      const bytes = await store.loadMask(task);
      assert.equal(maskChecksum(bytes), state?.registry.tasks[task]?.checksum);
      assert.deepEqual(await store.loadTrainingState(task), new Uint8Array(16).fill(10));
    }
    assert.deepEqual(await listFiles(dir), [
      'lock',
      'masks/0.v1.ssmk',
      'masks/1.v1.ssmk',
      'registry.json',
      'training/0.v1.bin',
      'training/1.v1.bin',
    ]);
    await store.close();
  });
});

describe('FileStore lock', () => {
  test('a lock left by a dead pid is taken over', async () => {
    const dir = await tempDir();
    const pid = deadPid();
    await writeFile(join(dir, 'lock'), `${pid}\n`);
    const store = new FileStore(dir);
    await store.open();
    assert.match(await readFile(join(dir, 'lock'), 'utf8'), new RegExp(`"pid":${process.pid}`));
    assert.deepEqual(
      (await readdir(dir)).filter((name) => name.startsWith('lock.')),
      [],
    );
    await store.close();
    await assert.rejects(stat(join(dir, 'lock')), /ENOENT/);
  });

  test('a second live store on the same directory gets E_STORE_CONFLICT', async () => {
    const dir = await tempDir();
    const first = new FileStore(dir);
    await first.open();
    const second = new FileStore(dir);
    await assert.rejects(second.open(), (error: unknown) => {
      hasCode('E_STORE_CONFLICT', /locked by pid/)(error);
      assert.ok(isSupsupError(error));
      assert.equal(error.details.pid, process.pid);
      assert.equal(error.details.path, join(resolve(dir), 'lock'));
      return true;
    });
    assert.equal(await first.ping(), true);
    assert.equal(await first.commit(makeCommit('in/0', '1', [0])), 'applied');
    await first.close();
    await second.open(); // free once the first one is closed
    assert.deepEqual((await second.load())?.applied, { 'in/0': '1' });
    await second.close();
  });

  test('a lock held by another live process gets E_STORE_CONFLICT and is left alone', async () => {
    const dir = await tempDir();
    const holder = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      const content = JSON.stringify({ pid: holder.pid, token: 'x' });
      await writeFile(join(dir, 'lock'), content);
      await assert.rejects(
        new FileStore(dir).open(),
        hasCode('E_STORE_CONFLICT', new RegExp(`pid ${holder.pid}`)),
      );
      assert.equal(await readFile(join(dir, 'lock'), 'utf8'), content);
    } finally {
      holder.kill('SIGKILL');
    }
  });

  test('a lock of another host is never taken over', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'lock'), JSON.stringify({ pid: deadPid(), host: 'some-other-host' }));
    await assert.rejects(new FileStore(dir).open(), hasCode('E_STORE_CONFLICT', /some-other-host/));
  });

  test('a store whose lock was removed under it refuses to commit', async () => {
    const dir = await tempDir();
    const { store, a } = await seeded(dir);
    await unlink(join(dir, 'lock'));
    await assert.rejects(
      store.commit(makeCommit('in/0', '11', [0], a.registry)),
      hasCode('E_STORE_CONFLICT'),
    );
    await store.close();
  });
});

describe('FileStore corruption', () => {
  test('corrupt registry JSON is E_STORE_CORRUPT with the path, and the lock is released', async () => {
    const dir = await tempDir();
    const { store } = await seeded(dir);
    await store.close();
    await writeFile(join(dir, 'registry.json'), '{"format": "supsupd-file-store", "formatVer');
    const reopened = new FileStore(dir);
    await assert.rejects(reopened.open(), (error: unknown) => {
      hasCode('E_STORE_CORRUPT', /registry\.json is not valid JSON/)(error);
      assert.ok(isSupsupError(error));
      assert.equal(error.details.path, join(resolve(dir), 'registry.json'));
      return true;
    });
    await assert.rejects(stat(join(dir, 'lock')), /ENOENT/);
    // Nothing was garbage-collected on the way.
    assert.ok((await listFiles(dir)).includes('masks/0.v1.ssmk'));
  });

  test('an unknown format version or a malformed registry is E_STORE_CORRUPT', async () => {
    const dir = await tempDir();
    const { store } = await seeded(dir);
    await store.close();
    const path = join(dir, 'registry.json');
    const document = JSON.parse(await readFile(path, 'utf8'));
    await writeFile(path, JSON.stringify({ ...document, formatVersion: 99 }));
    await assert.rejects(new FileStore(dir).open(), hasCode('E_STORE_CORRUPT', /format version 99/));
    await writeFile(path, JSON.stringify({ ...document, applied: { 'in/0': 10 } }));
    await assert.rejects(new FileStore(dir).open(), hasCode('E_STORE_CORRUPT', /applied/));
    const traversal = {
      ...document,
      files: {
        ...document.files,
        0: { ...document.files['0'], mask: { ...document.files['0'].mask, path: '../../etc/passwd' } },
      },
    };
    await writeFile(path, JSON.stringify(traversal));
    await assert.rejects(new FileStore(dir).open(), hasCode('E_STORE_CORRUPT', /invalid path/));
  });

  test('a missing mask file is E_STORE_CORRUPT with its path', async () => {
    const dir = await tempDir();
    const { store } = await seeded(dir);
    await store.close();
    await unlink(join(dir, 'masks', '1.v1.ssmk'));
    await assert.rejects(new FileStore(dir).open(), (error: unknown) => {
      hasCode('E_STORE_CORRUPT', /masks\/1\.v1\.ssmk/)(error);
      assert.ok(isSupsupError(error));
      assert.equal(error.details.path, join(resolve(dir), 'masks', '1.v1.ssmk'));
      return true;
    });
  });

  test('replay entries are files named by task, generation and entry; dropped ones are removed; a missing one is E_STORE_CORRUPT', async () => {
    const dir = await tempDir();
    const { store, a } = await seeded(dir);
    const entry = (n: number) => new Uint8Array(randomBytes(100 + n));
    const b = makeCommit('in/0', '11', [0], a.registry);
    const first = [entry(1), entry(2)];
    assert.equal(await store.commit({ ...b, replay: [{ task: 0, append: first, keep: 2 }] }), 'applied');
    const c = makeCommit('in/0', '12', [0], b.registry);
    const third = entry(3);
    assert.equal(await store.commit({ ...c, replay: [{ task: 0, append: [third], keep: 2 }] }), 'applied');
    const document = JSON.parse(await readFile(join(dir, 'registry.json'), 'utf8'));
    assert.deepEqual(
      document.replay['0'].map((ref: { path: string }) => ref.path),
      ['replay/0.v2.1.bin', 'replay/0.v3.0.bin'],
    );
    assert.deepEqual(
      (await listFiles(dir)).filter((name) => name.startsWith('replay/')),
      ['replay/0.v2.1.bin', 'replay/0.v3.0.bin'],
    );
    assert.deepEqual(await store.loadReplay(0), [first[1], third]);
    await store.close();
    await writeFile(join(dir, 'replay', '0.v9.0.bin'), entry(4)); // a leftover of a crashed commit
    const again = new FileStore(dir);
    await again.open();
    assert.deepEqual(
      (await listFiles(dir)).filter((name) => name.startsWith('replay/')),
      ['replay/0.v2.1.bin', 'replay/0.v3.0.bin'],
    );
    await again.close();
    await unlink(join(dir, 'replay', '0.v3.0.bin'));
    await assert.rejects(new FileStore(dir).open(), hasCode('E_STORE_CORRUPT', /replay\/0\.v3\.0\.bin/));
  });

  test('a mask file changed on disk is E_STORE_CORRUPT when read', async () => {
    const dir = await tempDir();
    const { store } = await seeded(dir);
    const path = join(dir, 'masks', '0.v1.ssmk');
    const bytes = await readFile(path);
    bytes[100] = (bytes[100] as number) ^ 0xff;
    await writeFile(path, bytes);
    await assert.rejects(store.loadMask(0), hasCode('E_STORE_CORRUPT', /0\.v1\.ssmk/));
    await store.close();
  });
});
