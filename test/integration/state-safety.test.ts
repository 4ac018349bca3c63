/**
 * State safety end to end (issue 16; docs/daemon.md, "State safety"): `supsupd run` on a private redis-server
 * with AOF on (restarted empty on purpose) and on the file store, with a file source (a FIFO where the daemon must
 * stay mid-run) and stdin. A store that lost, rolled back or shares its state is refused (exit code, /readyz
 * reason, log line) and no result is published from it; `store.onRegression: "replay"` ends with the same masks
 * as an uninterrupted run that never lost its state; a second daemon on a namespace never commits while the first holds the writer
 * lease.
 * Needs redis-server (the Redis cases skip loudly without it, fail under CI=true).
 */
import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { redisKeys } from '../../src/store/index.ts';
import { freePort } from '../harness/ports.ts';
import { pidAlive } from '../harness/proc.ts';
import { type RedisServer, requireRedisServerOrSkip, respCommand, startRedis } from '../harness/redis.ts';
import {
  BATCH,
  exitWithin,
  Fifo,
  LogView,
  type Masks,
  readyz,
  resultOffsets,
  runToExit,
  type StoreConfig,
  startRun,
  storeMasks,
  streamLines,
  waitForResults,
  writeLines,
} from '../support/state-safety.ts';
import { waitFor } from '../support/wait.ts';

const LINES = streamLines(4 * BATCH);
let root = '';
let stream768 = '';
let stream1024 = '';
/** The masks of one uninterrupted run over the first 768 lines (file store). */
let reference: Masks;

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'supsupd-state-safety-'));
  stream768 = path.join(root, 'stream-768.jsonl');
  stream1024 = path.join(root, 'stream-1024.jsonl');
  await writeLines(stream768, LINES.slice(0, 3 * BATCH));
  await writeLines(stream1024, LINES);
  const dir = await subdir('reference');
  const store: StoreConfig = { kind: 'file', dir: path.join(dir, 'store') };
  const run = await runToExit({ dir, store, source: { kind: 'file', path: stream768 }, name: 'run' });
  assert.equal(run.code, 0, run.log.text());
  reference = await storeMasks(store);
  assert.deepEqual(reference.applied, { 'file/0': '767' });
  assert.ok(reference.tasks.length > 0);
});
after(async () => {
  if (root !== '') await rm(root, { recursive: true, force: true });
});

async function subdir(name: string): Promise<string> {
  const dir = path.join(root, name);
  await mkdir(dir, { recursive: true });
  return dir;
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => String(from + i));

describe('Redis restarted empty mid-run (AOF on)', () => {
  let server: RedisServer | null = null;
  after(async () => server?.stop());

  test('the running daemon refuses the emptied store; a restart is refused (exit 2), replay relearns', async (t) => {
    if (!requireRedisServerOrSkip(t)) return;
    server = await startRedis({ appendonly: true });
    const redis = server;
    const dir = await subdir('redis-wipe');
    const store: StoreConfig = { kind: 'redis', namespace: 'state-safety:wipe' };
    const port = await freePort();
    const fifo = new Fifo(path.join(dir, 'input.fifo'));
    const common = { dir, store, redisUrl: redis.url };
    const run = startRun({
      ...common,
      source: { kind: 'file', path: fifo.path },
      httpPort: port,
      name: 'first',
    });
    const log = new LogView(run.logFile);
    try {
      await fifo.connect(run);
      await fifo.write(LINES.slice(0, 2 * BATCH));
      await waitForResults(dir, 2 * BATCH, run);
      await waitFor('ready', 20_000, async () => ((await readyz(port)).status === 200 ? true : undefined));

      // SIGKILL, and back with nothing: what a server without persistence (or with its files lost) comes back as.
      const pid = redis.pid;
      redis.kill('SIGKILL');
      await waitFor('redis-server to die', 10_000, () => (pidAlive(pid) ? undefined : true));
      await rm(path.join(redis.dir, 'appendonlydir'), { recursive: true, force: true });
      await redis.restart();

      const refused = await waitFor('readiness to name the regression', 20_000, async () => {
        const ready = await readyz(port);
        return ready.status === 503 && ready.reasons.some((r) => r.startsWith('store regressed'))
          ? ready
          : undefined;
      });
      assert.match(
        refused.reasons.join('; '),
        /store regressed: the store is empty, but epoch [0-9a-f]{32} sequence 2/,
      );
      await fifo.write(LINES.slice(2 * BATCH, 3 * BATCH));
      await fifo.close();
      await waitFor('the batch after the wipe to be refused', 20_000, () =>
        log.entries('batch failed; retrying').some((e) => String(e.error).includes('store regressed'))
          ? true
          : undefined,
      );
      const latched = log.entries('store regressed: no batch is learned or published');
      assert.equal(latched.length, 1, 'one error line when the regression is found');
      assert.equal(latched[0]?.level, 'error');
      assert.deepEqual(resultOffsets(dir), range(0, 2 * BATCH), 'no result from the regressed model');
      assert.equal(await respCommand(redis.port, ['EXISTS', redisKeys(store.namespace).registry]), 0);
      run.cli.signal('SIGTERM');
      assert.equal(await exitWithin(run, 30_000), 0, 'SIGTERM stops it as any other run (see Stopping)');
    } finally {
      await fifo.close();
      await run.cli.kill();
    }
    assert.deepEqual(resultOffsets(dir), range(0, 2 * BATCH), 'none on the way out either');

    // Started again on the empty namespace, behind its checkpoint (offset 511, store sequence 2): refused.
    const again = await runToExit({ ...common, source: { kind: 'file', path: stream768 }, name: 'restart' });
    assert.equal(again.code, 2, again.log.text());
    assert.match(again.log.text(), /E_STORE_REGRESSED/);
    const behind = again.log.entries('store regressed: it is behind the source')[0] ?? {};
    assert.equal(behind.level, 'error');
    const epoch = /^epoch ([0-9a-f]{32}) sequence 2$/.exec(String(behind.sourceStore))?.[1] ?? 'none';
    assert.equal(behind.store, 'empty (sequence 0)', 'the log names both positions');
    assert.deepEqual(behind.problems, [
      'file/0: the source committed offset 511, the store has applied nothing',
      `checkpoint: the store is empty, but epoch ${epoch} sequence 2 was committed before`,
    ]);
    assert.equal(again.log.entries('state restored').length, 1, 'it got as far as loading');
    assert.deepEqual(resultOffsets(dir), range(0, 2 * BATCH));

    // onRegression "replay": the file is read again from the store's offsets (none: the beginning) and relearnt.
    const replay = await runToExit({
      ...common,
      source: { kind: 'file', path: stream768 },
      onRegression: 'replay',
      name: 'replay',
    });
    assert.equal(replay.code, 0, replay.log.text());
    assert.equal(replay.log.entries("replaying the source from the store's applied offsets").length, 1);
    assert.deepEqual(await storeMasks(store, redis.url), reference, 'the masks of an uninterrupted run');
    assert.deepEqual(resultOffsets(dir), [...range(0, 2 * BATCH), ...range(0, 3 * BATCH)]);
  });
});

describe('file store: a deleted registry, an older registry under a newer checkpoint', () => {
  test('refused at start (exit 2) with both positions; replay gives the masks of an uninterrupted run', async () => {
    const dir = await subdir('file-older');
    const store: StoreConfig = { kind: 'file', dir: path.join(dir, 'store') };
    const first256 = path.join(dir, 'first-256.jsonl');
    await writeLines(first256, LINES.slice(0, BATCH));
    const first = await runToExit({ dir, store, source: { kind: 'file', path: first256 }, name: 'first' });
    assert.equal(first.code, 0, first.log.text());
    const snapshot = path.join(dir, 'snapshot');
    await cp(store.dir, snapshot, { recursive: true });
    const rest = await runToExit({ dir, store, source: { kind: 'file', path: stream768 }, name: 'rest' });
    assert.equal(rest.code, 0, rest.log.text());
    // A run stopped after 256 lines and restarted ends where an uninterrupted one does: everything the learner
    // trains from, its replay buffers included, is in the store.
    const unharmed = await storeMasks(store);
    assert.deepEqual(unharmed, reference, 'the masks of an uninterrupted run');
    const results = resultOffsets(dir);
    assert.deepEqual(results, range(0, 3 * BATCH));

    // The store restored from the older copy: sequence 1, applied 255, under a checkpoint at 767, sequence 3.
    await rm(store.dir, { recursive: true });
    await cp(snapshot, store.dir, { recursive: true });
    const older = await runToExit({ dir, store, source: { kind: 'file', path: stream768 }, name: 'older' });
    assert.equal(older.code, 2, older.log.text());
    const problems = older.log.entries('store regressed: it is behind the source')[0]?.problems as string[];
    assert.equal(problems[0], 'file/0: the source committed offset 767, the store applied only 255');
    assert.match(
      problems[1] ?? '',
      /^checkpoint: the store is at sequence 1, behind sequence 3 of epoch [0-9a-f]{32}$/,
    );
    assert.match(older.log.text(), /supsupd: E_STORE_REGRESSED: the store is behind the source/);
    assert.deepEqual(resultOffsets(dir), results, 'no result published');

    const replay = await runToExit({
      dir,
      store,
      source: { kind: 'file', path: stream768 },
      onRegression: 'replay',
      name: 'replay',
    });
    assert.equal(replay.code, 0, replay.log.text());
    assert.equal(replay.log.stopped().commitsApplied, 2, 'batches 256-511 and 512-767 learnt again');
    assert.deepEqual(await storeMasks(store), reference, 'the masks of an uninterrupted run');
    assert.deepEqual(resultOffsets(dir), [...results, ...range(BATCH, 3 * BATCH)]);

    // registry.json deleted: the store reads as empty, the checkpoint does not.
    const events = await readFile(path.join(store.dir, 'events.log'));
    assert.ok(events.length > 0, 'the run logged events');
    await rm(path.join(store.dir, 'registry.json'));
    const deleted = await runToExit({
      dir,
      store,
      source: { kind: 'file', path: stream768 },
      name: 'deleted',
    });
    assert.equal(deleted.code, 2, deleted.log.text());
    const lost = deleted.log.entries('store regressed: it is behind the source')[0]?.problems as string[];
    assert.equal(lost[0], 'file/0: the source committed offset 767, the store has applied nothing');
    assert.match(
      lost[1] ?? '',
      /^checkpoint: the store is empty, but epoch [0-9a-f]{32} sequence 3 was committed before$/,
    );
    assert.deepEqual(resultOffsets(dir), [...results, ...range(BATCH, 3 * BATCH)]);
    // The event log's lines of generations the (missing) registry never reached are kept beside it.
    const kept = (await readdir(store.dir)).filter((name) => name.startsWith('events.log.orphaned-'));
    assert.equal(kept.length, 1);
    assert.deepEqual(await readFile(path.join(store.dir, kept[0] as string)), events);

    // "accept": starts over from the empty store, with a warning; nothing after the checkpoint to learn.
    const accept = await runToExit({
      dir,
      store,
      source: { kind: 'file', path: stream768 },
      onRegression: 'accept',
      name: 'accept',
    });
    assert.equal(accept.code, 0, accept.log.text());
    assert.equal(accept.log.entries('store.onRegression is "accept"')[0]?.level, 'warn');
    assert.equal(accept.log.entries('store regressed: it is behind the source')[0]?.onRegression, 'accept');
  });
});

describe('two daemons on one Redis namespace', () => {
  let server: RedisServer | null = null;
  after(async () => server?.stop());

  test('exactly one commits: a second is refused, a standby waits and takes over when the writer stops', async (t) => {
    if (!requireRedisServerOrSkip(t)) return;
    server = await startRedis({ appendonly: true });
    const redis = server;
    const store: StoreConfig = { kind: 'redis', namespace: 'state-safety:two' };
    const keys = redisKeys(store.namespace);
    const sequence = async () => Number(await respCommand(redis.port, ['HGET', keys.meta, 'sequence']));
    const dirA = await subdir('two-a');
    const port = await freePort();
    const fifo = new Fifo(path.join(dirA, 'input.fifo'));
    const a = startRun({
      dir: dirA,
      store,
      redisUrl: redis.url,
      source: { kind: 'file', path: fifo.path },
      httpPort: port,
      name: 'a',
    });
    try {
      await fifo.connect(a);
      await fifo.write(LINES.slice(0, 2 * BATCH));
      await waitForResults(dirA, 2 * BATCH, a);
      assert.equal(await sequence(), 2);

      const dirB = await subdir('two-b');
      const b = await runToExit(
        { dir: dirB, store, redisUrl: redis.url, source: { kind: 'file', path: stream1024 }, name: 'b' },
        20_000,
      );
      assert.equal(b.code, 1, b.log.text());
      assert.match(
        b.log.text(),
        /E_STORE_CONFLICT: another daemon holds the writer lease of this redis store/,
      );
      assert.equal(b.log.entries('state restored').length, 0, 'refused before loading');
      assert.deepEqual(resultOffsets(dirB), []);

      const dirC = await subdir('two-c');
      const c = startRun({
        dir: dirC,
        store,
        redisUrl: redis.url,
        source: { kind: 'file', path: stream1024 },
        writer: { leaseMs: 2000, standby: true },
        name: 'c',
      });
      const logC = new LogView(c.logFile);
      await waitFor('the standby to wait', 20_000, () =>
        logC.entries('standby: another daemon holds the writer lease').length > 0 ? true : undefined,
      );
      await fifo.write(LINES.slice(2 * BATCH, 3 * BATCH));
      await waitForResults(dirA, 3 * BATCH, a);
      assert.deepEqual((await readyz(port)).reasons, [], 'the writer stays ready');
      assert.equal(await sequence(), 3, 'only the writer committed');
      assert.deepEqual(resultOffsets(dirC), [], 'the standby published nothing');

      await fifo.close();
      assert.equal(await exitWithin(a, 30_000), 0);
      assert.equal(await exitWithin(c, 60_000), 0, logC.text());
      assert.equal(logC.entries('standby: writer lease taken').length, 1);
      assert.equal(new LogView(a.logFile).stopped().commitsApplied, 3);
      // The standby took over with the writer's state: lines up to 767 only inferred, 768-1023 learnt.
      assert.equal(logC.stopped().commitsApplied, 1);
      assert.equal(await sequence(), 4, 'commits in the store = 3 + 1');
      assert.deepEqual(resultOffsets(dirC), range(0, 4 * BATCH));
      const discovered = (await respCommand(redis.port, ['XRANGE', keys.events, '-', '+'])) as [
        string,
        string[],
      ][];
      const tasks = discovered
        .map(([, fields]) => JSON.parse(fields[1] as string) as { type: string; task: number })
        .filter((event) => event.type === 'task_discovered')
        .map((event) => event.task);
      assert.deepEqual(tasks, [...new Set(tasks)], 'no task discovered twice');
    } finally {
      await fifo.close();
      await a.cli.kill();
    }
  });
});

describe('a writer killed (SIGKILL) and restarted at once', () => {
  let server: RedisServer | null = null;
  after(async () => server?.stop());

  test("the restart waits for the dead writer's lease to run out, then takes over", async (t) => {
    if (!requireRedisServerOrSkip(t)) return;
    server = await startRedis({ appendonly: true });
    const redis = server;
    const dir = await subdir('redis-killed');
    const store: StoreConfig = { kind: 'redis', namespace: 'state-safety:killed' };
    const common = { dir, store, redisUrl: redis.url, writer: { leaseMs: 3000 } };
    const fifo = new Fifo(path.join(dir, 'input.fifo'));
    const first = startRun({ ...common, source: { kind: 'file', path: fifo.path }, name: 'first' });
    try {
      await fifo.connect(first);
      await fifo.write(LINES.slice(0, BATCH));
      await waitForResults(dir, BATCH, first);
      await first.cli.kill();
    } finally {
      await fifo.close();
      await first.cli.kill();
    }
    const keys = redisKeys(store.namespace);
    assert.ok(
      Number(await respCommand(redis.port, ['PTTL', keys.writer])) > 0,
      'the dead writer left its lease',
    );
    const restart = await runToExit({
      ...common,
      source: { kind: 'file', path: stream768 },
      name: 'restart',
    });
    assert.equal(restart.code, 0, restart.log.text());
    assert.equal(
      restart.log.entries('the writer lease is held: waiting for it to run out')[0]?.level,
      'warn',
    );
    assert.equal(restart.log.entries("the previous writer's lease expired").length, 1);
    assert.equal(restart.log.stopped().commitsApplied, 2);
    assert.deepEqual(resultOffsets(dir), range(0, 3 * BATCH));
    assert.equal(Number(await respCommand(redis.port, ['HGET', keys.meta, 'sequence'])), 3);
  });
});

describe('a corrupted Redis namespace', () => {
  let server: RedisServer | null = null;
  after(async () => server?.stop());

  test('a broken registry, mask or training state: supsupd run exits non-zero within 10 s', async (t) => {
    if (!requireRedisServerOrSkip(t)) return;
    server = await startRedis({ appendonly: true });
    const redis = server;
    const dir = await subdir('redis-corrupt');
    const store: StoreConfig = { kind: 'redis', namespace: 'state-safety:corrupt' };
    const keys = redisKeys(store.namespace);
    const common = { dir, store, redisUrl: redis.url, source: { kind: 'file' as const, path: stream768 } };
    const seeded = await runToExit({ ...common, name: 'seed' });
    assert.equal(seeded.code, 0, seeded.log.text());
    const { tasks } = await storeMasks(store, redis.url);
    const learning = tasks.find((task) => !task.frozen);
    assert.ok(learning !== undefined, 'a mask still learning');
    // Each key is moved aside, replaced by `garbage` (a command) or left missing, and put back afterwards.
    const cases: [string, string, string[] | null][] = [
      ['registry', keys.registry, ['SET', keys.registry, '{"archKey": "not a registry"']],
      ['registry (deleted)', keys.registry, null],
      ['applied offsets', keys.applied, ['HSET', keys.applied, 'file/0', '007']],
      ['mask', keys.mask(learning.task), ['SET', keys.mask(learning.task), 'not a mask']],
      ['training state (deleted)', keys.training(learning.task), null],
    ];
    for (const [n, [what, key, garbage]] of cases.entries()) {
      await respCommand(redis.port, ['RENAME', key, `${key}:saved`]);
      if (garbage !== null) await respCommand(redis.port, garbage);
      const broken = startRun({ ...common, name: `broken-${n}` });
      const code = await exitWithin(broken, 10_000);
      const log = new LogView(broken.logFile);
      assert.equal(code, 1, `${what}: ${log.text()}`);
      assert.match(log.text(), /supsupd: E_STORE_CORRUPT: /, what);
      await respCommand(redis.port, ['RENAME', `${key}:saved`, key]);
    }
    assert.deepEqual(resultOffsets(dir), range(0, 3 * BATCH), 'no run published anything');
  });

  test('a database index the server cannot select (/99) is E_CONFIG at start, never database 0', async (t) => {
    if (!requireRedisServerOrSkip(t) || server === null) return;
    const dir = await subdir('redis-db99');
    const store: StoreConfig = { kind: 'redis', namespace: 'state-safety:db99' };
    const run = await runToExit(
      { dir, store, redisUrl: `${server.url}/99`, source: { kind: 'file', path: stream768 }, name: 'db99' },
      20_000,
    );
    assert.equal(run.code, 2, run.log.text());
    assert.match(run.log.text(), /supsupd: E_CONFIG: redis .*: database 99 cannot be selected/);
    assert.equal(await respCommand(server.port, ['EXISTS', redisKeys(store.namespace).writer]), 0);
    assert.deepEqual(resultOffsets(dir), []);
  });
});

test('a file sink that cannot write is refused at start, before anything is learnt', async () => {
  const dir = await subdir('sink-unwritable');
  await writeLines(path.join(dir, 'not-a-directory'), ['x']);
  const store: StoreConfig = { kind: 'file', dir: path.join(dir, 'store') };
  const run = await runToExit({
    dir,
    store,
    sinkDir: path.join(dir, 'not-a-directory', 'out'),
    source: { kind: 'file', path: stream768 },
    name: 'run',
  });
  assert.equal(run.code, 1, run.log.text());
  assert.match(run.log.text(), /supsupd: E_SINK: output directory .*not-a-directory\/out is not writable/);
  assert.equal(run.log.entries('state restored').length, 0);
  assert.deepEqual((await storeMasks(store)).tasks, [], 'nothing learnt');
});

describe('stdin across two sessions', () => {
  for (const checkpoint of [false, true]) {
    test(`${checkpoint ? 'with' : 'without'} a checkpoint the second session is new input, learnt`, async () => {
      const dir = await subdir(`stdin-${checkpoint ? 'checkpoint' : 'plain'}`);
      const store: StoreConfig = { kind: 'file', dir: path.join(dir, 'store') };
      const file = checkpoint ? path.join(dir, 'stdin-checkpoint.json') : undefined;
      const sessions = [LINES.slice(0, BATCH), LINES.slice(BATCH, 2 * BATCH)];
      for (const [i, lines] of sessions.entries()) {
        const input = path.join(dir, `session-${i}.jsonl`);
        await writeLines(input, lines);
        const source = { kind: 'stdin' as const, input, ...(file === undefined ? {} : { checkpoint: file }) };
        const run = await runToExit({ dir, store, source, name: `session-${i}` });
        assert.equal(run.code, 0, run.log.text());
        assert.equal(run.log.stopped().commitsApplied, 1, `session ${i} learnt its batch`);
      }
      assert.deepEqual(resultOffsets(dir), range(0, 2 * BATCH), 'the second session numbers on');
      assert.deepEqual((await storeMasks(store)).applied, { 'stdin/0': String(2 * BATCH - 1) });
      if (file !== undefined) {
        const saved = JSON.parse(await readFile(file, 'utf8')) as { session: { firstOffset: string } };
        assert.equal(saved.session.firstOffset, String(BATCH));
      }
    });
  }
});
