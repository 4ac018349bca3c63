/**
 * `supsupd masks list|show|export|import|diff` (docs/masks.md): the tasks of a store or archive, one task in
 * detail, a store to an archive file (whole, or one task as a standalone model), an archive into an empty store,
 * and what differs between two stores or archives.
 */
import { type MaskArchive, modelArchiveOf, removeLastTask, writeStoreArchive } from '../archive/index.js';
import { SupsupError } from '../errors.js';
import { maskLayout, popcount } from '../model/bank/mask-layout.js';
import { architectureKey } from '../model/network/index.js';
import { openStore } from '../store/index.js';
import type { TaskMeta } from '../store/types.js';
import {
  configuredArch,
  describeStore,
  masksConfig,
  openForRead,
  readArchiveFile,
  readConfiguredStore,
  readOperand,
  type StoreFlags,
  writeArchiveFile,
} from './masks-sources.js';
import { OptionReader } from './options.js';

type Raw = Readonly<Record<string, unknown>>;

let stdoutGuarded = false;

/** A line on stdout; a reader that went away (`masks list | head`) ends the command quietly. */
function say(line: string): void {
  if (!stdoutGuarded) {
    stdoutGuarded = true;
    process.stdout.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error;
      process.exit(0);
    });
  }
  process.stdout.write(`${line}\n`);
}

/** The archive `list`/`show` read: `--archive FILE`, else the configured store (with --dir / --namespace). */
async function listed(raw: Raw): Promise<MaskArchive> {
  if (typeof raw.archive === 'string') return readArchiveFile(raw.archive);
  return readConfiguredStore(masksConfig(raw as StoreFlags));
}

function metasOf(archive: MaskArchive): readonly TaskMeta[] {
  return archive.scope === 'store' ? archive.tasks.map((t) => t.meta) : [archive.task.meta];
}

function hex(n: number): string {
  return n.toString(16).padStart(8, '0');
}

function taskRow(meta: TaskMeta) {
  return {
    task: meta.task,
    version: meta.version,
    state: meta.frozen ? 'frozen' : 'training',
    trainSteps: meta.trainSteps,
    bornAt: `${meta.bornAt.topic}/${meta.bornAt.partition}@${meta.bornAt.offset}`,
    bornTime: meta.bornTime,
    checksum: hex(meta.checksum),
  };
}

export async function masksList(raw: Raw): Promise<void> {
  const archive = await listed(raw);
  const rows = metasOf(archive).map(taskRow);
  if (raw.json === true) {
    say(
      JSON.stringify({
        source: archive.source,
        archKey: architectureKey(archive.arch),
        seed: archive.seed,
        tasks: rows,
      }),
    );
    return;
  }
  say(
    `${archive.source}: network ${architectureKey(archive.arch)} seed ${archive.seed}, ${rows.length} task(s)`,
  );
  const header = ['task', 'version', 'state', 'steps', 'born at', 'born time', 'checksum'];
  const cells = rows.map((r) => [
    String(r.task),
    String(r.version),
    r.state,
    String(r.trainSteps),
    r.bornAt,
    r.bornTime,
    r.checksum,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] as string).length)));
  for (const line of [header, ...cells])
    say(
      line
        .map((c, i) => c.padEnd(widths[i] as number))
        .join('  ')
        .trimEnd(),
    );
}

export async function masksShow(id: string, raw: Raw): Promise<void> {
  const r = new OptionReader({ task: id });
  const task = r.integer('task', 0, 0, 0xffffffff);
  r.finish('masks show');
  const archive = await listed(raw);
  const found =
    archive.scope === 'store'
      ? archive.tasks[task]
      : archive.task.meta.task === task
        ? archive.task
        : undefined;
  if (found === undefined) {
    throw new SupsupError('E_BAD_ARGUMENT', `${archive.source} has no task ${task}`);
  }
  const layout = maskLayout(archive.arch);
  const packedBytes = layout.totalBytes;
  // The packed mask is the last packedBytes before the codec's 4-byte trailer.
  const packed = found.mask.subarray(found.mask.length - 4 - packedBytes, found.mask.length - 4);
  const profiles =
    archive.scope === 'store'
      ? (
          archive.registry.policy as
            | { profiles?: { accuracy?: { mean: number; rows: number } }[] }
            | undefined
        )?.profiles
      : undefined;
  const accuracy = profiles?.[task]?.accuracy;
  const detail = {
    ...taskRow(found.meta),
    checksum: hex(found.meta.checksum),
    network: architectureKey(archive.arch),
    seed: archive.seed,
    maskBytes: found.mask.length,
    density: popcount(packed) / layout.totalBits,
    trainingStateBytes: found.training?.length ?? null,
    replayEntries: found.replay.length,
    replayBytes: found.replay.reduce((sum, entry) => sum + entry.length, 0),
    prequentialAccuracy: accuracy === undefined || accuracy.rows === 0 ? null : accuracy.mean,
    labelledRows: accuracy?.rows ?? 0,
  };
  if (raw.json === true) {
    say(JSON.stringify({ source: archive.source, ...detail }));
    return;
  }
  say(`${archive.source}, task ${task}`);
  for (const [key, value] of Object.entries(detail))
    say(`  ${key.padEnd(20)} ${value === null ? '-' : value}`);
}

export async function masksExport(raw: Raw): Promise<void> {
  const r = new OptionReader(raw);
  const out = r.string('out', '');
  if (out === '') r.problem('--out FILE is required');
  const task = r.optionalInteger('task', 0);
  r.finish('masks export');
  const archive = await readConfiguredStore(masksConfig(raw as StoreFlags));
  const written = task === undefined ? archive : modelArchiveOf(archive, task);
  const bytes = await writeArchiveFile(out, written);
  const what = task === undefined ? `${archive.tasks.length} task(s)` : `task ${task} as a standalone model`;
  const summary = { out, bytes, scope: written.scope, tasks: task === undefined ? archive.tasks.length : 1 };
  if (raw.json === true) say(JSON.stringify({ source: archive.source, ...summary }));
  else say(`exported ${what} of ${archive.source} to ${out} (${bytes} bytes)`);
}

export async function masksImport(file: string, raw: Raw): Promise<void> {
  const r = new OptionReader(raw);
  const leaseMs = r.integer('leaseMs', 60_000, 1000, 600_000);
  r.finish('masks import');
  const archive = readArchiveFile(file);
  if (archive.scope !== 'store') {
    throw new SupsupError(
      'E_BAD_ARGUMENT',
      `${file} holds one task (a standalone model for supsupd infer); import takes a whole-store archive`,
    );
  }
  const config = masksConfig(raw as StoreFlags);
  const target = describeStore(config);
  if (config.store.kind === 'memory') {
    throw new SupsupError(
      'E_BAD_ARGUMENT',
      'importing into a memory store keeps nothing; give --dir or --namespace',
    );
  }
  const arch = configuredArch(config);
  const context = { target, arch, seed: config.model.seed, leaseMs };
  // The network is checked before the target is opened (opening a file store creates its directory).
  if (architectureKey(archive.arch) !== architectureKey(arch) || archive.seed !== config.model.seed) {
    throw new SupsupError(
      'E_ARCH_MISMATCH',
      `${file} holds masks for network ${architectureKey(archive.arch)} seed ${archive.seed}, the configuration says ${architectureKey(arch)} seed ${config.model.seed}`,
    );
  }
  const store = openStore(config.store);
  await store.open();
  try {
    const { commits } = await writeStoreArchive(store, archive, context);
    const summary = { target, tasks: archive.tasks.length, commits };
    if (raw.json === true) say(JSON.stringify(summary));
    else say(`imported ${archive.tasks.length} task(s) from ${file} into ${target}`);
  } finally {
    await store.close();
  }
}

export async function masksRemove(id: string, raw: Raw): Promise<void> {
  const r = new OptionReader({ ...raw, task: id });
  const task = r.integer('task', 0, 0, 0xffffffff);
  const leaseMs = r.integer('leaseMs', 60_000, 1000, 600_000);
  r.finish('masks rm');
  const config = masksConfig(raw as StoreFlags);
  const target = describeStore(config);
  const store = await openForRead(config);
  try {
    const { removed, remaining } = await removeLastTask(store, task, { target, leaseMs });
    const summary = { target, removed: taskRow(removed), remaining };
    if (raw.json === true) say(JSON.stringify(summary));
    else
      say(
        `removed task ${task} (checksum ${hex(removed.checksum)}) from ${target}; ${remaining} task(s) left`,
      );
  } finally {
    await store.close();
  }
}

interface TaskDiff {
  readonly added: number[];
  readonly removed: number[];
  readonly changed: { task: number; from: string; to: string }[];
  same: number;
}

export function diffTasks(a: readonly TaskMeta[], b: readonly TaskMeta[]): TaskDiff {
  const byId = (metas: readonly TaskMeta[]) => new Map(metas.map((m) => [m.task, m]));
  const left = byId(a);
  const right = byId(b);
  const diff: TaskDiff = { added: [], removed: [], changed: [], same: 0 };
  for (const [task, meta] of left) {
    const other = right.get(task);
    if (other === undefined) diff.removed.push(task);
    else if (other.checksum !== meta.checksum) {
      diff.changed.push({ task, from: hex(meta.checksum), to: hex(other.checksum) });
    } else diff.same++;
  }
  for (const task of right.keys()) if (!left.has(task)) diff.added.push(task);
  return diff;
}

export async function masksDiff(a: string, b: string, raw: Raw): Promise<void> {
  const left = await readOperand(a, raw as StoreFlags);
  const right = await readOperand(b, raw as StoreFlags);
  const diff = diffTasks(metasOf(left), metasOf(right));
  const network = (x: MaskArchive) => `${architectureKey(x.arch)} seed ${x.seed}`;
  const sameNetwork = network(left) === network(right);
  if (raw.json === true) {
    say(JSON.stringify({ a: left.source, b: right.source, sameNetwork, ...diff }));
    return;
  }
  say(`a: ${left.source} (network ${network(left)}, ${metasOf(left).length} task(s))`);
  say(`b: ${right.source} (network ${network(right)}, ${metasOf(right).length} task(s))`);
  if (!sameNetwork) say('networks differ: the masks of one mean nothing on the other');
  for (const task of diff.added) say(`+ task ${task} (only in b)`);
  for (const task of diff.removed) say(`- task ${task} (only in a)`);
  for (const c of diff.changed) say(`~ task ${c.task} checksum ${c.from} -> ${c.to}`);
  say(
    `${diff.same} same, ${diff.changed.length} changed, ${diff.added.length} added, ${diff.removed.length} removed`,
  );
}
