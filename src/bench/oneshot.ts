import { performance } from 'node:perf_hooks';
import type { Architecture } from '../model/arch.js';
import { SupermaskEngine } from '../model/engine.js';
import { randomMask } from '../model/mask-layout.js';
import type { Objective } from '../model/objectives.js';
import { defaultOptimizer } from '../model/optimizers.js';
import { RandomStream } from '../model/prng.js';

export interface OneShotBenchConfig {
  readonly arch: Architecture;
  readonly masks: number;
  readonly batchSize: number;
  readonly bprime: number;
  readonly objective: Objective;
  readonly repeats: number;
  readonly seed: number;
}

export interface OneShotBenchResult {
  readonly oneshot_ms_per_batch: number;
  readonly oneshot_ms_p50: number;
  readonly oneshot_ms_min: number;
  readonly predict_ms_per_batch: number;
  readonly mask_bytes_per_task: number;
  readonly mask_bank_bytes: number;
  readonly rss_mb: number;
  readonly heap_used_mb: number;
  readonly external_mb: number;
}

/**
 * Times one-shot task inference (one forward/backward with the averaged mask, then one bit-packed
 * dot product per mask) for K random masks of about 50 % density, on a batch of random inputs.
 */
export function runOneShotBench(
  config: OneShotBenchConfig,
  onProgress: (done: number, total: number, phase: string) => void = () => {},
): OneShotBenchResult {
  const engine = new SupermaskEngine({
    arch: config.arch,
    seed: config.seed,
    rule: { kind: 'threshold' },
    optimizer: defaultOptimizer('rmsprop'),
  });
  try {
    addRandomMasks(engine, config.masks, config.seed, (done) => onProgress(done, config.masks, 'masks'));
    const input = new RandomStream(config.seed, 'probe', 0).fillUniform(
      new Float32Array(config.batchSize * config.arch.inputs),
      1,
    );
    const times: number[] = [];
    let predictMs = 0;
    const warmup = 2;
    for (let r = 0; r < config.repeats + warmup; r++) {
      const started = performance.now();
      const { task } = engine.inferTask(input, {
        method: 'one-shot',
        objective: config.objective,
        bprime: config.bprime,
      });
      const inferred = performance.now();
      engine.predict(input, task);
      if (r >= warmup) {
        times.push(inferred - started);
        predictMs += performance.now() - inferred;
      }
      onProgress(r + 1, config.repeats + warmup, 'infer');
    }
    const sorted = [...times].sort((a, b) => a - b);
    const memory = process.memoryUsage();
    return {
      oneshot_ms_per_batch: times.reduce((a, b) => a + b, 0) / times.length,
      oneshot_ms_p50: sorted[(sorted.length - 1) >> 1] as number,
      oneshot_ms_min: sorted[0] as number,
      predict_ms_per_batch: predictMs / times.length,
      mask_bytes_per_task: engine.layout.totalBytes,
      mask_bank_bytes: engine.bank.memoryBytes(),
      rss_mb: memory.rss / 2 ** 20,
      heap_used_mb: memory.heapUsed / 2 ** 20,
      external_mb: (memory.external + memory.arrayBuffers) / 2 ** 20,
    };
  } finally {
    engine.dispose();
  }
}

function addRandomMasks(
  engine: SupermaskEngine,
  count: number,
  seed: number,
  onAdded: (done: number) => void,
): void {
  for (let m = 0; m < count; m++) {
    engine.addMask(randomMask(engine.layout, seed, m));
    if (m % 100 === 99 || m === count - 1) onAdded(m + 1);
  }
}
