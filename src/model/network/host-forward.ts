/**
 * The masked network's forward pass on the host, for classification under one mask: the logits of
 * relu(relu(X·E₁)·E₂)·E₃ (any depth), E_l = W_l ⊙ M_l, with the WebAssembly SIMD product of
 * src/model/kernels/gemm-kernel.ts, rows split over the dot-product pool's threads (src/model/threads/dot-pool.ts).
 *
 * One shared memory holds, from address 0, a block of up to BLOCK_ROWS input rows and each layer's
 * activations for them, then one slot of padded effective weights per cached task (least recently
 * used first out). A layer's outputs are padded to a multiple of 8 columns with zero weights, and
 * the next layer's matching weight rows are zero, so padding never reaches a real output. A row's
 * logits depend only on that row (gemm-kernel.ts): splitting rows over threads changes nothing.
 */

import {
  type ForwardJob,
  forwardRows,
  type Gemm,
  gemmKernel,
  gemmModule,
  PAGE_BYTES,
  WASM32_MAX_PAGES,
  Wasm,
  type WasmMemory,
} from '../kernels/index.js';
import { DotPool } from '../threads/index.js';
import type { Architecture } from './arch.js';

/** Rows computed per block (inputs and activations for this many rows stay in the memory). */
export const BLOCK_ROWS = 256;
/** Below this many multiply-adds a block runs on the calling thread alone. */
const PARALLEL_MIN_MACS = 4_000_000;
const MIN_CALLER_SHARE = 0.25;
const MAX_CALLER_SHARE = 0.85;

const roundUp = (value: number, multiple: number): number => Math.ceil(value / multiple) * multiple;

export class HostForward {
  private readonly arch: Architecture;
  private readonly fanIns: readonly number[];
  private readonly fanOuts: readonly number[];
  /** Padded outputs per layer and input row length per layer (floats). */
  private readonly n: readonly number[];
  private readonly k: readonly number[];
  private readonly slotBytes: number;
  private readonly blockBytes: number;
  /** Byte offset of each layer's activations for a block (after the block's input rows). */
  private readonly activations: readonly number[];
  private readonly capacity: number;
  private readonly memory: WasmMemory;
  private readonly gemm: Gemm;
  private readonly threads: number;
  /** Task → slot index, in least-recently-used-first order. */
  private readonly slots = new Map<number, number>();
  /** Slots allocated in the memory so far, and those of them that forget() released. */
  private slotCount = 0;
  private readonly freeSlots: number[] = [];
  private usedThreads = 1;
  /**
   * The calling thread's share of a split block, in [MIN_CALLER_SHARE, MAX_CALLER_SHARE]: the
   * helpers share the core with other work (the broker, the garbage collector), so the split adapts
   * by 4 rows per block: up when the caller waited for a helper, down when the helpers were first.
   * Rows are independent, so the split never changes a result.
   */
  private callerShare = 0;

  private constructor(arch: Architecture, capacity: number, threads: number) {
    this.arch = arch;
    this.capacity = Math.max(1, capacity);
    this.threads = threads;
    const widths = [arch.inputs, ...arch.hidden, arch.outputs];
    this.fanIns = widths.slice(0, -1);
    this.fanOuts = widths.slice(1);
    this.n = this.fanOuts.map((w) => roundUp(w, 8));
    this.k = this.fanIns.map((w, l) => (l === 0 ? w : (this.n[l - 1] as number)));
    this.slotBytes = this.k.reduce((sum, k, l) => sum + k * (this.n[l] as number) * 4, 0);
    // A block: its input rows, then each layer's activations.
    let offset = BLOCK_ROWS * arch.inputs * 4;
    this.activations = this.n.map((n) => {
      const at = offset;
      offset += BLOCK_ROWS * n * 4;
      return at;
    });
    this.blockBytes = offset;
    const pages = Math.ceil(this.blockBytes / PAGE_BYTES);
    this.memory = new Wasm.Memory({ initial: pages, maximum: WASM32_MAX_PAGES, shared: true });
    this.gemm = gemmKernel(this.memory);
    // Helper threads start in the background now rather than within the first block.
    DotPool.warm(threads);
  }

  /**
   * A forward pass for `arch` caching the weights of up to `capacity` tasks, or null where
   * WebAssembly SIMD or shared memory is unavailable. `threads` defaults to the pool's default.
   */
  static create(
    arch: Architecture,
    capacity: number,
    threads = DotPool.defaultThreads(),
  ): HostForward | null {
    if (gemmModule() === null || typeof SharedArrayBuffer === 'undefined') return null;
    return new HostForward(arch, capacity, threads);
  }

  /** Threads the last block ran on (1 when it was too small to split or the pool is unavailable). */
  get lastThreads(): number {
    return this.usedThreads;
  }

  /** Whether `task`'s weights are cached (they are filled on first use). */
  has(task: number): boolean {
    return this.slots.has(task);
  }

  /** Drops `task`'s cached weights (its mask changed); their slot is reused. */
  forget(task: number): void {
    const slot = this.slots.get(task);
    if (slot === undefined) return;
    this.slots.delete(task);
    this.freeSlots.push(slot);
  }

  /**
   * Logits [rows × outputs] of x under `task`'s mask. `effective` gives the task's effective
   * weights (layer l as fanIn × fanOut row-major) when they are not cached.
   */
  logits(
    x: Float32Array,
    rows: number,
    task: number,
    effective: () => readonly Float32Array[],
  ): Float32Array {
    const { inputs, outputs } = this.arch;
    if (x.length < rows * inputs) throw new RangeError(`HostForward: ${x.length} inputs for ${rows} rows`);
    const slot = this.slotOf(task, effective);
    const out = new Float32Array(rows * outputs);
    const last = this.n.length - 1;
    const padded = this.n[last] as number;
    for (let from = 0; from < rows; from += BLOCK_ROWS) {
      const count = Math.min(BLOCK_ROWS, rows - from);
      this.block(x.subarray(from * inputs, (from + count) * inputs), count, slot);
      const logits = new Float32Array(this.memory.buffer, this.activations[last] as number, count * padded);
      for (let r = 0; r < count; r++) {
        out.set(logits.subarray(r * padded, r * padded + outputs), (from + r) * outputs);
      }
    }
    return out;
  }

  private block(x: Float32Array, rows: number, slot: number): void {
    const { inputs } = this.arch;
    const padded = roundUp(rows, 4);
    const input = new Float32Array(this.memory.buffer, 0, padded * inputs);
    input.set(x);
    input.fill(0, rows * inputs);
    const weights = this.slotOffset(slot);
    let w = weights;
    const job: ForwardJob = {
      x: 0,
      inputs,
      layers: this.n.map((n, l) => {
        const k = this.k[l] as number;
        const layer = { weights: w, out: this.activations[l] as number, k, n };
        w += k * n * 4;
        return layer;
      }),
    };
    const macs = padded * (this.slotBytes / 4);
    const pool = this.threads > 1 && macs >= PARALLEL_MIN_MACS ? DotPool.get(this.threads) : null;
    if (pool !== null) {
      const bounds = this.shareBounds(padded, pool.threads);
      const outcome = pool.runForward(this.memory, job, bounds, (from, to) =>
        forwardRows(this.gemm, job, from, to),
      );
      if (outcome !== 'broken') {
        this.usedThreads = pool.threads;
        const step = 4 / padded;
        const share = this.callerShare + (outcome === 'waited' ? step : -step);
        this.callerShare = Math.min(MAX_CALLER_SHARE, Math.max(MIN_CALLER_SHARE, share));
        return;
      }
    }
    this.usedThreads = 1;
    forwardRows(this.gemm, job, 0, padded);
  }

  /** Row bounds of each thread's share of `rows` (a multiple of 4): the caller first, helpers evenly. */
  private shareBounds(rows: number, threads: number): number[] {
    if (this.callerShare === 0) this.callerShare = 1 / threads;
    const quads = rows / 4;
    const callerQuads = Math.min(quads, Math.round(quads * this.callerShare));
    const bounds = [0, callerQuads * 4];
    for (let t = 1; t < threads; t++) {
      bounds.push((callerQuads + Math.floor(((quads - callerQuads) * t) / (threads - 1))) * 4);
    }
    return bounds;
  }

  private slotOffset(slot: number): number {
    return roundUp(this.blockBytes, 16) + slot * this.slotBytes;
  }

  private slotOf(task: number, effective: () => readonly Float32Array[]): number {
    const cached = this.slots.get(task);
    if (cached !== undefined) {
      this.slots.delete(task);
      this.slots.set(task, cached);
      return cached;
    }
    let slot: number;
    const free = this.freeSlots.pop();
    if (free !== undefined) {
      slot = free;
    } else if (this.slotCount < this.capacity) {
      slot = this.slotCount++;
      const needed = this.slotOffset(slot + 1);
      const have = this.memory.buffer.byteLength;
      if (needed > have) this.memory.grow(Math.ceil((needed - have) / PAGE_BYTES));
    } else {
      const [oldest, freed] = this.slots.entries().next().value as [number, number];
      this.slots.delete(oldest);
      slot = freed;
    }
    this.fill(slot, effective());
    this.slots.set(task, slot);
    return slot;
  }

  /** Writes a task's effective weights into a slot, zero-padded to k × n per layer. */
  private fill(slot: number, layers: readonly Float32Array[]): void {
    let offset = this.slotOffset(slot);
    layers.forEach((layer, l) => {
      const [fanIn, fanOut] = [this.fanIns[l] as number, this.fanOuts[l] as number];
      const [k, n] = [this.k[l] as number, this.n[l] as number];
      if (layer.length !== fanIn * fanOut)
        throw new RangeError(`HostForward: layer ${l} has ${layer.length} weights`);
      const dst = new Float32Array(this.memory.buffer, offset, k * n);
      dst.fill(0);
      for (let i = 0; i < fanIn; i++) dst.set(layer.subarray(i * fanOut, (i + 1) * fanOut), i * n);
      offset += k * n * 4;
    });
  }
}
