import { parentPort, workerData } from 'node:worker_threads';
import { tableDotChunks } from './table-dot.js';

/** A DotPool helper: runs its share of each posted job, then stores the job number and wakes the caller. */
interface Job {
  readonly seq: number;
  readonly blocks: readonly Uint32Array[];
  readonly fills: Int32Array;
  readonly values: Float64Array;
  readonly partials: Float64Array;
  readonly blockSize: number;
  readonly chunkFrom: number;
  readonly chunkTo: number;
}

const control = (workerData as { control: Int32Array }).control;
const tables = new Float64Array(4 * 256);

parentPort?.on('message', (job: Job) => {
  try {
    tableDotChunks(
      job.blocks,
      job.fills,
      job.values,
      tables,
      job.partials,
      job.blockSize,
      job.chunkFrom,
      job.chunkTo,
    );
  } catch {
    Atomics.store(control, 2, 1);
  }
  Atomics.store(control, 0, job.seq);
  Atomics.notify(control, 0);
});

Atomics.store(control, 1, 1);
Atomics.notify(control, 1);
