import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { DotMemory, ForwardJob, WasmMemory } from '../kernels/index.js';
import { type DotJob, dotChunks, ROW_CHUNKS } from './table-dot.js';

/**
 * A shared memory as posted to a helper: its number, and the memory itself only when the helper
 * does not hold it at its current size yet. Cloning a memory into every message and instantiating
 * kernels on it for every job cost about 0.1 ms per job, against well under a millisecond of work
 * in a LeNet micro-batch's share; a helper keeps each memory and its kernels until told to forget it.
 */
export interface PostedMemory {
  readonly id: number;
  readonly memory?: WasmMemory;
}

/** A helper's share of a dot job (the exact table kernel or the screen): whole row chunks [chunkFrom, chunkTo). */
export interface DotShare {
  readonly kind: 'dot';
  readonly seq: number;
  readonly memory: PostedMemory;
  readonly job: DotJob;
  readonly chunkFrom: number;
  readonly chunkTo: number;
  readonly thread: number;
}

/** A helper's share of a forward pass: rows [rowFrom, rowTo), multiples of 4. */
export interface ForwardShare {
  readonly kind: 'forward';
  readonly seq: number;
  readonly memory: PostedMemory;
  readonly job: ForwardJob;
  readonly rowFrom: number;
  readonly rowTo: number;
}

/** Tells a helper that a memory was collected here: it drops its copy and that copy's kernels. */
export interface ForgetMemory {
  readonly kind: 'forget';
  readonly id: number;
}

const memoryIds = new WeakMap<WasmMemory, number>();
let lastMemoryId = 0;
const collectedMemories = new FinalizationRegistry<number>((id) => DotPool.forgetEverywhere(id));

/** A memory's number, the same for as long as it lives. */
function memoryId(memory: WasmMemory): number {
  let id = memoryIds.get(memory);
  if (id === undefined) {
    id = ++lastMemoryId;
    memoryIds.set(memory, id);
    collectedMemories.register(memory, id);
  }
  return id;
}

/**
 * Splits the table kernel of a dot product over worker threads, synchronously: the caller posts
 * each helper its share (whole row chunks, see ROW_CHUNKS; blocks, vector, tables and partial
 * sums are in the bank's shared WebAssembly memory, posted to a helper once, see PostedMemory),
 * computes the first share itself, then blocks in Atomics.wait until every
 * helper has stored the job number. Results are bit-identical to one thread, since the chunks and
 * the order they are added in do not depend on the thread count.
 *
 * Helpers start lazily (the first large job waits for them, once per process; DotPool.warm starts
 * them ahead) and are unref'd so they never keep the process alive. A helper that fails to start
 * or to answer disables the pool; the caller then computes everything itself.
 */
interface Helper {
  readonly worker: Worker;
  /** [0]: last finished job, [1]: ready flag, [2]: error flag. */
  readonly control: Int32Array;
  /** The memories this helper holds, by number, with the byte length each had when posted. */
  readonly memories: Map<number, number>;
}

const START_TIMEOUT_MS = 20_000;
const JOB_TIMEOUT_MS = 60_000;

export class DotPool {
  private static pools = new Map<number, DotPool | null>();
  /** Helpers started by warm() whose pool get() has not yet waited for. */
  private static spawning = new Map<number, readonly Helper[] | null>();
  private readonly helpers: Helper[];
  private seq = 0;
  private broken = false;

  private constructor(helpers: Helper[]) {
    this.helpers = helpers;
  }

  /** Threads a dot product uses by default: the cores available, at most ROW_CHUNKS. */
  static defaultThreads(): number {
    return Math.max(1, Math.min(ROW_CHUNKS, availableParallelism()));
  }

  /** The process-wide pool with `threads` threads in all (the caller plus threads − 1 helpers). */
  static get(requested: number): DotPool | null {
    const threads = Math.min(requested, ROW_CHUNKS);
    if (threads <= 1) return null;
    if (!DotPool.pools.has(threads)) {
      const helpers = DotPool.spawning.get(threads) ?? spawnHelpers(threads - 1);
      DotPool.spawning.delete(threads);
      DotPool.pools.set(threads, helpers === null ? null : DotPool.whenStarted(helpers));
    }
    const pool = DotPool.pools.get(threads) ?? null;
    return pool !== null && !pool.broken ? pool : null;
  }

  /**
   * Starts the helpers of the `threads` pool now without waiting for them (a thread takes tens of
   * milliseconds to start), so that the first large job does not wait for them; `get` does.
   */
  static warm(requested: number): void {
    const threads = Math.min(requested, ROW_CHUNKS);
    if (threads <= 1 || DotPool.pools.has(threads) || DotPool.spawning.has(threads)) return;
    DotPool.spawning.set(threads, spawnHelpers(threads - 1));
  }

  get threads(): number {
    return this.helpers.length + 1;
  }

  /** Every pool's helpers drop memory `id` (it was collected on this thread). */
  static forgetEverywhere(id: number): void {
    for (const pool of DotPool.pools.values()) {
      for (const helper of pool?.helpers ?? []) {
        if (helper.memories.delete(id))
          helper.worker.postMessage({ kind: 'forget', id } satisfies ForgetMemory);
      }
    }
  }

  /**
   * `memory` for `helper`'s next job: the number alone when the helper already holds it at its
   * current size. After a grow it is posted again, so that the helper never depends on when its own
   * copy learns of the new size.
   */
  private static posted(helper: Helper, memory: WasmMemory): PostedMemory {
    const id = memoryId(memory);
    const bytes = memory.buffer.byteLength;
    if (helper.memories.get(id) === bytes) return { id };
    helper.memories.set(id, bytes);
    return { id, memory };
  }

  /** The pool once every helper said it is ready; null (helpers terminated) if one failed or timed out. */
  private static whenStarted(helpers: readonly Helper[]): DotPool | null {
    for (const helper of helpers) {
      if (Atomics.wait(helper.control, 1, 0, START_TIMEOUT_MS) === 'timed-out' || helper.control[2] !== 0) {
        for (const h of helpers) void h.worker.terminate();
        return null;
      }
    }
    return new DotPool([...helpers]);
  }

  /** Runs dotChunks over every chunk, split by threads; false (no result) if the pool broke. */
  run(dot: DotMemory, job: DotJob): boolean {
    const threads = this.threads;
    const first = (t: number): number => Math.floor((t * ROW_CHUNKS) / threads);
    const seq = ++this.seq;
    this.helpers.forEach((helper, i) => {
      const share: DotShare = {
        kind: 'dot',
        seq,
        memory: DotPool.posted(helper, dot.memory),
        job,
        chunkFrom: first(i + 1),
        chunkTo: first(i + 2),
        thread: i + 1,
      };
      helper.worker.postMessage(share);
    });
    dotChunks(dot.kernels, dot.memory.buffer, job, 0, first(1), 0);
    return this.awaitHelpers(seq);
  }

  /**
   * Runs a forward job split by threads at `bounds` (threads + 1 row indices from 0 to the job's
   * rows, multiples of 4): the caller computes [bounds[0], bounds[1]) with `own`, helper i the next
   * share. 'broken' (no result) if the pool broke; otherwise whether the caller had to wait for a
   * helper after its own share ('waited') or every helper was done first ('helpers-first').
   */
  runForward(
    memory: WasmMemory,
    job: ForwardJob,
    bounds: readonly number[],
    own: (rowFrom: number, rowTo: number) => void,
  ): 'broken' | 'waited' | 'helpers-first' {
    if (bounds.length !== this.threads + 1) throw new RangeError('runForward: one share per thread');
    const seq = ++this.seq;
    this.helpers.forEach((helper, i) => {
      const share: ForwardShare = {
        kind: 'forward',
        seq,
        memory: DotPool.posted(helper, memory),
        job,
        rowFrom: bounds[i + 1] as number,
        rowTo: bounds[i + 2] as number,
      };
      helper.worker.postMessage(share);
    });
    own(bounds[0] as number, bounds[1] as number);
    const helpersFirst = this.helpers.every((helper) => Atomics.load(helper.control, 0) === seq);
    if (!this.awaitHelpers(seq)) return 'broken';
    return helpersFirst ? 'helpers-first' : 'waited';
  }

  /** Blocks until every helper finished job `seq`; false, and the pool disabled, if one failed. */
  private awaitHelpers(seq: number): boolean {
    for (const helper of this.helpers) {
      for (;;) {
        const done = Atomics.load(helper.control, 0);
        if (done === seq) break;
        if (
          helper.control[2] !== 0 ||
          Atomics.wait(helper.control, 0, done, JOB_TIMEOUT_MS) === 'timed-out'
        ) {
          this.shutdown();
          return false;
        }
      }
    }
    return true;
  }

  private shutdown(): void {
    this.broken = true;
    for (const helper of this.helpers) void helper.worker.terminate();
  }
}

/**
 * Starts `count` helper threads, each of which sets its ready flag once it listens for jobs; null
 * (those started terminated) if a thread cannot be created.
 */
function spawnHelpers(count: number): Helper[] | null {
  const helpers: Helper[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const control = new Int32Array(new SharedArrayBuffer(12));
      const worker = startHelper(control);
      worker.unref();
      worker.on('error', () => Atomics.store(control, 2, 1));
      helpers.push({ worker, control, memories: new Map() });
    }
    return helpers;
  } catch {
    for (const helper of helpers) void helper.worker.terminate();
    return null;
  }
}

/**
 * The compiled helper (dist/model/threads/dot-worker.js); when running from TypeScript sources under tsx
 * (tests, development), Node 20 does not apply the parent's loader to a worker's entry module, so
 * a small bootstrap registers tsx in the worker first.
 */
function startHelper(control: Int32Array): Worker {
  if (!import.meta.url.endsWith('.ts')) {
    return new Worker(new URL('./dot-worker.js', import.meta.url), { workerData: { control } });
  }
  const entry = JSON.stringify(new URL('./dot-worker.ts', import.meta.url).href);
  const bootstrap = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${entry}); });`;
  return new Worker(bootstrap, { eval: true, workerData: { control } });
}
