/**
 * `supsupd replay` (docs/replay.md) on a file: a shadow run from an empty state reproduces the live run's decision
 * log (`--diff`: no divergence), a changed threshold lists exactly the batches that decide otherwise (those where
 * a live run with that threshold differs), a shadow run from the live store's final masks routes every batch after
 * the last allocation as the live run did and leaves the store as it was (and so does one from an archive of that
 * store), `--apply` rebuilds the live masks into a
 * new store, and bad options are refused with exit 2.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startCli, writeConfig } from '../support/daemon-cli.ts';
import { exitWithin, runToExit, storeMasks, streamLines, writeLines } from '../support/state-safety.ts';

let root = '';
let input = '';
let live = '';
let liveConfig = '';
const liveStore = () => ({ kind: 'file', dir: path.join(live, 'store') }) as const;

interface Decision {
  readonly first: string;
  readonly last: string;
  readonly tasks: [number, number][];
  readonly allocated: number[];
  readonly split: number | null;
}

const decisions = async (file: string): Promise<Decision[]> =>
  (await readFile(file, 'utf8'))
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Decision);

async function replayCli(name: string, args: readonly string[]) {
  const logFile = path.join(root, `${name}.log`);
  const cli = startCli({ args: ['replay', ...args], logFile });
  const code = await exitWithin({ cli, logFile }, 120_000);
  const lines = (await readFile(logFile, 'utf8')).trim().split('\n');
  const last = lines[lines.length - 1] ?? '';
  return { code, text: lines.join('\n'), json: last.startsWith('{') ? JSON.parse(last) : null };
}

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'supsupd-replay-'));
  input = path.join(root, 'stream.jsonl');
  await writeLines(input, streamLines(2600, 7, { shift: 2 }));
  live = path.join(root, 'live');
  await mkdir(live, { recursive: true });
  const run = await runToExit({
    dir: live,
    store: liveStore(),
    source: { kind: 'file', path: input },
    name: 'live',
  });
  assert.equal(run.code, 0, run.log.text());
  liveConfig = path.join(live, 'live.config.json');
});
after(async () => {
  if (root !== '') await rm(root, { recursive: true, force: true });
});

test('a shadow replay from empty reproduces the live decision log; a changed threshold lists exactly what differs', async () => {
  const recorded = path.join(live, 'decisions.jsonl');
  const same = await replayCli('same', [
    '--input',
    input,
    '--config',
    liveConfig,
    '--shadow',
    '--from-empty',
    '--out',
    path.join(root, 'same'),
    '--diff',
    recorded,
    '--json',
  ]);
  assert.equal(same.code, 0, same.text);
  assert.deepEqual(same.json.divergences, []);
  assert.deepEqual(await readFile(path.join(root, 'same', 'decisions.jsonl')), await readFile(recorded));
  assert.ok(same.json.created.length >= 2, 'the tasks were found again');

  // A stricter loss band: a live run with it is the independent reference of what must differ.
  const config = JSON.parse(await readFile(liveConfig, 'utf8'));
  const strictConfig = path.join(root, 'strict.config.json');
  writeConfig(strictConfig, {
    ...config,
    discovery: { evidence: { z: 2, lossEffect: 0.05, inputEffect: 0.05 } },
  });
  const strict = await replayCli('strict', [
    '--input',
    input,
    '--config',
    strictConfig,
    '--shadow',
    '--from-empty',
    '--out',
    path.join(root, 'strict'),
    '--diff',
    recorded,
    '--json',
  ]);
  const liveStrict = path.join(root, 'live-strict');
  await mkdir(liveStrict, { recursive: true });
  writeConfig(path.join(liveStrict, 'cfg.json'), {
    ...config,
    discovery: { evidence: { z: 2, lossEffect: 0.05, inputEffect: 0.05 } },
    store: { kind: 'file', dir: path.join(liveStrict, 'store') },
    sink: { kind: 'file', dir: liveStrict },
    source: { kind: 'file', path: input, checkpoint: path.join(liveStrict, 'checkpoint.json') },
  });
  const reference = startCli({
    args: ['run', '--config', path.join(liveStrict, 'cfg.json')],
    logFile: path.join(root, 'ls.log'),
  });
  assert.equal(await exitWithin({ cli: reference, logFile: path.join(root, 'ls.log') }, 120_000), 0);
  const before = new Map((await decisions(recorded)).map((d) => [`${d.first}-${d.last}`, d]));
  const expected = (await decisions(path.join(liveStrict, 'decisions.jsonl')))
    .filter((d) => {
      const b = before.get(`${d.first}-${d.last}`);
      return (
        JSON.stringify([b?.tasks, b?.allocated, b?.split]) !== JSON.stringify([d.tasks, d.allocated, d.split])
      );
    })
    .map((d) => `${d.first}-${d.last}`);
  assert.ok(expected.length > 0, 'the threshold changes some decisions');
  assert.equal(strict.code, 1, 'divergences exit 1');
  assert.deepEqual(
    strict.json.divergences.map((d: { first: string; last: string }) => `${d.first}-${d.last}`),
    expected,
  );
});

test('a shadow replay from the final masks routes as live after the last allocation and leaves the store alone', async () => {
  const untouched = await storeMasks(liveStore());
  const registry = await readFile(path.join(live, 'store', 'registry.json'));
  const shadow = await replayCli('shadow', [
    '--input',
    input,
    '--config',
    liveConfig,
    '--shadow',
    '--out',
    path.join(root, 'shadow'),
    '--json',
  ]);
  assert.equal(shadow.code, 0, shadow.text);
  assert.deepEqual(shadow.json.created, [], 'the final masks explain the stream: nothing new');
  const recorded = await decisions(path.join(live, 'decisions.jsonl'));
  const lastAllocation = recorded.reduce((at, d, i) => (d.allocated.length > 0 ? i : at), -1);
  const replayed = new Map(
    (await decisions(path.join(root, 'shadow', 'decisions.jsonl'))).map((d) => [d.first, d]),
  );
  const after = recorded.slice(lastAllocation + 1);
  assert.ok(after.length > 5);
  for (const d of after) assert.deepEqual(replayed.get(d.first)?.tasks, d.tasks, `batch at ${d.first}`);
  assert.deepEqual(await storeMasks(liveStore()), untouched);
  assert.deepEqual(await readFile(path.join(live, 'store', 'registry.json')), registry);

  // The same from an archive of the store (supsupd masks export): the same decisions, byte for byte.
  const archive = path.join(root, 'live.ssma');
  const exportLog = path.join(root, 'export.log');
  const exported = startCli({
    args: ['masks', 'export', '--config', liveConfig, '--out', archive],
    logFile: exportLog,
  });
  assert.equal(await exitWithin({ cli: exported, logFile: exportLog }, 60_000), 0);
  const fromArchive = await replayCli('from-archive', [
    '--input',
    input,
    '--config',
    liveConfig,
    '--shadow',
    '--from-archive',
    archive,
    '--out',
    path.join(root, 'from-archive'),
  ]);
  assert.equal(fromArchive.code, 0, fromArchive.text);
  assert.deepEqual(
    await readFile(path.join(root, 'from-archive', 'decisions.jsonl')),
    await readFile(path.join(root, 'shadow', 'decisions.jsonl')),
  );
});

test('--apply rebuilds the live masks into a new store; bad options are refused with exit 2', async () => {
  const rebuilt = path.join(root, 'rebuilt');
  const applied = await replayCli('apply', [
    '--input',
    input,
    '--config',
    liveConfig,
    '--apply',
    '--from-empty',
    '--dir',
    rebuilt,
    '--out',
    path.join(root, 'apply'),
  ]);
  assert.equal(applied.code, 0, applied.text);
  assert.deepEqual(
    (await storeMasks({ kind: 'file', dir: rebuilt })).tasks,
    (await storeMasks(liveStore())).tasks,
  );
  const again = await replayCli('apply-again', [
    '--input',
    input,
    '--config',
    liveConfig,
    '--apply',
    '--from-empty',
    '--dir',
    rebuilt,
  ]);
  assert.equal(again.code, 2, again.text);
  assert.match(again.text, /not empty/);
  for (const [name, args, pattern] of [
    ['no-input', ['--shadow', '--config', liveConfig], /--input FILE is required/],
    [
      'both',
      ['--input', input, '--shadow', '--apply', '--config', liveConfig],
      /exactly one of --shadow and --apply/,
    ],
    [
      'no-target',
      ['--input', input, '--apply', '--config', liveConfig],
      /--namespace NEW \(Redis\) or --dir NEW/,
    ],
    [
      'no-log',
      ['--input', input, '--shadow', '--config', liveConfig, '--diff', path.join(root, 'nope.jsonl')],
      /cannot read the decision log/,
    ],
    [
      'no-file',
      ['--input', path.join(root, 'nope.jsonl'), '--shadow', '--config', liveConfig],
      /cannot read --input/,
    ],
  ] as const) {
    const refused = await replayCli(name, args);
    assert.equal(refused.code, 2, `${name}: ${refused.text}`);
    assert.match(refused.text, pattern);
  }
});
