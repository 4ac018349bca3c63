import { crc32 } from '../../codec/mask-codec.js';
import { SupsupError } from '../../errors.js';
import type { LabelledBatch } from './trainer.js';

/**
 * Binary form of one labelled batch of a replay buffer (the rows a mask trains on again), so that a
 * restart resumes training on exactly the rows an uninterrupted run would. Little-endian:
 *   "SSRB" | u16 format version (1) | u32 rows | u32 features | f32 x (rows × features) | i32 y (rows)
 *   | u32 CRC-32 of everything before it
 */
const MAGIC = 0x42525353; // "SSRB" read as little-endian u32
const VERSION = 1;
const HEADER = 14;

export function encodeLabelledBatch(batch: LabelledBatch, features: number): Uint8Array {
  if (batch.x.length !== batch.rows * features || batch.y.length !== batch.rows) {
    throw new SupsupError(
      'E_INTERNAL',
      `a labelled batch of ${batch.rows} rows has mismatched x or y lengths`,
    );
  }
  const out = new Uint8Array(HEADER + 4 * batch.x.length + 4 * batch.rows + 4);
  const view = new DataView(out.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint16(4, VERSION, true);
  view.setUint32(6, batch.rows, true);
  view.setUint32(10, features, true);
  let at = HEADER;
  if (LITTLE_ENDIAN) {
    // The platform's bytes are the format's: one copy (the header's 14 bytes leave the floats unaligned).
    out.set(new Uint8Array(batch.x.buffer, batch.x.byteOffset, batch.x.byteLength), at);
    at += batch.x.byteLength;
  } else {
    for (let i = 0; i < batch.x.length; i++, at += 4) view.setFloat32(at, batch.x[i] as number, true);
  }
  for (let r = 0; r < batch.rows; r++, at += 4) view.setInt32(at, batch.y[r] as number, true);
  view.setUint32(at, crc32(out.subarray(0, at)), true);
  return out;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Decodes and checks a batch written by {@link encodeLabelledBatch}; `features` is the network's input width. */
export function decodeLabelledBatch(bytes: Uint8Array, features: number): LabelledBatch {
  const fail = (why: string): never => {
    throw new SupsupError('E_CODEC', `replay batch: ${why}`);
  };
  if (bytes.length < HEADER + 4) fail('buffer too short');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(bytes.length - 4, true) !== crc32(bytes.subarray(0, bytes.length - 4)))
    fail('checksum mismatch');
  if (view.getUint32(0, true) !== MAGIC) fail('bad magic');
  if (view.getUint16(4, true) !== VERSION) fail(`unknown format version ${view.getUint16(4, true)}`);
  const rows = view.getUint32(6, true);
  const width = view.getUint32(10, true);
  if (width !== features) fail(`${width} features, the network has ${features}`);
  if (HEADER + 4 * rows * (width + 1) + 4 !== bytes.length) fail('length mismatch');
  const x = new Float32Array(rows * width);
  const y = new Int32Array(rows);
  let at = HEADER;
  if (LITTLE_ENDIAN) {
    new Uint8Array(x.buffer).set(bytes.subarray(at, at + x.byteLength));
    at += x.byteLength;
  } else {
    for (let i = 0; i < x.length; i++, at += 4) x[i] = view.getFloat32(at, true);
  }
  for (let r = 0; r < rows; r++, at += 4) y[r] = view.getInt32(at, true);
  return { x, y, rows };
}
