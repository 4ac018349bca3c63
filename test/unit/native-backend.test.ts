/**
 * The native backend's process settings, seen through `supsupd info`. Runs in `npm run test:native`
 * (after deploy/native/setup-native-backend.sh); skipped where the addon is not installed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cli = path.join(root, 'src/cli/main.ts');

function supsupdWith(env: NodeJS.ProcessEnv, ...args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', cli, ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 120_000,
    env,
  });
}

test('info on the native backend: oneDNN off unless TF_ENABLE_ONEDNN_OPTS turns it on', (t) => {
  const { TF_ENABLE_ONEDNN_OPTS: _set, ...unset } = process.env;
  const native = (env: NodeJS.ProcessEnv) => {
    const run = supsupdWith(env, 'info', '--json', '--backend', 'tensorflow');
    if (run.status !== 0) return null;
    return (JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '') as { native: { onednn: boolean } }).native;
  };
  const byDefault = native(unset);
  if (byDefault === null) {
    t.skip('the native addon is not installed (deploy/native/setup-native-backend.sh)');
    return;
  }
  assert.equal(byDefault.onednn, false);
  assert.equal(native({ ...unset, TF_ENABLE_ONEDNN_OPTS: '1' })?.onednn, true);
  assert.equal(native({ ...unset, TF_ENABLE_ONEDNN_OPTS: 'FALSE' })?.onednn, false);
});
