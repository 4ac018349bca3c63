/**
 * One scheduler replica in its own process, for the replica test: a RedisStore and a Scheduler running `job` every
 * second, whose runs last `jobMs`. Prints a JSON line on stdout when it starts and when a run starts or ends.
 *
 *   node --import tsx test/support/scheduler-replica.ts <redis url> <namespace> <lockTtlMs> <job> <jobMs>
 */

import { silentLogger } from '../../src/logger.ts';
import { Scheduler } from '../../src/ops/scheduler.ts';
import { RedisStore } from '../../src/store/index.ts';

const [url, namespace, ttl, job, jobMs] = process.argv.slice(2);
const say = (fields: Record<string, unknown>) =>
  process.stdout.write(`${JSON.stringify({ pid: process.pid, ...fields })}\n`);

const store = new RedisStore({ url, namespace, commandTimeoutMs: 2000 });
await store.open();
const scheduler = new Scheduler({
  store,
  logger: silentLogger,
  lockTtlMs: Number(ttl),
  onRun: (run) => say({ event: 'run', outcome: run.outcome }),
});
scheduler.register({
  name: String(job),
  cron: '* * * * * *',
  async run(context) {
    say({ event: 'start', t: Date.now() });
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, Number(jobMs));
      context.signal.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    say({ event: 'end', t: Date.now() });
  },
});
scheduler.start();
// The scheduler's timers are unref'd; this process lives until it is killed.
setInterval(() => {}, 60_000);
say({ event: 'ready' });
