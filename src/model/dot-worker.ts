import { parentPort, workerData } from 'node:worker_threads';
import { dotKernels } from './dot-kernel.js';
import type { DotShare, ForwardShare } from './dot-pool.js';
import { gemmKernel } from './gemm-kernel.js';
import { forwardRows } from './host-forward.js';
import { dotChunks } from './table-dot.js';

/** A DotPool helper: runs its share of each posted job, then stores the job number and wakes the caller. */
const control = (workerData as { control: Int32Array }).control;

parentPort?.on('message', (share: DotShare | ForwardShare) => {
  try {
    // A posted memory arrives as a new object each time: kernels are instantiated per job (tens of µs).
    if (share.kind === 'forward') {
      forwardRows(gemmKernel(share.memory), share.job, share.rowFrom, share.rowTo);
    } else {
      const kernels = dotKernels(share.memory);
      dotChunks(kernels, share.memory.buffer, share.job, share.chunkFrom, share.chunkTo, share.thread);
    }
  } catch {
    Atomics.store(control, 2, 1);
  }
  Atomics.store(control, 0, share.seq);
  Atomics.notify(control, 0);
});

Atomics.store(control, 1, 1);
Atomics.notify(control, 1);
