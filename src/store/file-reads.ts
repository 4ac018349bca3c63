/** Reading a file registry.json references (file-store.ts), checked against the size and CRC-32 recorded there. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from '../codec/mask-codec.js';
import type { SupsupError } from '../errors.js';
import { corrupt, type FileRef } from './file-registry.js';

/** A referenced file that is gone (maybe replaced by a commit meanwhile); `corrupt` is the error if it stays so. */
export class Missing extends Error {
  constructor(readonly corrupt: SupsupError) {
    super(corrupt.message);
  }
}

/**
 * The bytes of `ref` under `dir`: E_STORE_CORRUPT naming the path when its size or CRC-32 differs from the
 * registry's, {@link Missing} when it does not exist, `fsError`'s mapping of any other read error.
 */
export async function readReferencedFile(
  dir: string,
  ref: FileRef,
  what: string,
  task: number,
  fsError: (error: unknown, operation: string) => unknown,
): Promise<Uint8Array> {
  const absolute = join(dir, ref.path);
  let bytes: Buffer;
  try {
    bytes = await readFile(absolute);
  } catch (error) {
    if ((error as NodeJS.ErrnoException | null)?.code === 'ENOENT') {
      throw new Missing(corrupt(`${what} is missing: ${absolute}`, absolute, { task }));
    }
    throw fsError(error, `read ${absolute}`);
  }
  if (bytes.byteLength !== ref.bytes || crc32(bytes) !== ref.crc) {
    throw corrupt(
      `${what} does not match registry.json ` +
        `(${bytes.byteLength} bytes, expected ${ref.bytes}; or a CRC-32 mismatch): ${absolute}`,
      absolute,
      { task },
    );
  }
  return new Uint8Array(bytes);
}
