/**
 * A micro-batch as the rules see it: the rows after the input transform, the raw rows (the task
 * input models live in that space) with their column prefix sums, and the labels.
 */
import type { InputRecord } from '../records.js';
import { columnPrefixSums } from './input-model.js';
import type { InputTransform } from './input-transform.js';

/** One micro-batch's rows after the input transform, and its labels (−1: none). */
export interface BatchRows {
  readonly x: Float32Array;
  readonly labels: Int32Array;
  readonly rows: number;
  readonly labelled: number;
  /** The rows before the input transform (task input models live in this space). */
  readonly raw: Float32Array;
  /** Column prefix sums of the raw rows (input-model.ts). */
  readonly prefix: Float64Array;
  /** The input transform's per-feature factors. */
  readonly scale: Float32Array;
}

/** The records' feature vectors, transformed (the fit fed first when learning), and their labels. */
export function batchRowsOf(
  records: readonly InputRecord[],
  transform: InputTransform,
  learn: boolean,
  dim: number,
): BatchRows {
  const rows = records.length;
  const x = new Float32Array(rows * dim);
  const labels = new Int32Array(rows);
  let labelled = 0;
  records.forEach((r, i) => {
    x.set(r.x, i * dim);
    labels[i] = r.y ?? -1;
    if (r.y !== undefined) labelled++;
  });
  if (learn) transform.observe(x, rows);
  const raw = Float32Array.from(x);
  transform.apply(x, rows);
  const prefix = columnPrefixSums(raw, rows, dim);
  return { x, raw, labels, rows, labelled, prefix, scale: transform.scales };
}

/** The rows of one group of a batch: the batch itself when the group is all of it, else gathered copies. */
export function groupRows(batch: BatchRows, rows: readonly number[], dim: number): BatchRows {
  if (rows.length === batch.rows) return batch;
  const n = rows.length;
  const x = new Float32Array(n * dim);
  const raw = new Float32Array(n * dim);
  const labels = new Int32Array(n);
  let labelled = 0;
  rows.forEach((r, i) => {
    x.set(batch.x.subarray(r * dim, (r + 1) * dim), i * dim);
    raw.set(batch.raw.subarray(r * dim, (r + 1) * dim), i * dim);
    labels[i] = batch.labels[r] as number;
    if ((labels[i] as number) >= 0) labelled++;
  });
  return { x, raw, labels, rows: n, labelled, prefix: columnPrefixSums(raw, n, dim), scale: batch.scale };
}

/** The labelled rows of a batch, copied (the replay buffer keeps them). */
export function labelledBatch(rows: BatchRows, dim: number) {
  const x = new Float32Array(rows.labelled * dim);
  const y = new Int32Array(rows.labelled);
  let k = 0;
  for (let i = 0; i < rows.rows; i++) {
    const label = rows.labels[i] as number;
    if (label < 0) continue;
    x.set(rows.x.subarray(i * dim, (i + 1) * dim), k * dim);
    y[k] = label;
    k++;
  }
  return { x, y, rows: rows.labelled };
}
