import { SupermaskEngine } from '../model/engine.js';
import { type Architecture, RandomStream } from '../model/network/index.js';
import type { LabelledBatch, MaskRule, OptimizerConfig, StepProfile } from '../model/training/index.js';
import { runPeerScript } from './peer.js';

export interface TrainBenchConfig {
  readonly arch: Architecture;
  readonly batchSize: number;
  readonly steps: number;
  readonly warmup: number;
  /** Timed rounds of `steps` steps; the report gives the best and the median round. */
  readonly rounds: number;
  readonly seed: number;
  readonly rule: MaskRule;
  readonly optimizer: OptimizerConfig;
}

export interface TrainBenchResult {
  /** Best round. */
  readonly train_samples_per_s: number;
  readonly train_samples_per_s_median: number;
  readonly ms_per_step: number;
  /** Milliseconds per step by phase, from a separate profiled round. */
  readonly profile_ms_per_step: Omit<StepProfile, 'steps'>;
}

/**
 * Times the mask-training step alone, as the PyTorch peer script does: batches of random inputs
 * (labels in [0, realClasses)) made before the clock starts, warm-up steps, then timed steps.
 */
export function runTrainBench(config: TrainBenchConfig): TrainBenchResult {
  const engine = new SupermaskEngine({
    arch: config.arch,
    seed: config.seed,
    rule: config.rule,
    optimizer: config.optimizer,
  });
  const trainer = engine.createTrainer(engine.initialScores(0, 'kaiming'));
  try {
    const stream = new RandomStream(config.seed, 'probe', 1);
    const batches: LabelledBatch[] = Array.from({ length: 8 }, () => {
      const x = stream.fillUniform(new Float32Array(config.batchSize * config.arch.inputs), 1.7);
      const y = Int32Array.from({ length: config.batchSize }, () =>
        Math.min(config.arch.realClasses - 1, Math.floor(stream.nextFloat() * config.arch.realClasses)),
      );
      return { x, y, rows: config.batchSize };
    });
    let n = 0;
    const next = (): LabelledBatch => batches[n++ % batches.length] as LabelledBatch;
    for (let s = 0; s < config.warmup; s++) trainer.step(next());
    const rates: number[] = [];
    for (let r = 0; r < config.rounds; r++) {
      const started = performance.now();
      for (let s = 0; s < config.steps; s++) trainer.step(next());
      const seconds = (performance.now() - started) / 1000;
      rates.push((config.steps * config.batchSize) / seconds);
    }
    trainer.startProfile();
    for (let s = 0; s < config.steps; s++) trainer.step(next());
    const profile = trainer.readProfile() as StepProfile;
    const per = (v: number): number => v / profile.steps;
    const sorted = [...rates].sort((a, b) => a - b);
    const best = sorted[sorted.length - 1] as number;
    return {
      train_samples_per_s: best,
      train_samples_per_s_median: sorted[(sorted.length - 1) >> 1] as number,
      ms_per_step: (1000 * config.batchSize) / best,
      profile_ms_per_step: {
        upload: per(profile.upload),
        network: per(profile.network),
        readback: per(profile.readback),
        ste: per(profile.ste),
        optimizer: per(profile.optimizer),
        mask: per(profile.mask),
      },
    };
  } finally {
    trainer.dispose();
    engine.dispose();
  }
}

export interface PeerResult {
  readonly threads: number;
  readonly samples_per_s: number | null;
  readonly error?: string;
  readonly raw?: unknown;
}

/** The PyTorch peer training script (docs/reference/pytorch_supsup_train_bench.py). */
export function runPytorchPeer(arch: 'lenet' | 'fc1024', threads: number, steps: number): PeerResult {
  const run = runPeerScript('pytorch_supsup_train_bench.py', [
    '--arch',
    arch,
    '--threads',
    String(threads),
    '--steps',
    String(steps),
  ]);
  if (!run.ok) return { threads, samples_per_s: null, error: run.error };
  const rate = run.raw.samples_per_s;
  return { threads, samples_per_s: typeof rate === 'number' ? rate : null, raw: run.raw };
}
