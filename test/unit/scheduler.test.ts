/**
 * The job scheduler on a MemoryStore: two Scheduler objects on one store act as two replicas (the store's locks are
 * shared by its users).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isSupsupError } from '../../src/errors.js';
import { silentLogger } from '../../src/logger.js';
import { type JobContext, type JobRun, Scheduler } from '../../src/ops/scheduler.js';
import { MemoryStore } from '../../src/store/index.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}

async function openStore(): Promise<MemoryStore> {
  const store = new MemoryStore();
  await store.open();
  return store;
}

function make(store: MemoryStore, lockTtlMs = 5000) {
  const runs: JobRun[] = [];
  const scheduler = new Scheduler({ store, logger: silentLogger, lockTtlMs, onRun: (run) => runs.push(run) });
  return { scheduler, runs };
}

/** A job whose runs wait for `release()` (or their signal). */
function gatedJob(name: string, cron = '0 0 1 1 *') {
  let open: () => void = () => {};
  let gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  const contexts: JobContext[] = [];
  return {
    contexts,
    release() {
      open();
      gate = new Promise<void>((resolve) => {
        open = resolve;
      });
    },
    definition: {
      name,
      cron,
      async run(context: JobContext) {
        contexts.push(context);
        await Promise.race([
          gate,
          new Promise<never>((_, reject) =>
            context.signal.addEventListener('abort', () => reject(context.signal.reason), { once: true }),
          ),
        ]);
        return 'done';
      },
    },
  };
}

describe('Scheduler', () => {
  test('runNow runs a job under its lock and reports it', async () => {
    const store = await openStore();
    const { scheduler, runs } = make(store);
    let heldDuringRun: boolean | null = null;
    scheduler.register({
      name: 'work',
      cron: '0 0 1 1 *',
      async run(context) {
        assert.equal(context.job, 'work');
        assert.equal(context.trigger, 'manual');
        heldDuringRun = (await store.acquireLock('job:work', 1000)) === null;
        return 'did the work';
      },
    });
    const run = await scheduler.runNow('work');
    assert.equal(run.outcome, 'ok');
    assert.equal(run.detail, 'did the work');
    assert.equal(run.trigger, 'manual');
    assert.ok(run.seconds >= 0);
    assert.equal(heldDuringRun, true, 'job:work was locked while the job ran');
    const lease = await store.acquireLock('job:work', 1000);
    assert.ok(lease, 'and released afterwards');
    await lease.release();
    assert.deepEqual(runs, [run]);
    const [status] = scheduler.status();
    assert.deepEqual(status, {
      name: 'work',
      cron: '0 0 1 1 *',
      runs: 1,
      failures: 0,
      skipped: 0,
      running: false,
      lastRun: {
        startedAt: run.startedAt,
        finishedAt: run.finishedAt,
        outcome: 'ok',
        detail: 'did the work',
      },
    });
    await scheduler.stop();
  });

  test('a throwing job is a failed run; the lock is released', async () => {
    const store = await openStore();
    const { scheduler } = make(store);
    scheduler.register({
      name: 'broken',
      cron: '0 0 1 1 *',
      async run() {
        throw new Error('boom');
      },
    });
    const run = await scheduler.runNow('broken');
    assert.equal(run.outcome, 'failed');
    assert.match(run.detail, /boom/);
    assert.equal(scheduler.status()[0]?.failures, 1);
    assert.equal(scheduler.status()[0]?.runs, 1);
    const lease = await store.acquireLock('job:broken', 1000);
    assert.ok(lease);
    await lease.release();
    await scheduler.stop();
  });

  test('a second run while one is running is skipped_running; another replica is skipped_locked', async () => {
    const store = await openStore();
    const a = make(store);
    const b = make(store);
    const jobA = gatedJob('gated');
    const jobB = gatedJob('gated');
    a.scheduler.register(jobA.definition);
    b.scheduler.register(jobB.definition);
    const first = a.scheduler.runNow('gated');
    await sleep(20);
    assert.equal(a.scheduler.status()[0]?.running, true);
    const second = await a.scheduler.runNow('gated');
    assert.equal(second.outcome, 'skipped_running');
    const other = await b.scheduler.runNow('gated');
    assert.equal(other.outcome, 'skipped_locked');
    assert.equal(jobB.contexts.length, 0, 'the other replica never ran the job');
    jobA.release();
    assert.equal((await first).outcome, 'ok');
    assert.deepEqual(
      a.runs.map((r) => r.outcome),
      ['skipped_running', 'ok'],
    );
    assert.equal(a.scheduler.status()[0]?.skipped, 1);
    // Free again: the other replica gets it now.
    const later = b.scheduler.runNow('gated');
    await sleep(20);
    jobB.release();
    assert.equal((await later).outcome, 'ok');
    await a.scheduler.stop();
    await b.scheduler.stop();
  });

  test('the lease is renewed while a job runs longer than the ttl', async () => {
    const store = await openStore();
    const a = make(store, 90);
    const b = make(store, 90);
    a.scheduler.register({
      name: 'long',
      cron: '0 0 1 1 *',
      async run(context) {
        await abortableSleep(400, context.signal);
      },
    });
    b.scheduler.register({ name: 'long', cron: '0 0 1 1 *', async run() {} });
    const running = a.scheduler.runNow('long');
    const skipped: string[] = [];
    for (let i = 0; i < 6; i++) {
      await sleep(50);
      skipped.push((await b.scheduler.runNow('long')).outcome);
    }
    const run = await running;
    assert.equal(run.outcome, 'ok', run.detail);
    assert.deepEqual(skipped, Array(6).fill('skipped_locked'));
    await a.scheduler.stop();
    await b.scheduler.stop();
  });

  test('a lost lease aborts the job', async () => {
    const store = await openStore();
    const { scheduler } = make(store, 300);
    const job = gatedJob('lost');
    scheduler.register(job.definition);
    const running = scheduler.runNow('lost');
    await sleep(20);
    // Time jumps past the lease: another holder takes it; the next renewal finds it gone.
    const realNow = store.now;
    store.now = () => realNow() + 10_000;
    const thief = await store.acquireLock('job:lost', 60_000);
    assert.ok(thief);
    store.now = realNow;
    const run = await running;
    assert.equal(run.outcome, 'failed');
    assert.match(run.detail, /lease was lost/);
    assert.equal(job.contexts[0]?.signal.aborted, true);
    assert.equal(await store.acquireLock('job:lost', 1000), null, "the thief's lease was left alone");
    await scheduler.stop();
  });

  test('stop() aborts a running job, waits for it, and is idempotent; later calls are refused', async () => {
    const store = await openStore();
    const { scheduler, runs } = make(store);
    const job = gatedJob('stoppable');
    scheduler.register(job.definition);
    scheduler.start();
    scheduler.start();
    const running = scheduler.runNow('stoppable');
    await sleep(20);
    await Promise.all([scheduler.stop(), scheduler.stop()]);
    assert.equal(job.contexts[0]?.signal.aborted, true);
    assert.equal(scheduler.status()[0]?.running, false, 'stop() waited for the run');
    assert.equal(runs.length, 1);
    assert.equal(runs[0]?.outcome, 'failed');
    assert.match(runs[0]?.detail ?? '', /aborted/);
    assert.equal((await running).outcome, 'failed');
    await scheduler.stop();
    await assert.rejects(
      scheduler.runNow('stoppable'),
      (e: unknown) => isSupsupError(e) && e.code === 'E_STOPPED',
    );
    assert.throws(
      () => scheduler.start(),
      (e: unknown) => isSupsupError(e) && e.code === 'E_STOPPED',
    );
    const lease = await store.acquireLock('job:stoppable', 1000);
    assert.ok(lease, 'the aborted run released its lock');
  });

  test('stop() is bounded when a job ignores its signal', async () => {
    const store = await openStore();
    const { scheduler } = make(store);
    let finish: () => void = () => {};
    scheduler.register({
      name: 'stubborn',
      cron: '0 0 1 1 *',
      run: () =>
        new Promise<void>((resolve) => {
          finish = resolve;
        }),
    });
    const running = scheduler.runNow('stubborn');
    await sleep(20);
    const started = Date.now();
    await scheduler.stop({ timeoutMs: 100 });
    assert.ok(Date.now() - started < 5000);
    assert.equal(scheduler.status()[0]?.running, true, 'the job is still running after the deadline');
    finish();
    assert.equal((await running).outcome, 'failed');
  });

  test('register and runNow refuse bad input', async () => {
    const store = await openStore();
    const { scheduler } = make(store);
    const job = { name: 'ok', cron: '* * * * *', async run() {} };
    scheduler.register(job);
    const code = (c: string) => (e: unknown) => isSupsupError(e) && e.code === c;
    assert.throws(() => scheduler.register(job), code('E_BAD_ARGUMENT'));
    assert.throws(() => scheduler.register({ ...job, name: 'bad name' }), code('E_BAD_ARGUMENT'));
    assert.throws(() => scheduler.register({ ...job, name: 'x', cron: 'not cron' }), code('E_CONFIG'));
    await assert.rejects(scheduler.runNow('missing'), code('E_JOB_UNKNOWN'));
    assert.throws(() => new Scheduler({ store, logger: silentLogger, lockTtlMs: 0 }), code('E_CONFIG'));
    await scheduler.stop();
  });

  test('cron ticks run the job; a tick while it still runs is skipped_running', async () => {
    const store = await openStore();
    const { scheduler, runs } = make(store);
    scheduler.register({
      name: 'ticking',
      cron: '* * * * * *',
      async run(context) {
        assert.equal(context.trigger, 'scheduled');
        await abortableSleep(1500, context.signal);
      },
    });
    scheduler.start();
    await sleep(4200);
    await scheduler.stop();
    const outcomes = runs.map((r) => r.outcome);
    assert.ok(outcomes.includes('ok'), JSON.stringify(outcomes));
    assert.ok(outcomes.includes('skipped_running'), JSON.stringify(outcomes));
    assert.ok(runs.every((r) => r.trigger === 'scheduled'));
    // Never two runs at once: the executed runs do not overlap.
    const executed = runs.filter((r) => r.outcome === 'ok' || r.outcome === 'failed');
    for (let i = 1; i < executed.length; i++) {
      assert.ok((executed[i]?.startedAt as string) >= (executed[i - 1]?.finishedAt as string));
    }
  });
});
