/**
 * The three SupSup benchmark task families, as views on one data set (no task copies images):
 * - permuted: task i applies the fixed pixel permutation of RandomStream(seed + i, 'permutation', 0)
 *   to every image (task 0 too), out[j] = in[perm[j]];
 * - rotated: task i rotates every image by i·step degrees counter-clockwise (PIL semantics, see
 *   rotation.ts), filling with the data set's background;
 * - split: task i keeps the images of classes 2i and 2i+1, labels unchanged.
 */
import { SupsupError } from '../errors.js';
import { RandomStream } from '../model/network/index.js';
import { ImageView } from './image-view.js';
import type { Dataset, ImageSet, TaskView } from './images.js';
import { normaliseDegrees, rotationSourceMap } from './rotation.js';

export type { TaskImages, TaskView } from './images.js';

export type TaskKind = 'permuted' | 'rotated' | 'split';
export const TASK_KINDS: readonly TaskKind[] = ['permuted', 'rotated', 'split'];

const MAX_SEED = 0xffffffff;

function checkTaskCount(kind: TaskKind, n: number, max = Number.MAX_SAFE_INTEGER): void {
  if (!Number.isInteger(n) || n < 1 || n > max) {
    throw new SupsupError(
      'E_BAD_ARGUMENT',
      `${kind} tasks: the number of tasks must be an integer in [1, ${max}], got ${n}`,
      {
        details: { kind, n, max },
      },
    );
  }
}

function checkDim(ds: Dataset): void {
  const dim = ds.side * ds.side;
  if (ds.train.dim !== dim || ds.test.dim !== dim) {
    throw new SupsupError(
      'E_BAD_ARGUMENT',
      `${ds.name}: images of ${ds.train.dim}/${ds.test.dim} pixels are not ${ds.side}×${ds.side}`,
    );
  }
}

function wholeSetTask(ds: Dataset, id: number, name: string, pixelMap: Int32Array | null): TaskView {
  return {
    id,
    name,
    train: new ImageView(ds.train, null, pixelMap, ds.background),
    test: new ImageView(ds.test, null, pixelMap, ds.background),
  };
}

/** The pixel permutation of permuted task `index`: RandomStream(seed + index, 'permutation', 0).permutation(dim). */
export function taskPermutation(seed: number, index: number, dim: number): Int32Array {
  return new RandomStream(seed + index, 'permutation', 0).permutation(dim);
}

export function permutedTasks(ds: Dataset, n: number, seed: number): TaskView[] {
  checkTaskCount('permuted', n);
  if (!Number.isInteger(seed) || seed < 0 || seed + n - 1 > MAX_SEED) {
    throw new SupsupError(
      'E_BAD_ARGUMENT',
      `permuted tasks: seed must be an integer with seed + ${n - 1} < 2^32, got ${seed}`,
      {
        details: { seed, n },
      },
    );
  }
  checkDim(ds);
  const tasks: TaskView[] = [];
  for (let i = 0; i < n; i++) {
    tasks.push(wholeSetTask(ds, i, `permuted-${i}`, taskPermutation(seed, i, ds.train.dim)));
  }
  return tasks;
}

export function rotatedTasks(ds: Dataset, n: number, stepDegrees = 10): TaskView[] {
  checkTaskCount('rotated', n);
  if (!Number.isFinite(stepDegrees)) {
    throw new SupsupError(
      'E_BAD_ARGUMENT',
      `rotated tasks: step must be a finite number of degrees, got ${stepDegrees}`,
    );
  }
  checkDim(ds);
  const tasks: TaskView[] = [];
  for (let i = 0; i < n; i++) {
    const degrees = i * stepDegrees;
    const map = normaliseDegrees(degrees) === 0 ? null : rotationSourceMap(ds.side, degrees);
    tasks.push(wholeSetTask(ds, i, `rotated-${degrees}deg`, map));
  }
  return tasks;
}

/** Indices of the samples whose label is in `classes`, in data-set order. */
function samplesOfClasses(set: ImageSet, classes: readonly number[]): Int32Array {
  const indices: number[] = [];
  for (let k = 0; k < set.count; k++) if (classes.includes(set.labels[k])) indices.push(k);
  return Int32Array.from(indices);
}

export function splitTasks(ds: Dataset, n: number): TaskView[] {
  checkTaskCount('split', n, Math.floor(ds.classes / 2));
  const tasks: TaskView[] = [];
  for (let i = 0; i < n; i++) {
    const classes = [2 * i, 2 * i + 1];
    tasks.push({
      id: i,
      name: `split-${classes[0]}-${classes[1]}`,
      train: new ImageView(ds.train, samplesOfClasses(ds.train, classes), null, ds.background),
      test: new ImageView(ds.test, samplesOfClasses(ds.test, classes), null, ds.background),
    });
  }
  return tasks;
}

/** n tasks of `kind` on `ds`; `seed` is used by permuted tasks only. */
export function makeTasks(kind: TaskKind, ds: Dataset, n: number, seed: number): TaskView[] {
  switch (kind) {
    case 'permuted':
      return permutedTasks(ds, n, seed);
    case 'rotated':
      return rotatedTasks(ds, n);
    case 'split':
      return splitTasks(ds, n);
    default:
      throw new SupsupError(
        'E_BAD_ARGUMENT',
        `unknown task kind ${String(kind)}: expected one of ${TASK_KINDS.join(', ')}`,
      );
  }
}
