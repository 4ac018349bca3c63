import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configSchema } from '../../src/config.js';
import { DEFAULT_DEMO_STREAM, demoStream } from '../../src/daemon/demo-stream.js';
import { IterableSource } from '../../src/daemon/iterable-source.js';
import { DEFAULT_LEARNER } from '../../src/discovery/learner.js';
import { PAPER_POLICY } from '../../src/discovery/policy.js';
import { silentLogger } from '../../src/logger.js';
import { makeArchitecture } from '../../src/model/network/arch.js';
import { defaultOptimizer } from '../../src/model/training/optimizers.js';
import { SupsupService } from '../../src/ops/service.js';
import type { RawRecord, ResultRecord } from '../../src/records.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { Sink } from '../../src/stream/types.js';
import { testBackend } from '../support/backend.js';

await testBackend();

const steps: string[] = [];

class RecordingSink implements Sink {
  readonly name = 'recording';
  results = 0;
  async writeResults(results: readonly ResultRecord[]) {
    this.results += results.length;
  }
  async writeDeadLetters() {}
  async writeEvents() {}
  async close() {
    steps.push('sink closed');
  }
}

test('service: one start order and one stop order; readiness goes false first; stop is idempotent', async () => {
  let base = '';
  const answer = async (path: string) => (await fetch(`${base}${path}`)).status;
  class ObservedStore extends MemoryStore {
    override async close() {
      // The HTTP surface outlives the store: probes still answer while it closes, and say why.
      steps.push(`store closing; livez ${await answer('/livez')}; readyz ${await answer('/readyz')}`);
      await super.close();
    }
  }
  const records: RawRecord[] = [];
  for (const record of demoStream({ ...DEFAULT_DEMO_STREAM, recordsPerSegment: 300 })) {
    records.push(record);
    if (records.length === 512) break;
  }
  const sink = new RecordingSink();
  const source = new IterableSource({ name: 'test', records: () => records, batchSize: 256 });
  const flushed: string[] = [];
  const service = await SupsupService.start({
    daemon: {
      sink,
      store: new ObservedStore(),
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
    },
    makeSource: async () => source,
    http: configSchema.shape.http.parse({ port: 0 }),
    jobs: configSchema.shape.jobs.parse({}),
    logger: silentLogger,
    flushLogs: async () => {
      flushed.push(`logs flushed; http ${await answer('/livez').catch(() => 'closed')}`);
    },
    describe: { backend: 'test', source: 'test' },
  });
  base = `http://127.0.0.1:${service.address?.port}`;

  const before = await service.readiness();
  assert.deepEqual(before, { ready: false, reasons: ['source not started'] });
  const notStarted = await service.status();
  assert.deepEqual(notStarted.sourceState, { state: 'not_started', startedAt: null, endedAt: null });
  assert.deepEqual(notStarted.consumerLag, {});
  assert.equal(notStarted.storeWrites.recent, null);
  assert.deepEqual(
    service.jobs().map((job) => job.name),
    ['integrity', 'eventRetention'],
    'jobs scheduled (the snapshot job needs a directory)',
  );
  await service.run();
  assert.equal(sink.results, 512);
  assert.deepEqual(await service.readiness(), { ready: true, reasons: [] });
  // The stream's second segment (record 300 on) is a second task. Two batches into the first task its
  // bands are not calibrated yet, so the batch holding the change (44 new rows of 128) stays with task
  // 0 and the next batch, all new, allocates task 1.
  assert.deepEqual(
    service.tasks().map((task) => task.recordsRouted),
    [384, 128],
  );
  for (const task of service.tasks()) {
    const accuracy = task.prequentialAccuracy;
    assert.ok(accuracy !== null && accuracy >= 0 && accuracy <= 1, `task ${task.task}: ${accuracy}`);
  }
  const finished = await service.status();
  assert.deepEqual(finished.warnings, [], 'standardised inputs, usable accuracy');
  // The finite source delivered everything: finished, with when it started and ended, and the totals.
  const { state, startedAt, endedAt } = finished.sourceState;
  assert.equal(state, 'finished');
  assert.ok(
    startedAt !== null && endedAt !== null && startedAt <= endedAt,
    JSON.stringify(finished.sourceState),
  );
  assert.deepEqual(
    { in: finished.records.in, out: finished.records.out, deadLettered: finished.records.deadLettered },
    { in: 512, out: 512, deadLettered: 0 },
  );
  assert.deepEqual(
    Object.values(finished.records.deadLetteredByReason).filter((count) => count !== 0),
    [],
  );
  assert.equal(Object.keys(finished.records.deadLetteredByReason).length, 10, 'every reason code');
  assert.deepEqual(finished.consumerLag, { 'demo/0': null }, 'the demo stream has no high watermark');
  // Two source batches of 256 records: one state commit each.
  assert.deepEqual(
    {
      applied: finished.storeWrites.applied,
      fenced: finished.storeWrites.fenced,
      failed: finished.storeWrites.failed,
      commits: finished.storeWrites.recent?.commits,
    },
    { applied: 2, fenced: 0, failed: 0, commits: 2 },
  );

  const first = service.stop();
  const second = service.stop();
  assert.equal(first, second, 'stop() returns the same promise');
  const during = await service.readiness();
  assert.equal(during.ready, false);
  assert.ok(during.reasons.includes('draining'), JSON.stringify(during));
  await first;
  await service.stop();
  assert.equal(
    (await service.status()).sourceState.state,
    'finished',
    'stopping after the end keeps finished',
  );
  assert.deepEqual(steps, ['sink closed', 'store closing; livez 200; readyz 503']);
  assert.deepEqual(flushed, ['logs flushed; http closed'], 'logs are flushed last, after HTTP closed');
});
