#!/usr/bin/env node
import { Command } from 'commander';
import { errorMessage, isSupsupError } from '../errors.js';
import { benchColdStart, benchDaemon, benchOneShot, benchProtocol, benchTrain } from './bench.js';
import { benchDiscovery } from './bench-discovery.js';
import { demo } from './demo.js';
import { evaluate } from './evaluate.js';
import { infer } from './infer.js';
import { info } from './info.js';
import { masksDiff, masksExport, masksImport, masksList, masksRemove, masksShow } from './masks.js';
import { enableRelaxedSimd } from './relaxed-simd.js';
import { replayCommand } from './replay.js';
import { run } from './run.js';

const BACKEND_HELP = 'tfjs backend: auto|tensorflow|wasm|cpu';

function protocolCommand(parent: Command, scenario: 'permuted' | 'rotated' | 'split', summary: string): void {
  parent
    .command(scenario)
    .description(summary)
    .option('--dataset <name>', 'mnist|fashion', 'mnist')
    .option('--arch <name>', 'lenet (784-300-100-s) | fc1024 (784-1024-1024-s)')
    .option('--hidden <widths>', 'hidden widths, e.g. 300,100 (instead of --arch)')
    .option('--outputs <s>', 'output neurons s (10 real classes plus superfluous ones)')
    .option('--tasks <n>', 'tasks to learn', '10')
    .option('--iterations <n>', 'training iterations per task', '1000')
    .option('--batch <n>', 'batch size', '128')
    .option('--inference <method>', 'one-shot|binary', 'one-shot')
    .option('--objective <obj>', 'H (entropy) | G (superfluous neurons)', 'H')
    .option('--bprime <n>', "B': leading images of a batch used to infer its task", '1')
    .option('--optimizer <kind>', 'rmsprop|adam|sgd', 'rmsprop')
    .option('--lr <rate>', 'learning rate (default: the paper value for the optimizer)')
    .option('--mask <rule>', 'threshold (score >= 0) | topk (edge-popup)', 'threshold')
    .option('--density <d>', 'kept fraction per layer for --mask topk', '0.5')
    .option('--init <kind>', 'score init: kaiming|transfer (running mean of earlier scores)', 'kaiming')
    .option('--seed <n>', 'seed of weights, scores, batch order and tasks', '1')
    .option('--eval-limit <n>', 'test images per task to evaluate (default: all)')
    .option('--backend <name>', BACKEND_HELP, 'auto')
    .option('--json', 'print one JSON object as the last line of stdout')
    .action((options: Record<string, unknown>) => benchProtocol(scenario, options));
}

function buildProgram(): Command {
  const program = new Command();
  program
    .name('supsupd')
    .description(
      'Supermasks in Superposition: learn tasks without forgetting, infer which task data comes from',
    )
    .showHelpAfterError();

  program
    .command('info')
    .description('show the tfjs backend in use, versions, and why a preferred backend was not taken')
    .option('--backend <name>', BACKEND_HELP, 'auto')
    .option('--json', 'print JSON')
    .action((options: Record<string, unknown>) => info(options));

  program
    .command('run')
    .description(
      'run the daemon from a configuration (file, SUPSUPD_* environment, flags); see docs/daemon.md',
    )
    .option('--config <file>', 'JSON configuration file (default: $SUPSUPD_CONFIG)')
    .option('--log-level <level>', 'error|warn|info|debug')
    .option('--backend <name>', BACKEND_HELP)
    .action((options: Record<string, unknown>) => run(options));

  program
    .command('replay')
    .description(
      'a JSONL file through the daemon from the configured store (or --from-empty) without touching it (--shadow), or into a new store (--apply); see docs/replay.md',
    )
    .option('--input <file>', 'the records, JSON lines as `supsupd run` reads them')
    .option('--config <file>', 'JSON configuration file (default: $SUPSUPD_CONFIG): model, discovery, store')
    .option('--shadow', 'write nothing to any store: learn on an in-memory copy of the starting state')
    .option('--apply', 'rebuild the masks into a new, empty store (--namespace or --dir)')
    .option('--namespace <ns>', 'with --apply: the new Redis namespace (on the configured server)')
    .option('--dir <path>', 'with --apply: the new file-store directory')
    .option('--from-empty', 'start from no masks instead of the configured store')
    .option(
      '--from-archive <file>',
      'start from a store archive (supsupd masks export) instead of the configured store',
    )
    .option(
      '--out <dir>',
      "where the replay's results.jsonl and decisions.jsonl go (default: a fresh temp dir)",
    )
    .option('--diff <log>', 'a recorded decisions.jsonl: list every batch decided otherwise (exit 1 if any)')
    .option('--rate <n>', 'at most n records per second')
    .option('--json', 'print one JSON object as the last line of stdout')
    .action((options: Record<string, unknown>) => replayCommand(options));

  program
    .command('demo')
    .description(
      'the embedded default: a built-in PermutedMNIST stream through the daemon (file store, no Kafka or Redis)',
    )
    .option(
      '--dir <path>',
      'working directory for the store and outputs (default: a fresh temp dir; reuse it to resume)',
    )
    .option('--segment <n>', 'records per true-task segment', '6000')
    .option('--http-port <port>', 'serve the API, metrics and dashboard on this port (0 = any free port)')
    .option('--http-host <host>', 'address the HTTP server binds', '127.0.0.1')
    .option('--hold', 'keep serving HTTP after the stream ended, until SIGINT/SIGTERM')
    .option('--log-level <level>', 'error|warn|info|debug', 'warn')
    .option('--backend <name>', BACKEND_HELP, 'auto')
    .option('--json', 'print one JSON object as the last line of stdout')
    .action((options: Record<string, unknown>) => demo(options));

  program
    .command('evaluate')
    .description(
      'a labelled JSONL file (or the demo stream) through the daemon, scored against its truth field: accuracy per discovered task, confusion, ARI, NMI, detection delays, spurious allocations, forgetting; see docs/discovery.md',
    )
    .option('--input <file>', 'JSONL records in the daemon format, each with a truth field')
    .option(
      '--truth-field <name>',
      "the record field holding the true task (removed before the daemon reads it; --demo: 'task')",
    )
    .option(
      '--label-field <name>',
      "a scoring-only class field for records sent without y (removed likewise; --demo: 'class')",
    )
    .option('--demo', 'evaluate the built-in demo stream (PermutedMNIST, true tasks 0 1 2 3 4 1)')
    .option('--segment <n>', 'with --demo: records per true-task segment (default 6000)')
    .option('--demo-out <file>', 'with --demo: keep the labelled demo stream in this file')
    .option(
      '--config <file>',
      'daemon configuration as for run (default: $SUPSUPD_CONFIG); source, sink, store, http and jobs are replaced',
    )
    .option('--plot <file>', 'write the task timeline: .png or .svg')
    .option('--log-level <level>', 'error|warn|info|debug', 'warn')
    .option('--backend <name>', BACKEND_HELP)
    .option('--json', 'print one JSON object as the last line of stdout')
    .action((options: Record<string, unknown>) => evaluate(options));
  masksCommands(program);
  program
    .command('infer')
    .description(
      'serve one exported task (masks export --task N) without the daemon: JSONL on stdin/stdout, or HTTP',
    )
    .option('--model <file>', 'the task archive written by supsupd masks export --task N --out FILE')
    .option(
      '--http-port <port>',
      'serve POST /api/v1/infer on this port instead of stdin/stdout (0 = any free port)',
    )
    .option('--http-host <host>', 'address the HTTP server binds', '127.0.0.1')
    .option('--backend <name>', BACKEND_HELP, 'auto')
    .action((options: Record<string, unknown>) => infer(options));

  const bench = program.command('bench').description('reproduce the paper and measure speed');
  protocolCommand(bench, 'permuted', 'PermutedMNIST: each task a fixed pixel permutation');
  protocolCommand(bench, 'rotated', 'RotatedMNIST: task i rotated by 10·i degrees');
  protocolCommand(bench, 'split', 'SplitMNIST: task i = digits {2i, 2i+1}');
  bench
    .command('oneshot')
    .description('time one-shot task inference over K random masks (no training)')
    .option('--arch <name>', 'lenet|fc1024', 'lenet')
    .option('--hidden <widths>', 'hidden widths, e.g. 300,100 (instead of --arch)')
    .option('--outputs <s>', 'output neurons', '500')
    .option('--masks <k>', 'number of random masks', '2500')
    .option('--batch <n>', 'batch size', '128')
    .option('--bprime <n>', "B'", '1')
    .option('--objective <obj>', 'H|G', 'H')
    .option('--repeats <n>', 'timed repetitions', '20')
    .option(
      '--warmup <n>',
      'untimed inferences first (V8 optimises WebAssembly after a budget of calls)',
      '20',
    )
    .option('--threads <n>', 'threads for the dot products (default: the cores available, at most 4)')
    .option(
      '--peer',
      'also run docs/reference/pytorch_supsup_oneshot_bench.py (stacked float masks, 1 and 2 threads; peak memory about 2.2 GB per 1,000 lenet-500 masks)',
    )
    .option('--seed <n>', 'seed', '1')
    .option('--backend <name>', BACKEND_HELP, 'auto')
    .option('--json', 'print one JSON object as the last line of stdout')
    .action((options: Record<string, unknown>) => benchOneShot(options));
  bench
    .command('train')
    .description('time the mask-training step alone (random batches), beside the PyTorch peer script')
    .option('--arch <name>', 'lenet|fc1024', 'lenet')
    .option('--hidden <widths>', 'hidden widths, e.g. 300,100 (instead of --arch)')
    .option('--outputs <s>', 'output neurons', '100')
    .option('--batch <n>', 'batch size', '128')
    .option('--steps <n>', 'timed steps per round', '300')
    .option('--rounds <n>', 'timed rounds (best and median reported)', '3')
    .option('--warmup <n>', 'warm-up steps', '20')
    .option('--optimizer <kind>', 'rmsprop|adam|sgd', 'rmsprop')
    .option('--mask <rule>', 'threshold|topk', 'threshold')
    .option('--density <d>', 'kept fraction per layer for --mask topk', '0.5')
    .option('--peer', 'also run docs/reference/pytorch_supsup_train_bench.py (1 and 2 threads)')
    .option('--seed <n>', 'seed', '1')
    .option('--backend <name>', BACKEND_HELP, 'auto')
    .option('--json', 'print one JSON object as the last line of stdout')
    .action((options: Record<string, unknown>) => benchTrain(options));
  bench
    .command('daemon')
    .description(
      'end-to-end daemon throughput on a stream that stays on one task (mask 0 trained on it, k-1 random masks)',
    )
    .option('--source <kind>', 'file|kafka', 'file')
    .option('--format <kind>', 'json|binary (file: json only)')
    .option('--records <n>', 'records to stream', '20000')
    .option('--masks <k>', 'masks in the store', '100')
    .option('--labelled', 'records carry labels: the mask trains on every batch (default: inference only)')
    .option('--train-steps <n>', "training steps of the stream task's mask before the run", '300')
    .option('--store <kind>', 'memory|redis', 'memory')
    .option('--redis-url <url>', 'Redis for --store redis (a unique namespace, deleted afterwards)')
    .option('--max-batch-size <n>', 'largest chunk the Kafka source hands to the daemon', '2048')
    .option('--arch <name>', 'lenet|fc1024', 'lenet')
    .option('--hidden <widths>', 'hidden widths, e.g. 300,100 (instead of --arch)')
    .option('--outputs <s>', 'output neurons', '100')
    .option('--batch <n>', 'micro-batch size', '128')
    .option('--brokers <list>', 'Kafka brokers for --source kafka')
    .option('--seed <n>', 'seed', '1')
    .option('--backend <name>', BACKEND_HELP, 'auto')
    .option('--json', 'print one JSON object as the last line of stdout')
    .action((options: Record<string, unknown>) => benchDaemon(options));
  bench
    .command('discovery')
    .description(
      'task discovery on generated streams (permutations, rotations, class splits, tabular regimes; raw and standardised; abrupt and gradual; 100/50/10 % labels) through the daemon, scored per record against the true tasks and an oracle told them',
    )
    .option('--rule <name>', 'evidence|paper|both', 'both')
    .option('--seeds <list>', 'stream seeds, e.g. 1,2', '1,2')
    .option('--filter <text>', 'only the streams whose name contains this')
    .option('--seed <n>', 'network seed', '1')
    .option('--backend <name>', BACKEND_HELP, 'wasm')
    .option('--json', 'print one JSON object as the last line of stdout')
    .action((options: Record<string, unknown>) => benchDiscovery(options));
  bench
    .command('coldstart')
    .description(
      'time from process start to a ready daemon with K masks in Redis (seeds a throw-away namespace)',
    )
    .option('--arch <name>', 'lenet|fc1024', 'lenet')
    .option('--hidden <widths>', 'hidden widths, e.g. 300,100 (instead of --arch)')
    .option('--outputs <s>', 'output neurons', '500')
    .option('--masks <k>', 'masks in the store', '2500')
    .option('--repeats <n>', 'fresh processes started', '3')
    .option(
      '--redis-url <url>',
      'Redis (keys go to a unique namespace, deleted afterwards)',
      'redis://127.0.0.1:6379',
    )
    .option('--seed <n>', 'seed', '1')
    .option('--backend <name>', BACKEND_HELP, 'auto')
    .option(
      '--attach <namespace>',
      'internal: open a daemon on a seeded namespace and report (the timed child)',
    )
    .option('--json', 'print one JSON object as the last line of stdout')
    .action((options: Record<string, unknown>) => benchColdStart(options));
  return program;
}

const STORE_HELP = {
  config: 'JSON configuration file, as for supsupd run (default: $SUPSUPD_CONFIG)',
  dir: 'a file store directory instead of the configured store',
  namespace: 'a Redis namespace on the configured server instead of the configured one',
};

function storeOptions(command: Command): Command {
  return command
    .option('--config <file>', STORE_HELP.config)
    .option('--dir <path>', STORE_HELP.dir)
    .option('--namespace <name>', STORE_HELP.namespace);
}

function masksCommands(program: Command): void {
  const masks = program
    .command('masks')
    .description('list, show, export, import, remove and compare the masks of a store (docs/masks.md)');
  storeOptions(masks.command('list').description('the tasks of a store (or --archive FILE) as a table'))
    .option('--archive <file>', 'list an archive file instead of a store')
    .option('--json', 'print one JSON object')
    .action((options: Record<string, unknown>) => masksList(options));
  storeOptions(masks.command('show <task>').description('one task of a store (or --archive FILE) in detail'))
    .option('--archive <file>', 'read an archive file instead of a store')
    .option('--json', 'print one JSON object')
    .action((task: string, options: Record<string, unknown>) => masksShow(task, options));
  storeOptions(
    masks
      .command('export')
      .description('the whole store, or one task as a standalone model (--task), to an archive file'),
  )
    .option('--out <file>', 'the archive file to write')
    .option('--task <n>', 'export only this task, as a model for supsupd infer')
    .option('--json', 'print one JSON object')
    .action((options: Record<string, unknown>) => masksExport(options));
  storeOptions(
    masks
      .command('import <file>')
      .description('a whole-store archive into an empty store (--dir or --namespace, or the configured one)'),
  )
    .option('--lease-ms <ms>', "time to live of the namespace's writer lease taken for the write", '60000')
    .option('--json', 'print one JSON object')
    .action((file: string, options: Record<string, unknown>) => masksImport(file, options));
  storeOptions(
    masks
      .command('rm <task>')
      .description('remove the last task (ids stay 0..k-1: any other id is refused); export the store first'),
  )
    .option('--lease-ms <ms>', "time to live of the namespace's writer lease taken for the write", '60000')
    .option('--json', 'print one JSON object')
    .action((task: string, options: Record<string, unknown>) => masksRemove(task, options));
  masks
    .command('diff <a> <b>')
    .description(
      'tasks added, removed and changed (by checksum) from a to b; each an archive file, a file store directory or redis:NAMESPACE',
    )
    .option('--config <file>', STORE_HELP.config)
    .option('--json', 'print one JSON object')
    .action((a: string, b: string, options: Record<string, unknown>) => masksDiff(a, b, options));
}

async function main(): Promise<void> {
  try {
    enableRelaxedSimd();
    await buildProgram().parseAsync(process.argv);
  } catch (error) {
    const code = isSupsupError(error) ? error.code : 'E_INTERNAL';
    process.stderr.write(`supsupd: ${code}: ${errorMessage(error)}\n`);
    if (!isSupsupError(error) && error instanceof Error && error.stack)
      process.stderr.write(`${error.stack}\n`);
    process.exitCode = exitCodeOf(error);
    // Everything the command opened was closed before the error reached here; a handle left open anyway
    // (a library's socket or timer) must not keep a refused start alive.
    setTimeout(() => process.exit(), FORCED_EXIT_MS).unref();
  }
}

/** How long a failed command may take to exit by itself before it is made to. */
const FORCED_EXIT_MS = 3_000;

/** 2: the input or the state was refused (fix it, or choose store.onRegression); 1: anything else. */
function exitCodeOf(error: unknown): number {
  const refused: readonly string[] = [
    'E_BAD_ARGUMENT',
    'E_CONFIG',
    'E_STORE_REGRESSED',
    'E_ARCHIVE',
    'E_ARCH_MISMATCH',
  ];
  return isSupsupError(error) && refused.includes(error.code) ? 2 : 1;
}

await main();
