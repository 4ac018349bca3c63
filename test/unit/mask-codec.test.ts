import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crc32, decodeMask, encodeMask, type MaskMeta } from '../../src/codec/mask-codec.ts';
import { SupsupError } from '../../src/errors.ts';
import { bytesOfWords } from '../../src/model/bank/mask-layout.ts';
import { randomBits } from '../../src/model/network/prng.ts';

const META: MaskMeta = { archKey: '784-300-100-500', seed: 0xdeadbeef, taskId: 41, version: 3 };
const PACKED = bytesOfWords(randomBits(5, 'randomMasks', 0, 40 * 8));

function hasCode(code: string): (error: unknown) => boolean {
  return (error) => error instanceof SupsupError && error.code === code;
}

/** Re-seals `bytes` with a correct CRC after a deliberate header edit. */
function withFixedCrc(bytes: Uint8Array): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  view.setUint32(bytes.length - 4, crc32(bytes.subarray(0, bytes.length - 4)), true);
  return bytes;
}

test('crc32 matches the IEEE check value', () => {
  assert.equal(crc32(new TextEncoder().encode('123456789')), 0xcbf43926);
  assert.equal(crc32(new Uint8Array(0)), 0);
  assert.equal(crc32(new TextEncoder().encode('The quick brown fox jumps over the lazy dog')), 0x414fa339);
});

test('encodeMask writes the documented little-endian layout', () => {
  const bytes = encodeMask(META, PACKED);
  const view = new DataView(bytes.buffer);
  const keyLength = META.archKey.length;
  assert.equal(new TextDecoder().decode(bytes.subarray(0, 4)), 'SSMK');
  assert.equal(view.getUint16(4, true), 1);
  assert.equal(view.getUint16(6, true), 0);
  assert.equal(view.getUint32(8, true), META.seed);
  assert.equal(view.getUint32(12, true), META.taskId);
  assert.equal(view.getUint32(16, true), META.version);
  assert.equal(view.getUint16(20, true), keyLength);
  assert.equal(new TextDecoder().decode(bytes.subarray(22, 22 + keyLength)), META.archKey);
  assert.equal(view.getUint32(22 + keyLength, true), PACKED.length);
  assert.deepEqual(bytes.subarray(26 + keyLength, 26 + keyLength + PACKED.length), PACKED);
  assert.equal(bytes.length, 30 + keyLength + PACKED.length);
  assert.equal(view.getUint32(bytes.length - 4, true), crc32(bytes.subarray(0, bytes.length - 4)));
});

test('decode → encode round-trips byte for byte', () => {
  const metas: MaskMeta[] = [
    META,
    { archKey: '', seed: 0, taskId: 0, version: 0 },
    { archKey: 'mlp-ü-λ', seed: 0xffffffff, taskId: 0xffffffff, version: 0xffffffff },
  ];
  for (const meta of metas) {
    for (const packed of [PACKED, new Uint8Array(0)]) {
      const bytes = encodeMask(meta, packed);
      const decoded = decodeMask(bytes);
      assert.deepEqual(decoded.meta, meta);
      assert.deepEqual(decoded.packed, packed);
      assert.deepEqual(encodeMask(decoded.meta, decoded.packed), bytes);
    }
  }
});

test('decodeMask reads a view into a larger buffer and returns a copy of the packed bytes', () => {
  const bytes = encodeMask(META, PACKED);
  const larger = new Uint8Array(bytes.length + 11);
  larger.set(bytes, 7);
  const decoded = decodeMask(larger.subarray(7, 7 + bytes.length), { archKey: META.archKey });
  assert.deepEqual(decoded.packed, PACKED);
  larger.fill(0);
  assert.deepEqual(decoded.packed, PACKED);
});

test('any corrupted byte is refused with E_CODEC', () => {
  const bytes = encodeMask(META, PACKED);
  for (let i = 0; i < bytes.length; i++) {
    for (const flip of [0x01, 0x80]) {
      const corrupt = bytes.slice();
      corrupt[i] = (corrupt[i] as number) ^ flip;
      assert.throws(() => decodeMask(corrupt), hasCode('E_CODEC'), `byte ${i} ^ ${flip}`);
    }
  }
  const payload = bytes.slice();
  const inPacked = bytes.length - 10;
  payload[inPacked] = (payload[inPacked] as number) ^ 0x10;
  assert.throws(() => decodeMask(payload), /checksum/);
});

test('truncated or extended data is refused with E_CODEC', () => {
  const bytes = encodeMask(META, PACKED);
  for (let length = 0; length < bytes.length; length++) {
    assert.throws(() => decodeMask(bytes.subarray(0, length)), hasCode('E_CODEC'), `length ${length}`);
  }
  const extended = new Uint8Array(bytes.length + 1);
  extended.set(bytes);
  assert.throws(() => decodeMask(extended), hasCode('E_CODEC'));
});

test('bad magic, unknown format version and unknown flags are refused even with a valid CRC', () => {
  const badMagic = encodeMask(META, PACKED);
  badMagic[0] = 0x58;
  assert.throws(
    () => decodeMask(withFixedCrc(badMagic)),
    (e: unknown) => hasCode('E_CODEC')(e) && /magic/.test(String(e)),
  );
  const version2 = encodeMask(META, PACKED);
  new DataView(version2.buffer).setUint16(4, 2, true);
  assert.throws(() => decodeMask(withFixedCrc(version2)), /unknown mask format version 2/);
  const flagged = encodeMask(META, PACKED);
  new DataView(flagged.buffer).setUint16(6, 1, true);
  assert.throws(() => decodeMask(withFixedCrc(flagged)), hasCode('E_CODEC'));
  const badUtf8 = encodeMask({ ...META, archKey: 'ab' }, PACKED);
  badUtf8[22] = 0xff;
  assert.throws(() => decodeMask(withFixedCrc(badUtf8)), hasCode('E_CODEC'));
});

test('a mask for another network is refused with E_ARCH_MISMATCH', () => {
  const bytes = encodeMask(META, PACKED);
  assert.deepEqual(decodeMask(bytes, { archKey: META.archKey, totalBytes: PACKED.length }).meta, META);
  assert.throws(() => decodeMask(bytes, { archKey: '784-1024-1024-100' }), hasCode('E_ARCH_MISMATCH'));
  assert.throws(() => decodeMask(bytes, { totalBytes: PACKED.length + 4 }), hasCode('E_ARCH_MISMATCH'));
});

test('encodeMask refuses metadata that does not fit the format', () => {
  assert.throws(() => encodeMask({ ...META, seed: -1 }, PACKED), hasCode('E_BAD_ARGUMENT'));
  assert.throws(() => encodeMask({ ...META, taskId: 2 ** 32 }, PACKED), hasCode('E_BAD_ARGUMENT'));
  assert.throws(() => encodeMask({ ...META, version: 1.5 }, PACKED), hasCode('E_BAD_ARGUMENT'));
  assert.throws(
    () => encodeMask({ ...META, archKey: 'x'.repeat(0x10000) }, PACKED),
    hasCode('E_BAD_ARGUMENT'),
  );
});
