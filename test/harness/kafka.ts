/**
 * A real single-node Apache Kafka (KRaft, combined broker+controller) for integration tests, built from the
 * Maven Central jars (no Docker, no Kafka distribution tarball): `mvn dependency:copy-dependencies` on a
 * throw-away pom, cached under ~/.cache/supsupd/kafka-<version>/jars.
 *
 * Environment knobs:
 *   SUPSUPD_KAFKA_VERSION      kafka_2.13 version to fetch (default {@link DEFAULT_KAFKA_VERSION})
 *   SUPSUPD_KAFKA_JARS         use this pre-populated jar dir instead of fetching
 *   SUPSUPD_CACHE_DIR          cache root (default $XDG_CACHE_HOME/supsupd or ~/.cache/supsupd)
 *   SUPSUPD_KAFKA_READY_MS     readiness timeout in ms (default 90000)
 *   SUPSUPD_KAFKA_LOG_LEVEL    root log4j level of the broker log (default WARN)
 *   SUPSUPD_KAFKA_CDS=0        do not use/create the class-data-sharing archive (see planCds)
 *   SUPSUPD_KEEP_TEST_DIRS=1   keep the broker dir (config, data, logs) after stop()
 *   SUPSUPD_REQUIRE_KAFKA=1    like CI=true: missing Java/Maven fails instead of skipping
 *
 * Timing notes (2-core box, jars cached): start to ready ~2-4 s (format ~0.7 s of it), stop ~0.5 s.
 * restart() after kill('SIGKILL') takes ~10-14 s: the controller refuses the new broker incarnation
 * (DUPLICATE_BROKER_REGISTRATION) until the old one's broker.session.timeout.ms (9 s) expires. Tests that
 * need it faster can pass overrides { 'broker.session.timeout.ms': 4000, 'broker.heartbeat.interval.ms': 1000 }
 * (~7 s); kept at the defaults here so brokers are not fenced when a busy CI box stalls the JVM.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { canConnect, freePorts, LOOPBACK } from './ports.js';
import {
  hasExited,
  makeServiceDir,
  removeServiceDir,
  signalChild,
  sleep,
  spawnService,
  tailFile,
  terminate,
} from './proc.js';

/** Newest 3.9.x on Maven Central when this was written (3.9.0, 3.9.1 and 3.9.2 all resolve). */
export const DEFAULT_KAFKA_VERSION = '3.9.2';
/** The line KafkaRaftServer logs (at INFO, logger kafka.server.KafkaRaftServer) once startup has finished. */
export const KAFKA_STARTED_LINE = 'Kafka Server started';

const SLF4J_VERSION = '1.7.36'; // kafka_2.13 3.9.x depends on slf4j-api 1.7.36 and ships no binding
const RELOAD4J_VERSION = '1.2.25'; // what the 3.9 distribution's libs/ holds
const DEPENDENCY_PLUGIN_VERSION = '3.8.1';
const STOP_GRACE_MS = 15_000;

export function kafkaVersion(): string {
  const version = process.env.SUPSUPD_KAFKA_VERSION || DEFAULT_KAFKA_VERSION;
  // 4.x logs through Log4j 2 (different binding and config) and moved StorageTool; not wired up here.
  if (!/^3\.\d+\.\d+$/.test(version)) {
    throw new Error(
      `SUPSUPD_KAFKA_VERSION=${version}: this harness supports Kafka 3.x (KRaft, reload4j) only`,
    );
  }
  return version;
}

export function cacheRoot(): string {
  if (process.env.SUPSUPD_CACHE_DIR) return process.env.SUPSUPD_CACHE_DIR;
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'supsupd');
}

// ---------------------------------------------------------------------------------------------------------------
// Tool detection

function javaCommand(): string {
  const home = process.env.JAVA_HOME;
  if (home && existsSync(join(home, 'bin', 'java'))) return join(home, 'bin', 'java');
  return 'java';
}

let javaProbe: { ok: boolean; detail: string } | undefined;

function probeJava(): { ok: boolean; detail: string } {
  if (javaProbe) return javaProbe;
  const result = spawnSync(javaCommand(), ['-version'], { encoding: 'utf8', timeout: 30_000 });
  if (result.error || result.status !== 0) {
    javaProbe = {
      ok: false,
      detail: `\`${javaCommand()} -version\` failed: ${result.error?.message ?? `exit ${result.status}`} ${result.stderr ?? ''}`,
    };
    return javaProbe;
  }
  const text = `${result.stderr}${result.stdout}`;
  const match = /version "(\d+)(?:\.(\d+))?/.exec(text);
  const major = match ? (match[1] === '1' ? Number(match[2]) : Number(match[1])) : 0;
  javaProbe =
    major >= 11
      ? { ok: true, detail: text.split('\n')[0] ?? '' }
      : { ok: false, detail: `Java 11+ needed (17 recommended), found: ${text.split('\n')[0]}` };
  return javaProbe;
}

/** True when a Java 11+ runtime is on PATH (or in $JAVA_HOME). */
export function javaAvailable(): boolean {
  return probeJava().ok;
}

let mavenProbe: boolean | undefined;

/** True when `mvn -v` runs. */
export function mavenAvailable(): boolean {
  if (mavenProbe === undefined) {
    const result = spawnSync('mvn', ['-v', '-B'], { encoding: 'utf8', timeout: 60_000 });
    mavenProbe = !result.error && result.status === 0;
  }
  return mavenProbe;
}

/** Why Kafka cannot be started here, or undefined when it can. */
export function kafkaUnavailableReason(): string | undefined {
  const java = probeJava();
  if (!java.ok) return `no usable Java runtime (${java.detail.trim()})`;
  if (!kafkaJarsCached() && !mavenAvailable()) {
    return `Maven (mvn) not found and the Kafka ${kafkaVersion()} jars are not cached in ${jarsDir()}`;
  }
  return undefined;
}

/**
 * Call first in every test that needs Kafka: `if (!requireKafkaOrSkip(t)) return;`.
 * Without Java/Maven the test is skipped with a loud banner on stderr, except under CI=true (or
 * SUPSUPD_REQUIRE_KAFKA=1), where it throws: CI must fail, never silently skip.
 */
export function requireKafkaOrSkip(t: TestContext): boolean {
  const reason = kafkaUnavailableReason();
  if (reason === undefined) return true;
  const message = `Kafka integration test "${t.name}" cannot run: ${reason}`;
  if (process.env.CI === 'true' || process.env.SUPSUPD_REQUIRE_KAFKA === '1') {
    throw new Error(`${message}. CI=true, so this is a failure, not a skip: install Java 17 and Maven.`);
  }
  const bar = '!'.repeat(100);
  console.error(
    `\n${bar}\n!!! SKIPPED: ${message}\n!!! Install Java 17 + Maven 3.8 to run it. (In CI this fails.)\n${bar}\n`,
  );
  t.skip(`SKIPPED (no Kafka toolchain): ${reason}`);
  return false;
}

// ---------------------------------------------------------------------------------------------------------------
// Jars from Maven Central

function kafkaPom(version: string): string {
  const dep = (groupId: string, artifactId: string, v: string): string =>
    `    <dependency><groupId>${groupId}</groupId><artifactId>${artifactId}</artifactId><version>${v}</version></dependency>`;
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<!-- Generated by test/harness/kafka.ts: only used to fetch the Kafka broker jars. -->',
    '<project xmlns="http://maven.apache.org/POM/4.0.0">',
    '  <modelVersion>4.0.0</modelVersion>',
    '  <groupId>local.supsupd</groupId>',
    `  <artifactId>kafka-broker-jars-${version}</artifactId>`,
    '  <version>1</version>',
    '  <packaging>pom</packaging>',
    '  <dependencies>',
    dep('org.apache.kafka', 'kafka_2.13', version),
    dep('org.slf4j', 'slf4j-reload4j', SLF4J_VERSION),
    dep('ch.qos.reload4j', 'reload4j', RELOAD4J_VERSION),
    '  </dependencies>',
    '  <build><pluginManagement><plugins><plugin>',
    '    <groupId>org.apache.maven.plugins</groupId><artifactId>maven-dependency-plugin</artifactId>',
    `    <version>${DEPENDENCY_PLUGIN_VERSION}</version>`,
    '  </plugin></plugins></pluginManagement></build>',
    '</project>',
    '',
  ].join('\n');
}

function versionDir(version = kafkaVersion()): string {
  return join(cacheRoot(), `kafka-${version}`);
}

/** The jar dir used for the broker classpath (`<dir>/*`). */
export function jarsDir(version = kafkaVersion()): string {
  return process.env.SUPSUPD_KAFKA_JARS || join(versionDir(version), 'jars');
}

const MARKER = '.complete.json';

interface JarMarker {
  pomSha256: string;
  version: string;
  jars: number;
  bytes: number;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function jarsComplete(dir: string, version: string): boolean {
  try {
    const marker = JSON.parse(readFileSync(join(dir, MARKER), 'utf8')) as JarMarker;
    return (
      marker.pomSha256 === sha256(kafkaPom(version)) && existsSync(join(dir, `kafka_2.13-${version}.jar`))
    );
  } catch {
    return false;
  }
}

/** True when the jar dir for the configured version is complete (no Maven run needed). */
export function kafkaJarsCached(version = kafkaVersion()): boolean {
  if (process.env.SUPSUPD_KAFKA_JARS)
    return existsSync(join(process.env.SUPSUPD_KAFKA_JARS, `kafka_2.13-${version}.jar`));
  return jarsComplete(jarsDir(version), version);
}

function runCaptured(
  command: string,
  args: string[],
  options: { cwd: string; timeoutMs: number; env?: NodeJS.ProcessEnv },
): Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string; error?: Error }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => chunks.push(chunk));
    let spawnError: Error | undefined;
    child.on('error', (error) => {
      spawnError = error;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output: Buffer.concat(chunks).toString('utf8'), error: spawnError });
    });
  });
}

function lastLines(text: string, n: number): string {
  return text.trimEnd().split('\n').slice(-n).join('\n');
}

const jarFetches = new Map<string, Promise<string>>();

/**
 * Make sure the broker jars for `version` are in the cache and return the jar dir. Runs
 * `mvn -B -q dependency:copy-dependencies` into a temp dir next to the cache, writes a marker, then renames it into
 * place, so an interrupted or concurrent fetch never leaves a half-filled dir that looks complete.
 */
export function ensureKafkaJars(
  options: { log?: (line: string) => void; version?: string } = {},
): Promise<string> {
  const version = options.version ?? kafkaVersion();
  let pending = jarFetches.get(version);
  if (!pending) {
    pending = fetchKafkaJars(version, options.log ?? (() => {}));
    jarFetches.set(version, pending);
    pending.catch(() => jarFetches.delete(version));
  }
  return pending;
}

async function fetchKafkaJars(version: string, log: (line: string) => void): Promise<string> {
  const target = jarsDir(version);
  if (process.env.SUPSUPD_KAFKA_JARS) {
    if (!kafkaJarsCached(version)) {
      throw new Error(`SUPSUPD_KAFKA_JARS=${target} does not contain kafka_2.13-${version}.jar`);
    }
    return target;
  }
  if (jarsComplete(target, version)) return target;
  if (!mavenAvailable())
    throw new Error(`Kafka ${version} jars are not cached in ${target} and mvn is not on PATH`);

  const base = versionDir(version);
  mkdirSync(base, { recursive: true });
  const pom = kafkaPom(version);
  const pomFile = join(base, 'pom.xml');
  writeFileSync(pomFile, pom);
  const staging = join(base, `jars.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  rmSync(staging, { recursive: true, force: true });
  log(
    `kafka: fetching org.apache.kafka:kafka_2.13:${version} jars with Maven into ${target} (first run only)`,
  );
  const started = Date.now();
  const result = await runCaptured(
    'mvn',
    [
      '-B',
      '-q',
      '-Dstyle.color=never',
      '-f',
      pomFile,
      `org.apache.maven.plugins:maven-dependency-plugin:${DEPENDENCY_PLUGIN_VERSION}:copy-dependencies`,
      `-DoutputDirectory=${staging}`,
      '-DincludeScope=runtime',
    ],
    { cwd: base, timeoutMs: 15 * 60_000 },
  );
  if (result.error || result.code !== 0) {
    rmSync(staging, { recursive: true, force: true });
    throw new Error(
      `mvn dependency:copy-dependencies for kafka_2.13:${version} failed ` +
        `(exit ${result.code ?? result.signal}${result.error ? `, ${result.error.message}` : ''}); pom: ${pomFile}\n` +
        `--- mvn output (tail) ---\n${lastLines(result.output, 80)}`,
    );
  }
  const jars = readdirSync(staging).filter((name) => name.endsWith('.jar'));
  const required = [
    `kafka_2.13-${version}.jar`,
    `kafka-clients-${version}.jar`,
    `slf4j-reload4j-${SLF4J_VERSION}.jar`,
  ];
  const missing = required.filter((name) => !jars.includes(name));
  if (missing.length > 0) {
    rmSync(staging, { recursive: true, force: true });
    throw new Error(
      `mvn succeeded but ${missing.join(', ')} missing from ${staging}\n${lastLines(result.output, 40)}`,
    );
  }
  const bytes = jars.reduce((sum, name) => sum + statSync(join(staging, name)).size, 0);
  const marker: JarMarker = { pomSha256: sha256(pom), version, jars: jars.length, bytes };
  writeFileSync(join(staging, MARKER), `${JSON.stringify(marker, null, 2)}\n`);
  if (!jarsComplete(target, version)) {
    rmSync(target, { recursive: true, force: true });
    try {
      renameSync(staging, target);
    } catch (error) {
      // A concurrent fetch (another test process) won the race; use its result if it is complete.
      if (!jarsComplete(target, version)) throw error;
    }
  }
  rmSync(staging, { recursive: true, force: true });
  log(
    `kafka: ${jars.length} jars (${(bytes / 1048576).toFixed(1)} MiB) cached in ${target} ` +
      `after ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  return target;
}

// ---------------------------------------------------------------------------------------------------------------
// A minimal Kafka wire client (Metadata v1, FindCoordinator v1): enough to prove the broker serves requests and
// to warm up the group/transaction coordinators without an npm client.

class Writer {
  private readonly parts: Buffer[] = [];
  int8(v: number): this {
    const b = Buffer.alloc(1);
    b.writeInt8(v);
    this.parts.push(b);
    return this;
  }
  int16(v: number): this {
    const b = Buffer.alloc(2);
    b.writeInt16BE(v);
    this.parts.push(b);
    return this;
  }
  int32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32BE(v);
    this.parts.push(b);
    return this;
  }
  string(s: string): this {
    const bytes = Buffer.from(s, 'utf8');
    this.int16(bytes.length);
    this.parts.push(bytes);
    return this;
  }
  build(): Buffer {
    return Buffer.concat(this.parts);
  }
}

class Reader {
  private offset = 0;
  constructor(private readonly buf: Buffer) {}
  int8(): number {
    const v = this.buf.readInt8(this.offset);
    this.offset += 1;
    return v;
  }
  int16(): number {
    const v = this.buf.readInt16BE(this.offset);
    this.offset += 2;
    return v;
  }
  int32(): number {
    const v = this.buf.readInt32BE(this.offset);
    this.offset += 4;
    return v;
  }
  string(): string | null {
    const len = this.int16();
    if (len < 0) return null;
    const s = this.buf.toString('utf8', this.offset, this.offset + len);
    this.offset += len;
    return s;
  }
}

/**
 * One request (non-flexible header v1) to `broker` ('host:port') on a fresh connection; resolves with a reader
 * positioned after the response's correlation id. Rejects on connection errors or after `timeoutMs`.
 */
function kafkaRequest(
  broker: string,
  apiKey: number,
  apiVersion: number,
  body: Buffer,
  timeoutMs: number,
): Promise<Reader> {
  const colon = broker.lastIndexOf(':');
  const host = broker.slice(0, colon);
  const port = Number(broker.slice(colon + 1));
  const correlationId = 1 + Math.floor(Math.random() * 1e9);
  const header = new Writer()
    .int16(apiKey)
    .int16(apiVersion)
    .int32(correlationId)
    .string('supsupd-harness')
    .build();
  const request = Buffer.concat([new Writer().int32(header.length + body.length).build(), header, body]);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    let buffered = Buffer.alloc(0);
    let settled = false;
    const finish = (error: Error | undefined, value?: Reader): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else if (value) resolve(value);
    };
    const timer = setTimeout(() => finish(new Error(`request ${apiKey} to ${broker} timed out`)), timeoutMs);
    socket.once('connect', () => socket.write(request));
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length < 4 || buffered.length < 4 + buffered.readInt32BE(0)) return;
      const reader = new Reader(buffered.subarray(4, 4 + buffered.readInt32BE(0)));
      const got = reader.int32();
      if (got === correlationId) finish(undefined, reader);
      else
        finish(new Error(`request ${apiKey} to ${broker}: correlation id ${got}, expected ${correlationId}`));
    });
    socket.once('error', (error) => finish(error));
    socket.once('close', () =>
      finish(new Error(`connection to ${broker} closed before a reply to request ${apiKey}`)),
    );
  });
}

export interface KafkaMetadata {
  brokers: { nodeId: number; host: string; port: number }[];
  controllerId: number;
  topics: {
    name: string;
    errorCode: number;
    partitions: { partition: number; leader: number; errorCode: number }[];
  }[];
}

/** One Metadata (v1) request to `broker` ('host:port'); `topics` null (default) means all topics. */
export async function kafkaMetadata(
  broker: string,
  topics: string[] | null = null,
  timeoutMs = 5000,
): Promise<KafkaMetadata> {
  const body = new Writer();
  if (topics === null) body.int32(-1);
  else {
    body.int32(topics.length);
    for (const topic of topics) body.string(topic);
  }
  const r = await kafkaRequest(broker, 3, 1, body.build(), timeoutMs);
  const brokers: KafkaMetadata['brokers'] = [];
  for (let n = r.int32(), i = 0; i < n; i++) {
    const nodeId = r.int32();
    const host = r.string() ?? '';
    const port = r.int32();
    r.string(); // rack
    brokers.push({ nodeId, host, port });
  }
  const controllerId = r.int32();
  const result: KafkaMetadata['topics'] = [];
  for (let n = r.int32(), i = 0; i < n; i++) {
    const errorCode = r.int16();
    const name = r.string() ?? '';
    r.int8(); // is_internal
    const partitions: KafkaMetadata['topics'][number]['partitions'] = [];
    for (let p = r.int32(), j = 0; j < p; j++) {
      const partitionError = r.int16();
      const partition = r.int32();
      const leader = r.int32();
      for (let k = r.int32(); k > 0; k--) r.int32(); // replicas
      for (let k = r.int32(); k > 0; k--) r.int32(); // isr
      partitions.push({ partition, leader, errorCode: partitionError });
    }
    result.push({ name, errorCode, partitions });
  }
  return { brokers, controllerId, topics: result };
}

/**
 * FindCoordinator (v1) for a consumer group (`keyType` 0) or a transactional id (1). Returns the Kafka error code
 * (0 = ready; 15 COORDINATOR_NOT_AVAILABLE and 14 COORDINATOR_LOAD_IN_PROGRESS while __consumer_offsets or
 * __transaction_state is being created/loaded). The first call for each type creates that internal topic.
 */
export async function kafkaFindCoordinator(
  broker: string,
  key: string,
  keyType: 0 | 1,
  timeoutMs = 5000,
): Promise<number> {
  const r = await kafkaRequest(broker, 10, 1, new Writer().string(key).int8(keyType).build(), timeoutMs);
  r.int32(); // throttle_time_ms
  return r.int16();
}

/**
 * InitProducerId (v1) without a transactional id, as an idempotent producer sends first. Returns the Kafka error
 * code: 14 COORDINATOR_LOAD_IN_PROGRESS until the broker has its first block of producer ids from the controller.
 */
export async function kafkaInitProducerId(broker: string, timeoutMs = 5000): Promise<number> {
  const r = await kafkaRequest(broker, 22, 1, new Writer().int16(-1).int32(60_000).build(), timeoutMs);
  r.int32(); // throttle_time_ms
  return r.int16();
}

/**
 * Wait until the group and transaction coordinators answer and producer ids can be allocated, so that the first
 * consumer-group join, idempotent or transactional producer in a test does not pay for (and log errors about)
 * creating the internal topics.
 */
export async function warmUpCoordinators(broker: string, timeoutMs = 30_000): Promise<void> {
  const started = Date.now();
  const checks: Record<string, () => Promise<number>> = {
    group: () => kafkaFindCoordinator(broker, 'supsupd-harness-warmup', 0),
    transaction: () => kafkaFindCoordinator(broker, 'supsupd-harness-warmup', 1),
    producerId: () => kafkaInitProducerId(broker),
  };
  const pending = new Set(Object.keys(checks));
  let last = '';
  while (pending.size > 0) {
    for (const name of [...pending]) {
      try {
        const code = await checks[name]();
        if (code === 0) pending.delete(name);
        else last = `${name}: error code ${code}`;
      } catch (error) {
        last = `${name}: ${(error as Error).message}`;
      }
    }
    if (pending.size === 0) return;
    if (Date.now() - started > timeoutMs) {
      throw new Error(
        `Kafka coordinators not ready after ${timeoutMs} ms (pending ${[...pending].join(', ')}; ${last})`,
      );
    }
    await sleep(100);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The broker

export interface KafkaBroker {
  /** Bootstrap servers, e.g. ['127.0.0.1:41234']. */
  brokers: string[];
  /** Temp dir with server.properties, log4j.properties, data/ and the logs; removed by stop(). */
  dir: string;
  /** pid of the running JVM (changes after restart()). */
  readonly pid: number;
  port: number;
  controllerPort: number;
  clusterId: string;
  version: string;
  /** log4j output (WARN and up, plus the started line). */
  logFile: string;
  /** JVM stdout/stderr. */
  stdoutFile: string;
  /** SIGTERM, wait up to 15 s, SIGKILL; then remove the dir. Idempotent. */
  stop(): Promise<void>;
  /** Send a signal to the JVM (default SIGKILL). SIGSTOP/SIGCONT freeze and thaw it. No-op once it has exited. */
  kill(signal?: NodeJS.Signals): void;
  /** Stop the JVM if it still runs (SIGTERM), start it again on the same dir and ports, and wait until ready. */
  restart(): Promise<void>;
}

export interface StartKafkaOptions {
  /** Progress lines from the harness (jar fetch, start, stop). */
  log?: (line: string) => void;
  /** Extra or overriding server.properties entries, e.g. { 'message.max.bytes': 2_000_000 }. */
  overrides?: Record<string, string | number | boolean>;
  /** Readiness timeout (default 90 s, or SUPSUPD_KAFKA_READY_MS). */
  readyTimeoutMs?: number;
  /**
   * Also wait until the group and transaction coordinators are up (creates __consumer_offsets and
   * __transaction_state, ~0.5-1 s), after start and after restart. Default true.
   */
  warmUp?: boolean;
}

function serverProperties(
  dir: string,
  port: number,
  controllerPort: number,
  overrides: Record<string, string | number | boolean>,
): string {
  const props: Record<string, string | number | boolean> = {
    'process.roles': 'broker,controller',
    'node.id': 1,
    'controller.quorum.voters': `1@${LOOPBACK}:${controllerPort}`,
    listeners: `PLAINTEXT://${LOOPBACK}:${port},CONTROLLER://${LOOPBACK}:${controllerPort}`,
    'advertised.listeners': `PLAINTEXT://${LOOPBACK}:${port}`,
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'listener.security.protocol.map': 'CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    'log.dirs': join(dir, 'data'),
    'num.partitions': 1,
    'default.replication.factor': 1,
    'min.insync.replicas': 1,
    'offsets.topic.replication.factor': 1,
    'offsets.topic.num.partitions': 1,
    'transaction.state.log.replication.factor': 1,
    'transaction.state.log.min.isr': 1,
    'transaction.state.log.num.partitions': 1,
    'group.initial.rebalance.delay.ms': 0,
    'auto.create.topics.enable': false,
    // 2-core CI box: fewer threads than the defaults (3 network, 8 io).
    'num.network.threads': 2,
    'num.io.threads': 4,
    'num.recovery.threads.per.data.dir': 1,
    ...overrides,
  };
  const escapeValue = (value: string): string => value.replace(/\\/g, '\\\\');
  return `${Object.entries(props)
    .map(([key, value]) => `${key}=${escapeValue(String(value))}`)
    .join('\n')}\n`;
}

function log4jProperties(logFile: string): string {
  const level = process.env.SUPSUPD_KAFKA_LOG_LEVEL ?? 'WARN';
  return [
    `log4j.rootLogger=${level}, file`,
    'log4j.appender.file=org.apache.log4j.FileAppender',
    `log4j.appender.file.File=${logFile.replace(/\\/g, '\\\\')}`,
    'log4j.appender.file.Append=true',
    'log4j.appender.file.layout=org.apache.log4j.PatternLayout',
    'log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n',
    // The readiness check and tests look for "Kafka Server started" (INFO).
    'log4j.logger.kafka.server.KafkaRaftServer=INFO',
    '',
  ].join('\n');
}

/** Same format as `kafka-storage.sh random-uuid`: 16 random bytes, base64url without padding, not starting with '-'. */
export function randomClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    // Uuid.randomUuid() also rejects the reserved ZERO and METADATA_TOPIC ids (both start with 21 'A's).
    if (!id.startsWith('-') && !id.startsWith('A'.repeat(21))) return id;
  }
}

interface BrokerLayout {
  dir: string;
  jars: string;
  port: number;
  controllerPort: number;
  serverProps: string;
  log4jProps: string;
  logFile: string;
  stdoutFile: string;
}

// ---------------------------------------------------------------------------------------------------------------
// AppCDS: a dynamic class-data-sharing archive of the broker's classes cuts broker start-to-ready by ~25-30 %
// on a 2-core box (alternating A/B runs: 2.6-4.3 s without, 2.1-3.2 s with). It is dumped by the first broker
// that stops cleanly (that stop() takes ~3-5 s longer), cached next to the jars and keyed by the exact
// `java -version` and the jar dir. An archive from other jars/JDK is ignored by the JVM (-Xshare:auto), but a
// truncated one makes it abort, so a dump is checked with -Xshare:on before it is promoted, and a broker that
// aborts at startup deletes the archive and retries without it. SUPSUPD_KAFKA_CDS=0 disables it.

interface CdsPlan {
  /** -XX:SharedArchiveFile: an archive exists. */
  use?: string;
  /** -XX:ArchiveClassesAtExit target (a temp name) and where to promote it after a clean exit. */
  dump?: { tmp: string; final: string; lock: string };
}

function planCds(jars: string, version: string): CdsPlan {
  if (process.env.SUPSUPD_KAFKA_CDS === '0') return {};
  const jarSet = `${jars}\n${statSync(jars).mtimeMs}\n${readdirSync(jars).sort().join(',')}`;
  const key = sha256(`${probeJava().detail}\n${jarSet}`).slice(0, 16);
  const final = join(versionDir(version), `broker-${key}.jsa`);
  if (existsSync(final)) return { use: final };
  // One dumper at a time (parallel test files): an exclusive lock file, stolen when older than 10 minutes.
  const lock = `${final}.lock`;
  try {
    mkdirSync(versionDir(version), { recursive: true });
    try {
      if (Date.now() - statSync(lock).mtimeMs > 10 * 60_000) {
        // The dumper died (SIGKILL, exit hook): drop its lock and leftover temp archives.
        rmSync(lock, { force: true });
        for (const name of readdirSync(versionDir(version))) {
          if (name.startsWith(`broker-${key}.jsa.tmp-`))
            rmSync(join(versionDir(version), name), { force: true });
        }
      }
    } catch {
      // no lock
    }
    closeSync(openSync(lock, 'wx'));
  } catch {
    return {};
  }
  return { dump: { tmp: `${final}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`, final, lock } };
}

/** After the dumping JVM has exited: promote the archive if it exited cleanly, else discard it. */
function finishCdsDump(plan: CdsPlan, jars: string, cleanExit: boolean, log: (line: string) => void): void {
  const dump = plan.dump;
  if (!dump) return;
  plan.dump = undefined;
  try {
    if (cleanExit && existsSync(dump.tmp) && statSync(dump.tmp).size > 0) {
      // A truncated archive makes every later JVM abort (SIGABRT), even with -Xshare:auto: check it maps first.
      const check = spawnSync(
        javaCommand(),
        [`-XX:SharedArchiveFile=${dump.tmp}`, '-Xshare:on', '-cp', join(jars, '*'), '-version'],
        { encoding: 'utf8', timeout: 30_000 },
      );
      if (check.status === 0) {
        renameSync(dump.tmp, dump.final);
        log(`kafka: cached a class-data-sharing archive for faster broker starts: ${dump.final}`);
      } else {
        log(`kafka: discarded an unusable class-data-sharing archive (exit ${check.status ?? check.signal})`);
      }
    }
  } catch {
    // best effort
  } finally {
    rmSync(dump.tmp, { force: true });
    rmSync(dump.lock, { force: true });
  }
}

function jvmArgs(layout: BrokerLayout, cds: CdsPlan): string[] {
  return [
    ...(cds.use ? [`-XX:SharedArchiveFile=${cds.use}`] : []),
    ...(cds.dump ? [`-XX:ArchiveClassesAtExit=${cds.dump.tmp}`] : []),
    '-Xms256m',
    '-Xmx512m',
    '-XX:+UseG1GC',
    '-XX:MaxGCPauseMillis=20',
    '-XX:InitiatingHeapOccupancyPercent=35',
    '-XX:+ExplicitGCInvokesConcurrent',
    '-XX:+ExitOnOutOfMemoryError',
    '-Djava.awt.headless=true',
    `-Djava.io.tmpdir=${join(layout.dir, 'tmp')}`,
    `-Dlog4j.configuration=file:${layout.log4jProps}`,
    `-Dkafka.logs.dir=${join(layout.dir, 'logs')}`,
    '-cp',
    join(layout.jars, '*'),
    'kafka.Kafka',
    layout.serverProps,
  ];
}

async function formatStorage(layout: BrokerLayout, clusterId: string): Promise<void> {
  // Short-lived JVM: C1 only and serial GC start faster on 2 cores.
  const result = await runCaptured(
    javaCommand(),
    [
      '-XX:TieredStopAtLevel=1',
      '-XX:+UseSerialGC',
      '-Xmx256m',
      `-Djava.io.tmpdir=${join(layout.dir, 'tmp')}`,
      `-Dlog4j.configuration=file:${layout.log4jProps}`,
      '-cp',
      join(layout.jars, '*'),
      'kafka.tools.StorageTool',
      'format',
      '-t',
      clusterId,
      '-c',
      layout.serverProps,
    ],
    { cwd: layout.dir, timeoutMs: 120_000 },
  );
  if (result.error || result.code !== 0) {
    throw new Error(
      `kafka-storage format failed (exit ${result.code ?? result.signal}${result.error ? `, ${result.error.message}` : ''})\n` +
        `${lastLines(result.output, 40)}\n--- ${layout.logFile} (tail) ---\n${tailFile(layout.logFile, 40)}`,
    );
  }
}

class BrokerStartError extends Error {
  constructor(
    message: string,
    readonly bindConflict: boolean,
    /** The JVM aborted (hs_err / SIGABRT): possibly a bad class-data-sharing archive. */
    readonly jvmCrash = false,
  ) {
    super(message);
  }
}

/** Delete a CDS archive that a crashed broker was started with, so the next attempt runs without it. */
function dropCdsArchive(cds: CdsPlan, error: unknown, log: (line: string) => void): boolean {
  if (!cds.use || !(error instanceof BrokerStartError) || !error.jvmCrash) return false;
  log(`kafka: the JVM crashed at startup with ${cds.use}; deleting the archive and retrying without it`);
  rmSync(cds.use, { force: true });
  return true;
}

function readFrom(file: string, offset: number): string {
  try {
    const text = readFileSync(file);
    return text.subarray(Math.min(offset, text.length)).toString('utf8');
  } catch {
    return '';
  }
}

function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

async function waitUntilReady(
  child: ChildProcess,
  layout: BrokerLayout,
  logOffset: number,
  timeoutMs: number,
): Promise<void> {
  const started = Date.now();
  const address = `${LOOPBACK}:${layout.port}`;
  let tcp = false;
  let metadata = false;
  let startedLine = false;
  let lastError = '';
  const describe = (): string =>
    `tcp connect: ${tcp ? 'ok' : 'no'}, metadata: ${metadata ? 'ok' : `no${lastError ? ` (${lastError})` : ''}`}, ` +
    `"${KAFKA_STARTED_LINE}" logged: ${startedLine ? 'yes' : 'no'}`;
  const tails = (): string =>
    `--- ${layout.logFile} (tail) ---\n${tailFile(layout.logFile, 60) || '(empty)'}\n` +
    `--- ${layout.stdoutFile} (tail) ---\n${tailFile(layout.stdoutFile, 30) || '(empty)'}`;
  while (Date.now() - started < timeoutMs) {
    if (hasExited(child)) {
      const output = `${readFrom(layout.logFile, logOffset)}\n${readFrom(layout.stdoutFile, 0)}`;
      throw new BrokerStartError(
        `Kafka broker (pid ${child.pid}) exited during startup with ${child.exitCode ?? child.signalCode}; ` +
          `${describe()}; dir ${layout.dir}\n${tails()}`,
        /Address already in use|BindException/.test(output),
        child.exitCode === 134 || child.signalCode === 'SIGABRT' || /hs_err_pid/.test(output),
      );
    }
    if (!tcp) tcp = await canConnect(layout.port, LOOPBACK, 1000);
    if (tcp && !metadata) {
      try {
        const meta = await kafkaMetadata(address, null, 3000);
        metadata = meta.brokers.some((b) => b.nodeId === 1 && b.port === layout.port);
        if (!metadata) lastError = `brokers=${JSON.stringify(meta.brokers)}`;
      } catch (error) {
        lastError = (error as Error).message;
      }
    }
    if (!startedLine) startedLine = readFrom(layout.logFile, logOffset).includes(KAFKA_STARTED_LINE);
    if (tcp && metadata && startedLine) return;
    await sleep(200);
  }
  throw new BrokerStartError(
    `Kafka broker (pid ${child.pid}) not ready after ${Math.round(timeoutMs / 1000)} s: ${describe()}; dir ${layout.dir}\n${tails()}`,
    false,
  );
}

/**
 * Start a fresh single-node KRaft Kafka on free loopback ports in a new temp dir and wait until it serves
 * metadata. Fetches the jars with Maven on first use. Always `await broker.stop()` (an exit hook and a watchdog
 * kill it anyway if the test process ends first).
 */
export async function startKafka(options: StartKafkaOptions = {}): Promise<KafkaBroker> {
  const log = options.log ?? (() => {});
  const version = kafkaVersion();
  const timeoutMs = options.readyTimeoutMs ?? Number(process.env.SUPSUPD_KAFKA_READY_MS ?? 90_000);
  const jars = await ensureKafkaJars({ log, version });
  const java = javaCommand();

  for (let attempt = 1; ; attempt++) {
    const t0 = Date.now();
    const [port, controllerPort] = await freePorts(2);
    const dir = makeServiceDir('kafka');
    const layout: BrokerLayout = {
      dir,
      jars,
      port,
      controllerPort,
      serverProps: join(dir, 'server.properties'),
      log4jProps: join(dir, 'log4j.properties'),
      logFile: join(dir, 'broker.log'),
      stdoutFile: join(dir, 'stdout.log'),
    };
    mkdirSync(join(dir, 'tmp'));
    mkdirSync(join(dir, 'logs'));
    writeFileSync(layout.serverProps, serverProperties(dir, port, controllerPort, options.overrides ?? {}));
    writeFileSync(layout.log4jProps, log4jProperties(layout.logFile));
    const clusterId = randomClusterId();
    const cds = planCds(jars, version);
    let child: ChildProcess | undefined;
    try {
      await formatStorage(layout, clusterId);
      const tFormat = Date.now();
      child = spawnService({
        command: java,
        args: jvmArgs(layout, cds),
        cwd: dir,
        outFile: layout.stdoutFile,
        dir,
      });
      if (child.pid === undefined) throw new Error(`could not spawn ${java}`);
      await waitUntilReady(child, layout, 0, timeoutMs);
      const tReady = Date.now();
      if (options.warmUp ?? true) await warmUpCoordinators(`${LOOPBACK}:${port}`, timeoutMs);
      log(
        `kafka ${version}: ready on ${LOOPBACK}:${port} (controller ${controllerPort}, pid ${child.pid}) in ` +
          `${Date.now() - t0} ms (format ${tFormat - t0} ms, coordinators ${Date.now() - tReady} ms), dir ${dir}`,
      );
    } catch (error) {
      if (child) await terminate(child, 2000).catch(() => {});
      finishCdsDump(cds, jars, false, log);
      await removeServiceDir(dir);
      if (error instanceof BrokerStartError && error.bindConflict && attempt < 3) {
        log(`kafka: port conflict on ${port}/${controllerPort}, retrying with new ports`);
        continue;
      }
      if (dropCdsArchive(cds, error, log) && attempt < 3) continue;
      throw error;
    }
    return makeBroker(child, cds, layout, clusterId, version, {
      timeoutMs,
      log,
      warmUp: options.warmUp ?? true,
    });
  }
}

function makeBroker(
  first: ChildProcess,
  firstCds: CdsPlan,
  layout: BrokerLayout,
  clusterId: string,
  version: string,
  { timeoutMs, log, warmUp }: { timeoutMs: number; log: (line: string) => void; warmUp: boolean },
): KafkaBroker {
  let child = first;
  let cds = firstCds;
  let stopping: Promise<void> | undefined;
  /** Stop the current JVM (if running) and settle its CDS dump. */
  const stopJvm = async (): Promise<string> => {
    const how = await terminate(child, cds.dump ? 2 * STOP_GRACE_MS : STOP_GRACE_MS);
    // Clean = it exited by itself after SIGTERM (Kafka's shutdown hooks ran and the JVM wrote the archive).
    finishCdsDump(cds, layout.jars, how === 'terminated' && child.signalCode === null, log);
    return how;
  };
  return {
    brokers: [`${LOOPBACK}:${layout.port}`],
    dir: layout.dir,
    get pid(): number {
      return child.pid ?? -1;
    },
    port: layout.port,
    controllerPort: layout.controllerPort,
    clusterId,
    version,
    logFile: layout.logFile,
    stdoutFile: layout.stdoutFile,
    kill(signal: NodeJS.Signals = 'SIGKILL'): void {
      signalChild(child, signal);
    },
    async restart(): Promise<void> {
      if (stopping) throw new Error('restart() after stop()');
      const t0 = Date.now();
      await stopJvm();
      for (let attempt = 1; ; attempt++) {
        const logOffset = fileSize(layout.logFile);
        cds = planCds(layout.jars, version);
        child = spawnService({
          command: javaCommand(),
          args: jvmArgs(layout, cds),
          cwd: layout.dir,
          outFile: layout.stdoutFile,
          dir: layout.dir,
        });
        try {
          await waitUntilReady(child, layout, logOffset, timeoutMs);
          if (warmUp) await warmUpCoordinators(`${LOOPBACK}:${layout.port}`, timeoutMs);
          break;
        } catch (error) {
          await stopJvm().catch(() => {});
          if (dropCdsArchive(cds, error, log) && attempt < 2) continue;
          throw error;
        }
      }
      log(
        `kafka ${version}: restarted on ${LOOPBACK}:${layout.port} (pid ${child.pid}) in ${Date.now() - t0} ms`,
      );
    },
    stop(): Promise<void> {
      stopping ??= (async () => {
        const t0 = Date.now();
        const how = await stopJvm();
        await removeServiceDir(layout.dir);
        log(`kafka ${version}: stopped (${how}) in ${Date.now() - t0} ms`);
      })();
      return stopping;
    },
  };
}
