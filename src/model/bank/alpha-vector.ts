import { SimdArena } from '../kernels/index.js';
import type { MaskLayout } from './mask-layout.js';

/**
 * The vector of task inference, V = ∂Obj/∂W̃ ⊙ W, laid out like a packed mask (layer l's weights
 * from layout.bitOffsets[l], padding bits zero). Each product is one correctly rounded float32
 * multiplication, as tf.mul would give. With WebAssembly SIMD the gradient is copied next to a
 * copy of W and multiplied four lanes at a time (0.1 ms instead of about 1 ms in JavaScript for
 * lenet-300-100-500); without it, a JavaScript loop.
 */
export class AlphaVector {
  /** V, one float32 per mask bit. */
  readonly values: Float32Array;
  private readonly layout: MaskLayout;
  private readonly weights: readonly Float32Array[];
  private readonly arena: SimdArena | null;
  /** Per layer, where the gradient is staged in the arena (zero past the layer's size). */
  private readonly staged: readonly Float32Array[];
  /** Where setRankOne stages its two factors: the widest fanIn and fanOut. */
  private readonly rows: Float32Array;
  private readonly columns: Float32Array;

  constructor(layout: MaskLayout, weights: readonly Float32Array[]) {
    this.layout = layout;
    const widest = (side: 0 | 1): number => Math.max(...layout.shapes.map((shape) => shape[side]));
    const factors = [widest(0), widest(1)];
    this.arena = SimdArena.create([layout.totalBits, ...layout.sizes, ...layout.sizes, ...factors]);
    if (this.arena === null) {
      this.values = new Float32Array(layout.totalBits);
      this.weights = weights;
      this.staged = [];
      [this.rows, this.columns] = factors.map((n) => new Float32Array(n)) as [Float32Array, Float32Array];
      return;
    }
    const arena = this.arena;
    this.values = arena.allocate(layout.totalBits);
    this.weights = weights.map((w) => {
      const copy = arena.allocate(w.length);
      copy.set(w);
      return copy;
    });
    this.staged = layout.sizes.map((size) => arena.allocate(size));
    [this.rows, this.columns] = factors.map((n) => arena.allocate(n)) as [Float32Array, Float32Array];
  }

  /**
   * V for layer l of one input row, from the layer's input a (fanIn values) and the gradient d of
   * its outputs (fanOut): V = (aᵀ·d) ⊙ W without forming aᵀ·d. Each entry is rounded as the
   * matMul-then-tf.mul path rounds it, ((a[i]·d[j]) + 0)·W[i, j] (a sum that starts at +0), so V
   * is bit for bit setLayer's.
   */
  setRankOne(l: number, a: Float32Array, d: Float32Array): void {
    const [fanIn, fanOut] = this.layout.shapes[l] as readonly [number, number];
    if (a.length !== fanIn || d.length !== fanOut) {
      throw new RangeError(`AlphaVector.setRankOne: layer ${l} takes ${fanIn} and ${fanOut} values`);
    }
    const offset = this.layout.bitOffsets[l] as number;
    const w = this.weights[l] as Float32Array;
    const out = this.values.subarray(offset, offset + w.length);
    if (this.arena === null) {
      for (let i = 0; i < fanIn; i++) {
        const ai = a[i] as number;
        for (let j = 0, p = i * fanOut; j < fanOut; j++, p++)
          out[p] = (Math.fround(ai * (d[j] as number)) + 0) * (w[p] as number);
      }
      return;
    }
    const rows = this.rows.subarray(0, fanIn);
    const columns = this.columns.subarray(0, fanOut);
    rows.set(a);
    columns.set(d);
    this.arena.rankOne(out, rows, columns, w);
  }

  /** V for layer l from that layer's gradient ∂Obj/∂W̃_l (fanIn·fanOut values, row-major). */
  setLayer(l: number, gradient: Float32Array): void {
    const offset = this.layout.bitOffsets[l] as number;
    const w = this.weights[l] as Float32Array;
    if (this.arena === null) {
      const out = this.values;
      for (let i = 0; i < gradient.length; i++) out[offset + i] = (gradient[i] as number) * (w[i] as number);
      return;
    }
    const staged = this.staged[l] as Float32Array;
    staged.set(gradient);
    // Bit offsets are multiples of 32, so the layer's view is 16-byte aligned and the lanes past
    // its size land in the layer's padding bits, which stay zero.
    this.arena.multiply(this.values.subarray(offset, offset + w.length), staged, w);
  }
}
