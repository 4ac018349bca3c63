/**
 * The discovery suite: every kind of shift, on both data sets and on tabular features, raw and
 * standardised, abrupt and gradual, short and long segments, returning tasks, 100 %, 50 % and 10 %
 * labels, and stationary streams for the false-allocation rate. Each entry runs under several seeds.
 */
import type { StreamSpec } from './streams.js';

type Entry = Omit<StreamSpec, 'seed' | 'name'> & { readonly id: string };

const image = {
  raw: true,
  gradual: 0,
  labelled: 1,
  tail: 300,
  rotationStep: 0,
  features: 0,
  classes: 0,
} as const;

const tabular = { ...image, kind: 'tabular', dataset: 'mnist' } as const;

export const SUITE: readonly Entry[] = [
  {
    ...image,
    id: 'permuted-fashion-raw',
    kind: 'permuted',
    dataset: 'fashion',
    schedule: [0, 1, 2, 3, 1],
    segment: 2000,
  },
  {
    ...image,
    id: 'permuted-mnist-std-50%',
    kind: 'permuted',
    dataset: 'mnist',
    raw: false,
    labelled: 0.5,
    schedule: [0, 1, 2, 1],
    segment: 2500,
  },
  {
    ...image,
    id: 'permuted-fashion-short',
    kind: 'permuted',
    dataset: 'fashion',
    schedule: [0, 1, 2, 3, 4, 5, 2],
    segment: 500,
  },
  {
    ...image,
    id: 'permuted-mnist-gradual',
    kind: 'permuted',
    dataset: 'mnist',
    gradual: 400,
    schedule: [0, 1, 2, 0],
    segment: 2500,
  },
  {
    ...image,
    id: 'rotated-mnist-15deg-raw',
    kind: 'rotated',
    dataset: 'mnist',
    rotationStep: 15,
    schedule: [0, 1, 2, 3, 0],
    segment: 2000,
  },
  {
    ...image,
    id: 'rotated-mnist-60deg-std',
    kind: 'rotated',
    dataset: 'mnist',
    raw: false,
    rotationStep: 60,
    schedule: [0, 1, 2, 1],
    segment: 2500,
  },
  {
    ...image,
    id: 'rotated-fashion-30deg-10%',
    kind: 'rotated',
    dataset: 'fashion',
    rotationStep: 30,
    labelled: 0.1,
    schedule: [0, 1, 2],
    segment: 3000,
  },
  {
    ...image,
    id: 'rotated-mnist-long',
    kind: 'rotated',
    dataset: 'mnist',
    rotationStep: 45,
    schedule: [0, 1, 0],
    segment: 8000,
  },
  {
    ...image,
    id: 'split-mnist-shared-raw',
    kind: 'split-shared',
    dataset: 'mnist',
    schedule: [0, 1, 2, 3, 4, 1],
    segment: 1500,
  },
  {
    ...image,
    id: 'split-fashion-shared-std-50%',
    kind: 'split-shared',
    dataset: 'fashion',
    raw: false,
    labelled: 0.5,
    schedule: [0, 1, 2, 3, 4],
    segment: 1500,
  },
  {
    ...image,
    id: 'split-mnist-pertask',
    kind: 'split-task',
    dataset: 'mnist',
    schedule: [0, 1, 2, 3, 4, 0],
    segment: 1500,
  },
  {
    ...image,
    id: 'split-mnist-gradual',
    kind: 'split-shared',
    dataset: 'mnist',
    gradual: 300,
    schedule: [0, 1, 2, 3],
    segment: 2000,
  },
  {
    ...tabular,
    id: 'tabular-64f-5c-raw-50%',
    features: 64,
    classes: 5,
    labelled: 0.5,
    schedule: [0, 1, 2, 0],
    segment: 3000,
  },
  {
    ...tabular,
    id: 'tabular-16f-3c-std',
    raw: false,
    features: 16,
    classes: 3,
    schedule: [0, 1, 2, 3, 1],
    segment: 2000,
  },
  {
    ...tabular,
    id: 'tabular-128f-6c-raw-10%',
    features: 128,
    classes: 6,
    labelled: 0.1,
    schedule: [0, 1, 2],
    segment: 4000,
  },
  {
    ...tabular,
    id: 'tabular-32f-4c-gradual',
    features: 32,
    classes: 4,
    gradual: 400,
    schedule: [0, 1, 2, 1],
    segment: 2500,
  },
  { ...image, id: 'stationary-mnist-raw', kind: 'permuted', dataset: 'mnist', schedule: [0], segment: 15000 },
  { ...tabular, id: 'stationary-tabular-raw', features: 48, classes: 4, schedule: [0], segment: 15000 },
];

export const SUITE_SEEDS: readonly number[] = [1, 2];

/** Every stream of the suite (entries × seeds), optionally only those whose id contains `filter`. */
export function suiteStreams(options: { seeds?: readonly number[]; filter?: string } = {}): StreamSpec[] {
  const seeds = options.seeds ?? SUITE_SEEDS;
  return SUITE.filter((e) => options.filter === undefined || e.id.includes(options.filter)).flatMap(
    ({ id, ...entry }) => seeds.map((seed) => ({ ...entry, name: `${id}/s${seed}`, seed })),
  );
}
