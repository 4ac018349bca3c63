/**
 * Labelled streams for the discovery benchmark, generated from a seed: a schedule of segments, each
 * drawn from one true task (a task that returns is in the schedule twice), changes abrupt or mixed
 * over a window of records, a fraction of records without labels, and a tail of unlabelled records
 * from every task. The true task of each record is kept beside it for scoring; the daemon never sees it.
 *
 * Shifts: pixel permutations, rotations, class-incremental digit pairs (one shared 10-way head, or
 * labels 0/1 per task), and class-conditional Gaussian regimes on tabular features. Images come as
 * raw [0, 1] pixels or standardised with the data set's pixel statistics; tabular features as
 * standard-scale values or with a per-feature scale (10⁻²…10³) and offset, as raw sensors send them.
 */

import type { Dataset, DatasetName, TaskImages } from '../../data/images.js';
import { loadDataset } from '../../data/index.js';
import { FASHION_STATS, MNIST_STATS } from '../../data/normalise.js';
import { permutedTasks, rotatedTasks, splitTasks } from '../../data/tasks.js';
import { RandomStream } from '../../model/network/prng.js';

export type ShiftKind = 'permuted' | 'rotated' | 'split-shared' | 'split-task' | 'tabular';

export interface StreamSpec {
  readonly name: string;
  readonly kind: ShiftKind;
  /** Image streams: the data set. */
  readonly dataset: DatasetName;
  /** True task of each segment, in order. */
  readonly schedule: readonly number[];
  /** Records per segment. */
  readonly segment: number;
  /** Raw inputs ([0, 1] pixels; mixed-scale tabular features) instead of standardised ones. */
  readonly raw: boolean;
  /** Records over which each change is mixed (0: abrupt). */
  readonly gradual: number;
  /** Fraction of the segments' records that carry a label. */
  readonly labelled: number;
  /** Unlabelled records per distinct task in the tail. */
  readonly tail: number;
  /** Rotated streams: degrees between consecutive tasks. */
  readonly rotationStep: number;
  /** Tabular streams. */
  readonly features: number;
  readonly classes: number;
  readonly seed: number;
}

export interface StreamRecord {
  readonly x: Float32Array;
  /** Absent: unlabelled. */
  readonly y?: number;
  /** The class, labelled or not (for scoring). */
  readonly label: number;
  readonly truth: number;
  /** In the unlabelled tail. */
  readonly tail: boolean;
}

export interface GeneratedStream {
  readonly spec: StreamSpec;
  readonly inputs: number;
  /** Classes a head needs (the daemon's realClasses). */
  readonly classes: number;
  readonly records: readonly StreamRecord[];
  /** Index of the first record of each segment (and of the tail). */
  readonly segmentStarts: readonly number[];
}

/** A task's sampler: the next record of the task (a labelled-stream draw or a held-out one). */
interface TaskSource {
  readonly inputs: number;
  draw(task: number, heldOut: boolean, out: Float32Array): number;
}

export function generateStream(spec: StreamSpec): GeneratedStream {
  const distinct = Math.max(...spec.schedule) + 1;
  const source = spec.kind === 'tabular' ? tabularSource(spec, distinct) : imageSource(spec, distinct);
  const mix = new RandomStream(spec.seed, 'stream', 1);
  const labels = new RandomStream(spec.seed, 'stream', 2);
  const records: StreamRecord[] = [];
  const segmentStarts: number[] = [];
  const total = spec.schedule.length * spec.segment;
  for (let i = 0; i < total; i++) {
    if (i % spec.segment === 0) segmentStarts.push(i);
    const truth = mixedTruth(spec, i, mix);
    const x = new Float32Array(source.inputs);
    const label = source.draw(truth, false, x);
    const labelled = labels.nextFloat() < spec.labelled;
    records.push(labelled ? { x, y: label, label, truth, tail: false } : { x, label, truth, tail: false });
  }
  segmentStarts.push(records.length);
  const order = new RandomStream(spec.seed, 'stream', 3).permutation(distinct);
  for (const truth of order) {
    for (let i = 0; i < spec.tail; i++) {
      const x = new Float32Array(source.inputs);
      const label = source.draw(truth, true, x);
      records.push({ x, label, truth, tail: true });
    }
  }
  const classes = spec.kind === 'tabular' ? spec.classes : spec.kind === 'split-task' ? 2 : 10;
  return { spec, inputs: source.inputs, classes, records, segmentStarts };
}

/**
 * The true task of record i: its segment's, except within gradual/2 records of a change, where the
 * next task's share grows linearly from 0 to 1 across the window (1/2 at the change itself).
 */
function mixedTruth(spec: StreamSpec, i: number, mix: RandomStream): number {
  const s = Math.floor(i / spec.segment);
  const own = spec.schedule[s] as number;
  if (spec.gradual <= 0) return own;
  const half = spec.gradual / 2;
  const toNext = (s + 1) * spec.segment - i;
  if (s + 1 < spec.schedule.length && toNext <= half) {
    const share = (half - toNext) / spec.gradual;
    return mix.nextFloat() < share ? (spec.schedule[s + 1] as number) : own;
  }
  const fromStart = i - s * spec.segment;
  if (s > 0 && fromStart < half) {
    const share = 0.5 + fromStart / spec.gradual;
    return mix.nextFloat() < share ? own : (spec.schedule[s - 1] as number);
  }
  return own;
}

function imageSource(spec: StreamSpec, distinct: number): TaskSource {
  const ds = loadDataset(spec.dataset);
  const tasks = imageTasks(spec, ds, distinct);
  const stats = spec.dataset === 'mnist' ? MNIST_STATS : FASHION_STATS;
  const cursors = tasks.map((task, t) => ({
    train: { order: new RandomStream(spec.seed, 'stream', 100 + t).permutation(task.train.count), next: 0 },
    test: { order: new RandomStream(spec.seed, 'stream', 200 + t).permutation(task.test.count), next: 0 },
  }));
  return {
    inputs: ds.train.dim,
    draw(task, heldOut, out) {
      const images = tasks[task] as { train: TaskImages; test: TaskImages };
      const set = heldOut ? images.test : images.train;
      const cursor = (cursors[task] as (typeof cursors)[number])[heldOut ? 'test' : 'train'];
      const index = cursor.order[cursor.next % cursor.order.length] as number;
      cursor.next++;
      set.copyImage(index, out, 0);
      // The data layer standardises with the data set's statistics; raw streams undo it.
      for (let j = 0; j < out.length; j++) {
        const unit = spec.raw ? (out[j] as number) * stats.std + stats.mean : (out[j] as number);
        out[j] = spec.raw ? Math.round(Math.min(1, Math.max(0, unit)) * 255) / 255 : round4(unit);
      }
      const label = set.label(index);
      return spec.kind === 'split-task' ? label - 2 * task : label;
    },
  };
}

function imageTasks(spec: StreamSpec, ds: Dataset, distinct: number) {
  switch (spec.kind) {
    case 'permuted':
      return permutedTasks(ds, distinct, spec.seed);
    case 'rotated':
      return rotatedTasks(ds, distinct, spec.rotationStep);
    default:
      return splitTasks(ds, distinct);
  }
}

/**
 * Class-conditional Gaussian regimes: in regime r, class c has its own mean (per feature
 * N(0, sep²), sep = 2/√features, so class means are about 2.8 noise units apart) and the regime has
 * its own per-feature noise scale in [0.5, 1.5]. Raw streams scale feature j by 10^u, u uniform in
 * [−2, 3], and offset it by that scale times N(0, 5²).
 */
function tabularSource(spec: StreamSpec, regimes: number): TaskSource {
  const f = spec.features;
  const gen = new RandomStream(spec.seed, 'stream', 4);
  const sep = 2 / Math.sqrt(f);
  const means = Array.from({ length: regimes }, () =>
    Array.from({ length: spec.classes }, () => Float32Array.from({ length: f }, () => sep * gaussian(gen))),
  );
  const noise = Array.from({ length: regimes }, () =>
    Float32Array.from({ length: f }, () => 0.5 + gen.nextFloat()),
  );
  const scale = Float64Array.from({ length: f }, () => 10 ** (-2 + 5 * gen.nextFloat()));
  const offset = Float64Array.from(scale, (a) => a * 5 * gaussian(gen));
  const draws = [new RandomStream(spec.seed, 'stream', 5), new RandomStream(spec.seed, 'stream', 6)];
  return {
    inputs: f,
    draw(task, heldOut, out) {
      const rng = draws[heldOut ? 1 : 0] as RandomStream;
      const label = rng.nextInt(spec.classes);
      const mean = (means[task] as Float32Array[])[label] as Float32Array;
      const sd = noise[task] as Float32Array;
      for (let j = 0; j < f; j++) {
        const value = (mean[j] as number) + (sd[j] as number) * gaussian(rng);
        out[j] = spec.raw
          ? Number(((scale[j] as number) * value + (offset[j] as number)).toPrecision(6))
          : round4(value);
      }
      return label;
    },
  };
}

/** Standard normal by Box-Muller from two uniforms. */
function gaussian(rng: RandomStream): number {
  const u = 1 - rng.nextFloat();
  const v = rng.nextFloat();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

const round4 = (v: number): number => Math.round(v * 1e4) / 1e4;
