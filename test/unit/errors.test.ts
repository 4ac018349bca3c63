import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  DAEMON_ERRORS,
  ERROR_REGISTRY,
  HTTP_ERRORS,
  isRegisteredCode,
  RECORD_ERRORS,
  RECORD_REJECT_REASONS,
  SupsupError,
} from '../../src/errors.js';
import { HttpError } from '../../src/ops/http/respond.js';
import { ERRORS_DOC_PATH, renderErrorsDoc } from '../support/errors-doc.js';

const SRC = fileURLToPath(new URL('../../src', import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.(ts|js|html)$/.test(entry.name) ? [path] : [];
  });
}

test('every E_ code named anywhere in src/ (code, comments, dashboard) is in the registry', () => {
  const unknown: string[] = [];
  let seen = 0;
  for (const file of sourceFiles(SRC)) {
    for (const match of readFileSync(file, 'utf8').matchAll(/\bE_[A-Z][A-Z0-9_]*\b/g)) {
      seen++;
      if (!isRegisteredCode(match[0])) unknown.push(`${file.slice(SRC.length + 1)}: ${match[0]}`);
    }
  }
  assert.ok(seen > 100, `the scan found only ${seen} codes; is it reading src/?`);
  assert.deepEqual(unknown, []);
});

test('the scan would catch a code the registry lacks', () => {
  assert.equal(isRegisteredCode('E_STORE_CORRUPT'), true);
  assert.equal(isRegisteredCode('E_RECORD_JSON'), true);
  assert.equal(isRegisteredCode('E_HTTP_BUSY'), true);
  assert.equal(isRegisteredCode('E_NOT_A_CODE'), false);
});

test('no code is in two families, and every code has a one-line meaning', () => {
  const codes = ERROR_REGISTRY.flatMap((group) => Object.keys(group.codes));
  assert.equal(new Set(codes).size, codes.length);
  assert.equal(
    codes.length,
    Object.keys(DAEMON_ERRORS).length + Object.keys(RECORD_ERRORS).length + Object.keys(HTTP_ERRORS).length,
  );
  for (const group of ERROR_REGISTRY) {
    for (const [code, spec] of Object.entries(group.codes)) {
      assert.match(code, /^E_[A-Z][A-Z0-9_]*$/);
      assert.ok(spec.meaning.length > 10 && !spec.meaning.includes('\n'), code);
    }
  }
  assert.deepEqual(Object.keys(RECORD_ERRORS), [...RECORD_REJECT_REASONS]);
});

test('SupsupError takes its retriable default from the registry; a throw site may override it', () => {
  assert.equal(new SupsupError('E_STORE_UNAVAILABLE', 'down').retriable, true);
  assert.equal(new SupsupError('E_STORE_UNAVAILABLE', 'full', { retriable: false }).retriable, false);
  assert.equal(new SupsupError('E_CONFIG', 'bad').retriable, false);
  assert.equal(new SupsupError('E_SOURCE', 'broker gone', { retriable: true }).retriable, true);
});

test('HttpError takes its status from the registry', () => {
  assert.equal(new HttpError('E_HTTP_NOT_FOUND', 'x').status, 404);
  assert.equal(new HttpError('E_HTTP_BUSY', 'x').status, 503);
  assert.equal(new HttpError('E_HTTP_INFER_ROWS', 'x').status, 413);
});

test('docs/errors.md is generated from the registry (run `npm run docs:errors`)', () => {
  const doc = readFileSync(ERRORS_DOC_PATH, 'utf8');
  assert.equal(doc, renderErrorsDoc(), 'docs/errors.md is out of date: run `npm run docs:errors`');
  for (const code of Object.keys(HTTP_ERRORS)) assert.ok(doc.includes(`\`${code}\``), code);
});
