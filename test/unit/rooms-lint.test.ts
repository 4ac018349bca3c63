import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

/**
 * The rooms' import rules of .ci/biome.json (README, Layout), run by the real Biome on a scratch
 * tree laid out like src/: each deliberate violation is reported, at its file and line, and
 * nothing else is.
 */
const REPO = path.resolve(import.meta.dirname, '../..');
const BIOME = path.join(REPO, 'node_modules', '.bin', 'biome');

const FILES: Readonly<Record<string, string>> = {
  'src/errors.ts': 'export const e = 1;\n',
  'src/records.ts': 'export type R = number;\n',
  'src/store/types.ts': 'export type S = number;\n',
  'src/store/file-store.ts': 'export class FileStore {}\n',
  'src/store/redis-keys.ts': 'export const k = 1;\n',
  'src/store/index.ts': "export { FileStore } from './file-store.js';\nexport const openStore = 1;\n",
  'src/stream/types.ts': 'export type T = number;\n',
  'src/daemon/daemon.ts': 'export const d = 1;\n',
  'src/daemon/state.ts': 'export const s = 1;\n',
  'src/daemon/telemetry.ts': 'export const t = 1;\n',
  // model: a store import (line 1) and a runtime cycle (cycle-a ↔ cycle-b, line 1 of each)
  'src/model/bank/uses-store.ts': "import type { S } from '../../store/types.js';\nexport type X = S;\n",
  'src/model/bank/cycle-a.ts': "import { b } from './cycle-b.js';\nexport const a = (): number => b;\n",
  'src/model/bank/cycle-b.ts':
    "import { a } from './cycle-a.js';\nexport const b = 1;\nexport const c = a;\n",
  'src/model/bank/fine.ts':
    "import { createHash } from 'node:crypto';\nimport { e } from '../../errors.js';\nexport const f = [createHash, e];\n",
  // codec: stream (line 2) and a package (line 3) refused; errors, records, node: and its own files allowed
  'src/codec/mixed.ts':
    "import { e } from '../errors.js';\nimport type { T } from '../stream/types.js';\nimport x from 'kafkajs';\nimport type { R } from '../records.js';\nimport { isUtf8 } from 'node:buffer';\nimport { own } from './own.js';\nexport type Y = T | R;\nexport const m = [e, x, isUtf8, own];\n",
  'src/codec/own.ts': 'export const own = 1;\n',
  // daemon: the MaskStore port and openStore() allowed; a concrete store (line 2), a store internal
  // (line 3) and a concrete class through the store's index (line 5) refused
  'src/daemon/uses-store.ts':
    "import type { S } from '../store/types.js';\nimport { FileStore } from '../store/file-store.js';\nimport { k } from '../store/redis-keys.js';\nimport { openStore } from '../store/index.js';\nimport { FileStore as Concrete } from '../store/index.js';\nexport type U = S;\nexport const u = [FileStore, k, openStore, Concrete];\n",
  // archive: the MaskStore port, the store index's registry check, codec and model allowed; a store internal
  // (line 2), openStore through the index (line 3) and the daemon (line 4) refused
  'src/archive/uses-store.ts':
    "import type { S } from '../store/types.js';\nimport { k } from '../store/redis-keys.js';\nimport { openStore } from '../store/index.js';\nimport { s } from '../daemon/state.js';\nimport { own } from '../codec/own.js';\nexport type A = S;\nexport const a = [k, openStore, s, own];\n",
  // ops: telemetry allowed, state refused (line 2), daemon.js refused outside service.ts (line 3)
  'src/ops/metrics.ts':
    "import { t } from '../daemon/telemetry.js';\nimport { s } from '../daemon/state.js';\nimport { d } from '../daemon/daemon.js';\nexport const o = [t, s, d];\n",
  // evaluate: the daemon and the stream's types allowed; ops (line 3) and a store (line 4) refused
  'src/evaluate/uses.ts':
    "import { d } from '../daemon/daemon.js';\nimport type { T } from '../stream/types.js';\nimport { t } from '../ops/metrics.js';\nimport { openStore } from '../store/index.js';\nexport type V = T;\nexport const v = [d, t, openStore];\n",
  'src/ops/service.ts':
    "import { d } from '../daemon/daemon.js';\nimport { t } from '../daemon/telemetry.js';\nexport const o = [t, d];\n",
};

interface Diagnostic {
  readonly category: string;
  readonly location: { readonly path: string; readonly start: { readonly line: number } };
}

function lintScratchTree(): string[] {
  const root = mkdtempSync(path.join(tmpdir(), 'supsupd-rooms-'));
  try {
    mkdirSync(path.join(root, '.ci'));
    cpSync(path.join(REPO, '.ci', 'biome.json'), path.join(root, '.ci', 'biome.json'));
    for (const [file, text] of Object.entries(FILES)) {
      mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
      writeFileSync(path.join(root, file), text);
    }
    let output: string;
    try {
      output = execFileSync(BIOME, ['lint', '--config-path=.ci', '--reporter=json', 'src'], {
        cwd: root,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      });
    } catch (error) {
      // biome exits 1 when it reports errors; its report is still on stdout
      output = String((error as { stdout?: unknown }).stdout ?? '');
    }
    const report = JSON.parse(output) as { diagnostics: Diagnostic[] };
    return report.diagnostics
      .filter((d) => d.category.endsWith('noRestrictedImports') || d.category.endsWith('noImportCycles'))
      .map((d) => `${d.location.path}:${d.location.start.line} ${d.category.split('/').at(-1)}`)
      .sort();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

test('Biome refuses imports across the rooms and import cycles, and only those', () => {
  assert.deepEqual(lintScratchTree(), [
    'src/archive/uses-store.ts:2 noRestrictedImports',
    'src/archive/uses-store.ts:3 noRestrictedImports',
    'src/archive/uses-store.ts:4 noRestrictedImports',
    'src/codec/mixed.ts:2 noRestrictedImports',
    'src/codec/mixed.ts:3 noRestrictedImports',
    'src/daemon/uses-store.ts:2 noRestrictedImports',
    'src/daemon/uses-store.ts:3 noRestrictedImports',
    'src/daemon/uses-store.ts:5 noRestrictedImports',
    'src/evaluate/uses.ts:3 noRestrictedImports',
    'src/evaluate/uses.ts:4 noRestrictedImports',
    'src/model/bank/cycle-a.ts:1 noImportCycles',
    'src/model/bank/cycle-b.ts:1 noImportCycles',
    'src/model/bank/uses-store.ts:1 noRestrictedImports',
    'src/ops/metrics.ts:2 noRestrictedImports',
    'src/ops/metrics.ts:3 noRestrictedImports',
  ]);
});
