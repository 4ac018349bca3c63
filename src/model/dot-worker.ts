import { parentPort, workerData } from 'node:worker_threads';
import { dotKernels } from './dot-kernel.js';
import { type TableDotJob, tableDotChunks } from './table-dot.js';
import type { WasmMemory } from './wasm-asm.js';

/** A DotPool helper: runs its share of each posted job, then stores the job number and wakes the caller. */
interface Share {
  readonly seq: number;
  readonly memory: WasmMemory;
  readonly job: TableDotJob;
  readonly chunkFrom: number;
  readonly chunkTo: number;
  readonly thread: number;
}

const control = (workerData as { control: Int32Array }).control;

parentPort?.on('message', (share: Share) => {
  try {
    // A posted memory arrives as a new object each time: the kernel is instantiated per job (tens of µs).
    const kernels = dotKernels(share.memory);
    tableDotChunks(kernels, share.memory.buffer, share.job, share.chunkFrom, share.chunkTo, share.thread);
  } catch {
    Atomics.store(control, 2, 1);
  }
  Atomics.store(control, 0, share.seq);
  Atomics.notify(control, 0);
});

Atomics.store(control, 1, 1);
Atomics.notify(control, 1);
