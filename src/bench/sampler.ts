import type { TaskImages } from '../data/tasks.js';
import { RandomStream } from '../model/network/index.js';
import type { LabelledBatch } from '../model/training/index.js';

/**
 * Batches of a task's images in a seeded random order, reshuffled every epoch (as a shuffling
 * DataLoader). Only full batches are produced: the tail of an epoch that cannot fill one is
 * dropped. Reuses its buffers: a returned batch is valid until the next call.
 */
export class BatchSampler {
  private readonly images: TaskImages;
  private readonly batchSize: number;
  private readonly stream: RandomStream;
  private order: Int32Array;
  private cursor: number;
  private readonly x: Float32Array;
  private readonly y: Int32Array;

  constructor(images: TaskImages, batchSize: number, seed: number, streamIndex: number) {
    if (images.count < batchSize) {
      throw new RangeError(`a task has ${images.count} images, fewer than the batch size ${batchSize}`);
    }
    this.images = images;
    this.batchSize = batchSize;
    this.stream = new RandomStream(seed, 'batchOrder', streamIndex);
    this.order = this.stream.permutation(images.count);
    this.cursor = 0;
    this.x = new Float32Array(batchSize * images.dim);
    this.y = new Int32Array(batchSize);
  }

  next(): LabelledBatch {
    if (this.cursor + this.batchSize > this.order.length) {
      this.order = this.stream.permutation(this.images.count);
      this.cursor = 0;
    }
    const dim = this.images.dim;
    for (let r = 0; r < this.batchSize; r++) {
      const index = this.order[this.cursor + r] as number;
      this.images.copyImage(index, this.x, r * dim);
      this.y[r] = this.images.label(index);
    }
    this.cursor += this.batchSize;
    return { x: this.x, y: this.y, rows: this.batchSize };
  }
}

/**
 * The evaluation batches of a task's test set in a seeded order (the first `limit` images of it);
 * the last batch may be short.
 */
export function* evaluationBatches(
  images: TaskImages,
  batchSize: number,
  seed: number,
  streamIndex: number,
  limit = images.count,
): Generator<LabelledBatch> {
  const order = new RandomStream(seed, 'evalOrder', streamIndex).permutation(images.count);
  const count = Math.min(limit, order.length);
  const dim = images.dim;
  for (let start = 0; start < count; start += batchSize) {
    const rows = Math.min(batchSize, count - start);
    const x = new Float32Array(rows * dim);
    const y = new Int32Array(rows);
    for (let r = 0; r < rows; r++) {
      const index = order[start + r] as number;
      images.copyImage(index, x, r * dim);
      y[r] = images.label(index);
    }
    yield { x, y, rows };
  }
}
