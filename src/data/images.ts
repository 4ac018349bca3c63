/**
 * The shapes the data layer hands to training and evaluation: whole data sets (`ImageSet`, `Dataset`)
 * and per-task views on them (`TaskImages`, `TaskView`) that never copy the underlying pixels.
 */

/** n images of `dim` float32 pixels, already normalised, plus uint8 labels. */
export interface ImageSet {
  readonly pixels: Float32Array;
  readonly labels: Uint8Array;
  readonly count: number;
  readonly dim: number;
}

export type DatasetName = 'mnist' | 'fashion';

export interface Dataset {
  readonly name: DatasetName;
  readonly train: ImageSet;
  readonly test: ImageSet;
  readonly classes: number;
  readonly side: 28;
  /** normalised value of a black pixel (used as rotation fill) */
  readonly background: number;
}

/** One split (train or test) of one task: images are produced on demand from the shared data set. */
export interface TaskImages {
  readonly count: number;
  readonly dim: number;
  label(i: number): number;
  /** writes image i (after the task's transform) into out[offset .. offset+dim) */
  copyImage(i: number, out: Float32Array, offset: number): void;
}

export interface TaskView {
  readonly id: number;
  readonly name: string;
  readonly train: TaskImages;
  readonly test: TaskImages;
}
