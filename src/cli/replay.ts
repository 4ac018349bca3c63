import { createReadStream } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { StoreArchive } from '../archive/index.js';
import { loadConfig } from '../config.js';
import { buildComponents } from '../daemon/components.js';
import { type Divergence, diffDecisions, readDecisionLog } from '../daemon/decision-diff.js';
import { replay } from '../daemon/replay.js';
import { errorMessage, SupsupError } from '../errors.js';
import { selectBackend } from '../model/network/index.js';
import { createLogger } from '../ops/logger.js';
import { openStore } from '../store/index.js';
import type { MaskStore } from '../store/types.js';
import { readArchiveFile, readConfiguredStore } from './masks-sources.js';
import { OptionReader } from './options.js';
import { Progress } from './progress.js';

/**
 * `supsupd replay --input FILE (--shadow | --apply --namespace NS | --apply --dir DIR)`: the file through the
 * daemon of the configuration, from the configured store's state (or `--from-empty`), writing its results and
 * decision log to `--out`; `--diff LOG` lists every batch that decided otherwise than LOG (exit 1 when any did).
 */
export async function replayCommand(raw: Readonly<Record<string, unknown>>): Promise<void> {
  const r = new OptionReader(raw);
  const input = typeof raw.input === 'string' ? raw.input : '';
  if (input === '') r.problem('--input FILE is required');
  const shadow = raw.shadow === true;
  const apply = raw.apply === true;
  if (shadow === apply) r.problem('give exactly one of --shadow and --apply');
  const rate = raw.rate === undefined ? undefined : r.integer('rate', 0, 1, 10_000_000);
  const fromEmpty = raw.fromEmpty === true;
  const archiveFile = typeof raw.fromArchive === 'string' ? raw.fromArchive : undefined;
  if (fromEmpty && archiveFile !== undefined)
    r.problem('give at most one of --from-empty and --from-archive');
  r.finish('replay');
  const config = replayConfig(typeof raw.config === 'string' ? raw.config : undefined);
  const logger = createLogger({ level: config.log.level, stream: 'stderr' });
  const target = apply ? applyTarget(raw, config.store) : null;
  const total = await countLines(input);
  const recorded = typeof raw.diff === 'string' ? await readDecisionLog(raw.diff) : null;
  await selectBackend(config.backend);
  const out = typeof raw.out === 'string' ? raw.out : await mkdtemp(path.join(tmpdir(), 'supsupd-replay-'));
  const components = buildComponents(config, logger);
  const start = fromEmpty
    ? null
    : archiveFile !== undefined
      ? storeArchiveFile(archiveFile)
      : await readConfiguredStore(config);
  const progress = new Progress({ quietMs: 5_000 });
  const report = await replay({
    daemon: components.options,
    input,
    out,
    start,
    target: target === null ? { kind: 'shadow' } : { kind: 'apply', store: target },
    ...(rate === undefined ? {} : { rate }),
    onProgress: (records, offset) =>
      progress.update(records, total, `${records}/${total} records, offset ${offset}`),
  });
  progress.done();
  const divergences =
    recorded === null ? null : diffDecisions(recorded, await readDecisionLog(report.decisionLog));
  const summary = { command: 'replay', mode: shadow ? 'shadow' : 'apply', out, ...report, divergences };
  if (raw.json === true) process.stdout.write(`${JSON.stringify(summary)}\n`);
  else process.stdout.write(table(summary.mode, out, report, divergences));
  if (divergences !== null && divergences.length > 0) process.exitCode = 1;
}

type StoreSection = ReturnType<typeof loadConfig>['store'];

/**
 * The configuration file (--config or SUPSUPD_CONFIG) as `supsupd run` reads it; without one, the defaults with a
 * memory store (only --from-empty can start from it) and no source or sink of their own (replay brings its own).
 */
function replayConfig(file: string | undefined) {
  if (file !== undefined || process.env.SUPSUPD_CONFIG !== undefined) return loadConfig({ path: file });
  return loadConfig({
    overrides: { source: { kind: 'stdin' }, sink: { kind: 'stdout' }, store: { kind: 'memory' } },
  });
}

/** The store --apply rebuilds into: a new Redis namespace (of the configured server) or a new file-store directory. */
function applyTarget(raw: Readonly<Record<string, unknown>>, store: StoreSection): MaskStore {
  if (typeof raw.namespace === 'string') {
    if (store.kind !== 'redis')
      throw new SupsupError('E_BAD_ARGUMENT', '--namespace needs a Redis store in the configuration');
    return openStore({ kind: 'redis', url: store.url, namespace: raw.namespace });
  }
  if (typeof raw.dir === 'string') return openStore({ kind: 'file', dir: raw.dir });
  throw new SupsupError('E_BAD_ARGUMENT', '--apply needs --namespace NEW (Redis) or --dir NEW (file store)');
}

/** A whole-store archive (supsupd masks export) to start from (its network is checked when it is written). */
function storeArchiveFile(file: string): StoreArchive {
  const archive = readArchiveFile(file);
  if (archive.scope !== 'store') {
    throw new SupsupError(
      'E_BAD_ARGUMENT',
      `${file} holds one task; --from-archive takes a whole-store archive`,
    );
  }
  return archive;
}

/** The input's lines, counted as a stream (for the progress bar); E_BAD_ARGUMENT when it cannot be read or is empty. */
async function countLines(file: string): Promise<number> {
  let lines = 0;
  let bytes = 0;
  try {
    for await (const chunk of createReadStream(file)) {
      const buffer = chunk as Buffer;
      bytes += buffer.length;
      for (let at = buffer.indexOf(0x0a); at !== -1; at = buffer.indexOf(0x0a, at + 1)) lines++;
    }
  } catch (error) {
    throw new SupsupError('E_BAD_ARGUMENT', `cannot read --input ${file}: ${errorMessage(error)}`);
  }
  if (bytes === 0) throw new SupsupError('E_BAD_ARGUMENT', `--input ${file} is empty`);
  return Math.max(lines, 1);
}

function table(
  mode: string,
  out: string,
  report: Awaited<ReturnType<typeof replay>>,
  divergences: readonly Divergence[] | null,
): string {
  const lines = [
    `replay (${mode}): ${report.records} records, ${report.batches} chunks, ${report.tasks} tasks at the end`,
    `masks created: ${report.created.length === 0 ? 'none' : report.created.map((c) => `task ${c.task} at offset ${c.offset}`).join(', ')}`,
    `results and decision log: ${out}`,
  ];
  if (divergences !== null) {
    lines.push(`divergences from the recorded decision log: ${divergences.length}`);
    for (const d of divergences.slice(0, 50)) {
      lines.push(
        `  offsets ${d.first}-${d.last}: recorded ${gistText(d.recorded)}, replayed ${gistText(d.replayed)}`,
      );
    }
    if (divergences.length > 50) lines.push(`  … ${divergences.length - 50} more (--json lists all)`);
  }
  return `${lines.join('\n')}\n`;
}

function gistText(gist: Divergence['recorded']): string {
  if (gist === null) return 'no such batch';
  const tasks = gist.tasks.map(([task, rows]) => `${rows}→${task}`).join(' ');
  const allocated = gist.allocated.length > 0 ? ` (new ${gist.allocated.join(',')})` : '';
  return `${tasks}${allocated}${gist.split === null ? '' : ` split ${gist.split}`}`;
}
