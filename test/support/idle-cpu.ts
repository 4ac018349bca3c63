/**
 * The daemon's CPU while idle on a quiet Kafka topic: `npm run bench:idle -- [seconds] [daemons]`.
 *
 * Starts a real broker (test/harness/kafka.ts) and a Redis with AOF, creates empty topics, starts
 * `supsupd run` (the real CLI, LeNet, Kafka source and sink, Redis store) and waits until /readyz
 * answers 200 (the consumer has joined its group). After a 20 s settle it reads the daemon's
 * user + system CPU time from /proc/<pid>/stat over `seconds` (default 300) of wall time, in
 * 30 s windows, and prints one line per window and a summary line of JSON. Nothing is produced to
 * the input topic, so every CPU second is overhead of an idle daemon: heartbeats, fetch long-polls,
 * timers. tulios/kafkajs#1604 (a 1 ms timer loop in the request queue after the first response)
 * shows as several per cent of a core here.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import kafkajs from 'kafkajs';
import { startKafka } from '../harness/kafka.ts';
import { freePort } from '../harness/ports.ts';
import { makeServiceDir, removeServiceDir, sleep } from '../harness/proc.ts';
import { startRedis } from '../harness/redis.ts';
import { type DaemonCli, startDaemonCli, writeConfig } from './daemon-cli.ts';

const SETTLE_MS = 20_000;
const WINDOW_MS = 30_000;
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/** User + system CPU seconds of a process so far (/proc/<pid>/stat fields 14 and 15). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

async function waitReady(port: number, daemon: DaemonCli, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (daemon.exited()) throw new Error(`the daemon exited before it was ready:\n${daemon.tail()}`);
    const status = await fetch(`http://127.0.0.1:${port}/readyz`).then(
      (response) => response.status,
      () => 0,
    );
    if (status === 200) return;
    await sleep(250);
  }
  throw new Error(`the daemon was not ready in ${timeoutMs} ms:\n${daemon.tail()}`);
}

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 300);
  const count = Number(process.argv[3] ?? 1);
  const broker = await startKafka();
  const redis = await startRedis();
  const dir = makeServiceDir('idle-cpu');
  const admin = new kafkajs.Kafka({ brokers: broker.brokers, logLevel: kafkajs.logLevel.NOTHING }).admin();
  const daemons: DaemonCli[] = [];
  try {
    await admin.connect();
    const ports: number[] = [];
    for (let k = 0; k < count; k++) {
      const topics = ['in', 'results', 'dlq', 'events'].map((name) => `idle-${k}-${name}`);
      await admin.createTopics({
        waitForLeaders: true,
        topics: topics.map((topic) => ({ topic, numPartitions: 1, replicationFactor: 1 })),
      });
      const port = await freePort();
      const configPath = path.join(dir, `daemon-${k}.json`);
      writeConfig(configPath, {
        source: {
          kind: 'kafka',
          brokers: broker.brokers,
          clientId: 'idle',
          topic: topics[0],
          groupId: `idle-${k}`,
        },
        sink: {
          kind: 'kafka',
          brokers: broker.brokers,
          clientId: 'idle',
          resultsTopic: topics[1],
          deadLetterTopic: topics[2],
          eventsTopic: topics[3],
        },
        store: { kind: 'redis', url: redis.url, namespace: `idle-${k}` },
        model: { arch: 'lenet', outputs: 100, seed: 1 },
        log: { level: 'warn' },
        http: { port },
      });
      daemons.push(startDaemonCli({ configPath, logFile: path.join(dir, `daemon-${k}.log`), dir }));
      ports.push(port);
    }
    for (const [k, daemon] of daemons.entries()) await waitReady(ports[k] as number, daemon, 120_000);
    await sleep(SETTLE_MS);
    const start = daemons.map((daemon) => cpuSeconds(daemon.pid));
    const t0 = Date.now();
    let last = [...start];
    let lastAt = t0;
    while (Date.now() - t0 < seconds * 1000) {
      await sleep(Math.min(WINDOW_MS, seconds * 1000 - (Date.now() - t0)));
      const now = daemons.map((daemon) => cpuSeconds(daemon.pid));
      const wall = (Date.now() - lastAt) / 1000;
      const shares = now.map((cpu, k) => (((cpu - (last[k] as number)) / wall) * 100).toFixed(2));
      console.log(
        `window ${((Date.now() - t0) / 1000).toFixed(0)} s: CPU ${shares.join(' %, ')} % of one core`,
      );
      last = now;
      lastAt = Date.now();
    }
    const wall = (Date.now() - t0) / 1000;
    const idle = daemons.map((daemon, k) => {
      const cpu = cpuSeconds(daemon.pid) - (start[k] as number);
      return {
        cpuSeconds: Number(cpu.toFixed(2)),
        percentOfOneCore: Number(((cpu / wall) * 100).toFixed(2)),
      };
    });
    console.log(
      JSON.stringify({ wallSeconds: Number(wall.toFixed(1)), daemons: idle, node: process.version }),
    );
  } finally {
    for (const daemon of daemons) await daemon.kill();
    await admin.disconnect().catch(() => {});
    await broker.stop();
    await redis.stop();
    await removeServiceDir(dir);
  }
}

await main();
