/**
 * Fashion-MNIST (Xiao et al. 2017) from its four gzipped IDX files: 60,000 train and 10,000 test
 * images of 28×28 uint8 pixels in 10 classes. Pixels are scaled to [0, 1] and standardised.
 * The files come from the Debian package dataset-fashion-mnist (/usr/share/datasets/fashion-mnist)
 * or any directory named by the argument or by SUPSUPD_FASHION_DIR.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { SupsupError } from '../errors.js';
import { parseIdxImages, parseIdxLabels } from './idx.js';
import type { Dataset, ImageSet } from './images.js';
import { byteLookupTable, FASHION_STATS } from './normalise.js';

export const DEFAULT_FASHION_DIR = '/usr/share/datasets/fashion-mnist';
export const FASHION_DIR_ENV = 'SUPSUPD_FASHION_DIR';

export const FASHION_FILES = {
  trainImages: 'train-images-idx3-ubyte.gz',
  trainLabels: 'train-labels-idx1-ubyte.gz',
  testImages: 't10k-images-idx3-ubyte.gz',
  testLabels: 't10k-labels-idx1-ubyte.gz',
} as const;

const SIDE = 28;
const CLASSES = 10;

const cache = new Map<string, Dataset>();

/** $SUPSUPD_FASHION_DIR when set and not empty, else the Debian package's directory. */
export function defaultFashionDir(): string {
  const fromEnv = process.env[FASHION_DIR_ENV];
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : DEFAULT_FASHION_DIR;
}

/** Fashion-MNIST from `dir`, normalised. Loaded once per directory per process. */
export function loadFashionMnist(dir: string = defaultFashionDir()): Dataset {
  const key = resolve(dir);
  let dataset = cache.get(key);
  if (dataset === undefined) {
    dataset = readFashion(key);
    cache.set(key, dataset);
  }
  return dataset;
}

function missing(dir: string, details: Record<string, unknown>, cause?: unknown): SupsupError {
  return new SupsupError(
    'E_DATASET_MISSING',
    `Fashion-MNIST not found in ${dir}: install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or pass the directory that holds the IDX files`,
    { cause, details: { dir, ...details } },
  );
}

function readGzipped(file: string): Uint8Array {
  let compressed: Buffer;
  try {
    compressed = readFileSync(file);
  } catch (cause) {
    throw missing(dirname(file), { file }, cause);
  }
  try {
    return gunzipSync(compressed);
  } catch (cause) {
    throw new SupsupError('E_DATASET_CORRUPT', `${file} is not a valid gzip file`, {
      cause,
      details: { file },
    });
  }
}

function readSplit(dir: string, imagesName: string, labelsName: string, table: Float32Array): ImageSet {
  const imagesFile = join(dir, imagesName);
  const labelsFile = join(dir, labelsName);
  const images = parseIdxImages(readGzipped(imagesFile), imagesFile);
  const labels = parseIdxLabels(readGzipped(labelsFile), labelsFile);
  if (images.rows !== SIDE || images.cols !== SIDE) {
    throw new SupsupError(
      'E_DATASET_CORRUPT',
      `${imagesFile} holds ${images.rows}×${images.cols} images, expected ${SIDE}×${SIDE}`,
      { details: { file: imagesFile, rows: images.rows, cols: images.cols } },
    );
  }
  if (labels.length !== images.count) {
    throw new SupsupError(
      'E_DATASET_CORRUPT',
      `${labelsFile} has ${labels.length} labels for the ${images.count} images of ${imagesFile}`,
      { details: { file: labelsFile, labels: labels.length, images: images.count } },
    );
  }
  const bad = labels.findIndex((label) => label >= CLASSES);
  if (bad >= 0) {
    throw new SupsupError(
      'E_DATASET_CORRUPT',
      `${labelsFile}: label ${labels[bad]} at ${bad} is not in [0, ${CLASSES})`,
      {
        details: { file: labelsFile, index: bad },
      },
    );
  }
  const pixels = new Float32Array(images.pixels.length);
  for (let j = 0; j < pixels.length; j++) pixels[j] = table[images.pixels[j]];
  return { pixels, labels: Uint8Array.from(labels), count: images.count, dim: SIDE * SIDE };
}

function readFashion(dir: string): Dataset {
  const absent = Object.values(FASHION_FILES).filter((name) => !existsSync(join(dir, name)));
  if (absent.length > 0) throw missing(dir, { absent });
  const table = byteLookupTable(FASHION_STATS);
  return {
    name: 'fashion',
    train: readSplit(dir, FASHION_FILES.trainImages, FASHION_FILES.trainLabels, table),
    test: readSplit(dir, FASHION_FILES.testImages, FASHION_FILES.testLabels, table),
    classes: CLASSES,
    side: SIDE,
    background: table[0],
  };
}
