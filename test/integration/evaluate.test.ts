import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

/**
 * `supsupd evaluate` end to end, as a child process: the demo stream with 300-record segments
 * (1,800 records, seconds), then the same stream again from the labelled file the first run kept,
 * then inputs it must refuse with exit code 2 and nothing written.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cli = path.join(root, 'src/cli/main.ts');
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SUPSUPD_')));

interface Report {
  command: string;
  records_in: number;
  records: number;
  true_tasks: number;
  discovered_tasks: number;
  ari: number;
  nmi: number;
  spurious_allocations: number;
  confusion: Record<string, Record<string, number>>;
  tasks: { task: number; records: number; accuracy: number | null }[];
  changes: { at: number; delay: number; detected: boolean }[];
  allocations: { task: number; at: number }[];
  forgetting: {
    true_task: string;
    all: { scored: number; live_accuracy: number | null; final_accuracy: number | null };
    unlabelled: { scored: number; live_accuracy: number | null; final_accuracy: number | null };
  }[];
  plot: string | null;
  configuration: { rule: string; micro_batch: number; network: string };
}

function evaluate(args: readonly string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', cli, 'evaluate', ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 240_000,
    env,
  });
}

function reportOf(stdout: string): Report {
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as Report;
}

/** ARI from a contingency table alone (Hubert & Arabie's formula on its cells and margins). */
function ariOfTable(table: Record<string, Record<string, number>>): number {
  const c2 = (n: number) => (n * (n - 1)) / 2;
  const cells = Object.values(table).flatMap((row) => Object.values(row));
  const rows = Object.values(table).map((row) => Object.values(row).reduce((s, v) => s + v, 0));
  const columns = new Map<string, number>();
  for (const row of Object.values(table))
    for (const [k, v] of Object.entries(row)) columns.set(k, (columns.get(k) ?? 0) + v);
  const n = rows.reduce((s, v) => s + v, 0);
  const index = cells.reduce((s, v) => s + c2(v), 0);
  const a = rows.reduce((s, v) => s + c2(v), 0);
  const b = [...columns.values()].reduce((s, v) => s + c2(v), 0);
  const expected = (a * b) / c2(n);
  return (index - expected) / ((a + b) / 2 - expected);
}

function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** Checks the signature and every chunk's CRC; returns the chunk types and the IHDR size. */
function checkPng(png: Buffer): { types: string[]; width: number; height: number } {
  assert.equal(png.subarray(0, 8).toString('hex'), '89504e470d0a1a0a');
  const types: string[] = [];
  let at = 8;
  while (at < png.length) {
    const length = png.readUInt32BE(at);
    types.push(png.subarray(at + 4, at + 8).toString('latin1'));
    assert.equal(png.readUInt32BE(at + 8 + length), crc32(png.subarray(at + 4, at + 8 + length)));
    at += 12 + length;
  }
  return { types, width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

let dir = '';
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'supsupd-evaluate-it-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('evaluate --demo: the metrics of a short demo run and its timeline as PNG; the kept file gives the same', async () => {
  const png = path.join(dir, 'timeline.png');
  const demoFile = path.join(dir, 'demo.jsonl');
  const first = evaluate(['--demo', '--segment', '300', '--demo-out', demoFile, '--plot', png, '--json']);
  assert.equal(first.status, 0, first.stderr);
  const report = reportOf(first.stdout);
  assert.equal(report.command, 'evaluate');
  assert.equal(report.records_in, 1800);
  assert.equal(report.records, 1800);
  assert.equal(report.true_tasks, 5);
  assert.equal(report.discovered_tasks, 5);
  assert.equal(report.spurious_allocations, 0);
  assert.ok(report.ari >= 0 && report.ari <= 1, `ARI ${report.ari}`);
  assert.ok(
    Math.abs(report.ari - ariOfTable(report.confusion)) < 1e-12,
    'ARI agrees with its confusion table',
  );
  assert.ok(report.ari >= 0.9, `ARI ${report.ari}`);
  assert.ok(report.nmi >= 0 && report.nmi <= 1, `NMI ${report.nmi}`);
  assert.deepEqual(
    report.changes.map((c) => c.at),
    [300, 600, 900, 1200, 1500],
  );
  for (const change of report.changes) assert.ok(Number.isInteger(change.delay) && change.delay >= 0);
  assert.equal(report.allocations.length, report.discovered_tasks);
  assert.equal(report.allocations[0]?.at, 0);
  assert.equal(
    report.tasks.reduce((s, t) => s + t.records, 0),
    1800,
  );
  assert.deepEqual(
    report.forgetting.map((f) => f.true_task),
    ['0', '1', '2', '3', '4'],
  );
  for (const f of report.forgetting) {
    for (const part of [f.all, f.unlabelled]) {
      assert.ok(part.live_accuracy !== null && part.final_accuracy !== null, JSON.stringify(f));
      assert.ok(part.final_accuracy > 0.2, JSON.stringify(f));
    }
    // The demo sends about 10 % of its records without y; all of them carry a scoring class.
    assert.ok(f.unlabelled.scored > 0 && f.unlabelled.scored < f.all.scored / 4, JSON.stringify(f));
  }
  assert.equal(
    report.forgetting.reduce((s, f) => s + f.all.scored, 0),
    1800,
  );
  assert.equal(report.plot, png);
  const image = checkPng(await readFile(png));
  assert.deepEqual(image.types, ['IHDR', 'IDAT', 'IEND']);
  assert.deepEqual([image.width, image.height], [1000, 176]);
  assert.ok(first.stderr.includes('records 1800/1800'), 'a progress line on stderr');

  // The kept labelled file through --input: the same learning path, so the same assignments.
  const svg = path.join(dir, 'timeline.svg');
  const again = evaluate([
    '--input',
    demoFile,
    '--truth-field',
    'task',
    '--label-field',
    'class',
    '--plot',
    svg,
    '--json',
  ]);
  assert.equal(again.status, 0, again.stderr);
  const second = reportOf(again.stdout);
  assert.deepEqual(second.confusion, report.confusion);
  assert.deepEqual(second.changes, report.changes);
  assert.deepEqual(second.forgetting, report.forgetting);
  const text = await readFile(svg, 'utf8');
  assert.ok(text.startsWith('<svg xmlns="http://www.w3.org/2000/svg"') && text.trimEnd().endsWith('</svg>'));
  assert.equal((text.match(/<path /g) ?? []).length, report.allocations.length);

  assert.deepEqual(
    [report.configuration.rule, report.configuration.micro_batch, report.configuration.network],
    ['evidence', 128, 'lenet'],
  );
  // --config as for run: its learning settings are used, its source, sink and store replaced.
  const config = path.join(dir, 'daemon.json');
  await writeFile(
    config,
    JSON.stringify({
      source: { kind: 'kafka', brokers: ['127.0.0.1:1'], topic: 'in' },
      sink: { kind: 'stdout' },
      store: { kind: 'redis', url: 'redis://127.0.0.1:1/0' },
      model: { hidden: [64], outputs: 20 },
      discovery: { rule: 'paper' },
      batch: { size: 64 },
    }),
  );
  const configured = evaluate([
    '--input',
    demoFile,
    '--truth-field',
    'task',
    '--label-field',
    'class',
    '--config',
    config,
    '--json',
  ]);
  assert.equal(configured.status, 0, configured.stderr);
  const paper = reportOf(configured.stdout);
  assert.deepEqual(
    [paper.records, paper.configuration.rule, paper.configuration.micro_batch, paper.configuration.network],
    [1800, 'paper', 64, '784-64'],
  );

  const table = evaluate(['--input', demoFile, '--truth-field', 'task', '--label-field', 'class']);
  assert.equal(table.status, 0, table.stderr);
  assert.match(table.stdout, /tasks true \/ discovered 5 \/ 5/);
  assert.match(table.stdout, /ARI \/ NMI +\d\.\d{4} \/ \d\.\d{4}/);
  assert.match(table.stdout, /Forgetting/);
});

test('evaluate refuses bad input with exit code 2 and writes nothing', async () => {
  const plot = path.join(dir, 'refused.png');
  const noField = path.join(dir, 'no-field.jsonl');
  await writeFile(noField, '{"x":[0.5],"y":1,"task":0}\n{"x":[0.25],"y":0}\n');
  const empty = path.join(dir, 'empty.jsonl');
  await writeFile(empty, '');
  const cases: [readonly string[], RegExp][] = [
    [
      ['--input', noField, '--truth-field', 'task'],
      /no-field\.jsonl:2: the record has no truth field 'task'/,
    ],
    [['--input', path.join(dir, 'absent.jsonl'), '--truth-field', 'task'], /cannot read .*absent\.jsonl/],
    [['--input', empty, '--truth-field', 'task'], /empty\.jsonl holds no records/],
    [['--input', noField], /--truth-field NAME is required/],
    [['--demo', '--input', noField, '--truth-field', 'task'], /give either --input FILE or --demo/],
    [['--input', noField, '--truth-field', 'y'], /'y' is a record field the daemon reads/],
    [['--demo', '--segment', '10'], /--segment must be an integer in \[64/],
  ];
  for (const [args, message] of cases) {
    const run = evaluate([...args, '--plot', plot, '--json']);
    assert.equal(run.status, 2, `${args.join(' ')}: ${run.stderr}`);
    assert.match(run.stderr, /E_BAD_ARGUMENT/);
    assert.match(run.stderr, message);
    assert.equal(run.stdout, '');
    assert.equal(existsSync(plot), false, `${args.join(' ')} wrote the plot`);
  }
  // A scoring field left in (no --label-field for it): the daemon refuses every record as it would in run.
  const extraField = path.join(dir, 'extra-field.jsonl');
  await writeFile(extraField, '{"x":[0.5],"task":0,"class":1}\n{"x":[0.5],"task":1,"class":2}\n');
  const refused = evaluate(['--input', extraField, '--truth-field', 'task', '--plot', plot]);
  assert.equal(refused.status, 2, refused.stderr);
  assert.match(
    refused.stderr,
    /reached the learner: all 2 were dead-lettered, the first \(line 1\) with E_RECORD_SCHEMA/,
  );
  assert.equal(existsSync(plot), false);
  const badConfig = path.join(dir, 'bad-config.json');
  await writeFile(badConfig, '{"batch":{"size":0}}');
  const refusedConfig = evaluate(['--demo', '--config', badConfig, '--plot', plot]);
  assert.equal(refusedConfig.status, 2);
  assert.match(refusedConfig.stderr, /batch\.size: Too small/);
  assert.equal(existsSync(plot), false);
  const wrongExtension = evaluate([
    '--input',
    noField,
    '--truth-field',
    'task',
    '--plot',
    path.join(dir, 'p.gif'),
  ]);
  assert.equal(wrongExtension.status, 2);
  assert.match(wrongExtension.stderr, /--plot must name a \.png or \.svg file/);
});
