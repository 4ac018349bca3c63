import { crc32 } from '../../codec/mask-codec.js';
import { SupsupError } from '../../errors.js';
import type { OptimizerState } from './optimizers.js';

/**
 * Binary form of a mask's training state (its float scores and optimizer slots), so a mask that is
 * still learning can be persisted and resumed. Little-endian:
 *   "SSTS" | u16 format version (1) | u32 optimizer steps | u16 layers | u32 length × layers
 *   | u16 slots | (u16 name length, UTF-8 name) × slots
 *   | f32 scores of every layer | f32 slot s of every layer, for each slot in order | u32 CRC-32
 */
export interface TrainingState {
  readonly scores: readonly Float32Array[];
  readonly optimizer: OptimizerState;
}

const MAGIC = 0x53545353; // "SSTS" read as little-endian u32
const VERSION = 1;

export function encodeTrainingState(state: TrainingState): Uint8Array {
  const names = Object.keys(state.optimizer.slots).sort();
  const nameBytes = names.map((n) => new TextEncoder().encode(n));
  const lengths = state.scores.map((s) => s.length);
  const floats = lengths.reduce((a, b) => a + b, 0) * (1 + names.length);
  const headerBytes =
    4 + 2 + 4 + 2 + 4 * lengths.length + 2 + nameBytes.reduce((a, b) => a + 2 + b.length, 0);
  const out = new Uint8Array(headerBytes + 4 * floats + 4);
  const view = new DataView(out.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint16(4, VERSION, true);
  view.setUint32(6, state.optimizer.steps, true);
  view.setUint16(10, lengths.length, true);
  let at = 12;
  for (const n of lengths) {
    view.setUint32(at, n, true);
    at += 4;
  }
  view.setUint16(at, names.length, true);
  at += 2;
  for (const bytes of nameBytes) {
    view.setUint16(at, bytes.length, true);
    out.set(bytes, at + 2);
    at += 2 + bytes.length;
  }
  const arrays = [...state.scores, ...names.flatMap((n) => state.optimizer.slots[n] ?? [])];
  for (const a of arrays) {
    for (let i = 0; i < a.length; i++) view.setFloat32(at + 4 * i, a[i] as number, true);
    at += 4 * a.length;
  }
  view.setUint32(at, crc32(out.subarray(0, at)), true);
  return out;
}

export function decodeTrainingState(bytes: Uint8Array, expectLengths?: readonly number[]): TrainingState {
  const fail = (why: string): never => {
    throw new SupsupError('E_CODEC', `training state: ${why}`);
  };
  if (bytes.length < 18) fail('buffer too short');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(bytes.length - 4, true) !== crc32(bytes.subarray(0, bytes.length - 4)))
    fail('checksum mismatch');
  if (view.getUint32(0, true) !== MAGIC) fail('bad magic');
  if (view.getUint16(4, true) !== VERSION) fail(`unknown format version ${view.getUint16(4, true)}`);
  const steps = view.getUint32(6, true);
  const layers = view.getUint16(10, true);
  let at = 12;
  const lengths: number[] = [];
  for (let l = 0; l < layers; l++, at += 4) lengths.push(view.getUint32(at, true));
  if (expectLengths !== undefined && lengths.join() !== expectLengths.join()) {
    throw new SupsupError(
      'E_ARCH_MISMATCH',
      `training state has layers ${lengths.join('/')}, expected ${expectLengths.join('/')}`,
    );
  }
  const slotCount = view.getUint16(at, true);
  at += 2;
  const names: string[] = [];
  for (let s = 0; s < slotCount; s++) {
    const n = view.getUint16(at, true);
    names.push(new TextDecoder().decode(bytes.subarray(at + 2, at + 2 + n)));
    at += 2 + n;
  }
  const floats = lengths.reduce((a, b) => a + b, 0) * (1 + names.length);
  if (at + 4 * floats + 4 !== bytes.length) fail('length mismatch');
  const readLayers = (): Float32Array[] =>
    lengths.map((n) => {
      const a = new Float32Array(n);
      for (let i = 0; i < n; i++) a[i] = view.getFloat32(at + 4 * i, true);
      at += 4 * n;
      return a;
    });
  const scores = readLayers();
  const slots: Record<string, Float32Array[]> = {};
  for (const name of names) slots[name] = readLayers();
  return { scores, optimizer: { steps, slots } };
}
