/**
 * Renders docs/errors.md from the error registry in src/errors.ts. Run `npm run docs:errors` after
 * adding or changing a code; test/unit/errors.test.ts fails while the file is out of date.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ERROR_REGISTRY, type ErrorSpec } from '../../src/errors.js';

export const ERRORS_DOC_PATH = fileURLToPath(new URL('../../docs/errors.md', import.meta.url));

export function renderErrorsDoc(): string {
  const lines = [
    '# Error codes',
    '',
    '<!-- Generated from src/errors.ts by `npm run docs:errors`; do not edit by hand. -->',
    '',
    'Every code the daemon throws, answers an HTTP client with, or writes on a dead letter is listed here.',
    'Match on the code, never on the message: codes are stable across releases. `retriable` is the default',
    'of `SupsupError.retriable` (whether the same call may succeed later without a change of input or',
    'configuration); a throw site that knows better overrides it, and `retry()` in src/retry.ts retries only',
    'errors marked retriable. The HTTP status is the one the ops surface answers with; other daemon errors',
    'reach an HTTP client as 500 with a generic message.',
  ];
  for (const group of ERROR_REGISTRY) {
    lines.push('', `## ${group.family}`, '', '| code | retriable | HTTP | meaning |', '|---|---|---|---|');
    for (const [code, spec] of Object.entries(group.codes)) lines.push(row(code, spec));
  }
  return `${lines.join('\n')}\n`;
}

function row(code: string, spec: ErrorSpec): string {
  const meaning = spec.meaning.replaceAll('|', '\\|');
  return `| \`${code}\` | ${spec.retriable ? 'yes' : 'no'} | ${spec.status ?? ''} | ${meaning} |`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(ERRORS_DOC_PATH, renderErrorsDoc());
  console.log(`wrote ${ERRORS_DOC_PATH}`);
}
