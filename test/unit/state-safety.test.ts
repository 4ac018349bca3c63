/**
 * State safety (docs/daemon.md, "State safety"): store epochs and sequences, the writer lease, regression checks
 * against the source, and stdin sessions, on the memory store with the real daemon.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { decodeRecord } from '../../src/codec/record-codec.ts';
import { OffsetCheckpoint } from '../../src/daemon/checkpoint.ts';
import { Daemon, type DaemonOptions } from '../../src/daemon/daemon.ts';
import { makeStdinSource } from '../../src/daemon/line-sources.ts';
import { checkSourcePositions, findRegressions } from '../../src/daemon/regression.ts';
import { WriterLease } from '../../src/daemon/writer-lease.ts';
import { DEFAULT_LEARNER } from '../../src/discovery/learner.ts';
import { PAPER_POLICY } from '../../src/discovery/policy.ts';
import { isSupsupError, SupsupError } from '../../src/errors.ts';
import { silentLogger } from '../../src/logger.ts';
import { makeArchitecture } from '../../src/model/network/arch.ts';
import { defaultOptimizer } from '../../src/model/training/optimizers.ts';
import type { RawRecord } from '../../src/records.ts';
import { MemoryStore } from '../../src/store/memory-store.ts';
import { checkExpectedPosition, EMPTY_POSITION, regressionOf } from '../../src/store/position.ts';
import type { Commit, Registry } from '../../src/store/types.ts';
import { type GroupAdmin, groupPositions, rewindGroup } from '../../src/stream/kafka/group-offsets.ts';
import type { Sink, Source, SourceBatch, SourcePositions } from '../../src/stream/types.ts';
import { testBackend } from '../support/backend.ts';
import { demoBatch, demoRecords, ManualSource, MemorySink } from '../support/manual-daemon.ts';

before(async () => {
  await testBackend();
});

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'state-safety-'));
  dirs.push(dir);
  return dir;
}

const hasCode = (code: string, pattern?: RegExp) => (error: unknown) =>
  isSupsupError(error) && error.code === code && (pattern === undefined || pattern.test(error.message));

const E1 = 'a'.repeat(32);
const E2 = 'b'.repeat(32);

describe('store positions', () => {
  test('regressionOf: empty, another epoch and a lower sequence are behind; equal or ahead is not', () => {
    assert.equal(regressionOf(EMPTY_POSITION, EMPTY_POSITION), null);
    assert.equal(regressionOf({ epoch: E1, sequence: 3 }, EMPTY_POSITION), null);
    assert.equal(regressionOf({ epoch: E1, sequence: 3 }, { epoch: E1, sequence: 3 }), null);
    assert.equal(regressionOf({ epoch: E1, sequence: 4 }, { epoch: E1, sequence: 3 }), null);
    assert.match(regressionOf(EMPTY_POSITION, { epoch: E1, sequence: 3 }) ?? '', /store is empty/);
    assert.match(
      regressionOf({ epoch: E2, sequence: 9 }, { epoch: E1, sequence: 3 }) ?? '',
      /another history/,
    );
    assert.match(
      regressionOf({ epoch: E1, sequence: 2 }, { epoch: E1, sequence: 3 }) ?? '',
      /behind sequence 3/,
    );
  });

  test('checkExpectedPosition: adopts the writer epoch on an empty store, refuses regressions and other writers', () => {
    assert.equal(checkExpectedPosition(EMPTY_POSITION, { epoch: E1, sequence: 0 }, 'x'), E1);
    assert.equal(checkExpectedPosition({ epoch: E1, sequence: 5 }, { epoch: E1, sequence: 5 }, 'x'), E1);
    assert.match(checkExpectedPosition(EMPTY_POSITION, undefined, 'x'), /^[0-9a-f]{32}$/);
    assert.throws(
      () => checkExpectedPosition(EMPTY_POSITION, { epoch: E1, sequence: 5 }, 'x'),
      hasCode('E_STORE_REGRESSED', /empty/),
    );
    assert.throws(
      () => checkExpectedPosition({ epoch: E1, sequence: 4 }, { epoch: E1, sequence: 5 }, 'x'),
      hasCode('E_STORE_REGRESSED', /behind/),
    );
    assert.throws(
      () => checkExpectedPosition({ epoch: E1, sequence: 6 }, { epoch: E1, sequence: 5 }, 'x'),
      hasCode('E_STORE_CONFLICT', /another writer/),
    );
    assert.throws(
      () => checkExpectedPosition({ epoch: E1, sequence: 1 }, { epoch: null, sequence: 0 }, 'x'),
      hasCode('E_STORE_CONFLICT'),
    );
  });

  test('findRegressions compares offsets and the checkpoint store position', () => {
    const store = { position: { epoch: E1, sequence: 4 }, applied: { 'file/0': '99' } };
    assert.deepEqual(findRegressions(store, { offsets: { 'file/0': '99' } }), []);
    assert.deepEqual(findRegressions(store, { offsets: { 'file/0': '120' } }), [
      'file/0: the source committed offset 120, the store applied only 99',
    ]);
    assert.deepEqual(findRegressions(store, { offsets: { 'file/1': '0' } }), [
      'file/1: the source committed offset 0, the store has applied nothing',
    ]);
    assert.deepEqual(findRegressions(store, { offsets: {}, store: { epoch: E1, sequence: 7 } }), [
      `checkpoint: the store is at sequence 4, behind sequence 7 of epoch ${E1}`,
    ]);
  });
});

function registry(tasks = 0): Registry {
  return {
    archKey: 'k',
    seed: 1,
    tasks: Array.from({ length: tasks }, (_, task) => ({
      task,
      version: 1,
      frozen: true,
      trainSteps: 0,
      bornAt: { topic: 't', partition: 0, offset: '0' },
      bornTime: new Date(0).toISOString(),
      checksum: 0,
    })),
  };
}
const commitAt = (offset: string, expect?: Commit['expect']): Commit => ({
  partitionKey: 't/0',
  appliedOffset: offset,
  registry: registry(),
  masks: [],
  ...(expect === undefined ? {} : { expect }),
});

describe('memory store: sequence and writer lease', () => {
  test('every applied commit advances the sequence; a wiped store refuses the next expected commit', async () => {
    const store = new MemoryStore();
    await store.open();
    assert.deepEqual(await store.position(), EMPTY_POSITION);
    assert.equal(await store.commit(commitAt('1', { epoch: E1, sequence: 0 })), 'applied');
    assert.deepEqual(await store.position(), { epoch: E1, sequence: 1 });
    assert.equal(await store.commit(commitAt('1', { epoch: E1, sequence: 1 })), 'fenced');
    assert.deepEqual(await store.position(), { epoch: E1, sequence: 1 }, 'a fenced commit does not count');
    assert.equal(await store.commit(commitAt('2', { epoch: E1, sequence: 1 })), 'applied');
    store.wipe();
    await assert.rejects(
      store.commit(commitAt('3', { epoch: E1, sequence: 2 })),
      hasCode('E_STORE_REGRESSED'),
    );
    assert.equal(await store.load(), null, 'the refused commit wrote nothing');
  });

  test('one writer: a second lease is refused, a commit without the lease is refused while it is held', async () => {
    const store = new MemoryStore();
    await store.open();
    let now = 1000;
    store.now = () => now;
    const lease = await store.acquireWriter(5000);
    assert.ok(lease !== null);
    assert.match(lease.token, /^1\.[0-9a-f]{32}$/, 'the token starts with its fence number');
    assert.equal(await store.acquireWriter(5000), null);
    assert.equal(await store.commit(commitAt('1')), 'applied', 'the holder commits');
    const other = new MemoryStore();
    await other.open();
    assert.ok((await other.acquireWriter(5000)) !== null, 'leases are per store object');
    now += 6000;
    await assert.rejects(store.commit(commitAt('2')), hasCode('E_STORE_CONFLICT', /no longer holds/));
    assert.equal(await lease.renew(), false, 'an expired lease is not renewed');
    const next = await store.acquireWriter(5000);
    assert.match(next?.token ?? '', /^2\./, 'the next writer has a higher fence number');
    await next?.release();
    assert.equal(await store.commit(commitAt('2')), 'applied', 'no lease held: a tool may commit');
  });

  test('a lease left by a writer that died is waited for and taken; a renewed one is refused', async () => {
    const store = new MemoryStore();
    await store.open();
    const dead = await store.acquireWriter(400); // never renewed, never released: its process was killed
    assert.ok(dead !== null);
    const next = await WriterLease.acquire(store, { leaseMs: 1000, standby: false }, silentLogger);
    assert.match((await store.writerHolder())?.token ?? '', /^2\./, 'the restarted daemon holds the lease');
    await assert.rejects(
      WriterLease.acquire(store, { leaseMs: 1000, standby: false }, silentLogger),
      hasCode('E_STORE_CONFLICT', /another daemon holds the writer lease/),
      'the live writer renews its lease: refused',
    );
    await next.release();
    assert.equal(await store.writerHolder(), null);
  });

  test('a standby takes the lease when the writer releases it', async () => {
    const store = new MemoryStore();
    await store.open();
    const writer = await WriterLease.acquire(store, { leaseMs: 1000, standby: false }, silentLogger);
    await assert.rejects(
      WriterLease.acquire(store, { leaseMs: 1000, standby: false }, silentLogger),
      hasCode('E_STORE_CONFLICT', /standby/),
    );
    let took = false;
    const standby = WriterLease.acquire(store, { leaseMs: 1000, standby: true }, silentLogger).then(
      (lease) => {
        took = true;
        return lease;
      },
    );
    await new Promise((resolve) => setTimeout(resolve, 600));
    assert.equal(took, false, 'the standby waits while the writer holds the lease');
    await writer.release();
    await (await standby).release();
    assert.equal(took, true);
  });
});

const records = demoRecords(256);
const batch = (from: number, to: number): SourceBatch => demoBatch(records, from, to);

function daemonOptions(store: MemoryStore, sink: Sink, extra: Partial<DaemonOptions> = {}): DaemonOptions {
  return {
    sink,
    store,
    model: {
      arch: makeArchitecture({ hidden: [32], outputs: 20 }),
      seed: 1,
      optimizer: defaultOptimizer('rmsprop'),
      rule: { kind: 'threshold' },
    },
    learner: { ...DEFAULT_LEARNER, policy: PAPER_POLICY },
    microBatch: 64,
    maxRecordBytes: 1 << 20,
    logger: silentLogger,
    retryBackoff: { baseMs: 1, maxMs: 5 },
    writer: { leaseMs: 2000, standby: false },
    ...extra,
  };
}

describe('daemon on a regressed store', () => {
  test('a store wiped mid-run: the next batch is refused before any result, readiness names it', async () => {
    const store = new MemoryStore();
    const sink = new MemorySink();
    const daemon = await Daemon.open(daemonOptions(store, sink));
    const source = new ManualSource();
    await daemon.run(source);
    const handle = source.handler;
    assert.ok(handle !== null);
    await handle(batch(0, 128));
    assert.equal(sink.results.length, 128);
    assert.deepEqual((await daemon.health()).reasons, []);
    store.wipe();
    await assert.rejects(handle(batch(128, 256)), hasCode('E_STORE_REGRESSED'));
    assert.equal(sink.results.length, 128, 'no result from the regressed model');
    const health = await daemon.health();
    assert.equal(health.ready, false);
    assert.match(health.reasons.join(';'), /store regressed: .*store is empty/);
    await assert.rejects(handle(batch(128, 256)), hasCode('E_STORE_REGRESSED'), 'still refused');
    assert.equal(sink.results.length, 128);
    assert.equal(await store.load(), null, 'nothing was written to the wiped store');
    await daemon.stop();
  });

  test('readiness names why the state write failed (Redis out of memory), not "state is being reloaded"', async () => {
    class FullStore extends MemoryStore {
      full = false;
      override async commit(commit: Commit) {
        if (this.full) {
          throw new SupsupError(
            'E_STORE_UNAVAILABLE',
            "redis 127.0.0.1:6379/0 commit failed: OOM command not allowed when used memory > 'maxmemory'.",
            { retriable: true },
          );
        }
        return super.commit(commit);
      }
    }
    const store = new FullStore();
    const sink = new MemorySink();
    const daemon = await Daemon.open(daemonOptions(store, sink));
    const source = new ManualSource();
    await daemon.run(source);
    const handle = source.handler;
    assert.ok(handle !== null);
    await handle(batch(0, 128));
    store.full = true;
    await assert.rejects(handle(batch(128, 256)), hasCode('E_STORE_UNAVAILABLE', /OOM/));
    const health = await daemon.health();
    assert.equal(health.ready, false);
    assert.deepEqual(health.reasons, [
      "the last state write failed (redis 127.0.0.1:6379/0 commit failed: OOM command not allowed when used memory > 'maxmemory'.); the state is reloaded before the next batch",
    ]);
    assert.equal(sink.results.length, 128, 'nothing published from the batch that was not stored');
    store.full = false;
    await handle(batch(128, 256));
    assert.deepEqual((await daemon.health()).reasons, [], 'ready again once a write succeeds');
    assert.equal(sink.results.length, 256);
    await daemon.stop();
  });

  test('start-up: a source ahead of the store is refused, replayed or accepted as configured', async () => {
    const committed: SourcePositions = { offsets: { 'demo/0': '500' } };
    const side = { position: EMPTY_POSITION, applied: {} };
    await assert.rejects(
      checkSourcePositions(new ManualSource({ committed }), side, 'refuse', silentLogger),
      hasCode('E_STORE_REGRESSED', /demo\/0: the source committed offset 500, the store has applied nothing/),
    );
    await assert.rejects(
      checkSourcePositions(new ManualSource({ committed }), side, 'replay', silentLogger),
      hasCode('E_STORE_REGRESSED', /manual cannot replay/),
    );
    await checkSourcePositions(new ManualSource({ committed }), side, 'accept', silentLogger);
    const rewound: Record<string, string>[] = [];
    const replayable: Source = Object.assign(new ManualSource({ committed }), {
      rewind: async (applied: Readonly<Record<string, string>>) => {
        rewound.push({ ...applied });
      },
    });
    await checkSourcePositions(replayable, { ...side, applied: { 'demo/0': '7' } }, 'replay', silentLogger);
    assert.deepEqual(rewound, [{ 'demo/0': '7' }]);

    const store = new MemoryStore();
    const daemon = await Daemon.open(daemonOptions(store, new MemorySink()));
    await assert.rejects(daemon.run(new ManualSource({ committed })), hasCode('E_STORE_REGRESSED'));
    await daemon.stop();
  });

  test('a second daemon on the namespace is refused at open and closes the store it opened', async () => {
    const store = new MemoryStore();
    const first = await Daemon.open(daemonOptions(store, new MemorySink()));
    await assert.rejects(
      Daemon.open(daemonOptions(store, new MemorySink())),
      hasCode('E_STORE_CONFLICT', /writer lease/),
    );
    assert.equal(await store.ping(), false, 'the refused open closed the store');
    await first.stop();
  });

  test('a mask that is not frozen but has no training state is E_STORE_CORRUPT at open', async () => {
    const store = new MemoryStore();
    const sink = new MemorySink();
    const daemon = await Daemon.open(daemonOptions(store, sink));
    const source = new ManualSource();
    await daemon.run(source);
    await source.handler?.(batch(0, 128));
    await daemon.stop();
    const loaded = await reopenAndLoad(store);
    assert.ok(
      loaded.tasks.some((meta) => !meta.frozen),
      'the test needs a mask still learning',
    );
    const broken = new (class extends MemoryStore {})();
    // The same registry and masks, without training states.
    await broken.open();
    const masks = await Promise.all(
      loaded.tasks.map(async (meta) => ({
        task: meta.task,
        encodedMask: await store.loadMask(meta.task),
        trainingState: null,
      })),
    );
    await broken.commit({ partitionKey: 'demo/0', appliedOffset: '127', registry: loaded, masks });
    await broken.close();
    await assert.rejects(
      Daemon.open(daemonOptions(broken, new MemorySink())),
      hasCode('E_STORE_CORRUPT', /not frozen but has no training state/),
    );
    await store.close();
  });
});

async function reopenAndLoad(store: MemoryStore): Promise<Registry> {
  await store.open();
  const state = await store.load();
  assert.ok(state !== null);
  return state.registry;
}

describe('stdin sessions', () => {
  const lines = (n: number) =>
    Readable.from([`${Array.from({ length: n }, (_, i) => `{"x":[${i}]}`).join('\n')}\n`]);
  async function offsetsOf(source: Source): Promise<string[]> {
    const seen: string[] = [];
    await source.start(async (b) => {
      for (const r of b.records) seen.push(r.position.offset);
    });
    await source.done();
    return seen;
  }
  const context = (applied: Record<string, string>) => ({
    storePosition: () => EMPTY_POSITION,
    appliedOffsets: () => applied,
  });

  test('without a checkpoint, a session numbers on after the store applied offset', async () => {
    assert.deepEqual(await offsetsOf(await makeStdinSource({}, context({}), lines(3))), ['0', '1', '2']);
    const next = await makeStdinSource({}, context({ 'stdin/0': '2' }), lines(2));
    assert.deepEqual(await offsetsOf(next), ['3', '4'], 'a new session is new input, never a redelivery');
  });

  test('with a checkpoint: a new session continues the numbering, the same named session resumes', async () => {
    const file = path.join(tempDir(), 'stdin.json');
    const first = await makeStdinSource({ checkpoint: file, session: 'a' }, context({}), lines(3));
    assert.deepEqual(await offsetsOf(first), ['0', '1', '2']);
    const second = await makeStdinSource({ checkpoint: file }, context({ 'stdin/0': '2' }), lines(2));
    assert.deepEqual(await offsetsOf(second), ['3', '4'], 'an unnamed session is always new');
    const checkpoint = new OffsetCheckpoint(file);
    await checkpoint.load();
    assert.equal(checkpoint.get('stdin/0'), '4');
    assert.equal(checkpoint.session?.firstOffset, '3');
    // Session "b" ran 2 of its 4 lines (offsets 5, 6) and then the same input is piped again.
    writeFileSync(
      file,
      JSON.stringify({ offsets: { 'stdin/0': '6' }, session: { id: 'b', firstOffset: '5' } }),
    );
    const resumed = await makeStdinSource(
      { checkpoint: file, session: 'b' },
      context({ 'stdin/0': '6' }),
      lines(4),
    );
    assert.deepEqual(await offsetsOf(resumed), ['7', '8'], 'the named session resumes after its checkpoint');
  });
});

test('a record with "y": null has no label: it is inferred, not dead-lettered', () => {
  const raw: RawRecord = {
    position: { topic: 't', partition: 0, offset: '0' },
    key: null,
    value: Buffer.from('{"x":[0.5,0.25],"y":null}'),
    headers: {},
    timestamp: 0,
  };
  const outcome = decodeRecord(raw, { dim: 2, maxBytes: 1024, classes: 10 });
  assert.equal(outcome.ok, true);
  if (outcome.ok) assert.equal(outcome.record.y, undefined);
});

test('Kafka group offsets: one less than committed (none for -1 or 0); rewind goes to applied + 1 or the earliest', async () => {
  const calls: string[] = [];
  const admin: GroupAdmin = {
    connect: async () => {
      calls.push('connect');
    },
    disconnect: async () => {
      calls.push('disconnect');
    },
    fetchOffsets: async () => [
      {
        topic: 'in',
        partitions: [
          { partition: 0, offset: '512', metadata: null },
          { partition: 1, offset: '-1', metadata: null },
          { partition: 2, offset: '0', metadata: null },
        ],
      },
    ],
    fetchTopicOffsets: async () => [
      { partition: 0, offset: '900', high: '900', low: '0' },
      { partition: 1, offset: '40', high: '40', low: '7' },
    ],
    setOffsets: async (request) => {
      calls.push(`set ${JSON.stringify(request.partitions)}`);
    },
  };
  assert.deepEqual(await groupPositions(admin, 'g', 'in'), { offsets: { 'in/0': '511' } });
  await rewindGroup(admin, 'g', 'in', { 'in/0': '99' });
  assert.deepEqual(calls, [
    'connect',
    'disconnect',
    'connect',
    `set ${JSON.stringify([
      { partition: 0, offset: '100' },
      { partition: 1, offset: '7' },
    ])}`,
    'disconnect',
  ]);
  const refusing: GroupAdmin = {
    ...admin,
    setOffsets: async () => {
      throw new Error('The consumer group must have no running instances, current state: Stable');
    },
  };
  await assert.rejects(
    rewindGroup(refusing, 'g', 'in', {}),
    hasCode('E_SOURCE', /stop the group's other members first.*no running instances/),
  );
});
