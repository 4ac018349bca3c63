/**
 * Mask archives (docs/masks.md): a store built by the real daemon, exported to archive bytes and imported into a
 * new file store, serves the same predictions and goes on learning exactly as the original (masks, training
 * states with their optimizer slots, replay logs, policy JSON all carried); one task exported alone classifies as
 * the daemon does for that task; damaged, newer and foreign archives are refused with nothing written.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import {
  decodeMaskArchive,
  encodeMaskArchive,
  modelArchiveOf,
  readStoreArchive,
  StandaloneModel,
  type StoreArchive,
  writeStoreArchive,
} from '../../src/archive/index.ts';
import { decodeArchive, encodeArchive } from '../../src/codec/archive-codec.ts';
import { crc32 } from '../../src/codec/mask-codec.ts';
import { decodeRecord } from '../../src/codec/record-codec.ts';
import { DEFAULT_STANDARDISE } from '../../src/discovery/input-transform.ts';
import { isSupsupError } from '../../src/errors.ts';
import { makeArchitecture } from '../../src/model/network/arch.ts';
import type { InputRecord, RawRecord, ResultRecord } from '../../src/records.ts';
import { FileStore } from '../../src/store/index.ts';
import { testBackend } from '../support/backend.ts';
import { runDaemon, SOURCE_ARCH, SOURCE_SEED, sourceRecords } from '../support/masks-source.ts';

const LEARNED = 1280;
const records: RawRecord[] = sourceRecords(1792);
const root = mkdtempSync(path.join(tmpdir(), 'supsupd-masks-'));
let sourceStore: FileStore;
let archive: StoreArchive;
let bytes: Uint8Array;

function readContext(source: string) {
  return {
    source,
    arch: SOURCE_ARCH,
    seed: SOURCE_SEED,
    standardise: DEFAULT_STANDARDISE,
    now: '2026-01-01T00:00:00.000Z',
  };
}

const writeContext = (target: string) => ({ target, arch: SOURCE_ARCH, seed: SOURCE_SEED, leaseMs: 10_000 });

async function readArchive(store: FileStore, source: string): Promise<StoreArchive> {
  await store.open();
  try {
    return await readStoreArchive(store, readContext(source));
  } finally {
    await store.close();
  }
}

async function importInto(dir: string, from: StoreArchive): Promise<FileStore> {
  const store = new FileStore(dir);
  await store.open();
  try {
    await writeStoreArchive(store, from, writeContext(dir));
  } finally {
    await store.close();
  }
  return store;
}

before(async () => {
  await testBackend();
  sourceStore = new FileStore(path.join(root, 'source'));
  await runDaemon(sourceStore, records, 0, LEARNED);
  archive = await readArchive(sourceStore, 'source');
  bytes = encodeMaskArchive(archive);
});

after(() => rmSync(root, { recursive: true, force: true }));

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** An archive's tasks with each blob as its SHA-256 (a failed comparison prints hashes, not megabytes). */
function digest(tasks: StoreArchive['tasks']) {
  return tasks.map((t) => ({
    meta: t.meta,
    mask: sha(t.mask),
    training: t.training === null ? null : sha(t.training),
    replay: t.replay.map(sha),
  }));
}

const hasCode = (code: string) => (error: unknown) => isSupsupError(error) && error.code === code;

test('the source store holds several tasks, masks still training and replay logs', () => {
  assert.ok(archive.tasks.length >= 3, `tasks: ${archive.tasks.length}`);
  assert.ok(archive.tasks.some((t) => t.training !== null));
  assert.ok(archive.tasks.some((t) => t.replay.length > 0));
  assert.deepEqual(Object.keys(archive.applied), ['demo/0']);
  assert.equal(archive.applied['demo/0'], String(LEARNED - 1));
  assert.equal(archive.transform.mode, 'standardise');
});

test('an archive decodes to exactly what was encoded, and encodes again to the same bytes', () => {
  const decoded = decodeMaskArchive(bytes);
  assert.equal(decoded.scope, 'store');
  if (decoded.scope !== 'store') return;
  const { tasks, ...rest } = decoded;
  const { tasks: wantTasks, ...wantRest } = archive;
  assert.deepEqual(rest, wantRest);
  assert.deepEqual(digest(tasks), digest(wantTasks));
  assert.equal(sha(encodeMaskArchive(decoded)), sha(bytes));
});

test('export, import into a new store: the same state, the same predictions on 1,000 records, the same learning', async () => {
  const decoded = decodeMaskArchive(bytes);
  assert.equal(decoded.scope, 'store');
  if (decoded.scope !== 'store') return;
  const copy = await importInto(path.join(root, 'copy'), decoded);
  const copied = await readArchive(copy, 'source');
  assert.deepEqual(copied.registry, archive.registry);
  assert.deepEqual(copied.applied, archive.applied);
  assert.deepEqual(digest(copied.tasks), digest(archive.tasks));
  assert.deepEqual(copied.transform, archive.transform);

  // Records 0..999 are applied in both stores: the daemons only infer (task inference over all masks, then the
  // task's mask), so the results are each store's predictions.
  const original = await runDaemon(sourceStore, records, 0, 1000);
  const imported = await runDaemon(copy, records, 0, 1000);
  assert.equal(original.length, 1000);
  assert.deepEqual(imported, original);
  assert.ok(new Set(original.map((r) => r.task)).size >= 3, 'the records go to several tasks');

  // New labelled records: both train, from their training states, optimizer slots and replay logs.
  const more = await runDaemon(sourceStore, records, LEARNED, records.length);
  const moreImported = await runDaemon(copy, records, LEARNED, records.length);
  assert.deepEqual(moreImported, more);
  const after = await readArchive(sourceStore, 'source');
  const afterCopy = await readArchive(copy, 'source');
  assert.deepEqual(digest(afterCopy.tasks), digest(after.tasks));
  assert.deepEqual(afterCopy.registry, after.registry);
  assert.notDeepEqual(digest(after.tasks), digest(archive.tasks), 'the masks did train');
});

function inputOf(raw: RawRecord): InputRecord {
  const outcome = decodeRecord(raw, { dim: 784, maxBytes: 1 << 20, classes: 10 });
  assert.ok(outcome.ok);
  return outcome.record;
}

test("one task exported alone classifies each record as the daemon's inference does for that task", async () => {
  const fresh = await readArchive(sourceStore, 'source');
  const daemon: ResultRecord[] = await runDaemon(sourceStore, records, 0, 1000);
  const byTask = new Map<number, number>();
  for (const r of daemon) byTask.set(r.task, (byTask.get(r.task) ?? 0) + 1);
  for (const task of byTask.keys()) {
    const model = new StandaloneModel(decodeArchiveModel(fresh, task));
    try {
      const routed = daemon.filter((r) => r.task === task);
      const inputs = records.slice(0, 1000).map(inputOf);
      const ids = new Set(routed.map((r) => r.id));
      const mine = model.classify(inputs.filter((r) => ids.has(r.id)));
      assert.equal(mine.length, routed.length);
      mine.forEach((r, i) => {
        const want = routed[i] as ResultRecord;
        assert.equal(r.id, want.id);
        assert.equal(r.prediction, want.prediction, `${r.id} prediction`);
        assert.equal(r.confidence, want.confidence, `${r.id} confidence`);
        assert.equal(r.entropy, want.entropy, `${r.id} entropy`);
        assert.equal(r.maskVersion, want.maskVersion);
      });
    } finally {
      model.dispose();
    }
  }
});

function decodeArchiveModel(from: StoreArchive, task: number) {
  const decoded = decodeMaskArchive(encodeMaskArchive(modelArchiveOf(from, task)));
  assert.equal(decoded.scope, 'task');
  if (decoded.scope !== 'task') throw new Error('not a task archive');
  return decoded;
}

/** `bytes` with the u16 at `at` set to `value` and the trailer's CRC made right again. */
function patched(source: Uint8Array, at: number, value: number): Uint8Array {
  const out = Uint8Array.from(source);
  const view = new DataView(out.buffer);
  view.setUint16(at, value, true);
  view.setUint32(out.length - 4, crc32(out.subarray(0, out.length - 4)), true);
  return out;
}

test('a flipped byte, a newer format version, a short or foreign file: E_ARCHIVE', () => {
  for (const at of [0, 9, 40, Math.floor(bytes.length / 2), bytes.length - 1]) {
    const flipped = Uint8Array.from(bytes);
    flipped[at] = (flipped[at] as number) ^ 0x10;
    assert.throws(() => decodeMaskArchive(flipped), hasCode('E_ARCHIVE'), `byte ${at}`);
  }
  assert.throws(
    () => decodeMaskArchive(patched(bytes, 4, 2)),
    /format version 2 is newer than this supsupd reads \(1\)/,
  );
  assert.throws(() => decodeMaskArchive(bytes.subarray(0, 10)), /not a supsupd mask archive/);
  assert.throws(
    () => decodeMaskArchive(new TextEncoder().encode('{"x": [1, 2, 3]}\n')),
    hasCode('E_ARCHIVE'),
  );
  assert.throws(() => decodeMaskArchive(patched(bytes, 6, 1)), /flags/);
});

test('a well-formed container with inconsistent contents is refused: wrong registry checksum, foreign arch', () => {
  const container = decodeArchive(bytes);
  const header = structuredClone(container.header) as {
    registry: { tasks: { checksum: number }[] };
    arch: { hidden: number[] };
  };
  const first = header.registry.tasks[0];
  assert.ok(first !== undefined);
  first.checksum = (first.checksum + 1) >>> 0;
  assert.throws(
    () => decodeMaskArchive(encodeArchive(header, container.blobs)),
    /does not match its registry checksum/,
  );
  const foreign = structuredClone(container.header) as { arch: { hidden: number[] }; archKey: string };
  foreign.arch.hidden = [1024, 1024];
  foreign.archKey = '784-1024-1024-100';
  assert.throws(() => decodeMaskArchive(encodeArchive(foreign, container.blobs)), hasCode('E_ARCHIVE'));
  assert.throws(
    () => decodeMaskArchive(encodeArchive({ ...container.header, scope: 'everything' }, container.blobs)),
    /header is malformed/,
  );
});

test('import refuses another network and a non-empty target, writing nothing', async () => {
  const dir = path.join(root, 'foreign');
  const store = new FileStore(dir);
  await store.open();
  try {
    const other = makeArchitecture({ arch: 'fc1024', outputs: 100 });
    await assert.rejects(
      writeStoreArchive(store, archive, { target: dir, arch: other, seed: SOURCE_SEED, leaseMs: 10_000 }),
      hasCode('E_ARCH_MISMATCH'),
    );
    await assert.rejects(
      writeStoreArchive(store, archive, { target: dir, arch: SOURCE_ARCH, seed: 2, leaseMs: 10_000 }),
      hasCode('E_ARCH_MISMATCH'),
    );
    assert.equal(await store.load(), null);
    assert.deepEqual(await store.position(), { epoch: null, sequence: 0 });
    await writeStoreArchive(store, archive, writeContext(dir));
    const position = await store.position();
    await assert.rejects(
      writeStoreArchive(store, archive, writeContext(dir)),
      /is not empty \(\d+ task\(s\)/,
    );
    assert.deepEqual(await store.position(), position, 'the refused import wrote nothing');
  } finally {
    await store.close();
  }
});

test('import refuses while another holder has the writer lease, and releases its own after', async () => {
  const dir = path.join(root, 'leased');
  const store = new FileStore(dir);
  await store.open();
  try {
    const lease = await store.acquireWriter(10_000);
    assert.ok(lease !== null);
    await assert.rejects(writeStoreArchive(store, archive, writeContext(dir)), /held by a running daemon/);
    assert.equal(await store.load(), null);
    await lease.release();
    await writeStoreArchive(store, archive, writeContext(dir));
    const again = await store.acquireWriter(10_000);
    assert.ok(again !== null, 'the import gave its lease back');
    await again.release();
  } finally {
    await store.close();
  }
});

test('reading an empty store is E_BAD_ARGUMENT; a task the store lacks too', async () => {
  const store = new FileStore(path.join(root, 'empty'));
  await store.open();
  try {
    await assert.rejects(readStoreArchive(store, readContext('empty')), /holds no state/);
  } finally {
    await store.close();
  }
  assert.throws(() => modelArchiveOf(archive, archive.tasks.length), hasCode('E_BAD_ARGUMENT'));
});
