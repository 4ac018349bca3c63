import type { MaskLayout } from './mask-layout.js';
import { SimdArena } from './simd-kernels.js';

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

  constructor(layout: MaskLayout, weights: readonly Float32Array[]) {
    this.layout = layout;
    this.arena = SimdArena.create([layout.totalBits, ...layout.sizes, ...layout.sizes]);
    if (this.arena === null) {
      this.values = new Float32Array(layout.totalBits);
      this.weights = weights;
      this.staged = [];
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
