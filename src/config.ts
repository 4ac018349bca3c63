import { readFileSync } from 'node:fs';
import cron from 'node-cron';
import { z } from 'zod';
import { SupsupError } from './errors.js';

/**
 * The daemon's configuration: one schema, parsed once at start-up from a JSON file, environment
 * variables and flags (later ones win). Every problem is reported in one error. Secrets (the Redis
 * URL with its password, the Kafka SASL password) come from the environment or from a file named by
 * `<VAR>_FILE`, never from the config file, and are redacted in every dump.
 */
const positiveInt = z.number().int().positive();
const validCron = (expression: string) => cron.validate(expression);
const kafkaConnection = {
  brokers: z.array(z.string().min(1)).min(1),
  clientId: z.string().min(1).default('supsupd'),
  ssl: z.boolean().default(false),
  sasl: z
    .object({
      mechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']),
      username: z.string().min(1),
      password: z.string().min(1),
    })
    .strict()
    .optional(),
};

const sourceSchema = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('kafka'),
      ...kafkaConnection,
      topic: z.string().min(1),
      groupId: z.string().min(1).default('supsupd'),
      fromBeginning: z.boolean().default(true),
      sessionTimeoutMs: positiveInt.default(30_000),
      heartbeatIntervalMs: positiveInt.default(3_000),
      maxBatchSize: positiveInt.default(256),
      /** Records that do not fill a chunk wait this long for more (0: chunks follow the fetches). */
      lingerMs: z.number().int().min(0).max(3_600_000).default(1000),
      maxBytesPerPartition: positiveInt.optional(),
    })
    .strict(),
  z.object({ kind: z.literal('file'), path: z.string().min(1), checkpoint: z.string().min(1) }).strict(),
  z
    .object({
      kind: z.literal('stdin'),
      checkpoint: z.string().min(1).optional(),
      /** Names the session on stdin: the same name again resumes it after its checkpoint (needs a checkpoint). */
      session: z.string().min(1).max(200).optional(),
    })
    .strict()
    .refine(
      (s) => s.session === undefined || s.checkpoint !== undefined,
      'source.session needs source.checkpoint',
    ),
]);

const sinkSchema = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('kafka'),
      ...kafkaConnection,
      resultsTopic: z.string().min(1),
      deadLetterTopic: z.string().min(1),
      eventsTopic: z.string().min(1),
      /** Where the decision log goes (docs/daemon.md, "Decision log"); none when absent. */
      decisionsTopic: z.string().min(1).optional(),
    })
    .strict(),
  z.object({ kind: z.literal('file'), dir: z.string().min(1) }).strict(),
  z.object({ kind: z.literal('stdout') }).strict(),
]);

/** State safety, on every store kind (docs/daemon.md, "State safety"). */
const stateSafety = {
  /** A store that is empty or behind the source: refuse to start (default), replay the source, or accept. */
  onRegression: z.enum(['refuse', 'replay', 'accept']).default('refuse'),
  /** The writer lease: its time to live, and whether a second daemon waits for it instead of exiting. */
  writer: z
    .object({
      leaseMs: z.number().int().min(1000).max(600_000).default(15_000),
      standby: z.boolean().default(false),
    })
    .strict()
    .prefault({}),
};

const storeSchema = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('redis'),
      url: z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL'),
      namespace: z
        .string()
        .regex(/^[A-Za-z0-9_:.-]{1,64}$/)
        .default('supsupd:default'),
      commandTimeoutMs: positiveInt.default(5_000),
      /** Accept a Redis without AOF or RDB persistence (masks vanish with the server). */
      allowNoPersistence: z.boolean().default(false),
      ...stateSafety,
    })
    .strict(),
  z.object({ kind: z.literal('file'), dir: z.string().min(1), ...stateSafety }).strict(),
  z.object({ kind: z.literal('memory'), ...stateSafety }).strict(),
]);

export const configSchema = z
  .object({
    source: sourceSchema,
    sink: sinkSchema,
    store: storeSchema,
    model: z
      .object({
        arch: z.enum(['lenet', 'fc1024']).optional(),
        hidden: z.array(positiveInt).min(1).optional(),
        inputs: positiveInt.default(784),
        outputs: positiveInt.default(100),
        realClasses: positiveInt.default(10),
        seed: z.number().int().min(0).max(0xffffffff).default(1),
        optimizer: z.enum(['rmsprop', 'adam', 'sgd']).default('rmsprop'),
        lr: z.number().positive().optional(),
        /** How inputs are standardised before the network sees them (src/discovery/input-transform.ts). */
        input: z
          .object({
            standardise: z
              .union([
                z.enum(['auto', 'off']),
                z.object({ mean: z.array(z.number()), std: z.array(z.number().min(0)) }).strict(),
              ])
              .default('auto'),
            /** `auto`: records the per-feature mean and standard deviation are fitted on. */
            fitRecords: positiveInt.default(2048),
            /** Standardised values are clipped to ±clip. */
            clip: z.number().positive().default(8),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .refine(
        (m) => m.arch === undefined || m.hidden === undefined,
        'give model.arch or model.hidden, not both',
      )
      .refine((m) => m.realClasses <= m.outputs, 'model.realClasses must not exceed model.outputs')
      .refine(
        (m) =>
          typeof m.input.standardise === 'string' ||
          (m.input.standardise.mean.length === m.inputs && m.input.standardise.std.length === m.inputs),
        'model.input.standardise: give mean and std with model.inputs values each',
      )
      .prefault({}),
    discovery: z
      .object({
        /** The new-task rule: the evidence rule (default) or the paper's entropy-gradient rule. */
        rule: z.enum(['evidence', 'paper']).default('evidence'),
        evidence: z
          .object({
            z: z.number().positive().default(5),
            inputEffect: z.number().min(0).default(0.25),
            uncalibratedShift: z.number().gt(1).default(3),
            shiftBatches: positiveInt.default(4),
            shiftSmoothing: z.number().gt(0).lt(1).default(0.1),
            shiftPriorStd: z.number().positive().default(0.3),
            lossEffect: z.number().min(0).default(0.25),
            minBandRows: positiveInt.default(128),
            inputMemory: positiveInt.default(4096),
            lossMemory: positiveInt.default(512),
            settleBatches: positiveInt.default(3),
            settleFall: z.number().min(0).default(0.1),
            minSplitRows: positiveInt.default(8),
            rowZ: z.number().positive().default(4),
            rowEffect: z.number().min(0).default(0.5),
            shortlistFrom: positiveInt.default(17),
            shortlist: positiveInt.default(8),
          })
          .strict()
          .prefault({}),
        epsilon: z.number().positive().default(0.125),
        minCandidates: positiveInt.default(5),
        budget: positiveInt.default(2500),
        warmupBatches: z.number().int().min(0).default(20),
        checkEvery: positiveInt.default(1),
        fastPath: z
          .object({
            enabled: z.boolean().default(true),
            zScore: z.number().positive().default(3),
            minObservations: positiveInt.default(8),
            smoothing: z.number().gt(0).lt(1).default(0.1),
            minStd: z.number().min(0).default(0.02),
          })
          .strict()
          .default({ enabled: true, zScore: 3, minObservations: 8, smoothing: 0.1, minStd: 0.02 }),
        stepsPerBatch: z.number().int().min(0).default(8),
        /** Steps per labelled batch once the task's loss band has settled. */
        settledSteps: z.number().int().min(0).default(8),
        replayBatches: positiveInt.default(16),
        trainBatchSize: positiveInt.default(128),
        freezeAfterSteps: z.number().int().min(0).default(4000),
      })
      .strict()
      .prefault({}),
    batch: z
      .object({ size: positiveInt.max(4096).default(128), maxRecordBytes: positiveInt.default(1 << 20) })
      .strict()
      .prefault({}),
    backend: z.enum(['auto', 'tensorflow', 'wasm', 'cpu']).default('auto'),
    log: z
      .object({ level: z.enum(['error', 'warn', 'info', 'debug']).default('info') })
      .strict()
      .prefault({}),
    http: z
      .object({
        enabled: z.boolean().default(true),
        /** Loopback by default: the API is for the operator's own machine unless opened on purpose. */
        host: z.string().min(1).default('127.0.0.1'),
        port: z.number().int().min(0).max(65_535).default(9464),
        /** Bearer token for mutating and admin endpoints (from SUPSUPD_HTTP_TOKEN or its _FILE). */
        token: z.string().min(16, 'must be at least 16 characters').optional(),
        bodyLimitBytes: positiveInt.default(8 << 20),
        requestTimeoutMs: positiveInt.default(30_000),
        headersTimeoutMs: positiveInt.default(10_000),
        /** How often the live decision summary goes out on the events stream. */
        summaryIntervalMs: positiveInt.default(1_000),
      })
      .strict()
      .prefault({}),
    jobs: z
      .object({
        enabled: z.boolean().default(true),
        /** Lease of the cross-replica job lock; renewed while a job runs. */
        lockTtlMs: positiveInt.default(60_000),
        integrity: cronJob('17 * * * *').prefault({}),
        snapshot: cronJob('41 3 * * *')
          .extend({ dir: z.string().min(1).optional(), keep: positiveInt.default(7) })
          .prefault({}),
        eventRetention: cronJob('23 4 * * *')
          .extend({ maxAgeDays: z.number().positive().default(30), maxEvents: positiveInt.default(100_000) })
          .prefault({}),
      })
      .strict()
      .prefault({}),
    stopTimeoutMs: positiveInt.default(20_000),
  })
  .strict();

/** A scheduled job: a cron expression (node-cron syntax, seconds optional) and a switch. */
function cronJob(defaultCron: string) {
  return z
    .object({
      enabled: z.boolean().default(true),
      cron: z.string().min(1).default(defaultCron).refine(validCron, 'not a valid cron expression'),
    })
    .strict();
}

export type DaemonConfig = z.infer<typeof configSchema>;

/** Environment variables read on top of the config file. */
export const ENVIRONMENT = {
  config: 'SUPSUPD_CONFIG',
  redisUrl: 'SUPSUPD_REDIS_URL',
  kafkaBrokers: 'SUPSUPD_KAFKA_BROKERS',
  kafkaPassword: 'SUPSUPD_KAFKA_PASSWORD',
  logLevel: 'SUPSUPD_LOG_LEVEL',
  httpToken: 'SUPSUPD_HTTP_TOKEN',
  httpPort: 'SUPSUPD_HTTP_PORT',
} as const;

/** A secret from `NAME` or from the file named by `NAME_FILE` (trailing newline dropped). */
export function readSecret(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const file = env[`${name}_FILE`];
  if (file !== undefined && file !== '') {
    try {
      return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (error) {
      throw new SupsupError('E_CONFIG', `cannot read ${name}_FILE (${file}): ${(error as Error).message}`);
    }
  }
  return env[name];
}

type Json = Record<string, unknown>;

/**
 * Parses the configuration: the JSON file (from `path` or SUPSUPD_CONFIG), then environment
 * variables, then `overrides` (flags). Throws one E_CONFIG error listing every problem.
 */
export function loadConfig(
  options: { path?: string; env?: NodeJS.ProcessEnv; overrides?: Json } = {},
): DaemonConfig {
  const env = options.env ?? process.env;
  const file = options.path ?? env[ENVIRONMENT.config];
  const base: Json = file === undefined ? {} : readConfigFile(file);
  const merged = merge(merge(base, fromEnvironment(env, base)), options.overrides ?? {});
  return parseConfig(merged);
}

/** Validates a configuration document; throws one E_CONFIG error listing every problem. */
export function parseConfig(document: Readonly<Record<string, unknown>>): DaemonConfig {
  const parsed = configSchema.safeParse(document);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map(
    (issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`,
  );
  throw new SupsupError(
    'E_CONFIG',
    `invalid configuration, ${problems.length} problem(s):\n  - ${problems.join('\n  - ')}`,
    {
      details: { problems },
    },
  );
}

/** A configuration file's JSON object, unvalidated; E_CONFIG when it cannot be read or is not an object. */
export function readConfigFile(file: string): Json {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new SupsupError('E_CONFIG', `cannot read the config file ${file}: ${(error as Error).message}`);
  }
  try {
    const value = JSON.parse(text) as unknown;
    if (value === null || typeof value !== 'object' || Array.isArray(value))
      throw new Error('not a JSON object');
    return value as Json;
  } catch (error) {
    throw new SupsupError(
      'E_CONFIG',
      `the config file ${file} is not a JSON object: ${(error as Error).message}`,
    );
  }
}

function fromEnvironment(env: NodeJS.ProcessEnv, base: Json): Json {
  const out: Json = {};
  const redisUrl = readSecret(env, ENVIRONMENT.redisUrl);
  if (redisUrl !== undefined) {
    const store = asJson(base.store);
    out.store = store.kind === 'redis' ? { ...store, url: redisUrl } : { kind: 'redis', url: redisUrl };
  }
  const brokers = env[ENVIRONMENT.kafkaBrokers];
  const password = readSecret(env, ENVIRONMENT.kafkaPassword);
  for (const part of ['source', 'sink'] as const) {
    const section = asJson(base[part]);
    if (section.kind !== 'kafka') continue;
    const next: Json = { ...section };
    if (brokers !== undefined) next.brokers = brokers.split(',').map((b) => b.trim());
    if (password !== undefined && section.sasl !== undefined)
      next.sasl = { ...asJson(section.sasl), password };
    out[part] = next;
  }
  const token = readSecret(env, ENVIRONMENT.httpToken);
  const port = env[ENVIRONMENT.httpPort];
  if (token !== undefined || port !== undefined) {
    const http: Json = { ...asJson(base.http) };
    if (token !== undefined) http.token = token;
    if (port !== undefined) http.port = /^\d+$/.test(port) ? Number(port) : port;
    out.http = http;
  }
  const level = env[ENVIRONMENT.logLevel];
  if (level !== undefined) out.log = { level };
  return out;
}

function asJson(value: unknown): Json {
  return isPlainObject(value) ? value : {};
}

/**
 * Deep merge of plain objects; arrays and scalars from `over` replace those of `base`, and so does an
 * object of another `kind` (a redis store replaces a file store whole).
 */
function merge(base: Json, over: Json): Json {
  const out: Json = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const current = out[key];
    const bothObjects = isPlainObject(value) && isPlainObject(current);
    const sameKind = bothObjects && (value.kind === undefined || value.kind === current.kind);
    out[key] = bothObjects && sameKind ? merge(current, value) : value;
  }
  return out;
}

function isPlainObject(value: unknown): value is Json {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
