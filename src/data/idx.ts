/**
 * Parser for the IDX format of the MNIST family (LeCun et al.): a big-endian uint32 magic number
 * (0x00000801 for a label vector, 0x00000803 for a stack of images, both of unsigned bytes),
 * one big-endian uint32 per dimension, then the bytes in row-major order.
 */
import { SupsupError } from '../errors.js';

export const IDX_LABELS_MAGIC = 0x00000801;
export const IDX_IMAGES_MAGIC = 0x00000803;

export interface IdxImages {
  readonly count: number;
  readonly rows: number;
  readonly cols: number;
  /** count·rows·cols bytes, image after image, each row-major */
  readonly pixels: Uint8Array;
}

function corrupt(file: string, problem: string, details: Record<string, unknown> = {}): SupsupError {
  return new SupsupError('E_DATASET_CORRUPT', `${file} is not a valid IDX file: ${problem}`, {
    details: { file, ...details },
  });
}

function hex(word: number): string {
  return `0x${word.toString(16).padStart(8, '0')}`;
}

/**
 * Reads the magic number and `rank` dimensions, checking the magic and that the body holds exactly
 * the bytes the dimensions call for.
 */
function readHeader(bytes: Uint8Array, file: string, magic: number, rank: number): number[] {
  const headerLength = 4 * (1 + rank);
  if (bytes.length < headerLength) {
    throw corrupt(file, `${bytes.length} bytes is shorter than the ${headerLength}-byte header`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const found = view.getUint32(0, false);
  if (found !== magic) {
    throw corrupt(file, `magic number ${hex(found)}, expected ${hex(magic)}`, { magic: found });
  }
  const dims: number[] = [];
  for (let d = 0; d < rank; d++) dims.push(view.getUint32(4 * (1 + d), false));
  const expected = headerLength + dims.reduce((product, dim) => product * dim, 1);
  if (bytes.length !== expected) {
    const problem = `dimensions ${dims.join('×')} need ${expected} bytes, the file has ${bytes.length}`;
    throw corrupt(file, problem, { dims, length: bytes.length });
  }
  return dims;
}

/** Parses an IDX label file (magic 0x00000801, one dimension). The result is a view on `bytes`. */
export function parseIdxLabels(bytes: Uint8Array, file: string): Uint8Array {
  const [count] = readHeader(bytes, file, IDX_LABELS_MAGIC, 1);
  return bytes.subarray(8, 8 + count);
}

/** Parses an IDX image file (magic 0x00000803, dimensions count, rows, cols). The pixels are a view on `bytes`. */
export function parseIdxImages(bytes: Uint8Array, file: string): IdxImages {
  const [count, rows, cols] = readHeader(bytes, file, IDX_IMAGES_MAGIC, 3);
  if (rows === 0 || cols === 0) throw corrupt(file, `image size ${rows}×${cols} is empty`);
  return { count, rows, cols, pixels: bytes.subarray(16, 16 + count * rows * cols) };
}
