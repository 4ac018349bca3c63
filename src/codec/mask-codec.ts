import { SupsupError } from '../errors.js';

/**
 * Binary format of one packed mask (format version 1). All integers little-endian.
 *
 *   offset  size  field
 *   0       4     magic, ASCII "SSMK"
 *   4       2     u16 format version (1)
 *   6       2     u16 flags (0; any other value is refused)
 *   8       4     u32 seed of the network the mask was learned on
 *   12      4     u32 task id
 *   16      4     u32 mask version (bumped each time the task's mask is retrained)
 *   20      2     u16 n = byte length of the architecture key
 *   22      n     architecture key, UTF-8 (e.g. "784-300-100-500")
 *   22+n    4     u32 m = byte length of the packed mask
 *   26+n    m     packed mask bytes (layout of mask-layout.ts)
 *   26+n+m  4     u32 CRC-32 (IEEE 802.3, reflected, poly 0xEDB88320) of bytes [0, 26+n+m)
 *
 * The encoding is canonical: decoding then encoding gives back the same bytes.
 */

export interface MaskMeta {
  readonly archKey: string;
  readonly seed: number;
  readonly taskId: number;
  readonly version: number;
}

export interface DecodedMask {
  readonly meta: MaskMeta;
  readonly packed: Uint8Array;
}

export const MASK_MAGIC = 'SSMK';
export const MASK_FORMAT_VERSION = 1;

const MAGIC_BYTES = new Uint8Array([0x53, 0x53, 0x4d, 0x4b]);
const KEY_LENGTH_OFFSET = 20;
const KEY_OFFSET = 22;
/** Header up to the key, the packed-length field and the CRC: every field of an empty mask. */
const FIXED_BYTES = KEY_OFFSET + 4 + 4;
const MAX_U16 = 0xffff;
const MAX_U32 = 0xffffffff;

const CRC_TABLE = makeCrcTable();

function makeCrcTable(): Uint32Array {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
}

/** CRC-32 (IEEE) of `bytes`, as an unsigned 32-bit integer. crc32("123456789") = 0xCBF43926. */
export function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) {
    crc = (CRC_TABLE[(crc ^ (bytes[i] as number)) & 0xff] as number) ^ (crc >>> 8);
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/**
 * The digest the registry keeps of an encoded mask: the CRC-32 of every byte before the codec's
 * trailer, i.e. the value the trailer itself holds for an intact mask. Unlike a CRC over the whole
 * encoding (the same residue for every valid mask), it tells one valid mask from another.
 */
export function maskChecksum(encoded: Uint8Array): number {
  if (encoded.length < 4) throw codecError('mask too short for a checksum');
  return crc32(encoded.subarray(0, encoded.length - 4));
}

/** The checksum an encoded mask carries in its trailer (no pass over the bytes). */
export function storedMaskChecksum(encoded: Uint8Array): number {
  if (encoded.length < 4) throw codecError('mask too short for a checksum');
  return new DataView(encoded.buffer, encoded.byteOffset + encoded.length - 4, 4).getUint32(0, true);
}

export function encodeMask(meta: MaskMeta, packed: Uint8Array): Uint8Array {
  checkMeta(meta);
  if (!(packed instanceof Uint8Array) || packed.length > MAX_U32) {
    throw new SupsupError('E_BAD_ARGUMENT', 'packed mask must be a Uint8Array shorter than 2^32 bytes');
  }
  const key = new TextEncoder().encode(meta.archKey);
  if (key.length > MAX_U16) {
    throw new SupsupError('E_BAD_ARGUMENT', `archKey is ${key.length} bytes of UTF-8, at most ${MAX_U16}`);
  }
  const bytes = new Uint8Array(FIXED_BYTES + key.length + packed.length);
  const view = new DataView(bytes.buffer);
  bytes.set(MAGIC_BYTES, 0);
  view.setUint16(4, MASK_FORMAT_VERSION, true);
  view.setUint16(6, 0, true);
  view.setUint32(8, meta.seed, true);
  view.setUint32(12, meta.taskId, true);
  view.setUint32(16, meta.version, true);
  view.setUint16(KEY_LENGTH_OFFSET, key.length, true);
  bytes.set(key, KEY_OFFSET);
  const packedLengthOffset = KEY_OFFSET + key.length;
  view.setUint32(packedLengthOffset, packed.length, true);
  bytes.set(packed, packedLengthOffset + 4);
  const crcOffset = bytes.length - 4;
  view.setUint32(crcOffset, crc32(bytes.subarray(0, crcOffset)), true);
  return bytes;
}

/**
 * Decodes and verifies one mask. Malformed input throws E_CODEC; a well-formed mask made for
 * another network (archKey or packed length different from `expect`) throws E_ARCH_MISMATCH.
 * The returned packed bytes are a copy.
 */
export function decodeMask(
  bytes: Uint8Array,
  expect: { archKey?: string; totalBytes?: number } = {},
): DecodedMask {
  if (!(bytes instanceof Uint8Array)) throw codecError('mask data is not a Uint8Array');
  if (bytes.length < FIXED_BYTES) {
    throw codecError(`mask data is ${bytes.length} bytes, shorter than the ${FIXED_BYTES}-byte minimum`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  checkMagic(bytes);
  const formatVersion = view.getUint16(4, true);
  if (formatVersion !== MASK_FORMAT_VERSION) {
    throw codecError(
      `unknown mask format version ${formatVersion} (this build reads ${MASK_FORMAT_VERSION})`,
    );
  }
  const keyLength = view.getUint16(KEY_LENGTH_OFFSET, true);
  const packedLengthOffset = KEY_OFFSET + keyLength;
  if (bytes.length < packedLengthOffset + 8) {
    throw codecError(`mask data is truncated: ${bytes.length} bytes cannot hold a ${keyLength}-byte archKey`);
  }
  const packedLength = view.getUint32(packedLengthOffset, true);
  const expectedLength = FIXED_BYTES + keyLength + packedLength;
  if (bytes.length !== expectedLength) {
    throw codecError(`mask data is ${bytes.length} bytes but its header describes ${expectedLength}`);
  }
  checkCrc(bytes, view);
  const flags = view.getUint16(6, true);
  if (flags !== 0) throw codecError(`unknown mask flags 0x${flags.toString(16)}`);
  const meta: MaskMeta = {
    archKey: decodeKey(bytes.subarray(KEY_OFFSET, packedLengthOffset)),
    seed: view.getUint32(8, true),
    taskId: view.getUint32(12, true),
    version: view.getUint32(16, true),
  };
  const packedStart = packedLengthOffset + 4;
  checkExpectation(meta.archKey, packedLength, expect);
  return { meta, packed: bytes.slice(packedStart, packedStart + packedLength) };
}

function codecError(message: string): SupsupError {
  return new SupsupError('E_CODEC', message);
}

function checkMeta(meta: MaskMeta): void {
  for (const field of ['seed', 'taskId', 'version'] as const) {
    const value = meta[field];
    if (!Number.isInteger(value) || value < 0 || value > MAX_U32) {
      throw new SupsupError('E_BAD_ARGUMENT', `mask ${field} ${value} is not an integer in [0, 2^32)`);
    }
  }
  if (typeof meta.archKey !== 'string')
    throw new SupsupError('E_BAD_ARGUMENT', 'mask archKey must be a string');
}

function checkMagic(bytes: Uint8Array): void {
  for (let i = 0; i < MAGIC_BYTES.length; i++) {
    if (bytes[i] !== MAGIC_BYTES[i]) throw codecError(`not a mask: magic is not "${MASK_MAGIC}"`);
  }
}

function checkCrc(bytes: Uint8Array, view: DataView): void {
  const crcOffset = bytes.length - 4;
  const stored = view.getUint32(crcOffset, true);
  const actual = crc32(bytes.subarray(0, crcOffset));
  if (stored !== actual) {
    throw codecError(
      `mask checksum mismatch: stored 0x${stored.toString(16).padStart(8, '0')}, ` +
        `computed 0x${actual.toString(16).padStart(8, '0')} (data is corrupt)`,
    );
  }
}

function decodeKey(keyBytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(keyBytes);
  } catch (error) {
    throw new SupsupError('E_CODEC', 'mask archKey is not valid UTF-8', { cause: error });
  }
}

function checkExpectation(
  archKey: string,
  packedLength: number,
  expect: { archKey?: string; totalBytes?: number },
): void {
  if (expect.archKey !== undefined && archKey !== expect.archKey) {
    throw new SupsupError(
      'E_ARCH_MISMATCH',
      `mask was made for architecture ${archKey}, expected ${expect.archKey}`,
      { details: { found: archKey, expected: expect.archKey } },
    );
  }
  if (expect.totalBytes !== undefined && packedLength !== expect.totalBytes) {
    throw new SupsupError(
      'E_ARCH_MISMATCH',
      `mask holds ${packedLength} packed bytes, expected ${expect.totalBytes}`,
      { details: { found: packedLength, expected: expect.totalBytes } },
    );
  }
}
