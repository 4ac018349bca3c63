import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { redact } from '../../src/ops/logger.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

test('redact hides passwords in URLs and secret-looking keys, at any depth', () => {
  assert.deepEqual(
    redact({
      url: 'redis://user:hunter2@127.0.0.1:6379/0',
      sasl: { username: 'u', password: 'p' },
      nested: [{ token: 't', ok: 1 }],
      message: 'connect to rediss://:pw@host:1 failed',
    }),
    {
      url: 'redis://user:***@127.0.0.1:6379/0',
      sasl: '***',
      nested: [{ token: '***', ok: 1 }],
      message: 'connect to rediss://:***@host:1 failed',
    },
  );
});

test('createLogger writes JSON lines with level, message and context, redacted', () => {
  const script = `
    import { createLogger } from './src/ops/logger.ts';
    const log = createLogger({ level: 'info', stream: 'stderr', pretty: false });
    log.debug('hidden');
    log.child({ partition: 2 }).warn('record dead-lettered', { offset: '7', password: 'p' });`;
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: root,
    encoding: 'utf8',
  });
  assert.equal(run.status, 0, run.stderr);
  const lines = run.stderr
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(lines.length, 1, 'debug is below the level');
  const [line] = lines;
  assert.equal(line?.level, 'warn');
  assert.equal(line?.message, 'record dead-lettered');
  assert.equal(line?.partition, 2);
  assert.equal(line?.offset, '7');
  assert.equal(line?.password, '***');
  assert.match(String(line?.timestamp), /^\d{4}-\d\d-\d\dT/);
});
