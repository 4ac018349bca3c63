/**
 * `supsupd masks rm` (docs/masks.md, "Removing a task"): only the last task of a store the real daemon built can
 * go; the store is then a state a daemon loads, serves and learns on, and a daemon restarted after new learning on
 * it (a new last task may be allocated in the freed id) goes on exactly as one that never stopped: no training
 * state, replay entry or learner profile of the removed task survives.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import {
  readStoreArchive,
  removeLastTask,
  type StoreArchive,
  TOOLS_PARTITION,
  writeStoreArchive,
} from '../../src/archive/index.ts';
import { DEFAULT_STANDARDISE } from '../../src/discovery/input-transform.ts';
import { isSupsupError } from '../../src/errors.ts';
import type { RawRecord } from '../../src/records.ts';
import { FileStore } from '../../src/store/index.ts';
import { testBackend } from '../support/backend.ts';
import { runDaemon, SOURCE_ARCH, SOURCE_SEED, sourceRecords } from '../support/masks-source.ts';

const LEARNED = 1280;
const records: RawRecord[] = sourceRecords(1792);
const root = mkdtempSync(path.join(tmpdir(), 'supsupd-masks-rm-'));
let archive: StoreArchive;

const context = (source: string) => ({
  source,
  arch: SOURCE_ARCH,
  seed: SOURCE_SEED,
  standardise: DEFAULT_STANDARDISE,
  now: '2026-01-01T00:00:00.000Z',
});

async function withStore<T>(store: FileStore, fn: (store: FileStore) => Promise<T>): Promise<T> {
  await store.open();
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

const read = (store: FileStore) => withStore(store, (s) => readStoreArchive(s, context('store')));

/** A fresh file store holding the source archive. */
async function copyOfSource(name: string): Promise<FileStore> {
  const dir = path.join(root, name);
  const store = new FileStore(dir);
  await withStore(store, (s) =>
    writeStoreArchive(s, archive, { target: dir, arch: SOURCE_ARCH, seed: SOURCE_SEED, leaseMs: 10_000 }),
  );
  return store;
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const digest = (tasks: StoreArchive['tasks']) =>
  tasks.map((t) => ({
    meta: t.meta,
    mask: sha(t.mask),
    training: t.training === null ? null : sha(t.training),
    replay: t.replay.map(sha),
  }));

before(async () => {
  await testBackend();
  const source = new FileStore(path.join(root, 'source'));
  await runDaemon(source, records, 0, LEARNED);
  archive = await read(source);
});

after(() => rmSync(root, { recursive: true, force: true }));

const hasCode = (code: string) => (error: unknown) => isSupsupError(error) && error.code === code;

test('a task other than the last is refused, nothing written; the last one goes', async () => {
  const store = await copyOfSource('refuse');
  const k = archive.tasks.length;
  await withStore(store, async (s) => {
    const position = await s.position();
    await assert.rejects(removeLastTask(s, 0, { target: 'store', leaseMs: 10_000 }), /only the last task/);
    await assert.rejects(
      removeLastTask(s, k, { target: 'store', leaseMs: 10_000 }),
      hasCode('E_BAD_ARGUMENT'),
    );
    assert.deepEqual(await s.position(), position);
    const lease = await s.acquireWriter(10_000);
    assert.ok(lease !== null);
    await assert.rejects(
      removeLastTask(s, k - 1, { target: 'store', leaseMs: 10_000 }),
      /held by a running daemon/,
    );
    await lease.release();
    assert.deepEqual(await s.position(), position);
    const { remaining } = await removeLastTask(s, k - 1, { target: 'store', leaseMs: 10_000 });
    assert.equal(remaining, k - 1);
    assert.equal(await s.loadTrainingState(k - 1), null, 'its training state is gone');
    assert.deepEqual(await s.loadReplay(k - 1), [], 'its replay log is gone');
  });
  assert.ok(
    archive.tasks[k - 1]?.training !== null && (archive.tasks[k - 1]?.replay.length ?? 0) > 0,
    'the removed task had a training state and a replay log',
  );
  const after = await read(store);
  assert.deepEqual(digest(after.tasks), digest(archive.tasks.slice(0, k - 1)));
  const policy = after.registry.policy as { profiles: unknown[]; replayOrder: number[]; streams: object };
  assert.equal(policy.profiles.length, k - 1);
  assert.ok(!policy.replayOrder.includes(k - 1));
  for (const state of Object.values(policy.streams) as { masks: number; current: number | null }[]) {
    assert.ok(state.masks <= k - 1 && (state.current === null || state.current < k - 1));
  }
  assert.deepEqual(Object.keys(after.applied).sort(), ['demo/0', TOOLS_PARTITION]);
  assert.equal(after.applied['demo/0'], archive.applied['demo/0'], 'no source offset moved');
});

test('after rm a daemon serves and learns on the store, and a restart goes on exactly as an uninterrupted run', async () => {
  const uninterrupted = await copyOfSource('straight');
  const restarted = await copyOfSource('restarted');
  const k = archive.tasks.length;
  for (const store of [uninterrupted, restarted]) {
    await withStore(store, (s) => removeLastTask(s, k - 1, { target: 'store', leaseMs: 10_000 }));
  }
  const served = await runDaemon(uninterrupted, records, 0, 1000);
  assert.equal(served.length, 1000);
  assert.ok(served.every((r) => r.task < k - 1));
  const straight = await runDaemon(uninterrupted, records, LEARNED, records.length);
  const first = await runDaemon(restarted, records, LEARNED, LEARNED + 256);
  const second = await runDaemon(restarted, records, LEARNED + 256, records.length);
  assert.deepEqual([...first, ...second], straight);
  const a = await read(uninterrupted);
  const b = await read(restarted);
  assert.equal(a.tasks.length, k, 'the freed id was allocated again to a new task');
  // Wall-clock times (a task's birth, the outbox's events) are the only fields allowed to differ.
  const timeless = (x: StoreArchive) => ({
    tasks: digest(x.tasks).map(({ meta: { bornTime: _, ...meta }, ...rest }) => ({ meta, ...rest })),
    learner: { ...(x.registry.policy as Record<string, unknown>), outbox: undefined },
    applied: x.applied,
  });
  assert.deepEqual(timeless(b), timeless(a));
});
