import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { Daemon, type DaemonOptions, microBatches } from '../../src/daemon/daemon.ts';
import { DEFAULT_LEARNER } from '../../src/discovery/learner.ts';
import { PAPER_POLICY } from '../../src/discovery/policy.ts';
import { SupsupError } from '../../src/errors.ts';
import { silentLogger } from '../../src/logger.ts';
import { makeArchitecture } from '../../src/model/network/arch.ts';
import { defaultOptimizer } from '../../src/model/training/optimizers.ts';
import type { InputRecord } from '../../src/records.ts';
import { MemoryStore } from '../../src/store/memory-store.ts';
import type { Commit, CommitOutcome } from '../../src/store/types.ts';
import type { SourceBatch } from '../../src/stream/types.ts';
import { testBackend } from '../support/backend.ts';
import { demoBatch, demoRecords, ManualSource, MemorySink } from '../support/manual-daemon.ts';

before(async () => {
  await testBackend();
});

/** A memory store whose next `failures` commits throw a retriable error (after applying, if `land`). */
class FlakyStore extends MemoryStore {
  failures = 0;
  land = false;
  override async commit(commit: Commit): Promise<CommitOutcome> {
    if (this.failures > 0) {
      this.failures--;
      if (this.land) await super.commit(commit);
      throw new SupsupError('E_STORE_UNAVAILABLE', 'injected', { retriable: true });
    }
    return super.commit(commit);
  }
}

const records = demoRecords(512);
const batch = (from: number, to: number): SourceBatch => demoBatch(records, from, to);

async function daemonWith(
  store: MemoryStore,
  sink: MemorySink,
  redelivers = true,
): Promise<{ daemon: Daemon; source: ManualSource }> {
  const options: DaemonOptions = {
    sink,
    store,
    model: {
      arch: makeArchitecture({ arch: 'lenet', outputs: 100 }),
      seed: 1,
      optimizer: defaultOptimizer('rmsprop'),
      rule: { kind: 'threshold' },
    },
    learner: { ...DEFAULT_LEARNER, policy: PAPER_POLICY },
    microBatch: 128,
    maxRecordBytes: 1 << 20,
    logger: silentLogger,
    retryBackoff: { baseMs: 1, maxMs: 5 },
  };
  const daemon = await Daemon.open(options);
  const source = new ManualSource({ redelivers });
  await daemon.run(source);
  return { daemon, source };
}

async function assertSameState(actual: MemoryStore, expected: MemoryStore): Promise<void> {
  // The daemons closed them; a memory store keeps its data across close() and open().
  await actual.open();
  await expected.open();
  const want = await expected.load();
  const got = await actual.load();
  assert.deepEqual(got?.applied, want?.applied);
  assert.equal(got?.registry.tasks.length, want?.registry.tasks.length);
  for (const meta of want?.registry.tasks ?? []) {
    assert.deepEqual(
      await actual.loadMask(meta.task),
      await expected.loadMask(meta.task),
      `mask ${meta.task}`,
    );
  }
}

/** Runs batch 0..256 then 256..512, failing the second state write once. */
async function runWithFailedWrite(land: boolean): Promise<{ store: FlakyStore; sink: MemorySink }> {
  const store = new FlakyStore();
  const sink = new MemorySink();
  const { daemon, source } = await daemonWith(store, sink);
  await source.handler?.(batch(0, 256));
  store.failures = 1;
  store.land = land;
  await assert.rejects(source.handler?.(batch(256, 512)) ?? Promise.resolve(), /injected/);
  await source.handler?.(batch(256, 512));
  await daemon.stop();
  return { store, sink };
}

/** Reference state: a daemon that stops after the first batch and a new one that handles the second. */
async function restartedReference(): Promise<MemoryStore> {
  const restarted = new MemoryStore();
  const first = await daemonWith(restarted, new MemorySink());
  await first.source.handler?.(batch(0, 256));
  await first.daemon.stop();
  const second = await daemonWith(restarted, new MemorySink());
  await second.source.handler?.(batch(256, 512));
  await second.daemon.stop();
  return restarted;
}

test('a state write that failed but landed: the redelivered batch is only inferred, state equals a clean run', async () => {
  const clean = new MemoryStore();
  const run = await daemonWith(clean, new MemorySink());
  await run.source.handler?.(batch(0, 256));
  await run.source.handler?.(batch(256, 512));
  await run.daemon.stop();
  const { store, sink } = await runWithFailedWrite(true);
  await assertSameState(store, clean);
  assert.equal(sink.results.length, 512, 'one result per record');
});

test('a state write that was lost: the model restarts from the store, as after a crash, not learning the batch twice', async () => {
  const restarted = await restartedReference();
  const { store, sink } = await runWithFailedWrite(false);
  await assertSameState(store, restarted);
  assert.equal(sink.results.length, 512, 'one result per record');
});

test('a source that does not redeliver: the daemon retries a lost state write in place, as after a restart', async () => {
  const restarted = await restartedReference();
  const store = new FlakyStore();
  const sink = new MemorySink();
  const { daemon, source } = await daemonWith(store, sink, false);
  await source.handler?.(batch(0, 256));
  store.failures = 2;
  store.land = false;
  await source.handler?.(batch(256, 512));
  await daemon.stop();
  assert.equal(store.failures, 0, 'both injected failures were met');
  await assertSameState(store, restarted);
  assert.equal(sink.results.length, 512, 'one result per record, none twice');
});

test('micro-batches never mix records already applied with new ones', () => {
  const at = (offset: number) =>
    ({ position: { topic: 't', partition: 0, offset: String(offset) } }) as InputRecord;
  const groups = [...microBatches([1, 2, 3, 4, 5, 6, 7].map(at), 3, '4')].map((g) => ({
    learn: g.learn,
    offsets: g.records.map((r) => Number(r.position.offset)),
  }));
  assert.deepEqual(groups, [
    { learn: false, offsets: [1, 2, 3] },
    { learn: false, offsets: [4] },
    { learn: true, offsets: [5, 6, 7] },
  ]);
});
