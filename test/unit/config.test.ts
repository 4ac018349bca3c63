import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { SupsupError } from '../../src/errors.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'supsupd-config-'));
const file = (name: string, content: unknown) => {
  const p = path.join(dir, name);
  writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content));
  return p;
};
const minimal = {
  source: { kind: 'file', path: 'in.jsonl', checkpoint: 'consumed.json' },
  sink: { kind: 'file', dir: 'out' },
  store: { kind: 'file', dir: 'store' },
};

test('a minimal file config gets the paper defaults', () => {
  const config = loadConfig({ path: file('min.json', minimal), env: {} });
  assert.equal(config.discovery.epsilon, 0.125);
  assert.equal(config.discovery.minCandidates, 5);
  assert.equal(config.discovery.budget, 2500);
  assert.equal(config.discovery.warmupBatches, 20);
  assert.equal(config.batch.size, 128);
  assert.equal(config.model.outputs, 100);
  assert.equal(config.log.level, 'info');
});

test('every problem is reported in one E_CONFIG error', () => {
  const bad = file('bad.json', {
    source: { kind: 'kafka', brokers: [], topic: '' },
    sink: { kind: 'nope' },
    store: { kind: 'redis', url: 'http://x' },
    model: { outputs: 0 },
    surprise: true,
  });
  assert.throws(
    () => loadConfig({ path: bad, env: {} }),
    (error: unknown) => {
      assert.ok(error instanceof SupsupError);
      assert.equal(error.code, 'E_CONFIG');
      const problems = error.details.problems as string[];
      for (const key of [
        'source.brokers',
        'source.topic',
        'sink.kind',
        'store.url',
        'model.outputs',
        'surprise',
      ]) {
        assert.ok(
          problems.some((p) => p.includes(key)),
          `no problem about ${key}: ${problems.join(' | ')}`,
        );
      }
      return true;
    },
  );
  assert.throws(() => loadConfig({ path: file('notjson.json', '{oops'), env: {} }), /not a JSON object/);
  assert.throws(
    () => loadConfig({ path: path.join(dir, 'missing.json'), env: {} }),
    /cannot read the config file/,
  );
});

test('secrets come from the environment or *_FILE and override the file; flags override both', () => {
  const secret = file('redis-url', 'redis://user:s3cret@127.0.0.1:6390/0\n');
  const config = loadConfig({
    path: file('env.json', minimal),
    env: { SUPSUPD_REDIS_URL_FILE: secret, SUPSUPD_LOG_LEVEL: 'debug' },
    overrides: { log: { level: 'warn' } },
  });
  assert.deepEqual(config.store, {
    kind: 'redis',
    url: 'redis://user:s3cret@127.0.0.1:6390/0',
    namespace: 'supsupd:default',
    commandTimeoutMs: 5000,
    allowNoPersistence: false,
    onRegression: 'refuse',
    writer: { leaseMs: 15_000, standby: false },
  });
  assert.equal(config.log.level, 'warn');
  const kafka = loadConfig({
    path: file('kafka.json', {
      ...minimal,
      source: {
        kind: 'kafka',
        brokers: ['a:1'],
        topic: 'in',
        sasl: { mechanism: 'scram-sha-512', username: 'u', password: 'x' },
      },
    }),
    env: { SUPSUPD_KAFKA_BROKERS: 'b:2, c:3', SUPSUPD_KAFKA_PASSWORD: 'from-env' },
  });
  assert.equal(kafka.source.kind, 'kafka');
  if (kafka.source.kind === 'kafka') {
    assert.deepEqual(kafka.source.brokers, ['b:2', 'c:3']);
    assert.equal(kafka.source.sasl?.password, 'from-env');
  }
  assert.throws(
    () =>
      loadConfig({ path: file('m.json', minimal), env: { SUPSUPD_REDIS_URL_FILE: path.join(dir, 'nope') } }),
    /cannot read SUPSUPD_REDIS_URL_FILE/,
  );
});
