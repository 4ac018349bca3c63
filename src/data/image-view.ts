/**
 * `TaskImages` over a shared `ImageSet`: an optional list of sample indices (a subset, for split
 * tasks) and an optional per-pixel source map (a permutation or rotation; −1 = fill). Nothing is
 * copied until `copyImage`, which is on the training hot path: a typed-array `set` without a map;
 * with one, the source image is first staged in a small buffer (one sequential read of a probably
 * uncached image, instead of a cache miss per scattered read) whose extra last slot holds the fill,
 * then gathered branch-free through an Int32Array.
 */
import { SupsupError } from '../errors.js';
import type { ImageSet, TaskImages } from './images.js';

export class ImageView implements TaskImages {
  readonly count: number;
  readonly dim: number;
  private readonly pixels: Float32Array;
  private readonly labels: Uint8Array;
  private readonly samples: Int32Array | null;
  /** the pixel map with −1 replaced by `dim`, the staging slot that holds the fill */
  private readonly gatherMap: Int32Array | null;
  /** dim + 1 floats: the staged image, then the fill value */
  private readonly staging: Float32Array;

  /**
   * @param samples the set's sample index behind each view index (null: all samples, in order)
   * @param pixelMap out[j] = in[pixelMap[j]], or `fill` where pixelMap[j] < 0 (null: identity)
   */
  constructor(set: ImageSet, samples: Int32Array | null, pixelMap: Int32Array | null, fill: number) {
    const dim = set.dim;
    if (pixelMap !== null && (pixelMap.length !== dim || pixelMap.some((source) => source >= dim))) {
      throw new SupsupError(
        'E_BAD_ARGUMENT',
        `pixel map of ${pixelMap.length} entries does not fit ${dim} pixels`,
      );
    }
    this.pixels = set.pixels;
    this.labels = set.labels;
    this.dim = dim;
    this.count = samples === null ? set.count : samples.length;
    this.samples = samples;
    this.gatherMap = pixelMap === null ? null : pixelMap.map((source) => (source < 0 ? dim : source));
    this.staging = new Float32Array(pixelMap === null ? 0 : dim + 1);
    if (pixelMap !== null) this.staging[dim] = fill;
  }

  label(i: number): number {
    return this.labels[this.sampleOf(i)];
  }

  copyImage(i: number, out: Float32Array, offset: number): void {
    const dim = this.dim;
    if ((offset | 0) !== offset || offset < 0 || offset + dim > out.length) {
      throw new SupsupError(
        'E_BAD_ARGUMENT',
        `cannot write ${dim} pixels at offset ${offset} of ${out.length}`,
      );
    }
    const base = this.sampleOf(i) * dim;
    const source = this.pixels.subarray(base, base + dim);
    const map = this.gatherMap;
    if (map === null) {
      out.set(source, offset);
      return;
    }
    const staged = this.staging;
    staged.set(source);
    for (let j = 0; j < dim; j++) out[offset + j] = staged[map[j]];
  }

  private sampleOf(i: number): number {
    if ((i | 0) !== i || i < 0 || i >= this.count) {
      throw new SupsupError('E_BAD_ARGUMENT', `image index ${i} is outside [0, ${this.count})`);
    }
    return this.samples === null ? i : this.samples[i];
  }
}
