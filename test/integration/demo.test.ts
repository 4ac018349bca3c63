import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cli = path.join(root, 'src/cli/main.ts');

async function resultCount(dir: string): Promise<number> {
  try {
    return (await readFile(path.join(dir, 'results.jsonl'), 'utf8')).split('\n').filter((l) => l !== '')
      .length;
  } catch {
    return 0;
  }
}

test('demo: kill -9 mid-stream, restart on the same dir: every record out, the true tasks found, no extra mask', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'supsupd-demo-test-'));
  try {
    // First run: killed by SIGKILL right after its 60th state commit, before that batch's results
    // were written: the most dangerous window for losing records.
    const first = spawnSync(process.execPath, ['--import', 'tsx', cli, 'demo', '--dir', dir, '--json'], {
      cwd: root,
      encoding: 'utf8',
      timeout: 300_000,
      env: { ...process.env, SUPSUPD_FAILPOINT: 'after_state_commit@60' },
    });
    assert.equal(first.signal, 'SIGKILL', first.stderr);
    const before = await resultCount(dir);
    assert.equal(before, 59 * 256, 'results of the 59 batches before the crash, none of the 60th');

    // Second run resumes from the store's applied offset and finishes the stream.
    const second = spawnSync(process.execPath, ['--import', 'tsx', cli, 'demo', '--dir', dir, '--json'], {
      cwd: root,
      encoding: 'utf8',
      timeout: 300_000,
    });
    assert.equal(second.status, 0, second.stderr);
    const summary = JSON.parse(second.stdout.trim().split('\n').at(-1) ?? '') as {
      records_in: number;
      records_out: number;
      true_tasks: number;
      discovered_tasks: number;
      adjusted_rand_index: number;
      returning_task_recognised: boolean;
      spurious_allocations: number;
      events: { type: string }[];
    };
    assert.equal(summary.records_in, 36_000);
    assert.equal(summary.records_out, 36_000, 'no record lost across the crash');
    assert.equal(summary.true_tasks, 5);
    assert.equal(summary.discovered_tasks, 5);
    assert.equal(summary.spurious_allocations, 0);
    assert.equal(summary.returning_task_recognised, true);
    assert.ok(summary.adjusted_rand_index >= 0.95, `ARI ${summary.adjusted_rand_index}`);
    // Exactly one discovery event per mask, even though some batches ran twice.
    assert.equal(summary.events.filter((e) => e.type === 'task_discovered').length, 5);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
