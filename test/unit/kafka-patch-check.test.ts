/**
 * The start-up check that kafkajs carries every patch of patches/ (src/stream/kafka/patch-check.ts):
 * the installed package passes, a package without the markers fails loudly with E_DEPENDENCY, and
 * the list of patches the check knows is exactly the list of patch files, each adding its marker.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isSupsupError } from '../../src/errors.ts';
import {
  assertKafkajsPatched,
  KAFKAJS_PATCHES,
  kafkajsRoot,
  missingKafkajsPatches,
} from '../../src/stream/kafka/patch-check.ts';

const PATCHES = fileURLToPath(new URL('../../patches', import.meta.url));

test('the installed kafkajs carries every patch', () => {
  assert.deepEqual(missingKafkajsPatches(kafkajsRoot()), []);
  assertKafkajsPatched();
});

test('an unpatched kafkajs (npm ci --ignore-scripts) fails loudly with E_DEPENDENCY', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kafkajs-unpatched-'));
  try {
    assert.deepEqual(missingKafkajsPatches(dir), [...KAFKAJS_PATCHES]);
    assert.throws(
      () => assertKafkajsPatched(dir),
      (error) =>
        isSupsupError(error) &&
        error.code === 'E_DEPENDENCY' &&
        !error.retriable &&
        error.message.includes('001-encoding, 002-request-queue-idle-timer') &&
        error.message.includes('--ignore-scripts'),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the check knows exactly the patch files, and each patch adds its marker', () => {
  const files = readdirSync(PATCHES).filter((name) => name.startsWith('kafkajs+'));
  const names = files.map((file) => {
    const match = /^kafkajs\+2\.2\.4\+(\d{3})\+([a-z0-9-]+)\.patch$/.exec(file);
    assert.ok(match, `${file} is named kafkajs+2.2.4+NNN+name.patch`);
    return `${match[1]}-${match[2]}`;
  });
  assert.deepEqual(names.sort(), [...KAFKAJS_PATCHES].sort());
  for (const [k, file] of files.entries()) {
    const text = readFileSync(join(PATCHES, file), 'utf8');
    assert.ok(
      text.includes(`+++ b/node_modules/kafkajs/supsupd-patches/${names[k]}\n`),
      `${file} adds its marker`,
    );
  }
});
