import { parentPort, workerData } from 'node:worker_threads';
import {
  type DotKernels,
  dotKernels,
  forwardRows,
  type Gemm,
  gemmKernel,
  type WasmMemory,
} from '../kernels/index.js';
import type { DotShare, ForgetMemory, ForwardShare, PostedMemory } from './dot-pool.js';
import { dotChunks } from './table-dot.js';

/** A DotPool helper: runs its share of each posted job, then stores the job number and wakes the caller. */
const control = (workerData as { control: Int32Array }).control;

/** A memory this helper holds, with the kernels instantiated on it so far (tens of µs each). */
interface HeldMemory {
  readonly memory: WasmMemory;
  gemm?: Gemm;
  dot?: DotKernels;
}

const held = new Map<number, HeldMemory>();

/** The memory of a job: the posted one (new, or grown since), else the one held under its number. */
function memoryOf(posted: PostedMemory): HeldMemory {
  if (posted.memory !== undefined) {
    const entry: HeldMemory = { memory: posted.memory };
    held.set(posted.id, entry);
    return entry;
  }
  const entry = held.get(posted.id);
  if (entry === undefined) throw new Error(`memory ${posted.id} was never posted to this helper`);
  return entry;
}

parentPort?.on('message', (share: DotShare | ForwardShare | ForgetMemory) => {
  if (share.kind === 'forget') {
    held.delete(share.id);
    return;
  }
  try {
    const entry = memoryOf(share.memory);
    if (share.kind === 'forward') {
      entry.gemm ??= gemmKernel(entry.memory);
      forwardRows(entry.gemm, share.job, share.rowFrom, share.rowTo);
    } else {
      entry.dot ??= dotKernels(entry.memory);
      dotChunks(entry.dot, entry.memory.buffer, share.job, share.chunkFrom, share.chunkTo, share.thread);
    }
  } catch {
    Atomics.store(control, 2, 1);
  }
  Atomics.store(control, 0, share.seq);
  Atomics.notify(control, 0);
});

Atomics.store(control, 1, 1);
Atomics.notify(control, 1);
