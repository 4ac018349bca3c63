import { performance } from 'node:perf_hooks';
import type { Dataset } from '../data/images.js';
import { makeTasks, type TaskView } from '../data/tasks.js';
import { type InferenceMethod, type ScoreInit, SupermaskEngine } from '../model/engine.js';
import type { Architecture } from '../model/network/index.js';
import type { MaskRule, Objective, OptimizerConfig } from '../model/training/index.js';
import { BatchSampler, evaluationBatches } from './sampler.js';

export type Scenario = 'permuted' | 'rotated' | 'split';

export interface ProtocolConfig {
  readonly scenario: Scenario;
  readonly dataset: Dataset['name'];
  readonly arch: Architecture;
  readonly tasks: number;
  readonly iterations: number;
  readonly batchSize: number;
  readonly seed: number;
  readonly inference: InferenceMethod;
  readonly objective: Objective;
  readonly bprime: number;
  readonly optimizer: OptimizerConfig;
  readonly rule: MaskRule;
  readonly init: ScoreInit;
  /** Test images per task to evaluate (all when undefined). */
  readonly evalLimit?: number;
}

export type ProtocolProgress =
  | { readonly phase: 'train'; readonly task: number; readonly iteration: number; readonly loss?: number }
  | { readonly phase: 'eval'; readonly task: number; readonly batch: number; readonly batches: number };

export interface TaskScore {
  readonly task: number;
  readonly name: string;
  readonly gg_acc: number;
  readonly gns_acc: number;
  readonly gnu_acc: number;
  readonly task_inference_acc: number;
  readonly test_images: number;
}

export interface ProtocolResult {
  readonly gg_acc: number;
  readonly gns_acc: number;
  readonly gnu_acc: number;
  readonly task_inference_acc: number;
  readonly train_samples_per_s: number;
  readonly train_seconds: number;
  readonly oneshot_ms_per_batch: number;
  readonly inference_passes_per_batch: number;
  readonly mask_bytes_per_task: number;
  readonly per_task: readonly TaskScore[];
}

/**
 * The paper's protocol (spec §4.7): learn tasks one after another with one mask each (task identity
 * given at training time), then, for every task learned, split its test set into batches; infer the
 * task of each batch from its first B′ images and classify the whole batch with the inferred mask.
 * GNu scores 0 for a mis-inferred batch; GNs classifies with whatever mask was inferred; GG uses the
 * true mask. Reported figures are means over tasks.
 */
export function runProtocol(
  config: ProtocolConfig,
  dataset: Dataset,
  onProgress: (event: ProtocolProgress) => void = () => {},
): ProtocolResult {
  const tasks = makeTasks(config.scenario, dataset, config.tasks, config.seed);
  const engine = new SupermaskEngine({
    arch: config.arch,
    seed: config.seed,
    rule: config.rule,
    optimizer: config.optimizer,
    taskWeightCache: config.tasks + 1,
  });
  try {
    const trainSeconds = trainAll(engine, tasks, config, onProgress);
    return evaluateAll(engine, tasks, config, trainSeconds, onProgress);
  } finally {
    engine.dispose();
  }
}

function trainAll(
  engine: SupermaskEngine,
  tasks: readonly TaskView[],
  config: ProtocolConfig,
  onProgress: (event: ProtocolProgress) => void,
): number {
  let seconds = 0;
  for (const task of tasks) {
    const sampler = new BatchSampler(task.train, config.batchSize, config.seed, task.id);
    const trainer = engine.createTrainer(engine.initialScores(task.id, config.init));
    try {
      const started = performance.now();
      for (let it = 0; it < config.iterations; it++) {
        const report = it % 100 === 99 || it === config.iterations - 1;
        const loss = trainer.step(sampler.next(), report);
        if (report) onProgress({ phase: 'train', task: task.id, iteration: it + 1, loss });
      }
      seconds += (performance.now() - started) / 1000;
      engine.commitScores(trainer.readScores(), trainer.packedMask());
    } finally {
      trainer.dispose();
    }
  }
  return seconds;
}

function evaluateAll(
  engine: SupermaskEngine,
  tasks: readonly TaskView[],
  config: ProtocolConfig,
  trainSeconds: number,
  onProgress: (event: ProtocolProgress) => void,
): ProtocolResult {
  const perTask: TaskScore[] = [];
  let inferenceMs = 0;
  let inferencePasses = 0;
  let inferredBatches = 0;
  const inference = { method: config.inference, objective: config.objective, bprime: config.bprime };
  for (const task of tasks) {
    const limit = Math.min(task.test.count, config.evalLimit ?? task.test.count);
    const batches = Math.ceil(limit / config.batchSize);
    let gg = 0;
    let gns = 0;
    let gnu = 0;
    let inferredRight = 0;
    let batchIndex = 0;
    for (const batch of evaluationBatches(task.test, config.batchSize, config.seed, task.id, limit)) {
      const started = performance.now();
      const inferred = engine.inferTask(batch.x, inference);
      inferenceMs += performance.now() - started;
      inferencePasses += inferred.passes;
      inferredBatches++;
      const trueCorrect = countCorrect(engine.predict(batch.x, task.id), batch.y);
      gg += trueCorrect;
      if (inferred.task === task.id) {
        inferredRight++;
        gns += trueCorrect;
        gnu += trueCorrect;
      } else {
        gns += countCorrect(engine.predict(batch.x, inferred.task), batch.y);
      }
      batchIndex++;
      onProgress({ phase: 'eval', task: task.id, batch: batchIndex, batches });
    }
    perTask.push({
      task: task.id,
      name: task.name,
      gg_acc: gg / limit,
      gns_acc: gns / limit,
      gnu_acc: gnu / limit,
      task_inference_acc: inferredRight / batches,
      test_images: limit,
    });
  }
  const mean = (key: keyof Omit<TaskScore, 'task' | 'name' | 'test_images'>): number =>
    perTask.reduce((sum, t) => sum + t[key], 0) / perTask.length;
  return {
    gg_acc: mean('gg_acc'),
    gns_acc: mean('gns_acc'),
    gnu_acc: mean('gnu_acc'),
    task_inference_acc: mean('task_inference_acc'),
    train_samples_per_s: (tasks.length * config.iterations * config.batchSize) / trainSeconds,
    train_seconds: trainSeconds,
    oneshot_ms_per_batch: inferenceMs / inferredBatches,
    inference_passes_per_batch: inferencePasses / inferredBatches,
    mask_bytes_per_task: engine.layout.totalBytes,
    per_task: perTask,
  };
}

function countCorrect(predictions: Int32Array, labels: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < predictions.length; i++) if (predictions[i] === labels[i]) n++;
  return n;
}
