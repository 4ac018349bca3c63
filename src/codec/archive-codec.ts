import { SupsupError } from '../errors.js';
import { crc32 } from './mask-codec.js';

/**
 * Binary container of a mask archive (format version 1): a JSON header and a list of opaque byte blobs (encoded
 * masks, training states, replay entries), the whole file covered by one CRC-32. All integers little-endian.
 *
 *   offset      size    field
 *   0           4       magic, ASCII "SSMA"
 *   4           2       u16 format version (1)
 *   6           2       u16 flags (0; any other value is refused)
 *   8           4       u32 h = byte length of the header
 *   12          4       u32 n = number of blobs
 *   16          4·n     u32 byte length of each blob, in order
 *   16+4n       h       header, UTF-8 JSON (an object; its meaning is the reader's, src/archive/format.ts)
 *   16+4n+h     Σ       the blobs, back to back, in order
 *   end−4       4       u32 CRC-32 (IEEE, as the mask codec's) of every byte before it
 *
 * A reader refuses (E_ARCHIVE) a file that is not one, a newer format version, a CRC mismatch, and lengths that
 * do not add up to the file's size; the blobs it returns are views into the given bytes.
 */
export const ARCHIVE_MAGIC = 'SSMA';
export const ARCHIVE_FORMAT_VERSION = 1;

const MAGIC_BYTES = new Uint8Array([0x53, 0x53, 0x4d, 0x41]);
/** Magic, version, flags, header length, blob count. */
const FIXED_HEAD = 16;
const TRAILER = 4;
const MAX_U32 = 0xffffffff;

export interface ArchiveContainer {
  readonly version: number;
  /** The parsed header (a JSON object). */
  readonly header: Record<string, unknown>;
  readonly blobs: readonly Uint8Array[];
}

function archiveError(message: string): SupsupError {
  return new SupsupError('E_ARCHIVE', message);
}

export function encodeArchive(header: Record<string, unknown>, blobs: readonly Uint8Array[]): Uint8Array {
  const headerBytes = new TextEncoder().encode(JSON.stringify(header));
  if (headerBytes.length > MAX_U32 || blobs.length > MAX_U32) {
    throw archiveError('archive header or blob count too large');
  }
  const tableBytes = 4 * blobs.length;
  const blobBytes = blobs.reduce((sum, blob) => sum + blob.length, 0);
  const out = new Uint8Array(FIXED_HEAD + tableBytes + headerBytes.length + blobBytes + TRAILER);
  const view = new DataView(out.buffer);
  out.set(MAGIC_BYTES, 0);
  view.setUint16(4, ARCHIVE_FORMAT_VERSION, true);
  view.setUint16(6, 0, true);
  view.setUint32(8, headerBytes.length, true);
  view.setUint32(12, blobs.length, true);
  let at = FIXED_HEAD;
  for (const blob of blobs) {
    if (blob.length > MAX_U32) throw archiveError('an archive blob is over 4 GiB');
    view.setUint32(at, blob.length, true);
    at += 4;
  }
  out.set(headerBytes, at);
  at += headerBytes.length;
  for (const blob of blobs) {
    out.set(blob, at);
    at += blob.length;
  }
  view.setUint32(at, crc32(out.subarray(0, at)), true);
  return out;
}

export function decodeArchive(bytes: Uint8Array): ArchiveContainer {
  if (bytes.length < FIXED_HEAD + TRAILER || !MAGIC_BYTES.every((b, i) => bytes[i] === b)) {
    throw archiveError(
      `not a supsupd mask archive (no "${ARCHIVE_MAGIC}" magic, or shorter than its header)`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint16(4, true);
  if (version > ARCHIVE_FORMAT_VERSION) {
    throw archiveError(
      `archive format version ${version} is newer than this supsupd reads (${ARCHIVE_FORMAT_VERSION}); use a newer supsupd`,
    );
  }
  if (version < 1) throw archiveError(`archive format version ${version} is not a valid version`);
  const end = bytes.length - TRAILER;
  const stored = view.getUint32(end, true);
  const actual = crc32(bytes.subarray(0, end));
  if (stored !== actual) {
    throw archiveError(
      `archive checksum mismatch (CRC-32 stored 0x${hex(stored)}, computed 0x${hex(actual)}): the file is damaged`,
    );
  }
  if (view.getUint16(6, true) !== 0) throw archiveError('archive flags are not 0');
  const headerLength = view.getUint32(8, true);
  const count = view.getUint32(12, true);
  const tableEnd = FIXED_HEAD + 4 * count;
  if (tableEnd > end) throw archiveError(`archive blob table (${count} blobs) runs past the end`);
  const lengths: number[] = [];
  for (let i = 0; i < count; i++) lengths.push(view.getUint32(FIXED_HEAD + 4 * i, true));
  const headerEnd = tableEnd + headerLength;
  const total = headerEnd + lengths.reduce((sum, n) => sum + n, 0);
  if (total !== end) {
    throw archiveError(`archive lengths add up to ${total + TRAILER} bytes, the file has ${bytes.length}`);
  }
  const header = parseHeader(bytes.subarray(tableEnd, headerEnd));
  const blobs: Uint8Array[] = [];
  let at = headerEnd;
  for (const n of lengths) {
    blobs.push(bytes.subarray(at, at + n));
    at += n;
  }
  return { version, header, blobs };
}

function parseHeader(bytes: Uint8Array): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (error) {
    throw archiveError(`archive header is not UTF-8 JSON: ${(error as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw archiveError('archive header is not a JSON object');
  }
  return value as Record<string, unknown>;
}

function hex(n: number): string {
  return n.toString(16).padStart(8, '0');
}
