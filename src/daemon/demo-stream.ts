import { loadDataset } from '../data/index.js';
import { makeTasks } from '../data/tasks.js';
import { RandomStream } from '../model/network/prng.js';
import type { RawRecord } from '../records.js';

/**
 * The built-in demo stream: PermutedMNIST tasks one after another, each segment `recordsPerSegment`
 * long (not a multiple of the micro-batch, so task changes fall inside batches), one task coming back
 * at the end. Records are binary float32 with the label in a header; a fraction carry no label
 * (inference only). The true task travels in the `x-true-task` header and every record's class in
 * `x-true-class`, for scoring the demo and `supsupd evaluate --demo`: the daemon never reads them.
 */
export interface DemoStreamConfig {
  /** True task of each segment, e.g. [0, 1, 2, 3, 4, 1]. */
  readonly segments: readonly number[];
  readonly recordsPerSegment: number;
  readonly unlabelledFraction: number;
  readonly seed: number;
}

export const DEFAULT_DEMO_STREAM: DemoStreamConfig = {
  segments: [0, 1, 2, 3, 4, 1],
  recordsPerSegment: 6000,
  unlabelledFraction: 0.1,
  seed: 1,
};

export const DEMO_TOPIC = 'demo';

export function demoRecordCount(config: DemoStreamConfig): number {
  return config.segments.length * config.recordsPerSegment;
}

export function* demoStream(config: DemoStreamConfig): Generator<RawRecord> {
  const distinct = Math.max(...config.segments) + 1;
  const tasks = makeTasks('permuted', loadDataset('mnist'), distinct, config.seed);
  const dim = 784;
  const image = new Float32Array(dim);
  const labelStream = new RandomStream(config.seed, 'probe', 4242);
  let offset = 0;
  for (let s = 0; s < config.segments.length; s++) {
    const truth = config.segments[s] as number;
    const task = tasks[truth];
    if (task === undefined) throw new Error(`no task ${truth}`);
    const order = new RandomStream(config.seed, 'batchOrder', 1000 + s).permutation(task.train.count);
    for (let i = 0; i < config.recordsPerSegment; i++) {
      const index = order[i % order.length] as number;
      task.train.copyImage(index, image, 0);
      const value = Buffer.alloc(dim * 4);
      for (let j = 0; j < dim; j++) value.writeFloatLE(image[j] as number, j * 4);
      const labelled = labelStream.nextFloat() >= config.unlabelledFraction;
      const headers: Record<string, string> = {
        'content-type': 'application/x-float32',
        'x-true-task': String(truth),
        'x-true-class': String(task.train.label(index)),
        id: `demo-${offset}`,
      };
      if (labelled) headers.y = String(task.train.label(index));
      yield {
        position: { topic: DEMO_TOPIC, partition: 0, offset: String(offset) },
        key: null,
        value,
        headers,
        timestamp: Date.now(),
      };
      offset++;
    }
  }
}
