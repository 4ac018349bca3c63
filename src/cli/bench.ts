import { coldStartChild, runColdStartBench } from '../bench/coldstart.js';
import { runDaemonBench } from '../bench/daemon-bench.js';
import { runOneShotBench, runOneShotPeer } from '../bench/oneshot.js';
import { type ProtocolConfig, runProtocol, type Scenario } from '../bench/protocol.js';
import { type PeerResult, runPytorchPeer, runTrainBench } from '../bench/train.js';
import { loadDataset } from '../data/index.js';
import { type InferenceMethod, SCREEN_MIN_MASKS, type ScoreInit } from '../model/engine.js';
import {
  type Architecture,
  BACKEND_PREFERENCES,
  type BackendPreference,
  makeArchitecture,
  selectBackend,
} from '../model/network/index.js';
import {
  defaultOptimizer,
  type MaskRule,
  type Objective,
  type OptimizerKind,
} from '../model/training/index.js';
import { OptionReader } from './options.js';
import { Progress } from './progress.js';

type RawOptions = Readonly<Record<string, unknown>>;

function readArchitecture(reader: OptionReader, outputsFallback: number): Architecture {
  const hidden = reader.integerList('hidden');
  const arch = hidden === undefined ? reader.string('arch', 'lenet') : undefined;
  const outputs = reader.integer('outputs', outputsFallback, 1, 65536);
  return reader.attempt(
    () => makeArchitecture({ arch, hidden, outputs }),
    makeArchitecture({ arch: 'lenet', outputs: 10 }),
  );
}

export function readProtocolConfig(
  scenario: Scenario,
  raw: RawOptions,
): ProtocolConfig & { backend: BackendPreference } {
  const r = new OptionReader(raw);
  const arch = readArchitecture(r, 100);
  const maskKind = r.choice('mask', ['threshold', 'topk'] as const, 'threshold');
  const density = r.number('density', 0.5, 1e-6, 1) ?? 0.5;
  const rule: MaskRule = maskKind === 'topk' ? { kind: 'topk', density } : { kind: 'threshold' };
  const optimizerKind = r.choice<OptimizerKind>('optimizer', ['rmsprop', 'adam', 'sgd'], 'rmsprop');
  const lr = r.number('lr', undefined, 1e-12, 100);
  const tasks = r.integer('tasks', 10, 1, 100_000);
  if (scenario === 'split' && tasks > 5)
    r.problem(`split has 5 tasks at most (digit pairs), got --tasks ${tasks}`);
  if (scenario === 'split' && arch.realClasses > arch.outputs) r.problem('split needs at least 10 outputs');
  const config = {
    scenario,
    dataset: r.choice('dataset', ['mnist', 'fashion'] as const, 'mnist'),
    arch,
    tasks,
    iterations: r.integer('iterations', 1000, 1),
    batchSize: r.integer('batch', 128, 1, 65536),
    seed: r.integer('seed', 1, 0, 0xffffffff),
    inference: r.choice<InferenceMethod>('inference', ['one-shot', 'binary'], 'one-shot'),
    objective: r.choice<Objective>('objective', ['H', 'G'], 'H'),
    bprime: r.integer('bprime', 1, 1, 65536),
    optimizer: defaultOptimizer(optimizerKind, lr),
    rule,
    init: r.choice<ScoreInit>('init', ['kaiming', 'transfer'], 'kaiming'),
    evalLimit: r.optionalInteger('evalLimit', 1),
    backend: r.choice<BackendPreference>('backend', BACKEND_PREFERENCES, 'auto'),
  };
  if (config.bprime > config.batchSize)
    r.problem(`--bprime ${config.bprime} exceeds --batch ${config.batchSize}`);
  r.finish(`bench ${scenario}`);
  return config;
}

export async function benchProtocol(scenario: Scenario, raw: RawOptions): Promise<void> {
  const { backend: preference, ...config } = readProtocolConfig(scenario, raw);
  const json = raw.json === true;
  const backend = await selectBackend(preference);
  const dataset = loadDataset(config.dataset);
  const progress = new Progress();
  const totalSteps = config.tasks * config.iterations;
  const result = runProtocol(config, dataset, (event) => {
    if (event.phase === 'train') {
      const loss = event.loss === undefined ? '' : ` loss ${event.loss.toFixed(3)}`;
      progress.update(
        event.task * config.iterations + event.iteration,
        totalSteps,
        `train task ${event.task + 1}/${config.tasks} step ${event.iteration}/${config.iterations}${loss}`,
      );
    } else {
      progress.update(event.batch, event.batches, `evaluate task ${event.task + 1}/${config.tasks}`);
    }
  });
  progress.done();
  const report = { command: `bench ${scenario}`, backend: backend.backend, ...result, config };
  if (json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }
  const pct = (v: number) => `${(100 * v).toFixed(2)} %`;
  const lines = [
    `SupSup ${scenario} ${config.dataset}, ${config.arch.name} (${[config.arch.inputs, ...config.arch.hidden, config.arch.outputs].join('-')}), ${config.tasks} tasks x ${config.iterations} iterations, ${config.inference} ${config.objective}, B'=${config.bprime}, backend ${backend.backend}`,
    `  GG  accuracy          ${pct(result.gg_acc)}`,
    `  GNs accuracy          ${pct(result.gns_acc)}`,
    `  GNu accuracy          ${pct(result.gnu_acc)}`,
    `  task inference        ${pct(result.task_inference_acc)}`,
    `  training              ${result.train_samples_per_s.toFixed(0)} samples/s (${result.train_seconds.toFixed(1)} s)`,
    `  task inference time   ${result.oneshot_ms_per_batch.toFixed(2)} ms per batch (${result.inference_passes_per_batch.toFixed(2)} passes)`,
    `  mask size             ${result.mask_bytes_per_task} bytes per task`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

export async function benchOneShot(raw: RawOptions): Promise<void> {
  const r = new OptionReader(raw);
  const arch = readArchitecture(r, 500);
  const config = {
    arch,
    masks: r.integer('masks', 2500, 1, 1_000_000),
    batchSize: r.integer('batch', 128, 1, 65536),
    bprime: r.integer('bprime', 1, 1, 65536),
    objective: r.choice<Objective>('objective', ['H', 'G'], 'H'),
    repeats: r.integer('repeats', 20, 1, 100_000),
    warmup: r.integer('warmup', 20, 0, 100_000),
    seed: r.integer('seed', 1, 0, 0xffffffff),
    threads: r.optionalInteger('threads', 1),
  };
  const peer = raw.peer === true;
  const preference = r.choice<BackendPreference>('backend', BACKEND_PREFERENCES, 'auto');
  r.finish('bench oneshot');
  const backend = await selectBackend(preference);
  const progress = new Progress();
  const result = runOneShotBench(config, (done, total, phase) =>
    progress.update(
      done,
      total,
      phase === 'masks' ? `generate masks ${done}/${total}` : `infer ${done}/${total}`,
    ),
  );
  progress.done();
  const peers = peer ? [1, 2].map((threads) => runOneShotPeer(config, threads)) : [];
  const ratios = Object.fromEntries(
    peers.flatMap((q) =>
      q.ms_per_batch_min === null
        ? []
        : [
            [`speedup_vs_pytorch_${q.threads}t`, q.ms_per_batch_min / result.oneshot_ms_min],
            [`memory_ratio_vs_pytorch_${q.threads}t`, (q.peak_rss_mb as number) / result.rss_mb],
          ],
    ),
  );
  const report = {
    command: 'bench oneshot',
    backend: backend.backend,
    ...result,
    peer: peers,
    ...ratios,
    config,
  };
  if (raw.json === true) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }
  process.stdout.write(
    `${[
      `one-shot task inference, ${config.masks} masks, ${[arch.inputs, ...arch.hidden, arch.outputs].join('-')}, batch ${config.batchSize}, B'=${config.bprime}, backend ${backend.backend}`,
      `  ${result.oneshot_ms_per_batch.toFixed(1)} ms per batch (p50 ${result.oneshot_ms_p50.toFixed(1)}, min ${result.oneshot_ms_min.toFixed(1)})`,
      `  prediction with the inferred mask: ${result.predict_ms_per_batch.toFixed(1)} ms per batch`,
      `  masks: ${result.mask_bytes_per_task} bytes each, bank ${(result.mask_bank_bytes / 2 ** 20).toFixed(1)} MiB`,
      `  reading the bank once: ${result.bank_read_ms.toFixed(1)} ms (${result.bank_read_gb_per_s.toFixed(1)} GB/s; WebAssembly v128 ${result.bank_read_v128_ms.toFixed(1)} ms, JavaScript ${result.bank_read_js_ms.toFixed(1)} ms); one-shot / read ${result.ratio_oneshot_min_to_read.toFixed(2)} (min), ${result.ratio_oneshot_p50_to_read.toFixed(2)} (p50)`,
      `  dot products alone: ${result.dot_all_ms_min.toFixed(1)} ms on ${result.dot_threads} thread(s), ${result.dot_all_1_thread_ms_min.toFixed(1)} ms on 1 (min)`,
      result.screened
        ? `  screened (ADR 0007): the screen alone ${result.screen_ms_min.toFixed(1)} ms (min, ${result.screen_swizzle} swizzle), ${result.exact_masks_p50} mask(s) then computed exactly (median)`
        : `  not screened (below ${SCREEN_MIN_MASKS} masks): every product exact`,
      `  resident memory ${result.rss_mb.toFixed(0)} MiB`,
      ...peers.map((q) =>
        q.ms_per_batch_min === null
          ? `  PyTorch stacked float masks, ${q.threads} thread(s): ${q.error ?? 'failed'}`
          : `  PyTorch stacked float masks, ${q.threads} thread(s): ${q.ms_per_batch_min.toFixed(0)} ms per batch (min), peak ${(q.peak_rss_mb as number).toFixed(0)} MiB; ${(q.ms_per_batch_min / result.oneshot_ms_min).toFixed(0)}x slower`,
      ),
    ].join('\n')}\n`,
  );
}

export async function benchTrain(raw: RawOptions): Promise<void> {
  const r = new OptionReader(raw);
  const arch = readArchitecture(r, 100);
  const maskKind = r.choice('mask', ['threshold', 'topk'] as const, 'threshold');
  const density = r.number('density', 0.5, 1e-6, 1) ?? 0.5;
  const config = {
    arch,
    batchSize: r.integer('batch', 128, 1, 65536),
    steps: r.integer('steps', 300, 1, 1_000_000),
    rounds: r.integer('rounds', 3, 1, 1000),
    warmup: r.integer('warmup', 20, 0, 1_000_000),
    seed: r.integer('seed', 1, 0, 0xffffffff),
    rule: (maskKind === 'topk' ? { kind: 'topk', density } : { kind: 'threshold' }) as MaskRule,
    optimizer: defaultOptimizer(r.choice<OptimizerKind>('optimizer', ['rmsprop', 'adam', 'sgd'], 'rmsprop')),
  };
  const peer = raw.peer === true;
  const preference = r.choice<BackendPreference>('backend', BACKEND_PREFERENCES, 'auto');
  r.finish('bench train');
  const backend = await selectBackend(preference);
  const result = runTrainBench(config);
  // The peer script knows lenet and fc1024 with 100 outputs and batch 128 only.
  const peerArch =
    (arch.name === 'lenet' || arch.name === 'fc1024') && arch.outputs === 100 && config.batchSize === 128
      ? arch.name
      : null;
  const peers: PeerResult[] = !peer
    ? []
    : peerArch === null
      ? [
          {
            threads: 0,
            samples_per_s: null,
            error: 'the peer script runs lenet or fc1024, 100 outputs, batch 128',
          },
        ]
      : [1, 2].map((threads) => runPytorchPeer(peerArch, threads, config.steps));
  const ratios = Object.fromEntries(
    peers
      .filter((p) => p.samples_per_s !== null)
      .map((p) => [
        `ratio_vs_pytorch_${p.threads}t`,
        result.train_samples_per_s / (p.samples_per_s as number),
      ]),
  );
  const report = {
    command: 'bench train',
    backend: backend.backend,
    wasm: backend.wasm,
    ...result,
    peer: peers,
    ...ratios,
    config,
  };
  if (raw.json === true) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }
  const p = result.profile_ms_per_step;
  const lines = [
    `training step, ${[arch.inputs, ...arch.hidden, arch.outputs].join('-')}, batch ${config.batchSize}, backend ${backend.backend}`,
    `  ${result.train_samples_per_s.toFixed(0)} samples/s best round (median ${result.train_samples_per_s_median.toFixed(0)}), ${result.ms_per_step.toFixed(2)} ms per step`,
    `  profile ms/step: upload ${p.upload.toFixed(2)}, network ${p.network.toFixed(2)}, readback ${p.readback.toFixed(2)}, STE ${p.ste.toFixed(2)}, optimizer ${p.optimizer.toFixed(2)}, mask ${p.mask.toFixed(2)}`,
    ...peers.map((q) =>
      q.samples_per_s === null
        ? `  PyTorch ${q.threads} thread(s): ${q.error ?? 'failed'}`
        : `  PyTorch ${q.threads} thread(s): ${q.samples_per_s.toFixed(0)} samples/s, ratio ${(result.train_samples_per_s / q.samples_per_s).toFixed(2)}`,
    ),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

export async function benchDaemon(raw: RawOptions): Promise<void> {
  const r = new OptionReader(raw);
  const arch = readArchitecture(r, 100);
  const source = r.choice('source', ['file', 'kafka'] as const, 'file');
  const config = {
    source,
    format: r.choice('format', ['json', 'binary'] as const, source === 'file' ? 'json' : 'binary'),
    records: r.integer('records', 20_000, 1, 10_000_000),
    masks: r.integer('masks', 100, 1, 100_000),
    arch,
    microBatch: r.integer('batch', 128, 1, 4096),
    brokers: r
      .string('brokers', '')
      .split(',')
      .filter((b) => b !== ''),
    seed: r.integer('seed', 1, 0, 0xffffffff),
    labelled: r.flag('labelled'),
    trainSteps: r.integer('trainSteps', 300, 0, 1_000_000),
    store: r.choice('store', ['memory', 'redis'] as const, 'memory'),
    redisUrl: r.string('redisUrl', 'redis://127.0.0.1:6379'),
    maxBatchSize: r.integer('maxBatchSize', 2048, 1, 1_000_000),
  };
  if (config.source === 'kafka' && config.brokers.length === 0)
    r.problem('--source kafka needs --brokers host:port[,…]');
  if (config.source === 'file' && config.format === 'binary')
    r.problem('the file source reads JSON lines: use --format json');
  const preference = r.choice<BackendPreference>('backend', BACKEND_PREFERENCES, 'auto');
  r.finish('bench daemon');
  const backend = await selectBackend(preference);
  const progress = new Progress();
  const result = await runDaemonBench(config, (done, total) =>
    progress.update(done, total, `records ${done}/${total}`),
  );
  progress.done();
  const report = { command: 'bench daemon', backend: backend.backend, ...result, config };
  if (raw.json === true) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }
  process.stdout.write(
    `daemon throughput, ${config.source} source, ${config.format} ${config.labelled ? 'labelled' : 'unlabelled'} records, ` +
      `${config.masks} masks, ${arch.name}, ${config.store} store: ` +
      `${result.records_per_s.toFixed(0)} records/s (${result.records_per_s_after_join.toFixed(0)} after the ` +
      `${result.join_seconds.toFixed(2)} s join; ${result.results_out} results in ${result.seconds.toFixed(1)} s, ` +
      `${result.full_checks} full checks, decisions ${JSON.stringify(result.decisions)}, ` +
      `${result.chunks} chunks, ${result.commits} commits, RSS ${result.rss_mb.toFixed(0)} MiB, ` +
      `${result.cpu_ms_per_1k_records.toFixed(1)} ms CPU per 1,000 records)\n`,
  );
}

export async function benchColdStart(raw: RawOptions): Promise<void> {
  const r = new OptionReader(raw);
  const arch = readArchitecture(r, 500);
  const config = {
    arch,
    masks: r.integer('masks', 2500, 1, 1_000_000),
    seed: r.integer('seed', 1, 0, 0xffffffff),
    redisUrl: r.string('redisUrl', 'redis://127.0.0.1:6379'),
    repeats: r.integer('repeats', 3, 1, 1000),
  };
  const attach = r.string('attach', '');
  const preference = r.choice<BackendPreference>('backend', BACKEND_PREFERENCES, 'auto');
  r.finish('bench coldstart');
  if (attach !== '') {
    // The child: a fresh process that opens a daemon on the seeded namespace and reports.
    await selectBackend(preference);
    const report = await coldStartChild(config, attach);
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }
  const backend = await selectBackend(preference);
  const progress = new Progress();
  const passOn = ['--arch', 'lenet', '--outputs', String(arch.outputs), '--seed', String(config.seed)];
  if (raw.hidden !== undefined || raw.arch !== undefined) {
    passOn.splice(0, 2, '--hidden', arch.hidden.join(','));
  }
  const result = await runColdStartBench(
    config,
    (namespace) => ({
      command: process.execPath,
      args: [
        ...process.execArgv,
        process.argv[1] as string,
        'bench',
        'coldstart',
        ...passOn,
        '--redis-url',
        config.redisUrl,
        '--backend',
        preference,
        '--attach',
        namespace,
      ],
    }),
    (phase, done, total) =>
      progress.update(
        done,
        total,
        phase === 'seed' ? `seed masks ${done}/${total}` : `start processes ${done}/${total}`,
      ),
  );
  progress.done();
  const report = {
    command: 'bench coldstart',
    backend: backend.backend,
    ...result,
    config: { ...config, shape: [arch.inputs, ...arch.hidden, arch.outputs].join('-') },
  };
  if (raw.json === true) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }
  const ms = (values: readonly number[]) => values.map((v) => v.toFixed(0)).join(', ');
  process.stdout.write(
    `${[
      `cold start, ${config.masks} masks (${report.config.shape}, ${(result.store_bytes / 2 ** 20).toFixed(1)} MiB in Redis), backend ${backend.backend}`,
      `  Daemon.open:              ${ms(result.open_ms)} ms`,
      `  process start to ready:   ${ms(result.process_ready_ms)} ms`,
      `  spawn to exit:            ${ms(result.spawn_to_exit_ms)} ms`,
    ].join('\n')}\n`,
  );
}
